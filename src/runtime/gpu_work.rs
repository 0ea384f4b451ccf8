// SPDX-License-Identifier: MPL-2.0
//! The locks around the process's GPU work: the elements' frames against CUDA graph captures
//! ([`gpu_work`]), and the runs of DirectML sessions ([`DirectMlRun`]).
//!
//! Lock order: an element takes [`gpu_work`] for a frame, and a DirectML session's run takes its
//! device's run lock inside it, never the other way round.

use parking_lot::{Mutex, MutexGuard};

/// The GPU work of every element in the process, shared or exclusive.
///
/// ONNX Runtime's CUDA provider keeps a model's CUDA graph per calling thread and captures it at
/// the session's third run on that thread, in CUDA's global capture mode: a CUDA call from any
/// other thread that may synchronise (an allocation, a synchronous copy, waiting for a stream)
/// while the capture runs fails, and makes the capture fail with it. The elements capture on
/// their streaming (or lane) threads, on the first frames, while other elements' frames flow; so
/// each element does a frame's GPU work holding this lock: shared for an ordinary frame,
/// exclusive for a frame in which one of its models may capture
/// ([`super::ModelSession::may_capture_here`]). A handful of frames per thread take it
/// exclusively; after those it costs an uncontended read lock per frame.
static GPU_WORK: parking_lot::RwLock<()> = parking_lot::RwLock::new(());

/// Held while an element works on the GPU, see [`gpu_work`].
pub enum GpuWork {
    Shared(#[allow(dead_code)] parking_lot::RwLockReadGuard<'static, ()>),
    Exclusive(#[allow(dead_code)] parking_lot::RwLockWriteGuard<'static, ()>),
}

/// Waits for the GPU work lock: exclusively when this thread's work may capture a CUDA graph,
/// else shared with the other elements' frames.
pub fn gpu_work(may_capture: bool) -> GpuWork {
    if may_capture { GpuWork::Exclusive(GPU_WORK.write()) } else { GpuWork::Shared(GPU_WORK.read()) }
}

/// The GPU work lock taken exclusively, for a thread that must not wait for it forever: `None`
/// when the other elements' work did not pause within `wait`. The batcher's thread captures its
/// CUDA graphs under it; it must give up rather than wait on, since an element holding the lock
/// shared may be waiting for one of the batcher's runs.
pub(crate) fn gpu_work_exclusive_within(wait: std::time::Duration) -> Option<GpuWork> {
    GPU_WORK.try_write_for(wait).map(GpuWork::Exclusive)
}

/// The DirectML devices (adapters) whose runs are told apart; sessions on a higher `gpu-id` share
/// the last lock, which only serialises more than needed.
const DIRECTML_DEVICES: usize = 8;

/// One lock per DirectML device. ONNX Runtime's DirectML provider does not take runs of its
/// sessions from several threads at once: they share the device's command queue, and Deep-Live-Cam
/// serialises them behind one process-wide lock for that reason. The elements' frames run on
/// their own threads (and lanes), so every run of a DirectML session waits here for the others
/// on its device to finish.
static DIRECTML_RUNS: [Mutex<()>; DIRECTML_DEVICES] = [const { Mutex::new(()) }; DIRECTML_DEVICES];

/// Held for the length of one run of a DirectML session (see [`DIRECTML_RUNS`]).
pub(crate) struct DirectMlRun(#[allow(dead_code)] MutexGuard<'static, ()>);

impl DirectMlRun {
    /// Waits until no other DirectML session runs on adapter `gpu_id`.
    pub(crate) fn wait(gpu_id: u32) -> DirectMlRun {
        DirectMlRun(directml_lock(gpu_id).lock())
    }
}

fn directml_lock(gpu_id: u32) -> &'static Mutex<()> {
    &DIRECTML_RUNS[(gpu_id as usize).min(DIRECTML_DEVICES - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exclusive_work_within_a_time_gives_up_while_others_work() {
        let held = gpu_work(false);
        let short = std::time::Duration::from_millis(20);
        assert!(gpu_work_exclusive_within(short).is_none(), "shared work in progress: no exclusive lock");
        drop(held);
        // Long enough for the other tests of this binary that do GPU work to finish theirs.
        let exclusive = gpu_work_exclusive_within(std::time::Duration::from_secs(30));
        assert!(matches!(exclusive, Some(GpuWork::Exclusive(_))), "no other work: the lock is had");
        assert!(GPU_WORK.try_read().is_none(), "and it excludes the others' work");
    }

    #[test]
    fn a_directml_run_excludes_runs_on_its_device_only() {
        let run = DirectMlRun::wait(0);
        assert!(directml_lock(0).try_lock().is_none(), "a second run on adapter 0 waits");
        assert!(directml_lock(1).try_lock().is_some(), "a run on adapter 1 goes ahead");
        drop(run);
        assert!(directml_lock(0).try_lock().is_some(), "adapter 0 is free once the run ends");
        // Adapters past the table share its last lock rather than index out of it.
        let _far = DirectMlRun::wait(40);
        assert!(directml_lock(DIRECTML_DEVICES as u32 - 1).try_lock().is_none());
    }
}
