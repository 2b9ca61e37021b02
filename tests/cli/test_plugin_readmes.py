"""Issue 15 §1: a plugin's README starts with how to install it, and the install from a
checkout it documents names every package of ours the plugin needs, each after its own
dependencies; no README holds a path of a developer's machine."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
PLUGINS = sorted((ROOT / "plugins").glob("report-gateway-*/README.md"))


def _ours() -> dict[str, tuple[Path, list[str]]]:
    """Our distributions: name -> (folder, the names of ours it depends on)."""
    found: dict[str, tuple[Path, list[str]]] = {}
    for pyproject in [
        *ROOT.glob("packages/*/pyproject.toml"),
        *ROOT.glob("plugins/*/pyproject.toml"),
    ]:
        project = tomllib.loads(pyproject.read_text())["project"]
        deps = [re.split(r"[<>=!~ ;\[]", d, maxsplit=1)[0] for d in project.get("dependencies", [])]
        found[project["name"]] = (pyproject.parent, deps)
    return {
        name: (folder, [d for d in deps if d in found or (ROOT / "packages" / d).exists()])
        for name, (folder, deps) in found.items()
    }


@pytest.mark.parametrize("readme", PLUGINS, ids=lambda p: p.parent.name)
def test_plugin_readme_starts_with_its_install_line(readme: Path) -> None:
    lines = readme.read_text().splitlines()
    assert lines[0] == f"# {readme.parent.name}"
    assert lines[2:5] == ["```bash", f"pip install {readme.parent.name}", "```"]


@pytest.mark.parametrize("readme", PLUGINS, ids=lambda p: p.parent.name)
def test_checkout_install_lists_what_the_plugin_needs_in_order(readme: Path) -> None:
    ours = _ours()
    line = next(
        line for line in readme.read_text().splitlines() if line.startswith("pip install ./")
    )
    folders = [ROOT / part for part in line.split()[2:]]
    by_folder = {folder.resolve(): name for name, (folder, _) in ours.items()}
    names = [by_folder[folder.resolve()] for folder in folders]  # each path is one of ours
    assert names[-1] == readme.parent.name
    for position, name in enumerate(names):
        for dependency in ours[name][1]:
            assert dependency in names[:position], f"{dependency} must come before {name}"


def test_no_readme_holds_a_developer_path() -> None:
    for readme in ROOT.glob("**/README.md"):
        if ".nox" in readme.parts or "node_modules" in readme.parts:
            continue
        text = readme.read_text(encoding="utf-8")
        assert not re.search(r"(/work/|/home/\w|/Users/\w|[A-Z]:\\\\Users)", text), readme
