"""Sandbox settings and fault rules: plain dataclasses so tests can build them inline and the
control endpoint can update them from JSON."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any, Literal

from report_gateway_sandbox.credentials import (
    STRIPE_WEBHOOK_SECRET,
    ZUORA_ACCESS_KEY_ID,
    ZUORA_CLIENT_ID,
    ZUORA_CLIENT_SECRET,
    ZUORA_SECRET_ACCESS_KEY,
)

FaultKind = Literal[
    "latency",
    "server_error",
    "rate_limit",
    "drop_connection",
    "truncate_body",
    "expired_url",
    "malformed_json",
    "fail_run",
]
FAULT_KINDS: frozenset[str] = frozenset(FaultKind.__args__)  # type: ignore[attr-defined]


@dataclasses.dataclass
class FaultRule:
    """One injected misbehaviour, applied to requests whose path matches `path` (fnmatch).

    A rule fires on every matching request unless limited: `skip` lets the first N matches
    through, `count` stops after N injections, `rate` fires with that probability drawn from
    the sandbox's seeded RNG (so a run of the same requests injects the same faults).
    """

    kind: FaultKind
    path: str = "*"
    method: str | None = None
    rate: float | None = None
    count: int | None = None
    skip: int = 0
    # server_error
    status: int = 503
    should_retry: bool | None = None
    # rate_limit: seconds, or an HTTP date when retry_after_http_date is set
    retry_after: float = 1.0
    retry_after_http_date: bool = False
    # latency: "request" sleeps before the handler runs (nothing happened yet); "response"
    # sleeps after it (the action happened, the answer is late: an ambiguous timeout).
    latency: float = 0.5
    phase: Literal["request", "response"] = "request"
    # drop_connection / truncate_body / malformed_json: body bytes sent before the cut
    # (None: half of the body).
    after_bytes: int | None = None

    def __post_init__(self) -> None:
        if self.kind not in FAULT_KINDS:
            raise ValueError(f"unknown fault kind {self.kind!r}; one of {sorted(FAULT_KINDS)}")
        if self.phase not in ("request", "response"):
            raise ValueError("phase must be 'request' or 'response'")
        if self.method is not None:
            self.method = self.method.upper()

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> FaultRule:
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValueError(f"unknown fault rule fields: {sorted(unknown)}")
        return cls(**dict(data))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class SandboxConfig:
    """Everything that shapes the sandbox's behaviour; adjustable while it runs."""

    seed: int = 0
    # Time a run takes from creation to success (status is computed from the clock).
    run_seconds: float = 1.0
    # Result size: rows per result file, or (when set) a target byte size that wins over rows;
    # the file is rounded up to whole rows.
    result_rows: int = 1000
    result_bytes: int | None = None
    v2_concurrency_limit: int = 100
    v2_max_file_bytes: int = 5_000_000_000
    url_ttl_seconds: float = 300.0
    # Stripe v1 report types: data available from this unix time to data_available_end
    # (None: midnight UTC of the current day).
    data_available_start: int = 1_577_836_800  # 2020-01-01
    data_available_end: int | None = None
    zuora_access_key_id: str = ZUORA_ACCESS_KEY_ID
    zuora_secret_access_key: str = dataclasses.field(default=ZUORA_SECRET_ACCESS_KEY, repr=False)
    # The OAuth client of the REST-host paths (POST /oauth/token) and the life of the bearer
    # tokens it issues (Zuora's: one hour, `expires_in` 3599); 0 issues tokens already expired.
    zuora_client_id: str = ZUORA_CLIENT_ID
    zuora_client_secret: str = dataclasses.field(default=ZUORA_CLIENT_SECRET, repr=False)
    zuora_token_seconds: float = 3599.0
    # Stripe webhooks: with a URL, each Stripe run created from then on sends a signed event
    # there once it finishes (v1 the whole event, v2 a thin one), signed with the secret.
    webhook_url: str | None = None
    webhook_secret: str = dataclasses.field(default=STRIPE_WEBHOOK_SECRET, repr=False)
    chunk_size: int = 1 << 20
    header_log_size: int = 10_000
    faults: list[FaultRule] = dataclasses.field(default_factory=list)

    def __post_init__(self) -> None:
        if self.webhook_url is not None and not self.webhook_url.startswith(
            ("http://", "https://")
        ):
            raise ValueError("webhook_url must be an http:// or https:// URL")
        self.faults = [
            f if isinstance(f, FaultRule) else FaultRule.from_mapping(f) for f in self.faults
        ]

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["zuora_secret_access_key"] = "***"  # noqa: S105
        data["zuora_client_secret"] = "***"  # noqa: S105
        data["webhook_secret"] = "***"  # noqa: S105
        return data

    def updated(self, changes: Mapping[str, Any]) -> SandboxConfig:
        """A copy with `changes` applied; `faults` replaces the rule list, `add_faults` appends."""
        names = {f.name for f in dataclasses.fields(self)}
        unknown = set(changes) - names - {"add_faults"}
        if unknown:
            raise ValueError(f"unknown config fields: {sorted(unknown)}")
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        values.update((k, v) for k, v in changes.items() if k != "add_faults")
        # Rules given as mappings become FaultRules in __post_init__.
        values["faults"] = [*values["faults"], *changes.get("add_faults", ())]
        return SandboxConfig(**values)
