"""Turn any image of a handwritten digit into the 28×28 input the models were trained on.

Small pure functions, shared by the TorchServe handler, training and the tests:

    bytes ─decode_image→ grey [0,1] ─ink_image→ ink bright on 0 ─select_digit→ crop
          ─normalize_stroke→ crop ─fit_and_center→ 28×28 [0,1] ─normalize→ model input

`preprocess(data)` runs the whole chain. Every rejection raises `ImageError`, which carries the
HTTP status a server should answer with.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

# Normalisation of the MNIST training set; the models were trained on (x - MEAN) / STD.
MNIST_MEAN = 0.1307
MNIST_STD = 0.3081

OUTPUT_SIZE = 28  # side of the model input
FIT_SIZE = 20  # the digit's longer side inside the output, as in MNIST
WORK_SIZE = 512  # longer side an input is reduced to before analysis

MAX_BYTES = 10 * 1024 * 1024  # largest encoded image accepted
MAX_PIXELS = 40_000_000  # largest decoded image accepted (a 6000×4000 photo is 24 MP)
MAX_ASPECT = 20.0  # longest/shortest side beyond which an image cannot be a digit

# Typical MNIST stroke width in output pixels; thinner ink is thickened up to MIN_STROKE.
MIN_STROKE = 1.6
TARGET_STROKE = 2.2


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


# ---------------------------------------------------------------------------------------------
# Decoding
# ---------------------------------------------------------------------------------------------


def open_image(data: bytes) -> Image.Image:
    """Open (not yet decode) an image, rejecting empty, oversized, bomb and absurd inputs."""
    if not data:
        raise ImageError("empty request: no image bytes received")
    if len(data) > MAX_BYTES:
        raise ImageError(f"image is larger than {MAX_BYTES // (1024 * 1024)} MB", status=413)
    try:
        with warnings.catch_warnings():
            # Pillow warns from 89 MP on; MAX_PIXELS below is the (lower) limit that applies.
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            img = Image.open(io.BytesIO(data))
    except Image.DecompressionBombError as exc:  # header declares > 2 × Pillow's pixel limit
        raise ImageError("image declares too many pixels", status=413) from exc
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise ImageError(f"not a readable image ({type(exc).__name__})") from exc
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


def _to_array(img: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """Grey levels and alpha (or None) as float32 arrays in [0, 1]."""
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif img.mode == "PA":
        img = img.convert("RGBA")
    if img.mode in {"I", "I;16", "I;16B", "I;16L", "I;16N", "F"}:
        grey = np.asarray(img, dtype=np.float32)
        top = float(grey.max())
        scale = 65535.0 if top > 255 else 255.0 if top > 1 else 1.0
        return np.clip(grey / scale, 0.0, 1.0), None
    alpha = None
    if img.mode in {"RGBA", "LA", "RGBa", "La"}:
        alpha = np.asarray(img.getchannel("A"), dtype=np.float32) / 255.0
        if alpha.min() > 0.98:
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
    background = 1.0 if ink_level < 0.5 else 0.0
    return grey * alpha + background * (1.0 - alpha)


def decode_image(data: bytes, work_size: int = WORK_SIZE) -> np.ndarray:
    """Decode any Pillow format to upright grey float32 in [0, 1], longer side ≤ work_size.

    EXIF orientation is applied, transparency flattened, the first frame of an animation taken;
    large JPEGs are decoded at reduced scale (DCT scaling), which is both faster and smaller.
    """
    img = open_image(data)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Pillow's metadata warnings are not the client's fault
            if img.format == "JPEG":
                img.draft("RGB", (work_size, work_size))
            img = ImageOps.exif_transpose(img) or img
            img.load()
            grey, alpha = _to_array(img)
    except ImageError:
        raise
    except (OSError, ValueError, SyntaxError, EOFError, IndexError, struct.error) as exc:
        raise ImageError(f"image data is corrupt or truncated ({type(exc).__name__})") from exc
    except Image.DecompressionBombError as exc:
        raise ImageError("image declares too many pixels", status=413) from exc
    if alpha is not None:
        grey = flatten_alpha(grey, alpha)
    return resize_longest(grey, work_size)


def resize_longest(grey: np.ndarray, limit: int) -> np.ndarray:
    """Shrink (area-averaging) so the longer side is at most `limit`; never enlarges."""
    height, width = grey.shape
    longest = max(height, width)
    if longest <= limit:
        return np.ascontiguousarray(grey, dtype=np.float32)
    scale = limit / longest
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return cv2.resize(grey, size, interpolation=cv2.INTER_AREA)


# ---------------------------------------------------------------------------------------------
# Finding the ink
# ---------------------------------------------------------------------------------------------


def ink_is_dark(grey: np.ndarray) -> bool:
    """True when the ink is darker than the background (the background is the majority)."""
    low, median, high = np.percentile(grey, (0.5, 50, 99.5))
    return bool(median - low > high - median)


def _odd(n: float) -> int:
    return max(3, int(n) | 1)


def _otsu_mask(ink: np.ndarray) -> np.ndarray:
    levels = np.clip(ink / max(float(ink.max()), 1e-6) * 255.0, 0, 255).astype(np.uint8)
    _, mask = cv2.threshold(levels, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return mask.astype(bool)


def remove_background(ink: np.ndarray) -> np.ndarray:
    """Subtract the background level, following uneven lighting and shadows where there are any.

    A flat background (scans, canvases) is subtracted as one level, so fat strokes are never
    hollowed out. A varying one (phone photos) is estimated by a grey opening with a kernel a few
    strokes wide (a top-hat transform), smoothed, and subtracted pixel by pixel.
    """
    mask = _otsu_mask(ink)
    paper = ink[~mask]
    if paper.size == 0:
        return ink - float(ink.min())
    lo, median, hi = np.percentile(paper, (5, 50, 95))
    if hi - lo < 0.1:
        return np.clip(ink - np.float32(median), 0.0, None)
    side = min(ink.shape)
    k = _odd(np.clip(4.0 * stroke_width(mask), 0.1 * side, 0.35 * side))
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (k, k))
    background = cv2.blur(cv2.morphologyEx(ink, cv2.MORPH_OPEN, kernel), (k, k))
    return np.clip(ink - background, 0.0, None)


def ink_image(grey: np.ndarray) -> np.ndarray:
    """Ink as bright values on a zero background, whatever the input's polarity and lighting."""
    ink = 1.0 - grey if ink_is_dark(grey) else grey
    return remove_background(ink.astype(np.float32))


def ink_threshold(ink: np.ndarray) -> float:
    """Otsu threshold of the (lightly smoothed) ink image; rejects images with no contrast."""
    top = float(ink.max())
    if top < 0.04:
        raise ImageError("no digit found: the image has no visible ink", status=422)
    smooth = cv2.GaussianBlur(ink, (3, 3), 0)
    levels = np.clip(smooth / top * 255.0, 0, 255).astype(np.uint8)
    otsu, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return max(float(otsu) / 255.0 * top, 0.1 * top)


# ---------------------------------------------------------------------------------------------
# Choosing the digit among the components
# ---------------------------------------------------------------------------------------------


def _touches_border(stats: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
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


def select_digit(mask: np.ndarray) -> tuple[np.ndarray, Box]:
    """Keep the digit's components: the largest blob plus the sizeable pieces close to it.

    Specks are dropped, and so are blobs touching the image border (paper edges, shadows,
    fingers) whenever something else of a comparable size lies inside the image.
    """
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    if count <= 1:
        raise ImageError("no digit found: nothing stands out from the background", status=422)
    stats = stats[1:]
    areas = stats[:, cv2.CC_STAT_AREA].astype(np.float64)
    inside = ~_touches_border(stats, mask.shape)
    candidates = areas >= 0.02 * areas.max()
    seeds = candidates.copy()
    if (candidates & inside).any() and areas[inside].max() >= 0.15 * areas.max():
        seeds &= inside
    boxes = [Box(int(t), int(lf), int(t + h), int(lf + w)) for lf, t, w, h, _ in stats]
    main = int(np.argmax(np.where(seeds, areas, -1)))
    # Pieces of the digit may touch the border of a tight crop; big border blobs are clutter.
    joinable = (seeds | (areas <= areas[main])) & (areas >= 0.03 * areas[main])
    chosen, box = {main}, boxes[main]
    grown = True
    while grown:
        grown = False
        reach = max(2, round(0.35 * max(box.height, box.width)))
        for i in np.flatnonzero(joinable):
            if i not in chosen and _gap(box, boxes[i]) <= reach:
                chosen.add(int(i))
                box = _union(box, boxes[i])
                grown = True
    keep = np.isin(labels, [i + 1 for i in chosen])
    return keep, box


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
    if width >= MIN_STROKE:
        return crop
    grow = round((TARGET_STROKE - width) / scale)
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
    out = np.zeros((OUTPUT_SIZE, OUTPUT_SIZE), np.float32)
    top = float(ink.max()) if ink.size else 0.0
    box = bounding_box(ink, 0.05 * top) if top > 0 else None
    if box is None:
        return out
    crop = ink[box.top : box.bottom, box.left : box.right].astype(np.float32)
    scale = FIT_SIZE / max(box.height, box.width)
    size = (max(1, round(box.width * scale)), max(1, round(box.height * scale)))
    shrink = scale < 1
    patch = cv2.resize(crop, size, interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)
    patch = np.clip(patch, 0.0, 1.0)
    mass = float(patch.sum())
    if mass <= 0:
        return out
    ys, xs = np.indices(patch.shape)
    cy, cx = float((ys * patch).sum() / mass), float((xs * patch).sum() / mass)
    h, w = patch.shape
    top_row = int(np.clip(round(OUTPUT_SIZE / 2 - cy), 0, OUTPUT_SIZE - h))
    left_col = int(np.clip(round(OUTPUT_SIZE / 2 - cx), 0, OUTPUT_SIZE - w))
    out[top_row : top_row + h, left_col : left_col + w] = patch
    return out


def extract_digit(grey: np.ndarray) -> np.ndarray:
    """From a grey image, the digit alone: ink bright on 0, cropped, levels in [0, 1]."""
    ink = ink_image(grey)
    threshold = ink_threshold(ink)
    mask = cv2.GaussianBlur(ink, (3, 3), 0) > threshold
    keep, box = select_digit(mask)
    margin = max(1, round(min(ink.shape) / 100))
    soft = cv2.dilate(keep.astype(np.uint8), np.ones((2 * margin + 1,) * 2, np.uint8)) > 0
    digit = np.where(soft, ink, 0.0)
    strokes = digit[keep]
    level = float(np.percentile(strokes, 90)) if strokes.size else float(digit.max())
    digit = np.clip(digit / max(level, 1e-6), 0.0, 1.0)
    top, left = max(box.top - margin, 0), max(box.left - margin, 0)
    crop = digit[top : box.bottom + margin, left : box.right + margin]
    crop_mask = keep[top : box.bottom + margin, left : box.right + margin]
    return normalize_stroke(crop, crop_mask)


def preprocess(data: bytes) -> np.ndarray:
    """Image bytes → the 28×28 float32 image in [0, 1] (ink bright) that the models see."""
    return fit_and_center(extract_digit(decode_image(data)))


def normalize(image: np.ndarray) -> np.ndarray:
    """Standardise a [0, 1] image exactly as in training."""
    return ((image - MNIST_MEAN) / MNIST_STD).astype(np.float32)
