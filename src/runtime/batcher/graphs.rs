// SPDX-License-Identifier: MPL-2.0
//! The batcher's CUDA graphs, one per batch size (experimental: `DLC_BATCH_CUDA_GRAPHS=1`).
//!
//! A replayed graph launches a model's hundreds of kernels with one call: for the elements' own
//! sessions it took detect ! swap from 198 to 298 fps and its CPU time per frame from 6.8 to
//! 4.0 ms on an H100 (BENCHMARKS.md). The batcher runs one session at a few batch sizes (powers
//! of two, see `steady_batch_size`), each with its tensors at fixed addresses (`Runner::bind`), so
//! each size can have a graph of its own: ONNX Runtime's CUDA provider keeps one per graph name
//! ([`graph_run_options`]) and thread.
//!
//! When they are captured: a capture runs in CUDA's global capture mode, during which no other
//! thread of the process may make a CUDA call that synchronises, so it needs the GPU work lock
//! exclusively ([`super::super::gpu_work`]). The batcher's thread takes it before it serves any
//! item, and captures every size in a row. It only waits so long for it
//! ([`CAPTURE_WAIT`]): an element holding the lock shared might be waiting for one of the
//! batcher's runs. Then, or when a capture fails, the sizes without a graph run as plain runs.

use std::time::Duration;

use ort::session::RunOptions;

use super::{MAX_BATCH, Runner};
use crate::runtime::gpu_work::gpu_work_exclusive_within;
use crate::runtime::model::{CAPTURING_RUN, graph_run_options};

/// Whether the batcher replays its batch sizes as CUDA graphs (`DLC_BATCH_CUDA_GRAPHS=1`, on the
/// CUDA provider). Off by default until a GPU run has measured them against plain runs.
pub fn batches_as_cuda_graphs() -> bool {
    std::env::var_os("DLC_BATCH_CUDA_GRAPHS").is_some_and(|v| v == "1")
}

/// How long the batcher's thread waits for the GPU work lock to capture its graphs. Elements
/// hold it shared for a frame at a time (a few ms); the first start of a process holds it while
/// it opens its models (seconds).
const CAPTURE_WAIT: Duration = Duration::from_secs(10);

/// The batch sizes' graphs: each size's run options (naming its graph) and whether it was
/// captured.
pub(super) struct BatchGraphs {
    sizes: Vec<(usize, RunOptions, bool)>,
}

impl BatchGraphs {
    pub(super) fn new() -> Result<BatchGraphs, String> {
        let sizes = std::iter::successors(Some(1), |s| Some(s * 2)).take_while(|s| *s <= MAX_BATCH);
        let sizes =
            sizes.map(|size| Ok((size, graph_run_options(Some(size))?, false))).collect::<Result<_, String>>()?;
        Ok(BatchGraphs { sizes })
    }

    /// The run options that replay the graph of batch size `size`, once it is captured.
    pub(super) fn replay(&self, size: usize) -> Option<&RunOptions> {
        self.sizes.iter().find(|(s, _, captured)| *s == size && *captured).map(|(_, options, _)| options)
    }

    /// The captured sizes, for the report.
    pub(super) fn captured(&self) -> Vec<usize> {
        self.sizes.iter().filter(|(.., captured)| *captured).map(|(size, ..)| *size).collect()
    }
}

impl Runner {
    /// Captures a graph per batch size (see the module text), on the batcher's thread before it
    /// serves; says in the batcher's report how it went.
    pub(super) fn capture_graphs(&mut self) {
        if self.graphs.is_none() {
            return;
        }
        let outcome = match gpu_work_exclusive_within(CAPTURE_WAIT) {
            None => format!("no CUDA graphs: the other GPU work did not pause within {} s", CAPTURE_WAIT.as_secs()),
            Some(_exclusive) => {
                let sizes: Vec<usize> = self.graphs.iter().flat_map(|g| g.sizes.iter().map(|(s, ..)| *s)).collect();
                let failed = sizes.into_iter().find_map(|size| self.capture(size).err().map(|e| (size, e)));
                let captured = self.graphs.as_ref().map(BatchGraphs::captured).unwrap_or_default();
                match failed {
                    None => format!("batch sizes {captured:?} replayed as CUDA graphs"),
                    Some((size, e)) => {
                        format!(
                            "batch sizes {captured:?} replayed as CUDA graphs; size {size} and larger run plainly: {e}"
                        )
                    }
                }
            }
        };
        if let Ok(mut graphs) = self.shared.graphs.lock() {
            *graphs = outcome;
        }
    }

    /// The runs of batch size `size` up to its graph's capture, on its bound tensors (whatever
    /// they hold: a capture records the kernels, not the values).
    fn capture(&mut self, size: usize) -> Result<(), String> {
        self.bind(size)?;
        let Runner { model, bound, graphs, .. } = self;
        let bound = bound.get_mut(&size).ok_or("the batch's tensors are not bound")?;
        for (spec, tensor) in model.io.inputs.iter().zip(&bound.inputs) {
            bound.binding.bind_input(&spec.name, tensor).map_err(|e| format!("cannot bind '{}': {e}", spec.name))?;
        }
        let graphs = graphs.as_mut().ok_or("no graphs")?;
        let (_, options, captured) =
            graphs.sizes.iter_mut().find(|(s, ..)| *s == size).ok_or("no graph of this batch size")?;
        for _ in 0..CAPTURING_RUN {
            model.run_with(&bound.binding, options)?;
        }
        *captured = true;
        Ok(())
    }
}
