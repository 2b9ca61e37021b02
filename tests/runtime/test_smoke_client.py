"""End to end through ApiClient against the scripted server: the path other engineers use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import pytest
from reporting_runtime import ApiClient, BearerAuth, NotFoundError, Operation, RetryConfig
from reporting_runtime.types import OpenEnum


class Status(OpenEnum):
    pending = "pending"


@attrs.frozen(kw_only=True)
class Run:
    id: str
    status: Status
    raw_payload: Mapping[str, Any] | None = attrs.field(
        default=None, repr=False, eq=False, metadata={"raw": True}
    )


GET_RUN = Operation(operation_id="retrieve_report_run", method="GET", path="/v1/runs/{id}")


def test_call_structures_the_body(server: Any) -> None:
    server.reply(200, '{"id": "frr_1", "status": "brand_new", "extra": 1}')
    client = ApiClient(provider="stripe", base_url=server.url, auth=BearerAuth("sk_test_x"))
    run = client.call(GET_RUN, Run, path={"id": "frr/1"})
    assert run.id == "frr_1"
    assert str(run.status) == "brand_new"
    assert run.raw_payload == {"id": "frr_1", "status": "brand_new", "extra": 1}
    assert server.seen[0].path == "/v1/runs/frr%2F1"
    assert server.seen[0].headers["Authorization"] == "Bearer sk_test_x"


def test_404_raises_not_found(server: Any) -> None:
    server.reply(
        404,
        '{"error": {"type": "invalid_request_error", "code": "resource_missing",'
        ' "message": "No such report run"}}',
        headers={"Request-Id": "req_9"},
    )
    client = ApiClient(provider="stripe", base_url=server.url, retry=RetryConfig(total=0))
    with pytest.raises(NotFoundError) as info:
        client.call(GET_RUN, Run, path={"id": "x"})
    assert str(info.value) == (
        "stripe retrieve_report_run: HTTP 404 resource_missing: No such report run"
        " (request id req_9)"
    )
