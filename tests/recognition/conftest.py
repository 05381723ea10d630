"""Fixtures shared by the preprocessing tests."""

from __future__ import annotations

import numpy as np
import pytest

from recognition.preprocessing import preprocess
from tests.recognition.synthetic import draw_four, encode


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    """The model input for a plain black '4' on white."""
    return preprocess(encode(draw_four()))
