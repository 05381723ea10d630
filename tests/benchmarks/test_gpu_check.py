"""benchmarks/gpu_check.py without a GPU: the one-line failure, and its parsers."""

from __future__ import annotations

import pytest

from benchmarks import gpu_check

pytestmark = pytest.mark.unit


def test_without_cuda_it_fails_at_once_with_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(gpu_check, "load_split", lambda *a, **k: pytest.fail("read MNIST"))
    assert gpu_check.main([]) == 1
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1
    assert err.startswith("gpu-check: FAILED: no CUDA device")


def test_the_handlers_start_up_lines_give_each_workers_device() -> None:
    log = (
        "2026-01-01 INFO model mnist_cnn: cnn on cuda:0, 1 torch thread(s)\n"
        "2026-01-01 INFO model mnist_mlp: mlp on cpu, 1 torch thread(s)\n"
        "2026-01-01 INFO model mnist_cnn: cnn on cuda:1, 1 torch thread(s)\n"
    )
    assert gpu_check.logged_devices(log) == {
        "mnist_cnn": ["cuda:0", "cuda:1"],
        "mnist_mlp": ["cpu"],
    }


def test_describe_gives_each_workers_gpu_flag() -> None:
    describe = [{"workers": [{"id": "9000", "gpu": True}, {"id": "9001", "gpu": False}]}]
    assert gpu_check.worker_devices(describe) == [True, False]
