"""The generator that turns each hand-written spec in specs/ into a client's `_generated/` folder.

Models come from datamodel-code-generator with the attrs templates in `templates/models`;
the client class and its operations come from the jinja2 templates beside them. Run it as
`python -m codegen` from the repository root; `--check` regenerates into a temporary folder
and fails on any difference from the committed code.
"""

from __future__ import annotations

from codegen.generation import GeneratedFile, generate_all, generate_target
from codegen.targets import TARGETS, Target

__all__ = ["TARGETS", "GeneratedFile", "Target", "generate_all", "generate_target"]
