"""Merge the two models' answers into the one JSON answer of `POST /api/predict` (pure functions).

Outcomes, in order of precedence:
- a model rejected the image (4xx): the input is at fault, so the same status and its message;
- both models answered: 200 with both, the ensemble, agreement;
- one model answered: 200 with that one (the ensemble is its answer), nulls and an entry in
  `errors` for the other;
- neither answered: 503 with each model's error.

The ensemble is the weighted log-linear pool p ∝ exp(Σ_m w_m log p_m) of the models' calibrated
distributions, with the weights fitted by training.calibrate (webui.ensemble loads them). It
abstains (`abstain: true`, `ensemble_prediction: null`, a `reason`) when every model says the
image does not look like a digit, or when the pool's confidence is below its fitted minimum:
"unsure: a or b" when two digits hold most of the probability, else "does not look like a digit".
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from recognition.constants import NUM_CLASSES
from webui.ensemble import DEFAULT, Ensemble

NOT_A_DIGIT = "does not look like a digit"
FLOOR = 1e-10  # percent; a zero probability would make the log-linear pool undefined

# Statuses a handler uses to reject an image; anything else that is not 200 means "model down".
CLIENT_ERRORS = frozenset({400, 413, 415, 422})


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


def valid_answer(answer: Any) -> bool:
    """True when a handler answer has an integer prediction and ten finite probabilities."""
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
    abstain, reason = verdict(distribution, list(answered.values()), rule)
    return {
        "prediction": None if abstain else best,
        "confidence": round(distribution[best], 4),
        "abstain": abstain,
        "reason": reason,
    }


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

    body: dict[str, Any] = {}
    for role in replies:
        answer = answered.get(role, {})
        body[f"{role}_prediction"] = answer.get("prediction")
        body[f"{role}_confidence"] = answer.get("confidence")
        body[f"{role}_abstain"] = bool(answer.get("abstain")) if answer else None
        body[f"{role}_reason"] = answer.get("reason")
    body["probabilities"] = {role: answered[role]["probabilities"] for role in answered}
    for role in replies:
        body["probabilities"].setdefault(role, None)
    combined = ensemble(answered, rule)
    body["ensemble_prediction"] = combined["prediction"]
    body["ensemble_confidence"] = combined["confidence"]
    body["abstain"] = combined["abstain"]
    body["reason"] = combined["reason"]
    predictions = {a["prediction"] for a in answered.values()}
    body["agree"] = len(predictions) == 1 if len(answered) == len(replies) else None
    body["latency_ms"] = latency
    body["image"] = next((a["image"] for a in answered.values() if a.get("image")), None)
    body["errors"] = errors
    return 200, body
