// Upload page: file picker, drag-and-drop and paste; preview, then predict at once.

import { createPredictor } from "./api.js";
import { ResultsPanel } from "./results.js";

const panel = new ResultsPanel(document.getElementById("results"), { reveal: true });
const run = createPredictor(panel);
const input = document.getElementById("file-input");
const zone = document.getElementById("dropzone");
const preview = document.getElementById("preview");
const prompt = document.getElementById("dropzone-text");
const fileName = document.getElementById("file-name");
const maxBytes = Number(fileName.dataset.maxBytes);

function size(bytes) {
  return bytes < 1024 * 1024 ? `${(bytes / 1024).toFixed(0)} KB` : `${(bytes / 1048576).toFixed(1)} MB`;
}

function choose(file) {
  if (!file) return;
  fileName.textContent = `${file.name || "pasted image"} · ${size(file.size)}`;
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.classList.remove("hidden");
  prompt.classList.add("hidden");
  zone.classList.add("has-image");
  if (file.size > maxBytes) {
    run.cancel();
    panel.error(`This file is larger than the ${size(maxBytes)} limit.`);
    return;
  }
  run(file);
}

input.addEventListener("change", () => choose(input.files[0]));

for (const type of ["dragenter", "dragover"]) {
  zone.addEventListener(type, (event) => {
    event.preventDefault();
    zone.classList.add("dragging");
  });
}
for (const type of ["dragleave", "drop"]) {
  zone.addEventListener(type, () => zone.classList.remove("dragging"));
}
zone.addEventListener("drop", (event) => {
  event.preventDefault();
  choose(event.dataTransfer.files[0]);
});
document.addEventListener("paste", (event) => {
  const file = [...(event.clipboardData?.files || [])].find((f) => f.type.startsWith("image/"));
  if (file) choose(file);
});
preview.addEventListener("error", () => {
  preview.classList.add("hidden"); // the browser cannot show it; the server may still read it
  prompt.classList.remove("hidden");
});
