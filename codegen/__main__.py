"""`python -m codegen [--check]` from the repository root.

Without options every target's `_generated/` folder is rewritten (stale files removed).
With `--check` the code is regenerated into a temporary folder instead and compared with the
committed folders; any difference is printed as a unified diff and the exit status is 1.
"""

from __future__ import annotations

import argparse
import difflib
import shutil
import sys
import tempfile
from collections.abc import Sequence
from importlib.metadata import version
from pathlib import Path, PurePosixPath

from codegen.formatting import FormattingError, ruff_version
from codegen.generation import GENERATED, GeneratedFile, generate_all
from codegen.spec import SpecError
from codegen.targets import TARGETS, Target

ROOT = Path(__file__).resolve().parent.parent
# Output depends on these exact versions; the root pyproject's `codegen` group pins them.
PINNED = {"datamodel-code-generator": "0.89.0", "ruff": "0.14.6"}


def _check_pins(root: Path) -> list[str]:
    problems = []
    found = {
        "datamodel-code-generator": version("datamodel-code-generator"),
        "ruff": ruff_version(root),
    }
    for name, wanted in PINNED.items():
        if found[name] != wanted:
            problems.append(f"{name} {found[name]} is installed; generation is pinned to {wanted}")
    return problems


def _existing(root: Path, folder: PurePosixPath) -> dict[PurePosixPath, str]:
    base = root / folder
    if not base.is_dir():
        return {}
    return {
        folder / path.relative_to(base).as_posix(): path.read_text(encoding="utf-8")
        for path in sorted(base.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def write_tree(files: Sequence[GeneratedFile], root: Path, targets: Sequence[Target]) -> None:
    for target in targets:
        folder = root / target.package_dir / GENERATED
        if folder.is_dir():
            shutil.rmtree(folder)
    for file in files:
        path = root / file.path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(file.content, encoding="utf-8", newline="\n")


def drift(root: Path, fresh_root: Path, targets: Sequence[Target]) -> str:
    """Unified diff from the committed `_generated/` folders to freshly generated ones."""
    chunks: list[str] = []
    for target in targets:
        folder = target.package_dir / GENERATED
        committed = _existing(root, folder)
        fresh = _existing(fresh_root, folder)
        for path in sorted(set(committed) | set(fresh)):
            before, after = committed.get(path), fresh.get(path)
            if before == after:
                continue
            chunks.extend(
                difflib.unified_diff(
                    (before or "").splitlines(keepends=True),
                    (after or "").splitlines(keepends=True),
                    fromfile=f"committed/{path}" if before is not None else "/dev/null",
                    tofile=f"generated/{path}" if after is not None else "/dev/null",
                )
            )
    return "".join(chunks)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m codegen", description=__doc__.split("\n")[0])
    parser.add_argument(
        "--check", action="store_true", help="fail with a diff if committed code is stale"
    )
    parser.add_argument(
        "--root", type=Path, default=ROOT, help="repository root (default: this checkout)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="SPEC",
        help="generate only the target of this spec (repeatable), e.g. specs/zuora-reporting.yaml",
    )
    args = parser.parse_args(argv)
    root: Path = args.root.resolve()
    targets = TARGETS
    if args.only:
        wanted = {PurePosixPath(spec) for spec in args.only}
        targets = tuple(t for t in TARGETS if t.spec in wanted)
        unknown = wanted - {t.spec for t in targets}
        if unknown:
            parser.error(f"no target for {', '.join(map(str, sorted(unknown)))}")

    problems = _check_pins(root)
    if problems:
        print("codegen: " + "; ".join(problems), file=sys.stderr)
        return 2
    try:
        files = generate_all(root, targets)
    except (SpecError, FormattingError, FileNotFoundError) as error:
        print(f"codegen: {error}", file=sys.stderr)
        return 2

    if not args.check:
        write_tree(files, root, targets)
        for file in files:
            print(f"wrote {file.path}")
        return 0

    with tempfile.TemporaryDirectory(prefix="codegen-check-") as temp:
        write_tree(files, Path(temp), targets)
        diff = drift(root, Path(temp), targets)
    if diff:
        sys.stdout.write(diff)
        print(
            "codegen: generated code differs from the committed code; run `python -m codegen`",
            file=sys.stderr,
        )
        return 1
    print(f"codegen: {len(files)} generated files are up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main())
