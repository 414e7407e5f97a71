"""POST /api/demos/{demo}/search: a text query as JSON, or a file (or text)
as multipart, with the demo's typed filter."""

import functools
import json
from typing import Any

import anyio
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from starlette.datastructures import UploadFile

from ..contract import file_query, text_query
from ..demo import Demo, QueryError, Upload
from ..guard import tenant_of
from ..runtime import Platform
from .errors import bad_request, validation_text
from .schemas import ERRORS, SearchResult
from .uploads import int_field, json_body, read_form


def add_search_routes(router: APIRouter, platform: Platform, demo: Demo) -> None:
    """Add the demo's search route: JSON when the demo takes text only,
    multipart (and JSON for text) when it takes files."""
    limits = platform.settings.limits
    SearchBody = search_body_model(demo, limits)
    description = f"Search {demo.title} by {' or '.join(demo.inputs)}; hits are ranked, best first."

    async def search_text(body: SearchBody, request: Request):  # type: ignore[valid-type]
        return await _search(
            platform,
            demo,
            lambda: demo.parse_query_text(body.query),
            body.top_k,
            body.filter if demo.Filter else parse_filter(demo, body.filter),
            tenant_of(request),
        )

    if not file_query(demo):
        router.add_api_route(
            "/search",
            search_text,
            methods=["POST"],
            response_model=SearchResult,
            responses=ERRORS,
            summary=f"Search {demo.title}",
            description=description,
        )
        return

    async def search_file(request: Request):
        if text_query(demo) and request.headers.get("content-type", "").startswith("application/json"):
            # A demo that takes text as well as files takes the text query as JSON too.
            try:
                body = SearchBody.model_validate(await json_body(request))
            except ValidationError as exc:
                raise bad_request(422, f"invalid search: {validation_text(exc.errors())}") from None
            return await search_text(body, request)
        form = await read_form(request, "multipart/form-data with a `file` field and an optional `top_k` field")
        upload = form.get("file")
        text = form.get("query")
        if not isinstance(upload, UploadFile) and not (text_query(demo) and isinstance(text, str) and text):
            raise bad_request(422, f"send the query as a multipart file field named `file` ({', '.join(demo.inputs)})")
        top_k = int_field(form.get("top_k"), 10, 1, limits.max_top_k, "top_k")
        filter_raw = form.get("filter")
        try:
            filter_model = parse_filter(
                demo, json.loads(filter_raw) if isinstance(filter_raw, str) and filter_raw else None
            )
        except json.JSONDecodeError:
            raise bad_request(422, "the `filter` field must be a JSON object") from None
        if isinstance(upload, UploadFile):
            data = await upload.read()
            if not data:
                raise bad_request(422, "the uploaded query file is empty")
            parse = functools.partial(
                demo.parse_query_file, Upload(upload.filename or "query", data, upload.content_type)
            )
        else:
            parse = functools.partial(demo.parse_query_text, text)
        return await _search(platform, demo, parse, top_k, filter_model, tenant_of(request))

    router.add_api_route(
        "/search",
        search_file,
        methods=["POST"],
        response_model=SearchResult,
        responses=ERRORS,
        summary=f"Search {demo.title}",
        description=description,
        openapi_extra=_search_file_body(demo, limits.max_top_k),
    )


def search_body_model(demo: Demo, limits) -> type[BaseModel]:
    """The JSON body of a text search, typed with the demo's Filter."""
    return create_model(
        f"{_camel(demo.name)}Search",
        __config__=ConfigDict(extra="forbid"),
        query=(str, Field(min_length=1, max_length=limits.max_query_chars, description=" or ".join(demo.inputs))),
        top_k=(int, Field(10, ge=1, le=limits.max_top_k)),
        filter=(demo.Filter | None, None)
        if demo.Filter
        else (dict | None, Field(None, description="this demo has no filters")),
    )


def parse_filter(demo: Demo, raw: Any) -> BaseModel | None:
    if raw in (None, "", {}):
        return None
    if demo.Filter is None:
        raise bad_request(422, f"{demo.title} takes no filter; leave it out")
    try:
        return demo.Filter.model_validate(raw)
    except ValidationError as exc:
        raise bad_request(422, f"invalid filter: {validation_text(exc.errors())}") from None


async def _search(
    platform: Platform, demo: Demo, parse, top_k: int, filter_model: BaseModel | None, tenant: str
) -> dict[str, Any]:
    def run():
        # A demo may find a query unusable while parsing it or while searching.
        try:
            outcome = platform.search(demo.name, parse(), top_k, filter_model, tenant=tenant)
        except QueryError as exc:
            raise bad_request(422, str(exc)) from None
        return {"hits": [h.__dict__ for h in outcome.hits], "took_ms": outcome.took_ms, "summary": outcome.summary}

    return await anyio.to_thread.run_sync(run)


def _search_file_body(demo: Demo, max_top_k: int) -> dict[str, Any]:
    body = _multipart_body(
        {
            "file": {"type": "string", "format": "binary", "description": f"the query ({', '.join(demo.inputs)})"},
            **({"query": {"type": "string", "description": "or a text query"}} if text_query(demo) else {}),
            "top_k": {"type": "integer", "default": 10, "minimum": 1, "maximum": max_top_k},
            "filter": {"type": "string", "description": "optional JSON object of filters"},
        },
        required=[] if text_query(demo) else ["file"],
    )
    if text_query(demo):
        body["requestBody"]["content"]["application/json"] = {
            "schema": {
                "type": "object",
                "required": ["query"],
                "additionalProperties": False,
                "properties": {
                    "query": {"type": "string", "minLength": 1},
                    "top_k": {"type": "integer", "minimum": 1, "maximum": max_top_k},
                    "filter": {"type": "object", "description": "this demo's filters"},
                },
            }
        }
    return body


def _multipart_body(properties: dict[str, Any], required: list[str]) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "multipart/form-data": {"schema": {"type": "object", "required": required, "properties": properties}}
            },
        }
    }


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in name.split("_"))
