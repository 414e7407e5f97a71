"""Use a towhee pipeline as a demo's encoder, so Milvus Bootcamp users can
bring the pipelines they already have (`pip install 'vectorfair[towhee]'`).

    from towhee import pipe, ops
    from vectorfair.towhee import TowheeDemo

    class MyImages(TowheeDemo):
        name = "my_images"
        title = "My images"
        inputs = ("image",)
        accepts = (".jpg", ".png")
        vector_dim = 512

        def towhee_pipeline(self):
            return (pipe.input("path").map("path", "img", ops.image_decode())
                    .map("img", "vec", ops.image_embedding.timm(model_name="resnet34"))
                    .output("vec"))

The pipeline takes one payload and outputs one vector; batches go through
towhee's own `batch()`. Parsing items and queries stays the demo's job, as in
any other demo.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .demo import Demo, lazy_model
from .schema import VectorField


class TowheeEncoder:
    """A callable `payloads -> (n, dim) float32` around a towhee pipeline."""

    def __init__(self, pipeline: Any, normalize: bool = True):
        self.pipeline = pipeline
        self.normalize = normalize

    def __call__(self, payloads: list[Any]) -> np.ndarray:
        if not payloads:
            return np.zeros((0, 0), dtype=np.float32)
        queues = self.pipeline.batch(list(payloads))
        vectors = np.stack([_first_output(queue) for queue in queues]).astype(np.float32)
        if self.normalize:
            norms = np.linalg.norm(vectors, axis=1, keepdims=True)
            vectors = vectors / np.where(norms == 0, 1.0, norms)
        return vectors


def _first_output(queue: Any) -> np.ndarray:
    result = queue.get()
    if result is None:
        raise ValueError("the towhee pipeline produced no output for a payload")
    return np.asarray(result[0], dtype=np.float32).reshape(-1)


class TowheeDemo(Demo):
    """A Demo whose `encode` runs `towhee_pipeline()`. Set `vector_dim` (the
    schema is made before the pipeline loads) and implement `towhee_pipeline`
    and the `parse_*` methods like any demo."""

    vector_dim: int = 0
    normalize_vectors: bool = True

    def towhee_pipeline(self) -> Any:
        raise NotImplementedError("return a towhee pipeline: pipe.input(...).map(...).output(...)")

    @property
    def vectors(self) -> tuple[VectorField, ...]:
        if not self.vector_dim:
            raise NotImplementedError(f"{type(self).__name__} must set vector_dim")
        return (VectorField(dim=self.vector_dim),)

    @lazy_model
    def towhee_encoder(self) -> TowheeEncoder:
        return TowheeEncoder(self.towhee_pipeline(), self.normalize_vectors)

    def encode(self, payloads: list[Any]) -> np.ndarray:
        # The core checks the vectors against vector_dim, naming any mismatch.
        return self.towhee_encoder(payloads)
