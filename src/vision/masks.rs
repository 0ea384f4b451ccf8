// SPDX-License-Identifier: MPL-2.0
//! FaceFusion's occlusion, region and area masks (3.8.1, `face_masker.py`), minus the models:
//! the names users select regions and areas by, the pixel work before and after the occluder
//! (XSeg) and face parser (BiSeNet) models, the landmark hull of the area mask, and the one
//! softening all three share. The models themselves are in [`crate::models::occluder`],
//! [`crate::models::parser`] and [`crate::models::landmark68`].
//!
//! Every mask is a square `side × side` plane of `f32` in `[0, 1]` over the aligned face crop at
//! its working (pixel boost) size, 1 where the swapped face shows. FaceFusion combines the masks
//! of a face by their element-wise minimum.
//!
//! Channel order: our crops are RGB, FaceFusion's BGR. XSeg takes FaceFusion's crop as it is
//! (BGR), BiSeNet after a swap to RGB; the functions here take RGB and do what that amounts to.

use std::fmt;

use super::filter::{BlurScratch, gaussian_blur, gaussian_blur_runs};
use super::image::RgbImage;
use super::resize::{resize_f32, resize_rgb8};

/// The sigma, in crop pixels at any boost size, of the blur that softens every model and area
/// mask ([`soften`]).
pub const SOFTEN_SIGMA: f64 = 5.0;

/// The face parser's classes (CelebAMask-HQ order) that FaceFusion lets users select, by its
/// names. Background (0), ears (7, 8), earring (9), neck (14), necklace (15), cloth (16), hair
/// (17) and hat (18) are never part of the face.
pub const REGION_CLASSES: [(&str, usize); 10] = [
    ("skin", 1),
    ("left-eyebrow", 2),
    ("right-eyebrow", 3),
    ("left-eye", 4),
    ("right-eye", 5),
    ("glasses", 6),
    ("nose", 10),
    ("mouth", 11),
    ("upper-lip", 12),
    ("lower-lip", 13),
];

/// Classes of the face parser (BiSeNet trained on CelebAMask-HQ).
pub const PARSER_CLASSES: usize = 19;

/// A set of face parser regions (`mask-regions`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Regions {
    /// Bit `c` set: class `c` belongs to the mask.
    classes: u32,
}

impl Regions {
    /// All ten regions, FaceFusion's default.
    pub fn all() -> Regions {
        Regions { classes: REGION_CLASSES.iter().fold(0, |bits, (_, c)| bits | 1 << c) }
    }

    /// Parses comma-separated FaceFusion region names (`skin,nose,mouth`; spaces around names
    /// are ignored). At least one name is needed; the error names the unknown one and lists the
    /// valid names.
    pub fn parse(names: &str) -> Result<Regions, String> {
        let valid = || REGION_CLASSES.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
        let mut classes = 0u32;
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let Some((_, class)) = REGION_CLASSES.iter().find(|(n, _)| *n == name) else {
                return Err(format!("unknown face region '{name}': expected one or more of {}", valid()));
            };
            classes |= 1 << class;
        }
        if classes == 0 {
            return Err(format!("no face region given: expected one or more of {}", valid()));
        }
        Ok(Regions { classes })
    }

    /// Whether parser class `class` is part of the mask.
    pub fn contains_class(&self, class: usize) -> bool {
        class < 32 && self.classes & (1 << class) != 0
    }
}

impl Default for Regions {
    fn default() -> Self {
        Regions::all()
    }
}

/// The names, comma-separated, in FaceFusion's order.
impl fmt::Display for Regions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> =
            REGION_CLASSES.iter().filter(|(_, c)| self.contains_class(*c)).map(|(n, _)| *n).collect();
        f.write_str(&names.join(","))
    }
}

/// FaceFusion's landmark areas: the 68-point indices of each (`choices.py`). The mask is the
/// convex hull of the points of all selected areas together.
pub const AREA_POINTS: [(&str, &[usize]); 3] = [
    ("upper-face", &[0, 1, 2, 31, 32, 33, 34, 35, 14, 15, 16, 26, 25, 24, 23, 22, 21, 20, 19, 18, 17]),
    ("lower-face", &[3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 35, 34, 33, 32, 31]),
    ("mouth", &[48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 66, 67]),
];

/// A set of landmark areas (`mask-areas`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Areas {
    /// Bit `i` set: area `AREA_POINTS[i]` is selected.
    areas: u8,
}

impl Areas {
    /// All three areas, FaceFusion's default.
    pub fn all() -> Areas {
        Areas { areas: (1 << AREA_POINTS.len()) - 1 }
    }

    /// Parses comma-separated FaceFusion area names (`upper-face,mouth`). At least one name is
    /// needed; the error names the unknown one and lists the valid names.
    pub fn parse(names: &str) -> Result<Areas, String> {
        let valid = || AREA_POINTS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ");
        let mut areas = 0u8;
        for name in names.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let Some(i) = AREA_POINTS.iter().position(|(n, _)| *n == name) else {
                return Err(format!("unknown face area '{name}': expected one or more of {}", valid()));
            };
            areas |= 1 << i;
        }
        if areas == 0 {
            return Err(format!("no face area given: expected one or more of {}", valid()));
        }
        Ok(Areas { areas })
    }

    /// The 68-point indices of the selected areas, area after area.
    pub fn points(&self) -> impl Iterator<Item = usize> + '_ {
        AREA_POINTS
            .iter()
            .enumerate()
            .filter(|(i, _)| self.areas & (1 << i) != 0)
            .flat_map(|(_, (_, points))| points.iter().copied())
    }
}

impl Default for Areas {
    fn default() -> Self {
        Areas::all()
    }
}

/// The names, comma-separated, in FaceFusion's order.
impl fmt::Display for Areas {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> =
            AREA_POINTS.iter().enumerate().filter(|(i, _)| self.areas & (1 << i) != 0).map(|(_, (n, _))| *n).collect();
        f.write_str(&names.join(","))
    }
}

/// FaceFusion's softening of a `side × side` model or area mask, in place:
/// `(GaussianBlur(clip(m, 0, 1), σ 5).clip(0.5, 1) − 0.5) · 2`. The blur pulls a hard edge half
/// way down at the edge itself, so the threshold at one half keeps the inside at 1 up to about
/// σ from the edge and fades it to 0 at the edge: the mask never reaches past the shape.
pub fn soften(mask: &mut [f32], side: usize) {
    soften_with(mask, side, &mut BlurScratch::default());
}

/// [`soften`] with the blur's buffers kept between calls.
pub fn soften_with(mask: &mut [f32], side: usize, blur: &mut BlurScratch) {
    let len = (side * side).min(mask.len());
    let mask = &mut mask[..len];
    for v in mask.iter_mut() {
        *v = v.clamp(0.0, 1.0);
    }
    gaussian_blur(mask, side, side, 0, SOFTEN_SIGMA, blur);
    for v in mask.iter_mut() {
        *v = (v.clamp(0.5, 1.0) - 0.5) * 2.0;
    }
}

/// Side of the occluder's (XSeg's) square input.
pub const OCCLUDER_SIZE: usize = 256;

/// The occluder's input from the pre-swap crop: `cv2.resize` to 256 × 256 (bilinear, 8-bit
/// fixed point), BGR, `/ 255`, NHWC: `out` gets `256 · 256 · 3` values.
pub fn occluder_input(crop: &RgbImage, resized: &mut Vec<u8>, out: &mut [f32]) {
    resize_rgb8(&crop.data, (crop.width, crop.height), (OCCLUDER_SIZE, OCCLUDER_SIZE), resized);
    for (o, px) in out.chunks_exact_mut(3).zip(resized.chunks_exact(3)) {
        for (v, &c) in o.iter_mut().zip([px[2], px[1], px[0]].iter()) {
            *v = c as f32 / 255.0;
        }
    }
}

/// The occlusion mask from the occluder's `256 × 256` output (1 = face, 0 = in front of it):
/// clipped to `[0, 1]`, resized to the crop (bilinear), softened.
pub fn occlusion_from_output(output: &[f32], side: usize, blur: &mut BlurScratch) -> Vec<f32> {
    let clipped: Vec<f32> = output.iter().map(|v| v.clamp(0.0, 1.0)).collect();
    let mut mask = Vec::new();
    resize_f32(&clipped, (OCCLUDER_SIZE, OCCLUDER_SIZE), 1, (side, side), &mut mask);
    soften_with(&mut mask, side, blur);
    mask
}

/// Side of the face parser's (BiSeNet's) square input.
pub const PARSER_SIZE: usize = 512;
/// The face parser's input normalisation (ImageNet's mean and deviation, on RGB `x / 255`).
pub const IMAGENET_MEAN: [f32; 3] = [0.485, 0.456, 0.406];
pub const IMAGENET_STD: [f32; 3] = [0.229, 0.224, 0.225];

/// The face parser's input from the swapped crop (`side × side × 3` RGB `f32` in `[0, 255]`):
/// `cv2.resize` to 512 × 512 (bilinear, float), `/ 255`, ImageNet mean and deviation, NCHW: `out`
/// gets `3 · 512 · 512` values.
pub fn parser_input(swapped: &[f32], side: usize, resized: &mut Vec<f32>, out: &mut [f32]) {
    resize_f32(swapped, (side, side), 3, (PARSER_SIZE, PARSER_SIZE), resized);
    let plane = PARSER_SIZE * PARSER_SIZE;
    for (c, channel) in out.chunks_exact_mut(plane).take(3).enumerate() {
        for (o, px) in channel.iter_mut().zip(resized.chunks_exact(3)) {
            *o = (px[c] / 255.0 - IMAGENET_MEAN[c]) / IMAGENET_STD[c];
        }
    }
}

/// The region mask from the parser's logits (`classes × 512 × 512`, planar): 1 where the most
/// likely class (the first of equals) is one of `regions`, resized to the crop, softened.
pub fn region_from_logits(
    logits: &[f32],
    classes: usize,
    regions: &Regions,
    side: usize,
    blur: &mut BlurScratch,
) -> Vec<f32> {
    let plane = PARSER_SIZE * PARSER_SIZE;
    let mut best = logits[..plane.min(logits.len())].to_vec();
    let mut selected: Vec<f32> = vec![if regions.contains_class(0) { 1.0 } else { 0.0 }; best.len()];
    for class in 1..classes {
        let Some(scores) = logits.get(class * plane..(class + 1) * plane) else { break };
        let inside = if regions.contains_class(class) { 1.0 } else { 0.0 };
        for ((b, s), &v) in best.iter_mut().zip(selected.iter_mut()).zip(scores) {
            if v > *b {
                *b = v;
                *s = inside;
            }
        }
    }
    let mut mask = Vec::new();
    resize_f32(&selected, (PARSER_SIZE, PARSER_SIZE), 1, (side, side), &mut mask);
    soften_with(&mut mask, side, blur);
    mask
}

/// FaceFusion's area mask over a `side × side` crop: the convex hull of the selected areas'
/// 68-point landmarks (`lm68_in_crop`, in crop pixels, truncated to integers as
/// `astype(int32)` does), filled as `cv2.fillConvexPoly` fills it, softened.
///
/// Nothing of the filled hull reaches further than three sigmas of the blur (the kernel's
/// radius), so only the hull's bounding box and that margin are blurred: the same values as
/// blurring the whole crop (every pixel that box leaves out is 0 and stays 0), at a fraction of
/// the cost.
pub fn area_mask(side: usize, lm68_in_crop: &[[f32; 2]; 68], areas: &Areas) -> Vec<f32> {
    let mut mask = Vec::new();
    draw_area_mask(side, &area_hull(lm68_in_crop, areas), None, &mut mask, &mut BlurScratch::default());
    mask
}

/// The hull the area mask of `areas` fills: the landmarks truncated to integers as FaceFusion's
/// `astype(int32)` does (saturating where numpy's cast is undefined).
fn area_hull(lm68_in_crop: &[[f32; 2]; 68], areas: &Areas) -> Vec<[i64; 2]> {
    let points: Vec<[i64; 2]> =
        areas.points().map(|i| lm68_in_crop[i]).map(|[x, y]| [x as i32 as i64, y as i32 as i64]).collect();
    convex_hull(&points)
}

/// Draws the area mask of `hull` into `mask` (`side × side`). `previous`, the hull last drawn
/// there at this size, says where the old mask is non-zero: only that window is cleared then,
/// rather than the whole crop (4 MB at 1024 px).
fn draw_area_mask(
    side: usize,
    hull: &[[i64; 2]],
    previous: Option<&[[i64; 2]]>,
    mask: &mut Vec<f32>,
    blur: &mut BlurScratch,
) {
    match previous.and_then(|old| softened_window(side, old)).filter(|_| mask.len() == side * side) {
        Some((x0, y0, w, h)) => {
            for row in mask[y0 * side + x0..].chunks_mut(side).take(h) {
                row[..w].fill(0.0);
            }
        }
        None => {
            mask.clear();
            mask.resize(side * side, 0.0);
        }
    }
    fill_convex_poly(mask, side, side, hull);
    soften_bounded(mask, side, hull, blur);
}

/// The window of a `side × side` crop that softening the filled `hull` touches, `(x0, y0, w, h)`:
/// the hull's bounding box and the blur kernel's reach around it, clipped to the crop; `None`
/// when that is empty.
fn softened_window(side: usize, hull: &[[i64; 2]]) -> Option<(usize, usize, usize, usize)> {
    if side == 0 || hull.is_empty() {
        return None;
    }
    // OpenCV's kernel for σ 5: round(8σ + 1) | 1 = 41 taps, 20 either side.
    let reach = (((SOFTEN_SIGMA * 8.0 + 1.0).round() as i64) | 1) / 2;
    let clip = |v: i64| v.clamp(0, side as i64) as usize;
    let (x0, x1) = hull.iter().fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])));
    let (y0, y1) = hull.iter().fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
    let (x0, x1, y0, y1) = (clip(x0 - reach), clip(x1 + reach + 1), clip(y0 - reach), clip(y1 + reach + 1));
    let (w, h) = (x1.saturating_sub(x0), y1.saturating_sub(y0));
    (w > 0 && h > 0).then_some((x0, y0, w, h))
}

/// The area mask of one tracked face, kept from frame to frame: the mask depends only on the crop
/// size, the areas and the integer hull, and an aligned crop holds a steady face's landmarks in
/// place, so the hull often repeats and the mask is reused as it is (the same values
/// [`area_mask`] gives). The occlusion and region masks cannot be kept: they depend on the
/// crop's pixels, which change every frame.
#[derive(Debug, Default)]
pub struct AreaMaskCache {
    key: Option<(usize, Areas, Vec<[i64; 2]>)>,
    mask: Vec<f32>,
    blur: BlurScratch,
    reused: u64,
}

impl AreaMaskCache {
    /// [`area_mask`], drawn again only when the crop size, the areas or the hull changed.
    pub fn mask(&mut self, side: usize, lm68_in_crop: &[[f32; 2]; 68], areas: &Areas) -> &[f32] {
        let hull = area_hull(lm68_in_crop, areas);
        match &self.key {
            Some((s, a, h)) if *s == side && a == areas && *h == hull => self.reused += 1,
            key => {
                let previous = key.as_ref().filter(|(s, ..)| *s == side).map(|(_, _, h)| h.as_slice());
                draw_area_mask(side, &hull, previous, &mut self.mask, &mut self.blur);
                self.key = Some((side, *areas, hull));
            }
        }
        &self.mask
    }

    /// [`AreaMaskCache::mask`], and whether it was drawn again (for a copy of the mask kept
    /// elsewhere, e.g. in GPU memory, that then needs refreshing).
    pub fn mask_redrawn(&mut self, side: usize, lm68_in_crop: &[[f32; 2]; 68], areas: &Areas) -> (&[f32], bool) {
        let reused = self.reused;
        self.mask(side, lm68_in_crop, areas);
        (&self.mask, self.reused == reused)
    }

    /// How many calls returned the kept mask.
    pub fn reused(&self) -> u64 {
        self.reused
    }
}

/// [`soften_with`] of a filled hull (zeros and ones, 0 outside the bounding box of `hull`): blurs
/// that box and the kernel's reach around it (clipped to the crop) where it lies in `mask`, and
/// nothing else.
fn soften_bounded(mask: &mut [f32], side: usize, hull: &[[i64; 2]], blur: &mut BlurScratch) {
    let Some((x0, y0, w, h)) = softened_window(side, hull) else { return };
    // The fill wrote zeros and ones only, so the clip to [0, 1] that `soften_with` starts with
    // changes nothing here.
    let window = &mut mask[y0 * side + x0..];
    gaussian_blur_runs(window, (w, h, side), 0, SOFTEN_SIGMA, blur);
    for row in window.chunks_mut(side).take(h) {
        for m in &mut row[..w] {
            *m = (m.clamp(0.5, 1.0) - 0.5) * 2.0;
        }
    }
}

/// The convex hull of integer points without repeated or collinear points, as `cv2.convexHull`
/// returns it (the order and first point may differ, which filling does not see). Andrew's
/// monotone chain.
fn convex_hull(points: &[[i64; 2]]) -> Vec<[i64; 2]> {
    let mut sorted = points.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    if sorted.len() < 3 {
        return sorted;
    }
    // In i128: the points come from landmarks (a model's output or an application's face meta)
    // truncated to i32, so a difference takes 33 bits and a product 66, past i64.
    let cross = |o: [i64; 2], a: [i64; 2], b: [i64; 2]| {
        let d = |p: [i64; 2], q: [i64; 2], i: usize| i128::from(p[i]) - i128::from(q[i]);
        d(a, o, 0) * d(b, o, 1) - d(a, o, 1) * d(b, o, 0)
    };
    let mut hull: Vec<[i64; 2]> = Vec::with_capacity(2 * sorted.len());
    for pass in 0..2 {
        let start = hull.len();
        let iter: Box<dyn Iterator<Item = &[i64; 2]>> =
            if pass == 0 { Box::new(sorted.iter()) } else { Box::new(sorted.iter().rev()) };
        for &p in iter {
            while hull.len() >= start + 2 && cross(hull[hull.len() - 2], hull[hull.len() - 1], p) <= 0 {
                hull.pop();
            }
            hull.push(p);
        }
        // The last point of each chain is the first of the other.
        hull.pop();
    }
    hull
}

/// Fixed-point fraction bits of OpenCV's polygon filling (`XY_SHIFT`).
const XY_SHIFT: u32 = 16;
const XY_ONE: i64 = 1 << XY_SHIFT;

/// Sets the pixels of a `w × h` plane inside the convex polygon `v` (integer pixel centres) to 1,
/// as `cv2.fillConvexPoly(plane, v, 1.0)` does with its defaults (8-connected, no sub-pixel
/// shift): every edge drawn as a Bresenham line, and each scanline between the two edges that
/// bound it, each edge's x stepped in 16.16 fixed point and rounded.
fn fill_convex_poly(plane: &mut [f32], w: usize, h: usize, v: &[[i64; 2]]) {
    let n = v.len();
    if n == 0 || w == 0 || h == 0 {
        return;
    }
    let mut previous = v[n - 1];
    for &p in v {
        draw_line(plane, w, h, previous, p);
        previous = p;
    }
    let (xmin, xmax) = v.iter().fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p[0]), b.max(p[0])));
    let (ymin, ymax) = v.iter().fold((i64::MAX, i64::MIN), |(a, b), p| (a.min(p[1]), b.max(p[1])));
    if n < 3 || xmax < 0 || ymax < 0 || xmin >= w as i64 || ymin >= h as i64 {
        return;
    }
    let top = v.iter().position(|p| p[1] == ymin).unwrap_or(0);
    let ymax = ymax.min(h as i64 - 1);

    #[derive(Clone, Copy)]
    struct Edge {
        idx: usize,
        di: usize,
        x: i64,
        dx: i64,
        ye: i64,
    }
    // One edge walks the polygon forwards from the top vertex, the other backwards.
    let mut edges = [
        Edge { idx: top, di: 1, x: -XY_ONE, dx: 0, ye: ymin },
        Edge { idx: top, di: n - 1, x: -XY_ONE, dx: 0, ye: ymin },
    ];
    let mut remaining = n as i64;
    let mut y = ymin;
    loop {
        for edge in edges.iter_mut() {
            if y < edge.ye {
                continue;
            }
            let mut idx0 = edge.idx;
            let mut idx = (idx0 + edge.di) % n;
            loop {
                let more = remaining > 0;
                remaining -= 1;
                if !more {
                    break;
                }
                let ty = v[idx][1];
                if ty > y {
                    let (xs, xe) = (v[idx0][0] << XY_SHIFT, v[idx][0] << XY_SHIFT);
                    edge.ye = ty;
                    edge.dx = ((xe - xs) * 2 + (ty - y)) / (2 * (ty - y));
                    edge.x = xs;
                    edge.idx = idx;
                    break;
                }
                idx0 = idx;
                idx = (idx + edge.di) % n;
            }
        }
        if remaining < 0 {
            break;
        }
        // Rows above the plane draw nothing: go straight to the first row that draws or starts
        // an edge, moving both edges' x as that many single steps would (the same integers).
        // A vertex far above the crop would otherwise cost one step per row (2^31 of them for a
        // landmark at i32::MIN, seconds per face).
        let next = edges[0].ye.min(edges[1].ye).min(0);
        if next > y + 1 {
            for edge in edges.iter_mut() {
                edge.x += edge.dx * (next - y);
            }
            y = next;
            continue;
        }
        if y >= 0 {
            let (left, right) = if edges[0].x > edges[1].x { (1, 0) } else { (0, 1) };
            let x1 = (edges[left].x + XY_ONE / 2) >> XY_SHIFT;
            let x2 = (edges[right].x + XY_ONE / 2) >> XY_SHIFT;
            if x2 >= 0 && x1 < w as i64 {
                let (x1, x2) = (x1.max(0) as usize, x2.min(w as i64 - 1) as usize);
                let row = y as usize * w;
                if x1 <= x2 {
                    plane[row + x1..=row + x2].fill(1.0);
                }
            }
        }
        edges[0].x += edges[0].dx;
        edges[1].x += edges[1].dx;
        y += 1;
        if y > ymax {
            break;
        }
    }
}

/// Sets the pixels of the 8-connected Bresenham line from `a` to `b` to 1, as OpenCV's
/// `LineIterator` (drawing left to right) visits them after clipping the line to the plane.
fn draw_line(plane: &mut [f32], w: usize, h: usize, a: [i64; 2], b: [i64; 2]) {
    let (mut a, mut b) = (a, b);
    let inside = |p: [i64; 2]| (0..w as i64).contains(&p[0]) && (0..h as i64).contains(&p[1]);
    let clipped = inside(a) && inside(b) || clip_line(w as i64, h as i64, &mut a, &mut b);
    if !clipped {
        return;
    }
    if b[0] < a[0] {
        std::mem::swap(&mut a, &mut b);
    }
    let (dx, mut dy) = (b[0] - a[0], b[1] - a[1]);
    let sy = if dy < 0 { -1 } else { 1 };
    dy = dy.abs();
    let vertical = dy > dx;
    let (major, minor) = if vertical { (dy, dx) } else { (dx, dy) };
    let mut err = major - 2 * minor;
    let [mut x, mut y] = a;
    for _ in 0..=major {
        if inside([x, y]) {
            plane[y as usize * w + x as usize] = 1.0;
        }
        let step_minor = err < 0;
        err += -2 * minor + if step_minor { 2 * major } else { 0 };
        if vertical {
            y += sy;
            x += i64::from(step_minor);
        } else {
            x += 1;
            y += if step_minor { sy } else { 0 };
        }
    }
}

/// OpenCV's `clipLine` (Cohen–Sutherland with its integer rounding): moves the ends of the line
/// `a`–`b` onto the `w × h` rectangle; false when the line misses it.
fn clip_line(w: i64, h: i64, a: &mut [i64; 2], b: &mut [i64; 2]) -> bool {
    let (right, bottom) = (w - 1, h - 1);
    if w <= 0 || h <= 0 {
        return false;
    }
    let code = |p: &[i64; 2]| {
        i32::from(p[0] < 0) + i32::from(p[0] > right) * 2 + i32::from(p[1] < 0) * 4 + i32::from(p[1] > bottom) * 8
    };
    let (mut c1, mut c2) = (code(a), code(b));
    if (c1 & c2) == 0 && (c1 | c2) != 0 {
        if c1 & 12 != 0 {
            let edge = if c1 < 8 { 0 } else { bottom };
            a[0] += ((edge - a[1]) as f64 * (b[0] - a[0]) as f64 / (b[1] - a[1]) as f64) as i64;
            a[1] = edge;
            c1 = i32::from(a[0] < 0) + i32::from(a[0] > right) * 2;
        }
        if c2 & 12 != 0 {
            let edge = if c2 < 8 { 0 } else { bottom };
            b[0] += ((edge - b[1]) as f64 * (b[0] - a[0]) as f64 / (b[1] - a[1]) as f64) as i64;
            b[1] = edge;
            c2 = i32::from(b[0] < 0) + i32::from(b[0] > right) * 2;
        }
        if (c1 & c2) == 0 && (c1 | c2) != 0 {
            if c1 != 0 {
                let edge = if c1 == 1 { 0 } else { right };
                a[1] += ((edge - a[0]) as f64 * (b[1] - a[1]) as f64 / (b[0] - a[0]) as f64) as i64;
                a[0] = edge;
                c1 = 0;
            }
            if c2 != 0 {
                let edge = if c2 == 1 { 0 } else { right };
                b[1] += ((edge - b[0]) as f64 * (b[1] - a[1]) as f64 / (b[0] - a[0]) as f64) as i64;
                b[0] = edge;
                c2 = 0;
            }
        }
    }
    (c1 | c2) == 0
}

/// InsightFace's 106-point layout (2d106det) mapped onto the 68-point (iBUG 300-W) one that
/// FaceFusion's areas index, for faces without `landmark-68-model`. Each entry lists the
/// 106-point indices whose mean stands for that 68-point landmark.
///
/// The 106-point model marks the jaw with 33 points where the 68-point one has 17: every other
/// contour point is taken (the 106-point contour is not in index order, see the first rows).
/// Its eyelids have three points each where the 68-point layout has two, so those are the means
/// of neighbours. Eyebrows (upper edge), the nose's lower arc and both lip contours have the
/// same number of points in both layouts and map one to one.
const FROM_106: [&[usize]; 68] = [
    // Jaw 0..16, image-left temple → chin → image-right temple: 106-point contour in that order
    // is 1, 9..16, 2..8, 0, 24..18, 32..25, 17; every other one.
    &[1],
    &[10],
    &[12],
    &[14],
    &[16],
    &[3],
    &[5],
    &[7],
    &[0],
    &[23],
    &[21],
    &[19],
    &[32],
    &[30],
    &[28],
    &[26],
    &[17],
    // Eyebrows 17..21 (image-left, outer → inner) and 22..26 (image-right, inner → outer), upper
    // edge.
    &[43],
    &[48],
    &[49],
    &[51],
    &[50],
    &[102],
    &[103],
    &[104],
    &[105],
    &[101],
    // Nose bridge 27..30 (top → tip), lower arc 31..35 (image-left → right).
    &[72],
    &[73],
    &[74],
    &[86],
    &[78],
    &[79],
    &[80],
    &[85],
    &[84],
    // Image-left eye 36..41: outer corner, upper lid ×2, inner corner, lower lid ×2.
    &[35],
    &[41, 40],
    &[40, 42],
    &[39],
    &[37, 33],
    &[33, 36],
    // Image-right eye 42..47: inner corner, upper lid ×2, outer corner, lower lid ×2.
    &[89],
    &[95, 94],
    &[94, 96],
    &[93],
    &[91, 87],
    &[87, 90],
    // Outer lip 48..59 from the image-left corner clockwise on screen, inner lip 60..67.
    &[52],
    &[64],
    &[63],
    &[71],
    &[67],
    &[68],
    &[61],
    &[58],
    &[59],
    &[53],
    &[56],
    &[55],
    &[65],
    &[66],
    &[62],
    &[70],
    &[69],
    &[57],
    &[60],
    &[54],
];

/// The 68 landmarks FaceFusion's areas use, from InsightFace's 106 ([`FROM_106`]); `None` unless
/// `points` holds 106 finite points. A fallback for faces without `landmark-68-model`: the
/// 106-point model looks at the face where `fan_68_5` only places an average face by the five
/// points, and was trained on another markup, so the mask follows the face's own jaw and lips
/// (models/README.md, fan_68_5, says what that moves).
pub fn landmarks_68_from_106(points: &[[f32; 2]]) -> Option<[[f32; 2]; 68]> {
    if points.len() != 106 || points.iter().flatten().any(|v| !v.is_finite()) {
        return None;
    }
    Some(FROM_106.map(|sources| {
        let n = sources.len() as f32;
        let (x, y) = sources.iter().fold((0.0, 0.0), |(x, y), &i| (x + points[i][0], y + points[i][1]));
        [x / n, y / n]
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn region_names_parse_and_list_valid_names() {
        let r = Regions::parse("skin, nose,mouth").unwrap();
        assert!(r.contains_class(1) && r.contains_class(10) && r.contains_class(11));
        assert!(!r.contains_class(0) && !r.contains_class(2) && !r.contains_class(17));
        assert_eq!(r.to_string(), "skin,nose,mouth");
        assert_eq!(Regions::all().to_string(), Regions::parse(&Regions::all().to_string()).unwrap().to_string());
        assert_eq!((0..19).filter(|&c| Regions::all().contains_class(c)).count(), 10);
        let err = Regions::parse("skin,hair").unwrap_err();
        assert!(err.contains("'hair'") && err.contains("upper-lip") && err.contains("glasses"), "{err}");
        assert!(Regions::parse(" , ").unwrap_err().contains("no face region"));
    }

    #[test]
    fn area_names_parse_and_list_points() {
        let a = Areas::parse("mouth,upper-face").unwrap();
        let points: Vec<usize> = a.points().collect();
        assert_eq!(points.len(), 21 + 20);
        assert_eq!(&points[..3], &[0, 1, 2]);
        assert_eq!(a.to_string(), "upper-face,mouth");
        assert_eq!(Areas::all().points().count(), 21 + 16 + 20);
        let err = Areas::parse("forehead").unwrap_err();
        assert!(err.contains("'forehead'") && err.contains("lower-face"), "{err}");
        assert!(Areas::parse("").is_err());
    }

    /// The plane as rows of `#` (set) and `.` (0).
    fn picture(plane: &[f32], w: usize) -> Vec<String> {
        plane.chunks_exact(w).map(|row| row.iter().map(|&v| if v > 0.0 { '#' } else { '.' }).collect()).collect()
    }

    #[test]
    fn convex_fill_matches_opencv() {
        // What cv2.fillConvexPoly(np.zeros((h, w), np.float32), cv2.convexHull(points), 1.0) gives
        // (OpenCV 4.13), for a triangle and for a quadrilateral reaching out of the plane.
        let mut plane = vec![0.0f32; 11 * 10];
        fill_convex_poly(&mut plane, 11, 10, &convex_hull(&[[1, 1], [9, 3], [4, 8]]));
        let want = [
            "...........",
            ".###.......",
            ".#######...",
            "..########.",
            "..#######..",
            "...#####...",
            "...####....",
            "....##.....",
            "....#......",
            "...........",
        ];
        assert_eq!(picture(&plane, 11), want);
        let mut plane = vec![0.0f32; 9 * 8];
        fill_convex_poly(&mut plane, 9, 8, &convex_hull(&[[-3, 2], [6, -2], [8, 6], [2, 9]]));
        let want =
            ["..######.", "########.", "########.", "########.", "#########", "#########", "#########", ".#######."];
        assert_eq!(picture(&plane, 9), want);
    }

    #[test]
    fn convex_fill_of_a_vertex_far_above_the_plane_matches_opencv() {
        // The same as above (OpenCV 4.13) for polygons with a vertex thousands of rows above the
        // plane: the rows above it are skipped in one step, and the edges must land where row
        // by row stepping puts them.
        let mut plane = vec![0.0f32; 11 * 10];
        fill_convex_poly(&mut plane, 11, 10, &convex_hull(&[[-700, -20000], [9, 3], [4, 8]]));
        let want = [
            "...#######.",
            "...#######.",
            "...#######.",
            "...#######.",
            "...######..",
            "....####...",
            "....###....",
            "....##.....",
            "....#......",
            "...........",
        ];
        assert_eq!(picture(&plane, 11), want);
        let mut plane = vec![0.0f32; 11 * 10];
        fill_convex_poly(&mut plane, 11, 10, &convex_hull(&[[30000, -45000], [1, 6], [8, 9], [2, 2]]));
        let want = [
            "....#######",
            "...########",
            "..#########",
            "..#########",
            ".##########",
            ".##########",
            ".##########",
            "...########",
            ".....######",
            ".......##..",
        ];
        assert_eq!(picture(&plane, 11), want);
    }

    #[test]
    fn hull_of_points_at_the_i32_limits() {
        // Landmarks truncated to i32 (a broken model's output, an application's face meta) reach
        // ±2^31: the cross products take 66 bits.
        let (lo, hi) = (i64::from(i32::MIN), i64::from(i32::MAX));
        let hull = convex_hull(&[[lo, lo], [hi, lo], [0, 0], [hi, hi], [lo, hi], [5, -7], [hi, 0]]);
        let mut sorted = hull.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [[lo, lo], [lo, hi], [hi, lo], [hi, hi]]);
    }

    #[test]
    fn area_mask_of_landmarks_far_outside_the_crop_is_drawn_clipped() {
        // Two landmarks at opposite ends of f32's range: their hull covers the whole crop after
        // truncation to i32, drawn without stepping through the 2^31 rows above it.
        let mut lm = [[0.0f32; 2]; 68];
        for (i, p) in lm.iter_mut().enumerate() {
            *p = [20.0 + (i % 8) as f32 * 3.0, 20.0 + (i / 8) as f32 * 3.0];
        }
        lm[0] = [-1e12, -1e12];
        lm[16] = [1e12, 1e12];
        lm[8] = [1e12, -1e12];
        lm[26] = [-1e12, 1e12];
        let mask = area_mask(64, &lm, &Areas::all());
        assert_eq!(mask.len(), 64 * 64);
        assert!(mask.iter().all(|v| (v - 1.0).abs() < 1e-3), "the hull covers the crop");
    }

    #[test]
    fn hull_drops_inner_repeated_and_collinear_points() {
        let hull = convex_hull(&[[0, 0], [5, 0], [10, 0], [10, 10], [0, 10], [5, 5], [0, 5], [10, 0]]);
        let mut sorted = hull.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, [[0, 0], [0, 10], [10, 0], [10, 10]]);
        assert_eq!(convex_hull(&[[3, 3], [3, 3]]), [[3, 3]]);
    }

    #[test]
    fn soften_fades_an_edge_to_zero_and_keeps_the_inside() {
        // Left half 0, right half 1: the blurred step is Σ of the kernel over the ones; the
        // softened value is 2·(that − ½) where it exceeds ½, else 0.
        let side = 100;
        let mut mask: Vec<f32> = (0..side * side).map(|i| if i % side >= 50 { 1.0 } else { 0.0 }).collect();
        soften(&mut mask, side);
        let k = crate::vision::filter::gaussian_kernel(0, SOFTEN_SIGMA);
        assert_eq!(k.len(), 41);
        for x in [45usize, 49, 50, 51, 55, 60, 69, 70, 80] {
            let step: f32 = (0..41).filter(|&j| x + j >= 20 + 50).map(|j| k[j]).sum();
            let want = ((step.clamp(0.5, 1.0) - 0.5) * 2.0).clamp(0.0, 1.0);
            assert!((mask[40 * side + x] - want).abs() < 1e-5, "x {x}: {} vs {want}", mask[40 * side + x]);
        }
        assert_eq!(mask[40 * side + 49], 0.0);
        assert!(mask[40 * side + 50] > 0.0 && mask[40 * side + 50] < 0.2);
        assert!((mask[40 * side + 80] - 1.0).abs() < 1e-6);
        // Out-of-range values are clipped first.
        let mut mask = vec![3.0f32; 16 * 16];
        soften(&mut mask, 16);
        assert!(mask.iter().all(|&v| (v - 1.0).abs() < 1e-6));
    }

    #[test]
    fn bounded_softening_equals_softening_the_whole_crop() {
        // Hulls inside, at and over the crop's edges.
        for (side, hull) in [
            (128usize, vec![[40i64, 30], [90, 35], [80, 100], [45, 95]]),
            (128, vec![[2, 3], [60, 1], [30, 50]]),
            (96, vec![[-20, 40], [120, 10], [70, 130]]),
            (64, vec![[30, 30], [34, 31], [31, 35]]),
        ] {
            let hull = convex_hull(&hull);
            let mut whole = vec![0.0f32; side * side];
            fill_convex_poly(&mut whole, side, side, &hull);
            let mut bounded = whole.clone();
            soften(&mut whole, side);
            soften_bounded(&mut bounded, side, &hull, &mut BlurScratch::default());
            let worst = whole.iter().zip(&bounded).map(|(a, b)| (a - b).abs()).fold(0.0, f32::max);
            assert!(worst <= 1e-6, "{side} {hull:?}: {worst}");
            // The smallest shape is narrower than the blur: softening erases it.
            assert_eq!(whole.iter().any(|&v| v > 0.5), side > 64, "{side} {hull:?}");
        }
    }

    #[test]
    fn area_mask_covers_the_hull_of_the_chosen_areas() {
        // Mouth points on a 60 × 40 ellipse around (64, 90) in a 128 crop, the rest far away.
        let mut lm = [[5.0f32, 5.0]; 68];
        for (k, p) in lm[48..68].iter_mut().enumerate() {
            let t = k as f32 * std::f32::consts::TAU / 20.0;
            *p = [64.0 + 30.0 * t.cos(), 90.0 + 20.0 * t.sin()];
        }
        let mask = area_mask(128, &lm, &Areas::parse("mouth").unwrap());
        assert!(mask[90 * 128 + 64] > 0.999);
        assert_eq!(mask[90 * 128 + 30], 0.0);
        assert_eq!(mask[60 * 128 + 64], 0.0);
        assert_eq!(mask[5 * 128 + 5], 0.0);
        // With every area the hull reaches out to the other points at (5, 5) too.
        let all = area_mask(128, &lm, &Areas::all());
        assert!(all[56 * 128 + 40] > 0.99 && mask[56 * 128 + 40] == 0.0);
    }

    #[test]
    fn the_106_point_contour_becomes_the_jaw_in_order() {
        // InsightFace's 106-point contour from the image-left temple round the chin to the right
        // temple, as its markup numbers it, laid on a U; the other points at the centre.
        let contour = [1, 9, 10, 11, 12, 13, 14, 15, 16, 2, 3, 4, 5, 6, 7, 8, 0, 24, 23, 22, 21, 20, 19, 18, 32, 31];
        let contour: Vec<usize> = contour.into_iter().chain([30, 29, 28, 27, 26, 25, 17]).collect();
        let mut points = vec![[100.0f32, 100.0]; 106];
        for (k, &i) in contour.iter().enumerate() {
            let t = std::f32::consts::PI * (1.0 - k as f32 / 32.0);
            points[i] = [100.0 + 80.0 * t.cos(), 60.0 + 90.0 * t.sin()];
        }
        let lm = landmarks_68_from_106(&points).unwrap();
        for j in 0..16 {
            assert!(lm[j + 1][0] > lm[j][0] + 1.0, "jaw {j} → {}: {:?} {:?}", j + 1, lm[j], lm[j + 1]);
        }
        assert_eq!(lm[8], [100.0, 150.0]);
        assert!(landmarks_68_from_106(&points[..105]).is_none());
        points[7][0] = f32::NAN;
        assert!(landmarks_68_from_106(&points).is_none());
    }

    #[test]
    fn the_area_cache_redraws_only_when_the_hull_changes() {
        let mut lm = [[0.0f32; 2]; 68];
        for (k, p) in lm.iter_mut().enumerate() {
            let t = k as f32 * std::f32::consts::TAU / 68.0;
            *p = [64.0 + 40.0 * t.cos(), 64.0 + 45.0 * t.sin()];
        }
        let areas = Areas::all();
        let mut cache = AreaMaskCache::default();
        assert_eq!(cache.mask(128, &lm, &areas), area_mask(128, &lm, &areas).as_slice());
        // Moved by less than the truncation step: the same integer hull, the same mask.
        let nudged = lm.map(|[x, y]| [x.trunc() + 0.9 * x.fract(), y]);
        assert_eq!(cache.mask(128, &nudged, &areas), area_mask(128, &lm, &areas).as_slice());
        assert_eq!(cache.reused(), 1);
        // A whole pixel, another crop size or other areas: drawn again.
        let moved = lm.map(|[x, y]| [x + 1.0, y]);
        assert_eq!(cache.mask(128, &moved, &areas), area_mask(128, &moved, &areas).as_slice());
        assert_eq!(cache.mask(256, &moved, &areas), area_mask(256, &moved, &areas).as_slice());
        let mouth = Areas::parse("mouth").unwrap();
        assert_eq!(cache.mask(256, &moved, &mouth), area_mask(256, &moved, &mouth).as_slice());
        // Far away and smaller: nothing of the mask drawn before is left.
        let far = lm.map(|[x, y]| [x * 0.3 + 150.0, y * 0.3 + 160.0]);
        assert_eq!(cache.mask(256, &far, &mouth), area_mask(256, &far, &mouth).as_slice());
        assert_eq!(cache.reused(), 1);
    }
}
