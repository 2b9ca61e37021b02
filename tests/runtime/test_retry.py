"""RetryPolicy: urllib3's loop with our rules, against a real socket on 127.0.0.1."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import pytest
from reporting_runtime import (
    ApiClient,
    NotFoundError,
    Operation,
    RateLimitError,
    RetryConfig,
    RetryPolicy,
    ServerError,
    TransportError,
)

GET = Operation(operation_id="get_thing", method="GET", path="/thing")
POST = Operation(operation_id="make_thing", method="POST", path="/things", body_encoding="form")
NOW = 1_750_000_000.0


class FakeClock:
    """Monotonic clock that only moves when the policy sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def make_client(
    server: Any,
    clock: FakeClock,
    *,
    config: RetryConfig | None = None,
    idempotency_keys: bool = True,
    rng: float = 0.5,
) -> ApiClient:
    policy = RetryPolicy(
        config or RetryConfig(total=3, backoff_base=1.0, backoff_max=8.0, budget_seconds=100),
        sleep=clock.sleep,
        clock=clock,
        wall_clock=lambda: NOW,
        rng=lambda: rng,
    )
    return ApiClient(
        provider="stripe",
        base_url=server.url,
        retry=policy,
        idempotency_header="Idempotency-Key" if idempotency_keys else None,
        retry_verdict_header="Stripe-Should-Retry",
    )


def test_retries_a_503_then_succeeds_with_full_jitter_backoff(server: Any) -> None:
    clock = FakeClock()
    for _ in range(3):
        server.reply(503)
    server.reply(200, '{"ok": true}')
    response = make_client(server, clock, rng=1.0).request(GET)
    assert response.json() == {"ok": True}
    assert len(server.seen) == 4
    # rng() == 1.0 gives the ceiling: base * 2**(n-1), capped at backoff_max.
    assert clock.sleeps == [1.0, 2.0, 4.0]


def test_jitter_is_a_fraction_of_the_ceiling(server: Any) -> None:
    clock = FakeClock()
    server.reply(500)
    server.reply(500)
    make_client(server, clock, rng=0.25).request(GET)
    assert clock.sleeps == [0.25, 0.5]


def test_retry_after_seconds_is_honoured(server: Any) -> None:
    clock = FakeClock()
    server.reply(429, headers={"Retry-After": "7"})
    server.reply(200)
    make_client(server, clock).request(GET)
    assert clock.sleeps == [7.0]


def test_retry_after_http_date_is_honoured(server: Any) -> None:
    clock = FakeClock()
    when = format_datetime(datetime.fromtimestamp(NOW + 12, UTC), usegmt=True)
    server.reply(503, headers={"Retry-After": when})
    server.reply(200)
    make_client(server, clock).request(GET)
    assert clock.sleeps == [12.0]


def test_unreadable_retry_after_falls_back_to_backoff(server: Any) -> None:
    clock = FakeClock()
    server.reply(503, headers={"Retry-After": "soon-ish"})
    server.reply(200)
    make_client(server, clock, rng=1.0).request(GET)
    assert clock.sleeps == [1.0]


def test_stripe_should_retry_true_forces_a_retry_of_a_400(server: Any) -> None:
    clock = FakeClock()
    server.reply(
        400, '{"error": {"message": "lock timeout"}}', headers={"Stripe-Should-Retry": "true"}
    )
    server.reply(200)
    assert make_client(server, clock).request(GET).status == 200
    assert len(server.seen) == 2


def test_stripe_should_retry_false_forbids_retrying_a_503(server: Any) -> None:
    clock = FakeClock()
    server.reply(503, '{"error": {"message": "nope"}}', headers={"Stripe-Should-Retry": "false"})
    with pytest.raises(ServerError):
        make_client(server, clock).request(GET)
    assert len(server.seen) == 1
    assert clock.sleeps == []


def test_post_without_idempotency_key_is_not_retried(server: Any) -> None:
    clock = FakeClock()
    server.reply(503)
    with pytest.raises(ServerError):
        make_client(server, clock, idempotency_keys=False).request(POST, body={"a": 1})
    assert len(server.seen) == 1


def test_post_with_idempotency_key_is_retried_with_the_same_key(server: Any) -> None:
    clock = FakeClock()
    server.reply(500)
    server.reply(502)
    server.reply(200, '{"id": "x"}')
    response = make_client(server, clock).request(POST, body={"a": 1})
    assert response.status == 200
    keys = [seen.headers.get("Idempotency-Key") for seen in server.seen]
    assert len(keys) == 3
    assert keys[0]
    assert keys.count(keys[0]) == 3
    assert [seen.body for seen in server.seen] == [b"a=1"] * 3


def test_a_caller_supplied_key_is_kept(server: Any) -> None:
    clock = FakeClock()
    server.reply(500)
    make_client(server, clock).request(POST, body={"a": 1}, headers={"Idempotency-Key": "mine"})
    assert [s.headers["Idempotency-Key"] for s in server.seen] == ["mine", "mine"]


def test_attempt_budget_exhausted_returns_the_last_response_as_an_error(server: Any) -> None:
    clock = FakeClock()
    for _ in range(5):
        server.reply(503, '{"error": {"message": "down"}}', headers={"Request-Id": "req_last"})
    with pytest.raises(ServerError) as info:
        make_client(server, clock).request(GET)
    assert len(server.seen) == 4  # first attempt + total=3 retries
    assert info.value.request_id == "req_last"
    assert info.value.message == "down"


def test_time_budget_stops_retrying(server: Any) -> None:
    clock = FakeClock()
    config = RetryConfig(total=10, backoff_base=4.0, backoff_max=100.0, budget_seconds=10)
    for _ in range(10):
        server.reply(503)
    with pytest.raises(ServerError):
        make_client(server, clock, config=config, rng=1.0).request(GET)
    # Sleeps 4 then 8 would pass 10 s: only the first retry happens.
    assert clock.sleeps == [4.0]
    assert len(server.seen) == 2


def test_retry_after_beyond_the_budget_is_not_waited_for(server: Any) -> None:
    clock = FakeClock()
    server.reply(429, '{"error": {"code": "rate_limit"}}', headers={"Retry-After": "3600"})
    with pytest.raises(RateLimitError) as info:
        make_client(server, clock).request(GET)
    assert info.value.retry_after == 3600.0
    assert clock.sleeps == []


def test_status_not_in_the_list_is_not_retried(server: Any) -> None:
    clock = FakeClock()
    server.reply(404, '{"error": {"message": "no"}}')
    with pytest.raises(NotFoundError, match="HTTP 404"):
        make_client(server, clock).request(GET)
    assert len(server.seen) == 1


def test_dropped_connection_on_get_is_retried(server: Any) -> None:
    clock = FakeClock()
    server.reply(close=True)
    server.reply(200, '{"ok": 1}')
    assert make_client(server, clock).request(GET).json() == {"ok": 1}
    assert len(server.seen) == 2


def test_connection_refused_becomes_transport_error_after_retries() -> None:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    clock = FakeClock()
    client = ApiClient(
        provider="stripe",
        base_url=f"http://127.0.0.1:{port}",
        retry=RetryPolicy(RetryConfig(total=2), sleep=clock.sleep, clock=clock),
    )
    with pytest.raises(TransportError, match=r"could not connect to 127\.0\.0\.1") as info:
        client.request(GET, query={"token": "sekrit-value"})
    assert len(clock.sleeps) == 2
    assert "sekrit" not in str(info.value)
    assert info.value.__cause__ is None


def test_each_request_gets_its_own_retry_built_as_the_constructor_would() -> None:
    from reporting_runtime import Request as Req
    from reporting_runtime.retry import BackoffRetry

    now = [100.0]
    policy = RetryPolicy(RetryConfig(total=4, budget_seconds=10), clock=lambda: now[0])
    post = policy.build_retry(Req(method="POST", url="http://x/", idempotent=True, deadline=150.0))
    now[0] = 200.0
    get = policy.build_retry(Req(method="GET", url="http://x/"))
    assert type(post) is BackoffRetry
    assert post is not get
    assert (post.deadline, post.hard_deadline) == (110.0, 150.0)
    assert (get.deadline, get.hard_deadline) == (210.0, None)
    assert "POST" in post.allowed_methods
    assert "POST" not in get.allowed_methods
    built = BackoffRetry(
        total=4,
        redirect=False,
        allowed_methods=get.allowed_methods,
        status_forcelist=frozenset(RetryConfig().retry_statuses),
        backoff_factor=0.5,
        backoff_max=20.0,
        raise_on_status=False,
        deadline=210.0,
        clock=get.clock,
        sleeper=get.sleeper,
        wall_clock=get.wall_clock,
        rng=get.rng,
    )
    assert vars(get) == vars(built)
    # A retry's own progress never reaches the next request's.
    assert get.increment("GET", "http://x/", error=ConnectionError()).total == 3
    assert policy.build_retry(Req(method="GET", url="http://x/")).total == 4
    # A new config (or verdict header) is used from the next request on.
    policy.config = RetryConfig(total=1)
    policy.verdict_header = "Retry-Verdict"
    after = policy.build_retry(Req(method="GET", url="http://x/"))
    assert (after.total, after.verdict_header) == (1, "Retry-Verdict")


def test_request_evolve_is_attrs_evolve() -> None:
    import attrs
    from reporting_runtime import Request as Req

    request = Req(method="GET", url="http://x/?a=1", headers={"A": "1"}, deadline=5.0)
    changed = request.evolve(method="POST", idempotent=True)
    assert changed == attrs.evolve(request, method="POST", idempotent=True)
    assert (request.method, request.idempotent) == ("GET", False)
    with pytest.raises(TypeError):
        request.evolve(no_such_field=1)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        changed.method = "PUT"  # type: ignore[misc]
