//! ArcFace identity embeddings (`w600k_r50.onnx`, any `[N,3,112,112] → [N,512]` ArcFace):
//! `norm_crop` to 112 px, RGB normalisation, L2-normalised output, as InsightFace's
//! `ArcFaceONNX.get` + `normed_embedding`.

use std::path::Path;

use crate::face::EMBEDDING_LEN;
use crate::runtime::{ModelIo, ModelSession, RuntimeError, SessionOptions, read_graph_summary};
use crate::vision::warp::{rgb_to_nchw, warp_affine_rgb};
use crate::vision::{FrameView, RgbImage, estimate_norm};

use super::{input_tensor, is_crop_model, l2_normalized, output_values};

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
    model: ModelSession,
    mean: f32,
    std: f32,
    crop: RgbImage,
    blob: Vec<f32>,
}

impl ArcFace {
    pub fn open(path: &Path, property: &'static str, options: &SessionOptions) -> Result<Self, RuntimeError> {
        let model = ModelSession::open(path, property, options, check)?;
        let summary = read_graph_summary(path)
            .map_err(|reason| RuntimeError::ModelUnreadable { path: path.to_path_buf(), reason })?;
        let (mean, std) = normalisation_from_node_names(&summary.first_node_names);
        Ok(ArcFace { model, mean, std, crop: RgbImage::new(CROP, CROP), blob: vec![0.0; 3 * CROP * CROP] })
    }

    pub fn model(&self) -> &ModelSession {
        &self.model
    }

    /// The normalised embedding of the face with keypoints `kps` in `frame`.
    pub fn embed(&mut self, frame: &FrameView, kps: &[[f32; 2]; 5]) -> Result<Vec<f32>, String> {
        let m = estimate_norm(kps, CROP).ok_or("degenerate face landmarks")?;
        warp_affine_rgb(frame, &m, &mut self.crop, CROP, CROP);
        rgb_to_nchw(&self.crop, self.mean, 1.0 / self.std, &mut self.blob);
        let input = input_tensor(&[1, 3, CROP, CROP], &self.blob)?;
        let outputs = self.model.session.run(ort::inputs![input]).map_err(|e| format!("inference failed: {e}"))?;
        let raw = output_values(&outputs[0])?;
        if raw.len() != EMBEDDING_LEN {
            return Err(format!("embedding has {} values, expected {EMBEDDING_LEN}", raw.len()));
        }
        l2_normalized(&raw).ok_or_else(|| "embedding is all zeros".to_string())
    }
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
