"""What the providers share: the live config, seeded ids, the clock and the statistics."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
import time
from collections import Counter, deque
from typing import Any

from report_gateway_sandbox.config import SandboxConfig
from report_gateway_sandbox.faults import FaultInjector
from report_gateway_sandbox.webhooks import EventBuilder, WebhookSender

_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
_HEX = "0123456789abcdef"


class SandboxState:
    """Mutable sandbox-wide state; providers keep their own runs but draw ids and time here."""

    def __init__(self, config: SandboxConfig, *, clock_offset: float = 0.0) -> None:
        self.config = config
        #: Seconds added to the real time (``advance_clock``): tests move time on instead
        #: of sleeping through a TTL or a run's duration.
        self.clock_offset = clock_offset
        self.lock = threading.RLock()
        self._rng = random.Random(config.seed)
        self.faults = FaultInjector(config.faults, config.seed)
        self.runs_created: Counter[str] = Counter()
        self.tokens_issued: Counter[str] = Counter()
        self.requests: Counter[str] = Counter()
        self.requests_by_provider: dict[str, Counter[str]] = {}
        self.request_log: deque[dict[str, Any]] = deque(maxlen=config.header_log_size)
        self.webhooks = WebhookSender()

    def reconfigure(self, config: SandboxConfig) -> None:
        with self.lock:
            self.config = config
            self.faults = FaultInjector(config.faults, config.seed)
            if self.request_log.maxlen != config.header_log_size:
                self.request_log = deque(self.request_log, maxlen=config.header_log_size)

    def when_finished(self, due: float, build: EventBuilder) -> None:
        """Send the event `build()` makes at `due`, if webhooks are configured now."""
        config = self.config
        if config.webhook_url:
            self.webhooks.schedule(due, config.webhook_url, config.webhook_secret, build)

    def close(self) -> None:
        self.webhooks.close()

    def new_id(self, prefix: str, length: int = 24, alphabet: str = _ALNUM) -> str:
        with self.lock:
            return prefix + "".join(self._rng.choice(alphabet) for _ in range(length))

    def new_hex(self, length: int = 32) -> str:
        return self.new_id("", length, _HEX)

    def now(self) -> float:
        return time.time() + self.clock_offset

    def advance_clock(self, seconds: float) -> float:
        """Move the emulated APIs' clock ``seconds`` on (never back); returns the offset."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        with self.lock:
            self.clock_offset += seconds
            return self.clock_offset

    def data_available_end(self) -> int:
        configured = self.config.data_available_end
        if configured is not None:
            return configured
        now = int(self.now())
        return now - now % 86400

    def count_run(self, provider: str) -> None:
        with self.lock:
            self.runs_created[provider] += 1

    def count_token(self, provider: str) -> None:
        with self.lock:
            self.tokens_issued[provider] += 1

    def log_request(self, entry: dict[str, Any]) -> None:
        with self.lock:
            self.requests[entry["operation"]] += 1
            by = self.requests_by_provider.setdefault(entry["provider"], Counter())
            by[entry["operation"]] += 1
            self.request_log.append(entry)

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "runs_created": {
                    p: self.runs_created.get(p, 0) for p in ("stripe", "stripe-v2", "zuora")
                },
                "tokens_issued": {"zuora": self.tokens_issued.get("zuora", 0)},
                "requests": dict(self.requests),
                "requests_by_provider": {p: dict(c) for p, c in self.requests_by_provider.items()},
                "faults_injected": dict(self.faults.injected),
                "webhooks": self.webhooks.stats(),
                "request_log": list(self.request_log),
            }


def rfc3339_nanos(ts: float) -> str:
    """Stripe v2 style: nine fractional digits and a Z."""
    whole = int(ts)
    nanos = round((ts - whole) * 1e9)
    if nanos >= 1_000_000_000:
        whole, nanos = whole + 1, 0
    base = dt.datetime.fromtimestamp(whole, dt.UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{nanos:09d}Z"


def parse_rfc3339(text: str) -> float:
    """Seconds since the epoch from an RFC 3339 string (fractions past microseconds dropped)."""
    value = text.strip()
    if value.endswith(("Z", "z")):
        value = value[:-1] + "+00:00"
    head, dot, frac = value.partition(".")
    if dot:
        digits = "".join(itertools.takewhile(str.isdigit, frac))
        rest = frac[len(digits) :]
        value = f"{head}.{digits[:6]}{rest}"
    parsed = dt.datetime.fromisoformat(value)
    if parsed.tzinfo is None:
        raise ValueError("timestamp without a UTC offset")
    return parsed.timestamp()


def zuora_time(ts: float, *, millis: bool = True) -> str:
    """Zuora style: "2018-04-13T02:11:38.464+0000"."""
    moment = dt.datetime.fromtimestamp(ts, dt.UTC)
    base = moment.strftime("%Y-%m-%dT%H:%M:%S")
    if millis:
        base += f".{moment.microsecond // 1000:03d}"
    return base + "+0000"
