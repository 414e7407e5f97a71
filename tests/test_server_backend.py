"""What only a real Milvus server has: authentication. The session's server
stops for this test (one Milvus standalone runs per machine) and starts
again afterwards."""

import os
import re
import subprocess

import httpx
import pytest

from vectorfair.testing import MilvusServer, free_port

from .conftest import write_config
from .live import BIN, FIXTURES, start_app, wait_for

pytestmark = pytest.mark.server_only

TOKEN = "root:Milvus"  # the server's default root user and password


@pytest.fixture
def server_with_authentication(milvus_backend, tmp_path):
    if milvus_backend.server is None:
        pytest.skip("the Milvus server was not started by this test session, so it cannot be swapped")
    milvus_backend.server.stop()
    server = MilvusServer(
        tmp_path / "auth",
        free_port(),
        extra_args=("--authorization-enabled", "true"),
        token=TOKEN,
        log=tmp_path / "milvus-auth.log",
    )
    try:
        yield server.start()
    finally:
        server.stop()
        milvus_backend.server.start()


def test_token_from_the_environment_and_a_wrong_one(server_with_authentication, tmp_path, procs):
    server = server_with_authentication
    config = write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\n")
    config.write_text(re.sub(r'uri = "[^"]*"', f'uri = "{server.uri}"', config.read_text()))

    app, base = start_app(config, free_port(), tmp_path / "app.log", env={"VECTORFAIR_MILVUS__TOKEN": TOKEN})
    procs.append(app)
    wait_for(lambda: httpx.get(f"{base}/readyz").status_code == 200, 60, what="ready with the token")
    stored = httpx.post(f"{base}/api/demos/fake/items", json={"records": [{"text": "guarded apple"}]}, timeout=30)
    assert stored.status_code == 201, stored.text
    hits = httpx.post(f"{base}/api/demos/fake/search", json={"query": "guarded apple"}, timeout=30).json()["hits"]
    assert hits[0]["id"] == stored.json()["ids"][0]

    for token in ("root:wrong-password", ""):
        env = {**os.environ, "PYTHONPATH": str(FIXTURES), "VECTORFAIR_MILVUS__TOKEN": token}
        result = subprocess.run(
            [str(BIN / "vectorfair"), "serve", "--config", str(config), "--port", str(free_port())],
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        output = result.stdout + result.stderr
        assert result.returncode == 2, output
        assert "Milvus refused the credentials" in output and "VECTORFAIR_MILVUS__TOKEN" in output, output
        assert "Traceback" not in output, output
