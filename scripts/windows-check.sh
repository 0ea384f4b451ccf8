#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# `make windows-check`: runs the Windows build of `make windows` under Wine 8.0 (Debian 12's
# wine64): gst-inspect-1.0.exe loads gstdlc.dll, dlcdetect finds the same faces as the Linux
# build in a real picture, and the test binaries pass (their Unix-only cases are not built).
#
# Wine 8.0 lacks bcryptprimitives.dll, which every Rust binary imports (ProcessPrng); a stand-in
# built here with MinGW (scripts/windows/bcryptprimitives.c) is put on Wine's DLL path for these
# runs only. It is never part of the build `make windows` makes.
set -euo pipefail

cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
WINDOWS_DIR=$PWD/target/windows
GST_PREFIX=$WINDOWS_DIR/gstreamer
STUB_DIR=$WINDOWS_DIR/wine-stub
RELEASE_DIR=$PWD/target/$TARGET/release
# The test binaries run under Wine: the ones of issue 20's list and the library's unit tests.
TESTS=(foundation dlcdetect dlcswap dlcenhance dlcoverlay backends harness faults embedding)
TESTDATA=$PWD/../shared/testdata
# Tests that run the reference implementation (tests/reference/insightface_reference.py) in the
# Linux venv's Python, to compose their test pictures or to compare with it: a Windows process
# under Wine cannot start that Linux program with pipes ("Invalid handle"), so they run under
# `make test` only and are skipped here by name.
REFERENCE_TESTS=(
  detections_match_the_reference_implementation
  only_swapped_faces_are_restored_when_asked restoration_equals_the_reference_implementation
  colour_correction_and_sharpness_change_the_face_only mouth_mask_keeps_the_original_mouth
  opacity_zero_leaves_the_frame_unchanged_and_outside_stays_exact
  reference_and_face_map_pick_people_by_identity source_changes_while_playing_apply_without_stalling
  swap_equals_the_reference_implementation target_modes_choose_the_documented_face
)

started=$SECONDS
command -v wine >/dev/null || {
  echo "windows-check: installing wine64"
  sudo_cmd=""
  [ "$(id -u)" -ne 0 ] && sudo_cmd=sudo
  $sudo_cmd apt-get update
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y --no-install-recommends wine64 wine
}

# Wine's own winegstreamer (its media framework over Linux's GStreamer, in the same process) is
# left out: it would read this run's Windows-path GStreamer settings as Linux paths.
export WINEPREFIX=$WINDOWS_DIR/wineprefix WINEDEBUG=-all WINEDLLOVERRIDES="mscoree,mshtml=;winealsa.drv=;winegstreamer="
[ -f "$WINEPREFIX/system.reg" ] || wineboot -i >/dev/null 2>&1

# The ProcessPrng stand-in.
mkdir -p "$STUB_DIR"
x86_64-w64-mingw32-gcc -O2 -shared -o "$STUB_DIR/bcryptprimitives.dll" \
  scripts/windows/bcryptprimitives.c scripts/windows/bcryptprimitives.def -ladvapi32

winpath() { winepath -w "$1" 2>/dev/null; }

# system-deps' overrides name the Windows DLLs: only the Windows build may see them (a Linux build
# with them set would link against names Linux does not have).
windows_cargo() { (eval "$(scripts/windows.sh env)" && cargo "$@"); }
# DLLs: GStreamer's, then the stand-in. GStreamer finds its plugins from its own DLL's folder
# (bin/../lib/gstreamer-1.0); gstdlc.dll comes from GST_PLUGIN_PATH, with its own registry.
export WINEPATH="$(winpath "$GST_PREFIX/bin");$(winpath "$STUB_DIR")"
export GST_REGISTRY_1_0=$(winpath "$WINDOWS_DIR/registry.bin")
export GST_PLUGIN_PATH_1_0=$(winpath "$RELEASE_DIR")
export ORT_DYLIB_PATH=$(winpath "$WINDOWS_DIR/onnxruntime/onnxruntime.dll")
# A failed plugin load is cached in the registry: start from none.
rm -f "$WINDOWS_DIR/registry.bin"

echo "windows-check: gst-inspect-1.0.exe dlc"
inspect=$WINDOWS_DIR/gst-inspect-dlc.txt
wine "$GST_PREFIX/bin/gst-inspect-1.0.exe" dlc > "$inspect" 2>&1 || true
for element in dlcdetect dlcswap dlcenhance dlcoverlay; do
  grep -q "$element" "$inspect" || {
    cat "$inspect"
    rm -f "$WINDOWS_DIR/registry.bin"
    echo "windows-check: gst-inspect-1.0.exe does not list $element from $RELEASE_DIR/gstdlc.dll"
    exit 1
  }
done
echo "windows-check: gst-inspect-1.0.exe lists dlcdetect, dlcswap, dlcenhance and dlcoverlay"

# dlcdetect's faces on the same picture with the same detector, Linux build against Windows.
if [ -f "$TESTDATA/models/det_2.5g.onnx" ]; then
  linux_ort=$(ls "$PWD"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1.* | head -1)
  # The debug build `make test` left (the same faces as a release build: no fast-math).
  cargo build --locked --example faces-json
  for picture in astronaut newton; do
    # The Linux run with none of the Wine run's GStreamer settings (Windows paths).
    env -u GST_REGISTRY_1_0 -u GST_PLUGIN_PATH_1_0 ORT_DYLIB_PATH=$linux_ort target/debug/examples/faces-json "$TESTDATA/media/$picture.png" \
      --detector "$TESTDATA/models/det_2.5g.onnx" --output "$WINDOWS_DIR/faces-$picture-linux.jsonl"
    wine "$RELEASE_DIR/examples/faces-json.exe" "$(winpath "$TESTDATA/media/$picture.png")" \
      --detector "$(winpath "$TESTDATA/models/det_2.5g.onnx")" \
      --output "$(winpath "$WINDOWS_DIR/faces-$picture-windows.jsonl")"
    cmp "$WINDOWS_DIR/faces-$picture-linux.jsonl" "$WINDOWS_DIR/faces-$picture-windows.jsonl" || {
      diff <(head -c 2000 "$WINDOWS_DIR/faces-$picture-linux.jsonl") <(head -c 2000 "$WINDOWS_DIR/faces-$picture-windows.jsonl") || true
      echo "windows-check: dlcdetect's faces in $picture.png differ between the Linux and the Windows build"
      exit 1
    }
    echo "windows-check: $picture.png: the same faces on Linux and Windows ($(grep -o '"box"' "$WINDOWS_DIR/faces-$picture-windows.jsonl" | wc -l) faces)"
  done
else
  echo "windows-check: note: ../shared/testdata is absent: the Linux/Windows face comparison is skipped"
fi

# The test binaries, built for Windows and run by Wine one after the other.
echo "windows-check: building the test binaries"
test_args=(--lib)
for t in "${TESTS[@]}"; do test_args+=(--test "$t"); done
windows_cargo test --locked --release --target "$TARGET" --no-run --message-format=json "${test_args[@]}" \
  | grep '"profile".*"test":true' | sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' > "$WINDOWS_DIR/test-binaries.txt"

export DLC_REQUIRE_ALL=1
export DLC_FIXTURES_DIR=$(winpath "$PWD/target/fixtures/models")
export DLC_TESTDATA_DIR=$(winpath "$TESTDATA")
log=$WINDOWS_DIR/test.log
: > "$log"
failed=0
skips=()
for t in "${REFERENCE_TESTS[@]}"; do skips+=(--skip "$t"); done
while read -r binary; do
  echo "windows-check: wine $(basename "$binary")" | tee -a "$log"
  wine "$binary" --test-threads=2 "${skips[@]}" >> "$log" 2>&1 || failed=1
done < "$WINDOWS_DIR/test-binaries.txt"
# DirectML's build of ONNX Runtime: Wine has no Direct3D 12 device, so every element falls back to
# the CPU with the usual warning.
faults=$(grep '/faults-[0-9a-f]*\.exe$' "$WINDOWS_DIR/test-binaries.txt")
echo "windows-check: wine $(basename "$faults") with onnxruntime-directml" | tee -a "$log"
ORT_DYLIB_PATH=$(winpath "$WINDOWS_DIR/onnxruntime-directml/onnxruntime.dll") wine "$faults" --exact \
  an_unavailable_provider_falls_back_to_the_cpu_with_a_warning_on_every_element >> "$log" 2>&1 || failed=1
awk '/^test result:/ { p += $4; f += $6; i += $8 } END { printf "windows-check: %d passed, %d failed, %d ignored under Wine", p, f, i }' "$log"
echo " (the DirectML fallback test counted once more; ${#REFERENCE_TESTS[@]} tests that need the reference's Python left to make test)"
echo "windows-check: $((SECONDS - started)) s; target/windows and target/$TARGET use $(du -sh "$WINDOWS_DIR" "target/$TARGET" | cut -f1 | tr '\n' ' ')"
if [ "$failed" -ne 0 ]; then
  grep -E '^(test .* FAILED|failures:|---- )' "$log" | head -60
  echo "windows-check: a test binary failed under Wine (log: $log)"
  exit 1
fi
