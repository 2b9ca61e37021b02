"""attrs models for a spec's schemas, through datamodel-code-generator and our templates.

datamodel-code-generator has no attrs output type, so it runs with the dataclass model type
and `templates/models/dataclass.jinja2` writes attrs classes instead; `Enum.jinja2` makes
every enum an `OpenEnum`. The stray `dataclasses`/`enum` imports it still adds are removed by
ruff (F401) afterwards, in formatting.py.
"""

from __future__ import annotations

import ast
import json
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from datamodel_code_generator import (
    DatetimeClassType,
    Formatter,
    InputFileType,
    LiteralType,
    PythonVersion,
    generate,
)
from datamodel_code_generator.enums import DataModelType, NamingStrategy

TEMPLATES = Path(__file__).parent / "templates" / "models"

# Imports the templates write names from; unused ones are removed by ruff afterwards.
TEMPLATE_IMPORTS = (
    "attrs",
    "collections.abc.Mapping",
    "typing.Any",
    "reporting_runtime.types.OpenEnum",
)


def generate_models(document: Mapping[str, Any], *, header: str) -> str:
    """Source of the models module for a model-ready spec copy (see spec.model_document)."""
    with warnings.catch_warnings():
        # Unknown formats were pinned with x-python-type; the remaining chatter is not ours.
        warnings.simplefilter("ignore")
        output = generate(
            json.dumps(document, sort_keys=False),
            input_file_type=InputFileType.OpenAPI,
            output_model_type=DataModelType.DataclassesDataclass,
            custom_template_dir=TEMPLATES,
            target_python_version=PythonVersion.PY_311,
            disable_timestamp=True,
            custom_file_header=header,
            formatters=[Formatter.BUILTIN],
            additional_imports=list(TEMPLATE_IMPORTS),
            keyword_only=True,
            snake_case_field=True,
            keep_model_order=True,
            naming_strategy=NamingStrategy.FullPath,
            enum_field_as_literal=LiteralType.Off,
            output_datetime_class=DatetimeClassType.Datetime,
            use_typed_nullable_map_values=True,
            use_schema_description=True,
            use_field_description=True,
            use_double_quotes=True,
            capitalise_enum_members=True,
            allow_remote_refs=False,
            # Read by the dataclass template (as `x_absent_unless_object`, `x_secret`).
            field_extra_keys={"x-absent-unless-object", "x-secret"},
        )
    if not isinstance(output, str):
        raise TypeError("datamodel-code-generator returned several modules for one spec")
    return output


def class_names(source: str) -> set[str]:
    """Top-level names a models module defines: what the client may refer to."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return names
