"""A local stand-in of the amoCRM (Kommo) API v4 serving one account of the sandbox world."""

from sandbox.amocrm.server import AmoCRMStandIn

__all__ = ["AmoCRMStandIn"]
