"""One request of a handler batch as it moves through preprocess → inference → postprocess.

Kept out of mnist_handler.py: TorchServe's model loader refuses a handler module that defines
more than one class.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from recognition.segmentation import Slot

Verdict = tuple[bool, str | None]  # (abstain, reason)


@dataclass
class Reading:
    """One digit of an answer: its box in the upload, its 28×28 input, what the model says."""

    box: tuple[int, int, int, int]  # x, y, w, h
    image: np.ndarray
    probabilities: np.ndarray
    verdict: Verdict = (False, None)


@dataclass
class Prepared:
    """One request of a batch: its line of digits, or the message and status that reject it.

    `image`, `probabilities` and `verdict` are those of the digit the top-level answer
    describes (the only one, or the weakest of a number: `recognition.summary.weakest`);
    `digits` holds them all in reading order.

    A rejection keeps only its text and status, never the exception: a traceback would keep the
    decoded pixels of a large image alive for the rest of the batch.
    """

    image: np.ndarray | None = None
    error: str | None = None
    status: int = 200
    return_image: bool = False
    probabilities: np.ndarray | None = None
    explanation: Any = None  # recognition.attribution.Explanation on an explain request
    verdict: Verdict = (False, None)
    slots: list[Slot] = field(default_factory=list)  # the line's places, before the model
    digits: list[Reading] = field(default_factory=list)  # the digits read, in reading order
