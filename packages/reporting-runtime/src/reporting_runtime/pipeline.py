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
    """Runs a request through `policies` in order, then the transport."""

    def __init__(self, policies: Sequence[Policy], transport: Transport) -> None:
        self.policies: tuple[Policy, ...] = tuple(policies)
        self.transport = transport

    def send(self, request: Request, *, stream: bool = False) -> Response:
        transport = self.transport

        def terminal(req: Request) -> Response:
            return transport.send(req, stream=stream, retries=req.retries)

        call: SendFn = terminal
        for policy in reversed(self.policies):
            call = _bind(policy, call)
        return call(request)

    def __repr__(self) -> str:
        names = ", ".join(type(p).__name__ for p in self.policies)
        return f"Pipeline([{names}])"


def _bind(policy: Policy, following: SendFn) -> SendFn:
    def step(request: Request) -> Response:
        return policy.send(request, following)

    return step
