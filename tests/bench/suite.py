"""The benchmarks of issues 6, 12 and 14, each a function returning table rows.

Every headline figure is a ratio measured the way a user runs things (see ``method.py``):
alternating pairs of subject and baseline, each a fresh process with the same setup and
the same idle time before its clock starts, the median of the pairs' ratios with its
spread, no ``os.sync()``, no best-of-N; transfers and parsing also under a "busy machine"
(``busy.py``). Measurements shared between items (the quiet downloads feed throughput,
memory and the scale curve) are taken once per run and cached on the ``Bench`` object, so
``--only`` still works and a full run measures nothing twice.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

from report_gateway import Gateway

from .method import BusyLoad, Pairs, alternate, summary
from .sandbox_process import (
    INTERVAL,
    V1_REPORT,
    V2_REPORT,
    SandboxProcess,
    finished_run,
)
from .table import Row

ROOT = Path(__file__).resolve().parents[2]
MiB = 1 << 20
KiB = 1 << 10
FANOUT_RESULT_ROWS = 10
CONDITIONS = ("quiet", "busy")


@dataclasses.dataclass(frozen=True)
class Sizes:
    """Everything a quick smoke run shrinks."""

    small: int = 10 * MiB
    mid: int = 256 * MiB
    big: int = 1024 * MiB
    rows: int = 128 * MiB  # half the minutes of 256 MiB; still over a million rows
    utf16: int = 256 * MiB
    pairs: int = 5
    idle: float = 1.0
    busy_alloc: int = 1536 * MiB
    busy_file: int = 1024 * MiB
    busy_seconds: float = 1200.0  # the load's own bound if the bench dies without stopping it
    chunks: tuple[int, ...] = (64 * KiB, 256 * KiB, 1024 * KiB)
    calls: int = 600
    warmup: int = 30
    rounds: int = 10
    fanout_runs: int = 5000
    fanout_contexts: int = 500
    fanout_limit: int = 100
    fanout_seconds: float = 1.0
    waiting_runs: int = 10_000
    waiting_hold: float = 5.0
    #: run_many's timeout in the waiting figure (the runs outlast it; Ctrl-C ends the fan-out
    #: ``waiting_hold`` s after every scope is waiting); polls from ``waiting_poll`` s on.
    waiting_timeout: float = 3600.0
    waiting_poll: float = 10.0
    aio_waits: int = 1000
    #: fewer pairs than the headline figures: a memory and thread count, not an issue-12
    #: target, and each pair starts 2,000 runs
    aio_pairs: int = 3
    startup_repeats: int = 10

    @classmethod
    def quick(cls) -> Sizes:
        return cls(
            small=1 * MiB,
            mid=4 * MiB,
            big=16 * MiB,
            rows=4 * MiB,
            utf16=4 * MiB,
            pairs=2,
            idle=0.1,
            busy_alloc=256 * MiB,
            busy_file=128 * MiB,
            busy_seconds=120.0,
            calls=30,
            warmup=5,
            rounds=2,
            fanout_runs=40,
            fanout_contexts=8,
            fanout_limit=5,
            fanout_seconds=0.5,
            waiting_runs=200,
            waiting_hold=1.0,
            waiting_timeout=600.0,
            waiting_poll=0.5,
            aio_waits=100,
            aio_pairs=2,
            startup_repeats=2,
        )


def _mib(size: int) -> str:
    if size < MiB:
        return f"{size // KiB} KiB"
    return f"{size / MiB:.0f} MiB" if size < 1024 * MiB else f"{size / (1024 * MiB):.0f} GiB"


def child(task: str, args: dict[str, Any]) -> dict[str, Any]:
    """Run one measured task in a fresh interpreter; return its JSON answer."""
    done = subprocess.run(
        [sys.executable, "-m", "tests.bench.child", task, json.dumps(args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"bench child {task} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _ratio_row(
    label: str,
    pairs: Pairs,
    subject: str,
    baseline: str,
    *,
    size: float,
    unit: str,
    minimum: float | None,
    key: str = "seconds",
) -> Row:
    """One table row: median rates of both sides, the median pair ratio with its spread."""
    middle, text = summary(pairs.ratios(subject, baseline, key=key))
    ours = size / pairs.median(subject, key)
    theirs = size / pairs.median(baseline, key)
    return Row(
        label,
        f"{ours:.0f} {unit}",
        f"{theirs:.0f} {unit}",
        text,
        f">= {minimum:.2f}" if minimum is not None else "(info)",
        middle >= minimum if minimum is not None else None,
    )


class Bench:
    def __init__(self, sandbox: SandboxProcess, workdir: Path, sizes: Sizes) -> None:
        self.sb = sandbox
        self.tmp = workdir
        self.sizes = sizes
        self.settings = sandbox.settings()
        self.gateway = Gateway(settings=self.settings)
        self._runs: dict[tuple[str, int], Any] = {}
        self._cache: dict[str, Any] = {}
        self.log: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)

    # -- shared setup ----------------------------------------------------------------------

    def _reset_sandbox(self) -> None:
        """Empty the sandbox, and forget the finished runs kept for later items: their
        files are gone with it (a kept run would then answer 404)."""
        self.sb.reset()
        self._runs.clear()

    def run(self, provider: str, size: int) -> Any:
        key = (provider, size)
        if key not in self._runs:
            self._runs[key] = finished_run(self.sb, self.gateway, provider, size)
        return self._runs[key]

    def condition(self, name: str) -> AbstractContextManager[object]:
        """``quiet``: nothing else from the bench runs. ``busy``: the load of ``busy.py``,
        started before the first pair and stopped after the last."""
        if name == "quiet":
            return nullcontext()
        s = self.sizes
        return BusyLoad(self.tmp, s.busy_alloc, s.busy_file, s.busy_seconds)

    def _auth(self, provider: str) -> dict[str, str]:
        if provider == "zuora":
            z = self.settings["zuora"]
            return {
                "apiAccessKeyId": z["api_access_key_id"],
                "apiSecretAccessKey": z["api_secret_access_key"],
            }
        return {"Authorization": f"Bearer {self.settings['stripe']['api_key']}"}

    def _yesterdays(self, path: Path, size: int) -> None:
        """A file of ``size`` bytes at ``path`` as last night's download left it: written,
        on the disk, out of the page cache (setup, before the child's clock)."""
        block = b"y" * MiB
        with path.open("wb") as out:
            for _ in range(size // MiB):
                out.write(block)
            out.flush()
            os.fsync(out.fileno())
            os.posix_fadvise(out.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)

    def _gateway_download(
        self, run: Any, durable: bool, raw: bool = False, over: int = 0
    ) -> dict[str, Any]:
        target = self.tmp / "gateway.out"
        if over:
            self._yesterdays(target, over)
        try:
            return child(
                "gateway_download",
                {
                    "settings": self.settings,
                    "provider": run.provider,
                    "run_id": run.id,
                    "path": str(target),
                    "durable": durable,
                    "raw": raw,
                    "idle": self.sizes.idle,
                },
            )
        finally:
            target.unlink(missing_ok=True)

    def _bare(
        self, task: str, run: Any, keep: Path | None = None, over: int = 0, **extra: Any
    ) -> dict[str, Any]:
        target = keep or self.tmp / "bare.out"
        if over:
            self._yesterdays(target, over)
        try:
            return child(
                task,
                {
                    "url": run.result.url,
                    "headers": self._auth(run.provider),
                    "path": str(target),
                    "idle": 0.0 if keep else self.sizes.idle,
                    **extra,
                },
            )
        finally:
            if keep is None:
                target.unlink(missing_ok=True)

    def _log_pairs(self, what: str, pairs: Pairs) -> None:
        for name, samples in pairs.samples.items():
            shown = [
                f"{v['seconds']:.2f}s/{v['cpu_user']:.2f}u/{v['cpu_sys']:.2f}k" for v in samples
            ]
            self.log(f"  {what} {name}: {shown}")

    def downloads(self, size: int, condition: str) -> Pairs:
        """Gateway default (durable), gateway ``durable=False``, the bare copy and the bare
        copy with one fsync at its end (``bare_fsync``: what the disk allows a durable copy,
        information only), in turn."""
        key = f"downloads:{size}:{condition}"
        if key not in self._cache:
            run = self.run("stripe", size)
            with self.condition(condition):
                pairs = alternate(
                    {
                        "gateway_durable": lambda: self._gateway_download(run, True),
                        "gateway_fast": lambda: self._gateway_download(run, False),
                        "bare": lambda: self._bare("bare_download", run),
                        "bare_fsync": lambda: self._bare("bare_download", run, fsync=True),
                    },
                    self.sizes.pairs,
                )
            self._log_pairs(f"download {_mib(size)} {condition}", pairs)
            self._cache[key] = pairs
        return self._cache[key]  # type: ignore[no-any-return]

    def gateway_alone(self, size: int) -> list[dict[str, Any]]:
        """The default download with no contender (the scale curve's small point)."""
        key = f"alone:{size}"
        if key not in self._cache:
            run = self.run("stripe", size)
            self._cache[key] = [self._gateway_download(run, True) for _ in range(self.sizes.pairs)]
        return self._cache[key]  # type: ignore[no-any-return]

    # -- 1. download throughput ------------------------------------------------------------

    def download_throughput(self) -> list[Row]:
        rows = []
        for condition in CONDITIONS:
            for size in (self.sizes.mid, self.sizes.big):
                pairs = self.downloads(size, condition)
                for label, subject, target in (
                    ("default (durable)", "gateway_durable", 0.90),
                    ("durable=False", "gateway_fast", 0.95),
                ):
                    rows.append(
                        _ratio_row(
                            f"download {_mib(size)} {condition}, {label} vs bare urllib3",
                            pairs,
                            subject,
                            "bare",
                            size=size / MiB,
                            unit="MiB/s",
                            minimum=target,
                        )
                    )
                # Information: the durable download against a durable bare copy. When the
                # sandbox serves faster than the disk writes, no durable copy can reach the
                # target above; this row tells the disk's share from the gateway's.
                rows.append(
                    _ratio_row(
                        f"download {_mib(size)} {condition}, default (durable) vs bare"
                        " urllib3 + fsync",
                        pairs,
                        "gateway_durable",
                        "bare_fsync",
                        size=size / MiB,
                        unit="MiB/s",
                        minimum=None,
                    )
                )
        # Last night's file at the target (a nightly pull): the gateway frees it off the
        # caller's path (download._replace); the bare copy's open("wb") truncates it.
        size = self.sizes.mid
        run = self.run("stripe", size)
        pairs = alternate(
            {
                "gateway_durable": lambda: self._gateway_download(run, True, over=size),
                "bare": lambda: self._bare("bare_download", run, over=size),
            },
            self.sizes.pairs,
        )
        self._log_pairs(f"download {_mib(size)} over yesterday's", pairs)
        rows.append(
            _ratio_row(
                f"download {_mib(size)} quiet over last night's file, default (durable) vs"
                " bare urllib3 over it",
                pairs,
                "gateway_durable",
                "bare",
                size=size / MiB,
                unit="MiB/s",
                minimum=None,
            )
        )
        return rows

    # -- 2. memory -------------------------------------------------------------------------

    def memory(self) -> list[Row]:
        mid, big = self.sizes.mid, self.sizes.big
        rows = []

        def peak(pairs: Pairs) -> float:
            return max(pairs.values("gateway_durable", "maxrss_mib"))

        measures = {
            "download": (peak(self.downloads(mid, "quiet")), peak(self.downloads(big, "quiet"))),
        }
        rows_quiet = self._cache.get("rows:stripe:quiet")
        if rows_quiet is not None:
            measures["rows()"] = (max(rows_quiet.values("gateway", "maxrss_mib")), math.nan)
        for what, (at_mid, at_big) in measures.items():
            if math.isnan(at_big):
                rows.append(
                    Row(
                        f"peak RSS {what} {_mib(self.sizes.rows)}",
                        f"{at_mid:.1f} MiB",
                        "-",
                        "-",
                        "< 100 MiB",
                        at_mid < 100,
                    )
                )
                continue
            rows.append(
                Row(
                    f"peak RSS {what} {_mib(mid)}",
                    f"{at_mid:.1f} MiB",
                    "-",
                    "-",
                    "< 100 MiB",
                    at_mid < 100,
                )
            )
            growth = at_big - at_mid
            rows.append(
                Row(
                    f"peak RSS {what} {_mib(big)}",
                    f"{at_big:.1f} MiB",
                    f"{at_mid:.1f} MiB @{_mib(mid)}",
                    f"{growth:+.1f} MiB",
                    "< 100 MiB, +<= 10",
                    at_big < 100 and growth <= 10,
                )
            )
        return rows

    # -- 3. rows ---------------------------------------------------------------------------

    def rows(self) -> list[Row]:
        out = []
        cases = (
            ("stripe", self.sizes.rows, "CSV", {"encoding": "utf-8", "delimiter": ","}, 0.90),
            (
                "zuora",
                self.sizes.utf16,
                "Zuora UTF-16",
                {"encoding": "utf-16", "delimiter": "\t"},
                0.80,
            ),
        )
        for provider, size, label, local_format, target in cases:
            run = self.run(provider, size)
            local = self.tmp / f"local-{provider}.txt"
            self._bare("bare_download", run, keep=local)
            try:
                for condition in CONDITIONS:
                    pairs = self._rows_pairs(run, condition, {"path": str(local), **local_format})
                    rows_count = pairs.samples["gateway"][0]["rows"]
                    out.append(
                        _ratio_row(
                            f"rows() {_mib(size)} {label} {condition} vs DictReader",
                            pairs,
                            "gateway",
                            "dictreader",
                            size=rows_count / 1000,
                            unit="k rows/s",
                            minimum=target,
                        )
                    )
            finally:
                local.unlink(missing_ok=True)
        return out

    def _rows_pairs(self, run: Any, condition: str, local: dict[str, Any]) -> Pairs:
        idle = self.sizes.idle
        with self.condition(condition):
            pairs = alternate(
                {
                    "gateway": lambda: child(
                        "gateway_rows",
                        {
                            "settings": self.settings,
                            "provider": run.provider,
                            "run_id": run.id,
                            "idle": idle,
                        },
                    ),
                    "dictreader": lambda: child("dictreader_rows", {**local, "idle": idle}),
                },
                self.sizes.pairs,
            )
        self._log_pairs(f"rows {run.provider} {condition}", pairs)
        counts = {v["rows"] for values in pairs.samples.values() for v in values}
        if len(counts) != 1:
            raise RuntimeError(f"row counts differ: {sorted(counts)}")
        self._cache[f"rows:{run.provider}:{condition}"] = pairs
        return pairs

    # -- 4. per-call overhead --------------------------------------------------------------

    def overhead(self) -> list[Row]:
        self.sb.configure(result_bytes=None)
        result = child(
            "call_overhead",
            {
                "settings": self.settings,
                "url": self.sb.url,
                "api_key": self.settings["stripe"]["api_key"],
                "report_type": V1_REPORT,
                "interval": list(INTERVAL),
                "iterations": self.sizes.calls,
                "warmup": self.sizes.warmup,
                "rounds": self.sizes.rounds,
            },
        )
        rounds = result["rounds"]
        n = result["iterations"]
        self.log(
            f"  per-call round medians (ms): "
            f"{ {k: [round(v * 1000, 2) for v in vals] for k, vals in rounds.items()} };"
            f" bare urllib3 opened {result['bare_connections']} connection(s)"
        )
        out = []
        for baseline, label, target, ok in (
            ("bare", "urllib3+json, kept-alive pool", "<= 1.30", lambda r: r <= 1.3),
            ("stripe_sdk", "stripe-python create+retrieve", "< 1.00", lambda r: r < 1.0),
        ):
            # Time ratio (not speed): below 1 the gateway spends less per call.
            ratios = [g / b for g, b in zip(rounds["gateway"], rounds[baseline], strict=True)]
            middle, text = summary(ratios)
            out.append(
                Row(
                    f"start+get per call, keep-alive, vs {label} ({n} calls, time ratio)",
                    f"{statistics.median(rounds['gateway']) * 1000:.2f} ms",
                    f"{statistics.median(rounds[baseline]) * 1000:.2f} ms",
                    text,
                    target,
                    ok(middle),
                )
            )
        # What the journal's entry, written before each create is sent, costs per call.
        ratios = [g / b for g, b in zip(rounds["gateway_no_journal"], rounds["bare"], strict=True)]
        out.append(
            Row(
                f"start+get per call, journal off (journal=None), vs urllib3+json ({n} calls,"
                " time ratio)",
                f"{statistics.median(rounds['gateway_no_journal']) * 1000:.2f} ms",
                f"{statistics.median(rounds['bare']) * 1000:.2f} ms",
                summary(ratios)[1],
                "(info)",
                None,
            )
        )
        return out

    # -- 5. fan-out ------------------------------------------------------------------------

    def fanout(self) -> list[Row]:
        """Through ``Gateway.run_many`` as users run it (one call per report over the
        contexts, one after another, then all at once), then with the bench's own thread
        pool of as many threads as the limit and of twice as many (so starts hit the limit
        and the 429s must be absorbed)."""
        s = self.sizes
        rows = self._fanout_run_many(parallel=False) + self._fanout_run_many(parallel=True)
        for workers in (s.fanout_limit, 2 * s.fanout_limit):
            rows += self._fanout(workers)
        return rows

    def _fanout_configure(self) -> None:
        s = self.sizes
        self._reset_sandbox()
        # Small results: this item measures starting and waiting; transfers are items 1-3, 7.
        self.sb.configure(
            run_seconds=s.fanout_seconds,
            v2_concurrency_limit=s.fanout_limit,
            result_bytes=None,
            result_rows=FANOUT_RESULT_ROWS,
            header_log_size=max(10_000, s.fanout_runs * 40),
        )

    def _fanout_restore(self) -> None:
        self.sb.configure(
            run_seconds=0.05, v2_concurrency_limit=100, header_log_size=10_000, result_rows=1000
        )

    def _fanout_run_many(self, *, parallel: bool) -> list[Row]:
        """``fanout_runs`` runs as ``fanout_runs / fanout_contexts`` reports (distinct
        intervals) over the same ``fanout_contexts`` contexts: one ``run_many`` per report
        with ``max_concurrency`` = the limit, called in turn (a nightly loop), or all at
        once with the limit shared out; every file verified, the journal on."""
        s = self.sizes
        reports = max(1, s.fanout_runs // s.fanout_contexts)
        runs = reports * s.fanout_contexts
        start, end = INTERVAL
        batches = [
            {"interval_start": start + n * 60, "interval_end": end - n * 60} for n in range(reports)
        ]
        work = self.tmp / "fanout-run-many"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        self._fanout_configure()
        try:
            result = child(
                "run_many_fanout",
                {
                    "settings": self.settings,
                    "report": V2_REPORT,
                    "batches": batches,
                    "contexts": s.fanout_contexts,
                    "max_concurrency": s.fanout_limit,
                    "parallel": parallel,
                    "journal": str(work / "journal.sqlite3"),
                    "output": str(work / "out"),
                    "timeout": 600,
                },
            )
            stats = self.sb.stats(log=False)
        finally:
            self._fanout_restore()
            shutil.rmtree(work, ignore_errors=True)
        requests = stats["requests"]
        per_run = sum(requests.values()) / runs
        polls = requests.get("retrieve_report_run", 0) / runs
        self.log(f"  run_many fan-out (parallel={parallel}): {result}; sandbox requests {requests}")
        ideal = math.ceil(runs / s.fanout_limit) * s.fanout_seconds
        ratio = result["wall"] / ideal
        all_ok = result["verified"] == runs and not result["errors"]
        how = (
            f"{reports} run_many calls at once, max_concurrency {s.fanout_limit // reports} each"
            if parallel
            else f"{reports} run_many calls in turn, max_concurrency {s.fanout_limit}"
        )
        label = (
            f"fan-out via run_many: {runs} runs = {reports} reports x {s.fanout_contexts}"
            f" contexts ({how}), limit {s.fanout_limit}, {s.fanout_seconds:g} s runs"
        )
        return [
            Row(
                label,
                f"{result['wall']:.1f} s ({result['verified']} verified)",
                f"{ideal:.1f} s ideal",
                f"{ratio:.2f}",
                "<= 1.30",
                ratio <= 1.3 and all_ok,
            ),
            Row(
                f"fan-out via run_many ({'at once' if parallel else 'in turn'}) requests per"
                " run (all operations, download included)",
                f"{per_run:.2f}",
                f"{polls:.2f} polls",
                "-",
                "<= 6",
                per_run <= 6,
            ),
            Row(
                f"fan-out via run_many ({'at once' if parallel else 'in turn'}) peak RSS and"
                " threads",
                f"{result['peak_rss_mib']:.0f} MiB",
                f"{result['peak_threads']} threads",
                "-",
                "(info)",
                None,
            ),
        ]

    def _fanout(self, workers: int) -> list[Row]:
        s = self.sizes
        self._reset_sandbox()
        # Small results: this item measures starting and waiting; transfers are items 1-3, 7.
        self.sb.configure(
            run_seconds=s.fanout_seconds,
            v2_concurrency_limit=s.fanout_limit,
            result_bytes=None,
            result_rows=FANOUT_RESULT_ROWS,
            header_log_size=max(10_000, s.fanout_runs * 40),
        )
        try:
            result = child(
                "fanout",
                {
                    "settings": self.settings,
                    "report": V2_REPORT,
                    "parameters": {"interval_start": INTERVAL[0], "interval_end": INTERVAL[1]},
                    "runs": s.fanout_runs,
                    "contexts": s.fanout_contexts,
                    "workers": workers,
                    "timeout": 600,
                },
            )
            stats = self.sb.stats()
        finally:
            self.sb.configure(
                run_seconds=0.05,
                v2_concurrency_limit=100,
                header_log_size=10_000,
                result_rows=1000,
            )
        requests = stats["requests"]
        per_run = sum(requests.values()) / s.fanout_runs
        polls = requests.get("retrieve_report_run", 0) / s.fanout_runs
        answered_429 = sum(1 for e in stats["request_log"] if e["status"] == 429)
        self.log(
            f"  fan-out {workers} threads: wall {result['wall']:.2f} s, {result['succeeded']} ok,"
            f" errors {result['errors']}; sandbox requests {requests}; 429 answered"
            f" {answered_429}; peak {result['peak_rss_mib']:.0f} MiB RSS,"
            f" {result['peak_threads']} threads"
        )
        ideal = math.ceil(s.fanout_runs / s.fanout_limit) * s.fanout_seconds
        ratio = result["wall"] / ideal
        ok_runs = result["succeeded"] == s.fanout_runs
        tag = f"{workers} threads"
        return [
            Row(
                f"fan-out {s.fanout_runs} runs / {s.fanout_contexts} contexts, limit "
                f"{s.fanout_limit}, {s.fanout_seconds:g} s runs, {tag}",
                f"{result['wall']:.1f} s ({result['succeeded']} ok)",
                f"{ideal:.1f} s ideal",
                f"{ratio:.2f}",
                "<= 1.30",
                ratio <= 1.3 and ok_runs,
            ),
            Row(
                f"fan-out ({tag}) 429 errors surfaced to the caller",
                f"{result['surfaced_429']} ({answered_429} absorbed)",
                "-",
                "-",
                "0",
                result["surfaced_429"] == 0 and not result["errors"],
            ),
            Row(
                f"fan-out ({tag}) requests per run (all operations)",
                f"{per_run:.2f}",
                f"{polls:.2f} polls",
                "-",
                "<= 6",
                per_run <= 6,
            ),
            Row(
                f"fan-out ({tag}) peak RSS and threads",
                f"{result['peak_rss_mib']:.0f} MiB",
                f"{result['peak_threads']} threads",
                "-",
                "(info)",
                None,
            ),
        ]

    # -- 6. start-up -----------------------------------------------------------------------

    def startup(self) -> list[Row]:
        script = Path(sys.executable).parent / "report-gateway"
        cli = (
            [str(script)]
            if script.exists()
            else [shutil.which("report-gateway") or "report-gateway"]
        )
        commands = {
            "stripe": [sys.executable, "-c", "import stripe"],
            "help": [*cli, "--help"],
            "providers": [
                sys.executable,
                "-c",
                "import report_gateway; report_gateway.Gateway().providers()",
            ],
        }
        for argv in commands.values():  # the file cache warm for everyone alike
            subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)

        def timed(argv: list[str]) -> Callable[[], dict[str, Any]]:
            def call() -> dict[str, Any]:
                time.sleep(self.sizes.idle)
                start = time.perf_counter()
                subprocess.run(argv, cwd=ROOT, capture_output=True, check=True)
                return {"seconds": time.perf_counter() - start}

            return call

        pairs = alternate(
            {name: timed(argv) for name, argv in commands.items()},
            max(self.sizes.pairs, self.sizes.startup_repeats),
        )
        self.log(f"  start-up: { {k: [round(v, 3) for v in pairs.values(k)] for k in commands} }")
        rows = []
        for name, label in (
            ("help", "report-gateway --help"),
            ("providers", "import report_gateway; Gateway().providers()"),
        ):
            times = [g / b for g, b in zip(pairs.values(name), pairs.values("stripe"), strict=True)]
            middle, text = summary(times)
            rows.append(
                Row(
                    f"start-up {label} vs import stripe (time ratio)",
                    f"{pairs.median(name) * 1000:.0f} ms",
                    f"{pairs.median('stripe') * 1000:.0f} ms",
                    text,
                    "<= 1.00",
                    middle <= 1.0,
                )
            )
        return rows

    # -- 7. scale curve --------------------------------------------------------------------

    def scale(self) -> list[Row]:
        s = self.sizes
        points = {
            s.small: self.gateway_alone(s.small),
            s.mid: self.downloads(s.mid, "quiet").samples["gateway_durable"],
            s.big: self.downloads(s.big, "quiet").samples["gateway_durable"],
        }
        rows = []
        per_mib = {}
        rss = {}
        for size, samples in points.items():
            seconds = statistics.median(v["seconds"] for v in samples)
            per_mib[size] = seconds / (size / MiB)
            rss[size] = max(v["maxrss_mib"] for v in samples)
            rows.append(
                Row(
                    f"scale: download {_mib(size)} quiet (durable), median",
                    f"{seconds:.2f} s, {rss[size]:.1f} MiB RSS",
                    "-",
                    f"{per_mib[size] * 1000:.2f} ms/MiB",
                    "(info)",
                    None,
                )
            )
        growth = per_mib[s.big] / per_mib[s.mid]
        rows.append(
            Row(
                f"scale: time per MiB, {_mib(s.big)} vs {_mib(s.mid)}",
                f"{per_mib[s.big] * 1000:.2f} ms/MiB",
                f"{per_mib[s.mid] * 1000:.2f} ms/MiB",
                f"{growth:.2f}",
                "<= 1.50 (linear)",
                growth <= 1.5,
            )
        )
        spread = max(rss.values()) - min(rss.values())
        rows.append(
            Row(
                f"scale: peak RSS spread {_mib(s.small)}..{_mib(s.big)}",
                f"{spread:.1f} MiB",
                f"{min(rss.values()):.1f} MiB",
                "-",
                "<= 10 MiB (flat)",
                spread <= 10,
            )
        )
        return rows

    # -- 8. Zuora conversion ---------------------------------------------------------------

    def zuora(self) -> list[Row]:
        size = self.sizes.utf16
        run = self.run("zuora", size)
        rows = []
        for condition in CONDITIONS:
            with self.condition(condition):
                pairs = alternate(
                    {
                        "gateway": lambda: self._gateway_download(run, True),
                        "bare": lambda: self._bare("bare_utf16", run),
                        "bare_fsync": lambda: self._bare("bare_utf16", run, fsync=True),
                    },
                    self.sizes.pairs,
                )
            self._log_pairs(f"zuora {_mib(size)} {condition}", pairs)
            rows.append(
                _ratio_row(
                    f"Zuora UTF-16 {_mib(size)} to UTF-8 CSV {condition} (default) vs bare codecs",
                    pairs,
                    "gateway",
                    "bare",
                    size=size / MiB,
                    unit="MiB/s",
                    minimum=0.80,
                )
            )
            # Information: against the same bare conversion made durable (one fsync).
            rows.append(
                _ratio_row(
                    f"Zuora UTF-16 {_mib(size)} to UTF-8 CSV {condition} (default) vs bare"
                    " codecs + fsync",
                    pairs,
                    "gateway",
                    "bare_fsync",
                    size=size / MiB,
                    unit="MiB/s",
                    minimum=None,
                )
            )
        return rows

    # -- 9. chunk size for the no-allocation copy (decides the later rework) ---------------

    def chunks(self) -> list[Row]:
        size = self.sizes.big
        run = self.run("stripe", size)
        rows = []
        for condition in CONDITIONS:
            contenders: dict[str, Callable[[], dict[str, Any]]] = {
                "stream_1MiB": lambda: self._bare("bare_download", run),
            }
            for chunk in self.sizes.chunks:
                contenders[f"readinto_{_mib(chunk)}"] = (
                    lambda chunk=chunk: self._bare("bare_readinto", run, chunk=chunk)  # type: ignore[misc]
                )
            with self.condition(condition):
                pairs = alternate(contenders, self.sizes.pairs)
            self._log_pairs(f"chunks {_mib(size)} {condition}", pairs)
            for chunk in self.sizes.chunks:
                rows.append(
                    _ratio_row(
                        f"bare readinto {_mib(chunk)} buffer, {_mib(size)} {condition},"
                        " vs bare stream(1 MiB)",
                        pairs,
                        f"readinto_{_mib(chunk)}",
                        "stream_1MiB",
                        size=size / MiB,
                        unit="MiB/s",
                        minimum=None,
                    )
                )
        return rows

    # -- 10. waiting runs ------------------------------------------------------------------

    def waiting(self) -> list[Row]:
        """``waiting_runs`` runs waited on at once through ONE ``run_many`` (max_concurrency
        = the count, runs outlasting its timeout, all waiting ``waiting_hold`` s, then
        Ctrl-C), measured at full size. The same count with one ``Gateway.wait`` thread each
        is ``waiting_threads`` (opt-in: it starts another 10,000 runs for an info row)."""
        s = self.sizes
        work = self.tmp / "waiting-run-many"
        shutil.rmtree(work, ignore_errors=True)
        work.mkdir()
        self._waiting_configure()
        try:
            result = child(
                "run_many_waiting",
                {
                    "settings": self.settings,
                    "report": V2_REPORT,
                    "parameters": {"interval_start": INTERVAL[0], "interval_end": INTERVAL[1]},
                    "runs": s.waiting_runs,
                    "timeout": s.waiting_timeout,
                    "poll_interval": s.waiting_poll,
                    "hold": s.waiting_hold,
                    "journal": str(work / "journal.sqlite3"),
                    "output": str(work / "out"),
                },
            )
        finally:
            self._reset_sandbox()
            self.sb.configure(run_seconds=0.05, v2_concurrency_limit=100)
            shutil.rmtree(work, ignore_errors=True)
        self.log(f"  waiting runs via run_many: {result}")
        runs, peak, before = result["runs"], result["peak_rss_mib"], result["rss_before_waits_mib"]
        per_run = (peak - before) / runs * 1024
        all_waited = result["peak_in_flight"] == runs and result["interrupted_with_run"] == runs
        return [
            Row(
                f"peak RSS, {runs:,} runs waiting at once via ONE run_many"
                f" (max_concurrency {runs:,}, timeout {s.waiting_timeout:g} s; all"
                f" {result['peak_in_flight']:,} waiting for {s.waiting_hold:g} s, then Ctrl-C)",
                f"{peak:.0f} MiB ({result['peak_threads']} threads)",
                f"{before:.0f} MiB before the call",
                f"{per_run:.1f} KiB/run",
                f"< 200 MiB at {runs:,}",
                peak < 200 and all_waited,
            ),
        ]

    def _waiting_configure(self) -> None:
        """An empty sandbox whose runs outlast the waiting figures, with room for them all."""
        self._reset_sandbox()
        self.sb.configure(
            run_seconds=3600.0,
            v2_concurrency_limit=self.sizes.waiting_runs * 2,
            result_bytes=None,
            header_log_size=10_000,
        )

    def waiting_threads(self) -> list[Row]:
        """The comparison for ``waiting``: the same count of runs, one ``Gateway.wait``
        thread each (the bench's threads, not a user's path). Information only."""
        s = self.sizes
        self._waiting_configure()
        try:
            threads = child(
                "waiting_runs",
                {
                    "settings": self.settings,
                    "report": V2_REPORT,
                    "parameters": {"interval_start": INTERVAL[0], "interval_end": INTERVAL[1]},
                    "runs": s.waiting_runs,
                    "contexts": s.fanout_contexts,
                    "hold": s.waiting_hold,
                    "poll_interval": s.waiting_hold / 2,
                },
            )
        finally:
            self._reset_sandbox()
            self.sb.configure(run_seconds=0.05, v2_concurrency_limit=100)
        self.log(f"  waiting runs, one wait() thread each: {threads}")
        t_peak, t_before = threads["peak_rss_mib"], threads["rss_before_waits_mib"]
        return [
            Row(
                f"peak RSS, {threads['runs']:,} waiting runs, one Gateway.wait thread each"
                " (the bench's threads, for comparison)",
                f"{t_peak:.0f} MiB ({threads['peak_threads']} threads)",
                f"{t_before:.0f} MiB before the waits",
                f"{(t_peak - t_before) / threads['runs'] * 1024:.0f} KiB/run",
                "(info)",
                None,
            )
        ]

    # -- 11. waits in one event loop (AsyncGateway) ------------------------------------------

    def aio_waiting(self) -> list[Row]:
        """N concurrent ``AsyncGateway.wait`` in one event loop against N ``Gateway.wait``
        threads (the same runs setup, the same hold and poll interval), alternating pairs of
        fresh processes: peak threads and the RSS the waits add."""
        s = self.sizes
        self._reset_sandbox()
        self.sb.configure(
            run_seconds=max(600.0, s.waiting_hold * 10),
            v2_concurrency_limit=s.aio_waits * 2 * s.aio_pairs * 2,
            result_bytes=None,
        )
        args = {
            "settings": self.settings,
            "report": V2_REPORT,
            "parameters": {"interval_start": INTERVAL[0], "interval_end": INTERVAL[1]},
            "runs": s.aio_waits,
            "contexts": s.fanout_contexts,
            "hold": s.waiting_hold,
            "poll_interval": s.waiting_hold / 10,
        }
        try:
            pairs = alternate(
                {
                    "aio": lambda: child("aio_waiting_runs", args),
                    "threads": lambda: child("waiting_runs", args),
                },
                s.aio_pairs,
            )
        finally:
            self._reset_sandbox()
            self.sb.configure(run_seconds=0.05, v2_concurrency_limit=100)

        def grown(sample: dict[str, Any]) -> float:
            return float(sample["peak_rss_mib"] - sample["rss_before_waits_mib"])

        for name in ("aio", "threads"):
            self.log(f"  {name} waits: {pairs.samples[name]}")
        ratios = [
            max(grown(t), 0.1) / max(grown(a), 0.1)
            for a, t in zip(pairs.samples["aio"], pairs.samples["threads"], strict=True)
        ]
        _, text = summary(ratios)
        aio_threads = max(int(x["peak_threads"]) for x in pairs.samples["aio"])
        aio_peak = statistics.median(x["peak_rss_mib"] for x in pairs.samples["aio"])
        thread_peak = statistics.median(x["peak_rss_mib"] for x in pairs.samples["threads"])
        thread_count = max(int(x["peak_threads"]) for x in pairs.samples["threads"])
        all_waited = all(
            x["timed_out"] == s.aio_waits for x in pairs.samples["aio"] + pairs.samples["threads"]
        )
        return [
            Row(
                f"{s.aio_waits} concurrent AsyncGateway.wait in one event loop vs one"
                " Gateway.wait thread each: peak RSS (ratio: RSS the waits add, threads/aio)",
                f"{aio_peak:.0f} MiB, {aio_threads} threads",
                f"{thread_peak:.0f} MiB, {thread_count} threads",
                text,
                "<= 16 threads",
                aio_threads <= 16 and all_waited,
            )
        ]


def arrow(self: Bench) -> list[Row]:
    """to_arrow against pyarrow.csv.open_csv on the same CSV (quiet machine): what the
    tolerant, checked, typed Python path costs next to Arrow's C++ reader. Information,
    no target: the gap is the price of rows()' rules, not a regression to catch."""
    size = self.sizes.rows
    run = self.run("stripe", size)
    local = self.tmp / "local-arrow.csv"
    self._bare("bare_download", run, keep=local)
    idle = self.sizes.idle
    try:
        pairs = alternate(
            {
                "gateway": lambda: child(
                    "gateway_to_arrow",
                    {
                        "settings": self.settings,
                        "provider": "stripe",
                        "run_id": run.id,
                        "idle": idle,
                    },
                ),
                "open_csv": lambda: child("pyarrow_open_csv", {"path": str(local), "idle": idle}),
            },
            self.sizes.pairs,
        )
    finally:
        local.unlink(missing_ok=True)
    self._log_pairs("to_arrow stripe quiet", pairs)
    counts = {v["rows"] for values in pairs.samples.values() for v in values}
    if len(counts) != 1:
        raise RuntimeError(f"row counts differ: {sorted(counts)}")
    rows = counts.pop()
    peak = max(pairs.values("gateway", "maxrss_mib"))
    return [
        _ratio_row(
            f"to_arrow() {_mib(size)} CSV vs pyarrow.csv.open_csv (peak {peak:.0f} MiB)",
            pairs,
            "gateway",
            "open_csv",
            size=rows / 1000,
            unit="k rows/s",
            minimum=None,
        )
    ]


BENCHMARKS: dict[str, tuple[str, Callable[[Bench], list[Row]]]] = {
    "download": ("1", Bench.download_throughput),
    "memory": ("2", Bench.memory),
    "rows": ("3", Bench.rows),
    "overhead": ("4", Bench.overhead),
    "fanout": ("5", Bench.fanout),
    "startup": ("6", Bench.startup),
    "scale": ("7", Bench.scale),
    "zuora": ("8", Bench.zuora),
    "chunks": ("9", Bench.chunks),
    "waiting": ("10", Bench.waiting),
    "waiting_threads": ("10", Bench.waiting_threads),
    "arrow": ("11", arrow),
    "aio_waiting": ("12", Bench.aio_waiting),
}
