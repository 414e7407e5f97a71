"""Which Milvus the tests run on, for every test directory (core, plugins,
examples).

`pytest` runs on Milvus Lite (a database file per test), on the engine
installed (2.5 by default; `PYTHONPATH=.venv/lite3` puts Lite 3 first). `pytest
--milvus=server` starts one real Milvus server (PyPI `milvus`, 2.3.5) for the
session and points every test's config at it, each test with collections of
its own (`vectorfair.testing.write_config`), dropped when the test ends; with
$VECTORFAIR_TEST_MILVUS_URI already set it uses that server instead.
Tests marked `lite_only` or `server_only` run on that backend alone.
"""

import os

import pytest

from vectorfair import testing


def pytest_addoption(parser):
    parser.addoption(
        "--milvus",
        choices=("lite", "server"),
        default=os.environ.get("VECTORFAIR_TEST_BACKEND", "lite"),
        help="run the tests on Milvus Lite (default) or on a real Milvus server",
    )


def pytest_configure(config):
    config.addinivalue_line("markers", "lite_only: runs on Milvus Lite only (says why)")
    config.addinivalue_line("markers", "server_only: runs on a real Milvus server only")


def pytest_report_header(config):
    from vectorfair.store import installed_lite

    backend = config.getoption("--milvus")
    engine = f"milvus-lite {installed_lite()}" if backend == "lite" else "a Milvus server"
    return f"milvus backend: {backend} ({engine})"


def pytest_collection_modifyitems(config, items):
    backend = config.getoption("--milvus")
    unwanted = "server_only" if backend == "lite" else "lite_only"
    skip = pytest.mark.skip(reason=f"not on the {backend} backend")
    for item in items:
        if unwanted in item.keywords:
            item.add_marker(skip)


class Backend:
    """The Milvus the tests run on."""

    def __init__(self, kind: str, server: "testing.MilvusServer | None" = None, uri: str = ""):
        self.kind = kind
        self.server = server
        self.uri = uri

    @property
    def is_server(self) -> bool:
        return self.kind == "server"

    @property
    def engine(self) -> str:
        """ "server", or the installed Milvus Lite engine: "lite-cpp" (2.x) or "lite-python" (3.x)."""
        from importlib.metadata import version

        if self.is_server:
            return "server"
        return "lite-python" if int(version("milvus-lite").split(".")[0]) >= 3 else "lite-cpp"

    @property
    def stores_binary(self) -> bool:
        """Whether binary vectors are stored as declared (not as a fallback)."""
        return self.engine != "lite-python"

    def client(self):
        from pymilvus import MilvusClient

        return MilvusClient(self.uri, token=os.environ.get(testing.TEST_MILVUS_TOKEN, ""), timeout=30)


@pytest.fixture(scope="session")
def milvus_backend(request, tmp_path_factory):
    if request.config.getoption("--milvus") == "lite":
        yield Backend("lite")
        return
    uri = os.environ.get(testing.TEST_MILVUS_URI)
    if uri:
        yield Backend("server", uri=uri)
        return
    root = tmp_path_factory.mktemp("milvus-server")
    server = testing.MilvusServer(root / "data", testing.free_port(), log=root / "milvus.log").start()
    os.environ[testing.TEST_MILVUS_URI] = server.uri
    try:
        yield Backend("server", server, server.uri)
    finally:
        os.environ.pop(testing.TEST_MILVUS_URI, None)
        server.stop()


@pytest.fixture(autouse=True)
def _collections_of_the_test_dropped(milvus_backend):
    """On a server, drop what the test created so hundreds of tests do not
    leave hundreds of loaded collections behind."""
    if not milvus_backend.is_server:
        yield
        return
    client = milvus_backend.client()
    before = set(client.list_collections())
    client.close()
    yield
    if milvus_backend.server is not None and milvus_backend.server.process is None:
        return  # a test stopped the server and did not start it again
    client = milvus_backend.client()
    try:
        for name in set(client.list_collections()) - before:
            client.drop_collection(name)
    finally:
        client.close()
