// SPDX-License-Identifier: MPL-2.0
//! Memory across NULL → PLAYING → NULL cycles: runs `appsrc ! imagefreeze ! dlcdetect ! dlcswap !
//! dlcenhance ! fakesink` on the CPU with the fixture models, a few frames per cycle, and prints
//! after each cycle (back in NULL) the process's resident size, its threads, glibc's arenas and
//! what glibc holds in use and free, then the resident size after cycle 10 and the least, mean and
//! most after the later ones. RELIABILITY.md keeps the figures.
//!
//!   cycles [--cycles N] [--size WxH] [--fresh]
//!
//! `--fresh` makes a new pipeline for every cycle instead of restarting one. Needs DLC_FIXTURES_DIR
//! (scrfd.onnx, arcface.onnx, inswapper.onnx, gfpgan.onnx) and ORT_DYLIB_PATH.

use std::path::PathBuf;
use std::process::ExitCode;

use gst::prelude::*;

const USAGE: &str = "usage: cycles [--cycles N] [--size WxH] [--fresh]
  --cycles N   NULL -> PLAYING -> NULL cycles (default 100, at least 11)
  --size WxH   frame size (default 640x480)
  --fresh      a new pipeline for every cycle";

/// The cycle whose reading the growth is measured from.
const BASELINE_CYCLE: usize = 10;

struct Options {
    cycles: usize,
    size: (usize, usize),
    fresh: bool,
}

fn parse_options() -> Result<Options, String> {
    let mut options = Options { cycles: 100, size: (640, 480), fresh: false };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--fresh" {
            options.fresh = true;
            continue;
        }
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.to_string());
        }
        let value = args.next().ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let bad = |what: &str| format!("{flag}: expected {what}, found '{value}'");
        match flag.as_str() {
            "--cycles" => options.cycles = value.parse().map_err(|_| bad("a cycle count"))?,
            "--size" => {
                let (w, h) = value.split_once('x').ok_or_else(|| bad("WxH"))?;
                options.size = (w.parse().map_err(|_| bad("WxH"))?, h.parse().map_err(|_| bad("WxH"))?);
            }
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if options.cycles <= BASELINE_CYCLE || options.size.0 < 64 || options.size.1 < 64 {
        return Err(format!("--cycles must be more than {BASELINE_CYCLE}, --size at least 64x64\n{USAGE}"));
    }
    Ok(options)
}

fn fixture(name: &str) -> Result<PathBuf, String> {
    let dir = std::env::var_os("DLC_FIXTURES_DIR").ok_or("DLC_FIXTURES_DIR is not set")?;
    let path = PathBuf::from(dir).join(name);
    path.is_file()
        .then_some(path.clone())
        .ok_or_else(|| format!("fixture {} is missing (run `make fixtures`)", path.display()))
}

/// Resident set size in KiB, from /proc/self/statm (pages).
fn rss_kib() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm.split_whitespace().nth(1).and_then(|p| p.parse().ok()).unwrap_or(0);
    // SAFETY: sysconf has no preconditions.
    let page_size = unsafe { libc::sysconf(libc::_SC_PAGESIZE) }.max(1) as u64;
    pages * page_size / 1024
}

fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|tasks| tasks.count()).unwrap_or(0)
}

/// glibc's arenas (the `<heap>` entries of malloc_info) and the bytes it holds in use and free.
fn allocator_state() -> (usize, u64, u64) {
    let mut text: *mut libc::c_char = std::ptr::null_mut();
    let mut length: libc::size_t = 0;
    // SAFETY: open_memstream hands back a buffer that malloc_info fills through the stream; it is
    // read after fclose (which finishes it) and freed once.
    let arenas = unsafe {
        let stream = libc::open_memstream(&mut text, &mut length);
        if stream.is_null() {
            0
        } else {
            libc::malloc_info(0, stream);
            libc::fclose(stream);
            let xml = std::ffi::CStr::from_ptr(text).to_string_lossy().matches("<heap nr=").count();
            libc::free(text.cast());
            xml
        }
    };
    // SAFETY: mallinfo2 only reads the allocator's counters.
    let info = unsafe { libc::mallinfo2() };
    (arenas, info.uordblks as u64 / 1024, info.fordblks as u64 / 1024)
}

/// A black frame with a white block the fixture detector takes for a face (see soak.rs), and a
/// source picture with the same block.
fn frame_and_source((w, h): (usize, usize), scratch: &std::path::Path) -> Result<(Vec<u8>, PathBuf), String> {
    let mut frame = vec![96u8; w * h * 3];
    let block = 32 * w.max(h).div_ceil(640);
    for y in h / 2..(h / 2 + block).min(h) {
        for x in w / 2..(w / 2 + block).min(w) {
            frame[(y * w + x) * 3..(y * w + x) * 3 + 3].copy_from_slice(&[255; 3]);
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
    Ok((frame, source))
}

/// One cycle: PLAYING, the frame in, five frames out, EOS, NULL.
fn cycle(pipeline: &gst::Pipeline, frame: &[u8]) -> Result<(), String> {
    let src = pipeline.by_name("src").and_then(|s| s.downcast::<gst_app::AppSrc>().ok()).ok_or("no appsrc")?;
    pipeline.set_state(gst::State::Playing).map_err(|e| format!("the pipeline does not play: {e}"))?;
    src.push_buffer(gst::Buffer::from_slice(frame.to_vec())).map_err(|e| format!("appsrc: {e}"))?;
    src.end_of_stream().map_err(|e| format!("appsrc: {e}"))?;
    let bus = pipeline.bus().ok_or("no bus")?;
    let mut outcome = Err("no EOS within 60 s".to_string());
    for message in bus.iter_timed(gst::ClockTime::from_seconds(60)) {
        match message.view() {
            gst::MessageView::Eos(_) => {
                outcome = Ok(());
                break;
            }
            gst::MessageView::Error(e) => {
                outcome = Err(format!("pipeline error: {} ({:?})", e.error(), e.debug()));
                break;
            }
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).map_err(|e| format!("the pipeline does not stop: {e}"))?;
    outcome
}

fn run(options: &Options) -> Result<(), String> {
    gst::init().map_err(|e| format!("GStreamer: {e}"))?;
    gstdlc::plugin_register_static().map_err(|e| format!("the dlc plugin does not register: {e}"))?;
    let scratch = tempfile::tempdir().map_err(|e| format!("scratch folder: {e}"))?;
    let (w, h) = options.size;
    let (frame, source) = frame_and_source(options.size, scratch.path())?;
    let detector = fixture("scrfd.onnx")?;
    let description = format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={w},height={h},framerate=30/1 \
         ! imagefreeze num-buffers=5 ! dlcdetect model-file={detector} execution-provider=cpu \
         ! dlcswap source={source} detector-model={detector} recognition-model={arcface} model-file={swapper} \
           execution-provider=cpu \
         ! dlcenhance model-file={enhancer} execution-provider=cpu ! fakesink sync=false",
        detector = detector.display(),
        source = source.display(),
        arcface = fixture("arcface.onnx")?.display(),
        swapper = fixture("inswapper.onnx")?.display(),
        enhancer = fixture("gfpgan.onnx")?.display(),
    );
    let build = || -> Result<gst::Pipeline, String> {
        gst::parse::launch(&description)
            .map_err(|e| format!("cannot build the pipeline: {e}"))?
            .downcast::<gst::Pipeline>()
            .map_err(|_| "not a pipeline".to_string())
    };
    println!(
        "cycles: {} cycles of {w}x{h}{}",
        options.cycles,
        if options.fresh { ", a new pipeline each" } else { "" }
    );
    println!("cycle  RSS KiB  threads  arenas  in use KiB  free KiB");
    let mut pipeline = build()?;
    let mut baseline = 0;
    let mut later = Vec::new();
    for n in 1..=options.cycles {
        if options.fresh && n > 1 {
            pipeline = build()?;
        }
        cycle(&pipeline, &frame).map_err(|e| format!("cycle {n}: {e}"))?;
        let rss = rss_kib();
        let (arenas, in_use, free) = allocator_state();
        println!("{n:5}  {rss:7}  {:7}  {arenas:6}  {in_use:10}  {free:8}", thread_count());
        match n {
            BASELINE_CYCLE => baseline = rss,
            n if n > BASELINE_CYCLE => later.push(rss),
            _ => {}
        }
    }
    let least = later.iter().min().copied().unwrap_or(0);
    let most = later.iter().max().copied().unwrap_or(0);
    let mean = later.iter().sum::<u64>() / later.len().max(1) as u64;
    println!(
        "cycles: RSS {baseline} KiB after cycle {BASELINE_CYCLE}; after cycles {}-{}: least {least}, mean {mean}, \
         most {most} KiB ({:+.1} MiB)",
        BASELINE_CYCLE + 1,
        options.cycles,
        (most as f64 - baseline as f64) / 1024.0
    );
    Ok(())
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
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("cycles: {message}");
            ExitCode::FAILURE
        }
    }
}
