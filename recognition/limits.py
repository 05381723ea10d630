"""Size limits on an uploaded image: defined here once, derived everywhere else.

The handler refuses larger images with a 413; the web UI's upload limit defaults to the same
value; TorchServe's `max_request_size` and the web UI's request-body limit are computed from it
(`max_request_bytes`) when their configuration is rendered.
"""

from __future__ import annotations

MIB = 1024 * 1024
MAX_IMAGE_BYTES = 20 * MIB  # largest encoded image accepted: a 50 MP phone JPEG is 10–20 MB
# Largest image a header may declare (Pillow's own MAX_IMAGE_PIXELS is set to it): a 50 MP phone
# JPEG (8160×6120) must pass, since it is decoded at 1/8 scale; other formats are bounded tighter
# by the decode budget below.
MAX_PIXELS = 64_000_000
# The decode budget: working memory, in bytes, of the pixels actually decoded (a JPEG at its
# draft scale), counted per pixel by mode with what the pipeline adds (alpha, palette, floats).
# Measured (benchmarks/perf_decode.py, docs/robustness.md): ~0.3 s CPU and ~100 MiB at most.
MAX_DECODE_BYTES = 96 * MIB
# The formats an upload may be in; Pillow runs no other plugin (MPO, what phones write, is JPEG).
IMAGE_FORMATS = ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF", "AVIF")
MAX_ASPECT = 20.0  # longest/shortest side beyond which an image cannot be a digit
MAX_DIGITS = 20  # most digits read in one image (one line of them): more is a 422

# Allowance on top of the image for the request envelope: base64 in a JSON data URL inflates an
# image by 4/3, and multipart adds a few hundred bytes of headers.
ENVELOPE_FACTOR = 4 / 3
ENVELOPE_BYTES = 64 * 1024


def max_request_bytes(image_bytes: int = MAX_IMAGE_BYTES) -> int:
    """Largest request body that can carry an image of `image_bytes` in any accepted envelope."""
    return int(image_bytes * ENVELOPE_FACTOR) + ENVELOPE_BYTES


# Costly images: those the web UI admits only COSTLY_IN_FLIGHT at a time across all its
# processes (webui/shedding.py), the rest 503 at once, so a few clients sending them cannot fill
# TorchServe's batches and hold every other prediction behind seconds of decoding. Costly: a body
# of COSTLY_BYTES or more (a phone photo), or a header declaring COSTLY_PIXELS or more to decode
# (a JPEG counted at its 1/8 draft scale). A 1 MP PNG costs a model ~15 ms, 11 MP ~155 ms.
COSTLY_BYTES = 1_000_000  # the front door's large-upload rule (7 digits) is the same
COSTLY_PIXELS = 1_000_000
JPEG_DRAFT_AREA = 64  # a large JPEG decodes at 1/8 of each side
COSTLY_IN_FLIGHT = 1
