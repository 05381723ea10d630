"""Cost of decoding the worst image of each accepted format: time and peak RSS growth.

Each case is encoded here, written to a temporary file and decoded by `decode_image` in a fresh
subprocess, which reports the growth of its peak RSS (VmHWM) over what it held before
decoding, the wall time and the CPU time (all threads). docs/robustness.md ("Decode
budget") quotes the numbers.

    python -m benchmarks.perf_decode [--case NAME ...]
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from evalsets.hostile import encode, float_tiff, ico_bomb, palette_transparent, texture

log = logging.getLogger(__name__)

# The peak comes from /proc's VmHWM, not ru_maxrss: Linux carries ru_maxrss over an exec, so a
# child would report its parent's peak.
CHILD = """
import json, sys, time
from recognition.preprocessing import ImageError, decode_image
def peak_kib():
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
data = open(sys.argv[1], "rb").read()
before = peak_kib()
start, cpu = time.perf_counter(), time.process_time()
try:
    decode_image(data)
    status = 200
except ImageError as exc:
    status = exc.status
seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
growth = (peak_kib() - before) / 1024
print(json.dumps({"status": status, "seconds": seconds, "cpu": cpu, "rss_mib": growth}))
"""


def cases() -> dict[str, Callable[[], bytes]]:
    """Name → maker of each measured input (the largest of its kind the budget lets through,
    and the hostile ones of the issue)."""
    rgb = lambda w, h: Image.fromarray(texture(w, h, 3))  # noqa: E731
    grey = lambda w, h: Image.fromarray(texture(w, h))  # noqa: E731
    rgba = lambda w, h: Image.fromarray(texture(w, h, 4), "RGBA")  # noqa: E731
    return {
        "ico 13300x13300 RGBA PNG": lambda: ico_bomb(13300),
        "png palette+transparency 6300x6300": lambda: palette_transparent(6300),
        "png palette+transparency 1900x1900": lambda: palette_transparent(1900),
        "png RGBA 1850x1850": lambda: encode(rgba(1850, 1850), "PNG"),
        "png L 5000x5000": lambda: encode(grey(5000, 5000), "PNG"),
        "png RGB 3300x3300": lambda: encode(rgb(3300, 3300), "PNG"),
        "png palette 2700x2700": lambda: encode(rgb(2700, 2700).convert("P"), "PNG"),
        "gif colour 2700x2700": lambda: encode(rgb(2700, 2700).convert("P"), "GIF"),
        "png I;16 2100x2100": lambda: encode(
            Image.fromarray(texture(2100, 2100).astype(np.uint16) * 257), "PNG"
        ),
        "tiff F 2100x2100": lambda: float_tiff(2100),
        "tiff RGB 3300x3300": lambda: encode(rgb(3300, 3300), "TIFF", compression="tiff_lzw"),
        "bmp RGB 1800x1800": lambda: encode(rgb(1800, 1800), "BMP"),
        "gif 5000x5000": lambda: encode(grey(5000, 5000).convert("P"), "GIF"),
        "webp RGB 2300x2300": lambda: encode(rgb(2300, 2300), "WEBP", quality=80),
        "webp RGBA 1600x1600": lambda: encode(rgba(1600, 1600), "WEBP", quality=80),
        "avif RGB 2300x2300": lambda: encode(rgb(2300, 2300), "AVIF", quality=60),
        "jpeg RGB 6000x4000": lambda: encode(rgb(6000, 4000), "JPEG", quality=90),
        "jpeg RGB 8160x6120": lambda: encode(rgb(8160, 6120), "JPEG", quality=90),
        "jpeg RGB 8160x6120 progressive": lambda: encode(
            rgb(8160, 6120), "JPEG", quality=90, progressive=True
        ),
        "jpeg RGB 6000x4000 progressive": lambda: encode(
            rgb(6000, 4000), "JPEG", quality=90, progressive=True
        ),
    }


def measure(data: bytes) -> dict[str, float]:
    """Decode `data` in a fresh interpreter: status, seconds and peak RSS growth (MiB)."""
    with tempfile.NamedTemporaryFile(suffix=".img") as handle:
        handle.write(data)
        handle.flush()
        run = subprocess.run(
            [sys.executable, "-c", CHILD, handle.name],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parents[1],
        )
    return json.loads(run.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> None:
    """Measure the chosen (default: all) cases and log one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--case", action="append", help="measure only these cases")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for name, make in cases().items():
        if args.case and name not in args.case:
            continue
        data = make()
        result = measure(data)
        log.info(
            "%-36s %8.0f KB  status %d  %6.3f s wall %6.3f s CPU  %7.1f MiB",
            name,
            len(data) / 1024,
            result["status"],
            result["seconds"],
            result["cpu"],
            result["rss_mib"],
        )


if __name__ == "__main__":
    main()
