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

from pydantic import BaseModel, ConfigDict, Field
from pydantic_settings import BaseSettings, SettingsConfigDict, TomlConfigSettingsSource

DEFAULT_CONFIG = Path("configs/vectorfair.toml")


class ConfigError(Exception):
    """The configuration cannot start the app; the message says what to fix."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class MilvusSettings(_Section):
    # A path means embedded Milvus Lite; http://host:19530 means a server.
    uri: str = "./data/milvus.db"
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
    path: Path = Path("./data/media")
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


class EncoderSettings(_Section):
    # Gather concurrent queries of a demo into one model call.
    batching: bool = True
    max_batch: int = Field(32, ge=1, le=1024)
    max_wait_ms: float = Field(5.0, ge=0, le=1000)
    # torch threads for the whole process; 0 = one per core. Model calls are
    # serialised per demo by the batcher, so this does not multiply.
    torch_threads: int = Field(0, ge=0, le=256)


class ServeSettings(_Section):
    host: str = "127.0.0.1"
    port: int = 8000


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
    encoders: EncoderSettings = Field(default_factory=EncoderSettings)
    serve: ServeSettings = Field(default_factory=ServeSettings)
    # [demos.<name>] sections, validated later by each demo's own Options model.
    demos: dict[str, dict[str, Any]] = Field(default_factory=dict)

    config_file: Path | None = None

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
        def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
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
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in errors()
        )
    return str(exc)
