"""ApiClient, the base of every generated client: operation in, Response or model out."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal, TypeVar

import attrs

from reporting_runtime.auth import AuthPolicy
from reporting_runtime.encoding import QueryStyle, encode_form, encode_query, expand_path
from reporting_runtime.error_bodies import ErrorReader, JsonErrorReader, api_error
from reporting_runtime.errors import ReportingError, ResponseFormatError
from reporting_runtime.messages import Request, Response, body_excerpt, parse_json
from reporting_runtime.pipeline import Pipeline, Policy
from reporting_runtime.policies import IdempotencyKeyPolicy, LoggingPolicy, RedirectPolicy
from reporting_runtime.redaction import Scrubber, scrub_error
from reporting_runtime.retry import RetryConfig, RetryPolicy
from reporting_runtime.transport import ERROR_BODY_LIMIT, Transport, register_scrubber

__all__ = ["ApiClient", "Operation"]

T = TypeVar("T")

BodyEncoding = Literal["form", "json"] | None


@attrs.frozen(kw_only=True)
class Operation:
    """One API operation as codegen describes it (operationId, method, path template...)."""

    operation_id: str
    method: str
    path: str
    server: str = "default"
    body_encoding: BodyEncoding = None
    streaming: bool = False
    query_style: QueryStyle = "form"


def _plain(value: Any) -> Any:
    """attrs models (at any depth) as wire dicts via the converter; other values as is."""
    if attrs.has(type(value)) or (
        isinstance(value, list | tuple) and any(attrs.has(type(v)) for v in value)
    ):
        from reporting_runtime.converter import unstructure

        return unstructure(value)
    return value


class ApiClient:
    """Builds the pipeline once, then turns `request(op, ...)` calls into HTTP exchanges.

    Pipeline order: caller policies (scope headers...), auth,
    idempotency key (only when the API documents one: ``idempotency_header`` names it, and
    without it a POST is never retried), redirects, retry, logging (closest to the wire, so
    it logs what is really sent, after auth, with the secrets redacted). The user agent and
    default headers are no policies: ``build_request`` puts them on every request it builds
    (a header the call gives wins), so caller policies see them as before.

    What differs per API is passed in, never looked up by provider name: ``error_reader``
    reads the API's error bodies, ``idempotency_header`` and ``retry_verdict_header`` name
    the headers it documents, ``loggable_headers`` the API's own headers that are safe to
    log (beside the standard ones). A generated client passes what its spec and the
    hand-written module beside its ``_generated/`` folder declare.

    Every ``ReportingError`` leaving ``request`` or ``call`` is scrubbed of the secrets the
    auth policy holds (``AuthPolicy.secret_values``, asked at the time) and of key-shaped
    strings: a server that echoes a key in its error body cannot put it in a message.
    """

    def __init__(
        self,
        *,
        provider: str,
        base_url: str,
        servers: Mapping[str, str] | None = None,
        auth: AuthPolicy | None = None,
        transport: Transport | None = None,
        policies: Sequence[Policy] = (),
        retry: RetryConfig | RetryPolicy | None = None,
        user_agent: str = "reporting-runtime",
        default_headers: Mapping[str, str | None] | None = None,
        error_reader: ErrorReader | None = None,
        idempotency_header: str | None = None,
        retry_verdict_header: str | None = None,
        loggable_headers: Iterable[str] = (),
        logger_name: str = "reporting_runtime.http",
    ) -> None:
        self.provider = provider
        self.base_url = base_url.rstrip("/")
        self.servers = {name: url.rstrip("/") for name, url in (servers or {}).items()}
        self.error_reader: ErrorReader = error_reader or JsonErrorReader()
        self.auth = auth
        self.transport = transport or Transport()
        self.scrubber = Scrubber(auth.secret_values if auth is not None else ())
        # urllib3's own log records (URLs a server chose: a redirect's Location, a run id
        # echoing a key) are scrubbed of these secrets too.
        register_scrubber(self.scrubber)
        secret_names = sorted(auth.secret_header_names) if auth is not None else []
        # The user agent and default headers are the same on every request: build_request
        # adds them (a header the call sets wins, as UserAgentPolicy and HeadersPolicy
        # would), instead of two policies evolving every request. Their rule is kept:
        # the user agent first, then each default the request lacks, in that order.
        static = [("User-Agent", user_agent)] + [
            (name, value) for name, value in (default_headers or {}).items() if value is not None
        ]
        self._static_headers = tuple((name, name.lower(), value) for name, value in static)
        chain: list[Policy] = [*policies]
        if auth is not None:
            chain.append(auth)
        if idempotency_header is not None:
            chain.append(IdempotencyKeyPolicy(header=idempotency_header))
        chain.append(RedirectPolicy(secret_headers=secret_names))
        retry_policy = retry if isinstance(retry, RetryPolicy) else RetryPolicy(retry)
        if retry_verdict_header is not None:
            retry_policy = retry_policy.with_verdict_header(retry_verdict_header)
        chain.append(retry_policy)
        chain.append(
            LoggingPolicy(
                logging.getLogger(logger_name),
                secret_headers=secret_names,
                loggable_headers=loggable_headers,
                scrubber=self.scrubber,
            )
        )
        self.pipeline = Pipeline(chain, self.transport)

    def url_for(self, op: Operation, path: Mapping[str, Any] | None = None) -> str:
        if op.server == "default":
            base = self.base_url
        else:
            try:
                base = self.servers[op.server]
            except KeyError:
                raise ValueError(
                    f"{self.provider} {op.operation_id}: no server named {op.server!r}"
                ) from None
        return base + expand_path(op.path, path or {})

    def build_request(
        self,
        op: Operation,
        *,
        path: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str | None] | None = None,
        body: Any = None,
        deadline: float | None = None,
        read_timeout: float | None = None,
    ) -> Request:
        url = self.url_for(op, path)
        if query:
            encoded_query = encode_query(query, op.query_style)
            if encoded_query:
                url = f"{url}?{encoded_query}"
        sent = {"Accept": "*/*" if op.streaming else "application/json"}
        # with_header's rule (a name replaces any case of itself, and goes last) in one dict:
        # every call has a few headers, and a copy per header added up. ``names`` maps each
        # lower-cased name sent to its spelling.
        names = {"accept": "Accept"}
        if headers:
            for name, value in headers.items():
                if value is None:
                    continue
                lower = name.lower()
                previous = names.get(lower)
                if previous is not None:
                    del sent[previous]
                sent[name] = value
                names[lower] = name
        data: bytes | None = None
        if body is not None and op.body_encoding is None:
            raise TypeError(f"{self.provider} {op.operation_id} takes no request body")
        if body is not None:
            plain = _plain(body)
            if op.body_encoding == "form":
                if not isinstance(plain, Mapping):
                    raise TypeError(f"{op.operation_id}: a form body must be an object")
                data = encode_form(plain)
                content_type = "application/x-www-form-urlencoded"
            else:
                data = json.dumps(plain, separators=(",", ":"), default=_json_default).encode()
                content_type = "application/json"
            previous = names.get("content-type")
            if previous is not None:
                del sent[previous]
            sent["Content-Type"] = content_type
            names["content-type"] = "Content-Type"
        for name, lower, value in self._static_headers:
            if lower not in names:
                sent[name] = value
                names[lower] = name
        return Request(
            method=op.method.upper(),
            url=url,
            headers=sent,
            body=data,
            operation=op.operation_id,
            provider=self.provider,
            scrubber=self.scrubber,
            deadline=deadline,
            read_timeout=read_timeout,
        )

    def request(
        self,
        op: Operation,
        *,
        path: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str | None] | None = None,
        body: Any = None,
        stream: bool = False,
        deadline: float | None = None,
        read_timeout: float | None = None,
    ) -> Response:
        """Send `op`; a non-2xx answer (or a 2xx the error reader calls failed) raises an
        ApiError.

        `deadline` (``time.monotonic`` seconds) bounds the whole exchange, retries, their
        waits and the body (a streamed one too, while it is read): past it a
        ``DeadlineExceededError``. `read_timeout` replaces the transport's wait for any one
        byte (a stall limit)."""
        try:
            return self._request(
                op,
                path=path,
                query=query,
                headers=headers,
                body=body,
                stream=stream,
                deadline=deadline,
                read_timeout=read_timeout,
            )
        except ReportingError as exc:
            scrub_error(exc, self.scrubber)
            raise

    def _request(
        self,
        op: Operation,
        *,
        path: Mapping[str, Any] | None,
        query: Mapping[str, Any] | None,
        headers: Mapping[str, str | None] | None,
        body: Any,
        stream: bool,
        deadline: float | None,
        read_timeout: float | None,
    ) -> Response:
        request = self.build_request(
            op,
            path=path,
            query=query,
            headers=headers,
            body=body,
            deadline=deadline,
            read_timeout=read_timeout,
        )
        stream = stream or op.streaming
        response = self.pipeline.send(request, stream=stream)
        if not response.ok:
            raise self._error(response)
        if self.error_reader.checks_success and self._may_report_failure(response, stream):
            body_bytes = response.read()
            try:
                data = parse_json(body_bytes, max_items=response.max_json_items)
            except (ValueError, UnicodeDecodeError):
                data = None
            if self.error_reader.failed(data):
                raise api_error(response, body_bytes, self.error_reader)
        return response

    def call(
        self,
        op: Operation,
        response_type: type[T],
        *,
        path: Mapping[str, Any] | None = None,
        query: Mapping[str, Any] | None = None,
        headers: Mapping[str, str | None] | None = None,
        body: Any = None,
        deadline: float | None = None,
    ) -> T:
        """`request`, then the JSON body structured as `response_type`."""
        from reporting_runtime.converter import structure

        response = self.request(
            op, path=path, query=query, headers=headers, body=body, deadline=deadline
        )
        try:
            data = response.json()
            try:
                return structure(data, response_type)
            except ResponseFormatError as exc:
                suffix = f" (request id {response.request_id})" if response.request_id else ""
                raise ResponseFormatError(
                    f"{self.provider} {op.operation_id}: {exc}{suffix}",
                    provider=self.provider,
                    operation=op.operation_id,
                    status=response.status,
                    excerpt=body_excerpt(response.read(), scrub=self.scrubber),
                ) from None
        except ReportingError as exc:
            scrub_error(exc, self.scrubber)
            raise

    def _may_report_failure(self, response: Response, stream: bool) -> bool:
        # A streamed export is only peeked at when it says it is JSON (a CSV never is).
        return not stream or "json" in response.content_type.lower()

    def _error(self, response: Response) -> Exception:
        body = b""
        try:
            body = response.read_prefix(ERROR_BODY_LIMIT)
        except Exception:  # noqa: S110 - the status alone still makes a useful error
            pass
        finally:
            response.close()
        return api_error(response, body, self.error_reader)

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(provider={self.provider!r}, base_url={self.base_url!r})"


def _json_default(value: Any) -> Any:
    from reporting_runtime.converter import unstructure

    return unstructure(value)
