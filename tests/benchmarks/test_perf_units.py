"""Unit tests of the performance benchmark's pure parts: stats, inputs, mutations, HTTP framing."""

from __future__ import annotations

import asyncio
import json

import numpy as np
import pytest

from benchmarks import perf, perf_load, perf_stack, perf_stats

pytestmark = pytest.mark.unit

DIGIT = np.zeros((28, 28), np.uint8)
DIGIT[6:22, 12:16] = 255  # a "1"


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
    rec = perf_load.Recorder(max_requests=3, deadline=float("inf"))
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
    body, content_type = perf.multipart(b"\x89PNGdata", "x.png", "image/png")
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
    met = {c["target"]: c["met"] for c in perf.target_checks(report)}
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
    summary = perf.soak_summary(report)
    assert summary["requests"] == 22
    assert summary["errors"] == 1
    assert summary["rss"] == [
        {"pid": 1, "process": "gunicorn", "before_mib": 30.0, "after_mib": 31.5, "change_mib": 1.5}
    ]
    assert summary["processes_gone"] == [2]


def test_worker_counts_for_every_model_or_by_name():
    assert perf.worker_counts(["1", "mnist_cnn=2"]) == {"mnist_mlp": 1, "mnist_cnn": 2}
    with pytest.raises(SystemExit, match="unknown model"):
        perf.worker_counts(["resnet=2"])


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
