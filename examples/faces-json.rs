// SPDX-License-Identifier: MPL-2.0
//! faces-json: the faces dlcdetect finds in any video GStreamer decodes, one JSON object per
//! frame (JSON Lines), read from the FaceMeta the way an application linking the gstdlc rlib
//! reads it. `faces-json --help` documents every option.

#[path = "support/mod.rs"]
mod support;

use std::fs::File;
use std::io::{BufWriter, ErrorKind, Write};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use gst::prelude::*;
use gstdlc::{Face, FaceFlags, FaceMeta};
use serde::Serialize;
use support::{Args, Input, Model, Models};

const USAGE: &str = "\
usage: faces-json INPUT [OPTIONS]

Runs INPUT (a file path or a URI such as file:///…, rtsp://…) through
uridecodebin ! videoconvert ! dlcdetect and writes one JSON object per video frame:
  {\"frame\": 0, \"pts_ns\": 0, \"width\": 176, \"height\": 144, \"faces\": [
     {\"box\": [x1, y1, x2, y2], \"score\": 0.87,
      \"landmarks\": [[x, y] × 5: left eye, right eye, nose, left and right mouth corner],
      \"track_id\": 1, \"flags\": [\"inferred\"],
      \"embedding\": [512 numbers, with --recognition-model],
      \"landmarks_106\": [[x, y] × 106, with --landmark-model]}]}
Coordinates are in pixels of the decoded frame; pts_ns is null for a frame without timestamp.
flags: inferred (the detector found the face on this frame), tracked (carried from earlier
detections), swapped, enhanced.
Each line is written as soon as its frame is done (a reader sees it at once). When the reader
goes away (`faces-json in.mp4 | head -1`), it stops quietly with exit status 0.

Options:
  --output FILE              write to FILE instead of standard output
  --recognition-model PATH   ArcFace model: each face also carries its identity embedding
  --landmark-model PATH      2d106det model: each face also carries 106 landmarks
  --threshold X              minimum detection score, 0..1 (default 0.5)
  --inference-interval N     run the detector on every Nth frame, tracking in between (default 1)
  -h, --help                 this text
";

#[derive(Serialize)]
struct FrameRecord {
    frame: u64,
    pts_ns: Option<u64>,
    width: i32,
    height: i32,
    faces: Vec<FaceRecord>,
}

#[derive(Serialize)]
struct FaceRecord {
    #[serde(rename = "box")]
    bbox: [f32; 4],
    score: f32,
    landmarks: [[f32; 2]; 5],
    track_id: u64,
    flags: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    embedding: Option<Vec<f32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    landmarks_106: Option<Vec<[f32; 2]>>,
}

impl FaceRecord {
    fn new(face: &Face) -> FaceRecord {
        let names = [
            (FaceFlags::INFERRED, "inferred"),
            (FaceFlags::TRACKED, "tracked"),
            (FaceFlags::SWAPPED, "swapped"),
            (FaceFlags::ENHANCED, "enhanced"),
        ];
        FaceRecord {
            bbox: face.bbox,
            score: face.score,
            landmarks: face.landmarks,
            track_id: face.track_id,
            flags: names.iter().filter(|(flag, _)| face.flags.contains(*flag)).map(|(_, name)| *name).collect(),
            embedding: face.embedding.as_ref().map(|e| e.to_vec()),
            landmarks_106: face.landmarks_106.as_ref().map(|p| p.to_vec()),
        }
    }
}

fn main() {
    match run() {
        Ok(()) => {}
        Err(message) => {
            eprintln!("faces-json: {message}");
            std::process::exit(1);
        }
    }
}

fn run() -> Result<(), String> {
    let mut valued = vec!["output", "recognition-model", "landmark-model", "threshold", "inference-interval"];
    valued.extend(support::model_options(&MODELS));
    let Some(args) = Args::parse("faces-json", &valued, &[])? else {
        print!("{USAGE}\n{}", support::model_usage(&MODELS));
        return Ok(());
    };
    let [input] = args.positional.as_slice() else {
        return Err(format!("give exactly one INPUT (got {})\n\n{USAGE}", args.positional.len()));
    };
    let uri = support::input_uri(input)?;
    let threshold: f64 = args.number("threshold", 0.5)?;
    if !(0.0..=1.0).contains(&threshold) {
        return Err(format!("--threshold must be within 0..1, got {threshold}"));
    }
    let interval: u32 = args.number("inference-interval", 1)?;
    if !(1..=1000).contains(&interval) {
        return Err(format!("--inference-interval must be within 1..1000, got {interval}"));
    }
    let models = Models::from_args(&args, &MODELS)?;
    let recognition = args.existing_file("recognition-model")?;
    let landmarks = args.existing_file("landmark-model")?;
    let output: Box<dyn Write + Send> = match args.value("output") {
        Some(path) => Box::new(BufWriter::new(
            File::create(path).map_err(|e| format!("--output '{path}' cannot be written: {e}"))?,
        )),
        None => Box::new(std::io::stdout()),
    };

    support::init()?;
    let pipeline = gst::Pipeline::new();
    // Video is decoded; other streams are left as they are and thrown away.
    let input = Input::new(&uri, input, &gst::Caps::builder("video/x-raw").any_features().build(), true)?;
    let convert = support::make("videoconvert")?;
    let detect = models.detect()?;
    detect.set_property("threshold", threshold);
    detect.set_property("inference-interval", interval);
    if let Some(path) = &recognition {
        detect.set_property("recognition-model", path.display().to_string());
    }
    if let Some(path) = &landmarks {
        detect.set_property("landmark-model", path.display().to_string());
    }
    let sink = support::make("fakesink")?;
    sink.set_property("sync", false);
    pipeline.add_many([&input.decode, &convert, &detect, &sink]).map_err(|e| e.to_string())?;
    gst::Element::link_many([&convert, &detect, &sink]).map_err(|e| format!("cannot link the pipeline: {e}"))?;
    // A second video stream is thrown away too: this program reads the first.
    input.link_video(&pipeline, convert.static_pad("sink").ok_or("videoconvert has no sink pad")?);

    let writer = Arc::new(Mutex::new(output));
    let reader_gone = Arc::new(AtomicBool::new(false));
    let frames = Arc::new(Mutex::new(0u64));
    let probe_writer = writer.clone();
    let probe_reader_gone = reader_gone.clone();
    let sink_pad = sink.static_pad("sink").ok_or("fakesink has no sink pad")?;
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else { return gst::PadProbeReturn::Ok };
        let (width, height) = pad
            .current_caps()
            .and_then(|caps| gst_video::VideoInfo::from_caps(&caps).ok())
            .map_or((0, 0), |info| (info.width() as i32, info.height() as i32));
        let faces = buffer.meta::<FaceMeta>().map(|m| m.faces().iter().map(FaceRecord::new).collect());
        let mut frame = frames.lock().unwrap_or_else(|e| e.into_inner());
        let record = FrameRecord {
            frame: *frame,
            pts_ns: buffer.pts().map(|t| t.nseconds()),
            width,
            height,
            faces: faces.unwrap_or_default(),
        };
        *frame += 1;
        let mut line = match serde_json::to_vec(&record) {
            Ok(line) => line,
            Err(e) => {
                if let Some(element) = pad.parent_element() {
                    gst::element_error!(element, gst::LibraryError::Failed, ("cannot write a frame as JSON: {}", e));
                }
                return gst::PadProbeReturn::Remove;
            }
        };
        line.push(b'\n');
        let mut out = probe_writer.lock().unwrap_or_else(|e| e.into_inner());
        // One whole line per frame, handed on at once: a live reader must not wait for a block.
        match out.write_all(&line).and_then(|()| out.flush()) {
            Ok(()) => gst::PadProbeReturn::Ok,
            Err(e) => {
                if let Some(element) = pad.parent_element() {
                    if e.kind() == ErrorKind::BrokenPipe {
                        // The reader has all it wanted (`| head -1`): stop, no error.
                        probe_reader_gone.store(true, Ordering::SeqCst);
                        let _ = element
                            .post_message(gst::message::Application::new(gst::Structure::new_empty(READER_GONE)));
                    } else {
                        gst::element_error!(
                            element,
                            gst::ResourceError::Write,
                            ("cannot write the JSON output: {}", e)
                        );
                    }
                }
                gst::PadProbeReturn::Remove
            }
        }
    });

    support::catch_interrupts();
    let entry = convert.static_pad("sink").ok_or("videoconvert has no sink pad")?;
    let result = run_to_end(&pipeline, &entry, &input);
    let _ = pipeline.set_state(gst::State::Null);
    let flushed = writer.lock().unwrap_or_else(|e| e.into_inner()).flush();
    result?;
    if reader_gone.load(Ordering::SeqCst) {
        return Ok(());
    }
    flushed.map_err(|e| format!("cannot write the JSON output: {e}"))
}

/// The models this program runs: the detector (the recogniser and the 106-point model are
/// options of their own, as they add to the output).
const MODELS: [Model; 1] = [Model::Detector];

/// The application message the writer posts when the reader of the output has gone.
const READER_GONE: &str = "faces-json-reader-gone";

/// Plays until EOS (Ctrl-C sends one), the reader's leaving or the first error; warnings go to
/// standard error.
fn run_to_end(pipeline: &gst::Pipeline, entry: &gst::Pad, input: &Input) -> Result<(), String> {
    pipeline.set_state(gst::State::Playing).map_err(|_| {
        pipeline
            .bus()
            .and_then(|b| b.pop_filtered(&[gst::MessageType::Error]))
            .and_then(|m| support::describe(&m))
            .unwrap_or_else(|| "the pipeline does not start".into())
    })?;
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let mut eos_sent = false;
    loop {
        if support::interrupts() > 0 && !eos_sent {
            eprintln!("faces-json: interrupted: finishing the output");
            // Into the chain rather than to the source: a demuxer reading the file itself
            // (pull mode) would not see an EOS sent to the source.
            entry.send_event(gst::event::Eos::new());
            eos_sent = true;
        }
        input.check_started(pipeline)?;
        let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) else { continue };
        match message.view() {
            gst::MessageView::Eos(_) => return Ok(()),
            gst::MessageView::Application(a) if a.structure().is_some_and(|s| s.name() == READER_GONE) => {
                return Ok(());
            }
            gst::MessageView::Error(_) => return Err(input.explain(&message)),
            gst::MessageView::Warning(_) => {
                eprintln!("faces-json: warning from {}", support::describe(&message).unwrap_or_default())
            }
            _ => {}
        }
    }
}
