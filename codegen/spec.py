"""Reading a spec: the model-ready copy handed to datamodel-code-generator, and its operations.

datamodel-code-generator only sees `components.schemas`, so the inline request and response
schemas of operations are hoisted there under names derived from the operationId, and the
providers' custom formats are pinned to the runtime's quirk types with `x-python-type`.
"""

from __future__ import annotations

import copy
import keyword
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")

QUIRK_TYPES_MODULE = "reporting_runtime.types"
# Spec `format` -> runtime quirk type. `date-time` needs none: plain `datetime` is asked for.
FORMAT_TYPES: Mapping[str, str] = {
    "unix-time": "UnixTime",
    "zuora-time": "FlexibleTime",
    "epoch-millis-or-rfc3339": "FlexibleTime",
}
STRING_INT64_TYPE = "Int64String"
ABSENT_UNLESS_OBJECT = "x-absent-unless-object"
"""On a property: a non-object value (`false`, null) means the member is absent."""
DEEP_ARRAY_STYLE = "x-deep-array-style"
"""On a deepObject query parameter: `indexed` sends array members as `name[0]=...`."""

JSON_MEDIA = re.compile(r"^application/([\w.+-]+\+)?json\b")
FORM_MEDIA = "application/x-www-form-urlencoded"


class SpecError(Exception):
    """A spec uses a construct the generator cannot map; the message names where."""


def load_spec(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        document = yaml.safe_load(handle)
    if not isinstance(document, dict) or "openapi" not in document:
        raise SpecError(f"{path}: not an OpenAPI document")
    return document


def snake_case(name: str) -> str:
    """A Python identifier for a wire name: `Stripe-Account` -> `stripe_account`."""
    words = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", name)
    words = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", words)
    ident = re.sub(r"\W+", "_", words).strip("_").lower() or "value"
    if ident[0].isdigit():
        ident = f"_{ident}"
    # `body`, `extra_headers`, `deadline` and `read_timeout` are arguments every generated
    # method may take.
    reserved = {"self", "body", "extra_headers", "deadline", "read_timeout"}
    if keyword.iskeyword(ident) or ident in reserved:
        ident = f"{ident}_"
    return ident


def pascal_case(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^0-9A-Za-z]+", name) if part)


def resolve(document: Mapping[str, Any], node: Any) -> Any:
    """Follow local `$ref`s until a node that is not a reference."""
    seen: set[str] = set()
    while isinstance(node, Mapping) and "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/") or ref in seen:
            raise SpecError(f"unsupported or cyclic reference {ref!r}")
        seen.add(ref)
        target: Any = document
        for part in ref[2:].split("/"):
            target = target[part.replace("~1", "/").replace("~0", "~")]
        node = target
    return node


def schema_ref_name(schema: Mapping[str, Any]) -> str | None:
    ref = schema.get("$ref")
    prefix = "#/components/schemas/"
    if isinstance(ref, str) and ref.startswith(prefix):
        return ref[len(prefix) :]
    return None


# --- the model-ready copy ------------------------------------------------------------------


def _types_of(schema: Mapping[str, Any]) -> set[str]:
    declared = schema.get("type")
    types = set(declared) if isinstance(declared, list) else {declared} if declared else set()
    for key in ("oneOf", "anyOf"):
        for branch in schema.get(key) or ():
            if isinstance(branch, Mapping):
                types |= _types_of(branch)
    return types


def _quirk_type(schema: Mapping[str, Any]) -> str | None:
    fmt = schema.get("format")
    if not isinstance(fmt, str):
        return None
    if fmt in FORMAT_TYPES:
        return FORMAT_TYPES[fmt]
    if fmt == "int64" and "string" in _types_of(schema):
        return STRING_INT64_TYPE
    return None


def _pin_quirk(schema: dict[str, Any], quirk: str) -> None:
    """Type `schema` as the runtime's quirk type.

    datamodel-code-generator ignores `x-python-type` on a schema whose `type` is a list
    (`[integer, "null"]`), so a nullable one is rewritten to `anyOf: [<quirk>, null]`.
    """
    declared = schema.get("type")
    if isinstance(declared, list) and "null" in declared:
        inner = {k: v for k, v in schema.items() if k not in ("description", "title", "type")}
        rest = [t for t in declared if t != "null"]
        inner["type"] = rest[0] if len(rest) == 1 else rest
        inner["x-python-type"] = f"{QUIRK_TYPES_MODULE}.{quirk}"
        for key in list(inner):
            schema.pop(key, None)
        schema["anyOf"] = [inner, {"type": "null"}]
        return
    schema["x-python-type"] = f"{QUIRK_TYPES_MODULE}.{quirk}"


def _pin_quirk_types(schema: Any) -> None:
    """Walk a schema tree: pin custom formats to runtime types and drop client-side defaults.

    Defaults are the server's business: a model field without a value stays None (and is
    not sent), so the generated types stay `X | None` instead of silently sending a default.
    """
    if isinstance(schema, list):
        for item in schema:
            _pin_quirk_types(item)
        return
    if not isinstance(schema, dict):
        return
    quirk = _quirk_type(schema)
    if quirk is not None:
        _pin_quirk(schema, quirk)
    if schema.get(ABSENT_UNLESS_OBJECT) is True and isinstance(schema.get("anyOf"), list):
        # The non-object readings (`false`) are what the converter turns into "absent": the
        # model field keeps the object-or-None type.
        schema["anyOf"] = [
            branch
            for branch in schema["anyOf"]
            if not isinstance(branch, dict) or "$ref" in branch or "const" not in branch
        ]
    if isinstance(schema.get("description"), str):
        schema["description"] = schema["description"].strip()
    schema.pop("default", None)
    for key, value in schema.items():
        if key in ("example", "examples", "enum", "const", "x-python-type"):
            continue
        if key == "properties" and isinstance(value, dict):
            for prop in value.values():
                _pin_quirk_types(prop)
                if isinstance(prop, dict) and prop.get("x-python-type") == "Any":
                    # datamodel-code-generator reads a lone `anyOf` member as that member's
                    # type; an explicit `Any` property keeps only its annotation.
                    for composite in ("anyOf", "oneOf", "$ref"):
                        prop.pop(composite, None)
        else:
            _pin_quirk_types(value)


def model_document(document: Mapping[str, Any], operations: list[OperationSpec]) -> dict[str, Any]:
    """The copy of the spec datamodel-code-generator reads: schemas only, quirks pinned."""
    schemas: dict[str, Any] = copy.deepcopy(dict(document.get("components", {}).get("schemas", {})))
    for op in operations:
        for name, schema in op.hoisted.items():
            if name in schemas:
                raise SpecError(
                    f"{op.operation_id}: inline schema would be named {name}, "
                    "which the spec already uses; give it a $ref"
                )
            schemas[name] = copy.deepcopy(schema)
    _pin_quirk_types(schemas)
    return {
        "openapi": document["openapi"],
        "info": {"title": document.get("info", {}).get("title", "models"), "version": "0"},
        "paths": {},
        "components": {"schemas": schemas},
    }


# --- operations ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Parameter:
    wire_name: str
    location: str  # path, query, header
    py_name: str
    annotation: str
    required: bool
    description: str | None


@dataclass
class OperationSpec:
    operation_id: str
    method: str
    path: str
    server: str
    summary: str | None
    description: str | None
    parameters: list[Parameter]
    body_annotation: str | None = None
    body_required: bool = False
    body_encoding: str | None = None
    response_annotation: str | None = None  # None with streaming=False: no body
    streaming: bool = False
    deprecated: bool = False
    # "deep" when a query parameter is a deepObject (Stripe), "deep-indexed" when its arrays
    # are sent as `name[0]=` (x-deep-array-style: indexed, Stripe v2's `include`).
    query_style: str = "form"
    hoisted: dict[str, Any] = field(default_factory=dict)

    @property
    def constant(self) -> str:
        return self.operation_id.upper()

    @property
    def path_parameters(self) -> list[Parameter]:
        return [p for p in self.parameters if p.location == "path"]

    @property
    def keyword_parameters(self) -> list[Parameter]:
        """Keyword-only arguments: required ones first, as they read in the signature."""
        rest = [p for p in self.parameters if p.location != "path"]
        return [p for p in rest if p.required] + [p for p in rest if not p.required]

    def in_location(self, location: str) -> list[Parameter]:
        return [p for p in self.parameters if p.location == location]


def iter_operations(document: Mapping[str, Any]) -> Iterator[tuple[str, str, dict[str, Any], Any]]:
    for path, item in (document.get("paths") or {}).items():
        for method in HTTP_METHODS:
            if method in item:
                yield path, method, item[method], item


def _parameters(
    document: Mapping[str, Any], raw: Mapping[str, Any], item: Mapping[str, Any]
) -> Iterator[Mapping[str, Any]]:
    """An operation's parameters, references resolved: the path item's first, then its own
    (which override them, OpenAPI says, where name and location match)."""
    for param in [*(item.get("parameters") or ()), *(raw.get("parameters") or ())]:
        yield resolve(document, param)


def server_name(server: Mapping[str, Any]) -> str:
    name = server.get("x-server-name")
    if not isinstance(name, str) or not name:
        raise SpecError(f"server {server.get('url')!r} outside the root needs an x-server-name")
    return name


def server_url(server: Mapping[str, Any]) -> str:
    url = str(server["url"])
    for name, variable in (server.get("variables") or {}).items():
        url = url.replace("{" + name + "}", str(variable["default"]))
    return url


class _TypeNamer:
    """Python annotations for parameter, body and response schemas."""

    def __init__(self, document: Mapping[str, Any], model_prefix: str) -> None:
        self.document = document
        self.model_prefix = model_prefix

    def annotation(self, schema: Mapping[str, Any], *, inline_refs: bool = False) -> str:
        """The annotation of a schema; `inline_refs` (parameters) reads through references.

        Parameters take plain Python values (a str for an enum, a mapping for an object)
        so that callers need no model to filter a list, and the runtime encodes them as is.
        """
        name = schema_ref_name(schema)
        if name is not None and not inline_refs:
            return f"{self.model_prefix}{name}"
        schema = resolve(self.document, schema)
        for key in ("oneOf", "anyOf"):
            if key in schema:
                parts: list[str] = []
                for branch in schema[key]:
                    part = self.annotation(branch, inline_refs=inline_refs)
                    if part not in parts:
                        parts.append(part)
                return " | ".join(parts)
        types = _types_of(schema) - {"null"}
        if len(types) != 1:
            return "Any"
        (kind,) = types
        if kind == "array":
            item = schema.get("items") or {}
            return f"list[{self.annotation(item, inline_refs=inline_refs)}]"
        if kind == "object":
            return "Mapping[str, Any]"
        return {"string": "str", "integer": "int", "number": "float", "boolean": "bool"}.get(
            kind, "Any"
        )


def _is_inline_model(schema: Mapping[str, Any]) -> bool:
    return "$ref" not in schema and (
        schema.get("type") == "object" or "properties" in schema or "allOf" in schema
    )


def _media_schema(
    op: OperationSpec, namer: _TypeNamer, schema: Mapping[str, Any], suffix: str
) -> str:
    """The annotation of a body schema; an inline object becomes a model named after the op."""
    if _is_inline_model(schema):
        name = pascal_case(op.operation_id) + suffix
        op.hoisted[name] = dict(schema)
        return f"{namer.model_prefix}{name}"
    if schema.get("type") == "array" and _is_inline_model(schema.get("items") or {"$ref": ""}):
        name = pascal_case(op.operation_id) + suffix + "Item"
        op.hoisted[name] = dict(schema["items"])
        return f"list[{namer.model_prefix}{name}]"
    return namer.annotation(schema)


def operations(
    document: Mapping[str, Any],
    *,
    client_headers: tuple[str, ...] = (),
    model_prefix: str = "models.",
) -> list[OperationSpec]:
    namer = _TypeNamer(document, model_prefix)
    skipped = {h.lower() for h in client_headers}
    result: list[OperationSpec] = []
    seen_ids: set[str] = set()
    for path, method, raw, item in iter_operations(document):
        operation_id = raw.get("operationId")
        if not isinstance(operation_id, str) or not operation_id:
            raise SpecError(f"{method.upper()} {path}: no operationId")
        operation_id = snake_case(operation_id)
        if operation_id in seen_ids:
            raise SpecError(f"operationId {operation_id} used twice")
        seen_ids.add(operation_id)

        servers = raw.get("servers") or item.get("servers")
        server = server_name(servers[0]) if servers else "default"

        merged: dict[tuple[str, str], Mapping[str, Any]] = {}
        for param in _parameters(document, raw, item):
            merged[(param["name"], param["in"])] = param
        params: list[Parameter] = []
        for (wire, location), param in merged.items():
            if location == "cookie":
                raise SpecError(f"{operation_id}: cookie parameters are not supported")
            if location == "header" and (wire.lower() in skipped or "x-client-option" in param):
                continue
            if location == "header" and wire.lower() in {"authorization", "content-type", "accept"}:
                continue
            schema = param.get("schema") or {"type": "string"}
            annotation = (
                "str"
                if location in ("path", "header")
                else namer.annotation(schema, inline_refs=True)
            )
            params.append(
                Parameter(
                    wire_name=wire,
                    location=location,
                    py_name=snake_case(wire),
                    annotation=annotation,
                    required=bool(param.get("required")) or location == "path",
                    description=param.get("description"),
                )
            )
        names = [p.py_name for p in params]
        if len(set(names)) != len(names):
            raise SpecError(f"{operation_id}: two parameters map to one argument name: {names}")
        ordered_path = re.findall(r"{([^}]+)}", path)
        path_params = {p.wire_name: p for p in params if p.location == "path"}
        if set(ordered_path) != set(path_params):
            raise SpecError(f"{operation_id}: path template {path} and path parameters differ")
        params = [path_params[n] for n in ordered_path] + [
            p for p in params if p.location != "path"
        ]

        deep_params = [
            p for p in merged.values() if p.get("in") == "query" and p.get("style") == "deepObject"
        ]
        indexed = any(p.get(DEEP_ARRAY_STYLE) == "indexed" for p in deep_params)
        if indexed and not all(p.get(DEEP_ARRAY_STYLE) == "indexed" for p in deep_params):
            raise SpecError(f"{operation_id}: mixes indexed and bracketed deepObject arrays")
        op = OperationSpec(
            operation_id=operation_id,
            method=method.upper(),
            path=path,
            server=server,
            summary=raw.get("summary"),
            description=raw.get("description"),
            parameters=params,
            deprecated=bool(raw.get("deprecated")),
            query_style="deep-indexed" if indexed else "deep" if deep_params else "form",
        )

        body = raw.get("requestBody")
        if body is not None:
            body = resolve(document, body)
            content = body.get("content") or {}
            media = next((m for m in content if JSON_MEDIA.match(m)), None)
            encoding = "json"
            if media is None and FORM_MEDIA in content:
                media, encoding = FORM_MEDIA, "form"
            if media is None:
                raise SpecError(f"{operation_id}: request body media {list(content)} unsupported")
            schema = content[media].get("schema") or {}
            op.body_annotation = _media_schema(op, namer, schema, "Request")
            op.body_required = bool(body.get("required"))
            op.body_encoding = encoding

        responses = raw.get("responses") or {}
        success = sorted(code for code in map(str, responses) if code.startswith("2"))
        if success:
            response = resolve(document, responses[success[0]])
            content = response.get("content") or {}
            media = next((m for m in content if JSON_MEDIA.match(m)), None)
            if media is not None:
                schema = content[media].get("schema") or {}
                op.response_annotation = _media_schema(op, namer, schema, "Response")
            elif content:
                op.streaming = True
        result.append(op)
    return result


def client_header_parameters(
    document: Mapping[str, Any], client_headers: tuple[str, ...]
) -> list[tuple[str, str, str | None, bool]]:
    """(wire name, argument name, default, required) of each client-level header in the spec."""
    found: dict[str, tuple[str, str, str | None, bool]] = {}
    wanted = {h.lower(): h for h in client_headers}
    for _path, _method, raw, item in iter_operations(document):
        for param in _parameters(document, raw, item):
            if param.get("in") != "header":
                continue
            option = param.get("x-client-option")
            if param["name"].lower() not in wanted and not option:
                continue
            schema = resolve(document, param.get("schema") or {})
            default = schema.get("default", schema.get("const"))
            if default is None and len(schema.get("enum") or ()) == 1:
                default = schema["enum"][0]
            key = param["name"].lower()
            previous = found.get(key)
            entry = (
                param["name"],
                snake_case(option or param["name"]),
                None if default is None else str(default),
                bool(param.get("required")),
            )
            if previous is None or (previous[2] is None and entry[2] is not None):
                found[key] = entry
    return list(found.values())
