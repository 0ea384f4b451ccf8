// SPDX-License-Identifier: MPL-2.0
//! Model inputs and outputs as ONNX Runtime tensors that live as long as the model: allocated
//! once where the pixel steps and the model meet (host memory here; a GPU backend allocates them
//! on the device), bound to the session, and filled or read in place every frame.

use ort::memory::Allocator;
use ort::value::{DynTensor, TensorElementType, TensorValueTypeMarker, Value};

/// A zeroed tensor of `shape` in host memory (ONNX Runtime's default CPU allocator).
pub fn host_tensor(shape: &[usize], element: TensorElementType) -> Result<DynTensor, String> {
    DynTensor::new(&Allocator::default(), element, shape.to_vec())
        .map_err(|e| format!("cannot allocate a {element:?} tensor {shape:?}: {e}"))
}

/// The shape of a tensor as `usize`s (dynamic dimensions, which a tensor never has, read as 0).
pub fn tensor_shape(tensor: &DynTensor) -> Vec<usize> {
    tensor.shape().iter().map(|&d| d.max(0) as usize).collect()
}

/// Runs `fill` on a host tensor's values as `f32`: float32 tensors are filled in place; float16
/// ones through `scratch`, then narrowed; float64 ones (CodeFormer's fidelity weight) through
/// `scratch`, then widened.
pub fn fill_host_f32(
    tensor: &mut DynTensor,
    scratch: &mut Vec<f32>,
    fill: impl FnOnce(&mut [f32]),
) -> Result<(), String> {
    match *tensor.data_type() {
        TensorElementType::Float32 => {
            let (_, values) = tensor.try_extract_tensor_mut::<f32>().map_err(|e| e.to_string())?;
            fill(values);
        }
        TensorElementType::Float16 => {
            let (_, values) = tensor.try_extract_tensor_mut::<half::f16>().map_err(|e| e.to_string())?;
            scratch.clear();
            scratch.resize(values.len(), 0.0);
            fill(scratch);
            for (v, &s) in values.iter_mut().zip(scratch.iter()) {
                *v = half::f16::from_f32(s);
            }
        }
        TensorElementType::Float64 => {
            let (_, values) = tensor.try_extract_tensor_mut::<f64>().map_err(|e| e.to_string())?;
            scratch.clear();
            scratch.resize(values.len(), 0.0);
            fill(scratch);
            for (v, &s) in values.iter_mut().zip(scratch.iter()) {
                *v = f64::from(s);
            }
        }
        other => return Err(format!("cannot fill a {other:?} tensor with float values")),
    }
    Ok(())
}

/// A host tensor's values as `f32` (float16 widened into `scratch`), rejecting non-finite values:
/// a model that produced NaN must not move or paint faces.
pub fn read_host_f32<'a, T: TensorValueTypeMarker + ?Sized>(
    tensor: &'a Value<T>,
    scratch: &'a mut Vec<f32>,
) -> Result<&'a [f32], String> {
    let values: &[f32] = match tensor.dtype().tensor_type() {
        Some(TensorElementType::Float32) => tensor.try_extract_tensor::<f32>().map_err(|e| e.to_string())?.1,
        Some(TensorElementType::Float16) => {
            let (_, data) = tensor.try_extract_tensor::<half::f16>().map_err(|e| e.to_string())?;
            scratch.clear();
            scratch.extend(data.iter().map(|v| v.to_f32()));
            scratch
        }
        other => return Err(format!("output has element type {other:?}, expected float32 or float16")),
    };
    if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!("model output holds a non-finite value at index {pos}"));
    }
    Ok(values)
}
