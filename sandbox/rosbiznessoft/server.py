"""A stand-in of one RosBiznesSoft CRM (RBS360) installation: its XML API at ``/api/xml/``.

Every request is a POST whose form field ``xml`` holds a ``<request>`` of ``<action>``s; the
answer is one ``<response>`` with an ``<action>`` per action, in order. The structure and
field names come from the stand-in's ``Installation`` (see installation.py), the way a
connection's ``objects:``/``fields:`` name them. See README.md here.
"""

from __future__ import annotations

import hashlib
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import parse_qsl

from sandbox.rosbiznessoft import xmlapi
from sandbox.rosbiznessoft.installation import DEFAULT, Installation
from sandbox.rosbiznessoft.render import all_fields, render_structure
from sandbox.standin import Faults, Request, Response, StandIn, TokenBucket
from sandbox.world.model import World

API_PATH = "/api/xml/"
RBS_USER = "api_user"
# the installation's own protection: RosBiznesSoft publishes no limit; this one is the stand-in's
REQUESTS_PER_SECOND = 5
SESSION_TTL_SECONDS = 1800.0  # a session unused this long is gone
# connection name -> the environment variables sources.yaml reads the credentials from
CREDENTIAL_ENV: dict[str, tuple[str, str]] = {"rbs": ("RBS_USER", "RBS_PASSWORD")}

WRONG_LOGIN = "Неверный логин или пароль"
NO_SESSION = "Сессия не найдена или истекла. Необходима авторизация (action type='auth')"
_FORM_PAGE = (
    "<!DOCTYPE html><html><head><meta charset='utf-8'><title>API XML</title></head><body>"
    "<h1>Интеграция API (XML)</h1><form method='post' action='/api/xml/'>"
    "<textarea name='xml' rows='20' cols='100'></textarea><br><input type='submit' value='Отправить'>"
    "</form></body></html>"
)
_NOT_FOUND_PAGE = (
    "<html>\r\n<head><title>404 Not Found</title></head>\r\n<body>\r\n<center><h1>404 Not Found</h1></center>\r\n"
    "<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n"
)
_UNAVAILABLE_PAGE = (
    "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n"
    "<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n"
    "</body>\r\n</html>\r\n"
)


def credential_env_names(source_name: str) -> tuple[str, str]:
    """The variables holding a connection's login and password (``RBS_*`` for ``rbs``)."""
    upper = source_name.upper()
    return CREDENTIAL_ENV.get(source_name, (f"{upper}_USER", f"{upper}_PASSWORD"))


def rbs_password(seed: int, source_name: str) -> str:
    return hashlib.sha256(f"rosbiznessoft|{source_name}|{seed}".encode()).hexdigest()[:16]


@dataclass
class Session:
    last_used: float
    requests: int = 0


class RosBiznesSoftStandIn(StandIn):
    """One installation (one ``Source`` of system ``rosbiznessoft``) over its XML API."""

    name = "RosBiznesSoft XML API"

    def __init__(
        self,
        world: World,
        source_name: str,
        faults: Faults | None = None,
        clock: Callable[[], float] = time.monotonic,
        installation: Installation = DEFAULT,
        requests_per_second: float = REQUESTS_PER_SECOND,
        session_ttl: float = SESSION_TTL_SECONDS,
    ):
        super().__init__(faults or Faults(), clock)
        source = world.source(source_name)
        if source.system != "rosbiznessoft":
            raise ValueError(f"source {source_name!r} is a {source.system} source, not a RosBiznesSoft CRM")
        self.world, self.source_name, self.installation = world, source_name, installation
        self.user = RBS_USER
        self.password = rbs_password(world.seed, source_name)
        self.session_ttl = session_ttl
        self.sessions: dict[str, Session] = {}
        self.logins = 0  # successful auth actions, for tests
        # (structure meaning, record id) -> {field meaning: text}: served instead of the world's
        # values, for tests of records an extractor must reject
        self.overrides: dict[tuple[str, str], dict[str, str]] = {}
        self._bucket = TokenBucket(requests_per_second, requests_per_second, clock)
        self._one_at_a_time = threading.Lock()  # "requests are processed one after another"
        self._random = random.Random(f"rbs-sessions|{source_name}|{world.seed}")

    def credentials(self) -> dict[str, str]:
        user_var, password_var = credential_env_names(self.source_name)
        return {user_var: self.user, password_var: self.password}

    def connection_settings(self) -> dict[str, Any]:
        """A sources.yaml entry (without ``name``) pointed at this stand-in."""
        user_var, password_var = credential_env_names(self.source_name)
        return {
            "type": "rosbiznessoft",
            "base_url": self.url,
            "username": f"${{{user_var}}}",
            "password": f"${{{password_var}}}",
            "timezone": self.world.source(self.source_name).timezone,
            **self.installation.connection_settings(),
        }

    def expire_sessions(self) -> None:
        """Every session dies now, as after a restart of the server."""
        with self.lock:
            self.sessions.clear()

    # -- StandIn ------------------------------------------------------------------------------
    def rate_limit_error(self) -> Response:
        return Response(503, _UNAVAILABLE_PAGE.encode("utf-8"), "text/html")

    def handle(self, request: Request) -> Response:
        if request.path not in (API_PATH, API_PATH.rstrip("/")):
            return Response(404, _NOT_FOUND_PAGE.encode("utf-8"), "text/html")
        if not self._bucket.take():
            return self.rate_limit_error()
        xml_text = self._xml_field(request)
        if xml_text is None:  # a browser, or a POST without the form field: the page with the form
            return Response(200, _FORM_PAGE.encode("utf-8"), "text/html")
        with self._one_at_a_time:
            body = self._answer(xml_text, _cookie(request, "sess_id"))
        return Response(200, body.encode("utf-8"), "text/xml")

    # -- internals ----------------------------------------------------------------------------
    @staticmethod
    def _xml_field(request: Request) -> str | None:
        if request.method != "POST":
            return None
        content_type = request.headers.get("content-type", "")
        if "application/x-www-form-urlencoded" not in content_type:
            return None
        try:
            form = parse_qsl(request.body.decode("utf-8"), keep_blank_values=True)
        except UnicodeDecodeError:
            return None
        return next((v for k, v in form if k == "xml"), None)

    def _answer(self, xml_text: str, sess_id: str | None) -> str:
        try:
            actions = xmlapi.parse_request(xml_text)
        except xmlapi.RequestError as exc:
            return xmlapi.response([xmlapi.error_answer(None, str(exc))])
        session_ok = self._use_session(sess_id)
        parts = []
        for action in actions:
            if action.problem is not None:
                parts.append(xmlapi.error_answer(action, action.problem))
            elif action.type == "auth":
                parts.append(self._auth(action))
            elif not session_ok:
                parts.append(xmlapi.error_answer(action, NO_SESSION))
            elif action.type == "list":
                parts.append(self._list(action))
            elif action.type in ("add", "edit", "delete", "wipe", "fileAdd"):
                parts.append(
                    xmlapi.error_answer(
                        action, f"Недостаточно прав пользователя {self.user} для {action.type}"
                    )
                )
            else:
                parts.append(
                    xmlapi.error_answer(action, f"Неизвестный тип запроса: {action.type or '(пусто)'}")
                )
        return xmlapi.response(parts)

    def _use_session(self, sess_id: str | None) -> bool:
        with self.lock:
            session = self.sessions.get(sess_id or "")
            if session is None:
                return False
            now = self.clock()
            limit = self.faults.expire_token_after
            if now - session.last_used > self.session_ttl or (limit and session.requests >= limit):
                del self.sessions[sess_id or ""]
                return False
            session.last_used = now
            session.requests += 1
            return True

    def _auth(self, action: xmlapi.Action) -> str:
        if action.text("login") != self.user or action.text("password") != self.password:
            return xmlapi.error_answer(action, WRONG_LOGIN)
        with self.lock:
            sess_id = f"{self._random.getrandbits(128):032x}"
            self.sessions[sess_id] = Session(self.clock())
            self.logins += 1
        return xmlapi.auth_answer(action, sess_id)

    def _list(self, action: xmlapi.Action) -> str:
        meaning = self.installation.served_structures().get(action.structure)
        if meaning is None:
            return xmlapi.error_answer(action, f"Структура {action.structure or '(не указана)'} не найдена")
        try:
            with self.lock:
                rows = render_structure(self.world, self.source_name, self.installation, meaning)
                rows = self._overridden(meaning, rows)
            return xmlapi.list_answer(
                action, xmlapi.select(action, rows, all_fields(self.installation, meaning))
            )
        except xmlapi.RequestError as exc:
            return xmlapi.error_answer(action, str(exc))

    def _overridden(self, meaning: str, rows: list[dict[str, str]]) -> list[dict[str, str]]:
        if not self.overrides:
            return rows
        id_name = self.installation.field("id")
        out = []
        for row in rows:
            edits = self.overrides.get((meaning, row[id_name]))
            out.append({**row, **{self.installation.field(m): v for m, v in edits.items()}} if edits else row)
        return out


def _cookie(request: Request, name: str) -> str | None:
    header = request.headers.get("cookie")
    if not header:
        return None
    try:
        jar = SimpleCookie(header)
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None
