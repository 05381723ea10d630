// The "Why?" toggle of the results panel: fetches one model's attribution map on demand
// (POST /api/explain?model=…) and draws it over the 28×28 image the models saw: red where a
// pixel raised the predicted digit's score, blue where it lowered it, alpha by magnitude.
// Its `data-state` (off, pending, shown, error) helps tests.

import { predict } from "./api.js";

const SIDE = 28;
const MAX_ALPHA = 0.85;

/** Paint a 28×28 attribution map onto a 28×28 canvas; returns the pixels painted. */
export function drawMap(canvas, map) {
  const context = canvas.getContext("2d");
  const pixels = context.createImageData(SIDE, SIDE);
  const peak = Math.max(...map.flat().map(Math.abs));
  let painted = 0;
  map.forEach((row, y) =>
    row.forEach((value, x) => {
      const i = 4 * (y * SIDE + x);
      const alpha = peak > 0 ? Math.round(255 * MAX_ALPHA * Math.min(1, Math.abs(value) / peak)) : 0;
      pixels.data[i] = value > 0 ? 230 : 30;
      pixels.data[i + 1] = 40;
      pixels.data[i + 2] = value > 0 ? 30 : 230;
      pixels.data[i + 3] = alpha;
      if (alpha > 0) painted += 1;
    }),
  );
  context.putImageData(pixels, 0, 0);
  return painted;
}

export class WhyToggle {
  constructor(root, url) {
    this.root = root;
    this.url = url;
    this.button = root.querySelector("#why-toggle");
    this.model = root.querySelector("#why-model");
    this.note = root.querySelector("#why-note");
    this.canvas = document.getElementById("why-canvas");
    this.image = null;
    this.controller = null;
    this.button.addEventListener("click", () => (this.on ? this.hide() : this.fetch()));
    this.model.addEventListener("change", () => this.on && this.fetch());
  }

  get on() {
    return this.button.getAttribute("aria-pressed") === "true";
  }

  /** A new answer: forget the old map; `image` is what was sent (File/Blob or data URL). */
  reset(image) {
    this.hide();
    this.image = image;
    this.root.classList.toggle("hidden", !image);
  }

  hide() {
    if (this.controller) this.controller.abort();
    this.controller = null;
    this.button.setAttribute("aria-pressed", "false");
    this.canvas.classList.add("hidden");
    this.canvas.parentElement.classList.remove("explaining");
    this.say("");
    this.root.dataset.state = "off";
  }

  say(text) {
    this.note.textContent = text;
    this.note.classList.toggle("hidden", !text);
  }

  async fetch() {
    if (!this.image) return;
    if (this.controller) this.controller.abort();
    const controller = new AbortController();
    this.controller = controller;
    this.button.setAttribute("aria-pressed", "true");
    this.root.dataset.state = "pending";
    this.say("Explaining…");
    const url = `${this.url}?model=${encodeURIComponent(this.model.value)}`;
    try {
      const { status, data } = await predict(url, this.image, controller.signal);
      if (controller !== this.controller) return;
      if (status === 200 && data && Array.isArray(data.attributions)) {
        drawMap(this.canvas, data.attributions);
        this.canvas.classList.remove("hidden");
        this.canvas.parentElement.classList.add("explaining");
        this.say(`${this.model.selectedOptions[0].textContent} → ${data.prediction}: red raised it, blue lowered it`);
        this.root.dataset.state = "shown";
      } else {
        this.fail((data && data.error) || `The server answered ${status}.`);
      }
    } catch (err) {
      if (err.name === "AbortError" || controller !== this.controller) return;
      this.fail("Cannot reach the server. Check your connection and try again.");
    }
  }

  fail(message) {
    this.canvas.classList.add("hidden");
    this.canvas.parentElement.classList.remove("explaining");
    this.say(message);
    this.root.dataset.state = "error";
  }
}
