// Draw page: a canvas driven by pointer events (mouse, pen, touch), live predictions while
// drawing (debounced, stale requests aborted), pen width, clear, and a wide pad for numbers.

import { createPredictor } from "./api.js";
import { ResultsPanel } from "./results.js";

const LIVE_DELAY_MS = 250; // pause in drawing before a live prediction
const LIFT_DELAY_MS = 60; // after the pen is lifted

const panel = new ResultsPanel(document.getElementById("results"));
const run = createPredictor(panel);
const canvas = document.getElementById("pad");
const ctx = canvas.getContext("2d");
const pen = document.getElementById("pen-width");
const penValue = document.getElementById("pen-width-value");
const live = document.getElementById("live");
const wide = document.getElementById("wide");
const SIDE = canvas.height; // a square pad; the wide one is WIDE_FACTOR times as wide
const WIDE_FACTOR = 3;

let pointer = null; // id of the pointer drawing now
let last = null;
let hasInk = false;
let timer = null;

function reset() {
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  hasInk = false;
}

function position(event) {
  const box = canvas.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * canvas.width) / box.width,
    y: ((event.clientY - box.top) * canvas.height) / box.height,
  };
}

function stroke(from, to) {
  ctx.strokeStyle = "#111111";
  ctx.lineWidth = Number(pen.value);
  ctx.lineCap = "round";
  ctx.lineJoin = "round";
  ctx.beginPath();
  ctx.moveTo(from.x, from.y);
  ctx.lineTo(to.x, to.y);
  ctx.stroke();
  hasInk = true;
}

function predictNow() {
  clearTimeout(timer);
  if (hasInk) run(canvas.toDataURL("image/png"));
}

function schedule(delay) {
  if (!live.checked) return;
  clearTimeout(timer);
  timer = setTimeout(predictNow, delay);
}

canvas.addEventListener("pointerdown", (event) => {
  if (pointer !== null) return; // a second finger: ignore
  event.preventDefault();
  pointer = event.pointerId;
  canvas.setPointerCapture(pointer);
  last = position(event);
  stroke(last, last);
  schedule(LIVE_DELAY_MS);
});

canvas.addEventListener("pointermove", (event) => {
  if (event.pointerId !== pointer) return;
  const events = event.getCoalescedEvents ? event.getCoalescedEvents() : [event];
  for (const each of events.length ? events : [event]) {
    const next = position(each);
    stroke(last, next);
    last = next;
  }
  schedule(LIVE_DELAY_MS);
});

function lift(event) {
  if (event.pointerId !== pointer) return;
  pointer = null;
  last = null;
  schedule(LIFT_DELAY_MS);
}
canvas.addEventListener("pointerup", lift);
canvas.addEventListener("pointercancel", lift);

pen.addEventListener("input", () => {
  penValue.textContent = pen.value;
});
function clearAll() {
  clearTimeout(timer);
  run.cancel();
  reset();
  panel.clear();
}
document.getElementById("clear").addEventListener("click", clearAll);
wide.addEventListener("change", () => {
  canvas.width = wide.checked ? WIDE_FACTOR * SIDE : SIDE; // resizing wipes the drawing
  canvas.classList.toggle("wide", wide.checked);
  canvas.parentElement.classList.toggle("wide", wide.checked);
  clearAll();
});
document.getElementById("predict").addEventListener("click", () => {
  if (hasInk) predictNow();
  else panel.error("Draw a digit first.");
});

reset();
