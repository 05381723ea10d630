// Client side of POST /api/predict: one request at a time per page, stale ones aborted.

// A busy server (503 with a short Retry-After: its load shedding) is asked again, so two
// people's photos that arrive together are both read; a 503 without one is answered at once.
const BUSY_RETRIES = 3;
const MAX_RETRY_AFTER_S = 5;

/** Resolve after `seconds`, or reject with an AbortError when `signal` aborts first. */
function pause(seconds, signal) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(resolve, seconds * 1000);
    signal?.addEventListener(
      "abort",
      () => {
        clearTimeout(timer);
        reject(new DOMException("aborted", "AbortError"));
      },
      { once: true },
    );
  });
}

/** Send an image (a Blob/File as multipart, or a data URL string as JSON) to the API; a busy
 * server's 503 + Retry-After is retried up to BUSY_RETRIES times. */
export async function predict(url, image, signal) {
  const init = { method: "POST", signal };
  if (typeof image === "string") {
    init.headers = { "Content-Type": "application/json" };
    init.body = JSON.stringify({ image });
  } else {
    const form = new FormData();
    form.append("file", image, image.name || "image");
    init.body = form;
  }
  let response = await fetch(url, init);
  for (let retry = 0; retry < BUSY_RETRIES && response.status === 503; retry += 1) {
    const wait = Number(response.headers.get("Retry-After"));
    if (!(wait >= 0 && wait <= MAX_RETRY_AFTER_S)) break; // a model down, not a busy server
    await pause(wait, signal);
    response = await fetch(url, init);
  }
  let data = null;
  try {
    data = await response.json();
  } catch {
    data = null; // a proxy's HTML error page, say
  }
  return { status: response.status, data };
}

/** A function that predicts and shows the answer in `panel`, aborting the previous request. */
export function createPredictor(panel) {
  let controller = null;
  let sequence = 0;

  async function run(image) {
    if (controller) controller.abort();
    controller = new AbortController();
    const mine = ++sequence;
    panel.pending();
    try {
      const { status, data } = await predict(panel.url, image, controller.signal);
      if (mine !== sequence) return;
      if (status === 200 && data) panel.show(data, image);
      else panel.error((data && data.error) || `The server answered ${status}.`);
    } catch (err) {
      if (err.name === "AbortError" || mine !== sequence) return;
      panel.error("Cannot reach the server. Check your connection and try again.");
    }
  }

  run.cancel = () => {
    sequence += 1;
    if (controller) controller.abort();
    controller = null;
  };
  return run;
}
