#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# One device session's measurements, in the few full calls the lent GPU allows
# (../shared/gpu/README.md has the run kit; scripts/gpu-bench.sh the parts).
#
# Here, once:  scripts/gpu-session.sh stage
#   builds the release plugin, `bench` and the release test binaries that gpu-bench.sh runs, and
#   puts them with the detector, the media and the fixture models into .bench/device (git-ignored
#   through .git/info/exclude; about 27 MB, so that it travels with the kit's last part).
#   Build the kit first (bash ../shared/gpu/make-kit.sh).
# On the device, back to back (a machine goes back 30 s after a call; ask `status` first):
#   run  bash .gpu-kit/cN/receive.sh                 carry [".gpu-kit/cN"]      for N = 0 … 4
#   run  bash scripts/gpu-session.sh first           carry [".gpu-kit/c5", ".bench/device"]
#   run  bash scripts/gpu-session.sh second          carry [".bench/device"]
# Each measuring call stays under 580 s, prints its rows as they come and the batchers' and
# graphs' report lines last, and leaves everything under $OUT/first.tgz or $OUT/second.tgz.
#   first:  one stream with 1 and 4 faces, faces batched or not (issue 19's "4 faces ≥ 200 fps");
#           1, 4 and 16 streams, plain then batched; then where the batched swapper's time goes.
#   second: the batcher's CUDA graphs (1 and 4 faces, 1/4/16 streams); the batched path's
#           GPU = CPU tests; the occluder's and parser's CUDA graphs; one row per swapper family.
set -u
stage=.bench/device
results=/tmp/dlc-session

# `part NAME PART [VAR=value …]`: one gpu-bench.sh part into $results/NAME.
part() {
    local name=$1 which=$2
    shift 2
    mkdir -p "$results/$name"
    echo "######## $name ($which) $* -- $(date -u +%H:%M:%S)"
    local start
    start=$(date +%s)
    env "$@" bash scripts/gpu-bench.sh "$stage" "$results/$name" "$which" 2>&1 | tee "$results/$name/out.txt"
    echo "######## $name took $(($(date +%s) - start)) s"
}

# Seconds left of a call's 570 s from `t0`.
left() { echo $((570 - ($(date +%s) - t0))); }

# Everything measured into $OUT/NAME.tgz; the step reports' batcher and graph lines printed.
pack() {
    tar -czf "$OUT/$1.tgz" -C "$(dirname "$results")" "$(basename "$results")"
    for f in "$results"/*/steps-*.txt; do
        [ -f "$f" ] || continue
        echo "== $f"
        grep -iE "batch|graph" "$f" | sort | uniq -c | sort -rn | head -8 | cut -c1-300
    done
}

case ${1:-} in
  stage)
    cargo build --release --locked
    cargo build --release --locked --example bench
    cargo test --release --locked --no-run --test backends --test facefusion_backends --test shared_sessions \
      --test cuda_memory
    rm -rf "$stage"
    mkdir -p "$stage/plugin" "$stage/testdata/models" "$stage/testdata/media" "$stage/fixtures"
    grep -qx '/.bench/' .git/info/exclude 2>/dev/null || echo /.bench/ >> .git/info/exclude
    cp target/release/libgstdlc.so "$stage/plugin/"
    cp target/release/examples/bench "$stage/bench"
    for t in backends facefusion_backends shared_sessions cuda_memory; do
        # The newest build of that test (cargo names it TEST-HASH).
        binary=$(ls -t target/release/deps/"$t"-* | grep -v '\.d$' | head -1)
        cp "$binary" "$stage/$t-test"
    done
    strip "$stage/plugin/libgstdlc.so" "$stage/bench" "$stage"/*-test
    cp ../shared/testdata/models/det_2.5g.onnx "$stage/testdata/models/"
    cp ../shared/testdata/media/*.png "$stage/testdata/media/"
    cp target/fixtures/models/*.onnx "$stage/fixtures/"
    git rev-parse --short HEAD > "$stage/BUILD"
    du -sh "$stage"
    ;;
  first)
    bash .gpu-kit/c5/receive.sh || exit 1
    # shellcheck disable=SC1091
    source /tmp/dlc-kit/kit/env.sh
    echo "build $(cat "$stage/BUILD"); $(nvidia-smi --query-gpu=name,driver_version --format=csv,noheader)"
    rm -rf "$results"
    t0=$(date +%s)
    # The real-size stand-ins (about 40 s): gpu-bench.sh finds them in /tmp/standins.
    python3 tests/fixtures/make_standins.py /tmp/standins | tail -3
    part faces-together faces-together LIMIT_S=120
    part streams-plain streams BATCH=0 STREAMS=1,4,16 LIMIT_S=170
    part streams-batched streams BATCH=1 STREAMS=1,4,16 LIMIT_S=170
    [ "$(left)" -gt 60 ] && part batch-profile batch-profile LIMIT_S=$(($(left) - 25))
    pack first
    ;;
  second)
    [ -f /tmp/dlc-kit/kit/env.sh ] || { echo "the kit is not here (a fresh machine): send all parts again"; exit 1; }
    # shellcheck disable=SC1091
    source /tmp/dlc-kit/kit/env.sh
    rm -rf "$results"
    t0=$(date +%s)
    part graphs-faces faces-together DLC_BATCH_CUDA_GRAPHS=1 LIMIT_S=100
    [ "$(left)" -gt 150 ] && part batching batching LIMIT_S=120
    [ "$(left)" -gt 150 ] && part graphs-streams streams BATCH=1 STREAMS=1,4,16 DLC_BATCH_CUDA_GRAPHS=1 \
      LIMIT_S=$(($(left) > 300 ? 170 : $(left) - 130))
    [ "$(left)" -gt 100 ] && timeout $(($(left) - 10)) bash -c "$(declare -f part); stage=$stage results=$results; part mask-graphs mask-graphs LIMIT_S=100"
    [ "$(left)" -gt 60 ] && timeout $(($(left) - 5)) bash -c "$(declare -f part); stage=$stage results=$results; part families families"
    pack second
    ;;
  *)
    echo "usage: scripts/gpu-session.sh stage | first | second (see the top of this file)" >&2
    exit 2
    ;;
esac
