"""AsyncGateway: the same runs, files and rows as Gateway, with the event loop kept free and
the thread count bounded."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from report_gateway import Gateway, RunFailedError, RunStatus, Scope, WaitTimeoutError
from report_gateway.aio import ROW_BATCH, AsyncGateway
from report_gateway_sandbox import FaultRule, Sandbox

from .conftest import INTERVAL, V1_REPORT, V2_REPORT

THREAD_PREFIX = "report-gateway-aio"


def aio_threads() -> int:
    return sum(1 for t in threading.enumerate() if t.name.startswith(THREAD_PREFIX))


class Heartbeat:
    """A coroutine that ticks every 10 ms and records the longest gap between ticks: a
    blocked loop shows as a gap as long as the blocking call."""

    def __init__(self) -> None:
        self.longest = 0.0
        self.ticks = 0
        self.peak_threads = 0

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        last = loop.time()
        while not stop.is_set():
            await asyncio.sleep(0.01)
            now = loop.time()
            self.longest = max(self.longest, now - last)
            self.ticks += 1
            self.peak_threads = max(self.peak_threads, aio_threads())
            last = now


async def with_heartbeat(work: Any) -> tuple[Any, Heartbeat]:
    beat = Heartbeat()
    stop = asyncio.Event()
    ticking = asyncio.create_task(beat.run(stop))
    try:
        result = await work
    finally:
        stop.set()
        await ticking
    return result, beat


def test_start_wait_download_rows_match_the_sync_gateway(
    gateway: Gateway, sandbox: Sandbox, tmp_path: Path
) -> None:
    async def main() -> tuple[Any, Path, list[dict[str, str]]]:
        async with AsyncGateway(gateway) as agw:
            run = await agw.start("stripe", V1_REPORT, INTERVAL)
            done = await agw.wait(run, poll_interval=0.05)
            path = await agw.download(done, tmp_path / "out.csv")
            rows = [row async for row in agw.rows(done)]
            return done, path, rows

    run, path, rows = asyncio.run(main())
    assert run.status is RunStatus.SUCCEEDED
    assert len(rows) == 1200  # more than two batches cross the queue
    assert len(rows) > 2 * ROW_BATCH
    assert rows == list(gateway.rows(run))
    assert path.read_bytes().count(b"\n") == len(rows) + 1
    assert sandbox.stats()["runs_created"]["stripe"] == 1


def test_a_retried_start_with_the_same_key_reuses_the_run(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    async def main() -> tuple[str, str]:
        async with AsyncGateway(gateway) as agw:
            first = await agw.start("stripe-v2", V2_REPORT, INTERVAL, idempotency_key="task-1")
            again = await agw.start("stripe-v2", V2_REPORT, INTERVAL, idempotency_key="task-1")
            return first.id, again.id

    first, again = asyncio.run(main())
    assert first == again
    assert sandbox.stats()["runs_created"]["stripe-v2"] == 1


def test_the_loop_keeps_ticking_while_polls_and_downloads_are_slow(
    gateway: Gateway, sandbox: Sandbox, tmp_path: Path
) -> None:
    # Every poll and every file request takes 0.6 s at the server: a blocking call on the
    # loop would stop the heartbeat that long.
    sandbox.add_fault(FaultRule(kind="latency", path="/v1/reporting/report_runs/*", latency=0.6))
    sandbox.add_fault(FaultRule(kind="latency", path="/v1/files/*", latency=0.6))

    async def work(agw: AsyncGateway) -> list[Path]:
        runs = [
            await agw.start("stripe", V1_REPORT, INTERVAL, scope=Scope(account=f"acct_{i}"))
            for i in range(3)
        ]
        done = await asyncio.gather(*(agw.wait(r, poll_interval=0.05) for r in runs))
        return list(
            await asyncio.gather(
                *(agw.download(r, tmp_path / f"{r.id}.csv") for r in done),
            )
        )

    async def main() -> tuple[list[Path], Heartbeat]:
        async with AsyncGateway(gateway) as agw:
            paths, beat = await with_heartbeat(work(agw))
            return paths, beat

    paths, beat = asyncio.run(main())
    assert all(p.exists() for p in paths)
    assert beat.longest < 0.3


def test_waits_share_a_few_threads_and_hold_none_while_sleeping(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    sandbox.configure(run_seconds=600)  # no run ends: every wait runs into its timeout
    polled_before_any_timeout: set[str] = set()
    timeouts: list[str] = []

    def progress(run: Any, elapsed: float) -> None:
        if elapsed > 0 and not timeouts:
            polled_before_any_timeout.add(run.id)

    async def main() -> tuple[list[Any], Heartbeat]:
        async with AsyncGateway(gateway, max_threads=2, max_transfers=1) as agw:
            runs = [
                await agw.start("stripe-v2", V2_REPORT, INTERVAL, scope=Scope(context=f"c{i}"))
                for i in range(60)
            ]

            async def wait(run: Any) -> None:
                try:
                    await agw.wait(run, timeout=3.0, poll_interval=0.2, on_progress=progress)
                except WaitTimeoutError:
                    timeouts.append(run.id)

            return await with_heartbeat(asyncio.gather(*(wait(r) for r in runs)))

    _, beat = asyncio.run(main())
    assert len(timeouts) == 60
    # Two threads, yet all 60 runs were polled before the first wait gave up: a wait that
    # slept in its thread would have let two runs poll until their timeouts.
    assert len(polled_before_any_timeout) == 60
    assert beat.peak_threads <= 2


def test_leaving_rows_early_frees_the_transfer_thread(gateway: Gateway, sandbox: Sandbox) -> None:
    async def main() -> tuple[list[dict[str, str]], int]:
        async with AsyncGateway(gateway, max_transfers=1) as agw:
            run = await agw.wait(await agw.start("stripe", V1_REPORT, INTERVAL), poll_interval=0.05)
            first: list[dict[str, str]] = []
            rows = agw.rows(run)
            async for row in rows:
                first.append(row)
                if len(first) == 3:
                    break
            await rows.aclose()  # type: ignore[attr-defined]
            # The one transfer thread must be free again, or this would never start.
            count = 0
            async with asyncio.timeout(30):
                async for _ in agw.rows(run):
                    count += 1
            return first, count

    first, count = asyncio.run(main())
    assert len(first) == 3
    assert count == 1200


def test_cancelling_a_download_stops_it_and_leaves_no_file(
    gateway: Gateway, sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.configure(result_bytes=32 << 20, chunk_size=64 << 10)

    async def main() -> bool:
        async with AsyncGateway(gateway) as agw:
            run = await agw.wait(await agw.start("stripe", V1_REPORT, INTERVAL), poll_interval=0.05)
            task: asyncio.Task[Path] | None = None

            def progress(done: int, total: int | None) -> None:
                assert task is not None
                task.cancel()

            task = asyncio.create_task(
                agw.download(run, tmp_path / "big.csv", on_progress=progress)
            )
            try:
                await task
            except asyncio.CancelledError:
                return True
            return False

    assert asyncio.run(main())
    assert list(tmp_path.iterdir()) == []


def test_a_failed_run_raises_with_the_providers_reason(gateway: Gateway, sandbox: Sandbox) -> None:
    sandbox.add_fault(FaultRule(kind="fail_run", path="/v2/reporting/report_runs", count=1))

    async def main() -> None:
        async with AsyncGateway(gateway) as agw:
            run = await agw.start("stripe-v2", V2_REPORT, INTERVAL)
            await agw.wait(run, poll_interval=0.05)

    with pytest.raises(RunFailedError) as caught:
        asyncio.run(main())
    assert caught.value.run is not None
    assert caught.value.run.status is RunStatus.FAILED


def test_a_wait_past_its_timeout_raises_and_the_run_goes_on(
    gateway: Gateway, sandbox: Sandbox
) -> None:
    sandbox.configure(run_seconds=60)

    async def main() -> None:
        async with AsyncGateway(gateway) as agw:
            run = await agw.start("stripe-v2", V2_REPORT, INTERVAL)
            await agw.wait(run, timeout=0.3, poll_interval=0.05)

    with pytest.raises(WaitTimeoutError):
        asyncio.run(main())


def test_gateway_keywords_build_an_owned_gateway(sandbox: Sandbox, tmp_path: Path) -> None:
    from .conftest import settings_for

    async def main() -> list[str]:
        async with AsyncGateway(
            settings=settings_for(sandbox), environ={"XDG_CONFIG_HOME": str(tmp_path)}
        ) as agw:
            return agw.providers()

    assert "stripe-v2" in asyncio.run(main())
    with pytest.raises(TypeError):
        AsyncGateway(Gateway(), settings={})
