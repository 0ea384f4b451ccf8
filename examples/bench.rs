// SPDX-License-Identifier: MPL-2.0
//! The project's speed-measurement tool. It prints figures and asserts nothing; BENCHMARKS.md
//! keeps the commands and the latest results. `bench --help` documents every option.
//!
//!   bench run [OPTIONS]
//!       Times the elements in real pipelines, always the same way so that figures compare
//!       across runs, machines, plugin builds and other implementations:
//!       `filesrc location=FRAME.png ! pngdec ! imagefreeze num-buffers=N ! CHAIN ! fakesink
//!       sync=false` (or a decoded H.264 clip of the frame, in host or CUDA memory: `--feed`,
//!       `--memory`), one fresh pipeline of N = warm-up + frames buffers per row, all in one
//!       process. The plugin is loaded from a file (`--plugin`), so one bench binary can measure
//!       an older and a newer build. Prints a markdown table: time to the first frame, steady
//!       fps, frame time p50/p99, input-to-output latency p50/p99, process CPU time per frame and
//!       mean GPU utilisation, all but the first after the warm-up.
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

#[path = "bench/measure.rs"]
mod measure;
#[path = "bench/median.rs"]
mod median;
#[path = "bench/options.rs"]
mod options;
#[path = "bench/overhead.rs"]
mod overhead;
#[path = "bench/streams.rs"]
mod streams;

use measure::*;
use median::median;
use options::*;
use overhead::overhead;

const SIZES: [(usize, usize); 2] = [(1280, 720), (1920, 1080)];

const USAGE: &str = "\
usage: bench run [OPTIONS]
       bench streams --streams LIST [--video FILE.mp4 [--decoder D]] [OPTIONS of run]
       bench frame [--picture P.png] [--size WxH] [--faces 1|4] --out F.png
       bench overhead
       bench --help

bench run: times `filesrc location=FRAME.png ! pngdec ! imagefreeze num-buffers=N ! CHAIN !
fakesink sync=false` (or, with --feed h264, N frames decoded from a clip) for every chain, frame
size and face count, each as one run of N = warm-up + frames buffers in a fresh pipeline, all in
one process, after one unmeasured priming run that pays the process's one-time start-up (library
loading, GPU context).
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
  first frame s  from building the pipeline to the first buffer reaching fakesink (start-up:
                 models opened and warmed up)
  steady fps     buffers reaching fakesink after warm-up / the time between the first and the
                 last of them (no start-up time in it)
  frame p50/p99  intervals between buffers reaching fakesink's sink pad, after warm-up
  latency        per buffer, leaving imagefreeze's src pad -> reaching fakesink's sink pad
                 (matched by PTS), after warm-up
  CPU ms/frame   user+sys time of the process (getrusage(RUSAGE_SELF), every thread) between the
                 first buffer after warm-up and the last, per frame between them
  GPU %          mean of nvidia-smi utilization.gpu sampled every 100 ms after warm-up; '–'
                 without nvidia-smi
After the table, per row: the CPU time by thread name per frame after warm-up (GStreamer's
streaming threads are named after their element and pad, dlcswap's lanes dlcswap-lane-N; ONNX
Runtime's pool and the main thread share the program's name), from the bus loop's first look
past the warm-up (every 20 ms) to the end of the run.
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
         {}; picture {}; {} frames after {} warm-up ({} buffers a run); {}; {}\n\n",
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
    report += "| chain | frame | faces | first frame s | steady fps | frame p50 / p99 ms | latency p50 / p99 ms | CPU ms/frame | GPU % |\n";
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
    let priming =
        run_pipeline(&source(size0, faces0, o.warmup), &o.chain_launch(longest, faces0), o.warmup, o.warmup, None)?;
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
                let buffers = o.warmup + o.frames;
                let run = run_pipeline(&source(size, faces, buffers), &launch, buffers, o.warmup, gpu_sampled)?;
                let row = table_row(&label, &run, o.warmup);
                println!("{row}");
                let _ = std::io::stdout().flush();
                report += &row;
                report += "\n";
                notes.push(RowNotes {
                    label: label.replace(" | ", " "),
                    providers: run.providers,
                    warnings: run.warnings,
                    wall: run.wall,
                    threads: run.threads,
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
