"""Turning uploads, archives and records into stored rows.

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
import re
import tarfile
import threading
import time
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import Any

from .demo import Demo, Entry, ItemError, Upload
from .expr import in_list
from .media import MediaStore
from .progress import reporting_to
from .settings import LimitSettings
from .store import PUBLIC_TENANT, Store, StoreUnavailable
from .tenancy import Quota

log = logging.getLogger("vectorfair.ingest")
Source = Upload | dict[str, Any]
# Names that archive tools add beside the real content.
_JUNK = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")


class ArchiveError(ValueError):
    """The archive as a whole cannot be used (not an archive, over a limit)."""


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


class Ingestor:
    def __init__(self, demo: Demo, store: Store, media: MediaStore, batch_size: int = 32, tenant: str = PUBLIC_TENANT,
                 quota: Quota | None = None):
        self.demo = demo
        self.store = store
        self.media = media
        self.batch_size = max(1, batch_size)
        self.tenant = tenant
        # A visitor's quota: taken by each new item before it is parsed.
        self.quota = quota

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
            stream = prefetched(self._prepare(chunk, seen, on_step, catch_up=catch_up and number == 0)
                                for number, chunk in enumerate(chunks()))
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

    def _prepare(self, chunk: list[tuple[str, Source]], seen: dict[str, Outcome],
                 on_step: Callable[[str, int, int | None, str], None] | None = None,
                 catch_up: bool = False) -> "Prepared":
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
                reporter = None if on_step is None else (
                    lambda done, total, unit, name=name: on_step(name, done, total, unit))
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
            if self.demo.accepts and source.suffix not in self.demo.accepts:
                raise ItemError(
                    f"{source.suffix or 'files without a suffix'} not accepted; {self.demo.title} takes "
                    + ", ".join(self.demo.accepts)
                )
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
        """Rows ready to insert; an item that breaks the encoder gets its error
        and no rows, the others go on."""
        if not fresh:
            return []
        flat = [entry for _, _, entries in fresh for entry in entries]
        try:
            vectors, extra_fields = self._encode_entries(flat)
        except StoreUnavailable:
            raise
        except Exception:
            if len(fresh) > 1:
                # Find the item that breaks the encoder.
                return [row for one in fresh for row in self._encode_rows([one])]
            outcome = fresh[0][0]
            log.info("encoder failed on %s", outcome.name, exc_info=True)
            outcome.error = "the encoder could not process this item"
            return []
        rows: list[dict[str, Any]] = []
        now = int(time.time())
        position = 0
        for outcome, key, entries in fresh:
            for row_id, entry in zip(row_ids(key, len(entries)), entries):
                rows.append({
                    **entry.fields,
                    **(extra_fields[position] if extra_fields else {}),
                    "id": row_id,
                    "vector": vectors[position],
                    "title": entry.title,
                    "item": key,
                    "media": self.media.put(entry.media.data, entry.media.content_type) if entry.media else "",
                    "thumb": self.media.put(entry.thumbnail.data, entry.thumbnail.content_type) if entry.thumbnail else "",
                    "tenant": self.tenant,
                    "created": now,
                })
                position += 1
        return rows

    def _insert(self, fresh: list[tuple[Outcome, str, list[Entry]]], rows: list[dict[str, Any]]) -> None:
        by_item: dict[str, list[dict[str, Any]]] = {}
        for row in rows:
            by_item.setdefault(row["item"], []).append(row)
        encoded = [(outcome, key) for outcome, key, _ in fresh if key in by_item]
        if not encoded:
            return
        try:
            self.store.insert(self.demo, rows)
        except StoreUnavailable:
            raise
        except Exception as exc:
            if len(encoded) == 1:
                encoded[0][0].error = f"could not be stored: {exc}"
                return
            # Insert item by item to find the one Milvus refuses.
            for outcome, key in encoded:
                try:
                    self.store.insert(self.demo, by_item[key])
                except StoreUnavailable:
                    raise
                except Exception as item_exc:
                    outcome.error = f"could not be stored: {item_exc}"
                else:
                    outcome.ids = [row["id"] for row in by_item[key]]
            return
        for outcome, key in encoded:
            outcome.ids = [row["id"] for row in by_item[key]]

    def _encode_entries(self, entries: list[Entry]):
        import numpy as np

        todo = [i for i, entry in enumerate(entries) if entry.vector is None]
        if len(todo) == len(entries):
            return self._encode([entry.payload for entry in entries])
        vectors = np.zeros((len(entries), self.demo.dim), dtype=np.float32)
        extra: list[dict[str, Any]] = [{} for _ in entries]
        for i, entry in enumerate(entries):
            if entry.vector is not None:
                vectors[i] = self._checked(np.asarray(entry.vector, dtype=np.float32).reshape(1, -1), 1)[0]
        if todo:
            encoded, encoded_extra = self._encode([entries[i].payload for i in todo])
            vectors[todo] = encoded
            for n, i in enumerate(todo):
                extra[i] = encoded_extra[n] if encoded_extra else {}
        return vectors, extra

    def _checked(self, vectors, count: int):
        import numpy as np

        if vectors.shape != (count, self.demo.dim):
            raise ValueError(f"encoder returned shape {vectors.shape}, expected ({count}, {self.demo.dim})")
        if not np.isfinite(vectors).all():
            raise ValueError("encoder returned NaN or infinite values")
        return vectors

    def _encode(self, payloads: list[Any]):
        import numpy as np

        vectors, extra_fields = self.demo.encode_with_fields(payloads)
        vectors = self._checked(np.asarray(vectors, dtype=np.float32), len(payloads))
        if extra_fields is not None and len(extra_fields) != len(payloads):
            raise ValueError(f"encoder returned {len(extra_fields)} field sets for {len(payloads)} payloads")
        return vectors, extra_fields


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


# -- archives -------------------------------------------------------------------
def archive_kind(head: bytes) -> str | None:
    if head[:4] == b"PK\x03\x04" or head[:4] == b"PK\x05\x06":
        return "zip"
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return "tar"  # a compressed tar; tarfile finds out which compression
    if len(head) > 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def _usable_member(name: str) -> bool:
    base = PurePosixPath(name).name
    return bool(base) and not base.startswith(".") and not any(junk in name for junk in _JUNK)


def _display_name(name: str) -> str:
    # Names are only shown, never used as paths; drop what could mislead.
    parts = [p for p in PurePosixPath(name.replace("\\", "/")).parts if p not in ("/", "..", ".")]
    return "/".join(parts) or "unnamed"


# A member that unpacks to more than this many times its packed size, and to
# more than a mebibyte, is taken for a decompression bomb.
MAX_COMPRESSION_RATIO = 200


def list_archive(path: Path, limits: LimitSettings) -> list[str]:
    """Member names of a zip or tar file, checked against the limits from its
    directory (headers only, nothing is unpacked): member count, sizes,
    compression ratio, and names that would escape a directory."""
    with open(path, "rb") as fh:
        kind = archive_kind(fh.read(512))
    if kind is None:
        raise ArchiveError("not a zip or tar archive; send a .zip, .tar, .tar.gz, .tar.bz2 or .tar.xz file")
    members: list[tuple[str, int]] = []
    total = 0
    try:
        if kind == "zip":
            with zipfile.ZipFile(path) as zf:
                for info in zf.infolist():
                    if info.is_dir():
                        continue
                    if info.file_size > (1 << 20) and info.file_size > MAX_COMPRESSION_RATIO * max(info.compress_size, 1):
                        raise ArchiveError(
                            f"{_display_name(info.filename)!r} unpacks to {info.file_size} bytes from "
                            f"{info.compress_size}: refused as a decompression bomb")
                    members.append((info.filename, info.file_size))
        else:
            with tarfile.open(path) as tf:
                for info in tf:
                    if info.isfile():
                        members.append((info.name, info.size))
                        total += info.size
                    # Stop reading a compressed stream as soon as it is over a limit.
                    if len(members) > limits.max_archive_members or total > limits.max_archive_bytes:
                        break
    except (zipfile.BadZipFile, tarfile.TarError, EOFError, OSError) as exc:
        raise ArchiveError(f"the archive is damaged: {exc}") from None
    escaping = next((name for name, _ in members if _escapes(name)), None)
    if escaping is not None:
        raise ArchiveError(f"the archive names a file outside itself ({escaping[:200]!r}); "
                           "pack it with relative paths and no '..'")
    members = [(name, size) for name, size in members if _usable_member(name)]
    if len(members) > limits.max_archive_members:
        raise ArchiveError(f"the archive has more than {limits.max_archive_members} files; split it")
    total = sum(size for _, size in members)
    if total > limits.max_archive_bytes:
        raise ArchiveError(
            f"the archive unpacks to {total} bytes or more, over the limit of {limits.max_archive_bytes}; split it"
        )
    if not members:
        raise ArchiveError("the archive holds no files")
    return [name for name, _ in members]


def _escapes(name: str) -> bool:
    normal = name.replace("\\", "/")
    return normal.startswith("/") or re.match(r"^[A-Za-z]:", normal) is not None or ".." in normal.split("/")


def iter_archive(path: Path, limits: LimitSettings) -> Iterator[Upload]:
    """Members as uploads; a member over the size limit becomes an empty upload
    named so the error says why (the ingest reports it, the rest goes on)."""
    with open(path, "rb") as fh:
        kind = archive_kind(fh.read(512))
    if kind == "zip":
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                if info.is_dir() or not _usable_member(info.filename):
                    continue
                yield _member(info.filename, info.file_size, lambda: zf.open(info), limits)
    elif kind == "tar":
        with tarfile.open(path) as tf:
            for info in tf:
                if not info.isfile() or not _usable_member(info.name):
                    continue
                yield _member(info.name, info.size, lambda: tf.extractfile(info), limits)
    else:
        raise ArchiveError("not a zip or tar archive")


@dataclasses.dataclass
class RejectedUpload(Upload):
    """An archive member that cannot be used; kept so its error is reported."""

    error: str = ""


def _member(name: str, declared: int, opener, limits: LimitSettings) -> Upload:
    display = _display_name(name)
    too_big = f"over the limit of {limits.max_member_bytes} bytes for one file"
    if declared > limits.max_member_bytes:
        return RejectedUpload(display, b"", error=too_big)
    try:
        with opener() as fh:
            # Read one byte past the limit: the declared size of a crafted
            # archive may lie.
            data = fh.read(limits.max_member_bytes + 1)
    except Exception as exc:
        return RejectedUpload(display, b"", error=f"could not be extracted: {exc}")
    if len(data) > limits.max_member_bytes:
        return RejectedUpload(display, b"", error=too_big)
    return Upload(display, data)


def files_from_path(path: Path, limits: LimitSettings) -> Iterator[Upload]:
    """A file, an archive or a directory on the local disk (CLI loads)."""
    if path.is_dir():
        for file in sorted(p for p in path.rglob("*") if p.is_file() and _usable_member(p.name)):
            yield Upload(str(file.relative_to(path)), file.read_bytes())
        return
    with open(path, "rb") as fh:
        kind = archive_kind(fh.read(512))
    if kind is not None:
        list_archive(path, limits)
        yield from iter_archive(path, limits)
    else:
        yield Upload(path.name, path.read_bytes())
