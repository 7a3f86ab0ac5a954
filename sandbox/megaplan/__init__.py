"""A stand-in of a Megaplan account over its API v3 (deals, programs, status history, comments)."""

from sandbox.megaplan.server import API, MegaplanStandIn, credential_env_names

__all__ = ["API", "MegaplanStandIn", "credential_env_names"]
