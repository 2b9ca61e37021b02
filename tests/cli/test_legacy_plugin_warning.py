"""A legacy plugin's DeprecationWarning while plugins load reaches the CLI's warning handler,
which reads the declared secrets: that lookup must not wait on the loading it is inside of
(it once hung there forever)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

LEGACY_PLUGIN = """
from report_gateway import hookimpl
from report_gateway.provider import ProviderSpec


def _factory(context):
    raise NotImplementedError


@hookimpl
def report_gateway_providers():
    # The former declaration: settings_keys/env_vars/credential_keys, no options.
    return [
        ProviderSpec(
            name="legacy",
            factory=_factory,
            settings_keys=("api_key",),
            env_vars={"api_key": "LEGACY_API_KEY"},
            credential_keys=("api_key",),
        )
    ]
"""


def _install_legacy(site: Path) -> None:
    info = site / "legacy_plugin-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: legacy-plugin\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[report_gateway]\nlegacy = legacy_plugin\n")
    (site / "legacy_plugin.py").write_text(LEGACY_PLUGIN)


def test_a_legacy_plugins_warning_while_loading_does_not_hang_the_cli(tmp_path: Path) -> None:
    site = tmp_path / "site"
    _install_legacy(site)
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]),
        "REPORT_GATEWAY_LOAD_PLUGINS": "legacy",
        "REPORT_GATEWAY_JOURNAL": "",
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "report_gateway.cli", "providers"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,  # a deadlock would never end; the command takes about a second
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "legacy" in done.stdout.split()
    warnings = [line for line in done.stderr.splitlines() if "warning:" in line]
    assert len(warnings) == 1, done.stderr
    assert "settings_keys/env_vars/credential_keys are the legacy declaration" in warnings[0]
    assert warnings[0].startswith("report-gateway: warning: ProviderSpec('legacy')")
