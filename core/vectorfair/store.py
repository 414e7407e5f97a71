"""Vectors and their scalar fields in Milvus: one collection per demo.

The same code runs embedded Milvus Lite (`uri` is a path) and a Milvus server
(`uri` is http://host:19530). Every call goes through `Store.call`, which turns
"Milvus is not there" into `StoreUnavailable` (answered as 503) and drops the
client so the next call reconnects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import re
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .demo import Demo, Field
from .expr import in_list
from .settings import MilvusSettings

log = logging.getLogger("vectorfair.store")
T = TypeVar("T")

PUBLIC_TENANT = "public"
# Milvus Lite 3.x accepts HNSW and IVF_* but lost rows in filtered searches on
# them (DESIGN.md, measured Nov 2026); FLAT is exact and fast enough for the
# data sizes Lite is meant for. A server takes every index Milvus documents.
LITE_INDEXES = ("FLAT",)
SERVER_INDEXES = ("HNSW", "IVF_FLAT", "IVF_SQ8", "IVF_PQ", "DISKANN", "SCANN", "AUTOINDEX", "FLAT")
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
}
IVF_NPROBE = 16
# Consistency level per kind of read (a Milvus server; Lite reads its own
# writes whatever the level). Measured on Milvus 2.3.5 here
# (bench/consistency.py): Strong waits for the next time tick, ~200 ms a
# call; Session costs ~1 ms, and ~200 ms only on the first read after this
# process's own write; Bounded (the server default) misses writes of the last
# moments. Session sees everything this process wrote, which is what makes
# "upload, then search / count" right. Rows are upserted by their content
# key, so a duplicate check that misses a fresh row costs a re-encode, never
# a second copy. Strong is kept for reads that must see what Session cannot
# promise: the first check of a resumed job (another, crashed process wrote
# before it) and the read that follows a delete (a 2.3 server returns no
# timestamp for a delete, so Session does not wait for it).
READ_CONSISTENCY = "Session"
CATCH_UP_CONSISTENCY = "Strong"
TITLE_BYTES = 1024
KEY_BYTES = 64
# Values in one filter expression when deleting (or looking up) many rows by a field.
DELETE_CHUNK = 500


class StoreUnavailable(Exception):
    """Milvus cannot be reached; the caller should retry later."""


class SchemaMismatch(Exception):
    """The stored collection was built for another version of the demo."""


@dataclasses.dataclass
class CollectionInfo:
    name: str
    index_type: str
    index_params: dict[str, Any] = dataclasses.field(default_factory=dict)

    def search_params(self, limit: int) -> dict[str, Any]:
        """Per-search index parameters for this collection's index."""
        if self.index_type == "HNSW":
            return {"ef": max(HNSW_MIN_EF, limit)}
        if self.index_type.startswith("IVF"):
            return {"nprobe": IVF_NPROBE}
        return {}


def is_lite_uri(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))


class Store:
    def __init__(self, settings: MilvusSettings):
        self.settings = settings
        self._client = None
        self._lock = threading.RLock()
        self._backend: str | None = None
        self.last_error: str | None = None
        self.auth_failed = False
        self.collections: dict[str, CollectionInfo] = {}

    # -- connection ------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def is_lite(self) -> bool:
        return is_lite_uri(self.settings.uri) or (self._backend or "").startswith("milvus_lite")

    @property
    def backend(self) -> str:
        """What answers: "milvus_lite-3.2.2", "v2.3.5", … ("" before the first connection)."""
        return self._backend or ""

    @property
    def upsert_routes_partition_keys(self) -> bool:
        """Whether the backend's upsert puts a row in its partition key's
        partition. Milvus servers before 2.3.10 hash the wrong field
        (milvus-io/milvus#30607): the row lands in another partition and
        every search filtered by tenant misses it. On those the tenant is a
        plain field: filters still apply, only partition pruning is lost."""
        version = _version_tuple(self._backend or "")
        return self.is_lite or version is None or version >= (2, 3, 10)

    def _connect(self):
        from pymilvus import MilvusClient

        uri = self.settings.uri
        if is_lite_uri(uri):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
            quiet_lite_grpc_noise()
        client = MilvusClient(uri=uri, token=self.settings.token, timeout=self.settings.timeout)
        self._backend = str(client.get_server_version())
        log.info("connected to Milvus %s at %s", self._backend, uri)
        return client

    def connect(self) -> bool:
        """Connect if not connected; True when Milvus answers. When Milvus
        refuses the credentials, `auth_failed` is set: waiting will not help."""
        with self._lock:
            if self._client is not None:
                return True
            try:
                self._client = self._connect()
                self.last_error = None
                self.auth_failed = False
                return True
            except Exception as exc:
                self.auth_failed = is_auth_failure(exc)
                if self.auth_failed:
                    message = auth_failure_message(self.settings.uri, exc)
                    if message != self.last_error:  # once, not at every reconnect attempt
                        log.error("%s", message)
                    self.last_error = message
                    return False
                self.last_error = f"{type(exc).__name__}: {exc}"
                log.warning("Milvus at %s is not reachable: %s", self.settings.uri, self.last_error)
                return False

    def disconnect(self) -> None:
        with self._lock:
            client, self._client = self._client, None
            self.collections.clear()
            if client is not None:
                try:
                    client.close()
                except Exception:
                    pass

    def ping(self) -> bool:
        with self._lock:
            if self._client is None:
                return self.connect()
            try:
                self._client.list_collections()
                return True
            except Exception as exc:
                self.last_error = f"{type(exc).__name__}: {exc}"
                self.disconnect()
                return False

    def call(self, fn: Callable[[Any], T]) -> T:
        client = self._client
        if client is None:
            if not self.connect():
                raise StoreUnavailable(self.unavailable_message())
            client = self._client
        # Embedded Lite is one in-process engine: serialise calls into it. A
        # server's client is thread-safe and gains from concurrent calls.
        with self._lock if self.is_lite else contextlib.nullcontext():
            try:
                return fn(client)
            except Exception:
                # A failed call may be a bad request or a Milvus that went away:
                # a ping tells them apart.
                if self.ping():
                    raise
                raise StoreUnavailable(self.unavailable_message()) from None

    def unavailable_message(self) -> str:
        if self.auth_failed:
            return self.last_error or AUTH_FAILURE_PREFIX
        return (
            f"Milvus at {self.settings.uri} is not reachable ({self.last_error}); "
            "retry shortly — the server reconnects by itself"
        )

    # -- collections -------------------------------------------------------------
    def collection_name(self, demo: Demo) -> str:
        return f"{self.settings.collection_prefix}_{demo.name}"

    def supported_indexes(self) -> Sequence[str]:
        return LITE_INDEXES if self.is_lite else SERVER_INDEXES

    def choose_index(self, demo: Demo) -> str:
        supported = self.supported_indexes()
        for index_type in demo.index_preferences:
            if index_type.upper() in supported:
                return index_type.upper()
        return "FLAT"

    def ensure_collection(self, demo: Demo) -> CollectionInfo:
        """Create the demo's collection, or check that the stored one still fits."""
        name = self.collection_name(demo)

        def ensure(client):
            if client.has_collection(name):
                self._check_schema(client, name, demo)
                described = client.describe_index(name, "vector")
                index_type = described.get("index_type", "?")
                index_params = {k: _number(described[k]) for k in INDEX_BUILD_PARAMS.get(index_type, {}) if k in described}
            else:
                index_type = self.choose_index(demo)
                index_params = INDEX_BUILD_PARAMS.get(index_type, {})
                client.create_collection(
                    name, schema=self._schema(client, demo), index_params=self._index_params(client, demo, index_type)
                )
                log.info("created collection %s (%s %s, %s, dim %d)", name, index_type, index_params or "",
                         demo.metric, demo.dim)
            client.load_collection(name)
            return CollectionInfo(name, index_type, dict(index_params))

        info = self.call(ensure)
        self.collections[demo.name] = info
        return info

    def _schema(self, client, demo: Demo):
        from pymilvus import DataType

        schema = client.create_schema(auto_id=False, enable_dynamic_field=False)
        schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=KEY_BYTES)
        schema.add_field("vector", DataType.FLOAT_VECTOR, dim=demo.dim)
        schema.add_field("title", DataType.VARCHAR, max_length=TITLE_BYTES)
        schema.add_field("item", DataType.VARCHAR, max_length=KEY_BYTES)
        schema.add_field("media", DataType.VARCHAR, max_length=KEY_BYTES)
        schema.add_field("thumb", DataType.VARCHAR, max_length=KEY_BYTES)
        schema.add_field("tenant", DataType.VARCHAR, max_length=KEY_BYTES, is_partition_key=self.upsert_routes_partition_keys)
        schema.add_field("created", DataType.INT64)
        for field in demo.fields:
            schema.add_field(field.name, **_field_kwargs(field))
        return schema

    def _index_params(self, client, demo: Demo, index_type: str):
        params = client.prepare_index_params()
        params.add_index(
            field_name="vector", index_type=index_type, metric_type=demo.metric,
            params=INDEX_BUILD_PARAMS.get(index_type, {}),
        )
        return params

    def _check_schema(self, client, name: str, demo: Demo) -> None:
        description = client.describe_collection(name)
        stored = {f["name"]: f for f in description["fields"]}
        expected = self._schema(client, demo).to_dict()["fields"]
        problems = []
        for field in expected:
            have = stored.pop(field["name"], None)
            if have is None:
                problems.append(f"field {field['name']!r} is missing")
                continue
            if int(have["type"]) != int(field["type"]):
                problems.append(f"field {field['name']!r} is {have['type'].name}, the demo declares {field['type'].name}")
            elif field["name"] == "vector" and int(have["params"].get("dim", 0)) != demo.dim:
                problems.append(f"vector dim is {have['params'].get('dim')}, the demo now encodes {demo.dim}")
        problems += [f"field {extra!r} is no longer declared" for extra in stored]
        metric = client.describe_index(name, "vector").get("metric_type")
        if metric and metric != demo.metric:
            problems.append(f"metric is {metric}, the demo declares {demo.metric}")
        if problems:
            raise SchemaMismatch(
                f"collection {name} does not match demo {demo.name!r}: {'; '.join(problems)}. "
                f"Its data was made by another version of the plugin or model. Either run "
                f"`vectorfair drop {demo.name}` (deletes its data) and load it again, or set "
                f"[milvus] collection_prefix to a new value to keep the old data aside."
            )

    # -- rows --------------------------------------------------------------------
    def output_fields(self, demo: Demo) -> list[str]:
        return ["id", "title", "item", "media", "thumb", "tenant", "created", *(f.name for f in demo.fields)]

    def insert(self, demo: Demo, rows: list[dict[str, Any]]) -> None:
        """Store rows, replacing any stored row with the same id. Ids are
        content keys, so two uploads of one item racing each other (or a job
        resumed over rows a crashed run stored) leave one copy: a Milvus
        server does not enforce unique primary keys on insert."""
        if not rows:
            return
        cleaned = [_clean_row(demo, row) for row in rows]
        name = self.collection_name(demo)
        self.call(lambda client: client.upsert(name, cleaned))

    def settle(self, demo: Demo) -> None:
        """Call after a batch of inserts. Milvus Lite scans rows that are not
        flushed on every search and filtered query (3 s per search at 10k
        2048-d rows here, 0.07 s once flushed), so flush it; a server seals
        its segments by itself and dislikes frequent flushes."""
        if self.is_lite:
            name = self.collection_name(demo)
            self.call(lambda client: client.flush(name))

    def search(self, demo: Demo, vector: np.ndarray, limit: int, expression: str = "") -> list[dict[str, Any]]:
        name = self.collection_name(demo)
        info = self.collections.get(demo.name, CollectionInfo(name, "FLAT"))
        params: dict[str, Any] = {"metric_type": demo.metric, "params": info.search_params(limit)}

        def run(client):
            return client.search(
                name, data=[np.asarray(vector, dtype=np.float32).tolist()], limit=limit,
                filter=expression, output_fields=self.output_fields(demo), search_params=params,
                anns_field="vector", consistency_level=READ_CONSISTENCY,
            )

        result = self.call(run)
        return [_restore_row(demo, {**hit["entity"], "id": hit["id"], "distance": hit["distance"]})
                for hit in result[0]]

    def get(self, demo: Demo, row_id: str) -> dict[str, Any] | None:
        # Not client.get(ids=...): pymilvus puts the id into its filter
        # unescaped, so a backslash in a requested id breaks the expression.
        rows = self.query(demo, in_list("id", [row_id]), self.output_fields(demo), limit=1)
        return rows[0] if rows else None

    def query(self, demo: Demo, expression: str, fields: Sequence[str], limit: int = 16384,
              catch_up: bool = False) -> list[dict[str, Any]]:
        """Rows matching `expression`. `catch_up`: see every write Milvus has
        accepted, from any process (Strong, ~200 ms on a server), not only
        this process's own."""
        name = self.collection_name(demo)
        level = CATCH_UP_CONSISTENCY if catch_up else READ_CONSISTENCY
        return [_restore_row(demo, dict(r)) for r in self.call(
            lambda client: client.query(name, filter=expression, output_fields=list(fields), limit=limit,
                                        consistency_level=level)
        )]

    def count(self, demo: Demo, expression: str = "") -> int:
        # count(*) rather than num_entities: a server counts deleted rows in
        # num_entities until compaction.
        name = self.collection_name(demo)
        rows = self.call(lambda client: client.query(name, filter=expression, output_fields=["count(*)"],
                                                     consistency_level=READ_CONSISTENCY))
        return int(rows[0]["count(*)"]) if rows else 0

    def delete(self, demo: Demo, expression: str) -> None:
        self._delete(demo, [expression])

    def delete_ids(self, demo: Demo, ids: Sequence[str]) -> None:
        """Delete rows by id, DELETE_CHUNK ids to a filter expression."""
        self._delete(demo, [in_list("id", list(ids[start:start + DELETE_CHUNK]))
                            for start in range(0, len(ids), DELETE_CHUNK)])

    def _delete(self, demo: Demo, expressions: list[str]) -> None:
        name = self.collection_name(demo)

        def run(client):
            for expression in expressions:
                client.delete(name, filter=expression)
            if expressions and not self.is_lite:
                # Session reads follow the last write's timestamp, but a 2.3
                # server answers a delete without one, so the next read could
                # still see the deleted rows. One catch-up read, after all the
                # deletes, waits until they are applied; every later read sees them.
                client.query(name, filter=expressions[-1], output_fields=["count(*)"],
                             consistency_level=CATCH_UP_CONSISTENCY)

        self.call(run)

    def drop(self, demo: Demo) -> None:
        name = self.collection_name(demo)
        self.call(lambda client: client.drop_collection(name) if client.has_collection(name) else None)
        self.collections.pop(demo.name, None)


def _field_kwargs(field: Field) -> dict[str, Any]:
    from pymilvus import DataType

    if field.kind == "str":
        return {"datatype": DataType.VARCHAR, "max_length": field.max_length}
    if field.kind == "int":
        return {"datatype": DataType.INT64}
    if field.kind == "float":
        return {"datatype": DataType.DOUBLE}
    if field.kind == "bool":
        return {"datatype": DataType.BOOL}
    if field.kind == "json":
        return {"datatype": DataType.JSON}
    if field.kind == "str_list":
        return {
            "datatype": DataType.ARRAY, "element_type": DataType.VARCHAR,
            "max_capacity": field.max_items, "max_length": field.max_length,
        }
    if field.kind == "int_list":
        return {"datatype": DataType.ARRAY, "element_type": DataType.INT64, "max_capacity": field.max_items}
    if field.kind == "float_list":
        return {"datatype": DataType.ARRAY, "element_type": DataType.DOUBLE, "max_capacity": field.max_items}
    raise ValueError(f"unknown field kind {field.kind!r}")


def truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = str(text).encode("utf-8")
    if len(encoded) <= max_bytes:
        return str(text)
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


_DEFAULTS = {"str": "", "int": 0, "float": 0.0, "bool": False, "json": {}, "str_list": [], "int_list": [],
             "float_list": []}
# A Milvus server's JSON field takes objects only ("cannot unmarshal array"
# on 2.3); any other JSON value is stored inside one under this key and
# taken out again when read, so a demo's json field holds any JSON value on
# every backend.
JSON_VALUE_KEY = "$value"


def _clean_row(demo: Demo, row: dict[str, Any]) -> dict[str, Any]:
    """Fit values to the declared fields so one long title cannot fail a batch."""
    cleaned = {
        "id": row["id"],
        "vector": np.asarray(row["vector"], dtype=np.float32),
        "title": truncate_utf8(row.get("title") or "", TITLE_BYTES),
        "item": row["item"],
        "media": row.get("media") or "",
        "thumb": row.get("thumb") or "",
        "tenant": row.get("tenant") or PUBLIC_TENANT,
        "created": int(row.get("created") or time.time()),
    }
    for field in demo.fields:
        value = row.get(field.name)
        if value is None:
            value = _DEFAULTS[field.kind]
        if field.kind == "str":
            value = truncate_utf8(value, field.max_length)
        elif field.kind == "str_list":
            value = [truncate_utf8(v, field.max_length) for v in list(value)[: field.max_items]]
        elif field.kind == "int_list":
            value = [int(v) for v in list(value)[: field.max_items]]
        elif field.kind == "float_list":
            value = [float(v) for v in list(value)[: field.max_items]]
        elif field.kind == "json" and not isinstance(value, dict):
            value = {JSON_VALUE_KEY: value}
        elif field.kind == "int":
            value = int(value)
        elif field.kind == "float":
            value = float(value)
        elif field.kind == "bool":
            value = bool(value)
        cleaned[field.name] = value
    return cleaned


def _restore_row(demo: Demo, row: dict[str, Any]) -> dict[str, Any]:
    """A stored row as the demo wrote it (JSON values taken out of their wrapper)."""
    for field in demo.fields:
        if field.kind == "json":
            value = row.get(field.name)
            if isinstance(value, dict) and len(value) == 1 and JSON_VALUE_KEY in value:
                row[field.name] = value[JSON_VALUE_KEY]
    return row


def _number(text: Any) -> Any:
    """An index parameter as describe_index gives it (a string) back as a number."""
    try:
        return int(text)
    except (TypeError, ValueError):
        try:
            return float(text)
        except (TypeError, ValueError):
            return text


AUTH_FAILURE_PREFIX = "Milvus refused the credentials"


def is_auth_failure(exc: BaseException) -> bool:
    """Whether Milvus refused the credentials. pymilvus reports a refused
    token as "Fail connecting to server"; the gRPC error under it says
    UNAUTHENTICATED ("auth check failure"), so look through the chain."""
    return _auth_cause(exc) is not None


def _auth_cause(exc: BaseException) -> BaseException | None:
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen and len(seen) < 50:  # the chain may loop
        seen.add(id(exc))
        code = getattr(exc, "code", None)
        status = code() if callable(code) else code
        if getattr(status, "name", None) == "UNAUTHENTICATED" or status == 1800 or "auth check fail" in str(exc).lower():
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def auth_failure_message(uri: str, exc: BaseException) -> str:
    cause = _auth_cause(exc) or exc
    details = getattr(cause, "details", None)
    detail = (details() if callable(details) else None) or getattr(cause, "message", None) or str(cause)
    return (f"{AUTH_FAILURE_PREFIX} at {uri} ({detail}). Set VECTORFAIR_MILVUS__TOKEN (or [milvus] token) to "
            "\"user:password\" of a Milvus user, or to an API key, then start again")


class _KnownLiteNoise(logging.Filter):
    """Milvus Lite's in-process gRPC server logs a traceback when pymilvus
    asks it for a timestamp (a call Lite does not implement; pymilvus then
    does without). Nothing is wrong, but a plugin author reading the
    traceback assumes their plugin broke."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        return not (isinstance(exc, NotImplementedError) and "Method not implemented" in str(exc))


_LITE_NOISE = _KnownLiteNoise()


def quiet_lite_grpc_noise() -> None:
    grpc_log = logging.getLogger("grpc._server")
    if _LITE_NOISE not in grpc_log.filters:
        grpc_log.addFilter(_LITE_NOISE)


def _version_tuple(text: str) -> tuple[int, ...] | None:
    """(2, 3, 5) from a server version such as "v2.3.5-lite"; None when unknown."""
    match = re.search(r"(\d+)\.(\d+)\.(\d+)", text)
    return tuple(int(part) for part in match.groups()) if match else None
