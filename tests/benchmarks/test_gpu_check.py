"""benchmarks/gpu_check.py without a GPU: the one-line failure, and its parsers."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks import gpu_check

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("mode", [[], ["--in-process"]])
def test_without_cuda_it_fails_at_once_with_one_line(
    mode: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(gpu_check.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(gpu_check, "load_split", lambda *a, **k: pytest.fail("read MNIST"))
    assert gpu_check.main(mode) == 1
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


def test_in_process_builds_a_real_worker_that_answers_each_request() -> None:
    """Without a gpu_id the check's handler is a CPU worker, answering a batch request by
    request, as TorchServe's would."""
    handler = gpu_check.handler_on(None, gpu_check.REPO_ROOT / "weights", "mnist_mlp")
    assert {p.device.type for p in handler.predictor.model.parameters()} == {"cpu"}
    png = gpu_check.mnist_png(np.full((28, 28), 0, np.uint8))
    answers = gpu_check.handled(handler, [png, b"not an image"])
    assert [("error" in a) for a in answers] == [True, True]  # blank, then undecodable
