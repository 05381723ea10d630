"""Fuzzing the preprocessing with thousands of mutated PNG, JPEG and GIF files (hypothesis).

Whatever the bytes, `preprocess` returns a 28×28 image in [0, 1] or raises `ImageError` with a
4xx status: never another exception (which the handler would turn into a 500), never a hang, and
memory stays bounded by the decoder limits. The mutations are evalsets/mutants.py's (the
same ones the HTTP fuzz of benchmarks/perf.py sends) plus hypothesis's own byte edits, which it
shrinks to a minimal failing input. Runs are derandomized so CI sees the same inputs each time.
"""

from __future__ import annotations

import io
import resource
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from evalsets.mutants import gif_with_size, mutate, png_with_size
from recognition.preprocessing import ImageError, preprocess

pytestmark = pytest.mark.unit

CLIENT_ERRORS = {400, 413, 415, 422}
MAX_SECONDS = 5.0  # per input, on a busy 2-core machine
MAX_GROWTH_MIB = 512  # whole run: the decoders stop at MAX_PIXELS, so memory cannot run away


def _digit(size: int) -> np.ndarray:
    pixels = np.full((size, size), 255, np.uint8)
    pixels[size // 5 : 4 * size // 5, size // 2 - size // 10 : size // 2 + size // 10] = 0
    return pixels


def _encode(image: Image.Image, fmt: str, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _seeds() -> list[bytes]:
    grey = Image.fromarray(_digit(28))
    big = Image.fromarray(_digit(96))
    rgba = big.convert("RGBA")
    rgba.putalpha(Image.fromarray(255 - _digit(96)))
    return [
        _encode(grey, "PNG"),
        _encode(rgba, "PNG"),
        _encode(big.convert("P"), "PNG"),
        _encode(big, "GIF"),
        _encode(big.convert("RGB"), "JPEG", quality=85),
        _encode(big, "JPEG", quality=70, progressive=True),
    ]


SEEDS = _seeds()


def check(data: bytes) -> None:
    """The property: a valid model input or a client error, in bounded time."""
    start = time.perf_counter()
    try:
        image = preprocess(data)
    except ImageError as exc:
        assert exc.status in CLIENT_ERRORS, (exc.status, str(exc))
        assert str(exc)
    else:
        assert image.shape == (28, 28)
        assert image.dtype == np.float32
        assert np.isfinite(image).all()
        assert image.min() >= 0.0
        assert image.max() <= 1.0
    assert time.perf_counter() - start < MAX_SECONDS


def max_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def test_the_seeds_themselves_are_digits() -> None:
    for data in SEEDS:
        assert preprocess(data).max() > 0.5


FUZZ_SETTINGS = settings(
    max_examples=1500,
    deadline=None,  # time is checked in `check` with a bound fit for a shared machine
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@FUZZ_SETTINGS
@given(number=st.integers(min_value=0, max_value=2**31))
def test_mutated_files_never_crash_the_preprocessing(number: int) -> None:
    _, data = mutate(SEEDS[number % len(SEEDS)], number, SEEDS)
    check(data)


@settings(FUZZ_SETTINGS, max_examples=700)
@given(
    seed=st.sampled_from(SEEDS),
    edits=st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(0, 255)), max_size=8),
    keep=st.floats(0.0, 1.0),
)
def test_edited_and_truncated_files_never_crash_the_preprocessing(
    seed: bytes, edits: list[tuple[float, int]], keep: float
) -> None:
    data = bytearray(seed)
    for where, value in edits:
        data[int(where * len(data))] = value
    check(bytes(data[: max(1, round(keep * len(data)))]))


@settings(FUZZ_SETTINGS, max_examples=300)
@given(
    width=st.integers(0, 2**32 - 1) | st.sampled_from([0, 1, 30000, 40000, 65535]),
    height=st.integers(0, 2**32 - 1) | st.sampled_from([0, 1, 10, 40000, 65535]),
)
def test_absurd_declared_sizes_are_client_errors(width: int, height: int) -> None:
    check(png_with_size(SEEDS[0], width, height))
    check(gif_with_size(SEEDS[3], width, height))


def test_memory_stays_bounded_over_a_thousand_mutants() -> None:
    before = max_rss_mib()
    for number in range(1000):
        _, data = mutate(SEEDS[number % len(SEEDS)], 10**6 + number, SEEDS)
        check(data)
    assert max_rss_mib() - before < MAX_GROWTH_MIB
