"""The three Milvus engines: what each stores, how the store recognises the
one that answers, and what it does where they differ.

Runs on whichever engine the session has: the installed Milvus Lite (2.5 by
default, 3.x where `PYTHONPATH` puts it first, as `make test` does for the
portable fallback) or the real server (`--milvus=server`)."""

import re
import threading

import numpy as np
import pytest
from typer.testing import CliRunner

from vectorfair.plugins import configure_demos, discover
from vectorfair.schema import Backend, VectorField, resolve
from vectorfair.settings import load_settings
from vectorfair.store import LiteFileOfOtherEngine, Store, check_lite_file, installed_lite

from .conftest import write_config

LITE_VERSION = installed_lite()

LITE_25 = Backend("milvus_lite-2.5.1", is_lite=True)
LITE_3 = Backend("milvus_lite-3.2.2", is_lite=True)
SERVER_23 = Backend("v2.3.5", is_lite=False)
SERVER_25 = Backend("v2.5.4", is_lite=False)


def test_each_engine_is_told_apart_by_its_version():
    assert [b.engine for b in (LITE_25, LITE_3, SERVER_23)] == ["lite-cpp", "lite-python", "server"]
    assert Backend("milvus_lite-2", is_lite=True).engine == "lite-cpp"  # a Lite 2 served from elsewhere


@pytest.mark.parametrize(
    "backend, kinds, float_indexes, binary_indexes, tenant_partitions, serial",
    [
        (
            LITE_25,
            ("float", "float16", "binary", "sparse"),
            ("FLAT", "IVF_FLAT", "AUTOINDEX"),
            ("BIN_FLAT",),
            False,
            False,
        ),
        (LITE_3, ("float", "sparse"), ("FLAT",), (), True, True),
        (SERVER_23, ("float", "binary"), ("HNSW",), ("BIN_FLAT", "BIN_IVF_FLAT"), False, False),
        (SERVER_25, ("float", "float16", "binary", "sparse"), ("HNSW",), ("BIN_FLAT", "BIN_IVF_FLAT"), True, False),
    ],
)
def test_what_each_engine_stores(backend, kinds, float_indexes, binary_indexes, tenant_partitions, serial):
    assert backend.vector_kinds == kinds
    assert backend.indexes("float")[: len(float_indexes)] == float_indexes
    assert backend.indexes("binary") == binary_indexes
    assert backend.tenant_partitions is tenant_partitions
    assert backend.serial_calls is serial
    if backend.is_lite:
        assert backend.scalar_index("str_list") is None  # neither Lite engine indexes an ARRAY field


def test_a_fingerprint_is_searched_as_binary_where_the_engine_stores_binary():
    folded = VectorField(kind="float", dim=1024, metric="IP", index=("FLAT",))
    fingerprint = VectorField("fp", "binary", 2048, "JACCARD", index=("BIN_FLAT",), fallback=folded)
    on_lite_25, on_lite_3 = resolve(fingerprint, LITE_25), resolve(fingerprint, LITE_3)
    assert (on_lite_25.stored.kind, on_lite_25.index_type) == ("binary", "BIN_FLAT")
    assert (on_lite_3.stored.kind, on_lite_3.stored.dim, on_lite_3.index_type) == ("float", 1024, "FLAT")
    # A demo preferring HNSW gets the exact FLAT on either Lite engine.
    text = VectorField(dim=8, index=("HNSW", "FLAT"))
    assert resolve(text, LITE_25).index_type == resolve(text, LITE_3).index_type == "FLAT"


@pytest.fixture
def store_and_demo(tmp_path):
    settings = load_settings(write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\n"))
    demo = configure_demos(settings, discover(settings))["fake"]
    store = Store(settings.milvus)
    store.ensure_collection(demo)
    yield store, demo
    store.drop(demo)
    store.disconnect()


def rows(demo, items, tenant="public", parts=1):
    return [
        {
            "id": item if part == 0 else f"{item}-{part}",
            "vector": np.random.default_rng(hash(item) % 2**32).random(demo.dim),
            "item": item,
            "tenant": tenant,
            "title": item,
        }
        for item in items
        for part in range(parts)
    ]


def test_the_engine_that_answers_is_named(store_and_demo, milvus_backend):
    store, _ = store_and_demo
    if milvus_backend.is_server:
        assert store.backend.startswith("v2.") and store.backend_info.engine == "server"
    else:
        # Lite 2 does not implement get_server_version: named from its package.
        assert store.backend == f"milvus_lite-{LITE_VERSION}"
        assert store.backend_info.engine == milvus_backend.engine


def test_items_and_tenants_are_counted_and_filtered_on_every_engine(store_and_demo):
    """Lite 2.5 refuses every filter on a collection with a partition key:
    there the tenant is a plain field, and counts, tenant filters and item
    lookups all still answer."""
    store, demo = store_and_demo
    store.insert(demo, rows(demo, ["a", "b", "c"], parts=3) + rows(demo, ["d"], tenant="v1"))
    store.settle(demo)
    assert store.count(demo) == 10
    assert store.count_items(demo) == 4
    assert store.count_items(demo, 'tenant == "public"') == 3
    assert store.count(demo, 'tenant == "v1"') == 1
    assert [r["id"] for r in store.query(demo, 'tenant == "v1"', ["id"])] == ["d"]
    hits = store.search(demo, np.ones(demo.dim), 20, 'tenant == "public"')
    assert {h["item"] for h in hits} == {"a", "b", "c"} and len(hits) == 9


def test_counts_stay_exact_through_writes_at_the_same_moment(store_and_demo):
    """Embedded, counts are kept until this process writes the demo again;
    a count that runs while a write is under way is never kept."""
    store, demo = store_and_demo
    assert store.count_items(demo) == 0
    start = threading.Barrier(4)

    def write(prefix):
        start.wait()
        for n in range(5):
            store.insert(demo, rows(demo, [f"{prefix}{n}"], parts=2))

    def count():
        start.wait()
        for _ in range(20):
            store.count_items(demo)

    threads = [threading.Thread(target=write, args=(p,)) for p in "xy"] + [threading.Thread(target=count) for _ in "12"]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert store.count_items(demo) == 10 and store.count(demo) == 20
    store.delete_ids(demo, ["x0", "x0-1"])
    assert store.count_items(demo) == 9 and store.count(demo) == 18
    store.drop(demo)
    store.ensure_collection(demo)
    assert store.count_items(demo) == 0


@pytest.mark.lite_only  # a Lite database file
def test_a_database_of_the_other_lite_engine_is_named_not_retried(tmp_path, milvus_backend):
    """Lite 3 keeps a database as a directory, Lite 2 as one file, and each
    fails on the other's with a bare "Open local milvus failed"."""
    other = tmp_path / "milvus.db"
    if milvus_backend.engine == "lite-cpp":
        (other / "collections").mkdir(parents=True)
    else:
        other.write_bytes(b"SQLite format 3\0")
    with pytest.raises(LiteFileOfOtherEngine, match="was written by Milvus Lite") as refused:
        check_lite_file(other)
    assert "move it aside" in str(refused.value) and "pip install 'milvus-lite==" in str(refused.value)

    config = write_config(tmp_path, "[demos.fake]\nload_sample_on_start = false\n")
    config.write_text(re.sub(r'uri = "[^"]*"', f'uri = "{other}"', config.read_text()))
    store = Store(load_settings(config).milvus)
    assert not store.connect() and store.cannot_recover and "move it aside" in store.unavailable_message()

    from vectorfair.cli import app

    result = CliRunner().invoke(app, ["serve", "--config", str(config)])
    assert result.exit_code == 2 and "was written by Milvus Lite" in result.output


def test_a_call_whose_client_was_dropped_under_it_runs_once_more(store_and_demo):
    """Calls to Lite 2.5 and servers run in parallel: a failed ping in one
    thread drops the client another call is using. That call is repeated on
    the new client rather than failing."""
    store, demo = store_and_demo
    clients = []

    def dropped_once(client):
        clients.append(client)
        if len(clients) == 1:
            store.disconnect()  # what another thread's failed ping does
            raise RuntimeError("should create connection first")
        return client.has_collection(store.collection_name(demo))

    assert store.call(dropped_once) is True
    assert len(clients) == 2 and clients[0] is not clients[1]

    def bad_request(client):
        clients.append(client)
        raise ValueError("a bad request")

    with pytest.raises(ValueError, match="a bad request"):  # a call that fails by itself is not repeated
        store.call(bad_request)
    assert len(clients) == 3
