"""README's examples are what a new user copies first: they must run as printed.

The Python blocks that build a Gateway are executed against a sandbox on a free loopback
port (the README's fixed port 12111 is substituted), and the `run` command line shown in
"Try it against the sandbox" is run through the CLI entry point.
"""

from __future__ import annotations

import csv
import re
import shlex
from pathlib import Path

import pytest
from report_gateway_sandbox import Sandbox, SandboxConfig

README = Path(__file__).parents[2] / "README.md"
README_URL = "http://127.0.0.1:12111"


def _blocks(language: str) -> list[str]:
    text = README.read_text(encoding="utf-8")
    return re.findall(rf"```{language}\n(.*?)```", text, flags=re.DOTALL)


def _gateway_examples() -> list[str]:
    return [block for block in _blocks("python") if "Gateway(settings=" in block]


@pytest.fixture(scope="module")
def sandbox():
    with Sandbox(SandboxConfig(run_seconds=0.3, result_rows=50)) as sb:
        yield sb


def test_readme_has_one_example_per_provider() -> None:
    examples = _gateway_examples()
    providers = {re.search(r'settings=\{"([a-z0-9-]+)"', ex).group(1) for ex in examples}
    assert providers == {"stripe", "stripe-v2", "zuora"}


@pytest.mark.parametrize("example", _gateway_examples(), ids=lambda ex: ex.split('"')[1])
def test_python_example_runs_as_printed(
    example: str, sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    code = example.replace(README_URL, sandbox.url)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})  # noqa: S102
    printed = capsys.readouterr().out
    written = [p for p in tmp_path.iterdir() if p.suffix == ".csv"]
    assert len(written) == 1, printed
    with written[0].open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    assert rows, "the downloaded CSV has a header and rows"
    # the example prints the path and the first row streamed by gw.rows()
    assert str(written[0].name) in printed
    assert repr(next(iter(rows[0]))) in printed


def test_cli_run_example_writes_the_file(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from report_gateway.cli import main

    bash = next(block for block in _blocks("bash") if "report-gateway run stripe" in block)
    key = re.search(r"STRIPE_API_KEY=(\S+)", bash).group(1)
    command = bash[bash.index("report-gateway run stripe") :].replace("\\\n", " ")
    argv = shlex.split(command.replace(README_URL, sandbox.url))[1:]
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("STRIPE_API_KEY", key)
    assert main(argv) == 0
    header = (tmp_path / "out.csv").read_text(encoding="utf-8").splitlines()[0]
    assert "," in header


def test_plugin_guide_provider_runs_through_a_gateway(tmp_path: Path) -> None:
    """The BaseDriver provider in the plugin guide is a working plugin, as printed."""
    import textwrap
    import types
    import warnings

    from report_gateway import Gateway, RunStatus, Scope

    (block,) = [b for b in _blocks("python") if "class LedgerDriver(BaseDriver)" in b]
    module = types.ModuleType("readme_ledger")
    exec(compile(textwrap.dedent(block), "README.md", "exec"), module.__dict__)  # noqa: S102
    settings = {"ledger": {"token": "t", "account": "main"}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the statuses are mapped: no UnknownStatusWarning
        with Gateway(settings, plugins=[module], load_entrypoints=False, environ={}) as gw:
            assert [t.id for t in gw.search("ledger", "journal")] == ["journal"]
            run = gw.start("ledger", "journal")
            assert run.status is RunStatus.PENDING
            assert run.scope == Scope(account="main")
            done = gw.wait(run, sleep=lambda _: None)
    assert done.status is RunStatus.SUCCEEDED
    assert module.Ledger.runs[run.id] == ("journal", {"X-Ledger-Book": "main"})


def _marked(first_line: str) -> str:
    (block,) = [b for b in _blocks("python") if b.startswith(first_line)]
    return block


def test_fan_out_example_runs_as_printed(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", str(tmp_path / "journal.sqlite3"))
    code = _marked("# Fan-out:").replace(README_URL, sandbox.url)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})  # noqa: S102
    assert "'done': 3" in capsys.readouterr().out
    names = sorted(p.name for p in (tmp_path / "nightly").iterdir())
    assert names == ["acct_1.csv", "acct_2.csv", "acct_3.csv", "all-accounts.csv"]
    with (tmp_path / "nightly" / "all-accounts.csv").open(newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert {row["scope"] for row in rows} == {"acct_1", "acct_2", "acct_3"}


def test_organizations_example_runs_as_printed(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("REPORT_GATEWAY_JOURNAL", "")
    code = _marked("# Organizations:").replace(README_URL, sandbox.url)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})  # noqa: S102
    printed = capsys.readouterr().out.splitlines()
    assert len(printed) == 3
    assert "without Stripe-Context" in printed[0]
    assert "only Scope(context=...)" in printed[1]
    assert "unknown parameter" in printed[2]
    for name in ("direct", "connected", "concatenated_report", "aggregated_report"):
        assert (tmp_path / f"{name}.csv").stat().st_size > 0


def test_plugin_guide_http_recipe_runs_through_a_gateway(tmp_path: Path) -> None:
    """The HTTP recipe's driver, as printed, reads a template over plain requests."""
    import textwrap
    import types

    from report_gateway import Gateway, ProviderError
    from report_gateway_sandbox import STRIPE_TEST_KEY

    (block,) = [b for b in _blocks("python") if "class TypesDriver(BaseDriver)" in b]
    module = types.ModuleType("readme_types")
    exec(compile(textwrap.dedent(block), "README.md", "exec"), module.__dict__)  # noqa: S102
    with Sandbox(SandboxConfig()) as sb:
        settings = {"types": {"api_key": STRIPE_TEST_KEY, "base_url": sb.stripe_base_url}}
        environ = {"XDG_CONFIG_HOME": str(tmp_path)}
        with Gateway(settings, plugins=[module], load_entrypoints=False, environ=environ) as gw:
            assert gw.template("types", "balance.summary.1").id == "balance.summary.1"
            with pytest.raises(ProviderError) as caught:
                gw.template("types", "no.such.type")
            assert caught.value.status == 404
            assert gw.spec("types").demo is not None


def test_data_tools_example_runs_as_printed(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    section = README.read_text(encoding="utf-8").split("## Data tools", 1)[1].split("\n## ")[0]
    (example,) = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    monkeypatch.chdir(tmp_path)
    exec(  # noqa: S102
        compile(example.replace(README_URL, sandbox.url), "README.md", "exec"),
        {"__name__": "readme_example"},
    )
    printed = capsys.readouterr().out.splitlines()
    assert printed[0] == "double 50"  # typed by Stripe v2's result.file.schema
    assert printed[1] == "balance.parquet"
    assert (tmp_path / "balance.parquet").stat().st_size > 0


def test_async_example_runs_as_printed(
    sandbox: Sandbox, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys
) -> None:
    """The Async API block is a whole program (``asyncio.run(main())``), not a fragment."""
    (example,) = [block for block in _blocks("python") if "asyncio.run(main(" in block]
    monkeypatch.chdir(tmp_path)
    code = example.replace(README_URL, sandbox.url)
    exec(compile(code, "README.md", "exec"), {"__name__": "readme_async_example"})  # noqa: S102
    printed = capsys.readouterr().out
    written = tmp_path / "async-balance.csv"
    header = written.read_text(encoding="utf-8").splitlines()[0]
    assert str(written) in printed or written.name in printed
    assert repr(header.split(",")[0]) in printed  # the first row streamed by agw.rows()


def _readmes() -> list[Path]:
    root = README.parent
    return [
        README,
        *sorted(root.glob("packages/*/README.md")),
        *sorted(root.glob("plugins/*/README.md")),
    ]


@pytest.mark.parametrize("readme", _readmes(), ids=lambda path: path.parent.name)
def test_code_blocks_are_closed_so_the_sections_after_them_render(readme: Path) -> None:
    """A stray fence turns every later heading into code and every later code into prose,
    on GitHub and on the site alike (it happened once, after the Performance table)."""
    inside = False
    headings_in_code = []
    for number, line in enumerate(readme.read_text(encoding="utf-8").splitlines(), 1):
        if line.startswith("```"):
            inside = not inside
        elif inside and line.startswith("## "):
            headings_in_code.append(f"line {number}: {line}")
    assert not inside, f"{readme}: a code block is never closed"
    assert headings_in_code == []
