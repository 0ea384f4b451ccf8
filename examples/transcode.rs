// SPDX-License-Identifier: MPL-2.0
//! transcode: a face-swapped copy of any video file GStreamer decodes, with the audio carried
//! over unchanged. `transcode --help` documents every option.

#[path = "support/mod.rs"]
mod support;

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gst::prelude::*;
use gstdlc::{FaceFlags, FaceMeta};
use support::{Args, Input, Models, QUALITY_OPTIONS, QUALITY_USAGE, SWAP_MODELS};

const USAGE: &str = "\
usage: transcode IN OUT --source FACE [OPTIONS]

Writes OUT, a copy of IN (any file or URI GStreamer decodes) whose faces are replaced by the face
in FACE: decode ! dlcdetect ! dlcswap [! dlcenhance] ! H.264/H.265 encoder ! MP4 or MKV.
Every frame is kept with its timestamp (a frame that the decoder gives without one, or with the
timestamp of the frame before, as some AVI files with B-frames do, gets the next frame's time,
and a note says how many). The audio is carried over unchanged when OUT's container
takes its format (e.g. AAC into MP4 or MKV, Opus into MKV); otherwise it is re-encoded (AAC for
MP4, Opus for MKV) and a note says so. The container follows OUT's extension: .mp4, .m4v, .mov
(MP4) or .mkv (Matroska).

While it runs, one line shows position / duration, frames per second and the time left (updated
in place on a terminal, one line every few seconds otherwise). Ctrl-C stops early and still
finishes OUT as a playable file (exit status 130); a second Ctrl-C abandons it at once.

Options:
  --source FACE        picture (PNG or JPEG) of the face to put in; required unless --face-map
  --reference PICTURE  only replace the person who looks like PICTURE (dlcswap target=reference)
  --face-map FILE      replace several people: lines 'reference.jpg = source.jpg' (dlcswap face-map)
  --many-faces         replace every face, not only the largest
  --enhance            restore the swapped faces with dlcenhance (GFPGAN)
  --lanes N            frames swapped (and restored) at once, auto (default) or 1 to 4: auto takes
                       3 on a GPU and 1 on the CPU (dlcswap/dlcenhance lanes), one model copy each
  --encoder NAME       auto (default), nvh264enc, nvh265enc, amfh264enc, mfh264enc, vtenc_h264,
                       vah264enc, vaapih264enc or x264enc. auto takes the first of nvh264enc,
                       amfh264enc, mfh264enc (Windows), vtenc_h264 (macOS), vah264enc,
                       vaapih264enc, x264enc that is installed and opens on this machine
  --bitrate KBITS      the video's bit rate in kbit/s, 50 to 200000 (default auto: 0.1 bit per
                       pixel per frame for H.264, 0.07 for H.265, at least 300; e.g. 6221 for
                       1920x1080 at 30 fps, 2765 for 1280x720, 922 for 640x480)
  --keep-chroma        encode the colours at the resolution the frames have: an RGB input then
                       becomes H.264 High 4:4:4, which most browsers and QuickTime cannot play.
                       Without it the video is encoded 4:2:0 (I420 or NV12), which all players play
  -h, --help           this text
";

/// Hardware encoders first (NVENC, AMF, Media Foundation on Windows, VideoToolbox on macOS,
/// VA-API), then the software one. Each takes `bitrate` in kbit/s.
const AUTO_ENCODERS: [&str; 7] =
    ["nvh264enc", "amfh264enc", "mfh264enc", "vtenc_h264", "vah264enc", "vaapih264enc", "x264enc"];
const ENCODERS: [&str; 8] =
    ["nvh264enc", "nvh265enc", "amfh264enc", "mfh264enc", "vtenc_h264", "vah264enc", "vaapih264enc", "x264enc"];

enum Outcome {
    Finished,
    Interrupted,
}

fn main() {
    let code = match run() {
        Ok(Outcome::Finished) => 0,
        Ok(Outcome::Interrupted) => support::INTERRUPTED,
        Err(message) => {
            eprintln!("transcode: error: {message}");
            1
        }
    };
    std::process::exit(code);
}

#[derive(Clone, Copy, PartialEq)]
enum Container {
    Mp4,
    Matroska,
}

impl Container {
    fn of(path: &Path) -> Result<Container, String> {
        let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("mp4" | "m4v" | "mov") => Ok(Container::Mp4),
            Some("mkv") => Ok(Container::Matroska),
            _ => Err(format!(
                "OUT '{}': the extension must be .mp4, .m4v, .mov or .mkv (it chooses the container)",
                path.display()
            )),
        }
    }

    fn muxer(self) -> &'static str {
        match self {
            Container::Mp4 => "mp4mux",
            Container::Matroska => "matroskamux",
        }
    }

    fn name(self) -> &'static str {
        match self {
            Container::Mp4 => "MP4",
            Container::Matroska => "Matroska",
        }
    }

    /// Audio encoders for audio the container cannot take as it is, best first.
    fn audio_encoders(self) -> &'static [&'static str] {
        match self {
            Container::Mp4 => &["avenc_aac", "fdkaacenc", "voaacenc"],
            Container::Matroska => &["opusenc", "vorbisenc"],
        }
    }
}

struct Options {
    /// IN as given, for messages.
    input: String,
    uri: String,
    output: PathBuf,
    container: Container,
    source: Option<PathBuf>,
    reference: Option<PathBuf>,
    face_map: Option<PathBuf>,
    many_faces: bool,
    enhance: bool,
    /// `auto` or 1 to 4, as the elements' `lanes` reads it.
    lanes: String,
    encoder: String,
    /// kbit/s; `None`: from the frame size and rate.
    bitrate: Option<u32>,
    keep_chroma: bool,
    models: Models,
}

impl Options {
    fn parse() -> Result<Option<Options>, String> {
        let mut valued = vec!["source", "reference", "face-map", "encoder", "lanes", "bitrate"];
        valued.extend(support::model_options(&SWAP_MODELS));
        valued.extend(QUALITY_OPTIONS.map(|(option, _)| option));
        let Some(args) = Args::parse("transcode", &valued, &["enhance", "many-faces", "keep-chroma"])? else {
            return Ok(None);
        };
        let [input, output] = args.positional.as_slice() else {
            return Err(format!(
                "give IN and OUT (got {} arguments); transcode --help explains",
                args.positional.len()
            ));
        };
        let uri = support::input_uri(input)?;
        let output = PathBuf::from(output);
        let container = Container::of(&output)?;
        if let Some(dir) = output.parent().filter(|d| !d.as_os_str().is_empty())
            && !dir.is_dir()
        {
            return Err(format!("OUT '{}': the folder '{}' does not exist", output.display(), dir.display()));
        }
        if Path::new(input).canonicalize().ok().is_some_and(|i| output.canonicalize().ok() == Some(i)) {
            return Err("OUT must not be IN".into());
        }
        let source = args.existing_file("source")?;
        let face_map = args.existing_file("face-map")?;
        if source.is_none() && face_map.is_none() {
            return Err("--source FACE is missing: the picture of the face to put in (or --face-map)".into());
        }
        let lanes = args.value("lanes").unwrap_or("auto").to_string();
        if !["auto", "1", "2", "3", "4"].contains(&lanes.as_str()) {
            return Err(format!("--lanes {lanes}: give auto or 1 to 4"));
        }
        let encoder = args.value("encoder").unwrap_or("auto").to_string();
        if encoder != "auto" && !ENCODERS.contains(&encoder.as_str()) {
            return Err(format!("--encoder '{encoder}' is not one of auto, {}", ENCODERS.join(", ")));
        }
        let bitrate = match args.value("bitrate") {
            None | Some("auto") => None,
            Some(_) => Some(args.number("bitrate", 0u32)?),
        };
        if let Some(kbits) = bitrate
            && !(50..=200_000).contains(&kbits)
        {
            return Err(format!("--bitrate {kbits}: give 50 to 200000 kbit/s, or auto"));
        }
        let enhance = args.flag("enhance");
        let used = support::swap_models_used(&args, enhance);
        let models = Models::from_args(&args, &used)?;
        Ok(Some(Options {
            input: input.clone(),
            uri,
            output,
            container,
            source,
            reference: args.existing_file("reference")?,
            face_map,
            many_faces: args.flag("many-faces"),
            enhance,
            lanes,
            encoder,
            bitrate,
            keep_chroma: args.flag("keep-chroma"),
            models,
        }))
    }
}

fn run() -> Result<Outcome, String> {
    let Some(options) = Options::parse()? else {
        print!("{USAGE}\n{QUALITY_USAGE}\n{}", support::model_usage(&SWAP_MODELS));
        return Ok(Outcome::Finished);
    };
    support::init()?;
    let encoder = choose_encoder(&options.encoder)?;
    eprintln!("transcode: encoding with {encoder}");
    let job = Transcode::build(&options, &encoder)?;
    support::catch_interrupts();
    let outcome = job.run();
    let _ = job.pipeline.set_state(gst::State::Null);
    let outcome = outcome.map_err(|reason| {
        // What was written is no playable file.
        match std::fs::remove_file(&options.output) {
            Ok(()) => format!("{reason}\n(the unfinished '{}' was removed)", options.output.display()),
            Err(_) => reason,
        }
    })?;
    let frames = job.counters.written.load(Ordering::Relaxed);
    let swapped = job.counters.swapped.load(Ordering::Relaxed);
    let restamped = job.counters.restamped.load(Ordering::Relaxed);
    if restamped > 0 {
        eprintln!(
            "transcode: note: {restamped} frame{} from the decoder without a timestamp or with one not after the \
             frame before's (an AVI with B-frames?): each was given the next frame's time, and the frames after it \
             moved on with it",
            if restamped == 1 { " came" } else { "s came" }
        );
    }
    let early = if matches!(outcome, Outcome::Interrupted) { " (stopped early by Ctrl-C)" } else { "" };
    eprintln!(
        "transcode: wrote '{}'{early}: {frames} frames, {swapped} with a face replaced",
        options.output.display()
    );
    if frames > 0 && swapped == 0 {
        eprintln!("transcode: note: no face in the video was replaced (none found, or none like --reference)");
    }
    Ok(outcome)
}

/// The encoder to use: the one asked for, if it opens, or with `auto` the first that does.
fn choose_encoder(asked: &str) -> Result<String, String> {
    if asked != "auto" {
        return match encoder_opens(asked) {
            Ok(()) => Ok(asked.to_string()),
            Err(reason) => Err(format!("--encoder {asked}: {reason}")),
        };
    }
    let mut reasons = Vec::new();
    for name in AUTO_ENCODERS {
        match encoder_opens(name) {
            Ok(()) => return Ok(name.to_string()),
            Err(reason) => reasons.push(format!("{name}: {reason}")),
        }
    }
    Err(format!("no H.264 encoder works here ({}); install gstreamer1.0-plugins-ugly for x264enc", reasons.join("; ")))
}

/// Whether `name` is installed and encodes two small frames: a hardware encoder can be installed
/// on a machine without the device or driver it needs, and only fails once it opens.
fn encoder_opens(name: &str) -> Result<(), String> {
    if gst::ElementFactory::find(name).is_none() {
        return Err("not installed".into());
    }
    let description = format!(
        "videotestsrc num-buffers=2 ! video/x-raw,width=320,height=240,framerate=30/1 ! videoconvert ! {name} ! fakesink"
    );
    let pipeline = gst::parse::launch(&description).map_err(|e| e.to_string())?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let started = pipeline.set_state(gst::State::Playing);
    let result = match started {
        Err(_) => Err("does not start".to_string()),
        Ok(_) => match bus
            .timed_pop_filtered(gst::ClockTime::from_seconds(20), &[gst::MessageType::Eos, gst::MessageType::Error])
        {
            Some(message) if message.type_() == gst::MessageType::Eos => Ok(()),
            Some(message) => Err(support::describe(&message).unwrap_or_default()),
            None => Err("no output within 20 s".into()),
        },
    };
    let _ = pipeline.set_state(gst::State::Null);
    result
}

#[derive(Default)]
struct Counters {
    /// Frames into the encoder, for the progress line.
    frames: AtomicU64,
    /// Frames into the muxer: those in the file.
    written: AtomicU64,
    swapped: AtomicU64,
    /// Frames that came without a timestamp or with one not after the frame before's.
    restamped: AtomicU64,
    /// Stream time of the latest frame at the encoder, in ns (u64::MAX: none yet).
    position: AtomicU64,
}

struct Transcode {
    pipeline: gst::Pipeline,
    input: Input,
    /// Where the video and audio chains begin: EOS sent here ends the file early.
    entries: Arc<Mutex<Vec<gst::Pad>>>,
    video_entry: gst::Pad,
    counters: Arc<Counters>,
}

impl Transcode {
    fn build(options: &Options, encoder_name: &str) -> Result<Transcode, String> {
        let pipeline = gst::Pipeline::new();
        let mux = support::make(options.container.muxer())?;
        // Decoding stops at raw video, and at audio that the muxer takes as it is; other audio is
        // decoded to be re-encoded, other streams (subtitles, data) are left out.
        let mut caps = gst::Caps::builder("video/x-raw").any_features().build();
        caps.merge(gst::Caps::new_empty_simple("audio/x-raw"));
        if let Some(template) = mux.pad_template("audio_%u") {
            caps.merge(template.caps().clone());
        }
        let input = Input::new(&options.uri, &options.input, &caps, false)?;

        let models = &options.models;
        let detect = models.detect()?;
        let swap = models.swap()?;
        if let Some(face_map) = &options.face_map {
            swap.set_property("face-map", face_map.display().to_string());
        }
        if let Some(source) = &options.source {
            swap.set_property("source", source.display().to_string());
        }
        if let Some(reference) = &options.reference {
            swap.set_property("reference", reference.display().to_string());
            support::set_from_str(&swap, "target", "reference")?;
        }
        swap.set_property("many-faces", options.many_faces);
        support::set_from_str(&swap, "lanes", &options.lanes)?;

        let mut video =
            vec![support::make("queue")?, support::make("videoconvert")?, detect, support::make("queue")?, swap];
        if options.enhance {
            video.push(support::make("queue")?);
            let enhance = models.enhance()?;
            support::set_from_str(&enhance, "lanes", &options.lanes)?;
            video.push(enhance);
        }
        let encoder = support::make(encoder_name)?;
        let parser = support::make(if encoder_name.contains("265") { "h265parse" } else { "h264parse" })?;
        video.extend([support::make("queue")?, support::make("videoconvert")?]);
        if !options.keep_chroma {
            // 4:2:0, which every player decodes; an encoder given RGB would pick 4:4:4.
            let chroma = support::make("capsfilter")?;
            chroma.set_property(
                "caps",
                gst::Caps::builder("video/x-raw").field("format", gst::List::new(["NV12", "I420"])).build(),
            );
            video.push(chroma);
        }
        video.extend([encoder.clone(), parser, support::make("queue")?]);
        let sink = support::make("filesink")?;
        sink.set_property("location", options.output.display().to_string());

        pipeline.add(&input.decode).map_err(|e| e.to_string())?;
        pipeline.add_many(&video).map_err(|e| e.to_string())?;
        pipeline.add_many([&mux, &sink]).map_err(|e| e.to_string())?;
        gst::Element::link_many(&video).map_err(|e| format!("cannot link the video chain: {e}"))?;
        let video_out = video.last().and_then(|q| q.static_pad("src")).ok_or("no video chain")?;
        let mux_video = mux.request_pad_simple("video_%u").ok_or("the muxer gives no video pad")?;
        video_out.link(&mux_video).map_err(|e| format!("cannot link the video to the muxer: {e}"))?;
        mux.link(&sink).map_err(|e| format!("cannot link the muxer to the file: {e}"))?;

        let video_entry = video[0].static_pad("sink").ok_or("no video queue pad")?;
        let counters = Arc::new(Counters { position: AtomicU64::new(u64::MAX), ..Counters::default() });
        let encoder_sink = encoder.static_pad("sink").ok_or("the encoder has no sink pad")?;
        restamp(&encoder_sink, &counters);
        set_bitrate(&encoder, encoder_name, options.bitrate)?;
        Self::count_frames(&encoder, &counters)?;
        let written = counters.clone();
        mux_video.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            written.written.fetch_add(1, Ordering::Relaxed);
            gst::PadProbeReturn::Ok
        });

        let entries = Arc::new(Mutex::new(vec![video_entry.clone()]));
        input.expect_video(video_entry.clone());
        let job = Transcode { pipeline, input, entries, video_entry, counters };
        job.link_streams(&mux, options.container);
        Ok(job)
    }

    /// Counts the frames reaching the encoder, those with a replaced face, and their position.
    fn count_frames(encoder: &gst::Element, counters: &Arc<Counters>) -> Result<(), String> {
        let pad = encoder.static_pad("sink").ok_or("the encoder has no sink pad")?;
        let counters = counters.clone();
        pad.add_probe(gst::PadProbeType::BUFFER, move |pad, info| {
            if let Some(gst::PadProbeData::Buffer(buffer)) = &info.data {
                counters.frames.fetch_add(1, Ordering::Relaxed);
                let swapped = buffer
                    .meta::<FaceMeta>()
                    .is_some_and(|m| m.faces().iter().any(|f| f.flags.contains(FaceFlags::SWAPPED)));
                if swapped {
                    counters.swapped.fetch_add(1, Ordering::Relaxed);
                }
                let segment = pad.sticky_event::<gst::event::Segment>(0);
                let stream_time = segment.and_then(|s| {
                    let segment = s.segment().downcast_ref::<gst::ClockTime>()?.clone();
                    segment.to_stream_time(buffer.pts()?)
                });
                if let Some(t) = stream_time {
                    counters.position.store(t.nseconds(), Ordering::Relaxed);
                }
            }
            gst::PadProbeReturn::Ok
        });
        Ok(())
    }

    /// Links each stream decodebin exposes: the first video stream into the video chain, each
    /// audio stream into the muxer (as it is, or re-encoded).
    fn link_streams(&self, mux: &gst::Element, container: Container) {
        let pipeline = self.pipeline.downgrade();
        let video_entry = self.video_entry.clone();
        let entries = self.entries.clone();
        let mux = mux.clone();
        self.input.decode.connect_pad_added(move |decode, pad| {
            let Some(pipeline) = pipeline.upgrade() else { return };
            let Some(caps) = pad.current_caps().or_else(|| Some(pad.query_caps(None))) else { return };
            let Some(name) = caps.structure(0).map(|s| s.name().to_string()) else { return };
            let result = if name.starts_with("video/") {
                if video_entry.is_linked() {
                    eprintln!("transcode: note: the input has more than one video stream: only the first is kept");
                    Ok(())
                } else {
                    pad.link(&video_entry).map(|_| ()).map_err(|e| format!("cannot link the video stream: {e}"))
                }
            } else if name.starts_with("audio/") {
                audio_chain(&pipeline, &mux, &caps, container).and_then(|entry| {
                    pad.link(&entry).map_err(|e| format!("cannot link the audio stream: {e}"))?;
                    entries.lock().unwrap_or_else(|e| e.into_inner()).push(entry);
                    Ok(())
                })
            } else {
                Ok(())
            };
            if let Err(reason) = result {
                gst::element_error!(decode, gst::CoreError::Negotiation, ("{}", reason));
            }
        });
    }

    /// Plays to the end; Ctrl-C ends the streams early (EOS), a second one abandons the file.
    fn run(&self) -> Result<Outcome, String> {
        let bus = self.pipeline.bus().ok_or("the pipeline has no bus")?;
        if self.pipeline.set_state(gst::State::Playing).is_err() {
            let reason = bus.pop_filtered(&[gst::MessageType::Error]).and_then(|m| support::describe(&m));
            return Err(reason.unwrap_or_else(|| "the pipeline does not start".into()));
        }
        let mut progress = Progress::new();
        let mut interrupted = false;
        loop {
            match support::interrupts() {
                0 => {}
                1 if !interrupted => {
                    interrupted = true;
                    progress.finish();
                    eprintln!("transcode: Ctrl-C: finishing the file (Ctrl-C again to abandon it)");
                    for pad in self.entries.lock().unwrap_or_else(|e| e.into_inner()).iter() {
                        pad.send_event(gst::event::Eos::new());
                    }
                }
                1 => {}
                _ => {
                    progress.finish();
                    return Err("abandoned by a second Ctrl-C: the output is incomplete".into());
                }
            }
            if let Err(reason) = self.input.check_started(&self.pipeline) {
                progress.finish();
                return Err(reason);
            }
            if let Some(message) = bus.timed_pop(gst::ClockTime::from_mseconds(100)) {
                match message.view() {
                    gst::MessageView::Eos(_) => {
                        progress.update(self, true);
                        progress.finish();
                        return Ok(if interrupted { Outcome::Interrupted } else { Outcome::Finished });
                    }
                    gst::MessageView::Error(_) => {
                        progress.finish();
                        return Err(self.input.explain(&message));
                    }
                    gst::MessageView::Warning(_) => {
                        progress.finish();
                        eprintln!("transcode: warning: {}", support::describe(&message).unwrap_or_default());
                    }
                    _ => {}
                }
            }
            progress.update(self, false);
        }
    }

    fn duration(&self) -> Option<gst::ClockTime> {
        self.video_entry.peer_query_duration::<gst::ClockTime>()
    }
}

/// Gives every frame into `pad` a timestamp later than the one before. Some decoders give frames
/// without one, or with the one of the frame before (MPEG-4 part 2 in AVI with B-frames, whose
/// AVI index holds decode times only); an encoder and muxer then fail ("Buffer has no PTS") or
/// lose frames. Such a frame gets the time of the frame after the one before it; the frames
/// after it that now collide follow the same way, so the video keeps its frame rate and ends
/// where the audio does. Frames with good timestamps are not touched.
fn restamp(pad: &gst::Pad, counters: &Arc<Counters>) {
    #[derive(Default)]
    struct Timeline {
        /// The timestamp of the frame before, as the decoder gave it and as it left.
        last_in: Option<gst::ClockTime>,
        last: Option<gst::ClockTime>,
        /// One frame's time, from the caps' frame rate.
        frame: Option<gst::ClockTime>,
    }
    let timeline = Mutex::new(Timeline::default());
    let counters = counters.clone();
    pad.add_probe(gst::PadProbeType::BUFFER | gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        let mut timeline = timeline.lock().unwrap_or_else(|e| e.into_inner());
        match &mut info.data {
            Some(gst::PadProbeData::Event(event)) => match event.view() {
                gst::EventView::Caps(caps) => {
                    let rate = gst_video::VideoInfo::from_caps(caps.caps()).ok().map(|i| i.fps());
                    timeline.frame = rate
                        .filter(|r| r.numer() > 0 && r.denom() > 0)
                        .and_then(|r| gst::ClockTime::SECOND.mul_div_round(r.denom() as u64, r.numer() as u64));
                }
                // A new timeline starts.
                gst::EventView::Segment(_) | gst::EventView::FlushStop(_) => {
                    timeline.last = None;
                    timeline.last_in = None;
                }
                _ => {}
            },
            Some(gst::PadProbeData::Buffer(buffer)) => {
                let pts = buffer.pts();
                if pts.is_none() || pts <= timeline.last_in {
                    counters.restamped.fetch_add(1, Ordering::Relaxed);
                }
                timeline.last_in = pts.or(timeline.last_in);
                let next = match (pts, timeline.last) {
                    (Some(pts), Some(last)) if pts > last => None,
                    (Some(_), None) => None,
                    (_, last) => {
                        let step = buffer
                            .duration()
                            .filter(|d| !d.is_zero())
                            .or(timeline.frame)
                            .unwrap_or(gst::ClockTime::MSECOND);
                        Some(last.map_or(gst::ClockTime::ZERO, |l| l + step))
                    }
                };
                if let Some(next) = next {
                    buffer.make_mut().set_pts(next);
                }
                timeline.last = buffer.pts();
            }
            _ => {}
        }
        gst::PadProbeReturn::Ok
    });
}

/// Bits per pixel per frame of the automatic bit rate: enough for faces to stay sharp in motion
/// at the usual sizes, about what streaming services use.
const H264_BITS_PER_PIXEL: f64 = 0.1;
const H265_BITS_PER_PIXEL: f64 = 0.07;
const MIN_AUTO_KBITS: u32 = 300;

/// The automatic bit rate in kbit/s for frames of `width`×`height` at `fps`.
fn auto_bitrate(width: u32, height: u32, fps: f64, h265: bool) -> u32 {
    let bits_per_pixel = if h265 { H265_BITS_PER_PIXEL } else { H264_BITS_PER_PIXEL };
    let kbits = f64::from(width) * f64::from(height) * fps.clamp(1.0, 120.0) * bits_per_pixel / 1000.0;
    (kbits.round() as u32).max(MIN_AUTO_KBITS)
}

/// Sets the encoder's `bitrate` (kbit/s in every encoder transcode uses): the one asked for, or
/// one for the frame size and rate, set when the caps reach the encoder (before it opens).
fn set_bitrate(encoder: &gst::Element, name: &str, asked: Option<u32>) -> Result<(), String> {
    if encoder.find_property("bitrate").is_none() {
        return Err(format!("{name} has no 'bitrate' property"));
    }
    let h265 = name.contains("265");
    let pad = encoder.static_pad("sink").ok_or("the encoder has no sink pad")?;
    let encoder = encoder.downgrade();
    let name = name.to_string();
    pad.add_probe(gst::PadProbeType::EVENT_DOWNSTREAM, move |_, info| {
        let Some(gst::PadProbeData::Event(event)) = &info.data else { return gst::PadProbeReturn::Ok };
        let gst::EventView::Caps(caps) = event.view() else { return gst::PadProbeReturn::Ok };
        let (Some(encoder), Ok(video)) = (encoder.upgrade(), gst_video::VideoInfo::from_caps(caps.caps())) else {
            return gst::PadProbeReturn::Ok;
        };
        let kbits = asked.unwrap_or_else(|| {
            let rate = video.fps();
            // A variable frame rate (0/1) is taken as 30 fps.
            let fps =
                if rate.numer() > 0 && rate.denom() > 0 { rate.numer() as f64 / rate.denom() as f64 } else { 30.0 };
            auto_bitrate(video.width(), video.height(), fps, h265)
        });
        let Some(pspec) = encoder.find_property("bitrate") else { return gst::PadProbeReturn::Ok };
        let value = if pspec.value_type() == u32::static_type() { kbits.to_value() } else { (kbits as i32).to_value() };
        if pspec.value_type() == value.type_() {
            encoder.set_property_from_value("bitrate", &value);
        }
        eprintln!(
            "transcode: {name} at {kbits} kbit/s for {}x{} ({})",
            video.width(),
            video.height(),
            if asked.is_some() { "--bitrate" } else { "auto; --bitrate to change" }
        );
        gst::PadProbeReturn::Ok
    });
    Ok(())
}

/// Builds `[parser !] queue ! muxer` for audio the muxer takes, or `audioconvert ! audioresample
/// ! encoder ! queue ! muxer` for decoded audio; returns the chain's sink pad.
fn audio_chain(
    pipeline: &gst::Pipeline,
    mux: &gst::Element,
    caps: &gst::Caps,
    container: Container,
) -> Result<gst::Pad, String> {
    let mut chain = Vec::new();
    if caps.structure(0).is_some_and(|s| s.name() == "audio/x-raw") {
        let encoder =
            container.audio_encoders().iter().find(|name| gst::ElementFactory::find(name).is_some()).ok_or_else(
                || {
                    format!(
                        "the audio must be re-encoded for {} but none of {} is installed",
                        container.name(),
                        container.audio_encoders().join(", ")
                    )
                },
            )?;
        eprintln!(
            "transcode: note: the input's audio format cannot go into {} unchanged: re-encoded with {encoder}",
            container.name()
        );
        chain.extend([support::make("audioconvert")?, support::make("audioresample")?, support::make(encoder)?]);
    } else if let Some(parser) = audio_parser(caps) {
        // A parser gives the muxer what it needs (framing, codec data) without touching the
        // compressed frames.
        chain.push(support::make(parser)?);
    }
    chain.push(support::make("queue")?);
    pipeline.add_many(&chain).map_err(|e| e.to_string())?;
    gst::Element::link_many(&chain).map_err(|e| format!("cannot link the audio chain: {e}"))?;
    let mux_pad = mux.request_pad_simple("audio_%u").ok_or("the muxer takes no more audio")?;
    let last = chain.last().and_then(|e| e.static_pad("src")).ok_or("no audio queue")?;
    last.link(&mux_pad).map_err(|e| format!("the muxer does not take this audio ({caps}): {e}"))?;
    for element in &chain {
        element.sync_state_with_parent().map_err(|e| e.to_string())?;
    }
    chain.first().and_then(|e| e.static_pad("sink")).ok_or_else(|| "no audio chain".to_string())
}

/// The parser for a compressed audio format, where one is installed.
fn audio_parser(caps: &gst::Caps) -> Option<&'static str> {
    let s = caps.structure(0)?;
    let parser = match s.name().as_str() {
        "audio/mpeg" if s.get::<i32>("mpegversion").ok() == Some(1) => "mpegaudioparse",
        "audio/mpeg" => "aacparse",
        "audio/x-opus" => "opusparse",
        "audio/x-ac3" | "audio/x-eac3" => "ac3parse",
        "audio/x-flac" => "flacparse",
        _ => return None,
    };
    gst::ElementFactory::find(parser).is_some().then_some(parser)
}

/// The one-line progress display on standard error.
struct Progress {
    terminal: bool,
    started: Instant,
    last_shown: Option<Instant>,
    /// Whether a `\r` line is on screen and needs a newline before other output.
    open_line: bool,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last_shown: None,
            open_line: false,
        }
    }

    fn update(&mut self, job: &Transcode, last: bool) {
        let every = if self.terminal { Duration::from_millis(250) } else { Duration::from_secs(2) };
        if !last && self.last_shown.is_some_and(|t| t.elapsed() < every) {
            return;
        }
        let frames = job.counters.frames.load(Ordering::Relaxed);
        if frames == 0 {
            return;
        }
        self.last_shown = Some(Instant::now());
        let elapsed = self.started.elapsed().as_secs_f64().max(1e-3);
        let position = match job.counters.position.load(Ordering::Relaxed) {
            u64::MAX => None,
            ns => Some(gst::ClockTime::from_nseconds(ns)),
        };
        let duration = job.duration();
        let eta = match (position, duration) {
            (Some(p), Some(d)) if p.nseconds() > 0 => {
                let left = d.saturating_sub(p).seconds_f64() * elapsed / p.seconds_f64();
                support::clock(Some(gst::ClockTime::from_seconds_f64(left)))
            }
            _ => "?".into(),
        };
        let line = format!(
            "{} / {}  {:.1} fps  ETA {eta}  ({frames} frames)",
            support::clock(position),
            support::clock(duration),
            frames as f64 / elapsed
        );
        let mut err = std::io::stderr().lock();
        if self.terminal {
            let _ = write!(err, "\r{line}   ");
            self.open_line = true;
        } else {
            let _ = writeln!(err, "{line}");
        }
        let _ = err.flush();
    }

    fn finish(&mut self) {
        if self.open_line {
            eprintln!();
            self.open_line = false;
        }
    }
}
