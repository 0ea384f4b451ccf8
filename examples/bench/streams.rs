// SPDX-License-Identifier: MPL-2.0
//! `bench streams`: many streams through one process, as a service runs them. For each stream
//! count N, one pipeline holds N independent branches
//! `SOURCE ! CHAIN ! fakesink sync=false`, each with its own elements (and, today, its own model
//! sessions), all started together. Per N it prints aggregate and per-stream steady fps, latency,
//! process CPU per frame, GPU utilisation and memory, and each stream's time from PLAYING to its
//! first frame.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use gst::prelude::*;
use parking_lot::Mutex;

use super::{
    Chain, GpuSampler, RunOptions, STALL, launch_prop, message_text, open_picture, p50_p99, process_cpu_time, show,
    sorted_ms, write_frame,
};

/// Where each stream's frames come from.
pub enum StreamSource {
    /// The benchmark frame (`--picture`, `--sizes`' first size, `--faces`' first count), frozen.
    Picture,
    /// An H.264 MP4 file decoded by `decoder` (e.g. `nvh264dec ! cudadownload`, `avdec_h264`).
    Video { file: PathBuf, decoder: String },
}

/// What one stream's probes record.
#[derive(Default)]
struct StreamTimeline {
    left: std::collections::HashMap<u64, Instant>,
    arrivals: Vec<Instant>,
    latencies: Vec<Duration>,
}

/// The GPU memory in use before anything starts (MiB), to report what the streams add.
fn gpu_memory_now(gpu_id: u32) -> Option<f64> {
    let out = Command::new("nvidia-smi")
        .args(["--query-gpu=memory.used", "--format=csv,noheader,nounits", "-i", &gpu_id.to_string()])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    String::from_utf8_lossy(&out.stdout).trim().parse().ok()
}

/// Runs N streams at once for every N of `counts`; prints one table row per N.
pub fn run_streams(o: &RunOptions, counts: &[usize], source: &StreamSource, scratch: &Path) -> Result<String, String> {
    let chain = o.chains.iter().copied().max().unwrap_or(Chain::Swap);
    let faces = o.faces[0];
    let frame = scratch.join("streams-frame.png");
    if let StreamSource::Picture = source {
        write_frame(&open_picture(&o.picture)?, o.sizes[0], faces, &frame)?;
    }
    let buffers = o.warmup + o.frames;
    let source_launch = |i: usize| match source {
        StreamSource::Picture => {
            let pace = match o.pace {
                0 => String::new(),
                fps => format!(" is-live=true ! video/x-raw,framerate={fps}/1"),
            };
            format!(
                "filesrc {} ! pngdec ! imagefreeze name=src{i} num-buffers={buffers}{pace}",
                launch_prop("location", &frame)
            )
        }
        StreamSource::Video { file, decoder } => format!(
            "filesrc {} ! qtdemux ! h264parse ! {decoder} ! identity name=src{i}",
            launch_prop("location", file)
        ),
    };
    let mut table = String::from(
        "| streams | aggregate fps | per stream min / mean fps | latency p50 / p99 ms | CPU ms/frame | GPU % | \
         GPU MiB (added) | PLAYING → first frame s (first / last stream) |\n|---|---|---|---|---|---|---|---|\n",
    );
    print!("{table}");
    let gpu = o.gpu_id.unwrap_or(0);
    for &n in counts {
        let launch: Vec<String> = (0..n)
            .map(|i| {
                format!("{} ! {} ! fakesink name=sink{i} sync=false", source_launch(i), o.chain_launch(chain, faces))
            })
            .collect();
        let row = run_once(n, &launch.join("  "), o.warmup, gpu)?;
        println!("{row}");
        let _ = std::io::stdout().flush();
        table += &row;
        table += "\n";
    }
    Ok(table)
}

fn run_once(n: usize, launch: &str, warmup: usize, gpu: u32) -> Result<String, String> {
    let idle_memory = gpu_memory_now(gpu);
    let pipeline = gst::parse::launch(launch)
        .map_err(|e| format!("pipeline of {n} streams: {e}"))?
        .downcast::<gst::Pipeline>()
        .map_err(|_| "the launch line is not a pipeline")?;
    let timelines: Vec<Arc<Mutex<StreamTimeline>>> = (0..n).map(|_| Arc::default()).collect();
    let warmed = Arc::new(AtomicUsize::new(0));
    let pts_of = |info: &gst::PadProbeInfo| info.buffer().and_then(|b| b.pts()).map(gst::ClockTime::nseconds);
    for (i, timeline) in timelines.iter().enumerate() {
        let pad = |element: String, pad: &str| {
            pipeline.by_name(&element).and_then(|e| e.static_pad(pad)).ok_or(format!("no {element} {pad} pad"))
        };
        let left = timeline.clone();
        pad(format!("src{i}"), "src")?.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(pts) = pts_of(info) {
                left.lock().left.insert(pts, Instant::now());
            }
            gst::PadProbeReturn::Ok
        });
        let (arrived, warmed) = (timeline.clone(), warmed.clone());
        pad(format!("sink{i}"), "sink")?.add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            let now = Instant::now();
            let mut t = arrived.lock();
            if let Some(left) = pts_of(info).and_then(|pts| t.left.remove(&pts)) {
                t.latencies.push(now - left);
            }
            t.arrivals.push(now);
            if t.arrivals.len() == warmup {
                warmed.fetch_add(1, Ordering::SeqCst);
            }
            gst::PadProbeReturn::Ok
        });
    }
    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let started = Instant::now();
    let mut sampler = None;
    // CPU time and instant when every stream has passed its warm-up.
    let mut steady_from = None;
    let outcome = (|| {
        pipeline.set_state(gst::State::Playing).map_err(|_| {
            bus.pop_filtered(&[gst::MessageType::Error])
                .and_then(|msg| match msg.view() {
                    gst::MessageView::Error(e) => Some(message_text(msg.src(), &e.error(), e.debug().as_deref())),
                    _ => None,
                })
                .unwrap_or_else(|| "the pipeline does not start".to_string())
        })?;
        let mut last_progress = Instant::now();
        let mut seen = 0;
        loop {
            if steady_from.is_none() && warmed.load(Ordering::SeqCst) == n {
                steady_from = Some((Instant::now(), process_cpu_time()));
                sampler = GpuSampler::start(gpu).ok();
            }
            let total: usize = timelines.iter().map(|t| t.lock().arrivals.len()).sum();
            if total != seen {
                (seen, last_progress) = (total, Instant::now());
            } else if last_progress.elapsed() > STALL {
                return Err(format!("no frame for {} s after {total}", STALL.as_secs()));
            }
            let Some(msg) = bus.timed_pop(gst::ClockTime::from_mseconds(20)) else { continue };
            match msg.view() {
                gst::MessageView::Eos(_) => return Ok(()),
                gst::MessageView::Error(e) => return Err(message_text(msg.src(), &e.error(), e.debug().as_deref())),
                gst::MessageView::Warning(w) => {
                    eprintln!("  warning: {}", message_text(msg.src(), &w.error(), w.debug().as_deref()))
                }
                _ => {}
            }
        }
    })();
    let (end, end_cpu) = (Instant::now(), process_cpu_time());
    let (busy, memory) = sampler.map_or((None, None), GpuSampler::finish);
    let _ = pipeline.set_state(gst::State::Null);
    outcome.map_err(|e| format!("{n} streams: {e}"))?;

    let timelines: Vec<StreamTimeline> = timelines.iter().map(|t| std::mem::take(&mut *t.lock())).collect();
    let per_stream: Vec<f64> = timelines
        .iter()
        .filter_map(|t| {
            let (first, last) = (t.arrivals.get(warmup)?, t.arrivals.last()?);
            (last > first).then(|| (t.arrivals.len() - 1 - warmup) as f64 / (*last - *first).as_secs_f64())
        })
        .collect();
    // Aggregate: every stream's frames while all of them ran past their warm-up, over that time.
    let window_start = steady_from.map(|(t, _)| t);
    let window_end = timelines.iter().filter_map(|t| t.arrivals.last().copied()).min();
    let (aggregate, frames_in_window) = match (window_start, window_end) {
        (Some(start), Some(stop)) if stop > start => {
            let frames: usize =
                timelines.iter().map(|t| t.arrivals.iter().filter(|a| **a > start && **a <= stop).count()).sum();
            (Some(frames as f64 / (stop - start).as_secs_f64()), frames)
        }
        _ => (None, 0),
    };
    let cpu = steady_from.filter(|_| frames_in_window > 0).map(|(_, cpu)| {
        // CPU over the steady part to the end, per frame delivered in that time.
        let frames: usize = timelines
            .iter()
            .map(|t| t.arrivals.iter().filter(|a| Some(**a) > window_start && **a <= end).count())
            .sum();
        (end_cpu.saturating_sub(cpu)).as_secs_f64() * 1e3 / frames.max(1) as f64
    });
    let latencies = sorted_ms(timelines.iter().flat_map(|t| t.latencies.iter().skip(warmup).copied()));
    let firsts = sorted_ms(timelines.iter().filter_map(|t| t.arrivals.first().map(|a| *a - started)));
    let mean = (!per_stream.is_empty()).then(|| per_stream.iter().sum::<f64>() / per_stream.len() as f64);
    let min = per_stream.iter().copied().reduce(f64::min);
    let added = memory.zip(idle_memory).map(|(m, idle)| m - idle);
    Ok(format!(
        "| {n} | {} | {} / {} | {} | {} | {} | {} ({}) | {} / {} |",
        show(aggregate, 1),
        show(min, 1),
        show(mean, 1),
        p50_p99(&latencies),
        show(cpu, 2),
        show(busy, 0),
        show(memory, 0),
        show(added, 0),
        show(firsts.first().map(|ms| ms / 1e3), 1),
        show(firsts.last().map(|ms| ms / 1e3), 1),
    ))
}
