"""Training augmentation: shapes, ranges, determinism, and the serving pipeline's framing."""

import numpy as np
import pytest
import torch

from recognition.preprocessing import fit_and_center
from training.augment import AugmentConfig, augment_batch, reframe

pytestmark = pytest.mark.unit


def _bars(n: int = 8) -> torch.Tensor:
    x = torch.zeros(n, 1, 28, 28)
    x[:, :, 6:22, 12:16] = 1.0  # a "1"
    return x


def test_output_is_framed_like_inference() -> None:
    out = augment_batch(_bars(), AugmentConfig(p=1.0), torch.Generator().manual_seed(0))
    assert out.shape == (8, 1, 28, 28)
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    for img in out.squeeze(1).numpy():
        ys, xs = np.nonzero(img > 0.05)
        assert max(np.ptp(ys), np.ptp(xs)) + 1 <= 21  # fits the 20×20 box (±1 px of blur)
        np.testing.assert_allclose(img, fit_and_center(img), atol=0.05)


def test_seeded_and_varied() -> None:
    cfg = AugmentConfig(p=1.0)
    a = augment_batch(_bars(), cfg, torch.Generator().manual_seed(1))
    b = augment_batch(_bars(), cfg, torch.Generator().manual_seed(1))
    assert torch.equal(a, b)
    assert not torch.allclose(a[0], a[1])


def test_p_zero_is_identity() -> None:
    x = _bars()
    assert torch.equal(augment_batch(x, AugmentConfig(p=0.0), torch.Generator()), x)


def test_reframe_keeps_an_mnist_digit() -> None:
    x = _bars(1)
    np.testing.assert_allclose(reframe(x)[0, 0].numpy(), fit_and_center(x[0, 0].numpy()))


def test_unknown_keys_rejected() -> None:
    with pytest.raises(ValueError, match="unknown augmentation keys"):
        AugmentConfig.from_dict({"rotate": 10})
