//! The face models, each with its contract check, pre-processing, run and post-processing, as
//! plain Rust over ONNX Runtime sessions (no GStreamer): SCRFD detection, ArcFace identity,
//! 106-point landmarks. The elements own instances of these.

pub mod arcface;
pub mod enhancer;
pub mod identity;
pub mod inswapper;
pub mod landmark;
pub mod scrfd;

use std::borrow::Cow;

use ort::value::{DynValue, TensorElementType, TensorRef};

use crate::runtime::ModelIo;

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

/// Wraps `data` as an input tensor of `shape` without copying.
pub(crate) fn input_tensor<'a>(shape: &[usize], data: &'a [f32]) -> Result<TensorRef<'a, f32>, String> {
    TensorRef::from_array_view((shape.to_vec(), data)).map_err(|e| format!("cannot build input tensor: {e}"))
}

/// An output tensor's values as float32 (float16 outputs are widened), rejecting non-finite
/// values: a model that produced NaN must not move faces around the frame.
pub(crate) fn output_values(value: &DynValue) -> Result<Cow<'_, [f32]>, String> {
    let values: Cow<'_, [f32]> = match value.dtype().tensor_type() {
        Some(TensorElementType::Float32) => {
            let (_, data) = value.try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
            Cow::Borrowed(data)
        }
        Some(TensorElementType::Float16) => {
            let (_, data) = value.try_extract_tensor::<half::f16>().map_err(|e| e.to_string())?;
            Cow::Owned(data.iter().map(|v| v.to_f32()).collect())
        }
        other => return Err(format!("output has element type {other:?}, expected float32 or float16")),
    };
    if let Some(pos) = values.iter().position(|v| !v.is_finite()) {
        return Err(format!("model output holds a non-finite value at index {pos}"));
    }
    Ok(values)
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
