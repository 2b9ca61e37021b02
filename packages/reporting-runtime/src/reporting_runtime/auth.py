"""Auth policies: each knows the header names it sets, so logging and redirects can treat
exactly those as secret. Keys never appear in a repr."""

from __future__ import annotations

import base64
from collections.abc import Mapping

import attrs

from reporting_runtime.messages import Request, with_header
from reporting_runtime.pipeline import Policy

__all__ = ["AuthPolicy", "BasicAuth", "BearerAuth", "HeaderPairAuth"]


class AuthPolicy(Policy):
    """Base of the auth policies: adds `auth_headers()` to every request."""

    def auth_headers(self) -> Mapping[str, str]:
        raise NotImplementedError

    @property
    def secret_header_names(self) -> frozenset[str]:
        """Header names (any case) whose values are credentials."""
        return frozenset(self.auth_headers())

    def on_request(self, request: Request) -> Request:
        headers = request.headers
        for name, value in self.auth_headers().items():
            headers = with_header(headers, name, value)
        return attrs.evolve(request, headers=headers)


@attrs.frozen
class BearerAuth(AuthPolicy):
    """`Authorization: Bearer <key>` (Stripe secret or restricted keys)."""

    api_key: str = attrs.field(repr=False)

    def auth_headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}


@attrs.frozen
class BasicAuth(AuthPolicy):
    """HTTP Basic; Stripe takes the key as the user name and an empty password."""

    username: str = attrs.field(repr=False)
    password: str = attrs.field(default="", repr=False)

    def auth_headers(self) -> Mapping[str, str]:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}


def _copy(headers: Mapping[str, str]) -> dict[str, str]:
    # A typed converter: with plain `dict` mypy's attrs plugin loses the argument type.
    return dict(headers)


@attrs.frozen
class HeaderPairAuth(AuthPolicy):
    """Credentials in custom headers, e.g. Zuora's apiAccessKeyId / apiSecretAccessKey."""

    headers: Mapping[str, str] = attrs.field(repr=False, converter=_copy)

    def auth_headers(self) -> Mapping[str, str]:
        return self.headers

    def __repr__(self) -> str:
        return f"HeaderPairAuth(names={sorted(self.headers)!r})"
