"""A tiny demo with a deterministic fake encoder, to prove the core end to end.

Texts are encoded as hashed bags of words, so texts sharing words are near each
other: enough to test ranking without a model.
"""

import hashlib
import json
import re
import time

import numpy as np

from vectorfair import (
    Demo,
    DemoFilter,
    DemoOptions,
    Entry,
    ItemError,
    Media,
    QueryError,
    ScalarField,
    VectorField,
    hookimpl,
    report_progress,
)
from vectorfair.expr import quote

CALLS = {"startup": 0, "encode_batches": []}


class FakeOptions(DemoOptions):
    dim: int = 32
    sample_size: int = 20
    # Seconds per encoded batch, to make jobs slow enough to interrupt.
    encode_delay: float = 0.0


class FakeFilter(DemoFilter):
    tag: str | None = None


def embed(text: str, dim: int) -> np.ndarray:
    vector = np.zeros(dim, dtype=np.float32)
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % dim] += 1.0
    norm = np.linalg.norm(vector)
    return vector / norm if norm else vector


class FakeDemo(Demo):
    name = "fake"
    title = "Fake text demo"
    description = "Hashed bag-of-words vectors; for tests."
    inputs = ("text",)
    accepts = (".txt", ".json", ".lines")
    fields = (ScalarField("text", "str", max_length=2048), ScalarField("tag", "str", max_length=64, index=True))
    Options = FakeOptions
    Filter = FakeFilter
    sample_query = "apple banana"
    result_script = "/static/plugins/fake/render.js"

    @property
    def vectors(self) -> tuple[VectorField, ...]:
        return (VectorField(dim=self.dim),)

    @property
    def dim(self):
        return self.options.dim

    def encode(self, payloads):
        CALLS["encode_batches"].append(len(payloads))
        if self.options.encode_delay:
            time.sleep(self.options.encode_delay)
        if any(p == "poison" for p in payloads):
            raise RuntimeError("the fake encoder refuses 'poison'")
        return np.stack([embed(p, self.dim) for p in payloads])

    def encode_with_fields(self, payloads):
        # Records tagged "auto" get their tag from the encoder pass.
        vectors = self.encode(payloads)
        return vectors, [{"tag": "encoded"} if p.startswith("auto ") else {} for p in payloads]

    def parse_upload(self, upload):
        if upload.suffix == ".json":
            try:
                record = json.loads(upload.data)
            except ValueError as exc:
                raise ItemError(f"not valid JSON: {exc}") from None
            yield from self.parse_record(record)
            return
        text = upload.data.decode("utf-8")  # UnicodeDecodeError: a decoder failing on bad input
        if text.startswith("FAIL"):
            raise ItemError("this file asks to fail")
        parts = [p for p in text.split("\n---\n") if p.strip()]
        for n, part in enumerate(parts):
            report_progress(n + 1, len(parts), "parts")
            yield Entry(
                payload=part.strip(),
                title=f"{upload.name}#{n}",
                fields={"text": part.strip(), "tag": "file"},
                media=Media(upload.data, "text/plain"),
            )

    def split_upload(self, upload):
        if upload.suffix != ".lines":
            return None
        return [
            (f"line {n}", {"text": line, "tag": "line"})
            for n, line in enumerate(upload.data.decode("utf-8").split("\n"), 1)
        ]

    def summarize(self, payload, hits):
        return {"best": hits[0].title if hits else None}

    def identity(self, source):
        # Records that differ only in case or surrounding space are one item.
        if isinstance(source, dict) and isinstance(source.get("text"), str) and source["text"].strip():
            return source["text"].strip().lower()
        return None

    def parse_record(self, record):
        text = record.get("text")
        if not isinstance(text, str) or not text.strip():
            raise ItemError("a record needs a non-empty 'text'")
        # "precomputed" records arrive with their vector, as a long recording
        # encoded during parsing would.
        yield Entry(
            payload=text,
            title=record.get("title") or text[:40],
            fields={"text": text, "tag": str(record.get("tag", ""))},
            vectors={"vector": embed(text, self.dim)} if record.get("precomputed") else {},
        )

    def parse_query_text(self, text):
        if not text.strip():
            raise QueryError("the query is blank; type some words")
        return text

    def filter_expression(self, filter):
        return f"tag == {quote(filter.tag)}" if filter.tag else ""

    def sample_items(self):
        words = ["apple", "banana", "cherry", "date", "elder", "fig", "grape", "honeydew"]
        for i in range(self.options.sample_size):
            yield {"text": f"{words[i % 8]} {words[(i * 3 + 1) % 8]} sample {i}", "tag": "sample"}


@hookimpl
def register_demos():
    return [FakeDemo]


@hookimpl
def startup(app, demos):
    CALLS["startup"] += 1


@hookimpl
def register_routes(demos):
    from fastapi import APIRouter

    router = APIRouter(prefix="/api/fake-extra", tags=["fake"])

    @router.get("/demos")
    def names():
        return sorted(demos)

    return [router]


@hookimpl
def extra_static():
    from pathlib import Path

    return [("fake", Path(__file__).parent / "static")]
