// SPDX-License-Identifier: MPL-2.0
//! What each added pipeline costs in one process: starts N pipelines `videotestsrc ! dlcdetect !
//! queue ! dlcswap ! fakesink` one after the other (each once the one before has passed its
//! first frame), times each from PLAYING to its first frame at the sink, lets them all run to
//! EOS, and prints the process's peak resident size (VmHWM) and the model sessions it loaded.
//!
//!   shared_sessions --pipelines N --swapper FILE [--detector FILE] [--recognizer FILE]
//!                   [--source PICTURE] [--provider NICK] [--frames N]
//!
//! With `tests/fixtures/make_standins.py`'s real-size inswapper stand-in (0.6 GB) the swapper's
//! weights dominate, as the real file's do. The frames hold no face, so the swapper loads but does
//! not run: the figures are what the models cost to hold. Needs ORT_DYLIB_PATH; the detector
//! defaults to ../shared/testdata/models/det_2.5g.onnx (the source picture's face must be found),
//! the recogniser to DLC_FIXTURES_DIR's arcface.onnx, the source picture to
//! ../shared/testdata/media/newton.png.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use gst::prelude::*;

const USAGE: &str = "usage: shared_sessions --pipelines N --swapper FILE [--detector FILE] \
                     [--recognizer FILE] [--source PICTURE] [--provider NICK] [--frames N]";

struct Options {
    pipelines: usize,
    swapper: PathBuf,
    detector: PathBuf,
    recognizer: PathBuf,
    source: PathBuf,
    provider: String,
    frames: u32,
}

fn fixture(name: &str) -> Option<PathBuf> {
    std::env::var_os("DLC_FIXTURES_DIR").map(|dir| PathBuf::from(dir).join(name))
}

fn parse_options() -> Result<Options, String> {
    let (mut pipelines, mut swapper) = (None, None);
    let testdata = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata");
    let (mut detector, mut recognizer) = (Some(testdata.join("models/det_2.5g.onnx")), fixture("arcface.onnx"));
    let mut source = testdata.join("media/newton.png");
    let (mut provider, mut frames) = ("cpu".to_string(), 3);
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |what: &str| format!("{flag}: expected {what}, found '{value}'");
        match flag.as_str() {
            "--pipelines" => pipelines = Some(value.parse().map_err(|_| bad("a pipeline count"))?),
            "--swapper" => swapper = Some(PathBuf::from(&value)),
            "--detector" => detector = Some(PathBuf::from(&value)),
            "--recognizer" => recognizer = Some(PathBuf::from(&value)),
            "--source" => source = PathBuf::from(&value),
            "--provider" => provider = value,
            "--frames" => frames = value.parse().map_err(|_| bad("a frame count"))?,
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    let missing = |what: &str| format!("{what} is not given (and DLC_FIXTURES_DIR is not set)\n{USAGE}");
    Ok(Options {
        pipelines: pipelines.filter(|&n| n > 0).ok_or_else(|| format!("--pipelines N (N > 0) is needed\n{USAGE}"))?,
        swapper: swapper.ok_or_else(|| format!("--swapper FILE is needed\n{USAGE}"))?,
        detector: detector.ok_or_else(|| missing("--detector"))?,
        recognizer: recognizer.ok_or_else(|| missing("--recognizer"))?,
        source,
        provider,
        frames,
    })
}

/// A line of /proc/self/status in KiB (`VmHWM`: peak resident size; `VmRSS`: now).
fn status_kib(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Plays `pipeline` and returns once its sink had a buffer, with the time that took.
fn start(pipeline: &gst::Pipeline) -> Result<Duration, String> {
    let (sender, receiver) = std::sync::mpsc::channel();
    let sink = pipeline.by_name("sink").and_then(|s| s.static_pad("sink")).ok_or("no sink pad")?;
    sink.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
        let _ = sender.send(());
        gst::PadProbeReturn::Remove
    });
    let began = Instant::now();
    pipeline.set_state(gst::State::Playing).map_err(|e| format!("cannot play: {e}"))?;
    let bus = pipeline.bus().ok_or("no bus")?;
    loop {
        if receiver.recv_timeout(Duration::from_millis(20)).is_ok() {
            return Ok(began.elapsed());
        }
        if let Some(message) = bus.pop_filtered(&[gst::MessageType::Error]) {
            return Err(format!("{message:?}"));
        }
        if began.elapsed() > Duration::from_secs(600) {
            return Err("no first frame within 10 minutes".to_string());
        }
    }
}

fn run(o: &Options) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstdlc::plugin_register_static().map_err(|e| e.to_string())?;
    let launch = format!(
        "videotestsrc num-buffers={frames} ! video/x-raw,format=RGB,width=640,height=480 \
         ! dlcdetect model-file={detector} execution-provider={provider} ! queue \
         ! dlcswap model-file={swapper} detector-model={detector} recognition-model={recognizer} \
         source={source} execution-provider={provider} ! fakesink name=sink sync=false",
        frames = o.frames,
        detector = o.detector.display(),
        recognizer = o.recognizer.display(),
        source = o.source.display(),
        swapper = o.swapper.display(),
        provider = o.provider,
    );
    let before = status_kib("VmRSS");
    let mut pipelines = Vec::with_capacity(o.pipelines);
    let mut first_frames = Vec::with_capacity(o.pipelines);
    for _ in 0..o.pipelines {
        let pipeline = gst::parse::launch(&launch)
            .map_err(|e| e.to_string())?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "not a pipeline")?;
        first_frames.push(start(&pipeline)?);
        pipelines.push(pipeline);
    }
    for pipeline in &pipelines {
        let bus = pipeline.bus().ok_or("no bus")?;
        let types = [gst::MessageType::Eos, gst::MessageType::Error];
        match bus.timed_pop_filtered(gst::ClockTime::from_seconds(600), &types).map(|m| m.type_()) {
            Some(gst::MessageType::Eos) => {}
            other => return Err(format!("a pipeline ended with {other:?} instead of EOS")),
        }
    }
    let peak = status_kib("VmHWM");
    let ms: Vec<String> = first_frames.iter().map(|d| format!("{:.0}", d.as_secs_f64() * 1e3)).collect();
    println!(
        "pipelines {}: peak RSS {:.0} MB (before the first pipeline {:.0} MB); model sessions loaded {}; \
         PLAYING -> first frame, ms: {}",
        o.pipelines,
        peak as f64 / 1024.0,
        before as f64 / 1024.0,
        gstdlc::runtime::model_sessions_loaded(),
        ms.join(" ")
    );
    for pipeline in &pipelines {
        pipeline.set_state(gst::State::Null).map_err(|e| e.to_string())?;
    }
    Ok(())
}

fn main() -> ExitCode {
    match parse_options().and_then(|o| run(&o)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shared_sessions: {e}");
            ExitCode::FAILURE
        }
    }
}
