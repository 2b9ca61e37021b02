"""``from reporting_runtime import converter`` means one thing whatever was imported before.

The name used to be a lazy alias of the cattrs instance, shadowed by the submodule of the
same name as soon as anything imported ``reporting_runtime.converter``: the first
``reporting_runtime.converter`` of a process gave the instance, a later one (or the
``from`` form) the module, so code worked or broke depending on import order. Each order
runs in a fresh interpreter, since the point is what a process sees first.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

#: What is imported first, before the name is looked at.
ORDERS = {
    "package-first": "import reporting_runtime",
    "name-first": "from reporting_runtime import converter as first",
    "submodule-first": "import reporting_runtime.converter",
    "functions-first": "from reporting_runtime import structure, unstructure",
    "generated-client-first": "from stripe_reporting_client.v1 import Client, models",
}

PROBE = """
import json, types
import cattrs
{first}
import reporting_runtime
by_attribute = reporting_runtime.converter
from reporting_runtime import converter
import reporting_runtime.converter as submodule
from reporting_runtime import structure, unstructure
print(json.dumps({{
    "is_module": isinstance(converter, types.ModuleType),
    "name": getattr(converter, "__name__", None),
    "same_as_submodule": converter is submodule,
    "attribute_first_same": by_attribute is submodule,
    "attribute_same": reporting_runtime.converter is submodule,
    "instance_is_cattrs": isinstance(submodule.converter, cattrs.Converter),
    "functions_are_the_module's": structure is submodule.structure
        and unstructure is submodule.unstructure,
    "roundtrip": structure(unstructure({{"a": 1}}), dict),
}}))
"""


@pytest.mark.parametrize("first", list(ORDERS.values()), ids=list(ORDERS))
def test_converter_is_the_submodule_in_every_import_order(first: str) -> None:
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(first=first)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout)
    assert seen == {
        "is_module": True,
        "name": "reporting_runtime.converter",
        "same_as_submodule": True,
        "attribute_first_same": True,
        "attribute_same": True,
        "instance_is_cattrs": True,
        "functions_are_the_module's": True,
        "roundtrip": {"a": 1},
    }


def test_importing_the_runtime_leaves_cattrs_for_later() -> None:
    """The lazy import is kept: a generated client loads without cattrs until it converts."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, reporting_runtime\nprint('cattrs' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"
