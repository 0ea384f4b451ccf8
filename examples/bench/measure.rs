// SPDX-License-Identifier: MPL-2.0
//! Timing one pipeline run and what is measured beside it (process and thread CPU time, GPU
//! samples), and the table row and notes made of two runs.

use super::*;

/// User + system CPU time of the whole process (every thread) so far.
pub fn process_cpu_time() -> Duration {
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
pub fn thread_cpu_times() -> HashMap<u64, (String, Duration)> {
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
pub fn cpu_by_thread(
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

/// `nvidia-smi -lms 100` running in the background, sampling utilisation and memory in use; its
/// samples collected by a thread.
pub struct GpuSampler {
    child: Child,
    reader: JoinHandle<Vec<(f64, f64)>>,
}

impl GpuSampler {
    pub fn start(gpu_id: u32) -> Result<GpuSampler, String> {
        let mut child = Command::new("nvidia-smi")
            .args(["--query-gpu=utilization.gpu,memory.used", "--format=csv,noheader,nounits", "-lms", "100"])
            .args(["-i", &gpu_id.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("nvidia-smi: {e}"))?;
        let stdout = child.stdout.take().ok_or("nvidia-smi: no output pipe")?;
        let reader = std::thread::spawn(move || {
            BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .filter_map(|l| {
                    let (busy, used) = l.split_once(',')?;
                    Some((busy.trim().parse().ok()?, used.trim().parse().ok()?))
                })
                .collect()
        });
        Ok(GpuSampler { child, reader })
    }

    /// Stops sampling; the mean utilisation (%) and the most memory in use (MiB), if any sample
    /// came.
    pub fn finish(mut self) -> (Option<f64>, Option<f64>) {
        stop_nvidia_smi(&mut self.child);
        let samples: Vec<(f64, f64)> = self.reader.join().unwrap_or_default();
        if samples.is_empty() {
            return (None, None);
        }
        let busy = samples.iter().map(|s| s.0).sum::<f64>() / samples.len() as f64;
        (Some(busy), samples.iter().map(|s| s.1).reduce(f64::max))
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
pub struct Timeline {
    pub left: HashMap<u64, Instant>,
    pub arrivals: Vec<Instant>,
    /// Per arrival, the time since the same PTS left imagefreeze (None: no PTS or no match).
    pub latencies: Vec<Option<Duration>>,
    /// The process's CPU time when the first buffer after the warm-up arrived, and when the last
    /// one did: the steady part of the run, start-up left out.
    pub steady_cpu: (Option<Duration>, Option<Duration>),
}

/// One pipeline run, from building it to its EOS.
pub struct PipelineRun {
    pub wall: Duration,
    /// From building the pipeline to the first buffer at the sink.
    pub first_frame: Option<Duration>,
    pub timeline: Timeline,
    pub gpu: Option<f64>,
    /// CPU ms per frame by thread name over the frames after the warm-up (read by the bus loop
    /// once the warm-up is past, and at EOS), largest first.
    pub threads: Vec<(String, f64)>,
    /// (element factory, active-provider) for every element with that property.
    pub providers: Vec<(String, String)>,
    pub warnings: Vec<String>,
}

/// Gives up when no buffer reaches the sink for this long (a stalled pipeline).
pub const STALL: Duration = Duration::from_secs(600);

pub fn element_label(object: Option<&gst::Object>) -> String {
    let Some(object) = object else { return "pipeline".into() };
    match object.downcast_ref::<gst::Element>().and_then(|e| e.factory()) {
        Some(factory) => factory.name().to_string(),
        None => object.name().to_string(),
    }
}

/// `element: message (detail)` of a bus error or warning; the detail is the debug text without
/// GStreamer's first line (source location and object path, which differ from run to run).
pub fn message_text(src: Option<&gst::Object>, error: &gst::glib::Error, debug: Option<&str>) -> String {
    // Only a reason given apart from the message (after the code location and ":\n").
    let detail = debug.and_then(|d| d.split_once(":\n").map(|(_, rest)| rest.trim())).filter(|d| !d.is_empty());
    format!("{}: {error}{}", element_label(src), detail.map(|d| format!(" ({d})")).unwrap_or_default())
}

/// Runs `filesrc ! pngdec ! imagefreeze num-buffers=buffers ! chain ! fakesink sync=false` to
/// EOS. The steady part of the run begins once `warmup` buffers reached the sink: the process's
/// CPU time is read at its first and last buffer, and with `gpu` that GPU's utilisation is
/// sampled from then on.
pub fn run_pipeline(
    source: &str,
    chain: &str,
    buffers: usize,
    warmup: usize,
    gpu: Option<u32>,
) -> Result<PipelineRun, String> {
    let launch = format!("{source} ! {chain} ! fakesink name=bench_sink sync=false");
    let start = Instant::now();
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
            let arrivals = t.arrivals.len();
            if arrivals == warmup + 1 {
                t.steady_cpu.0 = Some(process_cpu_time());
            }
            if arrivals == buffers {
                t.steady_cpu.1 = Some(process_cpu_time());
            }
            arrived.fetch_add(1, Ordering::SeqCst);
            gst::PadProbeReturn::Ok
        });
    }

    let bus = pipeline.bus().ok_or("the pipeline has no bus")?;
    let mut warnings = Vec::new();
    let mut sampler = None;
    let mut steady_threads = None;
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
            if steady_threads.is_none() && count > warmup {
                steady_threads = Some((count, thread_cpu_times()));
            }
            if let Some(id) = gpu.filter(|_| sampler.is_none() && count >= warmup) {
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
    let wall = start.elapsed();
    // Before the teardown, which ends the pipeline's threads.
    let threads = match steady_threads {
        Some((from, before)) if buffers > from => {
            let frames = (buffers - from) as f64;
            let spent = cpu_by_thread(&before, thread_cpu_times());
            spent.into_iter().map(|(name, t)| (name, t.as_secs_f64() * 1e3 / frames)).collect()
        }
        _ => Vec::new(),
    };
    let gpu = sampler.and_then(|sampler| sampler.finish().0);
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
    let first_frame = timeline.arrivals.first().map(|first| *first - start);
    Ok(PipelineRun { wall, first_frame, timeline, gpu, threads, providers, warnings })
}

/// Nearest-rank percentile of sorted values; None when there are none.
pub fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

pub fn sorted_ms(values: impl Iterator<Item = Duration>) -> Vec<f64> {
    let mut ms: Vec<f64> = values.map(|d| d.as_secs_f64() * 1e3).collect();
    ms.sort_by(f64::total_cmp);
    ms
}

pub fn show(value: Option<f64>, decimals: usize) -> String {
    value.filter(|v| v.is_finite()).map_or("–".into(), |v| format!("{v:.decimals$}"))
}

pub fn p50_p99(sorted: &[f64]) -> String {
    format!("{} / {}", show(percentile(sorted, 50.0), 2), show(percentile(sorted, 99.0), 2))
}

/// One table row from a run of `warmup` + frames buffers: everything but the first-frame time
/// from the buffers after the warm-up.
pub fn table_row(label: &str, run: &PipelineRun, warmup: usize) -> String {
    let arrivals = &run.timeline.arrivals;
    let intervals = sorted_ms((warmup.max(1)..arrivals.len()).map(|i| arrivals[i] - arrivals[i - 1]));
    let steady_frames = arrivals.len().saturating_sub(warmup + 1);
    let steady = match (arrivals.get(warmup), arrivals.last()) {
        (Some(first), Some(last)) if last > first => Some(steady_frames as f64 / (*last - *first).as_secs_f64()),
        _ => None,
    };
    let latencies = sorted_ms(run.timeline.latencies[warmup.min(arrivals.len())..].iter().flatten().copied());
    let cpu = match run.timeline.steady_cpu {
        (Some(from), Some(to)) if steady_frames > 0 => {
            Some(to.saturating_sub(from).as_secs_f64() * 1e3 / steady_frames as f64)
        }
        _ => None,
    };
    format!(
        "| {label} | {} | {} | {} | {} | {} | {} |",
        show(run.first_frame.map(|d| d.as_secs_f64()), 2),
        show(steady, 1),
        p50_p99(&intervals),
        p50_p99(&latencies),
        show(cpu, 2),
        show(run.gpu, 1)
    )
}

/// The first `model name` (or other CPU naming line) of /proc/cpuinfo, and the CPU count.
pub fn cpu_model() -> String {
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
pub fn gpu_name(gpu_id: u32) -> Option<String> {
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
pub fn utc_now() -> String {
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

pub fn file_name(path: &Path) -> String {
    path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned())
}

/// Loads the plugin file into a fresh registry and checks that the elements come from it.
pub fn load_plugin(path: &Path, factories: &[&str]) -> Result<gst::Plugin, String> {
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
pub struct RowNotes {
    pub label: String,
    pub providers: Vec<(String, String)>,
    pub warnings: Vec<String>,
    pub wall: Duration,
    /// CPU ms per frame after the warm-up, by thread name.
    pub threads: Vec<(String, f64)>,
}

pub fn notes_text(notes: &[RowNotes]) -> String {
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
                "CPU ms per frame by thread after warm-up, {}: {}
",
                n.label,
                busiest.join(", ")
            );
        }
    }
    text += "wall time of the run (s):";
    for n in notes {
        text += &format!(" {} {:.1};", n.label, n.wall.as_secs_f64());
    }
    text.pop();
    text + "\n"
}
