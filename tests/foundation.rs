// SPDX-License-Identifier: MPL-2.0
//! The plugin's foundation: registration and property docs, FaceMeta through other elements,
//! model validation errors and the provider fallback warning.

mod common;

use std::time::Duration;

use gst::prelude::*;
use gstdlc::{Face, FaceFlags, FaceMeta};

const ELEMENTS: [&str; 3] = ["dlcdetect", "dlcswap", "dlcenhance"];

#[test]
fn plugin_registers_three_elements_with_documented_properties() {
    common::init();
    for name in ELEMENTS {
        let factory = gst::ElementFactory::find(name).unwrap_or_else(|| panic!("{name} is registered"));
        assert_eq!(factory.plugin_name().as_deref(), Some("dlc"));
        let element = factory.create().build().unwrap();
        let props = element.list_properties();
        for common_prop in ["model-file", "execution-provider", "gpu-id", "threads", "spin-wait", "active-provider"] {
            assert!(props.iter().any(|p| p.name() == common_prop), "{name} lacks {common_prop}");
        }
        for pspec in props.iter().filter(|p| p.owner_type() != gst::Object::static_type() && p.name() != "qos") {
            let blurb = pspec.blurb().unwrap_or_default();
            assert!(blurb.len() >= 25, "{name}::{} needs a blurb a user can act on, has '{blurb}'", pspec.name());
        }
        assert_eq!(element.property::<Option<String>>("active-provider"), None);
    }
}

fn sample_face() -> Face {
    Face {
        bbox: [40.0, 30.0, 120.0, 130.0],
        score: 0.87,
        landmarks: [[60.0, 60.0], [100.0, 60.0], [80.0, 80.0], [65.0, 105.0], [95.0, 105.0]],
        landmarks_106: None,
        embedding: Some(vec![0.25f32; gstdlc::EMBEDDING_LEN].into()),
        track_id: 3,
        flags: FaceFlags::INFERRED,
    }
}

/// Runs `caps_in ! tag ! <middle> ! appsink` for one frame, tagging the buffer with a FaceMeta
/// before `middle`, and returns the faces that reach the sink (None: the meta was dropped).
fn faces_after(middle: &str, caps_in: &str) -> Option<Vec<Face>> {
    let pipeline = common::pipeline(&format!(
        "videotestsrc num-buffers=1 ! {caps_in} ! identity name=tag ! {middle} ! appsink name=sink sync=false"
    ));
    let tag = pipeline.by_name("tag").unwrap();
    tag.static_pad("src").unwrap().add_probe(gst::PadProbeType::BUFFER, |_, info| {
        if let Some(gst::PadProbeData::Buffer(buffer)) = info.data.as_mut() {
            FaceMeta::add(buffer.make_mut(), vec![sample_face()]);
        }
        gst::PadProbeReturn::Ok
    });
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(10)).expect("a frame reaches the sink");
    let faces = sample.buffer().unwrap().meta::<FaceMeta>().map(|m| m.faces().to_vec());
    pipeline.set_state(gst::State::Null).unwrap();
    faces
}

#[test]
fn meta_follows_videoscale_with_scaled_coordinates() {
    let faces =
        faces_after("videoscale ! video/x-raw,width=640,height=360", "video/x-raw,format=RGB,width=320,height=240")
            .expect("videoscale keeps the FaceMeta");
    let original = sample_face();
    let (sx, sy) = (2.0f32, 1.5f32);
    assert_eq!(faces.len(), 1);
    assert_eq!(
        faces[0].bbox,
        [original.bbox[0] * sx, original.bbox[1] * sy, original.bbox[2] * sx, original.bbox[3] * sy]
    );
    assert_eq!(faces[0].landmarks[3], [original.landmarks[3][0] * sx, original.landmarks[3][1] * sy]);
    assert_eq!(faces[0].track_id, 3);
    assert_eq!(faces[0].embedding, original.embedding);
}

#[test]
fn meta_survives_conversion_and_buffer_copies() {
    let faces = faces_after("videoconvert ! video/x-raw,format=I420", "video/x-raw,format=RGB,width=320,height=240")
        .expect("videoconvert keeps the FaceMeta");
    assert_eq!(faces, vec![sample_face()]);

    common::init();
    let mut buffer = gst::Buffer::with_size(64).unwrap();
    FaceMeta::add(buffer.get_mut().unwrap(), vec![sample_face()]);
    let deep = buffer.copy_deep().unwrap();
    assert_eq!(deep.meta::<FaceMeta>().unwrap().faces(), &[sample_face()]);
}

#[test]
fn meta_is_dropped_by_cropping() {
    // A crop moves the origin; the meta's transform refuses it rather than carry wrong boxes.
    let faces = faces_after("videocrop left=10", "video/x-raw,format=RGB,width=320,height=240");
    assert!(faces.is_none(), "videocrop must not carry stale coordinates: {faces:?}");
}

/// gst-inspect's "Origin URL" claims no address the project does not have.
#[test]
fn the_plugin_origin_is_no_made_up_address() {
    common::init();
    let plugin = gst::Registry::get().find_plugin("dlc").expect("the dlc plugin is registered");
    assert_eq!(plugin.origin(), "Unknown package origin");
}

fn start_error(description: &str) -> String {
    let log = common::run_launch(description);
    assert!(!log.errors.is_empty(), "expected a start error for '{description}', got {log:?}");
    log.error_text()
}

#[test]
fn missing_model_file_is_named_in_the_error() {
    if !common::have_ort() {
        common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
        return;
    }
    let text = start_error("videotestsrc num-buffers=1 ! dlcdetect model-file=/nonexistent/det_10g.onnx ! fakesink");
    assert!(text.contains("/nonexistent/det_10g.onnx") && text.contains("does not exist"), "{text}");
    assert!(text.contains("model-file"), "the error names the property: {text}");
}

/// The message (not the debug text) of the first error or warning `description` posts: what
/// applications show as `err.message` (GUIs, the Python example).
fn first_message_text(description: &str, kind: gst::MessageType) -> String {
    let pipeline = common::pipeline(description);
    let bus = pipeline.bus().expect("a bus");
    let _ = pipeline.set_state(gst::State::Playing);
    let message = bus.timed_pop_filtered(gst::ClockTime::from_seconds(60), &[kind]);
    pipeline.set_state(gst::State::Null).unwrap();
    match message.as_ref().map(|m| m.view()) {
        Some(gst::MessageView::Error(e)) => e.error().message().to_string(),
        Some(gst::MessageView::Warning(w)) => w.error().message().to_string(),
        _ => panic!("'{description}' posted no {kind:?}"),
    }
}

#[test]
fn error_and_warning_messages_themselves_explain() {
    let gfpgan = require_fixture!("gfpgan.onnx");
    let missing = "videotestsrc num-buffers=1 ! dlcdetect model-file=/nonexistent/det_10g.onnx ! fakesink";
    let text = first_message_text(missing, gst::MessageType::Error);
    assert!(text.contains("/nonexistent/det_10g.onnx") && text.contains("does not exist"), "{text}");
    assert!(text.contains("'model-file'"), "{text}");

    let wrong = format!("videotestsrc num-buffers=1 ! dlcdetect model-file={} ! fakesink", gfpgan.display());
    let text = first_message_text(&wrong, gst::MessageType::Error);
    assert!(text.contains("gfpgan.onnx") && text.contains("expected an SCRFD face detector"), "{text}");

    // A warning decided while the element holds its locks, posted after (`defer_message!`).
    let without_faces = format!("videotestsrc num-buffers=2 ! dlcenhance model-file={} ! fakesink", gfpgan.display());
    let text = first_message_text(&without_faces, gst::MessageType::Warning);
    assert!(text.contains("without face metadata: put dlcdetect upstream of dlcenhance"), "{text}");
}

#[test]
fn wrong_kind_of_model_is_refused_with_expected_and_found() {
    let gfpgan = require_fixture!("gfpgan.onnx");
    let text =
        start_error(&format!("videotestsrc num-buffers=1 ! dlcdetect model-file={} ! fakesink", gfpgan.display()));
    assert!(text.contains("gfpgan.onnx"), "{text}");
    assert!(text.contains("expected an SCRFD face detector"), "{text}");
    assert!(text.contains("found inputs 'input' float32 [1,3,512,512]"), "{text}");
}

#[test]
fn a_file_that_is_not_a_model_is_refused() {
    let not_model = require_fixture!("not_a_model.onnx");
    let text =
        start_error(&format!("videotestsrc num-buffers=1 ! dlcdetect model-file={} ! fakesink", not_model.display()));
    assert!(text.contains("not_a_model.onnx") && text.contains("could not be loaded as an ONNX model"), "{text}");
}

#[test]
fn provider_fallback_posts_a_warning_and_reports_cpu() {
    let scrfd = require_fixture!("scrfd.onnx");
    let pipeline = common::pipeline(&format!(
        "videotestsrc num-buffers=2 ! dlcdetect name=d execution-provider=cuda model-file={} ! fakesink",
        scrfd.display()
    ));
    let detect = pipeline.by_name("d").unwrap();
    // Read the provider while running: it is cleared again when the element stops.
    let provider = std::sync::Arc::new(std::sync::Mutex::new(None));
    let seen = provider.clone();
    detect.static_pad("src").unwrap().add_probe(gst::PadProbeType::BUFFER, move |pad, _| {
        let element = pad.parent_element().unwrap();
        *seen.lock().unwrap() = element.property::<Option<String>>("active-provider");
        gst::PadProbeReturn::Ok
    });
    let log = common::run(&pipeline, Duration::from_secs(60));
    assert!(log.errors.is_empty(), "{:?}", log.errors);
    let warning =
        log.warnings.iter().find(|w| w.contains("'cuda'")).unwrap_or_else(|| panic!("no fallback warning: {log:?}"));
    assert!(warning.contains("running on the CPU"), "{warning}");
    assert!(warning.contains("scrfd.onnx"), "{warning}");
    // ONNX Runtime's own reason follows the colon.
    assert!(warning.split("instead:").nth(1).is_some_and(|r| r.trim().len() > 10), "{warning}");
    assert_eq!(provider.lock().unwrap().as_deref(), Some("cpu"));
}
