"""The default config file lives where each system keeps user settings (platformdirs), and
REPORT_GATEWAY_CONFIG still names another one."""

from __future__ import annotations

from pathlib import Path

import platformdirs
import platformdirs.macos
import platformdirs.windows
import pytest
from report_gateway.config import default_config_path, load_profile


def test_linux_follows_xdg_from_the_given_environment(tmp_path: Path) -> None:
    path = default_config_path({"XDG_CONFIG_HOME": str(tmp_path)})
    assert path == tmp_path / "report-gateway" / "config.toml"


def test_linux_default_is_dot_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    path = default_config_path({})
    assert path == tmp_path / ".config" / "report-gateway" / "config.toml"


def test_linux_ignores_a_relative_xdg_config_home(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The XDG spec: a relative path in $XDG_CONFIG_HOME is invalid and to be ignored (it
    would name a different file from every folder the command runs in)."""
    monkeypatch.setenv("HOME", str(tmp_path))
    path = default_config_path({"XDG_CONFIG_HOME": "relative/config"})
    assert path == tmp_path / ".config" / "report-gateway" / "config.toml"


def test_the_journal_follows_xdg_data_home_and_ignores_a_relative_one(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from report_gateway.journal import default_journal_path

    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    assert default_journal_path() == tmp_path / "data" / "report-gateway" / "journal.sqlite3"
    monkeypatch.setenv("XDG_DATA_HOME", "relative/data")
    expected = tmp_path / "home" / ".local" / "share" / "report-gateway" / "journal.sqlite3"
    assert default_journal_path() == expected


def test_macos_uses_application_support(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(platformdirs, "PlatformDirs", platformdirs.macos.MacOS)
    monkeypatch.setenv("HOME", str(tmp_path))
    # XDG is a Linux convention: it does not move the macOS folder.
    path = default_config_path({"XDG_CONFIG_HOME": "/elsewhere"})
    expected = tmp_path / "Library" / "Application Support" / "report-gateway" / "config.toml"
    assert path == expected


def test_windows_uses_appdata(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(platformdirs, "PlatformDirs", platformdirs.windows.Windows)
    # Off Windows, platformdirs reads the shell folders from these variables.
    monkeypatch.setattr(
        platformdirs.windows,
        "get_win_folder",
        lambda csidl: {"CSIDL_APPDATA": str(tmp_path / "Roaming")}[csidl],
    )
    assert default_config_path({}) == tmp_path / "Roaming" / "report-gateway" / "config.toml"


def test_the_environment_variable_names_another_file(tmp_path: Path) -> None:
    config = tmp_path / "mine.toml"
    config.write_text('[profiles.default.stripe]\napi_key = "sk_test_x"\n', encoding="utf-8")
    profile = load_profile(environ={"REPORT_GATEWAY_CONFIG": str(config)})
    assert profile.path == config
    assert profile.providers["stripe"]["api_key"] == "sk_test_x"
