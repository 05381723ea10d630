"""Merge the two models' answers into the one JSON answer of `POST /api/predict` (pure functions).

Outcomes, in order of precedence:
- a model rejected the image (4xx): the input is at fault, so the same status and its message;
- both models answered: 200 with both, the ensemble (mean of the two distributions), agreement;
- one model answered: 200 with that one, nulls and an entry in `errors` for the other;
- neither answered: 503 with each model's error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

NUM_CLASSES = 10

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


def ensemble(distributions: Sequence[Sequence[float]]) -> tuple[list[float], int, float]:
    """Mean of the given distributions (in %), its arg-max and its maximum."""
    mean = [sum(column) / len(distributions) for column in zip(*distributions, strict=True)]
    best = max(range(len(mean)), key=mean.__getitem__)
    return [round(p, 4) for p in mean], best, round(mean[best], 4)


def _rejection(replies: Mapping[str, ModelReply]) -> tuple[int, dict[str, Any]] | None:
    for reply in replies.values():
        if reply.rejected_input:
            return reply.status, {"error": reply.error or "the image was rejected"}
    return None


def merge(replies: Mapping[str, ModelReply], total_ms: float) -> tuple[int, dict[str, Any]]:
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
    body["probabilities"] = {role: answered[role]["probabilities"] for role in answered}
    for role in replies:
        body["probabilities"].setdefault(role, None)
    _, best, confidence = ensemble([a["probabilities"] for a in answered.values()])
    body["ensemble_prediction"] = best
    body["ensemble_confidence"] = confidence
    predictions = {a["prediction"] for a in answered.values()}
    body["agree"] = len(predictions) == 1 if len(answered) == len(replies) else None
    body["latency_ms"] = latency
    body["image"] = next((a["image"] for a in answered.values() if a.get("image")), None)
    body["errors"] = errors
    return 200, body
