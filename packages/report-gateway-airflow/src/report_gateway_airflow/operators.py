"""``ReportRunOperator``: one provider report run per task instance, deferred while it runs.

The run is started with an idempotency key made from the task instance's identity (DAG,
task, DAG run, map index), never from the try number: a task that fails after its create
(a worker lost, a download cut) and is retried sends the same key, and the provider answers
with the run it already made instead of starting a second one. Only when that run itself
ended failed or canceled does a retry start afresh, because replaying a failed run would
fail every retry the same way. The keys form a fixed chain (``key``, ``key-try2``,
``key-try3``...): try N walks it from the start, replaying each key an earlier try used, and
stops at the first run that has not failed, or at ``key-tryN``. So a try whose fresh run was
fine but whose worker died leaves that run to the next try, not a second one. (Zuora's
username/password hosts take no idempotency key: there a retry may start a second run.)

With ``deferrable=True`` (the default) the worker slot is released while the provider
works: the task defers to ``ReportRunTrigger``, the triggerer waits on it asynchronously,
and the task resumes on a worker to download. ``deferrable=False`` waits in the worker,
for setups without a triggerer.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from airflow.sdk import BaseOperator, Context
from airflow.sdk.exceptions import AirflowException, AirflowFailException
from report_gateway import (
    ConfigurationError,
    Gateway,
    GatewayError,
    NotSupportedError,
    ParameterError,
    ReportRun,
    RunStatus,
    Scope,
    ScopeError,
    UnknownReportError,
)
from report_gateway.rows import rows_from_text

from .hooks import ReportGatewayHook
from .triggers import ReportRunTrigger, scope_from

__all__ = ["ReportRunOperator", "idempotency_key"]

DEFAULT_TIMEOUT = 24 * 3600.0

#: Errors a retry cannot fix (settings, credentials, parameters, scope, report): the task
#: fails at once instead of spending its retries.
FINAL_ERRORS = (
    ConfigurationError,
    ParameterError,
    ScopeError,
    UnknownReportError,
    NotSupportedError,
)


def task_error(exc: GatewayError) -> AirflowException:
    """The Airflow exception for a gateway error (messages are already free of secrets)."""
    kind = AirflowFailException if isinstance(exc, FINAL_ERRORS) else AirflowException
    return kind(f"{type(exc).__name__}: {exc}")


def idempotency_key(dag_id: str, task_id: str, run_id: str, map_index: int) -> str:
    """The key a task instance starts its run with: the same for every try of it."""
    identity = "\x1f".join((dag_id, task_id, run_id, str(map_index)))
    return "airflow-" + hashlib.sha256(identity.encode()).hexdigest()[:48]


def _scope_dict(scope: Mapping[str, Any] | Scope | None) -> dict[str, Any]:
    if scope is None:
        return {}
    if isinstance(scope, Scope):
        return {
            name: value
            for name in ("account", "context", "entity_id", "entity_name")
            if (value := getattr(scope, name)) is not None
        }
    return dict(scope)


class ReportRunOperator(BaseOperator):
    """Run ``report_id`` at ``provider`` and save its result to ``output``.

    ``parameters`` are the provider's report parameters (templated: ``{{ data_interval_start
    }}`` for a daily window); ``scope`` is the account, context or entity as a dict
    (``{"context": "acct_..."}``; map over it with ``.expand(scope=[...])``); ``output`` is
    a file path or an existing folder (templated, held as ``output_path``; its parent folders
    are created). Returns
    (XCom ``return_value``) ``{"path", "provider", "run_id", "size", "rows"}``; ``rows`` is
    None for a ZIP saved without ``unzip``.

    ``timeout`` bounds the wait for the run (seconds); ``poll_interval``/``max_interval``
    override the provider's poll hints.
    """

    # ``output`` is kept as ``output_path``: ``BaseOperator.output`` is the task's XComArg.
    template_fields: Sequence[str] = ("report_id", "parameters", "scope", "output_path")
    template_fields_renderers = {"parameters": "json", "scope": "json"}
    ui_color = "#e8f0fe"

    def __init__(
        self,
        *,
        provider: str,
        report_id: str,
        output: str,
        parameters: Mapping[str, Any] | None = None,
        scope: Mapping[str, Any] | Scope | None = None,
        report_gateway_conn_id: str = ReportGatewayHook.default_conn_name,
        deferrable: bool = True,
        timeout: float = DEFAULT_TIMEOUT,
        poll_interval: float | None = None,
        max_interval: float | None = None,
        unzip: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.provider = provider
        self.report_id = report_id
        self.output_path = output
        self.parameters = dict(parameters or {})
        self.scope = _scope_dict(scope)
        self.report_gateway_conn_id = report_gateway_conn_id
        self.deferrable = deferrable
        self.timeout = timeout
        self.poll_interval = poll_interval
        self.max_interval = max_interval
        self.unzip = unzip

    def hook(self) -> ReportGatewayHook:
        return ReportGatewayHook(self.report_gateway_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        ti = context["ti"]
        key = idempotency_key(ti.dag_id, ti.task_id, ti.run_id, ti.map_index)
        scope = scope_from(self.scope)
        hook = self.hook()
        try:
            gateway = hook.get_conn()
            run = self._start(gateway, key, scope)
            if ti.try_number > 1:
                run, key = self._first_live_run(gateway, run, key, scope, ti.try_number)
            self.log.info(
                "%s run %s of %s (%s), idempotency key %s",
                self.provider,
                run.id,
                self.report_id,
                run.raw_status,
                key,
            )
            if self.deferrable and not run.status.is_terminal:
                self.defer(
                    trigger=ReportRunTrigger(
                        provider=self.provider,
                        run_id=run.id,
                        scope=self.scope,
                        report_gateway_conn_id=self.report_gateway_conn_id,
                        timeout=self.timeout,
                        poll_interval=self.poll_interval,
                        max_interval=self.max_interval,
                    ),
                    method_name="execute_complete",
                    # The trigger times out by itself; this is Airflow's backstop.
                    timeout=timedelta(seconds=self.timeout + 3600),
                )
            run = gateway.wait(
                run,
                timeout=self.timeout,
                poll_interval=self.poll_interval,
                max_interval=self.max_interval,
            )
            return self._save(gateway, run)
        except GatewayError as exc:
            raise task_error(exc) from None
        finally:
            hook.close()

    def execute_complete(self, context: Context, event: Mapping[str, Any]) -> dict[str, Any]:
        """Resumed on a worker when the trigger fired: download, or fail with the reason."""
        if event.get("status") != "success":
            raise AirflowException(
                f"{event.get('provider')} run {event.get('run_id')} {event.get('status')}: "
                f"{event.get('message')}"
            )
        hook = self.hook()
        try:
            gateway = hook.get_conn()
            # A fresh snapshot: result URLs (Stripe v2's pre-signed ones) expire.
            run = gateway.get(self.provider, str(event["run_id"]), scope=scope_from(self.scope))
            if run.status is not RunStatus.SUCCEEDED:
                raise AirflowException(f"{self.provider} run {run.id} is {run.raw_status}")
            return self._save(gateway, run)
        except GatewayError as exc:
            raise task_error(exc) from None
        finally:
            hook.close()

    def _first_live_run(
        self, gateway: Gateway, run: ReportRun, key: str, scope: Scope, try_number: int
    ) -> tuple[ReportRun, str]:
        """Walk the key chain from ``run`` (the first key's): the first run that did not end
        failed or canceled, and its key; at most one new run, under ``key-try{try_number}``
        or the first key of the chain no earlier try got to."""
        used = key
        for attempt in range(2, try_number + 2):
            # A replayed create answers with the run as it was then: look at it now.
            run = gateway.get(self.provider, run.id, scope=scope)
            if run.status not in (RunStatus.FAILED, RunStatus.CANCELED):
                break
            if attempt > try_number:
                break  # this try's own run failed already: the wait reports it
            used = f"{key}-try{attempt}"
            self.log.info(
                "%s run %s ended %s; key %s for try %d",
                self.provider,
                run.id,
                run.raw_status,
                used,
                try_number,
            )
            run = self._start(gateway, used, scope)
        return run, used

    def _start(self, gateway: Gateway, key: str, scope: Scope) -> ReportRun:
        return gateway.start(
            self.provider, self.report_id, self.parameters, scope=scope, idempotency_key=key
        )

    def _save(self, gateway: Gateway, run: ReportRun) -> dict[str, Any]:
        target = Path(os.fspath(self.output_path))
        folder = target if target.is_dir() else target.parent
        folder.mkdir(parents=True, exist_ok=True)
        path = gateway.download(run, target, unzip=self.unzip)
        rows = _count_rows(path)
        size = path.stat().st_size
        self.log.info(
            "saved %s run %s to %s (%d bytes, %s rows)", run.provider, run.id, path, size, rows
        )
        return {
            "path": str(path),
            "provider": run.provider,
            "run_id": run.id,
            "size": size,
            "rows": rows,
        }


def _count_rows(path: Path) -> int | None:
    """Data rows of a saved CSV (the gateway converts Zuora's UTF-16 export to UTF-8 CSV)."""
    if path.suffix.lower() == ".zip":
        return None
    with path.open(encoding="utf-8", errors="replace", newline="") as lines:
        return sum(1 for _ in rows_from_text(lines))
