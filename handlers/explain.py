"""The handler's explain path: TorchServe's /explanations requests get attribution maps.

TorchServe 0.12's frontend marks each request that came in on `/explanations/<model>` with the
request header `explain: True` (`BaseHandler._is_explain` reads it, but only for the batch's
first request); a batch may mix /predictions and /explanations requests, so the flag is read
per request here.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from handlers.batch import Prepared
from recognition import attribution
from recognition.predictor import Predictor

EXPLAIN_HEADER = "explain"  # set by the frontend on /explanations requests
EXPLAIN_VALUE = "True"


def requested(headers: Mapping[str, Any]) -> bool:
    """Whether one request came in on TorchServe's explanations API."""
    value = headers.get(EXPLAIN_HEADER)
    if isinstance(value, bytes | bytearray):
        value = bytes(value).decode("ascii", "replace")
    return value == EXPLAIN_VALUE


def explain(predictor: Predictor, items: Sequence[Prepared], wanted: Sequence[bool]) -> None:
    """Attribution maps for the accepted items that asked for one, for their predicted class."""
    chosen = [item for item, want in zip(items, wanted, strict=True) if want and item.error is None]
    if not chosen:
        return
    explanations = attribution.integrated_gradients(
        predictor.model,
        [item.image for item in chosen],
        targets=[int(np.argmax(item.probabilities)) for item in chosen],
    )
    for item, explanation in zip(chosen, explanations, strict=True):
        item.explanation = explanation


def rounded(values: np.ndarray, digits: int = 5) -> list[list[float]]:
    """A 2-D map as nested lists of floats with `digits` significant digits."""
    return [[float(f"{v:.{digits}g}") for v in row] for row in values.tolist()]


def answer(explanation: attribution.Explanation) -> dict[str, Any]:
    """The explanation fields of one answer (merged into the prediction's)."""
    return {
        "attributions": rounded(explanation.attributions),
        "target": explanation.target,
        "method": attribution.METHOD,
        "baseline": attribution.BASELINE,
        "n_steps": attribution.N_STEPS,
        "logit": round(explanation.logit, 5),
        "baseline_logit": round(explanation.baseline_logit, 5),
        "delta": round(explanation.delta, 5),
    }
