"""Molecule search on real RDKit, real Milvus Lite, real HTTP: exact Tanimoto
top-k checked against RDKit's brute force over the whole sample set."""

import csv
import random
import time
from pathlib import Path

import pytest
import rdkit
from rdkit import Chem, DataStructs
from rdkit.Chem import Descriptors, rdFingerprintGenerator

from vectorfair.testing import sample_loaded_client

pytestmark = pytest.mark.slow
RDKIT_DATA = Path(rdkit.__file__).parent / "Data"
SAMPLE = RDKIT_DATA / "Pains" / "test_data" / "wehi_mols.csv"
OTHER = RDKIT_DATA / "NCI" / "first_5K.smi"
LOAD = {}


def reference_set():
    """Canonical SMILES -> fingerprint, computed here independently of the plugin."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    molecules = {}
    with open(SAMPLE, newline="") as fh:
        for row in csv.reader(fh):
            mol = Chem.MolFromSmiles(row[0])
            if mol is not None:
                molecules.setdefault(Chem.MolToSmiles(mol), generator.GetFingerprint(mol))
    return molecules, generator


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    started = time.perf_counter()
    with sample_loaded_client(tmp_path_factory.mktemp("mol"), "molecule_search") as test_client:
        job = test_client.sample_job
        LOAD.update(job=job, seconds=time.perf_counter() - started)
        print(f"\nsample load: {job['done']} molecules in {LOAD['seconds']:.1f} s")
        assert job["state"] == "succeeded" and job["failed"] == 0, job
        yield test_client


@pytest.fixture(scope="module")
def reference():
    return reference_set()


def search(client, smiles, top_k=10, **filters):
    body = {"query": smiles, "top_k": top_k, **({"filter": filters} if filters else {})}
    r = client.post("/api/demos/molecule_search/search", json=body)
    assert r.status_code == 200, r.text
    return r.json()["hits"]


def brute_force(reference, query_smiles, keep=lambda smiles: True):
    molecules, generator = reference
    query = generator.GetFingerprint(Chem.MolFromSmiles(query_smiles))
    names = [s for s in molecules if keep(s)]
    scores = DataStructs.BulkTanimotoSimilarity(query, [molecules[s] for s in names])
    return sorted(zip(scores, names), reverse=True)


def assert_exact_top_k(hits, expected, k):
    """Recall 1.0 with ties handled by score: the k returned scores are the k
    best scores, and every returned molecule has exactly its true score."""
    truth = {smiles: score for score, smiles in expected}
    for hit in hits:
        assert hit["score"] == pytest.approx(truth[hit["fields"]["smiles"]], abs=1e-9)
    assert [round(h["score"], 9) for h in hits] == [round(score, 9) for score, _ in expected[:k]]


def test_sample_is_loaded_once_per_canonical_smiles(client, reference, milvus_backend):
    molecules, _ = reference
    stats = client.get("/api/demos/molecule_search/stats").json()
    assert stats["count"] == len(molecules)
    # A binary fingerprint by JACCARD on a server and on Lite 2.5; Lite 3 has
    # no binary vectors, so there the declared fallback (the folded fingerprint by inner product).
    (fingerprint,) = stats["vectors"]
    assert fingerprint["declared_kind"] == "binary"
    assert (fingerprint["kind"], fingerprint["dim"], fingerprint["metric"], fingerprint["index_type"]) == (
        ("binary", 2048, "JACCARD", "BIN_FLAT") if milvus_backend.stores_binary else ("float", 1024, "IP", "FLAT")
    )
    assert LOAD["job"]["duplicates"] == 10000 - len(molecules)


def test_top10_equals_brute_force_for_50_random_queries(client, reference):
    rng = random.Random(2026)
    inside = rng.sample(sorted(reference[0]), 25)
    outside = [line.split()[0] for line in OTHER.read_text().splitlines()[1:] if line.strip()]
    outside = [s for s in rng.sample(outside, 60) if Chem.MolFromSmiles(s) is not None][:25]
    latencies = []
    for smiles in inside + outside:
        started = time.perf_counter()
        hits = search(client, smiles)
        latencies.append(time.perf_counter() - started)
        assert len(hits) == 10
        assert_exact_top_k(hits, brute_force(reference, smiles), 10)
    latencies.sort()
    print(
        f"\nrecall 1.0 on {len(inside) + len(outside)} queries; HTTP search median {latencies[len(latencies) // 2] * 1000:.0f} ms"
    )


def test_query_in_the_set_finds_itself_first(client):
    smiles = "N(NC(=O)C1CCC1)c2ccc(cc2)C(C)(C)C"
    hit = search(client, smiles, top_k=1)[0]
    assert hit["score"] == 1.0 and hit["fields"]["name"] == "WEHI-0039854"
    assert hit["fields"]["smiles"] == Chem.MolToSmiles(Chem.MolFromSmiles(smiles))
    mol = Chem.MolFromSmiles(smiles)
    assert hit["fields"]["mw"] == pytest.approx(Descriptors.MolWt(mol), abs=1e-3)
    assert hit["fields"]["logp"] == pytest.approx(Descriptors.MolLogP(mol), abs=1e-3)
    # The drawing is a URL, drawn on request rather than during the search.
    drawing = client.get(hit["fields"]["structure_url"])
    assert drawing.status_code == 200 and "<svg" in drawing.text
    assert drawing.headers["content-type"].startswith("image/svg+xml")


def test_substructure_and_range_filters_stay_exact(client, reference):
    pattern = Chem.MolFromSmarts("c1ccccc1C(=O)N")
    for query in ("CC(=O)Nc1ccc(O)cc1", "O=C(Nc1ccccc1)c1ccccc1"):
        hits = search(client, query, substructure="c1ccccc1C(=O)N")
        assert all(Chem.MolFromSmiles(h["fields"]["smiles"]).HasSubstructMatch(pattern) for h in hits)
        expected = brute_force(reference, query, lambda s: Chem.MolFromSmiles(s).HasSubstructMatch(pattern))
        assert_exact_top_k(hits, expected, 10)
    hits = search(client, "CC(=O)Nc1ccc(O)cc1", mw_min=200, mw_max=250, logp_max=2)
    assert hits and all(200 <= h["fields"]["mw"] <= 250 and h["fields"]["logp"] <= 2 for h in hits)

    def in_range(smiles):
        mol = Chem.MolFromSmiles(smiles)
        return 200 <= Descriptors.MolWt(mol) <= 250 and Descriptors.MolLogP(mol) <= 2

    assert_exact_top_k(hits, brute_force(reference, "CC(=O)Nc1ccc(O)cc1", in_range), 10)


@pytest.mark.parametrize(
    "body,words",
    [
        ({"query": "C1CC"}, ["invalid SMILES", "unclosed ring"]),
        ({"query": "CC(C)(C)(C)(C)C"}, ["valence"]),
        ({"query": "not a molecule"}, ["invalid SMILES"]),
        ({"query": "C" * 5000}, ["longer than"]),
        ({"query": "CCO", "filter": {"substructure": "[[[("}}, ["invalid"]),
        ({"query": "CCO", "filter": {"mw_min": 300, "mw_max": 100}}, ["mw_min is greater than mw_max"]),
        ({"query": "CCO", "filter": {"colour": "red"}}, ["colour"]),
    ],
)
def test_bad_queries_are_422_with_rdkit_reason(client, body, words):
    r = client.post("/api/demos/molecule_search/search", json=body)
    assert r.status_code == 422, r.text
    for word in words:
        assert word in r.json()["detail"]


def test_uploads_report_invalid_rows_and_store_duplicates_once(client, reference):
    before = client.get("/api/demos/molecule_search/stats").json()["count"]
    smi = b"smiles name\nOCCN1CCOCC1 morpholine-ethanol\nC1CC broken-ring\nC(CO)N1CCOCC1 same-molecule-other-spelling\n"
    csv_file = b"id,SMILES\nx1,FC(F)(F)c1ccc(cc1)N\nx2,\n"
    sdf = (RDKIT_DATA / "NCI" / "first_200.props.sdf").read_bytes()
    r = client.post(
        "/api/demos/molecule_search/items",
        files=[
            ("files", ("a.smi", smi, "text/plain")),
            ("files", ("b.csv", csv_file, "text/csv")),
            ("files", ("c.sdf", sdf, "chemical/x-mdl-sdfile")),
        ],
    )
    assert r.status_code == 201, r.text
    body = r.json()
    failed = {f["name"]: f["error"] for f in body["failed"]}
    assert "unclosed ring" in failed["a.smi line 3"]
    assert "missing SMILES" in failed["b.csv line 3"]
    assert len(body["duplicates"]) >= 1  # the second spelling of morpholine-ethanol
    after = client.get("/api/demos/molecule_search/stats").json()["count"]
    stored = {
        i: client.get(f"/api/demos/molecule_search/items/{i}").json()["fields"]["smiles"] for i in set(body["ids"])
    }
    assert len(set(stored.values())) == len(stored)  # one row per canonical SMILES
    assert after - before == sum(smiles not in reference[0] for smiles in stored.values())
    hit = search(client, "OCCN1CCOCC1", top_k=1)[0]
    assert hit["score"] == 1.0 and hit["fields"]["name"] == "morpholine-ethanol"


def test_depiction_route(client):
    r = client.get("/api/demos/molecule_search/depict.svg", params={"smiles": "c1ccccc1O", "highlight": "c1ccccc1"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml") and "<svg" in r.text
    r = client.get("/api/demos/molecule_search/depict.svg", params={"smiles": "C1CC"})
    assert r.status_code == 422 and "unclosed ring" in r.json()["detail"]


def test_conforms_to_the_plugin_contract(client):
    from vectorfair.testing import assert_conforms

    assert_conforms(client, "molecule_search")
