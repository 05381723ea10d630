#!/usr/bin/env bash
# Idempotent set-up: creates .venv and installs the pinned requirements; a second run takes seconds.
#
#   scripts/setup.sh            # Python environment only
#   scripts/setup.sh --browser  # also Debian's Chromium and nginx for the tests (needs root)
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    echo "error: Python 3.11 is required (found $("$PYTHON" --version 2>&1))" >&2
    exit 1
fi
if ! command -v java >/dev/null 2>&1; then
    echo "error: TorchServe needs Java 17: install it (Debian: apt-get install -y openjdk-17-jre-headless)" >&2
    exit 1
fi

[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
stamp=.venv/.requirements.sha256
want=$(sha256sum requirements.txt | cut -d' ' -f1)
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
    echo "$want" >"$stamp"
fi

# --browser: the Debian packages the test suite runs for real (Chromium for the browser tests,
# nginx for the front door and the Kubernetes auth-proxy tests), installed when missing.
if [ "${1:-}" = "--browser" ]; then
    missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    [ -x /usr/sbin/nginx ] || missing+=(nginx-light)
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
            apt-get update -qq
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                "${missing[@]}" >/dev/null
            # Debian starts the packaged nginx service on install: the tests run their own.
            if [ -x /usr/sbin/nginx ] && pgrep -x nginx >/dev/null 2>&1; then
                /usr/sbin/nginx -s quit 2>/dev/null || true
            fi
        else
            echo "warning: missing ${missing[*]}: the tests that run them will fail" \
                 "(install Debian's packages as root)" >&2
        fi
    fi
fi
