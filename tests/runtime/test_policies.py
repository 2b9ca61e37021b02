"""The small policies, each on its own (fake `next`), plus redirects over real sockets."""

from __future__ import annotations

import base64
import logging
from typing import Any

import attrs
import pytest
from reporting_runtime import (
    ApiClient,
    BasicAuth,
    BearerAuth,
    HeaderPairAuth,
    HeadersPolicy,
    IdempotencyKeyPolicy,
    LoggingPolicy,
    Operation,
    Pipeline,
    Policy,
    RedirectPolicy,
    ReportingError,
    Request,
    Response,
    RetryConfig,
    Transport,
    UserAgentPolicy,
)
from reporting_runtime.messages import Headers
from zuora_reporting_client.errors import ERROR_READER as ZUORA_ERROR_READER

SECRET = "sk_live_PLANTEDsecret0123456789"
ZUORA_SECRET = "zuora-PLANTED-secret-value"


def run(policy: Policy, request: Request, reply: Response | None = None) -> Request:
    """Send through one policy with a fake next; return what reached the wire."""
    seen: list[Request] = []

    def fake_next(req: Request) -> Response:
        seen.append(req)
        return reply or Response(None, request=req, status=200, headers=Headers(), content=b"")

    policy.send(request, fake_next)
    return seen[0]


def req(method: str = "GET", **headers: str) -> Request:
    return Request(method=method, url="https://api.example.com/v1/x", headers=dict(headers))


def test_user_agent_is_set_unless_present() -> None:
    assert run(UserAgentPolicy("rg/1"), req()).header("user-agent") == "rg/1"
    assert run(UserAgentPolicy("rg/1"), req(**{"User-Agent": "mine"})).header("User-Agent") == (
        "mine"
    )


def test_headers_policy_drops_none_and_request_headers_win() -> None:
    policy = HeadersPolicy({"Stripe-Version": "2024-06-20", "Stripe-Account": None})
    sent = run(policy, req(**{"stripe-version": "override"}))
    assert sent.headers == {"stripe-version": "override"}
    assert run(policy, req()).headers == {"Stripe-Version": "2024-06-20"}


def test_bearer_auth_sets_header_and_hides_key() -> None:
    auth = BearerAuth(SECRET)
    assert run(auth, req()).header("Authorization") == f"Bearer {SECRET}"
    assert SECRET not in repr(auth)
    assert auth.secret_header_names == {"Authorization"}


def test_basic_auth_uses_key_as_user_name() -> None:
    auth = BasicAuth(SECRET)
    value = run(auth, req()).header("Authorization")
    assert value == "Basic " + base64.b64encode(f"{SECRET}:".encode()).decode()
    assert SECRET not in repr(auth)
    assert auth.secret_header_names == {"Authorization"}


def test_header_pair_auth_names_its_headers() -> None:
    auth = HeaderPairAuth(
        {"apiAccessKeyId": "user@example.com", "apiSecretAccessKey": ZUORA_SECRET}
    )
    sent = run(auth, req())
    assert sent.headers == {
        "apiAccessKeyId": "user@example.com",
        "apiSecretAccessKey": ZUORA_SECRET,
    }
    assert auth.secret_header_names == {"apiAccessKeyId", "apiSecretAccessKey"}
    assert ZUORA_SECRET not in repr(auth)
    assert "user@example.com" not in repr(auth)


def test_auth_replaces_a_differently_cased_header() -> None:
    sent = run(BearerAuth("k"), req(authorization="Bearer old"))
    assert sent.headers == {"Authorization": "Bearer k"}


def test_idempotency_key_only_on_post_and_not_overwritten() -> None:
    policy = IdempotencyKeyPolicy()
    assert run(policy, req("GET")).header("Idempotency-Key") is None
    first = run(policy, req("POST")).header("Idempotency-Key")
    second = run(policy, req("POST")).header("Idempotency-Key")
    assert first
    assert second
    assert first != second
    assert len(first) == 36
    assert run(policy, req("POST", **{"idempotency-key": "k1"})).header("Idempotency-Key") == "k1"


def test_pipeline_runs_policies_in_order() -> None:
    order: list[str] = []

    @attrs.define
    class Mark(Policy):
        name: str

        def on_request(self, request: Request) -> Request:
            order.append(self.name)
            return request

    class Wire(Transport):
        def send(self, request: Request, *, stream: bool = False, retries: Any = None) -> Response:
            order.append("wire")
            return Response(None, request=request, status=204, headers=Headers(), content=b"")

    pipeline = Pipeline([Mark("a"), Mark("b")], Wire())
    response = pipeline.send(req())
    assert order == ["a", "b", "wire"]
    assert response.status == 204
    # The chain is composed once, but a pipeline given other policies sends through them.
    pipeline.policies = (Mark("c"),)
    order.clear()
    pipeline.send(req(), stream=True)
    assert order == ["c", "wire"]


def test_each_policy_hears_the_answer_to_its_own_request() -> None:
    heard: list[tuple[str, str | None]] = []

    @attrs.define
    class Tag(Policy):
        name: str

        def on_request(self, request: Request) -> Request:
            return request.evolve(headers={**request.headers, "X-Last": self.name})

        def on_response(self, request: Request, response: Response) -> Response:
            heard.append((self.name, request.header("X-Last")))
            return response

    class Wire(Transport):
        def send(self, request: Request, *, stream: bool = False, retries: Any = None) -> Response:
            return Response(None, request=request, status=204, headers=Headers(), content=b"")

    Pipeline([Tag("a"), Tag("b"), Tag("c")], Wire()).send(req())
    assert heard == [("c", "c"), ("b", "b"), ("a", "a")]


def test_request_evolve_keeps_every_other_field() -> None:
    scrubber = lambda text: text  # noqa: E731
    original = Request(
        method="POST",
        url="https://api.example.com/v1/x",
        headers={"A": "1"},
        body=b"x=1",
        operation="op",
        provider="p",
        scrubber=scrubber,
        deadline=12.5,
        read_timeout=3.0,
        url_is_credential=True,
    )
    changed = original.evolve(headers={"B": "2"}, idempotent=True)
    assert changed == attrs.evolve(original, headers={"B": "2"}, idempotent=True)
    assert (changed.scrubber, changed.deadline, changed.read_timeout) == (scrubber, 12.5, 3.0)
    assert changed.url_is_credential
    assert original.headers == {"A": "1"}
    assert not original.idempotent


# Redirects over real sockets.

GET = Operation(operation_id="download", method="GET", path="/file")


def client_for(server: Any, auth: Any) -> ApiClient:
    return ApiClient(
        provider="zuora",
        base_url=server.url,
        auth=auth,
        retry=RetryConfig(total=0),
        error_reader=ZUORA_ERROR_READER,
    )


def test_same_host_redirect_is_followed_with_credentials(server: Any) -> None:
    server.reply(302, b"", headers={"Location": "/moved"})
    server.reply(200, b"csv,data", headers={"Content-Type": "text/csv"})
    response = client_for(server, BearerAuth(SECRET)).request(GET)
    assert response.read() == b"csv,data"
    assert [s.path for s in server.seen] == ["/file", "/moved"]
    assert server.seen[1].headers["Authorization"] == f"Bearer {SECRET}"


def test_cross_host_redirect_is_refused_and_nothing_is_sent_there(
    server: Any, other_server: Any
) -> None:
    auth = HeaderPairAuth({"apiAccessKeyId": "me", "apiSecretAccessKey": ZUORA_SECRET})
    server.reply(
        307, b"", headers={"Location": f"{other_server.url}/bucket/f.csv?X-Amz-Signature=s"}
    )
    other_server.reply(200, b"a,b", headers={"Content-Type": "text/csv"})
    with pytest.raises(ReportingError, match=r"refused a redirect .* to another host"):
        client_for(server, auth).request(GET, headers={"Authorization": f"Bearer {SECRET}"})
    assert other_server.seen == []
    assert server.seen[0].headers["apiSecretAccessKey"] == ZUORA_SECRET


def test_cross_origin_opt_in_drops_authorization_and_auth_headers(
    server: Any, other_server: Any
) -> None:
    auth = HeaderPairAuth({"apiAccessKeyId": "me", "apiSecretAccessKey": ZUORA_SECRET})
    server.reply(
        307, b"", headers={"Location": f"{other_server.url}/bucket/f.csv?X-Amz-Signature=s"}
    )
    other_server.reply(200, b"a,b", headers={"Content-Type": "text/csv"})
    redirects = RedirectPolicy(cross_origin=True, secret_headers=auth.secret_header_names)
    pipeline = Pipeline([auth, redirects], Transport())
    request = Request(
        method="GET", url=f"{server.url}/file", headers={"Authorization": f"Bearer {SECRET}"}
    )
    response = pipeline.send(request)
    assert response.read() == b"a,b"
    hop = other_server.seen[0]
    assert hop.path == "/bucket/f.csv?X-Amz-Signature=s"
    lowered = {k.lower() for k in hop.headers}
    assert "authorization" not in lowered
    assert "apisecretaccesskey" not in lowered
    assert "apiaccesskeyid" not in lowered
    assert server.seen[0].headers["apiSecretAccessKey"] == ZUORA_SECRET


def test_redirect_loop_stops(server: Any) -> None:
    for _ in range(10):
        server.reply(302, b"", headers={"Location": "/file"})
    with pytest.raises(ReportingError, match="more than 3 redirects"):
        client_for(server, None).request(GET)
    assert len(server.seen) == 4


def test_see_other_after_post_becomes_get_without_body(server: Any) -> None:
    server.reply(303, b"", headers={"Location": "/result"})
    server.reply(200, b"{}")
    op = Operation(operation_id="make", method="POST", path="/make", body_encoding="json")
    client_for(server, None).request(op, body={"a": 1})
    assert (server.seen[1].method, server.seen[1].body) == ("GET", b"")


# Redacting logger.


def test_no_secret_reaches_any_log_record(
    server: Any, other_server: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)  # root: urllib3's own records are captured too
    auth = HeaderPairAuth({"apiAccessKeyId": "me", "apiSecretAccessKey": ZUORA_SECRET})
    server.reply(503, b"{}")
    server.reply(302, b"", headers={"Location": f"/f?X-Amz-Signature={ZUORA_SECRET}"})
    server.reply(200, b"ok", headers={"Set-Cookie": f"session={ZUORA_SECRET}"})
    client = ApiClient(
        provider="zuora",
        base_url=server.url,
        auth=auth,
        retry=RetryConfig(total=2, backoff_base=0.0),
        error_reader=ZUORA_ERROR_READER,
    )
    client.request(GET, query={"token": SECRET, "limit": 5}, headers={"X-Custom": SECRET})
    assert len(server.seen) == 3
    text = "\n".join(f"{r.name} {r.getMessage()}" for r in caplog.records)
    assert "reporting_runtime.http" in text  # the logger did log the exchanges
    assert "limit=5" in text
    assert "REDACTED" in text
    assert SECRET not in text
    assert ZUORA_SECRET not in text


def test_logging_shows_allow_listed_headers_and_elapsed(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="t")
    ticks = iter([1.0, 1.25])
    policy = LoggingPolicy(
        logging.getLogger("t"), loggable_headers=["Stripe-Version"], clock=lambda: next(ticks)
    )
    reply = Response(
        None,
        request=req(),
        status=200,
        headers=Headers([("Request-Id", "req_1"), ("Content-Type", "text/csv")]),
        content=b"",
    )
    run(policy, req(**{"Stripe-Version": "v", "Authorization": f"Bearer {SECRET}"}), reply)
    out, back = (r.getMessage() for r in caplog.records)
    assert "'Stripe-Version': 'v'" in out
    assert "'Authorization': 'REDACTED'" in out
    assert "200 in 250.0 ms (request id req_1)" in back
    assert "'Content-Type': 'text/csv'" in back


def test_idempotency_key_goes_in_the_header_the_api_names() -> None:
    policy = IdempotencyKeyPolicy(header="Acme-Replay-Token")
    sent = run(policy, req("POST"))
    assert sent.header("Acme-Replay-Token")
    assert sent.header("Idempotency-Key") is None
    assert sent.idempotent
    assert not run(policy, req("GET")).idempotent
