"""Turning uploads (archive members too, see archives.py) and records into
stored rows.

One bad item never stops the others: its error is reported under its name and
the rest of the batch goes on. Items are keyed by the SHA-256 of their content,
so loading the same content twice stores it once.
"""

from __future__ import annotations

import contextlib
import contextvars
import dataclasses
import hashlib
import json
import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from .archives import RejectedUpload
from .contract import accepted_suffixes, vector_fields
from .demo import Demo, Entry, ItemError, Upload
from .expr import in_list
from .media import MediaStore
from .progress import reporting_to
from .quotas import Quota
from .schema import VectorRejected, checked_vector
from .store import Store, StoreUnavailable
from .tenancy import PUBLIC_TENANT

log = logging.getLogger("vectorfair.ingest")
Source = Upload | dict[str, Any]


@dataclasses.dataclass
class Outcome:
    name: str
    ids: list[str] = dataclasses.field(default_factory=list)
    error: str | None = None
    duplicate: bool = False


def source_name(source: Source, index: int) -> str:
    return source.name if isinstance(source, Upload) else f"records[{index}]"


def item_key(source: Source, tenant: str, identity: str | None = None) -> str:
    digest = hashlib.sha256(tenant.encode() + b"\0")
    if identity is not None:
        digest.update(b"identity\0" + identity.encode())
    elif isinstance(source, RejectedUpload):
        digest.update(f"rejected\0{source.name}".encode())
    elif isinstance(source, Upload):
        digest.update(source.data)
    else:
        digest.update(json.dumps(source, sort_keys=True, ensure_ascii=False, default=str).encode())
    return digest.hexdigest()[:32]


def row_ids(item: str, count: int) -> list[str]:
    # The first row's id is the item key itself, so "is this item stored?" is
    # a primary-key lookup: Milvus Lite answers those at once, while a filter
    # on another field scans every row not yet flushed (seconds in a bulk load).
    return [item] + [f"{item}-{i}" for i in range(1, count)]


# `drop_unused_blobs(keys, older_than)`: delete the media blobs no stored row
# of any demo refers to, sparing those stored again at or after `older_than`
# (Tenancy.drop_unused_blobs); the number deleted.
BlobDropper = Callable[[Iterable[str], float | None], int]


class Ingestor:
    def __init__(
        self,
        demo: Demo,
        store: Store,
        media: MediaStore,
        batch_size: int = 32,
        tenant: str = PUBLIC_TENANT,
        quota: Quota | None = None,
        drop_unused_blobs: BlobDropper | None = None,
    ):
        self.demo = demo
        self.store = store
        self.media = media
        self.batch_size = max(1, batch_size)
        self.tenant = tenant
        # A visitor's quota: taken by each new item before it is parsed.
        self.quota = quota
        # Removes the blobs of items Milvus refused; blobs are shared by content
        # across items and demos, so only one that no stored row uses goes.
        # Without it those blobs stay in the media store.
        self.drop_unused_blobs = drop_unused_blobs
        self.vector_fields = vector_fields(demo)

    def run(
        self,
        sources: Iterable[Source],
        on_outcome: Callable[[Outcome], None] = lambda outcome: None,
        should_stop: Callable[[], bool] = lambda: False,
        on_split: Callable[[int], None] = lambda extra: None,
        on_step: Callable[[str, int, int | None, str], None] | None = None,
        catch_up: bool = False,
    ) -> list[Outcome]:
        """Store `sources`; `on_split(n)` says a file became n more items than one,
        `on_step(name, done, total, unit)` relays a demo's progress inside one item.
        `catch_up`: the first stored-already check waits for every write
        Milvus accepted, from any process (a job resumed after a crash).

        Three stages overlap, one chunk apart: reading and parsing the next
        chunk (a thread), encoding this one (the calling thread), inserting
        the previous one (a thread). Decoders, torch and Milvus's client all
        release the GIL for their heavy parts, so on two cores a bulk load
        runs close to the speed of its slowest stage rather than their sum.
        Outcomes are still reported in input order, chunk by chunk.
        """
        outcomes: list[Outcome] = []
        seen: dict[str, Outcome] = {}

        def chunks() -> Iterator[list[tuple[str, Source]]]:
            chunk: list[tuple[str, Source]] = []
            for name, source in self._split(sources, on_split):
                if should_stop():
                    return
                chunk.append((name, source))
                if len(chunk) >= self.batch_size:
                    yield chunk
                    chunk = []
            if chunk and not should_stop():
                yield chunk

        def report(done: Future) -> None:
            for outcome in done.result():
                outcomes.append(outcome)
                on_outcome(outcome)

        # The quota's claims go when the run ends, however it ends; the settle
        # comes before, so a recount after the release sees this run's rows.
        with self._quota_released_at_end(), ThreadPoolExecutor(1, thread_name_prefix="vectorfair-insert") as inserter:
            pending: Future | None = None
            stream = prefetched(
                self._prepare(chunk, seen, on_step, catch_up=catch_up and number == 0)
                for number, chunk in enumerate(chunks())
            )
            try:
                for prepared in stream:
                    if should_stop():
                        break
                    encoded = self._encode_rows(prepared.fresh)
                    if pending is not None:
                        report(pending)
                    pending = inserter.submit(self._store_prepared, prepared, encoded)
                if pending is not None:
                    report(pending)
                    pending = None
            finally:
                stream.close()
                if pending is not None:  # an earlier stage failed: let the insert end, keep its error
                    pending.exception()
            # Every insert has been reported (or waited for) by now.
            if any(o.ids and not o.duplicate for o in outcomes):
                self.store.settle(self.demo)
        return outcomes

    @contextlib.contextmanager
    def _quota_released_at_end(self) -> Iterator[None]:
        try:
            yield
        finally:
            if self.quota is not None:
                self.quota.release()

    def _split(self, sources: Iterable[Source], on_split: Callable[[int], None]) -> Iterator[tuple[str, Source]]:
        for index, source in enumerate(sources):
            name = source_name(source, index)
            if not isinstance(source, Upload) or isinstance(source, RejectedUpload) or not source.data:
                yield name, source
                continue
            refusal = self._refused_suffix(source)
            if refusal:
                yield name, RejectedUpload(name, b"", error=refusal)
                continue
            try:
                parts = self.demo.split_upload(source)
                parts = None if parts is None else list(parts)
            except ItemError as exc:
                parts = [("", exc)]
            except Exception as exc:
                parts = [("", ItemError(f"could not be read ({type(exc).__name__}: {exc})"))]
            if parts is None:
                yield name, source
                continue
            if not parts:
                parts = [("", ItemError("no records in this file"))]
            on_split(len(parts) - 1)
            for label, record in parts:
                part_name = f"{name} {label}" if label else name
                if isinstance(record, ItemError):
                    record = RejectedUpload(part_name, b"", error=str(record))
                yield part_name, record

    def _prepare(
        self,
        chunk: list[tuple[str, Source]],
        seen: dict[str, Outcome],
        on_step: Callable[[str, int, int | None, str], None] | None = None,
        catch_up: bool = False,
    ) -> "Prepared":
        """Keys, the stored-already check and parsing, for one chunk."""
        keys = [item_key(source, self.tenant, self._identity(source)) for _, source in chunk]
        stored = self._stored_ids([k for k in keys if k not in seen], catch_up)
        prepared = Prepared()
        for (name, source), key in zip(chunk, keys):
            if key in stored:
                prepared.outcomes.append(Outcome(name, list(stored[key]), duplicate=True))
                continue
            if key in seen:
                # Same content earlier in this run: it shares that item's fate,
                # known once that item is stored.
                repeat = Outcome(name, duplicate=True)
                prepared.repeats.append((repeat, seen[key]))
                prepared.outcomes.append(repeat)
                continue
            outcome = Outcome(name)
            seen[key] = outcome
            prepared.outcomes.append(outcome)
            refusal = self.quota.take(source) if self.quota is not None else None
            if refusal:
                outcome.error = refusal
                continue
            try:
                reporter = (
                    None if on_step is None else (lambda done, total, unit, name=name: on_step(name, done, total, unit))
                )
                with reporting_to(reporter):
                    entries = list(self._parse(source))
                if not entries:
                    raise ItemError("nothing usable in this item")
            except ItemError as exc:
                outcome.error = str(exc)
                continue
            except Exception as exc:  # a decoder failing on hostile input
                log.info("item %s could not be read", name, exc_info=True)
                outcome.error = f"could not be read ({type(exc).__name__}: {exc})"
                continue
            prepared.fresh.append((outcome, key, entries))
        return prepared

    def _store_prepared(self, prepared: "Prepared", rows: list[dict[str, Any]]) -> list[Outcome]:
        self._insert(prepared.fresh, rows)
        for repeat, first in prepared.repeats:
            repeat.ids, repeat.error = list(first.ids), first.error
        return prepared.outcomes

    def _refused_suffix(self, upload: Upload) -> str | None:
        accepted = accepted_suffixes(self.demo)
        if upload.suffix in accepted:
            return None
        if not accepted:
            return f"{self.demo.title} does not take files; send JSON records instead"
        return (
            f"{upload.suffix or 'files without a suffix'} not accepted; {self.demo.title} takes {', '.join(accepted)}"
        )

    def _identity(self, source: Source) -> str | None:
        if isinstance(source, RejectedUpload):
            return None
        try:
            return self.demo.identity(source)
        except Exception:  # an unusable item: its parse reports why
            return None

    def _parse(self, source: Source) -> Iterable[Entry]:
        if isinstance(source, RejectedUpload):
            raise ItemError(source.error)
        if isinstance(source, Upload):
            if not source.data:
                raise ItemError("the file is empty")
            refusal = self._refused_suffix(source)
            if refusal:
                raise ItemError(refusal)
            return self.demo.parse_upload(source)
        if not isinstance(source, dict):
            raise ItemError("a record must be a JSON object")
        return self.demo.parse_record(source)

    def _stored_ids(self, keys: list[str], catch_up: bool = False) -> dict[str, list[str]]:
        if not keys:
            return {}
        # An item's rows are inserted in one call, so its first row stands for
        # all of them; a duplicate is reported by that first row's id.
        rows = self.store.query(self.demo, in_list("id", keys), ["id"], catch_up=catch_up)
        return {row["id"]: [row["id"]] for row in rows}

    def _encode_rows(self, fresh: list[tuple[Outcome, str, list[Entry]]]) -> list[dict[str, Any]]:
        """Rows ready to insert; an item that breaks the encoder, or whose
        vectors do not fit their fields, gets its error and no rows; the
        others go on."""
        if not fresh:
            return []
        flat = [entry for _, _, entries in fresh for entry in entries]
        try:
            vectors, extra_fields = self._encode_entries(flat)
        except StoreUnavailable:
            raise
        except Exception as exc:
            if len(fresh) > 1:
                # Find the item that breaks the encoder.
                return [row for one in fresh for row in self._encode_rows([one])]
            outcome = fresh[0][0]
            log.info("encoder failed on %s", outcome.name, exc_info=True)
            outcome.error = f"the encoder could not process this item ({type(exc).__name__}: {exc})"
            return []
        rows: list[dict[str, Any]] = []
        now = int(time.time())
        position = 0
        for outcome, key, entries in fresh:
            first, position = position, position + len(entries)
            try:
                checked = [self._checked(vectors[i]) for i in range(first, position)]
            except VectorRejected as exc:
                outcome.error = str(exc)
                continue
            for row_id, entry, entry_vectors, extra in zip(
                row_ids(key, len(entries)), entries, checked, extra_fields[first:position]
            ):
                rows.append(
                    {
                        **entry.fields,
                        **extra,
                        **entry_vectors,
                        "id": row_id,
                        "title": entry.title,
                        "item": key,
                        "media": self.media.put(entry.media.data, entry.media.content_type) if entry.media else "",
                        "thumb": self.media.put(entry.thumbnail.data, entry.thumbnail.content_type)
                        if entry.thumbnail
                        else "",
                        "tenant": self.tenant,
                        "created": now,
                    }
                )
        return rows

    def _insert(self, fresh: list[tuple[Outcome, str, list[Entry]]], rows: list[dict[str, Any]]) -> None:
        by_item: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_item.setdefault(row["item"], []).append(row)
        encoded = [(outcome, key) for outcome, key, _ in fresh if key in by_item]
        if not encoded:
            return
        # The rows' blobs were all written before this: one written from now
        # on is another item's (of this run or another), which its row will use.
        started = time.time()
        refused: list[str] = []
        try:
            self.store.insert(self.demo, rows)
        except StoreUnavailable:
            raise
        except Exception as exc:
            if len(encoded) == 1:
                encoded[0][0].error = f"could not be stored: {exc}"
                refused.append(encoded[0][1])
            else:
                # Insert item by item to find the one Milvus refuses.
                for outcome, key in encoded:
                    try:
                        self.store.insert(self.demo, by_item[key])
                    except StoreUnavailable:
                        raise
                    except Exception as item_exc:
                        outcome.error = f"could not be stored: {item_exc}"
                        refused.append(key)
                    else:
                        outcome.ids = [row["id"] for row in by_item[key]]
            self._drop_blobs_of([row for key in refused for row in by_item[key]], started)
            return
        for outcome, key in encoded:
            outcome.ids = [row["id"] for row in by_item[key]]

    def _drop_blobs_of(self, rows: list[dict[str, Any]], written_before: float) -> None:
        """Delete the media and thumbnails the refused `rows` wrote, unless a
        stored row uses them (the same content in another item or demo)."""
        keys = {k for row in rows for k in (row.get("media"), row.get("thumb")) if k}
        if not keys or self.drop_unused_blobs is None:
            return
        try:
            removed = self.drop_unused_blobs(keys, written_before)
        except Exception:  # the items' errors stand; the files stay, as unused ones
            log.warning("could not remove the files of items Milvus refused", exc_info=True)
            return
        log.info("removed %d file(s) of %d item row(s) Milvus refused", removed, len(rows))

    def _encode_entries(self, entries: list[Entry]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """Per entry, its vectors by field (the payload encoded into the
        first field unless given) and the fields the encoder added."""
        first = self.vector_fields[0].name
        vectors = [dict(entry.vectors) for entry in entries]
        extra: list[dict[str, Any]] = [{} for _ in entries]
        todo = [i for i, entry in enumerate(entries) if entry.payload is not None and first not in entry.vectors]
        if todo:
            encoded, encoded_extra = self.demo.encode_with_fields([entries[i].payload for i in todo])
            if len(encoded) != len(todo):
                raise ValueError(f"encode returned {len(encoded)} vectors for {len(todo)} payloads")
            if encoded_extra is not None and len(encoded_extra) != len(todo):
                raise ValueError(
                    f"encode_with_fields returned {len(encoded_extra)} field sets for {len(todo)} payloads"
                )
            for n, i in enumerate(todo):
                vectors[i][first] = encoded[n]
                extra[i] = encoded_extra[n] if encoded_extra else {}
        return vectors, extra

    def _checked(self, vectors: dict[str, Any]) -> dict[str, Any]:
        declared = {field.name: field for field in self.vector_fields}
        if not vectors:
            raise VectorRejected("the demo made a row with no vector (no payload to encode and no precomputed vector)")
        unknown = sorted(set(vectors) - set(declared))
        if unknown:
            raise VectorRejected(
                f"the demo gave vector field(s) {', '.join(unknown)}, which it does not declare "
                f"(it declares {', '.join(declared)})"
            )
        return {name: checked_vector(value, declared[name]) for name, value in vectors.items()}


@dataclasses.dataclass
class Prepared:
    """One chunk after parsing: every outcome in input order, the new items
    with their entries, and repeats of items earlier in the same run."""

    outcomes: list[Outcome] = dataclasses.field(default_factory=list)
    fresh: list[tuple[Outcome, str, list[Entry]]] = dataclasses.field(default_factory=list)
    repeats: list[tuple[Outcome, Outcome]] = dataclasses.field(default_factory=list)


_DONE = object()


def prefetched(items: Iterator[Any], depth: int = 1) -> Iterator[Any]:
    """Run the iterator `items` on a thread, `depth` items ahead of the
    consumer; its exceptions are raised in the consumer. Closing this
    generator early stops the thread at its next item."""
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as exc:  # handed to the consumer
            buffer.put(exc)

    # The producer inherits the caller's context (progress reporting).
    context = contextvars.copy_context()
    thread = threading.Thread(target=context.run, args=(produce,), name="vectorfair-parse", daemon=True)
    thread.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
        while thread.is_alive():
            try:
                buffer.get(timeout=0.1)
            except queue.Empty:
                pass
