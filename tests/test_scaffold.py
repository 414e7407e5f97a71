"""`vectorfair new-plugin`: the package it makes installs and passes its own tests."""

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vectorfair.cli import app
from vectorfair.scaffold import ScaffoldError, check_name

BIN = Path(sys.executable).parent


@pytest.mark.parametrize("bad", ["Bad", "9lives", "a", "with-dash", "class", "x" * 50, "trailing_"])
def test_unusable_names_are_refused(bad):
    with pytest.raises(ScaffoldError):
        check_name(bad)


def test_new_plugin_installs_and_its_tests_pass(tmp_path):
    result = CliRunner().invoke(app, ["new-plugin", "word_finder", "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    package = tmp_path / "vectorfair-word-finder"
    assert (package / "vectorfair_word_finder" / "__init__.py").is_file()
    again = CliRunner().invoke(app, ["new-plugin", "word_finder", "--dir", str(tmp_path)])
    assert again.exit_code == 2 and "already exists" in again.output
    pip = [str(BIN / "python"), "-m", "pip", "-q"]
    subprocess.run([*pip, "install", "--no-deps", "--no-build-isolation", "-e", str(package)], check=True)
    try:
        listed = subprocess.run([str(BIN / "vectorfair"), "plugins"], capture_output=True, text=True, cwd=tmp_path)
        assert "word_finder" in listed.stdout, listed.stdout + listed.stderr
        tests = subprocess.run(
            [str(BIN / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests")],
            capture_output=True,
            text=True,
            cwd=package,
        )
        assert tests.returncode == 0, tests.stdout[-3000:] + tests.stderr[-2000:]
        assert "2 passed" in tests.stdout
    finally:
        subprocess.run([*pip, "uninstall", "-y", "vectorfair-word-finder"], check=False)
