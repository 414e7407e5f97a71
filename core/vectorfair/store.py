"""Vectors and their scalar fields in Milvus: one collection per demo.

The same code runs embedded Milvus Lite (`uri` is a path) and a Milvus server
(`uri` is http://host:19530). Every call goes through `Store.call`, which turns
"Milvus is not there" into `StoreUnavailable` (answered as 503) and drops the
client so the next call reconnects.
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib.metadata
import logging
import threading
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from .contract import vector_fields
from .demo import Demo
from .expr import all_of, in_list
from .schema import (
    INDEX_BUILD_PARAMS,
    PRESENT_VECTORS,
    Backend,
    MissingCapability,
    StoredVector,
    build_indexes,
    build_schema,
    checked_vector,
    core_values,
    distance_to_score,
    placeholder,
    resolve,
    restore_json,
    scalar_value,
    schema_problems,
    to_stored,
)
from .settings import MilvusSettings

log = logging.getLogger("vectorfair.store")
# milvus-lite 2.5 imports pkg_resources at import; the deprecation is its own
# affair and says nothing to a user of ours.
warnings.filterwarnings("ignore", message="pkg_resources is deprecated", category=UserWarning, module="milvus_lite")
T = TypeVar("T")

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
# Values in one filter expression when deleting (or looking up) many rows by a field.
DELETE_CHUNK = 500


class StoreUnavailable(Exception):
    """Milvus cannot be reached; the caller should retry later."""


class SchemaMismatch(Exception):
    """The stored collection was built for another version of the demo."""


@dataclasses.dataclass
class CollectionInfo:
    """A demo's collection as created or found: its vector fields as this
    backend stores them, by name, the first being the default for searches."""

    name: str
    vectors: dict[str, StoredVector]
    scalar_indexes: dict[str, str] = dataclasses.field(default_factory=dict)
    # The collection each vector field is searched in: the main one, or a
    # companion on a backend with one vector field per collection.
    homes: dict[str, str] = dataclasses.field(default_factory=dict)

    def names(self) -> list[str]:
        """Every collection of the demo, the main one first."""
        return list(dict.fromkeys([self.name, *self.homes.values()]))

    def members(self) -> dict[str, list[StoredVector]]:
        """The vector fields each collection holds, by collection, the main one first."""
        return {name: [v for v in self.vectors.values() if self.homes[v.name] == name] for name in self.names()}

    def where(self, field: str, expression: str = "") -> tuple[str, str]:
        """The collection to read vector field `field` from, and `expression`
        narrowed to the rows that have that field: in the main collection of a
        demo with several vector fields the others hold placeholders."""
        name = self.homes.get(field, self.name)
        if name == self.name and len(self.vectors) > 1:
            expression = all_of(f'array_contains({PRESENT_VECTORS}, "{field}")', expression)
        return name, expression

    def vector(self, field: str | None = None) -> StoredVector:
        if field is None:
            return next(iter(self.vectors.values()))
        try:
            return self.vectors[field]
        except KeyError:
            raise ValueError(f"no vector field {field!r}; the demo declares {', '.join(self.vectors)}") from None


def is_lite_uri(uri: str) -> bool:
    return not uri.startswith(("http://", "https://", "tcp://", "grpc://", "unix:"))


LITE_VERSION_PREFIX = "milvus_lite-"
# pymilvus pings every 10 s, even with no call under way. Lite 2's gRPC server
# keeps gRPC's defaults (no pings without data more often than every 5
# minutes, 2 strikes): an idle client is sent GOAWAY "too_many_pings" and its
# next calls wait for a new connection. Lite is a local socket or loopback:
# nothing there needs keepalive pings.
LITE_GRPC_OPTIONS = {"grpc.keepalive_time_ms": 2**31 - 1, "grpc.keepalive_permit_without_calls": 0}


def engine_version(client) -> str:
    """What the engine says it is. Milvus Lite 2.x does not implement the
    call (UNIMPLEMENTED, the only engine that lacks it), so it is named from
    the milvus-lite package that started it."""
    try:
        return str(client.get_server_version())
    except Exception as exc:
        if _grpc_status(exc) != "UNIMPLEMENTED":
            raise
    return LITE_VERSION_PREFIX + (installed_lite() or "2")  # "2": a Lite 2 server started from elsewhere


def _grpc_status(exc: BaseException) -> str | None:
    code = getattr(exc, "code", None)
    status = code() if callable(code) else code
    return getattr(status, "name", None)


class LiteFileOfOtherEngine(Exception):
    """The Milvus Lite database at the configured path was written by the
    other Lite engine, which cannot read it."""


def installed_lite() -> str | None:
    """The version of the milvus-lite package installed here, if any: 2.x is
    the C++ engine, 3.x the pure-Python one."""
    try:
        return importlib.metadata.version("milvus-lite")
    except importlib.metadata.PackageNotFoundError:
        return None


def check_lite_file(path: Path) -> None:
    """Lite 3 keeps a database as a directory, Lite 2 as one file; each
    fails to open the other's with "Open local milvus failed" and nothing
    more. Say which engine wrote it and what to do instead."""
    installed = installed_lite()
    if installed is None or not path.exists():
        return
    if path.is_dir() == (Backend(LITE_VERSION_PREFIX + installed, True).engine == "lite-python"):
        return
    writer, needs = ("Milvus Lite 3 (a directory)", "3") if path.is_dir() else ("Milvus Lite 2 (one file)", "2.5")
    raise LiteFileOfOtherEngine(
        f"{path} was written by {writer}, and this install runs milvus-lite {installed}, which cannot read it. "
        f"Either move it aside (or set [milvus] uri to another path; the sample data loads again by itself), "
        f"or install the engine that wrote it: pip install 'milvus-lite=={needs}.*'"
    )


class Store:
    def __init__(self, settings: MilvusSettings):
        self.settings = settings
        self._client = None
        self._lock = threading.RLock()
        self._schema_lock = threading.RLock()
        self._backend: str | None = None
        self.last_error: str | None = None
        self.cannot_recover = False
        self.collections: dict[str, CollectionInfo] = {}
        self._counts = _CountCache(enabled=is_lite_uri(settings.uri))

    # -- connection ------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._client is not None

    @property
    def is_lite(self) -> bool:
        return is_lite_uri(self.settings.uri) or (self._backend or "").startswith(LITE_VERSION_PREFIX)

    @property
    def backend(self) -> str:
        """What answers: "milvus_lite-2.5.1", "milvus_lite-3.2.2", "v2.3.5", … ("" before the first connection)."""
        return self._backend or ""

    @property
    def backend_info(self) -> Backend:
        """What the connected backend can store (indexes, vector kinds)."""
        return Backend(self._backend or "", self.is_lite)

    def _connect(self):
        uri = self.settings.uri
        lite = is_lite_uri(uri)
        if lite:
            Path(uri).parent.mkdir(parents=True, exist_ok=True)
            check_lite_file(Path(uri))
        quiet_lite_noise()  # also for a Lite engine served over TCP
        client = self._client_for(uri, lite)
        try:
            self._backend = engine_version(client)
            if not lite and Backend(self._backend, True).engine == "lite-cpp":
                client.close()  # a Lite 2 engine served over TCP: again without keepalive pings
                client = self._client_for(uri, True)
        except Exception:
            client.close()
            raise
        log.info("connected to Milvus %s at %s", self._backend, uri)
        return client

    def _client_for(self, uri: str, lite: bool):
        from pymilvus import MilvusClient

        options = {"grpc_options": LITE_GRPC_OPTIONS} if lite else {}
        return MilvusClient(uri=uri, token=self.settings.token, timeout=self.settings.timeout, **options)

    def connect(self) -> bool:
        """Connect if not connected; True when Milvus answers. When Milvus
        refuses the credentials, or the Lite database is the other engine's,
        `cannot_recover` is set: waiting will not help."""
        with self._lock:
            if self._client is not None:
                return True
            try:
                self._client = self._connect()
                self.last_error = None
                self.cannot_recover = False
                return True
            except Exception as exc:
                self.cannot_recover = is_auth_failure(exc) or isinstance(exc, LiteFileOfOtherEngine)
                if self.cannot_recover:
                    message = (
                        str(exc)
                        if isinstance(exc, LiteFileOfOtherEngine)
                        else auth_failure_message(self.settings.uri, exc)
                    )
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

    def call(self, fn: Callable[[Any], T], again: bool = True) -> T:
        client = self._client
        if client is None:
            if not self.connect():
                raise StoreUnavailable(self.unavailable_message())
            client = self._client
        # Lite 3 runs in this process: calls into it go one at a time. Lite 2
        # and servers are other processes; their client is thread-safe and
        # gains from concurrent calls.
        with self._lock if self.backend_info.serial_calls else contextlib.nullcontext():
            try:
                return fn(client)
            except Exception:
                # A failed call may be a bad request or a Milvus that went away:
                # a ping tells them apart.
                replaced = client is not self._client
                if self.ping():
                    if replaced and again:
                        # Another thread dropped this client (a failed ping)
                        # under the call: once more on the new one. Every call
                        # is safe to repeat: rows are upserted by id.
                        return self.call(fn, again=False)
                    raise
                raise StoreUnavailable(self.unavailable_message()) from None

    def unavailable_message(self) -> str:
        if self.cannot_recover:
            return self.last_error or AUTH_FAILURE_PREFIX
        return (
            f"Milvus at {self.settings.uri} is not reachable ({self.last_error}); "
            "retry shortly — the server reconnects by itself"
        )

    # -- collections -------------------------------------------------------------
    def collection_name(self, demo: Demo) -> str:
        return f"{self.settings.collection_prefix}_{demo.name}"

    def stored_vectors(self, demo: Demo) -> list[StoredVector]:
        """The demo's vector fields as this backend stores them; raises
        MissingCapability when one has no kind the backend stores."""
        return [resolve(field, self.backend_info) for field in vector_fields(demo)]

    def ensure_collection(self, demo: Demo) -> CollectionInfo:
        """Create the demo's collection, or check that the stored one still
        fits; raises SchemaMismatch or MissingCapability when it cannot.

        The main collection holds every row. On a backend with one vector
        field per collection (Milvus servers before 2.4), each further
        vector field lives in a companion collection `<main>__<field>`
        holding the rows that have it, with the same scalar fields."""
        main = self.collection_name(demo)

        def ensure(client):
            backend = self.backend_info
            try:
                vectors = self.stored_vectors(demo)
            except MissingCapability as exc:
                raise MissingCapability(f"demo {demo.name!r} cannot run on this Milvus: {exc}") from None
            several = len(vectors) > 1
            if several and not backend.multiple_vector_fields:
                layout = {main: vectors[:1], **{f"{main}__{v.name}": [v] for v in vectors[1:]}}
            else:
                layout = {main: vectors}
            found: dict[str, StoredVector] = {}
            homes: dict[str, str] = {}
            for name, members in layout.items():
                for vector in self._ensure_one(client, demo, name, members, present=several and name == main):
                    found[vector.name], homes[vector.name] = vector, name
            indexed = {field.name: backend.scalar_index(field.kind) for field in demo.fields if field.index}
            return CollectionInfo(
                main,
                {v.name: found[v.name] for v in vectors},
                {field: kind for field, kind in indexed.items() if kind},
                homes,
            )

        # One create/check at a time: a drop-and-recreate and the readiness
        # loop must not race to create the same collection.
        with self._schema_lock:
            info = self.call(ensure)
            self.collections[demo.name] = info
        return info

    def _ensure_one(
        self, client, demo: Demo, name: str, vectors: list[StoredVector], present: bool
    ) -> list[StoredVector]:
        backend = self.backend_info
        schema = build_schema(client, demo.fields, vectors, backend.tenant_partitions, present)
        if client.has_collection(name):
            described = {vector.name: client.describe_index(name, vector.name) or {} for vector in vectors}
            problems = schema_problems(
                client.describe_collection(name),
                schema.to_dict(),
                vectors,
                {field: index.get("metric_type") for field, index in described.items()},
            )
            if problems:
                raise SchemaMismatch(
                    f"collection {name} does not match demo {demo.name!r}: {'; '.join(problems)}. "
                    f"Its data was made by another version of the plugin or model. Either run "
                    f"`vectorfair drop {demo.name}` (deletes its data) and load it again, or set "
                    f"[milvus] collection_prefix to a new value to keep the old data aside."
                )
            vectors = [_as_found(vector, described[vector.name]) for vector in vectors]
        else:
            client.create_collection(
                name, schema=schema, index_params=build_indexes(client, demo.fields, vectors, backend)
            )
            log.info(
                "created collection %s (%s)",
                name,
                "; ".join(
                    f"{v.name}: {v.stored.kind} {v.stored.dim or ''} {v.stored.metric} {v.index_type} {v.index_params or ''}"
                    for v in vectors
                ),
            )
        client.load_collection(name)
        return vectors

    def collection_info(self, demo: Demo) -> CollectionInfo:
        info = self.collections.get(demo.name)
        if info is None:
            with self._schema_lock:  # wait for a drop-and-recreate under way
                info = self.collections.get(demo.name)
        return info if info is not None else self.ensure_collection(demo)

    # -- rows --------------------------------------------------------------------
    def output_fields(self, demo: Demo) -> list[str]:
        return ["id", "title", "item", "media", "thumb", "tenant", "created", *(f.name for f in demo.fields)]

    def insert(self, demo: Demo, rows: list[dict[str, Any]]) -> None:
        """Store rows, replacing any stored row with the same id. A row holds
        the core values, the demo's scalar fields and, under their names, the
        values of the vector fields it has (in their declared kind). Ids are
        content keys, so two uploads of one item racing each other (or a job
        resumed over rows a crashed run stored) leave one copy: a Milvus
        server does not enforce unique primary keys on insert."""
        if not rows:
            return
        info = self.collection_info(demo)
        layout = info.members()
        batches: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            present = [name for name in info.vectors if row.get(name) is not None]
            if not present:
                raise ValueError(f"a row has none of the vector fields {', '.join(info.vectors)}")
            for collection, members in layout.items():
                if collection != info.name and not any(v.name in present for v in members):
                    continue  # a companion holds only the rows that have its field
                stored = self._stored_row(demo, members, row)
                if collection == info.name and len(info.vectors) > 1:
                    stored[PRESENT_VECTORS] = present
                batches.setdefault(collection, []).append(stored)
        with self._counts.writing(demo.name):
            for collection, batch in batches.items():
                self.call(lambda client, collection=collection, batch=batch: client.upsert(collection, batch))

    @staticmethod
    def _stored_row(demo: Demo, vectors: list[StoredVector], row: dict[str, Any]) -> dict[str, Any]:
        stored = core_values(row)
        for vector in vectors:
            value = row.get(vector.name)
            stored[vector.name] = (
                placeholder(vector)
                if value is None
                else _milvus_value(to_stored(checked_vector(value, vector.declared), vector))
            )
        for field in demo.fields:
            stored[field.name] = scalar_value(field, row.get(field.name))
        return stored

    def settle(self, demo: Demo) -> None:
        """Call after a batch of inserts. Milvus Lite scans rows that are not
        flushed on every search and filtered query (3 s per search at 10k
        2048-d rows here, 0.07 s once flushed), so flush it; a server seals
        its segments by itself and dislikes frequent flushes."""
        if self.is_lite:
            names = self.collection_info(demo).names()
            self.call(lambda client: [client.flush(name) for name in names])

    def search(
        self, demo: Demo, vector: Any, limit: int, expression: str = "", field: str | None = None
    ) -> list[dict[str, Any]]:
        """Rows nearest to `vector` on a vector field (the first by default),
        best first, each with its `distance` and a higher-is-better `score`."""
        return self.search_many(demo, [vector], limit, expression, field)[0]

    def search_many(
        self,
        demo: Demo,
        vectors: Sequence[Any],
        limit: int,
        expression: str = "",
        field: str | None = None,
    ) -> list[list[dict[str, Any]]]:
        """`search` for several query vectors in one Milvus call (one scan of
        the collection on Lite, one round trip on a server)."""
        info = self.collection_info(demo)
        stored = info.vector(field)
        name, expression = info.where(stored.name, expression)
        params: dict[str, Any] = {"metric_type": stored.stored.metric, "params": stored.search_params(limit)}
        data = [_milvus_value(to_stored(checked_vector(vector, stored.declared), stored)) for vector in vectors]
        fields = list(self.output_fields(demo))

        def run(client):
            return client.search(
                name,
                data=data,
                limit=limit,
                filter=expression,
                output_fields=fields,
                search_params=params,
                anns_field=stored.name,
                consistency_level=READ_CONSISTENCY,
            )

        result = self.call(run)
        metric, dim = stored.stored.metric, stored.stored.dim
        return [
            [
                restore_json(
                    demo.fields,
                    {
                        **hit["entity"],
                        "id": hit["id"],
                        "distance": hit["distance"],
                        "score": distance_to_score(hit["distance"], metric, dim),
                    },
                )
                for hit in hits
            ]
            for hits in result
        ]

    def get(self, demo: Demo, row_id: str) -> dict[str, Any] | None:
        # Not client.get(ids=...): pymilvus puts the id into its filter
        # unescaped, so a backslash in a requested id breaks the expression.
        rows = self.query(demo, in_list("id", [row_id]), self.output_fields(demo), limit=1)
        return rows[0] if rows else None

    def query(
        self, demo: Demo, expression: str, fields: Sequence[str], limit: int = 16384, catch_up: bool = False
    ) -> list[dict[str, Any]]:
        """Rows matching `expression`. `catch_up`: see every write Milvus has
        accepted, from any process (Strong, ~200 ms on a server), not only
        this process's own."""
        name = self.collection_name(demo)
        level = CATCH_UP_CONSISTENCY if catch_up else READ_CONSISTENCY
        return [
            restore_json(demo.fields, dict(r))
            for r in self.call(
                lambda client: client.query(
                    name, filter=expression, output_fields=list(fields), limit=limit, consistency_level=level
                )
            )
        ]

    def stored_vectors_of(self, demo: Demo, field: str, expression: str = "", limit: int = 16) -> list[dict[str, Any]]:
        """Rows (id and the stored value of vector field `field`) that have
        that field, from the collection it lives in."""
        name, expression = self.collection_info(demo).where(field, expression)
        return self.call(
            lambda client: client.query(
                name, filter=expression, output_fields=["id", field], limit=limit, consistency_level=READ_CONSISTENCY
            )
        )

    def count_items(self, demo: Demo, expression: str = "") -> int:
        """Items rather than rows: an item's first row has the item key as its
        id (ingest.row_ids), so counting those counts items."""
        return self.count(demo, all_of("id == item", expression))

    def count(self, demo: Demo, expression: str = "") -> int:
        # count(*) rather than num_entities: a server counts deleted rows in
        # num_entities until compaction.
        name = self.collection_name(demo)

        def run() -> int:
            rows = self.call(
                lambda client: client.query(
                    name, filter=expression, output_fields=["count(*)"], consistency_level=READ_CONSISTENCY
                )
            )
            return int(rows[0]["count(*)"]) if rows else 0

        return self._counts.get(demo.name, expression, run)

    def delete(self, demo: Demo, expression: str) -> None:
        self._delete(demo, [expression])

    def delete_ids(self, demo: Demo, ids: Sequence[str]) -> None:
        """Delete rows by id, DELETE_CHUNK ids to a filter expression."""
        self._delete(
            demo, [in_list("id", list(ids[start : start + DELETE_CHUNK])) for start in range(0, len(ids), DELETE_CHUNK)]
        )

    def _delete(self, demo: Demo, expressions: list[str]) -> None:
        names = self.collection_info(demo).names()

        def run(client):
            for name in names:
                for expression in expressions:
                    client.delete(name, filter=expression)
                if expressions and not self.is_lite:
                    # Session reads follow the last write's timestamp, but a 2.3
                    # server answers a delete without one, so the next read could
                    # still see the deleted rows. One catch-up read, after all the
                    # deletes, waits until they are applied; every later read sees them.
                    client.query(
                        name, filter=expressions[-1], output_fields=["count(*)"], consistency_level=CATCH_UP_CONSISTENCY
                    )

        with self._counts.writing(demo.name):
            self.call(run)

    def drop(self, demo: Demo) -> None:
        main = self.collection_name(demo)
        names = [main, *(f"{main}__{field.name}" for field in vector_fields(demo)[1:])]
        with self._schema_lock, self._counts.writing(demo.name):
            self.collections.pop(demo.name, None)
            self.call(lambda client: [client.drop_collection(name) for name in names if client.has_collection(name)])


class _CountCache:
    """Counts of embedded Milvus Lite, kept until this process writes the
    demo again. Embedded, this process is the database file's only writer, so
    a kept count stays exact; and Lite 3 materialises every matching row to
    count it (170 ms for 5,000 of 20,000 rows here, against 0.7 ms on Lite
    2.5), which made the home page wait on every visit. A server is written
    by other processes too, and counts fast: nothing is kept there."""

    def __init__(self, enabled: bool):
        self.enabled = enabled
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._writes: dict[str, int] = {}  # per demo: writes begun
        self._writing: dict[str, int] = {}  # per demo: writes under way

    def get(self, demo: str, expression: str, count: Callable[[], int]) -> int:
        if not self.enabled:
            return count()
        with self._lock:
            kept = self._counts.get((demo, expression))
            if kept is not None:
                return kept
            # Kept only when no write was under way or began while it counted.
            writes = None if self._writing.get(demo) else self._writes.get(demo, 0)
        value = count()
        with self._lock:
            if writes is not None and self._writes.get(demo, 0) == writes:
                self._counts[(demo, expression)] = value
        return value

    @contextlib.contextmanager
    def writing(self, demo: str):
        if not self.enabled:
            yield
            return
        with self._lock:
            self._writes[demo] = self._writes.get(demo, 0) + 1
            self._writing[demo] = self._writing.get(demo, 0) + 1
            for key in [key for key in self._counts if key[0] == demo]:
                del self._counts[key]
        try:
            yield
        finally:
            with self._lock:
                self._writing[demo] -= 1


def _milvus_value(value: Any) -> Any:
    """A vector as pymilvus sends it: float32 arrays as lists."""
    return value.tolist() if isinstance(value, np.ndarray) and value.dtype == np.float32 else value


def _as_found(vector: StoredVector, index: dict[str, Any]) -> StoredVector:
    """A vector field with the index a stored collection really has."""
    index_type = index.get("index_type") or vector.index_type
    params = {k: _number(index[k]) for k in INDEX_BUILD_PARAMS.get(index_type, {}) if k in index}
    return dataclasses.replace(vector, index_type=index_type, index_params=params)


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
        if (
            getattr(status, "name", None) == "UNAUTHENTICATED"
            or status == 1800
            or "auth check fail" in str(exc).lower()
        ):
            return exc
        exc = exc.__cause__ or exc.__context__
    return None


def auth_failure_message(uri: str, exc: BaseException) -> str:
    cause = _auth_cause(exc) or exc
    details = getattr(cause, "details", None)
    detail = (details() if callable(details) else None) or getattr(cause, "message", None) or str(cause)
    return (
        f"{AUTH_FAILURE_PREFIX} at {uri} ({detail}). Set VECTORFAIR_MILVUS__TOKEN (or [milvus] token) to "
        '"user:password" of a Milvus user, or to an API key, then start again'
    )


class _KnownLiteNoise(logging.Filter):
    """Two tracebacks Milvus Lite causes while nothing is wrong (a plugin
    author reading them assumes their plugin broke):
    - Lite 3's in-process gRPC server logs one when pymilvus asks it for a
      timestamp (a call Lite does not implement; pymilvus then does without);
    - pymilvus logs one when Lite 2 answers `get_server_version` with
      UNIMPLEMENTED, which is how the store recognises that engine."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, NotImplementedError) and "Method not implemented" in str(exc):
            return False
        message = record.getMessage() if record.name == "pymilvus.decorators" else ""
        return not ("[get_server_version]" in message and "UNIMPLEMENTED" in message)


_LITE_NOISE = _KnownLiteNoise()


def quiet_lite_noise() -> None:
    for name in ("grpc._server", "pymilvus.decorators"):
        logger = logging.getLogger(name)
        if _LITE_NOISE not in logger.filters:
            logger.addFilter(_LITE_NOISE)
