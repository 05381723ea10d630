// The results panel: both models' answers, their probability charts, the ensemble and the
// 28×28 image the models saw; for a number, the image sent with a box per digit and the number
// read. Its `data-state` (empty, pending, done, error) helps tests, `data-abstain` (true, false)
// says whether the ensemble declined to name a digit (any digit of a number), `data-number` is
// the number shown, `data-boxes` how many digit boxes are drawn and `data-seen` which digit
// (1-based) the 28×28 image and the top-level answer describe.

import { WhyToggle } from "./explain.js";

const ROLES = ["mlp", "cnn"];
const NOT_A_DIGIT = "does not look like a digit";

/** Plain words for an abstention reason: "unsure: 4 or 9" → "4 or 9? The models can't tell". */
export function abstentionText(reason) {
  const unsure = /^unsure: (\d) or (\d)$/.exec(reason || "");
  if (unsure) return `${unsure[1]} or ${unsure[2]}? The models can't tell`;
  return "That doesn't look like a digit";
}

function modelReason(reason) {
  const unsure = /^unsure: (\d) or (\d)$/.exec(reason || "");
  if (unsure) return `Unsure: ${unsure[1]} or ${unsure[2]}`;
  return reason === NOT_A_DIGIT ? "Not a digit" : reason || "";
}

/** Which digit (0-based) of a number the top-level answer describes: the one whose image it
 * carries (the web UI sends the least sure digit's), or -1. */
export function seenIndex(digits, image) {
  return image ? digits.findIndex((digit) => digit.image === image) : -1;
}

/** Plain words under a number: how many digits are unsure ("?"), or that none was read. */
export function numberNote(number) {
  if (number === null || number === undefined) return "No digit could be read";
  const unsure = [...number].filter((c) => c === "?").length;
  if (!unsure) return "";
  return unsure === 1 ? "One digit is unsure (?)" : `${unsure} digits are unsure (?)`;
}

function percent(value) {
  return value === null || value === undefined ? "" : `${Number(value).toFixed(1)} %`;
}

function buildChart(chart) {
  chart.replaceChildren();
  for (let digit = 0; digit < 10; digit += 1) {
    const column = document.createElement("div");
    column.className = "bar-column";
    const track = document.createElement("div");
    track.className = "bar-track";
    const bar = document.createElement("div");
    bar.className = "bar";
    track.append(bar);
    const label = document.createElement("span");
    label.className = "bar-label";
    label.textContent = String(digit);
    column.append(track, label);
    chart.append(column);
  }
}

function fillChart(chart, probabilities) {
  const best = probabilities ? probabilities.indexOf(Math.max(...probabilities)) : -1;
  chart.querySelectorAll(".bar-column").forEach((column, digit) => {
    const value = probabilities ? probabilities[digit] : 0;
    const bar = column.querySelector(".bar");
    bar.style.height = `${Math.max(0, Math.min(100, value))}%`;
    column.classList.toggle("top", digit === best);
    column.title = probabilities ? `${digit}: ${percent(value)}` : "";
  });
}

export class ResultsPanel {
  /** `reveal`: scroll the panel into view when an answer lands below the fold (phones). */
  constructor(root, { reveal = false } = {}) {
    this.root = root;
    this.reveal = reveal;
    this.url = root.dataset.url;
    this.el = (id) => root.querySelector(`#${id}`);
    for (const role of ROLES) buildChart(this.el(`${role}-chart`));
    this.why = new WhyToggle(this.el("why"), root.dataset.explainUrl);
    this.sentUrl = null; // object URL of the image sent, when it was a Blob
    this.shown = 0; // which answer the digit boxes belong to
    this.root.dataset.state = "empty";
  }

  pending() {
    this.root.setAttribute("aria-busy", "true");
    this.root.classList.add("pending");
  }

  idle(state) {
    this.root.setAttribute("aria-busy", "false");
    this.root.classList.remove("pending");
    this.root.dataset.state = state;
    if (this.reveal && state !== "empty") this.scrollIntoViewIfHidden();
  }

  scrollIntoViewIfHidden() {
    const top = this.root.getBoundingClientRect().top;
    if (top > window.innerHeight - 120) {
      const smooth = !window.matchMedia("(prefers-reduced-motion: reduce)").matches;
      this.root.scrollIntoView({ behavior: smooth ? "smooth" : "auto", block: "start" });
    }
  }

  clear() {
    this.el("results-empty").classList.remove("hidden");
    this.el("results-error").classList.add("hidden");
    this.el("results-body").classList.add("hidden");
    this.idle("empty");
  }

  error(message) {
    const box = this.el("results-error");
    box.textContent = message;
    box.classList.remove("hidden");
    this.el("results-empty").classList.add("hidden");
    this.el("results-body").classList.add("hidden");
    this.idle("error");
  }

  /** `sent`: the image sent (File/Blob or data URL), for the "Why?" toggle to explain. */
  show(data, sent = null) {
    this.el("results-empty").classList.add("hidden");
    this.el("results-error").classList.add("hidden");
    const abstain = data.abstain === true;
    const digit = this.el("ensemble-prediction");
    digit.textContent = abstain ? "" : String(data.ensemble_prediction);
    digit.classList.toggle("hidden", abstain);
    const message = this.el("abstain-message");
    message.textContent = abstain ? abstentionText(data.reason) : "";
    message.classList.toggle("hidden", !abstain);
    this.root.dataset.abstain = String(abstain);
    this.el("ensemble-confidence").textContent = abstain ? "" : percent(data.ensemble_confidence);
    const badge = this.el("agreement");
    badge.textContent =
      data.agree === true ? "Both agree" : data.agree === false ? "They disagree" : "One model only";
    badge.className = `badge ${data.agree === true ? "good" : "warn"}`;

    const image = this.el("seen-image");
    if (data.image) image.src = `data:image/png;base64,${data.image}`;
    image.classList.toggle("hidden", !data.image);
    this.why.reset(data.image ? sent : null);

    const errors = data.errors || {};
    const latency = data.latency_ms || {};
    for (const role of ROLES) {
      const prediction = data[`${role}_prediction`];
      const missing = prediction === null || prediction === undefined;
      this.el(`model-${role}`).classList.toggle("down", missing);
      this.el(`${role}-prediction`).textContent = missing ? "–" : String(prediction);
      this.el(`${role}-confidence`).textContent = percent(data[`${role}_confidence`]);
      fillChart(this.el(`${role}-chart`), data.probabilities ? data.probabilities[role] : null);
      const reason = this.el(`${role}-reason`);
      const abstained = data[`${role}_abstain`] === true;
      reason.textContent = abstained ? modelReason(data[`${role}_reason`]) : "";
      reason.classList.toggle("hidden", !abstained);
      const error = this.el(`${role}-error`);
      error.textContent = errors[role] ? `Unavailable: ${errors[role]}` : "";
      error.classList.toggle("hidden", !errors[role]);
      this.el(`${role}-latency`).textContent = missing ? "" : `${latency[role]} ms`;
    }
    this.showNumber(data.digits || [], data.number, sent);
    this.showStrip(data.digits || [], data.image);
    this.el("timing").textContent = `Answered in ${latency.total} ms`;
    this.el("results-body").classList.remove("hidden");
    this.idle("done");
  }

  /** The number, large, and the image sent with each digit's box and reading over it. */
  showNumber(digits, number, sent) {
    const shown = (this.shown += 1);
    const frame = this.el("reading-frame");
    frame.querySelectorAll(".digit-box").forEach((box) => box.remove());
    this.root.dataset.boxes = "0";
    this.root.dataset.number = number ?? "";
    this.el("number").textContent = number ?? "–";
    const note = this.el("number-note");
    note.textContent = numberNote(number);
    note.classList.toggle("hidden", !note.textContent);
    if (this.sentUrl) URL.revokeObjectURL(this.sentUrl);
    this.sentUrl = sent && typeof sent !== "string" ? URL.createObjectURL(sent) : null;
    const image = this.el("reading-image");
    image.classList.toggle("hidden", !sent);
    this.el("reading").classList.toggle("hidden", !digits.length);
    if (!sent) return;
    image.src = this.sentUrl || sent;
    image
      .decode()
      .then(() => {
        if (shown === this.shown) this.drawBoxes(digits, image);
      })
      .catch(() => image.classList.add("hidden")); // the browser cannot show it
  }

  /** For a number, each digit's 28×28 image under it, and which of them the top level shows. */
  showStrip(digits, image) {
    const strip = this.el("seen-strip");
    const many = digits.length > 1;
    const seen = many ? seenIndex(digits, image) : -1;
    strip.replaceChildren(
      ...(many ? digits : []).map((digit, index) => {
        const item = document.createElement("li");
        item.classList.toggle("seen-now", index === seen);
        const img = document.createElement("img");
        img.width = 56;
        img.height = 56;
        img.alt = `Digit ${index + 1}: the 28×28 image the models saw`;
        if (digit.image) img.src = `data:image/png;base64,${digit.image}`;
        const label = document.createElement("span");
        label.textContent = digit.ensemble.abstain === true ? "?" : String(digit.ensemble.prediction);
        item.append(img, label);
        return item;
      }),
    );
    strip.classList.toggle("hidden", !many);
    this.root.dataset.seen = String(seen + 1);
    this.el("seen-detail").textContent =
      seen >= 0
        ? `28 × 28 pixels · digit ${seen + 1} of ${digits.length}, the least sure`
        : "28 × 28 pixels";
  }

  /** One box per digit in percent of the image (boxes are in its upright pixels). */
  drawBoxes(digits, image) {
    const frame = this.el("reading-frame");
    const [width, height] = [image.naturalWidth, image.naturalHeight];
    for (const digit of digits) {
      if (!digit.box) continue;
      const [x, y, w, h] = digit.box;
      const unsure = digit.ensemble.abstain === true;
      const box = document.createElement("div");
      box.className = `digit-box${unsure ? " unsure" : ""}`;
      box.style.left = `${(100 * x) / width}%`;
      box.style.top = `${(100 * y) / height}%`;
      box.style.width = `${(100 * w) / width}%`;
      box.style.height = `${(100 * h) / height}%`;
      const label = document.createElement("span");
      label.className = "digit-label";
      label.textContent = unsure ? "?" : String(digit.ensemble.prediction);
      box.title = unsure
        ? abstentionText(digit.ensemble.reason)
        : `${label.textContent}: ${percent(digit.ensemble.confidence)}`;
      box.append(label);
      frame.append(box);
    }
    this.root.dataset.boxes = String(frame.querySelectorAll(".digit-box").length);
  }
}
