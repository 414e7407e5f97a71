"""Reading videos safely and picking their keyframes.

OpenCV (FFmpeg inside the wheel) decodes; it needs a file, so the bytes go to a
temporary file that is removed afterwards. The container is recognised by its
bytes, and the size, frame rate and length are checked from the header before
the frames are read.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterator

import numpy as np

CONTENT_TYPES = {
    "mp4": "video/mp4",
    "mov": "video/quicktime",
    "avi": "video/x-msvideo",
    "webm": "video/webm",
    "mkv": "video/x-matroska",
}


class VideoRejected(ValueError):
    """The bytes are not a usable video; the message says why."""


@dataclasses.dataclass
class Keyframe:
    index: int
    timestamp: float
    rgb: np.ndarray  # H x W x 3 uint8
    reason: str  # "first", "scene change" or "interval"


@dataclasses.dataclass
class VideoInfo:
    kind: str
    fps: float
    frames: int
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.frames / self.fps if self.fps else 0.0


def sniff(data: bytes) -> str | None:
    if len(data) >= 12 and data[4:8] == b"ftyp":
        return "mov" if data[8:10] == b"qt" else "mp4"
    if data[:4] == b"RIFF" and data[8:12] == b"AVI ":
        return "avi"
    if data[:4] == b"\x1a\x45\xdf\xa3":
        return "webm" if b"webm" in data[:64] else "mkv"
    return None


class OpenVideo:
    """A decoded-on-demand video from bytes: `with OpenVideo(data) as video:`."""

    def __init__(self, data: bytes, max_seconds: float, max_pixels: int):
        kind = sniff(data)
        if kind is None:
            raise VideoRejected("not a video this demo can read; send MP4, MOV, AVI, WebM or MKV")
        self.kind, self.data = kind, data
        self.max_seconds, self.max_pixels = max_seconds, max_pixels
        self.path: str | None = None
        self.capture = None
        self.frames_read = 0

    def __enter__(self) -> "OpenVideo":
        import cv2

        handle, self.path = tempfile.mkstemp(suffix=f".{self.kind}", prefix="vectorfair-video-")
        with os.fdopen(handle, "wb") as out:
            out.write(self.data)
        self.capture = cv2.VideoCapture(self.path, cv2.CAP_FFMPEG)
        if not self.capture.isOpened():
            self.__exit__()
            raise VideoRejected(
                f"the {self.kind.upper()} file cannot be opened: damaged, or its codec is not available"
            )
        fps = float(self.capture.get(cv2.CAP_PROP_FPS) or 0.0)
        frames = int(self.capture.get(cv2.CAP_PROP_FRAME_COUNT) or 0)
        width = int(self.capture.get(cv2.CAP_PROP_FRAME_WIDTH) or 0)
        height = int(self.capture.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
        if not (0 < fps <= 1000) or width <= 0 or height <= 0:
            self.__exit__()
            raise VideoRejected("the video has no readable frame rate or frame size; it is damaged or not a video")
        if width * height > self.max_pixels:
            self.__exit__()
            raise VideoRejected(
                f"frames of {width}x{height} are over the limit of {self.max_pixels} pixels; scale it down"
            )
        self.info = VideoInfo(self.kind, fps, frames, width, height)
        if self.info.duration > self.max_seconds:
            self.__exit__()
            raise VideoRejected(
                f"the video lasts {self.info.duration:.0f} s, over the limit of {self.max_seconds:.0f} s; cut it"
            )
        return self

    def __exit__(self, *exc) -> None:
        if self.capture is not None:
            self.capture.release()
            self.capture = None
        if self.path:
            os.unlink(self.path)
            self.path = None

    def frames(self, every: int) -> Iterator[tuple[int, np.ndarray]]:
        """(index, RGB frame) for every `every`-th frame; the others are only
        grabbed (demuxed, not converted), which is much cheaper."""
        import cv2

        index = 0
        limit = int(self.max_seconds * self.info.fps) + 1
        while index < limit:
            if index % every == 0:
                ok, frame = self.capture.read()
                if not ok:
                    return
                self.frames_read = index + 1
                yield index, cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
            elif not self.capture.grab():
                return
            index += 1
            self.frames_read = index


def colour_signature(rgb: np.ndarray) -> np.ndarray:
    """A normalised HSV histogram of a small copy of the frame."""
    import cv2

    small = cv2.resize(rgb, (96, 96), interpolation=cv2.INTER_AREA)
    hsv = cv2.cvtColor(small, cv2.COLOR_RGB2HSV)
    histogram = cv2.calcHist([hsv], [0, 1, 2], None, [16, 4, 4], [0, 180, 0, 256, 0, 256])
    return cv2.normalize(histogram, histogram).flatten()


def keyframes(
    video: OpenVideo,
    analysis_fps: float,
    scene_threshold: float,
    min_interval: float,
    max_interval: float,
    on_frame: Callable[[int, int], None] = lambda done, total: None,
) -> Iterator[Keyframe]:
    """Keyframes at scene changes (colour histogram distance over
    `scene_threshold`, no closer than `min_interval`) and at least every
    `max_interval` seconds."""
    import cv2

    fps = video.info.fps
    every = max(1, int(round(fps / analysis_fps)))
    last_signature, last_time = None, -1e9
    total = video.info.frames
    seen = 0
    for index, rgb in video.frames(every):
        seen = index + 1
        timestamp = index / fps
        signature = colour_signature(rgb)
        reason = None
        if last_signature is None:
            reason = "first"
        elif timestamp - last_time >= max_interval:
            reason = "interval"
        elif (
            timestamp - last_time >= min_interval
            and cv2.compareHist(last_signature, signature, cv2.HISTCMP_BHATTACHARYYA) > scene_threshold
        ):
            reason = "scene change"
        if reason:
            last_signature, last_time = signature, timestamp
            yield Keyframe(index, timestamp, rgb, reason)
        on_frame(index + 1, max(total, index + 1))
    # The frames after the last examined one were decoded too.
    on_frame(max(seen, video.frames_read), max(total, seen, video.frames_read))


def clip_frames(video: OpenVideo, fps: float, max_seconds: float) -> list[tuple[float, np.ndarray]]:
    """(seconds into the clip, RGB frame) about `fps` times a second, over
    the first `max_seconds` of the clip."""
    every = max(1, int(round(video.info.fps / fps)))
    picked = []
    for index, rgb in video.frames(every):
        timestamp = index / video.info.fps
        if timestamp > max_seconds:
            break
        picked.append((timestamp, rgb))
    return picked
