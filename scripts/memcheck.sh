#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# `make memcheck`: a few frames through dlcdetect ! dlcswap ! dlcenhance (the soak example, small
# frames) under valgrind's memcheck, with leak checking. Errors and leaks are counted in two
# groups: those with a frame of this crate (gstdlc) on their stack, which fail the check, and the
# rest (ONNX Runtime, GStreamer, GLib, the dynamic loader), which are reported as a count only.
# Usage: scripts/memcheck.sh SOAK_BINARY [FRAMES]   (the environment of `make test` must be set)
set -euo pipefail

binary=${1:?usage: scripts/memcheck.sh SOAK_BINARY [FRAMES]}
frames=${2:-4}
out=target/memcheck
mkdir -p "$out"
rm -f "$out"/valgrind.xml "$out"/valgrind.log

if ! command -v valgrind >/dev/null; then
    echo "memcheck: installing valgrind (Debian package)"
    sudo=""
    [ "$(id -u)" -eq 0 ] || sudo=sudo
    $sudo apt-get update -q
    $sudo apt-get install -y -q valgrind
fi

# GStreamer's plugin scan would run in this process under valgrind too: use a registry of its own
# that the run fills once.
export GST_REGISTRY="$PWD/$out/registry.bin"
# GLib's slice allocator and ONNX Runtime's arena hide allocations from valgrind; GLib's can be
# turned off.
export G_SLICE=always-malloc G_DEBUG=gc-friendly

echo "memcheck: $frames frames of 640x480 (1 warm-up) under valgrind; this takes a few minutes"
status=0
valgrind --tool=memcheck --leak-check=full --show-leak-kinds=definite --errors-for-leak-kinds=definite \
    --num-callers=40 --xml=yes --xml-file="$out/valgrind.xml" --log-file="$out/valgrind.log" \
    "$binary" --frames "$frames" --warmup 1 --size 640x480 --max-growth 1000 | tee "$out/soak.log" || status=$?
if [ "$status" -ne 0 ]; then
    echo "memcheck: the pipeline run failed (exit $status); see $out/soak.log and $out/valgrind.log"
    exit 1
fi

python3 - "$out/valgrind.xml" <<'PY'
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
ours, theirs = [], {}
for error in root.iter("error"):
    kind = error.findtext("kind", "?")
    frames = [(f.findtext("fn", "?"), f.findtext("obj", ""), f.findtext("file", ""), f.findtext("line", ""))
              for f in error.iter("frame")]
    if any("gstdlc::" in fn or "gst_plugin_dlc" in fn for fn, _, _, _ in frames):
        ours.append((kind, error.findtext("what") or error.findtext("xwhat/text", ""), frames))
    else:
        theirs[kind] = theirs.get(kind, 0) + 1
print(f"memcheck: errors and definite leaks outside gstdlc (libraries): {sum(theirs.values())} {dict(sorted(theirs.items()))}")
print(f"memcheck: errors and definite leaks with gstdlc on the stack: {len(ours)}")
for kind, what, frames in ours:
    print(f"  {kind}: {what}")
    for fn, obj, file, line in frames[:12]:
        print(f"    {fn}  {file}:{line}" if file else f"    {fn}  ({obj})")
sys.exit(1 if ours else 0)
PY
