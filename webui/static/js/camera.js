// Camera page: live preview with getUserMedia, capture the square in the viewfinder, predict.

import { createPredictor } from "./api.js";
import { ResultsPanel } from "./results.js";

const CAPTURE_SIZE = 640; // side of the square sent to the server, in pixels

const panel = new ResultsPanel(document.getElementById("results"), { reveal: true });
const run = createPredictor(panel);
const video = document.getElementById("video");
const snapshot = document.getElementById("snapshot");
const message = document.getElementById("camera-message");
const startButton = document.getElementById("start-camera");
const captureButton = document.getElementById("capture");
const retakeButton = document.getElementById("retake");
let stream = null;

const PROBLEMS = {
  NotAllowedError:
    "Camera permission was refused. Allow camera access for this site in your browser settings, then press Start camera.",
  SecurityError:
    "Camera permission was refused. Allow camera access for this site in your browser settings, then press Start camera.",
  NotFoundError: "No camera was found on this device. Use Upload or Draw instead.",
  OverconstrainedError: "No suitable camera was found on this device. Use Upload or Draw instead.",
  NotReadableError: "The camera is busy: another application may be using it.",
};

function problem(text) {
  message.textContent = text;
  message.classList.remove("hidden");
  startButton.classList.remove("hidden");
  captureButton.disabled = true;
  document.getElementById("viewfinder").classList.add("off");
}

async function start() {
  message.classList.add("hidden");
  if (!window.isSecureContext || !navigator.mediaDevices?.getUserMedia) {
    problem("This browser cannot use a camera here: the page must be served over HTTPS (or from localhost). Use Upload or Draw instead.");
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({
      video: { facingMode: { ideal: "environment" }, width: { ideal: 1280 }, height: { ideal: 720 } },
      audio: false,
    });
  } catch (err) {
    problem(PROBLEMS[err.name] || `The camera could not be started (${err.name}).`);
    return;
  }
  video.srcObject = stream;
  try {
    await video.play();
  } catch {
    // autoplay policies: the muted video still shows frames once the user interacts
  }
  document.getElementById("viewfinder").classList.remove("off");
  startButton.classList.add("hidden");
  captureButton.disabled = false;
}

function showLive() {
  snapshot.classList.add("hidden");
  video.classList.remove("hidden");
  retakeButton.classList.add("hidden");
}

async function capture() {
  const width = video.videoWidth;
  const height = video.videoHeight;
  if (!width || !height) return;
  const side = Math.min(width, height); // the square the viewfinder shows (object-fit: cover)
  const size = Math.min(side, CAPTURE_SIZE);
  const canvas = document.createElement("canvas");
  canvas.width = size;
  canvas.height = size;
  canvas.getContext("2d").drawImage(video, (width - side) / 2, (height - side) / 2, side, side, 0, 0, size, size);
  const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
  if (!blob) return;
  if (snapshot.src) URL.revokeObjectURL(snapshot.src);
  snapshot.src = URL.createObjectURL(blob);
  snapshot.classList.remove("hidden");
  video.classList.add("hidden");
  retakeButton.classList.remove("hidden");
  run(new File([blob], "capture.jpg", { type: "image/jpeg" }));
}

startButton.addEventListener("click", start);
captureButton.addEventListener("click", capture);
retakeButton.addEventListener("click", showLive);
window.addEventListener("pagehide", () => stream?.getTracks().forEach((track) => track.stop()));

start();
