"""Measured work, one task per fresh process: `python -m tests.bench.child TASK JSON`.

A fresh interpreter per measurement makes peak RSS (``ru_maxrss``) belong to that one task,
and keeps the sandbox (another process) off this process's GIL. The task prints one JSON
line: what it measured, plus ``maxrss_mib``.
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
    start = time.perf_counter()
    path = gw.download(run, args["path"], durable=args["durable"], raw=args.get("raw", False))
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "bytes": os.path.getsize(path)}


def bare_download(args: dict[str, Any]) -> dict[str, Any]:
    """The limit: urllib3 streaming the same URL to disk in the same chunk size."""
    import urllib3

    pool = urllib3.PoolManager()
    start = time.perf_counter()
    response = pool.request("GET", args["url"], headers=args["headers"], preload_content=False)
    if response.status != 200:
        raise SystemExit(f"bare download: HTTP {response.status}")
    size = 0
    with open(args["path"], "wb") as out:
        for chunk in response.stream(CHUNK):
            out.write(chunk)
            size += len(chunk)
        if args["fsync"]:
            out.flush()
            os.fsync(out.fileno())
    response.release_conn()
    if args["fsync"]:
        # The same durability the gateway gives: the rename's folder entry on disk too.
        fd = os.open(os.path.dirname(args["path"]), os.O_RDONLY)
        os.fsync(fd)
        os.close(fd)
    return {"seconds": time.perf_counter() - start, "bytes": size}


def gateway_rows(args: dict[str, Any]) -> dict[str, Any]:
    """Every row of a result through ``Gateway.rows`` (counted, not kept)."""
    gw = _gateway(args["settings"])
    run = _run(gw, args)
    start = time.perf_counter()
    count = 0
    for _row in gw.rows(run):
        count += 1
    return {"seconds": time.perf_counter() - start, "rows": count}


def dictreader_rows(args: dict[str, Any]) -> dict[str, Any]:
    """The standard library over the same bytes on local disk."""
    import csv

    start = time.perf_counter()
    count = 0
    with open(args["path"], encoding=args["encoding"], newline="") as fh:
        for _row in csv.DictReader(fh, delimiter=args["delimiter"]):
            count += 1
    return {"seconds": time.perf_counter() - start, "rows": count}


def call_overhead(args: dict[str, Any]) -> dict[str, Any]:
    """start + get per client, interleaved in rounds so drift hits every client alike.

    Returns each client's median seconds per (create, retrieve) pair.
    """
    import urllib3

    url = args["url"]
    key = args["api_key"]
    report = args["report_type"]
    interval = args["interval"]
    gw = _gateway(args["settings"])

    def through_gateway() -> None:
        run = gw.start(
            "stripe",
            report,
            {"interval_start": interval[0], "interval_end": interval[1]},
        )
        gw.get("stripe", run.id)

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
    }
    for call in clients.values():
        for _ in range(args["warmup"]):
            call()
    samples: dict[str, list[float]] = {name: [] for name in clients}
    names = list(clients)
    rounds = args["rounds"]
    per_round = max(1, args["iterations"] // rounds)
    clock = time.perf_counter
    for index in range(rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            call = clients[name]
            for _ in range(per_round):
                start = clock()
                call()
                samples[name].append(clock() - start)
    return {name: statistics.median(values) for name, values in samples.items()} | {
        "iterations": per_round * rounds
    }


def fanout(args: dict[str, Any]) -> dict[str, Any]:
    """Many runs over many Stripe-Context accounts through ONE Gateway from a thread pool."""
    from concurrent.futures import ThreadPoolExecutor, as_completed

    from report_gateway import Scope
    from reporting_runtime import ApiError

    gw = _gateway(args["settings"])
    gw.providers()
    report = args["report"]
    parameters = args["parameters"]

    def one(index: int) -> str:
        run = gw.start(
            "stripe-v2", report, parameters, scope=Scope(context=f"acct_bench{index:08d}")
        )
        return gw.wait(run, timeout=args["timeout"]).status.value  # type: ignore[no-any-return]

    surfaced_429 = 0
    errors: dict[str, int] = {}
    succeeded = 0
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
    return {
        "wall": wall,
        "succeeded": succeeded,
        "errors": errors,
        "surfaced_429": surfaced_429,
    }


TASKS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "gateway_download": gateway_download,
    "bare_download": bare_download,
    "gateway_rows": gateway_rows,
    "dictreader_rows": dictreader_rows,
    "call_overhead": call_overhead,
    "fanout": fanout,
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
