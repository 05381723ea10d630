"""The answer of `POST /api/explain`: one model's attribution map for its prediction (pure).

TorchServe's explanations API answers the handler's prediction fields plus a 28×28
`attributions` map (integrated gradients, docs/serving.md); this checks the map and keeps what
the page draws.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from webui.merge import ModelReply

SIDE = 28
KEPT = ("prediction", "confidence", "target", "method", "baseline", "n_steps", "delta")


def valid_map(value: Any, side: int = SIDE) -> bool:
    """True for a side×side list of lists of finite numbers."""
    return (
        isinstance(value, list)
        and len(value) == side
        and all(isinstance(row, list) and len(row) == side for row in value)
        and all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)
            for row in value
            for v in row
        )
    )


def explanation(role: str, reply: ModelReply) -> tuple[int, dict[str, Any]]:
    """(HTTP status, JSON body): the map, the image's own 4xx, or 503 when the model is down."""
    if reply.rejected_input:
        return reply.status, {"error": reply.error or "the image was rejected"}
    if not reply.ok:
        return 503, {"error": reply.error or "the model is unavailable", "model": role}
    answer: Mapping[str, Any] = reply.answer
    if not valid_map(answer.get("attributions")):
        return 502, {"error": "the model gave no valid explanation", "model": role}
    body: dict[str, Any] = {"model": role, "attributions": answer["attributions"]}
    body.update({key: answer[key] for key in KEPT if key in answer})
    body["latency_ms"] = round(reply.latency_ms, 1)
    return 200, body
