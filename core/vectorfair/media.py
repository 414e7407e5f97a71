"""Stored media (uploads, thumbnails, keyframes) behind one small interface.

Blobs are addressed by the SHA-256 of their bytes, so a key can never name a
path outside the store, and the same bytes are kept once.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[0-9a-f]{64}$")


class MediaStore(Protocol):
    def put(self, data: bytes, content_type: str) -> str: ...
    def path(self, key: str) -> Path | None: ...
    def content_type(self, key: str) -> str | None: ...
    def delete(self, key: str) -> None: ...


class LocalMediaStore:
    """A directory: <root>/ab/abcdef… holds the bytes, a `.type` file its media type."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _file(self, key: str) -> Path:
        if not _KEY.match(key):
            raise KeyError(key)
        return self.root / key[:2] / key

    def put(self, data: bytes, content_type: str) -> str:
        key = hashlib.sha256(data).hexdigest()
        target = self._file(key)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            # Write then rename, so a crash never leaves a half file under the key.
            with tempfile.NamedTemporaryFile(dir=target.parent, delete=False) as tmp:
                tmp.write(data)
            os.replace(tmp.name, target)
            target.with_suffix(".type").write_text(content_type)
        return key

    def path(self, key: str) -> Path | None:
        try:
            target = self._file(key)
        except KeyError:
            return None
        return target if target.is_file() else None

    def content_type(self, key: str) -> str | None:
        try:
            return self._file(key).with_suffix(".type").read_text().strip()
        except (KeyError, OSError):
            return None

    def delete(self, key: str) -> None:
        try:
            target = self._file(key)
        except KeyError:
            return
        for path in (target, target.with_suffix(".type")):
            path.unlink(missing_ok=True)


def open_media_store(backend: str, root: Path) -> MediaStore:
    if backend == "local":
        return LocalMediaStore(root)
    raise ValueError(f"unknown media backend {backend!r}; this version has: local")
