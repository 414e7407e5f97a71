"""Building Milvus filter expressions from request values without injection."""

import json
from collections.abc import Iterable


def quote(value: str) -> str:
    """A Milvus string literal for any text (JSON escaping is what Milvus parses)."""
    return json.dumps(str(value), ensure_ascii=False)


def in_list(field: str, values: Iterable[str]) -> str:
    return f"{field} in [{', '.join(quote(v) for v in values)}]"


def all_of(*parts: str) -> str:
    kept = [p for p in parts if p]
    if len(kept) <= 1:
        return kept[0] if kept else ""
    return " and ".join(f"({p})" for p in kept)
