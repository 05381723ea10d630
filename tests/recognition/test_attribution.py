"""Integrated-gradients attribution maps of `recognition.attribution`."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch

from recognition import attribution
from recognition.constants import MNIST_MEAN, MNIST_STD
from recognition.models import build_model
from recognition.predictor import Predictor
from recognition.preprocessing import preprocess
from tests.helpers import REPO_ROOT, mnist_samples

pytestmark = pytest.mark.unit

INK_SHARE = 0.70  # the least share of |attribution| on the digit's pixels
INK_SAMPLES = 30
LATENCY_BUDGET_S = 0.050  # one 28×28 explanation on one CPU core (p50)


def blob(seed: int) -> np.ndarray:
    """A synthetic preprocessed 'digit': bright strokes on a 0 background."""
    rng = np.random.default_rng(seed)
    image = np.zeros((28, 28), np.float32)
    top, left = rng.integers(4, 10, size=2)
    image[top : top + 14, left : left + 4] = 1.0
    image[top : top + 3, left : left + 10] = 0.8
    return image


@pytest.fixture(scope="module", params=["mlp", "cnn"])
def model(request: pytest.FixtureRequest) -> torch.nn.Module:
    """A seeded, untrained model of each architecture, in eval mode."""
    torch.manual_seed(0)
    return build_model(request.param).eval()


@pytest.fixture
def one_thread():
    """Measure as a CPU worker runs: one torch thread."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_a_map_per_image_of_the_input_shape_and_finite(model: torch.nn.Module) -> None:
    explanations = attribution.integrated_gradients(model, [blob(1), blob(2), blob(3)])
    assert len(explanations) == 3
    for e in explanations:
        assert e.attributions.shape == (28, 28)
        assert e.attributions.dtype == np.float32
        assert np.isfinite(e.attributions).all()
        assert 0 <= e.target <= 9


def test_the_default_target_is_the_predicted_class(model: torch.nn.Module) -> None:
    image = blob(4)
    (e,) = attribution.integrated_gradients(model, [image])
    with torch.inference_mode():
        logits = model(attribution.as_input([image], torch.device("cpu")))
    assert e.target == int(logits.argmax())
    assert e.logit == pytest.approx(float(logits[0, e.target]), abs=1e-4)


def test_an_explicit_target_is_explained(model: torch.nn.Module) -> None:
    (e,) = attribution.integrated_gradients(model, [blob(5)], targets=[7])
    assert e.target == 7


def test_completeness_sum_is_the_logit_gap_to_the_baseline(model: torch.nn.Module) -> None:
    for e in attribution.integrated_gradients(model, [blob(6), blob(7)], n_steps=128):
        gap = e.logit - e.baseline_logit
        assert float(e.attributions.astype(np.float64).sum()) == pytest.approx(
            gap, rel=0.05, abs=0.02
        )
        assert abs(e.delta) <= 0.05 * abs(gap) + 0.02


def test_the_baseline_is_the_normalised_background() -> None:
    assert (attribution.background() == 0).all()
    base = attribution.as_input([attribution.background()], torch.device("cpu"))
    assert torch.allclose(base, torch.full_like(base, -MNIST_MEAN / MNIST_STD))


def test_background_pixels_get_no_attribution(model: torch.nn.Module) -> None:
    image = blob(8)
    (e,) = attribution.integrated_gradients(model, [image])
    assert (e.attributions[image == 0] == 0).all()


def test_no_images_no_explanations(model: torch.nn.Module) -> None:
    assert attribution.integrated_gradients(model, []) == []


def test_ink_share_counts_the_digit_and_a_one_pixel_rim() -> None:
    image = np.zeros((28, 28), np.float32)
    image[10, 10] = 1.0
    maps = np.zeros((28, 28), np.float32)
    maps[10, 10], maps[10, 11], maps[0, 0] = 2.0, -1.0, 1.0
    assert attribution.ink_share(maps, image) == pytest.approx(0.75)
    assert attribution.ink_share(np.zeros((28, 28)), image) == 0.0


def committed(arch: str) -> Predictor:
    """The committed weights of one model; skips when they are not in the checkout."""
    path = REPO_ROOT / "weights" / f"mnist_{arch}.pt"
    if not path.is_file():
        pytest.skip(f"{path} is not committed")
    return Predictor.from_checkpoint(path)


@pytest.mark.data
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_attribution_lies_on_the_ink_of_real_digits(arch: str) -> None:
    images = [preprocess(data) for data, _ in mnist_samples(INK_SAMPLES)]
    explanations = attribution.integrated_gradients(committed(arch).model, images)
    shares = [
        attribution.ink_share(e.attributions, image, dilate=0)
        for e, image in zip(explanations, images, strict=True)
    ]
    assert min(shares) >= INK_SHARE, shares
    assert float(np.mean(shares)) >= INK_SHARE


@pytest.mark.data
@pytest.mark.parametrize("arch", ["mlp", "cnn"])
def test_one_explanation_fits_the_latency_budget_on_one_core(arch: str, one_thread: None) -> None:
    model = committed(arch).model
    images = [preprocess(data) for data, _ in mnist_samples(12)]
    attribution.integrated_gradients(model, images[:1])  # warm-up
    times = []
    for image in images:
        start = time.perf_counter()
        attribution.integrated_gradients(model, [image])
        times.append(time.perf_counter() - start)
    # Generous on a shared test machine: twice the budget; the measured figure is in the docs.
    assert float(np.median(times)) <= 2 * LATENCY_BUDGET_S, times
