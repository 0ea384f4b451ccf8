// SPDX-License-Identifier: MPL-2.0
//! With no ONNX Runtime library anywhere, an element fails to start with an error that names
//! the variable, the paths tried and how to get the library — and GStreamer keeps working.
//! (Its own test binary: ONNX Runtime can be loaded only once per process.)

mod common;

#[test]
fn missing_library_error_names_variable_paths_and_remedy() {
    let bogus = "/nonexistent/onnxruntime/libonnxruntime.so.1.99.0";
    // SAFETY: this binary runs this single test, before any other thread exists.
    unsafe { std::env::set_var("ORT_DYLIB_PATH", bogus) };
    if std::env::var_os("LD_LIBRARY_PATH").is_some_and(|p| !p.is_empty()) {
        eprintln!(
            "note: LD_LIBRARY_PATH is set; if it holds libonnxruntime.so.1 this test cannot see a missing library"
        );
    }
    common::init();
    // An existing, non-empty file, so that the element gets as far as loading ONNX Runtime
    // (an empty one is refused before that).
    let model = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(model.path(), "not a model either").unwrap();
    let log = common::run_launch(&format!(
        "videotestsrc num-buffers=1 ! dlcdetect model-file={} ! fakesink",
        model.path().display()
    ));
    let text = log.error_text();
    assert!(text.contains("ONNX Runtime library not found"), "{text}");
    assert!(text.contains("ORT_DYLIB_PATH"), "{text}");
    assert!(text.contains(bogus), "the tried path is listed: {text}");
    assert!(text.contains("libonnxruntime.so.1"), "{text}");
    assert!(text.contains("pip install onnxruntime"), "{text}");

    // GStreamer goes on working after the failure.
    let log = common::run_launch("videotestsrc num-buffers=3 ! videoconvert ! fakesink");
    assert!(log.eos && log.errors.is_empty(), "{log:?}");
}
