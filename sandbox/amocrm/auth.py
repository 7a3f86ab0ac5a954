"""amoCRM OAuth 2.0 as the stand-in plays it: client credentials derived from the world's seed,
single-use refresh tokens that rotate on every exchange, 24-hour access tokens, and one
long-lived token for private integrations.

Tokens are signed, not stored: a token carries its *generation* (how many exchanges happened
before it), and the account remembers only the current generation. A refresh token of an
older generation has been used, so it is revoked. A token of a newer generation was issued
before the stand-in restarted (the real account remembers it; the stand-in re-derives it), so
it is accepted and the account moves on to that generation.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

ACCESS_TOKEN_SECONDS = 86400
LONG_LIVED_EXPIRES_AT = 2145916800  # 2038-01-01: a long-lived token lives up to five years
REDIRECT_URI = "https://example.com/amocrm/oauth"
OAUTH_PROBLEM_TYPE = "https://developers.amocrm.ru/v3/errors/OAuthProblemJson"
OAUTH_DETAIL = "В запросе отсутствует ряд параметров или параметры невалидны"
_REFRESH_PREFIX = "def50200"
_CODE_PREFIX = "def50200c0de"


@dataclass
class TokenCheck:
    ok: bool
    detail: str = ""
    token_id: str = ""  # jti of an OAuth access token; "" for the long-lived token


@dataclass
class OAuthAnswer:
    status: int
    payload: dict[str, Any]


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class OAuthAccount:
    """The OAuth state of one amoCRM account (one connection)."""

    def __init__(
        self,
        seed: int,
        source_name: str,
        account_id: int,
        admin_user_id: int,
        wall_clock: Callable[[], float] = time.time,
        redirect_uri: str = REDIRECT_URI,
    ):
        self.account_id = account_id
        self.admin_user_id = admin_user_id
        self.wall_clock = wall_clock
        self.redirect_uri = redirect_uri
        self._key = hashlib.sha256(f"amocrm-oauth|{seed}|{source_name}".encode()).digest()
        self.client_id = str(uuid.UUID(bytes=self._digest("client_id")[:16], version=4))
        self.client_secret = self._alnum(self._digest("client_secret"), 64)
        self.authorization_code = _CODE_PREFIX + self._digest("code").hex() * 4
        self.long_lived_token = self._jwt(
            {
                "aud": self.client_id,
                "jti": "long-lived-" + self._digest("long_lived").hex()[:24],
                "iat": 1735689600,
                "nbf": 1735689600,
                "exp": LONG_LIVED_EXPIRES_AT,
                "sub": str(admin_user_id),
                "grant_type": "",
                "account_id": account_id,
                "base_domain": "amocrm.ru",
                "version": 2,
                "scopes": ["crm", "files", "notifications"],
            }
        )
        self.generation = 0
        self._code_used = False
        self._issued = 0  # a counter that makes every access token's jti unique

    # -- derivation ---------------------------------------------------------------------
    def _digest(self, label: str) -> bytes:
        return hmac.new(self._key, label.encode(), hashlib.sha256).digest()

    @staticmethod
    def _alnum(data: bytes, length: int) -> str:
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        stream = (data * (length // len(data) + 1))[:length]
        return "".join(alphabet[b % len(alphabet)] for b in stream)

    def _jwt(self, payload: dict[str, Any]) -> str:
        head = _b64(json.dumps({"typ": "JWT", "alg": "HS256"}, separators=(",", ":")).encode())
        body = _b64(json.dumps(payload, separators=(",", ":")).encode())
        sig = _b64(hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest())
        return f"{head}.{body}.{sig}"

    def _read_jwt(self, token: str) -> dict[str, Any] | None:
        parts = token.split(".")
        if len(parts) != 3:
            return None
        head, body, sig = parts
        expected = _b64(hmac.new(self._key, f"{head}.{body}".encode(), hashlib.sha256).digest())
        if not hmac.compare_digest(sig, expected):
            return None
        try:
            payload = json.loads(_unb64(body))
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None

    def refresh_token(self, generation: int) -> str:
        mac = self._digest(f"refresh|{generation}").hex()
        return f"{_REFRESH_PREFIX}{generation:08x}{mac}{self._digest(f'refresh2|{generation}').hex()}"

    def _refresh_generation(self, token: str) -> int | None:
        if not token.startswith(_REFRESH_PREFIX) or token.startswith(_CODE_PREFIX):
            return None
        try:
            generation = int(token[len(_REFRESH_PREFIX) : len(_REFRESH_PREFIX) + 8], 16)
        except ValueError:
            return None
        return generation if hmac.compare_digest(token, self.refresh_token(generation)) else None

    def _access_token(self, generation: int) -> str:
        self._issued += 1
        now = int(self.wall_clock())
        return self._jwt(
            {
                "aud": self.client_id,
                "jti": f"{generation:08x}{self._issued:08x}{self._digest(f'jti|{generation}').hex()[:16]}",
                "iat": now,
                "nbf": now,
                "exp": now + ACCESS_TOKEN_SECONDS,
                "sub": str(self.admin_user_id),
                "grant_type": "",
                "account_id": self.account_id,
                "base_domain": "amocrm.ru",
                "version": 2,
                "scopes": ["crm", "files", "notifications"],
            }
        )

    # -- the token endpoint -------------------------------------------------------------
    def exchange(self, body: dict[str, Any]) -> OAuthAnswer:
        """``POST /oauth2/access_token``."""
        grant = body.get("grant_type")
        if grant not in ("authorization_code", "refresh_token"):
            return oauth_problem(
                400, "The authorization grant type is not supported by the authorization server."
            )
        if body.get("client_id") != self.client_id or body.get("client_secret") != self.client_secret:
            return oauth_problem(401, "Client authentication failed")
        if grant == "authorization_code":
            code = body.get("code")
            if not isinstance(code, str) or not code:
                return oauth_problem(400, "Check the `code` parameter")
            if body.get("redirect_uri") != self.redirect_uri:
                return oauth_problem(400, "Invalid redirect_uri")
            if code != self.authorization_code:
                return oauth_problem(400, "Cannot decrypt the authorization code")
            if self._code_used:
                return oauth_problem(400, "Authorization code has been revoked")
            self._code_used = True
            return self._issue(self.generation + 1)
        token = body.get("refresh_token")
        if not isinstance(token, str) or not token:
            return oauth_problem(400, "Check the `refresh_token` parameter")
        generation = self._refresh_generation(token)
        if generation is None:
            return oauth_problem(401, "Cannot decrypt the refresh token")
        if generation < self.generation:
            return oauth_problem(401, "Token has been revoked")
        return self._issue(generation + 1)

    def _issue(self, generation: int) -> OAuthAnswer:
        self.generation = generation
        return OAuthAnswer(
            200,
            {
                "token_type": "Bearer",
                "expires_in": ACCESS_TOKEN_SECONDS,
                "access_token": self._access_token(generation),
                "refresh_token": self.refresh_token(generation),
            },
        )

    # -- the API's side -----------------------------------------------------------------
    def check_bearer(self, header: str | None) -> TokenCheck:
        if not header:
            return TokenCheck(False, "Authorization header is missing")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return TokenCheck(False, "Authorization header must be 'Bearer <token>'")
        token = token.strip()
        if hmac.compare_digest(token, self.long_lived_token):
            return TokenCheck(True)
        payload = self._read_jwt(token)
        if payload is None or str(payload.get("jti", "")).startswith("long-lived"):
            return TokenCheck(False, "Invalid token")
        jti = str(payload.get("jti", ""))
        try:
            generation = int(jti[:8], 16)
        except ValueError:
            return TokenCheck(False, "Invalid token")
        if int(payload.get("exp", 0)) <= self.wall_clock():
            return TokenCheck(False, "Token has expired")
        if generation < self.generation:
            return TokenCheck(False, "Token has been revoked")
        self.generation = generation
        return TokenCheck(True, token_id=jti)


def oauth_problem(status: int, hint: str) -> OAuthAnswer:
    """An error of the token endpoint, in amoCRM's OAuth problem shape."""
    return OAuthAnswer(
        status,
        {
            "hint": hint,
            "title": "Некорректный запрос",
            "type": OAUTH_PROBLEM_TYPE,
            "status": status,
            "detail": OAUTH_DETAIL,
        },
    )
