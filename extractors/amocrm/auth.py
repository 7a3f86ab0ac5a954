"""amoCRM authorisation: a long-lived token, or OAuth 2.0 with a rotating single-use refresh token.

OAuth: an access token lives 24 hours; the refresh token is single-use, and every refresh
returns a new pair and kills the old refresh token. So the pair in use lives in the
warehouse (``ops.oauth_tokens``), and a new pair is committed there, in its own transaction,
the moment it arrives and before anything uses it: a crash right after a refresh keeps the
only valid token.

``seeded_from`` records which configured refresh token (its sha256) the stored pair descends
from. When the configuration holds another one (a person re-authorised the integration and
put the new token in the environment variable), the configuration wins over the stored pair.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import psycopg

from dwh.config.models import AmoCRMSource
from extractors.common.errors import CredentialError, ExtractError
from extractors.common.http import ApiClient, ApiError
from extractors.common.readahead import foreground_only

TOKEN_PATH = "/oauth2/access_token"
REFRESH_AHEAD = timedelta(seconds=60)  # an access token this close to expiry is refreshed first


class DeadCredential(CredentialError):
    """The connection's credentials no longer work; the message says what a person must do."""


class AccountBlocked(CredentialError):
    """amoCRM answered 403: the account's API access is blocked (or the integration lacks rights)."""


def blocked_error(connection: str, where: str) -> AccountBlocked:
    return AccountBlocked(
        connection,
        f"amoCRM answered 403 Forbidden on {where}. amoCRM blocks an account's API access this way after "
        "repeated requests over its limit of 7 per second (or the integration lacks the rights). The "
        "extraction stopped at once and sends nothing more, because retrying would prolong a block: ask "
        "amoCRM support to unblock the account (or give the integration access), then run again.",
    )


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class TokenPair:
    access_token: str | None
    refresh_token: str
    expires_at: datetime | None
    seeded_from: str


class TokenStore:
    """The connection's current OAuth pair in ``ops.oauth_tokens``."""

    def __init__(self, conn: psycopg.Connection, connection_name: str):
        self.conn, self.connection_name = conn, connection_name

    def load(self) -> TokenPair | None:
        row = self.conn.execute(
            """select access_token, refresh_token, expires_at, seeded_from
               from ops.oauth_tokens where connection_name = %s""",
            (self.connection_name,),
        ).fetchone()
        return TokenPair(row[0], row[1], row[2], row[3] or "") if row else None

    def save(self, pair: TokenPair) -> None:
        """Commit the pair now, in a transaction of its own."""
        if self.conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            raise RuntimeError(
                f"{self.connection_name}: a new OAuth token pair must be committed on its own, "
                "but a transaction is open on the connection"
            )
        with self.conn.transaction():
            self.conn.execute(
                """insert into ops.oauth_tokens
                       (connection_name, access_token, refresh_token, expires_at, seeded_from, updated_at)
                   values (%s, %s, %s, %s, %s, now())
                   on conflict (connection_name) do update set
                       access_token = excluded.access_token, refresh_token = excluded.refresh_token,
                       expires_at = excluded.expires_at, seeded_from = excluded.seeded_from,
                       updated_at = now()""",
                (self.connection_name, pair.access_token, pair.refresh_token, pair.expires_at,
                 pair.seeded_from),
            )  # fmt: skip


class LongLivedToken:
    """A private integration's long-lived token: nothing to refresh."""

    def __init__(self, source: AmoCRMSource):
        assert source.auth.long_lived_token is not None
        self.connection = source.name
        self._secret = source.auth.long_lived_token
        self.on_unauthorized: Callable[[], None] | None = None

    def ensure_fresh(self) -> None:
        pass

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._secret.get()}"}

    def refused(self, where: str, detail: str) -> DeadCredential:
        return DeadCredential(
            self.connection,
            f"amoCRM refused the long-lived token on {where} ({detail}): it expired or was revoked. "
            "Issue a new long-lived token in the integration's settings in amoCRM and put it in the "
            f"environment variable {self._secret.env_var}.",
        )


class OAuthSession:
    """OAuth 2.0 with the rotating refresh token kept in ``ops.oauth_tokens``."""

    def __init__(
        self,
        source: AmoCRMSource,
        store: TokenStore,
        token_api: ApiClient,
        wall_clock: Callable[[], float],
    ):
        auth = source.auth
        assert auth.client_id and auth.client_secret and auth.refresh_token and auth.redirect_uri
        self.connection = source.name
        self.url = source.base_url + TOKEN_PATH
        self._client_id, self._client_secret = auth.client_id, auth.client_secret
        self._refresh_secret, self._redirect_uri = auth.refresh_token, auth.redirect_uri
        self._store = store
        self._api = token_api
        self._now = wall_clock
        self.refreshes = 0
        self._refused = False  # the API refused the access token: refresh before the next request
        configured = auth.refresh_token.get()
        seed = fingerprint(configured)
        stored = store.load()
        if stored is not None and stored.seeded_from == seed:
            self._pair = stored
        else:  # nothing stored yet, or a person re-authorised: the configuration wins
            self._pair = TokenPair(None, configured, None, seed)
        self.on_unauthorized: Callable[[], None] | None = self._unauthorized

    def _unauthorized(self) -> None:
        self._refused = True
        self.refresh()

    def _expired(self) -> bool:
        pair = self._pair
        if self._refused or not pair.access_token or pair.expires_at is None:
            return True
        return pair.expires_at - REFRESH_AHEAD <= datetime.fromtimestamp(self._now(), UTC)

    def ensure_fresh(self) -> None:
        if self._expired():
            self.refresh()

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._pair.access_token}"} if self._pair.access_token else {}

    def refresh(self) -> None:
        """Trade the refresh token for a new pair and commit the pair before anything uses it.
        Never from the read-ahead worker (the caller's transaction is open on the connection):
        there it raises ``NeedsForeground`` and the caller's thread sends the request again."""
        foreground_only()
        body = {
            "client_id": self._client_id.get(),
            "client_secret": self._client_secret.get(),
            "grant_type": "refresh_token",
            "refresh_token": self._pair.refresh_token,
            "redirect_uri": self._redirect_uri,
        }
        retries = self._api.stats.retries
        try:
            response = self._api.request("POST", self.url, json_body=body, allow_empty=False)
        except CredentialError as exc:
            raise self._refresh_refused(str(exc), retried=self._api.stats.retries > retries) from None
        except ApiError as exc:
            if exc.status == 403:
                raise blocked_error(self.connection, f"POST {TOKEN_PATH}") from None
            raise DeadCredential(
                self.connection,
                f"amoCRM refused the token request ({str(exc).split(': ', 1)[-1]}). Check the client id, client secret and "
                f"redirect_uri of the integration (environment variables {self._client_id.env_var}, "
                f"{self._client_secret.env_var}; redirect_uri in sources.yaml).",
            ) from None
        data = response.data
        access = data.get("access_token") if isinstance(data, dict) else None
        refresh = data.get("refresh_token") if isinstance(data, dict) else None
        if not isinstance(access, str) or not isinstance(refresh, str) or not access or not refresh:
            raise ExtractError(
                self.connection,
                f"amoCRM answered POST {TOKEN_PATH} without an access and a refresh token; the previous "
                "refresh token may have been consumed: if the next run reports it revoked, re-authorise",
            )
        expires_in = data.get("expires_in")
        lifetime = expires_in if isinstance(expires_in, int) and expires_in > 0 else 86400
        pair = TokenPair(
            access_token=access,
            refresh_token=refresh,
            expires_at=datetime.fromtimestamp(self._now(), UTC) + timedelta(seconds=lifetime),
            seeded_from=self._pair.seeded_from,
        )
        self._store.save(pair)  # committed before anything uses it
        self._pair = pair
        self._refused = False
        self.refreshes += 1

    def _refresh_refused(self, detail: str, retried: bool) -> DeadCredential:
        variable = self._refresh_secret.env_var
        if "client authentication failed" in detail.lower():
            return DeadCredential(
                self.connection,
                "amoCRM refused the integration's client credentials (Client authentication failed). "
                "Check the client id and secret of the integration in amoCRM and the environment "
                f"variables {self._client_id.env_var} and {self._client_secret.env_var}.",
            )
        hint = "Token has been revoked" if "revoked" in detail.lower() else "refresh token refused"
        why = (
            "an earlier attempt of this refresh got no usable answer (a 5xx, a dropped connection or a "
            "cut body): amoCRM most likely rotated the token in it, and the new one never arrived"
            if retried
            else "it was used already or revoked"
        )
        return DeadCredential(
            self.connection,
            f"amoCRM refused the refresh token ({hint}): {why}, and only a "
            "person can issue a new one. Re-authorise the integration in amoCRM (Settings > "
            f"Integrations), then put the new refresh token in the environment variable {variable}; "
            "the next run starts from it.",
        )

    def refused(self, where: str, detail: str) -> DeadCredential:
        return DeadCredential(
            self.connection,
            f"amoCRM refused a freshly issued access token on {where} ({detail}): the integration was "
            "probably disabled or lost its access. Re-authorise the integration in amoCRM and put the new "
            f"refresh token in the environment variable {self._refresh_secret.env_var}.",
        )


Auth = LongLivedToken | OAuthSession
