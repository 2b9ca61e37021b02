"""The root pyproject's member list is the one list nox, mypy and CI use: it must be whole
and in dependency order, or a package goes untested and untyped, or an install fails."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _members() -> list[str]:
    document = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    members: list[str] = document["tool"]["report-gateway"]["workspace"]["members"]
    return members


def _session_members() -> list[str]:
    """Folders only one nox session installs (``session-members``), after every member."""
    document = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    sessions: dict[str, list[str]] = document["tool"]["report-gateway"]["workspace"].get(
        "session-members", {}
    )
    return [folder for folders in sessions.values() for folder in folders]


def _project(folder: str) -> dict[str, object]:
    text = (ROOT / folder / "pyproject.toml").read_text(encoding="utf-8")
    project: dict[str, object] = tomllib.loads(text)["project"]
    return project


def test_every_package_folder_is_a_member() -> None:
    folders = {
        str(path.parent.relative_to(ROOT))
        for pattern in ("packages/*/pyproject.toml", "plugins/*/pyproject.toml")
        for path in ROOT.glob(pattern)
    }
    assert folders == set(_members()) | set(_session_members())


def test_members_come_after_the_members_they_depend_on() -> None:
    seen: set[str] = set()
    everything = [*_members(), *_session_members()]
    names = {str(_project(folder)["name"]) for folder in everything}
    for folder in everything:
        project = _project(folder)
        requirements = project.get("dependencies") or []
        assert isinstance(requirements, list)
        for requirement in requirements:
            name = re.split(r"[\s<>=!~;\[]", str(requirement), maxsplit=1)[0]
            if name in names:
                assert name in seen, f"{folder} needs {name}, listed after it"
        seen.add(str(project["name"]))
