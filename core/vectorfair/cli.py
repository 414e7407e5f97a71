"""The `vectorfair` command (Typer): serve, worker, list, load, search, drop, new-plugin.

Every command goes through `Platform`, as the HTTP API does: a search prints
the demo's summary too, and `drop` is refused while the demo has jobs.

`load`, `search` and `drop` work on the data directly (in this process), so do
not run them against an embedded Milvus Lite file that a running server holds:
Lite allows one process per database. Use the HTTP API then, or a Milvus server.
"""

from __future__ import annotations

import json
import logging.config
import os
from pathlib import Path
from typing import NoReturn, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from .contract import file_query
from .settings import ConfigError, load_settings

app = typer.Typer(help="Vector-search demos on Milvus.", no_args_is_help=True, add_completion=False)
console = Console(soft_wrap=True)
err = Console(stderr=True, soft_wrap=True)
ConfigOption = typer.Option(
    None, "--config", "-c", help="TOML config file (default: $VECTORFAIR_CONFIG or configs/vectorfair.toml)"
)


def _platform(config: Optional[Path]):
    from .runtime import Platform

    try:
        return Platform(load_settings(config))
    except ConfigError as exc:
        err.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None


def _demo(platform, name: str):
    if name not in platform.demos:
        err.print(f"[red]no demo {name!r}[/red]; enabled demos: {', '.join(platform.demos) or 'none'}")
        raise typer.Exit(2)
    from .store import StoreUnavailable

    try:
        return platform.require(name)
    except StoreUnavailable as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(3) from None
    except Exception as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(3) from None


@app.command()
def serve(
    config: Optional[Path] = ConfigOption,
    host: Optional[str] = typer.Option(None, help="bind address (config: [serve] host)"),
    port: Optional[int] = typer.Option(None, help="port (config: [serve] port)"),
    log_level: Optional[str] = typer.Option(None, help="log level (config: [serve] log_level)"),
    log_format: Optional[str] = typer.Option(None, help="text or json (config: [serve] log_format)"),
):
    """Run the web app and API."""
    import uvicorn

    from .api import create_app
    from .observability import logging_config

    try:
        settings = load_settings(config)
        if log_level:
            settings.serve.log_level = log_level
        if log_format:
            settings.serve.log_format = log_format
        log_config = logging_config(settings.serve.log_format, settings.serve.log_level)
        logging.config.dictConfig(log_config)
        web_app = create_app(settings)
    except (ConfigError, KeyError) as exc:
        err.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None
    refuse_unrecoverable_milvus(web_app.state.platform.store)
    uvicorn.run(
        web_app,
        host=host or settings.serve.host,
        port=port or settings.serve.port,
        log_config=log_config,
        proxy_headers=True,
        forwarded_allow_ips=settings.serve.forwarded_allow_ips,
    )


@app.command()
def worker(
    config: Optional[Path] = ConfigOption,
    threads: Optional[int] = typer.Option(None, help="jobs run at once (config: [queue] worker_threads)"),
    log_level: Optional[str] = typer.Option(None, help="log level (config: [serve] log_level)"),
):
    """Run queued jobs (needs [queue] redis_url): start as many as the encoding needs.

    Stops on SIGTERM or Ctrl-C, letting the running job end first (up to
    [queue] stop_timeout_s); a job cut off is taken over by another worker."""
    import signal
    import threading

    from .observability import logging_config
    from .queue import JobWorker

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        err.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None
    if not settings.queue.redis_url:
        err.print(
            "[red]no job queue:[/red] set \\[queue] redis_url (or VECTORFAIR_QUEUE__REDIS_URL); without it jobs run in `vectorfair serve`"
        )
        raise typer.Exit(2)
    if threads:
        settings.queue.worker_threads = threads
    if log_level:
        settings.serve.log_level = log_level
    logging.config.dictConfig(logging_config(settings.serve.log_format, settings.serve.log_level))
    platform = _platform_of(settings)
    refuse_unrecoverable_milvus(platform.store)
    stopping = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.set())
    runner = JobWorker(platform)
    runner.start()
    try:
        while not stopping.wait(1.0):
            pass
    finally:
        if not runner.stop():
            logging.getLogger("vectorfair.queue").warning(
                "a job outlived [queue] stop_timeout_s; it is left to another worker"
            )
            if platform.tenancy.claims is not None:
                platform.tenancy.claims.release_open()  # the worker taking it over claims its items again
            logging.shutdown()
            os._exit(0)  # at once: the job's thread writes nothing more, its lease runs out
        platform.close()


def _platform_of(settings):
    from .runtime import Platform

    try:
        return Platform(settings)
    except (ConfigError, KeyError) as exc:
        err.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None


def refuse_unrecoverable_milvus(store) -> None:
    """A Milvus server that refuses the token, or a Milvus Lite database the
    installed engine cannot read, stops start-up with one line naming the
    cause. A server that is not there yet does not: the app starts, answers
    503 and connects when it comes."""
    from rich.markup import escape

    from .store import LiteFileOfOtherEngine, check_lite_file, is_lite_uri

    if is_lite_uri(store.settings.uri):
        try:
            check_lite_file(Path(store.settings.uri))
        except LiteFileOfOtherEngine as exc:
            err.print(f"[red]Milvus Lite:[/red] {escape(str(exc))}")
            raise typer.Exit(2) from None
        return
    if not store.connect() and store.cannot_recover:
        err.print(f"[red]Milvus:[/red] {escape(store.last_error or '')}")
        raise typer.Exit(2)


@app.command()
def plugins(config: Optional[Path] = ConfigOption, as_json: bool = typer.Option(False, "--json")):
    """List plugins found, with their demos or why they are broken."""
    from .plugins import discover

    try:
        settings = load_settings(config)
    except ConfigError as exc:
        err.print(f"[red]config error:[/red] {exc}")
        raise typer.Exit(2) from None
    found = discover(settings).plugins
    if as_json:
        print(json.dumps([{**p.__dict__, "ok": p.ok} for p in found], indent=2))
        return
    table = Table("plugin", "version", "demos", "status")
    for p in found:
        table.add_row(p.name, p.version or "", ", ".join(p.demos), "ok" if p.ok else f"[red]{p.error}[/red]")
    console.print(table)


@app.command()
def demos(config: Optional[Path] = ConfigOption, as_json: bool = typer.Option(False, "--json")):
    """List the enabled demos with their item counts."""
    from .api import demo_info

    platform = _platform(config)
    try:
        infos = [demo_info(platform, d) for d in platform.demos.values()]
    finally:
        platform.close()
    if as_json:
        print(json.dumps([i.model_dump() for i in infos], indent=2))
        return
    table = Table("demo", "title", "inputs", "items", "status")
    for i in infos:
        table.add_row(i.name, i.title, ", ".join(i.inputs), "" if i.count is None else str(i.count), i.status)
    console.print(table)


@app.command()
def load(
    demo: str,
    path: Optional[Path] = typer.Argument(None, help="a file, a directory or a zip/tar archive"),
    sample: bool = typer.Option(False, "--sample", help="load the demo's sample data"),
    config: Optional[Path] = ConfigOption,
):
    """Load items into a demo, with a progress bar; bad items are listed, not fatal."""
    from .archives import ArchiveError, files_from_path

    if (path is None) == (not sample):
        err.print("give either a PATH or --sample")
        raise typer.Exit(2)
    if path is not None and not path.exists():
        err.print(f"[red]{path} does not exist[/red]")
        raise typer.Exit(2)
    platform = _platform(config)
    try:
        target = _demo(platform, demo)
        sources = list(target.sample_items()) if sample else list(files_from_path(path, platform.settings.limits))
        failures = []
        with Progress(
            TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), console=err
        ) as progress:
            task = progress.add_task(f"loading {demo}", total=len(sources))

            def on_outcome(outcome):
                progress.advance(task)
                if outcome.error:
                    failures.append(outcome)

            outcomes = platform.ingestor(demo).run(sources, on_outcome=on_outcome)
    except ArchiveError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    finally:
        platform.close()
    new = sum(1 for o in outcomes if not o.error and not o.duplicate)
    dup = sum(1 for o in outcomes if o.duplicate and not o.error)
    for f in failures[:50]:
        err.print(f"[yellow]{f.name}[/yellow]: {f.error}")
    console.print(f"{new} stored, {dup} already stored, {len(failures)} failed")
    if outcomes and len(failures) == len(outcomes):
        raise typer.Exit(1)


@app.command()
def search(
    demo: str,
    query: str = typer.Argument(..., help="text or SMILES, or the path of a media file"),
    top_k: int = typer.Option(5, "--top-k", "-k", min=1, max=100),
    config: Optional[Path] = ConfigOption,
    as_json: bool = typer.Option(False, "--json"),
):
    """Search a demo and print the best hits."""
    from .demo import QueryError, Upload

    platform = _platform(config)
    try:
        target = _demo(platform, demo)
        try:
            if file_query(target) and Path(query).is_file():
                payload = target.parse_query_file(Upload(Path(query).name, Path(query).read_bytes()))
            else:
                payload = target.parse_query_text(query)
            # A demo may find a query unusable while parsing it or while searching.
            outcome = platform.search(demo, payload, top_k)
        except QueryError as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(2) from None
    finally:
        platform.close()
    hits = [h.__dict__ for h in outcome.hits]
    if as_json:
        # The hits only, as before; the summary is in the table output.
        print(json.dumps(hits, indent=2, default=str))
        return
    table = Table("score", "title", "id")
    for h in hits:
        table.add_row(f"{h['score']:.3f}", h["title"], h["id"])
    console.print(table)
    if outcome.summary is not None:
        console.print("summary:", markup=False, highlight=False)
        for key, value in outcome.summary.items():
            text = value if isinstance(value, str) else json.dumps(value, default=str, ensure_ascii=False)
            console.print(f"  {key}: {text}", markup=False, highlight=False)


@app.command()
def drop(
    demo: str, yes: bool = typer.Option(False, "--yes", "-y", help="do not ask"), config: Optional[Path] = ConfigOption
):
    """Delete every item of a demo (its collection is created again, empty).

    Refused while the demo has queued or running jobs, as over HTTP."""
    from .runtime import DemoBusy
    from .store import StoreUnavailable

    platform = _platform(config)
    try:
        if demo not in platform.demos:
            _demo(platform, demo)
        busy = platform.active_jobs(demo)
        if busy:  # before asking; drop_and_recreate checks again
            _refuse_busy(DemoBusy(demo, busy))
        if not yes and not typer.confirm(f"delete every item of {demo}?"):
            raise typer.Exit(1)
        try:
            platform.drop_and_recreate(demo)
        except DemoBusy as exc:
            _refuse_busy(exc)
        except StoreUnavailable as exc:
            err.print(f"[red]{exc}[/red]")
            raise typer.Exit(3) from None
    finally:
        platform.close()
    console.print(f"dropped {demo}")


def _refuse_busy(exc) -> NoReturn:
    """Exit 4 naming the jobs that keep the demo from being dropped."""
    from rich.markup import escape

    ids = escape(", ".join(f"{j.id} ({j.state}, {j.label or j.source})" for j in exc.jobs))
    err.print(
        f"[red]{exc.demo_name} has queued or running jobs: {ids}.[/red] Cancel them first "
        "(DELETE /api/jobs/{job_id} on the server) or wait until they end; a job cut off when the "
        "server stopped resumes when it starts again.",
        highlight=False,
    )
    raise typer.Exit(4)


@app.command("new-plugin")
def new_plugin(
    name: str = typer.Argument(..., help="the demo's name: lower-case letters, digits and '_'"),
    directory: Path = typer.Option(Path("."), "--dir", "-d", help="where to create the package folder"),
):
    """Create a plugin package (vectorfair-NAME/) whose tests pass as made."""
    from .scaffold import ScaffoldError, create_plugin

    try:
        target = create_plugin(name, directory)
    except ScaffoldError as exc:
        err.print(f"[red]{exc}[/red]")
        raise typer.Exit(2) from None
    console.print(f"created {target}\nnext: pip install -e {target} && pytest {target}/tests")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
