"""Find the digits of one handwritten line in reading order, each framed like a single digit.

    bytes ─look→ grey (a closer look at a small line), its frame, ink, mask ─components→ strokes
          ─drop specks, underlines─→ ─one line?─→ ─merge strokes that overlap across→ groups
          ─split groups too wide for one digit→ digits ─frame_digit, fit_and_center→ 28×28 each

Pure functions over `recognition.preprocessing`'s steps. An image that holds one digit is read
exactly as `preprocess` reads it (the same pixels are kept, the same 28×28 comes out), so single
digits never change. Boxes are `[x, y, w, h]` in the uploaded image's pixels after its EXIF
orientation. More than one line, or more than `MAX_DIGITS` digits, is refused with a 422.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import pairwise

import cv2
import numpy as np

from recognition.limits import MAX_DIGITS
from recognition.preprocessing import (
    Box,
    FoundInk,
    ImageError,
    View,
    border_clutter,
    find_ink,
    fit_and_center,
    frame_digit,
    look,
    select_digit,
)

XYWH = tuple[int, int, int, int]  # x, y, width, height


@dataclass(frozen=True)
class Segmenting:
    """The thresholds of the line reader; lengths are shares of the line's height."""

    speck_weight: float = 0.01  # strokes lighter than this share of the heaviest…
    speck_extent: float = 0.25  # …and no longer than this are specks, dropped at once
    light_group: float = 0.15  # a group lighter than this share of the median group: dust
    band_margin: float = 0.25  # strokes this far above or below the line's band are not in it
    min_height: float = 0.5  # a group shorter than this joins a digit it overlaps or nears…
    near: float = 0.15  # …(this close across), or is noise
    overlap: float = 0.35  # strokes overlapping across by this share of the narrower: one digit
    underline_span: float = 1.8  # a horizontal run at least this long…
    underline_height: float = 0.25  # …and at most this thick is an underline (or a stroke-out)
    tall_share: float = 0.5  # a band of ink this tall (share of the tallest band) may be a line
    split_width: float = 1.1  # a group wider than this may hold touching digits…
    alone_width: float = 1.5  # …or this, when it is all there is (wide digits, letters: H)…
    sure_width: float = 2.5  # …and one wider than this does (1 MNIST digit in 4000 is 2)…
    digit_width: float = 0.8  # …about this wide each (MNIST's median width over height)
    cut_window: float = 0.3  # a cut is sought this share of a digit's width around its place
    sure_whole: float = 0.999  # a maybe-touching group read whole at least this confidently is one


SEG = Segmenting()


@dataclass(frozen=True)
class Digit:
    """One digit of a line: its 28×28 model input and its box in the uploaded image."""

    image: np.ndarray
    box: XYWH


@dataclass(frozen=True)
class Slot:
    """One place of the line: the digit read whole (or the pieces of surely touching digits),
    and, where it may be touching digits, the pieces it would split into, for the classifier
    to decide (`keep_whole`)."""

    whole: tuple[Digit, ...]
    split: tuple[Digit, ...] = ()


Masks = list[tuple[np.ndarray, Box]]  # the pixels and box of each digit


@dataclass(frozen=True)
class Strokes:
    """Connected components of an ink mask: labels image, boxes (x, y, w, h, area), weights."""

    labels: np.ndarray
    stats: np.ndarray
    weights: np.ndarray


def strokes(mask: np.ndarray, ink: np.ndarray) -> Strokes:
    """The components of `mask`, each weighed by the ink it holds."""
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), 8)
    on = labels > 0
    weights = np.bincount(labels[on], ink[on], minlength=count)[1:]
    return Strokes(labels, stats[1:], weights)


def line_height(heights: np.ndarray) -> float:
    """The height of the line: the median of the components at least half the tallest's."""
    if heights.size == 0:
        return 0.0
    return float(np.median(heights[heights >= SEG.tall_share * heights.max()]))


def drop_underlines(mask: np.ndarray, height: float) -> np.ndarray:
    """The mask without long thin horizontal runs (underlines, strokes through the digits)."""
    span, thick = round(SEG.underline_span * height), max(1, round(SEG.underline_height * height))
    if span < 3 or span >= mask.shape[1]:
        return mask
    levels = mask.astype(np.uint8)
    runs = cv2.morphologyEx(levels, cv2.MORPH_OPEN, np.ones((1, span), np.uint8))
    fat = cv2.morphologyEx(runs, cv2.MORPH_OPEN, np.ones((thick + 1, 1), np.uint8))
    thin = cv2.subtract(runs, fat)
    if not thin.any():
        return mask
    return mask & ~(cv2.dilate(thin, np.ones((3, 3), np.uint8)) > 0)


def kept_strokes(found: FoundInk) -> tuple[Strokes, np.ndarray]:
    """The components that may be (parts of) digits, and the indices kept among them."""
    parts = strokes(found.mask, found.ink)
    height = line_height(parts.stats[:, cv2.CC_STAT_HEIGHT])
    mask = drop_underlines(found.mask, height)
    if mask is not found.mask:
        parts = strokes(mask, found.ink)
        height = line_height(parts.stats[:, cv2.CC_STAT_HEIGHT])
    if parts.weights.size == 0:
        return parts, np.zeros(0, int)
    extent = np.maximum(parts.stats[:, cv2.CC_STAT_WIDTH], parts.stats[:, cv2.CC_STAT_HEIGHT])
    speck = (parts.weights < SEG.speck_weight * parts.weights.max()) & (
        extent <= SEG.speck_extent * height
    )
    wide = parts.stats[:, cv2.CC_STAT_WIDTH] >= SEG.underline_span * height
    flat = parts.stats[:, cv2.CC_STAT_HEIGHT] <= SEG.underline_height * height
    usable = ~speck & ~(wide & flat)
    if found.photo:
        usable &= ~border_clutter(parts.stats, found.mask.shape)
    return parts, np.flatnonzero(usable)


def bands(intervals: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The union of half-open intervals, as disjoint sorted intervals."""
    merged: list[tuple[int, int]] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


def count_lines(stats: np.ndarray) -> int:
    """Lines of writing: bands of rows holding ink, separated by blank rows, at least a share
    of the tallest band tall (a cap above a 5 is short; the dots of a dotted digit must
    overlap in height to be read as one line)."""
    found = bands([(int(t), int(t + h)) for _, t, _, h, _ in stats])
    tallest = max(end - start for start, end in found)
    return sum(end - start >= SEG.tall_share * tallest for start, end in found)


def in_band(stats: np.ndarray, kept: np.ndarray) -> np.ndarray:
    """The kept strokes that reach the band of rows the line's tall strokes cover (a dot of
    dust above the line would otherwise join the digit below it)."""
    heights = stats[kept, cv2.CC_STAT_HEIGHT]
    height = line_height(heights)
    tall = kept[heights >= SEG.tall_share * heights.max()]
    top = stats[tall, cv2.CC_STAT_TOP].min() - SEG.band_margin * height
    bottom = (stats[tall, cv2.CC_STAT_TOP] + stats[tall, cv2.CC_STAT_HEIGHT]).max()
    bottom += SEG.band_margin * height
    ends = stats[kept, cv2.CC_STAT_TOP] + stats[kept, cv2.CC_STAT_HEIGHT]
    return kept[(ends >= top) & (stats[kept, cv2.CC_STAT_TOP] <= bottom)]


def group_strokes(stats: np.ndarray) -> list[list[int]]:
    """Indices of the strokes of each digit: strokes overlapping across are merged (a 5's cap,
    a 4 in two strokes, a dotted 0), then the groups are sorted left to right."""
    groups = [[i] for i in np.argsort(stats[:, 0] + stats[:, 2] / 2).tolist()]
    spans = [(int(stats[i, 0]), int(stats[i, 0] + stats[i, 2])) for (i,) in groups]
    merged = True
    while merged:
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                (l1, r1), (l2, r2) = spans[a], spans[b]
                narrower = max(1, min(r1 - l1, r2 - l2))
                if min(r1, r2) - max(l1, l2) >= SEG.overlap * narrower:
                    groups[a] += groups.pop(b)
                    spans[a] = (min(l1, l2), max(r1, r2))
                    spans.pop(b)
                    merged = True
                    break
            if merged:
                break
    order = np.argsort([left + right for left, right in spans])
    return [sorted(groups[i]) for i in order]


def cuts(profile: np.ndarray, pieces: int) -> list[int]:
    """Columns splitting a group's ink `profile` into `pieces` digits: at each even share of its
    width, the column with the least ink nearby."""
    width = profile.size
    smooth = np.convolve(profile, np.ones(3) / 3, mode="same")
    step = width / pieces
    window = max(1, round(SEG.cut_window * step))
    found = [0]
    for i in range(1, pieces):
        centre = round(i * step)
        lo, hi = max(found[-1] + 1, centre - window), min(width - 1, centre + window)
        found.append(lo + int(np.argmin(smooth[lo : hi + 1])) if hi >= lo else centre)
    return [*found, width]


def split_group(keep: np.ndarray, ink: np.ndarray, box: Box, height: float) -> Masks:
    """The pieces of one group cut where touching digits would meet, narrowest first."""
    pieces = max(2, round(box.width / (SEG.digit_width * height)))
    region = np.where(keep, ink, 0.0)[box.top : box.bottom, box.left : box.right]
    columns = cuts(region.sum(axis=0), pieces)
    masks = []
    for start, end in pairwise(columns):
        piece = np.zeros_like(keep)
        piece[:, box.left + start : box.left + end] = keep[:, box.left + start : box.left + end]
        if piece.any():
            masks.append((piece, tight_box(piece)))
    return masks


def tight_box(keep: np.ndarray) -> Box:
    """The half-open box around the set pixels of a non-empty mask."""
    rows, cols = np.flatnonzero(keep.any(axis=1)), np.flatnonzero(keep.any(axis=0))
    return Box(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def group_masks(parts: Strokes, kept: np.ndarray) -> Masks:
    """The pixels and box of each group of strokes, left to right."""
    masks = []
    for group in group_strokes(parts.stats[kept]):
        lut = np.zeros(len(parts.stats) + 1, bool)
        lut[kept[group] + 1] = True
        keep = lut[parts.labels]
        masks.append((keep, tight_box(keep)))
    return masks


def attach_short(groups: Masks, height: float) -> Masks:
    """Groups at least `min_height` of the line tall; a shorter one (a 5's cap drawn off to
    the side, a stray dot) joins the tall group it overlaps most across, or nearly touches
    across, or is dropped."""
    tall = [i for i, (_, box) in enumerate(groups) if box.height >= SEG.min_height * height]
    kept = {i: groups[i] for i in tall}
    for i, (keep, box) in enumerate(groups):
        if i in kept:
            continue
        overlaps = {
            j: min(box.right, b.right) - max(box.left, b.left) for j, (_, b) in kept.items()
        }
        best = max(overlaps, key=overlaps.__getitem__, default=None)
        if best is not None and overlaps[best] > -SEG.near * height:
            merged = kept[best][0] | keep
            kept[best] = (merged, tight_box(merged))
    return [kept[i] for i in tall]


def segment(found: FoundInk) -> list[tuple[Masks, Masks]]:
    """Per place of the line, left to right: (its digits, the pieces it may split into), as
    masks and boxes; [] when nothing stands out.

    Raises ImageError (422) for more than one line of writing or more than MAX_DIGITS digits.
    """
    parts, kept = kept_strokes(found)
    if kept.size == 0:
        return []
    if count_lines(parts.stats[kept]) > 1:
        raise ImageError(
            "more than one line of writing: send one line of digits at a time", status=422
        )
    kept = in_band(parts.stats, kept)
    groups = group_masks(parts, kept)
    weights = [float(found.ink[keep].sum()) for keep, _ in groups]
    groups = [
        g for g, w in zip(groups, weights, strict=True) if w >= SEG.light_group * np.median(weights)
    ]
    height = line_height(np.array([box.height for _, box in groups]))
    places: list[tuple[Masks, Masks]] = []
    groups = attach_short(groups, height)
    maybe = SEG.split_width if len(groups) > 1 else SEG.alone_width
    for keep, box in groups:
        if box.width > SEG.sure_width * height:
            places.append((split_group(keep, found.ink, box, height), []))
        elif box.width > maybe * height:
            places.append(([(keep, box)], split_group(keep, found.ink, box, height)))
        else:
            places.append(([(keep, box)], []))
    if sum(len(whole) for whole, _ in places) > MAX_DIGITS:
        found_digits = sum(len(whole) for whole, _ in places)
        raise ImageError(
            f"{found_digits} digits found: at most {MAX_DIGITS} are read at a time", status=422
        )
    return places


def to_upload(
    box: Box,
    work: tuple[int, int],
    upright: tuple[int, int],
    origin: tuple[int, int] = (0, 0),
    corner: tuple[int, int] = (0, 0),
) -> XYWH:
    """A box on the reduced copy (`work`: its height, width; the box counted from `origin`, top
    and left, in it) as [x, y, w, h] in the uploaded image's upright pixels (`upright`: width,
    height of what the copy shows, whose corner is at `corner`, x and y, in the upload),
    rounded outwards."""
    top, left = origin
    box = Box(box.top + top, box.left + left, box.bottom + top, box.right + left)
    scale_y, scale_x = upright[1] / work[0], upright[0] / work[1]
    x0, y0 = int(np.floor(box.left * scale_x)), int(np.floor(box.top * scale_y))
    x1 = min(upright[0], int(np.ceil(box.right * scale_x)))
    y1 = min(upright[1], int(np.ceil(box.bottom * scale_y)))
    return corner[0] + x0, corner[1] + y0, x1 - x0, y1 - y0


def line_places(found: FoundInk) -> list[tuple[Masks, Masks]]:
    """`segment`'s places, where one digit read whole (or only noise) is the single-digit
    reader's own pixels, unchanged."""
    places = segment(found)
    if not places or (len(places) == 1 and len(places[0][0]) == 1):
        single = [select_digit(found.mask, found.ink, photo=found.photo)]
        places = [(single, places[0][1] if places else [])]
    return places


def line_box(found: FoundInk) -> Box:
    """The box holding every digit of the line (for one digit: `select_digit`'s box, so that
    `look` zooms on a single digit exactly as `preprocess` does)."""
    boxes = [box for whole, _ in line_places(found) for _, box in whole]
    return Box(
        min(b.top for b in boxes),
        min(b.left for b in boxes),
        max(b.bottom for b in boxes),
        max(b.right for b in boxes),
    )


def read_view(view: View) -> list[Slot]:
    """The places of a view's line in reading order, each framed 28×28, boxes in the upload's
    upright pixels. One digit read whole comes out exactly as `preprocess` frames it."""
    found, grey = view.found, view.grey
    places = line_places(found)
    corner, size = view.frame[:2], view.frame[2:]

    def framed(masks: Masks) -> tuple[Digit, ...]:
        return tuple(
            Digit(
                fit_and_center(frame_digit(found.ink, keep, box)),
                to_upload(box, grey.shape, size, found.origin, corner),
            )
            for keep, box in masks
        )

    return [Slot(framed(whole), framed(split)) for whole, split in places]


def read_slots(grey: np.ndarray, upright: tuple[int, int] | None = None) -> list[Slot]:
    """The places of a decoded grey image's line in reading order, each framed 28×28; boxes
    scaled to `upright` (width, height; default: the grey image's own size)."""
    size = upright or (grey.shape[1], grey.shape[0])
    return read_view(View(grey, find_ink(grey), (0, 0, *size)))


def candidates(slots: list[Slot]) -> list[np.ndarray]:
    """Every image the classifier reads for these slots: each slot's whole, then its pieces."""
    return [digit.image for slot in slots for digit in (*slot.whole, *slot.split)]


def keep_whole(whole: float, pieces: list[float]) -> bool:
    """Whether a maybe-touching group is one digit, from the classifier's confidence (0..1) in
    it read whole and in each of its pieces: whole unless it reads poorly and every piece reads
    better."""
    return whole >= SEG.sure_whole or min(pieces) <= whole


def resolve(slots: list[Slot], confidences: list[float]) -> list[int]:
    """Indices into `candidates(slots)` of the digits read, in order; `confidences` are the
    classifier's top probabilities (0..1) for the candidates."""
    chosen, at = [], 0
    for slot in slots:
        whole = list(range(at, at + len(slot.whole)))
        pieces = list(range(whole[-1] + 1, whole[-1] + 1 + len(slot.split)))
        at += len(whole) + len(pieces)
        split = pieces and not keep_whole(confidences[whole[0]], [confidences[i] for i in pieces])
        chosen += pieces if split else whole
    if len(chosen) > MAX_DIGITS:
        raise ImageError(
            f"{len(chosen)} digits found: at most {MAX_DIGITS} are read at a time", status=422
        )
    return chosen


def read_line(data: bytes) -> list[Slot]:
    """Image bytes → the places of its one line of writing, in reading order (at least one)."""
    return read_view(look(data, line_box))


def read_unverified(data: bytes) -> list[Digit]:
    """The digits of a line without a classifier: every maybe-touching group read whole."""
    return [digit for slot in read_line(data) for digit in slot.whole]
