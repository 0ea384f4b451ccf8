//! The `inswapper_128` identity swap, as InsightFace's `INSwapper.get` with Deep-Live-Cam's
//! settings: 128-px similarity alignment, RGB `x / 255` input, latent = embedding × `emap`
//! renormalised, output clipped and truncated to 8 bits. Float16 exports are fed and read in
//! float16.

use std::path::Path;
use std::sync::Arc;

use half::f16;
use ort::value::{TensorElementType, TensorRef};

use crate::face::EMBEDDING_LEN;
use crate::runtime::{ModelIo, ModelSession, RuntimeError, SessionOptions, read_graph_summary};
use crate::vision::warp::{rgb_to_nchw, warp_affine_rgb};
use crate::vision::{Affine, FrameView, RgbImage, estimate_norm};

use super::{input_tensor, l2_normalized, output_values};

/// Side of the aligned face crop the swapper works on.
pub const CROP: usize = 128;

pub const CONTRACT: &str = "an inswapper_128 face swapper: inputs 'target' [1,3,128,128] and \
    'source' [1,512] (float32 or float16), output [1,3,128,128], and a 512×512 'emap' as the last \
    graph initializer";

pub fn check(io: &ModelIo) -> Result<(), String> {
    let target = io.inputs.iter().find(|i| i.name == "target");
    let source = io.inputs.iter().find(|i| i.name == "source");
    let ok = match (target, source, io.outputs.as_slice()) {
        (Some(t), Some(s), [out]) => {
            io.inputs.len() == 2
                && t.is_float()
                && t.shape.len() == 4
                && (1..4).all(|i| t.dim_accepts(i, [1, 3, CROP as i64, CROP as i64][i]))
                && s.is_float()
                && s.shape.len() == 2
                && s.dim_accepts(1, EMBEDDING_LEN as i64)
                && out.is_float()
                && out.shape.len() == 4
                && out.dim_accepts(1, 3)
                && out.dim_accepts(2, CROP as i64)
                && out.dim_accepts(3, CROP as i64)
        }
        _ => false,
    };
    ok.then_some(()).ok_or_else(|| CONTRACT.to_string())
}

/// The swapper's identity input: `embedding · emap`, L2-normalised (InsightFace and
/// Deep-Live-Cam renormalise; FaceFusion does not). `emap` is row-major 512×512.
pub fn latent(embedding: &[f32], emap: &[f32]) -> Option<Vec<f32>> {
    if embedding.len() != EMBEDDING_LEN || emap.len() != EMBEDDING_LEN * EMBEDDING_LEN {
        return None;
    }
    let mut out = vec![0.0f32; EMBEDDING_LEN];
    for (e, row) in embedding.iter().zip(emap.chunks_exact(EMBEDDING_LEN)) {
        for (o, m) in out.iter_mut().zip(row) {
            *o += e * m;
        }
    }
    l2_normalized(&out)
}

/// Converts the model's `[1,3,128,128]` output in [0,1] to a packed RGB crop like the
/// reference: `clip(255·x, 0, 255)` truncated to uint8.
pub fn output_to_rgb(planar: &[f32], out: &mut RgbImage) {
    let plane = CROP * CROP;
    out.reshape(CROP, CROP);
    for i in 0..plane {
        for c in 0..3 {
            out.data[i * 3 + c] = (255.0 * planar[c * plane + i]).clamp(0.0, 255.0) as u8;
        }
    }
}

pub struct Inswapper {
    model: ModelSession,
    emap: Arc<[f32]>,
    half_precision: bool,
    /// Position of the `target` and `source` inputs in the session's input order.
    target_first: bool,
    crop: RgbImage,
    blob: Vec<f32>,
    blob16: Vec<f16>,
    latent16: Vec<f16>,
    fake: RgbImage,
}

impl Inswapper {
    pub fn open(path: &Path, property: &'static str, options: &SessionOptions) -> Result<Self, RuntimeError> {
        let model = ModelSession::open(path, property, options, check)?;
        let summary = read_graph_summary(path)
            .map_err(|reason| RuntimeError::ModelUnreadable { path: path.to_path_buf(), reason })?;
        let emap = match summary.last_initializer {
            Some((_, dims, values)) if dims == [EMBEDDING_LEN as i64, EMBEDDING_LEN as i64] => Arc::from(values),
            other => {
                let found = other.map_or("no initializers".to_string(), |(name, dims, _)| {
                    format!("last initializer '{name}' with dims {dims:?}")
                });
                return Err(RuntimeError::WrongKind {
                    path: path.to_path_buf(),
                    expected: CONTRACT.to_string(),
                    found,
                });
            }
        };
        let half_precision = model.io.inputs.iter().any(|i| i.element == Some(TensorElementType::Float16));
        let target_first = model.io.inputs.first().is_some_and(|i| i.name == "target");
        Ok(Inswapper {
            model,
            emap,
            half_precision,
            target_first,
            crop: RgbImage::new(CROP, CROP),
            blob: vec![0.0; 3 * CROP * CROP],
            blob16: Vec::new(),
            latent16: Vec::new(),
            fake: RgbImage::new(CROP, CROP),
        })
    }

    pub fn model(&self) -> &ModelSession {
        &self.model
    }

    /// The identity projection read from the model file (shared with identity workers).
    pub fn emap(&self) -> Arc<[f32]> {
        self.emap.clone()
    }

    /// The alignment of a face with keypoints `kps` (frame → 128-px crop).
    pub fn alignment(kps: &[[f32; 2]; 5]) -> Option<Affine> {
        estimate_norm(kps, CROP)
    }

    /// The aligned crop of the last [`Inswapper::swap`] (the original face, for colour matching).
    pub fn original_crop(&self) -> &RgbImage {
        &self.crop
    }

    /// Swaps the face aligned by `m` in `frame` to the identity `latent`; returns the swapped
    /// 128-px crop.
    pub fn swap(&mut self, frame: &FrameView, m: &Affine, latent: &[f32]) -> Result<&RgbImage, String> {
        if latent.len() != EMBEDDING_LEN {
            return Err(format!("latent has {} values, expected {EMBEDDING_LEN}", latent.len()));
        }
        warp_affine_rgb(frame, m, &mut self.crop, CROP, CROP);
        rgb_to_nchw(&self.crop, 0.0, 1.0 / 255.0, &mut self.blob);
        let target_shape = [1usize, 3, CROP, CROP];
        let source_shape = [1usize, EMBEDDING_LEN];
        let outputs = if self.half_precision {
            self.blob16.clear();
            self.blob16.extend(self.blob.iter().map(|&v| f16::from_f32(v)));
            self.latent16.clear();
            self.latent16.extend(latent.iter().map(|&v| f16::from_f32(v)));
            let target = TensorRef::from_array_view((target_shape.to_vec(), self.blob16.as_slice()))
                .map_err(|e| e.to_string())?;
            let source = TensorRef::from_array_view((source_shape.to_vec(), self.latent16.as_slice()))
                .map_err(|e| e.to_string())?;
            let inputs = if self.target_first { ort::inputs![target, source] } else { ort::inputs![source, target] };
            self.model.session.run(inputs)
        } else {
            let target = input_tensor(&target_shape, &self.blob)?;
            let source = input_tensor(&source_shape, latent)?;
            let inputs = if self.target_first { ort::inputs![target, source] } else { ort::inputs![source, target] };
            self.model.session.run(inputs)
        }
        .map_err(|e| format!("inference failed: {e}"))?;
        let values = output_values(&outputs[0])?;
        if values.len() != 3 * CROP * CROP {
            return Err(format!("swapper output has {} values, expected {}", values.len(), 3 * CROP * CROP));
        }
        output_to_rgb(&values, &mut self.fake);
        Ok(&self.fake)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latent_is_embedding_times_emap_renormalised() {
        // emap = 2·identity except e0 → (3, 4) in the first two columns of row 0.
        let mut emap = vec![0.0f32; EMBEDDING_LEN * EMBEDDING_LEN];
        for i in 0..EMBEDDING_LEN {
            emap[i * EMBEDDING_LEN + i] = 2.0;
        }
        emap[0] = 3.0;
        emap[1] = 4.0;
        let mut embedding = vec![0.0f32; EMBEDDING_LEN];
        embedding[0] = 1.0;
        // e·emap = (3, 4, 0, …): normalised (0.6, 0.8).
        let l = latent(&embedding, &emap).unwrap();
        assert!((l[0] - 0.6).abs() < 1e-6 && (l[1] - 0.8).abs() < 1e-6);
        assert!(l[2..].iter().all(|v| *v == 0.0));
        assert!(latent(&embedding[..10], &emap).is_none());
    }

    #[test]
    fn output_is_clipped_and_truncated() {
        let plane = CROP * CROP;
        let mut planar = vec![0.0f32; 3 * plane];
        planar[0] = 0.999; // 254.7 → 254 (truncated)
        planar[plane] = 1.5; // clipped → 255
        planar[2 * plane] = -0.2; // clipped → 0
        let mut out = RgbImage::new(1, 1);
        output_to_rgb(&planar, &mut out);
        assert_eq!(out.pixel(0, 0), [254, 255, 0]);
    }
}
