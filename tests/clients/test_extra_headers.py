"""Headers a caller adds to one call of a generated method, as they leave the pipeline.

Plugins need headers no spec lists: `Range` to resume an export, a tracing id, whatever a
third-party scope hook returns. They pass them as `extra_headers=`; these tests show what the
server would receive.
"""

from __future__ import annotations

from typing import Any

from reporting_runtime import Headers, Request, Response, Transport
from stripe_reporting_client.v1 import Client as StripeClient
from zuora_reporting_client import Client as ZuoraClient

RUN_ID = "ff808081629755b80162bcc5bd624d2d"


class CapturingTransport(Transport):
    """Answers every request with an empty 200 and keeps what was sent; no socket opened."""

    def __init__(self, body: bytes = b"{}") -> None:
        super().__init__()
        self.sent: list[Request] = []
        self.body = body

    def send(self, request: Request, *, stream: bool = False, retries: Any = None) -> Response:
        self.sent.append(request)
        return Response(
            None,
            request=request,
            status=200,
            headers=Headers([("Content-Type", "application/json")]),
            content=self.body,
        )


def test_zuora_export_sends_range_and_track_id_beside_its_own_headers() -> None:
    transport = CapturingTransport(b"Account\r\n")
    client = ZuoraClient(api_access_key_id="id", api_secret_access_key="s", transport=transport)
    extra = {"Range": "bytes=1024-", "Zuora-Track-Id": "trace-1"}
    with client.export_report_run(RUN_ID, entity_id="E1", extra_headers=extra):
        pass
    (request,) = transport.sent
    assert request.header("Range") == "bytes=1024-"
    assert request.header("Zuora-Track-Id") == "trace-1"
    assert request.header("entityId") == "E1"
    assert request.header("apiAccessKeyId") == "id"  # auth still added below


def test_extra_headers_win_over_the_method_argument_whatever_their_case() -> None:
    transport = CapturingTransport()
    client = ZuoraClient(transport=transport)
    client.export_report_run(
        RUN_ID, entity_id="from-argument", extra_headers={"EntityId": "hook"}
    ).close()
    (request,) = transport.sent
    assert [v for k, v in request.headers.items() if k.lower() == "entityid"] == ["hook"]


def test_extra_headers_last_for_one_call_only() -> None:
    transport = CapturingTransport()
    client = StripeClient(api_key="sk_test_x", transport=transport)
    client.download_file_contents("file_1", extra_headers={"X-Trace-Id": "t-1"}).close()
    client.download_file_contents("file_1").close()
    assert transport.sent[0].header("X-Trace-Id") == "t-1"
    assert transport.sent[1].header("X-Trace-Id") is None
