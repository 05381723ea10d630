"""Seeded mutations of PNG, JPEG and GIF bytes, for fuzzing the preprocessing and the HTTP API.

Every mutant is a pure function of (seed image, seed number), so a failing input is rebuilt from
its number alone. Mutations are those that break real decoders: bit flips, interesting byte
values, truncation, repeated or deleted spans, splices of two files, and header fields rewritten
(PNG and GIF dimensions, so that a few bytes declare an enormous image).
"""

from __future__ import annotations

import io
import random
import struct
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence

from PIL import Image

INTERESTING = (0x00, 0x01, 0x7F, 0x80, 0xFF)
HUGE_SIDES = (0, 1, 30000, 40000, 65535, 0x7FFFFFFF, 0xFFFFFFFF)

Mutation = Callable[[bytes, random.Random, Sequence[bytes]], bytes]


def flip_bits(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    """Flip 1–8 random bits."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 8)):
        pos = rng.randrange(len(out))
        out[pos] ^= 1 << rng.randrange(8)
    return bytes(out)


def set_bytes(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    """Overwrite 1–4 bytes with boundary values."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        out[rng.randrange(len(out))] = rng.choice(INTERESTING)
    return bytes(out)


def truncate(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    """Cut the file anywhere (often inside the header or the first chunk)."""
    return data[: rng.randrange(len(data))]


def repeat_span(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    """Insert a copy of a random span (up to 256 bytes) elsewhere."""
    start = rng.randrange(len(data))
    span = data[start : start + rng.randint(1, 256)]
    at = rng.randrange(len(data) + 1)
    return data[:at] + span * rng.randint(1, 4) + data[at:]


def delete_span(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    """Remove a random span (up to 256 bytes)."""
    start = rng.randrange(len(data))
    return data[:start] + data[start + rng.randint(1, 256) :]


def splice(data: bytes, rng: random.Random, others: Sequence[bytes]) -> bytes:
    """The head of this file followed by the tail of another."""
    other = rng.choice(others)
    return data[: rng.randrange(len(data) + 1)] + other[rng.randrange(len(other) + 1) :]


def png_with_size(data: bytes, width: int, height: int) -> bytes:
    """A PNG whose IHDR declares width×height (CRC fixed, so decoders believe it)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n") or data[12:16] != b"IHDR":
        return data
    ihdr = struct.pack(">II", width, height) + data[24:29]
    crc = struct.pack(">I", zlib.crc32(b"IHDR" + ihdr) & 0xFFFFFFFF)
    return data[:16] + ihdr + crc + data[33:]


def gif_with_size(data: bytes, width: int, height: int) -> bytes:
    """A GIF whose logical screen declares width×height (16-bit fields, clamped)."""
    if not data.startswith((b"GIF87a", b"GIF89a")):
        return data
    return data[:6] + struct.pack("<HH", width & 0xFFFF, height & 0xFFFF) + data[10:]


def resize_header(data: bytes, rng: random.Random, _: Sequence[bytes]) -> bytes:
    """Rewrite the declared dimensions (PNG IHDR, GIF screen) to absurd values."""
    width, height = rng.choice(HUGE_SIDES), rng.choice(HUGE_SIDES)
    if data.startswith(b"\x89PNG"):
        return png_with_size(data, width, height)
    if data.startswith(b"GIF"):
        return gif_with_size(data, width, height)
    return flip_bits(data, rng, ())


MUTATIONS: tuple[Mutation, ...] = (
    flip_bits,
    set_bytes,
    truncate,
    repeat_span,
    delete_span,
    splice,
    resize_header,
)


def mutate(data: bytes, number: int, seeds: Sequence[bytes]) -> tuple[str, bytes]:
    """The `number`-th mutant of `data`: 1–3 stacked mutations; returns (their names, bytes)."""
    rng = random.Random(number)
    names, out = [], data
    for _ in range(rng.randint(1, 3)):
        if not out:
            break
        mutation = rng.choice(MUTATIONS)
        names.append(mutation.__name__)
        out = mutation(out, rng, seeds)
    return "+".join(names), out


def mutants(seeds: Sequence[bytes], count: int, start: int = 0) -> Iterator[tuple[int, str, bytes]]:
    """`count` mutants cycling over the seed files: (number, mutation names, bytes)."""
    for number in range(start, start + count):
        name, data = mutate(seeds[number % len(seeds)], number, seeds)
        yield number, name, data


def seed_files(digit_inputs: Mapping[str, bytes]) -> list[bytes]:
    """Seed files for mutation: the perf benchmark's three inputs plus a GIF and a small JPEG."""
    small = Image.open(io.BytesIO(digit_inputs["mnist_png"])).convert("L")
    extra = []
    for fmt, options in (("GIF", {}), ("JPEG", {"quality": 85})):
        buffer = io.BytesIO()
        small.resize((64, 64)).save(buffer, format=fmt, **options)
        extra.append(buffer.getvalue())
    return [
        digit_inputs["mnist_png"],
        digit_inputs["canvas_png"],
        *extra,
        digit_inputs["phone_jpeg"],
    ]
