"""Merging the two models' replies into the /api/predict answer."""

import pytest

from webui.merge import ModelReply, ensemble, merge, valid_answer

pytestmark = pytest.mark.unit


def answer(prediction: int, confidence: float = 90.0, image: str | None = "iVBOR") -> dict:
    rest = (100.0 - confidence) / 9
    probabilities = [confidence if d == prediction else rest for d in range(10)]
    out = {"prediction": prediction, "confidence": confidence, "probabilities": probabilities}
    if image:
        out["image"] = image
    return out


def ok(prediction: int, confidence: float = 90.0, latency: float = 3.0) -> ModelReply:
    return ModelReply(200, latency, answer(prediction, confidence))


def down(error: str = "TorchServe is unreachable") -> ModelReply:
    return ModelReply(0, 0.4, error=error)


def test_both_ok_gives_both_answers_the_ensemble_and_agreement():
    status, body = merge({"mlp": ok(7, 80.0, 2.04), "cnn": ok(7, 98.0, 3.96)}, total_ms=5.56)
    assert status == 200
    assert body["mlp_prediction"] == 7 and body["mlp_confidence"] == 80.0
    assert body["cnn_prediction"] == 7 and body["cnn_confidence"] == 98.0
    assert body["probabilities"]["mlp"][7] == 80.0
    assert body["probabilities"]["cnn"][7] == 98.0
    assert body["ensemble_prediction"] == 7
    assert body["ensemble_confidence"] == pytest.approx(89.0)
    assert body["agree"] is True
    assert body["latency_ms"] == {"mlp": 2.0, "cnn": 4.0, "total": 5.6}
    assert body["image"] == "iVBOR"
    assert body["errors"] == {}


def test_disagreement_is_reported_and_the_ensemble_follows_the_mean():
    mlp = ModelReply(200, 1.0, answer(1, 55.0))
    cnn = ModelReply(200, 1.0, answer(7, 95.0))
    status, body = merge({"mlp": mlp, "cnn": cnn}, total_ms=2.0)
    assert status == 200
    assert body["agree"] is False
    assert body["ensemble_prediction"] == 7
    assert body["ensemble_confidence"] == pytest.approx((95.0 + 45.0 / 9) / 2, abs=1e-3)


@pytest.mark.parametrize("missing", ["mlp", "cnn"])
def test_one_model_down_gives_200_with_the_other_and_an_explicit_error(missing):
    replies = {"mlp": ok(3), "cnn": ok(3)}
    replies[missing] = down("the model has no worker available")
    status, body = merge(replies, total_ms=4.0)
    present = "cnn" if missing == "mlp" else "mlp"
    assert status == 200
    assert body[f"{missing}_prediction"] is None
    assert body[f"{missing}_confidence"] is None
    assert body["probabilities"][missing] is None
    assert body[f"{present}_prediction"] == 3
    assert body["ensemble_prediction"] == 3
    assert body["ensemble_confidence"] == pytest.approx(90.0)
    assert body["agree"] is None
    assert body["errors"] == {missing: "the model has no worker available"}


def test_both_down_gives_503_with_each_error():
    status, body = merge({"mlp": down(), "cnn": down("timed out")}, total_ms=1.0)
    assert status == 503
    assert body["errors"] == {"mlp": "TorchServe is unreachable", "cnn": "timed out"}
    assert "error" in body


@pytest.mark.parametrize("code", [400, 413, 422])
def test_a_rejected_image_keeps_the_model_status_and_message(code):
    rejected = ModelReply(code, 2.0, error="no digit found")
    status, body = merge({"mlp": rejected, "cnn": ok(4)}, total_ms=3.0)
    assert (status, body) == (code, {"error": "no digit found"})


def test_rejection_wins_over_a_model_down():
    status, body = merge({"mlp": down(), "cnn": ModelReply(422, 1.0, error="blank")}, 2.0)
    assert (status, body) == (422, {"error": "blank"})


def test_image_comes_from_whichever_model_returned_one():
    mlp = ModelReply(200, 1.0, answer(2, image=None))
    _status, body = merge({"mlp": mlp, "cnn": ok(2)}, total_ms=1.0)
    assert body["image"] == "iVBOR"
    _status, body = merge({"mlp": mlp, "cnn": down()}, total_ms=1.0)
    assert body["image"] is None


def test_ensemble_is_the_mean_distribution():
    mean, best, top = ensemble([[10.0, 90.0], [50.0, 50.0]])
    assert mean == [30.0, 70.0] and best == 1 and top == 70.0


@pytest.mark.parametrize(
    "candidate",
    [
        None,
        [],
        {"prediction": 3, "confidence": 90.0},
        {"prediction": "3", "confidence": 90.0, "probabilities": [10.0] * 10},
        {"prediction": True, "confidence": 90.0, "probabilities": [10.0] * 10},
        {"prediction": 10, "confidence": 90.0, "probabilities": [10.0] * 10},
        {"prediction": 3, "confidence": 90.0, "probabilities": [10.0] * 9},
        {"prediction": 3, "confidence": 90.0, "probabilities": [10.0] * 9 + [101.0]},
        {"prediction": 3, "confidence": None, "probabilities": [10.0] * 10},
    ],
)
def test_invalid_answers_are_recognised(candidate):
    assert not valid_answer(candidate)


def test_a_handler_answer_is_valid():
    assert valid_answer(answer(9))
