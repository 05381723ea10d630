"""One request of a batch as the handler carries it from preprocess to postprocess.

A module of its own: TorchServe 0.12 loads a handler module only when it defines exactly one
class (ts/model_loader.py), so the handler module keeps just `MnistHandler`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Prepared:
    """One request of a batch: its model input, or the message and status that reject it.

    A rejection keeps only its text and status, never the exception: a traceback would keep the
    decoded pixels of a large image alive for the rest of the batch.
    """

    image: np.ndarray | None = None
    error: str | None = None
    status: int = 200
    return_image: bool = False
    probabilities: np.ndarray | None = None
