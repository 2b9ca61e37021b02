"""Every job a developer or CI runs, each in its own virtualenv built from this checkout.

The packages are installed editable from their folders (they are not on PyPI), so a
fresh clone needs nothing but `pip install "nox[uv]"` before any session.
"""

from __future__ import annotations

import os
from pathlib import Path

import nox

nox.needs_version = ">=2025.2.9"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.sessions = ["tests"]
nox.options.error_on_external_run = True

ROOT = Path(__file__).parent
PYPROJECT = nox.project.load_toml(ROOT / "pyproject.toml")

# The packages, in dependency order, from the root pyproject's workspace members (the one
# list; pip/uv resolve their names to these folders).
WORKSPACE = PYPROJECT["tool"]["report-gateway"]["workspace"]
PACKAGES: tuple[str, ...] = tuple(WORKSPACE["members"])
# Packages only one session installs (its own environment): {session name: folders}.
SESSION_PACKAGES: dict[str, list[str]] = dict(WORKSPACE.get("session-members", {}))
EXAMPLE_PLUGIN = "tests/plugins/report-gateway-example"


def install_workspace(session: nox.Session, *groups: str) -> None:
    """Install every package editable plus the named dependency groups, in one resolve
    (and the packages kept for this session alone, ``session-members``)."""
    args: list[str] = []
    for folder in (*PACKAGES, *SESSION_PACKAGES.get(session.name, ())):
        args += ["-e", folder]
    for group in groups:
        args += list(nox.project.dependency_groups(PYPROJECT, group))
    session.install(*args)


@nox.session
def tests(session: nox.Session) -> None:
    """The default test run: offline, cassettes replayed, sandbox on 127.0.0.1."""
    install_workspace(session, "test")
    if (ROOT / EXAMPLE_PLUGIN / "pyproject.toml").exists():
        # A real third-party distribution, installed the way a user would.
        session.install(EXAMPLE_PLUGIN)
    session.run("pytest", *(session.posargs or ["-q"]))


@nox.session
def faults(session: nox.Session) -> None:
    """Fault injection and security scenarios against the sandbox."""
    install_workspace(session, "test")
    session.run("pytest", "tests/faults", "tests/security", *(session.posargs or ["-q"]))


@nox.session
def airflow(session: nox.Session) -> None:
    """The Airflow provider against the pinned Airflow 3 (dependency group ``airflow``) in
    this session's own environment: a throwaway AIRFLOW_HOME on SQLite (``airflow db
    migrate``), the sandbox, and ``airflow dags test`` of the example DAG (tests/airflow)."""
    install_workspace(session, "airflow")
    session.run("pytest", "tests/airflow", *(session.posargs or ["-q"]))


@nox.session
def lint(session: nox.Session) -> None:
    session.install(*nox.project.dependency_groups(PYPROJECT, "lint"))
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    """mypy --strict over every package's hand-written and generated code."""
    install_workspace(session, "typecheck")
    # The plugin guide's example is held to the same bar, and so are the session-only
    # packages (their heavy dependencies, Airflow, are not installed here: see the mypy
    # overrides in pyproject.toml).
    only = [folder for folders in SESSION_PACKAGES.values() for folder in folders]
    sources = [str(ROOT / p / "src") for p in (*PACKAGES, *only, EXAMPLE_PLUGIN)]
    # The src folders are also mypy's package bases (explicit_package_bases in pyproject),
    # so a file's module name is its path below src/.
    session.run("mypy", *sources, env={"MYPYPATH": os.pathsep.join(sources)})


@nox.session
def codegen(session: nox.Session) -> None:
    """Regenerate the clients from specs/; `-- --check` fails on any drift instead."""
    session.install("-e", "packages/reporting-runtime")
    session.install(*nox.project.dependency_groups(PYPROJECT, "codegen"))
    session.run("python", "-m", "codegen", *session.posargs)


@nox.session
def demo(session: nox.Session) -> None:
    """The main job: run one report per provider end to end on the embedded sandbox."""
    install_workspace(session)
    session.run("report-gateway", "demo", *session.posargs)


@nox.session
def record(session: nox.Session) -> None:
    """Re-record the flow cassettes from the sandbox (or `-- --live` from the real services)."""
    install_workspace(session, "test")
    session.run("python", "-m", "tests.recording", *session.posargs)


@nox.session
def build(session: nox.Session) -> None:
    """Every distribution's sdist and wheel into dist/ (README, "Building the wheels");
    install from there with `pip install --find-links dist "report-gateway[stripe,zuora]"`."""
    session.install("uv")
    out = session.posargs[0] if session.posargs else str(ROOT / "dist")
    for folder in (*PACKAGES, *(f for fs in SESSION_PACKAGES.values() for f in fs)):
        session.run("uv", "build", "--quiet", "--out-dir", out, str(ROOT / folder))


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks against the sandbox; prints ratios and exits non-zero on a missed target."""
    install_workspace(session, "bench")
    session.run("python", "-m", "tests.bench", *session.posargs)


@nox.session
def docs(session: nox.Session) -> None:
    """The documentation site (README sections, provider pages, API reference) into site/;
    strict: a warning fails. `-- serve` previews it instead."""
    install_workspace(session, "docs")
    if session.posargs[:1] == ["serve"]:
        session.run("mkdocs", "serve", *session.posargs[1:])
    else:
        session.run("mkdocs", "build", "--strict", *session.posargs)
