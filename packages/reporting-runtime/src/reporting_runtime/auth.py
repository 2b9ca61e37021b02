"""Auth policies: each knows the header names it sets, so logging and redirects can treat
exactly those as secret, and the secret values it holds, so every text that leaves the
client (error messages, body excerpts, log records) can hide them. Keys never appear in a
repr."""

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

    def secret_values(self) -> frozenset[str]:
        """Every credential value this policy holds now, as a server might echo it.

        The default is the values of ``auth_headers()``; a policy holding more (a password
        next to its token, an OAuth client secret next to the current bearer token) adds
        them. Asked on every scrub, so a refreshed token is covered once it exists.
        """
        return frozenset(v for v in self.auth_headers().values() if v)

    def on_request(self, request: Request) -> Request:
        added = self.auth_headers()
        headers = request.headers
        if len(added) == 1:
            # One header (a bearer token, a basic pair): ``with_header``'s rule inline, and
            # the dict copied once.
            ((name, value),) = added.items()
            lower = name.lower()
            headers = {key: val for key, val in headers.items() if key.lower() != lower}
            if value is not None:
                headers[name] = value
            return request.evolve(headers=headers)
        for name, value in added.items():
            headers = with_header(headers, name, value)
        return request.evolve(headers=headers)


@attrs.frozen
class BearerAuth(AuthPolicy):
    """`Authorization: Bearer <key>` (an API key or an access token)."""

    api_key: str = attrs.field(repr=False)

    def auth_headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"}

    def secret_values(self) -> frozenset[str]:
        return super().secret_values() | {self.api_key}


@attrs.frozen
class BasicAuth(AuthPolicy):
    """HTTP Basic; some APIs take the key as the user name and an empty password."""

    username: str = attrs.field(repr=False)
    password: str = attrs.field(default="", repr=False)

    def auth_headers(self) -> Mapping[str, str]:
        token = base64.b64encode(f"{self.username}:{self.password}".encode()).decode("ascii")
        return {"Authorization": f"Basic {token}"}

    def secret_values(self) -> frozenset[str]:
        token = self.auth_headers()["Authorization"].removeprefix("Basic ")
        return frozenset(v for v in (self.username, self.password, token) if v)


def _copy(headers: Mapping[str, str]) -> dict[str, str]:
    # A typed converter: with plain `dict` mypy's attrs plugin loses the argument type.
    return dict(headers)


@attrs.frozen
class HeaderPairAuth(AuthPolicy):
    """Credentials in custom headers (a key id and a secret key, each in its own header)."""

    headers: Mapping[str, str] = attrs.field(repr=False, converter=_copy)

    def auth_headers(self) -> Mapping[str, str]:
        return self.headers

    def __repr__(self) -> str:
        return f"HeaderPairAuth(names={sorted(self.headers)!r})"
