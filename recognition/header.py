"""An image's declared size read from its first bytes, without decoding it (and without Pillow).

The web UI uses it to tell a costly image (many pixels to decode) from a cheap one before any
model sees it (webui/shedding.py): a 40 KB PNG may declare 11 megapixels. Only the header is
read; an unreadable or unknown header gives None (the handler's decode budget still applies).
"""

from __future__ import annotations

import struct
from collections.abc import Callable

# JPEG markers that start a frame (SOF0–SOF15 but DHT, JPG and DAC) and carry its size.
JPEG_FRAMES = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
JPEG_STANDALONE = frozenset(range(0xD0, 0xDA)) | {0x01}  # RSTn, SOI, EOI, TEM: no length
TIFF_WIDTH, TIFF_HEIGHT = 256, 257  # ImageWidth, ImageLength tags


def _png(data: bytes) -> tuple[int, int] | None:
    if data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR" and len(data) >= 24:
        return struct.unpack(">II", data[16:24])
    return None


def _gif(data: bytes) -> tuple[int, int] | None:
    if data[:6] in {b"GIF87a", b"GIF89a"} and len(data) >= 10:
        return struct.unpack("<HH", data[6:10])
    return None


def _bmp(data: bytes) -> tuple[int, int] | None:
    if data[:2] == b"BM" and len(data) >= 26:
        (header,) = struct.unpack("<I", data[14:18])
        if header == 12:  # OS/2 core header: 16-bit sides
            return struct.unpack("<HH", data[18:22])
        width, height = struct.unpack("<ii", data[18:26])
        return abs(width), abs(height)
    return None


def _webp(data: bytes) -> tuple[int, int] | None:
    if data[:4] != b"RIFF" or data[8:12] != b"WEBP" or len(data) < 30:
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        return width, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8L":
        (bits,) = struct.unpack("<I", data[21:25])
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    return None


def _jpeg(data: bytes) -> tuple[int, int] | None:
    if data[:2] != b"\xff\xd8":
        return None
    at = 2
    while at + 9 <= len(data):
        if data[at] != 0xFF:
            return None
        marker = data[at + 1]
        if marker == 0xFF:  # fill byte
            at += 1
            continue
        if marker in JPEG_STANDALONE:
            at += 2
            continue
        if marker in JPEG_FRAMES:
            height, width = struct.unpack(">HH", data[at + 5 : at + 9])
            return width, height
        (length,) = struct.unpack(">H", data[at + 2 : at + 4])
        at += 2 + length
    return None


def _tiff(data: bytes) -> tuple[int, int] | None:
    order = {b"II*\x00": "<", b"MM\x00*": ">"}.get(data[:4])
    if order is None or len(data) < 8:
        return None
    (offset,) = struct.unpack(order + "I", data[4:8])
    if offset + 2 > len(data):
        return None
    (count,) = struct.unpack(order + "H", data[offset : offset + 2])
    sides: dict[int, int] = {}
    for entry in range(offset + 2, min(offset + 2 + 12 * count, len(data) - 11), 12):
        tag, kind = struct.unpack(order + "HH", data[entry : entry + 4])
        if tag in {TIFF_WIDTH, TIFF_HEIGHT}:
            value = data[entry + 8 : entry + 12]
            short = kind == 3  # SHORT, else LONG
            sides[tag] = struct.unpack(order + ("H" if short else "I"), value[: 2 if short else 4])[
                0
            ]
    if len(sides) == 2:
        return sides[TIFF_WIDTH], sides[TIFF_HEIGHT]
    return None


READERS: dict[str, Callable[[bytes], tuple[int, int] | None]] = {
    "PNG": _png,
    "GIF": _gif,
    "BMP": _bmp,
    "WEBP": _webp,
    "JPEG": _jpeg,
    "TIFF": _tiff,
}
HEAD_BYTES = 64 * 1024  # how far into the file a header is looked for (JPEG: EXIF comes first)


def declared_size(data: bytes) -> tuple[str, int, int] | None:
    """(format, width, height) the image's header declares, or None when it cannot be read."""
    head = bytes(data[:HEAD_BYTES])
    for name, read in READERS.items():
        try:
            size = read(head)
        except struct.error:
            return None
        if size is not None:
            return name, *size
    return None
