"""What the core derives from a demo class, and what it checks in it.

Authors declare a thing once: a demo takes records because it defines
`parse_record`, reads record files because it takes records, searches by text
or by file because of its `inputs`. Everything that could still disagree is
checked when the plugin loads, with a message that says what to do.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from .demo import RECORD_FILES, TEXT_INPUTS, Demo, DemoOptions
from .schema import problems_of

METHODS_OF_FILES = ("parse_upload", "split_upload")


def defines(demo: Demo | type[Demo], method: str) -> bool:
    """Whether the demo's class overrides `Demo.<method>`."""
    cls = demo if isinstance(demo, type) else type(demo)
    return getattr(cls, method, None) is not getattr(Demo, method)


def takes_records(demo: Demo | type[Demo]) -> bool:
    return defines(demo, "parse_record")


def accepted_suffixes(demo: Demo | type[Demo]) -> tuple[str, ...]:
    """File suffixes an upload may have: the declared `accepts`, or the
    record files for a demo that takes records and declares none."""
    if demo.accepts:
        return tuple(demo.accepts)
    return RECORD_FILES if takes_records(demo) else ()


def text_query(demo: Demo | type[Demo]) -> bool:
    return any(kind in TEXT_INPUTS for kind in demo.inputs)


def file_query(demo: Demo | type[Demo]) -> bool:
    return any(kind not in TEXT_INPUTS for kind in demo.inputs)


def vector_fields(demo: Demo | type[Demo]) -> tuple[Any, ...]:
    """The demo's vector fields (an instance's, when `vectors` is a property)."""
    vectors = demo.vectors
    return tuple(vectors) if isinstance(vectors, (tuple, list)) else ()


def problems(cls: Any, instance: Demo | None = None) -> list[str]:
    """What is wrong with `cls` as a demo, each saying what to do (empty
    when it is fine). `instance` checks declarations that depend on options."""
    if not (isinstance(cls, type) and issubclass(cls, Demo)):
        return [f"{cls!r} is not a vectorfair.Demo subclass"]
    found = []
    for attr in ("name", "title"):
        if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr):
            found.append(f"missing class attribute {attr!r}")
    name = getattr(cls, "name", "")
    if isinstance(name, str) and name and not (name.replace("_", "").isalnum() and name.islower()):
        found.append(f"name {name!r} must be lower-case letters, digits and '_'")
    if not cls.inputs:
        found.append('inputs is empty: name at least one query kind ("text", "image", …)')
    if file_query(cls) and not defines(cls, "parse_query_file") and not defines(cls, "search"):
        media = [kind for kind in cls.inputs if kind not in TEXT_INPUTS]
        found.append(
            f"inputs names {', '.join(media)} but parse_query_file is not defined: define it, or take "
            f"{', '.join(media)} out of inputs"
        )
    if defines(cls, "parse_query_file") and not file_query(cls):
        found.append('parse_query_file is defined but inputs names no file kind: add one ("image", "audio", …)')
    if defines(cls, "parse_query_text") and not text_query(cls):
        found.append('parse_query_text is defined but inputs names no text kind: add "text" to inputs')
    if not defines(cls, "encode") and not defines(cls, "search"):
        found.append("encode is not defined: return the vectors of a batch of payloads")
    if not (takes_records(cls) or defines(cls, "parse_upload")):
        found.append("neither parse_record nor parse_upload is defined: the demo could store nothing")
    if defines(cls, "parse_upload") and not cls.accepts:
        found.append('parse_upload is defined but accepts is empty: list the file suffixes it reads, e.g. (".jpg",)')
    if any(not (isinstance(s, str) and s.startswith(".") and s == s.lower()) for s in cls.accepts):
        found.append(f'accepts {cls.accepts!r}: give lower-case suffixes with the dot, e.g. (".csv",)')
    if not (isinstance(cls.Options, type) and issubclass(cls.Options, DemoOptions)):
        found.append("Options must subclass vectorfair.DemoOptions")
    found += _filter_problems(cls)
    vectors = vector_fields(instance if instance is not None else cls)
    if instance is not None or isinstance(cls.vectors, (tuple, list)):
        found += problems_of(cls.fields, vectors)
    return found


def _filter_problems(cls: type[Demo]) -> list[str]:
    from .expr import filter_target

    if cls.Filter is None:
        return []
    if not (isinstance(cls.Filter, type) and issubclass(cls.Filter, BaseModel)):
        return ["Filter must be a pydantic model (subclass vectorfair.DemoFilter)"]
    if cls.Filter.model_config.get("extra") != "forbid":
        return ["Filter accepts unknown keys, so a misspelled filter would be ignored: subclass vectorfair.DemoFilter"]
    if defines(cls, "filter_expression"):
        return []
    return [
        f"Filter member {member!r} matches no field (nor <field>_min / _max): rename it after a field in "
        f"fields ({', '.join(f.name for f in cls.fields) or 'none'}), or define filter_expression"
        for member in cls.Filter.model_fields
        if filter_target(member, cls.fields) is None
    ]
