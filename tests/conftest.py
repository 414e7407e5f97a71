import sys
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "plugin_fixtures"
# importlib.metadata finds the fixture plugins' dist-info here, exactly as it
# finds an installed package's entry points.
if str(FIXTURES) not in sys.path:
    sys.path.insert(0, str(FIXTURES))

from vectorfair import testing  # noqa: E402
from vectorfair.settings import load_settings  # noqa: E402


def write_config(tmp_path: Path, body: str = "", plugins: str = "fake") -> Path:
    return testing.write_config(tmp_path, body, plugins)


@pytest.fixture
def config_file(tmp_path):
    return write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\n")


@pytest.fixture
def settings(config_file):
    return load_settings(config_file)


@pytest.fixture
def client(settings):
    from fastapi.testclient import TestClient

    from vectorfair.api import create_app

    with TestClient(create_app(settings)) as test_client:
        yield test_client


@pytest.fixture
def procs():
    """Processes a test started (`procs.append(process)`), killed afterwards, last first."""
    started = []
    yield started
    for process in reversed(started):
        process.kill()
