// SPDX-License-Identifier: MPL-2.0
//! Soak test: pushes many frames with a face through `dlcdetect ! dlcswap ! dlcenhance` and fails
//! when the process's resident memory grew by the allowed share or more between the end of the
//! warm-up and the last frame. `make soak` runs it; RELIABILITY.md keeps the latest figures.
//!
//!   soak [--frames N] [--warmup N] [--size WxH] [--max-growth PCT] [--provider NAME]
//!
//! The frame is a 1080p grey picture with one face: the astronaut portrait and the real SCRFD
//! detector from ../shared/testdata (`$DLC_TESTDATA_DIR`) with Newton as the source face when
//! those are present, otherwise a white block that the fixture detector takes for a face (and a
//! source picture with the same block). ArcFace, inswapper and the restorer are always the
//! fixture models from `$DLC_FIXTURES_DIR`. The frame goes in once through appsrc and
//! `imagefreeze` repeats it, so every frame is the same one: anything that grows is ours.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use gst::prelude::*;
use gstdlc::{FaceFlags, FaceMeta};
use parking_lot::Mutex;

const USAGE: &str = "usage: soak [--frames N] [--warmup N] [--size WxH] [--max-growth PCT] [--provider NAME]
  --frames N        frames after the warm-up (default 20000)
  --warmup N        frames before the first memory reading (default 300)
  --size WxH        frame size (default 1920x1080)
  --max-growth PCT  fail when RSS grew by this many percent or more (default 5)
  --provider NAME   execution-provider of every element (default cpu)
Needs DLC_FIXTURES_DIR (arcface.onnx, inswapper.onnx, gfpgan.onnx, scrfd.onnx) and ORT_DYLIB_PATH.";

/// Frames between two progress lines.
const REPORT_EVERY: u64 = 1000;

struct Options {
    frames: u64,
    warmup: u64,
    size: (usize, usize),
    max_growth: f64,
    provider: String,
}

fn parse_options() -> Result<Options, String> {
    let mut options =
        Options { frames: 20_000, warmup: 300, size: (1920, 1080), max_growth: 5.0, provider: "cpu".into() };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_string());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |what: &str| format!("{flag}: expected {what}, found '{value}'");
        match flag.as_str() {
            "--frames" => options.frames = value.parse().map_err(|_| bad("a frame count"))?,
            "--warmup" => options.warmup = value.parse().map_err(|_| bad("a frame count"))?,
            "--max-growth" => options.max_growth = value.parse().map_err(|_| bad("a percentage"))?,
            "--provider" => options.provider = value,
            "--size" => {
                let (w, h) = value.split_once('x').ok_or_else(|| bad("WxH"))?;
                options.size = (w.parse().map_err(|_| bad("WxH"))?, h.parse().map_err(|_| bad("WxH"))?);
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if options.warmup == 0 || options.frames == 0 || options.size.0 < 64 || options.size.1 < 64 {
        return Err(format!("--frames and --warmup must be at least 1, --size at least 64x64\n{USAGE}"));
    }
    Ok(options)
}

/// The process's resident set size in KiB (`VmRSS` of /proc/self/status).
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| s.lines().find_map(|l| l.strip_prefix("VmRSS:")?.trim().strip_suffix("kB")?.trim().parse().ok()))
        .unwrap_or(0)
}

fn fixture(name: &str) -> Result<PathBuf, String> {
    let dir = std::env::var_os("DLC_FIXTURES_DIR").ok_or("DLC_FIXTURES_DIR is not set (run `make soak`)")?;
    let path = Path::new(&dir).join(name);
    path.is_file()
        .then_some(path.clone())
        .ok_or_else(|| format!("fixture {} is missing (run `make fixtures`)", path.display()))
}

fn testdata(relative: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("DLC_TESTDATA_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/testdata"));
    let path = dir.join(relative);
    path.is_file().then_some(path)
}

/// What the run detects and swaps: the frame (packed RGB), the detector and the source picture.
struct Scene {
    frame: Vec<u8>,
    detector: PathBuf,
    source: PathBuf,
    what: String,
}

/// A grey frame with the astronaut portrait in the middle (real detector), or with a white block
/// of a third of the frame height / 11 that the fixture detector finds once letterboxed to 640.
fn scene((w, h): (usize, usize), scratch: &Path) -> Result<Scene, String> {
    let mut frame = vec![96u8; w * h * 3];
    let mut put = |x: usize, y: usize, rgb: [u8; 3]| {
        if x < w && y < h {
            frame[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&rgb);
        }
    };
    if let (Some(detector), Some(portrait), Some(source)) =
        (testdata("models/det_2.5g.onnx"), testdata("media/astronaut.png"), testdata("media/newton.png"))
    {
        let picture = image::open(&portrait).map_err(|e| format!("{}: {e}", portrait.display()))?.to_rgb8();
        let (x0, y0) =
            (w.saturating_sub(picture.width() as usize) / 2, h.saturating_sub(picture.height() as usize) / 2);
        for (x, y, p) in picture.enumerate_pixels() {
            put(x0 + x as usize, y0 + y as usize, p.0);
        }
        return Ok(Scene {
            frame,
            detector,
            source,
            what: "astronaut portrait, real det_2.5g detector, newton.png source".into(),
        });
    }
    // The fixture detector's face: a white block 32 px across once the frame is letterboxed to
    // 640 px (see tests/dlcswap.rs).
    let block = 32 * w.max(h).div_ceil(640);
    for y in h / 2..h / 2 + block {
        for x in w / 2..w / 2 + block {
            put(x, y, [255; 3]);
        }
    }
    let source = scratch.join("block-face.png");
    let mut picture = image::RgbImage::new(640, 640);
    for y in 256..288 {
        for x in 320..352 {
            picture.put_pixel(x, y, image::Rgb([255, 255, 255]));
        }
    }
    picture.save(&source).map_err(|e| format!("{}: {e}", source.display()))?;
    Ok(Scene {
        frame,
        detector: fixture("scrfd.onnx")?,
        source,
        what: "white block, fixture detector (../shared/testdata absent)".into(),
    })
}

/// What the sink pad's probe records.
#[derive(Default)]
struct Progress {
    frames: AtomicU64,
    finished_faces: AtomicU64,
    readings: Mutex<Readings>,
}

#[derive(Default)]
struct Readings {
    start: Option<(u64, Instant)>,
    end: Option<(u64, Instant)>,
}

fn run(options: &Options) -> Result<bool, String> {
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    gstdlc::plugin_register_static().map_err(|e| format!("the dlc plugin does not register: {e}"))?;
    let scratch = tempfile::tempdir().map_err(|e| format!("scratch folder: {e}"))?;
    let (w, h) = options.size;
    let scene = scene(options.size, scratch.path())?;
    let total = options.warmup + options.frames;
    let provider = &options.provider;
    let description = format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={w},height={h},framerate=30/1 \
         ! imagefreeze num-buffers={total} ! dlcdetect model-file={detector} execution-provider={provider} \
         ! dlcswap source={source} detector-model={detector} recognition-model={arcface} model-file={swapper} \
           execution-provider={provider} \
         ! dlcenhance model-file={enhancer} execution-provider={provider} ! fakesink name=sink sync=false",
        detector = scene.detector.display(),
        source = scene.source.display(),
        arcface = fixture("arcface.onnx")?.display(),
        swapper = fixture("inswapper.onnx")?.display(),
        enhancer = fixture("gfpgan.onnx")?.display(),
    );
    println!("soak: {total} frames of {w}x{h} ({} warm-up): {}", options.warmup, scene.what);
    println!("soak: {description}");
    let pipeline = gst::parse::launch(&description)
        .map_err(|e| format!("cannot build the pipeline: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "not a pipeline".to_string())?;

    let progress = Arc::new(Progress::default());
    let seen = progress.clone();
    let warmup = options.warmup;
    let started = Instant::now();
    let sink_pad = pipeline.by_name("sink").and_then(|s| s.static_pad("sink")).ok_or("no sink pad")?;
    sink_pad.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
        let Some(gst::PadProbeData::Buffer(buffer)) = &info.data else { return gst::PadProbeReturn::Ok };
        let finished = buffer.meta::<FaceMeta>().is_some_and(|m| {
            m.faces().iter().any(|f| f.flags.contains(FaceFlags::SWAPPED) && f.flags.contains(FaceFlags::ENHANCED))
        });
        if finished {
            seen.finished_faces.fetch_add(1, Ordering::Relaxed);
        }
        let n = seen.frames.fetch_add(1, Ordering::Relaxed) + 1;
        if n == warmup || n == total {
            let reading = Some((rss_kib(), Instant::now()));
            let mut readings = seen.readings.lock();
            if n == warmup {
                readings.start = reading;
            }
            if n == total {
                readings.end = reading;
            }
        }
        if n % REPORT_EVERY == 0 {
            let secs = started.elapsed().as_secs_f64();
            println!("soak: frame {n}: RSS {} MiB, {:.1} fps", rss_kib() / 1024, n as f64 / secs);
        }
        gst::PadProbeReturn::Ok
    });

    let src = pipeline.by_name("src").and_then(|s| s.downcast::<gst_app::AppSrc>().ok()).ok_or("no appsrc")?;
    pipeline.set_state(gst::State::Playing).map_err(|e| format!("the pipeline does not play: {e}"))?;
    src.push_buffer(gst::Buffer::from_mut_slice(scene.frame)).map_err(|e| format!("appsrc: {e}"))?;
    src.end_of_stream().map_err(|e| format!("appsrc: {e}"))?;

    let bus = pipeline.bus().ok_or("no bus")?;
    let mut outcome = Ok(());
    for message in bus.iter_timed(gst::ClockTime::NONE) {
        match message.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => {
                outcome = Err(format!("pipeline error: {} ({:?})", e.error(), e.debug()));
                break;
            }
            gst::MessageView::Warning(w) => println!("soak: warning: {} ({:?})", w.error(), w.debug()),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).map_err(|e| format!("the pipeline does not stop: {e}"))?;
    outcome?;

    let frames = progress.frames.load(Ordering::Relaxed);
    let finished = progress.finished_faces.load(Ordering::Relaxed);
    let readings = progress.readings.lock();
    let (Some((rss_start, t_start)), Some((rss_end, t_end))) = (readings.start, readings.end) else {
        return Err(format!("only {frames} of {total} frames reached the sink"));
    };
    let growth = (rss_end as f64 - rss_start as f64) / rss_start as f64 * 100.0;
    let measured = (t_end - t_start).as_secs_f64();
    println!(
        "soak: {frames} frames in {:.0} s ({:.1} fps after the warm-up); {finished} frames with a swapped and \
         enhanced face",
        started.elapsed().as_secs_f64(),
        options.frames as f64 / measured
    );
    println!(
        "soak: RSS after {warmup} warm-up frames {} KiB, after frame {total} {} KiB: {growth:+.2} % (limit {} %)",
        rss_start, rss_end, options.max_growth
    );
    if finished != frames {
        return Err(format!("only {finished} of {frames} frames came out with a swapped and enhanced face"));
    }
    Ok(growth < options.max_growth)
}

fn main() -> ExitCode {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(true) => {
            println!("soak: PASS");
            ExitCode::SUCCESS
        }
        Ok(false) => {
            println!("soak: FAIL: resident memory grew by the limit or more");
            ExitCode::FAILURE
        }
        Err(message) => {
            eprintln!("soak: FAIL: {message}");
            ExitCode::FAILURE
        }
    }
}
