"""`pip install` of the built wheels, not the checkout, gives a working library: each
member is built to a wheel, the wheels are installed into a fresh venv with no index for our
own packages (PyPI only for the third-party ones), and README's examples run there against
the installed sandbox, the CLI example through the installed `report-gateway` script."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import shlex
import subprocess
import sys
import tarfile
import tomllib
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
MEMBERS: list[str] = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
    "report-gateway"
]["workspace"]["members"]

#: Every distribution, found by its pyproject.toml (the Airflow provider too: built and
#: checked here, installed only by the `airflow` session).
DISTRIBUTIONS: list[str] = sorted(
    str(path.parent.relative_to(ROOT))
    for pattern in ("packages/*/pyproject.toml", "plugins/*/pyproject.toml")
    for path in ROOT.glob(pattern)
)

pytestmark = pytest.mark.slow


def _readme_module():  # type: ignore[no-untyped-def]
    """tests/docs/test_readme.py's code-block extraction, reused as it is."""
    spec = importlib.util.spec_from_file_location(
        "readme_blocks", ROOT / "tests" / "docs" / "test_readme.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _uv() -> str:
    from uv import find_uv_bin

    return find_uv_bin()


def _run(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], capture_output=True, text=True, cwd=cwd, env=env, check=False
    )
    assert done.returncode == 0, f"{args}\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _third_party_requirements() -> list[str]:
    ours = set()
    requirements: list[str] = []
    for folder in MEMBERS:
        project = tomllib.loads((ROOT / folder / "pyproject.toml").read_text("utf-8"))["project"]
        ours.add(project["name"])
        requirements += project.get("dependencies", [])
    return sorted(
        {r for r in requirements if re.split(r"[\s<>=!~;\[]", r, maxsplit=1)[0] not in ours}
    )


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """README's route ("Building the wheels", `nox -s build`): `uv build --out-dir dist
    FOLDER` for each distribution, an sdist and a wheel built from that sdist."""
    dist = tmp_path_factory.mktemp("dist")
    for folder in DISTRIBUTIONS:
        _run(_uv(), "build", "--quiet", "--out-dir", dist, ROOT / folder)
    return dist


def test_every_sdist_carries_the_license_readme_and_changelog(wheels: Path) -> None:
    built = sorted(wheels.glob("*.tar.gz"))
    assert len(built) == len(DISTRIBUTIONS)
    for sdist in built:
        with tarfile.open(sdist) as archive:
            names = {name.split("/", 1)[1] for name in archive.getnames() if "/" in name}
        assert {"LICENSE", "README.md", "CHANGELOG.md", "pyproject.toml"} <= names, sdist.name


@pytest.fixture(scope="module")
def venv(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    env = tmp_path_factory.mktemp("venv") / "venv"
    _run(_uv(), "venv", "--quiet", "--python", sys.executable, env)
    python = env / "bin" / "python"
    _run(_uv(), "pip", "install", "--quiet", "--python", python, *_third_party_requirements())
    _run(
        _uv(), "pip", "install", "--quiet", "--python", python,
        "--no-index", "--find-links", wheels, _documented_requirement(),
    )  # fmt: skip
    return env


def _documented_requirement() -> str:
    """What README's "Building the wheels" installs with `--find-links dist`."""
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r'pip install --find-links dist "(report-gateway\[[^"]+\])"', readme)
    assert found, "README documents no pip install --find-links dist of the core"
    return found.group(1)


def test_readme_documents_this_route() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert "python -m nox -s build" in readme
    assert "uv build --out-dir dist packages/" in readme
    assert _documented_requirement() == "report-gateway[stripe,zuora,sandbox]"
    noxfile = (ROOT / "noxfile.py").read_text(encoding="utf-8")
    assert '"uv", "build", "--quiet", "--out-dir"' in noxfile


def test_every_wheel_carries_the_license_and_its_metadata(wheels: Path) -> None:
    built = sorted(wheels.glob("*.whl"))
    assert len(built) == len(DISTRIBUTIONS)
    for wheel in built:
        with zipfile.ZipFile(wheel) as archive:
            names = archive.namelist()
            (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
            text = archive.read(metadata).decode("utf-8")
            licenses = [n for n in names if n.endswith(".dist-info/licenses/LICENSE")]
            assert licenses, wheel.name
            assert "MIT License" in archive.read(licenses[0]).decode("utf-8")
        assert "License-Expression: MIT" in text
        assert "Classifier: Programming Language :: Python :: 3.11" in text
        assert "Project-URL: Source," in text
        assert "Keywords:" in text
        for requirement in re.findall(r"^Requires-Dist: (.*)$", text, re.M):
            assert "==" not in requirement.split(";")[0], f"{wheel.name}: {requirement}"


def test_readme_examples_run_from_the_installed_wheels(venv: Path, tmp_path: Path) -> None:
    readme = _readme_module()
    examples = [*readme._gateway_examples(), readme._marked("# Fan-out:")]
    files = []
    for number, example in enumerate(examples):
        path = tmp_path / f"example{number}.py"
        path.write_text(example, encoding="utf-8")
        files.append(str(path))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "REPORT_GATEWAY"))}
    runner = Path(__file__).with_name("readme_runner.py")
    out = _run(venv / "bin" / "python", runner, *files, tmp_path / "work", cwd=tmp_path, env=env)
    results = json.loads(out.splitlines()[-1])
    # The library came from the venv, not from this checkout.
    assert str(venv) in results["report_gateway"]
    for path in files[:-1]:
        assert len(results[path]) == 1, results  # each provider example wrote its CSV
    assert "nightly/all-accounts.csv" in results[files[-1]]


def test_readme_cli_example_runs_from_the_installed_script(venv: Path, tmp_path: Path) -> None:
    from report_gateway_sandbox import Sandbox, SandboxConfig

    readme = _readme_module()
    bash = next(block for block in readme._blocks("bash") if "report-gateway run stripe" in block)
    key = re.search(r"STRIPE_API_KEY=(\S+)", bash).group(1)  # type: ignore[union-attr]
    command = bash[bash.index("report-gateway run stripe") :].replace("\\\n", " ")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "REPORT_GATEWAY"))}
    env.update(STRIPE_API_KEY=key, REPORT_GATEWAY_JOURNAL="")
    with Sandbox(SandboxConfig(run_seconds=0.3, result_rows=20)) as sandbox:
        argv = shlex.split(command.replace(readme.README_URL, sandbox.url))[1:]
        _run(venv / "bin" / "report-gateway", *argv, cwd=tmp_path, env=env)
    assert "," in (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()[0]


def test_speedups_sdist_installs_without_a_c_compiler(
    wheels: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """README: without a C compiler the Zuora conversion falls back to pure Python. The
    Zuora plugin depends on report-gateway-speedups, so its sdist must install when the
    extension cannot compile, and then say so the way report-gateway's download.py reads
    it: the package imports, importing the function raises ImportError."""
    (sdist,) = wheels.glob("report_gateway_speedups-*.tar.gz")
    env = tmp_path_factory.mktemp("nocc") / "venv"
    _run(_uv(), "venv", "--quiet", "--python", sys.executable, env)
    python = env / "bin" / "python"
    no_compiler = {**os.environ, "CC": "/bin/false", "CXX": "/bin/false"}
    # --no-cache: a build here, not one cached by an earlier run with a compiler.
    _run(
        _uv(), "pip", "install", "--quiet", "--no-cache", "--python", python, sdist,
        env=no_compiler,
    )  # fmt: skip
    probe = (
        "import report_gateway_speedups\n"
        "try:\n"
        "    from report_gateway_speedups import quote_comma_cells\n"
        "except ImportError:\n"
        "    print('fallback', report_gateway_speedups.__file__)\n"
        "else:\n"
        "    print('native')\n"
    )
    out = _run(python, "-c", probe, cwd=tmp_path_factory.mktemp("probe"))
    assert out.startswith("fallback "), out
    assert str(env) in out  # the installed package, not this checkout
