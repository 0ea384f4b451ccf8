// SPDX-License-Identifier: MPL-2.0
//! One ONNX Runtime session per model file and result-changing options, per process.
//!
//! Every element (and every lane of one) used to open its own sessions, so N pipelines held N
//! copies of each model's weights and ONNX Runtime's work memory, and warmed each up (issue 19:
//! 880 MB per added pipeline on the CPU with the real swapper, about 2 GB on a GPU). Now the
//! first element to open a model file with a set of options loads it; the others get handles
//! ([`super::ModelSession`]) to the same [`SharedSession`]. The registry only holds weak
//! references: the session closes when its last handle goes.
//!
//! What a key holds, and why (README's layout notes say the same for users):
//! - the file's identity: canonical path, size, modification time and, on Unix, device and inode,
//!   so that a file replaced or rewritten on disk is loaded anew for the elements that start
//!   after, while the running ones keep the session they have;
//! - every [`SessionOptions`] field that changes what runs: provider asked for, GPU, precision,
//!   thread pool (`threads`, `spin_wait`), TensorRT cache, fixed dimensions, and whether the
//!   session computes on a CUDA stream of its own (and at which priority);
//! - for sessions captured as CUDA graphs, the user: ONNX Runtime's CUDA provider keeps a graph
//!   per calling thread, captured with the GPU addresses of the tensors bound at capture, and a
//!   replay reads those addresses whatever is bound since. Two users running one captured session
//!   on the same thread (two elements in one streaming thread, or a pooled streaming thread
//!   handed from a stopped pipeline to another) would replay one's graph on the other's tensors.
//!   A captured session is therefore never shared; sharing it needs tensors owned by the session
//!   that users copy into and out of (the next step, see README).
//!
//! The pixel graphs ([`super::ModelSession::open_memory`]) are not shared: they are a few
//! kilobytes, and each runs on its element's own stream next to the element's tensors.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::ThreadId;
use std::time::SystemTime;

use ort::session::{RunOptions, Session};
use parking_lot::Mutex;

use super::model::ModelIo;
use super::{ComputeStream, ExecutionProvider, Precision, RuntimeError, SessionOptions, StreamPriority};

/// Which file a model session was loaded from, as it was on disk then.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct FileIdentity {
    path: PathBuf,
    len: u64,
    modified: Option<SystemTime>,
    /// Device and inode: a file replaced by another (renamed over it) within the modification
    /// time's resolution and of the same size is still another file.
    node: (u64, u64),
}

impl FileIdentity {
    fn of(path: &Path) -> Result<FileIdentity, std::io::Error> {
        let path = path.canonicalize()?;
        let metadata = std::fs::metadata(&path)?;
        #[cfg(unix)]
        let node = {
            use std::os::unix::fs::MetadataExt;
            (metadata.dev(), metadata.ino())
        };
        #[cfg(not(unix))]
        let node = (0, 0);
        Ok(FileIdentity { path, len: metadata.len(), modified: metadata.modified().ok(), node })
    }
}

/// What makes two opened model files the same session (see the module's documentation).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct SessionKey {
    file: FileIdentity,
    provider: ExecutionProvider,
    gpu_id: u32,
    precision: Precision,
    threads: u32,
    spin_wait: bool,
    tensorrt_cache: Option<PathBuf>,
    dimension_overrides: Vec<(String, i64)>,
    stream: Option<StreamPriority>,
    /// `Some(user)` for a session captured as a CUDA graph: one per user, never shared.
    captured_for: Option<u64>,
}

/// Users of captured sessions, numbered so that each gets a key of its own.
static CAPTURED_USERS: AtomicU64 = AtomicU64::new(0);

impl SessionKey {
    pub(crate) fn new(path: &Path, options: &SessionOptions) -> Result<SessionKey, std::io::Error> {
        Ok(SessionKey {
            file: FileIdentity::of(path)?,
            provider: options.provider,
            gpu_id: options.gpu_id,
            precision: options.precision,
            threads: options.threads,
            spin_wait: options.spin_wait,
            tensorrt_cache: options.tensorrt_cache.clone(),
            dimension_overrides: options.dimension_overrides.clone(),
            stream: options.compute_stream.as_ref().map(ComputeStream::priority),
            captured_for: options.cuda_graph.then(|| CAPTURED_USERS.fetch_add(1, Ordering::Relaxed)),
        })
    }
}

/// A loaded model that any number of elements run through their [`super::ModelSession`]
/// handles. ONNX Runtime's runs are not safe to make from several threads at once (`ort` takes
/// `&mut` for them), so the session sits behind a mutex, held for the run only.
pub(crate) struct SharedSession {
    session: Mutex<Session>,
    pub(crate) io: ModelIo,
    /// The symbolic names of each input's dimensions.
    pub(crate) input_symbols: Vec<Vec<String>>,
    pub(crate) active_provider: ExecutionProvider,
    pub(crate) fallback: Option<String>,
    pub(crate) gpu_id: u32,
    /// The CUDA stream the session computes on, and run options that skip the wait for the GPU
    /// at the end of a run (when the session runs on CUDA with a stream given).
    pub(crate) queued: Option<(RunOptions, ComputeStream)>,
    /// Whether ONNX Runtime captures the model as a CUDA graph, and the runs made on each thread
    /// (it captures per thread, see [`super::ModelSession::may_capture_here`]).
    pub(crate) cuda_graph: bool,
    runs_per_thread: Mutex<Vec<(ThreadId, u32)>>,
    /// Whether a user has warmed the session up; held while one does, so that the others wait
    /// for that warm-up rather than make their own.
    warmed: Mutex<bool>,
}

impl SharedSession {
    pub(crate) fn new(
        session: Session,
        io: ModelIo,
        active_provider: ExecutionProvider,
        fallback: Option<String>,
        options: &SessionOptions,
        queued: Option<(RunOptions, ComputeStream)>,
    ) -> SharedSession {
        let input_symbols = session
            .inputs()
            .iter()
            .map(|input| match input.dtype() {
                ort::value::ValueType::Tensor { dimension_symbols, .. } => dimension_symbols.iter().cloned().collect(),
                _ => Vec::new(),
            })
            .collect();
        SharedSession {
            session: Mutex::new(session),
            io,
            input_symbols,
            active_provider,
            fallback,
            gpu_id: options.gpu_id,
            queued,
            cuda_graph: options.cuda_graph && active_provider == ExecutionProvider::Cuda,
            runs_per_thread: Mutex::new(Vec::new()),
            warmed: Mutex::new(false),
        }
    }

    /// Runs `run` on the session, alone, counting the run for the calling thread.
    pub(crate) fn with_session<T>(&self, run: impl FnOnce(&mut Session) -> T) -> T {
        let mut session = self.session.lock();
        self.count_run();
        run(&mut session)
    }

    /// `f` with the session, for calls that do not run it (bindings, allocators).
    pub(crate) fn peek<T>(&self, f: impl FnOnce(&Session) -> T) -> T {
        f(&self.session.lock())
    }

    fn count_run(&self) {
        if !self.cuda_graph {
            return;
        }
        let here = std::thread::current().id();
        let mut runs = self.runs_per_thread.lock();
        match runs.iter_mut().find(|(thread, _)| *thread == here) {
            Some((_, count)) => *count = count.saturating_add(1),
            None => runs.push((here, 1)),
        }
    }

    /// The runs made on the calling thread so far.
    pub(crate) fn runs_here(&self) -> u32 {
        let here = std::thread::current().id();
        self.runs_per_thread.lock().iter().find(|(thread, _)| *thread == here).map_or(0, |(_, runs)| *runs)
    }

    /// Runs `warm_up` unless a user already warmed the session up; a user that comes while
    /// another warms it up waits for that one.
    pub(crate) fn warm_up_once(&self, warm_up: impl FnOnce() -> Result<(), String>) -> Result<(), String> {
        let mut warmed = self.warmed.lock();
        if *warmed {
            return Ok(());
        }
        warm_up()?;
        *warmed = true;
        Ok(())
    }
}

/// The sessions of one key: a slot locked while its session loads, so that a second user of the
/// same key waits for that load instead of making its own, while other keys load meanwhile.
#[derive(Default)]
struct Slot(Mutex<Weak<SharedSession>>);

static REGISTRY: Mutex<Option<HashMap<SessionKey, Arc<Slot>>>> = Mutex::new(None);
static MODEL_SESSIONS_LOADED: AtomicU64 = AtomicU64::new(0);

/// The session of `key`: the open one when there is one, else the one `load` makes (then kept,
/// weakly, for the next user).
pub(crate) fn open_shared(
    key: SessionKey,
    load: impl FnOnce() -> Result<SharedSession, RuntimeError>,
) -> Result<Arc<SharedSession>, RuntimeError> {
    let slot = {
        let mut registry = REGISTRY.lock();
        let registry = registry.get_or_insert_with(HashMap::new);
        // Forget keys whose session closed (a slot being loaded is locked, and kept).
        registry.retain(|_, slot| {
            Arc::strong_count(slot) > 1 || slot.0.try_lock().is_none_or(|session| session.strong_count() > 0)
        });
        registry.entry(key).or_default().clone()
    };
    let mut current = slot.0.lock();
    if let Some(shared) = current.upgrade() {
        return Ok(shared);
    }
    let shared = Arc::new(load()?);
    MODEL_SESSIONS_LOADED.fetch_add(1, Ordering::Relaxed);
    *current = Arc::downgrade(&shared);
    Ok(shared)
}

/// How many model-file sessions the process has loaded so far (pixel graphs not counted): with
/// sessions shared, a second pipeline of the same models adds none.
pub fn model_sessions_loaded() -> u64 {
    MODEL_SESSIONS_LOADED.load(Ordering::Relaxed)
}

/// How many handles to sessions of the file at `path` exist now, over every set of options:
/// roughly how many elements and lanes of the process use the model (`lanes=auto` makes one lane
/// where others already keep the GPU busy with it).
pub fn users_of(path: &Path) -> usize {
    let Ok(path) = path.canonicalize() else { return 0 };
    let registry = REGISTRY.lock();
    (registry.iter().flat_map(|registry| registry.iter()))
        .filter(|(key, _)| key.file.path == path)
        .map(|(_, slot)| slot.0.try_lock().map_or(0, |session| session.strong_count()))
        .sum()
}

/// How many sessions of the file at `path` are open now (one per set of options that change
/// results; a file replaced on disk counts separately from the one it replaced while both are
/// open). For tests and diagnostics.
pub fn open_sessions_of(path: &Path) -> usize {
    let Ok(path) = path.canonicalize() else { return 0 };
    let registry = REGISTRY.lock();
    registry.iter().flat_map(|registry| registry.iter()).filter(|(key, _)| key.file.path == path).fold(
        0,
        |open, (_, slot)| match slot.0.try_lock() {
            Some(session) => open + usize::from(session.strong_count() > 0),
            // Being loaded right now.
            None => open + 1,
        },
    )
}
