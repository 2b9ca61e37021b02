"""A raw-socket server impersonating Zuora lies to a real Gateway (issue 10, classes 3, 7,
8): every answer ends in a GatewayError, memory stays bounded, and the secret the Gateway
holds never shows in the error, however the server echoes it."""

from __future__ import annotations

import json
import traceback
from collections.abc import Iterator
from typing import Any

import pytest
from report_gateway import Gateway, GatewayError, ProviderError
from reporting_runtime import Transport

from tests.runtime.rawserver import RawServer, endless, head

pytest.importorskip("report_gateway_zuora.plugin")

SECRET = "Gw-s3cret/Value+0123"  # neither key-shaped nor found by a setting's name
KEY_ID = "gw-key-id-98765"
MiB = 1 << 20


@pytest.fixture
def raw() -> Iterator[list[RawServer]]:
    made: list[RawServer] = []
    yield made
    for server in made:
        server.close()


def gateway(server: RawServer, **kwargs: Any) -> Gateway:
    settings = {
        "zuora": {
            "base_url": f"{server.url}/api/rest/v1",
            "api_access_key_id": KEY_ID,
            "api_secret_access_key": SECRET,
        }
    }
    return Gateway(settings, environ={"REPORT_GATEWAY_LOAD_PLUGINS": "zuora"}, **kwargs)


def answer_json(status: str, body: bytes, **headers: str) -> Any:
    def answer(_: bytes) -> Iterator[bytes]:
        yield head(
            status,
            {"Content-Type": "application/json", "Content-Length": str(len(body)), **headers},
        )
        yield body

    return answer


def texts(error: BaseException) -> str:
    parts = [str(error), repr(error), "".join(traceback.format_exception(error))]
    for name in ("message", "raw_body_excerpt", "request_id", "code"):
        parts.append(str(getattr(error, name, "")))
    parts.append(repr(vars(error)))
    cause = getattr(error, "cause", None)
    if cause is not None:
        parts += [str(cause), repr(cause), repr(vars(cause))]
    return "\n".join(parts)


def test_a_401_echoing_the_held_secret_never_shows_it(raw: list[RawServer]) -> None:
    body = json.dumps(
        {"message": f"bad apiSecretAccessKey {SECRET} for {KEY_ID}", "errorCode": "401"}
    ).encode()
    server = RawServer(answer_json("401 Unauthorized", body, **{"Zuora-Request-Id": SECRET}))
    raw.append(server)
    with gateway(server) as gw, pytest.raises(ProviderError) as info:
        gw.get("zuora", "run1")
    error = info.value
    assert error.auth_failed
    shown = texts(error)
    assert SECRET not in shown
    assert KEY_ID not in shown
    assert SECRET in gw.held_secrets()
    assert KEY_ID in gw.held_secrets()
    assert gw.scrub(f"x {SECRET} y") == "x REDACTED y"


def test_a_512_mib_json_answer_to_get_is_a_provider_error(raw: list[RawServer]) -> None:
    def answer(_: bytes) -> Iterator[bytes]:
        yield head("200 OK", {"Content-Type": "application/json", "Content-Length": str(512 * MiB)})
        yield from endless()

    server = RawServer(answer)
    raw.append(server)
    with gateway(server) as gw, pytest.raises(ProviderError, match="limit") as info:
        gw.get("zuora", "run1")
    assert isinstance(info.value, GatewayError)
    assert server.sent < 16 * MiB


def test_an_endless_json_answer_stops_at_the_configured_cap(raw: list[RawServer]) -> None:
    def answer(_: bytes) -> Iterator[bytes]:
        yield head("200 OK", {"Content-Type": "application/json", "Connection": "close"})
        yield from endless()

    server = RawServer(answer)
    raw.append(server)
    transport = Transport(max_body_bytes=MiB)
    with gateway(server, transport=transport) as gw, pytest.raises(ProviderError, match="limit"):
        gw.get("zuora", "run1")
    assert server.sent < 16 * MiB


def test_json_nested_100k_deep_is_a_provider_error(raw: list[RawServer]) -> None:
    server = RawServer(answer_json("200 OK", b"[" * 100_000 + b"]" * 100_000))
    raw.append(server)
    with gateway(server) as gw, pytest.raises(ProviderError, match="nested too deeply"):
        gw.get("zuora", "run1")


@pytest.mark.parametrize("value", [None, {}, 12345])
def test_a_run_id_of_the_wrong_type_is_refused(raw: list[RawServer], value: Any) -> None:
    body = json.dumps(
        {"success": True, "response": {"id": value, "reportId": "r", "status": "COMPLETED"}}
    ).encode()
    server = RawServer(answer_json("200 OK", body))
    raw.append(server)
    with gateway(server) as gw, pytest.raises(GatewayError) as info:
        gw.get("zuora", "run1")
    assert "id" in str(info.value)
    assert "'None'" not in str(info.value)
    assert "'{}'" not in str(info.value)
