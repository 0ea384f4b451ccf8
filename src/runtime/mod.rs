// SPDX-License-Identifier: MPL-2.0
//! Everything about ONNX Runtime in one place: finding and loading the library (one environment
//! per process), choosing execution providers with an honest report of what actually runs, the
//! model directory, checking a model file against the contract its element expects, and sharing
//! one session per model file and options between all the elements of the process.
//!
//! The elements never touch `ort` set-up directly: they describe what they want in
//! [`SessionOptions`] and get back a [`ModelSession`] or a [`RuntimeError`] whose text names the
//! file, the variable or the provider at fault.

mod batch_dim;
mod batcher;
pub(crate) mod coreml_rewrites;
mod cuda;
mod environment;
mod error;
mod gpu_work;
mod memory;
mod model;
pub(crate) mod onnx_graph;
pub(crate) mod onnx_proto;
mod onnx_wire;
mod provider;
mod settings;
mod shared;
mod tensor;

pub use batch_dim::{BATCH_SYMBOL, BatchRewrite, batch_tolerance, check_batched, make_batch_symbolic};
pub use batcher::{BatchUser, Batcher, MAX_BATCH, MAX_WAIT, faces_batched_across_elements};
pub use cuda::{ComputeStream, StreamPriority, prefer_blocking_sync};
pub(crate) use environment::set_plugin_dir;
pub use environment::{environment, library_search_order};
pub use error::RuntimeError;
pub use gpu_work::{GpuWork, gpu_work};
pub use memory::return_freed_memory;
pub use model::{
    ModelIo, ModelOutputs, ModelSession, SessionOptions, SharedWarmUp, TensorSpec, default_cache_dir,
    default_models_dir, resolve_model_path,
};
pub use onnx_graph::{GraphSummary, read_graph_summary};
pub use provider::{CoreMlUnits, ExecutionProvider, PixelBackend, Precision};
pub use settings::{ActiveRuntime, RuntimeSettings, mask_models_as_cuda_graphs};
pub(crate) use settings::{path_from_value, path_to_value};
pub use shared::{model_sessions_loaded, open_sessions_of, users_of};
pub use tensor::{fill_host_f32, host_tensor, read_host_f32, tensor_shape};
