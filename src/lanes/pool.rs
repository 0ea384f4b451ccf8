// SPDX-License-Identifier: MPL-2.0
//! The lanes' worker threads: one per copy of the per-frame work, each started (and its models
//! warmed up) on its own thread, the frames handed out in turn and taken back in order.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::thread::JoinHandle;

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

    /// Hands `buffer` to the next of the first `active` lanes in turn (the others stay idle).
    pub fn submit(&mut self, buffer: gst::Buffer, active: usize) -> Result<(), gst::FlowError> {
        let turns = active.clamp(1, self.jobs.len().max(1));
        let lane = self.jobs.get(self.next % turns).ok_or(gst::FlowError::Error)?;
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

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicU32, Ordering};

    use parking_lot::Mutex;

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
            lanes.submit(numbered(n), 3).unwrap();
            while let Some(done) = lanes.next_done(2) {
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
            lanes.submit(numbered(n), 1).unwrap();
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
        assert_eq!(lanes.jobs.len(), 3);
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
