"""A stand-in of a Creatio (8.x) site over its OData 4 web service."""

from sandbox.creatio.server import (
    IDENTITY_PREFIX,
    LOGIN_PATH,
    ODATA_ROOTS,
    CreatioStandIn,
    credential_env_names,
)

__all__ = ["IDENTITY_PREFIX", "LOGIN_PATH", "ODATA_ROOTS", "CreatioStandIn", "credential_env_names"]
