"""Merging the two models' replies into the /api/predict answer."""

import math

import pytest

from webui.ensemble import Ensemble
from webui.merge import NOT_A_DIGIT, ModelReply, ensemble, merge, pool, valid_answer

pytestmark = pytest.mark.unit


FITTED = Ensemble(weights={"mlp": 0.2, "cnn": 0.9}, min_confidence=60.0, unsure_mass=80.0)


def answer(
    prediction: int,
    confidence: float = 90.0,
    image: str | None = "iVBOR",
    reason: str | None = None,
) -> dict:
    rest = (100.0 - confidence) / 9
    probabilities = [confidence if d == prediction else rest for d in range(10)]
    out = {"prediction": prediction, "confidence": confidence, "probabilities": probabilities}
    out |= {"abstain": reason is not None, "reason": reason}
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
    top, rest = math.sqrt(80.0 * 98.0), math.sqrt(20.0 / 9 * 2.0 / 9)  # equal weights by default
    assert body["ensemble_confidence"] == pytest.approx(100 * top / (top + 9 * rest), abs=1e-3)
    assert body["abstain"] is False and body["reason"] is None
    assert body["mlp_abstain"] is False and body["cnn_reason"] is None
    assert body["agree"] is True
    assert body["latency_ms"] == {"mlp": 2.0, "cnn": 4.0, "total": 5.6}
    assert body["image"] == "iVBOR"
    assert body["errors"] == {}


def test_disagreement_is_reported_and_the_ensemble_follows_the_fitted_pool():
    mlp = ModelReply(200, 1.0, answer(1, 55.0))
    cnn = ModelReply(200, 1.0, answer(7, 95.0))
    status, body = merge({"mlp": mlp, "cnn": cnn}, total_ms=2.0, rule=FITTED)
    assert status == 200
    assert body["agree"] is False
    assert body["ensemble_prediction"] == 7
    expected = pool([mlp.answer["probabilities"], cnn.answer["probabilities"]], [0.2, 0.9])
    assert body["ensemble_confidence"] == pytest.approx(expected[7], abs=1e-3)


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
    assert body["ensemble_prediction"] == 3  # the other model's answer, not re-pooled
    assert body["ensemble_confidence"] == pytest.approx(90.0)
    assert body["abstain"] is False
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


def test_pool_is_the_weighted_log_linear_combination():
    pooled = pool([[10.0, 90.0], [50.0, 50.0]], [1.0, 1.0])
    assert pooled == pytest.approx([10.0, 90.0])  # a flat distribution adds nothing
    pooled = pool([[20.0, 80.0], [40.0, 60.0]], [0.5, 2.0])
    a, b = 0.2**0.5 * 0.4**2, 0.8**0.5 * 0.6**2
    assert pooled == pytest.approx([100 * a / (a + b), 100 * b / (a + b)])
    assert sum(pool([[0.0, 100.0], [30.0, 70.0]], [1.0, 1.0])) == pytest.approx(100.0)


def test_the_ensemble_abstains_when_both_models_see_no_digit():
    replies = {
        "mlp": ModelReply(200, 1.0, answer(8, 30.0, reason=NOT_A_DIGIT)),
        "cnn": ModelReply(200, 1.0, answer(4, 25.0, reason=NOT_A_DIGIT)),
    }
    status, body = merge(replies, total_ms=1.0, rule=FITTED)
    assert status == 200
    assert body["abstain"] is True and body["reason"] == NOT_A_DIGIT
    assert body["ensemble_prediction"] is None
    assert body["mlp_prediction"] == 8 and body["mlp_abstain"] is True  # per-model fields stay
    assert body["cnn_reason"] == NOT_A_DIGIT


def test_the_ensemble_names_the_two_digits_it_cannot_tell_apart():
    torn = [0.0] * 10
    torn[4], torn[9], torn[7] = 48.0, 46.0, 6.0
    two = {"prediction": 4, "confidence": 48.0, "probabilities": torn, "abstain": False}
    combined = ensemble({"mlp": two, "cnn": two}, FITTED)
    assert combined == {
        "prediction": None,
        "confidence": pytest.approx(pool([torn, torn], [0.2, 0.9])[4], abs=1e-3),
        "abstain": True,
        "reason": "unsure: 4 or 9",
    }


def test_a_confident_pool_does_not_abstain_even_if_one_model_does():
    replies = {
        "mlp": ModelReply(200, 1.0, answer(2, 30.0, reason=NOT_A_DIGIT)),
        "cnn": ModelReply(200, 1.0, answer(2, 99.0)),
    }
    _status, body = merge(replies, total_ms=1.0, rule=FITTED)
    assert body["abstain"] is False and body["ensemble_prediction"] == 2


def test_a_model_the_pool_gives_no_weight_has_no_say_in_not_a_digit():
    """With the MLP at weight 0 the CNN's "not a digit" stands alone, and the MLP's alone
    does not make the ensemble abstain."""
    rule = Ensemble(weights={"mlp": 0.0, "cnn": 1.0}, min_confidence=60.0, unsure_mass=80.0)
    cnn_says_no = {
        "mlp": ModelReply(200, 1.0, answer(7, 95.0)),
        "cnn": ModelReply(200, 1.0, answer(7, 70.0, reason=NOT_A_DIGIT)),
    }
    _status, body = merge(cnn_says_no, total_ms=1.0, rule=rule)
    assert body["abstain"] is True and body["reason"] == NOT_A_DIGIT
    assert body["mlp_prediction"] == 7 and body["mlp_abstain"] is False
    mlp_says_no = {
        "mlp": ModelReply(200, 1.0, answer(7, 30.0, reason=NOT_A_DIGIT)),
        "cnn": ModelReply(200, 1.0, answer(7, 70.0)),
    }
    _status, body = merge(mlp_says_no, total_ms=1.0, rule=rule)
    assert body["abstain"] is False and body["ensemble_prediction"] == 7
    assert body["ensemble_confidence"] == pytest.approx(70.0)  # the CNN's distribution


@pytest.mark.parametrize("missing", ["mlp", "cnn"])
def test_one_model_down_passes_on_the_others_abstention(missing):
    present = "cnn" if missing == "mlp" else "mlp"
    replies = {missing: down(), present: ModelReply(200, 1.0, answer(5, 40.0, reason=NOT_A_DIGIT))}
    _status, body = merge(replies, total_ms=1.0, rule=FITTED)
    assert body["ensemble_prediction"] is None
    assert body["abstain"] is True and body["reason"] == NOT_A_DIGIT
    assert body[f"{missing}_abstain"] is None


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


# ---------------------------------------------------------------------------------------------
# Numbers: merged digit by digit
# ---------------------------------------------------------------------------------------------


def line(*readings: dict, width: int = 40) -> dict:
    """A handler's answer for a line of digits: the readings with boxes left to right; its top
    level the weakest, as the handler does (first abstaining, else least confident)."""
    digits = [r | {"box": [i * width, 5, width - 4, 30]} for i, r in enumerate(readings)]
    top = next((d for d in digits if d["abstain"]), min(digits, key=lambda d: d["confidence"]))
    number = "".join(str(d["prediction"]) for d in digits)
    return {
        k: top[k] for k in ("prediction", "confidence", "probabilities", "abstain", "reason")
    } | {
        "digits": digits,
        "number": number,
    }


def torn(a: int, b: int) -> dict:
    """A reading split between two digits (48 % / 46 %), which the fitted pool abstains on."""
    probabilities = [0.6] * 10
    probabilities[a], probabilities[b] = 48.0, 46.0
    return {
        "prediction": a,
        "confidence": 48.0,
        "probabilities": probabilities,
        "abstain": True,
        "reason": f"unsure: {min(a, b)} or {max(a, b)}",
    }


def reply(body: dict) -> ModelReply:
    return ModelReply(200, 3.0, body)


def test_a_number_is_merged_digit_by_digit():
    mlp = line(answer(4, 80.0, image=None), answer(2, 70.0, image=None), answer(7, 99.0))
    cnn = line(answer(4, 99.0, image=None), answer(2, 97.0, image=None), answer(7, 99.9))
    status, body = merge({"mlp": reply(mlp), "cnn": reply(cnn)}, total_ms=1.0, rule=FITTED)
    assert status == 200
    assert body["number"] == "427"
    assert [d["box"] for d in body["digits"]] == [d["box"] for d in cnn["digits"]]
    for merged, m, c in zip(body["digits"], mlp["digits"], cnn["digits"], strict=True):
        assert merged["mlp"]["prediction"] == m["prediction"]
        assert merged["cnn"]["confidence"] == c["confidence"]
        pooled = pool([m["probabilities"], c["probabilities"]], [0.2, 0.9])
        assert merged["ensemble"]["confidence"] == pytest.approx(max(pooled), abs=1e-3)
        assert merged["ensemble"]["abstain"] is False
    assert body["agree"] is True
    # the top level is the ensemble's least confident digit, the 2, in every field
    assert body["ensemble_prediction"] == 2 and body["mlp_prediction"] == 2
    assert body["cnn_confidence"] == 97.0
    assert body["probabilities"]["mlp"] == mlp["digits"][1]["probabilities"]
    assert body["digits"][2]["image"] == "iVBOR" and body["digits"][0]["image"] is None


def test_one_digit_abstaining_shows_as_a_question_mark_and_leads_the_top_level():
    mlp = line(answer(4, 95.0), torn(1, 7), answer(2, 95.0))
    cnn = line(answer(4, 99.0), torn(7, 1), answer(2, 99.0))
    _status, body = merge({"mlp": reply(mlp), "cnn": reply(cnn)}, total_ms=1.0, rule=FITTED)
    assert body["number"] == "4?2"
    assert [d["ensemble"]["abstain"] for d in body["digits"]] == [False, True, False]
    assert body["digits"][1]["ensemble"]["reason"] == "unsure: 1 or 7"
    assert body["abstain"] is True and body["ensemble_prediction"] is None
    assert body["reason"] == "unsure: 1 or 7"
    assert body["mlp_abstain"] is True and body["cnn_prediction"] == 7
    assert body["agree"] is False  # the MLP's arg-max is 1, the CNN's 7


def test_a_number_of_which_every_digit_abstains_is_null():
    nothing = answer(8, 20.0, reason=NOT_A_DIGIT)
    both = line(nothing, nothing)
    _status, body = merge({"mlp": reply(both), "cnn": reply(both)}, total_ms=1.0, rule=FITTED)
    assert body["number"] is None
    assert body["abstain"] is True and body["reason"] == NOT_A_DIGIT
    assert len(body["digits"]) == 2


def test_when_the_models_count_differently_the_cnns_digits_stand():
    mlp = line(answer(1, 60.0), answer(4, 99.0), width=60)  # read "14": a touching pair whole
    cnn = line(answer(1, 99.0), answer(1, 98.0), answer(4, 99.0))  # "114"
    for order in (("mlp", "cnn"), ("cnn", "mlp")):
        replies = {"mlp": reply(mlp), "cnn": reply(cnn)}
        status, body = merge({role: replies[role] for role in order}, total_ms=1.0, rule=FITTED)
        assert status == 200
        assert body["number"] == "114"
        assert [d["box"] for d in body["digits"]] == [d["box"] for d in cnn["digits"]]
        assert all(d["mlp"] is None for d in body["digits"])
        assert [d["ensemble"]["confidence"] for d in body["digits"]] == [99.0, 98.0, 99.0]
        assert body["agree"] is False
        # the left-out model is described by its own top level
        assert (body["mlp_prediction"], body["mlp_confidence"]) == (1, 60.0)
        assert (body["cnn_prediction"], body["ensemble_prediction"]) == (1, 1)
        assert body["ensemble_confidence"] == 98.0


def test_with_the_cnn_down_the_mlps_digits_stand():
    mlp = line(answer(3, 90.0), answer(5, 91.0))
    status, body = merge({"mlp": reply(mlp), "cnn": down()}, total_ms=1.0)
    assert status == 200
    assert body["number"] == "35"
    assert [d["cnn"] for d in body["digits"]] == [None, None]
    assert body["digits"][1]["ensemble"]["prediction"] == 5
    assert body["agree"] is None


def test_one_digit_answers_as_before_with_a_one_element_digits():
    single = line(answer(6, 93.0))
    _status, body = merge({"mlp": reply(single), "cnn": reply(single)}, total_ms=1.0)
    _status, plain = merge({"mlp": ok(6, 93.0), "cnn": ok(6, 93.0)}, total_ms=1.0)
    (only,) = body.pop("digits")
    assert body.pop("number") == plain.pop("number") == "6"
    assert only["box"] == [0, 5, 36, 30] and only["ensemble"]["prediction"] == 6
    plain.pop("digits")
    assert body == plain


@pytest.mark.parametrize(
    "digits",
    [
        [],
        "42",
        [answer(4)],  # no box
        [answer(4) | {"box": [0, 0, 10]}],
        [answer(4) | {"box": [0, -1, 10, 10]}],
        [answer(4) | {"box": [0.5, 0, 10, 10]}],
        [{"box": [0, 0, 10, 10], "prediction": 4}],
    ],
)
def test_an_answer_with_malformed_digits_is_invalid(digits):
    assert not valid_answer(answer(4) | {"digits": digits})


def test_an_answer_with_boxed_digits_is_valid():
    assert valid_answer(line(answer(4), answer(2)))
