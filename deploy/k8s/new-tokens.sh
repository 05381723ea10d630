#!/bin/sh
# Write fresh random keys for the `torchserve-tokens` Secret (kustomize secretGenerator input).
#
#   deploy/k8s/new-tokens.sh                 # creates deploy/k8s/base/tokens.env, never overwrites
#   deploy/k8s/new-tokens.sh --rotate        # replaces the keys; re-apply the overlay to roll pods
#   deploy/k8s/new-tokens.sh [--rotate] FILE # another path (tests)
#
# The file is git-ignored: keys never enter the repository. Each key is 32 random bytes in
# base64url (43 characters of [A-Za-z0-9_-]), the form the auth proxy accepts.
set -eu

rotate=no
if [ "${1:-}" = "--rotate" ]; then
    rotate=yes
    shift
fi
file=${1:-"$(dirname "$0")/base/tokens.env"}

if [ -e "$file" ] && [ "$rotate" = no ]; then
    echo "$file exists; use --rotate to replace its keys" >&2
    exit 1
fi

new_key() {
    head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n'
}

umask 077
tmp="$file.tmp.$$"
{
    echo "# torchserve-tokens: made by deploy/k8s/new-tokens.sh on $(date -u +%Y-%m-%dT%H:%M:%SZ)"
    echo "inference-key=$(new_key)"
    echo "management-key=$(new_key)"
} >"$tmp"
mv "$tmp" "$file"
echo "wrote $file"
