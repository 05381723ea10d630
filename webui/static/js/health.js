// Footer status line: which models have a READY worker, refreshed every 30 s.

const NAMES = { mlp: "MLP", cnn: "CNN" };
const node = document.getElementById("health");

async function refresh() {
  let text = "model status unknown";
  let state = "warn";
  try {
    const response = await fetch(node.dataset.url, { cache: "no-store" });
    const data = await response.json();
    const parts = Object.entries(data.models).map(
      ([role, model]) => `${NAMES[role] || role} ${model.status === "ok" ? "ready" : "down"}`,
    );
    text = parts.join(" · ");
    state = data.status === "ok" ? "good" : data.status === "degraded" ? "warn" : "bad";
  } catch {
    text = "cannot reach the server";
    state = "bad";
  }
  node.textContent = text;
  node.dataset.state = state;
}

if (node) {
  refresh();
  setInterval(refresh, 30000);
}
