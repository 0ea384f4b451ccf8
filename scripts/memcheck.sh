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

python3 - "$out/valgrind.xml" "$(basename "$binary")" <<'PY'
# Each error (or definite leak, by its allocation stack) is put down to the innermost frame that is
# Rust code of the checked binary outside the standard library: gstdlc's own code fails the check;
# a Rust dependency (ort, gstreamer-rs, image, ...) with gstdlc further out is listed for review;
# the rest lies wholly in shared libraries (the dynamic loader, ONNX Runtime, GStreamer, GLib).
import sys
import xml.etree.ElementTree as ET

root = ET.parse(sys.argv[1]).getroot()
binary = sys.argv[2]
STD = ("core::", "alloc::", "std::", "<core::", "<alloc::", "<std::", "__rust", "rust_")


def frames_of(error):
    return [(f.findtext("fn", "?"), f.findtext("obj", ""), f.findtext("file", ""), f.findtext("line", ""))
            for f in error.iter("frame")]


ours, dependencies, libraries = [], [], {}
for error in root.iter("error"):
    kind = error.findtext("kind", "?")
    what = error.findtext("what") or error.findtext("xwhat/text", "")
    frames = frames_of(error)
    rust = [f for f in frames if f[1].endswith("/" + binary) and not f[0].startswith(STD)]
    if rust and "gstdlc::" in rust[0][0]:
        ours.append((kind, what, frames))
    elif any("gstdlc::" in f[0] for f in rust):
        dependencies.append((kind, what, frames))
    else:
        libraries[kind] = libraries.get(kind, 0) + 1


def show(entries):
    for kind, what, frames in entries:
        print(f"  {kind}: {what}")
        for fn, obj, file, line in frames[:16]:
            print(f"    {fn}  {file}:{line}" if file else f"    {fn}  ({obj.rsplit('/', 1)[-1]})")


print(f"memcheck: in shared libraries only (loader, ONNX Runtime, GStreamer, GLib): {sum(libraries.values())} "
      f"{dict(sorted(libraries.items()))}")
print(f"memcheck: innermost in a Rust dependency called by gstdlc (for review): {len(dependencies)}")
show(dependencies)
print(f"memcheck: innermost in gstdlc: {len(ours)}")
show(ours)
sys.exit(1 if ours else 0)
PY
