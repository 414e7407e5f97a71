"""Settings: a TOML file, overridden by VECTORFAIR_* environment variables.

Precedence, highest first: explicit arguments, environment
(`VECTORFAIR_MILVUS__URI`, `VECTORFAIR_DEMOS__QA_CHATBOT__ENABLED`), the TOML
file (`--config PATH`, else `VECTORFAIR_CONFIG`, else configs/vectorfair.toml
when it exists), then the defaults below.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

DEFAULT_CONFIG = Path("configs/vectorfair.toml")


class ConfigError(Exception):
    """The configuration cannot start the app; the message says what to fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MilvusSettings(_Section):
    # A path means embedded Milvus Lite; http://host:19530 means a server.
    # Empty: Milvus Lite at <data_dir>/milvus.db.
    uri: str = ""
    token: str = ""
    collection_prefix: str = "vf"
    timeout: float = 10.0
    # How often to retry a Milvus that is unreachable, in seconds.
    reconnect_interval: float = 2.0


class MediaSettings(_Section):
    # "local": blobs in `path`. "s3": blobs in an S3 bucket (MinIO in
    # docker-compose.yml) shared by every app process, `path` is then each
    # process's read cache. Needs `pip install 'vectorfair[s3]'`.
    backend: Literal["local", "s3"] = "local"
    # Empty: <data_dir>/media.
    path: Path | None = None
    bucket: str = "vectorfair"
    endpoint_url: str = ""
    access_key: str = ""
    secret_key: str = ""
    region: str = "us-east-1"
    prefix: str = "media/"


class LimitSettings(_Section):
    max_request_bytes: int = 200 * 1024 * 1024
    max_files_per_request: int = 64
    max_archive_members: int = 20_000
    max_archive_bytes: int = 2 * 1024 * 1024 * 1024
    max_member_bytes: int = 200 * 1024 * 1024
    max_top_k: int = 100
    max_query_chars: int = 10_000


class JobSettings(_Section):
    batch_size: int = 32


class QueueSettings(_Section):
    # Empty (the embedded default): jobs run in the web process, records in
    # SQLite. "redis://host:6379/0": jobs go through a durable queue in Redis
    # and run in `vectorfair worker` processes; job records, progress, quota
    # claims and rate limits are shared by every process (needs
    # `pip install 'vectorfair[queue]'`).
    redis_url: str = ""
    # Prefix of every key this deployment keeps in Redis.
    namespace: str = "vectorfair"
    # Jobs one worker process runs at once.
    worker_threads: int = Field(1, ge=1, le=64)
    # A worker silent this long is taken for dead: its job goes back on the
    # queue and another worker resumes it.
    heartbeat_timeout_s: float = Field(30.0, ge=1)
    # Attempts after a job failed unexpectedly (Milvus lost mid-job, say),
    # the first after `retry_backoff_s`, then doubling.
    max_retries: int = Field(3, ge=0, le=100)
    retry_backoff_s: float = Field(5.0, gt=0)
    # On SIGTERM a worker waits this long for its job to end before leaving it to another worker.
    stop_timeout_s: float = Field(30.0, ge=0)
    # How long a worker keeps trying to write a job's end while Redis is away.
    final_save_timeout_s: float = Field(600.0, ge=0)


class EncoderSettings(_Section):
    # Gather concurrent queries of a demo into one model call.
    batching: bool = True
    max_batch: int = Field(32, ge=1, le=1024)
    # 0: a lone query is encoded at once; under load the queue fills while
    # the previous batch runs, so batches form without any wait.
    max_wait_ms: float = Field(0.0, ge=0, le=1000)
    # torch threads for the whole process; 0 = one per core. Model calls are
    # serialised per demo by the batcher, so this does not multiply.
    torch_threads: int = Field(0, ge=0, le=256)
    # BLAS threads (numpy's OpenBLAS) for the whole process; 0 = one per core.
    # None (the default): one on embedded Milvus Lite, and one per core on a
    # server (molecule search there: 8.7 ms against 13.6 ms with one thread).
    # QA at concurrency 32, one thread against one per core: Lite 3, whose
    # engine runs its numpy in this process beside torch, 163 against 138
    # q/s; Lite 2.5, a child process, 192 and 187 against 187 and 174 q/s
    # (two runs each, alternating).
    blas_threads: int | None = Field(None, ge=0, le=256)


class SearchSettings(_Section):
    # Gather concurrent searches of a demo into one Milvus call with many
    # query vectors (grouped by vector field, filter expression and limit).
    batching: bool = True
    max_batch: int = Field(64, ge=1, le=1024)
    # 0: take whatever is already waiting, adding no delay to a lone search;
    # under load the queue fills while the previous call runs.
    max_wait_ms: float = Field(0.0, ge=0, le=1000)


class ServeSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8000
    # "text" for a terminal, "json" (one object per line, with the request id)
    # for a log collector.
    log_format: Literal["text", "json"] = "text"
    log_level: str = "INFO"
    # Addresses of reverse proxies whose X-Forwarded-For/-Proto are believed
    # (uvicorn's forwarded_allow_ips); the rate limits key on the client
    # address this yields.
    forwarded_allow_ips: str = "127.0.0.1"


class VisitorSettings(_Section):
    # On (the hosted portal): every visitor is an anonymous tenant named in a
    # signed cookie and sees the shared data plus only what they uploaded.
    # Off: one tenant, everything uploaded is shared.
    separate: bool = False
    # Signs the visitor cookie. Empty: a random key kept in data_dir, which is
    # enough for one process; give every process of a deployment the same key.
    secret: str = ""
    cookie_name: str = "vf_visitor"
    # "auto": Secure when the request came over https (as the proxy says).
    cookie_secure: Literal["auto", "always", "never"] = "auto"
    cookie_max_age_s: int = Field(30 * 86400, ge=60)
    # Quotas per visitor over all demos: stored items, and bytes of stored
    # files (media and thumbnails). 0 = no limit.
    max_items: int = Field(200, ge=0)
    max_bytes: int = Field(100 * 1024 * 1024, ge=0)
    # Bulk jobs a visitor may have queued or running at once (jobs run one
    # at a time for everyone, so this keeps one visitor from holding the queue).
    max_active_jobs: int = Field(2, ge=1)
    # A visitor's items (and finished jobs) are deleted this long after they were stored.
    expire_after_s: int = Field(24 * 3600, ge=1)
    cleanup_interval_s: float = Field(300.0, gt=0)


class AdminSettings(_Section):
    # Admin routes (loading shared data, drop, reload, adding to the shared
    # data) take this key as `X-API-Key`. Empty: open when visitors are not
    # separate (a local install), closed when they are (a portal).
    api_key: str = ""


class RateLimitSettings(_Section):
    # Per client address, in the `limits` library's notation ("30/minute",
    # "5/second;100/hour"). Admin requests are not limited.
    enabled: bool = False
    search: str = "60/minute"
    upload: str = "20/minute"
    api: str = "600/minute"
    # "memory://" counts per process; "redis://host:6379" shares the counts
    # between processes (needs the redis client installed). Empty: the
    # queue's Redis when [queue] redis_url is set, else "memory://".
    storage_uri: str = ""


class HttpSettings(_Section):
    # Origins allowed to call the API from a browser (CORS); empty: none.
    cors_origins: list[str] = Field(default_factory=list)
    # Added to every response that does not set them itself.
    headers: dict[str, str] = Field(
        default_factory=lambda: {
            "X-Content-Type-Options": "nosniff",
            "X-Frame-Options": "DENY",
            "Referrer-Policy": "same-origin",
            "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; media-src 'self' blob:; "
            "style-src 'self' 'unsafe-inline'; script-src 'self'; object-src 'none'; "
            "frame-ancestors 'none'; base-uri 'self'",
        }
    )
    # Prometheus metrics at /metrics.
    metrics: bool = True


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="VECTORFAIR_", env_nested_delimiter="__", extra="forbid", case_sensitive=False
    )

    data_dir: Path = Path("./data")
    # Comma-separated plugin (entry point) names to load; empty loads all.
    plugins: str = ""
    # Demos with no [demos.<name>] section: on (true) or off (false).
    enable_unlisted_demos: bool = True
    # Load every demo's model in the background once Milvus is ready, so the
    # first visitor does not wait for it.
    warm_up_on_start: bool = True
    milvus: MilvusSettings = Field(default_factory=MilvusSettings)
    media: MediaSettings = Field(default_factory=MediaSettings)
    limits: LimitSettings = Field(default_factory=LimitSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    queue: QueueSettings = Field(default_factory=QueueSettings)
    encoders: EncoderSettings = Field(default_factory=EncoderSettings)
    search: SearchSettings = Field(default_factory=SearchSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    visitors: VisitorSettings = Field(default_factory=VisitorSettings)
    admin: AdminSettings = Field(default_factory=AdminSettings)
    rate_limits: RateLimitSettings = Field(default_factory=RateLimitSettings)
    http: HttpSettings = Field(default_factory=HttpSettings)
    # [demos.<name>] sections, validated later by each demo's own Options model.
    demos: dict[str, dict[str, Any]] = Field(default_factory=dict)

    config_file: Path | None = None

    @model_validator(mode="after")
    def _rooted_in_data_dir(self):
        """data_dir is the root of everything stored, unless a path is set explicitly."""
        if not self.milvus.uri:
            self.milvus.uri = str(Path(self.data_dir) / "milvus.db")
        if self.media.path is None:
            self.media.path = Path(self.data_dir) / "media"
        if not self.rate_limits.storage_uri:
            self.rate_limits.storage_uri = self.queue.redis_url or "memory://"
        return self

    @property
    def plugin_allowlist(self) -> set[str] | None:
        names = {p.strip() for p in self.plugins.split(",") if p.strip()}
        return names or None


def config_path(explicit: str | Path | None = None) -> Path | None:
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        return path
    env = os.environ.get("VECTORFAIR_CONFIG")
    if env:
        path = Path(env)
        if not path.is_file():
            raise ConfigError(f"VECTORFAIR_CONFIG names {path}, which does not exist")
        return path
    return DEFAULT_CONFIG if DEFAULT_CONFIG.is_file() else None


def load_settings(config: str | Path | None = None, **overrides: Any) -> Settings:
    path = config_path(config)

    class _FileSettings(Settings):
        @classmethod
        def settings_customise_sources(
            cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings
        ):
            sources = [init_settings, env_settings]
            if path is not None:
                sources.append(TomlConfigSettingsSource(settings_cls, toml_file=path))
            return tuple(sources)

    try:
        loaded = _FileSettings(**overrides)
    except Exception as exc:  # pydantic ValidationError or a TOML syntax error
        raise ConfigError(f"invalid configuration{f' in {path}' if path else ''}: {_readable(exc)}") from exc
    loaded.config_file = path
    loaded.demos = {name.lower(): dict(section) for name, section in loaded.demos.items()}
    return loaded


def _readable(exc: Exception) -> str:
    errors = getattr(exc, "errors", None)
    if callable(errors):
        return "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors())
    return str(exc)
