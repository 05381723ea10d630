"""The ensemble's fitted rule, read once at app creation from config/ensemble.json (no torch).

The file is written by `python -m training.calibrate`: the weights of the log-linear pool
p ∝ exp(Σ_m w_m log p_m) over the models' calibrated distributions, and the pool's minimum
confidence below which the ensemble abstains. A missing or unreadable file falls back to
`DEFAULT` (equal weights, no abstention threshold) with a warning, so the UI still answers.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from flask import Flask, current_app

log = logging.getLogger(__name__)

ENSEMBLE_FILE = Path(__file__).resolve().parent.parent / "config" / "ensemble.json"
EXTENSION = "ensemble"


@dataclass(frozen=True)
class Ensemble:
    """Pool weights per model role, and the pool's abstention thresholds."""

    weights: dict[str, float] = field(default_factory=lambda: {"mlp": 0.5, "cnn": 0.5})
    min_confidence: float = 0.0  # percent of the pool's top class below which it abstains
    unsure_mass: float = 80.0  # percent held by the top two that makes it "a or b"


DEFAULT = Ensemble()


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def parse(doc: Any) -> Ensemble:
    """The Ensemble a decoded ensemble.json describes; ValueError when it is malformed."""
    weights = doc.get("weights") if isinstance(doc, dict) else None
    if not isinstance(weights, dict) or not weights:
        raise ValueError("no 'weights' object")
    if not all(isinstance(k, str) and _finite(w) and w >= 0 for k, w in weights.items()):
        raise ValueError("weights must be non-negative numbers by model role")
    rule = doc.get("abstention") or {}
    if not isinstance(rule, dict):
        raise ValueError("'abstention' must be an object")
    low, mass = rule.get("min_confidence", 0.0), rule.get("unsure_mass", 0.8)
    if not (_finite(low) and _finite(mass) and 0 <= low <= 1 and 0 <= mass <= 1):
        raise ValueError("abstention thresholds must be shares in [0, 1]")
    return Ensemble({k: float(w) for k, w in weights.items()}, 100.0 * low, 100.0 * mass)


def load(path: Path = ENSEMBLE_FILE) -> Ensemble:
    """The fitted ensemble from `path`, or DEFAULT (logged) when it is missing or malformed."""
    try:
        return parse(json.loads(Path(path).read_text()))
    except (OSError, ValueError) as exc:
        log.warning("ensemble file %s unusable (%s): equal weights, no abstention", path, exc)
        return DEFAULT


def init_app(app: Flask, path: Path = ENSEMBLE_FILE) -> None:
    """Load the ensemble once into app.extensions."""
    app.extensions[EXTENSION] = load(path)


def current() -> Ensemble:
    """The running app's ensemble (DEFAULT outside an app that loaded one)."""
    return current_app.extensions.get(EXTENSION, DEFAULT)
