"""Merge the two models' answers into the one JSON answer of `POST /api/predict` (pure functions).

Outcomes, in order of precedence:
- a model rejected the image (4xx): the input is at fault, so the same status and its message;
- both models answered: 200 with both, the ensemble, agreement;
- one model answered: 200 with that one (the ensemble is its answer), nulls and an entry in
  `errors` for the other;
- neither answered: 503 with each model's error.

The ensemble is the weighted log-linear pool p ∝ exp(Σ_m w_m log p_m) of the models' calibrated
distributions, with the weights fitted by training.calibrate (webui.ensemble loads them). It
abstains (`abstain: true`, `ensemble_prediction: null`, a `reason`) when every model the pool
listens to (`recognition.voters`) says the image does not look like a digit, or when the pool's
confidence is below its fitted minimum:
"unsure: a or b" when two digits hold most of the probability, else "does not look like a digit".

A number is merged digit by digit (`digits`): each digit's model readings are pooled and judged
by the same rule, and `number` shows an abstaining digit as "?" ("4?2"; null when every digit
abstains). The models run the same segmentation, but each model's confidence settles how a
group that may hold touching digits is cut, so their counts can differ: then the digits of the
first answering model in `SEGMENTATION_ORDER` stand, read by the models that found as many
(alone if none). The top-level fields describe one digit, the ensemble's weakest (the first that
abstains, else the least confident): for one digit, that digit, as before a number was read.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recognition.constants import NUM_CLASSES
from recognition.summary import weakest
from recognition.voters import voters
from webui.ensemble import DEFAULT, Ensemble

NOT_A_DIGIT = "does not look like a digit"
FLOOR = 1e-10  # percent; a zero probability would make the log-linear pool undefined

# Statuses a handler uses to reject an image; anything else that is not 200 means "model down".
CLIENT_ERRORS = frozenset({400, 413, 415, 422})
# Whose digits stand when the models find different numbers of digits: the CNN, the stronger
# classifier, settles touching groups more reliably.
SEGMENTATION_ORDER = ("cnn", "mlp")
UNSURE_DIGIT = "?"  # an abstaining digit in `number`
READING_FIELDS = ("prediction", "confidence", "probabilities", "abstain", "reason")


@dataclass(frozen=True)
class ModelReply:
    """One model's outcome: its parsed answer, or why there is none.

    `status` is TorchServe's HTTP status (0 when it never answered). `answer` holds the handler's
    JSON (prediction, confidence, probabilities, image) when `status` is 200.
    """

    status: int
    latency_ms: float
    answer: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.error

    @property
    def rejected_input(self) -> bool:
        return self.status in CLIENT_ERRORS


def valid_box(box: Any) -> bool:
    """True for [x, y, w, h]: four non-negative integers."""
    return (
        isinstance(box, list)
        and len(box) == 4
        and all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in box)
    )


def valid_answer(answer: Any) -> bool:
    """True when a handler answer has an integer prediction and ten finite probabilities, and
    its `digits` (when there) is a non-empty list of such readings, each with a box."""
    if not valid_reading(answer):
        return False
    found = answer.get("digits")
    return found is None or (
        isinstance(found, list)
        and bool(found)
        and all(valid_reading(d) and valid_box(d.get("box")) for d in found)
    )


def valid_reading(answer: Any) -> bool:
    """True for one digit's reading: an integer prediction, a confidence, ten percentages."""
    if not isinstance(answer, Mapping):
        return False
    prediction, probabilities = answer.get("prediction"), answer.get("probabilities")
    return (
        isinstance(prediction, int)
        and not isinstance(prediction, bool)
        and 0 <= prediction < NUM_CLASSES
        and isinstance(answer.get("confidence"), int | float)
        and isinstance(probabilities, list)
        and len(probabilities) == NUM_CLASSES
        and all(isinstance(p, int | float) and 0 <= p <= 100 for p in probabilities)
    )


def pool(distributions: Sequence[Sequence[float]], weights: Sequence[float]) -> list[float]:
    """Weighted log-linear pool of distributions in percent: p ∝ exp(Σ w_m log p_m), in percent."""
    logs = [
        sum(
            w * math.log(max(float(p), FLOOR) / 100.0) for w, p in zip(weights, column, strict=True)
        )
        for column in zip(*distributions, strict=True)
    ]
    top = max(logs)
    exps = [math.exp(v - top) for v in logs]
    total = sum(exps)
    return [100.0 * e / total for e in exps]


def verdict(
    distribution: Sequence[float], answers: Sequence[Mapping[str, Any]], rule: Ensemble
) -> tuple[bool, str | None]:
    """(abstain, reason) of the ensemble for its pooled distribution (percent)."""
    if answers and all(a.get("abstain") and a.get("reason") == NOT_A_DIGIT for a in answers):
        return True, NOT_A_DIGIT
    order = sorted(range(len(distribution)), key=distribution.__getitem__, reverse=True)
    first, second = distribution[order[0]], distribution[order[1]]
    if first >= rule.min_confidence:
        return False, None
    if first + second >= rule.unsure_mass:
        low, high = sorted(order[:2])
        return True, f"unsure: {low} or {high}"
    return True, NOT_A_DIGIT


def ensemble(answered: Mapping[str, Mapping[str, Any]], rule: Ensemble = DEFAULT) -> dict[str, Any]:
    """The ensemble's prediction, confidence, abstain and reason from the answers by role.

    One answer is the ensemble's answer as is; several are pooled with the rule's weights
    (equal weights when none of the answering roles has a positive weight).
    """
    if len(answered) == 1:
        (only,) = answered.values()
        abstain = bool(only.get("abstain"))
        return {
            "prediction": None if abstain else only["prediction"],
            "confidence": only["confidence"],
            "abstain": abstain,
            "reason": only.get("reason") if abstain else None,
        }
    weights = [rule.weights.get(role, 0.0) for role in answered]
    if sum(weights) <= 0:
        weights = [1.0 / len(answered)] * len(answered)
    distribution = pool([a["probabilities"] for a in answered.values()], weights)
    best = max(range(len(distribution)), key=distribution.__getitem__)
    listened = voters(dict(zip(answered, weights, strict=True)))
    abstain, reason = verdict(distribution, [answered[role] for role in listened], rule)
    return {
        "prediction": None if abstain else best,
        "confidence": round(distribution[best], 4),
        "abstain": abstain,
        "reason": reason,
    }


def digits_of(answer: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    """A handler answer's digits in reading order; an answer without `digits` is its one digit."""
    found = answer.get("digits")
    return list(found) if isinstance(found, list) else [answer]


def line_up(
    answered: Mapping[str, Mapping[str, Any]],
) -> tuple[list[Mapping[str, Any]], dict[str, list[Mapping[str, Any]]]]:
    """(the digits that stand, each agreeing model's digits by role): the first answering model
    of SEGMENTATION_ORDER sets the digits; a model that found another count is left out."""
    found = {role: digits_of(answer) for role, answer in answered.items()}
    lead = next(role for role in (*SEGMENTATION_ORDER, *found) if role in found)
    return found[lead], {role: d for role, d in found.items() if len(d) == len(found[lead])}


def reading(entry: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """One model's reading of one digit: prediction, confidence, probabilities, abstain, reason."""
    if entry is None:
        return None
    return {key: entry.get(key) for key in READING_FIELDS} | {"abstain": bool(entry.get("abstain"))}


def per_digit(
    roles: Sequence[str], answered: Mapping[str, Mapping[str, Any]], rule: Ensemble = DEFAULT
) -> list[dict[str, Any]]:
    """The `digits` of /api/predict: per digit its box, each model's reading (null for a model
    down or one that found another number of digits), the ensemble, its 28×28 input."""
    lead, agreeing = line_up(answered)
    merged = []
    for index, digit in enumerate(lead):
        readings = {role: agreeing[role][index] for role in agreeing}
        merged.append(
            {
                "box": digit.get("box"),
                **{role: reading(readings.get(role)) for role in roles},
                "ensemble": ensemble(readings, rule),
                "image": next((r["image"] for r in readings.values() if r.get("image")), None),
            }
        )
    return merged


def number(digits: Sequence[Mapping[str, Any]]) -> str | None:
    """The ensemble's number from merged digits, UNSURE_DIGIT where a digit abstains; None when
    every digit abstains (or there is none)."""
    said = [d["ensemble"]["prediction"] for d in digits]
    if all(p is None for p in said):
        return None
    return "".join(UNSURE_DIGIT if p is None else str(p) for p in said)


def _rejection(replies: Mapping[str, ModelReply]) -> tuple[int, dict[str, Any]] | None:
    for reply in replies.values():
        if reply.rejected_input:
            return reply.status, {"error": reply.error or "the image was rejected"}
    return None


def merge(
    replies: Mapping[str, ModelReply], total_ms: float, rule: Ensemble = DEFAULT
) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body) for the replies of the models keyed by role ("mlp", "cnn")."""
    rejected = _rejection(replies)
    if rejected:
        return rejected
    errors = {role: r.error or "no answer" for role, r in replies.items() if not r.ok}
    answered = {role: r.answer for role, r in replies.items() if r.ok}
    latency: dict[str, float | None] = {role: round(r.latency_ms, 1) for role, r in replies.items()}
    latency["total"] = round(total_ms, 1)
    if not answered:
        return 503, {"error": "no model is available", "errors": errors, "latency_ms": latency}

    digits = per_digit(list(replies), answered, rule)
    pooled = [d["ensemble"] for d in digits]
    top = digits[weakest([p["confidence"] for p in pooled], [p["abstain"] for p in pooled])]
    # a model whose digits were left out is described by its own top level
    said = {role: top[role] or reading(answered[role]) for role in answered}
    body: dict[str, Any] = {}
    for role in replies:
        answer = said.get(role) or {}
        body[f"{role}_prediction"] = answer.get("prediction")
        body[f"{role}_confidence"] = answer.get("confidence")
        body[f"{role}_abstain"] = answer.get("abstain") if answer else None
        body[f"{role}_reason"] = answer.get("reason")
    body["probabilities"] = {
        role: said[role]["probabilities"] if role in said else None for role in replies
    }
    body["ensemble_prediction"] = top["ensemble"]["prediction"]
    body["ensemble_confidence"] = top["ensemble"]["confidence"]
    body["abstain"] = top["ensemble"]["abstain"]
    body["reason"] = top["ensemble"]["reason"]
    body["agree"] = agree(answered) if len(answered) == len(replies) else None
    body["number"] = number(digits)
    body["digits"] = digits
    body["latency_ms"] = latency
    body["image"] = top["image"] or next(
        (a["image"] for a in answered.values() if a.get("image")), None
    )
    body["errors"] = errors
    return 200, body


def agree(answered: Mapping[str, Mapping[str, Any]]) -> bool:
    """Whether every model read the same digits (the same prediction, for one digit)."""
    numbers = {tuple(d["prediction"] for d in digits_of(a)) for a in answered.values()}
    return len(numbers) == 1
