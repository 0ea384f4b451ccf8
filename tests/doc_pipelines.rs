// SPDX-License-Identifier: MPL-2.0
//! The example pipelines of the elements' `SECTION:element-*` documentation run as written, with
//! only what a test machine lacks replaced: the camera (`v4l2src` → a few `videotestsrc` frames),
//! the window (`autovideosink` → `fakesink`), the user's files (`in.mp4`, `face.jpg`, `boss.jpg`,
//! `out.mp4`) and, where GStreamer's -ugly set is not installed, `x264enc` (→ `jpegenc`). The
//! models are found the documented way, in the model directory under their default names.

mod common;

use std::path::Path;
use std::time::Duration;

/// The `|[ … ]|` examples of a documentation block, continuation lines joined.
fn examples(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in source.lines() {
        let text = line.trim_start().trim_start_matches('*').trim();
        match (&mut current, text) {
            (None, "|[") => current = Some(String::new()),
            (Some(_), t) if t.starts_with("]|") => found.extend(current.take()),
            (Some(example), t) => {
                *example += t.trim_end_matches('\\');
                *example += " ";
            }
            (None, _) => {}
        }
    }
    found
}

/// The pipeline of a `gst-launch-1.0 [options] pipeline` line.
fn launch_pipeline(command: &str) -> String {
    let mut words = command.split_whitespace().peekable();
    assert_eq!(words.next(), Some("gst-launch-1.0"), "an example starts with gst-launch-1.0: {command}");
    while words.peek().is_some_and(|w| w.starts_with('-')) {
        words.next();
    }
    words.collect::<Vec<_>>().join(" ")
}

fn link_model(dir: &Path, name: &str, file: &Path) {
    std::os::unix::fs::symlink(file, dir.join(name)).expect("a model link in the temporary model directory");
}

#[test]
fn documented_example_pipelines_run() {
    let Some((detector, media, [arcface, inswapper, gfpgan])) =
        common::real_faces(["arcface.onnx", "inswapper.onnx", "gfpgan.onnx"])
    else {
        return;
    };
    let models = tempfile::tempdir().expect("a temporary model directory");
    link_model(models.path(), "det_10g.onnx", &detector);
    link_model(models.path(), "w600k_r50.onnx", &arcface);
    link_model(models.path(), "inswapper_128.onnx", &inswapper);
    link_model(models.path(), "GFPGANv1.4.onnx", &gfpgan);
    // SAFETY: the only test of this binary, set before GStreamer or any element thread starts.
    unsafe { std::env::set_var("DLC_MODELS_DIR", models.path()) };
    common::init();

    let out = models.path().join("out.mp4");
    let face = media.join("newton.png");
    let encoder = if gst::ElementFactory::find("x264enc").is_some() { "x264enc" } else { "jpegenc" };
    let sources = [
        ("dlcdetect", include_str!("../src/dlcdetect/imp.rs")),
        ("dlcswap", include_str!("../src/dlcswap/imp.rs")),
        ("dlcenhance", include_str!("../src/dlcenhance/imp.rs")),
    ];
    for (element, source) in sources {
        let found = examples(source);
        assert!(found.len() >= 2, "{element} documents at least two example pipelines, found {found:?}");
        for example in found {
            let description = launch_pipeline(&example)
                .replace("location=in.mp4", &format!("location={}", media.join("carphone_pristine.mp4").display()))
                .replace("location=out.mp4", &format!("location={}", out.display()))
                .replace("=face.jpg", &format!("={}", face.display()))
                .replace("=boss.jpg", &format!("={}", face.display()))
                .replace("v4l2src", "videotestsrc num-buffers=5")
                .replace("autovideosink", "fakesink")
                .replace("x264enc", encoder);
            let _ = std::fs::remove_file(&out);
            let pipeline = common::pipeline(&description);
            let log = common::run(&pipeline, Duration::from_secs(120));
            assert!(log.errors.is_empty(), "{element} example '{example}' fails: {}", log.error_text());
            assert!(log.eos, "{element} example '{example}' does not reach its end: {log:?}");
            if example.contains("post-messages=true") {
                assert!(
                    log.elements.iter().any(|s| s.name() == "dlcdetect"),
                    "{element} example '{example}' posts no dlcdetect messages"
                );
            }
            if example.contains("location=out.mp4") {
                let written = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
                assert!(written > 0, "{element} example '{example}' writes no out.mp4");
            }
        }
    }
}
