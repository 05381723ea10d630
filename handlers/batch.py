"""One request of a handler batch as it moves through preprocess → inference → postprocess.

Kept out of mnist_handler.py: TorchServe's model loader refuses a handler module that defines
more than one class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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
    explanation: Any = None  # recognition.attribution.Explanation on an explain request
    verdict: tuple[bool, str | None] = (False, None)  # (abstain, reason)
