"""Faces with dlib: the HOG frontal-face detector, 5-point landmarks and the
ResNet 128-d face descriptor, with the model files of face-recognition-models
(found through importlib: that package imports pkg_resources, so it is never
imported itself)."""

from __future__ import annotations

import dataclasses
import importlib.util
import threading
from pathlib import Path

import numpy as np

FACE_DIM = 128


@dataclasses.dataclass
class Face:
    box: tuple[int, int, int, int]  # left, top, right, bottom in the frame
    descriptor: np.ndarray  # 128-d, L2-normalised
    detection_score: float


def model_folder(custom: str | None = None) -> Path:
    if custom:
        return Path(custom)
    spec = importlib.util.find_spec("face_recognition_models")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("face-recognition-models is not installed; pip install face-recognition-models")
    return Path(list(spec.submodule_search_locations)[0]) / "models"


class FaceEncoder:
    def __init__(self, models: str | None = None, upsample: int = 1, min_size: int = 40):
        import dlib

        folder = model_folder(models)
        self.detector = dlib.get_frontal_face_detector()
        self.landmarks = dlib.shape_predictor(str(folder / "shape_predictor_5_face_landmarks.dat"))
        self.descriptor = dlib.face_recognition_model_v1(str(folder / "dlib_face_recognition_resnet_model_v1.dat"))
        self.upsample = upsample
        self.min_size = min_size
        # dlib's objects are not documented as thread-safe.
        self._lock = threading.Lock()

    def faces(self, rgb: np.ndarray) -> list[Face]:
        rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
        height, width = rgb.shape[:2]
        found = []
        with self._lock:
            boxes, scores, _ = self.detector.run(rgb, self.upsample, 0.0)
            for box, score in zip(boxes, scores):
                if min(box.width(), box.height()) < self.min_size:
                    continue
                shape = self.landmarks(rgb, box)
                vector = np.asarray(self.descriptor.compute_face_descriptor(rgb, shape), dtype=np.float32)
                clipped = (max(0, box.left()), max(0, box.top()), min(width, box.right()), min(height, box.bottom()))
                found.append(Face(clipped, vector / max(float(np.linalg.norm(vector)), 1e-9), float(score)))
        return sorted(found, key=lambda face: -(face.box[2] - face.box[0]) * (face.box[3] - face.box[1]))
