"""Idempotent creates, emulated once for Stripe v1, Stripe v2 and Zuora's Run a report.

A create sent with an `Idempotency-Key` is answered once; the same key with the same
request again gets the stored answer back, with different parameters an error. What the
APIs differ in is data, given by the caller:

- the scope a key lives in (v1: the account; v2: the API key and the Stripe-Context;
  Zuora: the user and the entity),
- the request's fingerprint (v1: the decoded form, order-insensitive; v2 and Zuora: the
  raw body, with Zuora's query string),
- whether the key is echoed on the answer (v1 does, v2 and Zuora do not) and whether a
  replay says so (`Idempotent-Replayed: true`: Stripe does, Zuora documents no such header),
- the error of a key reused with other parameters (Stripe: 400; Zuora: 422),
- what a second request with a key still in progress gets: Stripe's waits for the first
  (two concurrent sends create one run, never two); Zuora documents a 409 instead.

Answers are kept unless the request may succeed when repeated: a 5xx (nothing was decided)
or a 429 (a limit that frees up).
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
    replayed_header: bool = True
    # None: wait for the request in progress; else the refusal a concurrent one gets.
    in_progress: Callable[[Request, str], HttpError] | None = None


@dataclass(frozen=True)
class _Answer:
    fingerprint: str
    status: int
    body: bytes
    content_type: str


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
        if self.rule.in_progress is None:
            key_lock.acquire()
        elif not key_lock.acquire(blocking=False):
            raise self.rule.in_progress(
                req, f"A request with the idempotency key '{key}' is still in progress."
            )
        try:
            return self._answer(req, slot, key, fingerprint, create)
        finally:
            key_lock.release()

    def _answer(
        self,
        req: Request,
        slot: tuple[str, str],
        key: str,
        fingerprint: str,
        create: Callable[[], Response],
    ) -> Response:
        echo = [(IDEMPOTENCY_HEADER, key)] if self.rule.echo_key else []
        seen = self._answers.get(slot)
        if seen is not None:
            if seen.fingerprint != fingerprint:
                raise self.rule.conflict(
                    req,
                    "Keys for idempotent requests can only be used with the same "
                    "parameters they were first used with. Try using a key other than "
                    f"'{key}' if you meant to execute a different request.",
                )
            replayed = [("Idempotent-Replayed", "true")] if self.rule.replayed_header else []
            return Response(
                seen.status,
                seen.body,
                [("Content-Type", seen.content_type), *echo, *replayed],
            )
        try:
            answer = create()
        except HttpError as refused:
            self._keep(slot, fingerprint, refused.response())
            refused.headers += echo
            raise
        self._keep(slot, fingerprint, answer)
        answer.headers += echo
        return answer

    def _keep(self, slot: tuple[str, str], fingerprint: str, answer: Response) -> None:
        if answer.status < 500 and answer.status != 429:
            content_type = answer.get_header("Content-Type") or "application/json"
            self._answers[slot] = _Answer(fingerprint, answer.status, answer.body, content_type)
