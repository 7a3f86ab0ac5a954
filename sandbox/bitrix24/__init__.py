"""A local stand-in of the Bitrix24 REST API (incoming webhook), serving the sandbox world."""

from sandbox.bitrix24.server import Bitrix24StandIn, webhook_code

__all__ = ["Bitrix24StandIn", "webhook_code"]
