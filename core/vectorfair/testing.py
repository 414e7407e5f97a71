"""Helpers for testing vectorfair and its plugins."""

from pathlib import Path


def write_config(root: Path, body: str = "", plugins: str = "") -> Path:
    """A config under `root` whose data, Milvus Lite file and media all live in
    `root/data`, loading only `plugins` (comma-separated entry point names;
    empty loads every installed plugin). `body` is appended TOML."""
    data = Path(root) / "data"
    config = Path(root) / "vectorfair.toml"
    config.write_text(
        f'data_dir = "{data}"\nplugins = "{plugins}"\n'
        f'[milvus]\nuri = "{data}/milvus.db"\nreconnect_interval = 0.5\n'
        f'[media]\npath = "{data}/media"\n' + body
    )
    return config
