// SPDX-License-Identifier: MPL-2.0
//! Paste-back of a model crop into the frame: the crop is warped back by `m⁻¹` together with a
//! weight mask defined in the crop's own coordinates, and blended only inside the crop's footprint.
//!
//! InsightFace builds its paste-back mask in frame space: it warps a white crop into the frame,
//! thresholds it, erodes it with a box and blurs it with a Gaussian whose sizes follow the face's
//! size in the frame, all over the whole frame (16–18 ms per large face at 1080p). The same mask
//! can be described in crop space: the warped square, eroded by an axis-aligned box in the frame,
//! is the crop square inset by the box's extent along the crop's axes, and an isotropic Gaussian
//! stays isotropic under a similarity transform. [`CropMask::insightface`] builds that crop-space
//! mask as the product of two blurred 1-D boxes (the blur of a rectangle is separable), so the
//! paste-back costs one pass over the face's footprint whatever the face's size. The unit tests
//! measure it against the frame-space reference.
//!
//! Every mask is a grid of weights over the crop (plus a margin where a mask reaches past the
//! crop's edge), sampled bilinearly at each frame pixel's crop position: the CPU does it in
//! [`paste_crop`], a GPU backend with the same grid and transform.

use std::sync::atomic::{AtomicU64, Ordering};

use super::align::Affine;
use super::filter::{BlurScratch, gaussian_blur};
use super::image::{Rect, RgbImage};
use super::sample::{Tap, fixed};

/// Packed 8-bit pixels to paste into: a packed frame's plane, or a packed-RGB region buffer.
/// `origin` is the frame position of the first pixel of `data`, so that one paste call works on
/// either.
pub struct PackedPixels<'a> {
    pub data: &'a mut [u8],
    pub stride: usize,
    /// Bytes per pixel and the byte offsets of R, G and B within a pixel.
    pub bpp: usize,
    pub offsets: [usize; 3],
    pub origin: (i32, i32),
    pub width: usize,
    pub height: usize,
}

impl<'a> PackedPixels<'a> {
    /// A packed RGB buffer that holds the frame pixels of `rect` (see
    /// [`super::FrameView::read_region`]).
    pub fn region(img: &'a mut RgbImage, rect: Rect) -> Self {
        PackedPixels {
            stride: img.width * 3,
            bpp: 3,
            offsets: [0, 1, 2],
            origin: (rect.x, rect.y),
            width: img.width,
            height: img.height,
            data: &mut img.data,
        }
    }

    /// The frame rectangle these pixels cover.
    fn extent(&self) -> Rect {
        Rect::new(self.origin.0, self.origin.1, self.width as i32, self.height as i32)
    }
}

/// A weight mask over a square `crop × crop` model crop, stored as a grid of `side × side` weights
/// in `[0, 1]` that starts `pad` cells before the crop's first pixel (a mask that reaches past the
/// crop's edge needs the margin). Weights are sampled bilinearly with zero outside the grid.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct CropMask {
    crop: usize,
    pad: usize,
    side: usize,
    weights: Vec<f32>,
    /// Grid cells `[x0, x1] × [y0, y1]` whose weights are all 1 (the mask's interior), where the
    /// paste needs no mask sample and no blend.
    plateau: Option<[usize; 4]>,
    /// Identifies the weights, so that a backend can keep an uploaded copy.
    revision: u64,
}

impl CropMask {
    /// A mask from its grid; weights within 1e-6 of 1 become 1 (a blurred plateau is 1 only up
    /// to rounding, and with truncation `1 − ε` would turn the face's interior into `crop − 1` at
    /// random).
    fn new(crop: usize, pad: usize, mut weights: Vec<f32>) -> CropMask {
        let side = crop + 2 * pad;
        for w in weights.iter_mut().filter(|w| **w >= 1.0 - 1e-6) {
            *w = 1.0;
        }
        let plateau = plateau(&weights, side);
        static REVISIONS: AtomicU64 = AtomicU64::new(1);
        let revision = REVISIONS.fetch_add(1, Ordering::Relaxed);
        CropMask { crop, pad, side, weights, plateau, revision }
    }

    /// A number no other mask's weights have had in this process (0 for the empty mask).
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Side of the crop the mask belongs to.
    pub fn crop(&self) -> usize {
        self.crop
    }

    /// Grid cells before the crop's first pixel (and after its last).
    pub fn pad(&self) -> usize {
        self.pad
    }

    /// Side of the weight grid (`crop + 2·pad`).
    pub fn side(&self) -> usize {
        self.side
    }

    /// The weights, row-major.
    pub fn weights(&self) -> &[f32] {
        &self.weights
    }

    /// Deep-Live-Cam's blend mask: a filled ellipse (centre (64, 64), axes (56, 56) for a 128-px
    /// crop, scaled with the crop) blurred with a 31×31 Gaussian of sigma 12 (scaled likewise,
    /// reflect-101 borders).
    ///
    /// The ellipse is rasterised as the pixels whose centres satisfy `(dx/a)² + (dy/a)² ≤ 1`;
    /// OpenCV fills a 5°-step polygon instead, which differs by a few boundary pixels, far below
    /// one level after the sigma-12 blur.
    pub fn ellipse(crop: usize, blur: &mut BlurScratch) -> CropMask {
        let scale = crop as f32 / 128.0;
        let (centre, axis) = (64.0 * scale, 56.0 * scale);
        let mut weights: Vec<f32> = (0..crop * crop)
            .map(|i| {
                let (dx, dy) = (((i % crop) as f32 - centre) / axis, ((i / crop) as f32 - centre) / axis);
                if dx * dx + dy * dy <= 1.0 { 1.0 } else { 0.0 }
            })
            .collect();
        let ksize = ((31.0 * scale).round() as usize).max(1) | 1;
        gaussian_blur(&mut weights, crop, crop, ksize, 12.0 * scale as f64, blur);
        CropMask::new(crop, 0, weights)
    }

    /// The face enhancer's mask (Deep-Live-Cam): ones with linear ramps of [`ramp_width`] px along
    /// each edge.
    ///
    /// A pixel `d` px from its nearest vertical edge (d = 0 on the edge) gets
    /// `min(1, (d + 1)/ramp)`, likewise for the horizontal edges, and the mask is the minimum of
    /// the two (as the reference's `np.minimum`). The edge pixel is `1/ramp`, not 0, so the ramp
    /// spans exactly `ramp` crop pixels and every crop pixel contributes; the zero outside the
    /// grid supplies the last step down to 0 just outside the crop. With `ramp = 1` the mask is all
    /// ones.
    pub fn ramp(crop: usize) -> CropMask {
        let r = ramp_width(crop);
        let ramp = |d: usize| ((d + 1) as f32 / r as f32).min(1.0);
        let weights = (0..crop * crop)
            .map(|i| {
                let (x, y) = (i % crop, i / crop);
                ramp(x.min(crop - 1 - x)).min(ramp(y.min(crop - 1 - y)))
            })
            .collect();
        CropMask::new(crop, 0, weights)
    }

    /// InsightFace's paste-back mask for a face aligned by `m` (frame → crop) in a
    /// `frame_w × frame_h` frame, in crop space: see [`InsightfaceMask`]. `None` when `m` is
    /// degenerate.
    pub fn insightface(m: &Affine, crop: usize, frame_w: usize, frame_h: usize) -> Option<CropMask> {
        Some(InsightfaceMask::of(m, crop, frame_w, frame_h)?.grid())
    }

    /// The frame rectangle the mask can give weight to when the crop is aligned by `m`, clipped to
    /// the frame; empty when `m` is degenerate or the mask lies outside the frame.
    pub fn frame_region(&self, m: &Affine, frame_w: usize, frame_h: usize) -> Rect {
        footprint(m, -1.0 - self.pad as f64, (self.side - self.pad) as f64, frame_w, frame_h)
    }

    /// Bilinear weight at crop position `(u, v)`.
    #[cfg(test)]
    fn sample(&self, u: f32, v: f32) -> f32 {
        let pad = fixed(self.pad as f64);
        self.sample_at(Tap::at(fixed(u as f64) + pad, fixed(v as f64) + pad))
    }

    /// Whether all four cells `tap` reads are in the plateau (weight exactly 1).
    #[inline(always)]
    fn in_plateau(&self, tap: Tap) -> bool {
        self.plateau.is_some_and(|[x0, x1, y0, y1]| {
            tap.x >= x0 as isize && tap.x < x1 as isize && tap.y >= y0 as isize && tap.y < y1 as isize
        })
    }

    /// Bilinear weight at grid position `tap`, zero outside the grid.
    #[inline(always)]
    fn sample_at(&self, tap: Tap) -> f32 {
        let side = self.side as isize;
        let Tap { x, y, .. } = tap;
        let (fx, fy) = tap.fractions();
        if x >= 0 && y >= 0 && x + 1 < side && y + 1 < side {
            let i = y as usize * self.side + x as usize;
            let w = &self.weights;
            let top = w[i] + fx * (w[i + 1] - w[i]);
            let bottom = w[i + self.side] + fx * (w[i + self.side + 1] - w[i + self.side]);
            return top + fy * (bottom - top);
        }
        let at = |x: isize, y: isize| {
            if x >= 0 && y >= 0 && x < side && y < side {
                self.weights[y as usize * self.side + x as usize]
            } else {
                0.0
            }
        };
        let top = at(x, y) * (1.0 - fx) + at(x + 1, y) * fx;
        let bottom = at(x, y + 1) * (1.0 - fx) + at(x + 1, y + 1) * fx;
        top * (1.0 - fy) + bottom * fy
    }
}

/// The largest rectangle of ones around the centre of a `side × side` grid that the centre row
/// and column allow, shrunk until every cell in it is 1 (the masks here are convex enough that
/// this finds nearly all of their plateau).
fn plateau(weights: &[f32], side: usize) -> Option<[usize; 4]> {
    let c = side / 2;
    let one = |x: usize, y: usize| weights.get(y * side + x) == Some(&1.0);
    if side == 0 || !one(c, c) {
        return None;
    }
    let reach = |along: &dyn Fn(usize) -> bool| {
        let (mut lo, mut hi) = (c, c);
        while lo > 0 && along(lo - 1) {
            lo -= 1;
        }
        while hi + 1 < side && along(hi + 1) {
            hi += 1;
        }
        (lo, hi)
    };
    let ((mut x0, mut x1), (mut y0, mut y1)) = (reach(&|x| one(x, c)), reach(&|y| one(c, y)));
    while x0 < x1 && y0 < y1 {
        if (y0..=y1).all(|y| (x0..=x1).all(|x| one(x, y))) {
            return Some([x0, x1, y0, y1]);
        }
        (x0, x1, y0, y1) = (x0 + 1, x1 - 1, y0 + 1, y1 - 1);
    }
    None
}

/// Width of the enhancer mask's edge ramps for a crop side of `s` px: `max(1, int(s·0.05))`.
pub fn ramp_width(s: usize) -> usize {
    ((s as f64 * 0.05) as usize).max(1)
}

/// Sample positions of a white crop's bilinear warp that InsightFace's threshold (`> 20`, i.e.
/// coverage above 20/255) keeps: the crop's pixel centres run from 0 to `crop − 1`, and the
/// coverage falls linearly to 0 over the next pixel outside.
const THRESHOLD_REACH: f64 = 1.0 - 20.0 / 255.0;

/// Steps per crop pixel of [`InsightfaceMask::key`] for the mask's edges and reach, and for its
/// blur's sigma.
const EDGE_STEPS: f64 = 16.0;
const SIGMA_STEPS: f64 = 64.0;

/// InsightFace's paste-back mask (`INSwapper.get(..., paste_back=True)`) described in crop space.
///
/// The reference, in frame space: the warped white crop thresholded at 20 (a rotated square),
/// `mask_size = int(sqrt(h·w))` of its bounding box, eroded with a `k×k` box
/// (`k = max(mask_size/10, 10)`, OpenCV's anchor `k/2`), blurred with a Gaussian of kernel
/// `2·kb + 1` (`kb = max(mask_size/20, 5)`, sigma by OpenCV's rule), divided by 255.
///
/// Here: eroding a convex shape by a box moves each edge inwards by the box's extent along that
/// edge's normal (its support function), so the eroded square is the crop square with each edge
/// moved in by that extent (in frame pixels, times the crop's scale); the even-sized box's
/// off-centre anchor shifts it by half a pixel, which the per-edge extents include. The blur of an
/// axis-aligned rectangle by an isotropic Gaussian is the product of two 1-D blurred boxes, and the
/// Gaussian keeps its shape in crop space with sigma times the scale. The 1-D profiles are exact
/// integrals of the Gaussian over the box (normal CDFs), truncated at the reference kernel's
/// radius.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct InsightfaceMask {
    crop: usize,
    /// Eroded extent per crop axis (u, v), in crop pixel-centre coordinates.
    lo: [f64; 2],
    hi: [f64; 2],
    /// Sides beyond the frame's edge, kept hard (per crop axis).
    hard_lo: [bool; 2],
    hard_hi: [bool; 2],
    /// Blur sigma and kernel reach per crop axis, in crop pixels.
    sigma: [f64; 2],
    reach: [f64; 2],
    /// The reference's `mask_size` (frame pixels).
    pub mask_size: usize,
}

impl InsightfaceMask {
    /// The mask of a crop of side `crop` aligned by `m` (frame → crop) in a `frame_w × frame_h`
    /// frame; `None` when `m` is degenerate.
    ///
    /// The reference computes its mask over the frame, so a face that crosses the frame's edge
    /// gets a smaller `mask_size` (the bounding box is that of the pixels inside the frame), and
    /// its crop edges beyond the frame are neither eroded (OpenCV ignores pixels outside the image
    /// when eroding) nor blurred away (the blur reflects at the frame's edge): those sides keep a
    /// hard edge here.
    pub fn of(m: &Affine, crop: usize, frame_w: usize, frame_h: usize) -> Option<InsightfaceMask> {
        let inv = m.invert()?;
        let [a, b, _, c, d, _] = m.m;
        // Crop pixels per frame pixel along each crop axis, and each axis' direction in the frame.
        let (gu, gv) = (a.hypot(b), c.hypot(d));
        if !(gu > 1e-9 && gv > 1e-9 && gu.is_finite() && gv.is_finite()) || frame_w == 0 || frame_h == 0 {
            return None;
        }
        let (nu, nv) = ([a / gu, b / gu], [c / gv, d / gv]);
        let (lo0, hi0) = (-THRESHOLD_REACH, crop as f64 - 1.0 + THRESHOLD_REACH);
        let (last_x, last_y) = (frame_w as f64 - 1.0, frame_h as f64 - 1.0);
        // The reference's bounding box: `max − min` of the indices of the thresholded pixels,
        // which lie inside the frame.
        let corners = [(lo0, lo0), (hi0, lo0), (lo0, hi0), (hi0, hi0)].map(|(u, v)| inv.apply(u, v));
        let span = |f: fn(&(f64, f64)) -> f64, last: f64| {
            let lo = corners.iter().map(f).fold(f64::MAX, f64::min);
            let hi = corners.iter().map(f).fold(f64::MIN, f64::max);
            let (first, end) = (if lo < 0.0 { 0.0 } else { lo.ceil() }, if hi > last { last } else { hi.floor() });
            (end - first).max(0.0)
        };
        let mask_size = (span(|p| p.0, last_x) * span(|p| p.1, last_y)).sqrt() as usize;
        let k = (mask_size / 10).max(10);
        // Offsets of the box window around a pixel: [−before, after] in x and y.
        let (before, after) = ((k / 2) as f64, (k - 1 - k / 2) as f64);
        let support = |n: [f64; 2]| n.iter().map(|&ni| (after * ni).max(-before * ni)).sum::<f64>();
        let kb = (mask_size / 20).max(5);
        let ksize = 2 * kb + 1;
        let sigma_frame = 0.3 * ((ksize as f64 - 1.0) * 0.5 - 1.0) + 0.8;
        let neg = |n: [f64; 2]| [-n[0], -n[1]];
        // A crop edge that lies wholly beyond one side of the frame.
        let beyond = |(u0, v0): (f64, f64), (u1, v1): (f64, f64)| {
            let ((x0, y0), (x1, y1)) = (inv.apply(u0, v0), inv.apply(u1, v1));
            (x0 < 0.0 && x1 < 0.0)
                || (y0 < 0.0 && y1 < 0.0)
                || (x0 > last_x && x1 > last_x)
                || (y0 > last_y && y1 > last_y)
        };
        Some(InsightfaceMask {
            crop,
            lo: [lo0 + support(neg(nu)) * gu, lo0 + support(neg(nv)) * gv],
            hi: [hi0 - support(nu) * gu, hi0 - support(nv) * gv],
            hard_lo: [beyond((lo0, lo0), (lo0, hi0)), beyond((lo0, lo0), (hi0, lo0))],
            hard_hi: [beyond((hi0, lo0), (hi0, hi0)), beyond((lo0, hi0), (hi0, hi0))],
            sigma: [sigma_frame * gu, sigma_frame * gv],
            reach: [(kb as f64 + 0.5) * gu, (kb as f64 + 0.5) * gv],
            mask_size,
        })
    }

    /// The blurred-box weight at crop coordinate `t` along `axis`; a hard side is 1 up to the
    /// thresholded square's edge.
    fn profile(&self, axis: usize, t: f64) -> f64 {
        let (sigma, reach) = (self.sigma[axis], self.reach[axis]);
        let (edge_lo, edge_hi) = (-THRESHOLD_REACH, self.crop as f64 - 1.0 + THRESHOLD_REACH);
        if (self.hard_lo[axis] && t < edge_lo) || (self.hard_hi[axis] && t > edge_hi) {
            return 0.0;
        }
        let lo = if self.hard_lo[axis] { f64::MIN } else { self.lo[axis] };
        let hi = if self.hard_hi[axis] { f64::MAX } else { self.hi[axis] };
        let (from, to) = (lo.max(t - reach), hi.min(t + reach));
        if from >= to {
            return 0.0;
        }
        let total = normal_cdf(reach / sigma) - normal_cdf(-reach / sigma);
        ((normal_cdf((to - t) / sigma) - normal_cdf((from - t) / sigma)) / total).clamp(0.0, 1.0)
    }

    /// Cells the weight grid needs beyond the crop's edges for the mask's reach.
    fn pad(&self) -> usize {
        let last = self.crop as f64 - 1.0;
        let beyond = (0..2)
            .map(|axis| (self.hi[axis] + self.reach[axis] - last).max(-(self.lo[axis] - self.reach[axis])))
            .fold(0.0f64, f64::max);
        // In f64 up to the clamp: a face shrunk to a point has a reach beyond any integer.
        (beyond.ceil().max(0.0) + 1.0).min(self.crop as f64) as usize
    }

    /// A key that changes when the mask would change by more than a small fraction of a crop
    /// pixel: masks of the same key can be reused (the face's scale and rotation are steady).
    /// Masks of one key are the same mask once [`InsightfaceMask::snapped`].
    pub fn key(&self) -> [i32; 10] {
        let q = |v: f64, steps: f64| (v * steps).round() as i32;
        let hard = [self.hard_lo[0], self.hard_lo[1], self.hard_hi[0], self.hard_hi[1]];
        [
            self.crop as i32,
            hard.iter().enumerate().map(|(i, &h)| i32::from(h) << i).sum(),
            q(self.lo[0], EDGE_STEPS),
            q(self.lo[1], EDGE_STEPS),
            q(self.hi[0], EDGE_STEPS),
            q(self.hi[1], EDGE_STEPS),
            q(self.sigma[0], SIGMA_STEPS),
            q(self.sigma[1], SIGMA_STEPS),
            q(self.reach[0], EDGE_STEPS),
            q(self.reach[1], EDGE_STEPS),
        ]
    }

    /// This mask with its edges, blur and reach rounded to the steps of [`InsightfaceMask::key`]
    /// (1/16 crop pixel, sigma 1/64): the mask is then a function of its key alone. A cache that
    /// keeps one mask per key gives the same weights whichever face of that key it met first, so
    /// the pixels of a frame do not depend on the frames swapped before it (and lanes, each with
    /// its own cache, paste as one lane does).
    pub fn snapped(&self) -> InsightfaceMask {
        let snap = |v: f64, steps: f64| (v * steps).round() / steps;
        InsightfaceMask {
            lo: self.lo.map(|v| snap(v, EDGE_STEPS)),
            hi: self.hi.map(|v| snap(v, EDGE_STEPS)),
            sigma: self.sigma.map(|v| snap(v, SIGMA_STEPS)),
            reach: self.reach.map(|v| snap(v, EDGE_STEPS)),
            ..*self
        }
    }

    /// The weight grid: the product of the two axes' profiles at every grid cell.
    pub fn grid(&self) -> CropMask {
        let pad = self.pad();
        let side = self.crop + 2 * pad;
        let at =
            |axis: usize| -> Vec<f32> { (0..side).map(|i| self.profile(axis, i as f64 - pad as f64) as f32).collect() };
        let (pu, pv) = (at(0), at(1));
        let mut weights = Vec::with_capacity(side * side);
        for &wv in &pv {
            weights.extend(pu.iter().map(|&wu| wu * wv));
        }
        CropMask::new(self.crop, pad, weights)
    }
}

/// The standard normal CDF, through Abramowitz & Stegun's 7.1.26 rational approximation of erf
/// (absolute error below 1.5·10⁻⁷, far below one 8-bit level of a weight).
fn normal_cdf(x: f64) -> f64 {
    let z = x / std::f64::consts::SQRT_2;
    let t = 1.0 / (1.0 + 0.327_591_1 * z.abs());
    let poly =
        t * (0.254_829_592 + t * (-0.284_496_736 + t * (1.421_413_741 + t * (-1.453_152_027 + t * 1.061_405_429))));
    let erf = 1.0 - poly * (-z * z).exp();
    0.5 * (1.0 + if z >= 0.0 { erf } else { -erf })
}

/// The clipped frame rectangle of the pixels whose crop position (by `m`) lies in
/// `(lo, hi)` on both axes: the corners mapped back by `m⁻¹`, rounded outwards.
fn footprint(m: &Affine, lo: f64, hi: f64, frame_w: usize, frame_h: usize) -> Rect {
    let Some(inv) = m.invert() else { return Rect::default() };
    let (mut x0, mut y0, mut x1, mut y1) = (f64::MAX, f64::MAX, f64::MIN, f64::MIN);
    for (u, v) in [(lo, lo), (hi, lo), (lo, hi), (hi, hi)] {
        let (x, y) = inv.apply(u, v);
        (x0, y0, x1, y1) = (x0.min(x), y0.min(y), x1.max(x), y1.max(y));
    }
    if ![x0, y0, x1, y1].iter().all(|v| v.is_finite()) {
        return Rect::default();
    }
    let (fw, fh) = (frame_w.min(i32::MAX as usize) as f64, frame_h.min(i32::MAX as usize) as f64);
    let (a, b) = (x0.floor().clamp(0.0, fw), y0.floor().clamp(0.0, fh));
    let (c, d) = ((x1.ceil() + 1.0).clamp(0.0, fw), (y1.ceil() + 1.0).clamp(0.0, fh));
    Rect::new(a as i32, b as i32, (c - a).max(0.0) as i32, (d - b).max(0.0) as i32)
}

/// The frame rectangle a square `crop × crop` crop aligned by `m` reads from (bilinear samples
/// at crop positions in `(−1, crop)` touch its pixels), clipped to the frame: where a warp of the
/// frame into the crop reads.
pub fn crop_region(m: &Affine, crop: usize, frame_w: usize, frame_h: usize) -> Rect {
    if crop == 0 {
        return Rect::default();
    }
    footprint(m, -1.0, crop as f64, frame_w, frame_h)
}

/// The part `[from, to)` of the integer range `[x0, x1)` where `alpha·x + beta` lies strictly
/// inside `(lo, hi)`.
fn inside_span(alpha: f64, beta: f64, lo: f64, hi: f64, x0: i32, x1: i32) -> (i32, i32) {
    if alpha.abs() < 1e-12 {
        return if beta > lo && beta < hi { (x0, x1) } else { (x0, x0) };
    }
    let (p, q) = ((lo - beta) / alpha, (hi - beta) / alpha);
    let (p, q) = if p < q { (p, q) } else { (q, p) };
    // Open interval (p, q): the first integer above p and the last below q, kept in i32 range.
    let from = (p.floor() + 1.0).clamp(x0 as f64, x1 as f64) as i32;
    let to = (q.ceil()).clamp(x0 as f64, x1 as f64) as i32;
    (from, to.max(from))
}

/// Bilinear sample of a packed RGB crop at `tap` with black outside (see [`Tap::lerp_u8`]).
#[inline(always)]
fn sample_crop(crop: &RgbImage, tap: Tap) -> [u8; 3] {
    let (x, y) = (tap.x, tap.y);
    let (w, h) = (crop.width as isize, crop.height as isize);
    let d = &crop.data;
    if x >= 0 && y >= 0 && x + 1 < w && y + 1 < h {
        let i = (y as usize * crop.width + x as usize) * 3;
        let (r0, r1) = (&d[i..i + 6], &d[i + crop.width * 3..i + crop.width * 3 + 6]);
        return [
            tap.lerp_u8(r0[0], r0[3], r1[0], r1[3]),
            tap.lerp_u8(r0[1], r0[4], r1[1], r1[4]),
            tap.lerp_u8(r0[2], r0[5], r1[2], r1[5]),
        ];
    }
    let at = |x: isize, y: isize, c: usize| {
        if x >= 0 && y >= 0 && x < w && y < h { d[(y as usize * crop.width + x as usize) * 3 + c] } else { 0 }
    };
    let channel = |c: usize| tap.lerp_u8(at(x, y, c), at(x + 1, y, c), at(x, y + 1, c), at(x + 1, y + 1, c));
    [channel(0), channel(1), channel(2)]
}

/// Warps `crop` (aligned by `m`, frame → crop) back into `target` over `rect` (frame
/// coordinates, clipped to the target) and blends it with `w = mask · opacity`:
/// `out = w·crop + (1 − w)·frame` in `f32`, truncated to 8 bits like the reference's
/// `astype(np.uint8)`. Pixels of weight 0 keep their bytes; so do alpha and padding bytes.
///
/// Weights within 1e-6 of 1 count as 1: a blurred plateau is 1 only up to rounding, and with
/// truncation `1 − ε` would turn the face's interior into `crop − 1` at random.
///
/// With `weights`, the weight used at each pixel of `rect` is stored there (row-major, 0 where
/// nothing was written), for writing a region buffer back into a YUV frame.
#[allow(clippy::too_many_arguments)]
pub fn paste_crop(
    target: &mut PackedPixels,
    rect: Rect,
    crop: &RgbImage,
    mask: &CropMask,
    m: &Affine,
    opacity: f32,
    mut weights: Option<&mut Vec<f32>>,
) {
    if let Some(w) = weights.as_deref_mut() {
        w.clear();
        w.resize(rect.width.max(0) as usize * rect.height.max(0) as usize, 0.0);
    }
    let clip = intersect(rect, target.extent());
    let crop_ok = crop.width > 0 && crop.height > 0 && crop.data.len() == crop.width * crop.height * 3;
    let mask_ok = mask.side > 0 && mask.weights.len() == mask.side * mask.side;
    // `opacity > 0` is false for NaN too.
    let visible = opacity > 0.0;
    if clip.is_empty() || !crop_ok || !mask_ok || !visible || m.m.iter().any(|v| !v.is_finite()) {
        return;
    }
    let job = PasteJob { rect, clip, crop, mask, m, opacity: opacity.min(1.0) };
    match target.bpp {
        3 => job.run::<3>(target, weights),
        4 => job.run::<4>(target, weights),
        _ => {}
    }
}

/// One [`paste_crop`] call's checked arguments.
struct PasteJob<'a> {
    rect: Rect,
    clip: Rect,
    crop: &'a RgbImage,
    mask: &'a CropMask,
    m: &'a Affine,
    opacity: f32,
}

impl PasteJob<'_> {
    /// The paste loop, monomorphic in the target's bytes per pixel so that the per-pixel indexing
    /// compiles to fixed offsets.
    fn run<const BPP: usize>(&self, target: &mut PackedPixels, mut weights: Option<&mut Vec<f32>>) {
        let PasteJob { rect, clip, crop, mask, m, opacity } = *self;
        let extent = target.extent();
        let [a, b, c, d, e, f] = m.m;
        let (pad, side) = (mask.pad as f64, mask.side as f64);
        // `min` tells the compiler the offsets are in range, so the writes need no checks.
        let [r, g, bl] = target.offsets.map(|o| o.min(BPP - 1));
        let (step_u, step_v) = (fixed(a), fixed(d));
        for y in clip.y..clip.y + clip.height {
            let (row_u, row_v) = (b * y as f64 + c, e * y as f64 + f);
            // Only where the mask grid has weight: its cells span (−1, side) in grid coordinates.
            let (ua, ub) = inside_span(a, row_u + pad, -1.0, side, clip.x, clip.x + clip.width);
            let (va, vb) = inside_span(d, row_v + pad, -1.0, side, clip.x, clip.x + clip.width);
            let (from, to) = (ua.max(va), ub.min(vb));
            if from >= to {
                continue;
            }
            let row_start = (y - extent.y) as usize * target.stride + (from - extent.x) as usize * BPP;
            let row = &mut target.data[row_start..row_start + (to - from) as usize * BPP];
            let weight_row = (y - rect.y) as usize * rect.width as usize;
            // Grid positions (crop position + pad) in fixed point, stepped along the row.
            let (mut uq, mut vq) = (fixed(a * from as f64 + row_u + pad), fixed(d * from as f64 + row_v + pad));
            for (x, px) in (from..to).zip(row.chunks_exact_mut(BPP)) {
                let px: &mut [u8; BPP] = px.try_into().expect("BPP bytes");
                let tap = Tap::at(uq, vq);
                (uq, vq) = (uq + step_u, vq + step_v);
                let w = if mask.in_plateau(tap) { opacity } else { mask.sample_at(tap) * opacity };
                if w <= 0.0 || w.is_nan() {
                    continue;
                }
                let fake = sample_crop(crop, tap.shifted(mask.pad as isize));
                let w = if w >= 1.0 - 1e-6 {
                    (px[r], px[g], px[bl]) = (fake[0], fake[1], fake[2]);
                    1.0
                } else {
                    // `w·fake + (1 − w)·frame` truncated, in 16-bit fixed point (within 1/256 of a
                    // level of the float formula).
                    let wq = (w * 65536.0) as u32;
                    let mix = |f: u8, o: u8| ((wq * f as u32 + (65536 - wq) * o as u32) >> 16) as u8;
                    (px[r], px[g], px[bl]) = (mix(fake[0], px[r]), mix(fake[1], px[g]), mix(fake[2], px[bl]));
                    w
                };
                if let Some(wt) = weights.as_deref_mut() {
                    wt[weight_row + (x - rect.x) as usize] = w;
                }
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
/// region's edges, so the region should leave a few sigmas around the mouth; sigma is at most the
/// region's larger side. All zero for fewer than 3 points or non-finite input.
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
    // Bounded by the region's larger side, which a mouth's outline never comes near: lips spread
    // over 1e30 pixels (a broken 106-point model, an application's face meta) would otherwise ask
    // for a kernel of more taps than memory holds, or minutes of blurring per frame.
    let sigma = ((hi.0 - lo.0).min(hi.1 - lo.1) as f64 / 8.0).max(1.0).min(w.max(h) as f64);
    let ksize = ((sigma * 6.0 + 1.0).round() as usize) | 1;
    gaussian_blur(weights, w, h, ksize, sigma, blur);
    for v in weights.iter_mut() {
        *v = v.clamp(0.0, 1.0);
    }
    weights
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    fn pattern(w: usize, h: usize, seed: usize) -> RgbImage {
        let data = (0..w * h * 3).map(|i| (((i * 7 + seed) * 2_654_435_761) >> 7) as u8).collect();
        RgbImage::from_raw(w, h, data).unwrap()
    }

    /// A smooth picture (gradients), where a small weight difference moves a pixel by little.
    fn smooth(w: usize, h: usize, phase: usize) -> RgbImage {
        let mut img = RgbImage::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let c = |k: usize| ((x * (k + 1) + y * (3 - k) + phase * 40) % 512) as i32;
                img.set_pixel(x, y, std::array::from_fn(|k| (255 - (c(k) - 255).abs()) as u8));
            }
        }
        img
    }

    /// Frame → crop similarity: crop = s·R(θ)·(p − c) + crop centre.
    fn similarity(scale: f64, theta: f64, cx: f64, cy: f64, crop: f64) -> Affine {
        let (a, b) = (scale * theta.cos(), scale * theta.sin());
        let h = crop / 2.0;
        Affine { m: [a, -b, h - a * cx + b * cy, b, a, h - b * cx - a * cy] }
    }

    /// The Python reference over the whole frame, written out step by step and independently of
    /// the code under test: `cv2.warpAffine` of the fake and of a white mask with OpenCV's
    /// fixed-point positions (1/32 px, 15-bit weights), threshold at 20, bounding box, naive
    /// box erosion, OpenCV's Gaussian blur of the whole frame. Returns the warped fake and the
    /// mask weights (mask / 255).
    pub(super) fn reference_warp_and_mask(
        fw: usize,
        fh: usize,
        fake: &RgbImage,
        m: &Affine,
    ) -> (Vec<[u8; 3]>, Vec<f32>) {
        let inv = |m: [f64; 6]| {
            let d = 1.0 / (m[0] * m[4] - m[1] * m[3]);
            let (a, b, c, e) = (m[4] * d, -m[1] * d, -m[3] * d, m[0] * d);
            [a, b, -a * m[2] - b * m[5], c, e, -c * m[2] - e * m[5]]
        };
        // The reference hands IM = invert(M) to warpAffine, which inverts it again.
        let s = inv(inv(m.m));
        let (cw, ch) = (fake.width, fake.height);
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
        (warped, eroded.iter().map(|v| v / 255.0).collect())
    }

    /// The reference's blend, `w·warped + (1 − w)·frame` truncated, with the reference's warp of
    /// the fake and the given weights (weights within 1e-6 of 1 count as 1, as in `paste_crop`).
    fn reference_blend(frame: &RgbImage, warped: &[[u8; 3]], weight: impl Fn(usize, usize) -> f32) -> RgbImage {
        let mut out = frame.clone();
        for (i, px) in out.data.chunks_exact_mut(3).enumerate() {
            let w = weight(i % frame.width, i / frame.width);
            let w = if w >= 1.0 - 1e-6 { 1.0 } else { w };
            for c in 0..3 {
                px[c] = (w * warped[i][c] as f32 + (1.0 - w) * px[c] as f32) as u8;
            }
        }
        out
    }

    /// `paste_crop` into a copy of a packed RGB frame.
    fn paste_into(frame: &RgbImage, fake: &RgbImage, mask: &CropMask, m: &Affine, opacity: f32) -> RgbImage {
        let mut out = frame.clone();
        let rect = mask.frame_region(m, frame.width, frame.height);
        let full = Rect::new(0, 0, frame.width as i32, frame.height as i32);
        paste_crop(&mut PackedPixels::region(&mut out, full), rect, fake, mask, m, opacity, None);
        out
    }

    fn mean_max(a: &RgbImage, b: &RgbImage) -> (f64, u8) {
        let sum: u64 = a.data.iter().zip(&b.data).map(|(x, y)| x.abs_diff(*y) as u64).sum();
        let max = a.data.iter().zip(&b.data).map(|(x, y)| x.abs_diff(*y)).max().unwrap_or(0);
        (sum as f64 / a.data.len() as f64, max)
    }

    /// Faces of several sizes (so that the erosion and blur sizes differ), rotations, and
    /// positions across the frame's edges.
    fn cases() -> Vec<(RgbImage, Affine)> {
        let frame = |w, h| RgbImage::new(w, h);
        vec![
            (frame(240, 200), similarity(128.0 / 90.0, 0.0, 120.0, 100.0, 128.0)), // small: k = 10, kb = 5
            (frame(260, 220), similarity(128.0 / 110.0, 0.3, 130.0, 110.0, 128.0)),
            (frame(420, 380), similarity(128.0 / 300.0, -0.2, 210.0, 190.0, 128.0)), // large: k = 31
            (frame(520, 500), similarity(128.0 / 380.0, 0.12, 260.0, 250.0, 128.0)), // k = 39, kb = 19
            (frame(260, 220), similarity(128.0 / 120.0, 0.5, 15.0, 100.0, 128.0)),   // across the left edge
            (frame(300, 240), similarity(128.0 / 200.0, 0.0, 150.0, 3.0, 128.0)),    // half above the frame
            (frame(360, 360), similarity(128.0 / 200.0, std::f64::consts::FRAC_PI_4, 180.0, 180.0, 128.0)),
        ]
    }

    /// Two faces whose masks share a key get the same snapped mask, though their own masks
    /// differ: a mask cache that met either first pastes the same pixels.
    #[test]
    fn insightface_masks_of_one_key_snap_to_one_mask() {
        let shape =
            |scale: f64| InsightfaceMask::of(&similarity(scale, 0.1, 320.0, 240.0, 128.0), 128, 640, 480).unwrap();
        let (a, b) = (shape(128.0 / 200.0), shape(128.0 / 200.0 * 1.0002));
        assert_eq!(a.key(), b.key());
        assert_ne!(a.grid().weights(), b.grid().weights());
        assert_eq!(a.snapped().grid().weights(), b.snapped().grid().weights());
        assert_eq!(a.snapped().key(), a.key());
    }

    /// Keypoints all but on one point align with an enormous scale: the mask's reach overflowed
    /// an integer (found by the scrfd_decode fuzz target); the pad now stops at the crop size.
    #[test]
    fn insightface_mask_of_a_point_sized_face_keeps_its_pad_within_the_crop() {
        let m = Affine { m: [1e100, 0.0, 0.0, 0.0, 1e100, 0.0] };
        let mask = InsightfaceMask::of(&m, 128, 640, 480).expect("not singular").grid();
        assert_eq!((mask.crop(), mask.pad()), (128, 128));
    }

    #[test]
    fn insightface_crop_mask_matches_the_frame_space_reference() {
        let fake = pattern(128, 128, 3);
        // Stated figures (mean, max weight difference) per case of `cases()`. Faces inside the
        // frame: within 0.0025 on average and 0.025 at most once the face is 130 px or larger;
        // smaller upright faces show the reference's pixel-grid quantisation of the eroded edge
        // (up to half a pixel, which a sigma-2 blur turns into 0.1 of weight). Faces across the
        // frame's edge: the reference neither erodes nor fades at the frame's edge; where a
        // rotated crop's corner crosses it, the crop-space mask still fades (up to 0.55 there,
        // over a few pixels; 0.0035 on average).
        let bounds = [
            (0.012, 0.11),
            (0.0025, 0.025),
            (0.0025, 0.025),
            (0.0025, 0.025),
            (0.0035, 0.55),
            (0.006, 0.07),
            (0.0025, 0.025),
        ];
        for (n, (frame, m)) in cases().into_iter().enumerate() {
            let (_, reference) = reference_warp_and_mask(frame.width, frame.height, &fake, &m);
            let mask = CropMask::insightface(&m, 128, frame.width, frame.height).unwrap();
            let (mut sum, mut max, mut count) = (0.0f64, 0.0f32, 0usize);
            for y in 0..frame.height {
                for x in 0..frame.width {
                    let (u, v) = m.apply(x as f64, y as f64);
                    let ours = mask.sample(u as f32, v as f32);
                    let theirs = reference[y * frame.width + x];
                    if ours > 0.0 || theirs > 0.0 {
                        let d = (ours - theirs).abs();
                        (sum, max, count) = (sum + d as f64, max.max(d), count + 1);
                    }
                }
            }
            let mean = sum / count.max(1) as f64;
            eprintln!("case {n}: mask weights differ by {mean:.5} on average, {max:.4} at most over {count} px");
            assert!(count > 1000, "case {n}: the mask covers pixels");
            let (mean_bound, max_bound) = bounds[n];
            assert!(mean <= mean_bound && max <= max_bound, "case {n}: mean {mean}, max {max}");
        }
    }

    /// The warp and blend of `paste_crop` against the reference's, with the same mask weights:
    /// the crop-space mask is measured on its own above.
    #[test]
    fn paste_matches_the_reference_warp_and_blend() {
        for (n, (frame, m)) in cases().into_iter().enumerate() {
            let (frame, fake) = (smooth(frame.width, frame.height, n), smooth(128, 128, n + 5));
            let mask = CropMask::insightface(&m, 128, frame.width, frame.height).unwrap();
            let (warped, _) = reference_warp_and_mask(frame.width, frame.height, &fake, &m);
            let want = reference_blend(&frame, &warped, |x, y| {
                let (u, v) = m.apply(x as f64, y as f64);
                mask.sample(u as f32, v as f32)
            });
            let got = paste_into(&frame, &fake, &mask, &m, 1.0);
            let (mean, max) = mean_max(&got, &want);
            let (change, _) = mean_max(&want, &frame);
            eprintln!(
                "case {n}: pasted frame differs by {mean:.4} on average, {max} at most (the paste changed {change:.3})"
            );
            assert!(change > 1.0, "case {n}: the reference pasted something");
            // OpenCV samples at 1/32 px with 15-bit weights, the paste at the exact position: a level
            // or two apart inside the crop, a few more on its last pixel, where the bilinear sample
            // falls to the black border within one pixel.
            assert!(mean <= 0.05 && max <= 8, "case {n}: mean {mean}, max {max}");
        }
    }

    #[test]
    fn crop_mask_region_covers_every_weighted_pixel() {
        for (n, (frame, m)) in cases().into_iter().enumerate() {
            let mask = CropMask::insightface(&m, 128, frame.width, frame.height).unwrap();
            let rect = mask.frame_region(&m, frame.width, frame.height);
            for y in 0..frame.height as i32 {
                for x in 0..frame.width as i32 {
                    let (u, v) = m.apply(x as f64, y as f64);
                    let inside = x >= rect.x && y >= rect.y && x < rect.x + rect.width && y < rect.y + rect.height;
                    assert!(inside || mask.sample(u as f32, v as f32) == 0.0, "case {n}: ({x},{y}) outside {rect:?}");
                }
            }
        }
    }

    #[test]
    fn degenerate_transform_opacity_zero_and_outside_paste_nothing() {
        let fake = pattern(128, 128, 5);
        let frame = pattern(200, 160, 1);
        let m = similarity(1.0, 0.0, 100.0, 80.0, 128.0);
        let mask = CropMask::insightface(&m, 128, frame.width, frame.height).unwrap();
        assert_eq!(paste_into(&frame, &fake, &mask, &m, 0.0), frame);
        assert_eq!(paste_into(&frame, &fake, &mask, &m, f32::NAN), frame);
        let far = similarity(1.0, 0.0, 900.0, 80.0, 128.0);
        assert!(mask.frame_region(&far, 200, 160).is_empty());
        assert!(crop_region(&far, 128, 200, 160).is_empty());
        assert_eq!(paste_into(&frame, &fake, &mask, &far, 1.0), frame);
        let zero = Affine { m: [0.0; 6] };
        assert!(CropMask::insightface(&zero, 128, 200, 160).is_none());
        assert!(crop_region(&zero, 128, 200, 160).is_empty());
        let nan = Affine { m: [f64::NAN, 0.0, 0.0, 0.0, 1.0, 0.0] };
        assert_eq!(paste_into(&frame, &fake, &mask, &nan, 1.0), frame);
        // An empty crop or mask is refused without panicking.
        assert_eq!(paste_into(&frame, &RgbImage::default(), &mask, &m, 1.0), frame);
        assert_eq!(paste_into(&frame, &fake, &CropMask::default(), &m, 1.0), frame);
    }

    #[test]
    fn translation_centre_is_the_fake_and_far_pixels_stay() {
        let mut fake = RgbImage::new(128, 128);
        fake.data.chunks_exact_mut(3).for_each(|p| p.copy_from_slice(&[10, 200, 90]));
        let frame = pattern(300, 240, 2);
        // Frame → crop is a pure translation: crop (0, 0) sits at frame (70, 50).
        let m = Affine { m: [1.0, 0.0, -70.0, 0.0, 1.0, -50.0] };
        for mask in [
            CropMask::insightface(&m, 128, frame.width, frame.height).unwrap(),
            CropMask::ellipse(128, &mut BlurScratch::default()),
        ] {
            let out = paste_into(&frame, &fake, &mask, &m, 1.0);
            for (x, y) in [(134, 114), (110, 90), (160, 140)] {
                assert_eq!(out.pixel(x, y), [10, 200, 90], "({x},{y})");
            }
            assert_eq!(out.pixel(5, 5), frame.pixel(5, 5));
            assert_eq!(out.pixel(250, 200), frame.pixel(250, 200));
        }
    }

    #[test]
    fn packed_frame_and_region_buffer_paste_alike() {
        let fake = smooth(128, 128, 1);
        let m = similarity(128.0 / 100.0, 0.2, 60.0, 50.0, 128.0);
        let (w, h) = (150, 120);
        let mask = CropMask::insightface(&m, 128, w, h).unwrap();
        let rgb = smooth(w, h, 4);
        // A BGRx frame with padded rows: the padding and x bytes must survive.
        let stride = w * 4 + 8;
        let mut bgrx = vec![0xA5u8; stride * h];
        for y in 0..h {
            for x in 0..w {
                let p = rgb.pixel(x, y);
                bgrx[y * stride + x * 4..][..3].copy_from_slice(&[p[2], p[1], p[0]]);
            }
        }
        let rect = mask.frame_region(&m, w, h);
        let mut target =
            PackedPixels { data: &mut bgrx, stride, bpp: 4, offsets: [2, 1, 0], origin: (0, 0), width: w, height: h };
        paste_crop(&mut target, rect, &fake, &mask, &m, 0.7, None);

        let mut region = RgbImage::new(rect.width as usize, rect.height as usize);
        for y in 0..region.height {
            for x in 0..region.width {
                region.set_pixel(x, y, rgb.pixel(x + rect.x as usize, y + rect.y as usize));
            }
        }
        let mut weights = Vec::new();
        paste_crop(&mut PackedPixels::region(&mut region, rect), rect, &fake, &mask, &m, 0.7, Some(&mut weights));
        assert!(weights.iter().all(|w| (0.0..=0.7).contains(w)) && weights.iter().any(|&w| w > 0.69));
        for y in 0..h {
            for x in 0..w {
                let px = &bgrx[y * stride + x * 4..][..4];
                assert_eq!(px[3], 0xA5, "x byte at ({x},{y})");
                let inside = (x as i32) >= rect.x
                    && (y as i32) >= rect.y
                    && (x as i32) < rect.x + rect.width
                    && (y as i32) < rect.y + rect.height;
                let want = if inside {
                    let (rx, ry) = (x - rect.x as usize, y - rect.y as usize);
                    if weights[ry * region.width + rx] == 0.0 {
                        assert_eq!(region.pixel(rx, ry), rgb.pixel(x, y), "unweighted pixels keep their bytes");
                    }
                    region.pixel(rx, ry)
                } else {
                    rgb.pixel(x, y)
                };
                assert_eq!([px[2], px[1], px[0]], want, "({x},{y})");
            }
            assert!(bgrx[y * stride + w * 4..(y + 1) * stride].iter().all(|&b| b == 0xA5), "row padding");
        }
    }

    #[test]
    fn crop_masks_are_symmetric() {
        let e = CropMask::ellipse(128, &mut BlurScratch::default());
        let e = e.weights();
        assert!((e[64 * 128 + 64] - 1.0).abs() < 1e-5);
        // Point symmetry about (64, 64), away from the borders: reflect-101 mirrors about pixels 0
        // and 127, not 64 ± 64, so within the blur radius (15) of an edge the two sides differ.
        for y in 16..=112 {
            for x in 16..=112 {
                let (a, b) = (e[y * 128 + x], e[(128 - y) * 128 + (128 - x)]);
                assert!((a - b).abs() < 1e-5, "({x},{y}) {a} {b}");
                assert!((a - e[x * 128 + y]).abs() < 1e-5);
            }
        }
        let r = CropMask::ramp(512);
        let r = r.weights();
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
        // The upright InsightFace mask is symmetric about the crop's centre line up to the
        // half-pixel shift of the even erosion box, and 1 in the middle.
        let m = similarity(128.0 / 150.0, 0.0, 100.0, 100.0, 128.0);
        let mask = CropMask::insightface(&m, 128, 200, 200).unwrap();
        assert!((mask.sample(63.5, 63.5) - 1.0).abs() < 1e-6);
        assert_eq!(mask.sample(-30.0, 64.0), 0.0);
    }

    #[test]
    fn ramp_weights_fall_to_zero_just_outside_the_crop() {
        let crop = 512;
        let fake = pattern(crop, crop, 9);
        // Crop (0, 0) at frame (60, 40).
        let m = Affine { m: [1.0, 0.0, -60.0, 0.0, 1.0, -40.0] };
        let mask = CropMask::ramp(crop);
        let r = mask.frame_region(&m, 700, 600);
        assert!(r.x <= 59 && r.y <= 39 && r.x + r.width >= 60 + crop as i32);
        let mut region = RgbImage::new(r.width as usize, r.height as usize);
        let mut weights = Vec::new();
        paste_crop(&mut PackedPixels::region(&mut region, r), r, &fake, &mask, &m, 1.0, Some(&mut weights));
        let at = |x: i32, y: i32| weights[((y - r.y) * r.width + (x - r.x)) as usize];
        let c = 60 + crop as i32 / 2;
        assert_eq!(at(c, c - 20), 1.0);
        for (x, y) in [(r.x, c - 20), (c, r.y), (59, c - 20), (60 + crop as i32, c - 20)] {
            assert_eq!(at(x, y), 0.0, "({x},{y})");
        }
        assert!((at(61, c) - at(60 + crop as i32 - 2, c)).abs() < 1e-6);
    }

    /// Twelve lip points on an ellipse about `centre` with half-axes `radii`.
    fn lips(centre: (f32, f32), radii: (f32, f32)) -> Vec<(f32, f32)> {
        (0..12)
            .map(|i| {
                let a = i as f32 * std::f32::consts::TAU / 12.0;
                (centre.0 + radii.0 * a.cos(), centre.1 + radii.1 * a.sin())
            })
            .collect()
    }

    #[test]
    fn mouth_mask_fills_and_feathers() {
        let mut s = MouthScratch::default();
        let pts = lips((100.0, 80.0), (20.0, 8.0));
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

    #[test]
    fn mouth_mask_of_lips_spread_over_huge_distances_stays_bounded() {
        // Finite but absurd lip points (a broken 106-point model): the feathering's sigma would
        // be about 1e29 and its kernel larger than memory; it stops at the region's larger side.
        let mut s = MouthScratch::default();
        let pts = lips((0.0, 0.0), (1e30, 1e30));
        let r = Rect::new(-20, -30, 64, 48);
        let w = mouth_mask(&pts, 0.0, r, &mut s);
        assert_eq!(w.len(), 64 * 48);
        assert!(w.iter().all(|v| (0.0..=1.0).contains(v)));
        // The region lies inside the huge outline: filled, and the blur of ones stays near one.
        assert!(w.iter().all(|&v| v > 0.99), "{:?}", w.iter().copied().fold(1.0f32, f32::min));
    }
}
