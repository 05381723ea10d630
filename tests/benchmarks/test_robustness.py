"""The robustness benchmark on evaluation sets generated from a tiny MNIST written by the test."""

from __future__ import annotations

import csv
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import robustness
from benchmarks.robustness_stats import Outcome, failures, honesty, mistakes, summarize
from evalsets.items import SET_SIZES
from evalsets.read import Sample, load_set
from recognition.models import build_model, save_checkpoint
from recognition.preprocessing import preprocess
from tests.evalsets.tiny_mnist import make_sets, write_tiny_mnist
from webui.ensemble import Ensemble

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def sets(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every set generated at a tiny scale from a tiny MNIST."""
    mnist = write_tiny_mnist(tmp_path_factory.mktemp("mnist"))
    return make_sets(mnist, tmp_path_factory.mktemp("eval_sets"), "--jobs", "1")


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Untrained (seeded) checkpoints of both models, with a test accuracy in their metadata."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    for arch in ("mlp", "cnn"):
        save_checkpoint(
            folder / f"mnist_{arch}.pt", build_model(arch), arch, {}, {"test_accuracy": 0.1}
        )
    return folder


def test_load_set_limit_spreads_over_the_set(sets: Path) -> None:
    everything = load_set(sets / "containers")
    some = load_set(sets / "containers", limit=5)
    assert len(some) == 5
    assert some[0].path == everything[0].path
    assert some[-1].path == everything[-1].path


def test_summaries_count_refusals_as_wrong() -> None:
    samples = [Sample(Path(f"{i}.png"), i % 2, {"kind": "ab"[i % 2]}) for i in range(4)]
    outcomes = [
        Outcome({"m": 0}),
        Outcome({"m": 1}),
        Outcome({"m": 1}),
        Outcome({}, status=422, error="no digit"),
    ]
    summary = summarize(samples, outcomes, ["m"])
    assert summary["accuracy"] == {"m": 0.5}
    assert summary["refused"] == {"422": 1}
    assert summary["by_tag"]["kind"] == {"a": {"n": 2, "m": 0.5}, "b": {"n": 2, "m": 0.5}}
    wrong = mistakes(samples, outcomes, "m")
    assert [w["file"] for w in wrong] == ["2.png", "3.png"]
    assert wrong[1]["status"] == 422


def test_honesty_is_ece_and_abstention_over_the_files_read() -> None:
    samples = [Sample(Path(f"{i}.png"), label) for i, label in enumerate([3, 3, 5, 7])]
    sure, shy = np.eye(10)[3], np.full(10, 0.1)
    outcomes = [
        Outcome({"m": 3}, probabilities={"m": sure}, abstained={"m": False}),
        Outcome({"m": 3}, probabilities={"m": sure}, abstained={"m": True}),
        Outcome({"m": 0}, probabilities={"m": shy}, abstained={"m": True}),
        Outcome({}, status=422),  # refused: not in the figures
    ]
    h = honesty(samples, outcomes, "m")
    # two right at confidence 1, one wrong at 0.1: |1 − 1|·2/3 + |0 − 0.1|·1/3
    assert h["ece"] == pytest.approx(0.1 / 3, abs=1e-4)
    assert h["abstained"] == pytest.approx(2 / 3, abs=1e-4)
    assert h["abstained_when_right"] == 0.5
    assert honesty(samples, outcomes, "other") is None
    assert "honesty" in summarize(samples, outcomes, ["m"])


def test_in_process_answers_are_each_files_own_prediction(sets: Path, weights: Path) -> None:
    predictors = robustness.load_predictors(weights)
    assert list(predictors) == ["mnist_mlp", "mnist_cnn"]
    samples = load_set(sets / "canvas") + load_set(sets / "lowres") + load_set(sets / "sklearn")
    weights = {"mnist_mlp": 0.3, "mnist_cnn": 0.7}
    outcomes = robustness.run_in_process(samples, predictors, Ensemble({"mlp": 0.3, "cnn": 0.7}))
    for sample, outcome in zip(samples, outcomes, strict=True):
        image = preprocess(sample.path.read_bytes())
        probs = {n: p.probabilities([image])[0] for n, p in predictors.items()}
        for name, p in probs.items():
            assert outcome.predictions[name] == int(p.argmax())
        pooled = sum(w * np.log(np.maximum(probs[n], 1e-12)) for n, w in weights.items())
        assert outcome.predictions["ensemble"] == int(pooled.argmax())
        assert outcome.probabilities["ensemble"].sum() == pytest.approx(1.0, abs=1e-4)
        for name, predictor in predictors.items():
            ((abstain, _reason),) = predictor.judge([image]).verdicts
            assert outcome.abstained[name] == abstain
        assert outcome.status == 200
        assert outcome.preprocess_ms > 0


def test_in_process_refuses_a_file_that_is_not_an_image(weights: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.png"
    junk.write_bytes(b"not an image at all")
    (outcome,) = robustness.run_in_process([Sample(junk, 3)], robustness.load_predictors(weights))
    assert outcome.predictions == {}
    assert 400 <= outcome.status < 500
    assert outcome.error


def test_benchmark_in_process_writes_its_report(sets: Path, weights: Path, tmp_path: Path) -> None:
    out, failed = tmp_path / "report.json", tmp_path / "failures.csv"
    paths = ["--sets-dir", str(sets), "--weights-dir", str(weights), "--out", str(out)]
    robustness.main([*paths, "--limit", "6", "--failures", str(failed)])
    report = json.loads(out.read_text())
    results = report["paths"]["in_process"]
    assert set(results) == set(SET_SIZES)
    for summary in results.values():
        assert set(summary["accuracy"]) == {"mnist_mlp", "mnist_cnn", "ensemble"}
        assert all(0.0 <= acc <= 1.0 for acc in summary["accuracy"].values())
        assert summary["preprocess_ms"]["p50"] > 0
    assert report["weights"]["mnist_cnn"]["test_accuracy"] == 0.1
    assert "p50" in report["jpeg_1600x1200_ms"]
    assert list(report)[-1] == "mistakes"
    assert set(report["mistakes"]["in_process_cnn"]) == set(SET_SIZES)
    with failed.open(newline="") as fh:
        listed = list(csv.DictReader(fh))
    assert {row["set"] for row in listed} <= set(SET_SIZES)
    models = ("mnist_mlp", "mnist_cnn", "ensemble")
    assert all(r["status"] != "200" or any(r[m] != r["label"] for m in models) for r in listed)


def test_failures_list_refused_and_misread_files_only() -> None:
    samples = [Sample(Path(f"{i}.png"), 1, {"k": "v"}) for i in range(3)]
    outcomes = [Outcome({"a": 1, "b": 1}), Outcome({"a": 1, "b": 2}), Outcome({}, 422, "no ink")]
    rows = failures("set", samples, outcomes, ["a", "b"])
    assert [(r["file"], r["status"], r["a"], r["b"]) for r in rows] == [
        ("1.png", 200, 1, 2),
        ("2.png", 422, None, None),
    ]
    assert rows[1]["error"] == "no ink" and rows[0]["tags"] == "k=v"


def test_webui_client_reads_both_models_and_the_ensemble() -> None:
    body = {"mlp_prediction": 3, "cnn_prediction": 5, "ensemble_prediction": 5}
    answers = {model: body.get(key) for model, key in robustness.WebUIClient.ANSWERS.items()}
    assert answers == {"mnist_mlp": 3, "mnist_cnn": 5, "ensemble": 5}


def test_torchserve_client_reads_keys_through_tsclient(tmp_path: Path) -> None:
    text = json.dumps(
        {"management": {"key": "m1"}, "inference": {"key": "i1"}, "API": {"key": "a"}, "x": 1}
    )
    (tmp_path / "key_file.json").write_text(text)
    client = robustness.TorchServeClient("http://127.0.0.1:1", tmp_path / "key_file.json", None)
    assert client.client.keys.current() == {"management": "m1", "inference": "i1", "api": "a"}
    client.client.close()


class Shedding(BaseHTTPRequestHandler):
    """Answers /api/predict 503 with Retry-After twice, then 200 with an answer."""

    calls = 0

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        type(self).calls += 1
        shed = type(self).calls <= 2
        body = b'{"error": "busy"}' if shed else b'{"cnn_prediction": 7}'
        self.send_response(503 if shed else 200)
        if shed:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def test_webui_client_asks_again_when_the_ui_sheds_load(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 503 with Retry-After is the UI shedding load, not an answer: asked again, it reads."""
    monkeypatch.setattr(robustness, "MAX_SHED_WAIT", 0.01)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Shedding)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        image = tmp_path / "digit.png"
        image.write_bytes(b"\x89PNG")
        client = robustness.WebUIClient(f"http://127.0.0.1:{server.server_address[1]}")
        outcome = client.classify(Sample(image, 7, {}), ["mnist_cnn"])
    finally:
        server.shutdown()
        server.server_close()
    assert outcome.status == 200 and outcome.predictions == {"mnist_cnn": 7}
    assert Shedding.calls == 3
