// SPDX-License-Identifier: MPL-2.0
//! The application examples (faces-json, transcode, live) run as programs, the way a user runs
//! them: their output against the elements', what the files they write hold, their commands and
//! their refusals of bad input.

mod common;

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
    match receiver.recv_timeout(RUN_LIMIT) {
        Ok(output) => output.expect("the example's output is read"),
        Err(_) => {
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("{} {args:?} did not end within {RUN_LIMIT:?}", binary.display());
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
    let log = common::run_launch(&format!(
        "uridecodebin uri={uri} caps=\"video/x-raw(ANY)\" expose-all-streams=false ! videoconvert \
         ! dlcdetect post-messages=true {props} ! fakesink sync=false"
    ));
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
            .chain(MODEL_OPTIONS)
            .collect::<Vec<_>>(),
    );
    let detector = detector.to_str().unwrap();
    let not_video = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let cases: [(&[&str], &str); 5] = [
        (&["/nonexistent/clip.mp4", "--detector", detector], "no such file"),
        (&[not_video, "--detector", detector], "text file"),
        (&[not_video, "--threshold", "2"], "--threshold"),
        (&[not_video, "--colour"], "unknown option --colour"),
        (&[], "give exactly one INPUT"),
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
        let caps = pad.current_caps().unwrap();
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
            let decode = gst::ElementFactory::make("decodebin").build().unwrap();
            pipeline.add(&decode).unwrap();
            let sink_pad = sink.static_pad("sink").unwrap();
            sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
                if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data {
                    let mut media = seen.lock().unwrap();
                    media.frames += 1;
                    let pts = buffer.pts().unwrap();
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
        &["source", "reference", "face-map", "many-faces", "enhance", "lanes", "encoder"]
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
