"""Reading zip and tar archives, and files on the local disk, as uploads.

An archive is checked from its directory before anything is unpacked (member
count, sizes, compression ratio, names that would escape a directory); a
member that cannot be used becomes a `RejectedUpload`, so the ingest reports
its error under its name and the rest goes on.
"""

from __future__ import annotations

import dataclasses
import re
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

from .demo import Upload
from .settings import LimitSettings

# Names that archive tools add beside the real content.
_JUNK = ("__MACOSX/", ".DS_Store", "Thumbs.db", "desktop.ini")


class ArchiveError(ValueError):
    """The archive as a whole cannot be used (not an archive, over a limit)."""


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
                    if info.file_size > (1 << 20) and info.file_size > MAX_COMPRESSION_RATIO * max(
                        info.compress_size, 1
                    ):
                        raise ArchiveError(
                            f"{_display_name(info.filename)!r} unpacks to {info.file_size} bytes from "
                            f"{info.compress_size}: refused as a decompression bomb"
                        )
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
        raise ArchiveError(
            f"the archive names a file outside itself ({escaping[:200]!r}); pack it with relative paths and no '..'"
        )
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
                yield _member(info.filename, info.file_size, lambda info=info: zf.open(info), limits)
    elif kind == "tar":
        with tarfile.open(path) as tf:
            for info in tf:
                if not info.isfile() or not _usable_member(info.name):
                    continue
                yield _member(info.name, info.size, lambda info=info: tf.extractfile(info), limits)
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
