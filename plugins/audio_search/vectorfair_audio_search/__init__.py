"""Audio search by example: every file is cut into overlapping windows, each
embedded by the aiSFX sound-effects CNN (512-d, COSINE), so a search finds the
file and the moment. A query clip is windowed the same way; its windows vote
for (file, start) alignments, and a coarse loudness time line stored with each
window then places the clip to one spectrogram frame."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
from pydantic import BaseModel, Field

from vectorfair import (
    Demo,
    DemoFilter,
    DemoOptions,
    Entry,
    Hit,
    ItemError,
    Media,
    QueryError,
    SampleUnavailable,
    ScalarField,
    Upload,
    VectorField,
    hookimpl,
    lazy_model,
    report_progress,
    static_folder,
)

from .audio import (
    CONTENT_TYPES,
    AudioRejected,
    alignment_match,
    decode,
    envelope,
    frames_to_seconds,
    log_mel,
    seconds_to_frames,
    waveform_png,
    windows,
)
from .samples import SOURCES, sample_files


class AudioOptions(DemoOptions):
    # "aisfx" (weights shipped in the aisfx wheel) or a path to a checkpoint
    # of the same architecture saved as aisfx saves its own.
    model: str = "aisfx"
    # aiSFX was trained on ~2.3 s blocks (100 spectrogram frames); its
    # pooling takes any length, so other window lengths work too.
    window_seconds: float = Field(2.32, ge=0.5, le=10.0)
    hop_seconds: float = Field(0.5, ge=0.1, le=10.0)
    # Query windows are taken at a finer step than stored ones, so their
    # votes land between stored windows and pin the moment down more closely.
    query_hop_seconds: float = Field(0.25, ge=0.05, le=10.0)
    max_seconds: float = Field(900.0, ge=1.0, description="longest file accepted")
    max_query_seconds: float = Field(30.0, ge=1.0)
    min_seconds: float = Field(0.1, ge=0.01)
    silence_db: float = Field(-60.0, le=0.0)
    batch_size: int = Field(32, ge=1, le=512)


class AudioFilter(DemoFilter):
    file: str | None = Field(None, max_length=512, description="only this file name (as in hit.fields.file)")


@dataclasses.dataclass
class QueryClip:
    blocks: np.ndarray  # (windows, frames, bands)
    offsets: list[float]  # start of each window in the query, seconds
    duration: float
    envelope: np.ndarray  # (frames, bands) of the whole query


class AudioSearch(Demo):
    name = "audio_search"
    title = "Audio search"
    description = "Upload a clip; find the recordings it comes from, or that sound alike, and the moment (aiSFX)."
    inputs = ("audio",)
    accepts = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".aif", ".aiff")
    fields = (
        ScalarField("file", "str", max_length=512, index=True),
        ScalarField("offset", "float", description="start of the window in the file, seconds"),
        ScalarField("duration", "float", description="length of the whole file, seconds"),
        ScalarField("window", "float", description="length of the window, seconds"),
        ScalarField(
            "envelope", "json", description="loudness per spectrogram frame in 4 bands, to place a query in time"
        ),
    )
    Options = AudioOptions
    Filter = AudioFilter
    # The first load compiles numba for ~14 s before the 69 recordings.
    sample_cost = 100.0
    item_noun, row_noun = "recordings", "windows"
    result_script = "/static/plugins/audio_search/audio.js"

    # -- model -------------------------------------------------------------------
    @property
    def vectors(self) -> tuple[VectorField, ...]:
        return (VectorField(dim=self.dim),)

    @property
    def dim(self) -> int:
        return 512

    @property
    def window_frames(self) -> int:
        return seconds_to_frames(self.options.window_seconds)

    @property
    def hop_frames(self) -> int:
        return seconds_to_frames(self.options.hop_seconds)

    @property
    def query_hop_frames(self) -> int:
        return seconds_to_frames(min(self.options.query_hop_seconds, self.options.hop_seconds))

    @lazy_model
    def model(self):
        return _AisfxEmbedding(None if self.options.model == "aisfx" else self.options.model)

    def encode(self, payloads: list[np.ndarray]) -> np.ndarray:
        import torch

        out = []
        for start in range(0, len(payloads), self.options.batch_size):
            batch = torch.from_numpy(np.stack(payloads[start : start + self.options.batch_size]).astype(np.float32))
            with torch.inference_mode():
                out.append(torch.nn.functional.normalize(self.model(batch), dim=1).numpy())
        return np.concatenate(out).astype(np.float32) if out else np.zeros((0, self.dim), np.float32)

    def warm_up(self) -> None:
        # The first librosa call compiles numba kernels (~14 s here without a
        # cache; librosa caches them on disk, ~3 s after that): do it now.
        log_mel(np.zeros(self.window_frames * 1024, np.float32))
        self.encode([np.zeros((self.window_frames, 96), np.float32)])

    # -- ingest --------------------------------------------------------------------
    def _clip(self, data: bytes, max_seconds: float, error: type[Exception]):
        try:
            return decode(data, max_seconds, self.options.min_seconds, self.options.silence_db)
        except AudioRejected as exc:
            raise error(str(exc)) from None

    def parse_upload(self, upload: Upload) -> Iterator[Entry]:
        clip = self._clip(upload.data, self.options.max_seconds, ItemError)
        blocks, starts = windows(log_mel(clip.samples), self.window_frames, self.hop_frames)
        # Encoded here in steps rather than by the core in one go, so a long
        # recording shows its progress (seconds done of the file).
        vectors = []
        step = self.options.batch_size
        for first in range(0, len(blocks), step):
            vectors.append(self.encode(list(blocks[first : first + step])))
            report_progress(
                round(
                    min(
                        frames_to_seconds(starts[min(first + step, len(starts)) - 1]) + self.options.window_seconds,
                        clip.duration,
                    )
                ),
                round(clip.duration),
                "seconds",
            )
        vectors = np.concatenate(vectors)
        media = Media(upload.data, CONTENT_TYPES[clip.kind])
        thumbnail = Media(waveform_png(clip.samples), "image/png")
        window = round(min(self.options.window_seconds, clip.duration), 3)
        for vector, start, block in zip(vectors, starts, blocks):
            yield Entry(
                payload=None,
                title=upload.name,
                vectors={"vector": vector},
                media=media,
                thumbnail=thumbnail,
                fields={
                    "file": upload.name,
                    "offset": round(frames_to_seconds(start), 3),
                    "duration": round(clip.duration, 3),
                    "window": window,
                    "envelope": np.round(envelope(block), 3).tolist(),
                },
            )

    def sample_items(self) -> Iterator[Upload]:
        found = False
        for name, data in sample_files():
            found = True
            yield Upload(name, data)
        if not found:
            raise SampleUnavailable(
                f"the sample recordings ship inside the {', '.join(SOURCES)} packages and none of them is "
                "installed here; install one (pip install arcade) or load your own recordings"
            )

    # -- search --------------------------------------------------------------------
    def parse_query_file(self, upload: Upload) -> QueryClip:
        clip = self._clip(upload.data, self.options.max_query_seconds, QueryError)
        spec = log_mel(clip.samples)
        blocks, starts = windows(spec, self.window_frames, self.query_hop_frames)
        return QueryClip(blocks, [frames_to_seconds(s) for s in starts], clip.duration, envelope(spec))

    def candidates(self, top_k: int) -> int:
        return max(50, 8 * top_k)

    def search(
        self, nearest: Callable[[np.ndarray, int], list[Hit]], payload: QueryClip, top_k: int, filter: BaseModel | None
    ) -> list[Hit]:
        """Each query window votes for the (item, start) its neighbours imply,
        so a file that matches the whole clip in order gathers the most. The
        best alignments are then checked frame by frame against the stored
        loudness envelopes, which places the clip to ~23 ms and separates
        passages that sound alike. One hit per item, at its best start."""
        slot_width = frames_to_seconds(self.query_hop_frames)
        vectors = self.encode(list(payload.blocks))
        votes: dict[tuple[str, int], float] = {}
        best_row: dict[tuple[str, int], tuple[float, Hit]] = {}
        timeline_rows: list[Hit] = []
        for query_offset, vector in zip(payload.offsets, vectors):
            seen: set[tuple[str, int]] = set()
            for hit in nearest(vector, self.candidates(top_k)):
                timeline_rows.append(hit)
                start = float(hit.fields.get("offset") or 0.0) - query_offset
                key = (hit.item or hit.id, int(round(start / slot_width)))
                if key in seen:  # one vote per query window and alignment
                    continue
                seen.add(key)
                votes[key] = votes.get(key, 0.0) + hit.score
                if key not in best_row or hit.score > best_row[key][0]:
                    best_row[key] = (hit.score, hit)
        timelines = self._timelines(timeline_rows)
        per_item: dict[str, list[tuple[float, int]]] = {}
        for (item, slot), total in votes.items():
            per_item.setdefault(item, []).append((total, slot))
        # A few more items than asked are checked: the time line may promote one.
        ranked = sorted(per_item.items(), key=lambda kv: -max(kv[1])[0])[: top_k + 5]
        hits = []
        slot_frames = self.query_hop_frames
        for item, alignments in ranked:
            # The best few alignments by votes are checked frame by frame
            # against the stored envelopes: that places the clip and picks
            # the right one of several passages that sound alike.
            best = (-2.0, 0, 0.0)
            for total, slot in sorted(alignments, reverse=True)[:4]:
                for start in range(slot * slot_frames - slot_frames, slot * slot_frames + slot_frames + 1):
                    match = alignment_match(payload.envelope, timelines.get(item, {}), start)
                    if match > best[0]:
                        best = (match, start, total)
            match, start, total = best
            top_total, top_slot = max(alignments)
            if match <= 0.0:  # nothing to check against: trust the votes
                start, total = top_slot * slot_frames, top_total
            row = best_row.get((item, round(start / slot_frames)), best_row[(item, top_slot)])[1]
            duration = float(row.fields.get("duration") or 0.0)
            offset = round(min(max(0.0, frames_to_seconds(start)), max(0.0, duration - 0.1)), 2)
            fields = {k: v for k, v in row.fields.items() if k != "envelope"}
            fields.update(offset=offset, alignment_match=round(max(match, 0.0), 3))
            # Sound alike (votes) and unfold alike (envelope) both count.
            score = 0.5 * min(1.0, top_total / len(vectors)) + 0.5 * max(match, 0.0)
            hits.append(
                dataclasses.replace(
                    row,
                    score=round(score, 4),
                    fields=fields,
                    media_url=f"{row.media_url}#t={offset}" if row.media_url else None,
                )
            )
        return sorted(hits, key=lambda hit: -hit.score)[:top_k]

    @staticmethod
    def _timelines(rows: list[Hit]) -> dict[str, dict[int, np.ndarray]]:
        """Per item, the envelope frames known from the rows the search saw."""
        timelines: dict[str, dict[int, np.ndarray]] = {}
        for hit in rows:
            values = hit.fields.get("envelope")
            if not values:
                continue
            first = int(round(float(hit.fields.get("offset") or 0.0) / frames_to_seconds(1)))
            line = timelines.setdefault(hit.item or hit.id, {})
            for i, value in enumerate(values):
                line.setdefault(first + i, np.asarray(value, dtype=np.float32))
        return timelines

    def summarize(self, payload: QueryClip, hits: list[Hit]) -> dict[str, Any]:
        return {"query_seconds": round(payload.duration, 2), "query_windows": len(payload.offsets)}


class _AisfxEmbedding:
    """aiSFX's embedding network with its shipped weights (or a checkpoint)."""

    def __init__(self, checkpoint: str | None):
        import torch
        from aisfx.inference import get_path_modelWeights
        from aisfx.models.cnn2d import CrossNet, EmbeddingNet

        path = checkpoint or get_path_modelWeights()
        # The checkpoint is a pickled (state_dict, dataset table) pair: it
        # needs weights_only=False, so only load checkpoints you trust.
        weights, datasets = torch.load(path, map_location="cpu", weights_only=False)
        net = CrossNet(EmbeddingNet("max", 3, 1, 64), datasets, "cpu")
        net.load_state_dict(weights)
        net.eval()
        self.net = net.embedding_net

    def __call__(self, batch):
        return self.net(batch)


@hookimpl
def register_demos():
    return [AudioSearch]


@hookimpl
def extra_static():
    return static_folder("audio_search", __file__)
