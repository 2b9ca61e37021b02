"""mkdocs hook: pages made from the README and the package READMEs, never copied.

A page line ``<!-- include PATH -->`` is replaced by that file; ``<!-- include PATH
"## From" "## Until" -->`` by its part from the heading ``## From`` up to (not including)
``## Until`` (to the end without it). Relative links in the included text point at files of
the repository: the ones the site has a page for are pointed at that page, the others at
the repository's copy, so `mkdocs build --strict` finds no dead link. An in-page link
(``#heading``) of a README whose heading went to another page is pointed at that page
(mkdocs' ``validation: anchors`` makes a dead anchor a warning, so --strict fails on it).
"""

from __future__ import annotations

import posixpath
import re
import shlex
import tomllib
import unicodedata
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


ANCHOR = re.compile(r"\]\(#([^)\s]+)\)")
HEADING = re.compile(r"^#{1,6} (.+?)\s*$", re.M)
FENCE = re.compile(r"^```.*?^```", re.M | re.S)


def _slug(heading: str) -> str:
    """The id mkdocs' toc gives a heading: its text (code marks dropped) through
    ``markdown.extensions.toc.slugify``, restated so the tests need no Markdown."""
    text = unicodedata.normalize("NFKD", heading.replace("`", ""))
    text = re.sub(r"[^\w\s-]", "", text.encode("ascii", "ignore").decode("ascii"))
    return re.sub(r"[-\s]+", "-", text.strip().lower())


def _anchors(text: str) -> set[str]:
    return {_slug(h) for h in HEADING.findall(FENCE.sub("", text))}


def _anchor_pages(source: str) -> dict[str, str]:
    """{anchor: page} for the headings of ``source`` that the site's pages include."""
    pages: dict[str, str] = {}
    docs = ROOT / "docs"
    for page in sorted(docs.rglob("*.md")):
        for match in INCLUDE.finditer(page.read_text(encoding="utf-8")):
            path, *headings = shlex.split(match.group(1))
            if path != source:
                continue
            start = headings[0] if headings else None
            until = headings[1] if len(headings) > 1 else None
            part = _part((ROOT / path).read_text(encoding="utf-8"), start, until)
            for anchor in _anchors(part):
                pages.setdefault(anchor, page.relative_to(docs).as_posix())
    return pages


def _reanchor(text: str, source: str, page: str) -> str:
    """In-page links to headings this part does not hold, pointed at the page that does."""
    here = _anchors(text)
    elsewhere = _anchor_pages(source)
    page_folder = posixpath.dirname(page)

    def reanchor(match: re.Match[str]) -> str:
        anchor = match.group(1)
        target = elsewhere.get(anchor)
        if anchor in here or target is None or target == page:
            return match.group(0)
        return f"]({posixpath.relpath(target, page_folder or '.')}#{anchor})"

    return ANCHOR.sub(reanchor, text)


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

    return _reanchor(LINK.sub(relink, text), source, page)


def on_page_markdown(markdown: str, page: Any, **_: Any) -> str:
    def include(match: re.Match[str]) -> str:
        path, *headings = shlex.split(match.group(1))
        start = headings[0] if headings else None
        until = headings[1] if len(headings) > 1 else None
        text = _part((ROOT / path).read_text(encoding="utf-8"), start, until)
        return _relink(text, path, page.file.src_uri)

    return INCLUDE.sub(include, markdown)
