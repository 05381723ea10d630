"""JSON API: `POST /api/predict` (both models, merged), `POST /api/explain`, `GET /api/health`."""

from __future__ import annotations

import time

from flask import Blueprint, Response, current_app, jsonify, request

from webui import ensemble, shedding
from webui.explain import explanation
from webui.merge import merge
from webui.payload import PayloadError, read_image
from webui.torchserve import get_client

bp = Blueprint("api", __name__, url_prefix="/api")


def error_response(status: int, message: str) -> tuple[Response, int]:
    """The API's error shape: {"error": message} with the given status."""
    return jsonify(error=message), status


def admitted_image() -> bytes | tuple[Response, int]:
    """The request's image when it is valid and may run now, else the answer refusing it."""
    try:
        data = read_image(request, current_app.config["MAX_IMAGE_BYTES"])
    except PayloadError as exc:
        return error_response(exc.status, str(exc))
    if not shedding.admit(data):
        return shedding.busy_response(), 503
    return data


@bp.post("/predict")
def predict() -> tuple[Response, int]:
    """Send one image to both models concurrently and answer with the merged result."""
    start = time.perf_counter()
    data = admitted_image()
    if not isinstance(data, bytes):
        return data
    replies = get_client().predict_all(data)
    status, body = merge(replies, 1000 * (time.perf_counter() - start), ensemble.current())
    return jsonify(body), status


@bp.post("/explain")
def explain() -> tuple[Response, int]:
    """One model's attribution map (`?model=cnn` or `mlp`) for the same image as /predict."""
    client = get_client()
    role = request.args.get("model", "cnn")
    if role not in client.models:
        return error_response(
            400, f"unknown model {role[:40]!r}: use one of {sorted(client.models)}"
        )
    data = admitted_image()
    if not isinstance(data, bytes):
        return data
    status, body = explanation(role, client.explain(role, data))
    return jsonify(body), status


@bp.get("/health")
def health() -> tuple[Response, int]:
    """The UI's and each model's status: 200 when at least one model has a READY worker."""
    models = get_client().health()
    up = sum(m["status"] == "ok" for m in models.values())
    overall = "ok" if up == len(models) else "degraded" if up else "down"
    return jsonify(status=overall, ui="ok", models=models), 200 if up else 503
