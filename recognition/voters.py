"""Whose "does not look like a digit" the ensemble follows (pure Python, for the web UI)."""

from __future__ import annotations

from collections.abc import Mapping


def voters(weights: Mapping[str, float]) -> list[str]:
    """The models the pool listens to: those with a positive weight (every one when none has).

    The ensemble says "not a digit" when all of them do; a model the pool gives no weight has
    no say in its answer, so none in that verdict either."""
    listened = [name for name, weight in weights.items() if weight > 0]
    return listened or list(weights)
