"""recognition/header.py: the size a header declares, read without decoding, as Pillow reads it."""

from __future__ import annotations

import pytest
from PIL import Image

from evalsets.hostile import big_png, encode
from recognition.header import declared_size

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("fmt", "mode", "options"),
    [
        ("PNG", "L", {}),
        ("PNG", "RGBA", {}),
        ("GIF", "P", {}),
        ("BMP", "RGB", {}),
        ("WEBP", "RGB", {}),
        ("WEBP", "RGB", {"lossless": True}),
        ("WEBP", "RGBA", {}),
        ("JPEG", "RGB", {}),
        ("JPEG", "L", {"progressive": True}),
        ("TIFF", "RGB", {"compression": "tiff_deflate"}),
        ("TIFF", "I;16", {}),
    ],
)
def test_declared_size_matches_pillow(fmt: str, mode: str, options: dict) -> None:
    data = encode(Image.new(mode, (1234, 567)), fmt, **options)
    assert declared_size(data) == (fmt, 1234, 567)


def test_a_jpeg_with_exif_before_its_frame() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6
    data = encode(Image.new("RGB", (400, 300)), "JPEG", exif=exif.tobytes())
    assert declared_size(data) == ("JPEG", 400, 300)


def test_a_cheap_file_declaring_many_pixels() -> None:
    assert declared_size(big_png(3300, 3300, "RGB")) == ("PNG", 3300, 3300)


@pytest.mark.parametrize(
    "data", [b"", b"text", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff\xe0\x00", b"BM" + b"\0" * 8]
)
def test_unreadable_headers_give_none(data: bytes) -> None:
    assert declared_size(data) is None
