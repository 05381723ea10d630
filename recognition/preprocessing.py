"""Turn any image of a handwritten digit into the 28×28 input the models were trained on.

Small pure functions, shared by the TorchServe handler, training and the tests:

    bytes ─decode_image→ grey [0,1] ─isolate_paper→ the sheet alone, when it is only part of
          the frame ─analyse_lighting→ polarity, paper brightness
          ─ink_and_noise→ ink bright on 0, noise ─remove_rulings→ ink without paper lines
          ─ink_mask→ ink pixels ─select_digit→ the digit's pixels ─normalize_stroke→ crop
          ─fit_and_center→ 28×28 [0,1] ─normalize→ model input

`preprocess(data)` runs the whole chain. Every rejection raises `ImageError`, which carries the
HTTP status a server should answer with. docs/robustness.md explains each step with numbers.
"""

from __future__ import annotations

import io
import math
import struct
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, NamedTuple, TypeVar

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from recognition.constants import FIT_SIZE, IMAGE_SIZE, MNIST_MEAN, MNIST_STD
from recognition.limits import (
    IMAGE_FORMATS,
    MAX_ASPECT,
    MAX_DECODE_BYTES,
    MAX_IMAGE_BYTES,
    MAX_PIXELS,
    MIB,
)

Levels = TypeVar("Levels")  # np.ndarray or torch.Tensor: anything with - and / by a float
Located = TypeVar("Located")  # what a reader finds in the ink: one digit, a line of them

# ---------------------------------------------------------------------------------------------
# Tunables: every threshold of the ink finder, in one place (docs/robustness.md has the numbers
# behind them). Sizes are in pixels, shares are of an image side unless stated otherwise.
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Decoding:
    """How an input is decoded and how large it is analysed."""

    work_size: int = 512  # longer side an input is reduced to before analysis
    opaque_alpha: float = 0.98  # alpha above this everywhere: the image is opaque, alpha ignored
    dark_ink_level: float = 0.5  # opaque pixels darker than this on average: composite on white
    small_image: int = 160  # images no larger than this are scans or exports, never photos
    # Working bytes per decoded pixel, by mode, that decode_image holds at its peak (the decoded
    # image plus the conversions it makes): peak RSS growth measured at the budget's edge, less
    # ~6 MiB of fixed overhead (benchmarks/perf_decode.py; docs/robustness.md, "Decode budget")
    grey_bytes: int = 4  # 8-bit grey: the image, its array, the shrink (L PNG: 3.9 measured)
    colour_bytes: int = 9  # colour, bilevel, CMYK: + the RGB/L conversions (RGB PNG: 8.7)
    palette_bytes: int = 13  # palette without transparency: + its RGB expansion (P PNG: 12.7)
    wide_bytes: int = 21  # 16-bit, 32-bit and float: + float32 arrays (F TIFF: 20.9, I;16: 16.4)
    alpha_bytes: int = 28  # with transparency: + float alpha and compositing (RGBA PNG: 26.3)
    codec_bytes: int = 8  # + what WebP's and AVIF's decoders hold themselves (WebP RGB: +8)
    orient_bytes: int = 4  # + the rotated copy an EXIF orientation makes (4 bytes a pixel)
    coefficient_bytes: int = 2  # a progressive JPEG buffers every DCT coefficient, 16 bits each


@dataclass(frozen=True)
class LightingTunables:
    """Polarity and the paper's brightness: sampling, closings and the even-light tests."""

    sample_pixels: int = 16_384  # pixels subsampled for image statistics
    even_side: int = 200  # images no larger than this (scans, form boxes, crops) are evenly lit
    polarity_pixels: int = 4096  # pixels subsampled for the histogram skew that sets polarity
    weak_skew: float = 0.5  # a skew weaker than this (ink ~40–60 % of the pixels) says nothing…
    border_majority: float = 0.6  # …then this share of the border on one side is background
    small_side: int = 128  # shorter side of the copy that lighting is analysed on
    flat_percentiles: tuple[int, int, int] = (2, 50, 98)  # low, typical, high closed-paper level
    flat_spread: float = 0.08  # closed paper spread (2–98 %) under this share of its level: even
    min_level: float = 1e-3  # floor of a paper level, so that nothing divides by zero
    local_window: int = 8  # local-majority window of a photo: the small copy's side over this
    at_level: float = 0.05  # a pixel within this share of the paper level is paper
    paper_majority: float = 0.6  # share of paper pixels that makes paper even despite fat strokes
    border_dark: float = 0.92  # a closed pixel under this share of the level stayed dark
    border_dark_share: float = 0.02  # more of the border than this dark: a desk, shadow, vignette
    paper_percentile: int = 98  # a small image's paper level: this percentile in paper polarity
    narrow_closing: int = 6  # closing that fills strokes: the small copy's side over this
    follow_closing: int = 10  # closing of the lighting map: the small copy's side over this
    bright_scene: float = 0.5  # a photo whose median is at least this: dark ink on paper…
    paper_border: float = 0.85  # …or whose border is this much brighter than its mean (paper
    # to the frame's edge, ink in the middle: a tight crop of a fat marker digit)
    sharp_closing: float = 0.08  # full-resolution closing window, share of the shorter side
    fat_depth: float = 0.5  # what the narrow closing filled at least this share as deep as its
    fat_margin: float = 1.5  # …deepest is a stroke; both closings span this times the widest…
    fat_contact: float = 1.0  # …unless it runs along the border, touching it this many widths
    wide_closing: int = 3  # the closing for strokes wider than the narrow one: side over this…
    wide_depth: float = 0.7  # …where what it filled at least this share as deep counts
    crop_side: int = 400  # an image up to this size (a crop) mapped as a photo is checked…
    hollow_share: float = 0.4  # …whether its map kept less than this share of the ink found
    # under even light…
    hollow_depth: float = 0.8  # …where that ink darkens the paper at the median at least this
    # share of its darkest and its edges are sharp…
    hollow_edge: float = 4.0  # …(`edge_band` of the darkest crossed within this many pixels;
    # a shadow's soft edge is wider): then the map took fat strokes for shadow
    edge_band: tuple[float, float] = (0.25, 0.75)  # an edge's levels, shares of the darkest
    hollow_extent: float = 0.4  # and only if the map kept no stroke this long (a share of the
    # longest under even light): slivers, not a digit under a deep hard shadow


@dataclass(frozen=True)
class Ink:
    """Ink against noise: the noise estimate, the desk cut-off and the hysteresis thresholds."""

    noise_side: int = 128  # noise is measured on a subsample about this many pixels short side
    mad_to_sigma: float = 1.4826  # median absolute deviation → σ of a normal distribution
    min_noise_samples: int = 16  # fewer brighter-than-paper samples: no noise measured (σ = 0)…
    paper_tail: tuple[int, int] = (5, 15)  # …but under a map, these percentiles of the darkening…
    tail_sigmas: float = 0.61  # …are this many σ apart (a normal's 5th and 15th)
    desk_level: float = 0.15  # "paper" under this share of the brightest is no paper (a desk)
    desk_percentile: int = 95  # "the brightest" paper level, robust to glare
    blank_range: float = 0.04  # grey levels spanning less than this: a blank image
    cell_side: int = 64  # an image no larger than this a side is one digit's cell…
    cell_range: float = 0.5  # …and its levels are stretched when they span less than this
    min_ink: float = 0.04  # darkest ink weaker than this: no visible ink…
    visible_sigmas: float = 6.0  # …or weaker than this many σ
    weak_sigmas: float = 4.0  # weak threshold: this many σ…
    weak_share: float = 0.1  # …but at least this share of the darkest ink…
    weak_floor: float = 0.02  # …and at least this…
    weak_cap: float = 0.5  # …and at most this share of the darkest ink
    strong_over_weak: float = 2.0  # strong threshold: this many times the weak one…
    strong_share: float = 0.35  # …but at least this share of the darkest ink…
    strong_cap: float = 0.8  # …and at most this share of it


@dataclass(frozen=True)
class Rulings:
    """Lines of ruled and squared paper, and a sheet's edge: what makes a line, how it fades."""

    max_tilt: float = 10.0  # degrees of tilt searched either way
    angle_side: int = 96  # the tilt is searched on a copy with about this shorter side
    thin_opening: int = 3  # structures at least this wide (a fat digit) do not steer the tilt
    coarse_step: float = 2.5  # degrees between the tilts tried first…
    coarse_overshoot: float = 0.1  # (past the last one, so that max_tilt itself is tried)
    fine_step: float = 1.0  # …then refined by this
    edge_margin: float = 0.03  # a line this near (share of the size) the frame's edge runs off
    run: float = 0.125  # straight run (share of the side) that makes a line a ruling candidate
    span: float = 0.5  # shortest ruling, as a share of the image side
    thickness: float = 0.02  # thickest ruling, as a share of the shorter side…
    min_thickness: float = 5.0  # …but at least this many pixels
    bridge: float = 0.25  # gaps (a fat digit cutting its line) up to this share are bridged
    family: int = 3  # parallel lines that make ruled paper (a digit has at most two)
    threshold_sigmas: float = 3.0  # line pixels are this many σ above the noise…
    threshold_floor: float = 0.03  # …and at least this strong
    pen_over_line: float = 2.5  # ink this many times a family's strength is a pen stroke: kept
    fade: float = 1.4  # along a line, ink loses this many times its family's strength


@dataclass(frozen=True)
class Selection:
    """Which connected components make the digit."""

    clutter_span: float = 0.4  # a border blob longer than this share of a side is clutter…
    clutter_elongation: int = 4  # …and so is one this many times longer than wide…
    crop_clutter: float = 3.0  # …unless, in a crop, it outweighs all within this many times
    candidate_share: float = 0.02  # blobs lighter than this share of the heaviest: specks
    photo_inside_share: float = 0.05  # an inner blob this heavy (share) beats border blobs…
    scan_inside_share: float = 0.15  # …and this heavy outside a photo
    piece_share: float = 0.04  # a piece joins the digit if at least this share of its weight…
    min_extent: float = 0.12  # …at least this share of its size…
    reach_share: float = 0.35  # …and no farther than this share of its size…
    min_reach: int = 2  # …or this many pixels


@dataclass(frozen=True)
class Framing:
    """Cropping the digit and shaping it like MNIST."""

    margin_divisor: int = 100  # margin kept around the digit: the shorter side over this
    stroke_percentile: int = 90  # ink is scaled so this percentile of the strokes reaches 1
    min_stroke_level: float = 1e-6  # floor of that level, so that nothing divides by zero
    min_stroke: float = 1.6  # thinner strokes (output pixels) than this are thickened…
    target_stroke: float = 2.2  # …to about this, MNIST's typical stroke width
    crop_level: float = 0.05  # the crop holds the pixels above this share of the strongest ink
    cubic_gain: float = 2.0  # digits enlarged at least this much (tiny cells): cubic, not linear


@dataclass(frozen=True)
class PaperTunables:
    """A sheet, card or pasted patch that is only part of the frame, on a darker surround."""

    closing: float = 0.03  # closing that lifts the ink off the paper: share of the shorter side
    min_closing: int = 5  # …but at least this many pixels
    median: int = 5  # median filter against grain and JPEG noise before the split
    contrast: float = 0.06  # paper at least this much brighter (levels in [0, 1]) than around it
    surround_percentile: int = 25  # the surround's level, of what lies below Otsu's split
    edge_side: int = 192  # a sheet's edges are looked for on a copy this short a side…
    edge_low: int = 20  # …with Canny's thresholds on its closed 8-bit levels…
    edge_high: int = 60
    corner_tolerance: float = 0.03  # …simplified to corners within this share of the outline
    edge_contrast: float = 0.035  # a sheet found by its edges is at least this much brighter…
    ringed_by_ink: float = 0.5  # …and no more of its rim than this is ink (a loop of a digit)
    min_share: float = 0.005  # paper covering less of the frame than this is not looked for…
    max_share: float = 0.7  # …nor more than this: the paper is the frame, the usual case
    rectangular: float = 0.85  # its area over that of its smallest enclosing rectangle
    solid: float = 0.95  # its area over that of its convex hull
    max_aspect: float = 3.0  # its longer side over its shorter (a bright stroke is no card)
    min_ink: float = 0.002  # share of the paper that must be darker than the surround (ink)…
    max_ink: float = 0.4  # …and at most this share (a bright "0" on black is not a sheet)
    thin_ink: float = 0.12  # the ink's mean stroke width, as a share of the paper's shorter side
    inset: float = 0.04  # the paper's edge and shadow: this share of its size is dropped
    edge_band: float = 0.02  # bands either side of the paper's outline: share of the shorter side
    flat_level: float = 3 / 255  # a fill around a pasted patch: levels this close to the border's…
    flat_border: float = 0.5  # …on at least this share of the border…
    flat_outside: float = 0.97  # …and of everything outside the patch's box, which the rest fills…
    flat_fill: float = 0.8  # …at least this share of…
    flat_marks: float = 0.0005  # …and marks on at least this share of its core, at most outside
    flat_inset: float = 0.01  # the patch's edge (JPEG ringing): this share of its side, + 2 px
    flat_grain: float = 1 / 255  # a photo's grain: levels spread over 3×3 pixels by this much
    fill_reach: float = 0.5  # a sheet's surround: the mean paper within this share of its side…
    fill_lift: int = 5  # …after a dilation over this many pixels lifts the ink off it


@dataclass(frozen=True)
class Zooming:
    """A second, closer look at a digit that is small in a large photo: decoded again at a finer
    scale, cut to a region around what the first look found."""

    max_share: float = 0.3  # digit boxes longer than this share of the work image: no zoom
    min_source: int = 2048  # sources shorter than this on their longer side: no zoom…
    min_gain: float = 2.0  # …nor when the region would come out less than this much larger
    margin: float = 0.25  # the region: the digit's box grown by this share of its longer side


@dataclass(frozen=True)
class Tunables:
    """All the thresholds of `preprocess`, by step."""

    decoding: Decoding = Decoding()
    zooming: Zooming = Zooming()
    paper: PaperTunables = PaperTunables()
    lighting: LightingTunables = LightingTunables()
    ink: Ink = Ink()
    rulings: Rulings = Rulings()
    selection: Selection = Selection()
    framing: Framing = Framing()


TUNABLES = Tunables()
DECODE, ZOOM, PAPER, LIGHT, INK, RULE, PICK, FRAME = (
    TUNABLES.decoding,
    TUNABLES.zooming,
    TUNABLES.paper,
    TUNABLES.lighting,
    TUNABLES.ink,
    TUNABLES.rulings,
    TUNABLES.selection,
    TUNABLES.framing,
)
MAX_8BIT, MAX_16BIT = 255, 65535  # top levels of 8- and 16-bit images


class ImageError(ValueError):
    """An input that cannot be turned into a digit; `status` is the HTTP code to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Box:
    """Half-open pixel box: rows top..bottom, columns left..right."""

    top: int
    left: int
    bottom: int
    right: int

    @property
    def height(self) -> int:
        return self.bottom - self.top

    @property
    def width(self) -> int:
        return self.right - self.left

    @property
    def slices(self) -> tuple[slice, slice]:
        """The box as an index of an image: rows, then columns."""
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def shifted(self, top: int, left: int) -> Box:
        """The same box counted from `top` rows and `left` columns further out."""
        return Box(self.top + top, self.left + left, self.bottom + top, self.right + left)

    def grown(self, by: int) -> Box:
        """The box with `by` pixels more (fewer, when negative) on every side."""
        return Box(self.top - by, self.left - by, self.bottom + by, self.right + by)

    def mask(self, shape: tuple[int, ...]) -> np.ndarray:
        """A boolean image of `shape` set inside the box (clipped to the image)."""
        inside = np.zeros(shape, bool)
        inside[max(self.top, 0) : max(self.bottom, 0), max(self.left, 0) : max(self.right, 0)] = (
            True
        )
        return inside


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


WIDE_MODES = frozenset({"I", "I;16", "I;16B", "I;16L", "I;16N", "F"})
ALPHA_MODES = frozenset({"RGBA", "LA", "PA", "RGBa", "La"})
JPEG_FORMATS = frozenset({"JPEG", "MPO"})  # MPO: the multi-picture JPEG phones write
CODEC_FORMATS = frozenset({"WEBP", "AVIF"})  # decoders that hold a frame of their own
ORIENTATION = 0x0112  # EXIF tag


def accepted_formats() -> str:
    """The accepted formats, for messages: "PNG, JPEG, … or AVIF"."""
    names = [{"WEBP": "WebP"}.get(name, name) for name in IMAGE_FORMATS]
    return ", ".join(names[:-1]) + " or " + names[-1]


HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"hevm", b"hevs"})
HEIF_BRANDS |= {b"mif1", b"mif2", b"msf1"}  # the generic HEIF brands (AVIF adds "avif")
FTYP_BRANDS = 16  # where an "ftyp" box's compatible brands start (size, type, major, minor)
REFUSAL_HINTS = {
    "HEIC": " (an iPhone saves JPEG with Settings > Camera > Formats > Most Compatible)"
}


def is_heif(head: bytes) -> bool:
    """Whether `head` opens an ISO-BMFF file branded HEIF (an iPhone's HEIC) and not AVIF."""
    if len(head) < FTYP_BRANDS or head[4:8] != b"ftyp":
        return False
    end = min(int.from_bytes(head[:4], "big"), len(head))
    brands = {head[8:12], *(head[i : i + 4] for i in range(FTYP_BRANDS, end - 3, 4))}
    return bool(brands & HEIF_BRANDS) and not brands & {b"avif", b"avis"}


def known_format(data: bytes) -> str | None:
    """The name of a format Pillow knows (or HEIC) but the product refuses whose magic `data`
    starts with.

    Only the plugins' signature checks run (a few bytes compared), never their decoders.
    """
    Image.init()
    head = bytes(data[:64])
    for name, (_, accept) in Image.OPEN.items():
        if name not in IMAGE_FORMATS and accept is not None and _accepts(accept, head):
            return name
    return "HEIC" if is_heif(head) else None


def _accepts(accept: Callable[[bytes], bool | str], head: bytes) -> bool:
    """Whether a plugin's signature check takes `head` (a check that fails takes nothing)."""
    try:
        return accept(head) is True
    except Exception:  # third-party checks: DIB indexes past a short input
        return False


def _open(data: bytes) -> Image.Image:
    """`Image.open` with only the accepted formats' plugins and Pillow's pixel limit as ours."""
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS  # Pillow warns above it and refuses above twice it
    failure: ImageError | None = None
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(io.BytesIO(data), formats=IMAGE_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        failure = ImageError(f"image declares more than {MAX_PIXELS:,} pixels", status=413)
    except UnidentifiedImageError:
        other = known_format(data)
        failure = (
            ImageError(
                f"{other} images are not accepted: send {accepted_formats()}"
                + REFUSAL_HINTS.get(other, ""),
                status=415,
            )
            if other
            else ImageError(f"not a readable image: send {accepted_formats()}")
        )
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as exc:
        failure = ImageError(f"not a readable image ({type(exc).__name__})")
    raise failure  # outside the except clause: the error keeps no decoder frame alive


def open_image(data: bytes) -> Image.Image:
    """Open (not yet decode) an image, rejecting empty, oversized, refused-format, bomb and
    absurd inputs."""
    if not data:
        raise ImageError("empty request: no image bytes received")
    if len(data) > MAX_IMAGE_BYTES:
        raise ImageError(f"image is larger than {MAX_IMAGE_BYTES // MIB} MB", status=413)
    img = _open(data)
    width, height = img.size
    if width <= 0 or height <= 0:
        raise ImageError(f"image has no pixels ({width}×{height})")
    if width * height > MAX_PIXELS:
        raise ImageError(
            f"image of {width}×{height} pixels exceeds the {MAX_PIXELS:,}-pixel limit", status=413
        )
    if max(width, height) / min(width, height) > MAX_ASPECT:
        raise ImageError(f"image of {width}×{height} pixels is too elongated to hold a digit")
    return img


def has_alpha(img: Image.Image) -> bool:
    """Whether decoding keeps a transparency channel (an alpha mode, or a palette with one)."""
    return img.mode in ALPHA_MODES or (img.mode == "P" and "transparency" in img.info)


def bytes_per_pixel(img: Image.Image) -> int:
    """Working bytes per pixel that decoding `img` (opened, not loaded) takes at its peak."""
    if has_alpha(img):
        cost = DECODE.alpha_bytes
    elif img.mode in WIDE_MODES:
        cost = DECODE.wide_bytes
    elif img.mode in {"L", "P"}:
        cost = DECODE.grey_bytes if img.mode == "L" else DECODE.palette_bytes
    else:
        cost = DECODE.colour_bytes
    if img.format in CODEC_FORMATS:
        cost += DECODE.codec_bytes
    if orientation(img) != 1:
        cost += DECODE.orient_bytes
    return cost


def orientation(img: Image.Image) -> int:
    """The EXIF orientation an opened image declares, read without decoding it (1: upright).

    `getexif()` would decode a PNG to look for an eXIf chunk after the pixels; only the EXIF
    met before them (JPEG, WebP, PNG before IDAT) and TIFF's own tags are read here.
    """
    if img.format == "TIFF":
        value = getattr(img, "tag_v2", {}).get(ORIENTATION, 1)
    elif "exif" in img.info:
        exif = Image.Exif()
        exif.load(img.info["exif"])
        value = exif.get(ORIENTATION, 1)
    else:
        value = 1
    return value if isinstance(value, int) else 1


def coefficient_bytes(img: Image.Image, full: tuple[int, int]) -> int:
    """Bytes libjpeg buffers for a progressive JPEG of `full` size, whatever the draft scale:
    every DCT coefficient of every component (chroma subsampled); 0 for other images."""
    layers = getattr(img, "layer", None)
    if img.format not in JPEG_FORMATS or not img.info.get("progressive") or not layers:
        return 0
    h_max = max(layer[1] for layer in layers)
    v_max = max(layer[2] for layer in layers)
    share = sum(layer[1] * layer[2] for layer in layers) / (h_max * v_max)
    return int(full[0] * full[1] * share * DECODE.coefficient_bytes)


def decoded_bytes(img: Image.Image, full: tuple[int, int] | None = None) -> int:
    """What decoding `img` at its current (for a JPEG: draft) size costs, in bytes; `full` is
    its size before the draft (the default: its current size)."""
    width, height = img.size
    return width * height * bytes_per_pixel(img) + coefficient_bytes(img, full or img.size)


def draft_jpeg(img: Image.Image, work_size: int) -> None:
    """Have a JPEG decode at the smallest DCT scale (1/2…1/8) that still covers `work_size`,
    and only its luma plane when the file is colour (YCbCr); other formats are left alone."""
    if img.format in JPEG_FORMATS:
        img.draft("L" if img.mode in {"L", "RGB"} else img.mode, (work_size, work_size))


def check_budget(img: Image.Image, full: tuple[int, int]) -> None:
    """Refuse (413) an image whose decoding would cost more than the decode budget; `full` is
    its size before a JPEG draft."""
    cost = decoded_bytes(img, full)
    if cost > MAX_DECODE_BYTES:
        width, height = full
        kind = "progressive JPEG" if coefficient_bytes(img, full) else f"{img.format} image"
        raise ImageError(
            f"{kind} of {width}×{height} pixels needs {cost / MIB:.0f} MiB to decode, over the "
            f"{MAX_DECODE_BYTES // MIB} MiB budget: send a smaller image (a baseline JPEG of up "
            f"to {MAX_PIXELS // 1_000_000} MP is decoded reduced and fits)",
            status=413,
        )


def _finite(grey: np.ndarray) -> np.ndarray:
    """`grey` itself; a float image with NaN or infinite pixels is refused (400)."""
    if not np.isfinite(grey).all():
        raise ImageError("image has pixels that are not numbers (NaN or infinity)")
    return grey


def _to_array(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey levels and alpha (or None) as float32 arrays in [0, 1]."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in WIDE_MODES:
        grey = _finite(np.asarray(img, dtype=np.float32))
        top = float(grey.max())
        scale = float(MAX_16BIT) if top > MAX_8BIT else float(MAX_8BIT) if top > 1 else 1.0
        return np.clip(grey / scale, 0.0, 1.0), None
    alpha = None
    if img.mode in ALPHA_MODES:
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0
        if alpha.min() > DECODE.opaque_alpha:
            alpha = None
    if img.mode not in {"L", "RGB"}:
        img = img.convert("RGB")  # CMYK, YCbCr, LAB, HSV, 1, RGBA…
    if img.mode == "RGB":
        img = img.convert("L")
    return np.asarray(img, dtype=np.float32) / 255.0, alpha


def flatten_alpha(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite on the background that contrasts with the opaque pixels (white under dark ink)."""
    weight = float(alpha.sum())
    ink_level = float((grey * alpha).sum() / weight) if weight > 0 else 0.0
    background = 1.0 if ink_level < DECODE.dark_ink_level else 0.0
    return grey * alpha + background * (1.0 - alpha)


Region = tuple[float, float, float, float]  # top, left, bottom, right: shares of the upright frame


def region_span(start: float, end: float, size: int) -> tuple[int, int]:
    """The pixels from `start` to `end` (shares of a side of `size` pixels): at least one."""
    first = int(start * size)
    return first, max(first + 1, round(end * size))


def cut(levels: np.ndarray, region: Region | None) -> np.ndarray:
    """The part of an upright image that `region` covers (all of it when None)."""
    if region is None:
        return levels
    height, width = levels.shape[:2]
    top, left, bottom, right = region
    rows, cols = region_span(top, bottom, height), region_span(left, right, width)
    return levels[slice(*rows), slice(*cols)]


def _decode(
    img: Image.Image, work_size: int, region: Region | None = None
) -> tuple[np.ndarray, np.ndarray | None]:
    """Load an opened image upright, cut to `region`: grey (8-bit already shrunk, or float) and
    alpha or None."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Pillow's metadata warnings are not the client's fault
        img = ImageOps.exif_transpose(img) or img
        img.load()
        if img.mode == "RGB":
            img = img.convert("L")
        if img.mode == "L":  # the common case: shrink 8-bit levels, then go to float
            levels = cut(np.asarray(img), region)
            return resize_longest(levels, work_size).astype(np.float32) / 255.0, None
        grey, alpha = _to_array(img)
        return cut(grey, region), None if alpha is None else cut(alpha, region)


def decode_image(data: bytes, work_size: int = DECODE.work_size) -> np.ndarray:
    """Decode an accepted format to upright grey float32 in [0, 1], longer side ≤ work_size.

    EXIF orientation is applied, transparency flattened, the first frame of an animation taken;
    large JPEGs are decoded at reduced scale (DCT scaling), which is both faster and smaller.
    Nothing is decoded before the image passed the decode budget.
    """
    return decode_upright(data, work_size)[0]


def upright_size(img: Image.Image) -> tuple[int, int]:
    """(width, height) of an opened image once its EXIF orientation is applied (before any
    JPEG draft, which changes `img.size`)."""
    width, height = img.size
    return (height, width) if orientation(img) in {5, 6, 7, 8} else (width, height)


def draft_region(img: Image.Image, work_size: int, share: float) -> None:
    """Have a JPEG decode at the smallest DCT scale at which a region spanning `share` of its
    longer side still covers `work_size`, luma only; other formats are left alone."""
    if img.format in JPEG_FORMATS:
        width, height = img.size
        reduce = max(1.0, share * max(width, height) / work_size)
        size = (max(1, math.ceil(width / reduce)), max(1, math.ceil(height / reduce)))
        img.draft("L" if img.mode in {"L", "RGB"} else img.mode, size)


def decode_upright(
    data: bytes, work_size: int = DECODE.work_size, region: Region | None = None
) -> tuple[np.ndarray, tuple[int, int]]:
    """`decode_image`, and the upright (width, height) of the original image it was reduced
    from: the frame that boxes found on the reduced copy are mapped back to.

    With a `region` (shares of the upright frame), only that part comes out, reduced to
    `work_size` on its longer side: a JPEG is decoded at the DCT scale that keeps the region at
    least that large, within the decode budget like any decode.
    """
    img = open_image(data)
    failure: ImageError | None = None
    try:
        full = img.size
        upright = upright_size(img)
        if region is None:
            draft_jpeg(img, work_size)
        else:
            top, left, bottom, right = region
            longest = max((bottom - top) * upright[1], (right - left) * upright[0])
            draft_region(img, work_size, longest / max(upright))
        check_budget(img, full)
        grey, alpha = _decode(img, work_size, region)
    except ImageError as exc:
        failure = ImageError(str(exc), exc.status)
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as exc:
        failure = ImageError(f"image data is corrupt or truncated ({type(exc).__name__})")
    except Image.DecompressionBombError:
        failure = ImageError(f"image declares more than {MAX_PIXELS:,} pixels", status=413)
    if failure is not None:
        raise failure  # outside the except clauses: no frame holding pixels stays alive
    if alpha is not None:
        grey = flatten_alpha(grey, alpha)
    return resize_longest(grey, work_size), upright


def resize_longest(grey: np.ndarray, limit: int) -> np.ndarray:
    """Shrink (area-averaging) so the longer side is at most `limit`; never enlarges.

    Float input stays float32; 8-bit input stays 8-bit (faster to shrink).
    """
    height, width = grey.shape
    longest = max(height, width)
    if longest <= limit:
        if grey.dtype == np.uint8:
            return np.ascontiguousarray(grey)
        return np.ascontiguousarray(grey, dtype=np.float32)
    scale = limit / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------------------------------------
# Finding the ink
# ---------------------------------------------------------------------------------------------


def _sample(img: np.ndarray, target: int = LIGHT.sample_pixels) -> np.ndarray:
    """A regular subsample of about `target` pixels, for statistics."""
    step = max(1, int(np.sqrt(img.size / target)))
    return img[::step, ::step]


def _ring(img: np.ndarray) -> np.ndarray:
    """The outermost pixels of an image."""
    return np.concatenate([img[0], img[-1], img[1:-1, 0], img[1:-1, -1]])


def _bright_border(grey: np.ndarray, mean: float | None = None) -> float:
    """Share of the image's outermost pixels brighter than `mean` (by default the mean of the
    polarity sample)."""
    if mean is None:
        mean = float(_sample(grey, LIGHT.polarity_pixels).mean())
    return float((_ring(grey) > mean).mean())


def ink_is_dark(grey: np.ndarray) -> bool:
    """True when the ink is darker than the background (the background is the majority).

    The ink is the long tail of the histogram: its skew is negative for dark ink. Unlike
    percentiles, this holds however few pixels the ink covers. When the ink covers about as
    much as the background (a fat digit filling a tight crop or a stretched cell) the skew says
    nothing, and the background is what most of the image's border shows.
    """
    sample = _sample(grey, LIGHT.polarity_pixels).astype(np.float32)
    mean = float(sample.mean())
    centred = sample - mean
    spread = float((centred * centred).mean())
    skew = float((centred * centred * centred).mean()) / max(spread, 1e-12) ** 1.5
    if abs(skew) < LIGHT.weak_skew:
        bright_border = _bright_border(grey, mean)
        if max(bright_border, 1.0 - bright_border) >= LIGHT.border_majority:
            return bright_border >= LIGHT.border_majority
    return skew <= 0.0


def _odd(n: float) -> int:
    return max(3, int(n) | 1)


def components(mask: np.ndarray) -> tuple[int, np.ndarray, np.ndarray, np.ndarray]:
    """The 8-connected parts of a mask, as `cv2.connectedComponentsWithStats` gives them
    (count, labels, stats, centroids). Grana's algorithm, sequential: on one thread (as a
    worker runs) OpenCV's default, parallel one took twice as long for the same labels."""
    image = mask if mask.dtype == np.uint8 else mask.astype(np.uint8)
    return cv2.connectedComponentsWithStatsWithAlgorithm(image, 8, cv2.CV_32S, cv2.CCL_GRANA)


def _morph(img: np.ndarray, op: int, size: int) -> np.ndarray:
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    return cv2.morphologyEx(img, op, kernel, borderType=cv2.BORDER_REPLICATE)


def _reduce(img: np.ndarray, side: int = LIGHT.small_side) -> np.ndarray:
    """Shrink (area-averaging) so the shorter side is about `side`; never enlarges."""
    height, width = img.shape
    step = min(height, width) // side
    if step <= 1:
        return img
    size = (max(1, width // step), max(1, height // step))
    return cv2.resize(img, size, interpolation=cv2.INTER_AREA)


def _flat_level(closed: np.ndarray) -> float | None:
    """The paper level of a closed (ink-free) image when its lighting is even, else None."""
    lo, level, hi = np.percentile(closed, LIGHT.flat_percentiles)
    even = hi - lo < LIGHT.flat_spread * max(float(level), LIGHT.min_level)
    return float(level) if even else None


def _locally_dark(small: np.ndarray) -> bool:
    """True when, around most pixels, the local majority (median) is nearer the local maximum
    than the minimum: dark strokes and rulings on brighter paper, wherever the light falls."""
    size = _odd(min(small.shape) / LIGHT.local_window)
    levels = np.clip(small * 255.0, 0, 255).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (size, size))
    high = cv2.dilate(levels, kernel).astype(np.int32)
    low = cv2.erode(levels, kernel).astype(np.int32)
    median = cv2.medianBlur(levels, size).astype(np.int32)
    return int((2 * median - high - low).sum()) >= 0


@dataclass(frozen=True)
class Lighting:
    """Which way the ink goes, and the paper's brightness (a level, or a map when uneven)."""

    ink_dark: bool
    background: float | np.ndarray  # in "paper" polarity: paper bright, ink dark

    @property
    def uneven(self) -> bool:
        """Whether the paper is mapped rather than one level: uneven light, as in a photo."""
        return not isinstance(self.background, float)


def _border_share(mask: np.ndarray) -> float:
    """Share of the outermost pixels of an image that are set in `mask`."""
    return float(_ring(mask).mean())


def _even_despite_fat_strokes(paper: np.ndarray, narrow: np.ndarray) -> float | None:
    """The paper level of an export or scan whose fat strokes defeat the narrow closing.

    Even if a closing half the image wide is flat, most pixels sit at that level, and what the
    narrow closing left dark (stroke crossings) stays off the image border, unlike a desk, a
    shadow or vignetting.
    """
    level = _flat_level(_morph(paper, cv2.MORPH_CLOSE, _odd(min(paper.shape) / 2)))
    if level is None:
        return None
    if np.mean(np.abs(paper - level) < LIGHT.at_level * level) < LIGHT.paper_majority:
        return None
    if _border_share(narrow < LIGHT.border_dark * level) > LIGHT.border_dark_share:
        return None
    return level


def widest_stroke(
    paper: np.ndarray, closed: np.ndarray, depth_share: float = LIGHT.fat_depth
) -> float:
    """Width in pixels of the widest dark structure that a closing (`closed`, of `paper`)
    filled, where it filled at least `depth_share` as deep as it did anywhere. One that runs
    along the image border (touching it over more than `fat_contact` times its width: a desk,
    a shadow, a sheet's edge) is no stroke; one that crosses it (a tight crop) is."""
    depth = closed - paper
    deepest = float(depth.max())
    if deepest <= 0:
        return 0.0
    strokes = (depth >= depth_share * deepest).astype(np.uint8)
    count, labels, _, _ = components(strokes)
    distance = cv2.distanceTransform(strokes, cv2.DIST_L2, 3)
    widths = np.zeros(count, np.float32)
    np.maximum.at(widths, labels.ravel(), 2.0 * distance.ravel())
    ring = _ring(labels)
    contact = np.bincount(ring, minlength=count)
    strokes_only = (contact <= LIGHT.fat_contact * widths)[1:]
    return float(widths[1:][strokes_only].max(initial=0.0))


def analyse_lighting(grey: np.ndarray, *, scan: bool | None = None) -> Lighting:
    """Decide the ink's polarity and estimate the paper's brightness under it.

    A grey closing (max then min filter) fills every dark structure narrower than its window
    (strokes, rulings, specks) and keeps large regions such as shadows; it runs on a copy
    reduced to about 128 pixels, where strokes are already faint and noise averaged out. When
    the closed paper is even, one level is used (a flat level never hollows out fat strokes) and
    the background is the majority; otherwise (a photo with shadows, vignetting or a desk beside
    the sheet, where the majority may be dark) the map follows the light and the ink is the
    local minority. A `scan` (by default an image no larger than `even_side`: a scan, a form
    box, a crop) is never a photo: it is taken as even.
    """
    if scan is None:
        scan = max(grey.shape) <= LIGHT.even_side
    if scan:
        dark = ink_is_dark(grey)
        paper = grey if dark else 1.0 - grey
        return Lighting(dark, float(np.percentile(paper, LIGHT.paper_percentile)))
    small = _reduce(grey)
    side = min(small.shape)
    papers = {True: small, False: 1.0 - small}
    closed = {
        d: _morph(p, cv2.MORPH_CLOSE, _odd(side / LIGHT.narrow_closing)) for d, p in papers.items()
    }
    levels = {d: _flat_level(c) for d, c in closed.items()}
    if levels[True] is not None and levels[False] is not None:
        dark = ink_is_dark(grey)
    elif levels[True] is not None or levels[False] is not None:
        dark = levels[True] is not None
    else:
        dark = ink_is_dark(grey)
        level = _even_despite_fat_strokes(papers[dark], closed[dark])
        if level is not None:
            return Lighting(dark, level)
        # A photo: dark ink on paper, unless the scene is mostly dark, its border too (fat
        # strokes fill a tight crop of paper but leave its edge bright) and its thin structures
        # are bright (chalk on a board, a white pen on black card).
        dark = bool(
            np.median(small) >= LIGHT.bright_scene
            or _bright_border(grey) >= LIGHT.paper_border
            or _locally_dark(small)
        )
    level = levels[dark]
    if level is not None:
        return Lighting(dark, level)
    # strokes wider than the narrow closing (a thick marker whose loops closed up) are filled
    # by a wide one; only its deepest fills count there, not the soft rims of shadows
    wide = _morph(papers[dark], cv2.MORPH_CLOSE, _odd(side / LIGHT.wide_closing))
    widest = max(
        widest_stroke(papers[dark], closed[dark]),
        widest_stroke(papers[dark], wide, LIGHT.wide_depth),
    )
    fat = LIGHT.fat_margin * widest / side
    follow_share = max(1 / LIGHT.follow_closing, fat)
    follow = _morph(papers[dark], cv2.MORPH_CLOSE, _odd(side * follow_share))
    height, width = grey.shape
    smooth = cv2.resize(follow, (width, height), interpolation=cv2.INTER_LINEAR)
    # Enlarged, the map blurs sharp edges (a sheet's edge, a hard shadow) and would make the
    # dark side look like ink; a closing at full resolution keeps them sharp.
    levels = cv2.convertScaleAbs(grey, alpha=255.0)  # 8 bits: twice as fast, precise enough
    if not dark:
        levels = 255 - levels
    sharp_share = max(LIGHT.sharp_closing, fat)
    sharp = _morph(levels, cv2.MORPH_CLOSE, _odd(sharp_share * min(height, width)))
    return Lighting(dark, np.minimum(smooth, sharp.astype(np.float32) / 255.0))


class Noise(NamedTuple):
    """The noise (σ, a level or a map under uneven light) of an ink image, measured two ways."""

    above: float | np.ndarray  # from the paper brighter than its level (what rulings are tuned on)
    spread: float | np.ndarray  # at least the spread of the paper's least darkened pixels


def ink_and_noise(grey: np.ndarray, light: Lighting | None = None) -> tuple[np.ndarray, Noise]:
    """Ink as bright values on a zero background, and the noise level (σ) of that image.

    The image is divided by the estimated paper brightness, so ink in a shadow is as strong as
    ink in full light; where the "paper" is very dark (a desk beside the sheet) nothing counts.
    Ink only ever darkens paper, so whatever comes out brighter than the paper is noise: its
    spread measures σ without being fooled by how much of the image the digit covers. That
    underestimates σ when the paper's level is an upper envelope (its 98th percentile, a
    closing), which few pixels exceed: the spread of the least darkened pixels (`paper_tail`,
    paper being at least that share; not in small images, which a digit may fill) then
    measures it. Division amplifies the noise of dark
    regions, so under uneven light σ is a map.
    """
    light = light or analyse_lighting(grey)
    paper = (grey if light.ink_dark else 1.0 - grey).astype(np.float32)
    background = light.background
    if isinstance(background, float):
        background = max(background, LIGHT.min_level)
    else:
        background = np.maximum(background, LIGHT.min_level)
    darkening = background - paper
    step = max(1, min(paper.shape) // INK.noise_side)
    sample = darkening[::step, ::step]
    below = sample[sample < 0]
    enough = below.size >= INK.min_noise_samples
    sigma = INK.mad_to_sigma * float(np.median(-below)) if enough else 0.0
    spread = sigma
    if max(paper.shape) > DECODE.small_image:  # a scan or export's digit may fill it
        low, high = np.percentile(sample, INK.paper_tail)
        spread = max(sigma, float(high - low) / INK.tail_sigmas)
    ink = darkening / background
    if isinstance(background, float):
        return np.clip(ink, 0.0, 1.0).astype(np.float32), Noise(
            sigma / background, spread / background
        )
    brightest = float(np.percentile(_sample(background), INK.desk_percentile))
    ink[background < INK.desk_level * brightest] = 0.0
    scale = (1.0 / background).astype(np.float32)
    return np.clip(ink, 0.0, 1.0).astype(np.float32), Noise(sigma * scale, spread * scale)


def ink_mask(ink: np.ndarray, sigma: float | np.ndarray = 0.0) -> np.ndarray:
    """Pixels that are ink: weak ink connected to strong ink (hysteresis thresholds).

    The weak threshold sits well above the noise (σ, a level or a map); the strong one is
    relative to the darkest ink, so a faint pencil digit is found as readily as a black marker.
    """
    smooth = cv2.GaussianBlur(ink, (3, 3), 0)
    top = float(smooth.max())
    if top < max(INK.min_ink, INK.visible_sigmas * float(np.median(sigma))):
        raise ImageError("no digit found: the image has no visible ink", status=422)
    weak_floor = max(INK.weak_share * top, INK.weak_floor)
    low = np.minimum(np.maximum(INK.weak_sigmas * sigma, weak_floor), INK.weak_cap * top)
    strong_floor = np.maximum(INK.strong_over_weak * low, INK.strong_share * top)
    high = np.minimum(strong_floor, INK.strong_cap * top)
    weak = (smooth > low).astype(np.uint8)
    count, labels, _, _ = components(weak)
    strong = np.zeros(count, bool)
    strong[np.unique(labels[smooth > high])] = True
    strong[0] = False
    return strong[labels]


# ---------------------------------------------------------------------------------------------
# A sheet or card that is only part of the frame
# ---------------------------------------------------------------------------------------------


def _elongated(sides: tuple[float, float]) -> bool:
    """Whether a rectangle (an outline's smallest enclosing one) is longer than
    `PAPER.max_aspect` times its width: a bright stroke on black is no card."""
    return max(sides) > PAPER.max_aspect * max(min(sides), 1.0)


def _paper_contour(bright: np.ndarray) -> np.ndarray | None:
    """The outline of the largest bright region if it is shaped like a sheet: sized between
    PAPER.min_share and PAPER.max_share of the frame, a (perspective) rectangle no longer than
    `max_aspect` times its width, convex."""
    contours, _ = cv2.findContours(bright, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return None
    outline = max(contours, key=cv2.contourArea)
    area = float(cv2.contourArea(outline))
    if not PAPER.min_share <= area / bright.size <= PAPER.max_share:
        return None
    _, (width, height), _ = cv2.minAreaRect(outline)
    hull = float(cv2.contourArea(cv2.convexHull(outline)))
    if (
        _elongated((width, height))
        or area < PAPER.rectangular * width * height
        or area < PAPER.solid * hull
    ):
        return None
    return outline


def _edge_step(closed: np.ndarray, mask: np.ndarray) -> float:
    """How much brighter the paper is just inside its outline than just outside it (levels of
    `closed`): a sheet's edge is a step, the rim of a vignette or a light gradient is not."""
    band = _odd(PAPER.edge_band * min(closed.shape))
    kernel = np.ones((band, band), np.uint8)
    inner = (mask > 0) & (cv2.erode(mask, kernel, borderValue=1) == 0)
    outer = (cv2.dilate(mask, kernel) > 0) & (mask == 0)
    if not inner.any() or not outer.any():
        return 0.0
    return float(np.median(closed[inner])) - float(np.median(closed[outer]))


def _paper_and_surround(grey: np.ndarray) -> tuple[np.ndarray, np.ndarray, int]:
    """8-bit levels (median-filtered), their closing, and the Otsu level between paper and
    surround in the closing."""
    levels = cv2.medianBlur(cv2.convertScaleAbs(grey, alpha=255.0), PAPER.median)
    side = min(grey.shape)
    closed = _morph(levels, cv2.MORPH_CLOSE, _odd(max(PAPER.min_closing, PAPER.closing * side)))
    split, _ = cv2.threshold(closed, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return levels, closed, int(split)


def _holds_thin_ink(ink: np.ndarray, paper: np.ndarray, side: int) -> bool:
    """Whether the dark pixels `ink` on the `paper` mask look like writing: a small share of the
    sheet, in strokes thin beside its shorter `side`."""
    share = float(ink.sum()) / max(int(paper.sum()), 1)
    return PAPER.min_ink <= share <= PAPER.max_ink and stroke_width(ink) <= PAPER.thin_ink * side


QUADRILATERAL = 4  # corners of a sheet's outline
FILL_EPSILON = 1e-3  # a share of sheet pixels below this around a pixel: none (the median fills)


def _filled(outline: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape, np.uint8)
    cv2.drawContours(mask, [outline], -1, 1, thickness=cv2.FILLED)
    return mask


def _rise(closed: np.ndarray, inside: np.ndarray) -> tuple[float, float]:
    """The surround's closed level (median outside `inside`) and how much brighter the paper
    (`inside`) is at the median."""
    surround = float(np.median(closed[~inside]))
    return surround, float(np.median(closed[inside])) - surround


def _sheet(
    levels: np.ndarray,
    closed: np.ndarray,
    outline: np.ndarray,
    ink: np.ndarray,
    *,
    faint: np.ndarray | None = None,
    contrast: float = PAPER.contrast,
) -> tuple[np.ndarray, Box] | None:
    """The sheet inside `outline` if its edge is a step up from the surround by `contrast` and
    the `ink` pixels on it are thin writing (`find_paper`): its mask, inset from the edge, and
    box. Where `ink` leaves almost nothing on the sheet, the `faint` ink, if given, is weighed
    instead."""
    mask = _filled(outline, closed.shape)
    if _edge_step(closed, mask) < contrast * 255:
        return None
    left, top, width, height = cv2.boundingRect(outline)
    inset = _odd(PAPER.inset * min(width, height))
    mask = cv2.erode(mask, np.ones((inset, inset), np.uint8), borderValue=0)
    on_sheet = ink & (mask > 0)
    if faint is not None and on_sheet.sum() < PAPER.min_ink * mask.sum():
        on_sheet = _off_the_edge(faint & (mask > 0), mask)
    if not _holds_thin_ink(on_sheet, mask, min(width, height)):
        return None
    return mask > 0, Box(top, left, top + height, left + width)


def _off_the_edge(ink: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The strokes of `ink` that keep off the edge of the sheet `mask`: writing, not the
    rulings, margin or shadow edges that run across the sheet to its edge."""
    count, labels = cv2.connectedComponents(ink.astype(np.uint8), connectivity=8)
    edge = (mask > 0) & (cv2.erode(mask, np.ones((3, 3), np.uint8), borderValue=0) == 0)
    touching = np.zeros(count, bool)
    touching[labels[edge]] = True
    touching[0] = True
    return ~touching[labels]


def _lifted(levels: np.ndarray, closed: np.ndarray, step: float) -> np.ndarray:
    """Ink on shaded paper: what the closing lifted off it by half the paper's `step` over its
    surround (the paper's shadowed part is not ink)."""
    return closed.astype(np.int16) - levels >= step / 2


def _paper_above(
    levels: np.ndarray, closed: np.ndarray, split: float, *, shaded: bool = False
) -> tuple[np.ndarray, Box] | None:
    """The sheet (`_sheet`) that the closed levels above `split` make, if they make one. Ink is
    darker than the split, or than halfway between the paper and its surround when that is
    higher (on a uniform surround Otsu splits at the surround's own level); on `shaded` paper
    it is what the closing lifted off (`_lifted`). A pen too faint at this scale to fall
    halfway to a dark desk (a ballpoint on a card, the card a small part of a large photo)
    leaves no such ink: then, on a sheet seen whole (clear of the frame's border, not the lit
    part of a page under a shadow), what the closing lifts off the paper by `PAPER.contrast`
    and keeps off its edge is weighed."""
    bright = (closed > split).astype(np.uint8)
    if not bright.any() or bright.all():
        return None
    outline = _paper_contour(bright)  # before the medians: most frames fail here, cheaply
    if outline is None:
        return None
    surround, step = _rise(closed, bright > 0)
    if step < PAPER.contrast * 255:
        return None
    if shaded:
        return _sheet(levels, closed, outline, _lifted(levels, closed, step))
    ink = levels <= max(split, surround + step / 2)
    whole = _clear_of_frame(outline, closed.shape)
    faint = _faint_ink(levels, closed) if whole else None
    return _sheet(levels, closed, outline, ink, faint=faint)


def _clear_of_frame(outline: np.ndarray, shape: tuple[int, ...]) -> bool:
    """Whether an outline keeps off the border of a frame of `shape`: the sheet is seen whole."""
    left, top, width, height = cv2.boundingRect(outline)
    return left > 0 and top > 0 and left + width < shape[1] and top + height < shape[0]


def _faint_ink(levels: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """What the closing lifts off the levels by `PAPER.contrast`: thin dark ink, however faint
    beside the surround."""
    return _lifted(levels, closed, 2 * PAPER.contrast * 255)


def _ringed_by_ink(faint: np.ndarray, quad: np.ndarray) -> bool:
    """Whether what lies just outside `quad` is mostly `faint` ink (`_faint_ink`): a loop of
    writing (the bowl of an 8 on vignetted paper), not a card on a desk."""
    band = _odd(PAPER.edge_band * min(quad.shape))
    outer = (cv2.dilate(quad, np.ones((band, band), np.uint8)) > 0) & (quad == 0)
    return bool(outer.any() and faint[outer].mean() > PAPER.ringed_by_ink)


def _moved_out(corners: np.ndarray, by: float) -> np.ndarray:
    """A convex outline's `corners` moved `by` pixels away from its centre (inwards if < 0)."""
    points = corners.reshape(-1, 2).astype(np.float64)
    centre = points.mean(axis=0)
    reach = np.maximum(np.linalg.norm(points - centre, axis=1, keepdims=True), 1.0)
    return (centre + (points - centre) * (1 + by / reach)).reshape(-1, 1, 2)


def _paper_by_edges(levels: np.ndarray, closed: np.ndarray) -> tuple[np.ndarray, Box] | None:
    """The largest sheet (`_sheet`) that the closed image's edges outline as a convex
    quadrilateral no longer than `max_aspect` times its width: a card on a wall or desk whose
    light varies as much as the card stands out from it, so that no level splits the card from
    its surround; the outline shows it even when it stands out by only `PAPER.edge_contrast`.
    The dilated edge is a ring a pixel each side of the edge: a hole of the ring is moved a
    pixel out onto the edge, an outer outline a pixel in."""
    small = _reduce(closed, PAPER.edge_side)  # the closing left no detail finer than this
    scale = closed.shape[1] / small.shape[1]
    edges = cv2.Canny(small, PAPER.edge_low, PAPER.edge_high)
    edges = cv2.dilate(edges, np.ones((3, 3), np.uint8))
    contours, hierarchy = cv2.findContours(edges, cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    quads = []
    for contour, links in zip(contours, hierarchy[0] if contours else (), strict=True):
        tolerance = PAPER.corner_tolerance * cv2.arcLength(contour, True)
        corners = cv2.approxPolyDP(contour, tolerance, True)
        area = float(cv2.contourArea(corners))
        if (
            len(corners) == QUADRILATERAL
            and cv2.isContourConvex(corners)
            and PAPER.min_share <= area / small.size <= PAPER.max_share
        ):
            onto_edge = _moved_out(corners, 1.0 if links[3] >= 0 else -1.0)
            quad = np.round(onto_edge * scale).astype(np.int32)
            if not _elongated(cv2.minAreaRect(quad)[1]):
                quads.append((area, quad))
    if not quads:
        return None
    faint = _faint_ink(levels, closed)
    for _, corners in sorted(quads, key=lambda quad: -quad[0]):
        quad = _filled(corners, closed.shape)
        _, step = _rise(closed, quad > 0)
        if step < PAPER.edge_contrast * 255 or _ringed_by_ink(faint, quad):
            continue
        lifted = _lifted(levels, closed, step)
        found = _sheet(levels, closed, corners, lifted, contrast=PAPER.edge_contrast)
        if found is not None:
            return found
    return None


def find_paper(grey: np.ndarray) -> tuple[np.ndarray, Box] | None:
    """A sheet, card or pasted patch brighter than its surround and only part of the frame: its
    mask (the edge inset) and box, or None when the paper is the frame (the usual case).

    A closing lifts the ink off the paper; the closed image splits (Otsu) into paper and
    surround. The paper must be a bright rectangle, seen at any tilt or in perspective, with a
    sharp edge, holding thin dark structures (ink) on a small share of it: a bright digit drawn
    on black is no sheet, its shape is not a filled rectangle or its "ink" (the hole of a 0) is
    not thin. A shadow across the paper can put Otsu's split inside it, leaving only its lit
    part above: then whatever is clearly brighter than the surround is tried as the paper.
    """
    if max(grey.shape) <= DECODE.small_image:
        return None
    levels, closed, split = _paper_and_surround(grey)
    found = _paper_above(levels, closed, split)
    if found is not None:
        return found
    sample = _sample(closed)
    below = sample[sample <= split]
    if not below.size:
        return None
    clearly_brighter = float(np.percentile(below, PAPER.surround_percentile)) + PAPER.contrast * 255
    found = _paper_above(levels, closed, clearly_brighter, shaded=True)
    return found if found is not None else _paper_by_edges(levels, closed)


def _marks(grey: np.ndarray, size: int) -> np.ndarray:
    """Thin dark or bright marks: what a closing or an opening over `size` pixels lifts off
    the levels by at least `PAPER.contrast`."""
    dark = _morph(grey, cv2.MORPH_CLOSE, size) - grey >= PAPER.contrast
    return dark | (grey - _morph(grey, cv2.MORPH_OPEN, size) >= PAPER.contrast)


def _patch_on_fill(
    grey: np.ndarray, *, grain: bool = False
) -> tuple[np.ndarray, np.ndarray, Box] | None:
    """What lies off a flat border fill (`flat_surround`), its largest region and that
    region's box, if the fill holds `flat_border` of the border and the region is sized like
    a patch. With `grain`, and a fill without any (an exact one, as PNG keeps it), a photo's
    grain lies off it too: a patch whose paper is the fill's own level, a shadow across it."""
    ring = _ring(grey)
    level = float(np.median(ring))
    if np.mean(np.abs(ring - level) <= PAPER.flat_level) < PAPER.flat_border:
        return None
    off = np.abs(grey - level) > PAPER.flat_level
    if grain:
        grainy = _grain(grey, off)
        if grainy is None:
            return None
        off |= grainy
    other = cv2.morphologyEx(off.astype(np.uint8), cv2.MORPH_OPEN, np.ones((3, 3), np.uint8))
    _, labels, stats, _ = components(other)
    areas = stats[1:, cv2.CC_STAT_AREA]
    if not areas.size:
        return None
    largest = 1 + int(np.argmax(areas))
    left, top, width, height, _ = (int(v) for v in stats[largest])
    if not PAPER.min_share <= width * height / grey.size <= PAPER.max_share:
        return None
    return other > 0, labels == largest, Box(top, left, top + height, left + width)


def _grain(grey: np.ndarray, off: np.ndarray) -> np.ndarray | None:
    """Where the levels spread over 3×3 pixels by more than `PAPER.flat_grain`, if the fill
    along the border (away from `off`) spreads by less than half of it nearly everywhere;
    else None (a JPEG's fill rings, and would pass for grain)."""
    mean = cv2.blur(grey, (3, 3))
    spread = np.sqrt(np.maximum(cv2.blur(grey * grey, (3, 3)) - mean * mean, 0.0))
    fill = cv2.dilate(off.astype(np.uint8), np.ones((5, 5), np.uint8)) == 0
    band = np.zeros_like(fill)
    band[1:-1, 1:-1] = True
    band[3:-3, 3:-3] = False  # the fill's rows and columns next to the border
    fill &= band
    if not fill.any() or np.percentile(spread[fill], 99) >= PAPER.flat_grain / 2:
        return None
    return spread > PAPER.flat_grain


def flat_surround(grey: np.ndarray) -> Box | None:
    """The box of a patch pasted on a flat fill (a crop on a square of one grey, an image padded
    or letterboxed by an app), its edge inset; None when the border is not such a fill. The
    fill holds at least `flat_border` of the border and `flat_outside` of all outside the
    patch, which it fills as a rectangle (`flat_fill`); thin marks (`_marks`) lie well inside
    the patch and not outside it: a digit drawn straight on a plain canvas, or a sheet whose
    blank part is clipped white, is no patch. When no patch differs from the fill in level,
    one is looked for by its grain too (`_patch_on_fill`)."""
    if max(grey.shape) <= DECODE.small_image:
        return None
    return _patch_box(grey, _patch_on_fill(grey)) or _patch_box(
        grey, _patch_on_fill(grey, grain=True)
    )


def _patch_box(grey: np.ndarray, found: tuple[np.ndarray, np.ndarray, Box] | None) -> Box | None:
    """`flat_surround`'s tests of a patch `_patch_on_fill` found: its box, inset, or None."""
    if found is None:
        return None
    other, region, box = found
    inside = box.mask(grey.shape)
    if other[inside].mean() < PAPER.flat_fill or other[~inside].mean() > 1 - PAPER.flat_outside:
        return None
    side = min(box.height, box.width)
    inset = 2 + round(PAPER.flat_inset * side)
    near = box.grown(inset).mask(grey.shape)  # the patch, its edge and the ringing around it
    size = _odd(max(PAPER.min_closing, PAPER.closing * side))
    outline, _ = cv2.findContours(
        region.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE
    )
    core = cv2.erode(
        _filled(max(outline, key=cv2.contourArea), grey.shape), np.ones((size + 2,) * 2, np.uint8)
    )
    marks = _marks(grey, size)
    if not core.any() or marks[core > 0].mean() < PAPER.flat_marks:
        return None
    if marks[~near].mean() > PAPER.flat_marks:
        return None
    return box.grown(-inset)


def isolate_paper(grey: np.ndarray) -> tuple[np.ndarray, Box | None]:
    """The image cut to the sheet it shows, the surround painted with the paper's own level, and
    the sheet's box in `grey`; `grey` itself and None when the paper is the frame. A patch
    pasted on a flat fill (`flat_surround`) is cut out first; a sheet may then lie on it."""
    patch = flat_surround(grey)
    if patch is not None:
        crop, inner = isolate_paper(grey[patch.top : patch.bottom, patch.left : patch.right])
        return crop, patch if inner is None else inner.shifted(patch.top, patch.left)
    found = find_paper(grey)
    if found is None:
        return grey, None
    mask, box = found
    crop = np.ascontiguousarray(grey[box.slices], np.float32)
    inside = mask[box.slices]
    return np.where(inside, crop, paper_around(crop, inside)).astype(np.float32), box


def paper_around(crop: np.ndarray, inside: np.ndarray) -> np.ndarray:
    """The paper's light carried smoothly past its edge: at each pixel, the mean of the sheet
    (`inside`, its ink lifted by a small dilation) within half its shorter side. One level
    would be a flat patch that a gradient across the sheet (lit from one side) falls below,
    its darker side then read as ink."""
    paper = np.where(inside, cv2.dilate(crop, np.ones((PAPER.fill_lift,) * 2, np.uint8)), 0.0)
    size = (_odd(min(crop.shape) * PAPER.fill_reach),) * 2
    total = cv2.blur(paper.astype(np.float32), size, borderType=cv2.BORDER_CONSTANT)
    share = cv2.blur(inside.astype(np.float32), size, borderType=cv2.BORDER_CONSTANT)
    level = float(np.median(crop[inside]))
    return np.where(share > FILL_EPSILON, total / np.maximum(share, FILL_EPSILON), level)


# ---------------------------------------------------------------------------------------------
# Ruled and squared paper
# ---------------------------------------------------------------------------------------------


def ruling_angle(ink: np.ndarray, spread: float = RULE.max_tilt) -> float:
    """Tilt (degrees) that best lines up the image's near-horizontal lines with its rows.

    Rows of a rotated low-resolution copy are summed; long lines pile up into few rows, so the
    sum of squared row totals peaks at their angle (perspective makes rulings only roughly
    parallel: this is their average).
    """
    small = _reduce(ink, RULE.angle_side)
    # only thin structures count: a fat digit would pull the angle towards its own strokes
    small = small - _morph(small, cv2.MORPH_OPEN, RULE.thin_opening)
    h, w = small.shape

    def score(angle: float) -> float:
        rot = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        rows = cv2.warpAffine(small, rot, (w, h)).sum(axis=1)
        return float((rows**2).sum())

    tilts = np.arange(-spread, spread + RULE.coarse_overshoot, RULE.coarse_step)
    coarse = float(max(tilts, key=score))
    near = (coarse - RULE.fine_step, coarse, coarse + RULE.fine_step)
    fine = [a for a in near if abs(a) <= spread]
    return float(max(fine, key=score))


def _running_off(
    labels: np.ndarray, found: np.ndarray, candidates: np.ndarray, angle: float
) -> np.ndarray:
    """The labels among `candidates` whose `found` pixels reach the border of the image they
    were rotated from (`angle` degrees): within 3 % of its size of the rotated frame's edge."""
    height, width = labels.shape
    frame = np.full((height, width), 255, np.uint8)
    rot = cv2.getRotationMatrix2D((width / 2, height / 2), angle, 1.0)
    inner = cv2.warpAffine(frame, rot, (width, height), flags=cv2.INTER_NEAREST)
    margin = _odd(RULE.edge_margin * max(height, width))
    inner = cv2.erode(inner, np.ones((margin, margin), np.uint8), borderValue=0)
    outside = np.unique(labels[(inner == 0) & (found > 0)])
    return candidates[np.isin(candidates, outside)]


def _horizontal_rulings(
    levels: np.ndarray, threshold: int, lone: bool, family: bool = True
) -> np.ndarray:
    """0/1 mask of the long, thin, nearly horizontal lines of an ink image (uint8 levels):
    a family of three or more (if `family`), or any such line when `lone` lines count too."""
    height, width = levels.shape
    angle = ruling_angle(levels.astype(np.float32))
    centre = (width / 2, height / 2)
    upright = cv2.warpAffine(levels, cv2.getRotationMatrix2D(centre, angle, 1.0), (width, height))
    # a little vertical slack absorbs what perspective leaves of the tilt
    slack = cv2.dilate(upright, np.ones((3, 1), np.uint8))
    runs = cv2.morphologyEx(slack, cv2.MORPH_OPEN, np.ones((1, _odd(RULE.run * width)), np.uint8))
    thick = _odd(max(RULE.min_thickness, RULE.thickness * min(height, width)))
    thin = cv2.subtract(runs, cv2.morphologyEx(runs, cv2.MORPH_OPEN, np.ones((thick, 1), np.uint8)))
    found = (thin > threshold).astype(np.uint8)
    # a fat digit cuts the line it sits on: bridge such gaps before measuring the span
    bridged = cv2.morphologyEx(
        found, cv2.MORPH_CLOSE, np.ones((1, _odd(RULE.bridge * width)), np.uint8)
    )
    _, labels, stats, _ = components(bridged)
    spans = stats[1:, cv2.CC_STAT_WIDTH]
    long = np.flatnonzero(spans >= RULE.span * width) + 1
    if (
        long.size < RULE.family or not family
    ):  # no family: only a line running off the image (a sheet's edge) counts
        long = _running_off(labels, found, long, angle) if lone else long[:0]
    if long.size == 0:
        return np.zeros_like(levels)
    lines = found & np.isin(labels, long).astype(np.uint8)
    back = cv2.getRotationMatrix2D(centre, -angle, 1.0)
    return cv2.warpAffine(lines, back, (width, height), flags=cv2.INTER_NEAREST)


def remove_rulings(
    ink: np.ndarray, sigma: float | np.ndarray = 0.0, *, lone: bool = True
) -> np.ndarray:
    """Fade out the lines of ruled or squared paper, and other long straight lines such as a
    sheet's edge, leaving the strokes that cross them.

    Lines are found on a half-resolution copy: after straightening their average tilt, thin
    structures that stay bright along a straight run an eighth of the image long and join into
    lines across at least half of it; a digit's strokes are shorter or fatter. Only families of
    three or more parallel lines count, and, if `lone` (a photo, where one may be a sheet's
    edge), single lines that run off the image: a big digit drawn with a fine pen may have two
    long strokes, never three, and they end inside the picture. Along the
    lines the ink loses their family's typical strength, so a pen stroke over a pale ruling
    survives, and ink far stronger than that (a stroke drawn along a line) is left whole.
    Upright lines make a family only on squared paper, across lines found too: a row of digits
    holds many upright strokes as tall as the image.
    """
    if max(ink.shape) <= DECODE.small_image:
        return ink
    half = cv2.resize(ink, (ink.shape[1] // 2, ink.shape[0] // 2), interpolation=cv2.INTER_AREA)
    levels = np.clip(half * 255.0, 0, 255).astype(np.uint8)
    noise = float(np.median(sigma)) if not isinstance(sigma, float) else sigma
    threshold = int(MAX_8BIT * max(RULE.threshold_sigmas * noise, RULE.threshold_floor))
    size = (ink.shape[1], ink.shape[0])
    across = _horizontal_rulings(levels, threshold, lone)
    down = _horizontal_rulings(levels.T.copy(), threshold, lone, family=bool(across.any())).T
    for lines in (across, down):
        if not lines.any():
            continue
        band = cv2.resize(lines, size, interpolation=cv2.INTER_NEAREST)
        band = cv2.dilate(band, np.ones((3, 3), np.uint8)).astype(bool)
        on_line = ink[band]
        on_line = on_line[on_line > threshold / 255.0]
        if on_line.size == 0:
            continue
        # each family (across, down) has its own strength; ink far stronger than its lines is
        # a pen stroke lying along one and is left whole
        strength = float(np.median(on_line))
        weakened = np.maximum(ink - RULE.fade * strength, 0.0)
        faded = np.where(ink > RULE.pen_over_line * strength, ink, weakened)
        ink = np.where(band, faded, ink).astype(np.float32)
    return ink


# ---------------------------------------------------------------------------------------------
# Choosing the digit among the components
# ---------------------------------------------------------------------------------------------


def touches_border(stats: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Per component (connectedComponentsWithStats rows), whether it reaches the image border."""
    left, top, width, height = stats[:, 0], stats[:, 1], stats[:, 2], stats[:, 3]
    return (left == 0) | (top == 0) | (left + width >= shape[1]) | (top + height >= shape[0])


def _gap(a: Box, b: Box) -> int:
    """Chebyshev distance between two boxes (0 when they overlap)."""
    dy = max(a.top - b.bottom, b.top - a.bottom, 0)
    dx = max(a.left - b.right, b.left - a.right, 0)
    return max(dy, dx)


def _union(a: Box, b: Box) -> Box:
    return Box(
        min(a.top, b.top), min(a.left, b.left), max(a.bottom, b.bottom), max(a.right, b.right)
    )


def border_clutter(stats: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Components that touch the border and are long (a sheet's edge, a strip of desk, the rim
    of a shadow): in a photo these are never the digit."""
    height, width = shape
    w = stats[:, cv2.CC_STAT_WIDTH].astype(np.float64)
    h = stats[:, cv2.CC_STAT_HEIGHT].astype(np.float64)
    spans = np.maximum(w / width, h / height) > PICK.clutter_span
    thin = np.maximum(w, h) > PICK.clutter_elongation * np.minimum(w, h)
    long = spans | thin
    return touches_border(stats, shape) & long


def _fills_the_crop(weights: np.ndarray, usable: np.ndarray, shape: tuple[int, int]) -> bool:
    """Whether the long blobs at a crop's border (not `usable`) are the digit itself, cropped
    so tight that its strokes run off the frame: a crop, not a scene, where they outweigh
    `PICK.crop_clutter` times all that lies within."""
    if max(shape) > LIGHT.crop_side or usable.all() or not usable.any():
        return False
    return bool(weights[~usable].max() >= PICK.crop_clutter * weights[usable].max())


def select_digit(
    mask: np.ndarray, ink: np.ndarray | None = None, *, photo: bool = False
) -> tuple[np.ndarray, Box]:
    """Keep the digit's components: the heaviest blob plus the sizeable pieces close to it.

    Weight is the ink a component holds (its area when no ink image is given). Specks are
    dropped, and so are blobs touching the image border (paper edges, shadows, fingers) whenever
    something else of a comparable weight lies inside the image; in a `photo`, long blobs at the
    border are not taken, but in a crop that they dominate (`_fills_the_crop`).
    """
    count, labels, stats, _ = components(mask)
    if count <= 1:
        raise ImageError("no digit found: nothing stands out from the background", status=422)
    stats = stats[1:]
    if ink is None:
        weights = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    else:
        on = labels > 0  # few pixels are ink: sum over those only
        weights = np.bincount(labels[on], ink[on], minlength=count)[1:]
    usable = ~border_clutter(stats, mask.shape) if photo else np.ones(len(stats), bool)
    if not usable.any() or _fills_the_crop(weights, usable, mask.shape):
        usable[:] = True
    inside = ~touches_border(stats, mask.shape)
    candidates = usable & (weights >= PICK.candidate_share * weights[usable].max())
    seeds = candidates.copy()
    # in a photo whatever touches the border is suspect (the digit is in the picture)
    share = PICK.photo_inside_share if photo else PICK.scan_inside_share
    if (candidates & inside).any() and weights[candidates & inside].max() >= share * weights[
        candidates
    ].max():
        seeds &= inside
    boxes = [Box(int(t), int(lf), int(t + h), int(lf + w)) for lf, t, w, h, _ in stats]
    main = int(np.argmax(np.where(seeds, weights, -1)))
    # Pieces of the digit may touch the border of a tight crop; big border blobs are clutter,
    # and so are specks: too light or too small beside the digit.
    extent = np.maximum(stats[:, cv2.CC_STAT_WIDTH], stats[:, cv2.CC_STAT_HEIGHT])
    joinable = (
        usable
        & (seeds | (weights <= weights[main]))
        & (weights >= PICK.piece_share * weights[main])
    )
    chosen, box = {main}, boxes[main]
    grown = True
    while grown:
        grown = False
        size = max(box.height, box.width)
        reach = max(PICK.min_reach, round(PICK.reach_share * size))
        for i in np.flatnonzero(joinable & (extent >= PICK.min_extent * size)):
            if i not in chosen and _gap(box, boxes[i]) <= reach:
                chosen.add(int(i))
                box = _union(box, boxes[i])
                grown = True
    lut = np.zeros(count, bool)
    lut[[i + 1 for i in chosen]] = True
    return lut[labels], box


# ---------------------------------------------------------------------------------------------
# Shaping the digit like MNIST
# ---------------------------------------------------------------------------------------------


def stroke_width(mask: np.ndarray) -> float:
    """Mean stroke width in pixels of a binary mask (twice the area over the boundary length)."""
    mask = mask.astype(np.uint8)
    area = int(mask.sum())
    if area == 0:
        return 0.0
    boundary = int((mask - cv2.erode(mask, np.ones((3, 3), np.uint8), borderValue=0)).sum())
    return 2.0 * area / max(boundary, 1)


def normalize_stroke(crop: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """Thicken strokes that would come out thinner than MNIST's after fitting into 20×20."""
    scale = FIT_SIZE / max(crop.shape)
    width = stroke_width(mask) * scale
    if width >= FRAME.min_stroke:
        return crop
    grow = round((FRAME.target_stroke - width) / scale)
    if grow < 1:
        return crop
    pad = grow
    padded = np.pad(crop, pad)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (grow + 1, grow + 1))
    return cv2.dilate(padded, kernel)


def bounding_box(img: np.ndarray, threshold: float) -> Box | None:
    """Tight box around the pixels above `threshold`, or None."""
    rows = np.flatnonzero((img > threshold).any(axis=1))
    cols = np.flatnonzero((img > threshold).any(axis=0))
    if rows.size == 0:
        return None
    return Box(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def fit_and_center(ink: np.ndarray) -> np.ndarray:
    """MNIST's own recipe: crop to the ink, fit in 20×20 keeping the aspect ratio, then shift
    so the centre of mass sits at the centre of a 28×28 image. Input: ink bright on 0.
    """
    out = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.float32)
    top = float(ink.max()) if ink.size else 0.0
    box = bounding_box(ink, FRAME.crop_level * top) if top > 0 else None
    if box is None:
        return out
    crop = ink[box.slices].astype(np.float32)
    scale = FIT_SIZE / max(box.height, box.width)
    size = (max(1, round(box.width * scale)), max(1, round(box.height * scale)))
    if scale < 1:
        interpolation = cv2.INTER_AREA
    elif scale >= FRAME.cubic_gain:  # a tiny cell: a cubic keeps its strokes sharper
        interpolation = cv2.INTER_CUBIC
    else:
        interpolation = cv2.INTER_LINEAR
    patch = cv2.resize(crop, size, interpolation=interpolation)
    patch = np.clip(patch, 0.0, 1.0)
    mass = float(patch.sum())
    if mass <= 0:
        return out
    ys, xs = np.indices(patch.shape)
    cy, cx = float((ys * patch).sum() / mass), float((xs * patch).sum() / mass)
    h, w = patch.shape
    top_row = int(np.clip(round(IMAGE_SIZE / 2 - cy), 0, IMAGE_SIZE - h))
    left_col = int(np.clip(round(IMAGE_SIZE / 2 - cx), 0, IMAGE_SIZE - w))
    out[top_row : top_row + h, left_col : left_col + w] = patch
    return out


@dataclass(frozen=True)
class FoundInk:
    """What `find_ink` sees in a grey image: ink bright on 0, its pixels, whether the lighting
    was uneven (a photo), and where (top, left) in the grey image the ink's frame starts (the
    sheet's corner when `isolate_paper` cut one out)."""

    ink: np.ndarray
    mask: np.ndarray
    photo: bool
    origin: tuple[int, int] = (0, 0)


def stretch_faint_cell(grey: np.ndarray) -> np.ndarray:
    """A digit's cell (a few dozen pixels a side) whose levels span little of the range, such as
    0–16 levels written into an 8-bit file, stretched to span all of it: a cell has no paper
    around the digit by which to judge how strong its ink is. Larger images are left alone."""
    if max(grey.shape) > INK.cell_side:
        return grey
    low, high = float(grey.min()), float(grey.max())
    if high - low >= INK.cell_range:
        return grey
    return ((grey - low) / (high - low)).astype(np.float32)


def find_ink(grey: np.ndarray) -> FoundInk:
    """From a grey image, the ink without paper lines and the mask of its pixels."""
    if float(grey.max()) - float(grey.min()) < INK.blank_range:
        raise ImageError("no digit found: the image is blank", status=422)
    grey = stretch_faint_cell(grey)
    scan = max(grey.shape) <= LIGHT.even_side
    grey, paper = isolate_paper(grey)
    light = analyse_lighting(grey, scan=scan and paper is None)  # a cut-out sheet: a scene
    photo = light.uneven
    checked = photo and paper is None and max(grey.shape) <= LIGHT.crop_side  # a crop's map
    try:
        ink, mask = ink_under(grey, light)
    except ImageError:  # the map left no visible ink: perhaps it hollowed fat strokes
        even = _even_if_hollowed(grey, None) if checked else None
        if even is None:
            raise
        return FoundInk(*even, photo=False)
    even = _even_if_hollowed(grey, mask) if checked else None
    if even is not None:
        return FoundInk(*even, photo=False)
    origin = (paper.top, paper.left) if paper is not None else (0, 0)
    return FoundInk(ink, mask, photo, origin)


def ink_under(grey: np.ndarray, light: Lighting) -> tuple[np.ndarray, np.ndarray]:
    """The ink of a grey image under this lighting, without paper lines, and its mask."""
    ink, noise = ink_and_noise(grey, light)
    ink = remove_rulings(ink, noise.above, lone=light.uneven)
    return ink, ink_mask(ink, noise.spread)


def _even_if_hollowed(
    grey: np.ndarray, mapped: np.ndarray | None
) -> tuple[np.ndarray, np.ndarray] | None:
    """The ink and mask of a crop read as evenly lit, when its lighting map hollowed its
    strokes: a fat marker digit filling a tight crop defeats the map's closings, which take the
    strokes for paper in shadow and leave specks at their edges (`mapped`: that mask, None when
    nothing was left). Taken when the map kept less than `hollow_share` of the ink found under
    even light and no stroke `hollow_extent` as long as its longest (a digit under a deep hard
    shadow keeps its strokes), and that ink is deep (its median darkening at least
    `hollow_depth` of the darkest) and sharp-edged (`edge_width`), which a shadow's soft
    gradient is not."""
    try:
        ink, mask = ink_under(grey, analyse_lighting(grey, scan=True))
    except ImageError:
        return None
    area = int(mask.sum())
    kept = 0 if mapped is None else int(mapped.sum())
    if area == 0 or kept >= LIGHT.hollow_share * area:
        return None
    if mapped is not None and longest(mapped) >= LIGHT.hollow_extent * longest(mask):
        return None
    if float(np.median(ink[mask])) < LIGHT.hollow_depth * float(ink.max()):
        return None
    return (ink, mask) if edge_width(ink, mask) <= LIGHT.hollow_edge else None


def longest(mask: np.ndarray) -> int:
    """The longer side of the largest box of a connected part of a mask (0 when empty)."""
    _, _, stats, _ = components(mask)
    sides = np.maximum(stats[1:, cv2.CC_STAT_WIDTH], stats[1:, cv2.CC_STAT_HEIGHT])
    return int(sides.max(initial=0))


def edge_width(ink: np.ndarray, mask: np.ndarray) -> float:
    """How many pixels wide, on average, the ink's edge is: the pixels at or next to the mask
    whose ink lies within `edge_band` of the darkest, per pixel of the mask's boundary (1–3 for
    a pen's stroke, more for a shadow's soft edge)."""
    low, high = (share * float(ink.max()) for share in LIGHT.edge_band)
    levels = mask.astype(np.uint8)
    square = np.ones((3, 3), np.uint8)
    boundary = int((mask & ~cv2.erode(levels, square).astype(bool)).sum())
    near = cv2.dilate(levels, np.ones((5, 5), np.uint8)).astype(bool)
    band = near & (ink > low) & (ink < high)
    return float(band.sum()) / max(boundary, 1)


def frame_margin(shape: tuple[int, ...]) -> int:
    """The margin `frame_digit` keeps around a digit in an image of this shape."""
    return max(1, round(min(shape) / FRAME.margin_divisor))


def frame_digit(
    ink: np.ndarray, keep: np.ndarray, box: Box, margin: int | None = None
) -> np.ndarray:
    """The digit whose pixels are `keep` (inside `box`): cropped with a margin (by default
    `frame_margin` of the image), levels scaled so its strokes reach 1, strokes thickened when
    thin."""
    margin = frame_margin(ink.shape) if margin is None else margin
    soft = cv2.dilate(keep.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)) > 0
    digit = np.where(soft, ink, 0.0)
    strokes = digit[keep]
    strongest = float(digit.max())
    level = float(np.percentile(strokes, FRAME.stroke_percentile)) if strokes.size else strongest
    digit = np.clip(digit / max(level, FRAME.min_stroke_level), 0.0, 1.0)
    top, left = max(box.top - margin, 0), max(box.left - margin, 0)
    crop = digit[top : box.bottom + margin, left : box.right + margin]
    crop_mask = keep[top : box.bottom + margin, left : box.right + margin]
    return normalize_stroke(crop, crop_mask)


Kept = tuple[np.ndarray, Box]  # the pixels `select_digit` keeps, and their box


def find_digit(found: FoundInk) -> Kept:
    """The digit `select_digit` keeps in found ink."""
    return select_digit(found.mask, found.ink, photo=found.photo)


def extract_digit(grey: np.ndarray) -> np.ndarray:
    """From a grey image, the digit alone: ink bright on 0, cropped, levels in [0, 1]."""
    found = find_ink(grey)
    keep, box = find_digit(found)
    return frame_digit(found.ink, keep, box)


@dataclass(frozen=True)
class View(Generic[Located]):
    """What a digit is read from: the grey image, the ink found in it, the part of the upright
    upload it shows, (x, y, width, height) in the upload's pixels, and what the reader found in
    that ink (`look`'s `locate`)."""

    grey: np.ndarray
    found: FoundInk
    frame: tuple[int, int, int, int]
    located: Located


def digit_box(kept: Kept) -> Box:
    """The box of a found digit, in the ink's frame."""
    return kept[1]


def zoom_region(
    box: Box, found: FoundInk, shape: tuple[int, int], upright: tuple[int, int]
) -> Region | None:
    """The region (shares of the frame) to look at again more closely: the digit's `box` (in
    the ink's frame of a work image of `shape`) grown by a margin, squared, when it is small in
    the work image and the upload (`upright`: width, height) has the resolution to show it
    larger; None otherwise."""
    height, width = shape
    longest = max(box.height, box.width)
    if longest > ZOOM.max_share * max(shape) or max(upright) < ZOOM.min_source:
        return None
    side = (1 + 2 * ZOOM.margin) * longest
    gain = min(max(upright) / max(shape), DECODE.work_size / side)
    if gain < ZOOM.min_gain:
        return None
    centre_y = found.origin[0] + (box.top + box.bottom) / 2
    centre_x = found.origin[1] + (box.left + box.right) / 2
    top, bottom = max(0.0, centre_y - side / 2), min(float(height), centre_y + side / 2)
    left, right = max(0.0, centre_x - side / 2), min(float(width), centre_x + side / 2)
    return (top / height, left / width, bottom / height, right / width)


def _inside(box: Box, found: FoundInk, shape: tuple[int, int]) -> bool:
    """Whether `box` (in the ink's frame) keeps off the border of an image of `shape`."""
    top, left = box.top + found.origin[0], box.left + found.origin[1]
    bottom, right = box.bottom + found.origin[0], box.right + found.origin[1]
    return top > 0 and left > 0 and bottom < shape[0] and right < shape[1]


def look(
    data: bytes,
    locate: Callable[[FoundInk], Located] = find_digit,
    box_of: Callable[[Located], Box] = digit_box,
) -> View[Located]:
    """Decode `data`, find its ink and `locate` what is read in it; where that (its `box_of`)
    is a small part of a large photo, look again at the region decoded finer (`zoom_region`).
    The closer look is kept only when what it locates keeps clear of its border; otherwise the
    first. Either way `locate` runs once per look taken."""
    grey, upright = decode_upright(data)
    found = find_ink(grey)
    first = View(grey, found, (0, 0, *upright), locate(found))
    if max(upright) < ZOOM.min_source:  # the common case: no closer look to take
        return first
    region = zoom_region(box_of(first.located), found, grey.shape, upright)
    if region is None:
        return first
    try:
        closer, _ = decode_upright(data, region=region)
        found_closer = find_ink(closer)
        located = locate(found_closer)
    except ImageError:
        return first
    if not _inside(box_of(located), found_closer, closer.shape):
        return first
    top, left, bottom, right = region
    (x, x_end), (y, y_end) = (
        region_span(left, right, upright[0]),
        region_span(top, bottom, upright[1]),
    )
    return View(closer, found_closer, (x, y, x_end - x, y_end - y), located)


def preprocess(data: bytes) -> np.ndarray:
    """Image bytes → the 28×28 float32 image in [0, 1] (ink bright) that the models see."""
    view = look(data)
    keep, box = view.located
    return fit_and_center(frame_digit(view.found.ink, keep, box))


def standardize(images: Levels) -> Levels:
    """[0, 1] images (an array or a tensor) → model input, with the training set's mean and std."""
    return (images - MNIST_MEAN) / MNIST_STD


def normalize(image: np.ndarray) -> np.ndarray:
    """Standardise a [0, 1] image exactly as in training, as float32."""
    return standardize(image).astype(np.float32)
