"""The API's response models, as /docs shows them, and the error responses
every route declares."""

from typing import Any, Literal

from pydantic import BaseModel, Field


class ErrorBody(BaseModel):
    detail: str


class DemoInfo(BaseModel):
    name: str
    title: str
    description: str
    inputs: list[str]
    accepts: list[str]
    accepts_records: bool
    sample_query: str | None
    count: int | None = Field(description="items stored (recordings, videos, molecules…) that you can see")
    rows: int | None = Field(description="rows those items are stored as (a recording's windows, a video's keyframes)")
    item_noun: str = Field(description='what the demo calls its items, plural ("recordings")')
    row_noun: str | None = Field(description='what it calls its rows ("windows"), when an item has several')
    loading: bool
    status: str
    sample_error: str | None = Field(None, description="why the demo's sample data did not load, if it did not")


class PluginOut(BaseModel):
    name: str
    module: str
    version: str | None
    demos: list[str]
    ok: bool
    error: str | None


class Failure(BaseModel):
    name: str
    error: str


class ItemsAdded(BaseModel):
    ids: list[str]
    duplicates: list[str]
    failed: list[Failure]


class JobCreated(BaseModel):
    job_id: str
    status_url: str
    events_url: str


class JobOut(BaseModel):
    job_id: str
    demo: str
    label: str
    state: Literal["queued", "running", "succeeded", "failed", "cancelled"]
    total: int | None
    done: int
    failed: int
    duplicates: int
    errors: list[Failure]
    message: str
    created: float
    updated: float
    resumed: int
    step: dict[str, Any] | None = Field(
        None, description="progress inside the item being processed: item, done, total, unit (e.g. frames)"
    )


class HitOut(BaseModel):
    id: str
    score: float = Field(description="higher is more similar")
    title: str
    media_url: str | None
    thumbnail_url: str | None
    fields: dict[str, Any]
    item: str = Field("", description="the stored item the hit belongs to (one item may be stored as many rows)")


class SearchResult(BaseModel):
    hits: list[HitOut]
    took_ms: float
    summary: dict[str, Any] | None = Field(None, description="what the demo adds, e.g. a chatbot's answer")


class VectorStats(BaseModel):
    name: str
    declared_kind: str = Field(description="float, float16, binary or sparse, as the demo declares it")
    kind: str = Field(description="as this backend stores it (a declared fallback where the backend lacks the kind)")
    dim: int | None
    metric: str
    index_type: str
    index_params: dict[str, Any] = Field(description="the index's build parameters, e.g. HNSW's M and efConstruction")
    search_params: dict[str, Any] = Field(description="what a search of 10 hits asks of the index, e.g. HNSW's ef")


class FieldStats(BaseModel):
    name: str
    kind: str
    index: str | None = Field(description="the scalar index on the field, if any")
    description: str


class Stats(BaseModel):
    demo: str
    count: int = Field(description="items (what users stored) you can see")
    rows: int = Field(description="rows those items are stored as")
    collection: str
    backend: str = Field(description='what stores the vectors: "milvus_lite-3.2.2", "v2.3.5", …')
    index_type: str = Field(description="the first vector field's index (see `vectors` for every field)")
    index_params: dict[str, Any] = Field(description="the first vector field's index build parameters")
    search_params: dict[str, Any] = Field(description="what a search of 10 hits asks of the first field's index")
    metric: str
    dim: int | None
    vectors: list[VectorStats]
    fields: list[FieldStats]
    active_jobs: int


class Item(BaseModel):
    id: str
    title: str
    item: str
    created: int
    media_url: str | None
    thumbnail_url: str | None
    fields: dict[str, Any]


class ItemDeleted(BaseModel):
    id: str
    item: str
    deleted_rows: int


ERRORS = {code: {"model": ErrorBody} for code in (400, 403, 404, 409, 413, 415, 422, 429, 503)}
ADMIN_ERRORS = {**ERRORS, 401: {"model": ErrorBody}}
