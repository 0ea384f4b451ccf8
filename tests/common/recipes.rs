// SPDX-License-Identifier: MPL-2.0
//! Documented `gst-launch-1.0` lines run on a test machine, as written except for what such a
//! machine lacks (tests/doc_pipelines.rs for the elements' documentation, tests/readme_recipes.rs
//! for README.md):
//!
//! - the camera: `v4l2src …` → a few `videotestsrc` frames in a webcam's YUY2;
//! - the window: `autovideosink` → `fakesink`;
//! - a virtual camera whose device does not exist: `v4l2sink device=…` → `fakesink`;
//! - an H.264 encoder that is not installed (`nvh264enc`, `vah264enc`, `amfh264enc`, …) →
//!   `x264enc` (GStreamer's -ugly set, which scripts/setup-debian.sh installs);
//! - the user's files (`in.mp4`, `face.jpg`, `boss.jpg`, `people.map`, …) → test media (`in.mp4`:
//!   a [`short_clip`] of a test video, so that runs stay short), and the files written
//!   (`out.mp4`, `faces.png`) → a temporary folder;
//! - the models: found the documented way, in `$DLC_MODELS_DIR` under their default names.

use std::path::{Path, PathBuf};

/// What a camera is replaced by: a few frames in the YUY2 that USB webcams deliver.
const CAMERA: &str = "videotestsrc num-buffers=5 ! video/x-raw,format=YUY2,width=640,height=480";

/// H.264 encoders that recipes name; a missing one is replaced (see the module documentation).
const H264_ENCODERS: [&str; 6] = ["x264enc", "openh264enc", "nvh264enc", "vah264enc", "vaapih264enc", "amfh264enc"];

/// The pipeline of a `gst-launch-1.0 [options] pipeline` line, or why it is not one.
pub fn launch_pipeline(command: &str) -> Result<String, String> {
    let mut words = command.split_whitespace().peekable();
    if words.next() != Some("gst-launch-1.0") {
        return Err(format!("'{command}' does not start with gst-launch-1.0"));
    }
    while words.peek().is_some_and(|w| w.starts_with('-')) {
        words.next();
    }
    let pipeline = words.collect::<Vec<_>>().join(" ");
    if pipeline.is_empty() {
        return Err(format!("'{command}' names no pipeline"));
    }
    Ok(pipeline)
}

/// Links `file` into `dir` as `name`.
pub fn link(dir: &Path, name: &str, file: &Path) {
    super::link_file(file, &dir.join(name));
}

/// The test machine's stand-ins for a user's camera, window, encoders and files.
pub struct StandIns {
    /// The user's file names in the documentation and the test files that replace them.
    files: Vec<(String, PathBuf)>,
}

/// A documented pipeline adapted to the test machine.
pub struct Adapted {
    pub description: String,
    /// What was replaced, one `was → now` line each.
    pub substitutions: Vec<String>,
}

impl StandIns {
    /// Stand-ins that replace each documented file name of `files` by its path.
    pub fn new(files: impl IntoIterator<Item = (impl Into<String>, PathBuf)>) -> Self {
        Self { files: files.into_iter().map(|(name, path)| (name.into(), path)).collect() }
    }

    /// The test file that stands in for the user's `name`.
    pub fn file(&self, name: &str) -> Option<&Path> {
        self.files.iter().find(|(n, _)| n == name).map(|(_, path)| path.as_path())
    }

    /// `pipeline` (a launch description) with the stand-ins in place.
    pub fn adapt(&self, pipeline: &str) -> Adapted {
        let mut substitutions = Vec::new();
        let mut elements: Vec<String> = Vec::new();
        for element in pipeline.split('!').map(str::trim) {
            let factory = element.split_whitespace().next().unwrap_or_default();
            let replacement = match factory {
                "v4l2src" => Some(CAMERA.to_owned()),
                "autovideosink" => Some("fakesink".to_owned()),
                "v4l2sink" if !Path::new(property(element, "device").unwrap_or("/dev/video0")).exists() => {
                    Some("fakesink".to_owned())
                }
                _ if H264_ENCODERS.contains(&factory) && gst::ElementFactory::find(factory).is_none() => {
                    Some("x264enc".to_owned())
                }
                _ => None,
            };
            match replacement {
                Some(now) => {
                    substitutions.push(format!("{element} → {now}"));
                    elements.push(now);
                }
                None => elements.push(self.replace_files(element, &mut substitutions)),
            }
        }
        Adapted { description: elements.join(" ! "), substitutions }
    }

    /// `element` with every `property=<user file>` pointing at its stand-in.
    fn replace_files(&self, element: &str, substitutions: &mut Vec<String>) -> String {
        let words: Vec<String> = element
            .split_whitespace()
            .map(|word| {
                let Some((key, value)) = word.split_once('=') else { return word.to_owned() };
                match self.file(value) {
                    Some(path) => {
                        let now = format!("{key}={}", path.display());
                        substitutions.push(format!("{word} → {now}"));
                        now
                    }
                    None => word.to_owned(),
                }
            })
            .collect();
        words.join(" ")
    }
}

/// The value of `name=value` in one element of a launch description.
fn property<'a>(element: &'a str, name: &str) -> Option<&'a str> {
    element.split_whitespace().find_map(|word| word.strip_prefix(name)?.strip_prefix('='))
}

/// A model directory holding the real detector and the fixture models under the default names
/// the elements look for (`det_10g.onnx`, `w600k_r50.onnx`, `inswapper_128.onnx`,
/// `GFPGANv1.4.onnx`).
pub fn default_models(dir: &Path, detector: &Path, [arcface, inswapper, gfpgan]: [&Path; 3]) {
    link(dir, "det_10g.onnx", detector);
    link(dir, "w600k_r50.onnx", arcface);
    link(dir, "inswapper_128.onnx", inswapper);
    link(dir, "GFPGANv1.4.onnx", gfpgan);
    // FaceFusion's swapper and mask models, under FaceFusion's file names (README's "sharper
    // faces" and "hands in front of the face"), where the fixtures have them.
    for (name, fixture) in FACEFUSION_MODELS {
        if let Some(path) = super::fixture(fixture) {
            link(dir, name, &path);
        }
    }
}

/// FaceFusion's default file names and the fixture standing in for each.
const FACEFUSION_MODELS: [(&str, &str); 4] = [
    ("hyperswap_1a_256.onnx", "hyperswap_256.onnx"),
    ("xseg_1.onnx", "xseg.onnx"),
    ("bisenet_resnet_34.onnx", "bisenet.onnx"),
    ("fan_68_5.onnx", "fan_68_5.onnx"),
];

/// The fixture models [`default_models`] needs, for [`super::real_faces`].
pub const FIXTURE_MODELS: [&str; 3] = ["arcface.onnx", "inswapper.onnx", "gfpgan.onnx"];

/// A temporary model directory made by [`default_models`] and made the model directory of this
/// process (`DLC_MODELS_DIR`), then GStreamer initialised; with the test media folder. `None`
/// (after [`super::real_faces`] said why) without the test data.
pub fn models_dir_for_recipes() -> Option<(tempfile::TempDir, std::path::PathBuf)> {
    let (detector, media, [arcface, inswapper, gfpgan]) = super::real_faces(FIXTURE_MODELS)?;
    let models = tempfile::tempdir().expect("a temporary model directory");
    default_models(models.path(), &detector, [&arcface, &inswapper, &gfpgan]);
    // SAFETY: called by the one test of its binary that uses GStreamer, before GStreamer or any
    // element thread starts.
    unsafe { std::env::set_var("DLC_MODELS_DIR", models.path()) };
    super::init();
    Some((models, media))
}

/// The first `frames` frames of `video`, re-encoded into `out` (H.264 with B-frames, in MP4) with
/// the timestamps they had. The frames are counted off at an appsink, then encoded from an
/// appsrc: `identity eos-after=N` behind `decodebin`, as this was made before, let through
/// frames decoded after its EOS, sometimes one from seconds later; qtdemux then refused that
/// frame's B-frame offset as corrupt and dropped every frame's offset, the decoder gave repeated
/// timestamps, and x264enc in the recipe under test sent out a frame without PTS, which mp4mux
/// refused ("Buffer has no PTS": issue 17, item 9). The clip is checked as it is read back.
pub fn short_clip(video: &Path, frames: usize, out: &Path) {
    use gst::prelude::*;
    let decode = super::pipeline(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=I420 ! appsink name=sink sync=false",
        video.display()
    ));
    let sink = decode.by_name("sink").and_then(|s| s.downcast::<gst_app::AppSink>().ok()).expect("an appsink");
    decode.set_state(gst::State::Playing).expect("the clip decodes");
    let samples: Vec<gst::Sample> =
        (0..frames).map_while(|_| sink.try_pull_sample(gst::ClockTime::from_seconds(30))).collect();
    let errors = super::drain_errors(&decode);
    decode.set_state(gst::State::Null).expect("pipeline stops");
    assert!(samples.len() == frames, "{} has fewer than {frames} frames: {errors:?}", video.display());

    let description = format!(
        "appsrc name=src format=time max-bytes=0 ! videoconvert ! x264enc ! mp4mux ! filesink location={}",
        out.display()
    );
    let encode = super::pipeline(&description);
    let src = encode.by_name("src").and_then(|s| s.downcast::<gst_app::AppSrc>().ok()).expect("an appsrc");
    src.set_caps(samples[0].caps_owned().as_ref());
    for sample in &samples {
        src.push_buffer(sample.buffer_owned().expect("a frame")).expect("appsrc takes the frame");
    }
    src.end_of_stream().expect("appsrc takes the end of stream");
    let log = super::run(&encode, std::time::Duration::from_secs(60));
    assert!(log.eos && log.errors.is_empty(), "the short input clip is not written ({description}): {log:?}");

    let read_back = super::pull_all(
        &super::pipeline(&format!("filesrc location={} ! decodebin ! appsink name=sink sync=false", out.display())),
        "sink",
    );
    let times: Vec<_> = read_back.iter().map(|b| b.pts()).collect();
    let expected: Vec<_> = samples.iter().map(|s| s.buffer().and_then(|b| b.pts())).collect();
    assert_eq!(times, expected, "{} decodes to other frames or timestamps than were written", out.display());
}
