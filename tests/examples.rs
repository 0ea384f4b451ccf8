// SPDX-License-Identifier: MPL-2.0
//! The application examples (faces-json, transcode, live) run as programs, the way a user runs
//! them: their output against the elements', what the files they write hold, their commands and
//! their refusals of bad input.

mod common;
mod example_runs;

use common::example;
use example_runs::*;

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde::Deserialize;

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
            .chain(QUALITY_OPTIONS)
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
        (transcode_args(&clip, &out, &picture, &model_args, &["--lanes", "9"]), "--lanes 9: give auto or 1 to 4"),
        (vec![clip.to_str().unwrap(), out.to_str().unwrap()], "--source FACE is missing"),
    ];
    for (args, expected) in cases {
        assert_refused(&run_example(&binary, &args), expected, &format!("transcode {args:?}"));
        assert!(!out.exists(), "no unfinished output is left behind ({args:?})");
    }
}

/// `--swapper-family`, `--pixel-boost` and `--masks` make transcode's faces as FaceFusion does
/// (hyperswap in 512-px tiles, box and occlusion masks); their bad values and a missing mask
/// model are refused naming the option.
#[test]
fn transcode_takes_facefusion_families_boost_and_masks() {
    let Some(models) = fixture_models() else { return };
    let Some(binary) = example("transcode") else { return };
    let hyperswap = common::fixture("hyperswap_256.onnx").expect("fixture hyperswap_256.onnx (run `make fixtures`)");
    let xseg = common::fixture("xseg.onnx").expect("fixture xseg.onnx (run `make fixtures`)");
    let dir = tempfile::tempdir().unwrap();
    let picture = block_picture(dir.path());
    let clip = dir.path().join("clip.mp4");
    clip_with_audio(&picture, 6, &clip);
    let out = dir.path().join("out.mp4");
    let mut model_args = models.args();
    let swapper_at = model_args.iter().position(|a| a == "--swapper").unwrap() + 1;
    model_args[swapper_at] = hyperswap.display().to_string();
    let xseg = xseg.to_str().unwrap();
    let quality =
        ["--swapper-family", "hyperswap", "--pixel-boost", "512", "--masks", "box+occlusion", "--occluder", xseg];
    let output = run_example(&binary, &transcode_args(&clip, &out, &picture, &model_args, &quality));
    let stderr = text(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(swapped_frames(&stderr) > 0, "the block replaced:\n{stderr}");
    assert_eq!(read_media(&out).frames, 6, "every frame kept");
    std::fs::remove_file(&out).unwrap();

    let missing = dir.path().join("missing.onnx");
    let missing = missing.to_str().unwrap();
    let cases: [(&[&str], &str); 6] = [
        (&["--masks", "box+hands"], "--masks: 'box+hands' is not a valid value for mask-types"),
        (&["--pixel-boost", "big"], "--pixel-boost: 'big' is not a valid value for pixel-boost"),
        (&["--pixel-boost", "100000"], "--pixel-boost: '100000' is out of range for pixel-boost"),
        (&["--swapper-family", "fastswap"], "--swapper-family 'fastswap': one of auto, inswapper, hyperswap"),
        (&["--masks", "occlusion", "--occluder", missing], "--occluder: '"),
        (&["--swapper-family", "hyperswap", "--pixel-boost", "300"], "pixel-boost"),
    ];
    for (extra, expected) in cases {
        let args = transcode_args(&clip, &out, &picture, &model_args, extra);
        assert_refused(&run_example(&binary, &args), expected, &format!("transcode {args:?}"));
        assert!(!out.exists(), "no unfinished output is left behind ({args:?})");
    }
    // Without --swapper, the family's first FaceFusion file is looked for in the model folder.
    let empty = dir.path().join("no-models");
    std::fs::create_dir(&empty).unwrap();
    let args = [clip.to_str().unwrap(), out.to_str().unwrap(), "--source", picture.to_str().unwrap()];
    let args: Vec<&str> =
        args.into_iter().chain(["--models", empty.to_str().unwrap(), "--swapper-family", "hyperswap"]).collect();
    assert_refused(&run_example(&binary, &args), "--swapper: hyperswap_1a_256.onnx is not in", "no hyperswap file");
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
            .chain(QUALITY_OPTIONS)
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
