"""Errors an extractor raises. Messages name the connection and what to do; never a secret."""

from __future__ import annotations


class ExtractError(RuntimeError):
    """The extraction of one connection failed."""

    def __init__(self, connection: str, message: str):
        self.connection = connection
        super().__init__(f"{connection}: {message}")


class CredentialError(ExtractError):
    """The connection's credentials are dead: a person must act (re-authorise, new token)."""


class RetriesExhausted(ExtractError):
    """The API kept failing after every retry."""


class LockedError(ExtractError):
    """Another run is extracting this connection right now."""
