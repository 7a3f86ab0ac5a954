"""Secrets in configuration: written as ``${ENV_VAR}``, resolved from the environment.

A ``Secret`` keeps the variable's name (safe to show) and its value (never shown: its
``repr`` and ``str`` hide it). A literal where a reference belongs is refused.
"""

from __future__ import annotations

import os
import re
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

REFERENCE = re.compile(r"^\$\{([A-Za-z_][A-Za-z0-9_]*)\}$")
EMBEDDED_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


class Secret:
    __slots__ = ("env_var", "_value")

    def __init__(self, env_var: str, value: str):
        self.env_var = env_var
        self._value = value

    def get(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret(${{{self.env_var}}})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other.env_var == self.env_var


class SecretError(ValueError):
    pass


def _to_secret(value: Any) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise SecretError(f"a ${{ENV_VAR}} reference, found a {type(value).__name__}")
    match = REFERENCE.match(value.strip())
    if not match:
        # never echo the value: it may be the secret itself
        raise SecretError(
            "a ${ENV_VAR} reference, found a literal value (secrets may not be written in "
            "configuration: put it in an environment variable and write ${THAT_VARIABLE})"
        )
    name = match.group(1)
    resolved = os.environ.get(name)
    if resolved is None or resolved == "":
        raise SecretError(f"environment variable {name} to be set, found it unset")
    return Secret(name, resolved)


SecretRef = Annotated[
    Secret,
    BeforeValidator(_to_secret),
    PlainSerializer(lambda s: f"${{{s.env_var}}}", return_type=str),
]
