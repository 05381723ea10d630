"""Find the digits of one handwritten line in reading order, each framed like a single digit.

    bytes ─look→ grey (a closer look at a small line), its frame, ink, mask ─components→ strokes
          ─drop specks, underlines─→ ─one line?─→ ─merge strokes that overlap across→ groups
          ─cut groups that may be touching digits→ pieces ─frame_digit, fit_and_center→ 28×28
          each ─the classifier's confidences, `resolve`→ digits

A group that may hold touching digits is offered as pieces between possible cuts: the even
shares of its width (`cuts`) and least-ink paths down through it (`seam_costs`); `resolve`
keeps the row of pieces the classifier reads best (`best_pieces`).

Pure functions over `recognition.preprocessing`'s steps. An image that holds one digit is read
exactly as `preprocess` reads it (the same pixels are kept, the same 28×28 comes out), so single
digits never change. Boxes are `[x, y, w, h]` in the uploaded image's pixels after its EXIF
orientation. More than one line, or more than `MAX_DIGITS` digits, is refused with a 422.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from itertools import pairwise

import cv2
import numpy as np

from recognition.limits import MAX_DIGITS
from recognition.preprocessing import (
    PICK,
    Box,
    FoundInk,
    ImageError,
    View,
    border_clutter,
    components,
    edge_width,
    find_digit,
    find_ink,
    fit_and_center,
    frame_digit,
    frame_margin,
    look,
    touches_border,
)

XYWH = tuple[int, int, int, int]  # x, y, width, height


@dataclass(frozen=True)
class Segmenting:
    """The thresholds of the line reader; lengths are shares of the line's height."""

    speck_weight: float = 0.01  # strokes lighter than this share of the heaviest…
    speck_extent: float = 0.25  # …and no longer than this are specks, dropped at once
    light_group: float = 0.15  # a group lighter than this share of the median group: dust
    grain_away: float = 0.5  # strokes this many of the heaviest's heights off its rows…
    grain_count: int = 5  # …at least this many of them…
    grain_share: float = 0.25  # …each at most this share of the heaviest: the paper's grain,
    # and every stroke no heavier than the heaviest of them is grain too
    band_margin: float = 0.25  # strokes this far above or below the line's band are not in it
    min_height: float = 0.5  # a group shorter than this joins a digit it overlaps or nears…
    near: float = 0.15  # …(this close across), or is noise
    overlap: float = 0.35  # strokes overlapping across by this share of the narrower: one digit
    underline_span: float = 1.8  # a horizontal run at least this long…
    underline_height: float = 0.25  # …and at most this thick is an underline (or a stroke-out)
    tall_share: float = 0.5  # a band of ink this tall (share of the tallest band) may be a line…
    line_weight: float = 0.3  # …if a stroke in it weighs this share of the heaviest (else clutter)
    column_weight: float = 0.15  # strokes this share of the heaviest make a column: one digit
    soft_edge: float = 1.5  # strokes whose edge is this many pixels wide: a shadow's, in a photo
    split_width: float = 0.9  # a group wider than this may hold touching digits…
    alone_width: float = 1.0  # …or this, when it is all there is (a 2-digit number), but
    alone_cut: float = 1.5  # narrower than this (wide digits, letters: H) it stays whole…
    alone_digit: float = -2.0  # …unless the model's reading score for the whole is below this
    alone_piece: float = 0.99  # and each piece reads this surely and scores ≥ `whole_digit`…
    sure_width: float = 2.5  # …and one wider than this does (1 MNIST digit in 4000 is 2)…
    digit_width: float = 0.8  # …about this wide each (MNIST's median width over height)
    cut_window: float = 0.3  # a cut is sought this share of a digit's width around its place
    sure_whole: float = 0.999  # a maybe-touching group read whole at least this confidently is one…
    whole_digit: float = 0.0  # …if the digit detector's score (a logit) for it is at least this…
    whole_width: float = 1.5  # …and it is at most this wide (a wider one reads best or is cut)
    smooth: float = 0.06  # the ink profile is smoothed over this share of the height…
    valley: float = 0.08  # …and a column lowest within this distance either side may be a cut
    same_cut: float = 0.05  # cuts closer than this are one
    bend: float = 0.05  # a cut path pays this much ink (a stroke's pixel: 1) per column aside…
    drift: float = 0.15  # …and keeps within this of its column
    min_piece: float = 0.12  # a piece of a cut group is at least this wide (an upright 1)…
    max_piece: float = 1.3  # …and at most this wide (a wide 0)
    group_candidates: int = 16  # pieces read per maybe-touching group at most…
    digit_candidates: int = 6  # …or this many per digit it is thought to hold, if more
    request_candidates: int = 160  # pieces read per image at most: beyond, only the even cuts
    piece_cost: float = 0.25  # log-confidence a reading pays per piece…
    wide_from: float = 0.8  # …and per line height a piece is wider than this…
    wide_cost: float = 1.0  # …this much, and…
    short_from: float = 0.75  # …per height of its group a piece is shorter than this…
    short_cost: float = 20.0  # …this much, and…
    digit_weight: float = 0.5  # …this share of the log-probability that it is one digit


SEG = Segmenting()


@dataclass(frozen=True)
class Digit:
    """One digit of a line: its 28×28 model input and its box in the uploaded image."""

    image: np.ndarray
    box: XYWH


Span = tuple[int, int]  # a piece of a place: from one of its cut points to a later one


@dataclass(frozen=True)
class Layout:
    """How a place is read: its pieces, each between two of its cut points (`spans`; 0 is its
    left edge, the largest its right edge), the pieces read without a classifier (`default`:
    the group whole, or the even cuts of surely touching digits), and each piece's size."""

    spans: tuple[Span, ...] = ((0, 1),)
    default: tuple[int, ...] = (0,)
    widths: tuple[float, ...] = (0.0,)  # of each piece, a share of the line's height
    heights: tuple[float, ...] = (1.0,)  # of each piece, a share of its group's height
    guarded: bool = False  # a lone group narrower than `alone_cut`: whole unless scored not one


@dataclass(frozen=True)
class Slot:
    """One place of the line: the images it may be read as (`pieces`, laid out as `layout`
    says). `resolve` keeps the row of pieces the classifier reads best."""

    pieces: tuple[Digit, ...]
    layout: Layout = Layout()

    @property
    def whole(self) -> tuple[Digit, ...]:
        """The digits read without the classifier."""
        return tuple(self.pieces[i] for i in self.layout.default)


Masks = list[tuple[np.ndarray, Box]]  # the pixels and box of each digit


@dataclass(frozen=True)
class Place:
    """A place of the line before framing: its pieces as masks and boxes."""

    masks: Masks
    layout: Layout = Layout()


@dataclass(frozen=True)
class Strokes:
    """Connected components of an ink mask: labels image, boxes (x, y, w, h, area), weights."""

    labels: np.ndarray
    stats: np.ndarray
    weights: np.ndarray


def strokes(mask: np.ndarray, ink: np.ndarray) -> Strokes:
    """The components of `mask`, each weighed by the ink it holds."""
    count, labels, stats, _ = components(mask)
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


def row_bands(stats: np.ndarray) -> list[tuple[int, int, np.ndarray]]:
    """The bands of rows the strokes (`stats` rows) cover, top to bottom: each band's first and
    past-last row and the mask of the strokes in it."""
    tops = stats[:, cv2.CC_STAT_TOP]
    found = bands([(int(t), int(t + h)) for _, t, _, h, _ in stats])
    return [(start, end, (tops >= start) & (tops < end)) for start, end in found]


def without_border_bands(parts: Strokes, kept: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """`kept` less the bands of rows that reach the image border and hold no writing (a
    photo's vignetted corners, the desk around a sheet, the grid at a crop's edge, with at most
    specks inside), when another band holds writing: a stroke inside the image at least the
    share of the heaviest with which the single-digit reader lets an inner blob beat border
    blobs."""
    stats = parts.stats[kept]
    weights = parts.weights[kept]
    border = touches_border(stats, shape)
    writing = ~border & (weights >= PICK.photo_inside_share * weights.max())
    if not writing.any():
        return kept
    keep = np.zeros(len(kept), bool)
    for _, _, members in row_bands(stats):
        if (members & writing).any() or not (members & border).any():
            keep |= members
    return kept[keep]


def above_grain(parts: Strokes, kept: np.ndarray) -> np.ndarray:
    """`kept` less the paper's grain: when at least `grain_count` strokes lie well off the rows
    of the heaviest (`grain_away` of its height) and all of them are light (at most
    `grain_share` of it), they are texture, not a second line, and so is every stroke no
    heavier than the heaviest of them."""
    stats, weights = parts.stats[kept], parts.weights[kept]
    anchor = int(np.argmax(weights))
    top, height = int(stats[anchor, cv2.CC_STAT_TOP]), int(stats[anchor, cv2.CC_STAT_HEIGHT])
    reach = SEG.grain_away * height
    tops, ends = stats[:, cv2.CC_STAT_TOP], stats[:, cv2.CC_STAT_TOP] + stats[:, cv2.CC_STAT_HEIGHT]
    away = (ends < top - reach) | (tops > top + height + reach)
    if away.sum() < SEG.grain_count or weights[away].max() > SEG.grain_share * weights[anchor]:
        return kept
    return kept[weights > weights[away].max()]


def count_lines(stats: np.ndarray, weights: np.ndarray) -> int:
    """Lines of writing: bands of rows holding ink, separated by blank rows, at least a share
    of the tallest band tall (a cap above a 5 is short; the dots of a dotted digit must
    overlap in height to be read as one line). Bands stacked in one column, their strokes of
    at least `column_weight` of the heaviest making a single group across (a 5 whose cap came
    apart, a 2 broken at its turn), are one digit's pieces: one line."""
    found = row_bands(stats)
    tallest = max(end - start for start, end, _ in found)
    lines = sum(end - start >= SEG.tall_share * tallest for start, end, _ in found)
    if lines > 1 and len(group_strokes(stats[weights >= SEG.column_weight * weights.max()])) == 1:
        return 1
    return lines


def writing_bands(parts: Strokes, kept: np.ndarray) -> np.ndarray:
    """`kept` less the bands of rows tall enough to count as lines whose every stroke weighs
    less than `line_weight` of the heaviest (a scrap of the grid or a shadow's edge below the
    digit is no second line); shorter bands (a 5's cap) are left to `in_band`."""
    stats, weights = parts.stats[kept], parts.weights[kept]
    found = row_bands(stats)
    tallest = max(end - start for start, end, _ in found)
    keep = np.ones(len(kept), bool)
    for start, end, members in found:
        tall = end - start >= SEG.tall_share * tallest
        if tall and weights[members].max() < SEG.line_weight * weights.max():
            keep &= ~members
    return kept[keep]


def stroke_edge(parts: Strokes, index: int, ink: np.ndarray) -> float:
    """`edge_width` of one stroke (`parts` row `index`), judged against its own darkest ink."""
    left, top, width, height = (int(v) for v in parts.stats[index, :4])
    pad = 4
    rows = slice(max(top - pad, 0), top + height + pad)
    cols = slice(max(left - pad, 0), left + width + pad)
    mine = parts.labels[rows, cols] == index + 1
    near = cv2.dilate(mine.astype(np.uint8), np.ones((2 * pad + 1,) * 2, np.uint8)) > 0
    return edge_width(np.where(near, ink[rows, cols], 0.0), mine)


def sharp_bands(parts: Strokes, kept: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """`kept` less the bands of rows whose every stroke has a soft edge (`soft_edge`: a shadow's
    border across a photo) when another band holds a pen's sharp stroke."""
    soft = np.array([stroke_edge(parts, int(i), ink) >= SEG.soft_edge for i in kept])
    members = [band for _, _, band in row_bands(parts.stats[kept])]
    if all(soft[band].all() for band in members):
        return kept
    keep = np.ones(len(kept), bool)
    for band in members:
        if soft[band].all():
            keep &= ~band
    return kept[keep]


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


def valleys(profile: np.ndarray, height: float) -> list[int]:
    """Columns where the smoothed ink `profile` is lowest within `valley` of the height either
    side (the middle of each such run), at least `min_piece` from either end."""
    size = max(3, round(SEG.smooth * height)) | 1
    smooth = np.convolve(profile, np.ones(size) / size, mode="same")
    edge = max(1, round(SEG.min_piece * height))
    smooth[:edge] = smooth[profile.size - edge + 1 :] = np.inf  # too near an end to cut
    reach = max(1, round(SEG.valley * height))
    padded = np.pad(smooth, reach, constant_values=np.inf)
    lowest = np.lib.stride_tricks.sliding_window_view(padded, 2 * reach + 1).min(axis=1)
    inner = np.isfinite(np.pad(smooth, 1, constant_values=np.inf))
    inner = inner[:-2] & inner[1:-1] & inner[2:]  # a slope into an end is no valley
    found = np.flatnonzero(inner & (smooth <= lowest))
    runs = np.split(found, np.flatnonzero(np.diff(found) > 1) + 1) if found.size else []
    return [int(run[run.size // 2]) for run in runs]


def on_a_path(spans: set[Span], last: int) -> set[Span]:
    """The spans that lie on some row of pieces from cut point 0 to `last`."""
    ahead, behind = {0}, {last}
    for i, j in sorted(spans):
        if i in ahead:
            ahead.add(j)
    for i, j in sorted(spans, reverse=True):
        if j in behind:
            behind.add(i)
    return {(i, j) for i, j in spans if i in ahead and j in behind}


def spans_over(points: list[Cut], height: float, required: set[Span]) -> set[Span]:
    """The pieces between cut `points` (sorted) that may be one digit and lie on a row of
    pieces across the group, and `required`."""
    low, high = SEG.min_piece * height, SEG.max_piece * height
    at = [float(p.mean()) for p in points]
    found = {
        (i, j)
        for i in range(len(at))
        for j in range(i + 1, len(at))
        if low <= at[j] - at[i] <= high
    }
    return on_a_path(found | required, len(points) - 1)


Cut = np.ndarray  # per row of a group's box, the first column (from its left) right of a cut


def seam_costs(region: np.ndarray, reach: int) -> np.ndarray:
    """For each column of a group's ink `region`, the paths of least ink from the top row down,
    within `reach` columns of it, moving at most one column a row (`bend` per move; ink scaled
    so the strongest is 1): per row, column and offset from the column, the ink of the best
    path down to there."""
    rows, width = region.shape
    ink = (region / max(float(region.max()), 1e-9)).astype(np.float32)
    at = np.arange(width)[:, None] + np.arange(-reach, reach + 1)  # (column, offset) → column
    step = np.where((at >= 0) & (at < width), ink[:, np.clip(at, 0, width - 1)], np.inf)
    totals = np.empty(step.shape, np.float32)
    totals[0] = step[0]
    for row in range(1, rows):
        above, best = totals[row - 1], totals[row - 1].copy()
        np.minimum(best[:, 1:], above[:, :-1] + SEG.bend, out=best[:, 1:])
        np.minimum(best[:, :-1], above[:, 1:] + SEG.bend, out=best[:, :-1])
        np.add(best, step[row], out=totals[row])
    return totals


def seam(totals: np.ndarray, column: int) -> Cut:
    """The least-ink path of `seam_costs` down to `column` of the bottom row, as the column it
    crosses in each row (straight on where a bend costs as much)."""
    reach = (totals.shape[2] - 1) // 2
    offset = np.empty(totals.shape[0], int)
    offset[-1] = reach
    for row in range(totals.shape[0] - 1, 0, -1):
        here = offset[row]
        options = [(float(totals[row - 1, column, here]), here)] + [
            (float(totals[row - 1, column, o]) + SEG.bend, o)
            for o in (here - 1, here + 1)
            if 0 <= o < totals.shape[2]
        ]
        offset[row - 1] = min(options)[1]
    return column + offset - reach


def straight(column: int, rows: int) -> Cut:
    """A vertical cut."""
    return np.full(rows, column, int)


def cut_points(region: np.ndarray, height: float, even: list[Cut], whole: bool) -> list[Cut]:
    """Where a group (its ink `region`) may be cut, sorted: the `even` cuts (its edges
    included), then the least-ink paths down to the valleys of their ink and to those of the
    group's own ink profile (a 1 leaning on a digit's tail: the paths' ink falls all the way
    to the group's end, with no valley there), least first, while the pieces stay within the
    cap."""
    cap = max(SEG.group_candidates, SEG.digit_candidates * (len(even) - 1))
    near = SEG.same_cut * height
    points = list(even)
    rows = region.shape[0]
    halved = np.maximum(region[0::2], np.pad(region[1::2], ((0, rows % 2), (0, 0))))
    totals = seam_costs(halved, max(1, round(SEG.drift * height)))  # two rows a step: faster
    costs = totals[-1, :, totals.shape[2] // 2]
    columns = {*valleys(costs, height), *valleys(region.sum(axis=0), height)}
    for column in sorted(columns, key=lambda c: (costs[c], c)):
        path = np.repeat(seam(totals, column), 2)[:rows]
        if min(np.abs(path - p).mean() for p in points) <= near:
            continue
        trial = sorted([*points, path], key=lambda p: p.mean())
        if len(spans_over(trial, height, required_spans(trial, even, whole))) <= cap:
            points = trial
    return points


def required_spans(points: list[Cut], even: list[Cut], whole: bool) -> set[Span]:
    """The pieces between the `even` cuts (the same arrays) among `points`, and the whole group
    when it may be one."""
    at = [next(i for i, p in enumerate(points) if p is cut) for cut in even]
    return set(pairwise(at)) | ({(0, len(points) - 1)} if whole else set())


def piece_mask(keep: np.ndarray, box: Box, start: Cut, end: Cut) -> tuple[np.ndarray, Box] | None:
    """The pixels of a group's mask between two of its cuts and their box (None if empty)."""
    columns = np.arange(box.width)
    region = keep[box.slices]
    inside = region & (columns >= start[:, None]) & (columns < end[:, None])
    if not inside.any():
        return None
    inner = tight_box(inside)
    piece = np.zeros_like(keep)
    piece[box.slices] = inside
    return piece, inner.shifted(box.top, box.left)


def cut_group(
    keep: np.ndarray,
    ink: np.ndarray,
    box: Box,
    height: float,
    *,
    whole: bool,
    search: bool,
    guarded: bool = False,
) -> Place:
    """A group that may hold touching digits, as pieces between its possible cuts: the whole
    group (when `whole`; the default reading), the even cuts (the default otherwise) and,
    when `search`, pieces between the least-ink paths through it (`guarded`: see `Layout`)."""
    region = np.where(keep[box.slices], ink[box.slices], 0.0)
    columns = cuts(region.sum(axis=0), max(2, round(box.width / (SEG.digit_width * height))))
    even = [straight(column, box.height) for column in columns]
    points = cut_points(region, height, even, whole) if search else even
    required = required_spans(points, even, whole)
    spans = sorted(spans_over(points, height, required) if search else required)
    masks, kept = [], []
    for i, j in spans:
        piece = piece_mask(keep, box, points[i], points[j])
        if piece is not None:
            masks.append(piece)
            kept.append((i, j))
    default = [(0, len(points) - 1)] if whole else sorted(required_spans(points, even, False))
    widths = tuple(float((points[j] - points[i]).mean()) / height for i, j in kept)
    heights = tuple(piece_box.height / box.height for _, piece_box in masks)
    chosen = tuple(kept.index(s) for s in default if s in kept)
    return Place(masks, Layout(tuple(kept), chosen, widths, heights, guarded))


def tight_box(keep: np.ndarray) -> Box:
    """The half-open box around the set pixels of a non-empty mask."""
    rows, cols = np.flatnonzero(keep.any(axis=1)), np.flatnonzero(keep.any(axis=0))
    return Box(int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1)


def group_masks(parts: Strokes, kept: np.ndarray) -> Masks:
    """The pixels and box of each group of strokes, left to right (the box is the union of its
    strokes' boxes, so only the labels inside it are looked up)."""
    masks = []
    for group in group_strokes(parts.stats[kept]):
        members = kept[group]
        lut = np.zeros(len(parts.stats) + 1, bool)
        lut[members + 1] = True
        x, y, w, h = (parts.stats[members, :4].T).astype(int)
        box = Box(int(y.min()), int(x.min()), int((y + h).max()), int((x + w).max()))
        keep = np.zeros(parts.labels.shape, bool)
        keep[box.slices] = lut[parts.labels[box.slices]]
        masks.append((keep, box))
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


def places_of(groups: Masks, ink: np.ndarray, height: float, search: bool) -> list[Place]:
    """The places of a line's groups: a group too wide for one digit is cut (`cut_group`); a
    lone group narrower than `alone_cut` is only cut when the model scores it not one digit."""
    alone = len(groups) == 1
    maybe = SEG.alone_width if alone else SEG.split_width
    places = []
    for keep, box in groups:
        if box.width > maybe * height:
            whole = box.width <= SEG.sure_width * height
            guarded = alone and box.width <= SEG.alone_cut * height
            places.append(
                cut_group(keep, ink, box, height, whole=whole, search=search, guarded=guarded)
            )
        else:
            places.append(Place([(keep, box)]))
    return places


def segment(found: FoundInk) -> list[Place]:
    """The places of the line, left to right, as masks and boxes; [] when nothing stands out.

    Raises ImageError (422) for more than one line of writing or more than MAX_DIGITS digits.
    """
    parts, kept = kept_strokes(found)
    if kept.size == 0:
        return []
    if found.photo:
        kept = without_border_bands(parts, kept, found.mask.shape)
    kept = writing_bands(parts, above_grain(parts, kept))
    if found.photo and count_lines(parts.stats[kept], parts.weights[kept]) > 1:
        kept = sharp_bands(parts, kept, found.ink)
    if count_lines(parts.stats[kept], parts.weights[kept]) > 1:
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
    groups = attach_short(groups, height)
    places = places_of(groups, found.ink, height, search=True)
    if sum(len(place.masks) for place in places) > SEG.request_candidates:
        places = places_of(groups, found.ink, height, search=False)
    found_digits = sum(len(place.layout.default) for place in places)
    if found_digits > MAX_DIGITS:
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
    box = box.shifted(*origin)
    scale_y, scale_x = upright[1] / work[0], upright[0] / work[1]
    x0, y0 = int(np.floor(box.left * scale_x)), int(np.floor(box.top * scale_y))
    x1 = min(upright[0], int(np.ceil(box.right * scale_x)))
    y1 = min(upright[1], int(np.ceil(box.bottom * scale_y)))
    return corner[0] + x0, corner[1] + y0, x1 - x0, y1 - y0


def frame_piece(ink: np.ndarray, keep: np.ndarray, box: Box) -> np.ndarray:
    """The 28×28 of one digit, `frame_digit` and `fit_and_center` on a crop around its box: the
    same pixels as on the whole image (nothing outside the margin counts), for less work."""
    margin = frame_margin(ink.shape)
    top, left = max(box.top - margin, 0), max(box.left - margin, 0)
    bottom, right = box.bottom + margin, box.right + margin
    inner = Box(box.top - top, box.left - left, box.bottom - top, box.right - left)
    crop = frame_digit(ink[top:bottom, left:right], keep[top:bottom, left:right], inner, margin)
    return fit_and_center(crop)


def line_places(found: FoundInk) -> list[Place]:
    """`segment`'s places, where one digit read whole (or only noise) is the single-digit
    reader's own pixels, unchanged."""
    places = segment(found)
    if not places or (len(places) == 1 and len(places[0].layout.default) == 1):
        single = find_digit(found)
        place = places[0] if places else Place([single])
        masks = list(place.masks)
        masks[place.layout.default[0]] = single
        places = [replace(place, masks=masks)]
    return places


def line_box(places: list[Place]) -> Box:
    """The box holding every digit of a line's places as read without a classifier (for one
    digit: `select_digit`'s box, so that `look` zooms on a single digit as `preprocess` does)."""
    boxes = [place.masks[i][1] for place in places for i in place.layout.default]
    return Box(
        min(b.top for b in boxes),
        min(b.left for b in boxes),
        max(b.bottom for b in boxes),
        max(b.right for b in boxes),
    )


def read_view(view: View[list[Place]]) -> list[Slot]:
    """The places of a view's line (`line_places`) in reading order, each framed 28×28, boxes in
    the upload's upright pixels. One digit read whole comes out exactly as `preprocess` frames
    it."""
    found, grey, places = view.found, view.grey, view.located
    corner, size = view.frame[:2], view.frame[2:]

    def framed(masks: Masks) -> tuple[Digit, ...]:
        return tuple(
            Digit(
                frame_piece(found.ink, keep, box),
                to_upload(box, grey.shape, size, found.origin, corner),
            )
            for keep, box in masks
        )

    return [Slot(framed(place.masks), place.layout) for place in places]


def candidate_digits(slots: list[Slot]) -> list[Digit]:
    """Every digit the classifier reads for these slots: each slot's pieces in turn."""
    return [digit for slot in slots for digit in slot.pieces]


def read_slots(grey: np.ndarray, upright: tuple[int, int] | None = None) -> list[Slot]:
    """The places of a decoded grey image's line in reading order, each framed 28×28; boxes
    scaled to `upright` (width, height; default: the grey image's own size)."""
    size = upright or (grey.shape[1], grey.shape[0])
    found = find_ink(grey)
    return read_view(View(grey, found, (0, 0, *size), line_places(found)))


def candidates(slots: list[Slot]) -> list[np.ndarray]:
    """The images of `candidate_digits`, in the same order."""
    return [digit.image for digit in candidate_digits(slots)]


def piece_score(confidence: float, width: float, height: float, digit: float | None) -> float:
    """What one piece adds to a reading: its log confidence, less `piece_cost`, less
    `wide_cost` per line height it is wider than `wide_from` (a merged pair reads confidently
    as one digit), less `short_cost` per group height it is shorter than `short_from` (a
    fragment cut off a digit reads confidently as a 1), plus `digit_weight` times the log
    probability that it is one digit, from the model's reading score `digit` (when it has a
    detector: the lower of the detector's score and the single-digit score, which a merged
    pair or a half digit gets lower than a digit does; `Thresholds.reading_scores`)."""
    wide = max(0.0, width - SEG.wide_from)
    short = max(0.0, SEG.short_from - height)
    log = float(np.log(max(confidence, 1e-12)))
    looks = 0.0 if digit is None else -float(np.logaddexp(0.0, -digit))  # log σ(digit)
    return (
        log
        - SEG.piece_cost
        - SEG.wide_cost * wide
        - SEG.short_cost * short
        + SEG.digit_weight * looks
    )


Scores = list[float] | None  # the digit detector's score per candidate, None without one


def best_path(layout: Layout, confidences: list[float], digits: Scores) -> tuple[int, ...]:
    """The pieces (indices into the place's pieces) from its left edge to its right with the
    highest sum of `piece_score` (the default reading when no row of pieces spans it)."""
    end = max((j for _, j in layout.spans), default=0)
    best: dict[int, tuple[float, tuple[int, ...]]] = {0: (0.0, ())}
    for node in range(1, end + 1):
        options = [
            (
                best[i][0]
                + piece_score(
                    confidences[k],
                    layout.widths[k],
                    layout.heights[k],
                    None if digits is None else digits[k],
                ),
                (*best[i][1], k),
            )
            for k, (i, j) in enumerate(layout.spans)
            if j == node and i in best
        ]
        if options:
            best[node] = max(options, key=lambda option: option[0])
    return best[end][1] if end in best and end > 0 else layout.default


def cut_alone(
    layout: Layout, path: tuple[int, ...], confidences: list[float], digits: Scores
) -> bool:
    """Whether a lone group narrower than `alone_cut` may be read as its `best_path`: the model
    scores it whole below `alone_digit` (not one digit) and each piece of `path` as a digit,
    read at least `alone_piece` surely (a wide digit's halves, or a desk photo's clutter,
    seldom both)."""
    if digits is None or digits[layout.default[0]] >= SEG.alone_digit:
        return False
    return all(confidences[k] >= SEG.alone_piece and digits[k] >= SEG.whole_digit for k in path)


def best_pieces(layout: Layout, confidences: list[float], digits: Scores) -> tuple[int, ...]:
    """The pieces read for one place: its `best_path`, but a group that may be one digit stays
    whole when read whole at least `sure_whole` confidently and the detector scores it at
    least `whole_digit` (at most `whole_width` wide: the detector, if any; wider: a wide 0, a
    2 with a long tail, only with a detector's score), or, at most `whole_width` wide, when
    read whole at least as confidently as the weakest piece of that path. A `guarded` group
    stays whole unless `cut_alone`."""
    if len(layout.default) != 1:
        return best_path(layout, confidences, digits)
    whole = layout.default[0]
    narrow = layout.widths[whole] <= SEG.whole_width
    looks = narrow if digits is None else digits[whole] >= SEG.whole_digit
    if confidences[whole] >= SEG.sure_whole and looks:
        return layout.default
    path = best_path(layout, confidences, digits)
    if layout.guarded and not cut_alone(layout, path, confidences, digits):
        return layout.default
    if narrow and min(confidences[k] for k in path) <= confidences[whole]:
        return layout.default
    return path


def resolve(slots: list[Slot], confidences: list[float], digits: Scores = None) -> list[int]:
    """Indices into `candidates(slots)` of the digits read, in order; `confidences` are the
    classifier's top probabilities (0..1) for the candidates and `digits` its digit detector's
    scores for them (logits: above 0, more likely a digit than not), if it has one."""
    chosen, at = [], 0
    for slot in slots:
        end = at + len(slot.pieces)
        mine = None if digits is None else digits[at:end]
        chosen += [at + i for i in best_pieces(slot.layout, confidences[at:end], mine)]
        at = end
    if len(chosen) > MAX_DIGITS:
        raise ImageError(
            f"{len(chosen)} digits found: at most {MAX_DIGITS} are read at a time", status=422
        )
    return chosen


def read_line(data: bytes) -> list[Slot]:
    """Image bytes → the places of its one line of writing, in reading order (at least one)."""
    return read_view(look(data, line_places, line_box))


def read_unverified(data: bytes) -> list[Digit]:
    """The digits of a line without a classifier: every maybe-touching group read whole."""
    return [digit for slot in read_line(data) for digit in slot.whole]
