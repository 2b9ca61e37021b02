"""Zuora's two run parameters, checked before a run exists.

``viewType`` ("Summary" or "Detail") is required by the run POST and must match how the
report was built; ``filters`` (optional) replaces the report's saved filters for one run and
is a list of ``{logicalOperator, filterClauses: [{field, value, operator}]}``. Zuora rejects
anything else only after a round trip, with a message that does not say what was expected.

Zuora's Run a report page prints ``logicalOperator``, ``field`` and ``operator`` as objects
(``{"value": "OR", "label": "OPERATOR_OR", "name": "or"}``, ``{"name": "Name", "id":
"Product.Name", ...}``, ``{"name": "contains", "value": "contains"}``): those pass through as
given. A plain string is a shorthand, turned into that object shape before sending.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from typing import Any, NoReturn

from report_gateway.provider import ParameterError, ParameterSpec

__all__ = [
    "FILTERS",
    "PARAMETERS",
    "VIEW_TYPE",
    "VIEW_TYPES",
    "filter_groups",
    "normalize_view_type",
    "parameter_specs",
    "report_view_type",
    "validate_parameters",
]

VIEW_TYPE = "viewType"
FILTERS = "filters"
PARAMETERS = (VIEW_TYPE, FILTERS)
VIEW_TYPES = ("Summary", "Detail")

_GROUP_KEYS = ("logicalOperator", "filterClauses")
_CLAUSE_KEYS = ("field", "value", "operator")
_Fail = Callable[[str, str, Sequence[str] | str | None], NoReturn]
_FILTERS_SHAPE = (
    "a list of {logicalOperator, filterClauses: [{field, value, operator}]} (Zuora's objects, "
    "or strings: 'OR', 'Account.Currency', 'contains')"
)


def normalize_view_type(value: str | None) -> str | None:
    """``"summary"`` -> ``"Summary"``; None for anything that is not a view type."""
    if not value:
        return None
    for view in VIEW_TYPES:
        if value.strip().lower() == view.lower():
            return view
    return None


def report_view_type(definition: str | None) -> str | None:
    """The view type a report definition declares, when it is JSON that says so.

    Zuora's pages print the definition as "..."; the sandbox serves JSON with
    ``reportType``. Anything unreadable means "unknown", never an error.
    """
    if not definition:
        return None
    try:
        data = json.loads(definition)
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    for key in ("reportType", "viewType", "type"):
        value = data.get(key)
        if isinstance(value, str):
            view = normalize_view_type(value)
            if view is not None:
                return view
    return None


def parameter_specs(view_type: str | None) -> dict[str, ParameterSpec]:
    """The schema a template shows: when the report's view type is known (a search result's
    definition, the last run's ``reportType``) it is the only allowed value and the default,
    so a form or ``report-gateway template`` can offer it instead of asking."""
    allowed = (view_type,) if view_type else VIEW_TYPES
    return {
        VIEW_TYPE: ParameterSpec(
            name=VIEW_TYPE,
            type="string",
            required=True,
            default=view_type or None,
            allowed_values=allowed,
            description="How the report was built in Zuora's UI: Summary or Detail",
        ),
        FILTERS: ParameterSpec(
            name=FILTERS,
            type="array",
            element_type="object",
            description=f"Replaces the report's saved filters for this run: {_FILTERS_SHAPE}",
        ),
    }


def validate_parameters(
    report_id: str, parameters: Mapping[str, Any], *, view_type: str | None
) -> dict[str, Any]:
    """Checked and normalized parameters; ``view_type`` is the report's own when known."""

    def error(name: str, message: str, allowed: Sequence[str] | str | None = None) -> NoReturn:
        raise ParameterError(name, message, allowed=allowed, provider="zuora", report_id=report_id)

    unknown = sorted(set(parameters) - set(PARAMETERS))
    if unknown:
        error(unknown[0], "unknown parameter for a Zuora report", PARAMETERS)
    allowed = (view_type,) if view_type else VIEW_TYPES
    given = parameters.get(VIEW_TYPE)
    if given is None:
        error(VIEW_TYPE, "is required", allowed)
    if not isinstance(given, str):
        error(VIEW_TYPE, f"must be a string, not {type(given).__name__}", allowed)
    view = normalize_view_type(given)
    if view is None:
        error(VIEW_TYPE, f"{given!r} is not a view type", VIEW_TYPES)
    if view_type and view != view_type:
        error(VIEW_TYPE, f"the report is a {view_type} report, not {view}", allowed)
    normalized: dict[str, Any] = {VIEW_TYPE: view}
    filters = parameters.get(FILTERS)
    if filters is not None:
        normalized[FILTERS] = _check_filters(filters, error)
    return normalized


def _check_filters(value: Any, error: _Fail) -> list[dict[str, Any]]:
    if isinstance(value, str | bytes) or not isinstance(value, Sequence):
        error(FILTERS, f"must be {_FILTERS_SHAPE}", "list of filter groups")
    groups: list[dict[str, Any]] = []
    for i, group in enumerate(value):
        where = f"{FILTERS}[{i}]"
        if not isinstance(group, Mapping):
            error(where, "must be an object", _GROUP_KEYS)
        extra = sorted(set(group) - set(_GROUP_KEYS))
        if extra:
            error(f"{where}.{extra[0]}", "unknown key in a filter group", _GROUP_KEYS)
        operator = group.get("logicalOperator")
        logical = None
        if operator is not None:
            logical = _logical(operator, f"{where}.logicalOperator", error)
        clauses = group.get("filterClauses")
        if isinstance(clauses, str | bytes) or not isinstance(clauses, Sequence) or not clauses:
            error(f"{where}.filterClauses", "must be a non-empty list of clauses", _CLAUSE_KEYS)
        checked: list[dict[str, Any]] = []
        for j, clause in enumerate(clauses):
            at = f"{where}.filterClauses[{j}]"
            if not isinstance(clause, Mapping):
                error(at, "must be an object", _CLAUSE_KEYS)
            extra = sorted(set(clause) - set(_CLAUSE_KEYS))
            if extra:
                error(f"{at}.{extra[0]}", "unknown key in a filter clause", _CLAUSE_KEYS)
            item = clause.get("value")
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                error(f"{at}.value", "is required and must be a string", _CLAUSE_KEYS)
            checked.append(
                {
                    "field": _field(clause.get("field"), f"{at}.field", error),
                    "value": str(item),
                    "operator": _operator(clause.get("operator"), f"{at}.operator", error),
                }
            )
        normalized: dict[str, Any] = {"filterClauses": checked}
        if logical is not None:
            normalized["logicalOperator"] = logical
        groups.append(normalized)
    return groups


#: Zuora's Run a report page prints the logical operator as this object.
_LOGICAL = {
    "AND": {"value": "AND", "label": "OPERATOR_AND", "name": "and"},
    "OR": {"value": "OR", "label": "OPERATOR_OR", "name": "or"},
}


def _text(value: Any) -> str | None:
    return value.strip() if isinstance(value, str) and value.strip() else None


def _logical(value: Any, where: str, error: _Fail) -> dict[str, Any]:
    """``"or"`` -> ``{"value": "OR", "label": "OPERATOR_OR", "name": "or"}``; an object as
    given, once its ``value`` is AND or OR."""
    shape = 'AND, OR, or {"value": "OR", "label": "OPERATOR_OR", "name": "or"}'
    if isinstance(value, Mapping):
        word = _text(value.get("value"))
        if word is None or word.upper() not in _LOGICAL:
            error(f"{where}.value", "must be AND or OR", shape)
        return dict(value)
    word = _text(value)
    if word is None or word.upper() not in _LOGICAL:
        error(where, "must be AND or OR (or Zuora's object for it)", shape)
    return dict(_LOGICAL[word.upper()])


#: Members of a field object that name it: text when present (the rest pass as given).
_FIELD_TEXT = ("name", "label", "type", "dataSourceName")


def _field(value: Any, where: str, error: _Fail) -> dict[str, Any]:
    """``"Account.Currency"`` -> ``{"id": "Account.Currency", "name": "Currency"}`` (Zuora's
    page: ``{"name": "Name", "id": "Product.Name", ...}``); an object as given, once it has
    an ``id``."""
    shape = '"Account.Currency", or {"id": "Account.Currency", "name": "Currency", ...}'
    if isinstance(value, Mapping):
        if _text(value.get("id")) is None:
            error(
                f"{where}.id",
                "is required: the data source and field, like Account.Currency",
                shape,
            )
        for key in _FIELD_TEXT:
            if key in value and not isinstance(value[key], str):
                error(f"{where}.{key}", "must be a string", shape)
        return dict(value)
    name = _text(value)
    if name is None:
        error(where, "is required and must be a field name or Zuora's field object", shape)
    return {"id": name, "name": name.rpartition(".")[2] or name}


#: The reporting UI's phrases for the comparisons that have a symbol: docs.zuora.com prints
#: ``{"name": "is greater than", "value": ">"}``; the others follow that pattern.
_SYMBOLS = {
    "is equal to": "=",
    "is not equal to": "!=",
    "is greater than": ">",
    "is greater than or equal to": ">=",
    "is less than": "<",
    "is less than or equal to": "<=",
}


def _operator(value: Any, where: str, error: _Fail) -> dict[str, Any]:
    """``"contains"`` -> ``{"name": "contains", "value": "contains"}``; a UI phrase becomes
    the pair docs.zuora.com prints, ``"is greater than"`` -> ``{"name": "is greater than",
    "value": ">"}``; an object as given, once it has a ``value``."""
    shape = '"contains", "=", "is greater than", or {"name": "is greater than", "value": ">"}'
    if isinstance(value, Mapping):
        if _text(value.get("value")) is None:
            error(f"{where}.value", "is required: the comparison, like contains or >", shape)
        return dict(value)
    word = _text(value)
    if word is None:
        error(where, "is required and must be a comparison or Zuora's operator object", shape)
    return {"name": word, "value": _SYMBOLS.get(word.lower(), word)}


def filter_groups(filters: Sequence[Mapping[str, Any]]) -> list[Any]:
    """Validated filters as the generated client's models (for Run a report's body)."""
    from zuora_reporting_client import models

    return [
        models.FilterGroup(
            logical_operator=group.get("logicalOperator"),
            filter_clauses=[models.FilterClause(**clause) for clause in group["filterClauses"]],
        )
        for group in filters
    ]
