// SPDX-License-Identifier: MPL-2.0
//! What the tests of the application examples share: running an example as a user does, the
//! inputs they make (pictures, clips) and reading back what the examples wrote.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use gst::prelude::*;

use crate::common;

/// Longest a single example run may take before the test gives up on it (a hang, not a timing).
pub const RUN_LIMIT: Duration = Duration::from_secs(600);

/// Runs an example to its end, with nothing on its standard input.
pub fn run_example(binary: &Path, args: &[&str]) -> Output {
    run_example_within(binary, args, RUN_LIMIT)
}

/// Runs an example to its end, failing the test when it takes longer than `limit` (a hang).
pub fn run_example_within(binary: &Path, args: &[&str], limit: Duration) -> Output {
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

pub fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Checks that a run failed with exit status 1 and a message containing `expected`, and no panic.
pub fn assert_refused(output: &Output, expected: &str, what: &str) {
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{what}: exit status; stderr:\n{stderr}");
    assert!(stderr.contains(expected), "{what}: stderr lacks '{expected}':\n{stderr}");
    assert!(!stderr.contains("panicked"), "{what}: panicked:\n{stderr}");
}

/// Every option of an example is explained in its `--help`.
pub fn assert_help_lists(binary: &Path, options: &[&str]) {
    let output = run_example(binary, &["--help"]);
    assert!(output.status.success());
    let help = text(&output.stdout);
    for option in options {
        assert!(help.contains(&format!("--{option}")), "--help lacks --{option}:\n{help}");
    }
}

pub const MODEL_OPTIONS: [&str; 8] =
    ["models", "detector", "recognizer", "swapper", "enhancer", "occluder", "parser", "provider"];

/// The swapping examples' options for FaceFusion's faces (dlcswap swapper-family, pixel-boost,
/// mask-types).
pub const QUALITY_OPTIONS: [&str; 3] = ["swapper-family", "pixel-boost", "masks"];

/// faces-json runs the detector only, and takes only its model options.
pub const DETECTOR_OPTIONS: [&str; 3] = ["models", "detector", "provider"];

/// A 640×480 black picture with one white 32×32 block at (320, 256): a face to the fixture
/// detector (see tests/dlcdetect.rs).
pub fn block_picture(dir: &Path) -> PathBuf {
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
pub fn launch(description: &str) {
    let log = common::run_launch(description);
    assert!(log.eos && log.errors.is_empty(), "{description}: {log:?}");
}

/// A video of `frames` copies of `picture` at 30 fps: motion JPEG in Matroska (near-lossless,
/// so that the detectors find what they find in the picture).
pub fn still_clip(picture: &Path, frames: u32, size: &str, out: &Path) {
    launch(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! videoscale ! video/x-raw,{size} ! imagefreeze num-buffers={frames} \
         ! video/x-raw,framerate=30/1 ! videoconvert ! jpegenc quality=98 ! matroskamux ! filesink location={}",
        picture.display(),
        out.display()
    ));
}

/// What a media file holds, read back through GStreamer: the decoded video frames' count and
/// time span, and the compressed audio as the demuxer gives it (bytes of every buffer).
#[derive(Debug, Default)]
pub struct Media {
    pub frames: usize,
    /// Every decoded frame's timestamp, in order.
    pub pts: Vec<gst::ClockTime>,
    /// The compressed video's caps as the demuxer and parser give them.
    pub video_caps: Option<String>,
    pub first_pts: Option<gst::ClockTime>,
    pub end: Option<gst::ClockTime>,
    pub audio_caps: Option<String>,
    pub audio: Vec<u8>,
}

impl Media {
    pub fn span(&self) -> gst::ClockTime {
        self.end.unwrap() - self.first_pts.unwrap()
    }
}

pub fn read_media(path: &Path) -> Media {
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
pub fn assert_same_frames_and_audio(input: &Media, out: &Media, what: &str) {
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

/// A clip of the block picture with an AAC sound track, made the way a camera app would.
pub fn clip_with_audio(picture: &Path, frames: u32, out: &Path) {
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

pub struct FixtureModels {
    pub detector: PathBuf,
    pub arcface: PathBuf,
    pub swapper: PathBuf,
    pub enhancer: PathBuf,
}

impl FixtureModels {
    pub fn args(&self) -> Vec<String> {
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

pub fn fixture_models() -> Option<FixtureModels> {
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

pub fn transcode_args<'a>(
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
