// SPDX-License-Identifier: MPL-2.0
//! live: a webcam with the face swapped, in a window and optionally as a virtual camera for
//! OBS, video calls and browsers; commands on standard input change it while it runs.
//! `live --help` documents every option and command.

#[path = "support/mod.rs"]
mod support;

use std::collections::VecDeque;
use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstdlc::{FaceFlags, FaceMeta};
use support::{Args, Input, Models, QUALITY_OPTIONS, QUALITY_USAGE, SWAP_MODELS};

const USAGE: &str = "\
usage: live --source FACE [OPTIONS]

Shows the camera with its faces replaced by the face in FACE:
camera ! dlcdetect ! dlcswap [! dlcenhance] ! window [and virtual camera].
Once a second a line on standard output gives the frame rate, the processing latency (from the
detector's input to the window's, mean over that second), the faces replaced and the frames
dropped: when the face chain is slower than the camera (or --input), only the newest frame waits
for it and older ones are dropped, so that the picture does not lag. A last line gives the
figures of the whole run.
'quit' ends with exit status 0; Ctrl-C ends the same way (the sinks finish what they write) with
exit status 130, as transcode does.

Options:
  --source FACE            picture (PNG or JPEG) of the face to put in (required)
  --device /dev/videoN     the camera (default /dev/video0)
  --size WxH               ask the camera for this frame size (default: the camera's choice)
  --input FILE|URI         a video file or URI instead of the camera (for trying and testing)
  --enhance                restore the swapped faces with dlcenhance; 'enhance off' pauses it
  --many-faces             replace every face, not only the largest
  --sink DESCRIPTION       where the picture goes instead of the window (autovideosink): an
                           element or a gst-launch description, e.g. fakesink or
                           'videoconvert ! x264enc ! mp4mux ! filesink location=out.mp4'
  --virtual-camera DEV     also write to a v4l2loopback device (e.g. /dev/video10, made by
                           `sudo modprobe v4l2loopback video_nr=10 exclusive_caps=1`) as YUY2
                           at a fixed frame rate, which OBS, Zoom and browsers accept
  --fps N                  the virtual camera's frame rate (default 30)
  -h, --help               this text

Commands (type them and press Enter while it runs):
  source PATH              use the face in PATH from now on (the old face stays until the new
                           one is ready, or if PATH has no face)
  enhance on|off           switch the restoration on or off (needs --enhance at start)
  help                     list the commands
  quit                     stop (Ctrl-C too, with exit status 130)
";

/// `println!` without its panic when standard output is closed (`live … | head`): the picture
/// matters more than the messages.
macro_rules! say {
    ($($arg:tt)*) => {{
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, $($arg)*);
        let _ = out.flush();
    }};
}

const COMMANDS: &str = "commands: source PATH | enhance on|off | help | quit";

/// How a run ended.
enum Outcome {
    /// 'quit', or the end of the input.
    Finished,
    /// Ctrl-C.
    Interrupted,
}

fn main() {
    let code = match run() {
        Ok(Outcome::Finished) => 0,
        Ok(Outcome::Interrupted) => support::INTERRUPTED,
        Err(message) => {
            eprintln!("live: error: {message}");
            1
        }
    };
    std::process::exit(code);
}

struct Options {
    source: std::path::PathBuf,
    camera: Camera,
    enhance: bool,
    many_faces: bool,
    sink: String,
    virtual_camera: Option<String>,
    fps: u32,
    models: Models,
}

enum Camera {
    Device { device: String, size: Option<(i32, i32)> },
    Input { uri: String, name: String },
}

impl Options {
    fn parse() -> Result<Option<Options>, String> {
        let mut valued = vec!["source", "device", "size", "input", "sink", "virtual-camera", "fps"];
        valued.extend(support::model_options(&SWAP_MODELS));
        valued.extend(QUALITY_OPTIONS.map(|(option, _)| option));
        let Some(args) = Args::parse("live", &valued, &["enhance", "many-faces"])? else { return Ok(None) };
        if let Some(extra) = args.positional.first() {
            return Err(format!("unexpected argument '{extra}' (live --help lists the options)"));
        }
        let source =
            args.existing_file("source")?.ok_or("--source FACE is missing: the picture of the face to put in")?;
        let camera = match args.value("input") {
            Some(input) => {
                if args.value("device").is_some() || args.value("size").is_some() {
                    return Err("--input replaces the camera: --device and --size do not go with it".into());
                }
                Camera::Input { uri: support::input_uri(input)?, name: input.to_string() }
            }
            None => {
                let device = args.value("device").unwrap_or("/dev/video0").to_string();
                if !Path::new(&device).exists() {
                    return Err(format!("no camera at '{device}': give --device /dev/videoN, or --input FILE"));
                }
                let size = args.value("size").map(parse_size).transpose()?;
                Camera::Device { device, size }
            }
        };
        let virtual_camera = args.value("virtual-camera").map(str::to_string);
        if let Some(device) = &virtual_camera
            && !Path::new(device).exists()
        {
            return Err(format!(
                "--virtual-camera '{device}' does not exist: create it with `sudo modprobe v4l2loopback video_nr=N exclusive_caps=1`"
            ));
        }
        let fps: u32 = args.number("fps", 30)?;
        if !(1..=240).contains(&fps) {
            return Err(format!("--fps must be within 1..240, got {fps}"));
        }
        let enhance = args.flag("enhance");
        let used = support::swap_models_used(&args, enhance);
        let models = Models::from_args(&args, &used)?;
        Ok(Some(Options {
            source,
            camera,
            enhance,
            many_faces: args.flag("many-faces"),
            sink: args.value("sink").unwrap_or("autovideosink").to_string(),
            virtual_camera,
            fps,
            models,
        }))
    }
}

fn parse_size(text: &str) -> Result<(i32, i32), String> {
    let parsed = text.split_once('x').and_then(|(w, h)| Some((w.parse::<i32>().ok()?, h.parse::<i32>().ok()?)));
    match parsed {
        Some((w, h)) if w > 0 && h > 0 => Ok((w, h)),
        _ => Err(format!("--size expects WxH, e.g. 1280x720, got '{text}'")),
    }
}

/// What the probes measure, read and reset once a second.
#[derive(Default)]
struct Stats {
    /// Frames that entered the queue in front of the detector, and left it: the difference,
    /// less the one waiting there, are the frames it dropped.
    queued: AtomicU64,
    dequeued: AtomicU64,
    /// Frames dropped up to the last report.
    dropped_reported: AtomicU64,
    /// Frames out of the face chain since the start, and those with a face replaced.
    frames_total: AtomicU64,
    swapped_total: AtomicU64,
    frames: AtomicU64,
    swapped: AtomicU64,
    /// Sum of the processing latencies of `frames`, in µs.
    latency_us: AtomicU64,
    /// When each frame entered the detector, by timestamp.
    entered: Mutex<VecDeque<(Option<gst::ClockTime>, Instant)>>,
}

struct Live {
    pipeline: gst::Pipeline,
    /// Where the frames enter the face chain: EOS sent here finishes what the sinks write.
    entry: gst::Pad,
    swap: gst::Element,
    enhance: Option<gst::Element>,
    /// dlcenhance's blend for 'enhance on'.
    enhance_blend: f64,
    /// The queue that keeps only the newest frame for the detector.
    fresh: gst::Element,
    /// The decoded file or URI of --input.
    input: Option<Input>,
    stats: Arc<Stats>,
}

fn run() -> Result<Outcome, String> {
    let Some(options) = Options::parse()? else {
        print!("{USAGE}\n{QUALITY_USAGE}\n{}", support::model_usage(&SWAP_MODELS));
        return Ok(Outcome::Finished);
    };
    support::init()?;
    let live = Live::build(&options)?;
    support::catch_interrupts();
    let commands = read_commands();
    let result = live.run(&commands);
    if result.is_ok() {
        live.report_totals();
    }
    let _ = live.pipeline.set_state(gst::State::Null);
    result
}

/// Standard input, line by line, on a thread of its own; its end (e.g. no terminal) is no quit.
fn read_commands() -> mpsc::Receiver<String> {
    let (sender, receiver) = mpsc::channel();
    std::thread::spawn(move || {
        for line in std::io::stdin().lock().lines() {
            let Ok(line) = line else { break };
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

impl Live {
    fn build(options: &Options) -> Result<Live, String> {
        let pipeline = gst::Pipeline::new();
        let convert = support::make("videoconvert")?;
        let mut input = None;
        match &options.camera {
            Camera::Device { device, size } => {
                let camera = support::make("v4l2src")?;
                camera.set_property("device", device.as_str());
                let filter = support::make("capsfilter")?;
                if let Some((width, height)) = size {
                    filter.set_property(
                        "caps",
                        gst::Caps::builder("video/x-raw").field("width", width).field("height", height).build(),
                    );
                }
                pipeline.add_many([&camera, &filter, &convert]).map_err(|e| e.to_string())?;
                gst::Element::link_many([&camera, &filter, &convert])
                    .map_err(|e| format!("cannot link the camera: {e}"))?;
            }
            Camera::Input { uri, name } => {
                // Video is decoded; other streams (sound) are left as they are and thrown away.
                let decoded = Input::new(uri, name, &gst::Caps::builder("video/x-raw").any_features().build(), true)?;
                // A file decodes as fast as it can; a camera delivers in real time. Paced to the
                // clock, the file behaves like a camera (and frames drop the same way).
                let pace = support::make("clocksync")?;
                pipeline.add_many([&decoded.decode, &pace, &convert]).map_err(|e| e.to_string())?;
                pace.link(&convert).map_err(|e| format!("cannot link the input: {e}"))?;
                decoded.link_video(&pipeline, pace.static_pad("sink").ok_or("clocksync has no sink pad")?);
                input = Some(decoded);
            }
        }

        // Only the newest frame waits for the detector: a slow frame drops older ones instead
        // of building up delay.
        let fresh = support::make("queue")?;
        fresh.set_property("max-size-buffers", 1u32);
        fresh.set_property("max-size-bytes", 0u32);
        fresh.set_property("max-size-time", 0u64);
        support::set_from_str(&fresh, "leaky", "downstream")?;
        let models = &options.models;
        let detect = models.detect()?;
        let swap = models.swap()?;
        swap.set_property("source", options.source.display().to_string());
        swap.set_property("many-faces", options.many_faces);
        let entry = convert.static_pad("sink").ok_or("videoconvert has no sink pad")?;
        let mut chain = vec![convert, fresh.clone(), detect.clone(), swap.clone()];
        let enhance = if options.enhance { Some(models.enhance()?) } else { None };
        chain.extend(enhance.clone());
        let tee = support::make("tee")?;
        chain.push(tee.clone());
        pipeline.add_many(&chain[1..]).map_err(|e| e.to_string())?;
        gst::Element::link_many(&chain).map_err(|e| format!("cannot link the face chain: {e}"))?;

        let window = gst::parse::bin_from_description(&options.sink, true)
            .map_err(|e| format!("--sink '{}': {e}", options.sink))?;
        let branch = [support::make("queue")?, support::make("videoconvert")?, window.upcast()];
        pipeline.add_many(&branch).map_err(|e| e.to_string())?;
        gst::Element::link_many([&tee, &branch[0], &branch[1], &branch[2]])
            .map_err(|e| format!("--sink '{}' does not take video: {e}", options.sink))?;

        if let Some(device) = &options.virtual_camera {
            let sink = support::make("v4l2sink")?;
            sink.set_property("device", device.as_str());
            sink.set_property("sync", false);
            let caps = support::make("capsfilter")?;
            caps.set_property(
                "caps",
                gst::Caps::builder("video/x-raw")
                    .field("format", "YUY2")
                    .field("framerate", gst::Fraction::new(options.fps as i32, 1))
                    .build(),
            );
            let branch =
                [support::make("queue")?, support::make("videorate")?, support::make("videoconvert")?, caps, sink];
            pipeline.add_many(&branch).map_err(|e| e.to_string())?;
            gst::Element::link_many(std::iter::once(&tee).chain(branch.iter()))
                .map_err(|e| format!("cannot link the virtual camera: {e}"))?;
        }

        let stats = Arc::new(Stats::default());
        Self::count_drops(&fresh, &stats)?;
        Self::measure(&detect, &tee, &stats)?;
        let enhance_blend = enhance.as_ref().map_or(1.0, |e| e.property::<f64>("blend"));
        Ok(Live { pipeline, entry, swap, enhance, enhance_blend, fresh, input, stats })
    }

    /// Counts the frames into and out of the queue that drops all but the newest frame.
    fn count_drops(fresh: &gst::Element, stats: &Arc<Stats>) -> Result<(), String> {
        for (pad, into) in [("sink", true), ("src", false)] {
            let stats = stats.clone();
            fresh.static_pad(pad).ok_or("queue has no pad")?.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
                let counter = if into { &stats.queued } else { &stats.dequeued };
                counter.fetch_add(1, Ordering::Relaxed);
                gst::PadProbeReturn::Ok
            });
        }
        Ok(())
    }

    /// Notes when each frame enters the detector and, when it leaves the face chain, counts it
    /// with its latency and whether a face was replaced.
    fn measure(detect: &gst::Element, tee: &gst::Element, stats: &Arc<Stats>) -> Result<(), String> {
        let entering = stats.clone();
        detect.static_pad("sink").ok_or("dlcdetect has no sink pad")?.add_probe(
            gst::PadProbeType::BUFFER,
            move |_, info| {
                if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data {
                    let mut entered = entering.entered.lock().unwrap_or_else(|e| e.into_inner());
                    entered.push_back((buffer.pts(), Instant::now()));
                    // Bounded: frames that never come out (an error) do not pile up.
                    if entered.len() > 64 {
                        entered.pop_front();
                    }
                }
                gst::PadProbeReturn::Ok
            },
        );
        let leaving = stats.clone();
        tee.static_pad("sink").ok_or("tee has no sink pad")?.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data {
                let mut entered = leaving.entered.lock().unwrap_or_else(|e| e.into_inner());
                while let Some((pts, when)) = entered.pop_front() {
                    if pts == buffer.pts() {
                        leaving.latency_us.fetch_add(when.elapsed().as_micros() as u64, Ordering::Relaxed);
                        break;
                    }
                }
                leaving.frames.fetch_add(1, Ordering::Relaxed);
                leaving.frames_total.fetch_add(1, Ordering::Relaxed);
                if buffer
                    .meta::<FaceMeta>()
                    .is_some_and(|m| m.faces().iter().any(|f| f.flags.contains(FaceFlags::SWAPPED)))
                {
                    leaving.swapped.fetch_add(1, Ordering::Relaxed);
                    leaving.swapped_total.fetch_add(1, Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });
        Ok(())
    }

    fn run(&self, commands: &mpsc::Receiver<String>) -> Result<Outcome, String> {
        let bus = self.pipeline.bus().ok_or("the pipeline has no bus")?;
        if self.pipeline.set_state(gst::State::Playing).is_err() {
            let reason = bus.pop_filtered(&[gst::MessageType::Error]).and_then(|m| support::describe(&m));
            return Err(reason.unwrap_or_else(|| "the pipeline does not start".into()));
        }
        say!("live: running; {COMMANDS}");
        let mut second = Instant::now();
        loop {
            if support::interrupts() > 0 {
                say!("live: stopped by Ctrl-C");
                return self.finish(&bus).map(|()| Outcome::Interrupted);
            }
            while let Ok(line) = commands.try_recv() {
                if !self.command(line.trim()) {
                    say!("live: quit");
                    return self.finish(&bus).map(|()| Outcome::Finished);
                }
            }
            if let Some(input) = &self.input {
                input.check_started(&self.pipeline)?;
            }
            if let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
                match message.view() {
                    gst::MessageView::Eos(_) => {
                        say!("live: the input ended");
                        return Ok(Outcome::Finished);
                    }
                    gst::MessageView::Error(_) => {
                        return Err(match &self.input {
                            Some(input) => input.explain(&message),
                            None => support::describe(&message).unwrap_or_default(),
                        });
                    }
                    gst::MessageView::Warning(_) => {
                        eprintln!("live: warning: {}", support::describe(&message).unwrap_or_default())
                    }
                    _ => {}
                }
            }
            if second.elapsed() >= Duration::from_secs(1) {
                self.report(second.elapsed());
                second = Instant::now();
            }
        }
    }

    /// Ends the stream so that sinks writing files (`--sink '… ! mp4mux ! filesink …'`) close
    /// them properly, waiting a few seconds at most.
    fn finish(&self, bus: &gst::Bus) -> Result<(), String> {
        self.entry.send_event(gst::event::Eos::new());
        let ended =
            bus.timed_pop_filtered(gst::ClockTime::from_seconds(5), &[gst::MessageType::Eos, gst::MessageType::Error]);
        match ended {
            Some(message) if message.type_() == gst::MessageType::Error => {
                Err(support::describe(&message).unwrap_or_default())
            }
            Some(_) => Ok(()),
            None => Err("the sinks did not finish within 5 s".into()),
        }
    }

    /// The frames the queue before the detector dropped since the start.
    fn dropped(&self) -> u64 {
        // Read out before in, so that a frame counted out was counted in.
        let dequeued = self.stats.dequeued.load(Ordering::Relaxed);
        let queued = self.stats.queued.load(Ordering::Relaxed);
        let waiting = u64::from(self.fresh.property::<u32>("current-level-buffers"));
        queued.saturating_sub(dequeued).saturating_sub(waiting)
    }

    /// Prints the figures of the whole run.
    fn report_totals(&self) {
        say!(
            "live: in all {} frames shown, {} with a face replaced, {} dropped",
            self.stats.frames_total.load(Ordering::Relaxed),
            self.stats.swapped_total.load(Ordering::Relaxed),
            self.dropped()
        );
        let _ = std::io::stdout().flush();
    }

    /// Prints and resets the last second's figures.
    fn report(&self, elapsed: Duration) {
        let dropped_total = self.dropped();
        let dropped_before = self.stats.dropped_reported.fetch_max(dropped_total, Ordering::Relaxed);
        let dropped = dropped_total.saturating_sub(dropped_before);
        let frames = self.stats.frames.swap(0, Ordering::Relaxed);
        let swapped = self.stats.swapped.swap(0, Ordering::Relaxed);
        let latency_us = self.stats.latency_us.swap(0, Ordering::Relaxed);
        let latency =
            if frames > 0 { format!("{:.1} ms", latency_us as f64 / frames as f64 / 1000.0) } else { "-".into() };
        say!(
            "live: {:.1} fps, latency {latency}, {swapped} of {frames} frames with a face replaced, {dropped} dropped",
            frames as f64 / elapsed.as_secs_f64()
        );
        let _ = std::io::stdout().flush();
    }

    /// Carries out one command line; false for quit.
    fn command(&self, line: &str) -> bool {
        let (verb, argument) = line.split_once(char::is_whitespace).map_or((line, ""), |(v, a)| (v, a.trim()));
        match (verb, argument) {
            ("", _) => {}
            ("quit" | "exit", _) => return false,
            ("help", _) => say!("live: {COMMANDS}"),
            ("source", "") => say!("live: source needs a picture: source PATH"),
            ("source", path) => {
                if Path::new(path).is_file() {
                    // dlcswap computes the new face on a worker and swaps it in when ready; a
                    // picture without a face gives a warning and the old face stays.
                    self.swap.set_property("source", path);
                    say!("live: source: switching to '{path}'");
                } else {
                    say!("live: source: '{path}' is not a file; keeping the current face");
                }
            }
            ("enhance", "on" | "off") => match &self.enhance {
                // blend 0 makes dlcenhance pass frames through without running its model.
                Some(enhance) => {
                    enhance.set_property("blend", if argument == "on" { self.enhance_blend } else { 0.0 });
                    say!("live: enhance {argument}");
                }
                None => say!("live: enhance: start with --enhance to have the restorer in the pipeline"),
            },
            ("enhance", _) => say!("live: enhance on or enhance off"),
            (other, _) => say!("live: unknown command '{other}'; {COMMANDS}"),
        }
        let _ = std::io::stdout().flush();
        true
    }
}
