#!/usr/bin/env bash
# Re-copies the vendored front-end files from the npm registry (pinned versions), then checks
# them against the recorded SHA-256. Not needed to run Territoria: the files are committed.
set -euo pipefail
cd "$(dirname "$0")/.."
dest=src/territoria/interfaces/web/static/vendor
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent htmx.org@2.0.11 >/dev/null && tar xzf htmx.org-2.0.11.tgz)
cp "$tmp/package/dist/htmx.min.js" "$dest/htmx.min.js"
(cd "$dest" && sha256sum --check vendor.sha256)
