"""ruff as the last step of generation: imports sorted, unused ones dropped, code formatted.

Source goes through ruff's stdin with `--stdin-filename` set to the file's place in the
repository, so the repository's configuration (and its per-file ignores for `_generated/`)
applies wherever the output is written, a temporary folder included.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


class FormattingError(Exception):
    """ruff found a problem it cannot fix in generated code: the generator has a bug."""


def _ruff(args: list[str], source: str, *, root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args],
        input=source,
        capture_output=True,
        text=True,
        cwd=root,
        check=False,
    )


def ruff_version(root: Path) -> str:
    done = _ruff(["--version"], "", root=root)
    return done.stdout.strip().removeprefix("ruff ").strip()


def format_python(source: str, *, repo_path: str, root: Path) -> str:
    """Lint-fix then format `source` as if it lived at `repo_path` in the repository."""
    checked = _ruff(
        ["check", "--fix", "--quiet", "--stdin-filename", repo_path, "-"], source, root=root
    )
    if checked.returncode != 0:
        raise FormattingError(
            f"ruff check on generated {repo_path}:\n{checked.stdout[-4000:]}{checked.stderr}"
        )
    formatted = _ruff(
        ["format", "--quiet", "--stdin-filename", repo_path, "-"], checked.stdout, root=root
    )
    if formatted.returncode != 0:
        raise FormattingError(f"ruff format on generated {repo_path}:\n{formatted.stderr}")
    return formatted.stdout
