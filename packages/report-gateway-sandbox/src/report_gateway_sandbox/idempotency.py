"""Stripe's idempotent creates, emulated once for both API versions.

A create sent with an `Idempotency-Key` is answered once; the same key with the same
request again gets the stored answer back (`Idempotent-Replayed: true`), with different
parameters a 400. What the versions differ in is data, given by the caller:

- the scope a key lives in (v1: the account; v2: the API key and the Stripe-Context),
- the request's fingerprint (v1: the decoded form, order-insensitive; v2: the raw body),
- whether the key is echoed on the answer (v1 does, v2 does not),
- the error shape of a key reused with other parameters (each version's own `conflict`).

Answers are kept unless the request may succeed when repeated: a 5xx (nothing was decided)
or a 429 (a limit that frees up). A request with a key waits for another one with the same
key in the same scope, so two concurrent sends create one run, never two.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from report_gateway_sandbox.wire import HttpError, Request, Response

IDEMPOTENCY_HEADER = "Idempotency-Key"


@dataclass(frozen=True)
class IdempotencyRule:
    echo_key: bool
    conflict: Callable[[Request, str], HttpError]


@dataclass(frozen=True)
class _Answer:
    fingerprint: str
    status: int
    body: bytes


class IdempotentCreates:
    def __init__(self, rule: IdempotencyRule) -> None:
        self.rule = rule
        self._lock = threading.Lock()
        self._answers: dict[tuple[str, str], _Answer] = {}
        self._key_locks: dict[tuple[str, str], threading.Lock] = {}

    def create(
        self,
        req: Request,
        scope: str,
        fingerprint: str,
        create: Callable[[], Response],
    ) -> Response:
        """The answer to a create: `create()` itself without a key, else the stored answer
        for (scope, key) or `create()`'s, stored. `HttpError`s count as answers too."""
        key = req.header(IDEMPOTENCY_HEADER)
        if key is None:
            return create()
        slot = (scope, key)
        with self._lock:
            key_lock = self._key_locks.setdefault(slot, threading.Lock())
        echo = [(IDEMPOTENCY_HEADER, key)] if self.rule.echo_key else []
        with key_lock:
            seen = self._answers.get(slot)
            if seen is not None:
                if seen.fingerprint != fingerprint:
                    raise self.rule.conflict(
                        req,
                        "Keys for idempotent requests can only be used with the same "
                        "parameters they were first used with. Try using a key other than "
                        f"'{key}' if you meant to execute a different request.",
                    )
                return Response(
                    seen.status,
                    seen.body,
                    [
                        ("Content-Type", "application/json"),
                        *echo,
                        ("Idempotent-Replayed", "true"),
                    ],
                )
            try:
                answer = create()
            except HttpError as refused:
                self._keep(slot, fingerprint, refused.status, refused.body)
                refused.headers += echo
                raise
            self._keep(slot, fingerprint, answer.status, answer.body)
            answer.headers += echo
            return answer

    def _keep(self, slot: tuple[str, str], fingerprint: str, status: int, body: bytes) -> None:
        if status < 500 and status != 429:
            self._answers[slot] = _Answer(fingerprint, status, body)
