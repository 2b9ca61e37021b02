"""The documentation site is made from the README and the package READMEs (docs/hooks.py):
every README section reaches a page, and links that work on the repository work on the
site. `nox -s docs` builds it with --strict in CI."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path
from types import SimpleNamespace

ROOT = Path(__file__).parents[2]


def _hooks():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rendered(page: Path) -> str:
    hooks = _hooks()
    src_uri = page.relative_to(ROOT / "docs").as_posix()
    markdown = page.read_text(encoding="utf-8")
    return str(
        hooks.on_page_markdown(markdown, SimpleNamespace(file=SimpleNamespace(src_uri=src_uri)))
    )


def test_every_readme_section_is_on_a_page() -> None:
    site = "".join(_rendered(page) for page in sorted((ROOT / "docs").rglob("*.md")))
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for heading in re.findall(r"^## .+$", readme, re.M):
        assert f"\n{heading}\n" in site, heading


def test_provider_pages_are_the_plugin_readmes() -> None:
    for name in ("stripe", "zuora"):
        page = _rendered(ROOT / "docs" / "providers" / f"{name}.md")
        readme = (ROOT / "plugins" / f"report-gateway-{name}" / "README.md").read_text("utf-8")
        first = readme.splitlines()[0]
        assert page.startswith(first)


def test_links_to_repository_files_point_at_their_page_or_the_repository() -> None:
    page = _rendered(ROOT / "docs" / "python-api.md")
    assert "](providers/zuora.md)" in page
    assert "](plugins/" not in page
    guide = _rendered(ROOT / "docs" / "plugin-guide.md")
    assert "/tree/main/tests/plugins/report-gateway-example)" in guide


def test_in_page_links_reach_the_page_that_holds_the_heading() -> None:
    """README's `[run journal](#the-run-journal-and-resume)` from the Python API and CLI
    sections: the heading is on many-runs.md, so the link goes there (a dead anchor is a
    warning, so `mkdocs build --strict` would fail: mkdocs.yml's validation.anchors)."""
    for name in ("python-api.md", "cli.md"):
        page = _rendered(ROOT / "docs" / name)
        assert "](#the-run-journal-and-resume)" not in page, name
        assert "](many-runs.md#the-run-journal-and-resume)" in page, name
    many = _rendered(ROOT / "docs" / "many-runs.md")
    assert "## The run journal and `resume`" in many
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    assert re.search(r"^validation:\n  anchors: warn$", config, re.M)


def test_the_api_reference_covers_the_data_tools_and_async_api() -> None:
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert "::: report_gateway.tabular" in api
    assert "::: report_gateway.aio" in api
