"""Molecule search against its brute-force limit, in one run per backend.

On a live uvicorn with the 10,000-molecule sample loaded, 60 queries (30 from
the sample, 30 from RDKit's NCI file), top 10, one at a time through HTTP:
p50/p90 latency. Beside it, in this process, RDKit's BulkTanimotoSimilarity
over the same stored fingerprints plus sorting for the top 10 (the limit),
and the ratio of the two. Backends: Milvus Lite, and a real Milvus server
(PyPI `milvus` 2.3.5, started here; or --uri). "lite" is the installed Lite
engine (2.5 by default; `PYTHONPATH=.venv/lite3` for Lite 3).

Usage: python bench/molecules.py [--backend lite|server|both] [--uri URI] [--folded-dim 1024]
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import statistics
import tempfile
import time
from contextlib import nullcontext
from pathlib import Path

import httpx
import numpy as np
import rdkit
from common import live_server, report, stats_ms
from rdkit import Chem, DataStructs
from rdkit.Chem import rdFingerprintGenerator

from vectorfair.testing import TEST_MILVUS_URI, MilvusServer, free_port

NCI = Path(rdkit.__file__).parent / "Data" / "NCI" / "first_5K.smi"
TOP_K = 10


def queries(stored: list[str]) -> list[str]:
    rng = random.Random(18)
    outside = [line.split()[0] for line in NCI.read_text().splitlines()[1:] if line.strip()]
    outside = [s for s in rng.sample(outside, 60) if Chem.MolFromSmiles(s) is not None][:30]
    return rng.sample(stored, 30) + outside


def rdkit_limit_ms(stored: list[str], smiles: list[str]) -> dict:
    """RDKit's own brute force: Tanimoto to every stored molecule, then the top 10."""
    generator = rdFingerprintGenerator.GetMorganGenerator(radius=2, fpSize=2048)
    fingerprints = [generator.GetFingerprint(Chem.MolFromSmiles(s)) for s in stored]
    times = []
    for _ in range(3):
        for query in smiles:
            fingerprint = generator.GetFingerprint(Chem.MolFromSmiles(query))
            started = time.perf_counter()
            scores = DataStructs.BulkTanimotoSimilarity(fingerprint, fingerprints)
            np.argpartition(-np.asarray(scores), TOP_K)[:TOP_K]
            times.append(time.perf_counter() - started)
    return stats_ms(times) | {"p90_ms": round(float(np.percentile(times, 90)) * 1000, 2)}


def sample_molecules() -> list[str]:
    """The sample set as the demo stores it: once per canonical SMILES."""
    from vectorfair_molecule_search import SAMPLE

    with open(SAMPLE, newline="") as fh:
        canonical = [Chem.MolFromSmiles(row[0]) for row in csv.reader(fh) if row]
    return sorted({Chem.MolToSmiles(mol) for mol in canonical if mol is not None})


def http_search_ms(base: str, smiles: list[str]) -> dict:
    times = []
    with httpx.Client(base_url=base, timeout=120) as client:
        client.post("/api/demos/molecule_search/search", json={"query": smiles[0], "top_k": TOP_K})  # warm
        for _ in range(2):
            for query in smiles:
                started = time.perf_counter()
                response = client.post("/api/demos/molecule_search/search", json={"query": query, "top_k": TOP_K})
                times.append(time.perf_counter() - started)
                response.raise_for_status()
    return stats_ms(times) | {"p90_ms": round(float(np.percentile(times, 90)) * 1000, 2)}


def run(backend: str, uri: str | None, folded_dim: int, stored: list[str]) -> dict:
    body = f"[demos.molecule_search]\nfolded_dim = {folded_dim}\n"
    server = nullcontext()
    if backend == "server" and not uri:
        server = MilvusServer(Path(tempfile.mkdtemp()) / "milvus", port=free_port())
    with server as started:
        if backend == "server":
            os.environ[TEST_MILVUS_URI] = uri or started.uri
        else:
            os.environ.pop(TEST_MILVUS_URI, None)
        with live_server("molecule_search", body) as (base, _, _):
            smiles = queries(stored)
            http = http_search_ms(base, smiles)
            stats = httpx.get(f"{base}/api/demos/molecule_search/stats").json()
    assert stats["count"] == len(stored), f"{stats['count']} molecules stored, {len(stored)} in the sample"
    limit = rdkit_limit_ms(stored, smiles)
    (vector,) = stats["vectors"]
    return {
        "backend": backend,
        "engine": stats["backend"],
        "molecules": len(stored),
        "stored_as": f"{vector['kind']} {vector['dim']} {vector['metric']} {vector['index_type']}",
        "http_search": http,
        "rdkit_bulk_tanimoto_top10": limit,
        "ratios": {
            "http_p50_over_rdkit_p50": round(http["p50_ms"] / limit["p50_ms"], 2),
            "http_p90_over_http_p50": round(http["p90_ms"] / http["p50_ms"], 2),
        },
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--backend", choices=("lite", "server", "both"), default="both")
    parser.add_argument("--uri", help="a running Milvus server instead of starting one")
    parser.add_argument("--folded-dim", type=int, default=1024)
    args = parser.parse_args()
    backends = ("lite", "server") if args.backend == "both" else (args.backend,)
    stored = sample_molecules()
    results = {backend: run(backend, args.uri, args.folded_dim, stored) for backend in backends}
    rows = [
        [
            r["engine"],
            r["molecules"],
            r["stored_as"],
            r["http_search"]["p50_ms"],
            r["http_search"]["p90_ms"],
            r["rdkit_bulk_tanimoto_top10"]["p50_ms"],
            r["ratios"]["http_p50_over_rdkit_p50"],
            r["ratios"]["http_p90_over_http_p50"],
        ]
        for r in results.values()
    ]
    report(
        "molecule search vs RDKit brute force (top 10)",
        {"runs": results, "median_rdkit_ms": statistics.median(r[5] for r in rows)},
        rows,
        ["engine", "molecules", "stored as", "HTTP p50 ms", "HTTP p90 ms", "RDKit p50 ms", "p50 / RDKit", "p90 / p50"],
    )


if __name__ == "__main__":
    main()
