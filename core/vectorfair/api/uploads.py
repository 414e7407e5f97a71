"""Reading request bodies: JSON, multipart forms, the files and records of
items, and uploads kept on disk for a job."""

import json
import uuid
from pathlib import Path
from typing import Any

import anyio
from fastapi import Request
from starlette.datastructures import UploadFile

from ..archives import ArchiveError, archive_kind, list_archive
from ..contract import accepted_suffixes, takes_records
from ..demo import Demo, Upload
from ..runtime import Platform
from .errors import bad_request


async def item_sources(request: Request, demo: Demo, limits) -> list[Any]:
    """The items a request to add items sends: JSON records or uploaded files."""
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("application/json"):
        if not takes_records(demo):
            raise bad_request(415, f"{demo.title} takes files: send multipart/form-data with a `files` field")
        body = await json_body(request)
        records = body.get("records") if isinstance(body, dict) else None
        if not isinstance(records, list) or not records:
            raise bad_request(422, 'send {"records": [ {...}, ... ]} with at least one record')
        if len(records) > limits.max_archive_members:
            raise bad_request(413, f"at most {limits.max_archive_members} records per request; use a job for more")
        return records
    if not accepted_suffixes(demo):
        raise bad_request(415, f'{demo.title} takes JSON records: send {{"records": [...]}}')
    form = await read_form(
        request,
        "multipart/form-data with one or more `files` fields"
        + (' or JSON {"records": [...]}' if takes_records(demo) else ""),
        max_files=limits.max_files_per_request,
    )
    files = [f for f in form.getlist("files") if isinstance(f, UploadFile)]
    if not files:
        raise bad_request(422, "no files: send each file as a multipart field named `files`")
    return [Upload(safe_name(f.filename), await f.read(), f.content_type) for f in files]


def safe_name(name: str | None) -> str:
    """An uploaded file's name without any directory, at most 255 characters."""
    return (name or "upload").replace("\\", "/").rsplit("/", 1)[-1][:255] or "upload"


async def json_body(request: Request) -> Any:
    try:
        return await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise bad_request(400, "the body is not valid JSON") from None


async def read_form(request: Request, expected: str, max_files: int = 1000):
    """The multipart form; 415 for another content type, 413 for too many
    files or fields. `expected` says what to send instead."""
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise bad_request(415, f"unsupported content type {content_type or 'none'!r}; send {expected}")
    try:
        return await request.form(max_files=max_files, max_fields=100)
    except Exception as exc:
        reason = getattr(exc, "detail", None) or str(exc)
        if "Too many files" in reason:
            raise bad_request(
                413,
                f"at most {max_files} files per request; send the rest in another request, "
                "or many at once as an archive job",
            ) from None
        if "Too many fields" in reason:
            raise bad_request(413, "at most 100 form fields per request") from None
        raise bad_request(400, f"the multipart body could not be read ({reason}); send {expected}") from None


def int_field(raw: Any, default: int, low: int, high: int, name: str) -> int:
    """A whole number from a form field, `default` when it is left out."""
    if raw in (None, ""):
        return default
    try:
        value = int(raw)
    except (TypeError, ValueError):
        raise bad_request(422, f"`{name}` must be a whole number from {low} to {high}") from None
    if not low <= value <= high:
        raise bad_request(422, f"`{name}` must be from {low} to {high}")
    return value


async def save_archive(platform: Platform, archive: UploadFile) -> Path:
    """Keep the archive on disk until its job succeeds, so a restart can resume it."""
    head = await archive.read(512)
    if archive_kind(head) is None:
        raise bad_request(415, "the `archive` is not a zip or tar file; send .zip, .tar, .tar.gz, .tar.bz2 or .tar.xz")
    await archive.seek(0)
    target = platform.uploads_dir / f"{uuid.uuid4().hex}.archive"
    await write_upload(archive, target)
    try:
        await anyio.to_thread.run_sync(list_archive, target, platform.settings.limits)
    except ArchiveError as exc:
        target.unlink(missing_ok=True)
        raise bad_request(422, str(exc)) from None
    return target


async def write_upload(upload: UploadFile, target: Path, max_bytes: int | None = None) -> int | None:
    """Copy an upload to `target` in 1 MiB chunks; its size, or None (and no
    file) when it is over `max_bytes`."""
    size = 0
    with open(target, "wb") as out:
        while chunk := await upload.read(1 << 20):
            size += len(chunk)
            if max_bytes is not None and size > max_bytes:
                break
            out.write(chunk)
    if max_bytes is not None and size > max_bytes:
        target.unlink(missing_ok=True)
        return None
    return size


async def save_single(platform: Platform, upload: UploadFile, demo: Demo, limits) -> Path:
    """Keep one uploaded file until its job succeeds; refused early when the
    demo cannot take its suffix or it is over the per-file limit."""
    filename = safe_name(upload.filename)
    suffix = Upload(filename, b"").suffix
    if suffix not in accepted_suffixes(demo):
        raise bad_request(
            415,
            f"{suffix or 'a file without a suffix'} is not accepted; {demo.title} takes {', '.join(accepted_suffixes(demo))}",
        )
    target = platform.uploads_dir / f"{uuid.uuid4().hex}__{filename}"
    size = await write_upload(upload, target, limits.max_member_bytes)
    if size is None:
        raise bad_request(413, f"the file is over the limit of {limits.max_member_bytes} bytes for one file")
    if size == 0:
        target.unlink(missing_ok=True)
        raise bad_request(422, "the file is empty")
    return target
