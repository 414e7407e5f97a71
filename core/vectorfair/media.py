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
        else:
            # Stored again: the expiry of visitor data spares files touched since its cutoff.
            os.utime(target)
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


class S3MediaStore:
    """Blobs in an S3 bucket (MinIO, AWS, anything speaking the S3 API), so
    several app processes share them. Reads go through a local cache
    directory: a blob is fetched once per process and then served as a file,
    which keeps HTTP range requests (seeking in a video) cheap."""

    def __init__(
        self,
        bucket: str,
        cache: Path,
        endpoint_url: str | None = None,
        access_key: str | None = None,
        secret_key: str | None = None,
        region: str = "us-east-1",
        prefix: str = "media/",
    ):
        import boto3

        self.client = boto3.client(
            "s3",
            endpoint_url=endpoint_url or None,
            aws_access_key_id=access_key or None,
            aws_secret_access_key=secret_key or None,
            region_name=region,
        )
        self.bucket = bucket
        self.prefix = prefix
        self.cache = LocalMediaStore(cache)
        self._ensure_bucket()

    def _ensure_bucket(self) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError:
            self.client.create_bucket(Bucket=self.bucket)

    def _object(self, key: str) -> str:
        if not _KEY.match(key):
            raise KeyError(key)
        return f"{self.prefix}{key[:2]}/{key}"

    def put(self, data: bytes, content_type: str) -> str:
        key = hashlib.sha256(data).hexdigest()
        # Content addressed: an object that is there already holds these bytes.
        if self.cache.path(key) is None and not self._exists(key):
            self.client.put_object(Bucket=self.bucket, Key=self._object(key), Body=data, ContentType=content_type)
        self.cache.put(data, content_type)
        return key

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._object(key))
            return True
        except ClientError:
            return False

    def path(self, key: str) -> Path | None:
        from botocore.exceptions import ClientError

        try:
            cached = self.cache.path(key)
            if cached is not None:
                return cached
            response = self.client.get_object(Bucket=self.bucket, Key=self._object(key))
        except (KeyError, ClientError):
            return None
        data = response["Body"].read()
        if hashlib.sha256(data).hexdigest() != key:
            return None  # a damaged or foreign object is never served under this key
        self.cache.put(data, response.get("ContentType") or "application/octet-stream")
        return self.cache.path(key)

    def content_type(self, key: str) -> str | None:
        return self.cache.content_type(key) if self.path(key) is not None else None

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._object(key))
        except KeyError:
            return
        self.cache.delete(key)


def open_media_store(settings) -> MediaStore:
    """The store the `[media]` settings name: "local" (a directory) or "s3"."""
    if settings.backend == "local":
        return LocalMediaStore(settings.path)
    if settings.backend == "s3":
        return S3MediaStore(
            settings.bucket,
            settings.path,
            settings.endpoint_url,
            settings.access_key,
            settings.secret_key,
            settings.region,
            settings.prefix,
        )
    raise ValueError(f"unknown media backend {settings.backend!r}; use 'local' or 's3'")


class KeptUploadsUnavailable(Exception):
    """The shared store of kept uploads (the media bucket) cannot take one;
    answered as 503 with Retry-After."""


class LocalKeptUploads:
    """Uploads kept for jobs, by name, in a directory (the embedded default:
    the process that keeps them runs them)."""

    def __init__(self, root: Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def _file(self, name: str) -> Path:
        if not name or "/" in name or "\\" in name or name.startswith("."):
            raise KeyError(name)
        return self.root / name

    def keep(self, local: Path) -> None:
        """`local`, written in the uploads directory, is kept as it is."""

    def path(self, name: str) -> Path | None:
        try:
            target = self._file(name)
        except KeyError:
            return None
        return target if target.is_file() else None

    def delete(self, name: str) -> None:
        try:
            self._file(name).unlink(missing_ok=True)
        except KeyError:
            return


class S3KeptUploads(LocalKeptUploads):
    """Uploads kept for jobs in the media bucket (under `uploads/`), so any
    worker can run any job. The local directory is each process's copy: the
    web process writes there first, a worker downloads there to read."""

    def __init__(self, store: S3MediaStore, root: Path, prefix: str = "uploads/"):
        super().__init__(root)
        self.client, self.bucket, self.prefix = store.client, store.bucket, prefix

    def keep(self, local: Path) -> None:
        from boto3.exceptions import S3UploadFailedError
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            # upload_file streams in parts: an archive of gigabytes is never held in memory.
            self.client.upload_file(str(local), self.bucket, self.prefix + self._file(local.name).name)
        except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
            raise KeptUploadsUnavailable(
                f"the media store (S3) did not take the upload ({type(exc).__name__}); retry in a few seconds"
            ) from exc
        local.unlink(missing_ok=True)

    def path(self, name: str) -> Path | None:
        from botocore.exceptions import ClientError

        try:
            target = self._file(name)
        except KeyError:
            return None
        if not target.is_file():
            partial = target.with_name(target.name + ".part")
            try:
                self.client.download_file(self.bucket, self.prefix + name, str(partial))
            except ClientError:
                partial.unlink(missing_ok=True)
                return None
            os.replace(partial, target)
        return target

    def delete(self, name: str) -> None:
        try:
            key = self.prefix + self._file(name).name
        except KeyError:
            return
        self.client.delete_object(Bucket=self.bucket, Key=key)
        super().delete(name)


def open_kept_uploads(media: MediaStore, root: Path) -> LocalKeptUploads:
    """Kept uploads beside the media: in the bucket when media are in S3."""
    if isinstance(media, S3MediaStore):
        return S3KeptUploads(media, root)
    return LocalKeptUploads(root)
