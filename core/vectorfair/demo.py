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
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

# str: VARCHAR (max_length bytes); int: INT64; float: DOUBLE; bool: BOOL;
# json: any JSON value; str_list, int_list, float_list: ARRAY of at most
# max_items VARCHAR / INT64 / DOUBLE.
FieldKind = Literal["str", "int", "float", "bool", "json", "str_list", "int_list", "float_list"]

# Fields every collection has; a demo's own fields may not reuse these names.
RESERVED_FIELDS = frozenset({"id", "vector", "title", "item", "media", "thumb", "tenant", "created"})
TEXT_INPUTS = frozenset({"text", "smiles"})


class ItemError(ValueError):
    """One uploaded item (file, record, archive member) cannot be used.

    The message is shown to the person who uploaded it, so say what to do.
    The rest of the upload or job carries on.
    """


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


@dataclasses.dataclass(frozen=True)
class Field:
    """A scalar field stored next to each vector and returned in `hit.fields`."""

    name: str
    kind: FieldKind = "str"
    max_length: int = 1024
    max_items: int = 16
    filterable: bool = False
    description: str = ""


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
    # Set when `parse_upload` already ran the model (a long recording encoded
    # in steps so the job can report progress); the core then stores it as is.
    vector: np.ndarray | None = None


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
    """Base class of a demo. Subclass it, set the class attributes, implement
    `dim`, `encode` and at least one of the `parse_*` methods."""

    name: ClassVar[str]
    title: ClassVar[str]
    description: ClassVar[str] = ""
    # Query kinds the search route takes: text-like ones ("text", "smiles") as
    # JSON, media ones ("image", "video", "audio", ...) as a multipart file.
    inputs: ClassVar[tuple[str, ...]] = ("text",)
    # File suffixes `parse_upload` understands (lower case, with the dot).
    accepts: ClassVar[tuple[str, ...]] = ()
    accepts_records: ClassVar[bool] = False
    fields: ClassVar[tuple[Field, ...]] = ()
    metric: ClassVar[Literal["COSINE", "IP", "L2"]] = "COSINE"
    # Ordered preferences; the store takes the first the backend handles well.
    index_preferences: ClassVar[tuple[str, ...]] = ("HNSW", "FLAT")
    Options: ClassVar[type[DemoOptions]] = DemoOptions
    # A pydantic model of the filters a search takes, or None for no filters.
    Filter: ClassVar[type[BaseModel] | None] = None
    sample_query: ClassVar[str | None] = None
    # URL of an image that previews a typed query, "{query}" standing for it
    # (the molecule demo draws the SMILES as you type).
    query_preview: ClassVar[str | None] = None
    # A script (served through the extra_static hook) that draws this demo's
    # hits itself: it calls vectorfair.renderHit("<demo name>", hit => Node).
    result_script: ClassVar[str | None] = None

    def __init__(self, options: DemoOptions | None = None):
        self.options = options if options is not None else self.Options()

    # -- encoder -------------------------------------------------------------
    @property
    def dim(self) -> int:
        raise NotImplementedError

    def encode(self, payloads: list[Any]) -> np.ndarray:
        """Vectors for a batch of payloads, shape (len(payloads), dim)."""
        raise NotImplementedError

    def encode_with_fields(self, payloads: list[Any]) -> tuple[np.ndarray, list[dict[str, Any]] | None]:
        """For ingest: the vectors plus, per payload, fields that come out of
        the same model pass (an image's predicted labels, say). Default: no
        extra fields."""
        return self.encode(payloads), None

    def warm_up(self) -> None:
        """Load the model now rather than on the first request."""

    def encode_query(self, payload: Any) -> np.ndarray:
        """One query's vector. The core may route this through a batcher that
        gathers concurrent queries into one `encode` call; call it (not
        `encode([payload])`) from an overridden `search` to benefit."""
        batcher = self.__dict__.get("_query_batcher")
        if batcher is not None:
            return batcher(payload)
        return np.asarray(self.encode([payload]), dtype=np.float32)[0]

    def use_query_batcher(self, batcher: Callable[[Any], np.ndarray] | None) -> None:
        self.__dict__["_query_batcher"] = batcher

    # -- ingest --------------------------------------------------------------
    def parse_upload(self, upload: Upload) -> Iterable[Entry]:
        raise ItemError(
            f"{self.title} does not take files"
            + ("; send JSON records instead" if self.accepts_records else "")
        )

    def split_upload(self, upload: Upload) -> Iterable[tuple[str, dict[str, Any]]] | None:
        """For a file that holds many items (a CSV of records): return
        (label, record) pairs (a record may be an `ItemError` for a bad row), each then stored, deduplicated and reported as
        an item of its own through `parse_record`. Return None (the default)
        when the file is one item."""
        return None

    def identity(self, source: Upload | dict[str, Any]) -> str | None:
        """What makes two items the same for this demo (a canonical SMILES,
        say), or None to compare their bytes / JSON. Items with the same
        identity are stored once."""
        return None

    def parse_record(self, record: dict[str, Any]) -> Iterable[Entry]:
        raise ItemError(f"{self.title} does not take JSON records; upload files ({', '.join(self.accepts)})")

    def sample_items(self) -> Iterator[Upload | dict[str, Any]]:
        """The demo's sample data set; must work offline."""
        return iter(())

    # -- search --------------------------------------------------------------
    def parse_query_text(self, text: str) -> Any:
        raise QueryError(f"{self.title} searches by {', '.join(self.inputs)}, not by text")

    def parse_query_file(self, upload: Upload) -> Any:
        raise QueryError(f"{self.title} searches by {', '.join(self.inputs)}, not by file")

    def filter_expression(self, filter: BaseModel) -> str:
        """A Milvus boolean expression for the validated `Filter`, or "".

        Use `vectorfair.expr.quote` for strings taken from the request.
        """
        return ""

    def search(
        self, nearest: Callable[[np.ndarray, int], list[Hit]], payload: Any, top_k: int, filter: BaseModel | None
    ) -> list[Hit]:
        """Ranked hits for a parsed query. `nearest(vector, limit)` runs the
        Milvus search (with this demo's filter expression applied) and returns
        hits best first. Override it for exact re-ranking that needs several
        rounds, or for filters Milvus cannot express."""
        vector = self.encode_query(payload)
        return self.rerank(payload, nearest(vector, self.candidates(top_k)), top_k)

    def candidates(self, top_k: int) -> int:
        """How many nearest rows to fetch before `rerank` (over-fetch to re-rank)."""
        return top_k

    def rerank(self, payload: Any, hits: list[Hit], top_k: int) -> list[Hit]:
        return hits[:top_k]

    def summarize(self, payload: Any, hits: list[Hit]) -> dict[str, Any] | None:
        """Anything the search result should carry besides the hits (returned
        as `summary`), such as a chatbot's answer; None for nothing."""
        return None

    # -- helpers -------------------------------------------------------------
    @classmethod
    def text_inputs(cls) -> bool:
        return any(kind in TEXT_INPUTS for kind in cls.inputs)

    @classmethod
    def file_inputs(cls) -> bool:
        return any(kind not in TEXT_INPUTS for kind in cls.inputs)

    @classmethod
    def contract_problems(cls) -> list[str]:
        """What is wrong with this class as a demo (empty when it is fine)."""
        problems = []
        for attr in ("name", "title"):
            if not isinstance(getattr(cls, attr, None), str) or not getattr(cls, attr):
                problems.append(f"missing class attribute {attr!r}")
        name = getattr(cls, "name", "")
        if isinstance(name, str) and name and not (name.replace("_", "").isalnum() and name.islower()):
            problems.append(f"name {name!r} must be lower-case letters, digits and '_'")
        if not cls.inputs:
            problems.append("inputs is empty: name at least one query kind")
        if not issubclass(cls.Options, DemoOptions):
            problems.append("Options must subclass vectorfair.DemoOptions")
        for field in cls.fields:
            if field.name in RESERVED_FIELDS:
                problems.append(f"field {field.name!r} is reserved by the core")
        if cls.metric not in ("COSINE", "IP", "L2"):
            problems.append(f"metric {cls.metric!r} is not one of COSINE, IP, L2")
        return problems
