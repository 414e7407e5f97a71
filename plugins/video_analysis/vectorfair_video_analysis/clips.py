"""Where a clip comes from: its frames' neighbours vote for alignments.

A clip frame at `t` seconds into the clip whose neighbour is a keyframe at `s`
seconds of a video says "the clip starts at s - t in that video". Over the
whole clip the right (video, start) gathers a vote from nearly every frame,
while a look-alike keyframe elsewhere gathers votes from a few frames only, or
from frames that disagree about the start. Stored keyframes are at most
`max_interval` apart, so the keyframes around a frame's moment are up to that
far from it: votes within `tolerance` (= `max_interval`) of a start count for
it, at most one per clip frame (its most similar keyframe there), and the
start is then placed between keyframes by how much each frame resembles them.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np


@dataclasses.dataclass
class Neighbour:
    """A stored keyframe near a clip frame: which item (video) and when."""

    item: Hashable
    timestamp: float
    similarity: float
    row: Any = None  # the hit it came from


@dataclasses.dataclass
class Alignment:
    item: Hashable
    start: float  # seconds into the stored video where the clip starts
    score: float  # mean over all clip frames of the aligned keyframe's similarity (0 for a frame with none)
    matched: int  # clip frames with a keyframe of this video at this alignment
    support: list[tuple[int, Neighbour]]  # (clip frame, its aligned keyframe)


def align(
    frame_times: Sequence[float],
    neighbours: Sequence[Sequence[Neighbour]],
    tolerance: float,
    step: float = 0.05,
    sharpness: float = 0.02,
) -> list[Alignment]:
    """The best alignment of the clip with each item that any frame's
    neighbours name, best first.

    For each item, each candidate start on a grid of `step` seconds scores the
    sum over clip frames of the best similarity among that frame's votes
    within `tolerance` of it (a frame votes once per start). The best start is
    then refined from the votes around it: each frame's votes there are
    averaged with softmax weights (`sharpness`: a keyframe more similar by
    that much counts e times more), which places a frame between two
    keyframes it resembles alike, and the frames' estimates are averaged
    weighted by similarity.
    """
    count = len(frame_times)
    by_item: dict[Hashable, list[tuple[int, float, float, Neighbour]]] = {}
    for frame, (t, found) in enumerate(zip(frame_times, neighbours)):
        for n in found:
            by_item.setdefault(n.item, []).append((frame, n.timestamp - t, max(0.0, n.similarity), n))
    alignments = []
    for item, votes in by_item.items():
        starts = np.array([v[1] for v in votes])
        low = float(starts.min()) - tolerance
        cells = int(math.ceil((float(starts.max()) + tolerance - low) / step)) + 1
        best = np.zeros((count, cells), np.float32)
        for frame, start, weight, _ in votes:
            first = max(0, int(math.ceil((start - tolerance - low) / step - 1e-9)))
            last = min(cells - 1, int(math.floor((start + tolerance - low) / step + 1e-9)))
            np.maximum(best[frame, first : last + 1], weight, out=best[frame, first : last + 1])
        totals = best.sum(axis=0)
        top = float(totals.max())
        # The middle of the best plateau (a start is rarely pinned by one cell).
        peak = int(np.argmax(totals))
        end = peak
        while end + 1 < cells and totals[end + 1] >= top - 1e-6:
            end += 1
        centre = low + (peak + end) / 2 * step
        for _ in range(3):
            centre, support = _refine(votes, centre, tolerance, sharpness)
        if not support:
            continue
        score = sum(n.similarity for _, n in support) / max(1, count)
        alignments.append(Alignment(item, centre, score, len(support), support))
    return sorted(alignments, key=lambda a: (-a.score, -a.matched))


def _refine(
    votes: list[tuple[int, float, float, Neighbour]], centre: float, tolerance: float, sharpness: float
) -> tuple[float, list[tuple[int, Neighbour]]]:
    per_frame: dict[int, list[tuple[float, float, Neighbour]]] = {}
    for frame, start, weight, n in votes:
        if abs(start - centre) <= tolerance:
            per_frame.setdefault(frame, []).append((start, weight, n))
    estimates, weights, support = [], [], []
    for frame, near in sorted(per_frame.items()):
        top = max(w for _, w, _ in near)
        soft = np.array([math.exp((w - top) / sharpness) for _, w, _ in near])
        estimates.append(float(np.dot(soft, [s for s, _, _ in near]) / soft.sum()))
        weights.append(top)
        support.append((frame, max(near, key=lambda v: v[1])[2]))
    if not support:
        return centre, support
    return float(np.average(estimates, weights=np.maximum(weights, 1e-6))), support
