"""The contract between the core and a demo plugin.

A plugin returns `Demo` subclasses from its `register_demos` hook. The core
instantiates each enabled one with its validated options and gives it the same
routes, jobs, storage and CLI. Everything the core needs to know about a demo is
declared here as data (class attributes) or as a small method.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from .schema import ScalarField, VectorField

TEXT_INPUTS = frozenset({"text", "smiles"})
# Files of records a demo that takes records reads without any code of its own.
RECORD_FILES = (".csv", ".json", ".jsonl")


class ItemError(ValueError):
    """One uploaded item (file, record, archive member) cannot be used.

    The message is shown to the person who uploaded it, so say what to do.
    The rest of the upload or job carries on.
    """


class SampleUnavailable(Exception):
    """Raised by `sample_items` when the sample data cannot be found here; the
    message says what is missing (a package, a file) and how to get it. The
    sample job then fails with it, and the home page shows it."""


class QueryError(ValueError):
    """A search input cannot be used; answered as 422 with this message."""


class DemoOptions(BaseModel):
    """Options every demo has; a demo extends this model with its own.

    Unknown keys are refused so a typo in the config stops start-up instead of
    being silently ignored.
    """

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    load_sample_on_start: bool = True


class DemoFilter(BaseModel):
    """Base of a demo's `Filter`: a pydantic model of the filters a search
    takes. Unknown keys are refused (422) rather than silently ignored."""

    model_config = ConfigDict(extra="forbid")


@dataclasses.dataclass
class Upload:
    """A file as it arrived: an uploaded part, an archive member or a sample file."""

    name: str
    data: bytes
    content_type: str | None = None

    def text(self) -> str:
        """The file as UTF-8 text (a byte-order mark is dropped)."""
        try:
            return self.data.decode("utf-8-sig")
        except UnicodeDecodeError:
            raise ItemError("the file is not UTF-8 text; save it as UTF-8") from None

    @property
    def suffix(self) -> str:
        dot = self.name.rfind(".")
        return self.name[dot:].lower() if dot > 0 else ""


@dataclasses.dataclass
class Media:
    data: bytes
    content_type: str


@dataclasses.dataclass
class Entry:
    """One row to store: what to encode plus what to keep and show."""

    payload: Any
    title: str
    fields: dict[str, Any] = dataclasses.field(default_factory=dict)
    media: Media | None = None
    thumbnail: Media | None = None
    # Vectors already computed, by vector field name: a field the demo's
    # `encode` does not fill (a face descriptor), or one `parse_upload`
    # encoded in steps to report progress. The payload, when not None, is
    # encoded into the first vector field unless that one is given here. A
    # row without some field of a demo that has several is never found
    # through that field.
    vectors: dict[str, Any] = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class Hit:
    id: str
    score: float
    title: str
    fields: dict[str, Any]
    media_url: str | None = None
    thumbnail_url: str | None = None
    # The stored item this row belongs to: an item (a song, a video) may be
    # stored as many rows, and a demo may group its hits by it.
    item: str = ""


class lazy_model:
    """A property whose value (a model) is built on first use, once, even when
    several requests ask for it at the same moment:

        @lazy_model
        def model(self):
            return load_the_model(self.options.model)
    """

    def __init__(self, load: Callable[[Any], Any]):
        self.load = load
        self.attribute = f"_lazy_{load.__name__}"
        self.lock = threading.Lock()
        self.__doc__ = load.__doc__

    def __get__(self, demo: Any, owner: type | None = None) -> Any:
        if demo is None:
            return self
        value = demo.__dict__.get(self.attribute)
        if value is None:
            with self.lock:
                value = demo.__dict__.get(self.attribute)
                if value is None:
                    value = self.load(demo)
                    demo.__dict__[self.attribute] = value
        return value


def static_folder(demo_name: str, package_file: str) -> list[tuple[str, Any]]:
    """For a plugin's `extra_static` hook: its `static/` folder, served under
    /static/plugins/<demo_name>/."""
    from pathlib import Path

    return [(demo_name, Path(package_file).parent / "static")]


class Demo:
    """Base class of a demo. Subclass it, set `name`, `title` and `vectors`,
    implement `encode` and `parse_record` or `parse_upload`; everything else
    has a default. docs/writing_a_plugin.md lists every member."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    # Query kinds the search route takes: text-like ones ("text", "smiles") as
    # JSON, media ones ("image", "video", "audio", ...) as a multipart file
    # (define `parse_query_file` for those).
    inputs: ClassVar[tuple[str, ...]] = ("text",)
    # File suffixes `parse_upload` (or `split_upload`) reads, lower case with
    # the dot. A demo that takes records reads RECORD_FILES without this.
    accepts: ClassVar[tuple[str, ...]] = ()
    fields: ClassVar[tuple[ScalarField, ...]] = ()
    # The vector fields; `encode` fills the first. A property when a
    # dimension depends on the options.
    vectors: ClassVar[tuple[VectorField, ...]] = ()
    Options: ClassVar[type[DemoOptions]] = DemoOptions
    # A DemoFilter subclass of the filters a search takes, or None.
    Filter: ClassVar[type[BaseModel] | None] = None
    sample_query: ClassVar[str | None] = None
    # About how many seconds the sample set takes to load on a laptop: the
    # core loads cheaper ones first, so most demos answer within the first minute.
    sample_cost: ClassVar[float] = 30.0
    # What the pages call an item and, when an item is stored as several rows
    # (a recording's windows), a row: plural nouns, e.g. "recordings", "windows".
    item_noun: ClassVar[str] = "items"
    row_noun: ClassVar[str | None] = None
    # The label of the search box ("Your question" by default, "SMILES" for smiles).
    query_label: ClassVar[str | None] = None
    # URL of an image that previews a typed query, "{query}" standing for it
    # (the molecule demo draws the SMILES as you type).
    query_preview: ClassVar[str | None] = None
    # A script (served through the extra_static hook) that draws this demo's
    # hits itself: it calls vectorfair.renderHit("<demo name>", hit => Node).
    result_script: ClassVar[str | None] = None

    def __init__(self, options: DemoOptions | None = None):
        self.options = options if options is not None else self.Options()

    # -- encoder -------------------------------------------------------------
    def encode(self, payloads: list[Any]) -> Any:
        """Vectors of the first vector field for a batch of payloads: an
        array (len(payloads), dim) for float, 0/1 bits or packed bytes for
        binary, a list of {index: weight} for sparse."""
        raise NotImplementedError

    def encode_with_fields(self, payloads: list[Any]) -> tuple[Any, list[dict[str, Any]] | None]:
        """For ingest: the vectors plus, per payload, fields that come out of
        the same model pass (an image's predicted labels, say). Default: no
        extra fields."""
        return self.encode(payloads), None

    def warm_up(self) -> None:
        """Load the model now rather than on the first request."""

    def encode_query(self, payload: Any) -> Any:
        """One query's vector. The core gathers concurrent queries into one
        `encode` call; call this (not `encode([payload])`) from an
        overridden `search` to benefit."""
        batcher = self.__dict__.get("_query_batcher")
        if batcher is not None:
            return batcher(payload)
        return self.encode([payload])[0]

    # -- ingest --------------------------------------------------------------
    def parse_upload(self, upload: Upload) -> Iterable[Entry]:
        """The rows of one uploaded file whose suffix is in `accepts`."""
        raise ItemError(f"{self.title} does not take files; send JSON records instead")

    def split_upload(self, upload: Upload) -> Iterable[tuple[str, dict[str, Any] | ItemError]] | None:
        """For a file that holds many items: (label, record) pairs, each then
        stored, deduplicated and reported as an item of its own ("<file>
        <label>") through `parse_record`; a record may be an ItemError for a
        bad row. None (the default for files other than RECORD_FILES) when
        the file is one item for `parse_upload`."""
        if upload.suffix in RECORD_FILES and type(self).parse_record is not Demo.parse_record:
            from .records import read_records

            return read_records(upload)
        return None

    def identity(self, source: Upload | dict[str, Any]) -> str | None:
        """What makes two items the same for this demo (a canonical SMILES,
        say), or None to compare their bytes / JSON. Items with the same
        identity are stored once."""
        return None

    def parse_record(self, record: dict[str, Any]) -> Iterable[Entry]:
        """The rows of one JSON record (sent as {"records": [...]} or read
        from a CSV/JSON/JSONL file). Defining it makes the demo take records."""
        raise ItemError(f"{self.title} does not take JSON records; upload files ({', '.join(self.accepts)})")

    def sample_items(self) -> Iterator[Upload | dict[str, Any]]:
        """The demo's sample data set, as uploads and/or records; must work
        offline. Raise SampleUnavailable naming what is missing when none is
        found (a sample set that yields nothing fails its job too)."""
        return iter(())

    # -- search --------------------------------------------------------------
    def parse_query_text(self, text: str) -> Any:
        """The payload of a typed query (default: the text, trimmed)."""
        text = " ".join(text.split())
        if not text:
            raise QueryError("type something to search for")
        return text

    def parse_query_file(self, upload: Upload) -> Any:
        """The payload of a query file (an image, a clip…)."""
        raise QueryError(f"{self.title} searches by {', '.join(self.inputs)}, not by file")

    def filter_expression(self, filter: BaseModel) -> str:
        """A Milvus boolean expression for the validated `Filter`, or "".

        The default matches each filter value that is set to the scalar field
        of the same name (`x == v`; `x in [...]` for a list; a value in a
        str_list field; `<field>_min` / `<field>_max` for ranges). Use
        `vectorfair.quote` for strings when writing your own.
        """
        from .expr import matching

        return matching(self.fields, filter)

    def search(
        self, nearest: Callable[..., list[Hit]], payload: Any, top_k: int, filter: BaseModel | None
    ) -> list[Hit]:
        """Ranked hits for a parsed query. `nearest(vector, limit, field=None)`
        runs the Milvus search on a vector field (the first by default) with
        this demo's filter expression applied, and returns hits best first;
        `nearest.stored(field)` is that field as this backend stores it (a
        fallback where it lacks the declared kind). Override it for exact
        re-ranking that needs several rounds, another vector field per query
        mode, or filters Milvus cannot express."""
        vector = self.encode_query(payload)
        return self.rerank(payload, nearest(vector, self.candidates(top_k)), top_k)

    def candidates(self, top_k: int) -> int:
        """How many nearest rows to fetch before `rerank` (over-fetch to re-rank)."""
        return top_k

    def rerank(self, payload: Any, hits: list[Hit], top_k: int) -> list[Hit]:
        """The final top_k from the fetched hits (default: as Milvus ranked them)."""
        return hits[:top_k]

    def summarize(self, payload: Any, hits: list[Hit]) -> dict[str, Any] | None:
        """Anything the search result should carry besides the hits (returned
        as `summary`), such as a chatbot's answer; None for nothing."""
        return None
