"""Loading the fitted ensemble rule: the committed file, and a safe default otherwise."""

import json
from pathlib import Path

import pytest

from webui import create_app
from webui.ensemble import DEFAULT, ENSEMBLE_FILE, load, parse

pytestmark = pytest.mark.unit


def test_the_committed_file_holds_the_fitted_weights_and_thresholds():
    doc = json.loads(ENSEMBLE_FILE.read_text())
    rule = load(ENSEMBLE_FILE)
    assert rule.weights == doc["weights"] and set(rule.weights) == {"mlp", "cnn"}
    assert rule.min_confidence == pytest.approx(100 * doc["abstention"]["min_confidence"])
    assert doc["validation"]["pool"]["accuracy"] >= doc["validation"]["cnn"]["accuracy"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "not json",
        "[]",
        '{"weights": {}}',
        '{"weights": {"cnn": -1}}',
        '{"weights": {"cnn": 1}, "abstention": {"min_confidence": 3}}',
    ],
)
def test_a_broken_file_falls_back_to_the_default(tmp_path: Path, text: str):
    path = tmp_path / "ensemble.json"
    path.write_text(text)
    assert load(path) == DEFAULT
    assert load(tmp_path / "missing.json") == DEFAULT


def test_parse_converts_shares_to_percent():
    rule = parse({"weights": {"cnn": 1}, "abstention": {"min_confidence": 0.5, "unsure_mass": 0.9}})
    assert (rule.min_confidence, rule.unsure_mass) == (50.0, 90.0)


def test_the_app_loads_the_rule_once_at_creation():
    app = create_app({"TESTING": True})
    assert app.extensions["ensemble"] == load(ENSEMBLE_FILE)
    app.extensions["torchserve"].close()
