"""The plugin author's documentation stays complete and in step with the code.

- docs/writing_a_plugin.md has an *entry* for every public member of `Demo`,
  `Entry`, `Upload`, `Media`, `Hit`, `DemoOptions`, `ScalarField`,
  `VectorField` and the `nearest` object `Demo.search` receives, for every
  name in `vectorfair.__all__`, every helper of `vectorfair.testing`, every
  scalar and vector kind; it names every metric and reserved field name, and
  quotes every message the contract and vector checks can give.
- docs/settings.md has a row for every settings key (the pydantic models of
  core/vectorfair/settings.py, walked recursively), with the code's default,
  and no row for a key that does not exist.
- No docs page refers to a member that does not exist (`Demo.contract_problems`).

Hooks are not checked here: tests/test_hooks.py already fails when a hook of
core/vectorfair/hookspecs.py has no `## name(args)` heading with its exact
signature in docs/plugin_hooks.md.

The rule for an entry. A code span *names* `x` when its text, after an
optional leading `@` or `vectorfair.`, is the dotted name `x` (or `"x"`),
possibly followed by `(`, a space, `=`, `:` or `,`: `encode(payloads)`,
`name = "recipes"`, `@lazy_model`, `"str"`, `Entry.payload`. An entry for
`x` is

- a Markdown table row whose first cell holds a code span naming `x` and whose
  other cells hold at least one code span (the example), or
- a heading holding a code span naming `x`, followed before the next heading
  by a code span or a fenced code block (the example).

An entry for a member `m` of a class `C` counts when it names `C.m`, or when
it names `m` inside the section of `C`: under a heading (at any level above)
holding a code span that names `C` or `C.<something>`.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib
import inspect
import re
import textwrap
import typing
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

import vectorfair
from vectorfair import contract, schema, testing
from vectorfair.demo import Demo, DemoFilter, DemoOptions, Entry, Hit, Media, Upload
from vectorfair.runtime import Nearest
from vectorfair.schema import METRICS, RESERVED_NAMES, ScalarField, ScalarKind, VectorField, VectorKind
from vectorfair.settings import Settings

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

DOCS = Path(__file__).parents[1] / "docs"
GUIDE = DOCS / "writing_a_plugin.md"
SETTINGS = DOCS / "settings.md"

SPAN = re.compile(r"`([^`\n]+)`")
NAMING = re.compile(r'@?(?:vectorfair\.)?("?)([A-Za-z_]\w*(?:\.[A-Za-z_]\w*)*)\1(?=$|[( =:,])')


# -- reading the docs ------------------------------------------------------------------
@dataclasses.dataclass
class DocEntry:
    line: int
    names: set[str]  # what its code spans name (the heading, or the row's first cell)
    spans: list[str]  # every code span text of the heading or row
    scope: set[str]  # what the code spans of the enclosing headings name
    example: bool
    cells: dict[str, str] = dataclasses.field(default_factory=dict)  # a row's cells by column title


def names_in(text: str) -> set[str]:
    found = set()
    for span in SPAN.findall(text):
        match = NAMING.match(span.strip())
        if match:
            found.add(match.group(2))
    return found


def cells_of(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def doc_entries(path: Path) -> list[DocEntry]:
    entries: list[DocEntry] = []
    headings: list[tuple[int, set[str]]] = []
    heading: DocEntry | None = None  # the last heading, until it has its example
    header: list[str] = []
    in_fence = False
    lines = path.read_text().splitlines()
    for number, line in enumerate(lines, 1):
        if line.lstrip().startswith("```"):
            in_fence = not in_fence
            if heading is not None:
                heading.example = True
            continue
        if in_fence:
            continue
        title = re.match(r"(#{1,6})\s+(.*)", line)
        if title:
            level = len(title.group(1))
            headings = [(lvl, names) for lvl, names in headings if lvl < level]
            heading = DocEntry(
                number,
                names_in(title.group(2)),
                SPAN.findall(title.group(2)),
                {n for _, names in headings for n in names},
                False,
            )
            entries.append(heading)
            headings.append((level, heading.names))
            continue
        if heading is not None and SPAN.search(line):
            heading.example = True
        if not line.startswith("|"):
            continue
        if re.fullmatch(r"\|?(\s*:?-+:?\s*\|)+\s*:?-*:?\s*", line.strip()):
            header = [cell.lower() for cell in cells_of(lines[number - 2])]
            continue
        cells = cells_of(line)
        entries.append(
            DocEntry(
                number,
                names_in(cells[0]),
                SPAN.findall(line),
                {n for _, names in headings for n in names},
                any(SPAN.search(cell) for cell in cells[1:]),
                dict(zip(header, cells, strict=False)),
            )
        )
    return entries


def in_scope(entry: DocEntry, owners: tuple[str, ...]) -> bool:
    return any(name.split(".")[0] in owners for name in entry.scope)


def has_entry(entries: list[DocEntry], name: str, owners: tuple[str, ...] = ()) -> bool:
    for entry in entries:
        if not entry.example:
            continue
        if any(f"{owner}.{name}" in entry.names for owner in owners):
            return True
        if name in entry.names and (not owners or in_scope(entry, owners)):
            return True
    return False


# -- what must be documented ---------------------------------------------------------------
def public_members(cls: type) -> set[str]:
    """Names an author may use: class attributes (also annotation-only ones),
    methods, properties, dataclass fields, pydantic fields."""
    if issubclass(cls, BaseModel):
        return set(cls.model_fields)
    names = {name for name in vars(cls) if not name.startswith("_")}
    names |= {name for name in vars(cls).get("__annotations__", {}) if not name.startswith("_")}
    if dataclasses.is_dataclass(cls):
        names |= {field.name for field in dataclasses.fields(cls)}
    return names


def instance_attributes(cls: type) -> set[str]:
    """Public attributes the class's own methods set on `self` (`Demo.options`)."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls)))
    return {
        node.attr
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and isinstance(node.ctx, ast.Store)
        and isinstance(node.value, ast.Name)
        and node.value.id == "self"
        and not node.attr.startswith("_")
    }


CLASSES: dict[type, tuple[str, ...]] = {
    Demo: ("Demo",),
    Entry: ("Entry",),
    Upload: ("Upload",),
    Media: ("Media",),
    Hit: ("Hit",),
    DemoOptions: ("DemoOptions",),
    DemoFilter: ("DemoFilter",),
    ScalarField: ("ScalarField",),
    VectorField: ("VectorField",),
    Nearest: ("Nearest", "nearest"),
}


def members_to_document() -> list[tuple[str, str, tuple[str, ...]]]:
    found = []
    for cls, owners in CLASSES.items():
        members = public_members(cls) | (instance_attributes(cls) if cls is Demo else set())
        found += [(cls.__name__, member, owners) for member in sorted(members)]
    return found


@pytest.fixture(scope="module")
def guide() -> list[DocEntry]:
    return doc_entries(GUIDE)


def test_the_demo_members_are_found():
    """The walk over `Demo` sees annotation-only attributes and instance attributes."""
    members = {member for owner, member, _ in members_to_document() if owner == "Demo"}
    assert {"name", "title", "options", "encode", "Filter", "vectors", "search"} <= members
    assert {member for owner, member, _ in members_to_document() if owner == "Nearest"} == {"stored"}


@pytest.mark.parametrize(
    "owner, member, owners", members_to_document(), ids=[f"{o}.{m}" for o, m, _ in members_to_document()]
)
def test_every_public_member_has_an_entry(guide, owner, member, owners):
    assert has_entry(guide, member, owners), (
        f"{owner}.{member} has no entry in {GUIDE.name}: add a table row whose first cell is `{member}` (with an "
        f"example in another cell) or a heading naming it, under the section of `{owners[0]}`"
    )


def test_the_nearest_call_has_an_entry(guide):
    assert has_entry(guide, "nearest"), "`nearest(vector, limit, field=None)` has no entry"


@pytest.mark.parametrize("name", sorted(vectorfair.__all__))
def test_every_exported_name_has_an_entry(guide, name):
    assert has_entry(guide, name), f"vectorfair.{name} is in __all__ but has no entry in {GUIDE.name}"


def helpers_of_testing() -> list[str]:
    return sorted(
        name
        for name, value in vars(testing).items()
        if not name.startswith("_") and callable(value) and getattr(value, "__module__", "") == testing.__name__
    )


@pytest.mark.parametrize("name", helpers_of_testing())
def test_every_testing_helper_has_an_entry(guide, name):
    assert has_entry(guide, name), f"vectorfair.testing.{name} has no entry in {GUIDE.name}"


@pytest.mark.parametrize(
    "owner, kind",
    [("ScalarField", kind) for kind in typing.get_args(ScalarKind)]
    + [("VectorField", kind) for kind in typing.get_args(VectorKind)],
)
def test_every_field_kind_has_an_entry(guide, owner, kind):
    assert has_entry(guide, kind, (owner,)), f'{owner} kind "{kind}" has no row under the `{owner}` section'


def test_every_metric_and_reserved_name_is_named(guide):
    vector_spans = {span.strip('"') for entry in guide if in_scope(entry, ("VectorField",)) for span in entry.spans}
    missing = sorted({metric for metrics in METRICS.values() for metric in metrics} - vector_spans)
    assert not missing, f"metrics not named in backticks under the `VectorField` section: {missing}"
    spans = set(SPAN.findall(GUIDE.read_text()))
    assert not sorted(RESERVED_NAMES - spans), f"reserved field names not named: {sorted(RESERVED_NAMES - spans)}"


# -- the messages of the checks ----------------------------------------------------------------
MESSAGE_SOURCES = {
    contract: ("problems", "_filter_problems"),
    schema: ("problems_of", "_vector_problems", "checked_vector", "_checked_sparse"),
}


PLACEHOLDER = r"[^`]+?"  # what a message formats in; quoted messages never hold a backtick


def message_pattern(node: ast.AST) -> str:
    """A regular expression of the message an expression builds: its literal
    text, with anything formatted into it as a placeholder."""
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return re.escape(re.sub(r"\s+", " ", node.value))
    if isinstance(node, ast.JoinedStr):
        return "".join(message_pattern(part) if isinstance(part, ast.Constant) else PLACEHOLDER for part in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        return message_pattern(node.left) + message_pattern(node.right)
    if isinstance(node, ast.IfExp):
        return f"(?:{message_pattern(node.body)}|{message_pattern(node.orelse)})"
    return PLACEHOLDER


def check_messages() -> list[tuple[str, str]]:
    """(where, pattern) of every message the contract and vector checks can
    give: `found.append(...)`, `problems.append(...)`, `return [...]`,
    `raise VectorRejected(...)`."""
    found = []
    for module, functions in MESSAGE_SOURCES.items():
        tree = ast.parse(inspect.getsource(module))
        for function in (node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name in functions):
            for node in ast.walk(function):
                messages: list[ast.AST] = []
                if (
                    isinstance(node, ast.Call)
                    and node.args
                    and (
                        (isinstance(node.func, ast.Attribute) and node.func.attr == "append")
                        or (isinstance(node.func, ast.Name) and node.func.id == "VectorRejected")
                    )
                ):
                    messages.append(node.args[0])
                elif isinstance(node, ast.Return) and isinstance(node.value, ast.List):
                    messages += node.value.elts
                elif isinstance(node, ast.Return) and isinstance(node.value, ast.ListComp):
                    messages.append(node.value.elt)
                for message in messages:
                    if isinstance(message, (ast.Constant, ast.JoinedStr, ast.BinOp)):
                        found.append((f"{module.__name__}.{function.name}:{node.lineno}", message_pattern(message)))
    return sorted(found)


def readable(pattern: str) -> str:
    return re.sub(r"\\(.)", r"\1", pattern.replace(PLACEHOLDER, "…"))


def test_the_check_messages_are_found():
    patterns = [pattern for _, pattern in check_messages()]
    assert len(patterns) >= 30, patterns
    for message in (
        "vector field 'vector': the encoder returned NaN or infinite values",
        "field name 'title' is reserved by the core (created, id); rename it",
        "vector field 'w': sparse index 5000 is not a whole number from 0 to 4095",
    ):
        assert any(re.fullmatch(pattern, message) for pattern in patterns), message


@pytest.mark.parametrize("where, pattern", check_messages(), ids=[where for where, _ in check_messages()])
def test_every_check_message_is_quoted(where, pattern):
    """Each message appears, with example values filled in, in a code span."""
    spans = SPAN.findall(GUIDE.read_text())
    assert any(re.search(pattern, span) for span in spans), (
        f"{GUIDE.name} does not quote the message of {where}: add `{readable(pattern)}` (with example values) "
        "to section 10"
    )


# -- no stale references -----------------------------------------------------------------------
JAVASCRIPT = {"vectorfair.renderHit"}  # the page's API for a result_script


def resolves(dotted: str) -> bool:
    parts = dotted.split(".")
    for split in range(len(parts), 0, -1):
        try:
            value: Any = importlib.import_module(".".join(parts[:split]))
        except ImportError:
            continue
        try:
            for part in parts[split:]:
                value = getattr(value, part)
        except AttributeError:
            return False
        return True
    return False


@pytest.mark.parametrize("page", sorted(DOCS.glob("*.md")), ids=lambda p: p.name)
def test_docs_name_only_members_that_exist(page):
    members = {cls.__name__: public_members(cls) | instance_attributes(cls) | set(dir(cls)) for cls in CLASSES}
    stale = []
    for span in SPAN.findall(page.read_text()):
        qualified = re.match(r"(\w+)\.(\w+)", span)
        if qualified and qualified.group(1) in members and qualified.group(2) not in members[qualified.group(1)]:
            stale.append(span)
        module_path = re.match(r"vectorfair(?:\.\w+)+", span)
        if module_path and module_path.group(0) not in JAVASCRIPT and not resolves(module_path.group(0)):
            stale.append(span)
    assert not stale, f"{page.name} refers to what does not exist: {stale}"


# -- settings ----------------------------------------------------------------------------------
def settings_keys(model: type[BaseModel] = Settings, prefix: str = "") -> dict[str, Any]:
    """Every key, dotted by section, with its default."""
    keys: dict[str, Any] = {}
    for name, field in model.model_fields.items():
        annotation = field.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            keys.update(settings_keys(annotation, f"{prefix}{name}."))
        else:
            keys[prefix + name] = field.get_default(call_default_factory=True)
    if model is Settings:  # every [demos.<name>] section has DemoOptions' keys
        keys.update({f"demos.<name>.{name}": field.default for name, field in DemoOptions.model_fields.items()})
    return keys


def settings_rows() -> dict[str, DocEntry]:
    rows = {}
    for entry in doc_entries(SETTINGS):
        if entry.cells:
            key = SPAN.findall(next(iter(entry.cells.values())))
            if key:
                rows[key[0]] = entry
    return rows


@pytest.mark.parametrize("key", sorted(settings_keys()))
def test_every_settings_key_has_a_row_with_its_default(key):
    row = settings_rows().get(key)
    assert row is not None, f"settings key {key} has no row in {SETTINGS.name} (first cell `{key}`)"
    expected = settings_keys()[key]
    shown = SPAN.findall(row.cells.get("default", ""))
    if not shown:
        assert expected is None or isinstance(expected, (dict, list)), (
            f"{SETTINGS.name}:{row.line}: give {key}'s default as a TOML literal in backticks"
        )
        return
    value = tomllib.loads(f"value = {shown[0]}")["value"]
    if isinstance(expected, Path):
        value = Path(value)
    assert value == expected and type(value) is type(expected), (
        f"{SETTINGS.name}:{row.line}: {key} shows default {shown[0]}, the code has {expected!r}"
    )


def test_the_settings_reference_has_no_stale_key():
    stale = sorted(set(settings_rows()) - set(settings_keys()))
    assert not stale, f"{SETTINGS.name} documents keys that do not exist: {stale}"
