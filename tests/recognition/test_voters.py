"""Whose "not a digit" the ensemble follows."""

import pytest

from recognition.voters import voters

pytestmark = pytest.mark.unit


def test_only_models_with_a_positive_weight_vote():
    assert voters({"mlp": 0.0, "cnn": 1.0}) == ["cnn"]
    assert voters({"mlp": 0.2, "cnn": 0.85}) == ["mlp", "cnn"]


def test_with_no_positive_weight_every_model_votes():
    assert voters({"mlp": 0.0, "cnn": 0.0}) == ["mlp", "cnn"]
