#!/usr/bin/env bash
# Looks at a report as a person would, with headless Chromium (Debian's `chromium`):
#  1. a 1280×900 screenshot (the first screen) that must not be blank (near-uniform);
#  2. a DOM check on a copy of the page with a probe script (the shipped report stays
#     script-free): the page has text, `id="findings"` comes before the first section and
#     starts within the first screen, and nothing is wider than the 1280 px window.
# Usage: tests/screenshot.sh REPORT.html OUT.png        (exit 1 with the reason on failure)
set -euo pipefail
REPORT=$(realpath "$1")
OUT=$2
WIDTH=1280 HEIGHT=900
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
chrome() {
  timeout 120 chromium --headless --no-sandbox --disable-gpu --disable-quic --no-first-run \
    --disable-background-networking --disable-component-update --disable-sync \
    --user-data-dir="$WORK/profile" --window-size=$WIDTH,$HEIGHT --hide-scrollbars "$@" 2>/dev/null
}
fail() { echo "screenshot: $*" >&2; exit 1; }

chrome --screenshot="$OUT" "file://$REPORT" >/dev/null || fail "chromium failed on $REPORT"
test -s "$OUT" || fail "$OUT is empty"
# Blank page: nearly every pixel one colour. Decode the PNG with the standard library only.
python3 - "$OUT" <<'PY' || fail "$OUT is blank (near-uniform: no content in the first screen)"
import struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
pos, idat, w, h, ct = 8, b'', 0, 0, 0
while pos < len(data):
    n, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + n]
    if kind == b'IHDR':
        w, h, depth, ct = struct.unpack('>IIBB', body[:10])
    elif kind == b'IDAT':
        idat += body
    pos += 12 + n
bpp = {2: 3, 6: 4, 0: 1, 4: 2}[ct]
raw, stride, prev, counts = zlib.decompress(idat), w * bpp, bytearray(w * bpp), {}
for y in range(h):
    f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
    for i in range(stride):
        a = line[i - bpp] if i >= bpp else 0
        b, c = prev[i], (prev[i - bpp] if i >= bpp else 0)
        if f == 1: line[i] = (line[i] + a) & 255
        elif f == 2: line[i] = (line[i] + b) & 255
        elif f == 3: line[i] = (line[i] + (a + b) // 2) & 255
        elif f == 4:
            p = a + b - c; pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
    prev = line
    if y % 4 == 0:
        for x in range(0, w, 4):
            px = bytes(line[x * bpp:x * bpp + 3])
            counts[px] = counts.get(px, 0) + 1
top = max(counts.values()) / sum(counts.values())
print(f"screenshot: dominant colour covers {top:.0%} of the first screen")
sys.exit(0 if top < 0.97 else 1)
PY

# The DOM probe: its verdict goes into the page title, read back from --dump-dom.
PROBE='<script>(function(){var d=document,e=d.documentElement,f=d.getElementById("findings"),
s=d.querySelector("main h2:not(#findings h2), main section:not(#findings)"),w=e.scrollWidth,wide="";
d.querySelectorAll("main *").forEach(function(x){var r=x.getBoundingClientRect();if(!wide&&r.right>'$WIDTH'+1&&getComputedStyle(x).position!="fixed"){wide=x.tagName+"."+x.className}});
var why=[];if((d.body.innerText||"").trim().length<20)why.push("blank page");
if(!f)why.push("no id=findings");else{if(s&&(f.compareDocumentPosition(s)&Node.DOCUMENT_POSITION_PRECEDING))why.push("findings after the first section");
if(f.getBoundingClientRect().top>'$HEIGHT'-80)why.push("findings not in the first screen (top "+Math.round(f.getBoundingClientRect().top)+" px)")}
if(w>'$WIDTH')why.push("horizontal overflow: page "+w+" px wide, e.g. "+wide);
d.title="PROBE:"+(why.length?why.join("; "):"ok")})()</script>'
PROBE="$PROBE" python3 -c 'import os,sys; t=open(sys.argv[1]).read(); open(sys.argv[2],"w").write(t.replace("</body>", os.environ["PROBE"]+"</body>"))' "$REPORT" "$WORK/probe.html"
VERDICT=$(chrome --dump-dom "file://$WORK/probe.html" | grep -o '<title>PROBE:[^<]*' | sed 's/<title>PROBE://' || true)
[ -n "$VERDICT" ] || fail "the DOM probe did not run"
[ "$VERDICT" = ok ] || fail "$VERDICT"
echo "screenshot: $OUT ($(stat -c %s "$OUT") bytes); findings in the first screen, no overflow at $WIDTH px"
