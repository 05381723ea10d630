"""End to end in real headless Chromium: draw, upload and camera pages against the real stack.

The web UI runs under gunicorn with config/gunicorn.conf.py, in front of the session's real
TorchServe; Debian's /usr/bin/chromium is driven by Playwright (never a downloaded browser).
Screenshots go to artifacts/screenshots/ (gitignored), at desktop and phone sizes.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import requests
from PIL import Image

from stack.ports import free_ports
from tests.helpers import REPO_ROOT, drawn_letter, read_right_by_both, wait_for_health
from webui.shedding import Lanes

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.data]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO_ROOT / "artifacts" / "screenshots"
DESKTOP = {"viewport": {"width": 1280, "height": 900}}
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
TIMEOUT_MS = 15_000


# ---------------------------------------------------------------------------------------------
# The real stack: TorchServe (session fixture), gunicorn, Chromium
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def chromium_path() -> Path:
    if not CHROMIUM.is_file():
        pytest.skip(f"{CHROMIUM} is missing: install Debian's chromium package (apt-get)")
    return CHROMIUM


@pytest.fixture(scope="module")
def lane_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where the web UI's costly-image lanes live (so a test can hold one)."""
    return tmp_path_factory.mktemp("lanes")


@pytest.fixture(scope="module")
def ui_url(torchserve, chromium_path, lane_dir) -> Iterator[str]:
    """The web UI served by gunicorn on a free loopback port, in front of the real TorchServe."""
    (port,) = free_ports(1)
    env = {
        **os.environ,
        "WEBUI_LANE_DIR": str(lane_dir),
        "WEBUI_INFERENCE_URL": torchserve.inference_url,
        "WEBUI_MANAGEMENT_URL": torchserve.management_url,
        "WEBUI_KEY_FILE": str(torchserve.key_file),
        "GUNICORN_BIND": f"127.0.0.1:{port}",
        "GUNICORN_WORKERS": "1",
        "GUNICORN_THREADS": "4",
    }
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "-c",
        "config/gunicorn.conf.py",
        "webui:create_app()",
    ]
    server = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_health(url, server, 30, 0.2, lambda: server.stderr.read().decode()[-2000:])
        yield url
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        server.stderr.close()


@pytest.fixture(scope="module")
def playwright_driver():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright_driver, chromium_path):
    browser = playwright_driver.chromium.launch(
        executable_path=str(chromium_path), args=CHROMIUM_ARGS
    )
    yield browser
    browser.close()


class PageErrors:
    """Console errors and uncaught exceptions of a page (a CSP violation shows up here).

    Chromium also logs each 4xx/5xx answer as a console error; those are expected answers of the
    API, checked by the tests themselves.
    """

    def __init__(self, page) -> None:
        self.messages: list[str] = []
        page.on("pageerror", lambda exc: self.messages.append(f"pageerror: {exc}"))
        page.on("console", self.console)

    def console(self, message) -> None:
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            self.messages.append(f"console: {message.text}")


@pytest.fixture
def open_page(browser):
    """Open a page of the UI in a fresh context; no console error may happen on it."""
    contexts, watchers = [], []

    def open_(url: str, device: dict | None = None, on=None):
        context = (on or browser).new_context(**(device or DESKTOP))
        context.set_default_timeout(TIMEOUT_MS)
        contexts.append(context)
        page = context.new_page()
        watchers.append(PageErrors(page))
        page.goto(url)
        return page

    yield open_
    for context in contexts:
        context.close()
    errors = [m for w in watchers for m in w.messages]
    assert not errors, errors


def screenshot(page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)


def wait_for_result(page) -> dict[str, str]:
    """Wait until the results panel shows an answer and no request is in flight; its text."""
    page.wait_for_function(
        "() => { const r = document.getElementById('results');"
        " return r.dataset.state === 'done' && r.getAttribute('aria-busy') === 'false'; }"
    )
    return {
        field: page.inner_text(f"#{field}")
        for field in ("ensemble-prediction", "mlp-prediction", "cnn-prediction", "agreement")
    }


# ---------------------------------------------------------------------------------------------
# Real MNIST digits both models read correctly (this tests the UI, not the models)
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def digits(torchserve) -> list[tuple[np.ndarray, int]]:
    """Test-set digits of different classes that both served models read right."""
    chosen = read_right_by_both(torchserve, 4)
    assert len(chosen) >= 3, "too few MNIST test digits read correctly by both models"
    return chosen


def paper_photo(pixels: np.ndarray, size: int = 400) -> Image.Image:
    """An MNIST digit as dark ink on light grey paper, enlarged: like a scan or a photo."""
    ink = Image.fromarray(pixels).resize((size * 2 // 3,) * 2, Image.BILINEAR)
    paper = Image.new("L", (size, size), 225)
    dark = Image.fromarray((225 - np.asarray(ink, np.float32) * 200 / 255).astype(np.uint8))
    offset = (size - ink.width) // 2
    paper.paste(dark, (offset, offset), mask=ink)
    return paper


# ---------------------------------------------------------------------------------------------
# Pages
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("device", "size"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_home_page(open_page, ui_url, device, size):
    page = open_page(ui_url, device)
    page.wait_for_function("() => document.getElementById('health').dataset.state === 'good'")
    assert page.inner_text("#health") == "MLP ready · CNN ready"
    assert page.locator(".card").count() == 3
    screenshot(page, f"home-{size}")


def draw_digit(page, pixels: np.ndarray, pause_after_row: int = 14, place: int = 0) -> None:
    """Trace an MNIST digit on the canvas with the mouse: one stroke per run of ink per row,
    in the `place`-th square of the pad (the wide pad holds three side by side).

    Halfway down it pauses as a person would, which lets a live prediction go out.
    """
    box = page.locator("#pad").bounding_box()
    cell = box["height"] / 28
    box = {**box, "x": box["x"] + place * box["height"]}
    # pen as wide as one MNIST pixel on the canvas (the canvas has 280 pixels across)
    page.locator("#pen-width").evaluate(
        "(el) => { el.value = 12; el.dispatchEvent(new Event('input')); }"
    )
    for row in range(28):
        ink = np.flatnonzero(pixels[row] > 110)
        if ink.size == 0:
            continue
        runs = np.split(ink, np.flatnonzero(np.diff(ink) > 1) + 1)
        y = box["y"] + (row + 0.5) * cell
        for run in runs:
            x0 = box["x"] + (run[0] + 0.5) * cell
            x1 = box["x"] + (run[-1] + 0.5) * cell
            page.mouse.move(x0, y)
            page.mouse.down()
            page.mouse.move(x1, y, steps=max(2, len(run)))
            page.mouse.up()
        if row == pause_after_row:
            page.wait_for_timeout(500)


@pytest.mark.parametrize(("device", "size"), [(DESKTOP, "desktop"), (PHONE, "phone")])
def test_draw_a_real_digit_and_see_it_read_live(open_page, ui_url, digits, device, size):
    pixels, label = digits[0] if size == "desktop" else digits[1]
    page = open_page(f"{ui_url}/draw", device)
    requests_made: list[str] = []
    page.on("request", lambda r: requests_made.append(r.url) if "/api/predict" in r.url else None)
    draw_digit(page, pixels)
    page.wait_for_timeout(400)  # past the live-prediction debounce
    shown = wait_for_result(page)
    assert shown["ensemble-prediction"] == str(label), shown
    assert shown["mlp-prediction"] == str(label) or shown["cnn-prediction"] == str(label)
    assert len(requests_made) >= 2, "no live prediction while drawing"
    assert page.locator("#seen-image").evaluate("(img) => img.complete && img.naturalWidth") == 28
    bars = page.locator("#cnn-chart .bar-column.top .bar-label").inner_text()
    assert bars == shown["cnn-prediction"]
    screenshot(page, f"draw-{size}")

    page.click("#clear")
    assert page.get_attribute("#results", "data-state") == "empty"
    assert page.is_hidden("#results-body")


def test_draw_a_number_on_the_wide_pad(open_page, ui_url, digits):
    """Three digits on the wide pad: the page shows the number large and a box per digit."""
    page = open_page(f"{ui_url}/draw")
    page.check("#wide")
    box = page.locator("#pad").bounding_box()
    assert box["width"] == pytest.approx(3 * box["height"], rel=0.01)
    assert page.locator("#pad").evaluate("(c) => [c.width, c.height]") == [840, 280]
    page.uncheck("#live")
    for place, (pixels, _label) in enumerate(digits[:3]):
        draw_digit(page, pixels, pause_after_row=-1, place=place)
    page.click("#predict")
    wait_for_result(page)
    expected = "".join(str(label) for _, label in digits[:3])
    page.wait_for_function("() => document.getElementById('results').dataset.boxes === '3'")
    assert page.get_attribute("#results", "data-number") == expected
    assert page.inner_text("#number") == expected
    assert page.is_visible("#reading-image")
    labels = page.locator(".digit-box .digit-label").all_inner_texts()
    assert labels == list(expected)
    # each box lies over the square its digit was drawn in, left to right
    shown = page.locator("#reading-image").bounding_box()
    for place, digit_box in enumerate(page.locator(".digit-box").all()):
        frame = digit_box.bounding_box()
        centre = (frame["x"] + frame["width"] / 2 - shown["x"]) / shown["width"]
        assert place / 3 < centre < (place + 1) / 3, (place, centre)
    # under the number, each digit's 28×28 input; the top level shows one of them
    strip = page.locator("#seen-strip li")
    assert strip.count() == 3
    assert strip.locator("span").all_inner_texts() == list(expected)
    seen = int(page.get_attribute("#results", "data-seen"))
    assert 1 <= seen <= 3
    assert page.locator("#seen-strip li.seen-now").count() == 1
    assert page.get_attribute(f"#seen-strip li:nth-child({seen}) img", "src") == page.get_attribute(
        "#seen-image", "src"
    )
    assert f"digit {seen} of 3" in page.inner_text("#seen-detail")
    screenshot(page, "draw-number-desktop")
    page.uncheck("#wide")
    assert page.locator("#pad").evaluate("(c) => [c.width, c.height]") == [280, 280]
    assert page.get_attribute("#results", "data-state") == "empty"


def test_upload_a_real_digit(open_page, ui_url, digits):
    pixels, label = digits[2]
    photo = io.BytesIO()
    paper_photo(pixels).save(photo, format="JPEG", quality=90)
    page = open_page(f"{ui_url}/upload")
    page.set_input_files(
        "#file-input",
        files=[{"name": "digit.jpg", "mimeType": "image/jpeg", "buffer": photo.getvalue()}],
    )
    shown = wait_for_result(page)
    assert shown["ensemble-prediction"] == str(label), shown
    assert page.is_visible("#preview")
    assert "digit.jpg" in page.inner_text("#file-name")
    assert page.inner_text("#number") == str(label)
    page.wait_for_function("() => document.getElementById('results').dataset.boxes === '1'")
    assert page.is_hidden("#seen-strip")  # one digit: no strip, the plain caption
    assert page.inner_text("#seen-detail") == "28 × 28 pixels"
    screenshot(page, "upload-desktop")
    page.set_viewport_size(PHONE["viewport"])
    screenshot(page, "upload-phone")


def test_a_busy_server_is_asked_again_and_the_photo_is_read(open_page, ui_url, lane_dir, digits):
    """Another photo holds the only costly-image lane: the UI answers 503 + Retry-After, the page
    asks again after it and shows the reading once the lane is free."""
    pixels, label = digits[3]
    big = Image.fromarray(255 - pixels).resize((1100, 1100), Image.Resampling.BICUBIC)
    photo = io.BytesIO()
    big.save(photo, format="PNG")  # 1.2 MP declared: a costly image
    held = Lanes(lane_dir, 1).try_take()
    assert held is not None
    release = threading.Timer(1.5, Lanes.give_back, (held,))
    page = open_page(f"{ui_url}/upload")
    release.start()
    try:
        page.set_input_files(
            "#file-input",
            files=[{"name": "big.png", "mimeType": "image/png", "buffer": photo.getvalue()}],
        )
        shown = wait_for_result(page)
    finally:
        release.join()
    assert shown["ensemble-prediction"] == str(label), shown


def test_upload_a_file_that_is_no_image_shows_the_error(open_page, ui_url):
    page = open_page(f"{ui_url}/upload")
    page.set_input_files(
        "#file-input",
        files=[{"name": "notes.png", "mimeType": "image/png", "buffer": b"\x00\xffnot a PNG"}],
    )
    page.wait_for_function("() => document.getElementById('results').dataset.state === 'error'")
    assert "not a readable image" in page.inner_text("#results-error")
    screenshot(page, "upload-error-desktop")


def write_y4m(path: Path, frame: Image.Image, frames: int = 10) -> None:
    """A raw YUV 4:2:0 video (what Chromium's fake camera reads) repeating one grey frame."""
    width, height = frame.size
    luma = np.asarray(frame.convert("L"), np.uint8).tobytes()
    chroma = bytes([128]) * ((width // 2) * (height // 2))
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F10:1 Ip A1:1 C420jpeg\n".encode())
        for _ in range(frames):
            out.write(b"FRAME\n" + luma + chroma + chroma)


@pytest.fixture
def camera_browser(playwright_driver, chromium_path, digits, tmp_path):
    """Chromium whose fake camera films a sheet of paper with a real MNIST digit on it."""
    pixels, label = digits[-1]
    scene = Image.new("L", (640, 480), 200)
    scene.paste(paper_photo(pixels, 360), (140, 60))
    video = tmp_path / "digit.y4m"
    write_y4m(video, scene)
    browser = playwright_driver.chromium.launch(
        executable_path=str(chromium_path),
        args=[
            *CHROMIUM_ARGS,
            "--use-fake-ui-for-media-stream",
            "--use-fake-device-for-media-stream",
            f"--use-file-for-fake-video-capture={video}",
        ],
    )
    yield browser, label
    browser.close()


def test_camera_capture_of_a_real_digit(open_page, ui_url, camera_browser):
    browser, label = camera_browser
    page = open_page(f"{ui_url}/camera", on=browser)
    page.wait_for_function("() => document.getElementById('video').videoWidth > 0")
    page.wait_for_selector("#capture:enabled")
    page.wait_for_timeout(300)  # a few frames in
    screenshot(page, "camera-live-desktop")
    page.click("#capture")
    shown = wait_for_result(page)
    assert shown["ensemble-prediction"] == str(label), shown
    assert page.is_visible("#snapshot") and page.is_visible("#retake")
    screenshot(page, "camera-desktop")
    page.set_viewport_size(PHONE["viewport"])
    screenshot(page, "camera-phone")
    page.click("#retake")
    assert page.is_visible("#video")


@pytest.fixture
def refusing_browser(playwright_driver, chromium_path):
    """Chromium with a (fake) camera whose permission prompt is always refused."""
    browser = playwright_driver.chromium.launch(
        executable_path=str(chromium_path),
        args=[*CHROMIUM_ARGS, "--use-fake-device-for-media-stream", "--deny-permission-prompts"],
    )
    yield browser
    browser.close()


def test_camera_page_explains_when_there_is_no_camera(open_page, ui_url):
    page = open_page(f"{ui_url}/camera", PHONE)  # this browser has no camera at all
    page.wait_for_selector("#camera-message:visible")
    assert page.inner_text("#camera-message").startswith("No camera was found")
    assert page.is_disabled("#capture")
    assert page.is_visible("#start-camera")
    screenshot(page, "camera-none-phone")


def test_camera_page_explains_a_refused_permission(open_page, ui_url, refusing_browser):
    page = open_page(f"{ui_url}/camera", on=refusing_browser)
    page.wait_for_selector("#camera-message:visible")
    assert page.inner_text("#camera-message").startswith("Camera permission was refused")
    assert page.is_disabled("#capture")
    screenshot(page, "camera-refused-desktop")


def test_the_browser_enforces_the_csp_against_inline_script(browser, ui_url):
    context = browser.new_context(**DESKTOP)
    try:
        page = context.new_page()
        errors = PageErrors(page)
        page.goto(ui_url)
        page.evaluate(
            "() => { const s = document.createElement('script');"
            " s.textContent = 'window.injected = true'; document.body.append(s); }"
        )
        assert page.evaluate("() => window.injected === undefined")
        assert any("Content Security Policy" in m for m in errors.messages), errors.messages
        framed = page.evaluate(
            "async (url) => (await fetch(url)).headers.get('x-frame-options')", ui_url
        )
        assert framed == "DENY"
    finally:
        context.close()


def test_an_abstention_is_shown_instead_of_a_digit(open_page, ui_url):
    """A drawn letter the ensemble declines to read shows the plain message, no big digit."""
    # This tests the UI, not the models: use the first capital the API abstains on.
    for letter in "AKMWXBEHNRTZ":
        data = drawn_letter(letter)
        answer = requests.post(
            f"{ui_url}/api/predict", files={"file": ("l.png", data, "image/png")}, timeout=30
        ).json()
        if answer.get("abstain") is True:
            break
    else:
        pytest.fail("the API abstained on none of the drawn capitals")
    page = open_page(f"{ui_url}/upload")
    page.set_input_files(
        "#file-input", files=[{"name": "letter.png", "mimeType": "image/png", "buffer": data}]
    )
    wait_for_result(page)
    assert page.get_attribute("#results", "data-abstain") == "true"
    message = page.inner_text("#abstain-message")
    assert "doesn't look like a digit" in message or "can't tell" in message, message
    assert not page.is_visible("#ensemble-prediction")
    screenshot(page, "upload-abstain-desktop")
