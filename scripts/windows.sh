#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The Windows build made on Debian 12 (`make windows`), and its check under Wine
# (`make windows-check`, scripts/windows-check.sh).
#
# GStreamer's Windows build comes from PyPI's win_amd64 wheels, ONNX Runtime's too; both are
# pinned below. The wheels ship DLLs but neither import libraries nor pkg-config files: MinGW's
# linker links straight against a DLL, and system-deps' environment overrides stand in for
# pkg-config (per dependency: no pkg-config, the DLL's name, and the folder that holds it).
#
# Usage: scripts/windows.sh build     fetch and unpack the wheels, build gstdlc.dll and the
#                                     examples (release) for x86_64-pc-windows-gnu, in
#                                     target/x86_64-pc-windows-gnu/release
#        scripts/windows.sh env       print the build environment (for `eval`)
set -euo pipefail

cd "$(dirname "$0")/.."

TARGET=x86_64-pc-windows-gnu
WINDOWS_DIR=target/windows
# Everything GStreamer's wheels hold, merged into one prefix (bin/, lib/gstreamer-1.0/, share/).
GST_PREFIX=$WINDOWS_DIR/gstreamer
# GStreamer 1.28.7 is the newest version with a complete win_amd64 set on PyPI
# (gstreamer-plugins 1.28.8 has no Windows wheel); its MSVC runtime wheel has its own numbering.
GST_VERSION=1.28.7
GST_WHEELS=(
  "gstreamer-libs==$GST_VERSION" "gstreamer-cli==$GST_VERSION" "gstreamer-plugins==$GST_VERSION"
  "gstreamer-plugins-libs==$GST_VERSION" "gstreamer-ext-runtime==$GST_VERSION"
  "gstreamer-msvc-runtime==1.28.2"
)
# onnxruntime.dll (CPU) and the DirectML build, each in a folder of its own.
ORT_WHEELS=("onnxruntime==1.31.1" "onnxruntime-directml==1.24.4")

APT_PACKAGES=(gcc-mingw-w64-x86-64 unzip)

# The examples built for Windows. bench, cycles and soak measure the process through Linux's
# /proc and glibc's allocator, and stay Linux tools.
EXAMPLES=(faces-json transcode live mask-cost)

# The system-deps names of the C libraries gstreamer-rs links, each with its DLL (no `lib`
# prefix, no `.dll`); gstapp and gstcheck are for the tests.
SYSTEM_DEPS=(
  GLIB_2_0=glib-2.0-0 GOBJECT_2_0=gobject-2.0-0 GIO_2_0=gio-2.0-0
  GSTREAMER_1_0=gstreamer-1.0-0 GSTREAMER_BASE_1_0=gstbase-1.0-0
  GSTREAMER_VIDEO_1_0=gstvideo-1.0-0 GSTREAMER_APP_1_0=gstapp-1.0-0
  GSTREAMER_CHECK_1_0=gstcheck-1.0-0
)

install_tools() {
  local missing=()
  for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    local sudo=""
    [ "$(id -u)" -ne 0 ] && sudo=sudo
    echo "windows: installing ${missing[*]}"
    $sudo apt-get update
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends "${missing[@]}"
  fi
  command -v rustup >/dev/null || { echo "windows: rustup not found (the Windows target comes from rustup)"; exit 1; }
  rustup target list --installed | grep -qx "$TARGET" || rustup target add "$TARGET"
}

# Downloads the pinned wheels once and unpacks them: GStreamer's into one prefix, each ONNX
# Runtime build into a folder of its own (target/windows/onnxruntime{,-directml}/).
fetch_wheels() {
  local stamp=$WINDOWS_DIR/.wheels-$GST_VERSION
  [ -f "$stamp" ] && [ -d "$GST_PREFIX/bin" ] && [ -f "$WINDOWS_DIR/onnxruntime-directml/onnxruntime.dll" ] && return
  local pip=.venv/bin/pip
  [ -x "$pip" ] || { echo "windows: $pip missing: run \`make setup\` first"; exit 1; }
  mkdir -p "$WINDOWS_DIR/wheels"
  "$pip" download --quiet --dest "$WINDOWS_DIR/wheels" --platform win_amd64 --python-version 3.11 \
    --only-binary=:all: --no-deps "${GST_WHEELS[@]}" "${ORT_WHEELS[@]}"
  rm -rf "$GST_PREFIX" "$WINDOWS_DIR/onnxruntime" "$WINDOWS_DIR/onnxruntime-directml" "$WINDOWS_DIR/unpacked"
  mkdir -p "$GST_PREFIX" "$WINDOWS_DIR/unpacked"
  for spec in "${GST_WHEELS[@]}"; do
    local package=${spec%%==*} version=${spec##*==}
    local wheel=$WINDOWS_DIR/wheels/${package//-/_}-$version-cp39-abi3-win_amd64.whl
    local unpacked=$WINDOWS_DIR/unpacked/${package//-/_}
    unzip -q -o "$wheel" -d "$unpacked"
    # Each wheel keeps its files under <name>-<version>.data/purelib/<name>/.
    cp -a "$unpacked"/*.data/purelib/"${package//-/_}"/. "$GST_PREFIX"/
  done
  for spec in "${ORT_WHEELS[@]}"; do
    local package=${spec%%==*} version=${spec##*==}
    local unpacked=$WINDOWS_DIR/unpacked/${package//-/_}
    unzip -q -o "$WINDOWS_DIR/wheels/${package//-/_}-$version"-cp311-cp311-win_amd64.whl -d "$unpacked"
    mkdir -p "$WINDOWS_DIR/$package"
    cp -a "$unpacked"/onnxruntime/capi/*.dll "$WINDOWS_DIR/$package"/
  done
  rm -rf "$WINDOWS_DIR/unpacked" "$GST_PREFIX"/__init__.py
  touch "$stamp"
}

print_env() {
  local bin
  bin=$(realpath "$GST_PREFIX/bin")
  for dep in "${SYSTEM_DEPS[@]}"; do
    local name=${dep%%=*} dll=${dep#*=}
    echo "export SYSTEM_DEPS_${name}_NO_PKG_CONFIG=1 SYSTEM_DEPS_${name}_LIB=$dll SYSTEM_DEPS_${name}_SEARCH_NATIVE=$bin"
  done
  echo "export CARGO_TARGET_X86_64_PC_WINDOWS_GNU_LINKER=x86_64-w64-mingw32-gcc"
}

build() {
  install_tools
  fetch_wheels
  eval "$(print_env)"
  local example_args=()
  for example in "${EXAMPLES[@]}"; do example_args+=(--example "$example"); done
  cargo build --locked --release --target "$TARGET" --lib "${example_args[@]}"
  local dll=target/$TARGET/release/gstdlc.dll
  # The plugin must be a 64-bit PE DLL with GStreamer's entry point.
  x86_64-w64-mingw32-objdump -p "$dll" | grep -E 'Magic|DLL Name|\] gst_' > "$WINDOWS_DIR/gstdlc-exports.txt"
  grep -q 'Magic.*PE32+' "$WINDOWS_DIR/gstdlc-exports.txt" || { echo "windows: $dll is not a PE32+ image"; exit 1; }
  grep -q ' gst_plugin_dlc_get_desc$' "$WINDOWS_DIR/gstdlc-exports.txt" \
    || { echo "windows: $dll does not export gst_plugin_dlc_get_desc"; exit 1; }
  echo "windows: $dll ($(du -h "$dll" | cut -f1)), PE32+, exports gst_plugin_dlc_get_desc;" \
    "examples: ${EXAMPLES[*]/%/.exe}"
}

case "${1:-}" in
  build) build ;;
  env) fetch_wheels >&2; print_env ;;
  *) echo "usage: $0 build|env"; exit 2 ;;
esac
