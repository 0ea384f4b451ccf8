// SPDX-License-Identifier: MPL-2.0
//! Pipelines started and stopped again and again (RELIABILITY.md, "memory across NULL ↔ PLAYING
//! cycles"). This binary holds one test only: it counts the process's threads, which tests
//! running beside it would disturb.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use gst::prelude::*;

/// The threads of this process.
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|tasks| tasks.count()).unwrap_or(0)
}

/// Runs `chain` on a few small frames, twice, and returns the most threads the process had while
/// frames reached the sink in the second run (the first one loads ONNX Runtime and starts what
/// stays for the process).
fn threads_while_playing(chain: &str) -> usize {
    let pipeline = common::pipeline(&format!(
        "videotestsrc pattern=white num-buffers=3 ! video/x-raw,format=RGB,width=64,height=64 ! {chain} \
         ! fakesink name=sink"
    ));
    let most = Arc::new(AtomicUsize::new(0));
    let seen = most.clone();
    let sink_pad = pipeline.by_name("sink").and_then(|sink| sink.static_pad("sink")).expect("the sink's pad");
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        seen.fetch_max(thread_count(), Ordering::Relaxed);
        gst::PadProbeReturn::Ok
    });
    for _ in 0..2 {
        most.store(0, Ordering::Relaxed);
        let log = common::run(&pipeline, Duration::from_secs(60));
        assert!(log.eos && log.errors.is_empty() && log.warnings.is_empty(), "{chain}: {log:?}");
    }
    most.load(Ordering::Relaxed)
}

/// Each model session used to start ONNX Runtime threads of its own (one per physical core but
/// one) when the element started and join them when it stopped, so every start of a pipeline
/// started and ended that many threads per model, and glibc handed the new threads memory arenas
/// whose freed memory it keeps. The sessions now run on the environment's shared pools: four
/// detectors in a row run on exactly as many threads as one. (On a machine with one physical
/// core a session starts no thread of its own either way.)
#[test]
fn model_sessions_start_no_threads_of_their_own() {
    if !common::have_ort() {
        return common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
    }
    let Some(scrfd) = common::fixture("scrfd.onnx") else {
        return common::skip("fixture scrfd.onnx missing (run `make fixtures`)");
    };
    let detector = format!("dlcdetect model-file={}", scrfd.display());
    let one = threads_while_playing(&detector);
    let four = threads_while_playing(&[detector.as_str(); 4].join(" ! "));
    assert_eq!(four, one, "threads while four detectors run ({four}) and while one runs ({one})");

    // `threads` still gives a session a pool of its own, of that size.
    let own = threads_while_playing(&format!("{detector} threads=3"));
    assert_eq!(own, one + 2, "a session with threads=3 runs on its two threads and the caller's");
}
