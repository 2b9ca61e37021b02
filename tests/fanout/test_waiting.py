"""run_many's waits hold no thread each: many runs waiting at once cost records, not threads.

The sandbox's runs are held unfinished until every scope's run exists (so every scope is
waiting at the same moment, whatever the machine's speed), the process's thread count is
sampled meanwhile, then the runs are let finish and every file must be verified. A design
with one thread per waiting run would show one thread per scope here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from report_gateway import Scope
from report_gateway.fanout import STARTERS, FanOutProgress
from report_gateway_sandbox import Sandbox

from .test_run_many import V2_PARAMS, V2_REPORT, assert_verified, gateway, sandbox_peak_v2

SCOPES = 300
#: Threads run_many may add, whatever the number of scopes: starters, downloaders, pollers,
#: the waiter's scheduler, and the in-process sandbox's threads for their connections.
THREAD_ALLOWANCE = 80


def hold_until_all_created(sb: Sandbox, count: int, samples: list[int]) -> threading.Thread:
    """Sample the thread count until the sandbox has created ``count`` runs (none can end
    before: they last an hour), once more then, and let them all finish."""

    def watch() -> None:
        while sb.stats()["runs_created"].get("stripe-v2", 0) < count:
            samples.append(threading.active_count())
            threading.Event().wait(0.02)
        samples.append(threading.active_count())
        for run in list(sb.app.stripe_v2.runs.values()):
            run.duration = 0.0  # the provider finishes them now

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def sampling(samples: list[int]) -> Callable[[FanOutProgress], None]:
    def heard(_: FanOutProgress) -> None:
        samples.append(threading.active_count())

    return heard


def test_every_scope_waits_at_once_on_a_bounded_number_of_threads(
    make_sandbox, tmp_path: Path
) -> None:
    sb = make_sandbox(run_seconds=3600, result_rows=3, v2_concurrency_limit=SCOPES)
    scopes = [Scope(context=f"acct_{i:04d}") for i in range(SCOPES)]
    samples: list[int] = []
    with gateway(sb, tmp_path) as gw:
        before = threading.active_count()
        watcher = hold_until_all_created(sb, SCOPES, samples)
        result = gw.run_many(
            "stripe-v2",
            V2_REPORT,
            V2_PARAMS,
            scopes=scopes,
            max_concurrency=SCOPES,
            output_dir=tmp_path / "out",
            on_progress=sampling(samples),
            poll_interval=0.05,
            max_interval=0.2,
        )
        watcher.join(5)
        assert_verified(result, gw)
    assert len(result.done) == SCOPES
    assert sb.stats()["runs_created"]["stripe-v2"] == SCOPES
    assert len(samples) > SCOPES  # sampled while they all waited, and after
    print(f"\nthreads: {before} before, at most {max(samples)} while {SCOPES} runs waited")
    assert max(samples) <= before + THREAD_ALLOWANCE, (before, max(samples))
    assert threading.active_count() <= before + 1  # the fan-out's threads are gone


def test_the_cap_on_active_runs_holds_with_few_threads(make_sandbox, tmp_path: Path) -> None:
    """More scopes than slots, the provider's limit above the cap: never more than
    ``max_concurrency`` runs at the sandbox, nor scopes in flight in the progress."""
    sb = make_sandbox(run_seconds=0.3, result_rows=3, v2_concurrency_limit=50)
    scopes = [Scope(context=f"acct_{i:04d}") for i in range(60)]
    seen: list[FanOutProgress] = []
    with gateway(sb, tmp_path) as gw:
        result = gw.run_many(
            "stripe-v2",
            V2_REPORT,
            V2_PARAMS,
            scopes=scopes,
            max_concurrency=7,
            output_dir=tmp_path / "out",
            on_progress=seen.append,
            poll_interval=0.05,
            max_interval=0.2,
        )
        assert_verified(result, gw)
    assert sb.stats()["runs_created"]["stripe-v2"] == 60
    assert sandbox_peak_v2(sb) <= 7
    assert 1 <= result.peak_active <= 7
    assert max(p.running for p in seen) <= 7


def test_a_published_end_finishes_fan_out_waits_without_polling(
    make_sandbox, tmp_path: Path
) -> None:
    """A terminal snapshot published in the process (a webhook) ends a fan-out's wait as it
    ends ``Gateway.wait``: taken instead of a poll, long before the next scheduled one."""
    sb = make_sandbox(run_seconds=3600, result_rows=3, v2_concurrency_limit=50)
    scopes = [Scope(context=f"acct_{i:04d}") for i in range(5)]
    with gateway(sb, tmp_path) as gw:

        def publish_once_all_exist() -> None:
            while sb.stats()["runs_created"].get("stripe-v2", 0) < len(scopes):
                threading.Event().wait(0.02)
            for run in list(sb.app.stripe_v2.runs.values()):
                run.duration = 0.0
            polls_before = sb.stats()["requests"].get("retrieve_report_run", 0)
            for stored in list(sb.app.stripe_v2.runs.values()):
                finished = gw.get("stripe-v2", stored.id, scope=Scope(context=stored.context))
                gw.events.publish(finished)
            counted.append(polls_before)  # none: every wait is still before its first poll

        counted: list[int] = []
        publisher = threading.Thread(target=publish_once_all_exist, daemon=True)
        publisher.start()
        result = gw.run_many(
            "stripe-v2",
            V2_REPORT,
            V2_PARAMS,
            scopes=scopes,
            max_concurrency=len(scopes),
            output_dir=tmp_path / "out",
            poll_interval=3600,  # no scheduled poll comes before the test's timeout
            max_interval=3600,
            timeout=60,  # not woken: every wait would time out, and the scope fail
        )
        publisher.join(5)
        assert_verified(result, gw)
    # The test's own gets, and not one poll of the fan-out's, before or after the publish.
    assert counted == [0]
    assert sb.stats()["requests"].get("retrieve_report_run", 0) == len(scopes)


def test_an_end_written_to_the_journal_elsewhere_wakes_fan_out_waits(
    make_sandbox, tmp_path: Path
) -> None:
    """A listener in another process writes a run's end to the journal: the fan-out's wait
    on it polls once at once, as ``Gateway.wait`` does, instead of at its next scheduled poll
    (an hour away here)."""
    from report_gateway.journal import Journal

    sb = make_sandbox(run_seconds=3600, result_rows=3, v2_concurrency_limit=50)
    scopes = [Scope(context=f"acct_{i:04d}") for i in range(4)]
    written: list[str] = []

    def write_ends_elsewhere() -> None:
        elsewhere = Journal(tmp_path / "journal.sqlite3")
        try:
            while len(written) < len(scopes):
                for run in list(sb.app.stripe_v2.runs.values()):
                    if run.id in written:
                        continue
                    run.duration = 0.0  # the provider finishes it now
                    if elsewhere.record_status("stripe-v2", run.id, "succeeded", "succeeded"):
                        written.append(run.id)  # journaled by the fan-out: written there
                threading.Event().wait(0.05)
        finally:
            elsewhere.close()

    with gateway(sb, tmp_path) as gw:
        writer = threading.Thread(target=write_ends_elsewhere, daemon=True)
        writer.start()
        result = gw.run_many(
            "stripe-v2",
            V2_REPORT,
            V2_PARAMS,
            scopes=scopes,
            max_concurrency=len(scopes),
            output_dir=tmp_path / "out",
            poll_interval=3600,
            max_interval=3600,
            timeout=60,  # not woken: every wait would time out, and the scope fail
        )
        writer.join(5)
        assert_verified(result, gw)
    assert len(written) == len(scopes)
    assert sb.stats()["requests"].get("retrieve_report_run", 0) == len(scopes)  # one poll each


def test_run_many_calls_at_once_share_one_set_of_threads(make_sandbox, tmp_path: Path) -> None:
    """Several run_many calls of one Gateway at the same time (a report each over the same
    contexts) share its fan-out threads: one waiter, one pool of each kind, not one per
    call; every file is verified and the threads are gone once the last call returns."""
    calls = 4
    sb = make_sandbox(run_seconds=3600, result_rows=3, v2_concurrency_limit=100)
    scopes = [Scope(context=f"acct_{i:02d}") for i in range(5)]
    names: list[list[str]] = []

    def heard(_: FanOutProgress) -> None:
        names.append([t.name for t in threading.enumerate()])

    with gateway(sb, tmp_path) as gw:
        before = threading.active_count()
        watcher = hold_until_all_created(sb, calls * len(scopes), [])

        def one(number: int) -> Any:
            return gw.run_many(
                "stripe-v2",
                V2_REPORT,
                {**V2_PARAMS, "interval_end": f"2025-02-{number + 1:02d}"},
                scopes=scopes,
                max_concurrency=len(scopes),
                output_dir=tmp_path / str(number),
                on_progress=heard,
                poll_interval=0.05,
                max_interval=0.2,
            )

        with ThreadPoolExecutor(calls) as pool:
            results = list(pool.map(one, range(calls)))
        watcher.join(5)
        for result in results:
            assert_verified(result, gw)
    assert sb.stats()["runs_created"]["stripe-v2"] == calls * len(scopes)
    assert max(sum(n == "waiter" for n in seen) for seen in names) == 1
    starters = max(sum(n.startswith("fan-out-start") for n in seen) for seen in names)
    assert starters <= STARTERS
    assert threading.active_count() <= before + 1
