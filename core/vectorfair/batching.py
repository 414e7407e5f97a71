"""Dynamic batching of query encodes.

Concurrent searches of one demo each need one vector. Encoding them one by one
runs the model N times and, with torch's own threads in every request thread,
oversubscribes the cores. A `Batcher` gathers the payloads that arrive within
`max_wait` (up to `max_batch`) and runs the demo's `encode` once for all of
them on its own thread; each caller gets its row back.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

import numpy as np

log = logging.getLogger("vectorfair.batching")


class Batcher:
    def __init__(
        self,
        encode: Callable[[list[Any]], np.ndarray],
        max_batch: int = 32,
        max_wait: float = 0.005,
        name: str = "encoder",
        on_batch: Callable[[int], None] = lambda size: None,
    ):
        self.encode = encode
        self.max_batch = max(1, max_batch)
        self.max_wait = max(0.0, max_wait)
        self.name = name
        self.on_batch = on_batch
        self._queue: queue.Queue[tuple[Any, Future] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.batches = 0
        self.items = 0

    def __call__(self, payload: Any) -> np.ndarray:
        """The vector of one payload (blocks the calling thread until its batch ran)."""
        self._ensure_thread()
        future: Future = Future()
        self._queue.put((payload, future))
        return future.result()

    def _ensure_thread(self) -> None:
        if self._thread is None or not self._thread.is_alive():
            with self._lock:
                if self._thread is None or not self._thread.is_alive():
                    self._thread = threading.Thread(target=self._run, name=f"vectorfair-batch-{self.name}", daemon=True)
                    self._thread.start()

    def close(self) -> None:
        if self._thread is not None and self._thread.is_alive():
            self._queue.put(None)
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.monotonic() + self.max_wait
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    item = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # finish this batch, then stop
                    break
                batch.append(item)
            self._run_batch(batch)

    def _run_batch(self, batch: list[tuple[Any, Future]]) -> None:
        payloads = [payload for payload, _ in batch]
        try:
            # Rows as the encoder made them: float arrays, bits, or sparse dicts.
            vectors = self.encode(payloads)
            if len(vectors) != len(batch):
                raise ValueError(f"encoder returned {len(vectors)} vectors for {len(batch)} payloads")
        except Exception as batch_error:
            if len(batch) == 1:
                batch[0][1].set_exception(batch_error)
                return
            # One bad payload must not fail the others' searches: retry alone.
            for one in batch:
                self._run_batch([one])
            return
        self.batches += 1
        self.items += len(batch)
        self.on_batch(len(batch))
        for (_, future), vector in zip(batch, vectors):
            future.set_result(vector)


def attach_batcher(demo: Any, batcher: Callable[[Any], np.ndarray] | None) -> None:
    """Route `demo.encode_query` through `batcher` (None: encode one by one)."""
    demo.__dict__["_query_batcher"] = batcher
