//! Paste-back of a face crop into the frame, computed only over the face's rectangle.
//!
//! The callers copy a rectangle of the frame into an [`RgbImage`] (`region`), call one of the
//! `paste_back_*` functions, which blend in place and return the per-pixel weight `w ∈ [0, 1]`, and
//! write back only the pixels with `w > 0`: everything else in the frame stays bit-exact.
//!
//! All warps reproduce `cv2.warpAffine(src, IM, frame_size)` with bilinear sampling and border 0,
//! including OpenCV's fixed-point arithmetic: `IM` is `invertAffineTransform(M)`, warpAffine inverts
//! it back internally, quantises each source position to 1/32 px (`INTER_BITS = 5`) and, for 8-bit
//! images, blends with 15-bit integer weights rounded to nearest. Reproducing that keeps the mask
//! thresholds (`> 20`, `== 255`) and the pasted pixels identical to the Python reference.

use super::align::Affine;
use super::filter::{BlurScratch, erode_box, gaussian_blur};
use super::image::{Rect, RgbImage};

/// OpenCV's affine inversion (`invertAffineTransform`, and the same formula inside `warpAffine`);
/// `None` when singular or not finite.
fn cv_invert(m: &[f64; 6]) -> Option<[f64; 6]> {
    let det = m[0] * m[4] - m[1] * m[3];
    if !det.is_finite() || det.abs() < 1e-12 {
        return None;
    }
    let d = 1.0 / det;
    let (a11, a22, a12, a21) = (m[4] * d, m[0] * d, -m[1] * d, -m[3] * d);
    let b1 = -a11 * m[2] - a12 * m[5];
    let b2 = -a21 * m[2] - a22 * m[5];
    let r = [a11, a12, b1, a21, a22, b2];
    r.iter().all(|v| v.is_finite()).then_some(r)
}

/// A bilinear tap of OpenCV's warp: top-left source pixel and 1/32-px fractions.
#[derive(Clone, Copy)]
struct Tap {
    ix: i64,
    iy: i64,
    fx: i64,
    fy: i64,
}

/// Source positions of `warpAffine(crop, IM)` for the pixels of one frame region.
struct Sampler<'c> {
    s: [f64; 6],
    /// OpenCV's per-column terms (`adelta`, `bdelta`), computed once per call.
    cols: &'c [(i64, i64)],
    y0: i64,
}

impl<'c> Sampler<'c> {
    /// `m` maps frame → crop. The Python reference hands `IM = invert(m)` to warpAffine, which
    /// inverts it again: doing both inversions reproduces its matrix to the last bit.
    fn new(m: &Affine, rect: Rect, cols: &'c mut Vec<(i64, i64)>) -> Option<Self> {
        let s = cv_invert(&cv_invert(&m.m)?)?;
        cols.clear();
        cols.extend((0..rect.width.max(0) as i64).map(|rx| {
            let x = (rect.x as i64 + rx) as f64;
            (q(s[0] * x * 1024.0), q(s[3] * x * 1024.0))
        }));
        Some(Self { s, cols, y0: rect.y as i64 })
    }

    /// Taps of region row `ry`: the row term in 1/1024 px plus half a 1/32 step, plus the column
    /// term, then split into integer pixel and 1/32 fraction (OpenCV's `INTER_BITS`).
    fn row(&self, ry: usize) -> impl Iterator<Item = Tap> + '_ {
        let (s, y) = (&self.s, (self.y0 + ry as i64) as f64);
        let (x0, y0) = (q((s[1] * y + s[2]) * 1024.0) + 16, q((s[4] * y + s[5]) * 1024.0) + 16);
        self.cols.iter().map(move |&(ad, bd)| {
            let (xq, yq) = ((x0 + ad) >> 5, (y0 + bd) >> 5);
            Tap { ix: xq >> 5, iy: yq >> 5, fx: xq & 31, fy: yq & 31 }
        })
    }
}

/// OpenCV's `saturate_cast<int>(double)`: round half to even, saturate to `i32`.
#[inline]
fn q(v: f64) -> i64 {
    v.round_ties_even() as i32 as i64
}

/// Whether all four neighbours of a tap lie inside a `w × h` source (the common case).
#[inline]
fn inside(t: Tap, w: usize, h: usize) -> bool {
    t.ix >= 0 && t.iy >= 0 && (t.ix as usize) + 1 < w && (t.iy as usize) + 1 < h
}

/// The four neighbours of a tap with their integer weights (sum 1024); `None` for neighbours
/// outside the `w × h` source (border value 0).
#[inline]
fn neighbours(t: Tap, w: usize, h: usize) -> [(Option<usize>, i64); 4] {
    let idx = |x: i64, y: i64| {
        (x >= 0 && y >= 0 && (x as usize) < w && (y as usize) < h).then(|| y as usize * w + x as usize)
    };
    [
        (idx(t.ix, t.iy), (32 - t.fx) * (32 - t.fy)),
        (idx(t.ix + 1, t.iy), t.fx * (32 - t.fy)),
        (idx(t.ix, t.iy + 1), (32 - t.fx) * t.fy),
        (idx(t.ix + 1, t.iy + 1), t.fx * t.fy),
    ]
}

/// Bilinear sample of an 8-bit RGB image, OpenCV's rounding: 15-bit weights, `+2¹⁴ >> 15`.
#[inline]
fn sample_rgb(img: &RgbImage, t: Tap) -> [u8; 3] {
    let mut acc = [0i64; 3];
    if inside(t, img.width, img.height) {
        let i = (t.iy as usize * img.width + t.ix as usize) * 3;
        let j = i + img.width * 3;
        let (d, fx, fy) = (&img.data, t.fx, t.fy);
        let wts = [(32 - fx) * (32 - fy), fx * (32 - fy), (32 - fx) * fy, fx * fy];
        for (c, a) in acc.iter_mut().enumerate() {
            let v = [d[i + c], d[i + 3 + c], d[j + c], d[j + 3 + c]];
            *a = v.iter().zip(wts).map(|(&v, w)| v as i64 * w * 32).sum();
        }
        return acc.map(|a| ((a + (1 << 14)) >> 15) as u8);
    }
    for (i, wt) in neighbours(t, img.width, img.height) {
        if let Some(i) = i {
            for (a, &v) in acc.iter_mut().zip(&img.data[i * 3..i * 3 + 3]) {
                *a += v as i64 * wt * 32;
            }
        }
    }
    acc.map(|a| ((a + (1 << 14)) >> 15).clamp(0, 255) as u8)
}

/// Bilinear sample of an `f32` plane with OpenCV's float weights (exact multiples of 1/1024).
#[inline]
fn sample_f32(buf: &[f32], w: usize, h: usize, t: Tap) -> f32 {
    if inside(t, w, h) {
        let i = t.iy as usize * w + t.ix as usize;
        let (fx, fy) = (t.fx as f32 / 32.0, t.fy as f32 / 32.0);
        let (gx, gy) = (1.0 - fx, 1.0 - fy);
        return buf[i] * (gx * gy) + buf[i + 1] * (fx * gy) + buf[i + w] * (gx * fy) + buf[i + w + 1] * (fx * fy);
    }
    let mut acc = 0.0f32;
    for (i, wt) in neighbours(t, w, h) {
        if let Some(i) = i {
            acc += buf[i] * (wt as f32 / 1024.0);
        }
    }
    acc
}

/// The warp of a constant 255 crop (InsightFace's white mask): exact, since only the in-bounds
/// neighbours' weights matter.
#[inline]
fn sample_white(w: usize, h: usize, t: Tap) -> f32 {
    if inside(t, w, h) {
        return 255.0;
    }
    let cover: i64 = neighbours(t, w, h).iter().filter(|n| n.0.is_some()).map(|n| n.1).sum();
    (255 * cover) as f32 / 1024.0
}

/// Bounding box (exclusive end) of the frame pixels whose warped sample can touch the crop at all.
/// The crop rectangle is grown by a pixel on each side to cover the bilinear reach and the 1/32-px
/// rounding of source positions, then mapped by `m⁻¹`. Not clipped.
fn warped_support(m: &Affine, crop_w: usize, crop_h: usize) -> Option<(i64, i64, i64, i64)> {
    let inv = cv_invert(&m.m)?;
    let (cw, ch) = (crop_w as f64, crop_h as f64);
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (u, v) in [(-2.0, -2.0), (cw + 1.0, -2.0), (-2.0, ch + 1.0), (cw + 1.0, ch + 1.0)] {
        let (x, y) = (inv[0] * u + inv[1] * v + inv[2], inv[3] * u + inv[4] * v + inv[5]);
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    // Keeps the integer arithmetic below far from overflow; such faces are clipped away anyway.
    const LIM: f64 = (1u64 << 40) as f64;
    let c = |v: f64| v.clamp(-LIM, LIM) as i64;
    Some((c(x0.floor()), c(y0.floor()), c(x1.ceil()) + 1, c(y1.ceil()) + 1))
}

fn clip(x0: i64, y0: i64, x1: i64, y1: i64, frame_w: usize, frame_h: usize) -> Rect {
    let (fw, fh) = (frame_w.min(i32::MAX as usize) as i64, frame_h.min(i32::MAX as usize) as i64);
    let (a, b) = (x0.clamp(0, fw), y0.clamp(0, fh));
    let (c, d) = (x1.clamp(0, fw), y1.clamp(0, fh));
    Rect::new(a as i32, b as i32, (c - a).max(0) as i32, (d - b).max(0) as i32)
}

/// The shape shared by the region functions ([`insightface_region`], [`crop_region`]).
pub type RegionFn = fn(&Affine, usize, usize, usize, usize) -> Rect;
/// The shape shared by the paste-back functions, so that callers can choose one per mask mode.
pub type PasteBackFn =
    for<'a> fn(&mut RgbImage, Rect, usize, usize, &RgbImage, &Affine, f32, &'a mut PasteScratch) -> &'a [f32];

/// The frame rectangle that the crop, warped back by `m⁻¹`, can touch (for the ellipse and ramp
/// modes, whose masks are zero outside the crop). Empty when `m` is degenerate or the crop lies
/// outside the frame.
pub fn crop_region(m: &Affine, crop_w: usize, crop_h: usize, frame_w: usize, frame_h: usize) -> Rect {
    match warped_support(m, crop_w, crop_h) {
        Some((x0, y0, x1, y1)) if crop_w > 0 && crop_h > 0 => clip(x0, y0, x1, y1, frame_w, frame_h),
        _ => Rect::default(),
    }
}

/// Blur half-size `k` of InsightFace's mask for a given `mask_size` (kernel `2k + 1`).
fn insightface_blur_k(mask_size: usize) -> usize {
    (mask_size / 20).max(5)
}

/// The frame rectangle that [`paste_back_insightface`] can change, to be read before the call.
///
/// It is the warped crop's bounding box grown by a margin of `blur_k + 2`. The blur size depends on
/// the mask, which is not known yet, so it is bounded from above: the 255-pixels lie inside the
/// warped box, so `mask_size <= sqrt(box_w · box_h)`. With that margin the region's edges that are
/// inside the frame see only zeros within the blur's reach (the eroded mask is zero outside the
/// warped box), so reflect-101 padding there gives exactly what blurring the whole frame gives; at
/// real frame edges the region edge is the frame edge and OpenCV's own borders apply.
pub fn insightface_region(m: &Affine, crop_w: usize, crop_h: usize, frame_w: usize, frame_h: usize) -> Rect {
    let Some((x0, y0, x1, y1)) = warped_support(m, crop_w, crop_h) else {
        return Rect::default();
    };
    if crop_w == 0 || crop_h == 0 {
        return Rect::default();
    }
    let bound = (((x1 - x0) as f64) * ((y1 - y0) as f64)).sqrt() as usize;
    let margin = insightface_blur_k(bound) as i64 + 2;
    clip(x0 - margin, y0 - margin, x1 + margin, y1 + margin, frame_w, frame_h)
}

/// Which crop-space mask [`PasteScratch`] has cached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CropMask {
    Ellipse(usize, usize),
    Ramp(usize, usize),
}

/// Reusable buffers of the paste-back: per-frame calls allocate nothing once they have seen the
/// largest region. Also caches the crop-space ellipse/ramp mask, which depends only on the crop size.
#[derive(Debug, Default)]
pub struct PasteScratch {
    weights: Vec<f32>,
    cols: Vec<(i64, i64)>,
    erode: Vec<f32>,
    blur: BlurScratch,
    crop_mask: Vec<f32>,
    crop_key: Option<CropMask>,
}

/// Zero weights for a region where nothing is pasted.
fn nothing(weights: &mut Vec<f32>, n: usize) -> &[f32] {
    weights.clear();
    weights.resize(n, 0.0);
    weights
}

/// Checks the common arguments; returns the sampler when there is something to do.
#[allow(clippy::too_many_arguments)]
fn prepare<'c>(
    region: &RgbImage,
    rect: Rect,
    frame_w: usize,
    frame_h: usize,
    fake: &RgbImage,
    m: &Affine,
    factor: f32,
    cols: &'c mut Vec<(i64, i64)>,
) -> Option<Sampler<'c>> {
    let ok = !rect.is_empty()
        && rect.clip_to(frame_w, frame_h) == rect
        && region.width == rect.width as usize
        && region.height == rect.height as usize
        && region.data.len() == region.width * region.height * 3
        && fake.width > 0
        && fake.height > 0
        && fake.data.len() == fake.width * fake.height * 3
        && factor > 0.0;
    if ok { Sampler::new(m, rect, cols) } else { None }
}

/// Blends the warped `fake` into `region` where `weights > 0`, like the reference:
/// `(w·fake + (1 − w)·frame)` in `f32`, truncated to `u8` (NumPy's `astype(np.uint8)`).
///
/// Weights within 1e-6 of 1 are snapped to 1 first: a blur of a constant 255 area is 255 only up
/// to a few ulps of rounding, and with truncation a weight of `1 ± ε` would turn the face interior
/// into `fake − 1` on one side or the other at random; the reference has the same noise (its sum
/// order differs from ours anyway), so snapping costs nothing and keeps the interior exact. The
/// stored weights are the ones used, so they end up in `[0, 1]`.
fn blend(region: &mut RgbImage, fake: &RgbImage, s: &Sampler, weights: &mut [f32]) {
    let w = region.width;
    let rows = region.data.chunks_exact_mut(w * 3).zip(weights.chunks_exact_mut(w));
    for (ry, (row, wrow)) in rows.enumerate() {
        for ((px, wt), t) in row.chunks_exact_mut(3).zip(wrow.iter_mut()).zip(s.row(ry)) {
            if *wt > 0.0 {
                let f = sample_rgb(fake, t);
                let a = if *wt >= 1.0 - 1e-6 { 1.0 } else { *wt };
                for (o, fv) in px.iter_mut().zip(f) {
                    *o = (a * fv as f32 + (1.0 - a) * *o as f32) as u8;
                }
                *wt = a;
            } else {
                *wt = 0.0;
            }
        }
    }
}

/// InsightFace's `INSwapper.get(..., paste_back=True)` over one region of the frame.
///
/// `region` holds the frame pixels of `region_rect` (which should contain
/// [`insightface_region`]); `fake` is the swapped crop; `m` maps frame → crop; `opacity` scales
/// the weights (1 = the reference). Steps: warp a white crop mask back (float, bilinear, border 0),
/// set values `> 20` to 255, take `mask_size = int(sqrt(h·w))` of the 255-pixels' bounding box
/// (frame coordinates), erode with a `max(mask_size/10, 10)` box, blur with kernel
/// `2·max(mask_size/20, 5) + 1` and sigma 0, then blend `w = mask/255 · opacity` with the warped
/// fake. Returns the weights (row-major over the region; all zero when nothing was pasted: bad
/// arguments, degenerate `m`, or no mask pixel reaches 255 inside the frame).
#[allow(clippy::too_many_arguments)]
pub fn paste_back_insightface<'a>(
    region: &mut RgbImage,
    region_rect: Rect,
    frame_w: usize,
    frame_h: usize,
    fake: &RgbImage,
    m: &Affine,
    opacity: f32,
    scratch: &'a mut PasteScratch,
) -> &'a [f32] {
    let (w, h) = (region.width, region.height);
    let PasteScratch { weights, cols, erode, blur, .. } = scratch;
    let Some(s) = prepare(region, region_rect, frame_w, frame_h, fake, m, opacity, cols) else {
        return nothing(weights, w * h);
    };
    weights.clear();
    weights.resize(w * h, 0.0);
    // Warp the white mask and threshold it, tracking the 255-pixels' bounding box.
    let (mut x0, mut y0, mut x1, mut y1) = (usize::MAX, usize::MAX, 0, 0);
    for (ry, mrow) in weights.chunks_exact_mut(w).enumerate() {
        for (rx, (v, t)) in mrow.iter_mut().zip(s.row(ry)).enumerate() {
            let mut val = sample_white(fake.width, fake.height, t);
            if val > 20.0 {
                val = 255.0;
                (x0, y0, x1, y1) = (x0.min(rx), y0.min(ry), x1.max(rx), y1.max(ry));
            }
            *v = val;
        }
    }
    if x0 == usize::MAX {
        return nothing(weights, w * h);
    }
    let mask_size = (((y1 - y0) as f64) * ((x1 - x0) as f64)).sqrt() as usize;
    erode_box(weights, w, h, (mask_size / 10).max(10), erode);
    let ksize = 2 * insightface_blur_k(mask_size) + 1;
    gaussian_blur(weights, w, h, ksize, 0.0, blur);
    let opacity = opacity.min(1.0);
    for v in weights.iter_mut() {
        *v = *v / 255.0 * opacity;
    }
    blend(region, fake, &s, weights);
    weights
}

/// Warps the crop mask (`full` = its value for weight 1) into `weights` and blends.
fn paste_with_crop_mask<'a>(
    region: &mut RgbImage,
    fake: &RgbImage,
    s: &Sampler,
    (crop_mask, full, factor): (&[f32], f32, f32),
    weights: &'a mut Vec<f32>,
) -> &'a [f32] {
    let w = region.width;
    weights.clear();
    weights.resize(w * region.height, 0.0);
    let factor = factor.min(1.0);
    for (ry, wrow) in weights.chunks_exact_mut(w).enumerate() {
        for (v, t) in wrow.iter_mut().zip(s.row(ry)) {
            *v = sample_f32(crop_mask, fake.width, fake.height, t) / full * factor;
        }
    }
    blend(region, fake, s, weights);
    weights
}

/// Deep-Live-Cam's ellipse paste-back: a filled ellipse (centre (64, 64), axes (56, 56) for a
/// 128-px crop, both scaled with the crop size per axis, value 255) blurred in crop space with a
/// 31×31 Gaussian of sigma 12 (scaled by `min(w, h)/128`, reflect-101 borders), warped back by
/// `m⁻¹` (bilinear, border 0) and blended with `w = mask/255 · opacity`. The blurred crop mask is
/// cached per crop size. `region_rect` should contain [`crop_region`].
///
/// The ellipse is rasterised as the pixels whose centres satisfy `(dx/ax)² + (dy/ay)² ≤ 1`; OpenCV
/// fills a 5°-step polygon instead, which differs by a few boundary pixels, far below one level
/// after the sigma-12 blur.
#[allow(clippy::too_many_arguments)]
pub fn paste_back_ellipse<'a>(
    region: &mut RgbImage,
    region_rect: Rect,
    frame_w: usize,
    frame_h: usize,
    fake: &RgbImage,
    m: &Affine,
    opacity: f32,
    scratch: &'a mut PasteScratch,
) -> &'a [f32] {
    let n = region.width * region.height;
    let PasteScratch { weights, cols, blur, crop_mask, crop_key, .. } = scratch;
    let Some(s) = prepare(region, region_rect, frame_w, frame_h, fake, m, opacity, cols) else {
        return nothing(weights, n);
    };
    let (cw, ch) = (fake.width, fake.height);
    if *crop_key != Some(CropMask::Ellipse(cw, ch)) {
        ellipse_mask(cw, ch, crop_mask, blur);
        *crop_key = Some(CropMask::Ellipse(cw, ch));
    }
    paste_with_crop_mask(region, fake, &s, (crop_mask, 255.0, opacity), weights)
}

/// The blurred ellipse mask (values 0..255) of a `cw × ch` crop.
fn ellipse_mask(cw: usize, ch: usize, out: &mut Vec<f32>, blur: &mut BlurScratch) {
    let (sx, sy) = (cw as f32 / 128.0, ch as f32 / 128.0);
    let (cx, cy, ax, ay) = (64.0 * sx, 64.0 * sy, 56.0 * sx, 56.0 * sy);
    out.clear();
    out.extend((0..cw * ch).map(|i| {
        let (dx, dy) = (((i % cw) as f32 - cx) / ax, ((i / cw) as f32 - cy) / ay);
        if dx * dx + dy * dy <= 1.0 { 255.0 } else { 0.0 }
    }));
    let scale = sx.min(sy) as f64;
    let ksize = ((31.0 * scale).round() as usize).max(1) | 1;
    gaussian_blur(out, cw, ch, ksize, 12.0 * scale, blur);
}

/// Width of the enhancer mask's edge ramps for a crop side of `s` px: `max(1, int(s·0.05))`.
pub fn ramp_width(s: usize) -> usize {
    ((s as f64 * 0.05) as usize).max(1)
}

/// The face-enhancer paste-back (Deep-Live-Cam): a crop-sized mask of ones with linear ramps of
/// [`ramp_width`] px along each edge, warped back by `m⁻¹` (bilinear, border 0) and blended with
/// `w = mask · blend`.
///
/// The ramp: a pixel `d` px from its nearest vertical edge (d = 0 on the edge) gets
/// `min(1, (d + 1)/ramp)`, likewise for the horizontal edges, and the mask is the minimum of the
/// two (as the reference's `np.minimum`). The edge pixel is `1/ramp`, not 0, so the ramp spans
/// exactly `ramp` crop pixels and every crop pixel contributes; the zero border of the bilinear
/// warp supplies the last step down to 0 just outside the crop. With `ramp = 1` the mask is all ones.
#[allow(clippy::too_many_arguments)]
pub fn paste_back_ramp<'a>(
    region: &mut RgbImage,
    region_rect: Rect,
    frame_w: usize,
    frame_h: usize,
    fake: &RgbImage,
    m: &Affine,
    blend: f32,
    scratch: &'a mut PasteScratch,
) -> &'a [f32] {
    let n = region.width * region.height;
    let PasteScratch { weights, cols, crop_mask, crop_key, .. } = scratch;
    let Some(s) = prepare(region, region_rect, frame_w, frame_h, fake, m, blend, cols) else {
        return nothing(weights, n);
    };
    let (cw, ch) = (fake.width, fake.height);
    if *crop_key != Some(CropMask::Ramp(cw, ch)) {
        ramp_mask(cw, ch, crop_mask);
        *crop_key = Some(CropMask::Ramp(cw, ch));
    }
    paste_with_crop_mask(region, fake, &s, (crop_mask, 1.0, blend), weights)
}

fn ramp_mask(cw: usize, ch: usize, out: &mut Vec<f32>) {
    let ramp = |d: usize, r: usize| ((d + 1) as f32 / r as f32).min(1.0);
    let (rw, rh) = (ramp_width(cw), ramp_width(ch));
    out.clear();
    out.extend((0..cw * ch).map(|i| {
        let (x, y) = (i % cw, i / cw);
        ramp(x.min(cw - 1 - x), rw).min(ramp(y.min(ch - 1 - y), rh))
    }));
}

/// Reusable buffers of [`mouth_mask`].
#[derive(Debug, Default)]
pub struct MouthScratch {
    weights: Vec<f32>,
    crossings: Vec<f32>,
    blur: BlurScratch,
}

/// Weights in `[0, 1]` over `region_rect` for restoring the original mouth after a swap
/// (`out = w·original + (1 − w)·swapped`).
///
/// `points` are the outer-lip landmarks in frame coordinates (the 12 points 52..63 of the 106-point
/// model, in contour order); `size` (0..100) grows the outline about its centroid by
/// `1 + size/100` (0 = the lips themselves, 100 = twice as large). The polygon is filled with the
/// even-odd rule at pixel centres, then feathered by a Gaussian of sigma `max(1, min(w, h)/8)`,
/// with `w × h` the grown outline's extent: the edge softens with the mouth's size while the inside
/// stays at ≈ 1 (the outline itself ends up at weight ≈ 0.5). The blur uses reflect-101 at the
/// region's edges, so the region should leave a few sigmas around the mouth. All zero for fewer
/// than 3 points or non-finite input.
pub fn mouth_mask<'a>(points: &[(f32, f32)], size: f32, region_rect: Rect, scratch: &'a mut MouthScratch) -> &'a [f32] {
    let (w, h) = (region_rect.width.max(0) as usize, region_rect.height.max(0) as usize);
    let MouthScratch { weights, crossings, blur } = scratch;
    weights.clear();
    weights.resize(w * h, 0.0);
    if points.len() < 3 || w == 0 || h == 0 || !size.is_finite() {
        return weights;
    }
    if points.iter().any(|p| !p.0.is_finite() || !p.1.is_finite()) {
        return weights;
    }
    let n = points.len() as f32;
    let (cx, cy) = points.iter().fold((0.0, 0.0), |a, p| (a.0 + p.0 / n, a.1 + p.1 / n));
    let grow = 1.0 + size.clamp(0.0, 100.0) / 100.0;
    // Polygon vertex i in region coordinates, grown about the centroid.
    let vertex = |i: usize| {
        let p = points[i % points.len()];
        (cx + (p.0 - cx) * grow - region_rect.x as f32, cy + (p.1 - cy) * grow - region_rect.y as f32)
    };
    for ry in 0..h {
        let yc = ry as f32;
        crossings.clear();
        for i in 0..points.len() {
            let ((xa, ya), (xb, yb)) = (vertex(i), vertex(i + 1));
            // Half-open rule: an edge counts when the scanline lies in [min y, max y).
            if (ya <= yc) != (yb <= yc) {
                crossings.push(xa + (yc - ya) * (xb - xa) / (yb - ya));
            }
        }
        crossings.sort_by(f32::total_cmp);
        for pair in crossings.chunks_exact(2) {
            let (a, b) = (pair[0].max(0.0), pair[1].min(w as f32));
            let (xa, xb) = (a.ceil() as usize, b.ceil() as usize);
            if xa < xb {
                weights[ry * w + xa..ry * w + xb].fill(1.0);
            }
        }
    }
    let (mut lo, mut hi) = ((f32::MAX, f32::MAX), (f32::MIN, f32::MIN));
    for i in 0..points.len() {
        let (x, y) = vertex(i);
        (lo, hi) = ((lo.0.min(x), lo.1.min(y)), (hi.0.max(x), hi.1.max(y)));
    }
    let sigma = ((hi.0 - lo.0).min(hi.1 - lo.1) as f64 / 8.0).max(1.0);
    let ksize = ((sigma * 6.0 + 1.0).round() as usize) | 1;
    gaussian_blur(weights, w, h, ksize, sigma, blur);
    for v in weights.iter_mut() {
        *v = v.clamp(0.0, 1.0);
    }
    weights
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pattern(w: usize, h: usize, seed: usize) -> RgbImage {
        let data = (0..w * h * 3).map(|i| (((i * 7 + seed) * 2_654_435_761) >> 7) as u8).collect();
        RgbImage::from_raw(w, h, data).unwrap()
    }

    /// Frame → crop similarity: crop = s·R(θ)·(p − c) + crop centre.
    fn similarity(scale: f64, theta: f64, cx: f64, cy: f64, crop: f64) -> Affine {
        let (a, b) = (scale * theta.cos(), scale * theta.sin());
        let h = crop / 2.0;
        Affine { m: [a, -b, h - a * cx + b * cy, b, a, h - b * cx - a * cy] }
    }

    fn read(frame: &RgbImage, r: Rect) -> RgbImage {
        let mut out = RgbImage::new(r.width as usize, r.height as usize);
        for y in 0..out.height {
            for x in 0..out.width {
                out.set_pixel(x, y, frame.pixel(x + r.x as usize, y + r.y as usize));
            }
        }
        out
    }

    fn write(frame: &mut RgbImage, r: Rect, region: &RgbImage, w: &[f32]) {
        for y in 0..region.height {
            for x in 0..region.width {
                if w[y * region.width + x] > 0.0 {
                    frame.set_pixel(x + r.x as usize, y + r.y as usize, region.pixel(x, y));
                }
            }
        }
    }

    /// The Python reference over the whole frame, written out step by step: warpAffine of the fake
    /// and of a white mask with OpenCV's fixed-point positions, threshold, bounding box, naive
    /// erosion, blur of the full frame, blend and truncation.
    fn brute_force(frame: &RgbImage, fake: &RgbImage, m: &Affine) -> RgbImage {
        let inv = |m: [f64; 6]| {
            let d = 1.0 / (m[0] * m[4] - m[1] * m[3]);
            let (a, b, c, e) = (m[4] * d, -m[1] * d, -m[3] * d, m[0] * d);
            [a, b, -a * m[2] - b * m[5], c, e, -c * m[2] - e * m[5]]
        };
        let s = inv(inv(m.m));
        let (fw, fh, cw, ch) = (frame.width, frame.height, fake.width, fake.height);
        let q = |v: f64| (v * 1024.0).round_ties_even() as i64;
        let mut warped = vec![[0u8; 3]; fw * fh];
        let mut mask = vec![0.0f32; fw * fh];
        for y in 0..fh {
            for x in 0..fw {
                let xx = (q(s[1] * y as f64 + s[2]) + 16 + q(s[0] * x as f64)) >> 5;
                let yy = (q(s[4] * y as f64 + s[5]) + 16 + q(s[3] * x as f64)) >> 5;
                let (ix, iy, fx, fy) = (xx >> 5, yy >> 5, xx & 31, yy & 31);
                let mut acc = [0i64; 3];
                let mut cover = 0i64;
                for (dx, dy, wt) in
                    [(0, 0, (32 - fx) * (32 - fy)), (1, 0, fx * (32 - fy)), (0, 1, (32 - fx) * fy), (1, 1, fx * fy)]
                {
                    let (sx, sy) = (ix + dx, iy + dy);
                    if sx >= 0 && sy >= 0 && (sx as usize) < cw && (sy as usize) < ch {
                        let p = fake.pixel(sx as usize, sy as usize);
                        for c in 0..3 {
                            acc[c] += p[c] as i64 * wt * 32;
                        }
                        cover += wt;
                    }
                }
                warped[y * fw + x] = acc.map(|a| ((a + 16384) >> 15) as u8);
                let v = (255 * cover) as f32 / 1024.0;
                mask[y * fw + x] = if v > 20.0 { 255.0 } else { v };
            }
        }
        let hits: Vec<usize> = (0..fw * fh).filter(|&i| mask[i] == 255.0).collect();
        let (ys, xs): (Vec<usize>, Vec<usize>) = hits.iter().map(|i| (i / fw, i % fw)).unzip();
        let mh = ys.iter().max().unwrap() - ys.iter().min().unwrap();
        let mw = xs.iter().max().unwrap() - xs.iter().min().unwrap();
        let mask_size = ((mh * mw) as f64).sqrt() as usize;
        let k = (mask_size / 10).max(10) as isize;
        let (a, b) = (k / 2, k - 1 - k / 2);
        let mut eroded = vec![0.0f32; fw * fh];
        for y in 0..fh as isize {
            for x in 0..fw as isize {
                let mut mn = f32::INFINITY;
                for yy in (y - a).max(0)..=(y + b).min(fh as isize - 1) {
                    for xx in (x - a).max(0)..=(x + b).min(fw as isize - 1) {
                        mn = mn.min(mask[yy as usize * fw + xx as usize]);
                    }
                }
                eroded[y as usize * fw + x as usize] = mn;
            }
        }
        let kb = (mask_size / 20).max(5);
        gaussian_blur(&mut eroded, fw, fh, 2 * kb + 1, 0.0, &mut BlurScratch::default());
        let mut out = frame.clone();
        for (i, px) in out.data.chunks_exact_mut(3).enumerate() {
            // Weights within 1e-6 of 1 count as 1 (see `blend`).
            let wt = eroded[i] / 255.0;
            let wt = if wt >= 1.0 - 1e-6 { 1.0 } else { wt };
            for c in 0..3 {
                px[c] = (wt * warped[i][c] as f32 + (1.0 - wt) * px[c] as f32) as u8;
            }
        }
        out
    }

    fn region_paste(frame: &RgbImage, fake: &RgbImage, m: &Affine, opacity: f32) -> RgbImage {
        let r = insightface_region(m, fake.width, fake.height, frame.width, frame.height);
        let mut region = read(frame, r);
        let mut scratch = PasteScratch::default();
        let w = paste_back_insightface(&mut region, r, frame.width, frame.height, fake, m, opacity, &mut scratch);
        assert_eq!(w.len(), region.width * region.height);
        assert!(w.iter().all(|v| (0.0..=1.0).contains(v)));
        // Pixels with weight 0 are untouched inside the region too.
        for (i, &v) in w.iter().enumerate() {
            if v == 0.0 {
                let (x, y) = (i % region.width, i / region.width);
                assert_eq!(region.pixel(x, y), frame.pixel(x + r.x as usize, y + r.y as usize));
            }
        }
        let mut out = frame.clone();
        write(&mut out, r, &region, w);
        out
    }

    #[test]
    fn insightface_region_equals_whole_frame() {
        let fake = pattern(128, 128, 3);
        let frame = pattern(260, 220, 11);
        let cases = [
            similarity(128.0 / 110.0, 0.3, 130.0, 110.0, 128.0), // middle, small face
            similarity(128.0 / 190.0, -0.2, 128.0, 105.0, 128.0), // middle, large (blur k > 5)
            similarity(128.0 / 120.0, 0.5, 15.0, 100.0, 128.0),  // across the left edge
            similarity(128.0 / 150.0, 0.1, 240.0, 205.0, 128.0), // across a corner
            similarity(128.0 / 200.0, 0.0, 130.0, 3.0, 128.0),   // half above the frame
        ];
        for (n, m) in cases.iter().enumerate() {
            let want = brute_force(&frame, &fake, m);
            let got = region_paste(&frame, &fake, m, 1.0);
            let diff = got.data.iter().zip(&want.data).filter(|(a, b)| a != b).count();
            assert_eq!(diff, 0, "case {n}: {diff} bytes differ");
            assert_ne!(got, frame, "case {n} pasted nothing");
        }
    }

    #[test]
    fn insightface_opacity_zero_and_outside_do_nothing() {
        let fake = pattern(128, 128, 5);
        let frame = pattern(200, 160, 1);
        let m = similarity(1.0, 0.0, 100.0, 80.0, 128.0);
        assert_eq!(region_paste(&frame, &fake, &m, 0.0), frame);
        // Entirely outside the frame: empty region, nothing happens.
        let far = similarity(1.0, 0.0, 900.0, 80.0, 128.0);
        assert!(insightface_region(&far, 128, 128, 200, 160).is_empty());
        // Degenerate transform.
        let zero = Affine { m: [0.0; 6] };
        assert!(insightface_region(&zero, 128, 128, 200, 160).is_empty());
        let r = Rect::new(0, 0, 200, 160);
        let mut region = frame.clone();
        let mut scratch = PasteScratch::default();
        let w = paste_back_insightface(&mut region, r, 200, 160, &fake, &zero, 1.0, &mut scratch);
        assert!(w.iter().all(|&v| v == 0.0));
        assert_eq!(region, frame);
        // Empty region and mismatched sizes are refused without panicking.
        let mut empty = RgbImage::new(0, 0);
        let w = paste_back_insightface(&mut empty, Rect::default(), 200, 160, &fake, &m, 1.0, &mut scratch);
        assert!(w.is_empty());
    }

    #[test]
    fn insightface_translation_centre_is_fake() {
        let mut fake = RgbImage::new(128, 128);
        fake.data.chunks_exact_mut(3).for_each(|p| p.copy_from_slice(&[10, 200, 90]));
        let frame = pattern(300, 240, 2);
        // Frame → crop is a pure translation: crop (0, 0) sits at frame (70, 50).
        let m = Affine { m: [1.0, 0.0, -70.0, 0.0, 1.0, -50.0] };
        let out = region_paste(&frame, &fake, &m, 1.0);
        for (x, y) in [(134, 114), (110, 90), (160, 140)] {
            assert_eq!(out.pixel(x, y), [10, 200, 90], "({x},{y})");
        }
        // Far from the crop the frame is untouched.
        assert_eq!(out.pixel(5, 5), frame.pixel(5, 5));
        assert_eq!(out.pixel(250, 200), frame.pixel(250, 200));
    }

    #[test]
    fn crop_masks_are_symmetric() {
        let (mut e, mut blur) = (Vec::new(), BlurScratch::default());
        ellipse_mask(128, 128, &mut e, &mut blur);
        assert!((e[64 * 128 + 64] - 255.0).abs() < 1e-3);
        // Point symmetry about (64, 64), away from the borders: reflect-101 mirrors about pixels 0
        // and 127, not 64 ± 64, so within the blur radius (15) of an edge the two sides differ.
        for y in 16..=112 {
            for x in 16..=112 {
                let (a, b) = (e[y * 128 + x], e[(128 - y) * 128 + (128 - x)]);
                assert!((a - b).abs() < 1e-3, "({x},{y}) {a} {b}");
                assert!((a - e[x * 128 + y]).abs() < 1e-3);
            }
        }
        let mut r = Vec::new();
        ramp_mask(512, 512, &mut r);
        assert_eq!(ramp_width(512), 25);
        assert_eq!(r[256 * 512 + 256], 1.0);
        assert_eq!(r[256 * 512], 1.0 / 25.0);
        assert_eq!(r[256 * 512 + 24], 1.0);
        for y in 0..512 {
            for x in 0..512 {
                let v = r[y * 512 + x];
                assert_eq!(v, r[y * 512 + 511 - x]);
                assert_eq!(v, r[(511 - y) * 512 + x]);
                assert_eq!(v, r[x * 512 + y]);
            }
        }
    }

    #[test]
    fn ellipse_and_ramp_weights() {
        let frame = pattern(700, 600, 4);
        for crop in [128usize, 512] {
            let fake = pattern(crop, crop, 9);
            // Crop (0, 0) at frame (60, 40).
            let m = Affine { m: [1.0, 0.0, -60.0, 0.0, 1.0, -40.0] };
            let r = crop_region(&m, crop, crop, 700, 600);
            assert!(r.x <= 59 && r.y <= 39 && r.x + r.width >= 60 + crop as i32);
            for ellipse in [true, false] {
                let mut region = read(&frame, r);
                let mut s = PasteScratch::default();
                let w = if ellipse {
                    paste_back_ellipse(&mut region, r, 700, 600, &fake, &m, 1.0, &mut s)
                } else {
                    paste_back_ramp(&mut region, r, 700, 600, &fake, &m, 1.0, &mut s)
                };
                let at = |x: i32, y: i32| w[((y - r.y) * r.width + (x - r.x)) as usize];
                let c = 60 + crop as i32 / 2;
                assert!(at(c, c - 20) > 0.9999, "centre {}", at(c, c - 20));
                if !ellipse {
                    assert_eq!(at(c, c - 20), 1.0);
                }
                for (x, y) in [(r.x, c - 20), (c, r.y), (59, c - 20), (60 + crop as i32, c - 20)] {
                    assert_eq!(at(x, y), 0.0, "({x},{y}) ellipse={ellipse}");
                }
                // Symmetric about the crop centre (ellipse: centre 64·s; ramp: (S − 1)/2).
                let (lo, hi) = if ellipse { (c - 30, c + 30) } else { (61, 60 + crop as i32 - 2) };
                let d = (at(lo, c - 20) - at(hi, c - 20)).abs();
                assert!(d < 1e-3, "ellipse={ellipse} {d}");
                // Full weight → the region shows the fake there.
                let (px, py) = ((c - r.x) as usize, (c - 20 - r.y) as usize);
                let f = fake.pixel((c - 60) as usize, (c - 20 - 40) as usize);
                let g = region.pixel(px, py);
                assert!(f.iter().zip(g).all(|(a, b)| a.abs_diff(b) <= 1), "{f:?} {g:?}");
            }
        }
    }

    #[test]
    fn mouth_mask_fills_and_feathers() {
        let mut s = MouthScratch::default();
        let pts: Vec<(f32, f32)> = (0..12)
            .map(|i| {
                let a = i as f32 * std::f32::consts::TAU / 12.0;
                (100.0 + 20.0 * a.cos(), 80.0 + 8.0 * a.sin())
            })
            .collect();
        let r = Rect::new(50, 40, 100, 80);
        let w = mouth_mask(&pts, 50.0, r, &mut s).to_vec();
        let at = |x: i32, y: i32| w[((y - r.y) * r.width + (x - r.x)) as usize];
        assert!(at(100, 80) > 0.99);
        assert_eq!(at(51, 41), 0.0);
        assert!(at(128, 80) > 0.1 && at(128, 80) < 0.9, "{}", at(128, 80));
        assert!(w.iter().all(|v| (0.0..=1.0).contains(v)));
        assert!((at(80, 80) - at(120, 80)).abs() < 1e-3);
        assert!(mouth_mask(&pts[..2], 50.0, r, &mut s).iter().all(|&v| v == 0.0));
        assert!(mouth_mask(&pts, 50.0, Rect::default(), &mut s).is_empty());
    }
}
