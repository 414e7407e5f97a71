"""A demo's items: add them now (POST /items), read one, its media and
thumbnail, delete one."""

import re
from typing import Any

import anyio
from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, JSONResponse

from ..contract import accepted_suffixes, takes_records
from ..demo import Demo
from ..guard import tenant_of
from ..quotas import QUOTA_REFUSAL
from ..runtime import Platform, media_url
from ..tenancy import PUBLIC_TENANT, row_tenant
from .errors import bad_request
from .schemas import ADMIN_ERRORS, ERRORS, Failure, Item, ItemDeleted, ItemsAdded
from .uploads import item_sources

# Row ids are made by the core (hex keys, "-n" for an item's further rows).
ITEM_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def add_item_routes(router: APIRouter, platform: Platform, demo: Demo) -> None:
    """Add POST /items, GET /items/{item_id} (and its media and thumbnail) and
    DELETE /items/{item_id} to the demo's router."""
    name = demo.name
    limits = platform.settings.limits

    async def add_items(request: Request):
        sources = await item_sources(request, demo, limits)
        tenant = tenant_of(request)

        def run():
            platform.require(name)
            return platform.ingestor(name, tenant).run(sources)

        outcomes = await anyio.to_thread.run_sync(run)
        body = ItemsAdded(
            ids=[i for o in outcomes if not o.error for i in o.ids],
            duplicates=[i for o in outcomes if o.duplicate and not o.error for i in o.ids],
            failed=[Failure(name=o.name, error=o.error) for o in outcomes if o.error],
        )
        if outcomes and not body.ids:
            over_quota = all(f.error.startswith(QUOTA_REFUSAL) for f in body.failed)
            return JSONResponse(
                {
                    "detail": "no item could be stored: " + "; ".join(f"{f.name}: {f.error}" for f in body.failed[:10]),
                    **body.model_dump(),
                },
                status_code=403 if over_quota else 422,
            )
        return JSONResponse(body.model_dump(), status_code=201)

    router.add_api_route(
        "/items",
        add_items,
        methods=["POST"],
        status_code=201,
        response_model=ItemsAdded,
        responses=ERRORS,
        summary=f"Add items to {demo.title}",
        description="Stores the items now; one that cannot be used is listed in `failed`, the rest are stored. "
        "Items already stored (same content) are not stored again.",
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {kind: {"schema": schema} for kind, schema in _item_bodies(demo).items()},
            }
        },
    )

    @router.get("/items/{item_id}", response_model=Item, responses=ERRORS, summary=f"One item of {demo.title}")
    async def get_item(item_id: str, request: Request):
        row = await visible_row(platform, demo, item_id, tenant_of(request))
        return Item(
            id=row["id"],
            title=row.get("title", ""),
            item=row.get("item", ""),
            created=row.get("created", 0),
            media_url=media_url(demo, row["id"], row.get("media"), "media"),
            thumbnail_url=media_url(demo, row["id"], row.get("thumb"), "thumbnail"),
            fields={f.name: row.get(f.name) for f in demo.fields},
        )

    @router.get(
        "/items/{item_id}/media",
        responses={**ERRORS, 200: {"content": {"application/octet-stream": {}}}},
        response_class=FileResponse,
        summary="The item's stored media (HTTP range requests work)",
    )
    async def get_media(item_id: str, request: Request):
        return await _blob(platform, demo, item_id, "media", "media", request)

    @router.get(
        "/items/{item_id}/thumbnail",
        responses={**ERRORS, 200: {"content": {"image/*": {}}}},
        response_class=FileResponse,
        summary="The item's thumbnail",
    )
    async def get_thumbnail(item_id: str, request: Request):
        return await _blob(platform, demo, item_id, "thumb", "thumbnail", request)

    @router.delete(
        "/items/{item_id}",
        response_model=ItemDeleted,
        responses=ADMIN_ERRORS,
        summary=f"Delete one item of {demo.title}",
    )
    async def delete_item(item_id: str, request: Request):
        """Deletes the item a row belongs to (every row of it: a video's keyframes, a recording's windows).
        Visitors delete their own items; shared items need the admin key."""
        tenant = tenant_of(request)
        row = await visible_row(platform, demo, item_id, tenant)
        if not platform.tenancy.owns(tenant, row):
            raise bad_request(403, "this item is shared data; only an admin (X-API-Key) can delete it")
        item = row.get("item") or row["id"]
        deleted = await anyio.to_thread.run_sync(lambda: platform.tenancy.delete_item(demo, item, row_tenant(row)))
        return ItemDeleted(id=row["id"], item=item, deleted_rows=deleted)


def _item_bodies(demo: Demo) -> dict[str, Any]:
    """The request bodies POST /items takes: files as multipart, records as JSON."""
    bodies = {}
    if accepted_suffixes(demo):
        bodies["multipart/form-data"] = {
            "type": "object",
            "required": ["files"],
            "properties": {
                "files": {
                    "type": "array",
                    "items": {"type": "string", "format": "binary"},
                    "description": f"one or more files: {', '.join(accepted_suffixes(demo))}",
                }
            },
        }
    if takes_records(demo):
        bodies["application/json"] = {
            "type": "object",
            "required": ["records"],
            "properties": {"records": {"type": "array", "items": {"type": "object"}, "description": "records to add"}},
        }
    return bodies


async def visible_row(platform: Platform, demo: Demo, item_id: str, tenant: str) -> dict[str, Any]:
    """The row, if `tenant` may see it; another visitor's row is "no item" too."""
    if not ITEM_ID.fullmatch(item_id):
        raise bad_request(404, f"no item {item_id[:64]!r} in {demo.name}; ids are letters, digits, '-' and '_'")

    def fetch():
        platform.require(demo.name)
        return platform.store.get(demo, item_id)

    row = await anyio.to_thread.run_sync(fetch)
    if row is None or not platform.tenancy.can_see(tenant, row):
        raise bad_request(404, f"no item {item_id!r} in {demo.name}; search or GET /api/demos/{demo.name}/stats")
    return row


async def _blob(platform: Platform, demo: Demo, item_id: str, field: str, what: str, request: Request):
    row = await visible_row(platform, demo, item_id, tenant_of(request))
    path = platform.media.path(row.get(field) or "")
    if path is None:
        raise bad_request(404, f"item {item_id!r} has no stored {what}")
    content_type = platform.media.content_type(row[field]) or "application/octet-stream"
    shared = row_tenant(row) == PUBLIC_TENANT
    return FileResponse(
        path,
        media_type=content_type,
        headers={"Cache-Control": "public, max-age=86400" if shared else "private, max-age=3600"},
    )
