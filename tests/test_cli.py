"""The `vectorfair` command, run in-process with Typer's runner."""

import json
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from vectorfair.cli import app

runner = CliRunner()


def run(config, *args):
    result = runner.invoke(app, [*args, "--config", str(config)])
    return result


def test_load_search_demos_drop(config_file, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("apple orchard in spring")
    (folder / "b.txt").write_text("banana plantation")
    (folder / "bad.txt").write_text("FAIL me")
    result = run(config_file, "load", "fake", str(folder))
    assert result.exit_code == 0, result.output
    assert "2 stored, 0 already stored, 1 failed" in result.output and "bad.txt" in result.output

    archive = tmp_path / "more.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("c.txt", "cherry blossom")
        zf.writestr("a.txt", "apple orchard in spring")
    result = run(config_file, "load", "fake", str(archive))
    assert "1 stored, 1 already stored, 0 failed" in result.output

    assert "20 stored" in run(config_file, "load", "fake", "--sample").output

    result = run(config_file, "search", "fake", "apple orchard", "--json", "-k", "2")
    assert result.exit_code == 0, result.output
    hits = json.loads(result.output)
    assert hits[0]["title"] == "a.txt#0" and len(hits) == 2

    result = run(config_file, "demos", "--json")
    assert json.loads(result.output)[0]["count"] == 23

    result = run(config_file, "drop", "fake", "--yes")
    assert result.exit_code == 0 and "dropped fake" in result.output
    assert json.loads(run(config_file, "demos", "--json").output)[0]["count"] == 0


def test_cli_errors_are_clear(config_file, tmp_path):
    result = run(config_file, "load", "nope", "--sample")
    assert result.exit_code == 2 and "no demo 'nope'" in result.output
    result = run(config_file, "load", "fake")
    assert result.exit_code == 2 and "PATH or --sample" in result.output
    result = run(config_file, "load", "fake", str(tmp_path / "missing"))
    assert result.exit_code == 2 and "does not exist" in result.output
    result = run(config_file, "search", "fake", "   ")
    assert result.exit_code == 2 and "blank" in result.output
    result = runner.invoke(app, ["demos", "--config", str(tmp_path / "none.toml")])
    assert result.exit_code == 2 and "does not exist" in result.output


def test_plugins_table(config_file):
    result = run(config_file, "plugins")
    assert result.exit_code == 0 and "fake" in result.output and "ok" in result.output


def test_search_prints_the_demo_summary(config_file, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text("apple orchard in spring")
    (folder / "b.txt").write_text("banana plantation")
    assert run(config_file, "load", "fake", str(folder)).exit_code == 0
    result = run(config_file, "search", "fake", "apple orchard")
    assert result.exit_code == 0, result.output
    # The fake demo's summarize() names the best hit, as the API's `summary` does.
    assert "summary:" in result.output and "best: a.txt#0" in result.output


def test_drop_is_refused_while_the_demo_has_a_job(config_file):
    from vectorfair.jobs import Job, JobSource, JobStore
    from vectorfair.settings import load_settings

    assert run(config_file, "load", "fake", "--sample").exit_code == 0
    # A job the server runs (or will resume when it starts again).
    jobs = JobStore(Path(load_settings(config_file).data_dir) / "jobs.sqlite3")
    job = Job(id="feedbeef", demo="fake", source=JobSource("sample"), label="sample data", state="running")
    jobs.save(job)
    try:
        result = run(config_file, "drop", "fake", "--yes")
        assert result.exit_code == 4, result.output
        assert "queued or running jobs: feedbeef (running, sample data)" in result.output
        assert "dropped" not in result.output
        assert json.loads(run(config_file, "demos", "--json").output)[0]["count"] == 20

        job.state = "succeeded"
        jobs.save(job)
        result = run(config_file, "drop", "fake", "--yes")
        assert result.exit_code == 0 and "dropped fake" in result.output, result.output
    finally:
        jobs.close()
    assert json.loads(run(config_file, "demos", "--json").output)[0]["count"] == 0


def test_worker_needs_a_queue(config_file):
    result = run(config_file, "worker")
    assert result.exit_code == 2 and "[queue] redis_url" in result.output
