#!/bin/sh
# Fail closed before nginx starts: refuse an empty, short or oddly spelled key.
#
#   auth-proxy-check-keys.sh COMMAND...   # checks TS_PROXY_*_KEY, then execs COMMAND
#
# An empty key would make "Authorization: Bearer " pass, and a quote in a key would break out of
# the nginx string it is put in: keys are 24 or more characters of [A-Za-z0-9_-]
# (deploy/k8s/new-tokens.sh makes such keys).
set -eu
for name in TS_PROXY_INFERENCE_KEY TS_PROXY_MANAGEMENT_KEY; do
    eval "key=\${$name:-}"
    case "$key" in
        "" | *[!A-Za-z0-9_-]*)
            echo "auth-proxy: $name is empty or has characters outside [A-Za-z0-9_-]" >&2
            exit 1
            ;;
    esac
    if [ "${#key}" -lt 24 ]; then
        echo "auth-proxy: $name is shorter than 24 characters" >&2
        exit 1
    fi
done
exec "$@"
