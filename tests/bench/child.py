"""Measured work, one task per fresh process: `python -m tests.bench.child TASK JSON`.

A fresh interpreter per measurement makes peak RSS (``ru_maxrss``) belong to that one task,
and keeps the sandbox (another process) off this process's GIL. The task prints one JSON
line: what it measured, plus ``maxrss_mib``.

Every transfer and parse task does its setup first, then sleeps ``args["idle"]`` seconds,
then starts its clock: subject and baseline get the same setup and the same pause (see
``method.py``).
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

CHUNK = 1 << 20


def _maxrss_mib() -> float:
    # Linux reports KiB.
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _idle(args: dict[str, Any]) -> None:
    time.sleep(float(args.get("idle", 0.0)))


def _gateway(settings: dict[str, Any]) -> Any:
    from report_gateway import Gateway

    return Gateway(settings=settings)


def _run(gw: Any, args: dict[str, Any]) -> Any:
    from report_gateway import Scope

    return gw.get(args["provider"], args["run_id"], scope=Scope(**args.get("scope", {})))


def gateway_download(args: dict[str, Any]) -> dict[str, Any]:
    """``Gateway.download`` of a finished run (the run is fetched before the clock starts)."""
    gw = _gateway(args["settings"])
    run = _run(gw, args)
    _idle(args)
    start = time.perf_counter()
    path = gw.download(run, args["path"], durable=args["durable"], raw=args.get("raw", False))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": os.path.getsize(path)}


def bare_download(args: dict[str, Any]) -> dict[str, Any]:
    """The limit: urllib3 streaming the same URL to disk in the same chunk size, no fsync
    (with ``args["fsync"]``, one fsync at the end: the simplest durable copy)."""
    import urllib3

    pool = urllib3.PoolManager()
    _idle(args)
    start = time.perf_counter()
    response = pool.request("GET", args["url"], headers=args["headers"], preload_content=False)
    if response.status != 200:
        raise SystemExit(f"bare download: HTTP {response.status}")
    size = 0
    with open(args["path"], "wb") as out:
        for chunk in response.stream(CHUNK):
            out.write(chunk)
            size += len(chunk)
        if args.get("fsync"):
            out.flush()
            os.fsync(out.fileno())
    response.release_conn()
    return {"seconds": time.perf_counter() - start, "bytes": size}


def bare_readinto(args: dict[str, Any]) -> dict[str, Any]:
    """The copy with no allocation on the hot path: ``readinto`` one preallocated buffer of
    ``args["chunk"]`` bytes, write from a view of it (issue 12's candidate design).

    urllib3's own ``HTTPResponse.readinto`` reads a fresh bytes object and copies it, so the
    loop reads from the underlying ``http.client`` response, which fills the buffer from the
    socket directly. Bench-only use of a private attribute: this measures the design.
    """
    import urllib3

    pool = urllib3.PoolManager()
    buffer = bytearray(int(args["chunk"]))
    view = memoryview(buffer)
    _idle(args)
    start = time.perf_counter()
    response = pool.request(
        "GET", args["url"], headers=args["headers"], preload_content=False, decode_content=False
    )
    if response.status != 200:
        raise SystemExit(f"bare readinto: HTTP {response.status}")
    raw = response._fp
    assert raw is not None
    size = 0
    with open(args["path"], "wb") as out:
        while count := raw.readinto(view):
            out.write(view[:count])
            size += count
    response.release_conn()
    return {"seconds": time.perf_counter() - start, "bytes": size}


def bare_utf16(args: dict[str, Any]) -> dict[str, Any]:
    """The limit for Zuora's conversion: stream the export, decode UTF-16 with ``codecs``,
    write UTF-8 (cells and separators untouched, which the gateway must also rewrite); with
    ``args["fsync"]``, one fsync at the end."""
    import codecs

    import urllib3

    pool = urllib3.PoolManager()
    decoder = codecs.getincrementaldecoder("utf-16")()
    _idle(args)
    start = time.perf_counter()
    response = pool.request("GET", args["url"], headers=args["headers"], preload_content=False)
    if response.status != 200:
        raise SystemExit(f"bare utf16: HTTP {response.status}")
    size = 0
    with open(args["path"], "wb") as out:
        for chunk in response.stream(CHUNK):
            out.write(decoder.decode(chunk).encode("utf-8"))
            size += len(chunk)
        out.write(decoder.decode(b"", final=True).encode("utf-8"))
        if args.get("fsync"):
            out.flush()
            os.fsync(out.fileno())
    response.release_conn()
    return {"seconds": time.perf_counter() - start, "bytes": size}


def gateway_rows(args: dict[str, Any]) -> dict[str, Any]:
    """Every row of a result through ``Gateway.rows`` (counted, not kept)."""
    gw = _gateway(args["settings"])
    run = _run(gw, args)
    _idle(args)
    start = time.perf_counter()
    count = 0
    for _row in gw.rows(run):
        count += 1
    return {"seconds": time.perf_counter() - start, "rows": count}


def dictreader_rows(args: dict[str, Any]) -> dict[str, Any]:
    """The standard library over the same bytes on local disk."""
    import csv

    _idle(args)
    start = time.perf_counter()
    count = 0
    with open(args["path"], encoding=args["encoding"], newline="") as fh:
        for _row in csv.DictReader(fh, delimiter=args["delimiter"]):
            count += 1
    return {"seconds": time.perf_counter() - start, "rows": count}


def gateway_to_arrow(args: dict[str, Any]) -> dict[str, Any]:
    """The whole result as a typed ``pyarrow.Table`` through ``Gateway.to_arrow``."""
    gw = _gateway(args["settings"])
    run = _run(gw, args)
    _idle(args)
    start = time.perf_counter()
    table = gw.to_arrow(run)
    return {
        "seconds": time.perf_counter() - start,
        "rows": table.num_rows,
        "maxrss_mib": _maxrss_mib(),
    }


def pyarrow_open_csv(args: dict[str, Any]) -> dict[str, Any]:
    """pyarrow's streaming CSV reader over the same bytes on local disk, batches kept."""
    import pyarrow as pa
    import pyarrow.csv as pacsv

    _idle(args)
    start = time.perf_counter()
    reader = pacsv.open_csv(args["path"])
    table = pa.Table.from_batches(list(reader), schema=reader.schema)
    return {
        "seconds": time.perf_counter() - start,
        "rows": table.num_rows,
        "maxrss_mib": _maxrss_mib(),
    }


def call_overhead(args: dict[str, Any]) -> dict[str, Any]:
    """start + get per client over kept-alive connections, interleaved in rounds (who goes
    first rotates) so drift hits every client alike.

    Returns, per client, the median seconds of each round's (create, retrieve) pairs: the
    bench takes the ratio within each round.
    """
    import urllib3

    url = args["url"]
    key = args["api_key"]
    report = args["report_type"]
    interval = args["interval"]
    gw = _gateway(args["settings"])
    # The same calls with the run journal off: what its write-ahead entry costs a start
    # (an info figure; the headline is the default, journal on).
    from report_gateway import Gateway

    unjournaled = Gateway(settings=args["settings"], journal=None)

    def start_and_get(client: Any) -> None:
        run = client.start(
            "stripe",
            report,
            {"interval_start": interval[0], "interval_end": interval[1]},
        )
        client.get("stripe", run.id)

    def through_gateway() -> None:
        start_and_get(gw)

    def without_journal() -> None:
        start_and_get(unjournaled)

    pool = urllib3.PoolManager()
    form = (
        f"report_type={report}&parameters%5Binterval_start%5D={interval[0]}"
        f"&parameters%5Binterval_end%5D={interval[1]}"
    ).encode()
    auth = {"Authorization": f"Bearer {key}"}

    def bare() -> None:
        created = pool.request(
            "POST",
            f"{url}/v1/reporting/report_runs",
            body=form,
            headers={
                **auth,
                "Content-Type": "application/x-www-form-urlencoded",
                "Idempotency-Key": str(uuid.uuid4()),
            },
        )
        if created.status != 200:
            raise SystemExit(f"bare create: HTTP {created.status}")
        run = json.loads(created.data)
        got = pool.request("GET", f"{url}/v1/reporting/report_runs/{run['id']}", headers=auth)
        json.loads(got.data)

    import stripe

    sdk = stripe.StripeClient(key, base_addresses={"api": url, "files": url})

    def stripe_sdk() -> None:
        run = sdk.v1.reporting.report_runs.create(
            params={
                "report_type": report,
                "parameters": {"interval_start": interval[0], "interval_end": interval[1]},
            }
        )
        sdk.v1.reporting.report_runs.retrieve(run.id)

    clients: dict[str, Callable[[], None]] = {
        "gateway": through_gateway,
        "bare": bare,
        "stripe_sdk": stripe_sdk,
        "gateway_no_journal": without_journal,
    }
    for call in clients.values():
        for _ in range(args["warmup"]):
            call()
    samples: dict[str, list[list[float]]] = {name: [] for name in clients}
    names = list(clients)
    rounds = args["rounds"]
    per_round = max(1, args["iterations"] // rounds)
    clock = time.perf_counter
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            call = clients[name]
            times = []
            for _ in range(per_round):
                start = clock()
                call()
                times.append(clock() - start)
            samples[name].append(times)
    # Connections opened by the bare client: 1 means every call rode one kept-alive socket.
    bare_connections = sum(p.num_connections for p in pool.pools._container.values())
    return {
        "rounds": {name: [statistics.median(t) for t in rows] for name, rows in samples.items()},
        "iterations": per_round * rounds,
        "bare_connections": bare_connections,
    }


def _peak_sampler(stop: Any, peaks: dict[str, float]) -> None:
    """Peak RSS and thread count while the work runs (ru_maxrss alone misses threads)."""
    import threading

    import psutil

    me = psutil.Process()
    while not stop.wait(0.1):
        peaks["rss_mib"] = max(peaks.get("rss_mib", 0.0), me.memory_info().rss / (1 << 20))
        peaks["threads"] = max(peaks.get("threads", 0), threading.active_count())


def fanout(args: dict[str, Any]) -> dict[str, Any]:
    """Many runs over many Stripe-Context accounts through ONE Gateway from a thread pool;
    run i is started in context ``i % contexts``."""
    import threading
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from report_gateway import Scope
    from reporting_runtime import ApiError

    gw = _gateway(args["settings"])
    gw.providers()
    report = args["report"]
    parameters = args["parameters"]
    contexts = args["contexts"]

    def one(index: int) -> str:
        scope = Scope(context=f"acct_bench{index % contexts:08d}")
        run = gw.start("stripe-v2", report, parameters, scope=scope)
        return gw.wait(run, timeout=args["timeout"]).status.value  # type: ignore[no-any-return]

    surfaced_429 = 0
    errors: dict[str, int] = {}
    succeeded = 0
    peaks: dict[str, float] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_peak_sampler, args=(stop, peaks), daemon=True)
    sampler.start()
    start = time.perf_counter()
    with ThreadPoolExecutor(max_workers=args["workers"]) as pool:
        futures = [pool.submit(one, i) for i in range(args["runs"])]
        for future in as_completed(futures):
            try:
                if future.result() == "succeeded":
                    succeeded += 1
            except Exception as exc:
                name = type(exc).__name__
                errors[name] = errors.get(name, 0) + 1
                cause = getattr(exc, "cause", None) or exc.__cause__
                if isinstance(cause, ApiError) and cause.status == 429:
                    surfaced_429 += 1
    wall = time.perf_counter() - start
    stop.set()
    sampler.join()
    return {
        "wall": wall,
        "succeeded": succeeded,
        "errors": errors,
        "surfaced_429": surfaced_429,
        "peak_rss_mib": peaks.get("rss_mib", 0.0),
        "peak_threads": peaks.get("threads", 0),
    }


def _sampled(work: Callable[[], Any]) -> tuple[Any, float, dict[str, float]]:
    """``work()``'s answer, its wall time, and the peak RSS and threads meanwhile."""
    import threading

    peaks: dict[str, float] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_peak_sampler, args=(stop, peaks), daemon=True)
    sampler.start()
    start = time.perf_counter()
    try:
        answer = work()
    finally:
        wall = time.perf_counter() - start
        stop.set()
        sampler.join()
    return answer, wall, peaks


def run_many_fanout(args: dict[str, Any]) -> dict[str, Any]:
    """``Gateway.run_many`` as a nightly job calls it: one call per report (``batches``
    parameter sets) over the same ``contexts`` Stripe-Context scopes, the calls one after
    another (``parallel``: all at once, the concurrency shared out), each file downloaded
    and verified, the journal on (a fresh file). Counts, wall, peak RSS and threads."""
    from concurrent.futures import ThreadPoolExecutor

    from report_gateway import Gateway, Scope

    gw = Gateway(settings=args["settings"], journal=args["journal"])
    gw.providers()
    scopes = [Scope(context=f"acct_bench{i:08d}") for i in range(args["contexts"])]
    batches: list[dict[str, Any]] = args["batches"]
    parallel = bool(args.get("parallel"))
    share = args["max_concurrency"] // (len(batches) if parallel else 1)

    def one(number: int) -> Any:
        return gw.run_many(
            "stripe-v2",
            args["report"],
            batches[number],
            scopes=scopes,
            max_concurrency=share,
            output_dir=os.path.join(args["output"], str(number)),
            timeout=args["timeout"],
        )

    def work() -> list[Any]:
        if not parallel:
            return [one(n) for n in range(len(batches))]
        with ThreadPoolExecutor(len(batches)) as pool:
            return list(pool.map(one, range(len(batches))))

    results, wall, peaks = _sampled(work)
    verified = sum(
        1
        for result in results
        for o in result.outcomes
        if o.state == "done" and o.path is not None and os.path.getsize(o.path) == o.size
    )
    errors: dict[str, int] = {}
    first_error: dict[str, str] = {}
    for result in results:
        for o in result.failed:
            name = type(o.error).__name__
            errors[name] = errors.get(name, 0) + 1
            first_error.setdefault(name, str(o.error)[:300])
    return {
        "wall": wall,
        "runs": sum(len(r.outcomes) for r in results),
        "verified": verified,
        "errors": errors,
        "first_error": first_error,
        "peak_active": sum(r.peak_active for r in results)
        if parallel
        else max(r.peak_active for r in results),
        "peak_rss_mib": peaks.get("rss_mib", 0.0),
        "peak_threads": peaks.get("threads", 0),
    }


def run_many_waiting(args: dict[str, Any]) -> dict[str, Any]:
    """N runs waited on at once the way a user waits on that many: ONE ``run_many`` over N
    Stripe-Context scopes with ``max_concurrency=N``. The runs outlast its ``timeout``;
    once every scope is waiting (starting ten thousand takes minutes on a busy machine),
    they are held ``hold`` seconds, then Ctrl-C ends the fan-out (``FanOutInterrupted``,
    every scope ``interrupted`` with its run id). RSS before the call and at its peak, peak
    threads, and the most scopes in flight at once (from ``on_progress``)."""
    import signal
    import threading

    import psutil
    from report_gateway import Gateway, Scope
    from report_gateway.fanout import FanOutInterrupted

    # A shell's background job starts with SIGINT ignored, and Python then keeps ignoring
    # it: the Ctrl-C below would never arrive (the whole bench hung so, run with `&`).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    gw = Gateway(settings=args["settings"], journal=args["journal"])
    gw.providers()
    gw.journal  # opened before the baseline  # noqa: B018
    scopes = [Scope(context=f"acct_wait{i:08d}") for i in range(args["runs"])]
    in_flight = 0
    everyone = threading.Event()

    def heard(progress: Any) -> None:
        nonlocal in_flight
        in_flight = max(in_flight, progress.running)
        if progress.running == len(scopes):
            everyone.set()

    def ctrl_c_after_the_hold() -> None:
        everyone.wait()
        time.sleep(args["hold"])
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=ctrl_c_after_the_hold, daemon=True).start()
    before = psutil.Process().memory_info().rss / (1 << 20)

    def work() -> Any:
        try:
            gw.run_many(
                "stripe-v2",
                args["report"],
                args["parameters"],
                scopes=scopes,
                max_concurrency=len(scopes),
                output_dir=args["output"],
                on_progress=heard,
                timeout=args["timeout"],
                poll_interval=args["poll_interval"],
            )
        except FanOutInterrupted as stopped:
            return stopped.result
        raise SystemExit("the fan-out ended before every scope was waiting")

    result, wall, peaks = _sampled(work)
    return {
        "runs": len(scopes),
        "wall": wall,
        "rss_before_waits_mib": before,
        "peak_rss_mib": peaks.get("rss_mib", before),
        "peak_threads": peaks.get("threads", 0),
        "peak_in_flight": in_flight,
        "peak_active": result.peak_active,
        "interrupted_with_run": sum(1 for o in result.interrupted if o.run_id),
    }


def waiting_runs(args: dict[str, Any]) -> dict[str, Any]:
    """Memory of N runs being waited on at once, one ``Gateway.wait`` thread each (how a
    caller without an async API waits on many): RSS before the waits start and at their
    peak. The runs outlast the hold, so every wait is still waiting when it times out."""
    import threading

    import psutil
    from report_gateway import Scope, WaitTimeoutError

    gw = _gateway(args["settings"])
    contexts = args["contexts"]
    runs = [
        gw.start(
            "stripe-v2",
            args["report"],
            args["parameters"],
            scope=Scope(context=f"acct_wait{i % contexts:08d}"),
        )
        for i in range(args["runs"])
    ]
    me = psutil.Process()
    before = me.memory_info().rss / (1 << 20)
    timed_out = 0
    lock = threading.Lock()

    def wait(run: Any) -> None:
        nonlocal timed_out
        try:
            gw.wait(run, timeout=args["hold"], poll_interval=args["poll_interval"])
        except WaitTimeoutError:
            with lock:
                timed_out += 1

    peaks: dict[str, float] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_peak_sampler, args=(stop, peaks), daemon=True)
    sampler.start()
    threads = [threading.Thread(target=wait, args=(run,)) for run in runs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stop.set()
    sampler.join()
    return {
        "runs": len(runs),
        "rss_before_waits_mib": before,
        "peak_rss_mib": peaks.get("rss_mib", before),
        "peak_threads": peaks.get("threads", 0),
        "timed_out": timed_out,
    }


def aio_waiting_runs(args: dict[str, Any]) -> dict[str, Any]:
    """The same N waits as ``waiting_runs``, as N ``AsyncGateway.wait`` coroutines in one
    event loop (polls in the bounded call pool, sleeps on the loop): RSS before the waits
    and at their peak, peak threads."""
    import asyncio
    import threading

    import psutil
    from report_gateway import Scope, WaitTimeoutError
    from report_gateway.aio import AsyncGateway

    gw = _gateway(args["settings"])
    contexts = args["contexts"]
    runs = [
        gw.start(
            "stripe-v2",
            args["report"],
            args["parameters"],
            scope=Scope(context=f"acct_wait{i % contexts:08d}"),
        )
        for i in range(args["runs"])
    ]
    me = psutil.Process()
    before = me.memory_info().rss / (1 << 20)
    peaks: dict[str, float] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=_peak_sampler, args=(stop, peaks), daemon=True)
    sampler.start()

    async def wait_all() -> int:
        agw = AsyncGateway(gw)

        async def one(run: Any) -> bool:
            try:
                await agw.wait(run, timeout=args["hold"], poll_interval=args["poll_interval"])
            except WaitTimeoutError:
                return True
            return False

        try:
            return sum(await asyncio.gather(*(one(run) for run in runs)))
        finally:
            await agw.aclose()

    timed_out = asyncio.run(wait_all())
    stop.set()
    sampler.join()
    return {
        "runs": len(runs),
        "rss_before_waits_mib": before,
        "peak_rss_mib": peaks.get("rss_mib", before),
        "peak_threads": peaks.get("threads", 0),
        "timed_out": timed_out,
    }


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "gateway_download": gateway_download,
    "bare_download": bare_download,
    "bare_readinto": bare_readinto,
    "bare_utf16": bare_utf16,
    "gateway_rows": gateway_rows,
    "dictreader_rows": dictreader_rows,
    "gateway_to_arrow": gateway_to_arrow,
    "pyarrow_open_csv": pyarrow_open_csv,
    "call_overhead": call_overhead,
    "fanout": fanout,
    "waiting_runs": waiting_runs,
    "run_many_fanout": run_many_fanout,
    "run_many_waiting": run_many_waiting,
    "aio_waiting_runs": aio_waiting_runs,
}


def main(argv: list[str]) -> int:
    task, raw = argv
    before = resource.getrusage(resource.RUSAGE_SELF)
    result = TASKS[task](json.loads(raw))
    after = resource.getrusage(resource.RUSAGE_SELF)
    result["maxrss_mib"] = _maxrss_mib()
    # Whole-task CPU (setup included): tells client work from waiting on the server.
    result["cpu_user"] = after.ru_utime - before.ru_utime
    result["cpu_sys"] = after.ru_stime - before.ru_stime
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
