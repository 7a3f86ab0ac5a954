"""A stand-in of a 1C:Enterprise base (УТ 11 / КА 2 / ERP) over its standard OData interface."""

from sandbox.onec.server import PUBLICATION, OneCStandIn, credential_env_names

__all__ = ["PUBLICATION", "OneCStandIn", "credential_env_names"]
