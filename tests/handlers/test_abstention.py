"""Abstention through the real handler with the committed weights: letters, digits, fields."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from ts.context import Context, RequestProcessor

from handlers.mnist_handler import MnistHandler
from recognition.abstention import NOT_A_DIGIT
from tests.helpers import REPO_ROOT, drawn_letter, mnist_samples

# The capitals that rendered by `drawn_letter` look least like digits (no O, I, D: 0, 1, 0).
LETTERS = "ABCEFGHJKLMNPQRSTUVWXYZ"
# The target is >= 90 % abstained; the committed weights with their digit detectors
# abstain on 14/23 (MLP) and 15/23 (CNN) of these (12 and 10 without). This floor catches a
# regression until the target is met.
MIN_LETTER_ABSTENTION = 0.55
DIGIT_SAMPLE = 200
# False abstention on real digits through the PNG path: <= 2 % (measured 1.3 % on 1000).
MAX_FALSE_ABSTENTIONS = 4


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def handler(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory):
    """The handler as TorchServe would load it, on a committed checkpoint."""
    name = f"mnist_{request.param}"
    folder = tmp_path_factory.mktemp(name)
    shutil.copy(REPO_ROOT / "weights" / f"{name}.pt", folder / f"{name}.pt")
    manifest = {"model": {"modelName": name, "serializedFile": f"{name}.pt"}}
    threads = torch.get_num_threads()
    h = MnistHandler()
    h.initialize(Context(name, str(folder), manifest, 8, None, "0.12.0"))
    yield h
    torch.set_num_threads(threads)


def answers(handler: MnistHandler, images: list[bytes]) -> list[dict]:
    """One batch through handle(), answers parsed."""
    handler.context.request_processor = [RequestProcessor({}) for _ in images]
    return [json.loads(a) for a in handler.handle([{"body": b} for b in images], handler.context)]


@pytest.mark.unit
def test_the_committed_checkpoint_carries_abstention_thresholds(handler: MnistHandler) -> None:
    assert handler.predictor.thresholds is not None


@pytest.mark.unit
def test_drawn_capital_letters_are_mostly_not_read_as_digits(handler: MnistHandler) -> None:
    replies = answers(handler, [drawn_letter(letter) for letter in LETTERS])
    for reply in replies:
        assert 0 <= reply["prediction"] <= 9  # the arg-max is still reported
        if reply["abstain"]:
            assert reply["reason"] == NOT_A_DIGIT or reply["reason"].startswith("unsure: ")
    read = [letter for letter, r in zip(LETTERS, replies, strict=True) if not r["abstain"]]
    assert 1 - len(read) / len(LETTERS) >= MIN_LETTER_ABSTENTION, f"read as digits: {read}"


@pytest.mark.data
def test_real_digits_are_answered(handler: MnistHandler) -> None:
    samples = mnist_samples(DIGIT_SAMPLE)
    replies = answers(handler, [data for data, _ in samples])
    abstained = [i for i, a in enumerate(replies) if a["abstain"]]
    assert len(abstained) <= MAX_FALSE_ABSTENTIONS, [replies[i]["reason"] for i in abstained]
    assert all(a["reason"] is None for a in replies if not a["abstain"])
    right = np.mean(
        [a["prediction"] == label for a, (_, label) in zip(replies, samples, strict=True)]
    )
    assert right >= 0.97
