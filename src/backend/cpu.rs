// SPDX-License-Identifier: MPL-2.0
//! The CPU implementation of the pixel steps, on the mapped frame and host tensors: nothing is
//! copied that the step does not need (packed frames are pasted into in place; YUV frames go
//! through an RGB copy of the face's rectangle only).

use ort::value::{DynTensor, TensorElementType};

use super::{Crop, FaceRegion, Normalization, OutputDecode};
use crate::runtime::{fill_host_f32, host_tensor, read_host_f32, tensor_shape};
use crate::vision::letterbox::{LetterboxScratch, letterbox_blob};
use crate::vision::paste::{CropMask, PackedPixels, paste_crop};
use crate::vision::warp::warp_affine_planar;
use crate::vision::{Affine, FrameView, FrameViewMut, Rect, RgbImage};

/// Reusable buffers of the CPU steps: no per-frame allocation once the largest face was seen.
#[derive(Debug, Default)]
pub struct CpuBackend {
    /// Float staging for float16 tensors.
    values: Vec<f32>,
    /// Float16 model outputs widened to float32, one per output.
    widened: Vec<Vec<f32>>,
    /// RGB copy of a YUV frame's face rectangle, and the paste weights over it.
    region: RgbImage,
    weights: Vec<f32>,
    /// The detector letterbox's taps and row buffers.
    letterbox: LetterboxScratch,
}

/// `[1, 3, H, W]` → `(H, W)`.
fn image_shape(tensor: &DynTensor) -> Result<(usize, usize), String> {
    match tensor_shape(tensor).as_slice() {
        [1, 3, h, w] => Ok((*h, *w)),
        other => Err(format!("expected an image tensor [1,3,H,W], found {other:?}")),
    }
}

impl CpuBackend {
    pub fn tensor(&self, shape: &[usize], element: TensorElementType) -> Result<DynTensor, String> {
        host_tensor(shape, element)
    }

    pub fn fill(&mut self, tensor: &mut DynTensor, values: &[f32]) -> Result<(), String> {
        if tensor_shape(tensor).iter().product::<usize>() != values.len() {
            return Err(format!("cannot fill a tensor {:?} with {} values", tensor_shape(tensor), values.len()));
        }
        fill_host_f32(tensor, &mut self.values, |slots| slots.copy_from_slice(values))
    }

    /// The outputs are read where ONNX Runtime wrote them (float16 ones widened first).
    pub fn read_outputs<R>(&mut self, outputs: &[DynTensor], read: impl FnOnce(&[&[f32]]) -> R) -> Result<R, String> {
        if self.widened.len() < outputs.len() {
            self.widened.resize_with(outputs.len(), Vec::new);
        }
        let values = outputs
            .iter()
            .zip(self.widened.iter_mut())
            .map(|(o, s)| read_host_f32(o, s))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(read(&values))
    }

    pub fn letterbox(&mut self, frame: &FrameView, norm: Normalization, input: &mut DynTensor) -> Result<f32, String> {
        let (h, w) = image_shape(input)?;
        let mut det_scale = Err("letterbox: the input tensor was not filled".to_string());
        fill_host_f32(input, &mut self.values, |blob| {
            det_scale = letterbox_blob(&mut self.letterbox, frame, w, h, (norm.mean, norm.scale), blob)
        })?;
        det_scale
    }

    pub fn load_region(&mut self, _frame: &FrameView, rect: Rect) -> Result<FaceRegion, String> {
        // The CPU reads and writes the mapped frame itself: nothing to stage.
        Ok(FaceRegion { rect, pixels: None })
    }

    pub fn warp_to_input(
        &mut self,
        frame: &FrameView,
        _region: &FaceRegion,
        m: &Affine,
        norm: Normalization,
        input: &mut DynTensor,
    ) -> Result<(), String> {
        let (h, w) = image_shape(input)?;
        fill_host_f32(input, &mut self.values, |blob| {
            warp_affine_planar(frame, m, (w, h), (norm.mean, norm.scale), blob)
        })
    }

    pub fn decode_output(
        &mut self,
        output: &DynTensor,
        decode: OutputDecode,
        size: usize,
        crop: &mut Crop,
    ) -> Result<(), String> {
        let (h, w) = image_shape(output)?;
        if h != w || w == 0 || w % size.max(1) != 0 {
            return Err(format!("model output is {w}×{h}, expected a square multiple of {size}"));
        }
        let planar: &[f32] = match *output.data_type() {
            // Read in place: decoding checks finiteness on the way.
            TensorElementType::Float32 => output.try_extract_tensor::<f32>().map_err(|e| e.to_string())?.1,
            _ => read_host_f32(output, &mut self.values)?,
        };
        decode_planar(planar, w, size, decode, &mut crop.image)
    }

    pub fn paste(
        &mut self,
        frame: &mut FrameViewMut,
        region: &FaceRegion,
        crop: &Crop,
        mask: &CropMask,
        m: &Affine,
        opacity: f32,
    ) -> Result<(), String> {
        let rect = region.rect.clip_to(frame.width, frame.height);
        if rect.is_empty() {
            return Ok(());
        }
        if let Some(mut pixels) = frame.packed_pixels() {
            paste_crop(&mut pixels, rect, &crop.image, mask, m, opacity, None);
            return Ok(());
        }
        frame.as_view().read_region(rect, &mut self.region);
        let mut pixels = PackedPixels::region(&mut self.region, rect);
        paste_crop(&mut pixels, rect, &crop.image, mask, m, opacity, Some(&mut self.weights));
        frame.write_region(rect, &self.region, Some(&self.weights));
        Ok(())
    }
}

/// Converts planar `[3, n, n]` model output to a packed RGB `size × size` crop (`n` a multiple of
/// `size`), as `decode` says. Fails on a non-finite value: a model that produced NaN must not
/// paint faces.
pub fn decode_planar(
    planar: &[f32],
    n: usize,
    size: usize,
    decode: OutputDecode,
    out: &mut RgbImage,
) -> Result<(), String> {
    let plane = n * n;
    out.reshape(size, size);
    if planar.len() < 3 * plane || size == 0 || !n.is_multiple_of(size) {
        return Err(format!("model output holds {} values, expected 3×{n}×{n}", planar.len()));
    }
    let finite = match decode {
        OutputDecode::UnitTruncated => planar_to_rgb(planar, n, size, out, |v| (255.0 * v).clamp(0.0, 255.0) as u8),
        // `+ 0.5` then truncation rounds half up, as `round` does for these non-negative values,
        // without a library call per value.
        OutputDecode::SignedRounded => {
            planar_to_rgb(planar, n, size, out, |v| ((v.clamp(-1.0, 1.0) + 1.0) * 127.5 + 0.5) as u8)
        }
    };
    if finite { Ok(()) } else { Err("model output holds a non-finite value".to_string()) }
}

/// The loop of [`decode_planar`], monomorphic in the value conversion; returns whether every
/// value was finite.
fn planar_to_rgb(planar: &[f32], n: usize, size: usize, out: &mut RgbImage, to_u8: impl Fn(f32) -> u8) -> bool {
    let plane = n * n;
    let (r, rest) = planar.split_at(plane);
    let (g, b) = rest.split_at(plane);
    let mut finite = true;
    let factor = n / size;
    if factor == 1 {
        for (((px, &r), &g), &b) in out.data.chunks_exact_mut(3).zip(r).zip(g).zip(&b[..plane]) {
            finite &= (r + g + b).is_finite();
            px.copy_from_slice(&[to_u8(r), to_u8(g), to_u8(b)]);
        }
    } else {
        let inv = 1.0 / (factor * factor) as f32;
        let mean = |channel: &[f32], x: usize, y: usize| -> f32 {
            (0..factor).flat_map(|dy| &channel[(y + dy) * n + x..][..factor]).sum::<f32>() * inv
        };
        for (i, px) in out.data.chunks_exact_mut(3).enumerate() {
            let (x, y) = (i % size * factor, i / size * factor);
            let rgb = [mean(r, x, y), mean(g, x, y), mean(b, x, y)];
            finite &= rgb.iter().all(|v| v.is_finite());
            px.copy_from_slice(&rgb.map(&to_u8));
        }
    }
    finite
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unit_output_is_clipped_and_truncated() {
        let plane = 4;
        let mut planar = vec![0.0f32; 3 * plane];
        planar[0] = 0.999; // 254.7 → 254 (truncated)
        planar[plane] = 1.5; // clipped → 255
        planar[2 * plane] = -0.2; // clipped → 0
        let mut out = RgbImage::default();
        decode_planar(&planar, 2, 2, OutputDecode::UnitTruncated, &mut out).unwrap();
        assert_eq!(out.pixel(0, 0), [254, 255, 0]);
    }

    #[test]
    fn signed_output_maps_minus_one_to_one_and_box_averages() {
        // 2×2 output → 1×1 crop: mean of (−1, 1, 0, 0) = 0 → 127.5 → 128; other planes −1 → 0, 2 → 255.
        let planar = [-1.0, 1.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0, 2.0, 2.0, 2.0, 2.0];
        let mut out = RgbImage::default();
        decode_planar(&planar, 2, 1, OutputDecode::SignedRounded, &mut out).unwrap();
        assert_eq!(out.pixel(0, 0), [128, 0, 255]);
        // Same size: −0.5 → 63.75 → 64; 0.003 → 127.88 → 128.
        let planar = [-0.5, 0.003, 1.0];
        decode_planar(&planar, 1, 1, OutputDecode::SignedRounded, &mut out).unwrap();
        assert_eq!(out.pixel(0, 0), [64, 128, 255]);
        // Non-finite values and short outputs are refused.
        let err = decode_planar(&[0.5, f32::NAN, 0.5], 1, 1, OutputDecode::UnitTruncated, &mut out).unwrap_err();
        assert!(err.contains("non-finite"), "{err}");
        assert!(decode_planar(&[0.5; 2], 1, 1, OutputDecode::UnitTruncated, &mut out).is_err());
    }
}
