#!/usr/bin/env bash
# What `make run` does: build the model archives from the committed weights, start TorchServe
# with both models (waits until they are READY), then serve the web UI with gunicorn in the
# foreground. Ctrl-C (or SIGTERM) stops the web UI, then TorchServe.
#
#   scripts/run.sh                                 # web UI on http://127.0.0.1:5000
#   GUNICORN_BIND=127.0.0.1:8000 scripts/run.sh    # other settings: config/gunicorn.conf.py
set -euo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python

stopped=0
stop_torchserve() {
    if [ "$stopped" = 0 ]; then
        stopped=1
        "$PY" -m scripts.torchserve_ctl stop || true
    fi
}

"$PY" -m scripts.build_archives
trap stop_torchserve EXIT
"$PY" -m scripts.torchserve_ctl start

echo "web UI: http://${GUNICORN_BIND:-127.0.0.1:5000}  (Ctrl-C stops it and TorchServe)"
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
