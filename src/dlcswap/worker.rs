// SPDX-License-Identifier: MPL-2.0
//! The picture worker of one `dlcswap`: turns a `source` or `reference` picture set while
//! playing into an identity on one thread of its own, so that neither the streaming thread nor
//! the application waits for the detector and recogniser.
//!
//! Requests are kept per kind, newest only: a picture replaced before the worker got to it is
//! never computed, however many were set. Every request, start and stop takes a new ticket for
//! its kind, and a result is stored only while its ticket is still the newest, checked and
//! stored under one lock: a picture from before a stop can never overwrite the identity that the
//! next start computed, and an older picture never overwrites a newer one.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use parking_lot::{Condvar, Mutex};

use crate::faces::identity::{IdentityModels, SourceProjection, normalized_embedding};
use crate::faces::select::Identities;
use crate::runtime::SessionOptions;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IdentityKind {
    Source,
    Reference,
}

impl IdentityKind {
    pub(super) const ALL: [IdentityKind; 2] = [IdentityKind::Source, IdentityKind::Reference];

    pub(super) fn property(self) -> &'static str {
        match self {
            IdentityKind::Source => "source",
            IdentityKind::Reference => "reference",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Opens a detector and recogniser for the worker's own use (see [`Models`]).
type OpenModels = Arc<dyn Fn() -> Result<IdentityModels, String> + Send + Sync>;

/// How the worker gets its detector and recogniser, and the swapper's identity projection, for
/// the pictures of one run. The worker opens models of its own, on its thread at its first
/// picture of the run (most runs change no picture), rather than borrow the element's: the lanes
/// embed the frames' faces with those, and must never wait for a picture nor go without. (Both
/// are handles to the process's one session of each file: a lane waits at most for one run.)
#[derive(Clone)]
pub(super) struct Models {
    open: OpenModels,
    projection: SourceProjection,
}

impl Models {
    /// The `detector` and `recognizer` files, opened with `options` when the worker first needs
    /// them, and the swapper's identity projection.
    pub(super) fn new(
        detector: PathBuf,
        recognizer: PathBuf,
        options: SessionOptions,
        projection: SourceProjection,
    ) -> Self {
        let open = move || IdentityModels::open(&detector, &recognizer, &options).map_err(|e| e.to_string());
        Models { open: Arc::new(open), projection }
    }
}

/// Raw ArcFace embedding of the largest face in the picture at `path`, with the picture named in any error.
pub(super) fn picture_identity(models: &mut IdentityModels, kind: &str, path: &Path) -> Result<Vec<f32>, String> {
    models.identity_of_image(path).map_err(|reason| format!("{kind} picture '{}': {reason}", path.display()))
}

/// What became of a property change, for the element to report once its locks are released.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Requested {
    /// Not running: the next start reads the property.
    Stopped,
    /// Unset while running: the previous identity stays.
    Cleared,
    /// The worker computes it.
    Queued,
    /// No thread could be started for it: the previous identity stays.
    NoWorker(String),
}

/// What the worker did with a picture, reported on the worker thread with no lock held.
pub(super) enum Report {
    Applied(IdentityKind, PathBuf),
    Failed(String),
    /// A newer request, a stop or a start came meanwhile: the result was dropped.
    Superseded(IdentityKind, PathBuf),
}

pub(super) type Reporter = Arc<dyn Fn(Report) + Send + Sync>;

struct Job {
    kind: IdentityKind,
    path: PathBuf,
    ticket: u64,
    models: Models,
}

#[derive(Default)]
struct Queue {
    /// The last ticket given out; one counter for both kinds, so that tickets also order the
    /// requests of different kinds.
    last_ticket: u64,
    /// Per kind, the ticket of the newest request (or start, or stop).
    tickets: [u64; 2],
    /// Per kind, the newest request the worker has not taken yet, with its ticket.
    pending: [Option<(PathBuf, u64)>; 2],
    /// The running element's models and reporter; `None` while stopped.
    running: Option<(Models, Reporter)>,
    /// Bumped when the worker thread must end; each thread runs for the epoch it was started in,
    /// so that a thread that could not be joined (a stop on the worker thread itself, from a
    /// synchronous bus handler) still ends instead of becoming a second worker.
    epoch: u64,
    thread: Option<JoinHandle<()>>,
}

impl Queue {
    fn new_ticket(&mut self, kind: IdentityKind) -> u64 {
        self.last_ticket += 1;
        self.tickets[kind.index()] = self.last_ticket;
        self.last_ticket
    }

    /// A start or stop: nothing asked for before counts any more.
    fn renew_tickets(&mut self) {
        for kind in IdentityKind::ALL {
            self.new_ticket(kind);
        }
        self.pending = Default::default();
    }

    /// The request to compute next, taken off the queue: the older of the two kinds, so that a
    /// stream of `source` changes cannot hold back a `reference` change.
    fn take(&mut self) -> Option<Job> {
        let models = self.running.as_ref()?.0.clone();
        let kind = IdentityKind::ALL
            .into_iter()
            .filter_map(|kind| Some((kind, self.pending[kind.index()].as_ref()?.1)))
            .min_by_key(|&(_, ticket)| ticket)?
            .0;
        let (path, ticket) = self.pending[kind.index()].take()?;
        Some(Job { kind, path, ticket, models })
    }
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    /// The element's identities in use, which the streaming thread reads.
    identities: Arc<Mutex<Identities>>,
}

pub(super) struct PictureWorker {
    shared: Arc<Shared>,
}

impl PictureWorker {
    pub(super) fn new(identities: Arc<Mutex<Identities>>) -> Self {
        let shared = Shared { queue: Mutex::new(Queue::default()), wake: Condvar::new(), identities };
        PictureWorker { shared: Arc::new(shared) }
    }

    /// The element runs with `models` (after it computed its identities): requests are taken
    /// from now on, and anything computed for an earlier run is dropped.
    pub(super) fn start(&self, models: Models, reporter: Reporter) {
        let mut queue = self.shared.queue.lock();
        queue.renew_tickets();
        queue.running = Some((models, reporter));
    }

    /// The element stops: pending pictures are dropped, a picture in flight can no longer be
    /// stored, and the worker thread ends. Waits for the picture in flight, if any (never on the
    /// streaming thread, which is stopped by now); holds no lock meanwhile, so that the worker's
    /// last report may still set properties.
    pub(super) fn stop(&self) {
        let thread = {
            let mut queue = self.shared.queue.lock();
            queue.renew_tickets();
            queue.running = None;
            queue.epoch += 1;
            queue.thread.take()
        };
        self.shared.wake.notify_all();
        join(thread);
    }

    /// A new `path` for `kind`: replaces any request of that kind not taken yet, and makes
    /// whatever is being computed for an older one be dropped.
    pub(super) fn request(&self, kind: IdentityKind, path: Option<PathBuf>) -> Requested {
        let mut queue = self.shared.queue.lock();
        let Some((_, reporter)) = queue.running.as_ref() else { return Requested::Stopped };
        let reporter = reporter.clone();
        let ticket = queue.new_ticket(kind);
        let Some(path) = path else {
            queue.pending[kind.index()] = None;
            return Requested::Cleared;
        };
        queue.pending[kind.index()] = Some((path, ticket));
        // Started on the first picture of a run (most runs never change one); a thread that
        // ended early (a panic outside the caught computation) is replaced rather than waited for.
        if queue.thread.as_ref().is_none_or(JoinHandle::is_finished) {
            let (shared, epoch) = (self.shared.clone(), queue.epoch);
            let spawned = std::thread::Builder::new()
                .name("dlcswap-pictures".into())
                .spawn(move || work(&shared, epoch, &reporter));
            match spawned {
                Ok(thread) => queue.thread = Some(thread),
                Err(e) => {
                    queue.pending[kind.index()] = None;
                    return Requested::NoWorker(format!("cannot start the picture worker: {e}"));
                }
            }
        }
        drop(queue);
        self.shared.wake.notify_all();
        Requested::Queued
    }
}

impl Drop for PictureWorker {
    /// An element finalised without having been stopped: the thread must not outlive it.
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits for the worker thread to end, unless this is the worker thread itself (a synchronous
/// bus handler that stops the element from a report): it ends by itself after the report.
fn join(thread: Option<JoinHandle<()>>) {
    if let Some(thread) = thread
        && thread.thread().id() != std::thread::current().id()
    {
        // A panic in the worker already lost that picture; nothing more to do about it here.
        let _ = thread.join();
    }
}

/// The worker thread: the newest request of each kind, one at a time, until its epoch ends.
fn work(shared: &Shared, epoch: u64, reporter: &Reporter) {
    // The thread's own models, opened at its first picture; freed when the run ends.
    let mut own: Option<IdentityModels> = None;
    compute(shared, epoch, reporter, &mut own);
    // Freeing GPU memory is GPU work too (see `gpu_work`).
    let _gpu = crate::runtime::gpu_work(false);
    drop(own);
}

/// The pictures of one epoch, computed with `own` (opened when first needed).
fn compute(shared: &Shared, epoch: u64, reporter: &Reporter, own: &mut Option<IdentityModels>) {
    loop {
        let job = {
            let mut queue = shared.queue.lock();
            loop {
                if queue.epoch != epoch {
                    return;
                }
                if let Some(job) = queue.take() {
                    break job;
                }
                shared.wake.wait(&mut queue);
            }
        };
        let result = {
            let _gpu = crate::runtime::gpu_work(false);
            identity_of_caught(&job, own)
        };
        let report = {
            let queue = shared.queue.lock();
            if queue.tickets[job.kind.index()] != job.ticket {
                Report::Superseded(job.kind, job.path)
            } else {
                match result {
                    Ok(identity) => {
                        let mut identities = shared.identities.lock();
                        match job.kind {
                            IdentityKind::Source => identities.source = Some(identity),
                            IdentityKind::Reference => identities.reference = Some(identity),
                        }
                        Report::Applied(job.kind, job.path)
                    }
                    Err(reason) => Report::Failed(reason),
                }
            }
        };
        reporter(report);
    }
}

/// [`identity_of`], with a panic in the decoder or the models turned into a failure report: a
/// panic would otherwise end this thread and lose the picture without a word to the user.
fn identity_of_caught(job: &Job, own: &mut Option<IdentityModels>) -> Result<Arc<[f32]>, String> {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| identity_of(job, own))).unwrap_or_else(|panic| {
        let what = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".to_string());
        Err(format!(
            "{} picture '{}': internal error while computing its identity ({what}); please report it",
            job.kind.property(),
            job.path.display()
        ))
    })
}

/// The identity of the job's picture: the swapper latent for a source, the embedding for a
/// reference. Opens the worker's models first if this is its first picture.
fn identity_of(job: &Job, own: &mut Option<IdentityModels>) -> Result<Arc<[f32]>, String> {
    let models = match own {
        Some(models) => models,
        None => own.insert((job.models.open)().map_err(|reason| {
            format!("{} picture '{}': cannot open the models: {reason}", job.kind.property(), job.path.display())
        })?),
    };
    let raw = picture_identity(models, job.kind.property(), &job.path)?;
    match job.kind {
        IdentityKind::Source => {
            job.models.projection.apply(&raw).map(Arc::from).ok_or_else(|| "identity projection failed".to_string())
        }
        IdentityKind::Reference => normalized_embedding(&raw).map(Arc::from),
    }
}
