"""The portal's pages: a home page of demo cards and one page per demo, built
from what each demo declares and driven by the same JSON API (static/app.js).
Everything is served by the app itself: no CDN, works offline."""

import json
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from .contract import accepted_suffixes, file_query, text_query
from .runtime import Platform

HERE = Path(__file__).parent
ACCEPT = {"image": "image/*", "video": "video/*", "audio": "audio/*"}


def mount_web(app, platform: Platform, extra_static: list[tuple[str, Path]]) -> None:
    templates = Jinja2Templates(directory=str(HERE / "templates"))
    # Plugin mounts first: "/static" would otherwise answer for their paths.
    for prefix, directory in extra_static:
        app.mount(f"/static/plugins/{prefix}", StaticFiles(directory=directory), name=f"static-{prefix}")
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    router = APIRouter(include_in_schema=False)

    @router.get("/", response_class=HTMLResponse)
    async def home(request: Request):
        return templates.TemplateResponse(request, "home.html", {"demos": list(platform.demos.values())})

    @router.get("/demos/{name}", response_class=HTMLResponse)
    async def demo_page(request: Request, name: str):
        demo = platform.demos.get(name)
        if demo is None:
            raise HTTPException(404, f"no demo {name!r}; enabled demos: {', '.join(platform.demos) or 'none'}")
        page = {
            "name": demo.name,
            "title": demo.title,
            "inputs": list(demo.inputs),
            "text_input": text_query(demo),
            "file_input": file_query(demo),
            "accept": ",".join(ACCEPT.get(kind, "*/*") for kind in demo.inputs if kind in ACCEPT),
            "sample_query": demo.sample_query,
            "query_label": demo.query_label,
            "item_noun": demo.item_noun,
            "row_noun": demo.row_noun,
            "query_preview": demo.query_preview,
            "filters": demo.Filter.model_json_schema() if demo.Filter else None,
            "accepts": list(accepted_suffixes(demo)),
            "result_script": demo.result_script,
        }
        return templates.TemplateResponse(
            request,
            "demo.html",
            {
                "demo": demo,
                "demos": list(platform.demos.values()),
                "accepts": accepted_suffixes(demo),
                # "</" escaped: the JSON sits inside a <script> element.
                "page_json": json.dumps(page).replace("</", "<\\/"),
            },
        )

    app.include_router(router)
