"""Unit tests of the performance benchmark: settings, stats, load jobs, HTTP framing, reports."""

from __future__ import annotations

import asyncio
import http.server
import json
import threading
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks import (
    perf,
    perf_bench,
    perf_cell,
    perf_fuzzing,
    perf_inproc,
    perf_jobs,
    perf_load,
    perf_services,
    perf_settings,
    perf_soak,
    perf_stack,
    perf_stats,
)
from evalsets import bench_inputs
from recognition.models import build_model, save_checkpoint
from recognition.predictor import Predictor
from recognition.preprocessing import preprocess

pytestmark = pytest.mark.unit

DIGIT = np.zeros((28, 28), np.uint8)
DIGIT[6:22, 12:16] = 255  # a "1"


@pytest.fixture(scope="module")
def weights(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """Untrained (seeded) checkpoints of both models, by architecture."""
    folder = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    paths = {}
    for arch in ("mlp", "cnn"):
        paths[arch] = str(folder / f"mnist_{arch}.pt")
        save_checkpoint(Path(paths[arch]), build_model(arch), arch, {}, {})
    return paths


# --- settings --------------------------------------------------------------------------------


def test_settings_defaults_are_the_documented_ones():
    settings = perf_settings.parse([])
    assert settings.mode == "bench"
    assert settings.clients == [1, 4, 16, 64]
    assert settings.targets == list(perf_settings.TARGETS)
    assert (settings.seconds, settings.requests, settings.warmup, settings.repeat) == (
        10.0,
        5000,
        1.0,
        1,
    )


def test_quick_shortens_every_cell_and_modes_pick_their_repeat():
    quick = perf_settings.parse(["--quick", "--clients", "1", "4", "--targets", "inproc_mlp"])
    assert (quick.seconds, quick.requests, quick.warmup, quick.server_warmup) == (
        2.0,
        600,
        0.5,
        2.0,
    )
    assert quick.clients == [1, 4]
    assert quick.targets == ["inproc_mlp"]
    assert perf_settings.parse(["cold-start"]).repeat == 3
    assert perf_settings.parse(["soak", "--minutes", "2"]).minutes == 2


def test_list_and_repeatable_options_and_no_ui():
    settings = perf_settings.parse(
        ["--no-ui", "--workers", "1", "mnist_cnn=2", "--ts-set", "a=1", "--ts-set", "b=2"]
    )
    assert "ui" not in settings.targets
    assert settings.workers == ["1", "mnist_cnn=2"]
    assert settings.ts_set == ["a=1", "b=2"]
    assert perf_settings.parse([]).ts_set == []  # the default list is not shared
    with pytest.raises(SystemExit):
        perf_settings.parse(["--targets", "nonsense"])


def test_every_mode_has_a_runner_and_an_output_file():
    assert set(perf.MODES) == set(perf_settings.MODES)
    assert perf.MODES["bench"][1] == "perf.json"


def test_tuning_config_records_the_knobs_as_given():
    config = perf_services.tuning_config(perf_settings.parse(["--batch-size", "4"]))
    assert config["batch_size"] == 4
    assert config["workers"] is None
    assert config["baseline_threads"] == 1


# --- in process ------------------------------------------------------------------------------


def test_inprocess_predictor_answers_what_the_predictors_do(weights):
    data = bench_inputs.mnist_png(DIGIT)
    predict = perf_inproc.inprocess_predictor(weights, threads=1)
    image = preprocess(data)
    expected = [
        int(Predictor.from_checkpoint(p).probabilities([image]).argmax()) for p in weights.values()
    ]
    assert predict(data) == expected


def test_inprocess_load_job_runs_in_its_own_process(weights, tmp_path):
    body = tmp_path / "digit.png"
    body.write_bytes(bench_inputs.mnist_png(DIGIT))
    job = {"kind": "inprocess", "weights": weights, "body_file": str(body), "threads": 1}
    job["cells"] = [perf_jobs.cell(2, seconds=30, requests=7)]
    (result,) = perf_jobs.run_load(job, timeout=120)
    assert result["clients"] == 2
    assert result["statuses"] == {"200": 7}
    assert len(result["latencies_ms"]) == 7
    assert result["cpu_s"]["loadgen"] > 0


# --- stats -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [
        ([], 50, None),
        ([5.0], 99, 5.0),
        ([1.0, 2.0, 3.0, 4.0], 50, 2.5),
        ([4.0, 1.0, 3.0, 2.0], 0, 1.0),
        ([4.0, 1.0, 3.0, 2.0], 100, 4.0),
        (list(range(101)), 95, 95.0),
    ],
)
def test_percentile(values, q, expected):
    assert perf_stats.percentile(values, q) == expected


def raw_cell(latencies, errors=0, elapsed=2.0, cpu=None):
    return {
        "clients": 4,
        "latencies_ms": latencies,
        "errors": errors,
        "statuses": {"200": len(latencies)},
        "elapsed_s": elapsed,
        "cpu_s": cpu or {},
    }


def test_summarize_counts_only_good_answers_in_throughput_and_latency():
    summary = perf_stats.summarize(
        raw_cell([1.0] * 90 + [10.0] * 10, errors=5, cpu={"servers": 0.21, "machine": 1.0})
    )
    assert summary["requests"] == 105
    assert summary["errors"] == 5
    assert summary["rps"] == 50.0
    assert summary["p50_ms"] == 1.0
    assert summary["p99_ms"] == pytest.approx(10.0)
    assert summary["max_ms"] == 10.0
    assert summary["cpu_ms_per_request"]["servers"] == 2.0
    assert summary["machine_busy_cores"] == 0.5


def test_summarize_without_answers_has_no_percentiles():
    summary = perf_stats.summarize(raw_cell([], errors=3))
    assert summary["p50_ms"] is None
    assert summary["rps"] == 0.0
    assert summary["errors"] == 3


def test_ratios_and_added_latency():
    cells = {
        "ts": {1: {"p50_ms": 3.0, "p99_ms": 9.0, "rps": 300.0}},
        "base": {1: {"p50_ms": 2.0, "p99_ms": 3.0, "rps": 500.0}, 4: {}},
    }
    out = perf_stats.ratios(cells, {"ts/base": ("ts", "base"), "missing": ("x", "base")})
    assert out == {"ts/base": {1: {"p50": 1.5, "p99": 3.0, "rps": 0.6, "added_p50_ms": 1.0}}}


@pytest.mark.parametrize(
    ("value", "limit", "at_least", "expected"),
    [(8.0, 8, False, True), (8.1, 8, False, False), (800, 800, True, True), (None, 1, True, None)],
)
def test_check(value, limit, at_least, expected):
    assert perf_stats.check(value, limit, at_least) is expected


# --- load generator --------------------------------------------------------------------------


def test_build_request_frames_a_keep_alive_post():
    request = perf_load.build_request(
        "POST", "127.0.0.1", 8080, "/p", headers={"X-A": "1"}, body=b"abc"
    )
    head, body = request.split(b"\r\n\r\n", 1)
    assert head.split(b"\r\n")[0] == b"POST /p HTTP/1.1"
    assert b"Content-Length: 3" in head
    assert b"X-A: 1" in head
    assert body == b"abc"


def read(raw: bytes) -> tuple[int, bytes, bool]:
    async def go():
        reader = asyncio.StreamReader()
        reader.feed_data(raw)
        reader.feed_eof()
        return await perf_load.read_response(reader)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nokEXTRA", (200, b"ok", True)),
        (
            b"HTTP/1.1 503 X\r\nConnection: close\r\ncontent-length: 0\r\n\r\n",
            (503, b"", False),
        ),
        (
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
            (200, b"abcde", True),
        ),
        (b"HTTP/1.0 200 OK\r\n\r\nuntil eof", (200, b"until eof", False)),
    ],
)
def test_read_response(raw, expected):
    assert read(raw) == expected


def test_recorder_stops_at_the_request_budget():
    rec = perf_cell.Recorder(max_requests=3, deadline=float("inf"))
    assert [rec.take() for _ in range(5)] == [True, True, True, False, False]
    rec.record("200", 1.0, True)
    rec.record("503", 2.0, False, "down")
    assert rec.result.latencies_ms == [1.0]
    assert rec.result.errors == 1
    assert rec.result.error_samples == ["503: down"]


# --- stack and report ------------------------------------------------------------------------


def test_yaml_overrides_replace_and_add_top_level_keys():
    text = "# batchSize: 1 in a comment\nminWorkers: 1\nbatchSize: 8\n"
    out = perf_stack.yaml_overrides(text, {"batchSize": 16, "maxBatchDelay": 3})
    assert out == "# batchSize: 1 in a comment\nminWorkers: 1\nbatchSize: 16\nmaxBatchDelay: 3\n"


def test_multipart_body_holds_the_file_field():
    body, content_type = perf_jobs.multipart(b"\x89PNGdata", "x.png", "image/png")
    boundary = content_type.split("boundary=", 1)[1]
    assert body.startswith(f"--{boundary}\r\n".encode())
    assert b'name="file"; filename="x.png"' in body
    assert body.endswith(f"\r\n--{boundary}--\r\n".encode())


def test_target_checks_report_each_target_met_or_missed():
    def cell(p50, p99=10.0, rps=1000.0, errors=0):
        return {"p50_ms": p50, "p99_ms": p99, "rps": rps, "errors": errors}

    report = {
        "results": {
            "mnist_png": {
                "ui": {"1": cell(7.0), "16": cell(60.0, p99=160.0, rps=300.0)},
                "ts_mlp": {"16": cell(10.0, rps=900.0)},
            },
            "phone_jpeg": {"ui": {"1": cell(41.0)}},
        },
        "ratios": {"mnist_png": {"ts_mlp/inproc_mlp": {"1": {"added_p50_ms": 1.5}}}},
        "cold_start_s": 9.0,
    }
    met = {c["target"]: c["met"] for c in perf_bench.target_checks(report)}
    assert met == {
        "/api/predict p50, 28×28 PNG, 1 client (ms)": True,
        "/api/predict p50, phone JPEG, 1 client (ms)": False,
        "/api/predict req/s, 28×28 PNG, 16 clients": True,
        "/api/predict errors, 16 clients": True,
        "/api/predict p99, 28×28 PNG, 16 clients (ms)": False,
        "ts_mlp req/s, 28×28 PNG, 16 clients": True,
        "ts_mlp added p50 over in-process, 1 client (ms)": True,
        "cold start: start → both models READY (s)": True,
    }
    json.dumps(report)  # the report stays JSON


def test_soak_summary_tracks_rss_per_pid():
    report = {
        "minutes_detail": [
            {"requests": 10, "errors": 0, "rps": 5.0, "p99_ms": 9.0},
            {"requests": 12, "errors": 1, "rps": 6.0, "p99_ms": 8.0},
        ],
        "rss_before_mib": [
            {"pid": 1, "process": "gunicorn", "rss_mib": 30.0},
            {"pid": 2, "process": "torchserve-worker", "rss_mib": 500.0},
        ],
        "rss_after_mib": [{"pid": 1, "process": "gunicorn", "rss_mib": 31.5}],
    }
    summary = perf_soak.soak_summary(report)
    assert summary["requests"] == 22
    assert summary["errors"] == 1
    assert summary["rss"] == [
        {"pid": 1, "process": "gunicorn", "before_mib": 30.0, "after_mib": 31.5, "change_mib": 1.5}
    ]
    assert summary["processes_gone"] == [2]


def test_worker_counts_for_every_model_or_by_name():
    assert perf_services.worker_counts(["1", "mnist_cnn=2"]) == {"mnist_mlp": 1, "mnist_cnn": 2}
    with pytest.raises(SystemExit, match="unknown model"):
        perf_services.worker_counts(["resnet=2"])


def test_pool_adds_up_repeats_of_a_cell():
    first = {
        **raw_cell([1.0, 2.0], errors=1, elapsed=1.0, cpu={"servers": 0.5}),
        "statuses": {"200": 2},
    }
    second = {
        **raw_cell([3.0], elapsed=2.0, cpu={"servers": 0.25}),
        "statuses": {"200": 1, "503": 1},
    }
    pooled = perf_stats.pool([first, second])
    assert pooled["latencies_ms"] == [1.0, 2.0, 3.0]
    assert pooled["errors"] == 1
    assert pooled["statuses"] == {"200": 3, "503": 1}
    assert pooled["elapsed_s"] == 3.0
    assert pooled["cpu_s"] == {"servers": 0.75}
    assert perf_stats.summarize(pooled)["rps"] == 1.0


def test_fuzz_verdict_fails_5xx_dropped_non_json_and_slow_answers():
    def row(status, is_json=True, seconds=0.01):
        return {"status": status, "json": is_json, "seconds": seconds}

    rows = [row(200), row(422), row(500), row(0, False), row(415, False), row(200, seconds=9.0)]
    verdict = perf_fuzzing.fuzz_verdict(rows, max_seconds=5.0)
    assert verdict["statuses"] == {"200": 2, "422": 1, "500": 1, "0": 1, "415": 1}
    assert verdict["failure_count"] == 4
    assert [r["status"] for r in verdict["failures"]] == [500, 0, 415, 200]
    assert verdict["max_ms"] == 9000.0


def test_http_phase_sends_the_bodies_in_turn_on_keep_alive_connections(tmp_path):
    seen: list[bytes] = []

    class Echo(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(body)
            answer = b'{"prediction": 7}' if body != b"bad" else b"{}"
            self.send_response(200)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        files = [tmp_path / "a", tmp_path / "b"]
        files[0].write_bytes(b"good")
        files[1].write_bytes(b"bad")
        job = perf_jobs.http_job(f"http://127.0.0.1:{server.server_port}", "/p", {}, files[0], "")
        job["bodies"] = [{"file": str(f), "headers": {}} for f in files]
        job["expect"] = '"prediction"'
        rec = perf_cell.Recorder(max_requests=6, deadline=float("inf"))
        perf_load.http_phase(job)(2, rec)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
    assert sorted(seen) == [b"bad"] * 3 + [b"good"] * 3
    assert len(rec.result.latencies_ms) == 3  # the answers without the expected text are errors
    assert rec.result.errors == 3
