#!/usr/bin/env bash
# Renders a report.html to PNG with headless Chromium (Debian's `chromium` package) and
# fails if Chromium fails or the picture is empty. Usage: tests/screenshot.sh REPORT.html OUT.png
set -euo pipefail
REPORT=$(realpath "$1")
OUT=$2
PROFILE=$(mktemp -d)
trap 'rm -rf "$PROFILE"' EXIT
timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
  --disable-background-networking --disable-component-update --disable-sync \
  --user-data-dir="$PROFILE" --window-size=1280,2400 --screenshot="$OUT" "file://$REPORT" 2>/dev/null
test -s "$OUT" || { echo "screenshot: $OUT is empty" >&2; exit 1; }
echo "screenshot: $OUT ($(stat -c %s "$OUT") bytes)"
