"""The "Why?" toggle in real headless Chromium against the real stack (see test_browser.py)."""

from __future__ import annotations

import io

import pytest

from tests.webui.test_browser import (
    browser,
    chromium_path,
    digits,
    lane_dir,  # noqa: F401 (a fixture that ui_url needs)
    open_page,
    paper_photo,
    playwright_driver,
    screenshot,
    ui_url,
    wait_for_result,
)

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.data]

__all__ = ["browser", "chromium_path", "digits", "open_page", "playwright_driver", "ui_url"]

PAINTED = """() => {
  const canvas = document.getElementById('why-canvas');
  const pixels = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
  let painted = 0;
  for (let i = 3; i < pixels.length; i += 4) if (pixels[i] > 0) painted += 1;
  return painted;
}"""


def wait_for_why(page, state: str) -> None:
    """Wait until the toggle reaches a state (off, pending, shown, error)."""
    page.wait_for_function(f"() => document.getElementById('why').dataset.state === '{state}'")


def upload(page, digits) -> None:
    """Upload a real digit as a paper photo and wait for the answer."""
    pixels, _ = digits[0]
    photo = io.BytesIO()
    paper_photo(pixels).save(photo, format="JPEG", quality=90)
    page.set_input_files(
        "#file-input",
        files=[{"name": "digit.jpg", "mimeType": "image/jpeg", "buffer": photo.getvalue()}],
    )
    wait_for_result(page)


def test_why_draws_the_attribution_heatmap_over_the_seen_image(open_page, ui_url, digits):
    page = open_page(f"{ui_url}/upload")
    upload(page, digits)
    assert page.is_hidden("#why-canvas")
    page.click("#why-toggle")
    wait_for_why(page, "shown")
    assert page.is_visible("#why-canvas")
    assert page.get_attribute("#why-toggle", "aria-pressed") == "true"
    cnn_painted = page.evaluate(PAINTED)
    assert 0 < cnn_painted <= 28 * 28
    assert "CNN" in page.inner_text("#why-note")
    screenshot(page, "upload-why-desktop")

    page.select_option("#why-model", "mlp")
    wait_for_why(page, "shown")
    assert "MLP" in page.inner_text("#why-note")
    assert page.evaluate(PAINTED) > 0

    page.click("#why-toggle")
    wait_for_why(page, "off")
    assert page.is_hidden("#why-canvas")


def test_a_new_answer_hides_the_old_map(open_page, ui_url, digits):
    page = open_page(f"{ui_url}/upload")
    upload(page, digits)
    page.click("#why-toggle")
    wait_for_why(page, "shown")
    upload(page, digits[1:])
    wait_for_why(page, "off")
    assert page.is_hidden("#why-canvas")
