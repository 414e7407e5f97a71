"""RDKit helpers: parsing with RDKit's own reason for a failure, fingerprints,
properties, and highlighted depictions."""

from __future__ import annotations

import dataclasses
import logging
import re
import threading
from typing import Literal

import numpy as np
from rdkit import Chem, rdBase
from rdkit.Chem import Descriptors, rdFingerprintGenerator, rdFMCS, rdMolDescriptors
from rdkit.Chem.Draw import rdMolDraw2D

FingerprintKind = Literal["morgan", "feature_morgan", "rdkit", "atom_pair", "topological_torsion"]

# RDKit explains parse failures only in its log; route it to Python logging
# and collect what one parse says.
rdBase.LogToPythonLogger()
_rdkit_log = logging.getLogger("rdkit")
_capture_lock = threading.Lock()
_TIMESTAMP = re.compile(r"^\[\d\d:\d\d:\d\d\]\s*")


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(logging.DEBUG)
        self.messages: list[str] = []

    def emit(self, record):
        self.messages.append(_TIMESTAMP.sub("", record.getMessage()).strip())


class ChemError(ValueError):
    pass


def _with_reason(parse, text: str, what: str):
    collect = _Collect()
    with _capture_lock:
        _rdkit_log.addHandler(collect)
        propagate, _rdkit_log.propagate = _rdkit_log.propagate, False
        try:
            mol = parse(text)
        finally:
            _rdkit_log.removeHandler(collect)
            _rdkit_log.propagate = propagate
    if mol is None or mol.GetNumAtoms() == 0:
        reason = next((m for m in collect.messages if m), "RDKit could not read it")
        for message in collect.messages:
            if "Failed parsing" not in message and message.strip() not in (text, "^"):
                reason = message
                break
        raise ChemError(f"invalid {what} {text[:80]!r}: {reason}")
    return mol


def parse_smiles(smiles: str) -> Chem.Mol:
    return _with_reason(Chem.MolFromSmiles, smiles, "SMILES")


def parse_pattern(pattern: str) -> Chem.Mol:
    """A substructure given as SMARTS, or as SMILES when it is not valid SMARTS."""
    try:
        return _with_reason(Chem.MolFromSmarts, pattern, "SMARTS")
    except ChemError:
        return _with_reason(Chem.MolFromSmiles, pattern, "substructure (SMARTS or SMILES)")


def fingerprint_generator(kind: FingerprintKind, radius: int, n_bits: int):
    if kind == "morgan":
        return rdFingerprintGenerator.GetMorganGenerator(radius=radius, fpSize=n_bits)
    if kind == "feature_morgan":
        return rdFingerprintGenerator.GetMorganGenerator(
            radius=radius, fpSize=n_bits, atomInvariantsGenerator=rdFingerprintGenerator.GetMorganFeatureAtomInvGen()
        )
    if kind == "rdkit":
        return rdFingerprintGenerator.GetRDKitFPGenerator(fpSize=n_bits)
    if kind == "atom_pair":
        return rdFingerprintGenerator.GetAtomPairGenerator(fpSize=n_bits)
    if kind == "topological_torsion":
        return rdFingerprintGenerator.GetTopologicalTorsionGenerator(fpSize=n_bits)
    raise ValueError(f"unknown fingerprint kind {kind!r}")


@dataclasses.dataclass
class Molecule:
    smiles: str  # canonical
    mol: Chem.Mol
    bits: np.ndarray  # uint8 0/1, length n_bits

    @property
    def bit_count(self) -> int:
        return int(self.bits.sum())


def properties(mol: Chem.Mol) -> dict[str, float | str]:
    return {
        "mw": round(float(Descriptors.MolWt(mol)), 3),
        "logp": round(float(Descriptors.MolLogP(mol)), 3),
        "formula": rdMolDescriptors.CalcMolFormula(mol),
    }


def depict(
    mol: Chem.Mol,
    highlight: Chem.Mol | None = None,
    size: tuple[int, int] = (260, 200),
    mcs_timeout: float = 0.0,
    reference: Chem.Mol | None = None,
) -> str:
    """SVG of `mol`; atoms matching `highlight` (a pattern) or, failing that,
    the maximum common substructure with `reference` are highlighted."""
    atoms: list[int] = []
    if highlight is not None:
        atoms = sorted({a for match in mol.GetSubstructMatches(highlight) for a in match})
    elif reference is not None and mcs_timeout > 0:
        result = rdFMCS.FindMCS(
            [reference, mol], timeout=max(1, int(round(mcs_timeout))), ringMatchesRingOnly=True, completeRingsOnly=True
        )
        if result.numAtoms > 0:
            pattern = Chem.MolFromSmarts(result.smartsString)
            if pattern is not None:
                atoms = list(mol.GetSubstructMatch(pattern))
    bonds = (
        [b.GetIdx() for b in mol.GetBonds() if b.GetBeginAtomIdx() in atoms and b.GetEndAtomIdx() in atoms]
        if atoms
        else []
    )
    drawer = rdMolDraw2D.MolDraw2DSVG(*size)
    drawer.drawOptions().clearBackground = False
    rdMolDraw2D.PrepareAndDrawMolecule(drawer, mol, highlightAtoms=atoms, highlightBonds=bonds)
    drawer.FinishDrawing()
    return drawer.GetDrawingText()
