#!/usr/bin/env bash
# What `make run` does: build the model archives from the committed weights, start TorchServe
# with both models (waits until they are READY), then serve the web UI with gunicorn in the
# foreground. Ctrl-C (or SIGTERM) stops the web UI, then the TorchServe it started.
#
#   scripts/run.sh                                 # web UI on http://127.0.0.1:5000
#   GUNICORN_BIND=127.0.0.1:8000 scripts/run.sh    # other settings: config/gunicorn.conf.py
#   TS_INFERENCE_ADDRESS=http://127.0.0.1:9080 TS_MANAGEMENT_ADDRESS=http://127.0.0.1:9081 \
#       scripts/run.sh                             # TorchServe elsewhere; the UI follows
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

"$PY" -m scripts.build_archives

# Where this TorchServe listens and keeps its keys (config/config.properties + TS_* overrides),
# and whether one already runs from run/torchserve/ (then it is left running on exit).
mapfile -t ts < <("$PY" -c '
from scripts.torchserve_ctl import TorchServe
server = TorchServe()
print(server.inference_url, server.management_url, server.key_file, int(server.is_running()), sep="\n")
')
export WEBUI_INFERENCE_URL="${WEBUI_INFERENCE_URL:-${ts[0]}}"
export WEBUI_MANAGEMENT_URL="${WEBUI_MANAGEMENT_URL:-${ts[1]}}"
export WEBUI_KEY_FILE="${WEBUI_KEY_FILE:-${ts[2]}}"

stop_torchserve() {
    trap - EXIT
    "$PY" -m scripts.torchserve_ctl stop || true
}
if [ "${ts[3]}" = 0 ]; then
    trap stop_torchserve EXIT
fi
"$PY" -m scripts.torchserve_ctl start --no-build

echo "web UI: http://${GUNICORN_BIND:-127.0.0.1:5000}  (Ctrl-C stops it)"
.venv/bin/gunicorn -c config/gunicorn.conf.py "webui:create_app()" &
ui=$!
# A background job ignores the terminal's SIGINT, so pass Ctrl-C and SIGTERM on ourselves.
trap 'kill -TERM "$ui" 2>/dev/null || true' INT TERM
status=0
wait "$ui" || status=$?
# `wait` returns early when a trapped signal arrives: wait again for gunicorn to finish.
while kill -0 "$ui" 2>/dev/null; do
    wait "$ui" || status=$?
done
exit "$status"
