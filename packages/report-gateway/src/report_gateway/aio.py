"""``AsyncGateway``: the ``Gateway`` for an event loop (Airflow's triggerer, a web service).

What is truly asynchronous and what runs in threads (README, "Async API"):

- ``wait`` is a coroutine loop: each poll is one ``Gateway.get`` run in a worker thread,
  and the pause between polls is ``asyncio.sleep`` on the provider's backoff, so a waiting
  run holds no thread while it sleeps. A thousand waits in one loop share the few
  threads of the call pool, each for the milliseconds of one request.
- ``start``, ``get``, ``cancel`` (and ``templates``, ``template``, ``validate``) are the
  synchronous drivers (urllib3) run in the bounded call pool, one thread per call for the
  call's duration. A ``start`` waiting for a run slot (``max_active_runs``, a provider's
  limit) holds its thread while it waits.
- ``download`` and ``rows`` stream in a second bounded pool (transfers), one thread per
  transfer for its duration, so long downloads never starve the polls. ``rows`` hands
  batches of rows to the loop through a bounded queue, so a slow consumer holds the
  producer back instead of filling memory.

Threads are bounded by ``max_threads + max_transfers``; nothing else starts one. The
loop itself only sleeps, awaits futures and runs callbacks (``on_progress``), which are
called in the loop's thread. A cancelled ``download`` or ``rows`` stops its thread at
the next chunk or batch; a cancelled call lets its one request finish in the background.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import os
import random
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from .errors import WaitTimeoutError, provider_errors
from .gateway import Gateway
from .models import ReportRun, ReportTemplate, Scope, StartProgress
from .polling import Backoff, finish

if TYPE_CHECKING:
    from .download import ZipLimits
    from .polling import ProgressCallback

__all__ = ["AsyncGateway"]

T = TypeVar("T")

#: Rows handed to the loop per queue item (one cross-thread hand-off per batch, not per row).
ROW_BATCH = 500
#: Batches the producer thread may run ahead of the consumer.
ROW_QUEUE = 4


class _Stopped(Exception):
    """Raised inside a transfer thread when its coroutine was cancelled."""


class AsyncGateway:
    """Coroutines over a ``Gateway`` (same settings, plugins and hooks).

    ``AsyncGateway(gateway)`` wraps an existing Gateway (it is not closed here); otherwise
    the keywords are ``Gateway``'s and one is built (and closed by ``aclose``).
    ``max_threads`` bounds the threads that run requests (``start``, ``get``, each poll of
    ``wait``...), ``max_transfers`` the threads streaming ``download`` and ``rows``.
    """

    def __init__(
        self,
        gateway: Gateway | None = None,
        *,
        max_threads: int = 8,
        max_transfers: int = 4,
        **gateway_options: Any,
    ) -> None:
        if max_threads < 1 or max_transfers < 1:
            raise ValueError("max_threads and max_transfers must be at least 1")
        if gateway is not None and gateway_options:
            raise TypeError("give a Gateway or Gateway keywords, not both")
        self._owned = gateway is None
        self.gateway = gateway if gateway is not None else Gateway(**gateway_options)
        self.max_threads = max_threads
        self.max_transfers = max_transfers
        self._calls = ThreadPoolExecutor(max_threads, thread_name_prefix="report-gateway-aio")
        self._transfers = ThreadPoolExecutor(
            max_transfers, thread_name_prefix="report-gateway-aio-transfer"
        )

    def __repr__(self) -> str:
        return f"<AsyncGateway {self.gateway!r} threads<={self.max_threads}+{self.max_transfers}>"

    async def __aenter__(self) -> AsyncGateway:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the thread pools (after their current work) and close an owned Gateway."""
        await asyncio.to_thread(self._shutdown)

    def _shutdown(self) -> None:
        self._calls.shutdown(wait=True, cancel_futures=True)
        self._transfers.shutdown(wait=True, cancel_futures=True)
        if self._owned:
            self.gateway.close()

    async def _run(self, function: Callable[[], T]) -> T:
        """``function`` in a call thread, in the caller's context (as ``asyncio.to_thread``
        does): a trace's current span is the parent of what the call records."""
        loop = asyncio.get_running_loop()
        context = contextvars.copy_context()
        return await loop.run_in_executor(self._calls, functools.partial(context.run, function))

    # -- providers and templates -------------------------------------------------------------

    def providers(self) -> list[str]:
        """Names of the loaded providers (no request: plugins only)."""
        return self.gateway.providers()

    async def templates(self, provider: str, *, scope: Scope | None = None) -> list[ReportTemplate]:
        return await self._run(lambda: self.gateway.templates(provider, scope=scope))

    async def template(
        self, provider: str, report_id: str, *, scope: Scope | None = None
    ) -> ReportTemplate:
        return await self._run(lambda: self.gateway.template(provider, report_id, scope=scope))

    async def validate(
        self,
        provider: str,
        report_id: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        scope: Scope | None = None,
    ) -> dict[str, Any]:
        return await self._run(
            lambda: self.gateway.validate(provider, report_id, parameters, scope=scope)
        )

    # -- runs --------------------------------------------------------------------------------

    async def start(
        self,
        provider: str,
        report_id: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        scope: Scope | None = None,
        idempotency_key: str | None = None,
        on_progress: Callable[[StartProgress], None] | None = None,
    ) -> ReportRun:
        """``Gateway.start`` in a call thread; ``on_progress`` is called in the loop."""
        progress = _in_loop(asyncio.get_running_loop(), on_progress)
        return await self._run(
            lambda: self.gateway.start(
                provider,
                report_id,
                parameters,
                scope=scope,
                idempotency_key=idempotency_key,
                on_progress=progress,
            )
        )

    async def get(self, provider: str, run_id: str, *, scope: Scope | None = None) -> ReportRun:
        return await self._run(lambda: self.gateway.get(provider, run_id, scope=scope))

    async def cancel(self, run: ReportRun) -> ReportRun:
        return await self._run(lambda: self.gateway.cancel(run))

    async def wait(
        self,
        run: ReportRun,
        *,
        timeout: float | None = 3600.0,
        on_progress: ProgressCallback | None = None,
        poll_interval: float | None = None,
        max_interval: float | None = None,
        rand: Callable[[], float] = random.random,
    ) -> ReportRun:
        """Poll until the run ends; return it SUCCEEDED or raise, as ``Gateway.wait`` does.

        Each poll (and the ``report_gateway_run_changed`` observers of a status change) runs
        in a call thread; between polls the coroutine sleeps on the loop, holding no thread.
        ``on_progress(run, elapsed)`` runs in the loop, before the first poll and after each.
        """
        spec = self.gateway.spec(run.provider)
        first = poll_interval or spec.first_poll_interval
        backoff = Backoff(first=first, maximum=max(first, max_interval or spec.max_poll_interval))
        schedule = backoff.intervals(rand)
        loop = asyncio.get_running_loop()
        begun = loop.time()
        deadline = None if timeout is None else begun + max(0.0, timeout)
        current = run
        if on_progress is not None:
            on_progress(current, 0.0)
        while not current.status.is_terminal:
            now = loop.time()
            if deadline is not None and now >= deadline:
                raise WaitTimeoutError(
                    current.provider, current.id, current.status, run=current, elapsed=now - begun
                )
            delay = next(schedule)
            if deadline is not None:
                delay = min(delay, deadline - now)
            await asyncio.sleep(delay)
            current = await self._run(functools.partial(self._poll, current))
            if on_progress is not None:
                on_progress(current, loop.time() - begun)
        with provider_errors(run.provider, scrub=self.gateway.scrub):  # a failed run's reason
            return finish(current)

    def _poll(self, previous: ReportRun) -> ReportRun:
        latest = self._fetch(previous)
        if latest.status is not previous.status:
            self.gateway.pm.hook.report_gateway_run_changed(run=latest, previous=previous)
        return latest

    def _fetch(self, previous: ReportRun) -> ReportRun:
        """One poll's request (``tracing`` wraps it in a poll span, as ``RunEvents.watch``'s
        polls are for ``Gateway.wait``)."""
        return self.gateway.get(previous.provider, previous.id, scope=previous.scope)

    # -- results -----------------------------------------------------------------------------

    async def download(
        self,
        run: ReportRun,
        path: str | os.PathLike[str],
        *,
        unzip: bool = False,
        raw: bool = False,
        overwrite: bool = True,
        on_progress: Callable[[int, int | None], None] | None = None,
        durable: bool = True,
        zip_limits: ZipLimits | None = None,
    ) -> Path:
        """``Gateway.download`` in a transfer thread (atomic, verified, resumable).

        ``on_progress(bytes, total)`` is called in the loop. Cancelling the coroutine stops
        the transfer at its next chunk (no partial file is left under ``path``).
        """
        loop = asyncio.get_running_loop()
        stop = threading.Event()
        report = _in_loop(loop, on_progress)

        def progress(done: int, total: int | None) -> None:
            if stop.is_set():
                raise _Stopped
            if report is not None:
                report(done, total)

        def transfer() -> Path:
            return self.gateway.download(
                run,
                path,
                unzip=unzip,
                raw=raw,
                overwrite=overwrite,
                on_progress=progress,
                durable=durable,
                zip_limits=zip_limits,
            )

        future = loop.run_in_executor(self._transfers, transfer)
        try:
            return await asyncio.shield(future)
        except asyncio.CancelledError:
            stop.set()
            # Let the thread leave (and clean its temporary file) before we report back.
            await asyncio.wait([future])
            raise

    async def rows(self, run: ReportRun) -> AsyncIterator[dict[str, str]]:
        """The result's rows as dicts, streamed from a transfer thread through a bounded
        queue; leaving the ``async for`` early (or cancelling) stops the thread."""
        loop = asyncio.get_running_loop()
        rows = self.gateway.rows(run)  # checks the run has a result before any thread
        queue: asyncio.Queue[list[dict[str, str]] | BaseException | None] = asyncio.Queue(ROW_QUEUE)
        stop = threading.Event()

        def put(item: list[dict[str, str]] | BaseException | None) -> None:
            future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
            while True:
                try:
                    future.result(timeout=0.1)
                    return
                except TimeoutError:
                    if stop.is_set():
                        future.cancel()
                        raise _Stopped from None

        def produce() -> None:
            try:
                batch: list[dict[str, str]] = []
                for row in rows:
                    batch.append(row)
                    if len(batch) >= ROW_BATCH:
                        put(batch)
                        batch = []
                    if stop.is_set():
                        raise _Stopped
                if batch:
                    put(batch)
                put(None)
            except _Stopped:
                pass
            except BaseException as exc:
                if not stop.is_set():
                    put(exc)
            finally:
                _close(rows)

        producer = loop.run_in_executor(self._transfers, produce)
        try:
            while True:
                item = await queue.get()
                if item is None:
                    break
                if isinstance(item, BaseException):
                    raise item
                for row in item:
                    yield row
        finally:
            stop.set()
            while not queue.empty():
                queue.get_nowait()
            await asyncio.wait([producer])


def _close(iterator: Iterator[Any]) -> None:
    close = getattr(iterator, "close", None)
    if close is not None:
        close()


def _in_loop(
    loop: asyncio.AbstractEventLoop, callback: Callable[..., None] | None
) -> Callable[..., None] | None:
    """``callback`` made callable from a worker thread: it then runs in ``loop``'s thread."""
    if callback is None:
        return None

    def call(*args: Any) -> None:
        loop.call_soon_threadsafe(callback, *args)

    return call
