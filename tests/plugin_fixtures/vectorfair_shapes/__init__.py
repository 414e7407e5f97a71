"""Two model-free demos that use the schema a plugin may declare beyond one
float vector, written without any core edit:

- `bits`: a binary vector (JACCARD on BIN_FLAT on a server; Milvus Lite has no
  binary vectors, so there the declared fallback, 0/1 floats by COSINE);
- `pairs`: two vector fields in one collection, a word vector on every row and
  a colour vector on the rows that have a colour; a query names its field.

Each demo is its own entry point (vectorfair_shapes.bits, vectorfair_shapes.pairs).
"""

import hashlib
import re

import numpy as np

from vectorfair import Demo, DemoFilter, Entry, ItemError, QueryError, ScalarField, VectorField

BITS = 256
WORDS = ["apple", "banana", "cherry", "date", "elder", "fig", "grape", "honeydew", "kiwi", "lemon", "mango", "nut"]
COLOURS = {
    "red": (255, 0, 0),
    "green": (0, 160, 0),
    "blue": (0, 0, 255),
    "yellow": (255, 220, 0),
    "purple": (128, 0, 128),
    "orange": (255, 140, 0),
}


def trigram_bits(text: str) -> np.ndarray:
    """A fingerprint: one bit per hashed character trigram."""
    bits = np.zeros(BITS, dtype=np.uint8)
    padded = f"  {text.lower()}  "
    for i in range(len(padded) - 2):
        bits[int(hashlib.blake2b(padded[i : i + 3].encode(), digest_size=4).hexdigest(), 16) % BITS] = 1
    return bits


def word_vector(text: str, dim: int = 48) -> np.ndarray:
    vector = np.zeros(dim, dtype=np.float32)
    for word in re.findall(r"\w+", text.lower()):
        vector[int(hashlib.md5(word.encode()).hexdigest(), 16) % dim] += 1.0
    return vector / max(float(np.linalg.norm(vector)), 1e-9)


def _text(record: dict) -> str:
    text = record.get("text")
    if not isinstance(text, str) or not text.strip():
        raise ItemError("a record needs a non-empty 'text'")
    return text.strip()


class Bits(Demo):
    name = "bits"
    title = "Spelling fingerprints"
    fields = (ScalarField("text", max_length=512),)
    vectors = (
        VectorField(
            "fingerprint",
            "binary",
            BITS,
            "JACCARD",
            index=("BIN_FLAT",),
            fallback=VectorField(kind="float", metric="COSINE", index=("FLAT",)),
        ),
    )
    sample_query = "apple banana"

    def encode(self, payloads):
        return np.stack([trigram_bits(text) for text in payloads])

    def parse_record(self, record):
        text = _text(record)
        yield Entry(payload=text, title=text, fields={"text": text})

    def sample_items(self):
        for i in range(30):
            yield {"text": f"{WORDS[i % 12]} {WORDS[(i * 5 + 3) % 12]} {i}"}


class PairsFilter(DemoFilter):
    colour: str | None = None


class Pairs(Demo):
    name = "pairs"
    title = "Words and colours"
    description = 'Search by words, or type "#colour" to search by colour.'
    fields = (ScalarField("text", max_length=512), ScalarField("colour", max_length=16, index=True))
    vectors = (VectorField("words", dim=48), VectorField("rgb", dim=3, metric="L2", index=("FLAT",)))
    Filter = PairsFilter
    sample_query = "apple"

    def encode(self, payloads):
        return np.stack([word_vector(text) for text in payloads])

    def parse_record(self, record):
        text, colour = _text(record), record.get("colour")
        if colour is not None and colour not in COLOURS:
            raise ItemError(f"unknown colour {colour!r}; use one of {', '.join(COLOURS)}")
        rgb = {"rgb": np.asarray(COLOURS[colour], dtype=np.float32) / 255} if colour else {}
        yield Entry(payload=text, title=text, fields={"text": text, "colour": colour or ""}, vectors=rgb)

    def search(self, nearest, payload, top_k, filter):
        if payload.startswith("#"):
            colour = payload[1:]
            if colour not in COLOURS:
                raise QueryError(f"unknown colour {colour!r}; use one of {', '.join(COLOURS)}")
            return nearest(np.asarray(COLOURS[colour], dtype=np.float32) / 255, top_k, field="rgb")
        return nearest(self.encode_query(payload), top_k)

    def sample_items(self):
        names = list(COLOURS)
        for i in range(24):
            record = {"text": f"{WORDS[i % 12]} {WORDS[(i * 7 + 2) % 12]} {i}"}
            if i % 3:  # a third of the rows have no colour vector
                record["colour"] = names[(i // 2) % len(names)]
            yield record
