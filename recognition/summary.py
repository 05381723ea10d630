"""How a number's answer is summarised by one digit: pure Python (the web UI image has no NumPy)."""

from __future__ import annotations

from collections.abc import Sequence


def weakest(confidences: Sequence[float], abstains: Sequence[bool]) -> int:
    """Which digit a number's top-level answer describes: the first that abstains, else the
    least confident (the first of equals); the only digit of a single one. So the top level
    abstains when any digit does."""
    for index, abstain in enumerate(abstains):
        if abstain:
            return index
    return min(range(len(confidences)), key=confidences.__getitem__)
