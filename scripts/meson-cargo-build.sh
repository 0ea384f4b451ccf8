#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# Called by meson.build: builds the plugin with cargo and copies it to meson's output path.
# Arguments: CARGO SOURCE_ROOT PROFILE(debug|release) OUTPUT
set -euo pipefail
cargo=$1 src=$2 profile=$3 out=$4
args=(build --manifest-path "$src/Cargo.toml" --lib --locked)
[ "$profile" = release ] && args+=(--release)
"$cargo" "${args[@]}"
target_dir=${CARGO_TARGET_DIR:-$src/target}
cp "$target_dir/$profile/libgstdlc.so" "$out"
