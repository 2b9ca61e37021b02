"""Policy and Pipeline: an ordered list of small steps between a client and the transport.

Most policies only rewrite the request or look at the response (`on_request`,
`on_response`, no I/O), which keeps them testable without a socket; a policy that must
act around the call (redirects) overrides `send`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from reporting_runtime.messages import Request, Response
from reporting_runtime.transport import Transport

__all__ = ["Pipeline", "Policy", "SendFn"]

SendFn = Callable[[Request], Response]


class Policy:
    """One step of the pipeline. Subclasses override the hooks they need."""

    def on_request(self, request: Request) -> Request:
        return request

    def on_response(self, request: Request, response: Response) -> Response:
        return response

    def send(self, request: Request, next: SendFn) -> Response:
        request = self.on_request(request)
        return self.on_response(request, next(request))


class Pipeline:
    """Runs a request through `policies` in order, then the transport.

    The chain of bound steps is composed once per ``stream`` value and kept (composing it
    took a closure per policy on every request); assigning a new ``policies`` tuple (or
    ``transport``) composes it afresh."""

    def __init__(self, policies: Sequence[Policy], transport: Transport) -> None:
        self.policies: tuple[Policy, ...] = tuple(policies)
        self.transport = transport
        self._chains: tuple[tuple[Policy, ...], Transport, SendFn, SendFn] | None = None

    def send(self, request: Request, *, stream: bool = False) -> Response:
        chains = self._chains
        if chains is None or chains[0] is not self.policies or chains[1] is not self.transport:
            chains = self._chains = (
                self.policies,
                self.transport,
                self._compose(stream=False),
                self._compose(stream=True),
            )
        return (chains[3] if stream else chains[2])(request)

    def _compose(self, *, stream: bool) -> SendFn:
        transport = self.transport

        def terminal(req: Request) -> Response:
            return transport.send(req, stream=stream, retries=req.retries)

        call: SendFn = terminal
        simple: list[Policy] = []  # consecutive policies with no send of their own
        for policy in reversed(self.policies):
            if _only_hooks(policy):
                simple.insert(0, policy)
                continue
            if simple:
                call, simple = _bind_hooks(tuple(simple), call), []
            call = _bind(policy, call)
        if simple:
            call = _bind_hooks(tuple(simple), call)
        return call

    def __repr__(self) -> str:
        names = ", ".join(type(p).__name__ for p in self.policies)
        return f"Pipeline([{names}])"


def _only_hooks(policy: Policy) -> bool:
    """Whether ``policy`` sends the way ``Policy.send`` does (its hooks around ``next``)."""
    return type(policy).send is Policy.send and "send" not in getattr(policy, "__dict__", {})


def _bind_hooks(policies: tuple[Policy, ...], following: SendFn) -> SendFn:
    """One step for a run of hook-only policies: their ``on_request`` in order, then
    ``following``, then their ``on_response`` in reverse, as nesting each one's
    ``Policy.send`` would do, in one frame instead of two per policy. Policies that keep
    ``Policy.on_response`` (it returns the response as is: auth, idempotency key, retry)
    are not called for it."""
    if not any(_has_on_response(policy) for policy in policies):
        if len(policies) == 1:
            (only,) = policies

            def one(request: Request) -> Response:
                return following(only.on_request(request))

            return one

        def requests(request: Request) -> Response:
            for policy in policies:
                request = policy.on_request(request)
            return following(request)

        return requests
    if len(policies) == 1:
        return _bind(policies[0], following)

    def step(request: Request) -> Response:
        # Each policy's on_response gets the request its own on_request returned.
        sent: list[Request] = []
        for policy in policies:
            request = policy.on_request(request)
            sent.append(request)
        response = following(request)
        for index in range(len(policies) - 1, -1, -1):
            response = policies[index].on_response(sent[index], response)
        return response

    return step


def _has_on_response(policy: Policy) -> bool:
    """Whether ``policy`` has an ``on_response`` other than ``Policy``'s (which returns the
    response unchanged)."""
    return type(policy).on_response is not Policy.on_response or "on_response" in getattr(
        policy, "__dict__", {}
    )


def _bind(policy: Policy, following: SendFn) -> SendFn:
    def step(request: Request) -> Response:
        return policy.send(request, following)

    return step
