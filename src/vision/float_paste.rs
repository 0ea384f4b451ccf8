// SPDX-License-Identifier: MPL-2.0
//! FaceFusion's paste-back: a swapped crop kept in float (never rounded on its own) and a float
//! weight grid over the crop are warped back into the frame by the inverse alignment and blended,
//! `out = frame·(1 − w) + crop·w`, truncated to 8 bits (FaceFusion 3.8.1 `paste_back`).
//!
//! The crop is sampled bilinearly with the crop's edge replicated outside it; the weights
//! bilinearly with zero outside, then clipped to [0, 1]. Only the frame rectangle that the crop
//! square's corners span is visited (FaceFusion's paste area); pixels of weight 0 keep their bytes.

use super::align::Affine;
use super::image::Rect;
use super::paste::PackedPixels;
use super::sample::{Tap, fixed};

/// The frame rectangle FaceFusion pastes into for a `side × side` crop aligned by `m` (frame →
/// crop): the crop's corners `(0, 0)`, `(side, 0)`, `(side, side)`, `(0, side)` mapped back by
/// `m⁻¹`, floored and ceiled outwards and clipped to the frame. Empty for a singular `m`.
pub fn paste_rect(m: &Affine, side: usize, frame_w: usize, frame_h: usize) -> Rect {
    let Some(inv) = m.invert() else { return Rect::default() };
    let s = side as f64;
    let corners = [(0.0, 0.0), (s, 0.0), (s, s), (0.0, s)].map(|(u, v)| inv.apply(u, v));
    let (mut x0, mut y0, mut x1, mut y1) = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
    for (x, y) in corners {
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    if ![x0, y0, x1, y1].iter().all(|v| v.is_finite()) {
        return Rect::default();
    }
    let (fw, fh) = (frame_w.min(i32::MAX as usize) as f64, frame_h.min(i32::MAX as usize) as f64);
    let (a, b) = (x0.floor().clamp(0.0, fw), y0.floor().clamp(0.0, fh));
    let (c, d) = (x1.ceil().clamp(0.0, fw), y1.ceil().clamp(0.0, fh));
    Rect::new(a as i32, b as i32, (c - a).max(0.0) as i32, (d - b).max(0.0) as i32)
}

/// A float crop and its weights, both `side × side`: `rgb` packed RGB values in [0, 255], `mask`
/// one weight per pixel.
#[derive(Clone, Copy)]
pub struct FloatCrop<'a> {
    pub side: usize,
    pub rgb: &'a [f32],
    pub mask: &'a [f32],
}

impl FloatCrop<'_> {
    fn is_valid(&self) -> bool {
        let n = self.side * self.side;
        n > 0 && self.rgb.len() == 3 * n && self.mask.len() == n
    }

    /// The weight at `tap` (bilinear, zero outside the grid), clipped to [0, 1].
    #[inline(always)]
    fn weight(&self, tap: Tap) -> f32 {
        let side = self.side as isize;
        let at = |x: isize, y: isize| {
            if x >= 0 && y >= 0 && x < side && y < side { self.mask[y as usize * self.side + x as usize] } else { 0.0 }
        };
        let (fx, fy) = tap.fractions();
        let (x, y) = (tap.x, tap.y);
        let top = at(x, y) * (1.0 - fx) + at(x + 1, y) * fx;
        let bottom = at(x, y + 1) * (1.0 - fx) + at(x + 1, y + 1) * fx;
        (top * (1.0 - fy) + bottom * fy).clamp(0.0, 1.0)
    }

    /// The colour at `tap` (bilinear, the edge replicated outside the crop).
    #[inline(always)]
    fn colour(&self, tap: Tap) -> [f32; 3] {
        let last = self.side as isize - 1;
        let index = |x: isize, y: isize| (y.clamp(0, last) as usize * self.side + x.clamp(0, last) as usize) * 3;
        let (fx, fy) = tap.fractions();
        let (x, y) = (tap.x, tap.y);
        let [i00, i01, i10, i11] = [index(x, y), index(x + 1, y), index(x, y + 1), index(x + 1, y + 1)];
        std::array::from_fn(|c| {
            let top = self.rgb[i00 + c] * (1.0 - fx) + self.rgb[i01 + c] * fx;
            let bottom = self.rgb[i10 + c] * (1.0 - fx) + self.rgb[i11 + c] * fx;
            top * (1.0 - fy) + bottom * fy
        })
    }
}

/// Pastes `crop` (aligned by `m`, frame → crop) into `target` over `rect` (frame coordinates,
/// see [`paste_rect`]): `out = frame·(1 − w) + crop·w` in `f64`, truncated. Pixels of weight 0
/// keep their bytes, and so do alpha and padding bytes.
///
/// With `weights`, the weight used at each pixel of `rect` is stored there (row-major, 0 where
/// nothing was written), for writing a region buffer back into a YUV frame.
pub fn paste_float(
    target: &mut PackedPixels,
    rect: Rect,
    crop: FloatCrop,
    m: &Affine,
    mut weights: Option<&mut Vec<f32>>,
) {
    if let Some(w) = weights.as_deref_mut() {
        w.clear();
        w.resize(rect.width.max(0) as usize * rect.height.max(0) as usize, 0.0);
    }
    let extent = Rect::new(target.origin.0, target.origin.1, target.width as i32, target.height as i32);
    let clip = intersect(rect, extent);
    if clip.is_empty() || !crop.is_valid() || m.m.iter().any(|v| !v.is_finite()) {
        return;
    }
    let (bpp, [r, g, b]) = (target.bpp, target.offsets);
    let [ma, mb, mc, md, me, mf] = m.m;
    let (step_u, step_v) = (fixed(ma), fixed(md));
    for y in clip.y..clip.y + clip.height {
        let x = clip.x as f64;
        let (mut uq, mut vq) = (fixed(ma * x + mb * y as f64 + mc), fixed(md * x + me * y as f64 + mf));
        let row_start = (y - extent.y) as usize * target.stride + (clip.x - extent.x) as usize * bpp;
        let row = &mut target.data[row_start..row_start + clip.width as usize * bpp];
        let weight_row = (y - rect.y) as usize * rect.width as usize;
        for (x, px) in (clip.x..clip.x + clip.width).zip(row.chunks_exact_mut(bpp)) {
            let tap = Tap::at(uq, vq);
            (uq, vq) = (uq + step_u, vq + step_v);
            let w = crop.weight(tap);
            if w <= 0.0 {
                continue;
            }
            let colour = crop.colour(tap);
            let (w64, keep) = (f64::from(w), 1.0 - f64::from(w));
            for (offset, value) in [r, g, b].into_iter().zip(colour) {
                px[offset] = (f64::from(px[offset]) * keep + f64::from(value) * w64) as u8;
            }
            if let Some(wt) = weights.as_deref_mut() {
                wt[weight_row + (x - rect.x) as usize] = w;
            }
        }
    }
}

/// The overlap of two rectangles (empty when they do not overlap).
fn intersect(a: Rect, b: Rect) -> Rect {
    let (x0, y0) = (a.x.max(b.x), a.y.max(b.y));
    let (x1, y1) = ((a.x + a.width).min(b.x + b.width), (a.y + a.height).min(b.y + b.height));
    Rect::new(x0, y0, (x1 - x0).max(0), (y1 - y0).max(0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::RgbImage;

    fn scaled(scale: f64, tx: f64, ty: f64) -> Affine {
        Affine { m: [scale, 0.0, tx, 0.0, scale, ty] }
    }

    #[test]
    fn paste_rect_spans_the_crop_corners() {
        // Crop = 2 × frame shifted: frame x = (u + 3)/2 … the corners (0, 0) and (8, 8) map to
        // (1.5, 2) and (5.5, 6): floor/ceil give [1, 6) × [2, 6).
        let m = scaled(2.0, -3.0, -4.0);
        assert_eq!(paste_rect(&m, 8, 100, 100), Rect::new(1, 2, 5, 4));
        // Clipped to the frame.
        assert_eq!(paste_rect(&m, 8, 4, 5), Rect::new(1, 2, 3, 3));
        assert_eq!(paste_rect(&Affine { m: [0.0; 6] }, 8, 10, 10), Rect::default());
    }

    #[test]
    fn identity_paste_blends_and_truncates() {
        let mut frame = RgbImage::from_raw(2, 2, vec![100; 12]).unwrap();
        let rgb = [200.0, 50.0, 100.4, 0.0, 0.0, 0.0, 255.0, 255.0, 255.0, 10.0, 10.0, 10.0];
        let mask = [1.0, 0.0, 0.5, 0.25];
        let crop = FloatCrop { side: 2, rgb: &rgb, mask: &mask };
        let mut pixels = PackedPixels::region(&mut frame, Rect::new(0, 0, 2, 2));
        let mut weights = Vec::new();
        paste_float(&mut pixels, Rect::new(0, 0, 2, 2), crop, &Affine::IDENTITY, Some(&mut weights));
        // w 1: the crop truncated; w 0: unchanged; w .5: (100 + 255)/2 = 177.5 → 177;
        // w .25: 75 + 2.5 = 77.5 → 77.
        assert_eq!(frame.data, vec![200, 50, 100, 100, 100, 100, 177, 177, 177, 77, 77, 77]);
        assert_eq!(weights, vec![1.0, 0.0, 0.5, 0.25]);
    }

    #[test]
    fn outside_the_crop_the_colour_repeats_and_the_weight_fades() {
        // A 2×2 crop pasted at 4× magnification (frame → crop scale 0.25) at the frame's origin:
        // frame pixel x samples the crop at x/4 − 0.375. Left of the first crop column the colour
        // is the edge colour (not black) and the weight falls off linearly towards −1.
        let m = scaled(0.25, -0.375, -0.375);
        let rgb = [40.0; 12];
        let mask = [1.0; 4];
        let crop = FloatCrop { side: 2, rgb: &rgb, mask: &mask };
        let mut frame = RgbImage::from_raw(8, 8, vec![0; 192]).unwrap();
        // FaceFusion's paste area starts at the first corner (crop 0 ↔ frame 1.5): the fading
        // band left of it is not pasted there; this pastes over the whole frame to see it.
        assert_eq!(paste_rect(&m, 2, 8, 8), Rect::new(1, 1, 7, 7));
        let rect = Rect::new(0, 0, 8, 8);
        let mut pixels = PackedPixels::region(&mut frame, rect);
        paste_float(&mut pixels, rect, crop, &m, None);
        // Frame x 0 → crop −0.375: weight 0.625 along x (and y): 40·0.625² = 15.6 → 15.
        assert_eq!(frame.pixel(0, 0), [15; 3]);
        // Frame (0, 3) → crop (−0.375, 0.375): weight 0.625 → 25.
        assert_eq!(frame.pixel(0, 3), [25; 3]);
        assert_eq!(frame.pixel(3, 3), [40; 3]);
    }

    #[test]
    fn rectangle_outside_the_target_is_skipped() {
        let mut frame = RgbImage::from_raw(2, 2, vec![9; 12]).unwrap();
        let (rgb, mask) = ([1.0; 12], [1.0; 4]);
        let mut pixels = PackedPixels::region(&mut frame, Rect::new(0, 0, 2, 2));
        let crop = FloatCrop { side: 2, rgb: &rgb, mask: &mask };
        paste_float(&mut pixels, Rect::new(5, 5, 2, 2), crop, &Affine::IDENTITY, None);
        let bad = FloatCrop { side: 2, rgb: &rgb[..6], mask: &mask };
        paste_float(&mut pixels, Rect::new(0, 0, 2, 2), bad, &Affine::IDENTITY, None);
        assert_eq!(frame.data, vec![9; 12]);
    }
}
