"""``ReportRunTrigger``: waits for a provider run in Airflow's triggerer, asynchronously.

It holds only what is needed to find the run again (provider, run id, scope, connection id,
wait options), all JSON-serializable, because the triggerer may be another process or
machine and may restart the trigger from its serialized form. Every trigger of a
connection in one triggerer shares one ``AsyncGateway`` (``ReportGatewayHook.async_gateway``):
its polls run in that gateway's few threads, and a run between polls holds nothing but a
sleeping coroutine.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent
from report_gateway import GatewayError, RunCanceledError, RunFailedError, Scope, WaitTimeoutError

from .hooks import ReportGatewayHook

__all__ = ["ReportRunTrigger", "scope_from"]


def scope_from(scope: Mapping[str, Any] | Scope | None) -> Scope:
    """A ``Scope`` from the JSON form operators and triggers carry (or a ``Scope``)."""
    if scope is None:
        return Scope()
    if isinstance(scope, Scope):
        return scope
    return Scope(**dict(scope))


class ReportRunTrigger(BaseTrigger):
    """Fires once: ``{"status": "success" | "failed" | "canceled" | "timeout" | "error",
    "provider", "run_id", "message"}``."""

    def __init__(
        self,
        *,
        provider: str,
        run_id: str,
        scope: Mapping[str, Any] | None = None,
        report_gateway_conn_id: str = ReportGatewayHook.default_conn_name,
        timeout: float | None = None,
        poll_interval: float | None = None,
        max_interval: float | None = None,
    ) -> None:
        super().__init__()
        self.provider = provider
        self.run_id = run_id
        self.scope = dict(scope or {})
        self.report_gateway_conn_id = report_gateway_conn_id
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.max_interval = max_interval

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "provider": self.provider,
                "run_id": self.run_id,
                "scope": self.scope,
                "report_gateway_conn_id": self.report_gateway_conn_id,
                "timeout": self.timeout,
                "poll_interval": self.poll_interval,
                "max_interval": self.max_interval,
            },
        )

    def _event(self, status: str, message: str = "") -> TriggerEvent:
        return TriggerEvent(
            {
                "status": status,
                "provider": self.provider,
                "run_id": self.run_id,
                "message": message,
            }
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        try:
            gateway = await ReportGatewayHook.async_gateway(self.report_gateway_conn_id)
            run = await gateway.get(self.provider, self.run_id, scope=scope_from(self.scope))
            self.log.info("waiting for %s run %s (%s)", self.provider, run.id, run.raw_status)
            run = await gateway.wait(
                run,
                timeout=self.timeout,
                poll_interval=self.poll_interval,
                max_interval=self.max_interval,
            )
        except RunFailedError as exc:
            yield self._event("failed", str(exc))
        except RunCanceledError as exc:
            yield self._event("canceled", str(exc))
        except WaitTimeoutError as exc:
            yield self._event("timeout", str(exc))
        except GatewayError as exc:
            yield self._event("error", f"{type(exc).__name__}: {exc}")
        else:
            self.log.info("%s run %s %s", self.provider, run.id, run.raw_status)
            yield self._event("success")
