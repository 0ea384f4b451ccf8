//! Face restoration models (GFPGAN 1.2–1.4, GPEN-BFR 256–2048, CodeFormer, RestoreFormer++),
//! recognised from their inputs and outputs (and the file name where shapes alone cannot tell),
//! each with its own alignment template; RGB `x / 127.5 − 1` in, `(clip(y, −1, 1) + 1) · 127.5`
//! out.

use std::path::Path;

use ort::value::{Tensor, TensorElementType};

use crate::runtime::{ModelIo, ModelSession, RuntimeError, SessionOptions};
use crate::vision::align::{ffhq_template, template, umeyama};
use crate::vision::warp::{rgb_to_nchw, warp_affine_rgb};
use crate::vision::{Affine, FrameView, RgbImage};

use super::{input_tensor, output_values};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Gfpgan,
    GpenBfr,
    CodeFormer,
    RestoreFormer,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Gfpgan => "GFPGAN",
            Family::GpenBfr => "GPEN-BFR",
            Family::CodeFormer => "CodeFormer",
            Family::RestoreFormer => "RestoreFormer++",
        }
    }
}

/// A recognised model: family, crop size and output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancerKind {
    pub family: Family,
    /// Side of the aligned input crop.
    pub size: usize,
    /// Side of the model's output (GFPGAN exports that upscale ×2 return 1024).
    pub output_size: usize,
}

pub const CONTRACT: &str = "a face restoration model: GFPGAN or RestoreFormer++ (input [1,3,512,512], \
    output 512 or 1024), GPEN-BFR (input [1,3,S,S] with S 256, 512, 1024 or 2048 and 'gpen' in the \
    file name) or CodeFormer (inputs [1,3,512,512] and 'weight' float64 [1])";

fn square_side(shape: &[i64]) -> Option<usize> {
    match shape {
        [n, 3, h, w] if (*n == 1 || *n < 0) && h == w && *h > 0 => Some(*h as usize),
        _ => None,
    }
}

/// Recognises the family from the model's I/O and file name.
pub fn recognise(io: &ModelIo, file_name: &str) -> Result<EnhancerKind, String> {
    let name = file_name.to_lowercase();
    let image_inputs: Vec<_> = io.inputs.iter().filter(|i| i.element != Some(TensorElementType::Float64)).collect();
    let weight_input = io.inputs.iter().find(|i| i.element == Some(TensorElementType::Float64));
    let ([input], [output]) = (image_inputs.as_slice(), io.outputs.as_slice()) else {
        return Err(CONTRACT.to_string());
    };
    let (Some(size), Some(output_size)) = (square_side(&input.shape), square_side(&output.shape)) else {
        return Err(CONTRACT.to_string());
    };
    if !input.is_float() || !output.is_float() {
        return Err(CONTRACT.to_string());
    }
    let kind = |family| Ok(EnhancerKind { family, size, output_size });
    match (weight_input, size) {
        (Some(_), 512) if io.inputs.len() == 2 && output_size == 512 => kind(Family::CodeFormer),
        (Some(_), _) => Err(CONTRACT.to_string()),
        (None, 256 | 512 | 1024 | 2048) if name.contains("gpen") && output_size == size => kind(Family::GpenBfr),
        (None, 512) if name.contains("restoreformer") && output_size == 512 => kind(Family::RestoreFormer),
        (None, 512) if output_size == 512 || output_size == 1024 => kind(Family::Gfpgan),
        _ => Err(CONTRACT.to_string()),
    }
}

/// The five-point template a family aligns faces to, at its crop size.
pub fn family_template(kind: &EnhancerKind) -> [[f64; 2]; 5] {
    match (kind.family, kind.size) {
        // FaceFusion aligns GPEN-BFR-256 to the ArcFace template at 128 px, doubled.
        (Family::GpenBfr, 256) => template(128).map(|[x, y]| [x * 2.0, y * 2.0]),
        (_, size) => ffhq_template(size),
    }
}

/// Converts planar `[3, S, S]` output in [−1, 1] to packed RGB, resizing to `size` when the
/// model returned another size (box-averaging a ×2 output back, which is what a downscale by an
/// integer factor with area interpolation does).
pub fn output_to_rgb(planar: &[f32], out_size: usize, size: usize, out: &mut RgbImage) {
    let plane = out_size * out_size;
    let to_u8 = |v: f32| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5).round() as u8;
    out.reshape(size, size);
    let factor = (out_size / size.max(1)).max(1);
    let inv = 1.0 / (factor * factor) as f32;
    for y in 0..size {
        for x in 0..size {
            for c in 0..3 {
                let mut sum = 0.0f32;
                for dy in 0..factor {
                    for dx in 0..factor {
                        let (sx, sy) = ((x * factor + dx).min(out_size - 1), (y * factor + dy).min(out_size - 1));
                        sum += planar[c * plane + sy * out_size + sx];
                    }
                }
                out.data[(y * size + x) * 3 + c] = to_u8(sum * inv);
            }
        }
    }
}

pub struct Enhancer {
    model: ModelSession,
    kind: EnhancerKind,
    template: [[f64; 2]; 5],
    image_input_first: bool,
    crop: RgbImage,
    blob: Vec<f32>,
    restored: RgbImage,
}

impl Enhancer {
    pub fn open(path: &Path, property: &'static str, options: &SessionOptions) -> Result<Self, RuntimeError> {
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let model = ModelSession::open(path, property, options, |io| recognise(io, &file_name).map(|_| ()))?;
        let kind = recognise(&model.io, &file_name).map_err(|expected| RuntimeError::WrongKind {
            path: path.to_path_buf(),
            expected,
            found: model.io.to_string(),
        })?;
        let image_input_first = model.io.inputs.first().is_some_and(|i| i.element != Some(TensorElementType::Float64));
        Ok(Enhancer {
            template: family_template(&kind),
            model,
            kind,
            image_input_first,
            crop: RgbImage::new(kind.size, kind.size),
            blob: vec![0.0; 3 * kind.size * kind.size],
            restored: RgbImage::new(kind.size, kind.size),
        })
    }

    pub fn model(&self) -> &ModelSession {
        &self.model
    }

    pub fn kind(&self) -> EnhancerKind {
        self.kind
    }

    /// The alignment (frame → crop) of a face with keypoints `kps`.
    pub fn alignment(&self, kps: &[[f32; 2]; 5]) -> Option<Affine> {
        let src = kps.map(|[x, y]| [x as f64, y as f64]);
        umeyama(&src, &self.template)
    }

    /// Restores the face aligned by `m`; returns the restored crop (crop-size square).
    pub fn restore(&mut self, frame: &FrameView, m: &Affine, fidelity: f64) -> Result<&RgbImage, String> {
        let size = self.kind.size;
        warp_affine_rgb(frame, m, &mut self.crop, size, size);
        rgb_to_nchw(&self.crop, 127.5, 1.0 / 127.5, &mut self.blob);
        let image = input_tensor(&[1, 3, size, size], &self.blob)?;
        let outputs = if self.kind.family == Family::CodeFormer {
            let weight = Tensor::from_array((vec![1usize], vec![fidelity])).map_err(|e| e.to_string())?;
            let inputs = if self.image_input_first { ort::inputs![image, weight] } else { ort::inputs![weight, image] };
            self.model.session.run(inputs)
        } else {
            self.model.session.run(ort::inputs![image])
        }
        .map_err(|e| format!("inference failed: {e}"))?;
        let values = output_values(&outputs[0])?;
        let out_size = self.kind.output_size;
        if values.len() != 3 * out_size * out_size {
            return Err(format!("restorer output has {} values, expected {}", values.len(), 3 * out_size * out_size));
        }
        output_to_rgb(&values, out_size, size, &mut self.restored);
        Ok(&self.restored)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::TensorSpec;
    use ort::value::TensorElementType::{Float32, Float64};

    fn spec(name: &str, element: TensorElementType, shape: &[i64]) -> TensorSpec {
        TensorSpec { name: name.into(), element: Some(element), shape: shape.to_vec() }
    }

    fn io(size: i64, out: i64, weight: bool) -> ModelIo {
        let mut inputs = vec![spec("input", Float32, &[1, 3, size, size])];
        if weight {
            inputs.push(spec("weight", Float64, &[1]));
        }
        ModelIo { inputs, outputs: vec![spec("output", Float32, &[1, 3, out, out])] }
    }

    #[test]
    fn families_are_told_apart() {
        assert_eq!(recognise(&io(512, 512, false), "GFPGANv1.4.onnx").unwrap().family, Family::Gfpgan);
        assert_eq!(recognise(&io(512, 1024, false), "gfpgan_1.2.onnx").unwrap().output_size, 1024);
        assert_eq!(recognise(&io(256, 256, false), "GPEN-BFR-256.onnx").unwrap().family, Family::GpenBfr);
        assert_eq!(recognise(&io(2048, 2048, false), "gpen_bfr_2048.onnx").unwrap().size, 2048);
        assert_eq!(recognise(&io(512, 512, true), "codeformer.onnx").unwrap().family, Family::CodeFormer);
        assert_eq!(
            recognise(&io(512, 512, false), "restoreformer_plus_plus.onnx").unwrap().family,
            Family::RestoreFormer
        );
        // A detector-shaped or unknown-size model is none of them.
        assert!(recognise(&io(640, 640, false), "det_10g.onnx").unwrap_err().contains("face restoration model"));
        assert!(recognise(&io(256, 256, false), "mystery.onnx").is_err());
    }

    #[test]
    fn gpen_256_uses_doubled_arcface_128_template() {
        let kind = EnhancerKind { family: Family::GpenBfr, size: 256, output_size: 256 };
        // ArcFace at 128: first point (46.2946, 51.6963) → doubled.
        let t = family_template(&kind);
        assert!((t[0][0] - 92.5892).abs() < 1e-4 && (t[0][1] - 103.3926).abs() < 1e-4);
        let gfpgan = EnhancerKind { family: Family::Gfpgan, size: 512, output_size: 512 };
        assert!((family_template(&gfpgan)[2][0] - 256.63416).abs() < 1e-4);
    }

    #[test]
    fn output_maps_minus_one_to_one_and_box_averages() {
        // 2×2 output → 1×1 crop: mean of (−1, 1, 0, 0) = 0 → 127.5 → 128; other planes −1 → 0, 2 → 255.
        let planar = [-1.0, 1.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0, 2.0, 2.0, 2.0, 2.0];
        let mut out = RgbImage::new(1, 1);
        output_to_rgb(&planar, 2, 1, &mut out);
        assert_eq!(out.pixel(0, 0), [128, 0, 255]);
    }
}
