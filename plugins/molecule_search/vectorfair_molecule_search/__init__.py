"""Molecular similarity demo: exact Tanimoto top-k over RDKit fingerprints.

Fingerprints are declared as a binary vector field searched by JACCARD on a
BIN_FLAT index: on a Milvus server, Tanimoto = 1 - JACCARD distance, so one
exact search ranks them.

Milvus Lite has no binary vectors. There the fallback is a short float vector:
the fingerprint's set bits counted into `folded_dim` buckets (bit j into
bucket j mod folded_dim) and divided by the square root of the bit count,
searched by inner product on FLAT. Its inner product s is at least the cosine
c / sqrt(ab) of the two fingerprints (c shared bits, a and b the bit counts),
and Tanimoto c / (a + b - c) is at most cos / (2 - cos). So no row left out of
the N fetched can beat g(min(1, s_N)), g(x) = x / (2 - x); once the k-th best
exact Tanimoto among the fetched rows (computed from the stored fingerprint
itself) reaches that bound, the top k is exact; otherwise fetch more.
A short vector is what makes this fast: Milvus Lite copies every vector it
scans on each search.
tests/test_molecule_search.py checks the result against RDKit's
BulkTanimotoSimilarity over the whole set, on both backends.
"""

from __future__ import annotations

import csv
import functools
import io
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import numpy as np
import rdkit
from pydantic import Field, model_validator
from rdkit import Chem

from vectorfair import Demo, DemoFilter, DemoOptions, Entry, ItemError, QueryError, ScalarField, VectorField, hookimpl
from vectorfair.expr import all_of

from .chem import (
    ChemError,
    FingerprintKind,
    Molecule,
    depict,
    fingerprint_generator,
    parse_pattern,
    parse_smiles,
    properties,
)

log = logging.getLogger(__name__)
SAMPLE = Path(rdkit.__file__).parent / "Data" / "Pains" / "test_data" / "wehi_mols.csv"
# Milvus refuses larger limits; collections beyond it get the exact answer
# only while the bound is met within this many rows (logged otherwise).
MAX_FETCH = 16384


class MoleculeOptions(DemoOptions):
    fingerprint: FingerprintKind = "morgan"
    radius: int = Field(2, ge=1, le=6)
    n_bits: int = Field(2048, ge=64, le=8192)
    folded_dim: int = Field(
        1024, ge=8, le=8192, description="dim of the folded fingerprint on a backend without binary vectors"
    )
    max_smiles_chars: int = Field(1000, ge=10, le=100_000)
    # Hits carry the URL of their structure drawing (the query's common
    # substructure, or the substructure filter, highlighted), drawn when the
    # page asks for it: never on the search's own time.
    depict_hits: bool = True
    mcs_timeout_s: float = Field(1.0, ge=0.0, le=30.0, description="time to find the common substructure per drawing")
    sample_limit: int | None = Field(None, ge=1)


class MoleculeFilter(DemoFilter):
    substructure: str | None = Field(None, max_length=500, description="SMARTS or SMILES every hit must contain")
    mw_min: float | None = Field(None, ge=0)
    mw_max: float | None = Field(None, ge=0)
    logp_min: float | None = None
    logp_max: float | None = None

    @model_validator(mode="after")
    def ranges_are_ordered(self):
        for low, high in (("mw_min", "mw_max"), ("logp_min", "logp_max")):
            if (
                getattr(self, low) is not None
                and getattr(self, high) is not None
                and getattr(self, low) > getattr(self, high)
            ):
                raise ValueError(f"{low} is greater than {high}")
        return self


class MoleculeSearch(Demo):
    name = "molecule_search"
    title = "Molecular similarity"
    description = "Find molecules similar to a SMILES by exact Tanimoto similarity of Morgan fingerprints (RDKit)."
    inputs = ("smiles",)
    accepts = (".smi", ".smiles", ".csv", ".sdf")
    fields = (
        ScalarField("smiles", "str", max_length=4096),
        ScalarField("name", "str", max_length=256),
        ScalarField("formula", "str", max_length=128),
        ScalarField("mw", "float", index=True),
        ScalarField("logp", "float", index=True),
        ScalarField("bits", "int"),
        # The fingerprint itself (hex), for the exact Tanimoto of each hit.
        ScalarField("fingerprint_hex", "str", max_length=2048),
    )
    Options = MoleculeOptions
    Filter = MoleculeFilter
    sample_query = "CC(=O)Nc1ccc(O)cc1"
    sample_cost = 60.0
    item_noun = "molecules"
    query_preview = "/api/demos/molecule_search/depict.svg?smiles={query}"

    def __init__(self, options=None):
        super().__init__(options)
        self._generator = fingerprint_generator(self.options.fingerprint, self.options.radius, self.options.n_bits)

    @property
    def vectors(self) -> tuple[VectorField, ...]:
        # Exactness needs an exact index: BIN_FLAT, or FLAT for the fallback.
        dim = min(self.options.folded_dim, self.options.n_bits)
        return (
            VectorField(
                "fingerprint",
                "binary",
                self.options.n_bits,
                "JACCARD",
                index=("BIN_FLAT",),
                fallback=VectorField(
                    kind="float", dim=dim, metric="IP", index=("FLAT",), convert=functools.partial(folded, dim=dim)
                ),
            ),
        )

    # -- molecules -------------------------------------------------------------
    def molecule(self, smiles: Any) -> Molecule:
        if not isinstance(smiles, str) or not smiles.strip():
            raise ChemError("missing SMILES")
        smiles = smiles.strip()
        if len(smiles) > self.options.max_smiles_chars:
            raise ChemError(f"the SMILES is longer than {self.options.max_smiles_chars} characters")
        return self._parsed(smiles)

    @functools.lru_cache(maxsize=4096)  # noqa: B019 - one demo instance per process
    def _parsed(self, smiles: str) -> Molecule:
        # Cached: ingest parses each record twice (identity, then parse_record).
        mol = parse_smiles(smiles)
        bits = self._generator.GetFingerprintAsNumPy(mol).astype(np.uint8)
        return Molecule(Chem.MolToSmiles(mol), mol, bits)

    def encode(self, payloads: list[Molecule]) -> np.ndarray:
        return np.stack([p.bits for p in payloads])

    # -- ingest ------------------------------------------------------------------
    def identity(self, source) -> str | None:
        # Same canonical SMILES = same molecule, whatever the name or spelling.
        if isinstance(source, dict):
            return self.molecule(source.get("smiles")).smiles
        return None

    def split_upload(self, upload) -> list[tuple[str, Any]]:
        if upload.suffix == ".sdf":
            return list(_sdf_records(upload.data))
        text = upload.text()
        if upload.suffix == ".csv":
            return list(_csv_records(text))
        if upload.suffix in (".smi", ".smiles"):
            return list(_smi_records(text))
        return None

    def parse_record(self, record: dict[str, Any]) -> Iterator[Entry]:
        try:
            molecule = self.molecule(record.get("smiles"))
        except ChemError as exc:
            raise ItemError(str(exc)) from None
        name = str(record.get("name") or record.get("id") or "").strip()[:256]
        yield Entry(
            payload=molecule,
            title=name or molecule.smiles,
            fields={
                "smiles": molecule.smiles,
                "name": name,
                "bits": molecule.bit_count,
                "fingerprint_hex": np.packbits(molecule.bits).tobytes().hex(),
                **properties(molecule.mol),
            },
        )

    def sample_items(self) -> Iterator[dict[str, Any]]:
        with open(SAMPLE, newline="") as fh:
            for n, row in enumerate(csv.reader(fh)):
                if self.options.sample_limit is not None and n >= self.options.sample_limit:
                    return
                if row:
                    yield {"smiles": row[0], "name": row[1] if len(row) > 1 else ""}

    # -- search ------------------------------------------------------------------
    def parse_query_text(self, text: str) -> Molecule:
        try:
            return self.molecule(text)
        except ChemError as exc:
            raise QueryError(str(exc)) from None

    def filter_expression(self, filter: MoleculeFilter) -> str:
        parts = []
        for field, low, high in (("mw", filter.mw_min, filter.mw_max), ("logp", filter.logp_min, filter.logp_max)):
            if low is not None:
                parts.append(f"{field} >= {float(low)!r}")
            if high is not None:
                parts.append(f"{field} <= {float(high)!r}")
        return all_of(*parts)

    def search(self, nearest, payload: Molecule, top_k: int, filter: MoleculeFilter | None):
        pattern = None
        if filter is not None and filter.substructure:
            try:
                pattern = parse_pattern(filter.substructure)
            except ChemError as exc:
                raise QueryError(str(exc)) from None
        a = payload.bit_count
        if a == 0:
            raise QueryError("this molecule sets no fingerprint bits; try a larger molecule")
        vector = self.encode_query(payload)
        query_bits = int.from_bytes(np.packbits(payload.bits).tobytes(), "big")
        ranked_by_tanimoto = nearest.stored("fingerprint").stored.metric == "JACCARD"
        limit = 3 * top_k
        while True:
            rows = nearest(vector, limit)
            # No row left out scores more than the last one fetched: its
            # Tanimoto when Milvus ranks by it, else g(min(1, s)) (see above).
            if not rows:
                bound = 0.0
            elif ranked_by_tanimoto:
                bound = rows[-1].score
            else:
                cosine = min(1.0, max(0.0, rows[-1].score))
                bound = cosine / (2 - cosine)
            hits = []
            for hit in rows:
                b = int(hit.fields["bits"])
                shared = (query_bits & int(hit.fields["fingerprint_hex"], 16)).bit_count()
                hit.score = shared / (a + b - shared) if a + b - shared else 0.0
                if pattern is None or _contains(hit.fields["smiles"], pattern):
                    hits.append(hit)
            hits.sort(key=lambda h: (-h.score, h.id))
            if len(rows) < limit:
                break  # every row that passes the filter was fetched
            if len(hits) >= top_k and hits[top_k - 1].score >= bound:
                break
            if limit >= MAX_FETCH:
                log.warning("molecule search stopped at %d rows; the top %d may not be exact", limit, top_k)
                break
            limit = min(limit * 4, MAX_FETCH)
        hits = hits[:top_k]
        for hit in hits:
            del hit.fields["fingerprint_hex"]  # 2048 bits of hex: not for the page
        if self.options.depict_hits:
            for hit in hits:
                hit.fields["structure_url"] = structure_url(hit.fields["smiles"], payload.smiles, filter)
        return hits


def folded(packed: bytes, dim: int) -> np.ndarray:
    """A fingerprint (packed bits) as `dim` bucket counts over sqrt(bit count):
    its inner product with another is at least their cosine."""
    on = np.flatnonzero(np.unpackbits(np.frombuffer(bytes(packed), dtype=np.uint8)))
    counts = np.bincount(on % dim, minlength=dim).astype(np.float32)
    return counts / np.sqrt(len(on)) if len(on) else counts


def structure_url(smiles: str, query: str, filter: MoleculeFilter | None) -> str:
    """Where the page gets a hit's drawing: the common substructure with the
    query highlighted, or the substructure filter when there is one."""
    params = {"smiles": smiles, "reference": query}
    if filter is not None and filter.substructure:
        params = {"smiles": smiles, "highlight": filter.substructure}
    return f"/api/demos/molecule_search/depict.svg?{urlencode(params)}"


def _contains(smiles: str, pattern) -> bool:
    mol = Chem.MolFromSmiles(smiles)
    return mol is not None and mol.HasSubstructMatch(pattern)


def _smi_records(text: str) -> Iterator[tuple[str, Any]]:
    for number, line in enumerate(text.splitlines(), 1):
        parts = line.split(None, 1)
        if not parts or parts[0].startswith("#") or (number == 1 and parts[0].lower() == "smiles"):
            continue
        yield f"line {number}", {"smiles": parts[0], "name": parts[1].strip() if len(parts) > 1 else ""}


def _csv_records(text: str) -> Iterator[tuple[str, Any]]:
    rows = csv.reader(io.StringIO(text))
    header = next(rows, None)
    if header is None:
        return
    columns = [c.strip().lower() for c in header]
    if "smiles" in columns:
        smiles_at = columns.index("smiles")
        name_at = next((columns.index(c) for c in ("name", "id", "title") if c in columns), None)
        first = 2
    else:  # no header: SMILES first, name second (the RDKit sample's layout)
        smiles_at, name_at, first = 0, 1, 1
        rows = iter([header, *rows])
    for number, row in enumerate(rows, first):
        if not row or not any(cell.strip() for cell in row):
            continue
        smiles = row[smiles_at] if smiles_at < len(row) else ""
        name = row[name_at] if name_at is not None and name_at < len(row) else ""
        yield f"line {number}", {"smiles": smiles, "name": name}


def _sdf_records(data: bytes) -> Iterator[tuple[str, Any]]:
    supplier = Chem.ForwardSDMolSupplier(io.BytesIO(data), sanitize=True)
    for number, mol in enumerate(supplier, 1):
        if mol is None:
            yield f"record {number}", ItemError("this SDF record could not be read by RDKit")
            continue
        name = mol.GetProp("_Name") if mol.HasProp("_Name") else ""
        yield f"record {number}", {"smiles": Chem.MolToSmiles(mol), "name": name}


@hookimpl
def register_demos():
    return [MoleculeSearch]


@hookimpl
def register_routes(demos):
    if "molecule_search" not in demos:
        return []
    from fastapi import APIRouter, HTTPException, Query
    from fastapi.responses import Response

    demo = demos["molecule_search"]

    @functools.lru_cache(maxsize=2048)
    def drawing(smiles: str, highlight: str | None, reference: str | None) -> str:
        molecule = demo.molecule(smiles)
        pattern = parse_pattern(highlight) if highlight else None
        query = demo.molecule(reference).mol if reference and pattern is None else None
        return depict(molecule.mol, highlight=pattern, reference=query, mcs_timeout=demo.options.mcs_timeout_s)

    router = APIRouter(prefix="/api/demos/molecule_search", tags=["molecule_search"])

    @router.get("/depict.svg", response_class=Response, responses={200: {"content": {"image/svg+xml": {}}}, 422: {}})
    def depict_smiles(
        smiles: str = Query(..., max_length=demo.options.max_smiles_chars, description="the molecule to draw"),
        highlight: str | None = Query(None, max_length=500, description="SMARTS or SMILES to highlight"),
        reference: str | None = Query(
            None, max_length=demo.options.max_smiles_chars, description="highlight the common substructure with this"
        ),
    ):
        """A 2D drawing of a SMILES (live previews and hits), highlighting a
        substructure or the common substructure with `reference`."""
        try:
            svg = drawing(smiles, highlight, reference)
        except ChemError as exc:
            raise HTTPException(422, str(exc)) from None
        return Response(
            svg,
            media_type="image/svg+xml",
            headers={"Cache-Control": "public, max-age=86400"},
        )

    return [router]
