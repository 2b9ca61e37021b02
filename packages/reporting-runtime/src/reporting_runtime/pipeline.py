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
        for policy in reversed(self.policies):
            call = _bind(policy, call)
        return call

    def __repr__(self) -> str:
        names = ", ".join(type(p).__name__ for p in self.policies)
        return f"Pipeline([{names}])"


def _bind(policy: Policy, following: SendFn) -> SendFn:
    def step(request: Request) -> Response:
        return policy.send(request, following)

    return step
