"""Sample videos made offline from photographs shipped in wheels.

scikit-image's sample photographs (astronaut Eileen Collins, a rocket, a cat,
coffee, a motorcycle, ...) and matplotlib's portrait of Grace Hopper become four
short videos with camera pans, each in another container and codec. Faces:
Eileen Collins appears in `launch.mp4` and (split screen) `interview.webm`,
Grace Hopper in `interview.webm` and (picture-in-picture) `garage.mov`. The same code always makes the same bytes
for the same OpenCV build.
"""

from __future__ import annotations

import functools
import importlib.metadata
import os
import tempfile
from pathlib import Path

import numpy as np
from PIL import Image

SIZE = (480, 360)
FPS = 12
# Cuts fall between the 1 s keyframe interval's ticks, so scene detection shows.
SCENE_SECONDS = 2.5
# name -> (fourcc, scenes); a scene is a photo name, "a|b" for a split screen
# or "a+b" for b shown as a picture-in-picture over a.
VIDEOS = {
    "launch.mp4": ("mp4v", ["rocket.jpg", "astronaut.png", "moon.png", "hubble_deep_field.jpg"]),
    "breakfast.avi": ("MJPG", ["coffee.png", "chelsea.png", "camera.png"]),
    "interview.webm": ("VP80", ["grace_hopper.jpg", "astronaut.png|grace_hopper.jpg", "coins.png"]),
    "garage.mov": ("mp4v", ["motorcycle_left.png", "grass.png+grace_hopper.jpg", "gravel.png"]),
}


@functools.lru_cache(maxsize=16)
def photo(name: str) -> Image.Image:
    if name == "grace_hopper.jpg":
        dist = importlib.metadata.distribution("matplotlib")
        path = dist.locate_file("matplotlib/mpl-data/sample_data/grace_hopper.jpg")
    else:
        import skimage

        path = Path(skimage.__file__).parent / "data" / name
    return Image.open(path).convert("RGB")


def _fit(image: Image.Image, size: tuple[int, int], progress: float) -> Image.Image:
    """A window of the photo with the frame's aspect ratio, panning from left
    to right (or top to bottom) and zooming in slightly as `progress` goes 0 -> 1."""
    width, height = image.size
    aspect = size[0] / size[1]
    zoom = 0.8 - 0.1 * progress
    crop_h = min(height, width / aspect) * zoom
    crop_w = crop_h * aspect
    left = (width - crop_w) * (0.1 + 0.8 * progress)
    top = (height - crop_h) * (0.3 + 0.4 * progress)
    return image.crop((left, top, left + crop_w, top + crop_h)).resize(size, Image.BICUBIC)


def frame(scene: str, progress: float) -> np.ndarray:
    if "|" in scene:
        halves = [_fit(photo(name), (SIZE[0] // 2, SIZE[1]), progress) for name in scene.split("|")]
        canvas = Image.new("RGB", SIZE)
        canvas.paste(halves[0], (0, 0))
        canvas.paste(halves[1], (SIZE[0] // 2, 0))
        return np.asarray(canvas)
    if "+" in scene:
        background, inset = scene.split("+")
        canvas = _fit(photo(background), SIZE, progress)
        small = _fit(photo(inset), (SIZE[0] * 11 // 20, SIZE[1] * 11 // 20), progress)
        canvas.paste(small, (SIZE[0] - small.width - 12, 12))
        return np.asarray(canvas)
    return np.asarray(_fit(photo(scene), SIZE, progress))


def make_video(fourcc: str, scenes: list[str], suffix: str) -> bytes:
    import cv2

    handle, path = tempfile.mkstemp(suffix=suffix, prefix="vectorfair-sample-")
    os.close(handle)
    try:
        writer = cv2.VideoWriter(path, cv2.VideoWriter_fourcc(*fourcc), FPS, SIZE)
        if not writer.isOpened():
            raise RuntimeError(f"this OpenCV cannot write {fourcc} {suffix} files")
        per_scene = int(SCENE_SECONDS * FPS)
        for scene in scenes:
            for n in range(per_scene):
                writer.write(cv2.cvtColor(frame(scene, n / (per_scene - 1)), cv2.COLOR_RGB2BGR))
        writer.release()
        return Path(path).read_bytes()
    finally:
        os.unlink(path)


def scene_at(name: str, timestamp: float) -> str:
    """Which scene of a sample video is on screen at `timestamp` (for tests)."""
    scenes = VIDEOS[name][1]
    return scenes[min(len(scenes) - 1, int(timestamp // SCENE_SECONDS))]


def sample_videos() -> dict[str, bytes]:
    return {name: make_video(fourcc, scenes, Path(name).suffix) for name, (fourcc, scenes) in VIDEOS.items()}
