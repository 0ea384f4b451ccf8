// SPDX-License-Identifier: MPL-2.0
//! One session per model file and options per process (issue 19): pipelines in one process share
//! their models' sessions, keep them while other pipelines stop, start, seek or change model
//! files, and sessions whose options change results are not shared. The tests read the process's
//! sessions per model file (`gstdlc::runtime::open_sessions_of`) and its resident size; each
//! copies the fixture models into a folder of its own, so that the counts are its own, and they
//! take turns for the resident size.
//!
//! `DLC_TEST_PROVIDER` picks the elements' execution provider (default `cpu`): on a GPU machine
//! `DLC_TEST_PROVIDER=cuda` runs the pipelines on CUDA, where a shared session computes on a
//! stream of its own ordered with each element's by events. There the pipelines run with
//! `cuda-graph=false` (a model replayed as a CUDA graph is not shared), except in
//! `models_replayed_as_cuda_graphs_keep_a_session_per_element`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use gst::prelude::*;
use gstdlc::runtime::{ExecutionProvider, ModelSession, Precision, SessionOptions, open_sessions_of, users_of};

/// Held by each test for its whole run (resident sizes, CPU time on a shared machine).
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Square frames, letterboxed to the detector's 640×640 without padding.
/// The elements' execution provider (`DLC_TEST_PROVIDER`, default `cpu`).
fn provider() -> String {
    std::env::var("DLC_TEST_PROVIDER").unwrap_or_else(|_| "cpu".to_string())
}

/// The largest difference allowed between a pipeline's frame and one pipeline alone's: on the
/// CPU the runs are the same arithmetic; on a GPU, sessions loaded anew may pick other
/// convolution algorithms (cuDNN's search), which moves a value by a rounding step or two.
fn tolerance() -> u8 {
    if provider() == "cpu" { 1 } else { 3 }
}

const WIDTH: usize = 320;
const HEIGHT: usize = 320;

/// The fixture models, copied into a folder of the test's own, with the source picture and the
/// frame the pipelines repeat (grey, with a white block the fixture detector takes for a face).
struct Setup {
    dir: tempfile::TempDir,
    scrfd: PathBuf,
    arcface: PathBuf,
    swapper: PathBuf,
    source: PathBuf,
    frame: Vec<u8>,
}

impl Setup {
    fn new() -> Option<Setup> {
        if !common::have_ort() {
            common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
            return None;
        }
        let dir = tempfile::tempdir().expect("a scratch folder");
        let mut copies = Vec::new();
        for name in ["scrfd.onnx", "arcface.onnx", "inswapper.onnx"] {
            let Some(fixture) = common::fixture(name) else {
                common::skip(&format!("fixture {name} missing (run `make fixtures`)"));
                return None;
            };
            let copy = dir.path().join(name);
            std::fs::copy(&fixture, &copy).expect("the fixture is copied");
            copies.push(copy);
        }
        let [scrfd, arcface, swapper] = copies.try_into().expect("three models");
        let source = common::fixture_face_picture(dir.path());
        // The picture's block where the letterbox to 640×640 puts it back: 32 px at (320, 256),
        // on the fixture detector's 32-px grid.
        let scale = 640 / WIDTH;
        let (side, left, top) = (32 / scale, 320 / scale, 256 / scale);
        let mut frame = vec![96u8; WIDTH * HEIGHT * 3];
        for y in top..top + side {
            frame[(y * WIDTH + left) * 3..(y * WIDTH + left + side) * 3].fill(255);
        }
        Some(Setup { dir, scrfd, arcface, swapper, source, frame })
    }

    /// `appsrc ! imagefreeze ! dlcdetect ! dlcswap (swapper) ! appsink` on [`provider`] without
    /// CUDA graphs, the sink holding one frame at a time (the pipeline waits until it is pulled),
    /// not yet playing.
    fn pipeline(&self, swapper: &Path) -> Stream {
        self.pipeline_with(swapper, "cuda-graph=false")
    }

    /// [`Setup::pipeline`] with `props` on both elements.
    fn pipeline_with(&self, swapper: &Path, props: &str) -> Stream {
        self.pipeline_with_swap(swapper, props, "")
    }

    /// [`Setup::pipeline_with`] with `swap_props` for dlcswap alone.
    fn pipeline_with_swap(&self, swapper: &Path, props: &str, swap_props: &str) -> Stream {
        let props = format!("execution-provider={} {props}", provider());
        let pipeline = common::pipeline(&format!(
            "appsrc name=src format=time caps=video/x-raw,format=RGB,width={WIDTH},height={HEIGHT},framerate=30/1 \
             ! imagefreeze num-buffers=100000 ! dlcdetect model-file={} {props} \
             ! dlcswap model-file={} detector-model={} recognition-model={} source={} {props} {swap_props} \
             ! appsink name=sink max-buffers=1 sync=false",
            self.scrfd.display(),
            swapper.display(),
            self.scrfd.display(),
            self.arcface.display(),
            self.source.display()
        ));
        Stream { pipeline, frame: self.frame.clone() }
    }
}

/// A pipeline of [`Setup::pipeline`] and the frame it repeats.
struct Stream {
    pipeline: gst::Pipeline,
    frame: Vec<u8>,
}

impl Stream {
    fn play(&self) {
        self.pipeline.set_state(gst::State::Playing).expect("the pipeline plays");
        let src = self.pipeline.by_name("src").and_then(|s| s.downcast::<gst_app::AppSrc>().ok()).expect("appsrc");
        src.push_buffer(gst::Buffer::from_slice(self.frame.clone())).expect("the frame goes in");
    }

    fn stop(&self) {
        self.pipeline.set_state(gst::State::Null).expect("the pipeline stops");
    }

    /// The next frame out of the pipeline, failing on a bus error.
    fn pull(&self) -> Vec<u8> {
        let sink = self.pipeline.by_name("sink").and_then(|s| s.downcast::<gst_app::AppSink>().ok()).expect("sink");
        let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(60));
        let problems = [gst::MessageType::Error, gst::MessageType::Warning];
        if let Some(message) = self.pipeline.bus().and_then(|bus| bus.pop_filtered(&problems)) {
            panic!("the pipeline reported: {message:?}");
        }
        let buffer = sample.expect("a frame within 60 s").buffer_owned().expect("a buffer");
        buffer.map_readable().expect("a readable buffer").as_slice().to_vec()
    }

    /// Seeks back to the start, flushing (imagefreeze starts its frames over).
    fn seek_to_start(&self) {
        let flags = gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE;
        self.pipeline.seek_simple(flags, gst::ClockTime::ZERO).expect("the pipeline seeks");
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

/// What one pipeline alone makes of the frame.
fn reference(setup: &Setup, swapper: &Path) -> Vec<u8> {
    let alone = setup.pipeline(swapper);
    alone.play();
    let frame = alone.pull();
    alone.stop();
    frame
}

/// Asserts that `frame` is `expected`, and that the face was swapped (differs from the input).
fn assert_frame(frame: &[u8], expected: &[u8], input: &[u8], what: &str) {
    assert!(frame != input, "{what}: the face was not swapped");
    let (mean, max) = common::differences(frame, expected);
    assert!(max <= tolerance(), "{what}: differs from one pipeline alone by up to {max} (mean {mean:.4})");
}

/// Four pipelines in one process hold one session of each model file: the detector (four
/// dlcdetect elements, four dlcswap identity models and their picture workers), the recogniser
/// and the swapper; each pipeline's frames are those of one pipeline alone. When they stop the
/// sessions close. (Before, every element opened its own: 12 detector sessions for four
/// pipelines.)
#[test]
fn pipelines_share_one_session_per_model_file() {
    let _turn = one_at_a_time();
    let Some(setup) = Setup::new() else { return };
    let expected = reference(&setup, &setup.swapper);
    assert_eq!(open_sessions_of(&setup.swapper), 0, "the lone pipeline's sessions closed with it");

    let streams: Vec<Stream> = (0..4).map(|_| setup.pipeline(&setup.swapper)).collect();
    for stream in &streams {
        stream.play();
    }
    for (i, stream) in streams.iter().enumerate() {
        assert_frame(&stream.pull(), &expected, &setup.frame, &format!("pipeline {i}"));
    }
    for model in [&setup.scrfd, &setup.arcface, &setup.swapper] {
        // On CUDA dlcdetect reopens the detector with its input fixed at det-size (another
        // session, shared by the four dlcdetects); dlcswap's identity detector keeps the file's.
        let want = if model == &setup.scrfd && provider() == "cuda" { 2 } else { 1 };
        assert_eq!(open_sessions_of(model), want, "sessions of {} while four pipelines play", model.display());
    }
    // Four dlcswap elements hold the swapper (what lanes=auto reads: a second stream of a model
    // on a GPU gets one lane).
    assert!(users_of(&setup.swapper) >= 4, "users of the swapper: {}", users_of(&setup.swapper));
    for stream in &streams {
        stream.stop();
    }
    for model in [&setup.scrfd, &setup.arcface, &setup.swapper] {
        assert_eq!(open_sessions_of(model), 0, "sessions of {} once every pipeline stopped", model.display());
    }
    assert_eq!(users_of(&setup.swapper), 0);
}

/// A pipeline stopping and starting again, and another seeking, while the others play: every
/// frame stays that of one pipeline alone, and the shared sessions stay one per file (the
/// stopped pipeline's handles go, the others keep the session; the restarted one takes it again).
#[test]
fn streams_stop_start_and_seek_while_others_play() {
    let _turn = one_at_a_time();
    let Some(setup) = Setup::new() else { return };
    let expected = reference(&setup, &setup.swapper);
    let [a, b, c] = [(); 3].map(|_| setup.pipeline(&setup.swapper));
    for stream in [&a, &b, &c] {
        stream.play();
    }
    let check = |stream: &Stream, what: &str| {
        for _ in 0..2 {
            assert_frame(&stream.pull(), &expected, &setup.frame, what);
        }
        assert_eq!(open_sessions_of(&setup.swapper), 1, "swapper sessions after {what}");
    };
    check(&a, "a, all three playing");
    check(&b, "b, all three playing");
    check(&c, "c, all three playing");

    b.stop();
    check(&a, "a, b stopped");
    check(&c, "c, b stopped");

    c.seek_to_start();
    check(&c, "c, after its seek");
    check(&a, "a, after c's seek");

    b.play();
    check(&b, "b, started again");
    check(&a, "a, b started again");

    for stream in [&a, &b, &c] {
        stream.stop();
    }
    assert_eq!(open_sessions_of(&setup.swapper), 0, "the swapper's session closed with the last pipeline");
}

/// One element's `model-file` changed to another file, and a file replaced on disk: the element
/// restarted with another file gets a session of that file while the others keep theirs, and an
/// element started after the file was replaced loads the new file while those already playing
/// keep the session of the old one. Every pipeline's frames stay those of its own file alone.
#[test]
fn a_model_file_changed_on_one_element_leaves_the_others_their_session() {
    let _turn = one_at_a_time();
    let Some(setup) = Setup::new() else { return };
    let Some(fp16) = common::fixture("inswapper_fp16.onnx") else {
        return common::skip("fixture inswapper_fp16.onnx missing (run `make fixtures`)");
    };
    let other = setup.dir.path().join("inswapper_fp16.onnx");
    std::fs::copy(&fp16, &other).expect("the fixture is copied");
    let expected = reference(&setup, &setup.swapper);
    let expected_other = reference(&setup, &other);

    let [a, b] = [(); 2].map(|_| setup.pipeline(&setup.swapper));
    a.play();
    b.play();
    assert_frame(&a.pull(), &expected, &setup.frame, "a");
    assert_frame(&b.pull(), &expected, &setup.frame, "b");

    // b's swapper becomes another file.
    b.stop();
    let swap = b.pipeline.iterate_elements().find(|e| e.factory().is_some_and(|f| f.name() == "dlcswap"));
    swap.expect("b's dlcswap").set_property("model-file", other.display().to_string());
    b.play();
    assert_frame(&b.pull(), &expected_other, &setup.frame, "b, on the other file");
    assert_frame(&a.pull(), &expected, &setup.frame, "a, after b changed its file");
    assert_eq!(open_sessions_of(&setup.swapper), 1, "a keeps its session");
    assert_eq!(open_sessions_of(&other), 1, "b has a session of the other file");

    // a's file is replaced on disk (a new file renamed over it, as installers do); a pipeline
    // started now loads it, while a keeps the session of the file it started with.
    let replacement = setup.dir.path().join("replacement.onnx");
    std::fs::copy(&fp16, &replacement).expect("the replacement is written");
    std::fs::rename(&replacement, &setup.swapper).expect("the replacement takes the file's place");
    let c = setup.pipeline(&setup.swapper);
    c.play();
    assert_frame(&c.pull(), &expected_other, &setup.frame, "c, started on the replaced file");
    assert_frame(&a.pull(), &expected, &setup.frame, "a, after its file was replaced");
    assert_eq!(open_sessions_of(&setup.swapper), 2, "a's session of the old file and c's of the new one");
    a.stop();
    assert_eq!(open_sessions_of(&setup.swapper), 1, "the old file's session closed with a");
    for stream in [&b, &c] {
        stream.stop();
    }
}

/// Sessions are shared only between options that give the same results: the same file opened
/// with another thread pool, precision, fixed dimension or provider asked for is another
/// session; with the same options it is the same one, warmed up once.
#[test]
fn options_that_change_results_do_not_share() {
    let _turn = one_at_a_time();
    let Some(setup) = Setup::new() else { return };
    let open = |options: &SessionOptions| {
        ModelSession::open(&setup.scrfd, "model-file", options, |_| Ok(())).expect("the detector opens")
    };
    let base = SessionOptions { provider: ExecutionProvider::Cpu, ..SessionOptions::default() };
    let first = open(&base);
    let same = open(&base.clone());
    assert!(first.shares_session_with(&same), "the same file and options share one session");
    assert_eq!(open_sessions_of(&setup.scrfd), 1);

    let variants = [
        ("threads=2", SessionOptions { threads: 2, ..base.clone() }),
        ("spin-wait", SessionOptions { spin_wait: true, ..base.clone() }),
        ("precision=fp32", SessionOptions { precision: Precision::Fp32, ..base.clone() }),
        ("execution-provider=auto", SessionOptions { provider: ExecutionProvider::Auto, ..base.clone() }),
        (
            "a fixed input size",
            SessionOptions { dimension_overrides: vec![("height".into(), 640), ("width".into(), 640)], ..base.clone() },
        ),
    ];
    let mut others = Vec::new();
    for (what, options) in variants {
        let other = open(&options);
        assert!(!other.shares_session_with(&first), "{what} shares the session of the default options");
        others.push(other);
    }
    assert_eq!(open_sessions_of(&setup.scrfd), 6, "one session per set of options");

    // Warmed up once for all users of a session, by the first that asks.
    let warm_ups = std::cell::Cell::new(0);
    let count = || {
        warm_ups.set(warm_ups.get() + 1);
        Ok(())
    };
    for user in [&first, &same] {
        user.shared_warm_up().once(count).expect("the warm-up runs");
    }
    assert_eq!(warm_ups.get(), 1, "a second user of a warm session warmed it up again");
    others[0].shared_warm_up().once(count).expect("the warm-up runs");
    assert_eq!(warm_ups.get(), 2, "another session was taken for warm");

    drop((first, same, others));
    assert_eq!(open_sessions_of(&setup.scrfd), 0, "the sessions closed with their last users");
}

/// With `cuda-graph=true` (the default) on CUDA with the GPU pixel backend, the swapper is replayed
/// as a CUDA graph, captured with the addresses of one element's tensors: each element keeps a
/// session of its own, and every frame is right. Elsewhere nothing is captured and the elements
/// share one session.
#[test]
fn models_replayed_as_cuda_graphs_keep_a_session_per_element() {
    let _turn = one_at_a_time();
    let Some(setup) = Setup::new() else { return };
    // One lane each: with lanes=auto each of a GPU element's three lanes keeps a captured session.
    let pipeline = || setup.pipeline_with_swap(&setup.swapper, "cuda-graph=true", "lanes=1");
    let streams: Vec<Stream> = (0..3).map(|_| pipeline()).collect();
    let alone = pipeline();
    alone.play();
    let expected = alone.pull();
    alone.stop();
    for stream in &streams {
        stream.play();
    }
    // Past the third run on each streaming thread, where ONNX Runtime captures its graph.
    for _ in 0..5 {
        for (i, stream) in streams.iter().enumerate() {
            assert_frame(&stream.pull(), &expected, &setup.frame, &format!("pipeline {i}"));
        }
    }
    let captured = provider() == "cuda";
    let expected_sessions = if captured { streams.len() } else { 1 };
    assert_eq!(open_sessions_of(&setup.swapper), expected_sessions, "swapper sessions (captured: {captured})");
    assert_eq!(open_sessions_of(&setup.arcface), 1, "the recogniser is never captured: shared");
}

/// The process's resident set size in KiB (/proc/self/statm counts pages).
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").expect("/proc/self/statm");
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).expect("a page count");
    // SAFETY: sysconf has no preconditions.
    pages * unsafe { libc::sysconf(libc::_SC_PAGESIZE) } as u64 / 1024
}

/// Pads the swapper at `from` to a model of the same contract with `weights_mib` more MiB of
/// float32 weights that its output depends on (multiplied by zero), as the real swapper's 554 MB
/// make each of its sessions big; written to `to` by the reference Python (onnx, numpy).
fn padded_swapper(python: &Path, from: &Path, to: &Path, weights_mib: usize) {
    let script = r#"
import sys
import numpy as np
import onnx
from onnx import helper, numpy_helper
model = onnx.load(sys.argv[1])
graph = model.graph
out = graph.output[0].name
for node in graph.node:
    for i, name in enumerate(node.output):
        if name == out:
            node.output[i] = out + "_unpadded"
columns = int(sys.argv[3]) * 1024 * 1024 // (4 * 512)
weights = np.random.default_rng(1).standard_normal((512, columns), dtype=np.float32)
# Before the others: inswapper's emap stays the last initializer.
graph.initializer.insert(0, numpy_helper.from_array(weights, "padding_weights"))
graph.initializer.insert(1, numpy_helper.from_array(np.zeros((), np.float32), "padding_zero"))
graph.node.extend([
    helper.make_node("MatMul", ["source", "padding_weights"], ["padding_product"]),
    helper.make_node("ReduceSum", ["padding_product"], ["padding_sum"], keepdims=0),
    helper.make_node("Mul", ["padding_sum", "padding_zero"], ["padding_nothing"]),
    helper.make_node("Add", [out + "_unpadded", "padding_nothing"], [out]),
])
onnx.save(model, sys.argv[2])
"#;
    let output = std::process::Command::new(python)
        .args(["-c", script])
        .arg(from)
        .arg(to)
        .arg(weights_mib.to_string())
        .output()
        .expect("the reference Python runs");
    assert!(output.status.success(), "padding the swapper failed: {}", String::from_utf8_lossy(&output.stderr));
}

/// Resident size stays flat as pipelines are added: with a swapper of 128 MiB of weights, each
/// pipeline added to a playing one costs far less than its weights (it used to cost a session
/// of its own of each model: more than the weights per pipeline). Prints the figures.
#[test]
fn resident_size_stays_flat_as_pipelines_are_added() {
    const WEIGHTS_MIB: usize = 128;
    let _turn = one_at_a_time();
    let Some(setup) = Setup::new() else { return };
    let Some(python) = common::reference_python() else {
        return common::skip("DLC_PYTHON is not set (run `make test`): it writes the padded swapper");
    };
    let padded = setup.dir.path().join("inswapper_padded.onnx");
    padded_swapper(&python, &setup.swapper, &padded, WEIGHTS_MIB);

    let streams: Vec<Stream> = (0..4).map(|_| setup.pipeline(&padded)).collect();
    let mut resident = Vec::new();
    for stream in &streams {
        stream.play();
        stream.pull();
        resident.push(rss_kib());
    }
    // The frames of every pipeline are still flowing while the last one is measured.
    for stream in &streams {
        stream.pull();
    }
    let per_added = (resident[3] as f64 - resident[0] as f64) / 3.0 / 1024.0;
    let mib: Vec<String> = resident.iter().map(|kib| format!("{:.0}", *kib as f64 / 1024.0)).collect();
    println!("resident MiB with 1..4 pipelines playing: {}; per added pipeline {per_added:.1} MiB", mib.join(" "));
    for stream in &streams {
        stream.stop();
    }
    assert_eq!(open_sessions_of(&padded), 0);
    let limit = WEIGHTS_MIB as f64 / 4.0;
    assert!(
        per_added < limit,
        "each added pipeline costs {per_added:.1} MiB of resident memory (limit {limit}: a quarter of the \
         swapper's weights)"
    );
}
