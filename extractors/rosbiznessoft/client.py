"""The HTTP side of RosBiznesSoft's XML API: session login, batched list actions, its errors.

Every request is a POST to ``<base_url>/api/xml/`` whose form field ``xml`` holds a
``<request>`` of ``<action>``s; several list actions travel in one request and come back in
one ``<response>``, matched by their ``uid``. The session id from the ``auth`` action goes
with every later request as the cookie ``sess_id``. A session that expired mid-run (an action
answered ``<status>false</status>`` with an error about the session or authorisation) is
renewed once with a new login and the same request is sent again.

The API publishes no rate limit and serves requests one after another, so requests go
through a modest client-side limiter (``requests_per_second`` of the connection, no burst).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape, quoteattr

from dwh.config.models import RosBiznesSoftSource
from extractors.common.errors import CredentialError, ExtractError, RetriesExhausted
from extractors.common.http import ApiError, Response
from extractors.common.source_client import SourceClient

API_PATH = "/api/xml/"
BURST = 1
# an action's error about the session rather than the request: log in again
_SESSION_PROBLEM = re.compile(r"сесси|авторизац|session|\bauth\b", re.IGNORECASE)
_DECLARATION = re.compile(r"<\?xml[^>]*\?>")

Row = dict[str, str]


class ActionError(ExtractError):
    """The API refused one action (``<status>false</status>``): its ``<error>`` text is kept."""

    def __init__(self, connection: str, error: str, message: str):
        self.error = error
        super().__init__(connection, message)


@dataclass
class ListAction:
    """One ``list`` action: a structure, the fields asked for, filters, order, a page."""

    structure: str
    fields: Sequence[str]
    filters: Sequence[tuple[str, str, str]] = ()  # (field, operation, value), all must hold
    order_by: str = "id"
    first: int = 0
    number: int = 100

    def xml(self, uid: str) -> str:
        fields = "".join(f"<{name}/>" for name in self.fields)
        filters = "".join(
            f"<filter><field>{escape(f)}</field><operation>{escape(op)}</operation><value>{escape(v)}</value></filter>"
            for f, op, v in self.filters
        )
        return (
            f"<action type='list' uid={quoteattr(uid)}><structure name={quoteattr(self.structure)}>"
            f"<fields>{fields}</fields><filters>{filters}</filters>"
            f"<orders><order><field>{escape(self.order_by)}</field><type>asc</type></order></orders>"
            f"<limit><first>{self.first}</first><number>{self.number}</number></limit>"
            "</structure></action>"
        )


@dataclass
class ActionResult:
    ok: bool
    rows: list[Row] = field(default_factory=list)
    error: str = ""
    element: ET.Element | None = None


def request_document(actions: Sequence[str]) -> str:
    return "<?xml version='1.0' encoding='utf8' ?><request>" + "".join(actions) + "</request>"


def parse_response(text: str) -> ET.Element:
    """The ``<response>`` element. Several documents glued together (the server answers each
    command with its own ``<?xml …?><response>`` at times) are read as one. ``ValueError`` on
    anything else, so that the client retries it."""
    body = _DECLARATION.sub("", text).strip()
    if len(re.findall(r"<response\b", body)) > 1:
        body = "<response>" + re.sub(r"</?response\s*>", "", body) + "</response>"
    try:
        root = ET.fromstring(body)
    except ET.ParseError as exc:
        raise ValueError(f"not well-formed XML ({exc})") from None
    if root.tag != "response":
        raise ValueError(f"an XML document whose root is <{root.tag}>, not <response>")
    return root


def action_result(element: ET.Element) -> ActionResult:
    status = (element.findtext("status") or "").strip().lower()
    if status not in ("true", "1"):
        return ActionResult(False, error=(element.findtext("error") or "").strip() or "(no error text)")
    holder = element.find("structure")
    holder = holder if holder is not None else element
    rows = [
        {child.tag: child.text or "" for child in item}
        for item in holder
        if len(item) and item.tag not in ("status", "error")
    ]
    return ActionResult(True, rows=rows, element=element)


def _all_answered(uids: Sequence[str]) -> Callable[[Response], str | None]:
    def check(response: Response) -> str | None:
        root: ET.Element = response.data
        answered = {a.get("uid") for a in root.iter("action")}
        missing = [u for u in uids if u not in answered]
        if missing and root.find("error") is None:
            return f"a response without the answer to action(s) {', '.join(missing)}"
        return None

    return check


class RosBiznesSoftClient(SourceClient):
    """One installation (one connection of ``sources.yaml``)."""

    def __init__(
        self,
        source: RosBiznesSoftSource,
        *,
        requests_per_second: float | None = None,
        burst: int = BURST,
        clock: Callable[[], float] | None = None,
        **options: Any,
    ):
        super().__init__(
            source.name,
            requests_per_second=requests_per_second or source.requests_per_second,
            burst=burst,
            timeout=source.timeout_seconds,
            clock=clock,
            **options,
        )
        self.source = source
        self.url = source.base_url.rstrip("/") + API_PATH
        self.api = self.http_client()
        self.sess_id: str | None = None
        self.logins = 0
        self._uid = 0
        self.api.auth_headers = self._cookie

    def _cookie(self) -> dict[str, str]:
        return {"Cookie": f"sess_id={self.sess_id}"} if self.sess_id else {}

    def _next_uid(self) -> str:
        self._uid += 1
        return str(self._uid)

    # -- requests ---------------------------------------------------------------------------
    def post(self, actions: Sequence[str], uids: Sequence[str], what: str) -> ET.Element:
        """One POST of ``actions`` (already XML); the parsed ``<response>``."""
        try:
            response = self.api.request(
                "POST",
                self.url,
                data={"xml": request_document(actions)},
                parse=parse_response,
                is_valid=_all_answered(uids),
                allow_empty=False,
            )
        except ApiError as exc:
            raise ExtractError(
                self.source.name,
                f"{self.url} answered HTTP {exc.status} to {what}: base_url must be the address of the "
                "RosBiznesSoft system (the XML API is served at <base_url>/api/xml/)",
            ) from exc
        except RetriesExhausted as exc:
            detail = str(exc).removeprefix(f"{self.source.name}: ")
            raise RetriesExhausted(self.source.name, f"{what}: {detail}") from exc
        root: ET.Element = response.data
        document_error = root.find("error")
        if document_error is not None and root.find("action") is None:
            raise ExtractError(
                self.source.name,
                f"the XML API refused the request for {what}: {(document_error.text or '').strip()}",
            )
        return root

    def login(self) -> None:
        user, password = self.source.username.get(), self.source.password.get()
        uid = self._next_uid()
        action = (
            f"<action type='auth' uid={quoteattr(uid)}><login>{escape(user)}</login>"
            f"<password>{escape(password)}</password></action>"
        )
        self.sess_id = None
        root = self.post([action], [uid], "the login (action auth)")
        result = action_result(_answer(root, uid))
        sess_id = (result.element.findtext("sess_id") or "").strip() if result.element is not None else ""
        if not result.ok or not sess_id:
            raise CredentialError(
                self.source.name, self._credential_message(result.error or "no sess_id in the answer")
            )
        self.sess_id = sess_id
        self.logins += 1

    def list_many(self, actions: Sequence[ListAction], what: str) -> list[ActionResult]:
        """Several list actions in one request; a dead session is renewed once."""
        if self.sess_id is None:
            self.login()
        for attempt in (1, 2):
            uids = [self._next_uid() for _ in actions]
            root = self.post([a.xml(u) for a, u in zip(actions, uids, strict=True)], uids, what)
            results = [action_result(_answer(root, u)) for u in uids]
            if not any(not r.ok and _SESSION_PROBLEM.search(r.error) for r in results):
                return results
            if attempt == 2:
                problem = next(r.error for r in results if not r.ok)
                raise CredentialError(
                    self.source.name,
                    f"the XML API refused a fresh session right after the login ({problem!r}): the user may "
                    "lack «Доступ по API» in Настройки, or the server drops sessions; ask its administrator",
                )
            self.login()
        raise AssertionError("unreachable")

    def _credential_message(self, problem: str) -> str:
        user, password = self.source.username.env_var, self.source.password.env_var
        return (
            f"RosBiznesSoft refused the login at {self.url} ({problem!r}). Check ${{{user}}} and ${{{password}}}: "
            "the user must exist, have the API access checkbox ticked in «Настройки», and the password "
            "must be current."
        )


def _answer(root: ET.Element, uid: str) -> ET.Element:
    for action in root.iter("action"):
        if action.get("uid") == uid:
            return action
    error = root.find("error")
    fake = ET.Element("action", uid=uid)
    ET.SubElement(fake, "status").text = "false"
    ET.SubElement(fake, "error").text = (
        (error.text or "") if error is not None else "no answer to this action"
    )
    return fake
