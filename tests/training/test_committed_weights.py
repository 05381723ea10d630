"""The committed weights reach the accuracy targets on the real 10k MNIST test set."""

import json
from pathlib import Path

import pytest

from recognition.models import load_checkpoint
from training.config import weights_path
from training.data import data_checksum
from training.evaluate import report_on_test_set

pytestmark = [pytest.mark.data]

TARGETS = {"mlp": 0.986, "cnn": 0.996}


@pytest.mark.parametrize("arch", sorted(TARGETS))
def test_committed_weights_meet_target(arch: str, mnist_root: Path) -> None:
    model, meta = load_checkpoint(weights_path(arch))
    assert meta["arch"] == arch
    report = report_on_test_set(model, mnist_root)
    assert report["test_accuracy"] >= TARGETS[arch]
    # The checkpoint's own record and the metrics file tell the truth about it.
    assert report["test_accuracy"] == pytest.approx(meta["test_accuracy"], abs=1e-4)
    metrics = json.loads(weights_path(arch).with_suffix(".metrics.json").read_text())
    assert metrics["confusion_matrix"] == report["confusion_matrix"]
    assert meta["data_sha256"] == data_checksum(mnist_root)
