// SPDX-License-Identifier: MPL-2.0
//! One model's runs for many callers, batched. On a GPU a one-face run of a swapper leaves most
//! of the card idle (its kernels are sized for one 128-px face): sixteen streams each running
//! their own faces saturate the card's scheduling long before its compute. A [`Batcher`] owns
//! one session of the model with a symbolic batch ([`super::make_batch_symbolic`], checked
//! against single runs) and a thread that runs it; callers from any element, lane or pipeline
//! hand it one item each, or the items of one frame together ([`BatchUser::run_all`]), and wait,
//! and the thread runs what has arrived together.
//!
//! A run's batch size is held steady rather than fitted to each batch (see
//! [`steady_batch_size`]): slots past the items are padding.
//!
//! How long an item waits for company is bounded: the thread runs as soon as every registered
//! user has an item waiting, or the batch is full, or [`MAX_WAIT`] (or what
//! [`Batcher::set_max_wait`] set) has passed since the first item arrived. A live stream therefore pays at most that much latency, and a lone user none.
//!
//! Batchers are shared per process, one per model file and session options
//! ([`Batcher::shared`]), and close when their last user goes.
//!
//! Memory: items are copied into the batch's tensors and the results out of them, on the GPU
//! with device-to-device copies on the batcher's own stream (a 128-px face is 96 KiB in float16).
//! A caller's inputs must be complete when it calls [`BatchUser::run`] (its stream synchronised),
//! and its outputs are complete when the call returns.

use std::collections::HashMap;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Condvar, Mutex, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use ort::memory::AllocationDevice;
use ort::session::IoBinding;
use ort::value::{DynTensor, TensorElementType};

mod graphs;

use graphs::BatchGraphs;
pub use graphs::batches_as_cuda_graphs;

use super::{
    ComputeStream, ExecutionProvider, ModelIo, ModelSession, SessionOptions, StreamPriority, batch_tolerance,
    check_batched, make_batch_symbolic, tensor_shape,
};

/// Whether elements batch their faces with other elements' (`DLC_BATCH_FACES=1`). Off by default
/// until the batched path has run on a GPU with lanes: its first GPU run hung (the batcher's
/// thread took the GPU work lock behind a capturing element that waited for one of its callers;
/// fixed since, not yet re-run there). With it, the faces of one frame also run together
/// (see `FaceSwapper::swap_faces`). A face's pixel-boost tiles are batched regardless.
pub fn faces_batched_across_elements() -> bool {
    std::env::var_os("DLC_BATCH_FACES").is_some_and(|v| v == "1")
}

/// The longest an item waits for others before its batch runs.
pub const MAX_WAIT: Duration = Duration::from_millis(2);

/// The most items one run takes.
pub const MAX_BATCH: usize = 16;

/// Runs in a row whose items would fit half the batch size before the batcher halves it.
const SHRINK_AFTER: u32 = 64;

/// The batch size to run `items` items at, given the size the runs had so far: it grows at once
/// to the next power of two that holds them, and shrinks (by half) only after [`SHRINK_AFTER`]
/// runs in a row that would have fitted half of it; the slots past the items are left as they
/// are and their results dropped. Why steady: the CUDA provider plans each convolution again
/// whenever its input shape changes (with channels-last convolutions, through cuDNN's frontend,
/// without keeping the plans of other shapes), and a batch size that follows the items' count
/// changes from run to run where a few users come at their own pace: a batched swapper's first
/// H100 run spent its time on the CPU at 7 fps while the GPU idled (BENCHMARKS.md, "Two H100s";
/// that this was the cause is not measured yet). Padding costs GPU time the card had to spare.
fn steady_batch_size(current: usize, items: usize, smaller_runs: &mut u32) -> usize {
    let needed = items.max(1).next_power_of_two().min(MAX_BATCH);
    if needed >= current {
        *smaller_runs = 0;
        return needed;
    }
    if needed * 2 > current {
        *smaller_runs = 0;
        return current;
    }
    *smaller_runs += 1;
    if *smaller_runs < SHRINK_AFTER {
        return current;
    }
    *smaller_runs = 0;
    current / 2
}

/// Items [`Batcher::shared`] compares, batched against single runs, before trusting a batch.
const CHECK_ITEMS: usize = 3;

static BATCHERS: Mutex<Vec<(String, Weak<Batcher>)>> = Mutex::new(Vec::new());

/// One item: where each of its input and output tensors lies (their lengths are the batcher's
/// item sizes, checked when the item is queued).
struct Request {
    inputs: Vec<usize>,
    outputs: Vec<usize>,
    done: mpsc::SyncSender<Result<(), String>>,
}

#[derive(Default)]
struct Queue {
    pending: Vec<Request>,
    closing: bool,
}

/// The part of a batcher its thread shares.
struct Shared {
    queue: Mutex<Queue>,
    arrived: Condvar,
    users: AtomicUsize,
    runs: AtomicU64,
    items: AtomicU64,
    /// Totals over the runs, in microseconds: waiting for a batch to fill (from the first item's
    /// pick-up), and copying in, running and copying out.
    waited_us: AtomicU64,
    ran_us: AtomicU64,
    longest_run_us: AtomicU64,
    /// The batch size of the last run, and how often it changed.
    batch_size: AtomicUsize,
    size_changes: AtomicU64,
    /// The longest an item waits for others, in microseconds ([`MAX_WAIT`] unless set).
    max_wait_us: AtomicU64,
    /// Which batch sizes replay as CUDA graphs (see [`graphs`]), for the report.
    graphs: Mutex<String>,
}

/// A shared, batching session of one model (see the module text).
pub struct Batcher {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
    /// The model's inputs and outputs (batch dimension symbolic).
    pub io: ModelIo,
    /// Bytes of one item per input and per output, in the model's order.
    input_bytes: Vec<usize>,
    output_bytes: Vec<usize>,
    on_gpu: bool,
    /// What the batcher was made from, for the log.
    pub description: String,
}

impl Batcher {
    /// The process's batcher for the model at `path` with `options`, opened when there is none
    /// yet. On a GPU the caller holds the GPU work lock (shared), as the elements do while they
    /// open their models: opening runs the model. (Taking the lock here again would be a recursive
    /// read, which waits forever behind an element queued to capture a CUDA graph.) `check` judges the model's inputs and outputs as the caller's own open does. Fails
    /// when the model cannot batch: a non-batch dimension is symbolic, the rewrite finds no
    /// batch to free, or a batch differs from single runs.
    pub fn shared(
        path: &Path,
        options: &SessionOptions,
        check: impl Fn(&ModelIo) -> Result<(), String>,
    ) -> Result<Arc<Batcher>, String> {
        let key = batcher_key(path, options);
        let mut batchers = BATCHERS.lock().map_err(|_| "the batcher registry is poisoned".to_string())?;
        batchers.retain(|(_, b)| b.strong_count() > 0);
        if let Some(existing) = batchers.iter().find(|(k, _)| *k == key).and_then(|(_, b)| b.upgrade()) {
            return Ok(existing);
        }
        let batcher = Arc::new(Batcher::open(path, options, check)?);
        batchers.push((key, Arc::downgrade(&batcher)));
        Ok(batcher)
    }

    fn open(
        path: &Path,
        options: &SessionOptions,
        check: impl Fn(&ModelIo) -> Result<(), String>,
    ) -> Result<Batcher, String> {
        let bytes = std::fs::read(path).map_err(|e| format!("cannot read '{}': {e}", path.display()))?;
        let (bytes, rewritten) = match make_batch_symbolic(&bytes) {
            Ok((rewritten, _)) => (rewritten, true),
            // Already symbolic, or nothing to free: the session says which below.
            Err(_) => (bytes, false),
        };
        // A stream of the batcher's own (runs from many elements cannot share one of theirs).
        // CUDA graphs, when asked for, are named per batch size (see [`graphs`]); the session's
        // own graph capture is not used.
        let stream = match options.provider {
            ExecutionProvider::Cuda | ExecutionProvider::Auto => {
                ComputeStream::new(options.gpu_id, StreamPriority::Normal).ok()
            }
            _ => None,
        };
        let session_options = SessionOptions {
            cuda_graph: false,
            dimension_overrides: Vec::new(),
            compute_stream: stream.clone(),
            ..options.clone()
        };
        let name = format!("{} (batched)", path.display());
        let as_graphs = SessionOptions { cuda_graph: true, ..session_options.clone() };
        let plain = || ModelSession::open_memory(&name, &bytes, &session_options).map_err(|e| e.to_string());
        // A model ONNX Runtime cannot capture (nodes off the CUDA provider) runs plainly, on CUDA
        // rather than on the provider the session would fall back to.
        let want_graphs = stream.is_some() && batches_as_cuda_graphs();
        let (mut model, mut graphs_outcome) = match want_graphs {
            true => match ModelSession::open_memory(&name, &bytes, &as_graphs) {
                Ok(model) if model.active_provider == ExecutionProvider::Cuda => (model, String::new()),
                Ok(model) => (plain()?, format!("no CUDA graphs: {}", model.fallback.unwrap_or_default())),
                Err(e) => (plain()?, format!("no CUDA graphs: {e}")),
            },
            false => (plain()?, String::new()),
        };
        drop(bytes);
        // Opened for graphs and on CUDA (an empty outcome says so).
        let graphs = match want_graphs && graphs_outcome.is_empty() {
            true => match model.capture_named_graphs_only().and_then(|()| BatchGraphs::new()) {
                Ok(graphs) => Some(graphs),
                Err(e) => {
                    graphs_outcome = format!("no CUDA graphs: {e}");
                    None
                }
            },
            false => None,
        };
        check(&model.io).map_err(|expected| format!("expected {expected}, found {}", model.io))?;
        let on_gpu = model.on_nvidia_gpu();
        copies_ordered_with_runs(on_gpu, model.active_provider, stream.is_some())?;
        let item_shape = |shape: &[i64]| -> Result<Vec<usize>, String> {
            match shape.split_first() {
                Some((batch, rest)) if *batch < 0 && rest.iter().all(|d| *d > 0) => {
                    Ok(std::iter::once(1).chain(rest.iter().map(|d| *d as usize)).collect())
                }
                _ => Err(format!("the model's tensors are not [batch, fixed…]: {}", model.io)),
            }
        };
        let input_shapes: Vec<Vec<usize>> =
            model.io.inputs.iter().map(|i| item_shape(&i.shape)).collect::<Result<_, _>>()?;
        let output_shapes: Vec<Vec<usize>> =
            model.io.outputs.iter().map(|o| item_shape(&o.shape)).collect::<Result<_, _>>()?;
        let bytes_of = |shapes: &[Vec<usize>], specs: &[super::TensorSpec]| -> Vec<usize> {
            shapes
                .iter()
                .zip(specs)
                .map(|(s, spec)| s.iter().product::<usize>() * element_bytes(spec.element))
                .collect()
        };
        let input_bytes = bytes_of(&input_shapes, &model.io.inputs);
        let output_bytes = bytes_of(&output_shapes, &model.io.outputs);

        // Different values per item, so that a graph mixing batch items shows.
        let mut state = 0x9e37_79b9_u32;
        let inputs: Vec<(Vec<usize>, Vec<f32>)> = input_shapes
            .iter()
            .map(|shape| {
                let values = (0..CHECK_ITEMS * shape.iter().product::<usize>())
                    .map(|_| {
                        state ^= state << 13;
                        state ^= state >> 17;
                        state ^= state << 5;
                        (state as f32 / u32::MAX as f32) * 2.0 - 1.0
                    })
                    .collect();
                (shape.clone(), values)
            })
            .collect();
        let float16 = model.io.outputs.iter().any(|o| o.element == Some(TensorElementType::Float16));
        // Its runs allocate and free host memory for their outputs, which must not happen while
        // an element captures a CUDA graph: the caller holds the GPU work lock (the elements open
        // their models under it, see `Batcher::shared`).
        let worst = check_batched(&mut model, CHECK_ITEMS, &inputs)
            .map_err(|e| format!("a batch of {CHECK_ITEMS} does not run like single items: {e}"))?;
        if worst > batch_tolerance(float16 || model.on_nvidia_gpu()) {
            return Err(format!(
                "a batch of {CHECK_ITEMS} differs from single runs by up to {worst}: the graph mixes batch items"
            ));
        }
        let description = format!(
            "{} on {}, batch {}, up to {MAX_BATCH} items per run (a batch equals single runs within {worst})",
            path.display(),
            model.active_provider.nick(),
            if rewritten { "made symbolic" } else { "symbolic in the file" },
        );
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            arrived: Condvar::new(),
            users: AtomicUsize::new(0),
            runs: AtomicU64::new(0),
            items: AtomicU64::new(0),
            waited_us: AtomicU64::new(0),
            ran_us: AtomicU64::new(0),
            longest_run_us: AtomicU64::new(0),
            batch_size: AtomicUsize::new(0),
            size_changes: AtomicU64::new(0),
            max_wait_us: AtomicU64::new(MAX_WAIT.as_micros() as u64),
            graphs: Mutex::new(graphs_outcome),
        });
        let io = model.io.clone();
        let runner = Runner {
            shared: shared.clone(),
            model,
            stream: stream.filter(|_| on_gpu),
            input_bytes: input_bytes.clone(),
            output_bytes: output_bytes.clone(),
            input_shapes,
            output_shapes,
            bound: HashMap::new(),
            size: 1,
            smaller_runs: 0,
            graphs,
        };
        let mut runner = runner;
        // On the opening thread, under its GPU work lock, before any item can come (see
        // `Runner::run` for why the batcher's own thread does not wait for the lock; with CUDA
        // graphs its thread warms each size up as it captures it, see [`graphs`]).
        runner.warm_up();
        let thread = std::thread::Builder::new()
            .name("dlc-batcher".to_string())
            .spawn(move || runner.serve())
            .map_err(|e| format!("cannot start the batcher's thread: {e}"))?;
        Ok(Batcher { shared, thread: Mutex::new(Some(thread)), io, input_bytes, output_bytes, on_gpu, description })
    }

    /// A user of this batcher: while it lives, batches wait for its items too.
    pub fn user(self: &Arc<Self>) -> BatchUser {
        self.shared.users.fetch_add(1, Ordering::SeqCst);
        BatchUser { batcher: self.clone(), joined: AtomicBool::new(false) }
    }

    /// How many users it has now.
    pub fn users(&self) -> usize {
        self.shared.users.load(Ordering::SeqCst)
    }

    /// Runs and items so far (items / runs = the mean batch).
    pub fn counts(&self) -> (u64, u64) {
        (self.shared.runs.load(Ordering::SeqCst), self.shared.items.load(Ordering::SeqCst))
    }

    /// Its runs so far, for the step-time reports: how many, how full, how long they took and
    /// how long their first item waited for company.
    pub fn report(&self) -> String {
        let shared = &self.shared;
        let runs = shared.runs.load(Ordering::SeqCst);
        let per_run = |total: &AtomicU64| total.load(Ordering::SeqCst) as f64 / runs.max(1) as f64;
        let graphs = shared.graphs.lock().map(|g| g.clone()).unwrap_or_default();
        format!(
            "batcher {runs} runs, {:.2} items a run, {:.2} ms a run (longest {:.2}), {:.2} ms waiting for a batch, \
             batch size {} (changed {} times){}{graphs}",
            per_run(&shared.items),
            per_run(&shared.ran_us) / 1000.0,
            shared.longest_run_us.load(Ordering::SeqCst) as f64 / 1000.0,
            per_run(&shared.waited_us) / 1000.0,
            shared.batch_size.load(Ordering::SeqCst),
            shared.size_changes.load(Ordering::SeqCst),
            if graphs.is_empty() { "" } else { "; " },
        )
    }

    /// How long an item may wait for other users' items before its batch runs, from the next
    /// batch on ([`MAX_WAIT`] until set). A longer wait makes batches fuller where users come at
    /// their own pace, at the cost of latency; tests use it to have batches form for certain on a
    /// loaded machine, where a user's next item may come later than `MAX_WAIT`.
    pub fn set_max_wait(&self, wait: Duration) {
        self.shared.max_wait_us.store(wait.as_micros().min(u64::MAX as u128) as u64, Ordering::SeqCst);
        self.shared.arrived.notify_all();
    }

    /// Whether items must be in GPU memory.
    pub fn on_gpu(&self) -> bool {
        self.on_gpu
    }
}

impl Drop for Batcher {
    fn drop(&mut self) {
        if let Ok(mut queue) = self.shared.queue.lock() {
            queue.closing = true;
        }
        self.shared.arrived.notify_all();
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
    }
}

/// One caller's handle on a [`Batcher`].
pub struct BatchUser {
    batcher: Arc<Batcher>,
    /// Set once another user came: from then on this user's items go through the batcher for
    /// good, so that its own session (whose CUDA graph is not captured yet on the caller's
    /// thread) is not run again and the caller never needs the exclusive GPU work lock for it.
    joined: AtomicBool,
}

impl BatchUser {
    pub fn batcher(&self) -> &Batcher {
        &self.batcher
    }

    /// Whether this user's items go through the batcher: once more than one user has joined it
    /// (and from then on, even when the others leave). Alone, a caller runs its own session and
    /// waits for nobody.
    pub fn in_use(&self) -> bool {
        if self.joined.load(Ordering::SeqCst) {
            return true;
        }
        let shared = self.batcher.users() > 1;
        if shared {
            self.joined.store(true, Ordering::SeqCst);
        }
        shared
    }

    /// From now on this user's items go through the batcher for good, alone or not (see
    /// [`BatchUser::in_use`]): for a caller with several items of its own to run together.
    pub fn join(&self) {
        self.joined.store(true, Ordering::SeqCst);
    }

    /// Runs the model on one item: `inputs` and `outputs` are the item's tensors (batch 1), in the
    /// model's input and output order, in GPU memory when the batcher runs on a GPU (complete:
    /// the stream that wrote them synchronised), else in host memory. Returns once the outputs
    /// hold the item's results.
    pub fn run(&self, inputs: &[&DynTensor], outputs: &mut [&mut DynTensor]) -> Result<(), String> {
        self.run_all(&[inputs], &mut [outputs])
    }

    /// [`BatchUser::run`] for several items at once (`inputs[i]` and `outputs[i]` are item `i`'s),
    /// queued together so that they run in one batch (or as few as [`MAX_BATCH`] allows), with
    /// whatever other users' items are waiting. Returns once every item's outputs hold its results;
    /// an error of any run is the call's.
    pub fn run_all(&self, inputs: &[&[&DynTensor]], outputs: &mut [&mut [&mut DynTensor]]) -> Result<(), String> {
        let b = &self.batcher;
        let address = |tensor: &DynTensor, bytes: usize, what: &str| -> Result<usize, String> {
            let on_gpu = tensor.memory_info().allocation_device() == AllocationDevice::CUDA;
            let len = tensor_shape(tensor).iter().product::<usize>() * element_bytes(Some(*tensor.data_type()));
            if on_gpu != b.on_gpu || len != bytes {
                return Err(format!(
                    "{what}: {len} bytes in {} memory, the batcher takes {bytes} bytes in {} memory",
                    if on_gpu { "GPU" } else { "host" },
                    if b.on_gpu { "GPU" } else { "host" }
                ));
            }
            Ok(tensor.data_ptr() as usize)
        };
        if inputs.len() != outputs.len() {
            return Err(format!("{} items' inputs and {} items' outputs", inputs.len(), outputs.len()));
        }
        let mut requests = Vec::with_capacity(inputs.len());
        let mut answers = Vec::with_capacity(inputs.len());
        for (inputs, outputs) in inputs.iter().zip(outputs.iter_mut()) {
            if inputs.len() != b.input_bytes.len() || outputs.len() != b.output_bytes.len() {
                return Err(format!(
                    "{} inputs and {} outputs for a model of {} and {}",
                    inputs.len(),
                    outputs.len(),
                    b.input_bytes.len(),
                    b.output_bytes.len()
                ));
            }
            let inputs = (inputs.iter().zip(&b.input_bytes))
                .map(|(t, &bytes)| address(t, bytes, "input"))
                .collect::<Result<Vec<_>, _>>()?;
            let outputs = (outputs.iter_mut().zip(&b.output_bytes))
                .map(|(t, &bytes)| address(t, bytes, "output"))
                .collect::<Result<Vec<_>, _>>()?;
            let (done, finished) = mpsc::sync_channel(1);
            requests.push(Request { inputs, outputs, done });
            answers.push(finished);
        }
        {
            // All at once: the batcher's thread takes what is pending when it wakes.
            let mut queue = b.shared.queue.lock().map_err(|_| "the batcher's queue is poisoned".to_string())?;
            queue.pending.append(&mut requests);
        }
        b.shared.arrived.notify_all();
        // The tensors stay borrowed until every answer: the batcher's thread reads and writes them
        // only before it answers (see `Runner::serve`).
        let mut result = Ok(());
        for finished in answers {
            let answer = finished.recv().map_err(|_| "the batcher's thread stopped".to_string()).and_then(|r| r);
            if result.is_ok() {
                result = answer;
            }
        }
        result
    }
}

impl Drop for BatchUser {
    fn drop(&mut self) {
        self.batcher.shared.users.fetch_sub(1, Ordering::SeqCst);
        // A batch waiting for this user's item need not wait any longer.
        self.batcher.shared.arrived.notify_all();
    }
}

/// The tensors of one batch size, bound.
struct Bound {
    binding: IoBinding,
    inputs: Vec<DynTensor>,
    outputs: Vec<DynTensor>,
}

/// The batcher's thread: the session and its tensors.
struct Runner {
    shared: Arc<Shared>,
    model: ModelSession,
    stream: Option<ComputeStream>,
    input_bytes: Vec<usize>,
    output_bytes: Vec<usize>,
    input_shapes: Vec<Vec<usize>>,
    output_shapes: Vec<Vec<usize>>,
    /// Per batch size (powers of two up to MAX_BATCH: a few sizes, each allocated once).
    bound: HashMap<usize, Bound>,
    /// The batch size runs go at (see [`steady_batch_size`]), and the runs in a row that would
    /// have fitted half of it.
    size: usize,
    smaller_runs: u32,
    /// The batch sizes' CUDA graphs, when asked for and possible.
    graphs: Option<BatchGraphs>,
}

impl Runner {
    fn serve(mut self) {
        self.capture_graphs();
        while let Some((batch, waited)) = self.next_batch() {
            let start = Instant::now();
            let result = self.run(&batch);
            let ran = start.elapsed().as_micros() as u64;
            let shared = &self.shared;
            shared.runs.fetch_add(1, Ordering::SeqCst);
            shared.items.fetch_add(batch.len() as u64, Ordering::SeqCst);
            shared.waited_us.fetch_add(waited.as_micros() as u64, Ordering::SeqCst);
            shared.ran_us.fetch_add(ran, Ordering::SeqCst);
            shared.longest_run_us.fetch_max(ran, Ordering::SeqCst);
            for request in batch {
                // After this the caller may reuse or free its tensors.
                let _ = request.done.send(result.clone());
            }
        }
    }

    /// On a GPU, one run of each batch size before the first items: cuDNN picks its kernels per
    /// input shape at the first run of it, which would otherwise delay the batches that meet a
    /// new size. (Once per process, at the first element's start.)
    fn warm_up(&mut self) {
        if self.stream.is_none() || self.graphs.is_some() {
            return;
        }
        let mut size = 1;
        while size <= MAX_BATCH {
            if self.bind(size).is_ok()
                && let Some(bound) = self.bound.get_mut(&size)
            {
                let bound_inputs = self.model.io.inputs.iter().zip(&bound.inputs);
                if bound_inputs.into_iter().all(|(spec, t)| bound.binding.bind_input(&spec.name, t).is_ok()) {
                    let _ = self.model.run(&bound.binding);
                }
            }
            size *= 2;
        }
    }

    /// Waits for the next batch (see the module text for when it runs) and returns it with how
    /// long its first item waited for the others; `None` when closing.
    fn next_batch(&self) -> Option<(Vec<Request>, Duration)> {
        let mut queue = self.shared.queue.lock().ok()?;
        while queue.pending.is_empty() {
            if queue.closing {
                return None;
            }
            queue = self.shared.arrived.wait(queue).ok()?;
        }
        let first = Instant::now();
        loop {
            let users = self.shared.users.load(Ordering::SeqCst).max(1);
            let waited = first.elapsed();
            let max_wait = Duration::from_micros(self.shared.max_wait_us.load(Ordering::SeqCst));
            if queue.pending.len() >= users.min(MAX_BATCH) || waited >= max_wait || queue.closing {
                break;
            }
            queue = self.shared.arrived.wait_timeout(queue, max_wait - waited).ok()?.0;
        }
        let take = queue.pending.len().min(MAX_BATCH);
        Some((queue.pending.drain(..take).collect(), first.elapsed()))
    }

    fn run(&mut self, batch: &[Request]) -> Result<(), String> {
        let size = steady_batch_size(self.size, batch.len(), &mut self.smaller_runs);
        if size != self.size {
            self.size = size;
            self.shared.size_changes.fetch_add(1, Ordering::SeqCst);
        }
        self.shared.batch_size.store(size, Ordering::SeqCst);
        // No GPU work lock here: every caller of this batch holds it (shared or exclusive) while
        // it waits, so no CUDA graph capture runs meanwhile; taking it again would queue this
        // thread behind a capturing element that waits for one of these callers.
        self.bind(size)?;
        let Runner { model, stream, bound, input_bytes, output_bytes, graphs, .. } = self;
        let bound = bound.get_mut(&size).ok_or("the batch's tensors are not bound")?;
        let stream = stream.as_ref();
        let copy = |from: usize, to: usize, bytes: usize| -> Result<(), String> {
            match stream {
                // SAFETY: both ranges are GPU memory of the bytes given: the batch's tensors,
                // and a caller's, checked in `BatchUser::run` and kept alive by the caller until
                // it is answered, after the stream is synchronised below.
                Some(stream) => unsafe { stream.copy_on_device(from, to, bytes) },
                None => {
                    // SAFETY: as above, in host memory; the ranges belong to different tensors.
                    unsafe { std::ptr::copy_nonoverlapping(from as *const u8, to as *mut u8, bytes) };
                    Ok(())
                }
            }
        };
        for (slot, request) in batch.iter().enumerate() {
            for ((&from, tensor), &bytes) in request.inputs.iter().zip(&mut bound.inputs).zip(input_bytes.iter()) {
                copy(from, tensor.data_ptr_mut() as usize + slot * bytes, bytes)?;
            }
        }
        for (spec, tensor) in model.io.inputs.iter().zip(&bound.inputs) {
            bound.binding.bind_input(&spec.name, tensor).map_err(|e| format!("cannot bind '{}': {e}", spec.name))?;
        }
        // Computes on the batcher's stream (the copies above come first) and waits for it.
        match graphs.as_ref().and_then(|g| g.replay(size)) {
            Some(replay) => model.run_with(&bound.binding, replay)?,
            None => model.run(&bound.binding)?,
        };
        for (slot, request) in batch.iter().enumerate() {
            for ((&to, tensor), &bytes) in request.outputs.iter().zip(&bound.outputs).zip(output_bytes.iter()) {
                copy(tensor.data_ptr() as usize + slot * bytes, to, bytes)?;
            }
        }
        match stream {
            Some(stream) => stream.synchronize(),
            None => Ok(()),
        }
    }

    fn bind(&mut self, size: usize) -> Result<(), String> {
        if self.bound.contains_key(&size) {
            return Ok(());
        }
        let allocator = self.model.device_allocator()?;
        let tensor = |shape: &[usize], element: Option<TensorElementType>| -> Result<DynTensor, String> {
            let mut shape = shape.to_vec();
            shape[0] = size;
            let element = element.unwrap_or(TensorElementType::Float32);
            DynTensor::new(&allocator, element, shape).map_err(|e| format!("cannot allocate a batch tensor: {e}"))
        };
        let inputs = (self.input_shapes.iter().zip(&self.model.io.inputs))
            .map(|(shape, spec)| tensor(shape, spec.element))
            .collect::<Result<Vec<_>, _>>()?;
        let mut outputs = (self.output_shapes.iter().zip(&self.model.io.outputs))
            .map(|(shape, spec)| tensor(shape, spec.element))
            .collect::<Result<Vec<_>, _>>()?;
        let mut binding = self.model.binding()?;
        for (spec, tensor) in self.model.io.outputs.iter().zip(&mut outputs) {
            binding.bind_output(&spec.name, tensor).map_err(|e| format!("cannot bind '{}': {e}", spec.name))?;
        }
        self.bound.insert(size, Bound { binding, inputs, outputs });
        Ok(())
    }
}

/// On a GPU, the items are copied into and out of the batch on the batcher's stream, and the
/// copies come before and after the model's run only when the session computes on that same
/// stream: the CUDA provider given the batcher's stream. TensorRT computes on a stream of its
/// own (a copy could race its run), and without a stream the copies would be host copies of
/// device addresses.
fn copies_ordered_with_runs(on_gpu: bool, provider: ExecutionProvider, own_stream: bool) -> Result<(), String> {
    match (on_gpu, provider, own_stream) {
        (false, ..) | (true, ExecutionProvider::Cuda, true) => Ok(()),
        (true, ExecutionProvider::Cuda, false) => {
            Err("batching on the GPU needs a CUDA stream of its own, and none could be made".to_string())
        }
        (true, other, _) => Err(format!(
            "batching on the GPU needs the CUDA provider (the model runs on {}, on a stream of its own)",
            other.nick()
        )),
    }
}

fn element_bytes(element: Option<TensorElementType>) -> usize {
    match element {
        Some(TensorElementType::Float16 | TensorElementType::Bfloat16) => 2,
        Some(TensorElementType::Float64 | TensorElementType::Int64) => 8,
        Some(TensorElementType::Uint8 | TensorElementType::Int8 | TensorElementType::Bool) => 1,
        _ => 4,
    }
}

/// Batchers are shared between users of the same file with the same result-changing options
/// (the element's own stream is not one of them: the batcher has its own).
fn batcher_key(path: &Path, options: &SessionOptions) -> String {
    let path = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).ok();
    format!(
        "{}|{modified:?}|{:?}|{}|{:?}|{}|{}|{:?}",
        path.display(),
        options.provider,
        options.gpu_id,
        options.precision,
        options.threads,
        options.spin_wait,
        options.tensorrt_cache
    )
}

#[cfg(test)]
mod tests;
