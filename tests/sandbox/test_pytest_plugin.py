"""The sandbox's pytest plugin, as a user's test suite meets it: installed with the package,
no conftest needed, each test starting from the configured sandbox whatever the last one did."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


def test_fixtures_come_with_the_package(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import http.client
        from urllib.parse import urlsplit

        from report_gateway_sandbox import FaultRule

        TYPES = "/v1/reporting/report_types"

        def status(url):
            parts = urlsplit(url)
            conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=10)
            conn.request("GET", TYPES, headers={"Authorization": "Bearer sk_test_x"})
            try:
                return conn.getresponse().status
            finally:
                conn.close()

        def test_first_changes_everything(sandbox, sandbox_url):
            assert sandbox_url == sandbox.url
            assert sandbox_url.startswith("http://127.0.0.1:")
            sandbox.configure(run_seconds=42, faults=[FaultRule(kind="server_error")])
            assert status(sandbox_url) == 503
            assert sandbox.stats()["requests"]

        def test_second_starts_clean(sandbox, sandbox_url):
            assert sandbox.config.run_seconds == 1.0
            assert not sandbox.stats()["requests"]
            assert status(sandbox_url) == 200

        def test_own_sandboxes_are_separate(sandbox, make_sandbox):
            own = make_sandbox(faults=[FaultRule(kind="rate_limit")], seed=3)
            assert own.url != sandbox.url
            assert own.config.seed == 3
            assert status(own.url) == 429
            assert status(sandbox.url) == 200
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_a_folder_sets_its_own_configuration(pytester: pytest.Pytester) -> None:
    pytester.makeconftest(
        """
        import pytest
        from report_gateway_sandbox import SandboxConfig

        @pytest.fixture
        def sandbox_config():
            return SandboxConfig(run_seconds=0.25, result_rows=7)
        """
    )
    pytester.makepyfile(
        """
        def test_shared(sandbox):
            assert (sandbox.config.run_seconds, sandbox.config.result_rows) == (0.25, 7)
            sandbox.configure(result_rows=99)

        def test_restored(sandbox):
            assert sandbox.config.result_rows == 7

        def test_factory_builds_on_it(make_sandbox):
            own = make_sandbox(result_rows=3)
            assert (own.config.run_seconds, own.config.result_rows) == (0.25, 3)
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)


def test_own_sandboxes_stop_after_the_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(
        """
        import socket

        PORTS = []

        def test_start(make_sandbox):
            PORTS.append(make_sandbox().port)
            socket.create_connection(("127.0.0.1", PORTS[0]), timeout=5).close()

        def test_stopped():
            try:
                socket.create_connection(("127.0.0.1", PORTS[0]), timeout=5).close()
            except OSError:
                return
            raise AssertionError("the sandbox still listens")
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2)
