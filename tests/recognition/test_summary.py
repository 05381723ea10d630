"""The digit a number's top-level answer describes."""

import pytest

from recognition.summary import weakest

pytestmark = pytest.mark.unit


def test_weakest_is_the_first_abstaining_digit_else_the_least_confident() -> None:
    assert weakest([99.0, 60.0, 60.0], [False, False, False]) == 1  # the first of equals
    assert weakest([99.0, 60.0, 90.0], [False, False, True]) == 2  # abstaining beats confidence
    assert weakest([70.0], [False]) == 0
