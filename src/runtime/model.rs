// SPDX-License-Identifier: MPL-2.0
//! Opening a model file as an ONNX Runtime session with the chosen provider, and describing its
//! inputs and outputs so that each model family can check its contract.

use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use ort::memory::{AllocationDevice, Allocator, AllocatorType, MemoryInfo, MemoryType};
use ort::session::builder::SessionBuilder;
use ort::session::{IoBinding, RunOptions, Session, SessionOutputs};
use ort::value::{DynValue, TensorElementType, ValueType};

use super::cuda::StreamOrder;
use super::gpu_work::DirectMlRun;
use super::shared::{self, SessionKey, SharedSession};
use super::{ComputeStream, CoreMlUnits, ExecutionProvider, Precision, RuntimeError, StreamPriority, environment};

/// What an element asks of ONNX Runtime for one model.
#[derive(Debug, Clone, Default)]
pub struct SessionOptions {
    pub provider: ExecutionProvider,
    pub gpu_id: u32,
    /// Intra-op threads of CPU work in a pool of the session's own (0 = the environment's shared
    /// pool: one thread per physical core for all sessions of the process).
    pub threads: u32,
    /// Whether idle ONNX Runtime worker threads spin-wait for work instead of sleeping. Spinning
    /// shaves a little latency off each run on the CPU but burns whole cores between runs, which
    /// a video element that runs once per frame can rarely afford: off by default (on, the
    /// session gets a pool of its own: the shared one sleeps). The same goes for threads waiting
    /// for a CUDA GPU.
    pub spin_wait: bool,
    pub precision: Precision,
    /// Where TensorRT keeps its engines and timing cache (`None`: rebuilt at every start).
    pub tensorrt_cache: Option<PathBuf>,
    /// Capture the model as a CUDA graph and replay it (CUDA provider; the model's inputs and
    /// outputs must stay at the same GPU addresses from run to run).
    pub cuda_graph: bool,
    /// Symbolic input dimensions fixed to a size (`(symbol, size)`): with every input dimension
    /// known, ONNX Runtime folds the model's shape computations away, which leaves every node on
    /// the GPU and lets a CUDA graph capture the model.
    pub dimension_overrides: Vec<(String, i64)>,
    /// The CUDA stream of the element's own work (CUDA provider), see [`ComputeStream`]: the
    /// pixel graphs compute on it; a model file's session, shared between elements, computes on a
    /// stream of its own of the same priority, ordered with this one run by run (one replayed as a
    /// CUDA graph, which is not shared, on this one).
    pub compute_stream: Option<ComputeStream>,
    /// The Apple units the model may run on (CoreML provider).
    pub coreml_units: CoreMlUnits,
}

impl SessionOptions {
    /// These options with a CUDA stream of their own for the element's sessions, when they may
    /// run on CUDA and the driver can make one (else unchanged: every run then waits for the GPU).
    pub fn with_own_stream(self) -> SessionOptions {
        self.with_stream_of(StreamPriority::Normal)
    }

    /// [`SessionOptions::with_own_stream`] with a stream whose work the GPU schedules ahead of
    /// the other elements' (for the detector: every frame waits for it, and its short kernels
    /// otherwise queue behind the swapper's and the restorer's).
    pub fn with_own_high_priority_stream(self) -> SessionOptions {
        self.with_stream_of(StreamPriority::High)
    }

    fn with_stream_of(self, priority: StreamPriority) -> SessionOptions {
        if !matches!(self.provider, ExecutionProvider::Cuda | ExecutionProvider::Auto)
            || !ExecutionProvider::Cuda.compiled_in()
        {
            return self;
        }
        if !self.spin_wait {
            // Before the stream brings up the device's context: the flag is the context's.
            let _ = super::prefer_blocking_sync(self.gpu_id);
        }
        SessionOptions { compute_stream: ComputeStream::new(self.gpu_id, priority).ok(), ..self }
    }

    /// A session builder for `provider` with its session rules and the threading options
    /// applied: the environment's shared thread pools ([`super::environment`]) unless `threads`
    /// or `spin_wait` ask for threads of the session's own.
    fn builder(&self, env: &ort::environment::Environment, provider: ExecutionProvider) -> ort::Result<SessionBuilder> {
        let rules = provider.session_rules();
        let mut builder = Session::builder(env)?
            .with_memory_pattern(rules.memory_pattern)?
            .with_parallel_execution(rules.parallel_execution)?;
        for (symbol, size) in &self.dimension_overrides {
            builder = builder.with_dimension_override(symbol, *size)?;
        }
        if !self.has_own_threads() {
            return Ok(builder);
        }
        builder = builder
            .with_independent_thread_pool()?
            .with_intra_op_spinning(self.spin_wait)?
            .with_inter_op_spinning(self.spin_wait)?;
        if self.threads > 0 {
            return Ok(builder.with_intra_threads(self.threads as usize)?);
        }
        Ok(builder)
    }

    /// Whether sessions made with these options start threads of their own rather than run on
    /// the environment's shared pools.
    fn has_own_threads(&self) -> bool {
        self.threads > 0 || self.spin_wait
    }
}

/// One input or output of a model: name, element type and shape (`-1` = dynamic).
#[derive(Debug, Clone, PartialEq)]
pub struct TensorSpec {
    pub name: String,
    pub element: Option<TensorElementType>,
    pub shape: Vec<i64>,
}

impl TensorSpec {
    pub fn is_float(&self) -> bool {
        matches!(self.element, Some(TensorElementType::Float32 | TensorElementType::Float16))
    }

    /// Whether dimension `i` is `value` or dynamic.
    pub fn dim_accepts(&self, i: usize, value: i64) -> bool {
        self.shape.get(i).is_some_and(|&d| d < 0 || d == value)
    }
}

impl fmt::Display for TensorSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ty = match self.element {
            Some(TensorElementType::Float32) => "float32".to_string(),
            Some(TensorElementType::Float16) => "float16".to_string(),
            Some(TensorElementType::Float64) => "float64".to_string(),
            Some(other) => format!("{other:?}").to_lowercase(),
            None => "non-tensor".to_string(),
        };
        let dims: Vec<String> =
            self.shape.iter().map(|d| if *d < 0 { "?".to_string() } else { d.to_string() }).collect();
        write!(f, "'{}' {ty} [{}]", self.name, dims.join(","))
    }
}

/// A model's inputs and outputs, as ONNX Runtime reports them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ModelIo {
    pub inputs: Vec<TensorSpec>,
    pub outputs: Vec<TensorSpec>,
}

impl fmt::Display for ModelIo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let list = |specs: &[TensorSpec]| specs.iter().map(|s| s.to_string()).collect::<Vec<_>>().join(", ");
        write!(f, "inputs {}; outputs {}", list(&self.inputs), list(&self.outputs))
    }
}

impl ModelIo {
    fn of(session: &Session) -> ModelIo {
        let spec = |name: &str, ty: &ValueType| match ty {
            ValueType::Tensor { ty, shape, .. } => {
                TensorSpec { name: name.to_string(), element: Some(*ty), shape: shape.to_vec() }
            }
            _ => TensorSpec { name: name.to_string(), element: None, shape: Vec::new() },
        };
        ModelIo {
            inputs: session.inputs().iter().map(|o| spec(o.name(), o.dtype())).collect(),
            outputs: session.outputs().iter().map(|o| spec(o.name(), o.dtype())).collect(),
        }
    }
}

/// A model an element runs: a handle to the process's session of that model file and options
/// (see [`super::shared`]: one per model per GPU per process, shared by every element that opens
/// the same file with options that give the same results), where it came from, and which provider
/// really runs it. The models run it through an [`IoBinding`] of tensors they keep from frame to
/// frame; those stay each user's own.
pub struct ModelSession {
    shared: Arc<SharedSession>,
    pub path: PathBuf,
    pub io: ModelIo,
    pub active_provider: ExecutionProvider,
    /// Why the provider asked for is not the one running, when that happened. The element posts
    /// it as a warning: a silent CPU fallback is what users of the Python tool complain about.
    pub fallback: Option<String>,
    /// When the session computes on a CUDA stream of its own, the order between it and the
    /// stream of the element this handle belongs to (see [`StreamOrder`]).
    order: Option<StreamOrder>,
    gpu_id: u32,
    /// Whether each run waits for the other runs on its device (DirectML, see
    /// [`super::ExecutionProvider::session_rules`]).
    one_run_per_device: bool,
    /// Run options of [`ModelSession::run`] that capture no CUDA graph, once
    /// [`ModelSession::capture_named_graphs_only`] was called.
    uncaptured: Option<RunOptions>,
}

/// The warm-up of a shared session: the first user to ask runs it, users that ask meanwhile wait
/// for it, and users that come later skip it. Warming up pays the first run's set-up (cuDNN's
/// algorithm search, ONNX Runtime's memory planning) before the first frame; it is the session's,
/// not the user's. (A CUDA graph is captured per thread, later, on the first frames: see
/// [`ModelSession::may_capture_here`].)
pub struct SharedWarmUp(Arc<SharedSession>);

impl SharedWarmUp {
    /// Runs `warm_up` unless the session is warm (see [`SharedWarmUp`]); a failed warm-up leaves
    /// it cold, for the next user to try.
    pub fn once(&self, warm_up: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        self.0.warm_up_once(warm_up)
    }
}

/// The run of a session on a thread at which ONNX Runtime's CUDA provider captures its CUDA graph
/// (two regular runs first, for its memory allocations). The same holds for each named graph
/// ([`graph_run_options`]).
pub(crate) const CAPTURING_RUN: u32 = 3;

/// Run options naming CUDA graph `id` of a session opened with `cuda_graph` (ONNX Runtime's
/// `gpu_graph_id`): the CUDA provider keeps one graph per name and thread, captured at the
/// [`CAPTURING_RUN`]th run of that name there and replayed from then on, so a session can keep a
/// graph per input shape. `None` names no graph: the run is a plain one.
pub fn graph_run_options(id: Option<usize>) -> Result<RunOptions, String> {
    let mut options = RunOptions::new().map_err(|e| format!("cannot make run options: {e}"))?;
    let id = id.map_or("-1".to_string(), |id| id.to_string());
    options.set("gpu_graph_id", &id).map_err(|e| format!("cannot name CUDA graph {id}: {e}"))?;
    Ok(options)
}

/// What a model run returned for the outputs bound to a device rather than to a tensor, by
/// position and by name (ONNX Runtime's outputs, no longer tied to the session being held).
pub struct ModelOutputs {
    names: Vec<String>,
    values: Vec<DynValue>,
}

impl ModelOutputs {
    fn of(outputs: SessionOutputs<'_>) -> ModelOutputs {
        let (names, values) = outputs.into_iter().map(|(name, value)| (name.to_string(), value)).unzip();
        ModelOutputs { names, values }
    }

    /// How many outputs came back (those bound to a device).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The output named `name`.
    fn get(&self, name: &str) -> Option<&DynValue> {
        self.names.iter().position(|n| n == name).map(|i| &self.values[i])
    }
}

impl std::ops::Index<usize> for ModelOutputs {
    type Output = DynValue;

    fn index(&self, index: usize) -> &DynValue {
        &self.values[index]
    }
}

impl std::ops::Index<&str> for ModelOutputs {
    type Output = DynValue;

    /// The output named `name`; like a map's index, panics when there is none: the graphs index
    /// only outputs they bound to a device.
    fn index(&self, name: &str) -> &DynValue {
        self.get(name).unwrap_or_else(|| panic!("the model has no output '{name}' bound to a device"))
    }
}

impl ModelSession {
    /// A binding of this session's inputs and outputs to tensors.
    pub fn binding(&self) -> Result<IoBinding, String> {
        self.shared
            .peek(|session| session.create_binding())
            .map_err(|e| format!("cannot bind the model's tensors: {e}"))
    }

    /// Runs the model on the tensors `binding` holds and waits for it; outputs bound to tensors
    /// are written in place, outputs bound to a device come back in the returned values.
    pub fn run(&mut self, binding: &IoBinding) -> Result<ModelOutputs, String> {
        self.run_ordered(|session| match &self.uncaptured {
            Some(options) => session.run_binding_with_options(binding, options).map(ModelOutputs::of),
            None => session.run_binding(binding).map(ModelOutputs::of),
        })
    }

    /// [`ModelSession::run`] with `options`: on a session opened with `cuda_graph`, those of
    /// [`graph_run_options`] name the CUDA graph the run captures or replays.
    pub fn run_with(&mut self, binding: &IoBinding, options: &RunOptions) -> Result<ModelOutputs, String> {
        self.run_ordered(|session| session.run_binding_with_options(binding, options).map(ModelOutputs::of))
    }

    /// From now on [`ModelSession::run`] captures no CUDA graph: for a session opened with
    /// `cuda_graph` whose graphs are named and captured through [`ModelSession::run_with`] only
    /// (the batcher's, one per batch size). Without it, ONNX Runtime would capture its default
    /// graph at the third run on a thread, whatever the shapes.
    pub fn capture_named_graphs_only(&mut self) -> Result<(), String> {
        self.uncaptured = Some(graph_run_options(None)?);
        Ok(())
    }

    /// Runs the model like [`ModelSession::run`] but, when the session computes on a CUDA stream,
    /// returns without waiting for the GPU: for runs whose outputs stay in GPU memory and are read
    /// by later work on the element's stream, which is ordered after the run. Outputs bound to
    /// host memory must come from [`ModelSession::run`].
    pub fn run_queued(&mut self, binding: &IoBinding) -> Result<(), String> {
        let queued = self.shared.queued.as_ref().map(|(options, _)| options);
        self.run_ordered(|session| match queued {
            Some(options) => session.run_binding_with_options(binding, options).map(drop),
            None => session.run_binding(binding).map(drop),
        })
    }

    /// `run` on the session, after the element's work queued so far and before its work queued
    /// next (see [`StreamOrder`]), with the session held so that no other user's run comes in
    /// between.
    fn run_ordered<T>(&self, run: impl FnOnce(&mut Session) -> ort::Result<T>) -> Result<T, String> {
        let _device = self.one_run_per_device.then(|| DirectMlRun::wait(self.gpu_id));
        self.shared.with_session(|session| {
            if let Some(order) = &self.order {
                order.before_run()?;
            }
            let result = run(session).map_err(|e| format!("inference failed: {e}"))?;
            if let Some(order) = &self.order {
                order.after_run()?;
            }
            Ok(result)
        })
    }

    /// Runs the model `runs` times on `binding` to warm it up (cuDNN's algorithm search, ONNX
    /// Runtime's memory planning), unless another user of the shared session already did (see
    /// [`SharedWarmUp`]).
    pub fn warm_up(&mut self, binding: &IoBinding, runs: usize) -> Result<(), String> {
        self.shared_warm_up().once(|| (0..runs).try_for_each(|_| self.run(binding).map(drop)))
    }

    /// The session's warm-up, made once for all its users (for models that warm up through
    /// runs of their own rather than [`ModelSession::warm_up`]).
    pub fn shared_warm_up(&self) -> SharedWarmUp {
        SharedWarmUp(self.shared.clone())
    }

    /// Whether this session's next run on the calling thread may capture a CUDA graph: the
    /// CUDA provider keeps one graph per thread and captures it at the third run there. The
    /// elements then take the GPU work lock exclusively ([`super::gpu_work`]).
    pub fn may_capture_here(&self) -> bool {
        self.shared.cuda_graph && self.shared.runs_here() < CAPTURING_RUN
    }

    /// The symbolic names of input `index`'s dimensions (empty for fixed or unnamed ones).
    pub fn input_symbols(&self, index: usize) -> Vec<String> {
        self.shared.input_symbols.get(index).cloned().unwrap_or_default()
    }

    /// Whether this handle shares its session with `other` (the same loaded model).
    pub fn shares_session_with(&self, other: &ModelSession) -> bool {
        Arc::ptr_eq(&self.shared, &other.shared)
    }

    /// Whether the session runs on an NVIDIA GPU (CUDA or TensorRT provider).
    pub fn on_nvidia_gpu(&self) -> bool {
        matches!(self.active_provider, ExecutionProvider::Cuda | ExecutionProvider::TensorRt)
    }

    /// An allocator of the memory this session computes in: the GPU's for CUDA and TensorRT,
    /// host memory otherwise.
    pub fn device_allocator(&self) -> Result<Allocator, String> {
        if !self.on_nvidia_gpu() {
            return Ok(Allocator::default());
        }
        let info = MemoryInfo::new(
            AllocationDevice::CUDA,
            self.shared.gpu_id as i32,
            AllocatorType::Device,
            MemoryType::Default,
        )
        .map_err(|e| e.to_string())?;
        self.shared
            .peek(|session| Allocator::new(session, info))
            .map_err(|e| format!("cannot allocate GPU memory: {e}"))
    }

    /// Binds output `name` to memory ONNX Runtime allocates in host memory, for outputs whose
    /// shape depends on the input.
    pub fn bind_output_to_host(binding: &mut IoBinding, name: &str) -> Result<(), String> {
        let host = MemoryInfo::new(AllocationDevice::CPU, 0, AllocatorType::Device, MemoryType::CPUOutput)
            .map_err(|e| e.to_string())?;
        binding.bind_output_to_device(name, &host).map_err(|e| format!("cannot bind output '{name}': {e}"))
    }

    /// Opens `path` with `options` (or takes the process's open session of it, see
    /// [`super::shared`]), then lets `check` judge the model's inputs and outputs
    /// (`Err(expected)` describes the contract that was not met).
    pub fn open(
        path: &Path,
        property: &'static str,
        options: &SessionOptions,
        check: impl FnOnce(&ModelIo) -> Result<(), String>,
    ) -> Result<ModelSession, RuntimeError> {
        let path = &locate_model(path, property)?;
        let unreadable = |reason: String| RuntimeError::ModelUnreadable { path: path.to_path_buf(), reason };
        if path.is_dir() {
            return Err(unreadable(format!("it is a directory: set '{property}' to the .onnx file itself")));
        }
        if !path.is_file() {
            // A device or named pipe: reading one could block or never end.
            return Err(unreadable("not a regular file (a device or pipe)".to_string()));
        }
        match std::fs::File::open(path).and_then(|file| file.metadata()) {
            Err(e) => return Err(unreadable(e.to_string())),
            // ONNX Runtime reads an empty file as a model without a graph, and says so obscurely.
            Ok(metadata) if metadata.len() == 0 => {
                return Err(unreadable("the file is empty (0 bytes): an interrupted download or copy?".to_string()));
            }
            Ok(_) => {}
        }
        let key = SessionKey::new(path, options).map_err(|e| unreadable(e.to_string()))?;
        let shared = shared::open_shared(key, || {
            // A session shared by elements computes on a stream of its own, ordered with each
            // element's stream by events. Should no stream be made, it computes on the first
            // user's: the events order the other users' streams with that one just the same. A
            // session replayed as a CUDA graph has one user (see `shared`): it computes on that
            // user's stream, with nothing to order.
            let own_stream = options.compute_stream.as_ref().map(|element| match options.cuda_graph {
                true => element.clone(),
                false => ComputeStream::new(options.gpu_id, element.priority()).unwrap_or_else(|_| element.clone()),
            });
            let session_options = SessionOptions { compute_stream: own_stream, ..options.clone() };
            let shown = path.display().to_string();
            Self::load(path, &shown, &session_options, |builder, provider| commit_file(builder, provider, path))
        })?;
        Self::handle(shared, path, options, check)
    }

    /// Loads an ONNX model held in memory (the pixel graphs), named `name` in messages. Not
    /// shared: it computes on the stream `options` give, the element's own.
    pub fn open_memory(name: &str, bytes: &[u8], options: &SessionOptions) -> Result<ModelSession, RuntimeError> {
        let path = Path::new(name);
        let shared = Self::load(path, name, options, |builder, _| builder.commit_from_memory(bytes))?;
        Self::handle(Arc::new(shared), path, options, |_| Ok(()))
    }

    /// A handle to `shared` for a user whose own work runs on `options.compute_stream`, once
    /// `check` accepts the model.
    fn handle(
        shared: Arc<SharedSession>,
        path: &Path,
        options: &SessionOptions,
        check: impl FnOnce(&ModelIo) -> Result<(), String>,
    ) -> Result<ModelSession, RuntimeError> {
        check(&shared.io).map_err(|expected| RuntimeError::WrongKind {
            path: path.to_path_buf(),
            expected,
            found: shared.io.to_string(),
        })?;
        let order = match (&shared.queued, &options.compute_stream) {
            (Some((_, session)), Some(element)) if !session.same_as(element) => Some(
                StreamOrder::new(element, session)
                    .map_err(|reason| RuntimeError::Session { path: path.to_path_buf(), reason })?,
            ),
            _ => None,
        };
        Ok(ModelSession {
            path: path.to_path_buf(),
            io: shared.io.clone(),
            active_provider: shared.active_provider,
            fallback: shared.fallback.clone(),
            gpu_id: options.gpu_id,
            one_run_per_device: shared.active_provider.session_rules().one_run_per_device,
            shared,
            order,
            uncaptured: None,
        })
    }

    /// Commits a session with the first provider that registers and runs the model, else on the
    /// CPU with the reasons kept for the warning.
    fn load(
        path: &Path,
        shown: &str,
        options: &SessionOptions,
        commit: impl Fn(&mut SessionBuilder, ExecutionProvider) -> ort::Result<Session>,
    ) -> Result<SharedSession, RuntimeError> {
        let env = environment()?;
        let session_error = |e: ort::Error| RuntimeError::Session { path: path.to_path_buf(), reason: e.to_string() };
        let reason = |reason: String| RuntimeError::Session { path: path.to_path_buf(), reason };

        let mut failures = Vec::new();
        for provider in options.provider.candidates() {
            // `auto` quietly passes over providers this ONNX Runtime build lacks; an explicit
            // choice is reported even then.
            if options.provider == ExecutionProvider::Auto && !provider.compiled_in() {
                continue;
            }
            let Some(dispatch) = provider.dispatch(options) else { continue };
            if matches!(provider, ExecutionProvider::Cuda | ExecutionProvider::TensorRt) && !options.spin_wait {
                // Failing leaves CUDA's spinning waits: slower on the CPU, not wrong.
                let _ = super::prefer_blocking_sync(options.gpu_id);
            }
            let builder = options.builder(&env, provider).map_err(session_error)?;
            let mut builder =
                with_profile(builder, profile_dir().map_err(reason)?.as_deref(), path).map_err(session_error)?;
            if let Err(e) = dispatch.register(&mut builder) {
                failures.push(format!("{}: {e}", provider.nick()));
                continue;
            }
            match commit(&mut builder, provider) {
                Ok(session) => return Self::shared(session, path, provider, None, options),
                // A provider can register and still fail on this model (missing cuDNN, an
                // unsupported operator): the CPU may still run it.
                Err(e) => failures.push(format!("{}: {e}", provider.nick())),
            }
        }

        let builder = options.builder(&env, ExecutionProvider::Cpu).map_err(session_error)?;
        let mut builder =
            with_profile(builder, profile_dir().map_err(reason)?.as_deref(), path).map_err(session_error)?;
        let session = commit(&mut builder, ExecutionProvider::Cpu)
            .map_err(|e| RuntimeError::ModelUnreadable { path: path.to_path_buf(), reason: e.to_string() })?;
        let fallback = (!failures.is_empty()).then(|| {
            format!(
                "execution provider '{}' could not be used for '{shown}', running on the CPU instead: {}",
                options.provider.nick(),
                failures.join("; ")
            )
        });
        Self::shared(session, path, ExecutionProvider::Cpu, fallback, options)
    }

    fn shared(
        session: Session,
        path: &Path,
        active_provider: ExecutionProvider,
        fallback: Option<String>,
        options: &SessionOptions,
    ) -> Result<SharedSession, RuntimeError> {
        let io = ModelIo::of(&session);
        let queued = match (&options.compute_stream, active_provider) {
            (Some(stream), ExecutionProvider::Cuda) => {
                let run_options = RunOptions::new()
                    .and_then(|mut o| o.disable_device_sync().map(|()| o))
                    .map_err(|e| RuntimeError::Session { path: path.to_path_buf(), reason: e.to_string() })?;
                Some((run_options, stream.clone()))
            }
            _ => None,
        };
        Ok(SharedSession::new(session, io, active_provider, fallback, options, queued))
    }
}

/// The folder named by `DLC_ORT_PROFILE`, where every session the process opens writes ONNX
/// Runtime's profile of its runs (unset or empty: no profiling).
fn profile_dir() -> Result<Option<PathBuf>, String> {
    profile_dir_of(std::env::var_os("DLC_ORT_PROFILE"))
}

/// [`profile_dir`] for the variable's value. A value that is not a folder is an error: ONNX
/// Runtime would drop the profiles silently, and whoever set it is waiting for them.
fn profile_dir_of(value: Option<std::ffi::OsString>) -> Result<Option<PathBuf>, String> {
    let Some(dir) = value.filter(|d| !d.is_empty()).map(PathBuf::from) else { return Ok(None) };
    if !dir.is_dir() {
        return Err(format!(
            "DLC_ORT_PROFILE='{}' is not a folder: expected an existing folder for ONNX Runtime's profiles (or unset it)",
            dir.display()
        ));
    }
    Ok(Some(dir))
}

/// `builder` writing ONNX Runtime's profile into `dir` when one is given: a JSON file per session,
/// `MODEL-PID-N_TIME.json` (N counts the process's sessions, since one model file may be opened
/// many times within a second), written when the session closes. It lists every node's runs
/// with their times and the execution provider that ran them, which shows a model that runs
/// partly on the CPU, or a slow node, where the elements' step times only show a slow model.
///
/// A profiled session runs on a thread pool of its own: ONNX Runtime profiles the session's
/// pool during each run, and on the environment's shared pool that switched the profiler on and
/// off under other sessions' runs, failing them ("LogStart must pair with LogEnd").
fn with_profile(builder: SessionBuilder, dir: Option<&Path>, model: &Path) -> ort::Result<SessionBuilder> {
    static SESSIONS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let Some(dir) = dir else { return Ok(builder) };
    let stem: String = (model.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default().chars())
        .map(|c| if c.is_ascii_alphanumeric() || c == '_' || c == '.' { c } else { '-' })
        .collect();
    let n = SESSIONS.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let builder = builder.with_independent_thread_pool()?.with_intra_op_spinning(false)?;
    Ok(builder.with_profiling(dir.join(format!("{stem}-{}-{n}", std::process::id())))?)
}

/// Makes the session from the model file; for CoreML, from the file with the CoreML rewrites
/// applied ([`super::coreml_rewrites`]) when any applies. A file the rewrites cannot read is
/// committed as it is, and ONNX Runtime reports what is wrong with it.
fn commit_file(builder: &mut SessionBuilder, provider: ExecutionProvider, path: &Path) -> ort::Result<Session> {
    if provider == ExecutionProvider::CoreMl
        && let Ok(bytes) = std::fs::read(path)
        && let Ok(Some((rewritten, _))) = super::coreml_rewrites::rewrite_for_coreml(&bytes)
    {
        return builder.commit_from_memory(&rewritten);
    }
    builder.commit_from_file(path)
}

/// The directory model files are looked up in when no path is given: `$DLC_MODELS_DIR`, else
/// `$XDG_DATA_HOME/gstdlc/models`, else `~/.local/share/gstdlc/models`.
pub fn default_models_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("DLC_MODELS_DIR").filter(|d| !d.is_empty()) {
        return PathBuf::from(dir);
    }
    let data_home = std::env::var_os("XDG_DATA_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".local/share")))
        .unwrap_or_else(|| PathBuf::from("."));
    data_home.join("gstdlc").join("models")
}

/// The file a model property names: the path as given when it exists; a bare file name
/// (`det_10g.onnx`, as README's recipes write it) that is not in the current directory is looked
/// for in the model directory. A missing file is an error listing every place looked in.
fn locate_model(given: &Path, property: &'static str) -> Result<PathBuf, RuntimeError> {
    let current_dir = std::env::current_dir().unwrap_or_default();
    locate_model_in(given, property, &current_dir, &default_models_dir())
}

fn locate_model_in(
    given: &Path,
    property: &'static str,
    current_dir: &Path,
    models_dir: &Path,
) -> Result<PathBuf, RuntimeError> {
    // `exists` follows links: a dangling one is as missing as its target.
    if given.exists() {
        return Ok(given.to_path_buf());
    }
    let bare = matches!(given.components().collect::<Vec<_>>().as_slice(), [Component::Normal(_)]);
    let in_models_dir = models_dir.join(given);
    if bare && in_models_dir.exists() {
        return Ok(in_models_dir);
    }
    let looked_in = match (given.is_absolute(), bare) {
        (true, _) => Vec::new(),
        (false, false) => vec![format!("'{}' (the current directory)", current_dir.join(given).display())],
        (false, true) => vec![
            format!("'{}' (the current directory)", current_dir.join(given).display()),
            format!("'{}' (the model directory)", in_models_dir.display()),
        ],
    };
    Err(RuntimeError::ModelMissing { path: given.to_path_buf(), property, looked_in })
}

/// Where TensorRT engines are cached unless `tensorrt-cache` says otherwise:
/// `$XDG_CACHE_HOME/gstdlc/tensorrt`, else `~/.cache/gstdlc/tensorrt`.
pub fn default_cache_dir() -> Option<PathBuf> {
    let cache_home = std::env::var_os("XDG_CACHE_HOME")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))?;
    Some(cache_home.join("gstdlc").join("tensorrt"))
}

/// The file a model property means: the path given, else `default_name` in the model directory.
pub fn resolve_model_path(given: Option<&Path>, default_name: &str) -> PathBuf {
    match given {
        Some(path) => path.to_path_buf(),
        None => default_models_dir().join(default_name),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profiled_session_writes_which_provider_ran_each_node() {
        use crate::backend::graph::onnx::{Dim, Elem, Graph};
        let dir = tempfile::tempdir().unwrap();
        let mut g = Graph::new("profile_test");
        let x = g.input("x", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(2)]);
        let y = g.op("Tanh", &[&x], Vec::new());
        g.output(&y, "y", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(2)]);
        let model = dir.path().join("profile test.onnx");
        std::fs::write(&model, g.encode()).unwrap();
        let profiles = dir.path().join("profiles");
        std::fs::create_dir(&profiles).unwrap();

        let builder = Session::builder(&environment().unwrap()).unwrap();
        let mut session = with_profile(builder, Some(&profiles), &model).unwrap().commit_from_file(&model).unwrap();
        let input = ort::value::Tensor::from_array(([1usize, 2], vec![0.5f32, -1.0])).unwrap();
        session.run(ort::inputs!["x" => input]).unwrap();
        drop(session);

        let written: Vec<_> = std::fs::read_dir(&profiles).unwrap().map(|e| e.unwrap().path()).collect();
        let [file] = written.as_slice() else { panic!("one profile expected, found {written:?}") };
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with(&format!("profile-test-{}-", std::process::id())), "{name}");
        assert!(name.ends_with(".json"), "{name}");
        let text = std::fs::read_to_string(file).unwrap();
        assert!(text.contains("\"op_name\" : \"Tanh\"") || text.contains("\"op_name\":\"Tanh\""), "{text}");
        assert!(text.contains("CPUExecutionProvider"), "{text}");
        // A value that is not a folder is refused with the variable named; unset or empty is off.
        let file = dir.path().join("profile test.onnx");
        let err = profile_dir_of(Some(file.clone().into_os_string())).unwrap_err();
        assert!(err.contains("DLC_ORT_PROFILE=") && err.contains("is not a folder"), "{err}");
        assert!(profile_dir_of(Some(dir.path().join("missing").into_os_string())).is_err());
        assert_eq!(profile_dir_of(Some("".into())), Ok(None));
        assert_eq!(profile_dir_of(None), Ok(None));
        assert_eq!(profile_dir_of(Some(profiles.clone().into_os_string())), Ok(Some(profiles.clone())));
        // Without a folder nothing is profiled.
        let builder = Session::builder(&environment().unwrap()).unwrap();
        drop(with_profile(builder, None, &model).unwrap().commit_from_file(&model).unwrap());
        assert_eq!(std::fs::read_dir(&profiles).unwrap().count(), 1);
    }

    #[test]
    fn a_profiled_session_leaves_other_sessions_runs_alone() {
        // ONNX Runtime profiles the thread pool of a session during each of its runs. On the
        // environment's shared pool, profiling that started or stopped while another session's run
        // was inside a parallel section broke the profiler's bookkeeping and failed that run
        // ("LogStart must pair with LogEnd").
        use crate::backend::graph::onnx::{Attr, Dim, Elem, Graph};
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, convs: usize| {
            let mut g = Graph::new("pool_test");
            let dims = [Dim::Fixed(1), Dim::Fixed(16), Dim::Fixed(64), Dim::Fixed(64)];
            let mut y = g.input("x", Elem::Float, &dims);
            let w = g.floats(&vec![0.01f32; 16 * 16 * 9], &[16, 16, 3, 3]);
            for _ in 0..convs {
                y = g.op("Conv", &[&y, &w], vec![Attr::Ints("pads", vec![1, 1, 1, 1])]);
            }
            y = g.op("Tanh", &[&y], Vec::new());
            g.output(&y, "y", Elem::Float, &dims);
            let path = dir.path().join(name);
            std::fs::write(&path, g.encode()).unwrap();
            path
        };
        let (light, heavy) = (write("light.onnx", 1), write("heavy.onnx", 8));
        let profiles = dir.path().join("profiles");
        std::fs::create_dir(&profiles).unwrap();
        let env = environment().unwrap();
        let session = |model: &Path, dir: Option<&Path>| {
            with_profile(Session::builder(&env).unwrap(), dir, model).unwrap().commit_from_file(model).unwrap()
        };
        let run = |session: &mut Session| {
            let input = ort::value::Tensor::from_array(([1usize, 16, 64, 64], vec![0.5f32; 16 * 64 * 64]))?;
            session.run(ort::inputs!["x" => input]).map(drop)
        };
        let done = std::sync::atomic::AtomicBool::new(false);
        let (plain, profiled) = std::thread::scope(|scope| {
            let plain = scope.spawn(|| {
                let mut session = session(&heavy, None);
                let mut runs = 0;
                while !done.load(std::sync::atomic::Ordering::SeqCst) {
                    run(&mut session)?;
                    runs += 1;
                }
                Ok::<_, ort::Error>(runs)
            });
            let mut profiled = session(&light, Some(&profiles));
            let profiled_runs = (0..4000).try_for_each(|_| run(&mut profiled));
            done.store(true, std::sync::atomic::Ordering::SeqCst);
            (plain.join().unwrap(), profiled_runs)
        });
        assert!(profiled.is_ok() && plain.as_ref().is_ok_and(|runs| *runs > 0), "{plain:?} {profiled:?}");
    }

    #[test]
    fn a_bare_model_name_is_looked_for_here_then_in_the_model_directory() {
        let here = tempfile::tempdir().unwrap();
        let models = tempfile::tempdir().unwrap();
        std::fs::write(models.path().join("det_10g.onnx"), b"model").unwrap();
        let bare = Path::new("det_10g.onnx");
        let found = locate_model_in(bare, "model-file", here.path(), models.path()).unwrap();
        assert_eq!(found, models.path().join("det_10g.onnx"));

        // A file of that name in the current directory comes first (the path as given).
        std::fs::write(here.path().join("det_10g.onnx"), b"model").unwrap();
        let relative = here.path().join("det_10g.onnx");
        assert_eq!(locate_model_in(&relative, "model-file", here.path(), models.path()).unwrap(), relative);

        // Paths with a directory are taken as given, never looked for in the model directory.
        let nested = Path::new("sub/det_10g.onnx");
        std::fs::create_dir(models.path().join("sub")).unwrap();
        std::fs::write(models.path().join("sub/det_10g.onnx"), b"model").unwrap();
        let err = locate_model_in(nested, "model-file", here.path(), models.path()).unwrap_err().to_string();
        assert!(err.contains(&format!("'{}' (the current directory)", here.path().join(nested).display())), "{err}");
        assert!(!err.contains("model directory"), "{err}");
    }

    #[test]
    fn a_missing_bare_name_says_where_it_was_looked_for() {
        let here = tempfile::tempdir().unwrap();
        let models = tempfile::tempdir().unwrap();
        let err = locate_model_in(Path::new("w600k_r50.onnx"), "recognition-model", here.path(), models.path())
            .unwrap_err()
            .to_string();
        assert!(err.starts_with("model file 'w600k_r50.onnx' does not exist"), "{err}");
        assert!(err.contains(&format!("'{}' (the current directory)", here.path().join("w600k_r50.onnx").display())));
        assert!(err.contains(&format!("'{}' (the model directory)", models.path().join("w600k_r50.onnx").display())));
        assert!(err.contains("set the 'recognition-model' property"), "{err}");

        let absolute = here.path().join("absent.onnx");
        let err = locate_model_in(&absolute, "model-file", here.path(), models.path()).unwrap_err().to_string();
        assert!(err.contains(&format!("'{}' does not exist:", absolute.display())), "{err}");
    }
}
