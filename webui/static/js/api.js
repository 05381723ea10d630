// Client side of POST /api/predict: one request at a time per page, stale ones aborted.

/** Send an image (a Blob/File as multipart, or a data URL string as JSON) to the API. */
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
  const response = await fetch(url, init);
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
