"""The `vectorfair` command, run in-process with Typer's runner."""

import json
import zipfile

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
