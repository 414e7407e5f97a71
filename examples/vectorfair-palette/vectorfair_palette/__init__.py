"""Find images by their colours: a 4x4x4 RGB histogram as the vector."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageColor, UnidentifiedImageError

from vectorfair import (
    Demo,
    DemoOptions,
    Entry,
    ItemError,
    Media,
    QueryError,
    ScalarField,
    Upload,
    VectorField,
    hookimpl,
)

BINS = 4
MAX_PIXELS = 40_000_000
# Photographs shipped in scikit-image's data folder.
SAMPLES = """astronaut.png chelsea.png coffee.png rocket.jpg motorcycle_left.png grass.png gravel.png brick.png
hubble_deep_field.jpg retina.jpg ihc.png moon.png""".split()


class PaletteOptions(DemoOptions):
    sample_size: int = len(SAMPLES)


def cell_counts(pixels: np.ndarray) -> np.ndarray:
    """How many pixels fall in each of the BINS^3 RGB cells."""
    cells = (pixels.reshape(-1, 3).astype(np.int32) * BINS) // 256
    index = cells[:, 0] * BINS * BINS + cells[:, 1] * BINS + cells[:, 2]
    return np.bincount(index, minlength=BINS**3)


def histogram(pixels: np.ndarray) -> np.ndarray:
    """Square roots of the pixel shares in BINS^3 RGB cells, unit length."""
    counts = cell_counts(pixels).astype(np.float32)
    vector = np.sqrt(counts / max(counts.sum(), 1.0))
    return vector / max(float(np.linalg.norm(vector)), 1e-9)


def open_image(data: bytes, error: type[Exception]) -> Image.Image:
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    try:
        image = Image.open(io.BytesIO(data))
        image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError, ValueError) as exc:
        raise error(f"not a readable image ({type(exc).__name__}); send PNG, JPEG, WebP or GIF") from None
    mime = Image.MIME.get(image.format, "application/octet-stream")
    image = image.convert("RGB")
    image.thumbnail((256, 256))
    image.info["mime"] = mime
    return image


class Palette(Demo):
    name = "palette"
    title = "Colour palette search"
    description = 'Find images by colour: upload an image or type colours ("orange 3, #1e90ff").'
    inputs = ("image", "text")
    accepts = (".png", ".jpg", ".jpeg", ".webp", ".gif")
    fields = (ScalarField("dominant", "str", max_length=7, description="the most common colour, #rrggbb"),)
    vectors = (VectorField(dim=BINS**3),)
    Options = PaletteOptions
    sample_query = "orange 2, brown"
    sample_cost = 5.0
    item_noun = "images"

    def encode(self, payloads: list[np.ndarray]) -> np.ndarray:
        return np.stack(payloads)

    def parse_upload(self, upload: Upload) -> Iterator[Entry]:
        image = open_image(upload.data, ItemError)
        pixels = np.asarray(image)
        thumb = io.BytesIO()
        image.save(thumb, "JPEG", quality=80)
        yield Entry(
            payload=histogram(pixels),
            title=upload.name,
            fields={"dominant": dominant(pixels)},
            media=Media(upload.data, image.info["mime"]),
            thumbnail=Media(thumb.getvalue(), "image/jpeg"),
        )

    def parse_query_file(self, upload: Upload) -> np.ndarray:
        return histogram(np.asarray(open_image(upload.data, QueryError)))

    def parse_query_text(self, text: str) -> np.ndarray:
        """'orange 3, #1e90ff': colours with optional weights, as a palette image."""
        pixels = []
        for part in filter(None, (p.strip() for p in text.split(","))):
            match = re.fullmatch(r"(.+?)\s*(\d+(?:\.\d+)?)?", part)
            name, weight = match.group(1), float(match.group(2) or 1)
            try:
                rgb = ImageColor.getrgb(name)[:3]
            except ValueError:
                raise QueryError(f"{name!r} is not a colour; use CSS colour names or #rrggbb") from None
            pixels += [rgb] * max(1, int(weight * 100))
        if not pixels:
            raise QueryError("name at least one colour, e.g. 'orange, #1e90ff'")
        return histogram(np.array(pixels, dtype=np.uint8))

    def sample_items(self) -> Iterator[Upload]:
        import skimage

        folder = Path(skimage.__file__).parent / "data"
        for name in SAMPLES[: self.options.sample_size]:
            if (folder / name).is_file():
                yield Upload(name, (folder / name).read_bytes())


def dominant(pixels: np.ndarray) -> str:
    top = int(cell_counts(pixels).argmax())
    centre = [int((c + 0.5) * 256 / BINS) for c in (top // (BINS * BINS), (top // BINS) % BINS, top % BINS)]
    return "#" + "".join(f"{c:02x}" for c in centre)


@hookimpl
def register_demos():
    return [Palette]
