"""Run inside a fresh venv holding only the built wheels: README's examples against the
installed sandbox. Prints one JSON line; argv: the example files, then the work folder."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import report_gateway
from report_gateway_sandbox import Sandbox, SandboxConfig

README_URL = "http://127.0.0.1:12111"


def main() -> None:
    *examples, work = sys.argv[1:]
    results: dict[str, object] = {"report_gateway": report_gateway.__file__}
    os.environ["REPORT_GATEWAY_JOURNAL"] = ""
    with Sandbox(SandboxConfig(run_seconds=0.3, result_rows=20)) as sandbox:
        results["sandbox_url"] = sandbox.url
        for number, example in enumerate(examples):
            folder = Path(work) / f"example{number}"
            folder.mkdir(parents=True)
            os.chdir(folder)
            code = Path(example).read_text(encoding="utf-8").replace(README_URL, sandbox.url)
            exec(compile(code, "README.md", "exec"), {"__name__": "readme_example"})  # noqa: S102
            results[example] = sorted(str(p.relative_to(folder)) for p in folder.rglob("*.csv"))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
