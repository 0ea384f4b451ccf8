// SPDX-License-Identifier: MPL-2.0
//! The application examples (faces-json, transcode, live) run as programs, the way a user runs
//! them: their output against the elements', what the files they write hold, their commands and
//! their refusals of bad input.

mod common;
#[path = "../examples/support/mod.rs"]
mod support;

use common::example;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use gst::prelude::*;
use serde::Deserialize;

/// Longest a single example run may take before the test gives up on it (a hang, not a timing).
const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Runs an example to its end, with nothing on its standard input.
fn run_example(binary: &Path, args: &[&str]) -> Output {
    run_example_within(binary, args, RUN_LIMIT)
}

/// Runs an example to its end, failing the test when it takes longer than `limit` (a hang).
fn run_example_within(binary: &Path, args: &[&str], limit: Duration) -> Output {
    let child = Command::new(binary)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the example starts");
    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    match receiver.recv_timeout(limit) {
        Ok(output) => output.expect("the example's output is read"),
        Err(_) => {
            // SAFETY: kill(2) on the child this function started and has not reaped.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{} {args:?} did not end within {limit:?}", binary.display());
        }
    }
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks that a run failed with exit status 1 and a message containing `expected`, and no panic.
fn assert_refused(output: &Output, expected: &str, what: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{what}: exit status; stderr:\n{stderr}");
    assert!(stderr.contains(expected), "{what}: stderr lacks '{expected}':\n{stderr}");
    assert!(!stderr.contains("panicked"), "{what}: panicked:\n{stderr}");
}

/// Every option of an example is explained in its `--help`.
fn assert_help_lists(binary: &Path, options: &[&str]) {
    let output = run_example(binary, &["--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    for option in options {
        assert!(help.contains(&format!("--{option}")), "--help lacks --{option}:\n{help}");
    }
}

const MODEL_OPTIONS: [&str; 6] = ["models", "detector", "recognizer", "swapper", "enhancer", "provider"];

/// faces-json runs the detector only, and takes only its model options.
const DETECTOR_OPTIONS: [&str; 3] = ["models", "detector", "provider"];

/// A 640×480 black picture with one white 32×32 block at (320, 256): a face to the fixture
/// detector (see tests/dlcdetect.rs).
fn block_picture(dir: &Path) -> PathBuf {
    let mut picture = image::RgbImage::new(640, 480);
    for y in 256..288 {
        for x in 320..352 {
            picture.put_pixel(x, y, image::Rgb([255, 255, 255]));
        }
    }
    let path = dir.join("block.png");
    picture.save(&path).expect("the block picture is written");
    path
}

/// Runs a launch line to EOS, failing on an error.
fn launch(description: &str) {
    let log = common::run_launch(description);
    assert!(log.eos && log.errors.is_empty(), "{description}: {log:?}");
}

/// A video of `frames` copies of `picture` at 30 fps: motion JPEG in Matroska (near-lossless,
/// so that the detectors find what they find in the picture).
fn still_clip(picture: &Path, frames: u32, size: &str, out: &Path) {
    launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! videoscale ! video/x-raw,{size} ! imagefreeze num-buffers={frames} \
         ! video/x-raw,framerate=30/1 ! videoconvert ! jpegenc quality=98 ! matroskamux ! filesink location={}",
        picture.display(),
        out.display()
    ));
}

// ---------------------------------------------------------------------------------------------
// faces-json

#[derive(Deserialize, Debug)]
struct JsonFrame {
    frame: u64,
    pts_ns: Option<u64>,
    width: i32,
    height: i32,
    faces: Vec<JsonFace>,
}

#[derive(Deserialize, Debug)]
struct JsonFace {
    #[serde(rename = "box")]
    bbox: [f64; 4],
    score: f64,
    landmarks: [[f64; 2]; 5],
    track_id: u64,
    flags: Vec<String>,
    embedding: Option<Vec<f64>>,
}

/// The faces of the `dlcdetect` element messages of `uridecodebin ! videoconvert ! dlcdetect
/// post-messages=true PROPS ! fakesink`: per frame, timestamp and (x, y, width, height, score,
/// landmarks, track id) of each face.
type MessageFace = ([f32; 4], f32, Vec<f32>, u64);

fn message_faces(input: &Path, props: &str) -> Vec<(u64, Vec<MessageFace>)> {
    let uri = gst::glib::filename_to_uri(input.canonicalize().unwrap(), None).unwrap();
    // The real detector on 120 frames takes most of a minute on a loaded machine: a hang limit,
    // not a timing.
    let pipeline = common::pipeline(&format!(
        "uridecodebin uri={uri} caps=\"video/x-raw(ANY)\" expose-all-streams=false ! videoconvert \
         ! dlcdetect post-messages=true {props} ! fakesink sync=false"
    ));
    let log = common::run(&pipeline, RUN_LIMIT);
    assert!(log.eos && log.errors.is_empty(), "{log:?}");
    log.elements
        .iter()
        .filter(|s| s.name() == "dlcdetect")
        .map(|s| {
            let faces = s.get::<gst::List>("faces").unwrap();
            let faces = faces
                .iter()
                .map(|value| {
                    let face = value.get::<gst::Structure>().unwrap();
                    let get = |name: &str| face.get::<f64>(name).unwrap() as f32;
                    let landmarks = face.get::<gst::Array>("landmarks").unwrap();
                    (
                        [get("x"), get("y"), get("width"), get("height")],
                        get("score"),
                        landmarks.iter().map(|v| v.get::<f64>().unwrap() as f32).collect(),
                        face.get::<u64>("track-id").unwrap(),
                    )
                })
                .collect();
            (s.get::<u64>("timestamp").unwrap(), faces)
        })
        .collect()
}

fn read_json_lines(path: &Path) -> Vec<JsonFrame> {
    let text = std::fs::read_to_string(path).expect("the JSON output is written");
    text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"))).collect()
}

/// The example's JSON equals the element's messages for the same input, number for number (the
/// JSON numbers read back as the same f32 the element holds).
fn assert_json_equals_messages(json: &[JsonFrame], messages: &[(u64, Vec<MessageFace>)], size: (i32, i32)) {
    assert_eq!(json.len(), messages.len(), "one JSON object per frame");
    for (i, (frame, (timestamp, faces))) in json.iter().zip(messages).enumerate() {
        assert_eq!(frame.frame, i as u64);
        assert_eq!(frame.pts_ns, Some(*timestamp), "frame {i}");
        assert_eq!((frame.width, frame.height), size, "frame {i}");
        assert_eq!(frame.faces.len(), faces.len(), "frame {i}");
        for (face, (rect, score, landmarks, track_id)) in frame.faces.iter().zip(faces) {
            let b = face.bbox.map(|v| v as f32);
            assert_eq!([b[0], b[1], b[2] - b[0], b[3] - b[1]], *rect, "frame {i}: box");
            assert_eq!(face.score as f32, *score, "frame {i}: score");
            let points: Vec<f32> = face.landmarks.iter().flatten().map(|v| *v as f32).collect();
            assert_eq!(&points, landmarks, "frame {i}: landmarks");
            assert_eq!(face.track_id, *track_id, "frame {i}: track id");
            assert_eq!(face.flags, ["inferred"], "frame {i}: the detector runs on every frame");
        }
    }
}

#[test]
fn faces_json_equals_the_detector_messages_on_a_real_video() {
    if !common::have_ort() {
        common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
        return;
    }
    let detector = require_testdata!("models/det_2.5g.onnx");
    let video = require_testdata!("media/carphone_pristine.mp4");
    let Some(binary) = example("faces-json") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("faces.jsonl");
    let output = run_example(
        &binary,
        &[video.to_str().unwrap(), "--detector", detector.to_str().unwrap(), "--output", out.to_str().unwrap()],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let json = read_json_lines(&out);
    assert_eq!(json.len(), 120, "every frame of the clip");
    assert!(json.iter().filter(|f| f.faces.len() == 1).count() >= 114, "the clip's one face on nearly every frame");
    let messages = message_faces(&video, &format!("model-file={}", detector.display()));
    assert_json_equals_messages(&json, &messages, (176, 144));
}

#[test]
fn faces_json_on_a_generated_clip_with_embeddings() {
    let detector = require_fixture!("scrfd.onnx");
    let arcface = require_fixture!("arcface.onnx");
    let Some(binary) = example("faces-json") else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("blocks.mkv");
    still_clip(&block_picture(dir.path()), 8, "width=640,height=480", &clip);

    // Standard output, the default.
    let output = run_example(
        &binary,
        &[
            clip.to_str().unwrap(),
            "--detector",
            detector.to_str().unwrap(),
            "--recognition-model",
            arcface.to_str().unwrap(),
        ],
    );
    assert!(output.status.success(), "{}", text(&output.stderr));
    let out = dir.path().join("stdout.jsonl");
    std::fs::write(&out, &output.stdout).unwrap();
    let json = read_json_lines(&out);
    for frame in &json {
        assert_eq!(frame.faces.len(), 1, "the block on frame {}", frame.frame);
        let embedding = frame.faces[0].embedding.as_ref().expect("an embedding with --recognition-model");
        assert_eq!(embedding.len(), gstdlc::EMBEDDING_LEN);
    }
    let messages =
        message_faces(&clip, &format!("model-file={} recognition-model={}", detector.display(), arcface.display()));
    assert_json_equals_messages(&json, &messages, (640, 480));
}

#[test]
fn faces_json_refuses_bad_input() {
    let detector = require_fixture!("scrfd.onnx");
    let Some(binary) = example("faces-json") else { return };
    assert_help_lists(
        &binary,
        &["output", "recognition-model", "landmark-model", "threshold", "inference-interval"]
            .into_iter()
            .chain(DETECTOR_OPTIONS)
            .collect::<Vec<_>>(),
    );
    let detector = detector.to_str().unwrap();
    let not_video = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let cases: [(&[&str], &str); 8] = [
        (&["/nonexistent/clip.mp4", "--detector", detector], "no such file"),
        (&[not_video, "--detector", detector], "text file"),
        (&[not_video, "--threshold", "2"], "--threshold"),
        (&[not_video, "--colour"], "unknown option --colour"),
        (&[], "give exactly one INPUT"),
        // Models faces-json does not run are no options of it (they used to be taken and ignored).
        (&[not_video, "--swapper", detector], "unknown option --swapper"),
        (&[not_video, "--recognizer", detector], "unknown option --recognizer"),
        (&[not_video, "--enhancer", detector], "unknown option --enhancer"),
    ];
    for (args, expected) in cases {
        assert_refused(&run_example(&binary, args), expected, &format!("faces-json {args:?}"));
    }
}

// ---------------------------------------------------------------------------------------------
// transcode

/// What a media file holds, read back through GStreamer: the decoded video frames' count and
/// time span, and the compressed audio as the demuxer gives it (bytes of every buffer).
#[derive(Debug, Default)]
struct Media {
    frames: usize,
    /// Every decoded frame's timestamp, in order.
    pts: Vec<gst::ClockTime>,
    /// The compressed video's caps as the demuxer and parser give them.
    video_caps: Option<String>,
    first_pts: Option<gst::ClockTime>,
    end: Option<gst::ClockTime>,
    audio_caps: Option<String>,
    audio: Vec<u8>,
}

impl Media {
    fn span(&self) -> gst::ClockTime {
        self.end.unwrap() - self.first_pts.unwrap()
    }
}

fn read_media(path: &Path) -> Media {
    let pipeline = common::pipeline(&format!("filesrc location={} ! parsebin name=parse", path.display()));
    let media = Arc::new(Mutex::new(Media::default()));
    let parse = pipeline.by_name("parse").unwrap();
    let seen = media.clone();
    let weak = pipeline.downgrade();
    parse.connect_pad_added(move |_, pad| {
        let pipeline = weak.upgrade().unwrap();
        let caps = pad.current_caps().unwrap_or_else(|| pad.query_caps(None));
        let name = caps.structure(0).unwrap().name().to_string();
        let sink = gst::ElementFactory::make("fakesink").property("sync", false).build().unwrap();
        // parsebin has no queues: one demuxer thread feeds every stream, so that each stream
        // needs its own to preroll.
        let queue = gst::ElementFactory::make("queue").build().unwrap();
        pipeline.add_many([&queue, &sink]).unwrap();
        queue.sync_state_with_parent().unwrap();
        pad.link(&queue.static_pad("sink").unwrap()).unwrap();
        let pad = queue.static_pad("src").unwrap();
        let seen = seen.clone();
        if name.starts_with("audio/") {
            seen.lock().unwrap().audio_caps = Some(caps.to_string());
            sink.static_pad("sink").unwrap().add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data {
                    seen.lock().unwrap().audio.extend_from_slice(&buffer.map_readable().unwrap());
                }
                gst::PadProbeReturn::Ok
            });
            pad.link(&sink.static_pad("sink").unwrap()).unwrap();
        } else {
            seen.lock().unwrap().video_caps = Some(caps.to_string());
            let decode = gst::ElementFactory::make("decodebin").build().unwrap();
            pipeline.add(&decode).unwrap();
            let sink_pad = sink.static_pad("sink").unwrap();
            sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data {
                    let mut media = seen.lock().unwrap();
                    media.frames += 1;
                    let pts = buffer.pts().unwrap();
                    media.pts.push(pts);
                    media.first_pts = Some(media.first_pts.map_or(pts, |p| p.min(pts)));
                    let end = pts + buffer.duration().unwrap_or(gst::ClockTime::ZERO);
                    media.end = Some(media.end.map_or(end, |e| e.max(end)));
                }
                gst::PadProbeReturn::Ok
            });
            decode.connect_pad_added(move |_, pad| {
                pad.link(&sink_pad).unwrap();
            });
            pad.link(&decode.static_pad("sink").unwrap()).unwrap();
            decode.sync_state_with_parent().unwrap();
        }
        sink.sync_state_with_parent().unwrap();
    });
    let log = common::run(&pipeline, Duration::from_secs(120));
    assert!(log.eos && log.errors.is_empty(), "{}: {log:?}", path.display());
    std::mem::take(&mut *media.lock().unwrap())
}

/// Checks that `out` holds every frame of `input` over the same time span (within a frame), and
/// the same compressed audio, byte for byte.
fn assert_same_frames_and_audio(input: &Media, out: &Media, what: &str) {
    assert_eq!(out.frames, input.frames, "{what}: every frame");
    let (a, b) = (input.span().nseconds() as i64, out.span().nseconds() as i64);
    assert!((a - b).abs() <= 34_000_000, "{what}: video spans {a} ns in, {b} ns out");
    assert_eq!(out.audio_caps.is_some(), input.audio_caps.is_some(), "{what}: audio stream kept: {out:?}");
    assert!(
        out.audio == input.audio,
        "{what}: audio carried over unchanged ({} bytes in, {} out)",
        input.audio.len(),
        out.audio.len()
    );
}

/// The number of frames with a replaced face from transcode's summary line.
fn swapped_frames(stderr: &str) -> u64 {
    let line =
        stderr.lines().find(|l| l.contains(" with a face replaced")).unwrap_or_else(|| panic!("no summary:\n{stderr}"));
    let before = line.split(" with a face replaced").next().unwrap();
    before.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("summary: {line}"))
}

#[test]
fn transcode_keeps_every_frame_of_a_real_video() {
    let Some((detector, media, [arcface, swapper])) = common::real_faces(["arcface.onnx", "inswapper.onnx"]) else {
        return;
    };
    let video = require_testdata!("media/carphone_pristine.mp4");
    let Some(binary) = example("transcode") else { return };
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("swapped.mp4");
    let output = run_example(
        &binary,
        &[
            video.to_str().unwrap(),
            out.to_str().unwrap(),
            "--source",
            media.join("newton.png").to_str().unwrap(),
            "--detector",
            detector.to_str().unwrap(),
            "--recognizer",
            arcface.to_str().unwrap(),
            "--swapper",
            swapper.to_str().unwrap(),
        ],
    );
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(stderr.contains("fps") && stderr.contains("ETA"), "a progress display:\n{stderr}");
    assert!(swapped_frames(&stderr) >= 114, "the face replaced on nearly every frame:\n{stderr}");
    assert_same_frames_and_audio(&read_media(&video), &read_media(&out), "carphone");
}

/// A clip of the block picture with an AAC sound track, made the way a camera app would.
fn clip_with_audio(picture: &Path, frames: u32, out: &Path) {
    launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! imagefreeze num-buffers={frames} ! video/x-raw,framerate=30/1 \
         ! videoconvert ! x264enc speed-preset=ultrafast ! h264parse ! mp4mux name=mux ! filesink location={} \
         audiotestsrc num-buffers={} samplesperbuffer=1470 ! audio/x-raw,rate=44100,channels=2 ! audioconvert \
         ! avenc_aac ! aacparse ! mux.",
        picture.display(),
        out.display(),
        frames
    ));
}

struct FixtureModels {
    detector: PathBuf,
    arcface: PathBuf,
    swapper: PathBuf,
    enhancer: PathBuf,
}

impl FixtureModels {
    fn args(&self) -> Vec<String> {
        [
            ("--detector", &self.detector),
            ("--recognizer", &self.arcface),
            ("--swapper", &self.swapper),
            ("--enhancer", &self.enhancer),
        ]
        .into_iter()
        .flat_map(|(option, path)| [option.to_string(), path.display().to_string()])
        .collect()
    }
}

fn fixture_models() -> Option<FixtureModels> {
    if !common::have_ort() {
        common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
        return None;
    }
    let mut paths = Vec::new();
    for name in ["scrfd.onnx", "arcface.onnx", "inswapper.onnx", "gfpgan.onnx"] {
        let Some(path) = common::fixture(name) else {
            common::skip(&format!("fixture {name} missing (run `make fixtures`)"));
            return None;
        };
        paths.push(path);
    }
    let [detector, arcface, swapper, enhancer]: [PathBuf; 4] = paths.try_into().ok()?;
    Some(FixtureModels { detector, arcface, swapper, enhancer })
}

fn transcode_args<'a>(
    input: &'a Path,
    out: &'a Path,
    source: &'a Path,
    models: &'a [String],
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![input.to_str().unwrap(), out.to_str().unwrap(), "--source", source.to_str().unwrap()];
    args.extend(models.iter().map(String::as_str));
    args.extend(extra);
    args
}

#[test]
fn transcode_keeps_frames_duration_and_audio_of_a_generated_clip() {
    let Some(models) = fixture_models() else { return };
    let Some(binary) = example("transcode") else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let clip = dir.path().join("with-audio.mp4");
    clip_with_audio(&picture, 45, &clip);
    let input = read_media(&clip);
    assert!(input.audio_caps.as_deref().is_some_and(|c| c.starts_with("audio/mpeg")), "{input:?}");
    assert!(input.frames == 45 && !input.audio.is_empty(), "{input:?}");
    let model_args = models.args();

    // The MKV run also swaps and restores two frames at once (`--lanes 2`).
    let mkv_extra = ["--enhance", "--encoder", "x264enc", "--lanes", "2"];
    for (name, extra) in [("out.mp4", &[][..]), ("out.mkv", &mkv_extra[..])] {
        let out = dir.path().join(name);
        let output = run_example(&binary, &transcode_args(&clip, &out, &picture, &model_args, extra));
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        assert!(!stderr.contains("re-encoded"), "{name}: AAC goes into the container as it is:\n{stderr}");
        assert!(swapped_frames(&stderr) > 0, "{name}: the block replaced:\n{stderr}");
        assert_same_frames_and_audio(&input, &read_media(&out), name);
    }
}

#[test]
fn transcode_ctrl_c_finishes_a_playable_file() {
    let Some(models) = fixture_models() else { return };
    let Some(binary) = example("transcode") else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let clip = dir.path().join("long.mp4");
    clip_with_audio(&picture, 600, &clip);
    let out = dir.path().join("stopped.mkv");
    let model_args = models.args();
    let mut child = Command::new(&binary)
        .args(transcode_args(&clip, &out, &picture, &model_args, &[]))
        .stdin(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first progress line comes with the first encoded frame: then stop it.
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let mut seen = String::new();
    let deadline = Instant::now() + RUN_LIMIT;
    loop {
        let mut line = String::new();
        assert!(stderr.read_line(&mut line).unwrap() > 0, "transcode ended before any progress:\n{seen}");
        seen.push_str(&line);
        if line.contains("fps") {
            break;
        }
        assert!(Instant::now() < deadline, "no progress:\n{seen}");
    }
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let mut rest = String::new();
    std::io::Read::read_to_string(&mut stderr, &mut rest).unwrap();
    seen.push_str(&rest);
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130), "exit status after Ctrl-C:\n{seen}");
    assert!(seen.contains("stopped early by Ctrl-C"), "{seen}");
    let written = read_media(&out);
    assert!(written.frames > 0 && written.frames < 600, "a shorter, playable file: {written:?}\n{seen}");
    assert!(written.audio_caps.is_some(), "with its audio: {written:?}");
}

#[test]
fn transcode_refuses_bad_input() {
    let Some(models) = fixture_models() else { return };
    let Some(binary) = example("transcode") else { return };
    assert_help_lists(
        &binary,
        &["source", "reference", "face-map", "many-faces", "enhance", "lanes", "encoder", "bitrate", "keep-chroma"]
            .into_iter()
            .chain(MODEL_OPTIONS)
            .collect::<Vec<_>>(),
    );
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let black = dir.path().join("black.png");
    image::RgbImage::new(640, 480).save(&black).unwrap();
    let audio_only = dir.path().join("audio.mp4");
    launch(&format!(
        "audiotestsrc num-buffers=20 ! audioconvert ! avenc_aac ! mp4mux ! filesink location={}",
        audio_only.display()
    ));
    let clip = dir.path().join("clip.mp4");
    clip_with_audio(&picture, 5, &clip);
    let not_video = PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml"));
    let out = dir.path().join("out.mp4");
    let avi = dir.path().join("out.avi");
    let model_args = models.args();
    let cases: [(Vec<&str>, &str); 8] = [
        (transcode_args(Path::new("/nonexistent.mp4"), &out, &picture, &model_args, &[]), "no such file"),
        (transcode_args(&not_video, &out, &picture, &model_args, &[]), "text file"),
        (transcode_args(&audio_only, &out, &picture, &model_args, &[]), "no video stream"),
        (transcode_args(&clip, &out, &black, &model_args, &[]), "no face found"),
        (transcode_args(&clip, &avi, &picture, &model_args, &[]), ".mp4, .m4v, .mov or .mkv"),
        (transcode_args(&clip, &out, &picture, &model_args, &["--encoder", "h264"]), "--encoder 'h264' is not one of"),
        (transcode_args(&clip, &out, &picture, &model_args, &["--lanes", "9"]), "--lanes 9: give 1 to 4"),
        (vec![clip.to_str().unwrap(), out.to_str().unwrap()], "--source FACE is missing"),
    ];
    for (args, expected) in cases {
        assert_refused(&run_example(&binary, &args), expected, &format!("transcode {args:?}"));
        assert!(!out.exists(), "no unfinished output is left behind ({args:?})");
    }
}

// ---------------------------------------------------------------------------------------------
// live

#[test]
fn live_prints_fps_and_obeys_source_and_quit() {
    let Some((detector, media, [arcface, swapper])) = common::real_faces(["arcface.onnx", "inswapper.onnx"]) else {
        return;
    };
    let Some(binary) = example("live") else { return };
    assert_help_lists(
        &binary,
        &["source", "device", "size", "input", "enhance", "many-faces", "sink", "virtual-camera", "fps"]
            .into_iter()
            .chain(MODEL_OPTIONS)
            .collect::<Vec<_>>(),
    );
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("astronaut.mkv");
    // 60 s at 30 fps: far longer than the test needs, it quits before.
    still_clip(&media.join("astronaut.png"), 1800, "width=256,height=256", &clip);
    const SIZE: usize = 64 * 64 * 3;
    let frames_file = dir.path().join("frames.rgb");
    let sink = format!(
        "videoscale ! video/x-raw,width=64,height=64 ! videoconvert ! video/x-raw,format=RGB ! filesink buffer-mode=unbuffered location={}",
        frames_file.display()
    );
    let mut child = Command::new(&binary)
        .args([
            "--source",
            media.join("newton.png").to_str().unwrap(),
            "--input",
            clip.to_str().unwrap(),
            "--sink",
            &sink,
            "--detector",
            detector.to_str().unwrap(),
            "--recognizer",
            arcface.to_str().unwrap(),
            "--swapper",
            swapper.to_str().unwrap(),
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let (lines, receiver) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = lines.send(line);
        }
    });
    let mut seen = Vec::new();
    let next_line = |seen: &mut Vec<String>| {
        let line = receiver.recv_timeout(RUN_LIMIT).unwrap_or_else(|_| panic!("live stopped talking: {seen:#?}"));
        seen.push(line.clone());
        line
    };
    let is_stats = |line: &str| line.contains(" fps, latency ") && line.contains("with a face replaced");
    // Running, with a face replaced on the frames of some second.
    while !next_line(&mut seen).starts_with("live: running") {}
    loop {
        let line = next_line(&mut seen);
        if is_stats(&line) && !line.contains(" 0 of ") {
            break;
        }
    }
    let frame = |index: usize| -> Option<Vec<u8>> {
        let bytes = std::fs::read(&frames_file).ok()?;
        bytes.get(index * SIZE..(index + 1) * SIZE).map(<[u8]>::to_vec)
    };
    let deadline = Instant::now() + RUN_LIMIT;
    let first = loop {
        if let Some(first) = frame(0) {
            break first;
        }
        assert!(Instant::now() < deadline, "no frame reaches the sink: {seen:#?}");
        std::thread::sleep(Duration::from_millis(100));
    };

    // Until the command, one source gives one and the same frame.
    let before = std::fs::metadata(&frames_file).unwrap().len() as usize / SIZE;
    for index in 1..before {
        assert!(frame(index).unwrap() == first, "frame {index} differs under the same source");
    }
    writeln!(stdin, "source {}", media.join("gauss.png").display()).unwrap();
    loop {
        let line = next_line(&mut seen);
        if line.contains("switching to") {
            break;
        }
    }
    // The new face takes over: the still input gives changed frames only through the swap.
    let deadline = Instant::now() + RUN_LIMIT;
    let mut changed = false;
    while !changed {
        assert!(Instant::now() < deadline, "the new source never showed: {seen:#?}");
        let count = std::fs::metadata(&frames_file).map(|m| m.len() as usize / SIZE).unwrap_or(0);
        changed = count > 0 && frame(count - 1).is_some_and(|last| last != first);
        std::thread::sleep(Duration::from_millis(200));
    }
    // Without --enhance there is no restorer to switch on: a reply says so, and it runs on.
    writeln!(stdin, "enhance on").unwrap();
    while !next_line(&mut seen).contains("start with --enhance") {}
    // The figures keep coming after the change.
    while !is_stats(&next_line(&mut seen)) {}
    writeln!(stdin, "quit").unwrap();
    while next_line(&mut seen) != "live: quit" {}
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert!(seen.iter().filter(|l| is_stats(l)).count() >= 2, "figures lines before and after the change: {seen:#?}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn live_refuses_bad_input() {
    let Some(binary) = example("live") else { return };
    let picture = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let cases: [(&[&str], &str); 5] = [
        (&[], "--source FACE is missing"),
        (&["--source", picture, "--device", "/dev/nonexistent-camera"], "no camera at '/dev/nonexistent-camera'"),
        (&["--source", picture, "--input", "/nonexistent.mp4"], "no such file"),
        (&["--source", picture, "--input", picture, "--virtual-camera", "/dev/nonexistent"], "v4l2loopback"),
        (&["--source", picture, "--input", picture, "--fps", "0"], "--fps"),
    ];
    for (args, expected) in cases {
        assert_refused(&run_example(&binary, args), expected, &format!("live {args:?}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Inputs of real users (issue 17)

/// An AVI as DivX/XviD-era tools wrote them: MPEG-4 part 2 with B-frames (the AVI index holds
/// decode times only, so the decoder repeats timestamps) and MP3 sound.
fn avi_with_b_frames(picture: &Path, frames: u32, out: &Path) {
    launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! imagefreeze num-buffers={frames} ! video/x-raw,framerate=30/1 \
         ! videoconvert ! avenc_mpeg4 max-bframes=2 ! avimux name=mux ! filesink location={} \
         audiotestsrc num-buffers={frames} samplesperbuffer=1470 ! audio/x-raw,rate=44100,channels=2 ! lamemp3enc \
         ! mpegaudioparse ! mux.",
        picture.display(),
        out.display()
    ));
}

/// Whether timestamps only go up.
fn strictly_increasing(pts: &[gst::ClockTime]) -> bool {
    pts.windows(2).all(|w| w[0] < w[1])
}

#[test]
fn transcode_gives_every_frame_of_an_avi_with_b_frames_its_own_timestamp() {
    let Some(models) = fixture_models() else { return };
    let Some(binary) = example("transcode") else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let avi = dir.path().join("divx.avi");
    const FRAMES: usize = 90;
    avi_with_b_frames(&picture, FRAMES as u32, &avi);
    let input = read_media(&avi);
    // The defect's cause, upstream: decoded, this AVI repeats timestamps.
    assert_eq!(input.frames, FRAMES, "{input:?}");
    assert!(!strictly_increasing(&input.pts), "the input repeats timestamps: {:?}", input.pts);
    assert!(input.audio_caps.as_deref().is_some_and(|c| c.starts_with("audio/mpeg")), "{input:?}");

    let model_args = models.args();
    for name in ["out.mp4", "out.mkv"] {
        let out = dir.path().join(name);
        let output = run_example(&binary, &transcode_args(&avi, &out, &picture, &model_args, &[]));
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        let written = read_media(&out);
        assert_eq!(written.frames, FRAMES, "{name}: every frame in the file: {:?}", written.pts);
        assert!(strictly_increasing(&written.pts), "{name}: timestamps only go up: {:?}", written.pts);
        // 90 frames at 30 fps: 3 s, as long as the sound (within a frame).
        let span = written.span().nseconds() as i64;
        assert!((span - 3_000_000_000).abs() <= 34_000_000, "{name}: the video spans {span} ns");
        assert!(written.audio == input.audio, "{name}: the MP3 sound carried over unchanged");
        assert!(stderr.contains(&format!("'{}': {FRAMES} frames", out.display())), "{name}: count:\n{stderr}");
        assert!(stderr.contains("given the next frame's time"), "{name}: the repair is noted:\n{stderr}");
    }
}

/// An MP4 as a download cut short leaves it: the index (moov) is written at the end, so the
/// first half holds frames that nothing describes.
fn truncated_mp4(picture: &Path, dir: &Path) -> PathBuf {
    let full = dir.join("full.mp4");
    clip_with_audio(picture, 90, &full);
    let bytes = std::fs::read(&full).unwrap();
    let cut = dir.join("cut-short.mp4");
    std::fs::write(&cut, &bytes[..bytes.len() / 2]).unwrap();
    cut
}

#[test]
fn a_truncated_mp4_ends_with_a_message_never_a_hang() {
    let Some(models) = fixture_models() else { return };
    let Some(transcode) = example("transcode") else { return };
    let Some(faces_json) = example("faces-json") else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let cut = truncated_mp4(&picture, dir.path());
    let out = dir.path().join("out.mkv");
    let model_args = models.args();
    let detector = models.detector.to_str().unwrap();
    let runs: [Vec<&str>; 2] =
        [transcode_args(&cut, &out, &picture, &model_args, &[]), vec![cut.to_str().unwrap(), "--detector", detector]];
    // decodebin drops the demuxer's error when it comes at the wrong moment, a race: several
    // runs at once (the load widens the window), ten of each.
    for (binary, args) in [(&transcode, &runs[0]), (&faces_json, &runs[1])] {
        for _ in 0..2 {
            let outputs: Vec<Output> = std::thread::scope(|scope| {
                let handles: Vec<_> = (0..5)
                    .map(|_| scope.spawn(|| run_example_within(binary, args, Duration::from_secs(120))))
                    .collect();
                handles.into_iter().map(|h| h.join().unwrap()).collect()
            });
            for output in outputs {
                assert_refused(&output, "damaged or incomplete", &format!("{} {args:?}", binary.display()));
                assert!(text(&output.stderr).contains("cut-short.mp4"), "names the file: {}", text(&output.stderr));
            }
        }
    }
    assert!(!out.exists(), "no unfinished output is left behind");
}

/// The race of the test above, made certain: the demuxer's error is dropped (as decodebin drops
/// it while typefinding), and the examples' input check still ends the wait, naming the cause.
#[test]
fn a_truncated_mp4_whose_error_is_dropped_is_still_noticed() {
    gst::init().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cut = truncated_mp4(&block_picture(dir.path()), dir.path());
    let uri = support::input_uri(cut.to_str().unwrap()).unwrap();
    let video = gst::Caps::builder("video/x-raw").any_features().build();
    let input = support::Input::new(&uri, "cut-short.mp4", &video, true).unwrap();
    let pipeline = gst::Pipeline::new();
    pipeline.add(&input.decode).unwrap();
    let bus = pipeline.bus().unwrap();
    bus.set_sync_handler(|_, message| match message.view() {
        gst::MessageView::Error(_) => gst::BusSyncReply::Drop,
        _ => gst::BusSyncReply::Pass,
    });
    pipeline.set_state(gst::State::Playing).unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let reason = loop {
        if let Err(reason) = input.check_started(&pipeline) {
            break reason;
        }
        assert!(Instant::now() < deadline, "the wait for a stream that never starts goes on");
        std::thread::sleep(Duration::from_millis(50));
    };
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(
        reason.contains("'cut-short.mp4' cannot be read: the demuxer (qtdemux) found no playable stream"),
        "{reason}"
    );
}

#[test]
fn every_example_says_no_video_stream_for_sound_only_inputs() {
    let Some(models) = fixture_models() else { return };
    let binaries = [example("transcode"), example("faces-json"), example("live")];
    let [Some(transcode), Some(faces_json), Some(live)] = binaries else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let wav = dir.path().join("sound.wav");
    launch(&format!("audiotestsrc num-buffers=20 ! audioconvert ! wavenc ! filesink location={}", wav.display()));
    let aac = dir.path().join("sound.mp4");
    launch(&format!(
        "audiotestsrc num-buffers=20 ! audioconvert ! avenc_aac ! mp4mux ! filesink location={}",
        aac.display()
    ));
    let out = dir.path().join("out.mp4");
    let model_args = models.args();
    for input in [&wav, &aac] {
        let source = picture.to_str().unwrap();
        let mut live_args = vec!["--source", source, "--input", input.to_str().unwrap(), "--sink", "fakesink"];
        live_args.extend(model_args.iter().map(String::as_str));
        let runs = [
            (&transcode, transcode_args(input, &out, &picture, &model_args, &[])),
            (&faces_json, vec![input.to_str().unwrap(), "--detector", models.detector.to_str().unwrap()]),
            (&live, live_args),
        ];
        for (binary, args) in runs {
            let output = run_example_within(binary, &args, Duration::from_secs(120));
            let what = format!("{} {args:?}", binary.display());
            assert_refused(&output, "has no video stream", &what);
            let stderr = text(&output.stderr);
            assert!(!stderr.contains("missing a plug-in"), "{what}: no plug-in is missing:\n{stderr}");
            assert!(stderr.contains(input.file_name().unwrap().to_str().unwrap()), "{what}: names the file:\n{stderr}");
        }
    }
}

#[test]
fn every_example_lists_every_missing_model_with_its_option() {
    let binaries = [example("transcode"), example("faces-json"), example("live")];
    let [Some(transcode), Some(faces_json), Some(live)] = binaries else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let clip = dir.path().join("clip.mkv");
    still_clip(&picture, 3, "width=640,height=480", &clip);
    let empty = dir.path().join("no-models");
    std::fs::create_dir(&empty).unwrap();
    let out = dir.path().join("out.mp4");
    let (clip_arg, picture_arg, empty_arg) =
        (clip.to_str().unwrap(), picture.to_str().unwrap(), empty.to_str().unwrap());
    let swap_models =
        [("--detector", "det_10g.onnx"), ("--recognizer", "w600k_r50.onnx"), ("--swapper", "inswapper_128.onnx")];
    let enhancer = [("--enhancer", "GFPGANv1.4.onnx")];
    let detector_only = [("--detector", "det_10g.onnx")];
    let runs = [
        (
            &transcode,
            vec![clip_arg, out.to_str().unwrap(), "--source", picture_arg, "--models", empty_arg],
            swap_models.to_vec(),
        ),
        (
            &transcode,
            vec![clip_arg, out.to_str().unwrap(), "--source", picture_arg, "--models", empty_arg, "--enhance"],
            swap_models.iter().chain(&enhancer).copied().collect(),
        ),
        (&live, vec!["--source", picture_arg, "--input", clip_arg, "--models", empty_arg], swap_models.to_vec()),
        (&faces_json, vec![clip_arg, "--models", empty_arg], detector_only.to_vec()),
    ];
    for (binary, args, expected) in runs {
        let output = run_example(binary, &args);
        let what = format!("{} {args:?}", binary.display());
        assert_refused(&output, &format!("{} model file", expected.len()), &what);
        let stderr = text(&output.stderr);
        for (option, file) in expected {
            assert!(
                stderr.contains(&format!("{option}: {file} is not in '{empty_arg}'")),
                "{what}: {option}:\n{stderr}"
            );
        }
        assert!(!stderr.contains("property"), "{what}: options, not element words:\n{stderr}");
    }
    // A file given that is not there is listed with the missing defaults.
    let output = run_example(
        &transcode,
        &[
            clip_arg,
            out.to_str().unwrap(),
            "--source",
            picture_arg,
            "--models",
            empty_arg,
            "--swapper",
            "/nonexistent.onnx",
        ],
    );
    let stderr = text(&output.stderr);
    assert_refused(&output, "3 model files are missing", "transcode --swapper /nonexistent.onnx");
    assert!(stderr.contains("--swapper: '/nonexistent.onnx' is not a file"), "{stderr}");
    assert!(stderr.contains("--detector: det_10g.onnx"), "{stderr}");
}

#[test]
fn faces_json_stops_quietly_when_its_reader_goes() {
    let detector = require_fixture!("scrfd.onnx");
    let Some(binary) = example("faces-json") else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("blocks.mkv");
    still_clip(&block_picture(dir.path()), 300, "width=640,height=480", &clip);
    // `faces-json clip | head -1`: one line read, then the pipe closed.
    let mut child = Command::new(&binary)
        .args([clip.to_str().unwrap(), "--detector", detector.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut first = String::new();
    stdout.read_line(&mut first).unwrap();
    assert!(first.starts_with("{\"frame\":0,"), "{first}");
    drop(stdout);
    let pid = child.id();
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = sender.send(child.wait_with_output());
    });
    let Ok(output) = receiver.recv_timeout(Duration::from_secs(120)) else {
        // SAFETY: kill(2) on the child this test started and has not reaped.
        unsafe { libc::kill(pid as i32, libc::SIGKILL) };
        panic!("faces-json went on after its reader left");
    };
    let output = output.unwrap();
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "nothing on standard error: {stderr}");
}

/// Serves `body` over HTTP on a local port to one client: the bytes before `pause_at`, then the
/// rest once `resume` says so. Returns the URI.
fn serve_in_two_parts(body: Vec<u8>, pause_at: usize, resume: mpsc::Receiver<()>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let uri = format!("http://{}/clip.mkv", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let Ok((mut stream, _)) = listener.accept() else { return };
        let mut request = [0u8; 4096];
        let _ = std::io::Read::read(&mut stream, &mut request);
        let header = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: video/x-matroska\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
            body.len()
        );
        let _ = stream.write_all(header.as_bytes());
        let _ = stream.write_all(&body[..pause_at]);
        let _ = stream.flush();
        let _ = resume.recv_timeout(RUN_LIMIT);
        let _ = stream.write_all(&body[pause_at..]);
    });
    uri
}

#[test]
fn faces_json_writes_each_line_as_its_frame_is_done() {
    let detector = require_fixture!("scrfd.onnx");
    let Some(binary) = example("faces-json") else { return };
    let dir = tempfile::tempdir().unwrap();
    let clip = dir.path().join("blocks.mkv");
    still_clip(&block_picture(dir.path()), 12, "width=640,height=480", &clip);
    let body = std::fs::read(&clip).unwrap();
    // Half the file is a few frames: their lines (well under a block of output) must reach the
    // reader while the input still waits for the rest.
    let (resume, resumed) = mpsc::channel();
    let uri = serve_in_two_parts(body.clone(), body.len() / 2, resumed);
    let mut child = Command::new(&binary)
        .args([uri.as_str(), "--detector", detector.to_str().unwrap()])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (lines, received) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let _ = lines.send(line);
        }
    });
    let first = received.recv_timeout(Duration::from_secs(120));
    // The line must come while the input still waits, not with the output flushed at the end
    // (souphttpsrc gives up on a silent server after 15 s, ending the program).
    let ended_first = child.try_wait().unwrap();
    resume.send(()).unwrap();
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    let first = first.unwrap_or_else(|_| panic!("no line while the input waited (block-buffered?):\n{stderr}"));
    assert!(ended_first.is_none(), "the first line came only as faces-json ended (block-buffered?):\n{stderr}");
    assert!(first.starts_with("{\"frame\":0,"), "{first}");
    assert!(status.success(), "{stderr}");
    assert_eq!(1 + received.try_iter().count(), 12, "a line per frame in the end");
}

/// A video of raw RGB frames (a screen recording, a render, a lossless capture) in Matroska: a
/// moving, noisy picture, so that the bit rate shows in the file size.
fn rgb_clip(frames: u32, out: &Path) {
    launch(&format!(
        "videotestsrc pattern=snow num-buffers={frames} ! video/x-raw,format=RGB,width=640,height=480,framerate=30/1 \
         ! matroskamux ! filesink location={}",
        out.display()
    ));
}

#[test]
fn transcode_encodes_4_2_0_at_a_bit_rate_for_the_frame_size() {
    let Some(models) = fixture_models() else { return };
    let Some(binary) = example("transcode") else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let clip = dir.path().join("rgb.mkv");
    rgb_clip(60, &clip);
    let model_args = models.args();
    let mut sizes = Vec::new();
    for (name, extra, chroma) in [
        ("auto.mp4", &[][..], "4:2:0"),
        ("low.mp4", &["--bitrate", "300"][..], "4:2:0"),
        ("high.mp4", &["--bitrate", "4000"][..], "4:2:0"),
        ("kept.mkv", &["--keep-chroma"][..], "4:4:4"),
    ] {
        let out = dir.path().join(name);
        let output = run_example(&binary, &transcode_args(&clip, &out, &picture, &model_args, extra));
        let stderr = text(&output.stderr);
        assert!(output.status.success(), "{name}: {stderr}");
        let caps = read_media(&out).video_caps.unwrap_or_default();
        assert!(caps.contains(&format!("chroma-format=(string){chroma}")), "{name}: {chroma}: {caps}");
        if chroma == "4:2:0" {
            assert!(!caps.contains("4:4:4"), "{name}: a profile every player plays: {caps}");
        }
        sizes.push(std::fs::metadata(&out).unwrap().len());
        if extra.is_empty() {
            // 640×480 at 30 fps × 0.1 bit per pixel.
            assert!(stderr.contains("x264enc at 922 kbit/s for 640x480 (auto"), "{name}: {stderr}");
        }
    }
    // Two seconds of video: the file holds about what the bit rate says (x264enc's default rate
    // control is constant bit rate), far from its 2048 kbit/s default. A rate too low for the
    // noise leaves x264 at its coarsest quantiser, under the rate: only "smaller" holds there.
    let expected = |kbits: u64| kbits * 1000 / 8 * 2;
    for (size, kbits) in [(sizes[0], 922u64), (sizes[2], 4000)] {
        let ratio = size as f64 / expected(kbits) as f64;
        assert!((0.6..1.4).contains(&ratio), "{kbits} kbit/s: {size} bytes in 2 s (sizes {sizes:?})");
    }
    assert!(sizes[1] < sizes[0] / 2, "--bitrate 300 gives a smaller file than auto's 922: {sizes:?}");
}

#[test]
fn live_counts_dropped_frames_and_exits_130_on_ctrl_c() {
    let Some(models) = fixture_models() else { return };
    let Some(binary) = example("live") else { return };
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    // 500 frames a second: more than the face chain takes on the CPU, so the queue before the
    // detector drops frames, as it does when a camera outruns a slow GPU.
    let fast_clip = |frames: u32, name: &str| {
        let clip = dir.path().join(name);
        launch(&format!(
            "filesrc location={} ! decodebin ! videoconvert ! imagefreeze num-buffers={frames} \
             ! video/x-raw,framerate=500/1 ! videoconvert ! jpegenc quality=90 ! matroskamux ! filesink location={}",
            picture.display(),
            clip.display()
        ));
        clip
    };
    let live_args = |clip: &Path| {
        let mut args = vec![
            "--source".to_string(),
            picture.display().to_string(),
            "--input".into(),
            clip.display().to_string(),
            "--sink".into(),
            "fakesink".into(),
        ];
        args.extend(models.args());
        args
    };
    let number_before = |line: &str, word: &str| -> u64 {
        let before = line.split(word).next().unwrap().trim_end();
        before.rsplit(' ').next().unwrap().parse().unwrap_or_else(|_| panic!("{word} in: {line}"))
    };

    // To its end: every frame of the clip is shown or counted as dropped.
    const FRAMES: u64 = 1500;
    let short = fast_clip(FRAMES as u32, "short.mkv");
    let args = live_args(&short);
    let output = run_example(&binary, &args.iter().map(String::as_str).collect::<Vec<_>>());
    let stdout = text(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", text(&output.stderr));
    let seconds: Vec<&str> = stdout.lines().filter(|l| l.contains(" fps, latency ")).collect();
    assert!(seconds.iter().all(|l| l.ends_with(" dropped")), "each second's line counts drops:\n{stdout}");
    let totals = stdout.lines().find(|l| l.starts_with("live: in all ")).unwrap_or_else(|| panic!("{stdout}"));
    let (shown, dropped) = (number_before(totals, " frames shown"), number_before(totals, " dropped"));
    assert!(dropped > 0, "frames dropped and counted: {totals}");
    assert_eq!(shown + dropped, FRAMES, "every frame shown or counted dropped: {totals}");
    let per_second: u64 = seconds.iter().map(|l| number_before(l, " dropped")).sum();
    assert!(per_second <= dropped, "the seconds' drops add up to no more than the total:\n{stdout}");

    // Ctrl-C: the same end as transcode's, exit status 130.
    // 30 s at 30 fps: far longer than the test needs, it stops it before.
    let long = dir.path().join("long.mkv");
    still_clip(&picture, 900, "width=640,height=480", &long);
    let mut child = Command::new(&binary)
        .args(live_args(&long))
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    for line in lines.by_ref() {
        let Ok(line) = line else { break };
        seen.push(line.clone());
        if line.contains(" fps, latency ") {
            break;
        }
    }
    // Its last lines are read too: a closed pipe would end it differently.
    std::thread::spawn(move || lines.for_each(drop));
    // SAFETY: kill(2) on the child this test started and has not reaped.
    unsafe { libc::kill(child.id() as i32, libc::SIGINT) };
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert_eq!(status.code(), Some(130), "Ctrl-C ends with 130, as in transcode: {seen:#?}\n{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let help = text(&run_example(&binary, &["--help"]).stdout);
    assert!(help.contains("exit status 130"), "--help says so:\n{help}");
}

#[test]
fn make_demo_writes_its_video_where_git_ignores_it() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = std::fs::read_to_string(root.join("scripts/demo.sh")).unwrap();
    let out = script
        .lines()
        .find_map(|l| l.strip_prefix("OUT=${DEMO_OUT:-"))
        .and_then(|rest| rest.strip_suffix('}'))
        .expect("scripts/demo.sh sets OUT=${DEMO_OUT:-…}");
    // The plain entries anchored at the top (`/target`): a file, or a folder and what it holds.
    let gitignore = std::fs::read_to_string(root.join(".gitignore")).unwrap();
    let ignored: Vec<&str> = gitignore
        .lines()
        .filter(|l| l.starts_with('/') && !l.contains('*'))
        .map(|l| l.trim_start_matches('/').trim_end_matches('/'))
        .collect();
    assert!(
        ignored.iter().any(|entry| out == *entry || out.strip_prefix(entry).is_some_and(|rest| rest.starts_with('/'))),
        "make demo writes '{out}', which none of .gitignore's entries covers: {ignored:?}"
    );
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap();
    assert!(readme.contains(&format!("({out})")), "README.md names where make demo writes ({out})");
}

#[test]
fn the_python_example_prints_bus_warnings() {
    let detector = require_fixture!("scrfd.onnx");
    let python = "/usr/bin/python3";
    let bindings = "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstVideo', '1.0'); \
         from gi.repository import Gst, GstVideo";
    if !Command::new(python).args(["-c", bindings]).output().is_ok_and(|o| o.status.success()) {
        common::skip("Debian's PyGObject with the GStreamer bindings is missing (scripts/setup-debian.sh installs it)");
        return;
    }
    // The plugin file cargo builds beside this test's binaries (target/<profile>/libgstdlc.so).
    let profile_dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_path_buf();
    if !profile_dir.join("libgstdlc.so").is_file() {
        common::skip(&format!("no libgstdlc.so in {} (cargo build --lib)", profile_dir.display()));
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    // CUDA on a machine without it: the detector runs on the CPU, with a warning on the bus.
    let output = Command::new(python)
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/python/faces.py"))
        .arg(&picture)
        .arg(format!("model-file={}", detector.display()))
        .arg("execution-provider=cuda")
        .env("GST_PLUGIN_PATH", &profile_dir)
        .env("GST_REGISTRY", dir.path().join("registry.bin"))
        .output()
        .unwrap();
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    if !stderr.contains("running on the CPU instead") && text(&output.stdout).contains("message pts") {
        // A machine with CUDA gives no warning to show; the check needs one without.
        let cuda = Command::new(python).args(["-c", "import ctypes; ctypes.CDLL('libcuda.so.1')"]).output();
        if cuda.is_ok_and(|o| o.status.success()) {
            eprintln!("skipped: this machine has CUDA, so execution-provider=cuda gives no warning");
            return;
        }
    }
    assert!(stderr.contains("faces.py: warning: dlcdetect"), "the warning is printed:\n{stderr}");
    assert!(stderr.contains("running on the CPU instead"), "{stderr}");
    assert!(text(&output.stdout).contains("message pts"), "and the faces still come");
}
