#!/usr/bin/env bash
# SPDX-License-Identifier: MPL-2.0
# The GPU measurements of BENCHMARKS.md, run on the lent GPU machine once the run kit is
# assembled there (../shared/gpu/README.md). STAGE is a folder carried from here with:
#   plugin/libgstdlc.so    the build to measure      baseline/libgstdlc.so   the build to compare with
#   previous/libgstdlc.so  an intermediate build (the `previous` part: fp16 rows at 1080p)
#   bench, backends-test   target/release/examples/bench, the release build of tests/backends.rs
#   testdata/              models/det_2.5g.onnx and media/*.png from ../shared/testdata
#   fixtures/              arcface, inswapper(_fp16), gfpgan(_1024), codeformer fixture models
#   cuda_memory-test       the release build of tests/cuda_memory.rs (the cuda-memory part)
#   shared_sessions-test   the release build of tests/shared_sessions.rs (the batching part)
# Usage: scripts/gpu-bench.sh STAGE OUT PART
#   (PART: test | baseline | previous | current | fp16 | nograph | interval | paced | lanes | detect |
#    quality | quality-test | families | mask-graphs | cuda-memory | batching | batch-profile | faces-together |
#    streams)
# The elements' step-time reports (GST_DEBUG=dlc*:5) go to OUT/steps-PART.txt.
set -u
stage=$(cd "$1" && pwd); out=$2; part=$3
# shellcheck disable=SC1091
source /tmp/dlc-kit/kit/env.sh
models=/tmp/standins
[ -f "$models/ghost_2_256_fp16.onnx" ] || python3 tests/fixtures/make_standins.py "$models" >/dev/null
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader > "$out/gpu.txt"
media=$stage/testdata/media
export GST_DEBUG=dlcdetect:5,dlcswap:5,dlcenhance:5 GST_DEBUG_NO_COLOR=1 GST_DEBUG_FILE=$out/debug-$part.log
common=(--provider cuda --detector "$stage/testdata/models/det_2.5g.onnx" --picture "$media/astronaut.png"
  --source "$media/newton.png" --recognizer "$stage/fixtures/arcface.onnx" --frames 300 --warmup 30)
case $part in
  test)
    DLC_TEST_PROVIDER=cuda DLC_TESTDATA_DIR=$stage/testdata DLC_FIXTURES_DIR=$stage/fixtures \
      "$stage/backends-test" --test-threads=1 --nocapture 2>&1 | tee "$out/backends-cuda.txt" | grep -E "provider|test result|panicked|FAILED"
    ;;
  baseline)
    "$stage/bench" run --plugin "$stage/baseline/libgstdlc.so" "${common[@]}" --sizes 1920x1080 \
      --swapper "$models/inswapper_128.onnx" --enhancer "$models/GFPGANv1.4.onnx" --markdown-out "$out/baseline.md" 2>&1 | tail -25
    ;;
  previous)
    "$stage/bench" run --plugin "$stage/previous/libgstdlc.so" "${common[@]}" --sizes 1920x1080 \
      --swapper "$models/inswapper_128_fp16.onnx" --enhancer "$models/GFPGANv1.4_fp16.onnx" --markdown-out "$out/previous.md" 2>&1 | tail -20
    ;;
  current)
    "$stage/bench" run --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" --sizes 1280x720,1920x1080 \
      --swapper "$models/inswapper_128.onnx" --enhancer "$models/GFPGANv1.4.onnx" --markdown-out "$out/current.md" 2>&1 | tail -30
    ;;
  fp16)
    "$stage/bench" run --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" --sizes 1920x1080 \
      --swapper "$models/inswapper_128_fp16.onnx" --enhancer "$models/GFPGANv1.4_fp16.onnx" --markdown-out "$out/fp16.md" 2>&1 | tail -20
    ;;
  nograph)
    "$stage/bench" run --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" --sizes 1920x1080 --chains swap,enhance \
      --swap-props cuda-graph=false --enhance-props cuda-graph=false \
      --swapper "$models/inswapper_128_fp16.onnx" --enhancer "$models/GFPGANv1.4_fp16.onnx" --markdown-out "$out/nograph.md" 2>&1 | tail -20
    ;;
  paced)
    "$stage/bench" run --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" --sizes 1920x1080 --chains swap,enhance \
      --pace 30 \
      --swapper "$models/inswapper_128_fp16.onnx" --enhancer "$models/GFPGANv1.4_fp16.onnx" --markdown-out "$out/paced.md" 2>&1 | tail -20
    ;;
  lanes)
    # One, two and three frames in flight in dlcswap and dlcenhance (SIZES: frame sizes,
    # default 1080p).
    for n in 1 2 3; do
      "$stage/bench" run --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" --sizes "${SIZES:-1920x1080}" \
        --chains swap,enhance --swap-props "lanes=$n" --enhance-props "lanes=$n" \
        --swapper "$models/inswapper_128_fp16.onnx" --enhancer "$models/GFPGANv1.4_fp16.onnx" --markdown-out "$out/lanes.md" 2>&1 \
        | grep -E '^\||^CPU|^warning|^error|rror' | cut -c1-400
    done
    ;;
  detect)
    # dlcdetect alone at 720p, 1080p and 4K.
    for size in 1280x720 1920x1080 3840x2160; do
      "$stage/bench" run --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" --sizes $size --chains detect --faces 1 \
        --swapper "$models/inswapper_128_fp16.onnx" --enhancer "$models/GFPGANv1.4_fp16.onnx" --markdown-out "$out/detect.md" 2>&1 | grep -E '^\|'
    done
    ;;
  quality)
    # The FaceFusion path (issue 18) beside today's Deep-Live-Cam path, 1080p, one face, detect !
    # swap: inswapper fp16 at pixel boost 128 (Deep-Live-Cam), 256 and 512; hyperswap fp16 with
    # the box mask alone, then with each other mask, then occlusion + region. The mask models are
    # float32 stand-ins (tests/fixtures/make_standins.py).
    m=$models
    row() {
      "$stage/bench" run --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" --sizes 1920x1080 --chains swap --faces 1 \
        --enhancer "$m/GFPGANv1.4_fp16.onnx" --markdown-out "$out/quality.md" "$@" 2>&1 \
        | grep -E '^\||^CPU|^warning|^error|rror' | cut -c1-400
    }
    echo "== inswapper fp16, Deep-Live-Cam path"; row --swapper "$m/inswapper_128_fp16.onnx"
    for boost in 256 512; do
      echo "== inswapper fp16, pixel-boost=$boost"; row --swapper "$m/inswapper_128_fp16.onnx" --swap-props "pixel-boost=$boost"
    done
    hs=(--swapper "$m/hyperswap_1a_256_fp16.onnx")
    masks="occluder-model=$m/xseg_1.onnx parser-model=$m/bisenet_resnet_34.onnx landmark-68-model=$m/fan_68_5.onnx"
    echo "== hyperswap fp16, box"; row "${hs[@]}" --swap-props "mask-types=box"
    for kinds in box+occlusion box+region box+area box+occlusion+region; do
      echo "== hyperswap fp16, $kinds"; row "${hs[@]}" --swap-props "mask-types=$kinds $masks"
    done
    # The same with the FaceFusion pixel steps on the CPU (the models still on CUDA).
    echo "== hyperswap fp16, box+occlusion+region, pixel-backend=cpu"
    row "${hs[@]}" --swap-props "mask-types=box+occlusion+region $masks pixel-backend=cpu"
    ;;
  families)
    # One row per swapper family (issue 18): 1080p, one face, detect ! swap, fp16 stand-ins of
    # real size (make_standins.py prints each one's GMAC), FaceFusion path with the box mask at
    # the model's own size; the converters are the fixtures' 512x512 ones (their cost is a
    # matrix product per source, once).
    m=$models; f=$stage/fixtures
    row() {
      "$stage/bench" run --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" --sizes 1920x1080 --chains swap --faces 1 \
        --enhancer "$m/GFPGANv1.4_fp16.onnx" --markdown-out "$out/families.md" "$@" 2>&1 \
        | grep -E '^\||^CPU|^warning|^error|rror' | cut -c1-400
    }
    echo "== inswapper_128 fp16, box"; row --swapper "$m/inswapper_128_fp16.onnx" --swap-props "mask-types=box"
    echo "== hyperswap_1a_256 fp16, box"; row --swapper "$m/hyperswap_1a_256_fp16.onnx" --swap-props "mask-types=box"
    echo "== simswap_256 fp16, box"
    row --swapper "$m/simswap_256_fp16.onnx" --swap-props "mask-types=box converter-model=$f/crossface_simswap.onnx"
    echo "== simswap_unofficial_512 fp16, box"
    row --swapper "$m/simswap_unofficial_512_fp16.onnx" --swap-props "mask-types=box converter-model=$f/crossface_simswap.onnx"
    echo "== ghost_2_256 fp16, box"
    row --swapper "$m/ghost_2_256_fp16.onnx" --swap-props "mask-types=box converter-model=$f/crossface_ghost.onnx"
    ;;
  quality-test)
    # The FaceFusion path's GPU = CPU and reference tests on CUDA (release test binaries).
    for t in facefusion_backends-test backends-test; do
      DLC_TEST_PROVIDER=cuda DLC_TESTDATA_DIR=$stage/testdata DLC_FIXTURES_DIR=$stage/fixtures \
        "$stage/$t" --test-threads=1 --nocapture 2>&1 | tee "$out/$t-cuda.txt" | grep -E "provider|test result|panicked|FAILED|mean|p99"
    done
    ;;
  mask-graphs)
    # The occluder and the parser replayed as CUDA graphs (DLC_MASK_CUDA_GRAPHS=1, issue 18):
    # first the FaceFusion path's GPU = CPU test with them (three faces in its frame: the third
    # run of each mask model on the lane's thread is the capture), then each mask's cost with one
    # lane, without and with the replays (as BENCHMARKS.md's "Each mask's cost, one lane").
    DLC_MASK_CUDA_GRAPHS=1 DLC_TEST_PROVIDER=cuda DLC_TESTDATA_DIR=$stage/testdata DLC_FIXTURES_DIR=$stage/fixtures \
      timeout "${LIMIT_S:-300}" "$stage/facefusion_backends-test" --test-threads=1 --nocapture 2>&1 \
      | tee "$out/mask-graphs-test.txt" | grep -E "test result|panicked|FAILED|differ" | cut -c1-250
    m=$models
    masks="occluder-model=$m/xseg_1.onnx parser-model=$m/bisenet_resnet_34.onnx landmark-68-model=$m/fan_68_5.onnx"
    for graphs in 0 1; do
      for kinds in box box+occlusion box+region box+occlusion+region; do
        echo "== DLC_MASK_CUDA_GRAPHS=$graphs hyperswap fp16, lanes=1, $kinds"
        DLC_MASK_CUDA_GRAPHS=$graphs "$stage/bench" run --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" \
          --sizes 1920x1080 --chains swap --faces 1 --swapper "$m/hyperswap_1a_256_fp16.onnx" \
          --enhancer "$m/GFPGANv1.4_fp16.onnx" --swap-props "lanes=1 mask-types=$kinds $masks" \
          --markdown-out "$out/mask-graphs.md" 2>&1 | grep -E '^\| swap|^CPU|rror' | cut -c1-400
      done
    done
    ;;
  cuda-memory)
    # Frames in CUDA memory (issue 19, opted in with DLC_CUDA_MEMORY=1). (a) The caps the
    # elements offer, then detect ! swap ! enhance on frames cudaupload put in CUDA memory against
    # the same chain on host memory: faces and pixels within the GPU = CPU tolerances. (b) Rows
    # fed by nvh264dec from an H.264 clip of the 1080p frame, its frames in host memory (the
    # decoder copies them out) and in CUDA memory, fp16 stand-ins, one face.
    export DLC_CUDA_MEMORY=1
    echo "== caps of dlcdetect with DLC_CUDA_MEMORY=1"
    GST_PLUGIN_PATH=$stage/plugin gst-inspect-1.0 dlcdetect 2>&1 | grep -E "template:|video/x-raw"
    echo "== (a) host memory = CUDA memory"
    DLC_TEST_PROVIDER=cuda DLC_TESTDATA_DIR=$stage/testdata DLC_FIXTURES_DIR=$stage/fixtures \
      "$stage/cuda_memory-test" --test-threads=1 --nocapture 2>&1 | tee "$out/cuda_memory-cuda.txt" \
      | grep -E "differ by|skipped|test result|panicked|FAILED"
    echo "== (b) nvh264dec rows, host then CUDA memory"
    for memory in host cuda; do
      "$stage/bench" run --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" --sizes 1920x1080 --faces 1 \
        --feed h264 --memory $memory --swapper "$models/inswapper_128_fp16.onnx" --enhancer "$models/GFPGANv1.4_fp16.onnx" \
        --markdown-out "$out/cuda-memory.md" 2>&1 | grep -E '^\||^CPU|^warning|^error|rror|frames decoded' | cut -c1-400
    done
    # (c) N streams of a 1080p H.264 clip (30 + 300 frames of the benchmark frame) through
    # nvh264dec, host then CUDA memory (STREAMS: the stream counts, default 1,4).
    clip=/tmp/dlc-cuda-memory-1080p.mp4
    if [ ! -f $clip ]; then
      "$stage/bench" frame --picture "$media/astronaut.png" --size 1920x1080 --faces 1 --out /tmp/dlc-cuda-memory-frame.png
      gst-launch-1.0 -q filesrc location=/tmp/dlc-cuda-memory-frame.png ! pngdec ! imagefreeze num-buffers=330 \
        ! video/x-raw,framerate=30/1 ! videoconvert ! video/x-raw,format=I420 \
        ! x264enc speed-preset=ultrafast bitrate=20000 key-int-max=30 ! h264parse ! mp4mux ! filesink location=$clip
    fi
    echo "== (c) streams from $clip, host then CUDA memory"
    for decoder in "nvh264dec ! video/x-raw" "nvh264dec ! video/x-raw(memory:CUDAMemory)"; do
      echo "-- decoder: $decoder"
      "$stage/bench" streams --streams "${STREAMS:-1,4}" --video $clip --decoder "$decoder" --plugin "$stage/plugin/libgstdlc.so" \
        "${common[@]}" --sizes 1920x1080 --faces 1 --swapper "$models/inswapper_128_fp16.onnx" \
        --markdown-out "$out/cuda-memory.md" 2>&1 | grep -E '^\||rror' | grep -v '^|---' | cut -c1-300
    done
    ;;
  batching)
    # Faces batched across lanes and elements (DLC_BATCH_FACES=1, issue 19): first the GPU = CPU
    # tests that batch (two streams of dlcswap, of dlcenhance; restoration with lanes=auto), each
    # under a time limit (LIMIT_S seconds), since the first GPU run of this path hung; then the
    # shared sessions.
    export DLC_BATCH_FACES=1
    DLC_TEST_PROVIDER=cuda DLC_TESTDATA_DIR=$stage/testdata DLC_FIXTURES_DIR=$stage/fixtures \
      timeout "${LIMIT_S:-300}" "$stage/backends-test" --test-threads=1 --nocapture 2>&1 | tee "$out/batching-backends.txt" \
      | grep -E "differ|test result|panicked|FAILED" | cut -c1-250
    grep -h "faces batched\|faces run one" "$out/debug-$part.log" | sed 's/^.*\(<dlc[a-z]*[0-9]*>\)/\1/' | sort | uniq -c | cut -c1-250
    DLC_TEST_PROVIDER=cuda DLC_TESTDATA_DIR=$stage/testdata DLC_FIXTURES_DIR=$stage/fixtures \
      timeout "${LIMIT_S:-200}" "$stage/shared_sessions-test" --test-threads=1 2>&1 | tee "$out/batching-shared.txt" \
      | grep -E "test result|panicked|FAILED"
    ;;
  batch-profile)
    # Where a batched swapper's time goes (its first H100 run did 7 fps, the batcher's thread
    # busy on the CPU while the GPU idled): one stream, faces batched across the three lanes,
    # every session profiled by ONNX Runtime (DLC_ORT_PROFILE; a session writes its profile when
    # it closes: the priming run's even if the time limit ends the rest); then each profile's
    # node time per execution provider and its five slowest nodes. 900 frames: 300 per lane, so
    # that each lane's step report (with the batcher's counters) comes once.
    mkdir -p "$out/profiles"
    DLC_BATCH_FACES=1 DLC_ORT_PROFILE=$out/profiles timeout "${LIMIT_S:-240}" "$stage/bench" run \
      --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" --frames 900 --sizes 1920x1080 --chains swap --faces 1 \
      --swapper "$models/inswapper_128_fp16.onnx" --enhancer "$models/GFPGANv1.4_fp16.onnx" 2>&1 \
      | grep -E '^\| swap|^CPU' | cut -c1-400
    python3 - "$out/profiles" <<'PY' | tee "$out/batch-profile.txt"
import collections, json, pathlib, sys
for f in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    events = [e for e in json.load(open(f)) if e.get("cat") == "Node" and e["name"].endswith("_kernel_time")]
    per_provider = collections.Counter()
    per_node = collections.Counter()
    for e in events:
        per_provider[e["args"].get("provider", "?")] += e["dur"]
        per_node[(e["args"].get("op_name", "?"), e["args"].get("provider", "?"))] += e["dur"]
    runs = sum(1 for e in json.load(open(f)) if e.get("name") == "model_run")
    if not events:
        continue
    print(f"{f.name}: {runs} runs; node time by provider (ms): "
          + ", ".join(f"{p} {d / 1000:.1f}" for p, d in per_provider.most_common()))
    for (op, provider), d in per_node.most_common(5):
        print(f"    {op} on {provider}: {d / 1000:.1f} ms")
PY
    tar -czf "$out/profiles.tgz" -C "$out" profiles && rm -rf "$out/profiles"
    ;;
  faces-together)
    # One stream of detect ! swap with 1 and 4 faces, default properties, faces one by one and
    # then batched (DLC_BATCH_FACES=1: the faces of a frame that lie apart run in one batch;
    # issue 19's "4 faces >= 200 fps"). The step reports say how full the batches were.
    for batch in 0 1; do
      echo "== DLC_BATCH_FACES=$batch"
      DLC_BATCH_FACES=$batch timeout "${LIMIT_S:-240}" "$stage/bench" run --plugin "$stage/plugin/libgstdlc.so" \
        "${common[@]}" --sizes 1920x1080 --chains swap --faces 1,4 --swapper "$models/inswapper_128_fp16.onnx" \
        --markdown-out "$out/faces-together.md" 2>&1 | grep -E '^\| swap|rror' | cut -c1-300
    done
    ;;
  streams)
    # Issue 19's table: N streams of detect ! swap (fp16 inswapper stand-in, 1080p, one face) in
    # one process, default properties, then with faces batched across elements (STREAMS: the
    # counts, default 1,2,4,8,16,32; each count is one pipeline of N branches, see bench --help;
    # BATCH: which of 0 and 1, default both; LIMIT_S: seconds per run).
    # Rows are printed as they come (the table goes to OUT/streams.md at the end of each run).
    for batch in ${BATCH:-0 1}; do
      echo "== DLC_BATCH_FACES=$batch"
      DLC_BATCH_FACES=$batch timeout "${LIMIT_S:-560}" "$stage/bench" streams --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" \
        --sizes 1920x1080 --faces 1 --frames 150 --swapper "$models/inswapper_128_fp16.onnx" \
        --streams "${STREAMS:-1,2,4,8,16,32}" --markdown-out "$out/streams.md" 2>&1 \
        | grep --line-buffered -E '^\| [0-9]|rror' | cut -c1-300
    done
    ;;
  interval)
    "$stage/bench" run --plugin "$stage/plugin/libgstdlc.so" "${common[@]}" --sizes 1920x1080 --chains swap,enhance \
      --detect-props inference-interval=3 \
      --swapper "$models/inswapper_128_fp16.onnx" --enhancer "$models/GFPGANv1.4_fp16.onnx" --markdown-out "$out/interval.md" 2>&1 | tail -20
    ;;
esac
grep -h "mean time per call\|CUDA graph\|pixel steps run\|waiting for the GPU" "$out/debug-$part.log" 2>/dev/null \
  | sed 's/^.*\(<dlc[a-z]*[0-9]*>\)/\1/' > "$out/steps-$part.txt"
rm -f "$out/debug-$part.log"
