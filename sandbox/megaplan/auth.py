"""Megaplan API v3 authentication as the stand-in plays it.

- Password grant: ``POST /api/v3/auth/access_token`` with ``username``, ``password``,
  ``grant_type=password`` (form fields, urlencoded or multipart) gives a bearer access token
  for 48 hours and a refresh token. ``grant_type=refresh_token`` exchanges a refresh token
  for a new pair; the used refresh token is revoked (the server rotates it).
- Application token: an application created in the account has a static token, sent the
  same way (``Authorization: Bearer <token>``); it does not expire.
- The token may also travel inside the JSON query as ``access_token``.

The token endpoint answers bare JSON (no ``meta``/``data``), errors included, in the shape of
the OAuth 2.0 server library Megaplan's token answer comes from:
``{"error": "invalid_grant", "error_description": "..."}``.
"""

from __future__ import annotations

import hashlib
import hmac
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ACCESS_TOKEN_SECONDS = 172_800  # 48 hours
REFRESH_TOKEN_SECONDS = 14 * 86_400


@dataclass
class TokenAnswer:
    status: int
    payload: dict[str, Any]


@dataclass
class Issued:
    expires_at: float
    uses: int = 0


def oauth_error(status: int, error: str, description: str) -> TokenAnswer:
    return TokenAnswer(status, {"error": error, "error_description": description})


class MegaplanAccount:
    """The credentials of one Megaplan account (one connection), fixed by the world's seed."""

    def __init__(self, seed: int, source_name: str, wall_clock: Callable[[], float] = time.time):
        self._key = hashlib.sha256(f"megaplan|{seed}|{source_name}".encode()).digest()
        self.username = f"api@{source_name.replace('_', '-')}.example.ru"
        self.password = self._digest("password")[:16]
        self.app_token = self._digest("application")[:64]
        self.wall_clock = wall_clock
        self.access: dict[str, Issued] = {}
        self.refresh: dict[str, float] = {}  # refresh token -> expires at
        self.issued = 0
        self._lock = threading.Lock()

    def _digest(self, label: str) -> str:
        return hmac.new(self._key, label.encode(), hashlib.sha256).hexdigest() * 2

    def _token(self, kind: str) -> str:
        self.issued += 1
        return hashlib.sha256(self._key + f"{kind}|{self.issued}".encode()).hexdigest()[:40]

    # -- the token endpoint -------------------------------------------------------------
    def exchange(self, form: dict[str, str]) -> TokenAnswer:
        grant = form.get("grant_type")
        with self._lock:
            if grant == "password":
                username, password = form.get("username"), form.get("password")
                if not username or not password:
                    return oauth_error(
                        400, "invalid_request", 'Missing parameters: "username" and "password" required'
                    )
                if not (
                    hmac.compare_digest(username, self.username)
                    and hmac.compare_digest(password, self.password)
                ):
                    return oauth_error(401, "invalid_grant", "Invalid username and password combination")
                return self._issue()
            if grant == "refresh_token":
                token = form.get("refresh_token")
                if not token:
                    return oauth_error(
                        400, "invalid_request", 'Missing parameter: "refresh_token" is required'
                    )
                expires_at = self.refresh.pop(token, None)
                if expires_at is None:
                    return oauth_error(400, "invalid_grant", "Invalid refresh token")
                if expires_at <= self.wall_clock():
                    return oauth_error(400, "invalid_grant", "Refresh token has expired")
                return self._issue()
            if not grant:
                return oauth_error(400, "invalid_request", "The grant type was not specified in the request")
            return oauth_error(400, "unsupported_grant_type", f'Grant type "{grant}" not supported')

    def _issue(self) -> TokenAnswer:
        now = self.wall_clock()
        access, refresh = self._token("access"), self._token("refresh")
        self.access[access] = Issued(now + ACCESS_TOKEN_SECONDS)
        self.refresh[refresh] = now + REFRESH_TOKEN_SECONDS
        return TokenAnswer(
            200,
            {
                "access_token": access,
                "expires_in": ACCESS_TOKEN_SECONDS,
                "token_type": "bearer",
                "scope": None,
                "refresh_token": refresh,
            },
        )

    # -- the API's side -----------------------------------------------------------------
    def check(self, token: str | None, expire_after_uses: int = 0) -> str | None:
        """None when ``token`` opens the API; otherwise why not. ``expire_after_uses`` (a fault)
        makes an access token die after that many requests."""
        if not token:
            return "Не передан токен доступа"
        if hmac.compare_digest(token, self.app_token):
            return None
        with self._lock:
            issued = self.access.get(token)
            if issued is None:
                return "Неверный токен доступа"
            if issued.expires_at <= self.wall_clock():
                return "Срок действия токена доступа истёк"
            issued.uses += 1
            if expire_after_uses and issued.uses > expire_after_uses:
                return "Срок действия токена доступа истёк"
        return None

    def revoke_all(self) -> None:
        """Every token issued so far stops working (a password change, a revoked app)."""
        with self._lock:
            self.access.clear()
            self.refresh.clear()
