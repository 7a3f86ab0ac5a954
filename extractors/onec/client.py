"""The HTTP side of a 1C base's standard OData interface: Basic auth, paging, 1C's errors.

Every request asks for JSON (``$format=json``: 1C's default is Atom/XML). Sets are paged
with ``$top``/``$skip`` over a stable ``$orderby`` on the set's unique key; a page shorter
than ``$top`` is the last. ``$inlinecount`` is never sent: 1C is reported to ignore
``$skip``/``$top`` when it is. The query string is encoded with ``%20`` for spaces (never
``+``) and Cyrillic set names are percent-encoded as UTF-8.

1C has no published rate limit; a production base serves its users from the same server
processes, so requests go through a modest client-side limiter (``REQUESTS_PER_SECOND``,
no burst).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any
from urllib.parse import quote

import httpx

from dwh.config.models import OneCSource
from extractors.common.errors import CredentialError, ExtractError, RetriesExhausted
from extractors.common.http import ApiError, Response
from extractors.common.source_client import SourceClient

REQUESTS_PER_SECOND = 10.0  # no published limit: be gentle with a production base
BURST = 1  # no burst: never more than REQUESTS_PER_SECOND in any second
NOT_FOUND_CODE = "9"  # "Экземпляр сущности не найден": also what an unpublished set answers
# characters left as they are in a query value: OData's literal syntax reads better unescaped
_QUERY_SAFE = "$,'():"

Row = dict[str, Any]


class UnpublishedError(ExtractError):
    """The base does not publish an entity set over OData."""


def unpublished_message(set_names: Sequence[str]) -> str:
    names = ", ".join(set_names)
    return (
        f"the 1C base does not publish {names} over its standard OData interface. An administrator "
        "must add {it} to the OData composition (Состав стандартного интерфейса OData: in 1C, "
        "'Настройка стандартного интерфейса OData', or the function УстановитьСоставСтандартногоИнтерфейсаOData) "
        "and give the connection's user the right to read {it}; nothing was extracted from this base."
    ).replace("{it}", "them" if len(set_names) > 1 else "it")


def odata_error(body: str) -> tuple[str, str] | None:
    """``(code, message)`` of a 1C ``odata.error`` body, or None when the body is not one."""
    try:
        data = json.loads(body)
    except (json.JSONDecodeError, TypeError):
        return None
    error = data.get("odata.error") if isinstance(data, dict) else None
    if not isinstance(error, dict):
        return None
    message = error.get("message")
    text = message.get("value") if isinstance(message, dict) else message
    return str(error.get("code", "")), str(text or "")


def guid_filter(field: str, keys: Sequence[str]) -> str:
    """``Ref_Key eq guid'…' or Ref_Key eq guid'…'``."""
    return " or ".join(f"{field} eq guid'{key}'" for key in keys)


def _has_value_list(response: Response) -> str | None:
    data = response.data
    if not isinstance(data, dict) or not isinstance(data.get("value"), list):
        return "a 200 whose JSON has no 'value' list"
    return None


class OneCClient(SourceClient):
    """One 1C base (one connection of ``sources.yaml``)."""

    def __init__(
        self,
        source: OneCSource,
        *,
        requests_per_second: float = REQUESTS_PER_SECOND,
        burst: int = BURST,
        **options: Any,
    ):
        super().__init__(
            source.name,
            timeout=source.timeout_seconds,
            requests_per_second=requests_per_second,
            burst=burst,
            **options,
        )
        self.source = source
        self.base_url = source.base_url.rstrip("/")
        self.api = self.http_client(
            auth=httpx.BasicAuth(source.username.get(), source.password.get()),
            headers={"Accept": "application/json"},
        )

    # -- requests -----------------------------------------------------------------------
    def url(self, set_name: str, options: dict[str, str]) -> str:
        query = "&".join(
            f"{k}={quote(v, safe=_QUERY_SAFE)}" for k, v in {"$format": "json", **options}.items()
        )
        return f"{self.base_url}/{quote(set_name)}?{query}"

    def get(self, set_name: str, options: dict[str, str], what: str) -> Response:
        """One GET with 1C's errors turned into messages a person can act on."""
        try:
            return self.api.request("GET", self.url(set_name, options), is_valid=_has_value_list)
        except CredentialError as exc:
            raise CredentialError(self.source.name, self._credential_message()) from exc
        except ApiError as exc:
            raise self._api_error(exc, set_name, what) from exc
        except RetriesExhausted as exc:
            detail = str(exc).removeprefix(f"{self.source.name}: ")
            raise RetriesExhausted(self.source.name, f"reading {what}: {detail}") from exc

    def published_sets(self) -> list[str]:
        """The entity sets in the service document (what the OData composition holds)."""
        response = self.get("", {}, "the OData service document")
        return [str(item.get("name")) for item in response.data["value"] if isinstance(item, dict)]

    def pages(
        self,
        set_name: str,
        orderby: str,
        page_size: int,
        *,
        filter_: str | None = None,
        select: str | None = None,
    ) -> Iterator[list[Any]]:
        """The set's records page by page (``$top``/``$skip`` over ``orderby``)."""
        skip = 0
        while True:
            options = {"$orderby": orderby, "$top": str(page_size), "$skip": str(skip)}
            if filter_:
                options["$filter"] = filter_
            if select:
                options["$select"] = select
            rows = self.get(set_name, options, set_name).data["value"]
            yield rows
            if len(rows) < page_size:
                return
            skip += len(rows)

    # -- errors -------------------------------------------------------------------------
    def _credential_message(self) -> str:
        user, password = self.source.username.env_var, self.source.password.env_var
        return (
            f"1C refused the user and password (HTTP 401 from {self.base_url}). Check ${{{user}}} and "
            f"${{{password}}}: the user must exist in the base, have the right to use the standard OData "
            "interface, and the password must be current."
        )

    def _api_error(self, exc: ApiError, set_name: str, what: str) -> ExtractError:
        parsed = odata_error(exc.body)
        if exc.status == 404 and parsed is None:
            return ExtractError(
                self.source.name,
                f"{self.base_url} answered HTTP 404 with a web server page, not 1C: base_url must be the "
                "OData publication of the base, ending in /odata/standard.odata",
            )
        if exc.status == 404 and parsed[0] == NOT_FOUND_CODE and set_name:
            return UnpublishedError(self.source.name, unpublished_message([set_name]))
        if parsed is not None:
            code, text = parsed
            return ExtractError(
                self.source.name,
                f"1C refused the request for {what} (HTTP {exc.status}, odata.error code {code}): {text}",
            )
        return ExtractError(
            self.source.name, f"reading {what}: {str(exc).removeprefix(f'{self.source.name}: ')}"
        )
