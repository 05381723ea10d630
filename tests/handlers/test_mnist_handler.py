"""The MNIST handler without a server: `initialize` and `handle` with TorchServe's own Context."""

from __future__ import annotations

import base64
import inspect
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from ts.context import Context, RequestProcessor
from ts.torch_handler.base_handler import BaseHandler

from handlers import mnist_handler
from handlers.mnist_handler import MnistHandler, checkpoint_path, cpu_threads, select_device
from recognition.models import build_model, save_checkpoint
from recognition.preprocessing import normalize, preprocess
from recognition.segmentation import Slot, read_line
from tests.helpers import canvas_digit, digit_row, inside, png_bytes

pytestmark = pytest.mark.unit


def digit_png(seed: int) -> bytes:
    """A synthetic blob 'digit' on black, different per seed."""
    rng = np.random.default_rng(seed)
    pixels = np.zeros((28, 28), np.uint8)
    top, left = rng.integers(4, 10, size=2)
    pixels[top : top + 14, left : left + 5] = 255
    pixels[top : top + 4, left : left + 12] = 255
    return png_bytes(pixels)


BLANK = png_bytes(np.zeros((28, 28), np.uint8))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An extracted-archive look-alike: a CNN checkpoint with random (seeded) weights."""
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("mnist_cnn")
    save_checkpoint(folder / "mnist_cnn.pt", build_model("cnn"), "cnn", {}, {"note": "test"})
    return folder


def make_context(model_dir: Path, manifest: dict | None = None) -> Context:
    manifest = manifest or {"model": {"modelName": "mnist_cnn", "serializedFile": "mnist_cnn.pt"}}
    return Context("mnist_cnn", str(model_dir), manifest, 8, None, "0.12.0")


@pytest.fixture
def keep_torch_threads():
    """`initialize` sets the process-wide torch thread count: put it back afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def handler(model_dir: Path, keep_torch_threads: None) -> MnistHandler:
    h = MnistHandler()
    h.initialize(make_context(model_dir))
    return h


def run_batch(
    handler: MnistHandler, rows: list[dict], headers: list[dict] | None = None
) -> tuple[list[dict], Context]:
    """handle() one batch as TorchServe would; answers parsed from JSON, and the context."""
    context = handler.context
    context.request_processor = [RequestProcessor(h) for h in headers or [{} for _ in rows]]
    answers = handler.handle(rows, context)
    assert all(isinstance(a, str) for a in answers)
    return [json.loads(a) for a in answers], context


def test_initialize_builds_the_model_the_checkpoint_describes(handler: MnistHandler) -> None:
    assert handler.initialized
    assert type(handler.predictor.model).__name__ == "CNN"
    assert handler.predictor.meta["arch"] == "cnn"
    assert handler.device == torch.device("cpu")
    assert not handler.predictor.model.training


def test_initialize_sets_torch_threads_from_the_environment(
    model_dir: Path, keep_torch_threads: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    MnistHandler().initialize(make_context(model_dir))
    assert torch.get_num_threads() == 1


def test_a_batch_answers_every_request_in_order_with_its_own_status(
    handler: MnistHandler,
) -> None:
    rows = [
        {"body": bytearray(digit_png(1))},
        {"body": bytearray()},  # empty
        {"file": bytearray(canvas_digit())},
        {"body": bytearray(b"GIF89a not really")},  # undecodable
        {"body": bytearray(BLANK)},  # no ink
    ]
    answers, context = run_batch(handler, rows)
    assert len(answers) == len(rows)
    statuses = [context.get_response_status(i)[0] for i in range(len(rows))]
    assert statuses == [200, 400, 200, 400, 422]
    for i in (0, 2):
        top = {"prediction", "confidence", "probabilities", "abstain", "reason"}
        assert set(answers[i]) == top | {"digits", "number"}
        (only,) = answers[i]["digits"]  # one digit: the top level is that digit, as before
        assert {k: only[k] for k in top} == {k: answers[i][k] for k in top}
        assert answers[i]["number"] == str(answers[i]["prediction"])
        assert 0 <= answers[i]["prediction"] <= 9
        assert len(answers[i]["probabilities"]) == 10
    for i, status in ((1, 400), (3, 400), (4, 422)):
        assert answers[i]["status"] == status
        assert answers[i]["error"]
    assert context.get_response_status(4)[1] == "Unprocessable Entity"
    for i in range(len(rows)):
        assert context.get_response_content_type(i) == "application/json"
        assert context.get_response_headers(i)["X-Batch-Size"] == str(len(rows))


def test_answers_match_the_model_called_directly(handler: MnistHandler) -> None:
    images = [digit_png(seed) for seed in range(4)]
    answers, _ = run_batch(handler, [{"body": bytearray(b)} for b in images])
    batch = torch.from_numpy(np.stack([normalize(preprocess(b)) for b in images])).unsqueeze(1)
    with torch.inference_mode():
        expected = torch.softmax(handler.predictor.model(batch), dim=1).numpy() * 100.0
    for answer, probabilities in zip(answers, expected, strict=True):
        np.testing.assert_allclose(answer["probabilities"], probabilities, atol=1e-3)
        assert answer["prediction"] == int(np.argmax(probabilities))
        assert answer["confidence"] == pytest.approx(float(probabilities.max()), abs=1e-3)


def test_batched_and_single_answers_agree(handler: MnistHandler) -> None:
    images = [digit_png(seed) for seed in range(3)]
    together, _ = run_batch(handler, [{"body": bytearray(b)} for b in images])
    alone = [run_batch(handler, [{"body": bytearray(b)}])[0][0] for b in images]
    for a, b in zip(together, alone, strict=True):
        np.testing.assert_allclose(a["probabilities"], b["probabilities"], atol=1e-3)


def test_return_image_only_for_the_request_that_asks(handler: MnistHandler) -> None:
    data = digit_png(7)
    answers, _ = run_batch(
        handler,
        [{"body": bytearray(data)}, {"body": bytearray(data)}],
        [{"X-Return-Image": "1"}, {}],
    )
    assert "image" not in answers[1]
    seen = np.asarray(Image.open(io.BytesIO(base64.b64decode(answers[0]["image"]))))
    assert seen.shape == (28, 28)
    np.testing.assert_array_equal(seen, (preprocess(data) * 255).round().astype(np.uint8))


def test_all_requests_rejected_still_answers_each(handler: MnistHandler) -> None:
    answers, context = run_batch(handler, [{"body": bytearray()}, {"body": bytearray(BLANK)}])
    assert [a["status"] for a in answers] == [400, 422]
    assert [context.get_response_status(i)[0] for i in range(2)] == [400, 422]


def test_an_unexpected_failure_stays_with_its_request(
    handler: MnistHandler, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A preprocessing bug (not producible on purpose) fails one request, not its batch."""
    poisoned = digit_png(3)

    def flaky(data: bytes) -> list[Slot]:
        if data == poisoned:
            raise RuntimeError("/secret/path exploded")
        return read_line(data)

    monkeypatch.setattr(mnist_handler, "read_line", flaky)
    answers, context = run_batch(
        handler, [{"body": bytearray(digit_png(1))}, {"body": bytearray(poisoned)}]
    )
    assert context.get_response_status(0)[0] == 200
    assert context.get_response_status(1)[0] == 500
    assert answers[1] == {"error": mnist_handler.INTERNAL_ERROR, "status": 500}


def test_checkpoint_path_requires_a_serialized_file(model_dir: Path) -> None:
    context = make_context(model_dir, {"model": {"modelName": "mnist_cnn"}})
    with pytest.raises(RuntimeError, match="build_archives"):
        checkpoint_path(context)


def test_select_device(monkeypatch: pytest.MonkeyPatch) -> None:
    assert select_device(None) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert select_device(0) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert select_device(1) == torch.device("cuda:1")
    assert select_device(None) == torch.device("cpu")


@pytest.mark.parametrize(
    ("environ", "threads"),
    [
        ({}, 1),
        ({"OMP_NUM_THREADS": "2"}, 2),
        ({"OMP_NUM_THREADS": "0"}, 1),
        ({"OMP_NUM_THREADS": "x"}, 1),
    ],
)
def test_cpu_threads(environ: dict[str, str], threads: int) -> None:
    assert cpu_threads(environ) == threads


def base_signature(name: str) -> inspect.Signature:
    """The signature BaseHandler's method declares (under TorchServe's @timed wrapper)."""
    function = getattr(BaseHandler, name)
    undecorated = next(
        (cell.cell_contents for cell in function.__closure__ or () if callable(cell.cell_contents)),
        function,
    )
    return inspect.signature(undecorated)


@pytest.mark.parametrize("name", ["preprocess", "inference", "postprocess"])
def test_lifecycle_methods_keep_the_base_handler_signatures(name: str) -> None:
    """preprocess, inference and postprocess take exactly what BaseHandler's take."""
    ours = inspect.signature(getattr(MnistHandler, name)).parameters
    base = base_signature(name).parameters
    assert [(p.name, p.kind) for p in ours.values()] == [(p.name, p.kind) for p in base.values()]


def test_the_handler_module_defines_one_class() -> None:
    """TorchServe's loader refuses a handler module with more than one class of its own."""
    own = [
        obj
        for obj in vars(mnist_handler).values()
        if inspect.isclass(obj) and obj.__module__ == mnist_handler.__name__
    ]
    assert own == [MnistHandler]


def test_several_numbers_and_a_bad_request_in_one_batch(handler: MnistHandler) -> None:
    """Each number gets its own digits, boxes in its own pixels; the bad one alone its 400."""
    rows_of = [[1, 2, 3], [4, 5], [6, 7, 8, 9]]
    blobs = [np.asarray(Image.open(io.BytesIO(digit_png(seed)))) for seed in range(10)]
    made = [digit_row([blobs[i] for i in seeds]) for seeds in rows_of]
    rows = [{"body": bytearray(data)} for data, _ in made]
    rows.insert(2, {"body": bytearray(b"\x89PNG\r\n\x1a\n truncated")})
    answers, context = run_batch(handler, rows)
    statuses = [context.get_response_status(i)[0] for i in range(len(rows))]
    assert statuses == [200, 200, 400, 200]
    assert answers[2]["status"] == 400
    good = [a for i, a in enumerate(answers) if i != 2]
    for answer, (_data, cells) in zip(good, made, strict=True):
        assert len(answer["digits"]) == len(cells)
        assert answer["number"] == "".join(str(d["prediction"]) for d in answer["digits"])
        for digit, cell in zip(answer["digits"], cells, strict=True):
            assert inside(digit["box"], cell), (digit["box"], cell)
