"""The in-process baseline of benchmarks/perf.py: threads calling preprocessing and the models.

    python -m benchmarks.perf_inproc < job.json > results.json

    {"kind": "inprocess", "weights": {"mlp": path, "cnn": path}, "body_file": ..., "threads": 1}

What a plain app with the models loaded would do per request: `preprocess` once, then each
model's `Predictor.probabilities` (forward pass and softmax) and its argmax.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import cv2
import torch

from benchmarks.perf_cell import Phase, Recorder, serve_job
from recognition.predictor import Predictor
from recognition.preprocessing import ImageError, preprocess


def inprocess_predictor(weights: Mapping[str, str], threads: int) -> Callable[[bytes], list[int]]:
    """Preprocess once, then every model's forward pass and softmax: what a plain app would do."""
    torch.set_num_threads(threads)
    cv2.setNumThreads(threads)  # as the TorchServe workers do (handlers/mnist_handler.py)
    predictors = [Predictor.from_checkpoint(path) for path in weights.values()]

    def predict(data: bytes) -> list[int]:
        image = preprocess(data)
        return [int(p.probabilities([image]).argmax()) for p in predictors]

    return predict


def inprocess_phase(job: dict[str, Any]) -> Phase:
    """A function running `clients` threads calling the models in this process."""
    body = Path(job["body_file"]).read_bytes()
    predict = inprocess_predictor(job["weights"], int(job.get("threads", 1)))

    def client(rec: Recorder) -> None:
        while rec.take():
            start = time.perf_counter()
            try:
                predict(body)
                rec.record("200", 1000 * (time.perf_counter() - start), True)
            except ImageError as exc:
                rec.record(str(exc.status), 1000 * (time.perf_counter() - start), False, str(exc))

    def phase(clients: int, rec: Recorder) -> None:
        workers = [threading.Thread(target=client, args=(rec,)) for _ in range(clients)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()

    return phase


if __name__ == "__main__":
    sys.exit(serve_job(inprocess_phase))
