// SPDX-License-Identifier: MPL-2.0
//! The project's speed-measurement tool. It prints figures and asserts nothing; BENCHMARKS.md
//! keeps the commands and the latest results. `bench --help` documents every option.
//!
//!   bench run [OPTIONS]
//!       Times the elements in real pipelines, always the same way so that figures compare
//!       across runs, machines, plugin builds and other implementations:
//!       `filesrc location=FRAME.png ! pngdec ! imagefreeze num-buffers=N ! CHAIN ! fakesink
//!       sync=false` (or a decoded H.264 clip of the frame, in host or CUDA memory: `--feed`,
//!       `--memory`), one fresh pipeline with N = warm-up + frames (the long run) and one with
//!       N = warm-up (the short run) per row, all in one process. The plugin is loaded from a
//!       file (`--plugin`), so one bench binary can measure an older and a newer build. Prints a
//!       markdown table: fps, frame time p50/p99, input-to-output latency p50/p99, process CPU
//!       time per frame and mean GPU utilisation.
//!   bench frame --picture P.png --size WxH --faces 1|4 --out F.png
//!       Writes the frame `run` measures with, so that another implementation can be fed the
//!       identical picture.
//!   bench overhead
//!       ms per face of everything dlcswap and dlcenhance do outside the model run, at 720p and
//!       1080p: alignment, crop, input tensor, output conversion, paste-back; and the detector's
//!       letterbox per frame.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gst::prelude::*;
use gstdlc::backend::{Backend, Crop};
use gstdlc::models::enhancer;
use gstdlc::models::swapper::inswapper;
use gstdlc::vision::align::{ffhq_template, template, umeyama};
use gstdlc::vision::letterbox::{LetterboxScratch, letterbox_blob};
use gstdlc::vision::letterbox_plan::LetterboxPlan;
use gstdlc::vision::paste::{self, CropMask};
use gstdlc::vision::{FrameView, FrameViewMut, PixelFormat, YuvMatrix, estimate_norm};
use ort::value::TensorElementType;
use parking_lot::Mutex;

#[path = "bench/streams.rs"]
mod streams;

const SIZES: [(usize, usize); 2] = [(1280, 720), (1920, 1080)];

const USAGE: &str = "\
usage: bench run [OPTIONS]
       bench streams --streams LIST [--video FILE.mp4 [--decoder D]] [OPTIONS of run]
       bench frame [--picture P.png] [--size WxH] [--faces 1|4] --out F.png
       bench overhead
       bench --help

bench run: times `filesrc location=FRAME.png ! pngdec ! imagefreeze num-buffers=N ! CHAIN !
fakesink sync=false` (or, with --feed h264, N frames decoded from a clip) for every chain, frame size and face count, each as a long run
(N = warm-up + frames) and a short run (N = warm-up), fresh pipelines in one process, after one
unmeasured priming run that pays the process's one-time start-up (library loading, GPU context).
Prints a markdown table; every figure is printed, nothing is asserted.
  --plugin PATH        the plugin file to measure, loaded with gst::Plugin::load_file
                       (default target/release/libgstdlc.so)
  --picture P.png      the portrait the frame is made of (default ../shared/testdata/media/astronaut.png)
  --sizes LIST         frame sizes WxH, comma-separated (default 1280x720,1920x1080)
  --faces LIST         faces per frame, 1 and/or 4, comma-separated (default 1,4)
  --frames N           measured frames per row, after the warm-up (default 300)
  --warmup N           warm-up frames, at least 1 (default 30)
  --chains LIST        comma-separated, any of (default detect,swap,enhance):
                         detect   dlcdetect
                         swap     dlcdetect ! queue ! dlcswap
                         enhance  dlcdetect ! queue ! dlcswap ! queue ! dlcenhance
  --provider NAME      execution-provider of every element: cpu, cuda, auto, tensorrt, ... (default cpu)
  --gpu-id N           the GPU whose utilisation is sampled (default 0); when given, also passed
                       as gpu-id=N to every element
  --detector PATH      SCRFD model: dlcdetect model-file and dlcswap detector-model
                       (default ../shared/testdata/models/det_2.5g.onnx)
  --recognizer PATH    dlcswap recognition-model (default target/fixtures/models/arcface.onnx)
  --swapper PATH       dlcswap model-file (default target/fixtures/models/inswapper.onnx)
  --enhancer PATH      dlcenhance model-file (default target/fixtures/models/gfpgan.onnx)
  --source PNG         dlcswap source face (default ../shared/testdata/media/newton.png)
  --detect-props P     extra properties for dlcdetect, space-separated name=value
                       (e.g. 'inference-interval=1000' to take detection out of a swap row)
  --swap-props P       extra properties for dlcswap (many-faces=true is added when faces > 1)
  --enhance-props P    extra properties for dlcenhance
  --markdown-out FILE  also append the header, table and notes to FILE
  --feed KIND          where the frames come from (default picture):
                         picture  filesrc FRAME.png ! pngdec ! imagefreeze num-buffers=N
                         h264     an H.264 clip of N copies of the frame (x264enc, made before the
                                  runs) played by filesrc ! qtdemux ! h264parse ! DECODER
  --decoder NAME       the H.264 decoder of --feed h264 (default nvh264dec)
  --memory KIND        the memory the elements get their frames in (default host):
                         host     video/x-raw (nvh264dec copies its frames to host memory)
                         cuda     video/x-raw(memory:CUDAMemory): the decoder's CUDA frames, or the
                                  picture through videoconvert ! cudaupload; needs DLC_CUDA_MEMORY=1
                                  (see the README)
  --pace FPS           make the source live at FPS frames per second, like a camera (default 0:
                       it runs free, and in the chains with queues latency includes the time
                       frames wait in full queues)
Figures per row:
  fps            frames / (wall time of the long run - wall time of the short run)
  steady fps     buffers reaching fakesink after warm-up / the time between the first and the
                 last of them, long run only (no start-up time in it: the steadier figure)
  frame p50/p99  intervals between buffers reaching fakesink's sink pad, long run, after warm-up
  latency        per buffer, leaving imagefreeze's src pad -> reaching fakesink's sink pad
                 (matched by PTS), long run, after warm-up
  CPU ms/frame   (user+sys of the long run - user+sys of the short run) / frames, from
                 getrusage(RUSAGE_SELF): the whole process, every thread
  GPU %          mean of nvidia-smi utilization.gpu sampled every 100 ms during the long run
                 after warm-up; '–' without nvidia-smi
After the table, per row: the CPU time of the long run by thread name (GStreamer's streaming
threads are named after their element and pad, dlcswap's lanes dlcswap-lane-N; ONNX Runtime's
pool and the main thread share the program's name), whole run including start-up, per buffer.
Percentiles are nearest-rank. A bus error, or a pipeline that does not deliver exactly N buffers,
stops the run with exit code 1; every bus warning and each element's active-provider is printed.

bench streams: N streams at once in one process, for each N of --streams (e.g. 1,4,16,32): one
pipeline of N independent branches `SOURCE ! CHAIN ! fakesink sync=false`, each with its own
elements, started together. The chain is the longest of --chains (default swap), with the first
--sizes and --faces; SOURCE is the benchmark frame frozen for warm-up + frames buffers (paced by
--pace like run), or with --video FILE an H.264 MP4 through `qtdemux ! h264parse ! DECODER`
(--decoder, default `avdec_h264`; e.g. 'nvh264dec ! cudadownload'). No priming run: the first
stream pays the process's start-up, which the first-frame times show. Per N:
  aggregate fps      all streams' frames while every stream is past its warm-up (from the moment
                     the last one passed it to the moment the first one ended) / that time
  per stream fps     each stream's frames after its warm-up / their time span; min and mean
  latency p50/p99    leaving the source -> reaching the stream's fakesink, after warm-up, all streams
  CPU ms/frame       process user+sys from the steady moment to the end / frames in that time
  GPU %, GPU MiB     nvidia-smi utilization.gpu (mean) and memory.used (peak) during the steady
                     part, and the memory added since before the pipeline was made
  first frame        seconds from PLAYING to each stream's first frame: the first and the last stream

bench frame: writes the benchmark frame: 1 face = the portrait scaled to the frame height
(at most its width), centred on grey; 4 faces = a 2x2 grid, each cell the portrait scaled to the
cell height, centred in its cell. Defaults: --picture as above, --size 1920x1080, --faces 1.

bench overhead: ms per face of what dlcswap and dlcenhance do outside the model run, and ms per
frame of the detector's letterbox.
";

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Err(e) = command(&args) {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

fn command(args: &[String]) -> Result<(), String> {
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print!("{USAGE}");
        return Ok(());
    }
    match args.first().map(String::as_str) {
        Some("run") => run(RunOptions::parse(&args[1..])?),
        Some("frame") => frame_command(&args[1..]),
        Some("streams") => streams_command(&args[1..]),
        Some("overhead") if args.len() > 1 => Err("bench overhead takes no options".into()),
        Some("overhead") => overhead(),
        Some("help") => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => Err(format!("unknown command or arguments '{other}' (bench --help lists them)")),
        None => Err(format!("no command\n{USAGE}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Options

/// `--name value` or `--name=value` pairs, every name one of `known`.
fn parse_options(args: &[String], known: &[&str]) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        let Some(option) = arg.strip_prefix("--") else {
            return Err(format!("unexpected argument '{arg}' (bench --help lists the options)"));
        };
        let (name, value) = match option.split_once('=') {
            Some((name, value)) => (name.to_string(), value.to_string()),
            None => {
                let value = rest.next().ok_or_else(|| format!("--{option} needs a value"))?;
                (option.to_string(), value.clone())
            }
        };
        if !known.contains(&name.as_str()) {
            return Err(format!("unknown option --{name} (bench --help lists the options)"));
        }
        pairs.push((name, value));
    }
    Ok(pairs)
}

fn parse_number<T: std::str::FromStr>(option: &str, value: &str) -> Result<T, String> {
    value.trim().parse().map_err(|_| format!("--{option}: '{value}' is not a valid number"))
}

/// `WxH`, both positive and even (so that a 2×2 grid of cells fits exactly).
fn parse_size(value: &str) -> Result<(u32, u32), String> {
    let bad = || format!("frame size '{value}' is not WxH with even W and H, e.g. 1920x1080");
    let (w, h) = value.trim().split_once('x').ok_or_else(bad)?;
    let (w, h): (u32, u32) = (w.parse().map_err(|_| bad())?, h.parse().map_err(|_| bad())?);
    if w == 0 || h == 0 || w % 2 == 1 || h % 2 == 1 || w > 16384 || h > 16384 {
        return Err(bad());
    }
    Ok((w, h))
}

fn parse_faces(value: &str) -> Result<u32, String> {
    match value.trim() {
        "1" => Ok(1),
        "4" => Ok(4),
        other => Err(format!("faces '{other}': only 1 or 4 faces per frame")),
    }
}

fn parse_list<T>(value: &str, parse: impl Fn(&str) -> Result<T, String>) -> Result<Vec<T>, String> {
    let items = value.split(',').filter(|s| !s.trim().is_empty()).map(parse).collect::<Result<Vec<T>, String>>()?;
    if items.is_empty() {
        return Err(format!("empty list '{value}'"));
    }
    Ok(items)
}

/// Extra `name=value` element properties, space-separated.
fn parse_props(option: &str, value: &str) -> Result<Vec<String>, String> {
    value
        .split_whitespace()
        .map(|p| match p.split_once('=') {
            Some((name, _)) if !name.is_empty() => Ok(p.to_string()),
            _ => Err(format!("--{option}: '{p}' is not name=value")),
        })
        .collect()
}

/// The file at `path`, made absolute, or a message naming the option that supplies it.
fn existing_file(path: &Path, option: &str, hint: &str) -> Result<PathBuf, String> {
    match path.canonicalize() {
        Ok(p) if p.is_file() => Ok(p),
        Ok(_) => Err(format!("--{option} {}: not a file{hint}", path.display())),
        Err(e) => Err(format!("--{option} {}: {e}{hint}", path.display())),
    }
}

#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Chain {
    Detect,
    Swap,
    Enhance,
}

impl Chain {
    fn parse(value: &str) -> Result<Chain, String> {
        match value.trim() {
            "detect" => Ok(Chain::Detect),
            "swap" => Ok(Chain::Swap),
            "enhance" => Ok(Chain::Enhance),
            other => Err(format!("chain '{other}': one of detect, swap, enhance")),
        }
    }

    fn name(self) -> &'static str {
        match self {
            Chain::Detect => "detect",
            Chain::Swap => "swap",
            Chain::Enhance => "enhance",
        }
    }

    fn factories(self) -> &'static [&'static str] {
        &["dlcdetect", "dlcswap", "dlcenhance"][..=self as usize]
    }
}

struct RunOptions {
    plugin: PathBuf,
    picture: PathBuf,
    sizes: Vec<(u32, u32)>,
    faces: Vec<u32>,
    frames: usize,
    warmup: usize,
    chains: Vec<Chain>,
    provider: String,
    gpu_id: Option<u32>,
    detector: PathBuf,
    recognizer: PathBuf,
    swapper: PathBuf,
    enhancer: PathBuf,
    source: PathBuf,
    detect_props: Vec<String>,
    swap_props: Vec<String>,
    enhance_props: Vec<String>,
    markdown_out: Option<PathBuf>,
    /// Frames per second of a live source (0: the source runs free).
    pace: u32,
    feed: Feed,
    decoder: String,
    /// The elements get CUDA memory (`memory:CUDAMemory`) rather than host memory.
    cuda_memory: bool,
}

/// Where a run's frames come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Feed {
    /// The frame picture repeated by imagefreeze.
    Picture,
    /// An H.264 clip of the frame, decoded.
    H264,
}

const DEFAULT_PICTURE: &str = "../shared/testdata/media/astronaut.png";
const FIXTURE_HINT: &str = " (the fixture models come from `make fixtures`)";

const RUN_OPTIONS: [&str; 22] = [
    "plugin",
    "picture",
    "sizes",
    "faces",
    "frames",
    "warmup",
    "chains",
    "provider",
    "gpu-id",
    "detector",
    "recognizer",
    "swapper",
    "enhancer",
    "source",
    "detect-props",
    "swap-props",
    "enhance-props",
    "markdown-out",
    "pace",
    "feed",
    "decoder",
    "memory",
];

impl RunOptions {
    fn parse(args: &[String]) -> Result<RunOptions, String> {
        let mut o = RunOptions {
            plugin: "target/release/libgstdlc.so".into(),
            picture: DEFAULT_PICTURE.into(),
            sizes: vec![(1280, 720), (1920, 1080)],
            faces: vec![1, 4],
            frames: 300,
            warmup: 30,
            chains: vec![Chain::Detect, Chain::Swap, Chain::Enhance],
            provider: "cpu".into(),
            gpu_id: None,
            detector: "../shared/testdata/models/det_2.5g.onnx".into(),
            recognizer: "target/fixtures/models/arcface.onnx".into(),
            swapper: "target/fixtures/models/inswapper.onnx".into(),
            enhancer: "target/fixtures/models/gfpgan.onnx".into(),
            source: "../shared/testdata/media/newton.png".into(),
            detect_props: Vec::new(),
            swap_props: Vec::new(),
            enhance_props: Vec::new(),
            markdown_out: None,
            pace: 0,
            feed: Feed::Picture,
            decoder: "nvh264dec".into(),
            cuda_memory: false,
        };
        for (name, value) in parse_options(args, &RUN_OPTIONS)? {
            match name.as_str() {
                "plugin" => o.plugin = value.into(),
                "picture" => o.picture = value.into(),
                "sizes" => o.sizes = parse_list(&value, parse_size)?,
                "faces" => o.faces = parse_list(&value, parse_faces)?,
                "frames" => o.frames = parse_number(&name, &value)?,
                "warmup" => o.warmup = parse_number(&name, &value)?,
                "chains" => o.chains = parse_list(&value, Chain::parse)?,
                "provider" => o.provider = value.trim().to_string(),
                "gpu-id" => o.gpu_id = Some(parse_number(&name, &value)?),
                "detector" => o.detector = value.into(),
                "recognizer" => o.recognizer = value.into(),
                "swapper" => o.swapper = value.into(),
                "enhancer" => o.enhancer = value.into(),
                "source" => o.source = value.into(),
                "detect-props" => o.detect_props.extend(parse_props(&name, &value)?),
                "swap-props" => o.swap_props.extend(parse_props(&name, &value)?),
                "enhance-props" => o.enhance_props.extend(parse_props(&name, &value)?),
                "markdown-out" => o.markdown_out = Some(value.into()),
                "pace" => o.pace = parse_number(&name, &value)?,
                "feed" => {
                    o.feed = match value.trim() {
                        "picture" => Feed::Picture,
                        "h264" => Feed::H264,
                        other => return Err(format!("--feed '{other}': picture or h264")),
                    }
                }
                "decoder" => o.decoder = value.trim().to_string(),
                "memory" => {
                    o.cuda_memory = match value.trim() {
                        "host" => false,
                        "cuda" => true,
                        other => return Err(format!("--memory '{other}': host or cuda")),
                    }
                }
                _ => return Err(format!("unknown option --{name}")),
            }
        }
        if o.frames == 0 || o.warmup == 0 {
            return Err("--frames and --warmup must be at least 1".into());
        }
        if o.cuda_memory && std::env::var("DLC_CUDA_MEMORY").as_deref() != Ok("1") {
            return Err("--memory cuda: the elements take CUDA memory only with DLC_CUDA_MEMORY=1 set".into());
        }
        if o.feed == Feed::H264 && o.pace != 0 {
            return Err("--pace paces the picture feed only (a clip plays as fast as it decodes)".into());
        }
        if o.provider.is_empty() || o.provider.contains(char::is_whitespace) {
            return Err(format!("--provider '{}' is not a provider name", o.provider));
        }
        // Every file the requested chains read, made absolute, before anything starts.
        let longest = o.chains.iter().copied().max().unwrap_or(Chain::Detect);
        o.plugin = existing_file(&o.plugin, "plugin", " (build it with `cargo build --release`)")?;
        o.picture = existing_file(&o.picture, "picture", "")?;
        o.detector = existing_file(&o.detector, "detector", "")?;
        if longest >= Chain::Swap {
            o.recognizer = existing_file(&o.recognizer, "recognizer", FIXTURE_HINT)?;
            o.swapper = existing_file(&o.swapper, "swapper", FIXTURE_HINT)?;
            o.source = existing_file(&o.source, "source", "")?;
        }
        if longest >= Chain::Enhance {
            o.enhancer = existing_file(&o.enhancer, "enhancer", FIXTURE_HINT)?;
        }
        Ok(o)
    }

    /// The launch text of `chain` for frames with `faces` faces.
    fn chain_launch(&self, chain: Chain, faces: u32) -> String {
        let mut common = vec![format!("execution-provider={}", self.provider)];
        common.extend(self.gpu_id.map(|id| format!("gpu-id={id}")));
        let element = |factory: &str, props: Vec<String>, extra: &[String]| {
            let all: Vec<String> =
                props.into_iter().chain(common.iter().cloned()).chain(extra.iter().cloned()).collect();
            format!("{factory} {}", all.join(" "))
        };
        let mut elements =
            vec![element("dlcdetect", vec![launch_prop("model-file", &self.detector)], &self.detect_props)];
        if chain >= Chain::Swap {
            let mut props = vec![
                launch_prop("source", &self.source),
                launch_prop("detector-model", &self.detector),
                launch_prop("recognition-model", &self.recognizer),
                launch_prop("model-file", &self.swapper),
            ];
            if faces > 1 {
                props.push("many-faces=true".into());
            }
            elements.push(element("dlcswap", props, &self.swap_props));
        }
        if chain >= Chain::Enhance {
            elements.push(element("dlcenhance", vec![launch_prop("model-file", &self.enhancer)], &self.enhance_props));
        }
        elements.join(" ! queue ! ")
    }
}

impl RunOptions {
    /// The launch text up to the chain for a run of `buffers` frames: the picture `frame`
    /// repeated, or `clip` (`buffers` frames of it in H.264) decoded. The element whose src pad
    /// marks a frame's start for the latency is named `bench_src`.
    fn source_launch(&self, frame: &Path, clip: &Path, buffers: usize) -> String {
        let memory = if self.cuda_memory { "video/x-raw(memory:CUDAMemory)" } else { "video/x-raw" };
        match self.feed {
            Feed::Picture => {
                // A paced source is live, like a camera: frames leave it at the frame rate whether
                // or not the chain is ready, so nothing waits in full queues unless the chain is
                // too slow.
                let freeze = match self.pace {
                    0 => format!("imagefreeze name=bench_src num-buffers={buffers}"),
                    fps => format!(
                        "imagefreeze name=bench_src is-live=true num-buffers={buffers} ! video/x-raw,framerate={fps}/1"
                    ),
                };
                let upload =
                    if self.cuda_memory { format!(" ! videoconvert ! cudaupload ! {memory}") } else { String::new() };
                format!("filesrc {} ! pngdec ! {freeze}{upload}", launch_prop("location", frame))
            }
            Feed::H264 => format!(
                "filesrc {} ! qtdemux ! h264parse ! {} name=bench_src ! {memory}",
                launch_prop("location", clip),
                self.decoder
            ),
        }
    }
}

/// Encodes `buffers` copies of the picture `frame` as an H.264 clip (MP4, 30 fps) at `clip`.
fn encode_clip(frame: &Path, buffers: usize, clip: &Path) -> Result<(), String> {
    let launch = format!(
        "filesrc {} ! pngdec ! imagefreeze num-buffers={buffers} ! video/x-raw,framerate=30/1 ! videoconvert \
         ! video/x-raw,format=I420 ! x264enc speed-preset=ultrafast bitrate=20000 key-int-max=30 ! h264parse \
         ! mp4mux ! filesink {}",
        launch_prop("location", frame),
        launch_prop("location", clip)
    );
    let pipeline = gst::parse::launch(&launch).map_err(|e| format!("pipeline `{launch}`: {e}"))?;
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    pipeline.set_state(gst::State::Playing).map_err(|_| format!("`{launch}` does not start"))?;
    let outcome = loop {
        let Some(msg) = bus.timed_pop(gst::ClockTime::from_seconds(120)) else {
            break Err(format!("`{launch}` stalled"));
        };
        match msg.view() {
            gst::MessageView::Eos(_) => break Ok(()),
            gst::MessageView::Error(e) => {
                break Err(format!("{}\n  in `{launch}`", message_text(msg.src(), &e.error(), e.debug().as_deref())));
            }
            _ => {}
        }
    };
    let _ = pipeline.set_state(gst::State::Null);
    outcome
}

/// `name=path` for a launch line, quoted when the path has characters the parser would split on.
fn launch_prop(name: &str, path: &Path) -> String {
    let text = path.display().to_string();
    if text.chars().all(|c| c.is_alphanumeric() || "/._-+".contains(c)) {
        format!("{name}={text}")
    } else {
        format!("{name}=\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
    }
}

// ---------------------------------------------------------------------------------------------
// Frames

const GREY: image::Rgb<u8> = image::Rgb([96, 96, 96]);

fn open_picture(picture: &Path) -> Result<image::RgbImage, String> {
    Ok(image::open(picture).map_err(|e| format!("picture {}: {e}", picture.display()))?.to_rgb8())
}

/// The benchmark frame: `faces` (1 or 4) copies of `picture`, each scaled to the height of its
/// cell (1 cell, or a 2×2 grid) and no wider than it, centred in the cell, on grey.
fn benchmark_frame(picture: &image::RgbImage, (width, height): (u32, u32), faces: u32) -> image::RgbImage {
    let grid = if faces == 4 { 2 } else { 1 };
    let (cell_w, cell_h) = (width / grid, height / grid);
    let scale = (cell_h as f64 / picture.height() as f64).min(cell_w as f64 / picture.width() as f64);
    let (w, h) = (
        ((picture.width() as f64 * scale).round() as u32).clamp(1, cell_w),
        ((picture.height() as f64 * scale).round() as u32).clamp(1, cell_h),
    );
    let scaled = image::imageops::resize(picture, w, h, image::imageops::FilterType::Triangle);
    let mut canvas = image::RgbImage::from_pixel(width, height, GREY);
    for row in 0..grid {
        for col in 0..grid {
            let (x, y) = (col * cell_w + (cell_w - w) / 2, row * cell_h + (cell_h - h) / 2);
            image::imageops::overlay(&mut canvas, &scaled, x.into(), y.into());
        }
    }
    canvas
}

fn write_frame(picture: &image::RgbImage, size: (u32, u32), faces: u32, out: &Path) -> Result<(), String> {
    benchmark_frame(picture, size, faces).save(out).map_err(|e| format!("cannot write {}: {e}", out.display()))
}

fn frame_command(args: &[String]) -> Result<(), String> {
    let (mut picture, mut size, mut faces, mut out) = (PathBuf::from(DEFAULT_PICTURE), (1920, 1080), 1, None);
    for (name, value) in parse_options(args, &["picture", "size", "faces", "out"])? {
        match name.as_str() {
            "picture" => picture = value.into(),
            "size" => size = parse_size(&value)?,
            "faces" => faces = parse_faces(&value)?,
            _ => out = Some(PathBuf::from(value)),
        }
    }
    let out = out.ok_or("bench frame needs --out F.png")?;
    let picture = existing_file(&picture, "picture", "")?;
    write_frame(&open_picture(&picture)?, size, faces, &out)?;
    println!("{}: {}x{}, {faces} face(s) from {}", out.display(), size.0, size.1, picture.display());
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Measuring

/// User + system CPU time of the whole process (every thread) so far.
fn process_cpu_time() -> Duration {
    // SAFETY: getrusage only writes the struct it is given.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return Duration::ZERO;
    }
    let time = |t: libc::timeval| Duration::new(t.tv_sec as u64, t.tv_usec as u32 * 1000);
    time(usage.ru_utime) + time(usage.ru_stime)
}

/// CPU time of each thread of the process so far (`/proc/self/task/*/schedstat`, nanoseconds on
/// a CPU), by thread id, with the thread's name; empty where `/proc` lacks it.
fn thread_cpu_times() -> HashMap<u64, (String, Duration)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return HashMap::new() };
    tasks
        .flatten()
        .filter_map(|task| {
            let tid = task.file_name().to_str()?.parse::<u64>().ok()?;
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?.trim().to_string();
            let on_cpu = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            let ns = on_cpu.split_whitespace().next()?.parse::<u64>().ok()?;
            Some((tid, (name, Duration::from_nanos(ns))))
        })
        .collect()
}

/// The CPU time threads spent between two [`thread_cpu_times`], summed by thread name (threads
/// of one name, such as ONNX Runtime's unnamed pool threads, count together), largest first.
fn cpu_by_thread(
    before: &HashMap<u64, (String, Duration)>,
    after: HashMap<u64, (String, Duration)>,
) -> Vec<(String, Duration)> {
    let mut by_name: Vec<(String, Duration)> = Vec::new();
    for (tid, (name, total)) in after {
        let spent = total.saturating_sub(before.get(&tid).map_or(Duration::ZERO, |(_, t)| *t));
        match by_name.iter_mut().find(|(n, _)| *n == name) {
            Some((_, sum)) => *sum += spent,
            None => by_name.push((name, spent)),
        }
    }
    by_name.sort_by_key(|(_, spent)| std::cmp::Reverse(*spent));
    by_name
}

/// `nvidia-smi -lms 100` running in the background, its samples collected by a thread.
struct GpuSampler {
    child: Child,
    reader: JoinHandle<Vec<f64>>,
}

impl GpuSampler {
    fn start(gpu_id: u32) -> Result<GpuSampler, String> {
        let mut child = Command::new("nvidia-smi")
            .args(["--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-lms", "100"])
            .args(["-i", &gpu_id.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("nvidia-smi: {e}"))?;
        let stdout = child.stdout.take().ok_or("nvidia-smi: no output pipe")?;
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout).lines().map_while(Result::ok).filter_map(|l| l.trim().parse().ok()).collect()
        });
        Ok(GpuSampler { child, reader })
    }

    /// Stops sampling; the mean utilisation in %, if any sample came.
    fn finish(mut self) -> Option<f64> {
        stop_nvidia_smi(&mut self.child);
        let samples = self.reader.join().unwrap_or_default();
        (!samples.is_empty()).then(|| samples.iter().sum::<f64>() / samples.len() as f64)
    }
}

/// Ends an `nvidia-smi -lms` child: SIGINT (Ctrl-C, which ends its loop) rather than SIGKILL,
/// so that it can still write out what it sampled; killed after 2 s.
fn stop_nvidia_smi(child: &mut Child) {
    // SAFETY: kill only sends a signal to our own child.
    unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGINT) };
    let asked = Instant::now();
    while matches!(child.try_wait(), Ok(None)) {
        if asked.elapsed() > Duration::from_secs(2) {
            let _ = child.kill();
            let _ = child.wait();
            break;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// What the probes record: when each PTS left imagefreeze, and each arrival at the fakesink.
#[derive(Default)]
struct Timeline {
    left: HashMap<u64, Instant>,
    arrivals: Vec<Instant>,
    /// Per arrival, the time since the same PTS left imagefreeze (None: no PTS or no match).
    latencies: Vec<Option<Duration>>,
}

/// One pipeline run, from building it to its EOS.
struct PipelineRun {
    wall: Duration,
    cpu: Duration,
    timeline: Timeline,
    gpu: Option<f64>,
    /// CPU time per thread name from start to EOS, largest first.
    threads: Vec<(String, Duration)>,
    /// (element factory, active-provider) for every element with that property.
    providers: Vec<(String, String)>,
    warnings: Vec<String>,
}

/// Gives up when no buffer reaches the sink for this long (a stalled pipeline).
const STALL: Duration = Duration::from_secs(600);

fn element_label(object: Option<&gst::Object>) -> String {
    let Some(object) = object else { return "pipeline".into() };
    match object.downcast_ref::<gst::Element>().and_then(|e| e.factory()) {
        Some(factory) => factory.name().to_string(),
        None => object.name().to_string(),
    }
}

/// `element: message (detail)` of a bus error or warning; the detail is the debug text without
/// GStreamer's first line (source location and object path, which differ from run to run).
fn message_text(src: Option<&gst::Object>, error: &gst::glib::Error, debug: Option<&str>) -> String {
    // Only a reason given apart from the message (after the code location and ":\n").
    let detail = debug.and_then(|d| d.split_once(":\n").map(|(_, rest)| rest.trim())).filter(|d| !d.is_empty());
    format!("{}: {error}{}", element_label(src), detail.map(|d| format!(" ({d})")).unwrap_or_default())
}

/// Runs `filesrc ! pngdec ! imagefreeze num-buffers=buffers ! chain ! fakesink sync=false` to
/// EOS. With `gpu`, samples that GPU's utilisation once `sample_after` buffers reached the sink.
fn run_pipeline(
    source: &str,
    chain: &str,
    buffers: usize,
    sample_after: usize,
    gpu: Option<u32>,
) -> Result<PipelineRun, String> {
    let launch = format!("{source} ! {chain} ! fakesink name=bench_sink sync=false");
    let (start, start_cpu, start_threads) = (Instant::now(), process_cpu_time(), thread_cpu_times());
    let pipeline = gst::parse::launch(&launch)
        .map_err(|e| format!("pipeline `{launch}`: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the launch line is not a pipeline")?;
    let pad = |element: &str, pad: &str| {
        pipeline.by_name(element).and_then(|e| e.static_pad(pad)).ok_or(format!("no {element} {pad} pad"))
    };
    let timeline = Arc::new(Mutex::new(Timeline::default()));
    let arrived = Arc::new(AtomicUsize::new(0));
    let pts_of = |info: &gst::PadProbeInfo| info.buffer().and_then(|b| b.pts()).map(gst::ClockTime::nseconds);
    {
        let timeline = timeline.clone();
        pad("bench_src", "src")?.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let now = Instant::now();
            if let Some(pts) = pts_of(info) {
                timeline.lock().left.insert(pts, now);
            }
            gst::PadProbeReturn::Ok
        });
    }
    {
        let (timeline, arrived) = (timeline.clone(), arrived.clone());
        pad("bench_sink", "sink")?.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let now = Instant::now();
            let mut t = timeline.lock();
            let latency = pts_of(info).and_then(|pts| t.left.remove(&pts)).map(|left| now - left);
            t.arrivals.push(now);
            t.latencies.push(latency);
            arrived.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    }

    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let mut warnings = Vec::new();
    let mut sampler = None;
    let outcome = (|| {
        if pipeline.set_state(gst::State::Playing).is_err() {
            // The reason is an error message on the bus.
            let reason = bus.pop_filtered(&[gst::MessageType::Error]).and_then(|msg| match msg.view() {
                gst::MessageView::Error(e) => Some(message_text(msg.src(), &e.error(), e.debug().as_deref())),
                _ => None,
            });
            return Err(format!("{}\n  in `{launch}`", reason.as_deref().unwrap_or("the pipeline does not start")));
        }
        let mut progress = (0, Instant::now());
        loop {
            let count = arrived.load(Ordering::SeqCst);
            if let Some(id) = gpu.filter(|_| sampler.is_none() && count >= sample_after) {
                sampler = Some(GpuSampler::start(id)?);
            }
            if count != progress.0 {
                progress = (count, Instant::now());
            } else if progress.1.elapsed() > STALL {
                return Err(format!("no buffer reached the sink for {} s after {count}: `{launch}`", STALL.as_secs()));
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(20)) else { continue };
            match msg.view() {
                gst::MessageView::Eos(_) => return Ok(()),
                gst::MessageView::Error(e) => {
                    return Err(format!(
                        "{}\n  in `{launch}`",
                        message_text(msg.src(), &e.error(), e.debug().as_deref())
                    ));
                }
                gst::MessageView::Warning(w) => {
                    let text = message_text(msg.src(), &w.error(), w.debug().as_deref());
                    eprintln!("  warning: {text}");
                    warnings.push(text);
                }
                _ => {}
            }
        }
    })();
    let (wall, cpu) = (start.elapsed(), process_cpu_time().saturating_sub(start_cpu));
    // Before the teardown, which ends the pipeline's threads.
    let threads = cpu_by_thread(&start_threads, thread_cpu_times());
    let gpu = sampler.and_then(GpuSampler::finish);
    let mut providers: Vec<(String, String)> = pipeline
        .iterate_elements()
        .into_iter()
        .flatten()
        .filter(|e| e.find_property("active-provider").is_some())
        .map(|e| {
            (element_label(Some(e.upcast_ref())), e.property::<Option<String>>("active-provider").unwrap_or_default())
        })
        .collect();
    // The bin lists its children newest first: show them in chain order.
    providers.reverse();
    let _ = pipeline.set_state(gst::State::Null);
    outcome?;
    let timeline = std::mem::take(&mut *timeline.lock());
    if timeline.arrivals.len() != buffers {
        return Err(format!(
            "the pipeline delivered {} buffers instead of {buffers}: `{launch}`",
            timeline.arrivals.len()
        ));
    }
    Ok(PipelineRun { wall, cpu, timeline, gpu, threads, providers, warnings })
}

/// Nearest-rank percentile of sorted values; None when there are none.
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

fn sorted_ms(values: impl Iterator<Item = Duration>) -> Vec<f64> {
    let mut ms: Vec<f64> = values.map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    ms
}

fn show(value: Option<f64>, decimals: usize) -> String {
    value.filter(|v| v.is_finite()).map_or("–".into(), |v| format!("{v:.decimals$}"))
}

fn p50_p99(sorted: &[f64]) -> String {
    format!("{} / {}", show(percentile(sorted, 50.0), 2), show(percentile(sorted, 99.0), 2))
}

/// One table row from the short and the long run of the same pipeline.
fn table_row(label: &str, short: &PipelineRun, long: &PipelineRun, frames: usize, warmup: usize) -> String {
    let extra_wall = long.wall.as_secs_f64() - short.wall.as_secs_f64();
    let fps = (extra_wall > 0.0).then(|| frames as f64 / extra_wall);
    let arrivals = &long.timeline.arrivals;
    let intervals = sorted_ms((warmup.max(1)..arrivals.len()).map(|i| arrivals[i] - arrivals[i - 1]));
    // The long run alone, after warm-up: unlike `fps`, no start-up time enters it.
    let steady = match (arrivals.get(warmup), arrivals.last()) {
        (Some(first), Some(last)) if last > first => {
            Some((arrivals.len() - 1 - warmup) as f64 / (*last - *first).as_secs_f64())
        }
        _ => None,
    };
    let latencies = sorted_ms(long.timeline.latencies[warmup.min(arrivals.len())..].iter().flatten().copied());
    let cpu = (long.cpu.as_secs_f64() - short.cpu.as_secs_f64()) * 1e3 / frames as f64;
    format!(
        "| {label} | {} | {} | {} | {} | {} | {} |",
        show(fps, 1),
        show(steady, 1),
        p50_p99(&intervals),
        p50_p99(&latencies),
        show(Some(cpu), 2),
        show(long.gpu, 1)
    )
}

/// The first `model name` (or other CPU naming line) of /proc/cpuinfo, and the CPU count.
fn cpu_model() -> String {
    let info = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let name = ["model name", "Hardware", "cpu model", "uarch"]
        .iter()
        .find_map(|key| {
            info.lines().find_map(|l| l.split_once(':').filter(|(k, _)| k.trim() == *key).map(|(_, v)| v.trim()))
        })
        .unwrap_or("unknown CPU");
    let count = info.lines().filter(|l| l.starts_with("processor")).count();
    format!("{name} ({count} CPUs)")
}

/// The GPU's name and driver from nvidia-smi; None when nvidia-smi does not run.
fn gpu_name(gpu_id: u32) -> Option<String> {
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=name,driver_version", "--format=csv,noheader", "-i", &gpu_id.to_string()])
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
    let (name, driver) = text.split_once(',').unwrap_or((&text, ""));
    Some(format!("{name} (GPU {gpu_id}, driver {})", driver.trim()))
}

/// Now, as `YYYY-MM-DD HH:MM UTC`.
fn utc_now() -> String {
    let secs = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs()) as i64;
    let (days, rest) = (secs.div_euclid(86400), secs.rem_euclid(86400));
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {:02}:{:02} UTC", rest / 3600, rest % 3600 / 60)
}

fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Loads the plugin file into a fresh registry and checks that the elements come from it.
fn load_plugin(path: &Path, factories: &[&str]) -> Result<gst::Plugin, String> {
    gst::init().map_err(|e| format!("GStreamer does not initialise: {e}"))?;
    let plugin = gst::Plugin::load_file(path).map_err(|e| format!("cannot load plugin {}: {e}", path.display()))?;
    for name in factories {
        let factory = gst::ElementFactory::find(name)
            .ok_or_else(|| format!("plugin {} provides no element {name}", path.display()))?;
        let from = factory.plugin().and_then(|p| p.filename()).and_then(|f| f.canonicalize().ok());
        if from.as_deref() != Some(path) {
            return Err(format!(
                "{name} comes from {} instead of {} (another build on GST_PLUGIN_PATH?)",
                from.map_or("an unknown file".into(), |f| f.display().to_string()),
                path.display()
            ));
        }
    }
    Ok(plugin)
}

/// Everything measured per row besides the table: providers, warnings and run times.
struct RowNotes {
    label: String,
    providers: Vec<(String, String)>,
    warnings: Vec<String>,
    walls: (Duration, Duration),
    /// CPU ms per buffer of the long run, by thread name.
    threads: Vec<(String, f64)>,
}

fn notes_text(notes: &[RowNotes]) -> String {
    let mut text = String::new();
    let mut all: Vec<&str> = notes.iter().flat_map(|n| n.providers.iter().map(|(_, p)| p.as_str())).collect();
    all.sort_unstable();
    all.dedup();
    if let [only] = all[..] {
        text += &format!("active-provider: {only} in every element of every row\n");
    } else {
        for n in notes {
            let providers: Vec<String> = n.providers.iter().map(|(e, p)| format!("{e}={p}")).collect();
            text += &format!("active-provider {}: {}\n", n.label, providers.join(", "));
        }
    }
    let mut any_warning = false;
    for n in notes {
        let mut counted: Vec<(&String, usize)> = Vec::new();
        for w in &n.warnings {
            match counted.iter_mut().find(|(seen, _)| *seen == w) {
                Some((_, count)) => *count += 1,
                None => counted.push((w, 1)),
            }
        }
        for (w, count) in counted {
            any_warning = true;
            text += &format!("warning {} (×{count}): {w}\n", n.label);
        }
    }
    if !any_warning {
        text += "no bus warnings\n";
    }
    for n in notes {
        let busiest: Vec<String> = n
            .threads
            .iter()
            .take(8)
            .filter(|(_, ms)| *ms >= 0.01)
            .map(|(name, ms)| format!("{name} {ms:.2}"))
            .collect();
        if !busiest.is_empty() {
            text += &format!(
                "CPU ms per buffer by thread, long run {}: {}
",
                n.label,
                busiest.join(", ")
            );
        }
    }
    text += "wall time short / long run (s):";
    for n in notes {
        text += &format!(" {} {:.1} / {:.1};", n.label, n.walls.0.as_secs_f64(), n.walls.1.as_secs_f64());
    }
    text.pop();
    text + "\n"
}

fn run(o: RunOptions) -> Result<(), String> {
    let longest = o.chains.iter().copied().max().unwrap_or(Chain::Detect);
    let scratch = tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    // A registry of our own: no stale cache can hand out another build's elements. Set before
    // gst::init, while this process has no other thread.
    // SAFETY: single-threaded here; nothing reads the environment concurrently.
    unsafe { std::env::set_var("GST_REGISTRY", scratch.path().join("registry.bin")) };
    let plugin = load_plugin(&o.plugin, longest.factories())?;

    let gpu = o.gpu_id.unwrap_or(0);
    let gpu_name = gpu_name(gpu);
    let models = [
        Some(format!("detector {}", file_name(&o.detector))),
        (longest >= Chain::Swap).then(|| {
            format!(
                "recognizer {}, swapper {}, source {}",
                file_name(&o.recognizer),
                file_name(&o.swapper),
                file_name(&o.source)
            )
        }),
        (longest >= Chain::Enhance).then(|| format!("enhancer {}", file_name(&o.enhancer))),
    ];
    let props: Vec<String> =
        [("dlcdetect", &o.detect_props), ("dlcswap", &o.swap_props), ("dlcenhance", &o.enhance_props)]
            .iter()
            .filter(|(_, p)| !p.is_empty())
            .map(|(e, p)| format!("{e} {}", p.join(" ")))
            .collect();
    let mut report = format!(
        "bench run, {}; CPU {}; GPU {}; {}{}\n\
         plugin {} (version {}); execution-provider={}{}\n\
         {}; picture {}; {} frames after {} warm-up (long run {} buffers, short run {}); {}; {}\n\n",
        utc_now(),
        cpu_model(),
        gpu_name.as_deref().unwrap_or("none"),
        gst::version_string(),
        std::env::var("ORT_DYLIB_PATH").map(|p| format!("; ORT_DYLIB_PATH {p}")).unwrap_or_default(),
        o.plugin.display(),
        plugin.version(),
        o.provider,
        if props.is_empty() { String::new() } else { format!("; extra properties: {}", props.join("; ")) },
        models.into_iter().flatten().collect::<Vec<_>>().join(", "),
        file_name(&o.picture),
        o.frames,
        o.warmup,
        o.warmup + o.frames,
        o.warmup,
        match o.pace {
            0 => "the source runs free".to_string(),
            fps => format!("a live source at {fps} fps"),
        },
        match (o.feed, o.cuda_memory) {
            (Feed::Picture, false) => "frames from imagefreeze in host memory".to_string(),
            (Feed::Picture, true) => "frames from imagefreeze uploaded by cudaupload, in CUDA memory".to_string(),
            (Feed::H264, false) => format!("frames decoded by {} from an H.264 clip, in host memory", o.decoder),
            (Feed::H264, true) => format!("frames decoded by {} from an H.264 clip, in CUDA memory", o.decoder),
        }
    );
    report += "| chain | frame | faces | fps | steady fps | frame p50 / p99 ms | latency p50 / p99 ms | CPU ms/frame | GPU % |\n";
    report += "|---|---|---|---|---|---|---|---|---|\n";
    let picture = open_picture(&o.picture)?;
    let frame_path = |(w, h): (u32, u32), faces: u32| scratch.path().join(format!("frame-{w}x{h}-{faces}.png"));
    let clip_path = |(w, h): (u32, u32), faces: u32, buffers: usize| {
        scratch.path().join(format!("clip-{w}x{h}-{faces}-{buffers}.mp4"))
    };
    for &size in &o.sizes {
        for &faces in &o.faces {
            write_frame(&picture, size, faces, &frame_path(size, faces))?;
            if o.feed == Feed::H264 {
                for buffers in [o.warmup, o.warmup + o.frames] {
                    encode_clip(&frame_path(size, faces), buffers, &clip_path(size, faces, buffers))?;
                }
            }
        }
    }
    let source =
        |size, faces, buffers| o.source_launch(&frame_path(size, faces), &clip_path(size, faces, buffers), buffers);

    let (size0, faces0) = (o.sizes[0], o.faces[0]);
    let priming = run_pipeline(&source(size0, faces0, o.warmup), &o.chain_launch(longest, faces0), o.warmup, 0, None)?;
    eprintln!("priming run ({} chain, not measured): {:.1} s", longest.name(), priming.wall.as_secs_f64());
    print!("{report}");
    let _ = std::io::stdout().flush();

    let mut notes = Vec::new();
    let gpu_sampled = gpu_name.is_some().then_some(gpu);
    for &chain in &o.chains {
        for &size in &o.sizes {
            for &faces in &o.faces {
                let launch = o.chain_launch(chain, faces);
                let label = format!("{} | {}x{} | {faces}", chain.name(), size.0, size.1);
                eprintln!("{} {}x{} {faces} face(s): {launch}", chain.name(), size.0, size.1);
                let short = run_pipeline(&source(size, faces, o.warmup), &launch, o.warmup, usize::MAX, None)?;
                let (buffers, warmup) = (o.warmup + o.frames, o.warmup);
                let long = run_pipeline(&source(size, faces, buffers), &launch, buffers, warmup, gpu_sampled)?;
                let row = table_row(&label, &short, &long, o.frames, o.warmup);
                println!("{row}");
                let _ = std::io::stdout().flush();
                report += &row;
                report += "\n";
                notes.push(RowNotes {
                    label: label.replace(" | ", " "),
                    providers: long.providers,
                    warnings: short.warnings.into_iter().chain(long.warnings).collect(),
                    walls: (short.wall, long.wall),
                    threads: long
                        .threads
                        .iter()
                        .map(|(name, t)| (name.clone(), t.as_secs_f64() * 1e3 / (o.warmup + o.frames) as f64))
                        .collect(),
                });
            }
        }
    }
    let notes = format!(
        "\nchains: detect = dlcdetect; swap = dlcdetect ! queue ! dlcswap; enhance = dlcdetect ! queue ! dlcswap ! queue ! dlcenhance\n{}",
        notes_text(&notes)
    );
    print!("{notes}");
    report += &notes;
    if let Some(out) = &o.markdown_out {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .and_then(|mut f| writeln!(f, "\n{report}"))
            .map_err(|e| format!("cannot append to {}: {e}", out.display()))?;
    }
    Ok(())
}

/// `bench streams`: the options of `run` plus `--streams`, `--video` and `--decoder`.
fn streams_command(args: &[String]) -> Result<(), String> {
    let (mut counts, mut video, mut decoder) = (Vec::new(), None, "avdec_h264".to_string());
    let mut rest = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (arg.as_str(), None),
        };
        if !matches!(name, "--streams" | "--video" | "--decoder") {
            rest.push(arg.clone());
            continue;
        }
        let value = inline.or_else(|| args.next().cloned()).ok_or(format!("{name} needs a value"))?;
        match name {
            "--streams" => counts = parse_list(&value, |v| parse_number::<usize>("streams", v))?,
            "--video" => video = Some(existing_file(Path::new(&value), "video", "")?),
            _ => decoder = value,
        }
    }
    if counts.is_empty() || counts.contains(&0) {
        return Err("--streams LIST is required, each count at least 1 (e.g. --streams 1,4,16)".into());
    }
    if !rest.iter().any(|a| a.starts_with("--chains")) {
        rest.extend(["--chains".to_string(), "swap".to_string()]);
    }
    let o = RunOptions::parse(&rest)?;
    let longest = o.chains.iter().copied().max().unwrap_or(Chain::Swap);
    let scratch = tempfile::tempdir().map_err(|e| format!("cannot create a temporary directory: {e}"))?;
    // SAFETY: single-threaded here; nothing reads the environment concurrently.
    unsafe { std::env::set_var("GST_REGISTRY", scratch.path().join("registry.bin")) };
    let plugin = load_plugin(&o.plugin, longest.factories())?;
    let source = match video {
        Some(file) => streams::StreamSource::Video { file, decoder },
        None => streams::StreamSource::Picture,
    };
    let gpu = gpu_name(o.gpu_id.unwrap_or(0));
    let header = format!(
        "bench streams, {}; CPU {}; GPU {}; {}\nplugin {} (version {}); execution-provider={}; chain {} ({}x{}, {} face(s)); {} frames after {} warm-up per stream; swapper {}; source {}\n\n",
        utc_now(),
        cpu_model(),
        gpu.as_deref().unwrap_or("none"),
        gst::version_string(),
        o.plugin.display(),
        plugin.version(),
        o.provider,
        longest.name(),
        o.sizes[0].0,
        o.sizes[0].1,
        o.faces[0],
        o.frames,
        o.warmup,
        file_name(&o.swapper),
        match &source {
            streams::StreamSource::Picture => format!("frozen {}", file_name(&o.picture)),
            streams::StreamSource::Video { file, decoder } => format!("{} through {decoder}", file_name(file)),
        }
    );
    print!("{header}");
    let table = streams::run_streams(&o, &counts, &source, scratch.path())?;
    if let Some(out) = &o.markdown_out {
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(out)
            .and_then(|mut f| writeln!(f, "\n{header}{table}"))
            .map_err(|e| format!("cannot append to {}: {e}", out.display()))?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Overhead

/// Median time of `f` over `runs` calls.
fn median(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// Five keypoints of an upright face whose eye distance is `eyes` pixels, centred in the frame.
fn face_keypoints(width: usize, height: usize, eyes: f64) -> [[f32; 2]; 5] {
    let t = template(112);
    let scale = eyes / (t[1][0] - t[0][0]);
    let (cx, cy) = (width as f64 / 2.0 - 56.0 * scale, height as f64 / 2.0 - 56.0 * scale);
    t.map(|[x, y]| [(cx + x * scale) as f32, (cy + y * scale) as f32])
}

fn overhead() -> Result<(), String> {
    const RUNS: usize = 51;
    gstdlc::runtime::environment().map_err(|e| e.to_string())?;
    println!("Per face, outside the model run (median of {RUNS}); face height about 40 % of the frame");
    println!(
        "| frame | swap: align+crop+tensor | swap: output | mask insightface | paste insightface | paste ellipse | swap total (insightface) | enhance: align+crop+tensor | enhance: output | paste ramp | enhance total |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let float = TensorElementType::Float32;
    for (w, h) in SIZES {
        let mut frame: Vec<u8> = (0..w * h * 3).map(|i| ((i * 7) % 251) as u8).collect();
        let kps = face_keypoints(w, h, h as f64 * 0.15);
        let mut view = FrameViewMut::new(
            PixelFormat::Rgb,
            w,
            h,
            [&mut frame, &mut [], &mut []],
            [w * 3, 0, 0],
            YuvMatrix::Bt601,
            false,
        )
        .map_err(|e| e.to_string())?;
        let mut backend = Backend::cpu();
        let mut input = backend.tensor(&[1, 3, 128, 128], float)?;
        let output = random_output(&backend, 128, 0.0, 1.0)?;
        let mut crop = Crop::default();
        let mut m = estimate_norm(&kps, 128).ok_or("alignment")?;
        let rect = paste::crop_region(&m, 128, w, h);
        let region = backend.load_region(&view.as_view(), rect)?;
        let pre = median(RUNS, || {
            m = estimate_norm(&kps, 128).expect("alignment");
            let _ = backend.warp_to_input(&view.as_view(), &region, &m, inswapper::NORMALIZATION, &mut input);
        });
        let post = median(RUNS, || {
            let _ = backend.decode_output(&output, inswapper::DECODE, 128, &mut crop);
        });
        let mut mask = CropMask::default();
        let build = median(RUNS, || mask = CropMask::insightface(&m, 128, w, h).expect("mask"));
        let ellipse = CropMask::ellipse(128, &mut Default::default());
        let mut paste_with = |mask: &CropMask| {
            median(RUNS, || {
                let _ = backend.paste(&mut view, &region, &mut crop, mask, &m, 1.0);
            })
        };
        let (insightface, ellipse) = (paste_with(&mask), paste_with(&ellipse));

        let ffhq = ffhq_template(512);
        let src = kps.map(|[x, y]| [x as f64, y as f64]);
        let mut input512 = backend.tensor(&[1, 3, 512, 512], float)?;
        let output512 = random_output(&backend, 512, -1.0, 2.0)?;
        let mut m512 = umeyama(&src, &ffhq).ok_or("alignment")?;
        let ramp = CropMask::ramp(512);
        let region512 = backend.load_region(&view.as_view(), ramp.frame_region(&m512, w, h))?;
        let enhance_pre = median(RUNS, || {
            m512 = umeyama(&src, &ffhq).expect("alignment");
            let _ = backend.warp_to_input(&view.as_view(), &region512, &m512, enhancer::NORMALIZATION, &mut input512);
        });
        let mut restored = Crop::default();
        let enhance_post = median(RUNS, || {
            let _ = backend.decode_output(&output512, enhancer::DECODE, 512, &mut restored);
        });
        let paste_ramp = median(RUNS, || {
            let _ = backend.paste(&mut view, &region512, &mut restored, &ramp, &m512, 0.8);
        });
        println!(
            "| {w}x{h} | {pre:.2} | {post:.2} | {build:.3} | {insightface:.2} | {ellipse:.2} | {:.2} | {enhance_pre:.2} | {enhance_post:.2} | {paste_ramp:.2} | {:.2} |",
            pre + post + build + insightface,
            enhance_pre + enhance_post + paste_ramp
        );
    }
    letterbox_table()
}

/// The detector's letterbox into SCRFD's 640×640 input, per frame, for a packed 3-byte, a packed
/// 4-byte, the two 4:2:0 and a packed 4:2:2 layout.
fn letterbox_table() -> Result<(), String> {
    const RUNS: usize = 101;
    const DET: usize = 640;
    println!("\nLetterbox into {DET}x{DET} per frame, ms (median of {RUNS})");
    println!("| frame | format | float NCHW blob (CPU backend) | rows staged (GPU backend) | staged MB |");
    println!("|---|---|---|---|---|");
    let mut scratch = LetterboxScratch::default();
    let mut blob = vec![0.0f32; 3 * DET * DET];
    for (w, h) in SIZES {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let pattern = |len: usize| -> Vec<u8> { (0..len).map(|i| ((i * 7) % 251) as u8).collect() };
        let layouts: [(PixelFormat, [Vec<u8>; 3], [usize; 3]); 5] = [
            (PixelFormat::Rgb, [pattern(w * h * 3), vec![], vec![]], [w * 3, 0, 0]),
            (PixelFormat::Bgrx, [pattern(w * h * 4), vec![], vec![]], [w * 4, 0, 0]),
            (PixelFormat::I420, [pattern(w * h), pattern(cw * ch), pattern(cw * ch)], [w, cw, cw]),
            (PixelFormat::Nv12, [pattern(w * h), pattern(2 * cw * ch), vec![]], [w, 2 * cw, 0]),
            (PixelFormat::Yuy2, [pattern(4 * cw * h), vec![], vec![]], [4 * cw, 0, 0]),
        ];
        for (format, planes, strides) in &layouts {
            let view =
                FrameView::new(*format, w, h, [&planes[0], &planes[1], &planes[2]], *strides, YuvMatrix::Bt601, false)?;
            let to_blob = median(RUNS, || {
                let _ = letterbox_blob(&mut scratch, &view, DET, DET, (127.5, 1.0 / 128.0), &mut blob);
            });
            let plan = LetterboxPlan::new(&view, DET, DET)?;
            let mut staged = vec![0u8; plan.staged_len];
            let to_rows = median(RUNS, || {
                let _ = plan.stage(&view, &mut staged);
            });
            let mb = plan.staged_len as f64 / 1e6;
            println!("| {w}x{h} | {format:?} | {to_blob:.2} | {to_rows:.2} | {mb:.2} |");
        }
    }
    Ok(())
}

/// A host model output `[1, 3, size, size]` of values in `[offset, offset + span)`.
fn random_output(backend: &Backend, size: usize, offset: f32, span: f32) -> Result<ort::value::DynTensor, String> {
    let mut tensor = backend.tensor(&[1, 3, size, size], TensorElementType::Float32)?;
    let (_, values) = tensor.try_extract_tensor_mut::<f32>().map_err(|e| e.to_string())?;
    for (i, v) in values.iter_mut().enumerate() {
        *v = offset + span * ((i * 7919) % 997) as f32 / 997.0;
    }
    Ok(tensor)
}
