"""Building Milvus filter expressions from request values without injection."""

import json
import re
from collections.abc import Iterable

from .demo import QueryError

# Milvus string literals take \\ and \" escapes but no \uXXXX, so control
# characters have no spelling in them; lone surrogates are not UTF-8 at all.
_UNSPELLABLE = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


def quote(value: str) -> str:
    """A Milvus string literal for `value`; a QueryError (answered 422) for
    text no literal can hold."""
    text = str(value)
    if _UNSPELLABLE.search(text):
        raise QueryError(f"{text[:40]!r} holds control characters or broken unicode, which filters cannot match; "
                         "leave them out")
    return json.dumps(text, ensure_ascii=False)


def in_list(field: str, values: Iterable[str]) -> str:
    return f"{field} in [{', '.join(quote(v) for v in values)}]"


def all_of(*parts: str) -> str:
    kept = [p for p in parts if p]
    if len(kept) <= 1:
        return kept[0] if kept else ""
    return " and ".join(f"({p})" for p in kept)
