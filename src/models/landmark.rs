// SPDX-License-Identifier: MPL-2.0
//! 106-point face landmarks (`2d106det.onnx`), as InsightFace's `Landmark.get`: a 192-px crop
//! centred on the box, scale `192 / (1.5 · max(w, h))`, raw RGB values, output `(p + 1) · 96`
//! mapped back through the inverse crop transform.

use std::path::Path;

use crate::backend::{Backend, Normalization};
use crate::runtime::{ModelIo, ModelSession, RuntimeError, SessionOptions, read_graph_summary};
use crate::vision::{Affine, FrameView};

use super::arcface::normalisation_from_node_names;
use super::{CropModel, is_crop_model};

const CROP: usize = 192;
pub const POINTS: usize = 106;

pub const CONTRACT: &str = "a 106-point landmark model (2d106det.onnx): float32 input \
    [N,3,192,192] and float32 output [N,212]";

pub fn check(io: &ModelIo) -> Result<(), String> {
    is_crop_model(io, CROP as i64, 2 * POINTS as i64).then_some(()).ok_or_else(|| CONTRACT.to_string())
}

/// The crop transform for a face box: scale about the box centre, centre at (96, 96).
pub fn crop_transform(bbox: &[f32; 4]) -> Affine {
    let (w, h) = ((bbox[2] - bbox[0]) as f64, (bbox[3] - bbox[1]) as f64);
    let (cx, cy) = (((bbox[0] + bbox[2]) / 2.0) as f64, ((bbox[1] + bbox[3]) / 2.0) as f64);
    let scale = CROP as f64 / (w.max(h) * 1.5);
    let half = CROP as f64 / 2.0;
    Affine { m: [scale, 0.0, half - cx * scale, 0.0, scale, half - cy * scale] }
}

pub struct Landmark106 {
    crop: CropModel,
}

impl Landmark106 {
    pub fn open(path: &Path, property: &'static str, options: &SessionOptions) -> Result<Self, RuntimeError> {
        let model = ModelSession::open(path, property, options, check)?;
        let summary = read_graph_summary(&model.path)
            .map_err(|reason| RuntimeError::ModelUnreadable { path: model.path.clone(), reason })?;
        // InsightFace's Landmark uses the same Sub/Mul test, with 127.5/128 for the other case.
        let (mean, std) = match normalisation_from_node_names(&summary.first_node_names) {
            (0.0, _) => (0.0, 1.0),
            _ => (127.5, 128.0),
        };
        Ok(Landmark106 { crop: CropModel::new(model, CROP, Normalization { mean, scale: 1.0 / std }) })
    }

    pub fn model(&self) -> &ModelSession {
        self.crop.model()
    }

    /// The 106 landmarks of the face in `bbox`, in frame coordinates.
    pub fn landmarks(
        &mut self,
        backend: &mut Backend,
        frame: &FrameView,
        bbox: &[f32; 4],
    ) -> Result<Vec<[f32; 2]>, String> {
        let m = crop_transform(bbox);
        let inverse = m.invert().ok_or("degenerate face box")?;
        let raw = self.crop.run(backend, frame, &m)?;
        if raw.len() != 2 * POINTS {
            return Err(format!("landmark output has {} values, expected {}", raw.len(), 2 * POINTS));
        }
        let half = (CROP / 2) as f64;
        Ok(raw
            .chunks_exact(2)
            .map(|p| {
                let (x, y) = inverse.apply((p[0] as f64 + 1.0) * half, (p[1] as f64 + 1.0) * half);
                [x as f32, y as f32]
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crop_centres_the_box() {
        // A 100×80 box centred at (150, 140): scale 192 / 150 = 1.28; the centre maps to (96, 96).
        let m = crop_transform(&[100.0, 100.0, 200.0, 180.0]);
        let (x, y) = m.apply(150.0, 140.0);
        assert!((x - 96.0).abs() < 1e-9 && (y - 96.0).abs() < 1e-9);
        assert!((m.m[0] - 1.28).abs() < 1e-12);
    }
}
