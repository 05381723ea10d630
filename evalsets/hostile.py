"""Hostile images that are legal files: decode bombs and expensive inputs within the limits.

Made row by row where they are large, so building one never holds its decoded pixels. Used by
the decode benchmark (benchmarks/perf_decode.py) and the hostile-input tests.
"""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
from PIL import Image

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def texture(width: int, height: int, channels: int = 0) -> np.ndarray:
    """A paper-like 8-bit image with a dark bar: smooth enough that big sides stay under 10 MB."""
    grey = np.full((height, width), 230, np.uint8)
    grey[height // 4 : 3 * height // 4, width // 2 - width // 40 : width // 2 + width // 40] = 20
    return np.dstack([grey] * channels) if channels else grey


def encode(img: Image.Image, fmt: str, **options: object) -> bytes:
    """`img` encoded in `fmt`."""
    buffer = io.BytesIO()
    img.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _chunk(kind: bytes, body: bytes) -> bytes:
    """One PNG chunk: length, type, body, CRC."""
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _repeated_zlib(row: bytes, rows: int, block: int = 64) -> bytes:
    """A valid zlib stream of `row` repeated `rows` times, without holding the whole image:
    one deflate segment of `block` rows ends in a full flush (no back-references across it),
    so it can be repeated; the Adler-32 is computed over the real data."""
    packer = zlib.compressobj(9, wbits=-15)  # raw deflate: the zlib header is written below
    segment = packer.compress(row * block) + packer.flush(zlib.Z_FULL_FLUSH)
    tail = packer.compress(row * (rows % block)) + packer.flush(zlib.Z_FULL_FLUSH)
    adler = 1
    for _ in range(rows // block):
        adler = zlib.adler32(row * block, adler)
    adler = zlib.adler32(row * (rows % block), adler)
    empty_final = b"\x03\x00"  # a final fixed-Huffman block holding nothing
    body = segment * (rows // block) + (tail if rows % block else b"")
    return b"\x78\xda" + body + empty_final + struct.pack(">I", adler)


def big_png(width: int, height: int, mode: str = "RGBA", transparent: bool = False) -> bytes:
    """A real width×height PNG of paper-grey pixels, built row by row (L, RGB, RGBA or P)."""
    colour_type, channels = {"L": (0, 1), "RGB": (2, 3), "RGBA": (6, 4), "P": (3, 1)}[mode]
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    chunks = [_chunk(b"IHDR", header)]
    if mode == "P":
        chunks.append(_chunk(b"PLTE", bytes(range(256)) * 3))
        if transparent:
            chunks.append(_chunk(b"tRNS", b"\x00"))  # index 0 is transparent
    row = b"\x00" + bytes([230]) * (width * channels)  # filter type 0, then the pixels
    chunks.append(_chunk(b"IDAT", _repeated_zlib(row, height)))
    chunks.append(_chunk(b"IEND", b""))
    return PNG_SIGNATURE + b"".join(chunks)


def palette_transparent(side: int) -> bytes:
    """A palette PNG with a transparent index (the 80 KB, 6300×6300 case of the issue)."""
    return big_png(side, side, "P", transparent=True)


def float_tiff(side: int, value: float | None = None) -> bytes:
    """A 32-bit float TIFF (all `value` when given, NaN for instance)."""
    pixels = texture(side, side).astype(np.float32) / 255.0
    if value is not None:
        pixels[:] = value
    return encode(Image.fromarray(pixels, "F"), "TIFF", compression="tiff_adobe_deflate")


def ico_wrapping(png: bytes) -> bytes:
    """An ICO file whose single entry is `png` (Pillow's ICO reader decodes it on open)."""
    entry_offset = 6 + 16
    header = b"\0\0\1\0\1\0"
    entry = bytes([0, 0, 0, 0]) + (1).to_bytes(2, "little") + (32).to_bytes(2, "little")
    entry += len(png).to_bytes(4, "little") + entry_offset.to_bytes(4, "little")
    return header + entry + png


def ico_bomb(side: int) -> bytes:
    """The issue's ICO: a side×side RGBA PNG (13300: 700 KB that decode to 700 MB) inside."""
    return ico_wrapping(big_png(side, side, "RGBA"))
