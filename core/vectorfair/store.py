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
INDEX_BUILD_PARAMS = {
    "HNSW": {"M": 16, "efConstruction": 200},
    "IVF_FLAT": {"nlist": 128},
    "IVF_SQ8": {"nlist": 128},
    "IVF_PQ": {"nlist": 128, "m": 8},
}
TITLE_BYTES = 1024
KEY_BYTES = 64


class StoreUnavailable(Exception):
    """Milvus cannot be reached; the caller should retry later."""


class SchemaMismatch(Exception):
    """The stored collection was built for another version of the demo."""


@dataclasses.dataclass
class CollectionInfo:
    name: str
    index_type: str


def is_lite_uri(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))


class Store:
    def __init__(self, settings: MilvusSettings):
        self.settings = settings
        self._client = None
        self._lock = threading.RLock()
        self._backend: str | None = None
        self.last_error: str | None = None
        self.collections: dict[str, CollectionInfo] = {}

    # -- connection ------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def is_lite(self) -> bool:
        return is_lite_uri(self.settings.uri) or (self._backend or "").startswith("milvus_lite")

    def _connect(self):
        from pymilvus import MilvusClient

        uri = self.settings.uri
        if is_lite_uri(uri):
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
        client = MilvusClient(uri=uri, token=self.settings.token, timeout=self.settings.timeout)
        self._backend = str(client.get_server_version())
        log.info("connected to Milvus %s at %s", self._backend, uri)
        return client

    def connect(self) -> bool:
        """Connect if not connected; True when Milvus answers."""
        with self._lock:
            if self._client is not None:
                return True
            try:
                self._client = self._connect()
                self.last_error = None
                return True
            except Exception as exc:
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
                index_type = client.describe_index(name, "vector").get("index_type", "?")
            else:
                index_type = self.choose_index(demo)
                client.create_collection(
                    name, schema=self._schema(client, demo), index_params=self._index_params(client, demo, index_type)
                )
                log.info("created collection %s (%s, %s, dim %d)", name, index_type, demo.metric, demo.dim)
            client.load_collection(name)
            return CollectionInfo(name, index_type)

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
        schema.add_field("tenant", DataType.VARCHAR, max_length=KEY_BYTES, is_partition_key=True)
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
        if not rows:
            return
        cleaned = [_clean_row(demo, row) for row in rows]
        name = self.collection_name(demo)
        self.call(lambda client: client.insert(name, cleaned))

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
        index_type = self.collections.get(demo.name, CollectionInfo(name, "FLAT")).index_type
        params: dict[str, Any] = {"metric_type": demo.metric}
        if index_type == "HNSW":
            params["params"] = {"ef": max(64, limit)}
        elif index_type.startswith("IVF"):
            params["params"] = {"nprobe": 16}

        def run(client):
            return client.search(
                name, data=[np.asarray(vector, dtype=np.float32).tolist()], limit=limit,
                filter=expression, output_fields=self.output_fields(demo), search_params=params,
                anns_field="vector",
            )

        result = self.call(run)
        return [{**hit["entity"], "id": hit["id"], "distance": hit["distance"]} for hit in result[0]]

    def get(self, demo: Demo, row_id: str) -> dict[str, Any] | None:
        # Not client.get(ids=...): pymilvus puts the id into its filter
        # unescaped, so a backslash in a requested id breaks the expression.
        rows = self.query(demo, in_list("id", [row_id]), self.output_fields(demo), limit=1)
        return rows[0] if rows else None

    def query(self, demo: Demo, expression: str, fields: Sequence[str], limit: int = 16384) -> list[dict[str, Any]]:
        name = self.collection_name(demo)
        return [dict(r) for r in self.call(
            lambda client: client.query(name, filter=expression, output_fields=list(fields), limit=limit)
        )]

    def count(self, demo: Demo, expression: str = "") -> int:
        # count(*) rather than num_entities: a server counts deleted rows in
        # num_entities until compaction.
        name = self.collection_name(demo)
        rows = self.call(lambda client: client.query(name, filter=expression, output_fields=["count(*)"]))
        return int(rows[0]["count(*)"]) if rows else 0

    def delete(self, demo: Demo, expression: str) -> None:
        name = self.collection_name(demo)
        self.call(lambda client: client.delete(name, filter=expression))

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
    raise ValueError(f"unknown field kind {field.kind!r}")


def truncate_utf8(text: str, max_bytes: int) -> str:
    encoded = str(text).encode("utf-8")
    if len(encoded) <= max_bytes:
        return str(text)
    return encoded[:max_bytes].decode("utf-8", errors="ignore")


_DEFAULTS = {"str": "", "int": 0, "float": 0.0, "bool": False, "json": {}, "str_list": []}


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
        elif field.kind == "int":
            value = int(value)
        elif field.kind == "float":
            value = float(value)
        elif field.kind == "bool":
            value = bool(value)
        cleaned[field.name] = value
    return cleaned
