"""What each distribution declares before it is built (every one in the repository, the
Airflow provider included): one version literal, compatible ranges between our own
packages, the license file, keywords, classifiers and URLs; the providers as extras of the
core."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
WORKSPACE = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "report-gateway"
]["workspace"]
#: Every distribution in the repository, found by its pyproject.toml (not the workspace's
#: list: a package left out of it, as the Airflow provider is from the default sessions,
#: is published all the same).
MEMBERS: list[str] = sorted(
    str(path.parent.relative_to(ROOT))
    for pattern in ("packages/*/pyproject.toml", "plugins/*/pyproject.toml")
    for path in ROOT.glob(pattern)
)


def test_every_distribution_is_known_to_a_session() -> None:
    listed = set(WORKSPACE["members"])
    for members in WORKSPACE.get("session-members", {}).values():
        listed |= set(members)
    assert listed == set(MEMBERS)
    assert "packages/report-gateway-airflow" in MEMBERS


def _pyproject(folder: str) -> dict[str, object]:
    return tomllib.loads((ROOT / folder / "pyproject.toml").read_text(encoding="utf-8"))


def _our_names() -> set[str]:
    return {str(_pyproject(m)["project"]["name"]) for m in MEMBERS}  # type: ignore[index]


@pytest.mark.parametrize("folder", MEMBERS)
def test_one_version_literal_per_package(folder: str) -> None:
    document = _pyproject(folder)
    project = document["project"]
    assert isinstance(project, dict)
    literals = [] if "version" in project.get("dynamic", []) else [project["version"]]
    for source in (ROOT / folder / "src").rglob("*.py"):
        if "_generated" in source.parts:
            continue
        found = re.findall(r'^__version__\s*=\s*"([^"]+)"', source.read_text("utf-8"), re.M)
        literals += found
    assert len(literals) == 1, f"{folder}: version literals {literals}"
    if "version" in project.get("dynamic", []):
        path = document["tool"]["hatch"]["version"]["path"]  # type: ignore[index]
        assert (ROOT / folder / path).is_file()


@pytest.mark.parametrize("folder", MEMBERS)
def test_our_packages_depend_on_each_other_by_compatible_range(folder: str) -> None:
    project = _pyproject(folder)["project"]
    assert isinstance(project, dict)
    requirements = list(project.get("dependencies", []))
    for extra in project.get("optional-dependencies", {}).values():
        requirements += extra
    for requirement in requirements:
        name = re.split(r"[\s<>=!~;\[]", requirement, maxsplit=1)[0]
        if name in _our_names():
            assert "==" not in requirement
            assert re.search(r">=\s*0\.1\s*,\s*<\s*0\.2", requirement), requirement


@pytest.mark.parametrize("folder", MEMBERS)
def test_publishing_metadata(folder: str) -> None:
    project = _pyproject(folder)["project"]
    assert isinstance(project, dict)
    assert project["license"] == "MIT"
    assert project["license-files"] == ["LICENSE"]
    assert "MIT License" in (ROOT / folder / "LICENSE").read_text(encoding="utf-8")
    assert project["keywords"]
    assert "Programming Language :: Python :: 3.11" in project["classifiers"]
    assert "Development Status :: 3 - Alpha" in project["classifiers"]
    assert {"Homepage", "Source", "Changelog", "Issues"} <= set(project["urls"])
    assert project["authors"]


def test_the_core_offers_the_providers_as_extras() -> None:
    extras = _pyproject("packages/report-gateway")["project"]["optional-dependencies"]  # type: ignore[index]
    assert extras["stripe"] == ["report-gateway-stripe>=0.1,<0.2"]
    assert extras["zuora"] == ["report-gateway-zuora>=0.1,<0.2"]
    assert extras["sandbox"] == ["report-gateway-sandbox>=0.1,<0.2"]
    assert any(r.startswith("opentelemetry-api") for r in extras["otel"])


def test_the_changelog_names_the_current_version() -> None:
    from report_gateway import __version__

    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert re.search(rf"^## {re.escape(__version__)}\b", changelog, re.M)
