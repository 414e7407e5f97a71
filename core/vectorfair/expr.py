"""Building Milvus filter expressions from request values without injection."""

import json
import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import BaseModel

from .demo import QueryError
from .schema import ScalarField

# Milvus string literals take \\ and \" escapes but no \uXXXX, so control
# characters have no spelling in them; lone surrogates are not UTF-8 at all.
_UNSPELLABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")
RANGE_SUFFIXES = {"_min": ">=", "_max": "<="}


def quote(value: str) -> str:
    """A Milvus string literal for `value`; a QueryError (answered 422) for
    text no literal can hold."""
    text = str(value)
    if _UNSPELLABLE.search(text):
        raise QueryError(
            f"{text[:40]!r} holds control characters or broken unicode, which filters cannot match; leave them out"
        )
    return json.dumps(text, ensure_ascii=False)


def literal(value: Any) -> str:
    """A Milvus literal for a string, number or bool taken from a request."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return quote(value)


def in_list(field: str, values: Iterable[Any]) -> str:
    """`field in [v1, v2, ...]`: rows whose field equals one of the values."""
    return f"{field} in [{', '.join(literal(v) for v in values)}]"


def all_of(*parts: str) -> str:
    """The conjunction of expressions, empty ones left out ("" when all are)."""
    kept = [p for p in parts if p]
    if len(kept) <= 1:
        return kept[0] if kept else ""
    return " and ".join(f"({p})" for p in kept)


def filter_target(name: str, fields: Sequence[ScalarField]) -> tuple[ScalarField, str] | None:
    """The scalar field a Filter member named `name` matches, and how:
    "==" for the field itself, ">=" / "<=" for `<field>_min` / `<field>_max`."""
    by_name = {field.name: field for field in fields}
    if name in by_name:
        return by_name[name], "=="
    for suffix, operator in RANGE_SUFFIXES.items():
        if name.endswith(suffix) and name[: -len(suffix)] in by_name:
            return by_name[name[: -len(suffix)]], operator
    return None


def matching(fields: Sequence[ScalarField], filter: BaseModel | None) -> str:
    """The expression of `Demo.filter_expression`'s default: every filter
    value that is set, matched against the scalar field of the same name."""
    if filter is None:
        return ""
    parts = []
    for name, value in filter.model_dump(exclude_none=True).items():
        target = filter_target(name, fields)
        if target is None:
            continue  # reported by the contract check when the demo loads
        field, operator = target
        values = value if isinstance(value, (list, tuple, set)) else None
        if values is not None and not values:
            continue  # an empty list selects nothing in particular: no constraint
        if field.kind.endswith("_list"):
            parts.append(
                f"array_contains_any({field.name}, [{', '.join(literal(v) for v in values)}])"
                if values is not None
                else f"array_contains({field.name}, {literal(value)})"
            )
        elif values is not None:
            parts.append(in_list(field.name, values))
        else:
            parts.append(f"{field.name} {operator} {literal(value)}")
    return all_of(*parts)
