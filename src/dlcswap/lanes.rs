// SPDX-License-Identifier: MPL-2.0
//! Frames in flight. With `lanes > 1` dlcswap hands frames in turn to that many worker threads,
//! each owning one copy of the per-frame work (its own swapper and, on CUDA, its own stream), and
//! sends them on in the order they came: while one frame's swapper runs on the GPU the next frame
//! is cropped and the previous one pasted on the CPU, instead of the two waiting for each other.

use std::collections::VecDeque;
use std::panic::AssertUnwindSafe;
use std::sync::mpsc;
use std::thread::JoinHandle;

/// A frame's buffer after its lane worked on it, or why the stream must stop.
pub type Outcome = Result<gst::Buffer, gst::FlowError>;

/// One lane's work on one frame.
pub type Work = Box<dyn FnMut(gst::Buffer) -> Outcome + Send>;

type Job = (gst::Buffer, mpsc::SyncSender<Outcome>);

pub struct Lanes {
    jobs: Vec<mpsc::Sender<Job>>,
    threads: Vec<JoinHandle<()>>,
    /// The results to come, in the order the frames were submitted.
    pending: VecDeque<mpsc::Receiver<Outcome>>,
    next: usize,
}

impl Lanes {
    /// One thread per entry of `work`, named `name-N`.
    pub fn start(name: &str, work: Vec<Work>) -> Result<Lanes, String> {
        let mut lanes = Lanes { jobs: Vec::new(), threads: Vec::new(), pending: VecDeque::new(), next: 0 };
        for (i, mut work) in work.into_iter().enumerate() {
            let (jobs, queue) = mpsc::channel::<Job>();
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    for (buffer, reply) in queue {
                        // `work` reports its own failures on the bus; a panic only ends the frame.
                        let outcome = std::panic::catch_unwind(AssertUnwindSafe(|| work(buffer)))
                            .unwrap_or(Err(gst::FlowError::Error));
                        // The element may have dropped the frame (a flush): nobody to tell.
                        let _ = reply.send(outcome);
                    }
                })
                .map_err(|e| format!("cannot start a worker thread: {e}"))?;
            lanes.jobs.push(jobs);
            lanes.threads.push(thread);
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

#[cfg(test)]
mod tests {
    use super::*;

    fn numbered(n: u64) -> gst::Buffer {
        let mut buffer = gst::Buffer::new();
        buffer.get_mut().unwrap().set_offset(n);
        buffer
    }

    /// Lanes that take different times per frame still return the frames in order.
    #[test]
    fn frames_come_back_in_order() {
        gst::init().unwrap();
        let work: Vec<Work> = (0..3u64)
            .map(|lane| {
                Box::new(move |buffer: gst::Buffer| {
                    std::thread::sleep(std::time::Duration::from_millis(5 * (3 - lane)));
                    Ok(buffer)
                }) as Work
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
        let work: Vec<Work> = vec![Box::new(|buffer: gst::Buffer| {
            if buffer.offset() == 1 {
                panic!("frame 1");
            }
            Ok(buffer)
        })];
        let mut lanes = Lanes::start("test-panic", work).unwrap();
        for n in 0..3 {
            lanes.submit(numbered(n)).unwrap();
        }
        let outcomes: Vec<_> = lanes.drain().into_iter().map(|o| o.map(|b| b.offset())).collect();
        assert_eq!(outcomes, vec![Ok(0), Err(gst::FlowError::Error), Ok(2)]);
    }
}
