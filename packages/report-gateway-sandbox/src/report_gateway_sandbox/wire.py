"""The request and response shapes handlers work with, kept thin over WSGI for speed."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qsl

from report_gateway_sandbox.config import FaultRule
from report_gateway_sandbox.results import ResultBody


class Request:
    """One parsed request: method, path, query pairs, raw body, headers via `header()`."""

    __slots__ = (
        "body",
        "environ",
        "faults",
        "method",
        "operation",
        "params",
        "path",
        "query_pairs",
        "request_id",
    )

    def __init__(self, environ: Mapping[str, Any], body: bytes) -> None:
        self.environ = environ
        self.method: str = environ["REQUEST_METHOD"].upper()
        self.path: str = environ.get("PATH_INFO") or "/"
        self.query_pairs: list[tuple[str, str]] = parse_qsl(
            environ.get("QUERY_STRING", ""), keep_blank_values=True
        )
        self.body = body
        self.params: dict[str, str] = {}
        self.faults: list[FaultRule] = []
        self.request_id = ""
        self.operation = ""

    def header(self, name: str) -> str | None:
        key = name.upper().replace("-", "_")
        if key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
            value = self.environ.get(key)
        else:
            value = self.environ.get("HTTP_" + key)
        return value if value else None

    def query(self, name: str) -> str | None:
        for key, value in self.query_pairs:
            if key == name:
                return value
        return None

    def fault(self, kind: str) -> FaultRule | None:
        for rule in self.faults:
            if rule.kind == kind:
                return rule
        return None

    @property
    def base_url(self) -> str:
        env = self.environ
        host = (
            env.get("HTTP_HOST")
            or f"{env.get('SERVER_NAME', '127.0.0.1')}:{env.get('SERVER_PORT', '80')}"
        )
        return f"{env.get('wsgi.url_scheme', 'http')}://{host}"

    def headers(self) -> dict[str, str]:
        """Every request header by its wire-style name (for the header log)."""
        out: dict[str, str] = {}
        for key, value in self.environ.items():
            if key.startswith("HTTP_"):
                out[key[5:].replace("_", "-").title()] = str(value)
            elif key in ("CONTENT_TYPE", "CONTENT_LENGTH") and value:
                out[key.replace("_", "-").title()] = str(value)
        return out


class Response:
    """A status, headers and either bytes or a ranged stream of a result file."""

    __slots__ = ("body", "headers", "status", "stream", "stream_range")

    def __init__(
        self,
        status: int,
        body: bytes = b"",
        headers: Iterable[tuple[str, str]] = (),
        *,
        stream: ResultBody | None = None,
        stream_range: tuple[int, int] = (0, 0),
    ) -> None:
        self.status = status
        self.body = body
        self.headers: list[tuple[str, str]] = list(headers)
        self.stream = stream
        self.stream_range = stream_range

    @property
    def length(self) -> int:
        if self.stream is not None:
            return self.stream_range[1] - self.stream_range[0]
        return len(self.body)

    def set_header(self, name: str, value: str) -> None:
        lower = name.lower()
        self.headers = [(k, v) for k, v in self.headers if k.lower() != lower]
        self.headers.append((name, value))

    def get_header(self, name: str) -> str | None:
        lower = name.lower()
        for key, value in self.headers:
            if key.lower() == lower:
                return value
        return None


class HttpError(Exception):
    """A refusal, raised from anywhere in a handler (or its guard) and rendered by the app.

    It carries the provider-shaped answer whole (status, body, headers), so the code that
    detects a problem decides what the client sees, and nothing has to hand the answer back
    up through return values.
    """

    def __init__(self, status: int, body: bytes, headers: Iterable[tuple[str, str]] = ()) -> None:
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers: list[tuple[str, str]] = list(headers)

    @classmethod
    def json(
        cls,
        status: int,
        payload: Any,
        headers: Iterable[tuple[str, str]] = (),
        *,
        content_type: str = "application/json",
        indent: int | None = 2,
    ) -> HttpError:
        reply = json_response(status, payload, headers, content_type=content_type, indent=indent)
        return cls(reply.status, reply.body, reply.headers)

    def response(self) -> Response:
        return Response(self.status, self.body, self.headers)


def json_response(
    status: int,
    payload: Any,
    headers: Iterable[tuple[str, str]] = (),
    *,
    content_type: str = "application/json",
    indent: int | None = 2,
) -> Response:
    body = json.dumps(payload, indent=indent).encode()
    return Response(status, body, [("Content-Type", content_type), *headers])


def parse_range(header: str | None, size: int) -> tuple[int, int] | None | str:
    """A `Range: bytes=...` header as [start, end), None when absent or not a byte range
    we serve (the full body is sent), "unsatisfiable" when it lies outside the file."""
    if not header or not header.startswith("bytes=") or "," in header:
        return None
    spec = header[6:].strip()
    first, sep, last = spec.partition("-")
    if not sep:
        return None
    try:
        if first == "":
            suffix = int(last)
            if suffix <= 0:
                return "unsatisfiable"
            return max(0, size - suffix), size
        start = int(first)
        end = int(last) + 1 if last else size
    except ValueError:
        return None
    if start >= size or end <= start:
        return "unsatisfiable"
    return start, min(end, size)


Handler = Callable[[Request], Response]
Principal = TypeVar("Principal")


class Route:
    """One served operation: method, OpenAPI-style path template, name, handler, and the
    endpoint family when a provider serves the same operations on two (Zuora: "zconnect"
    under /api/rest/v1, "rest" under /reporting/api/rest/v1 with OAuth)."""

    __slots__ = (
        "family",
        "handler",
        "in_spec",
        "method",
        "name",
        "pattern",
        "provider",
        "template",
    )

    def __init__(
        self,
        method: str,
        template: str,
        name: str,
        handler: Handler,
        *,
        provider: str,
        in_spec: bool = True,
        family: str | None = None,
    ) -> None:
        self.method = method
        self.template = template
        self.name = name
        self.handler = handler
        self.provider = provider
        self.in_spec = in_spec
        self.family = family
        regex = re.sub(r"\\\{(\w+)\\\}", r"(?P<\1>[^/]+)", re.escape(template))
        self.pattern = re.compile(regex + r"\Z")


class Router(Generic[Principal]):
    """One provider's routes behind its one guard.

    The guard authenticates a request (raising `HttpError` to refuse it) and returns who is
    calling: the account, key or user and entity its handlers scope their data by. Handlers
    receive that as their second argument and never check credentials themselves.
    """

    def __init__(
        self,
        provider: str,
        guard: Callable[[Request], Principal],
        *,
        family: str | None = None,
    ) -> None:
        self.provider = provider
        self.guard = guard
        self.family = family
        self.routes: list[Route] = []

    def add(
        self,
        method: str,
        template: str,
        name: str,
        handler: Callable[[Request, Principal], Response],
    ) -> None:
        guard = self.guard

        def serve(req: Request) -> Response:
            return handler(req, guard(req))

        self.routes.append(
            Route(method, template, name, serve, provider=self.provider, family=self.family)
        )

    def add_open(
        self, method: str, template: str, name: str, handler: Handler, *, in_spec: bool = True
    ) -> None:
        """A route without the guard: it authenticates by other means (a signed URL)."""
        self.routes.append(
            Route(
                method,
                template,
                name,
                handler,
                provider=self.provider,
                in_spec=in_spec,
                family=self.family,
            )
        )
