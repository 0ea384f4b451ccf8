// SPDX-License-Identifier: MPL-2.0
//! The face models, each with its contract check, pre-processing, run and post-processing, as
//! plain Rust over ONNX Runtime sessions (no GStreamer): SCRFD detection, ArcFace identity, the
//! swappers (inswapper, FaceFusion's families), face restorers, 106-point landmarks, and
//! FaceFusion's mask models (XSeg occluder, BiSeNet face parser, `fan_68_5` landmarks).
//! Pre-processing goes through the element's [`Backend`], which also provides the tensors the
//! models are bound to.

pub mod arcface;
pub mod enhancer;
pub mod landmark;
pub mod landmark68;
pub mod occluder;
pub mod parser;
pub mod scrfd;
pub mod swapper;

use ort::session::IoBinding;
use ort::value::{DynTensor, TensorElementType};

use crate::backend::{Backend, Normalization};
use crate::runtime::{ModelIo, ModelSession, fill_host_f32, host_tensor, read_host_f32};
use crate::vision::paste::crop_region;
use crate::vision::{Affine, FrameView};

/// The error of a model asked to run before its tensors were bound (which `bind` always does
/// first; kept as an error rather than a panic).
pub(crate) const NOT_BOUND: &str = "the model's tensors are not bound";

/// Runs `model` on the tensors `binding` holds, which came from `backend`. When they live in the
/// backend's GPU memory the run is only queued on the element's stream (the next step on that
/// stream reads the outputs after it); outputs in host memory must be complete when the run
/// returns, so then it waits.
pub(crate) fn run_on_backend(model: &mut ModelSession, binding: &IoBinding, backend: &Backend) -> Result<(), String> {
    if backend.on_gpu() { model.run_queued(binding) } else { model.run(binding).map(drop) }
}

/// The input and output of a one-input, one-output model where the pixel backend keeps them
/// (the mask models on the graph backend: its graphs write the input and read the output).
pub(crate) struct DeviceIo {
    binding: IoBinding,
    input: DynTensor,
    output: DynTensor,
}

impl DeviceIo {
    /// Tensors of the model's element types and the given shapes, the output bound.
    pub(crate) fn new(
        model: &ModelSession,
        backend: &Backend,
        input_shape: &[usize],
        output_shape: &[usize],
    ) -> Result<DeviceIo, String> {
        let input = backend.tensor(input_shape, float_type(model.io.inputs.first()))?;
        let mut output = backend.tensor(output_shape, float_type(model.io.outputs.first()))?;
        let mut binding = model.binding()?;
        let name = model.io.outputs.first().map(|o| o.name.as_str()).unwrap_or_default();
        binding.bind_output(name, &mut output).map_err(|e| format!("cannot bind output '{name}': {e}"))?;
        Ok(DeviceIo { binding, input, output })
    }

    pub(crate) fn input(&mut self) -> &mut DynTensor {
        &mut self.input
    }

    /// Runs `model` on the input (see [`run_on_backend`]); returns the output.
    pub(crate) fn run(&mut self, model: &mut ModelSession, backend: &Backend) -> Result<&DynTensor, String> {
        let name = model.io.inputs.first().map(|i| i.name.clone()).unwrap_or_default();
        self.binding.bind_input(&name, &self.input).map_err(|e| format!("cannot bind input '{name}': {e}"))?;
        run_on_backend(model, &self.binding, backend)?;
        Ok(&self.output)
    }
}

/// The host tensors of a one-input, one-output model run in host memory (the mask models on the
/// CPU pixel backend, fan_68_5): the input, allocated at the first run, and the conversion
/// buffers of float16 exports.
#[derive(Default)]
pub(crate) struct HostIo {
    input: Option<DynTensor>,
    narrowed: Vec<f32>,
    widened: Vec<f32>,
}

impl HostIo {
    /// Runs `model` on an input of `shape` whose values `fill` writes, and hands the output's
    /// values to `read` (read where ONNX Runtime wrote them, unless the export is float16).
    pub(crate) fn run<R>(
        &mut self,
        model: &mut ModelSession,
        shape: &[usize],
        fill: impl FnOnce(&mut [f32]),
        read: impl FnOnce(&[f32]) -> Result<R, String>,
    ) -> Result<R, String> {
        if self.input.is_none() {
            self.input = Some(host_tensor(shape, float_type(model.io.inputs.first()))?);
        }
        let Some(input) = self.input.as_mut() else { return Err(NOT_BOUND.to_string()) };
        fill_host_f32(input, &mut self.narrowed, fill)?;
        let mut binding = model.binding()?;
        let input_name = model.io.inputs.first().map(|i| i.name.clone()).unwrap_or_default();
        let output_name = model.io.outputs.first().map(|o| o.name.clone()).unwrap_or_default();
        binding.bind_input(&input_name, &*input).map_err(|e| format!("cannot bind input '{input_name}': {e}"))?;
        ModelSession::bind_output_to_host(&mut binding, &output_name)?;
        let outputs = model.run(&binding)?;
        read(read_host_f32(&outputs[0], &mut self.widened)?)
    }
}

/// Whether `io` is one float image input `[N,3,size,size]` and one float output `[N,len]`: the
/// shape of the crop models (ArcFace, 106-point landmarks).
pub(crate) fn is_crop_model(io: &ModelIo, size: i64, len: i64) -> bool {
    match (io.inputs.as_slice(), io.outputs.as_slice()) {
        ([input], [output]) => {
            input.is_float()
                && input.shape.len() == 4
                && input.dim_accepts(1, 3)
                && input.dim_accepts(2, size)
                && input.dim_accepts(3, size)
                && output.is_float()
                && output.shape.len() == 2
                && output.dim_accepts(1, len)
        }
        _ => false,
    }
}

/// The element type a model wants for its input or output `i` (float16 exports exist).
pub(crate) fn float_type(spec: Option<&crate::runtime::TensorSpec>) -> TensorElementType {
    match spec.and_then(|s| s.element) {
        Some(TensorElementType::Float16) => TensorElementType::Float16,
        _ => TensorElementType::Float32,
    }
}

/// A model with one square image input and one float vector output (ArcFace, 106-point
/// landmarks), bound to an input tensor from the backend and an output in host memory.
pub(crate) struct CropModel {
    model: ModelSession,
    size: usize,
    norm: Normalization,
    bound: Option<(IoBinding, DynTensor)>,
    values: Vec<f32>,
}

impl CropModel {
    pub(crate) fn new(model: ModelSession, size: usize, norm: Normalization) -> Self {
        CropModel { model, size, norm, bound: None, values: Vec::new() }
    }

    pub(crate) fn model(&self) -> &ModelSession {
        &self.model
    }

    /// Warps the face aligned by `m` out of `frame` and runs the model; returns its output values.
    pub(crate) fn run(&mut self, backend: &mut Backend, frame: &FrameView, m: &Affine) -> Result<&[f32], String> {
        if self.bound.is_none() {
            let element = float_type(self.model.io.inputs.first());
            let input = backend.tensor(&[1, 3, self.size, self.size], element)?;
            let mut binding = self.model.binding()?;
            let output = self.model.io.outputs.first().map(|o| o.name.clone()).unwrap_or_default();
            ModelSession::bind_output_to_host(&mut binding, &output)?;
            self.bound = Some((binding, input));
        }
        let Some((binding, input)) = self.bound.as_mut() else { return Err(NOT_BOUND.to_string()) };
        let region = backend.load_region(frame, crop_region(m, self.size, frame.width, frame.height))?;
        backend.warp_to_input(frame, &region, m, self.norm, input)?;
        let name = self.model.io.inputs.first().map(|i| i.name.as_str()).unwrap_or_default();
        binding.bind_input(name, &*input).map_err(|e| format!("cannot bind input '{name}': {e}"))?;
        let outputs = self.model.run(binding)?;
        let mut widened = Vec::new();
        let values = read_host_f32(&outputs[0], &mut widened)?;
        self.values.clear();
        self.values.extend_from_slice(values);
        Ok(&self.values)
    }
}

/// Scales `v` to unit L2 norm; `None` for a zero or non-finite vector.
pub fn l2_normalized(v: &[f32]) -> Option<Vec<f32>> {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    (norm.is_finite() && norm > 0.0).then(|| v.iter().map(|x| x / norm).collect())
}

#[cfg(test)]
mod tests {
    #[test]
    fn normalises_to_unit_length() {
        let n = super::l2_normalized(&[3.0, 4.0]).unwrap();
        assert_eq!(n, vec![0.6, 0.8]);
        assert!(super::l2_normalized(&[0.0, 0.0]).is_none());
    }
}
