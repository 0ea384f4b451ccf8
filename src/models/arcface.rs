// SPDX-License-Identifier: MPL-2.0
//! ArcFace identity embeddings (`w600k_r50.onnx`, any `[N,3,112,112] → [N,512]` ArcFace):
//! `norm_crop` to 112 px, RGB normalisation, L2-normalised output, as InsightFace's
//! `ArcFaceONNX.get` + `normed_embedding`.

use std::path::Path;

use crate::backend::{Backend, Normalization};
use crate::face::EMBEDDING_LEN;
use crate::runtime::{ModelIo, ModelSession, RuntimeError, SessionOptions, read_graph_summary};
use crate::vision::{FrameView, estimate_norm};

use super::{CropModel, is_crop_model, l2_normalized};

const CROP: usize = 112;

pub const CONTRACT: &str = "an ArcFace recogniser (w600k_r50.onnx): float32 input [N,3,112,112] \
    and float32 output [N,512]";

pub fn check(io: &ModelIo) -> Result<(), String> {
    is_crop_model(io, CROP as i64, EMBEDDING_LEN as i64).then_some(()).ok_or_else(|| CONTRACT.to_string())
}

/// InsightFace's rule: models converted from MXNet start with `Sub`/`Mul` nodes that normalise
/// inside the graph, so they take raw pixel values (mean 0, std 1); others take
/// `(x − 127.5) / 127.5`.
pub fn normalisation_from_node_names(names: &[String]) -> (f32, f32) {
    let sub = names.iter().any(|n| n.starts_with("Sub") || n.starts_with("_minus"));
    let mul = names.iter().any(|n| n.starts_with("Mul") || n.starts_with("_mul"));
    if sub && mul { (0.0, 1.0) } else { (127.5, 127.5) }
}

pub struct ArcFace {
    crop: CropModel,
}

impl ArcFace {
    pub fn open(path: &Path, property: &'static str, options: &SessionOptions) -> Result<Self, RuntimeError> {
        let model = ModelSession::open(path, property, options, check)?;
        let summary = read_graph_summary(&model.path)
            .map_err(|reason| RuntimeError::ModelUnreadable { path: model.path.clone(), reason })?;
        let (mean, std) = normalisation_from_node_names(&summary.first_node_names);
        Ok(ArcFace { crop: CropModel::new(model, CROP, Normalization { mean, scale: 1.0 / std }) })
    }

    pub fn model(&self) -> &ModelSession {
        self.crop.model()
    }

    /// The normalised identity embedding of the face with keypoints `kps` in `frame`.
    pub fn embed(&mut self, backend: &mut Backend, frame: &FrameView, kps: &[[f32; 2]; 5]) -> Result<Vec<f32>, String> {
        normalized_embedding(self.embed_raw(backend, frame, kps)?)
    }

    /// The model's output for the face with keypoints `kps` in `frame`, before the L2
    /// normalisation: FaceFusion's embedding converters take it as it is.
    pub fn embed_raw(
        &mut self,
        backend: &mut Backend,
        frame: &FrameView,
        kps: &[[f32; 2]; 5],
    ) -> Result<&[f32], String> {
        let m = estimate_norm(kps, CROP).ok_or("degenerate face landmarks")?;
        let raw = self.crop.run(backend, frame, &m)?;
        if raw.len() != EMBEDDING_LEN {
            return Err(format!("embedding has {} values, expected {EMBEDDING_LEN}", raw.len()));
        }
        Ok(raw)
    }
}

/// The L2-normalised embedding of a raw ArcFace output.
pub fn normalized_embedding(raw: &[f32]) -> Result<Vec<f32>, String> {
    l2_normalized(raw).ok_or_else(|| "embedding is all zeros".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_follows_insightface_rule() {
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(normalisation_from_node_names(&names(&["Sub_0", "Mul_1", "Conv_2"])), (0.0, 1.0));
        assert_eq!(normalisation_from_node_names(&names(&["Conv_0", "Mul_1"])), (127.5, 127.5));
        assert_eq!(normalisation_from_node_names(&names(&[])), (127.5, 127.5));
    }
}
