"""The retrying client against a real HTTP server on loopback, answering what we script."""

from __future__ import annotations

from collections import deque

import pytest

from extractors.common.errors import CredentialError, RetriesExhausted
from extractors.common.http import ApiClient, ApiError
from extractors.common.ratelimit import TokenBucketLimiter
from sandbox.standin import Request, Response, StandIn


class Scripted(StandIn):
    """Answers each request with the next scripted response (then 200 {"ok": true})."""

    def __init__(self, script: list[Response]):
        super().__init__()
        self.script = deque(script)

    def handle(self, request: Request) -> Response:
        return self.script.popleft() if self.script else Response.json(200, {"ok": True})


@pytest.fixture
def serve():
    started: list[StandIn] = []

    def _serve(script: list[Response]) -> tuple[Scripted, ApiClient]:
        standin = Scripted(script)
        standin.start()
        started.append(standin)
        client = ApiClient("test_conn", TokenBucketLimiter(rate=1000, burst=1000), sleep=lambda s: None, seed=1,
                           max_attempts=5)  # fmt: skip
        return standin, client

    yield _serve
    for s in started:
        s.stop()


def test_retries_429_5xx_and_invalid_json_then_succeeds(serve) -> None:
    standin, client = serve([
        Response(429, b"<html>Too Many Requests</html>", "text/html"),
        Response(503, b'{"error":"QUERY_LIMIT_EXCEEDED"}'),
        Response(500, b"oops", "text/plain"),
        Response(200, b'{"truncated": [1, 2'),
    ])  # fmt: skip
    response = client.request("GET", standin.url + "/x")
    assert response.data == {"ok": True}
    assert client.stats.requests == 5
    assert client.stats.retries == 4
    assert client.stats.by_status == {429: 1, 503: 1, 500: 1, 200: 2}
    assert len(standin.log) == 5


def test_gives_up_with_a_message_naming_the_connection_and_the_last_problem(serve) -> None:
    standin, client = serve([Response(502, b"bad gateway", "text/plain")] * 10)
    with pytest.raises(RetriesExhausted, match=r"test_conn: gave up after 5 attempts; last: HTTP 502"):
        client.request("GET", standin.url + "/y")
    assert len(standin.log) == 5


def test_unauthorized_refreshes_once_then_is_a_credential_error(serve) -> None:
    standin, client = serve(
        [Response(401, b'{"title":"Unauthorized"}'), Response(401, b'{"title":"Unauthorized"}')]
    )
    refreshed = []
    client.on_unauthorized = lambda: refreshed.append(True)
    with pytest.raises(CredentialError, match="test_conn: the API refused the credentials"):
        client.request("GET", standin.url + "/z")
    assert refreshed == [True]


def test_refreshed_token_is_used_on_the_retry(serve) -> None:
    standin, client = serve([Response(401, b"{}")])
    token = {"value": "old"}
    client.auth_headers = lambda: {"Authorization": f"Bearer {token['value']}"}
    client.on_unauthorized = lambda: token.update(value="new")
    client.request("GET", standin.url + "/w")
    assert [r.headers["authorization"] for r in standin.log] == ["Bearer old", "Bearer new"]


def test_client_errors_are_not_retried(serve) -> None:
    standin, client = serve([Response(400, b'{"title":"Bad Request"}')])
    with pytest.raises(ApiError) as caught:
        client.request("GET", standin.url + "/v")
    assert caught.value.status == 400
    assert len(standin.log) == 1


def test_webhook_secret_is_redacted_from_messages(serve) -> None:
    standin, client = serve([Response(404, b"no such method", "text/plain")])
    with pytest.raises(ApiError) as caught:
        client.request("POST", standin.url + "/rest/1/s3cretcode/crm.deal.list.json")
    assert "s3cretcode" not in str(caught.value)
    assert "/rest/1/***/crm.deal.list.json" in str(caught.value)


def test_dropped_connection_is_retried(serve) -> None:
    standin, client = serve([])
    standin.faults.drop_rate = 1.0
    with pytest.raises(RetriesExhausted, match="RemoteProtocolError|ReadError|ConnectError"):
        client.request("GET", standin.url + "/u")
    assert len(standin.log) == 5
