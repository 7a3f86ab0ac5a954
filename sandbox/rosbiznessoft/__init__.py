"""A stand-in of a RosBiznesSoft CRM (RBS360) installation over its XML API."""

from sandbox.rosbiznessoft.installation import DEFAULT, EXAMPLE_RENAMED, Installation
from sandbox.rosbiznessoft.server import API_PATH, RosBiznesSoftStandIn, credential_env_names

__all__ = [
    "API_PATH",
    "DEFAULT",
    "EXAMPLE_RENAMED",
    "Installation",
    "RosBiznesSoftStandIn",
    "credential_env_names",
]
