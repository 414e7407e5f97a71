"""Reading files of records (CSV with a header, JSON, JSON Lines) for demos
that take records, so no plugin writes its own parser for them."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

from .demo import ItemError, Upload


def read_records(upload: Upload) -> list[tuple[str, dict[str, Any] | ItemError]]:
    """(label, record) pairs of a .csv, .json or .jsonl file; a row that is
    not a record becomes an ItemError under its label."""
    text = upload.text()
    if upload.suffix == ".csv":
        rows = csv.DictReader(io.StringIO(text))
        return [
            (f"line {rows.line_num}", {k.strip(): v for k, v in row.items() if k is not None})
            for row in rows
            if any((v or "").strip() for v in row.values() if isinstance(v, str))
        ]
    if upload.suffix == ".json":
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ItemError(f"not JSON: {exc.msg} at line {exc.lineno}") from None
        if isinstance(data, dict) and isinstance(data.get("records"), list):
            data = data["records"]
        if not isinstance(data, list):
            raise ItemError('a .json file holds a list of records or {"records": [...]}')
        return [(f"record {n}", _record(value)) for n, value in enumerate(data, 1)]
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if line.strip():
            try:
                pairs.append((f"line {number}", _record(json.loads(line))))
            except json.JSONDecodeError as exc:
                pairs.append((f"line {number}", ItemError(f"not JSON: {exc.msg}")))
    return pairs


def _record(value: Any) -> dict[str, Any] | ItemError:
    return value if isinstance(value, dict) else ItemError("a record must be a JSON object")
