"""Decoding uploads safely and preparing them for the model, with Pillow and
numpy only (torchvision does not run on the target machines)."""

from __future__ import annotations

import io
import warnings

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Formats recognised by their bytes (Pillow's sniffing), whatever the file name says.
ALLOWED_FORMATS = {
    "JPEG": "image/jpeg",
    "PNG": "image/png",
    "WEBP": "image/webp",
    "GIF": "image/gif",
    "BMP": "image/bmp",
    "TIFF": "image/tiff",
    "MPO": "image/jpeg",
}


class ImageRejected(ValueError):
    pass


def decode(data: bytes, max_pixels: int, min_side: int | None = None) -> tuple[Image.Image, str]:
    """An RGB image with its EXIF orientation applied, and its format.

    Refuses non-images, formats outside ALLOWED_FORMATS, pixel counts over
    `max_pixels` (checked from the header, before decoding) and truncated files.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError):
        raise ImageRejected("not an image Pillow can read (JPEG, PNG, WebP, GIF, BMP or TIFF)") from None
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageRejected(f"the image declares more pixels than the limit of {max_pixels}; scale it down") from None
    image_format = image.format  # transposing below returns an image without it
    if image_format not in ALLOWED_FORMATS:
        raise ImageRejected(f"{image_format} images are not accepted; send JPEG, PNG, WebP, GIF, BMP or TIFF")
    width, height = image.size
    if width * height > max_pixels:
        raise ImageRejected(f"the image is {width}x{height} pixels, over the limit of {max_pixels}; scale it down")
    if width < 8 or height < 8:
        raise ImageRejected(f"the image is only {width}x{height} pixels")
    if min_side and image_format in ("JPEG", "MPO"):
        # JPEG can decode at 1/2, 1/4 or 1/8 scale for almost nothing; keep
        # the short side at least `min_side` (what the model and thumbnail need).
        image.draft("RGB", (min_side, min_side))
    try:
        image.seek(0)  # an animated GIF or WebP: its first frame
        image.load()
        loaded = image.size
        image = ImageOps.exif_transpose(image)
    except (OSError, SyntaxError, ValueError, EOFError) as exc:
        raise ImageRejected(f"the image is truncated or damaged ({exc})") from None
    rgb = to_rgb(image)
    # The size as stored and shown: the full one, turned as EXIF says.
    turned = image.size != loaded
    rgb.info["original_size"] = (height, width) if turned else (width, height)
    return rgb, image_format


def to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        # 16-bit and float TIFFs: stretch to 8 bits rather than clip to white.
        array = np.asarray(image, dtype=np.float64)
        low, high = float(array.min()), float(array.max())
        scaled = (array - low) / (high - low) * 255 if high > low else np.zeros_like(array)
        image = Image.fromarray(scaled.astype(np.uint8), "L")
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        # Transparent areas on white, as a viewer shows them.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        image = Image.alpha_composite(background, rgba)
    return image.convert("RGB")


def model_input(
    image: Image.Image, size: int = 224, resize: int = 256, mean: float = 0.5, std: float = 0.5
) -> np.ndarray:
    """Resize the short side to `resize`, centre-crop `size`, scale to the
    model's range; CHW float32."""
    width, height = image.size
    scale = resize / min(width, height)
    # reducing_gap: shrink by an integer factor first (cheap box reduce), then
    # resample; ~3x faster on large photos, no visible difference at 256 px.
    resized = image.resize(
        (max(size, round(width * scale)), max(size, round(height * scale))), Image.BICUBIC, reducing_gap=2.0
    )
    width, height = resized.size
    left, top = (width - size) // 2, (height - size) // 2
    array = np.asarray(resized.crop((left, top, left + size, top + size)), dtype=np.float32) / 255.0
    return ((array - mean) / std).transpose(2, 0, 1).copy()


def thumbnail(image: Image.Image, size: int) -> bytes:
    width, height = image.size
    scale = min(1.0, size / max(width, height))
    small = (
        image.resize((max(1, round(width * scale)), max(1, round(height * scale))), Image.LANCZOS, reducing_gap=2.0)
        if scale < 1.0
        else image
    )
    out = io.BytesIO()
    small.save(out, "JPEG", quality=85)
    return out.getvalue()
