// SPDX-License-Identifier: MPL-2.0
//! The CPU implementation of the pixel steps, on the mapped frame and host tensors: nothing is
//! copied that the step does not need (packed frames are pasted into in place; YUV frames go
//! through an RGB copy of the face's rectangle only).

use ort::value::{DynTensor, TensorElementType};

use super::{Crop, FaceRegion, Normalization, OutputDecode};
use crate::runtime::{fill_host_f32, host_tensor, read_host_f32, tensor_shape};
use crate::vision::letterbox::letterbox_blob;
use crate::vision::paste::{CropMask, PackedPixels, paste_crop};
use crate::vision::warp::{rgb_to_nchw, warp_affine_rgb};
use crate::vision::{Affine, FrameView, FrameViewMut, Rect, RgbImage};

/// Reusable buffers of the CPU steps: no per-frame allocation once the largest face was seen.
#[derive(Debug, Default)]
pub struct CpuBackend {
    /// The 8-bit crop a warp produces before normalisation.
    crop: RgbImage,
    /// Float staging for float16 tensors.
    values: Vec<f32>,
    /// RGB copy of a YUV frame's face rectangle, and the paste weights over it.
    region: RgbImage,
    weights: Vec<f32>,
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

    pub fn letterbox(&mut self, frame: &FrameView, norm: Normalization, input: &mut DynTensor) -> Result<f32, String> {
        let (h, w) = image_shape(input)?;
        let mut det_scale = 1.0;
        fill_host_f32(input, &mut self.values, |blob| {
            det_scale = letterbox_blob(frame, w, h, (norm.mean, norm.scale), blob)
        })?;
        Ok(det_scale)
    }

    pub fn load_region(&mut self, _frame: &FrameView, rect: Rect) -> Result<FaceRegion, String> {
        // The CPU reads and writes the mapped frame itself: nothing to stage.
        Ok(FaceRegion { rect })
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
        warp_affine_rgb(frame, m, &mut self.crop, w, h);
        let crop = &self.crop;
        fill_host_f32(input, &mut self.values, |blob| rgb_to_nchw(crop, norm.mean, norm.scale, blob))
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
        let planar = read_host_f32(output, &mut self.values)?;
        decode_planar(planar, w, size, decode, &mut crop.image);
        Ok(())
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
/// `size`), as `decode` says.
pub fn decode_planar(planar: &[f32], n: usize, size: usize, decode: OutputDecode, out: &mut RgbImage) {
    let plane = n * n;
    out.reshape(size, size);
    if planar.len() < 3 * plane || size == 0 {
        out.data.fill(0);
        return;
    }
    let factor = n / size;
    for c in 0..3 {
        let channel = &planar[c * plane..(c + 1) * plane];
        let pixels = out.data.chunks_exact_mut(3).map(|px| &mut px[c]);
        match (decode, factor) {
            (OutputDecode::UnitTruncated, 1) => {
                for (o, &v) in pixels.zip(channel) {
                    *o = (255.0 * v).clamp(0.0, 255.0) as u8;
                }
            }
            (OutputDecode::SignedRounded, 1) => {
                // `+ 0.5` then truncation rounds half up, as `round` does for these non-negative
                // values, without a libm call per value.
                for (o, &v) in pixels.zip(channel) {
                    *o = ((v.clamp(-1.0, 1.0) + 1.0) * 127.5 + 0.5) as u8;
                }
            }
            _ => {
                let inv = 1.0 / (factor * factor) as f32;
                for (i, o) in pixels.enumerate() {
                    let (x, y) = (i % size * factor, i / size * factor);
                    let sum: f32 = (0..factor).flat_map(|dy| &channel[(y + dy) * n + x..][..factor]).sum();
                    let v = sum * inv;
                    *o = match decode {
                        OutputDecode::UnitTruncated => (255.0 * v).clamp(0.0, 255.0) as u8,
                        OutputDecode::SignedRounded => ((v.clamp(-1.0, 1.0) + 1.0) * 127.5 + 0.5) as u8,
                    };
                }
            }
        }
    }
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
        decode_planar(&planar, 2, 2, OutputDecode::UnitTruncated, &mut out);
        assert_eq!(out.pixel(0, 0), [254, 255, 0]);
    }

    #[test]
    fn signed_output_maps_minus_one_to_one_and_box_averages() {
        // 2×2 output → 1×1 crop: mean of (−1, 1, 0, 0) = 0 → 127.5 → 128; other planes −1 → 0, 2 → 255.
        let planar = [-1.0, 1.0, 0.0, 0.0, -1.0, -1.0, -1.0, -1.0, 2.0, 2.0, 2.0, 2.0];
        let mut out = RgbImage::default();
        decode_planar(&planar, 2, 1, OutputDecode::SignedRounded, &mut out);
        assert_eq!(out.pixel(0, 0), [128, 0, 255]);
        // Same size: −0.5 → 63.75 → 64; 0.003 → 127.88 → 128.
        let planar = [-0.5, 0.003, 1.0];
        decode_planar(&planar, 1, 1, OutputDecode::SignedRounded, &mut out);
        assert_eq!(out.pixel(0, 0), [64, 128, 255]);
    }
}
