"""Each preprocessing step on synthetic images, the decoder guards, and clean MNIST unchanged."""

from __future__ import annotations

import io
import struct
import time
import zlib

import cv2
import numpy as np
import pytest
from PIL import IcoImagePlugin, Image, ImageDraw

from benchmarks.perf_decode import measure
from evalsets import render, writers
from evalsets.encode import container_variants
from evalsets.hostile import big_png, float_tiff, ico_bomb, palette_transparent
from evalsets.items import make_container
from recognition.constants import IMAGE_SIZE
from recognition.limits import IMAGE_FORMATS, MAX_DECODE_BYTES, MAX_IMAGE_BYTES, MAX_PIXELS, MIB
from recognition.preprocessing import (
    FIT_SIZE,
    MNIST_MEAN,
    MNIST_STD,
    ImageError,
    decode_image,
    decoded_bytes,
    fit_and_center,
    ink_and_noise,
    normalize,
    preprocess,
    stretch_faint_cell,
)
from recognition.segmentation import read_line
from tests.helpers import mnist_test_set
from tests.recognition.synthetic import (
    diagonal_shadow,
    draw_four,
    encode,
    evalsets_sample,
    mnist_on_white,
    photo,
    similarity,
)

pytestmark = pytest.mark.unit


# ---------------------------------------------------------------------------------------------
# Synthetic inputs
# ---------------------------------------------------------------------------------------------


def check_model_input(image: np.ndarray) -> None:
    """What every successful preprocess returns."""
    assert image.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert image.max() > 0.9  # the strokes reach full ink


# ---------------------------------------------------------------------------------------------
# The whole chain on synthetic digits
# ---------------------------------------------------------------------------------------------


def test_reference_is_a_centred_digit(reference: np.ndarray) -> None:
    check_model_input(reference)
    ys, xs = np.indices(reference.shape)
    mass = reference.sum()
    assert abs((ys * reference).sum() / mass - 13.5) < 1.0
    assert abs((xs * reference).sum() / mass - 13.5) < 1.0


def sixteen_level_cell(side: int = 8) -> np.ndarray:
    """A bright '4' on black at `side`×`side` with levels 0–16, as scikit-learn's digits are."""
    small = cv2.resize(
        255.0 - draw_four().astype(np.float32), (side, side), interpolation=cv2.INTER_AREA
    )
    return np.round(small / small.max() * 16).astype(np.uint8)


@pytest.mark.parametrize("side", [8, 16])
def test_a_cell_with_sixteen_levels_is_read_like_its_full_range_copy(side: int) -> None:
    cell = sixteen_level_cell(side)
    assert cell.max() == 16  # 6 % of the 8-bit range: too faint to be ink in a photo
    faint = preprocess(encode(cell))
    full = preprocess(encode((cell.astype(np.int32) * 255 // 16).astype(np.uint8)))
    check_model_input(faint)
    assert similarity(faint, full) > 0.99


@pytest.mark.parametrize(("side", "least"), [(8, 0.85), (10, 0.89)])
def test_a_tiny_cell_is_enlarged_smoothly(reference: np.ndarray, side: int, least: float) -> None:
    """A digit stored at 8–10 px is enlarged into MNIST's 20×20 box by a cubic, which keeps
    its strokes closer to the full-resolution digit's than a linear one (0.838 and 0.878)."""
    four = draw_four()
    ys, xs = np.nonzero(four < 128)
    ink = 255 - four[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    cell = cv2.resize(ink, (side, side), interpolation=cv2.INTER_AREA)
    assert similarity(preprocess(encode(cell)), reference) > least


def test_only_a_faint_cell_is_stretched() -> None:
    cell = sixteen_level_cell().astype(np.float32) / 255.0
    assert stretch_faint_cell(cell).max() == pytest.approx(1.0)
    big = cv2.resize(cell, (512, 512), interpolation=cv2.INTER_NEAREST)
    assert stretch_faint_cell(big) is big  # a photo's faint ink is judged against its paper
    full = cell / cell.max()
    assert stretch_faint_cell(full) is full


def fat_cell(side: int, dark_ink: bool) -> np.ndarray:
    """A fat '4' binarised into a 16×16 cell that it fills edge to edge (as scanned forms are),
    its ink over half of the cell, enlarged (nearest) to `side`."""
    img = draw_four(height=0.8, width=round(0.35 * 0.8 * 280))
    ys, xs = np.nonzero(img < 128)
    crop = img[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    cell = np.where(cv2.resize(crop, (16, 16), interpolation=cv2.INTER_AREA) < 128, 0, 255)
    cell = cell.astype(np.uint8) if dark_ink else (255 - cell).astype(np.uint8)
    return cv2.resize(cell, (side, side), interpolation=cv2.INTER_NEAREST)


@pytest.mark.parametrize("dark_ink", [True, False])
@pytest.mark.parametrize("side", [16, 64])
def test_a_fat_digit_filling_its_cell_keeps_its_polarity(side: int, dark_ink: bool) -> None:
    """Ink on most of the image defeats the histogram's skew; the border, mostly background
    even where strokes touch it, tells the polarity (it came out inverted: the gaps between the
    strokes were read as the digit)."""
    cell = fat_cell(side, dark_ink)
    ink = cell < 128 if dark_ink else cell > 128
    assert ink.mean() > 0.5
    framed = np.pad(cell, side // 4, constant_values=255 if dark_ink else 0)
    image = preprocess(encode(cell))
    check_model_input(image)
    assert similarity(image, preprocess(encode(framed))) > 0.95


def form_box(shape: str, size: tuple[int, int], pen: float = 0.12) -> np.ndarray:
    """A scanned form box (`size`: height, width) that a fat '0' or 'u' fills edge to edge,
    strokes `pen` of its height, grey paper with scanner noise."""
    height, width = size
    ink = np.zeros((height * 4, width * 4), np.uint8)
    stroke = round(pen * height * 4)
    axes = (width * 2 - stroke // 2, height * 2 - stroke // 2)
    end = 360 if shape == "zero" else 190
    cv2.ellipse(ink, (width * 2, height * 2), axes, 0, -10, end, 255, stroke)
    share = cv2.resize(ink, (width, height), interpolation=cv2.INTER_AREA) / 255.0
    noise = np.random.default_rng(0).normal(0, 0.015, share.shape)
    return np.clip((0.85 - 0.75 * share + noise) * 255, 0, 255).astype(np.uint8)


@pytest.mark.parametrize(
    ("shape", "size"), [("zero", (180, 165)), ("zero", (196, 150)), ("u", (180, 165))]
)
def test_a_scanned_form_box_is_read_as_evenly_lit(shape: str, size: tuple[int, int]) -> None:
    """A box up to 200 px is a scan, a form cell or a crop, never a scene: its fat strokes,
    which defeat the closings, must not make it a photo (whose selection drops long strokes
    at the border, leaving a scrap). It reads as its copy reduced to 150 px does."""
    box = form_box(shape, size)
    small = cv2.resize(box, (size[1] * 150 // size[0], 150), interpolation=cv2.INTER_AREA)
    assert similarity(preprocess(encode(box)), preprocess(encode(small))) > 0.95


@pytest.mark.parametrize(("ink", "paper"), [(0, 255), (255, 0), (40, 200), (220, 30)])
def test_polarity_does_not_matter(reference: np.ndarray, ink: int, paper: int) -> None:
    image = preprocess(encode(draw_four(ink=ink, paper=paper)))
    check_model_input(image)
    assert similarity(image, reference) > 0.95


@pytest.mark.parametrize("centre", [(0.25, 0.3), (0.75, 0.7), (0.5, 0.22)])
def test_position_does_not_matter(reference: np.ndarray, centre: tuple[float, float]) -> None:
    image = preprocess(encode(draw_four(height=0.35, centre=centre)))
    assert similarity(image, reference) > 0.9


@pytest.mark.parametrize(
    ("shape", "height"), [((56, 56), 0.7), ((600, 800), 0.3), ((2000, 1500), 0.8)]
)
def test_scale_does_not_matter(
    reference: np.ndarray, shape: tuple[int, int], height: float
) -> None:
    image = preprocess(encode(draw_four(shape, height=height)))
    assert similarity(image, reference) > 0.9


def test_fits_the_longer_side_into_20_pixels() -> None:
    image = preprocess(encode(draw_four((300, 300), height=0.9)))
    rows = np.flatnonzero(image.max(axis=1) > 0.05)
    cols = np.flatnonzero(image.max(axis=0) > 0.05)
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 in {FIT_SIZE, FIT_SIZE + 1}


def test_thin_strokes_are_thickened(reference: np.ndarray) -> None:
    """A fine pen, big on the page: strokes a quarter of MNIST's come out nearly as thick."""
    hairline = preprocess(encode(draw_four((800, 800), height=0.8, width=2)))
    assert similarity(hairline, reference) > 0.85
    assert (hairline > 0.5).sum() > 0.6 * (reference > 0.5).sum()


@pytest.mark.parametrize("colour", [(0, 0, 0), (255, 255, 255), (30, 80, 220)])
def test_strokes_on_a_transparent_canvas(reference: np.ndarray, colour: tuple[int, ...]) -> None:
    """A canvas export: colour only where drawn, (0, 0, 0, 0) everywhere else."""
    alpha = 255 - draw_four()
    rgba = np.zeros((*alpha.shape, 4), np.uint8)
    rgba[alpha > 0, :3] = colour
    rgba[..., 3] = alpha
    image = preprocess(encode(Image.fromarray(rgba, "RGBA")))
    assert similarity(image, reference) > 0.95


def test_exif_orientation_is_applied(reference: np.ndarray) -> None:
    upright = Image.fromarray(draw_four((300, 400), height=0.5)).convert("RGB")
    exif = Image.Exif()
    exif[0x0112] = 6  # stored rotated: viewers turn it 90° clockwise
    stored = upright.transpose(Image.Transpose.ROTATE_90)
    image = preprocess(encode(stored, "JPEG", quality=90, exif=exif.tobytes()))
    assert similarity(image, reference) > 0.9
    assert similarity(preprocess(encode(stored, "JPEG", quality=90)), reference) < 0.6


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("palette", lambda g: encode(Image.fromarray(g).convert("P"))),
        (
            "palette+transparency",
            lambda g: encode(Image.fromarray(g).convert("P"), transparency=255),
        ),
        ("16-bit", lambda g: encode(Image.fromarray(g.astype(np.uint16) * 257))),
        ("bilevel", lambda g: encode(Image.fromarray(g).convert("1", dither=Image.Dither.NONE))),
        ("grey+alpha", lambda g: encode(Image.fromarray(g).convert("LA"))),
        ("jpeg cmyk", lambda g: encode(Image.fromarray(g).convert("CMYK"), "JPEG")),
        ("jpeg progressive", lambda g: encode(Image.fromarray(g), "JPEG", progressive=True)),
        ("gif", lambda g: encode(Image.fromarray(g), "GIF")),
        ("tiff lzw", lambda g: encode(Image.fromarray(g), "TIFF", compression="tiff_lzw")),
        ("tiff 16-bit", lambda g: encode(Image.fromarray(g.astype(np.uint16) * 257), "TIFF")),
        ("webp", lambda g: encode(Image.fromarray(g).convert("RGB"), "WEBP", quality=80)),
        ("webp lossless", lambda g: encode(Image.fromarray(g), "WEBP", lossless=True)),
        ("bmp", lambda g: encode(Image.fromarray(g).convert("RGB"), "BMP")),
        ("avif", lambda g: encode(Image.fromarray(g).convert("RGB"), "AVIF", quality=80)),
    ],
)
def test_every_container_decodes_to_the_same_digit(
    reference: np.ndarray, name: str, make: object
) -> None:
    image = preprocess(make(draw_four()))  # type: ignore[operator]
    check_model_input(image)
    assert similarity(image, reference) > 0.93, name


def test_animated_gif_uses_its_first_frame(reference: np.ndarray) -> None:
    first = Image.fromarray(draw_four()).convert("P")
    blank = Image.new("P", first.size, 255)
    data = encode(first, "GIF", save_all=True, append_images=[blank], duration=100)
    assert similarity(preprocess(data), reference) > 0.95


# ---------------------------------------------------------------------------------------------
# Paper, light and dirt
# ---------------------------------------------------------------------------------------------

PHOTO = (900, 1200)


def test_lined_paper_lines_are_removed() -> None:
    plain = draw_four(PHOTO, height=0.2, centre=(0.6, 0.45), ink=30, paper=235)
    lined = plain.copy()
    for y in range(20, PHOTO[0], 45):  # lines closer than the digit is tall, through it
        cv2.line(lined, (0, y), (PHOTO[1], y + 12), 170, 2, cv2.LINE_AA)
    lined = np.minimum(lined, plain)
    clean = preprocess(encode(plain, "JPEG", quality=90))
    image = preprocess(encode(lined, "JPEG", quality=90))
    assert similarity(image, clean) > 0.85


def test_squared_paper_grid_is_removed() -> None:
    plain = draw_four(PHOTO, height=0.25, centre=(0.4, 0.5), ink=40, paper=240)
    grid = plain.copy()
    for k in range(0, max(PHOTO), 40):
        cv2.line(grid, (0, k), (PHOTO[1], k), 185, 1, cv2.LINE_AA)
        cv2.line(grid, (k, 0), (k, PHOTO[0]), 185, 1, cv2.LINE_AA)
    grid = np.minimum(grid, plain)
    clean = preprocess(encode(plain, "JPEG", quality=90))
    assert similarity(preprocess(encode(grid, "JPEG", quality=90)), clean) > 0.85


def test_specks_are_ignored(reference: np.ndarray) -> None:
    rng = np.random.default_rng(3)
    img = draw_four(PHOTO, height=0.3)
    for _ in range(25):
        centre = (int(rng.integers(0, PHOTO[1])), int(rng.integers(0, PHOTO[0])))
        cv2.circle(img, centre, int(rng.integers(1, 4)), 60, -1)
    assert similarity(preprocess(encode(img)), reference) > 0.9


def test_shadow_and_gradient_are_removed(reference: np.ndarray) -> None:
    """A soft shadow edge across the digit, light falling off to one side, noise, JPEG."""
    img = draw_four(PHOTO, height=0.3, centre=(0.45, 0.5), ink=25, paper=235)
    ys, xs = np.mgrid[0 : PHOTO[0], 0 : PHOTO[1]].astype(np.float32)
    light = 1.05 - 0.35 * xs / PHOTO[1]
    light *= 1.0 - 0.5 / (1.0 + np.exp(-(xs + 0.6 * ys - 650) / 15))
    image = preprocess(photo(img, light))
    assert similarity(image, reference) > 0.85


def small_crop(shade: float, noise: float) -> tuple[bytes, np.ndarray]:
    """A 180×230 photo crop of a thin '4' on paper, under a soft shadow across its lower right
    (`shade` its light; 1: none) with sensor noise `noise` (levels in [0, 1]); and the '4' as
    a clean scan."""
    four = draw_four((230, 180), height=0.5, ink=40, paper=230, width=4)
    return photo(four, diagonal_shadow(four.shape, shade, 8), noise=noise), four


@pytest.mark.parametrize(("shade", "noise"), [(1.0, 0.03), (0.5, 0.02), (0.6, 0.025)])
def test_the_noise_of_a_small_crop_is_measured_not_read(shade: float, noise: float) -> None:
    """The paper's level is an upper envelope (a percentile, a closing) that few pixels exceed,
    so the noise measured above it was a third of the real one on a small noisy crop and the
    mask took in the paper (similarity 0.45–0.50 before)."""
    data, four = small_crop(shade, noise)
    assert similarity(preprocess(data), preprocess(encode(four))) > 0.85


def test_the_noise_of_evenly_lit_paper_is_its_spread() -> None:
    data, _ = small_crop(1.0, 0.03)
    _, noise = ink_and_noise(decode_image(data))
    truth = 0.03 / (230 / 255)  # σ relative to the paper's level, as the ink is
    assert 0.7 * truth < float(np.median(noise.spread)) < 1.3 * truth


def test_sheet_edge_and_desk_are_ignored(reference: np.ndarray) -> None:
    img = draw_four(PHOTO, height=0.25, centre=(0.55, 0.5), ink=30, paper=230)
    img[:, :150] = 70  # a dark desk beside the sheet
    img[:90, :] = 70
    image = preprocess(photo(img, np.ones(PHOTO, np.float32)))
    assert similarity(image, reference) > 0.85


@pytest.mark.parametrize(
    "stroke,centre,height",
    [
        (0.22, (0.5, 0.5), 0.45),
        (0.3, (0.5, 0.5), 0.45),
        (0.25, (0.5, 0.8), 0.45),
        (0.35, (0.5, 0.5), 0.45),
        (0.3, (0.5, 0.5), 0.6),
        (0.4, (0.5, 0.5), 0.45),
        (0.35, (0.5, 0.5), 0.6),
    ],
)
def test_a_marker_digit_under_uneven_light_keeps_its_strokes(
    stroke: float, centre: tuple[float, float], height: float
) -> None:
    """A felt-marker '4' whose strokes are a fifth to a third of its height, photographed under
    vignetting, also cropped so tight that its stem runs off the bottom, or so fat that its
    strokes are a sixth of the frame or more (wider than the narrow closing: the wide one
    finds them): the lighting map must not take the fat strokes for paper
    in shadow (which left only their edges: a sliver read as a 1). It comes out as the same '4'
    on even paper does."""
    width = round(stroke * height * min(PHOTO))
    img = draw_four(PHOTO, height=height, centre=centre, width=width, ink=30, paper=225)
    ys, xs = np.mgrid[0 : PHOTO[0], 0 : PHOTO[1]].astype(np.float32)
    vignette = 1.0 - 0.7 * ((xs / PHOTO[1] - 0.5) ** 2 + (ys / PHOTO[0] - 0.5) ** 2)
    even = preprocess(photo(img, np.ones(PHOTO, np.float32)))
    image = preprocess(photo(img, vignette))
    assert image.sum() > 0.6 * even.sum()  # the strokes' ink, not only their edges
    assert similarity(image, even) > 0.9


# tight crops (`evalsets.writers.tight_crop` of an MNIST test digit: its index, the rng's seed)
# of a felt or marker digit whose ink is most of the frame under uneven light; inverted, their
# loops and the paper between strokes were read (similarity 0.24-0.57)
FAT_TIGHT_CROPS = [(465, 1465), (470, 1470), (866, 1866), (1044, 2044)]


@pytest.mark.parametrize(("index", "seed"), FAT_TIGHT_CROPS)
def test_a_fat_digit_cropped_to_its_ink_keeps_dark_ink(index: int, seed: int) -> None:
    """The frame's median is ink and its light uneven, so the photo rule decides the polarity:
    the border, brighter than the mean nearly all round, is paper, whatever the strokes fill."""
    images, _ = mnist_test_set()
    rgb, tags = writers.tight_crop(
        images[index], render.NoiseBank(0, side=512), np.random.default_rng(seed)
    )
    assert tags["polarity"] == "dark_ink"
    assert similarity(preprocess(encode(rgb)), mnist_on_white(images[index])) > 0.75


# positions in evalsets' tight set (seed 0, 300 files) of fat felt or marker digits filling a
# 227-361 px crop under uneven light, dark ink or bright: the lighting map's closings took the
# strokes for paper in shadow and left specks at their edges (the line reader answered 422
# "more than one line", or read a scrap)
HOLLOWED_CROPS = [72, 106, 171, 198, 210, 223, 284, 291]


@pytest.mark.parametrize("position", HOLLOWED_CROPS)
def test_a_fat_digit_filling_a_crop_is_not_taken_for_shadow(position: int) -> None:
    """When the map keeps only a sliver of the deep ink that even light finds, the crop is read
    as evenly lit: it comes out as its MNIST digit on white does."""
    data, index = evalsets_sample("tight", 300, position)
    mnist = mnist_on_white(mnist_test_set()[0][index])
    (slot,) = read_line(data)
    assert slot.layout.default == (0,)
    assert similarity(slot.pieces[0].image, mnist) > 0.75
    assert similarity(preprocess(data), mnist) > 0.75


@pytest.mark.parametrize(("light_level", "blur"), [(0.55, 12), (0.2, 0), (0.2, 2)])
def test_a_shadow_across_a_small_crop_keeps_its_map(light_level: float, blur: int) -> None:
    """A thin 4 in a 300 px crop, its right part in shadow: even light would take the shadow
    for ink, but a soft one is no deep, sharp-edged ink, and under a deep hard one the map keeps
    the 4's strokes whole; so the map stays and the 4 is read as on even paper."""
    img = draw_four((300, 300), height=0.6, ink=30, paper=225)
    light = np.ones((300, 300), np.float32)
    light[:, 170:] = light_level
    if blur:
        light = cv2.GaussianBlur(light, (0, 0), blur)
    even = preprocess(photo(img, np.ones((300, 300), np.float32)))
    assert similarity(preprocess(photo(img, light)), even) > 0.9


@pytest.mark.parametrize("stroke", [4, 12])
def test_a_close_up_of_a_long_thin_stroke_is_not_a_ruling(stroke: int) -> None:
    """A fine-pen '1' filling 84 % of a photo (uneven light) is long, thin and straight like a
    sheet's edge, but ends inside the picture: it must survive."""
    img = np.full(PHOTO, 225, np.uint8)
    cv2.line(img, (624, 75), (576, 825), 35, stroke, cv2.LINE_AA)
    ys, xs = np.mgrid[0 : PHOTO[0], 0 : PHOTO[1]].astype(np.float32)
    vignette = 1.0 - 0.7 * ((xs / PHOTO[1] - 0.5) ** 2 + (ys / PHOTO[0] - 0.5) ** 2)
    image = preprocess(photo(img, vignette))
    rows = np.flatnonzero(image.max(axis=1) > 0.3)
    cols = np.flatnonzero(image.max(axis=0) > 0.3)
    assert rows[-1] - rows[0] + 1 >= FIT_SIZE - 1  # tall
    assert cols[-1] - cols[0] + 1 <= 6  # and narrow: a one


# ---------------------------------------------------------------------------------------------
# Rejections
# ---------------------------------------------------------------------------------------------


def png_declaring(width: int, height: int) -> bytes:
    """A small, valid-looking PNG whose header declares width × height."""
    raw = encode(np.zeros((8, 8), np.uint8))
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    chunk = b"IHDR" + ihdr
    header = struct.pack(">I", len(ihdr)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    return raw[:8] + header + raw[33:]


@pytest.mark.parametrize(
    ("data", "status"),
    [
        (b"", 400),
        (b"\x00" * 64, 400),
        (np.random.default_rng(0).bytes(5000), 400),
        (b"hello, this is text, not an image\n", 400),
        (b'<svg xmlns="http://www.w3.org/2000/svg"><text>4</text></svg>', 400),
        (b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF", 400),
        (encode(draw_four())[:200], 400),  # truncated PNG
        (encode(draw_four(), "JPEG")[:300], 400),  # truncated JPEG
        (png_declaring(0, 0), 400),
        (png_declaring(30000, 10), 400),  # too elongated to hold a digit
        (png_declaring(40000, 40000), 413),  # decompression bomb
        (b"\x00" * (MAX_IMAGE_BYTES + 1), 413),
        (encode(np.full((64, 64), 255, np.uint8)), 422),  # blank: no ink
        (encode(np.full((64, 64), 0, np.uint8)), 422),
    ],
    ids=[
        "empty",
        "zeros",
        "random",
        "text",
        "svg",
        "pdf",
        "png-truncated",
        "jpeg-truncated",
        "0x0",
        "30000x10",
        "bomb",
        "too-many-bytes",
        "white",
        "black",
    ],
)
def test_bad_inputs_are_client_errors(data: bytes, status: int) -> None:
    with pytest.raises(ImageError) as caught:
        preprocess(data)
    assert caught.value.status == status
    assert str(caught.value)


def test_bomb_is_refused_before_decoding() -> None:
    data = png_declaring(40000, 40000)
    assert len(data) < 4096
    start = time.perf_counter()
    with pytest.raises(ImageError):
        decode_image(data)
    assert time.perf_counter() - start < 0.5


# ---------------------------------------------------------------------------------------------
# The decode budget
# ---------------------------------------------------------------------------------------------


def refusal(data: bytes) -> ImageError:
    """The ImageError that decoding `data` raises (fails the test when none is raised)."""
    with pytest.raises(ImageError) as caught:
        decode_image(data)
    return caught.value


def phone_jpeg(size: tuple[int, int], **options: object) -> bytes:
    """A white colour JPEG of `size` with a dark '1' stroke: a phone photo's dimensions."""
    img = Image.new("RGB", size, "white")
    width, height = size
    box = (width // 2, height // 4, width // 2, 3 * height // 4)
    ImageDraw.Draw(img).line(box, fill=(20, 20, 30), width=max(4, width // 40))
    buffer = io.BytesIO()
    img.save(buffer, format=options.pop("format", "JPEG"), quality=85, **options)
    return buffer.getvalue()


def psd_header() -> bytes:
    """The first bytes of a Photoshop file: enough for its signature."""
    return b"8BPS\x00\x01" + b"\x00" * 6 + struct.pack(">HIIHH", 3, 64, 64, 8, 3) + b"\x00" * 64


@pytest.mark.parametrize(
    ("data", "name"),
    [
        (encode(Image.new("RGB", (32, 32), "white"), "ICO"), "ICO"),
        (psd_header(), "PSD"),
        (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 28 28\nshowpage\n", "EPS"),
        (encode(Image.new("L", (32, 32), 255), "PPM"), "PPM"),
    ],
    ids=["ico", "psd", "eps", "ppm"],
)
def test_formats_outside_the_allow_list_are_refused_by_name(
    data: bytes, name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    def never(self: object) -> None:
        raise AssertionError("the ICO plugin ran")

    monkeypatch.setattr(IcoImagePlugin.IcoImageFile, "_open", never)
    error = refusal(data)
    assert error.status == 415
    assert name in str(error)
    assert all(fmt in str(error).upper() for fmt in IMAGE_FORMATS)


def heif_header(major: bytes, *compatible: bytes) -> bytes:
    """The first bytes of an ISO-BMFF file: its "ftyp" box with these brands, then a box."""
    ftyp = major + bytes(4) + b"".join(compatible)
    return (8 + len(ftyp)).to_bytes(4, "big") + b"ftyp" + ftyp + bytes(4) + b"meta" + bytes(64)


@pytest.mark.parametrize(
    "data",
    [heif_header(b"heic", b"mif1", b"heic"), heif_header(b"mif1", b"mif1", b"heix")],
    ids=["iphone-heic", "heif-mif1"],
)
def test_heic_photos_are_refused_by_name_with_a_way_out(data: bytes) -> None:
    error = refusal(data)
    assert error.status == 415
    assert "HEIC" in str(error) and "JPEG" in str(error) and "Most Compatible" in str(error)


def test_a_broken_avif_is_not_called_heic() -> None:
    error = refusal(heif_header(b"mif1", b"mif1", b"avif", b"miaf"))
    assert "HEIC" not in str(error)


def test_unknown_bytes_name_the_accepted_formats() -> None:
    error = refusal(b"just text, no image at all\n" * 4)
    assert error.status == 400
    assert "PNG" in str(error) and "JPEG" in str(error)


def test_ico_wrapping_a_huge_png_costs_nothing() -> None:
    data = ico_bomb(13300)  # 700 KB holding a 13300×13300 RGBA PNG (700 MB decoded)
    assert len(data) < MIB
    result = measure(data)  # in a fresh process: its peak RSS growth
    assert result["status"] == 415
    assert result["seconds"] < 0.5
    assert result["rss_mib"] < 32


def test_pillow_pixel_limit_is_ours_and_its_bomb_warning_a_413() -> None:
    width = MAX_PIXELS // 8000 + 1  # just over the limit: Pillow warns (it errs from twice it)
    for data in (png_declaring(width, 8000), png_declaring(2 * width, 8000)):
        error = refusal(data)
        assert error.status == 413
        assert f"{MAX_PIXELS:,}" in str(error)
    assert Image.MAX_IMAGE_PIXELS == MAX_PIXELS


def test_palette_png_with_transparency_over_the_budget_is_refused_before_decoding() -> None:
    data = palette_transparent(6300)  # the 80 KB, 40 MP case: 1.4 GB once expanded
    start = time.process_time()
    error = refusal(data)
    assert time.process_time() - start < 0.1
    assert error.status == 413
    assert "budget" in str(error)
    small = decode_image(palette_transparent(1000))  # within the budget it decodes
    assert small.shape == (512, 512)


@pytest.mark.parametrize(
    ("mode", "accepted", "refused"),
    [("L", 5000, 5100), ("RGB", 3300, 3400), ("RGBA", 1850, 1950)],
)
def test_the_budget_counts_bytes_per_pixel_of_the_mode(
    mode: str, accepted: int, refused: int
) -> None:
    assert decode_image(big_png(accepted, accepted, mode)).shape == (512, 512)
    error = refusal(big_png(refused, refused, mode))
    assert error.status == 413
    assert f"{refused}×{refused}" in str(error)


def test_decoding_at_the_budget_stays_within_it() -> None:
    data = big_png(3300, 3300, "RGB")
    img = Image.open(io.BytesIO(data))
    assert decoded_bytes(img) <= MAX_DECODE_BYTES
    result = measure(data)  # a fresh process: peak RSS growth of the decoding alone
    assert result["status"] == 200
    assert result["rss_mib"] < 1.25 * MAX_DECODE_BYTES / MIB


@pytest.mark.parametrize("size", [(8000, 6000), (8160, 6120), (6120, 8160)])
def test_50_mp_phone_jpeg_is_accepted_and_fast(size: tuple[int, int]) -> None:
    data = phone_jpeg(size)
    start = time.perf_counter()
    out = preprocess(data)
    assert time.perf_counter() - start < 0.5
    assert out.shape == (IMAGE_SIZE, IMAGE_SIZE)
    assert out.max() > 0.5  # the stroke was found


def test_a_detailed_50_mp_phone_jpeg_over_10_mib_is_accepted() -> None:
    """Sensor grain at quality 92 makes a 50 MP photo 10–20 MB: it must pass the upload limit."""
    rng = np.random.default_rng(0)
    grain = (225 + rng.normal(0, 5, (6120, 8160, 1))).clip(0, 255).astype(np.uint8)
    img = Image.fromarray(grain.repeat(3, axis=2))
    ImageDraw.Draw(img).line((4080, 1530, 4080, 4590), fill=(20, 20, 30), width=204)
    buffer = io.BytesIO()
    img.save(buffer, format="JPEG", quality=92)
    data = buffer.getvalue()
    assert 10 * MIB < len(data) <= MAX_IMAGE_BYTES
    assert preprocess(data).max() > 0.5  # decoded reduced, the stroke found


def test_50_mp_jpeg_decodes_within_the_memory_budget() -> None:
    result = measure(phone_jpeg((8160, 6120)))
    assert result["status"] == 200
    assert result["rss_mib"] < 0.25 * MAX_DECODE_BYTES / MIB  # decoded at 1/8 scale


def test_mpo_from_a_phone_is_decoded_reduced_too() -> None:
    second = Image.new("RGB", (640, 480), "white")  # a second picture makes it an MPO
    data = phone_jpeg((8000, 6000), format="MPO", save_all=True, append_images=[second])
    assert Image.open(io.BytesIO(data)).format == "MPO"
    assert preprocess(data).max() > 0.5


def test_a_progressive_jpeg_counts_its_coefficient_buffer() -> None:
    data = phone_jpeg((8160, 6120), progressive=True)  # libjpeg keeps all 75 M coefficients
    error = refusal(data)
    assert error.status == 413
    assert "progressive" in str(error)


@pytest.mark.parametrize("value", [float("nan"), float("inf"), float("-inf")])
def test_float_tiff_with_non_finite_pixels_is_a_400(value: float) -> None:
    pixels = np.full((64, 64), 0.9, np.float32)
    pixels[20:44, 30:34] = value
    data = encode(Image.fromarray(pixels, "F"), "TIFF")
    with pytest.raises(ImageError) as caught:
        preprocess(data)
    assert caught.value.status == 400
    assert "NaN" in str(caught.value)
    assert refusal(float_tiff(64, value)).status == 400


def test_finite_float_tiff_still_decodes() -> None:
    assert decode_image(float_tiff(300)).shape == (300, 300)


@pytest.mark.parametrize(
    "data",
    [
        encode(draw_four())[:200],  # truncated while decoding
        palette_transparent(6300),  # over the budget
        png_declaring(40000, 40000),  # bomb
        b"\x00" * 64,  # unreadable
    ],
    ids=["truncated", "budget", "bomb", "unreadable"],
)
def test_errors_keep_no_exception_chain(data: bytes) -> None:
    error = refusal(data)
    assert error.__cause__ is None
    assert error.__context__ is None  # no decoder exception, frames or pixels kept alive


def test_every_eval_set_container_passes_the_budget() -> None:
    img28 = mnist_test_set()[0][0]
    rng = np.random.default_rng(0)
    for variant in [*container_variants(), "photo_6000x4000"]:
        _, data, _ = make_container(img28, rng, 0, variant)
        assert decode_image(data).size > 0, variant


def test_faint_noise_is_not_a_digit() -> None:
    rng = np.random.default_rng(1)
    noise = np.clip(200 + rng.normal(0, 2, (300, 300)), 0, 255).astype(np.uint8)
    with pytest.raises(ImageError) as caught:
        preprocess(encode(noise))
    assert caught.value.status == 422


# ---------------------------------------------------------------------------------------------
# The shared pieces: fit_and_center, normalize
# ---------------------------------------------------------------------------------------------


def test_fit_and_center_follows_mnist() -> None:
    ink = np.zeros((100, 60), np.float32)
    ink[10:90, 20:40] = 1.0  # a bar, 80 tall and 20 wide
    out = fit_and_center(ink)
    rows = np.flatnonzero(out.max(axis=1) > 0.05)
    assert rows[-1] - rows[0] + 1 == FIT_SIZE
    ys, xs = np.indices(out.shape)
    assert abs((ys * out).sum() / out.sum() - IMAGE_SIZE / 2) <= 1.0
    assert abs((xs * out).sum() / out.sum() - IMAGE_SIZE / 2) <= 1.0
    assert fit_and_center(np.zeros((5, 5), np.float32)).sum() == 0


def test_normalize_uses_the_training_constants() -> None:
    image = np.array([[0.0, MNIST_MEAN, 1.0]], np.float32)
    np.testing.assert_allclose(
        normalize(image), [[-MNIST_MEAN / MNIST_STD, 0.0, (1 - MNIST_MEAN) / MNIST_STD]], rtol=1e-6
    )
    assert normalize(image).dtype == np.float32


def test_a_phone_sized_jpeg_is_fast() -> None:
    """A loose guard (the benchmark measures the real figure): well under 100 ms each."""
    img = draw_four((1200, 1600), height=0.2, centre=(0.3, 0.6), width=6, ink=30, paper=230)
    data = encode(np.dstack([img] * 3), "JPEG", quality=85)
    preprocess(data)
    times = []
    for _ in range(5):
        start = time.perf_counter()
        preprocess(data)
        times.append(time.perf_counter() - start)
    assert sorted(times)[2] < 0.1


# ---------------------------------------------------------------------------------------------
# Clean MNIST passes through almost unchanged
# ---------------------------------------------------------------------------------------------


@pytest.mark.data
def test_clean_mnist_digits_are_almost_unchanged() -> None:
    images, _ = mnist_test_set()
    sample = images[:: len(images) // 500]
    diffs = [np.abs(preprocess(encode(img)) - img / 255.0).mean() for img in sample]
    assert float(np.mean(diffs)) < 0.005
    assert float(np.percentile(diffs, 99)) < 0.08  # the lead's first version: 0.052


# positions in a development copy of evalsets' tight set (seed 1, 120 files) of a 3 and an 8
# cropped so tight that their strokes run off the frame: those long border blobs were taken for
# clutter and a scrap inside read instead (a dash, an arc: similarity 0.18, 0.13)
RUN_OFF_CROPS = [43, 81]


@pytest.mark.parametrize("position", RUN_OFF_CROPS)
def test_a_digit_running_off_a_tight_crop_is_not_border_clutter(position: int) -> None:
    """In a crop (up to `crop_side`) whose border blobs outweigh all within three times, those
    blobs are the digit."""
    data, index = evalsets_sample("tight", 120, position, seed=1)
    assert similarity(preprocess(data), mnist_on_white(mnist_test_set()[0][index])) > 0.6
