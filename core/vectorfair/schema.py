"""A demo's collection, as the demo declares it and as a backend stores it.

A demo declares `ScalarField`s and one or more `VectorField`s. This module
turns them into a Milvus schema and indexes for the backend at hand (taking a
vector field's declared fallback where the backend lacks its kind), converts
the encoder's output and stored rows between the two, and checks a stored
collection against the declaration.
"""

from __future__ import annotations

import dataclasses
import re
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np

# str: VARCHAR (max_length bytes); int: INT64; int32/int16/int8; float: DOUBLE;
# float32: FLOAT; bool: BOOL; json: any JSON value; str_list, int_list,
# float_list: ARRAY of at most max_items VARCHAR / INT64 / DOUBLE.
ScalarKind = Literal[
    "str", "int", "int32", "int16", "int8", "float", "float32", "bool", "json", "str_list", "int_list", "float_list"
]
# float: FLOAT_VECTOR; float16: FLOAT16_VECTOR; binary: BINARY_VECTOR (dim
# bits); sparse: SPARSE_FLOAT_VECTOR ({index: weight}, dim optional).
VectorKind = Literal["float", "float16", "binary", "sparse"]
METRICS = {
    "float": ("COSINE", "IP", "L2"),
    "float16": ("COSINE", "IP", "L2"),
    "binary": ("JACCARD", "HAMMING"),
    "sparse": ("IP",),
}
# Fields every collection has; a demo's own fields may not reuse these names.
CORE_FIELDS = ("id", "title", "item", "media", "thumb", "tenant", "created")
# Which vector fields a row really has, in a demo with several (the others
# hold a placeholder, and a search on a field skips rows without it).
PRESENT_VECTORS = "vector_fields"
RESERVED_NAMES = frozenset({*CORE_FIELDS, PRESENT_VECTORS})
NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")
TITLE_BYTES = 1024
KEY_BYTES = 64


@dataclasses.dataclass(frozen=True)
class ScalarField:
    """A scalar value stored next to the vectors and returned in `hit.fields`.

    `index=True` builds a scalar index on it (for fields searches filter
    on); `description` is shown in the demo's /stats and the API docs.
    """

    name: str
    kind: ScalarKind = "str"
    max_length: int = 1024
    max_items: int = 16
    index: bool = False
    description: str = ""


@dataclasses.dataclass(frozen=True)
class VectorField:
    """A vector column. `index` lists index types in order of preference;
    the store takes the first the backend builds (FLAT, BIN_FLAT or
    SPARSE_INVERTED_INDEX when none is). `index_params` overrides an index
    type's build parameters, e.g. {"HNSW": {"M": 32}}. `fallback` is how to
    store the field on a backend that lacks its kind (Milvus Lite has no
    binary vectors): the core converts values to it (binary -> 0/1 float or
    the set bits as a sparse vector, sparse -> dense float, float16 -> float),
    or the fallback's own `convert` does (a function from one declared value
    to one value of the fallback, e.g. a shorter summary of a long fingerprint;
    search with it is then only as exact as the demo makes it)."""

    name: str = "vector"
    kind: VectorKind = "float"
    dim: int | None = None
    metric: str = "COSINE"
    index: tuple[str, ...] = ("HNSW", "FLAT")
    index_params: Mapping[str, Mapping[str, Any]] = dataclasses.field(default_factory=dict)
    fallback: VectorField | None = None
    convert: Callable[[Any], Any] | None = None


def problems_of(scalars: Sequence[ScalarField], vectors: Sequence[VectorField]) -> list[str]:
    """What is wrong with a declared schema, each saying what to do."""
    problems = []
    if not vectors:
        problems.append("no vector field: declare vectors = (VectorField(dim=...),)")
    names: set[str] = set()
    for field in [*vectors, *scalars]:
        if not isinstance(field, (ScalarField, VectorField)):
            problems.append(f"{field!r} is neither a ScalarField nor a VectorField")
            continue
        if field.name in RESERVED_NAMES:
            problems.append(
                f"field name {field.name!r} is reserved by the core ({', '.join(sorted(RESERVED_NAMES))}); rename it"
            )
        elif not NAME.fullmatch(field.name):
            problems.append(
                f"field name {field.name!r}: use lower-case letters, digits and '_', starting with a letter"
            )
        if field.name in names:
            problems.append(f"field name {field.name!r} is declared twice")
        names.add(field.name)
    for field in vectors:
        if isinstance(field, VectorField):
            problems += _vector_problems(field)
    for field in scalars:
        if isinstance(field, ScalarField) and field.kind not in SCALAR_TYPES:
            problems.append(f"field {field.name!r}: kind {field.kind!r} is not one of {', '.join(SCALAR_TYPES)}")
    return problems


def _vector_problems(field: VectorField, role: str = "vector field") -> list[str]:
    where = f"{role} {field.name!r}"
    if field.kind not in METRICS:
        return [f"{where}: kind {field.kind!r} is not one of {', '.join(METRICS)}"]
    problems = []
    if field.kind != "sparse" and not (isinstance(field.dim, int) and field.dim > 0):
        problems.append(f"{where}: a {field.kind} vector needs dim, a positive whole number")
    if field.kind == "binary" and isinstance(field.dim, int) and field.dim % 8:
        problems.append(f"{where}: a binary vector's dim counts bits and must be a multiple of 8, not {field.dim}")
    if field.metric not in METRICS[field.kind]:
        problems.append(
            f"{where}: metric {field.metric!r} does not apply to {field.kind} vectors; "
            f"use {' or '.join(METRICS[field.kind])}"
        )
    if field.convert is not None and role == "vector field":
        problems.append(f"{where}: convert applies to a fallback (how to store the field where its kind is missing)")
    if field.fallback is not None:
        fallback = stored_as(field, field.fallback)
        if fallback.convert is None and (field.kind, fallback.kind) not in CONVERSIONS:
            problems.append(f"{where}: no conversion from {field.kind} to a {fallback.kind} fallback")
        else:
            problems += _vector_problems(fallback, f"the fallback of {field.name!r}")
    return problems


def stored_as(declared: VectorField, fallback: VectorField) -> VectorField:
    """The fallback, named as the declared field and sized from it."""
    dim = fallback.dim if fallback.dim is not None else declared.dim
    return dataclasses.replace(fallback, name=declared.name, dim=dim, fallback=None)


# -- backends ---------------------------------------------------------------------
# Three engines answer the same client calls and store different things:
# - Milvus Lite 2.x (2.5.1 is the last): the C++ engine (knowhere) in a child
#   process. Float vectors on FLAT, IVF_FLAT and AUTOINDEX only ("local mode
#   only support ..."), binary on BIN_FLAT, float16 and sparse vectors; a
#   collection with a partition-key field refuses every filter.
# - Milvus Lite 3.x: a pure-Python rewrite in our own process. No binary or
#   float16 vectors; it accepts HNSW and IVF_* but lost rows in filtered
#   searches on them (DESIGN.md, Nov 2026).
# - A Milvus server: every index Milvus documents.
# On either Lite engine FLAT is exact and fast enough for the data sizes Lite
# is meant for, so that is what a demo preferring HNSW gets there.
LITE_INDEXES = {"float": ("FLAT",), "sparse": ("SPARSE_INVERTED_INDEX",)}
LITE_CPP_INDEXES = {
    "float": ("FLAT", "IVF_FLAT", "AUTOINDEX"),
    "float16": ("FLAT", "IVF_FLAT", "AUTOINDEX"),
    "binary": ("BIN_FLAT",),
    "sparse": ("SPARSE_INVERTED_INDEX", "SPARSE_WAND"),
}
SERVER_INDEXES = {
    "float": ("HNSW", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "DISKANN", "SCANN", "AUTOINDEX", "FLAT"),
    "float16": ("HNSW", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "DISKANN", "AUTOINDEX", "FLAT"),
    "binary": ("BIN_FLAT", "BIN_IVF_FLAT"),
    "sparse": ("SPARSE_INVERTED_INDEX", "SPARSE_WAND"),
}
DEFAULT_INDEX = {"float": "FLAT", "float16": "FLAT", "binary": "BIN_FLAT", "sparse": "SPARSE_INVERTED_INDEX"}
# HNSW: M=16 links per node and efConstruction=200 are Milvus's documented
# middle ground (build time vs graph quality); a search explores ef =
# max(HNSW_MIN_EF, limit) candidates, which held recall@10 >= 0.99 against
# brute force in tests/test_store.py. IVF: 128 lists, 16 probed.
HNSW_MIN_EF = 64
INDEX_BUILD_PARAMS = {
    "HNSW": {"M": 16, "efConstruction": 200},
    "IVF_FLAT": {"nlist": 128},
    "IVF_SQ8": {"nlist": 128},
    "IVF_PQ": {"nlist": 128, "m": 8},
    "BIN_IVF_FLAT": {"nlist": 128},
}
IVF_NPROBE = 16


@dataclasses.dataclass(frozen=True)
class Backend:
    """What a Milvus deployment can store: "milvus_lite-2.5.1",
    "milvus_lite-3.2.2", "v2.3.5", … (the version the engine reports; Lite
    2.x reports none, so the store names it from the milvus-lite package)."""

    version: str
    is_lite: bool

    @property
    def release(self) -> tuple[int, ...] | None:
        match = re.search(r"(\d+)\.(\d+)\.(\d+)", self.version)
        return tuple(int(part) for part in match.groups()) if match else None

    def at_least(self, *release: int) -> bool:
        return self.release is None or self.release >= release

    @property
    def engine(self) -> Literal["lite-cpp", "lite-python", "server"]:
        """Which of the three engines above answers."""
        if not self.is_lite:
            return "server"
        major = re.search(r"\d+", self.version)
        return "lite-cpp" if major and int(major.group()) < 3 else "lite-python"

    @property
    def vector_kinds(self) -> tuple[str, ...]:
        if self.engine == "lite-python":
            return ("float", "sparse")
        if self.engine == "lite-cpp" or self.at_least(2, 4, 0):  # sparse and float16 came with Milvus 2.4
            return ("float", "float16", "binary", "sparse")
        return ("float", "binary")

    def indexes(self, kind: str) -> tuple[str, ...]:
        offered = {"lite-python": LITE_INDEXES, "lite-cpp": LITE_CPP_INDEXES, "server": SERVER_INDEXES}[self.engine]
        return offered.get(kind, ())

    def scalar_index(self, kind: str) -> str | None:
        """The scalar index type for a field kind, or None where there is none."""
        if kind == "json" or (kind.endswith("_list") and self.is_lite):
            return None  # neither Lite engine indexes an ARRAY field; no backend indexes JSON as a whole
        if self.is_lite or self.at_least(2, 4, 0):
            return "INVERTED"
        # Before 2.4: sorted lists for numbers, a trie for strings, nothing else.
        if kind in ("int", "int32", "int16", "int8", "float", "float32"):
            return "STL_SORT"
        return "Trie" if kind == "str" else None

    @property
    def multiple_vector_fields(self) -> bool:
        """Whether one collection may hold several vector fields (Milvus 2.4+, Lite)."""
        return self.is_lite or self.at_least(2, 4, 0)

    @property
    def tenant_partitions(self) -> bool:
        """Whether the tenant can be a partition key (searches filtered by
        tenant then read only that tenant's partition). Otherwise it is a
        plain field: filters still apply, only the pruning is lost.
        - Lite 2.x refuses every filter on a collection with a partition key
          ("Invalid expr: ... invalid parameter", even `id in [...]`).
        - Milvus servers before 2.3.10 hash the wrong field on upsert
          (milvus-io/milvus#30607): the row lands in another partition and
          every search filtered by tenant misses it."""
        if self.engine == "lite-cpp":
            return False
        return self.is_lite or self.at_least(2, 3, 10)

    @property
    def serial_calls(self) -> bool:
        """Whether calls must go one at a time: Lite 3 runs in this process,
        under our GIL, and is not safe to enter from several threads; Lite 2
        and servers are other processes that serve concurrent calls."""
        return self.engine == "lite-python"


class MissingCapability(Exception):
    """The backend cannot store a field the demo declares, and there is no fallback."""


@dataclasses.dataclass(frozen=True)
class StoredVector:
    """A declared vector field as one backend stores it."""

    declared: VectorField
    stored: VectorField
    index_type: str
    index_params: dict[str, Any]

    @property
    def name(self) -> str:
        return self.declared.name

    def search_params(self, limit: int) -> dict[str, Any]:
        """Per-search index parameters."""
        if self.index_type == "HNSW":
            return {"ef": max(HNSW_MIN_EF, limit)}
        if "IVF" in self.index_type:
            return {"nprobe": IVF_NPROBE}
        return {}


def resolve(field: VectorField, backend: Backend) -> StoredVector:
    """How `backend` stores `field`: as declared, or as its fallback."""
    stored = field
    if field.kind not in backend.vector_kinds:
        if field.fallback is None or field.fallback.kind not in backend.vector_kinds:
            raise MissingCapability(
                f"vector field {field.name!r} is {field.kind}, which Milvus {backend.version} cannot store "
                f"(it stores {', '.join(backend.vector_kinds)} vectors)"
                + ("" if field.fallback is None else f", nor its {field.fallback.kind} fallback")
                + "; declare a fallback VectorField the backend stores, or use a Milvus server that has it"
            )
        stored = stored_as(field, field.fallback)
    preferences = stored.index if stored is field else (stored.index or field.index)
    offered = backend.indexes(stored.kind)
    index_type = next((i.upper() for i in preferences if i.upper() in offered), DEFAULT_INDEX[stored.kind])
    params = {**INDEX_BUILD_PARAMS.get(index_type, {}), **dict(field.index_params.get(index_type, {}))}
    return StoredVector(field, stored, index_type, params)


# -- the Milvus schema ------------------------------------------------------------------
def _datatypes():
    from pymilvus import DataType

    return DataType


SCALAR_TYPES = {
    "str": "VARCHAR",
    "int": "INT64",
    "int32": "INT32",
    "int16": "INT16",
    "int8": "INT8",
    "float": "DOUBLE",
    "float32": "FLOAT",
    "bool": "BOOL",
    "json": "JSON",
    "str_list": "VARCHAR",
    "int_list": "INT64",
    "float_list": "DOUBLE",
}
VECTOR_TYPES = {
    "float": "FLOAT_VECTOR",
    "float16": "FLOAT16_VECTOR",
    "binary": "BINARY_VECTOR",
    "sparse": "SPARSE_FLOAT_VECTOR",
}


def scalar_kwargs(field: ScalarField) -> dict[str, Any]:
    types = _datatypes()
    element = getattr(types, SCALAR_TYPES[field.kind])
    if field.kind.endswith("_list"):
        kwargs = {"datatype": types.ARRAY, "element_type": element, "max_capacity": field.max_items}
        return {**kwargs, "max_length": field.max_length} if field.kind == "str_list" else kwargs
    if field.kind == "str":
        return {"datatype": element, "max_length": field.max_length}
    return {"datatype": element}


def vector_kwargs(field: VectorField) -> dict[str, Any]:
    kwargs: dict[str, Any] = {"datatype": getattr(_datatypes(), VECTOR_TYPES[field.kind])}
    if field.kind != "sparse":
        kwargs["dim"] = field.dim
    return kwargs


def build_schema(
    client,
    scalars: Sequence[ScalarField],
    vectors: Sequence[StoredVector],
    tenant_partitions: bool,
    present: bool = False,
):
    """The Milvus schema of one collection; `present` adds PRESENT_VECTORS
    (the main collection of a demo with several vector fields)."""
    types = _datatypes()
    schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", types.VARCHAR, is_primary=True, max_length=KEY_BYTES)
    for vector in vectors:
        schema.add_field(vector.name, **vector_kwargs(vector.stored))
    schema.add_field("title", types.VARCHAR, max_length=TITLE_BYTES)
    schema.add_field("item", types.VARCHAR, max_length=KEY_BYTES)
    schema.add_field("media", types.VARCHAR, max_length=KEY_BYTES)
    schema.add_field("thumb", types.VARCHAR, max_length=KEY_BYTES)
    schema.add_field("tenant", types.VARCHAR, max_length=KEY_BYTES, is_partition_key=tenant_partitions)
    schema.add_field("created", types.INT64)
    if present:
        schema.add_field(
            PRESENT_VECTORS, types.ARRAY, element_type=types.VARCHAR, max_capacity=16, max_length=KEY_BYTES
        )
    for field in scalars:
        schema.add_field(field.name, **scalar_kwargs(field))
    return schema


def build_indexes(client, scalars: Sequence[ScalarField], vectors: Sequence[StoredVector], backend: Backend):
    params = client.prepare_index_params()
    for vector in vectors:
        params.add_index(
            field_name=vector.name,
            index_type=vector.index_type,
            metric_type=vector.stored.metric,
            params=vector.index_params,
        )
    for field in scalars:
        index_type = backend.scalar_index(field.kind) if field.index else None
        if index_type:
            params.add_index(field_name=field.name, index_type=index_type)
    return params


def schema_problems(
    described: dict[str, Any],
    expected: dict[str, Any],
    vectors: Sequence[StoredVector],
    metrics: Mapping[str, str | None],
) -> list[str]:
    """How a stored collection (describe_collection) differs from the
    expected schema (`build_schema(...).to_dict()`); `metrics` are the
    stored indexes' metric types by vector field."""
    stored = {f["name"]: f for f in described["fields"]}
    by_name = {vector.name: vector.stored for vector in vectors}
    problems = []
    for field in expected["fields"]:
        have = stored.pop(field["name"], None)
        if have is None:
            problems.append(f"field {field['name']!r} is missing")
        elif int(have["type"]) != int(field["type"]):
            problems.append(f"field {field['name']!r} is {have['type'].name}, the demo declares {field['type'].name}")
        elif (
            field["name"] in by_name
            and by_name[field["name"]].dim is not None
            and int(have.get("params", {}).get("dim", 0)) != by_name[field["name"]].dim
        ):
            problems.append(
                f"vector field {field['name']!r} has dim {have['params'].get('dim')}, "
                f"the demo now encodes {by_name[field['name']].dim}"
            )
    problems += [f"field {extra!r} is no longer declared" for extra in stored]
    for name, vector in by_name.items():
        metric = metrics.get(name)
        if metric and metric != vector.metric:
            problems.append(f"vector field {name!r} is indexed for {metric}, the demo declares {vector.metric}")
    return problems


# -- values ------------------------------------------------------------------------------
class VectorRejected(ValueError):
    """An encoder's output does not fit its declared vector field."""


# (declared kind, stored kind) pairs the core converts.
CONVERSIONS = {
    ("float", "float"),
    ("float16", "float16"),
    ("float16", "float"),
    ("binary", "binary"),
    ("binary", "float"),
    ("binary", "sparse"),
    ("sparse", "sparse"),
    ("sparse", "float"),
}


def checked_vector(value: Any, field: VectorField) -> Any:
    """One encoder output, checked against its declaration and normalised:
    float -> float32 array; float16 -> float16 array; binary -> dim/8 packed
    bytes (0/1 arrays of dim values and packed uint8 arrays both accepted);
    sparse -> {index: weight}. Raises VectorRejected naming what is wrong."""
    where = f"vector field {field.name!r}"
    if field.kind == "sparse":
        return _checked_sparse(value, field, where)
    if field.kind == "binary" and isinstance(value, list) and len(value) == 1 and isinstance(value[0], bytes):
        value = value[0]  # as pymilvus reads a binary vector back
    if field.kind == "binary" and isinstance(value, (bytes, bytearray)) and len(value) * 8 == field.dim:
        return bytes(value)
    array = np.asarray(value)
    if field.kind == "binary":
        bits = field.dim or 0
        flat = array.reshape(-1)
        if flat.size == bits // 8 and array.dtype == np.uint8 and bits != 8:
            return flat.tobytes()
        if flat.size != bits:
            raise VectorRejected(
                f"{where} is binary with dim {bits} bits: the encoder returned {flat.size} values "
                f"(give {bits} 0/1 values or {bits // 8} packed bytes)"
            )
        if not np.isin(flat, (0, 1)).all():
            raise VectorRejected(f"{where} is binary: the encoder returned values other than 0 and 1")
        return np.packbits(flat.astype(np.uint8)).tobytes()
    if array.ndim != 1 or array.shape[0] != field.dim:
        raise VectorRejected(f"{where} has dim {field.dim}: the encoder returned shape {array.shape}")
    if not np.isfinite(array.astype(np.float64)).all():
        raise VectorRejected(f"{where}: the encoder returned NaN or infinite values")
    return array.astype(np.float16 if field.kind == "float16" else np.float32)


def _checked_sparse(value: Any, field: VectorField, where: str) -> dict[int, float]:
    if hasattr(value, "tocoo"):  # a scipy sparse row
        coo = value.tocoo()
        value = dict(zip(coo.col.tolist(), coo.data.tolist()))
    if not isinstance(value, Mapping):
        raise VectorRejected(f"{where} is sparse: give {{index: weight}} per item, not {type(value).__name__}")
    weights: dict[int, float] = {}
    for index, weight in value.items():
        if not isinstance(index, (int, np.integer)) or index < 0 or (field.dim and index >= field.dim):
            raise VectorRejected(
                f"{where}: sparse index {index!r} is not a whole number from 0"
                + (f" to {field.dim - 1}" if field.dim else "")
            )
        if not np.isfinite(float(weight)):
            raise VectorRejected(f"{where}: the encoder returned a NaN or infinite weight")
        if float(weight) != 0.0:
            weights[int(index)] = float(weight)
    if not weights:
        raise VectorRejected(f"{where}: the sparse vector has no non-zero weight (nothing in the item matched)")
    return weights


def to_stored(value: Any, vector: StoredVector) -> Any:
    """A checked value of the declared field, in the stored field's kind."""
    declared, stored = vector.declared.kind, vector.stored.kind
    if vector.stored.convert is not None and vector.stored is not vector.declared:
        return checked_vector(vector.stored.convert(value), vector.stored)
    if declared == stored:
        return value
    if declared == "binary":
        bits = np.unpackbits(np.frombuffer(value, dtype=np.uint8))
        if stored == "float":
            return bits.astype(np.float32)
        return {int(i): 1.0 for i in np.flatnonzero(bits)}
    if declared == "sparse":
        dense = np.zeros(vector.stored.dim or 0, dtype=np.float32)
        for index, weight in value.items():
            dense[index] = weight
        return dense
    return np.asarray(value, dtype=np.float32)  # float16 stored as float


def placeholder(vector: StoredVector) -> Any:
    """The value of a vector field a row does not have (never searched: a
    search on the field filters on PRESENT_VECTORS)."""
    kind = vector.stored.kind
    if kind == "binary":
        return bytes((vector.stored.dim or 8) // 8)
    if kind == "sparse":
        return {0: 1e-30}  # Milvus refuses an empty sparse vector
    unit = np.zeros(vector.stored.dim or 1, dtype=np.float16 if kind == "float16" else np.float32)
    unit[0] = 1.0  # not zeros: COSINE has no direction for them
    return unit


def truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = str(text).encode("utf-8")
    if len(encoded) <= max_bytes:
        return str(text)
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


_DEFAULTS = {"str": "", "json": {}, "bool": False}
# A Milvus server's JSON field takes objects only ("cannot unmarshal array"
# on 2.3); any other JSON value is stored inside one under this key and
# taken out again when read, so a demo's json field holds any JSON value on
# every backend.
JSON_VALUE_KEY = "$value"


def scalar_value(field: ScalarField, value: Any) -> Any:
    """Fit a value to its field so one long title cannot fail a batch."""
    kind = field.kind
    if value is None:
        value = [] if kind.endswith("_list") else _DEFAULTS.get(kind, 0)
    if kind == "str":
        return truncate_utf8(value, field.max_length)
    if kind == "str_list":
        return [truncate_utf8(v, field.max_length) for v in list(value)[: field.max_items]]
    if kind == "int_list":
        return [int(v) for v in list(value)[: field.max_items]]
    if kind == "float_list":
        return [float(v) for v in list(value)[: field.max_items]]
    if kind == "json":
        return value if isinstance(value, dict) else {JSON_VALUE_KEY: value}
    if kind.startswith("int"):
        return int(value)
    if kind.startswith("float"):
        return float(value)
    return bool(value)


def core_values(row: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": row["id"],
        "title": truncate_utf8(row.get("title") or "", TITLE_BYTES),
        "item": row["item"],
        "media": row.get("media") or "",
        "thumb": row.get("thumb") or "",
        "tenant": row["tenant"],
        "created": int(row.get("created") or time.time()),
    }


def restore_json(scalars: Sequence[ScalarField], row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the demo wrote it (JSON values taken out of their wrapper)."""
    for field in scalars:
        if field.kind == "json":
            value = row.get(field.name)
            if isinstance(value, dict) and len(value) == 1 and JSON_VALUE_KEY in value:
                row[field.name] = value[JSON_VALUE_KEY]
    return row


def distance_to_score(distance: float, metric: str, dim: int | None = None) -> float:
    """Hits are "higher is better" whatever the metric: COSINE and IP as
    Milvus gives them, 1 - JACCARD distance (Tanimoto for fingerprints), the
    share of equal bits for HAMMING, 1 / (1 + d) for L2."""
    if metric == "COSINE":
        return min(1.0, max(-1.0, distance))  # knowhere's rounding gives 1.0000001 for a vector and itself
    if metric == "IP":
        return distance
    if metric == "JACCARD":
        return 1.0 - distance
    if metric == "HAMMING" and dim:
        return 1.0 - distance / dim
    return 1.0 / (1.0 + max(distance, 0.0))
