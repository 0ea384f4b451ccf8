// SPDX-License-Identifier: MPL-2.0
//! Frames in flight. With `lanes > 1` dlcswap and dlcenhance hand frames in turn to that many
//! worker threads, each owning one copy of the per-frame work (its own model and, on CUDA, its
//! own stream), and send them on in the order they came: while one frame's model runs on the GPU
//! the next frame is cropped and the previous one pasted on the CPU, instead of the two waiting
//! for each other. [`Lanes`] is the worker pool; [`InFlight`] is the `BaseTransform` side both
//! elements share (submitting, sending on in order, events, flushes and the latency query).

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use parking_lot::Mutex;

pub const DEFAULT_LANES: u32 = 1;
pub const MAX_LANES: u32 = 4;

/// The `lanes` property, with the element's own `blurb` (what a lane holds, what it buys).
pub fn property(blurb: &str) -> glib::ParamSpec {
    glib::ParamSpecUInt::builder("lanes")
        .nick("Frames in flight")
        .blurb(&format!(
            "{blurb}. The lanes are made at start: a change while the element runs is refused with a warning"
        ))
        .minimum(1)
        .maximum(MAX_LANES)
        .default_value(DEFAULT_LANES)
        .mutable_ready()
        .build()
}

/// The `lanes` property's value, and whether a run took it. The lanes are made when the element
/// starts, so a change while it runs would only take effect at the next start: it is refused
/// instead, and the value read back is always the number of lanes running.
#[derive(Debug, Clone, Copy)]
pub struct LanesSetting {
    value: u32,
    in_use: bool,
}

impl Default for LanesSetting {
    fn default() -> Self {
        LanesSetting { value: DEFAULT_LANES, in_use: false }
    }
}

impl LanesSetting {
    /// The value (read back by the property).
    pub fn get(&self) -> u32 {
        self.value
    }

    /// Sets the value, unless a run took it: then the error says why, for a warning on the bus.
    pub fn set(&mut self, value: u32) -> Result<(), String> {
        if self.in_use && value != self.value {
            return Err(format!(
                "'lanes' cannot change while the element runs: {} lanes keep running and 'lanes' stays {} \
                 (set it in the NULL or READY state; {value} was asked for)",
                self.value, self.value
            ));
        }
        self.value = value;
        Ok(())
    }

    /// A start takes the value: changes are refused from now on, until [`LanesSetting::release`].
    pub fn take(&mut self) -> u32 {
        self.in_use = true;
        self.value
    }

    /// The element stopped (or failed to start): the value may change again.
    pub fn release(&mut self) {
        self.in_use = false;
    }
}

/// How many copies of the per-frame work `lanes` asks for.
pub fn lane_count(lanes: u32) -> usize {
    lanes.clamp(1, MAX_LANES) as usize
}

/// A frame's buffer after its lane worked on it, or why the stream must stop.
pub type Outcome = Result<gst::Buffer, gst::FlowError>;

/// One lane's work on one frame.
pub type Work = Box<dyn FnMut(gst::Buffer) -> Outcome + Send>;

/// What a lane's thread runs first, before any frame: it prepares the lane (warms its models up)
/// and gives back the lane's [`Work`].
pub type Starter = Box<dyn FnOnce() -> Work + Send>;

type Job = (gst::Buffer, mpsc::SyncSender<Outcome>);

pub struct Lanes {
    jobs: Vec<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    /// The results to come, in the order the frames were submitted.
    pending: VecDeque<mpsc::Receiver<Outcome>>,
    next: usize,
}

impl Lanes {
    /// One thread per entry of `starters`, named `name-N`, started one after the other: each
    /// runs its starter on its own thread, and the next thread starts once it is done. ONNX
    /// Runtime's CUDA provider keeps its per-thread state (cuDNN and cuBLAS handles, CUDA graphs)
    /// per thread, so a lane's models are warmed up on the thread that runs them, one lane at a
    /// time; their CUDA graphs are captured on the first frames, under the exclusive GPU work
    /// lock ([`crate::runtime::gpu_work`]).
    pub fn start(name: &str, starters: Vec<Starter>) -> Result<Lanes, String> {
        let mut lanes = Lanes { jobs: Vec::new(), threads: Vec::new(), pending: VecDeque::new(), next: 0 };
        for (i, starter) in starters.into_iter().enumerate() {
            let (jobs, queue) = mpsc::channel::<Job>();
            let (ready, started) = mpsc::sync_channel::<()>(1);
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    // A panicking starter ends the thread, which `start` hears as `ready` dropped.
                    let mut work = starter();
                    let _ = ready.send(());
                    for (buffer, reply) in queue {
                        // `work` reports its own failures on the bus; a panic only ends the frame.
                        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(buffer)))
                            .unwrap_or(Err(gst::FlowError::Error));
                        // The element may have dropped the frame (a flush): nobody to tell.
                        let _ = reply.send(outcome);
                    }
                    // The lane's models are freed here: GPU work, see `gpu_work`.
                    let gpu = crate::runtime::gpu_work(false);
                    drop(work);
                    drop(gpu);
                })
                .map_err(|e| format!("cannot start a worker thread: {e}"))?;
            lanes.jobs.push(jobs);
            lanes.threads.push(thread);
            started.recv().map_err(|_| format!("lane {i} failed while starting"))?;
        }
        Ok(lanes)
    }

    /// How many lanes there are.
    pub fn count(&self) -> usize {
        self.jobs.len()
    }

    /// Hands `buffer` to the next lane in turn.
    pub fn submit(&mut self, buffer: gst::Buffer) -> Result<(), gst::FlowError> {
        let lane = self.jobs.get(self.next % self.jobs.len().max(1)).ok_or(gst::FlowError::Error)?;
        let (reply, result) = mpsc::sync_channel(1);
        lane.send((buffer, reply)).map_err(|_| gst::FlowError::Error)?;
        self.next = self.next.wrapping_add(1);
        self.pending.push_back(result);
        Ok(())
    }

    /// The oldest frame, waiting for it, when more than `keep` frames are in flight.
    pub fn next_done(&mut self, keep: usize) -> Option<Outcome> {
        if self.pending.len() <= keep {
            return None;
        }
        let result = self.pending.pop_front()?;
        Some(result.recv().unwrap_or(Err(gst::FlowError::Error)))
    }

    /// Every frame in flight, oldest first, waiting for each.
    pub fn drain(&mut self) -> Vec<Outcome> {
        std::iter::from_fn(|| self.next_done(0)).collect()
    }
}

impl Drop for Lanes {
    fn drop(&mut self) {
        // Closing the queues ends each thread's loop once its current frame is done.
        self.jobs.clear();
        self.pending.clear();
        for thread in self.threads.drain(..) {
            let _ = thread.join();
        }
    }
}

/// What an element does to one frame with one lane's copy of the per-frame work.
pub type Process<T, L> = fn(&T, &mut L, &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError>;

/// How an element warms one lane's models up (on the GPU), on the thread that will run them.
pub type WarmUp<T, L> = fn(&T, &mut L);

/// An element's lanes as `BaseTransform` sees them. With one lane the frame is worked on by the
/// streaming thread ([`InFlight::with_single`] from `transform_ip`); with more, the element's
/// `submit_input_buffer`, `generate_output`, `sink_event` and `query` hand over to the methods
/// of the same names here.
pub struct InFlight<L> {
    cat: gst::DebugCategory,
    /// The lane of `lanes=1`, used by the streaming thread.
    single: Mutex<Option<L>>,
    /// The worker threads of `lanes` > 1, each with its own lane.
    threads: Mutex<Option<Lanes>>,
    /// How many lanes run (for the latency query, which must not wait for a lock held while
    /// frames are pushed).
    count: AtomicU32,
}

impl<L: Send + 'static> InFlight<L> {
    /// Nothing in flight until [`InFlight::start`]; `cat` is the element's debug category.
    pub fn new(cat: gst::DebugCategory) -> Self {
        InFlight { cat, single: Mutex::new(None), threads: Mutex::new(None), count: AtomicU32::new(1) }
    }

    /// Takes the element's lanes, opened in its `start`, and warms each up with `warm_up` on the
    /// thread that will run it (see [`Lanes::start`]): one lane is warmed up here and kept for
    /// the streaming thread; several get a thread each (named `name-N`) that runs `process` on
    /// their frames, `doing` (say "swapping") naming the work in the error a panic posts.
    pub fn start<T>(
        &self,
        imp: &T,
        name: &str,
        doing: &'static str,
        lanes: Vec<L>,
        warm_up: WarmUp<T, L>,
        process: Process<T, L>,
    ) -> Result<(), gst::ErrorMessage>
    where
        T: ObjectSubclass,
        T::Type: IsA<gst::Element> + Send + Sync,
    {
        self.count.store(lanes.len().max(1) as u32, Ordering::Relaxed);
        if lanes.len() > 1 {
            let starters: Vec<Starter> =
                lanes.into_iter().map(|lane| Self::starter(imp, lane, doing, warm_up, process)).collect();
            let threads = Lanes::start(name, starters)
                .map_err(|e| gst::error_msg!(gst::CoreError::Failed, ["cannot start the lanes' threads: {}", e]))?;
            *self.threads.lock() = Some(threads);
        } else {
            let mut lanes = lanes;
            lanes.iter_mut().for_each(|lane| warm_up(imp, lane));
            *self.single.lock() = lanes.into_iter().next();
        }
        Ok(())
    }

    /// Ends the lanes: joins their threads (each finishes the frame it is on) with no lock held.
    pub fn stop(&self) {
        let threads = self.threads.lock().take();
        drop(threads);
        let single = self.single.lock().take();
        let gpu = crate::runtime::gpu_work(false);
        drop(single);
        drop(gpu);
        self.count.store(1, Ordering::Relaxed);
    }

    /// Runs `f` on the single lane (`transform_ip` with `lanes=1`); `Flushing` when stopped.
    pub fn with_single<R>(&self, f: impl FnOnce(&mut L) -> Result<R, gst::FlowError>) -> Result<R, gst::FlowError> {
        let mut single = self.single.lock();
        f(single.as_mut().ok_or(gst::FlowError::Flushing)?)
    }

    /// What one lane's thread does: warms `lane`, its own, up, then works on its frames.
    fn starter<T>(imp: &T, mut lane: L, doing: &'static str, warm_up: WarmUp<T, L>, process: Process<T, L>) -> Starter
    where
        T: ObjectSubclass,
        T::Type: IsA<gst::Element> + Send + Sync,
    {
        let element = imp.obj().downgrade();
        Box::new(move || {
            if let Some(element) = element.upgrade() {
                warm_up(element.imp(), &mut lane);
            }
            Self::work(element, lane, doing, process)
        })
    }

    /// What one lane's thread does with a frame: `lane` is its own.
    fn work<T>(element: glib::WeakRef<T::Type>, mut lane: L, doing: &'static str, process: Process<T, L>) -> Work
    where
        T: ObjectSubclass,
        T::Type: IsA<gst::Element> + Send + Sync,
    {
        Box::new(move |mut buffer: gst::Buffer| {
            let element = element.upgrade().ok_or(gst::FlowError::Flushing)?;
            let done =
                std::panic::catch_unwind(AssertUnwindSafe(|| process(element.imp(), &mut lane, buffer.make_mut())));
            match done {
                Ok(result) => result.map(|_| buffer),
                Err(_) => {
                    gst::element_error!(element, gst::CoreError::Failed, ["internal error while {} a frame", doing]);
                    Err(gst::FlowError::Error)
                }
            }
        })
    }

    /// `submit_input_buffer`: hands the frame to the next lane when there are several.
    pub fn submit_input_buffer<T: BaseTransformImpl>(
        &self,
        imp: &T,
        is_discont: bool,
        inbuf: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        let mut threads = self.threads.lock();
        let Some(threads) = threads.as_mut() else {
            drop(threads);
            return imp.parent_submit_input_buffer(is_discont, inbuf);
        };
        // In place, as with one lane: a buffer another branch also holds is copied first.
        let mut buffer = inbuf;
        buffer.make_mut();
        threads.submit(buffer)?;
        Ok(gst::FlowSuccess::Ok)
    }

    /// `generate_output`: the oldest frame once every lane holds one.
    pub fn generate_output<T: BaseTransformImpl>(&self, imp: &T) -> Result<GenerateOutputSuccess, gst::FlowError> {
        let mut threads = self.threads.lock();
        let Some(threads) = threads.as_mut() else {
            drop(threads);
            return imp.parent_generate_output();
        };
        // Keep every lane busy: a frame goes out once all lanes hold one.
        let keep = threads.count().saturating_sub(1);
        match threads.next_done(keep) {
            Some(done) => done.map(GenerateOutputSuccess::Buffer),
            None => Ok(GenerateOutputSuccess::NoOutput),
        }
    }

    /// `sink_event`: a flush drops the frames in flight; other serialized events (caps, segments,
    /// EOS) first send them on, so as not to overtake them.
    pub fn sink_event<T: BaseTransformImpl>(&self, imp: &T, event: gst::Event) -> bool {
        if matches!(event.view(), gst::EventView::FlushStop(_)) {
            // The frames in flight belong to the flushed segment.
            let dropped = self.threads.lock().as_mut().map(Lanes::drain).unwrap_or_default();
            gst::debug!(self.cat, imp = imp, "flush: dropping {} frames in flight", dropped.len());
        } else if event.is_serialized() {
            self.push_in_flight(imp);
        }
        imp.parent_sink_event(event)
    }

    /// Sends the frames in flight on, oldest first (before an event that must follow them). No
    /// lock is held while pushing: downstream may query the element meanwhile.
    fn push_in_flight<T: BaseTransformImpl>(&self, imp: &T) {
        let done = self.threads.lock().as_mut().map(Lanes::drain).unwrap_or_default();
        let src = imp.obj().src_pad().clone();
        for outcome in done {
            match outcome.and_then(|buffer| src.push(buffer)) {
                Ok(_) => {}
                Err(e) => gst::debug!(self.cat, imp = imp, "a frame in flight was not sent on: {e:?}"),
            }
        }
    }

    /// `query`: the latency grows by one frame duration per lane beyond the first.
    pub fn query<T: BaseTransformImpl>(
        &self,
        imp: &T,
        direction: gst::PadDirection,
        query: &mut gst::QueryRef,
    ) -> bool {
        if !BaseTransformImplExt::parent_query(imp, direction, query) {
            return false;
        }
        let extra_frames = u64::from(self.count.load(Ordering::Relaxed).saturating_sub(1));
        if let (gst::PadDirection::Src, gst::QueryViewMut::Latency(latency), true) =
            (direction, query.view_mut(), extra_frames > 0)
        {
            let info = imp.obj().sink_pad().current_caps().and_then(|caps| gst_video::VideoInfo::from_caps(&caps).ok());
            let frame = info
                .filter(|i| i.fps().numer() > 0)
                .and_then(|i| gst::ClockTime::SECOND.mul_div_floor(i.fps().denom() as u64, i.fps().numer() as u64));
            if let Some(frame) = frame {
                let (live, min, max) = latency.result();
                let extra = frame * extra_frames;
                latency.set(live, min + extra, max.map(|m| m + extra));
            }
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A lane with nothing to prepare.
    fn starter(work: Work) -> Starter {
        Box::new(move || work)
    }

    fn numbered(n: u64) -> gst::Buffer {
        let mut buffer = gst::Buffer::new();
        buffer.get_mut().unwrap().set_offset(n);
        buffer
    }

    /// Lanes that take different times per frame still return the frames in order.
    #[test]
    fn frames_come_back_in_order() {
        gst::init().unwrap();
        let work: Vec<Starter> = (0..3u64)
            .map(|lane| {
                starter(Box::new(move |buffer: gst::Buffer| {
                    std::thread::sleep(std::time::Duration::from_millis(5 * (3 - lane)));
                    Ok(buffer)
                }))
            })
            .collect();
        let mut lanes = Lanes::start("test-lane", work).unwrap();
        let mut out = Vec::new();
        for n in 0..10 {
            lanes.submit(numbered(n)).unwrap();
            while let Some(done) = lanes.next_done(lanes.count() - 1) {
                out.push(done.unwrap().offset());
            }
        }
        out.extend(lanes.drain().into_iter().map(|d| d.unwrap().offset()));
        assert_eq!(out, (0..10).collect::<Vec<_>>());
    }

    /// A lane that panics fails its frame, not the others.
    #[test]
    fn a_panicking_frame_is_an_error() {
        gst::init().unwrap();
        let work: Vec<Starter> = vec![starter(Box::new(|buffer: gst::Buffer| {
            if buffer.offset() == 1 {
                panic!("frame 1");
            }
            Ok(buffer)
        }))];
        let mut lanes = Lanes::start("test-panic", work).unwrap();
        for n in 0..3 {
            lanes.submit(numbered(n)).unwrap();
        }
        let outcomes: Vec<_> = lanes.drain().into_iter().map(|o| o.map(|b| b.offset())).collect();
        assert_eq!(outcomes, vec![Ok(0), Err(gst::FlowError::Error), Ok(2)]);
    }

    /// Each lane's starter runs on that lane's thread, and the next lane starts only once it is
    /// done: no two starters (model warm-ups) overlap.
    #[test]
    fn lanes_start_one_after_the_other_on_their_own_threads() {
        gst::init().unwrap();
        let running = std::sync::Arc::new(AtomicU32::new(0));
        let seen = std::sync::Arc::new(Mutex::new(Vec::new()));
        let starters: Vec<Starter> = (0..3)
            .map(|_| {
                let (running, seen) = (running.clone(), seen.clone());
                Box::new(move || {
                    let overlapping = running.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(std::time::Duration::from_millis(20));
                    let thread = std::thread::current().name().map(str::to_string);
                    seen.lock().push((thread, overlapping));
                    running.fetch_sub(1, Ordering::SeqCst);
                    Box::new(|buffer: gst::Buffer| Ok(buffer)) as Work
                }) as Starter
            })
            .collect();
        let lanes = Lanes::start("test-start", starters).unwrap();
        assert_eq!(lanes.count(), 3);
        let expected: Vec<_> = (0..3).map(|i| (Some(format!("test-start-{i}")), 0)).collect();
        assert_eq!(*seen.lock(), expected);
    }

    /// A lane whose starter panics is an error of `start`, not a lane that never answers.
    #[test]
    fn a_lane_failing_to_start_is_an_error() {
        gst::init().unwrap();
        let starters: Vec<Starter> = vec![Box::new(|| panic!("warm-up"))];
        assert!(Lanes::start("test-fail", starters).is_err());
    }
}
