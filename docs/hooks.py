"""mkdocs hook: pages made from the README and the package READMEs, never copied.

A page line ``<!-- include PATH -->`` is replaced by that file; ``<!-- include PATH
"## From" "## Until" -->`` by its part from the heading ``## From`` up to (not including)
``## Until`` (to the end without it). Relative links in the included text point at files of
the repository: the ones the site has a page for are pointed at that page, the others at
the repository's copy, so `mkdocs build --strict` finds no dead link.
"""

from __future__ import annotations

import posixpath
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

ROOT = Path(__file__).parents[1]
INCLUDE = re.compile(r"^<!-- include (.+?) -->$", re.M)
LINK = re.compile(r"\]\((?!https?://|#|mailto:)([^)\s]+)\)")
#: Repository files that are pages of the site.
PAGES = {
    "README.md": "index.md",
    "CHANGELOG.md": "changelog.md",
    "plugins/report-gateway-stripe/README.md": "providers/stripe.md",
    "plugins/report-gateway-zuora/README.md": "providers/zuora.md",
    "packages/report-gateway-sandbox/README.md": "providers/sandbox.md",
    "packages/report-gateway/README.md": "core.md",
}


def _source_url() -> str:
    core = tomllib.loads((ROOT / "packages/report-gateway/pyproject.toml").read_text("utf-8"))
    return str(core["project"]["urls"]["Source"]).rstrip("/")


def _part(text: str, start: str | None, until: str | None) -> str:
    lines = text.splitlines(keepends=True)
    if start is not None:
        first = next(i for i, line in enumerate(lines) if line.rstrip() == start)
        lines = lines[first:]
    if until is not None:
        last = next(i for i, line in enumerate(lines) if line.rstrip() == until)
        lines = lines[:last]
    return "".join(lines)


def _relink(text: str, source: str, page: str) -> str:
    folder = posixpath.dirname(source)
    page_folder = posixpath.dirname(page)

    def relink(match: re.Match[str]) -> str:
        target, _, anchor = match.group(1).partition("#")
        path = posixpath.normpath(posixpath.join(folder, target))
        suffix = f"#{anchor}" if anchor else ""
        if path in PAGES:
            return f"]({posixpath.relpath(PAGES[path], page_folder or '.')}{suffix})"
        kind = "blob" if (ROOT / path).is_file() else "tree"
        return f"]({_source_url()}/{kind}/main/{path}{suffix})"

    return LINK.sub(relink, text)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    def include(match: re.Match[str]) -> str:
        path, *headings = shlex.split(match.group(1))
        start = headings[0] if headings else None
        until = headings[1] if len(headings) > 1 else None
        text = _part((ROOT / path).read_text(encoding="utf-8"), start, until)
        return _relink(text, path, page.file.src_uri)

    return INCLUDE.sub(include, markdown)
