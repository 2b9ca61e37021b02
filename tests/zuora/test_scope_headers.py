"""Headers from a third-party ``report_gateway_scope_headers`` hook reach Zuora on every call.

A company plugin may answer the hook for zuora itself (tried first) to add a routing or
tracing header beside the entity; the driver passes the whole answer on, not only
entityId/entityName.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import report_gateway_zuora.plugin as zuora_plugin
from report_gateway import Gateway, Scope, hookimpl

CUSTOMER_REPORT = "ff8080816293d35b0162bcb3e7780a75"  # Summary


class RoutingPlugin:
    @hookimpl(tryfirst=True)
    def report_gateway_scope_headers(self, provider: str, scope: Scope) -> Mapping[str, str] | None:
        if provider != "zuora" or not scope.entity_name:
            return None
        return {"entityName": scope.entity_name, "X-Tenant-Route": f"route-{scope.entity_name}"}


def test_every_request_carries_the_hooks_extra_header(
    make_gateway: Callable[..., Gateway],
    sandbox_settings: dict[str, Any],
    counts: Any,
    tmp_path: Path,
) -> None:
    gw = make_gateway(sandbox_settings, plugins=[zuora_plugin, RoutingPlugin()])
    scope = Scope(entity_name="EuropeanBU")
    gw.search("zuora", "Customer", scope=scope)
    run = gw.start("zuora", CUSTOMER_REPORT, {"viewType": "Summary"}, scope=scope)
    done = gw.wait(run, timeout=30, poll_interval=0.05, max_interval=0.1)
    gw.download(done, tmp_path / "out.tsv")

    for operation in ("search_reports", "run_report", "get_report_run", "export_report_run"):
        logged = counts.logged(operation)
        assert logged, operation
        for entry in logged:
            assert entry["headers"].get("X-Tenant-Route") == "route-EuropeanBU", operation
            assert entry["headers"].get("entityName") == "EuropeanBU", operation
