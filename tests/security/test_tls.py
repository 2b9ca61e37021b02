"""Scenario 6: TLS certificates are verified by default. The sandbox served over HTTPS with
a certificate from a private CA (trustme) is refused before any request (so before any
credential) leaves; given that CA as a custom bundle the same flow succeeds, for every
provider: ``Gateway(ca_bundle=...)``, ``$REPORT_GATEWAY_CA_BUNDLE``, ``--ca-bundle`` on the
command line, or a ``Transport(ca_certs=...)`` handed to ``Gateway(transport=...)``. A
bundle that cannot be used is a ConfigurationError naming it, before any request.
"""

from __future__ import annotations

import os
import ssl
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import trustme
from report_gateway import Gateway, RunStatus
from report_gateway.cli import main
from report_gateway.cli.exits import CONFIG, PROVIDER
from report_gateway.errors import ConfigurationError, ProviderError
from report_gateway_sandbox import ZUORA_ACCESS_KEY_ID, SandboxApp, SandboxConfig, make_server
from reporting_runtime import Transport

CA_BUNDLE_ENV = "REPORT_GATEWAY_CA_BUNDLE"


class TlsSandbox:
    def __init__(self, ca: trustme.CA, secret: str) -> None:
        self.app = SandboxApp(
            SandboxConfig(run_seconds=0.2, result_rows=100, zuora_secret_access_key=secret)
        )
        self.server = make_server("127.0.0.1", 0, self.app)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        # The URLs the sandbox hands out (Stripe v1 file URLs, v2 pre-signed download URLs)
        # follow the request's scheme; wsgiref reads it from HTTPS in the base environment.
        self.server.base_environ["HTTPS"] = "on"
        self.url = f"https://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_sandbox(ca: trustme.CA, kit: Any) -> Iterator[TlsSandbox]:
    sandbox = TlsSandbox(ca, kit.ZUORA_SECRET)
    yield sandbox
    sandbox.close()


@pytest.fixture
def bundle(ca: trustme.CA, tmp_path: Path) -> Path:
    """The private CA as a PEM file, like a corporate proxy's CA handed out by IT."""
    path = tmp_path / "corporate-ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return path


def zuora_over_tls(tls_sandbox: TlsSandbox) -> dict[str, Any]:
    return {"zuora": {"base_url": tls_sandbox.url + "/api/rest/v1"}}


def all_over_tls(tls_sandbox: TlsSandbox) -> dict[str, Any]:
    url = tls_sandbox.url
    return {
        "stripe": {"base_url": url, "files_base_url": url},
        "stripe-v2": {"base_url": url},
        **zuora_over_tls(tls_sandbox),
    }


def run_and_download(gateway: Gateway, provider: str, kit: Any, target: Path) -> None:
    report_id, params = kit.REPORTS[provider]
    run = gateway.wait(gateway.start(provider, report_id, params), poll_interval=0.05)
    assert run.status is RunStatus.SUCCEEDED
    assert gateway.download(run, target, unzip=provider == "stripe-v2").stat().st_size > 0


def test_self_signed_server_is_refused_by_default(
    tls_sandbox: TlsSandbox, make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    gateway = make_gateway(zuora_over_tls(tls_sandbox))
    report_id, params = kit.REPORTS["zuora"]
    with pytest.raises(ProviderError) as caught:
        gateway.start("zuora", report_id, params)
    message = str(caught.value)
    assert "certificate verify failed" in message
    assert "127.0.0.1" in message
    # Nothing got past the handshake: no request, no credential, no run.
    assert tls_sandbox.app.stats()["requests"] == {}
    assert tls_sandbox.app.stats()["runs_created"]["zuora"] == 0


@pytest.mark.parametrize("provider", ["stripe", "stripe-v2", "zuora"])
def test_every_provider_refuses_the_private_ca_by_default(
    provider: str, tls_sandbox: TlsSandbox, make_gateway: Callable[..., Gateway], kit: Any
) -> None:
    gateway = make_gateway(all_over_tls(tls_sandbox))
    report_id, params = kit.REPORTS[provider]
    with pytest.raises(ProviderError, match="certificate verify failed"):
        gateway.start(provider, report_id, params)
    assert tls_sandbox.app.stats()["requests"] == {}


@pytest.mark.parametrize("provider", ["stripe", "stripe-v2", "zuora"])
def test_ca_bundle_is_trusted_by_every_provider(
    provider: str,
    bundle: Path,
    tls_sandbox: TlsSandbox,
    make_gateway: Callable[..., Gateway],
    kit: Any,
    tmp_path: Path,
) -> None:
    """The bundle reaches the shared transport, so API calls and result downloads (Stripe
    v1 files, the v2 pre-signed URL, Zuora's export) all verify against it."""
    gateway = make_gateway(all_over_tls(tls_sandbox), ca_bundle=bundle)
    run_and_download(gateway, provider, kit, tmp_path / "report.csv")
    assert tls_sandbox.app.stats()["runs_created"][provider] == 1


def test_ca_bundle_from_the_environment(
    bundle: Path,
    tls_sandbox: TlsSandbox,
    make_gateway: Callable[..., Gateway],
    kit: Any,
    tmp_path: Path,
) -> None:
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "config-home"), CA_BUNDLE_ENV: str(bundle)}
    gateway = make_gateway(zuora_over_tls(tls_sandbox), environ=environ)
    run_and_download(gateway, "zuora", kit, tmp_path / "report.csv")


def test_ca_bundle_argument_wins_over_the_environment(
    bundle: Path,
    tls_sandbox: TlsSandbox,
    make_gateway: Callable[..., Gateway],
    kit: Any,
    tmp_path: Path,
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "config-home"), CA_BUNDLE_ENV: str(other)}
    gateway = make_gateway(zuora_over_tls(tls_sandbox), environ=environ, ca_bundle=bundle)
    run_and_download(gateway, "zuora", kit, tmp_path / "report.csv")


def test_a_ca_bundle_without_the_issuer_is_still_refused(
    tls_sandbox: TlsSandbox, make_gateway: Callable[..., Gateway], tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    gateway = make_gateway(zuora_over_tls(tls_sandbox), ca_bundle=other)
    with pytest.raises(ProviderError, match="certificate verify failed"):
        gateway.get("zuora", "any-run-id")


def _not_a_certificate(path: Path) -> None:
    path.write_text("not a certificate\n")


def _a_folder(path: Path) -> None:
    path.mkdir()


@pytest.mark.parametrize(
    ("make_bad", "complaint"),
    [
        (None, "does not exist"),
        (_a_folder, "is a directory"),
        (_not_a_certificate, "holds no PEM certificate"),
    ],
    ids=["missing", "folder", "not-pem"],
)
@pytest.mark.parametrize("where", ["argument", "environment"])
def test_an_unusable_ca_bundle_is_a_configuration_error_before_any_request(
    make_bad: Callable[[Path], None] | None,
    complaint: str,
    where: str,
    tls_sandbox: TlsSandbox,
    make_gateway: Callable[..., Gateway],
    tmp_path: Path,
) -> None:
    path = tmp_path / "proxy-ca.pem"
    if make_bad is not None:
        make_bad(path)
    environ = {"XDG_CONFIG_HOME": str(tmp_path / "config-home")}
    options: dict[str, Any] = {"ca_bundle": path}
    if where == "environment":
        options = {"environ": {**environ, CA_BUNDLE_ENV: str(path)}}
    with pytest.raises(ConfigurationError) as caught:
        make_gateway(zuora_over_tls(tls_sandbox), **options).get("zuora", "any-run-id")
    message = str(caught.value)
    assert str(path) in message
    assert complaint in message
    assert (CA_BUNDLE_ENV in message) is (where == "environment")
    assert tls_sandbox.app.stats()["requests"] == {}


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_ca_bundle_is_a_configuration_error(bundle: Path) -> None:
    bundle.chmod(0)
    with pytest.raises(ConfigurationError, match=f"cannot read CA bundle {bundle}"):
        Gateway(ca_bundle=bundle, load_entrypoints=False)


def test_ca_bundle_and_a_transport_exclude_each_other(bundle: Path) -> None:
    with Transport() as transport, pytest.raises(ConfigurationError, match="ca_certs"):
        Gateway(transport=transport, ca_bundle=bundle, load_entrypoints=False)


def test_custom_ca_bundle_is_accepted(
    ca: trustme.CA,
    tls_sandbox: TlsSandbox,
    make_gateway: Callable[..., Gateway],
    kit: Any,
    tmp_path: Path,
) -> None:
    bundle = tmp_path / "corporate-ca.pem"
    ca.cert_pem.write_to_path(str(bundle))
    with Transport(ca_certs=str(bundle)) as transport:
        gateway = make_gateway(zuora_over_tls(tls_sandbox), transport=transport)
        report_id, params = kit.REPORTS["zuora"]
        run = gateway.wait(gateway.start("zuora", report_id, params), poll_interval=0.05)
        assert run.status is RunStatus.SUCCEEDED
        assert gateway.download(run, tmp_path / "report.csv").stat().st_size > 0
    assert tls_sandbox.app.stats()["runs_created"]["zuora"] == 1


def test_a_transport_bundle_without_the_issuer_is_still_refused(
    tls_sandbox: TlsSandbox, make_gateway: Callable[..., Gateway], kit: Any, tmp_path: Path
) -> None:
    other = tmp_path / "other-ca.pem"
    trustme.CA().cert_pem.write_to_path(str(other))
    with Transport(ca_certs=str(other)) as transport:
        gateway = make_gateway(zuora_over_tls(tls_sandbox), transport=transport)
        with pytest.raises(ProviderError, match="certificate verify failed"):
            gateway.get("zuora", "any-run-id")


# -- the command line ----------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, kit: Any) -> None:
    """Zuora credentials from the environment, nothing else of the developer's setup."""
    for name in list(os.environ):
        if name.startswith(("STRIPE_", "ZUORA_", "REPORT_GATEWAY_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config-home"))
    monkeypatch.setenv("ZUORA_API_ACCESS_KEY_ID", ZUORA_ACCESS_KEY_ID)
    monkeypatch.setenv("ZUORA_API_SECRET_ACCESS_KEY", kit.ZUORA_SECRET)


def run_zuora_cli(tls_sandbox: TlsSandbox, kit: Any, output: Path, *options: str) -> int:
    """``report-gateway [options] --base-url URL run zuora REPORT -p ... -o OUTPUT``."""
    report_id, params = kit.REPORTS["zuora"]
    argv = [
        *options,
        "--base-url",
        tls_sandbox.url + "/api/rest/v1",
        "run",
        "zuora",
        report_id,
        *(f"-p{name}={value}" for name, value in params.items()),
        "-o",
        str(output),
        "--timeout",
        "30",
    ]
    return main(argv)


@pytest.mark.usefixtures("cli_env")
def test_cli_refuses_the_private_ca_by_default(
    tls_sandbox: TlsSandbox, kit: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run_zuora_cli(tls_sandbox, kit, tmp_path / "report.csv") == PROVIDER
    assert "certificate verify failed" in capsys.readouterr().err
    assert tls_sandbox.app.stats()["requests"] == {}


@pytest.mark.usefixtures("cli_env")
def test_cli_ca_bundle_option(
    bundle: Path, tls_sandbox: TlsSandbox, kit: Any, tmp_path: Path
) -> None:
    output = tmp_path / "report.csv"
    assert run_zuora_cli(tls_sandbox, kit, output, "--ca-bundle", str(bundle)) == 0
    assert output.stat().st_size > 0


@pytest.mark.usefixtures("cli_env")
def test_cli_ca_bundle_from_the_environment(
    bundle: Path,
    tls_sandbox: TlsSandbox,
    kit: Any,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv(CA_BUNDLE_ENV, str(bundle))
    output = tmp_path / "report.csv"
    assert run_zuora_cli(tls_sandbox, kit, output) == 0
    assert output.stat().st_size > 0


@pytest.mark.usefixtures("cli_env")
def test_cli_missing_ca_bundle_names_the_path(
    tls_sandbox: TlsSandbox, kit: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "no-such-ca.pem"
    code = run_zuora_cli(tls_sandbox, kit, tmp_path / "report.csv", "--ca-bundle", str(missing))
    err = capsys.readouterr().err
    assert code == CONFIG
    assert str(missing) in err
    assert "does not exist" in err
    assert tls_sandbox.app.stats()["requests"] == {}
