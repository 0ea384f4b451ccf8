#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Installs what building and testing gstdlc needs on Debian 12 (bookworm): a C toolchain for
# linking, pkg-config, GStreamer 1.22 development files and plugins, meson, GStreamer's Python
# bindings (for the Python example), and a Python venv with ONNX Runtime (the library the plugin
# loads) and the fixture-model generator's packages.
# Safe to re-run: it installs only what is missing.
set -euo pipefail

cd "$(dirname "$0")/.."

APT_PACKAGES=(
  gcc libc6-dev pkg-config ca-certificates
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev
  gstreamer1.0-tools gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-libav
  gstreamer1.0-plugins-bad gstreamer1.0-plugins-ugly
  python3 python3-venv meson ninja-build
  # The Python example (examples/python/faces.py): PyGObject with GStreamer's bindings, from apt.
  python3-gi python3-gst-1.0 gir1.2-gstreamer-1.0 gir1.2-gst-plugins-base-1.0
)

# Only root may install; otherwise go through sudo.
SUDO=""
if [ "$(id -u)" -ne 0 ]; then
  SUDO="sudo"
fi

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  $SUDO apt-get update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends "${missing[@]}"
fi

# Python packages pinned so that fixtures and the ONNX Runtime under test are reproducible.
VENV=.venv
PY_PACKAGES=(onnxruntime==1.31.1 onnx==1.23.2 numpy==2.4.6 opencv-python-headless==4.13.0.92)
stamp="$VENV/.installed-$(echo "${PY_PACKAGES[*]}" | sha256sum | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  # Debian's python3 (not a pyenv or conda one found first on PATH) is the one apt installed.
  PYTHON=python3
  [ -x /usr/bin/python3 ] && PYTHON=/usr/bin/python3
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "${PY_PACKAGES[@]}"
  touch "$stamp"
fi
