// SPDX-License-Identifier: MPL-2.0
//! Separable filters on single-channel `f32` planes (row-major, `width × height`) and the
//! unsharp mask behind the `sharpness` property.
//!
//! The Gaussian blur and the box erosion reproduce OpenCV's `GaussianBlur` (float images, default
//! border `BORDER_REFLECT_101`) and `erode` with a `k×k` box of ones (default border: pixels outside
//! the image are ignored), because InsightFace's paste-back mask is built from exactly those calls.

use super::image::RgbImage;

/// Defines `$name` and `$portable` from one body: `$portable` as the portable build compiles it,
/// `$name` running the same body compiled for AVX2 when the CPU has it, else `$portable`. The
/// blur's loops are plain multiplies and adds, kept apart (Rust never fuses them), so eight lanes
/// at a time give the bits four give: only the speed changes.
macro_rules! with_avx2 {
    ($(#[$doc:meta])* fn $name:ident / $portable:ident ($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$doc])*
        fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx2")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    $portable($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx2") {
                    // SAFETY: the CPU has AVX2, checked just above.
                    return unsafe { avx2($($arg),*) };
                }
            }
            $portable($($arg),*)
        }

        #[inline(always)]
        fn $portable($($arg: $ty),*) $(-> $ret)? $body
    };
}

/// OpenCV's `borderInterpolate` for `BORDER_REFLECT_101` (`-1 → 1`, `len → len − 2`), including its
/// repeated bouncing when the kernel reaches further than the line is long.
#[inline]
pub fn reflect101(mut p: isize, len: usize) -> usize {
    let n = len as isize;
    if n <= 1 {
        return 0;
    }
    while p < 0 || p >= n {
        p = if p < 0 { -p } else { 2 * (n - 1) - p };
    }
    p as usize
}

/// OpenCV's `getGaussianKernel(ksize, sigma, CV_32F)`.
///
/// With `sigma <= 0` OpenCV uses fixed binomial-like tables for `ksize` 1, 3, 5, 7 and 9 and
/// otherwise `sigma = 0.3·((ksize − 1)·0.5 − 1) + 0.8` (computed as `0.15·ksize + 0.35` with a
/// fused multiply-add, as OpenCV does); the weights are computed in `f64`, normalised, then rounded
/// to `f32`. A `ksize` of 0 is derived from `sigma` with OpenCV's rule for float images
/// (`round(8σ + 1) | 1`); if both are 0 the kernel is the identity.
pub fn gaussian_kernel(ksize: usize, sigma: f64) -> Vec<f32> {
    let mut k = Vec::new();
    gaussian_kernel_into(ksize, sigma, &mut k);
    k
}

/// [`gaussian_kernel`] into a reused vector.
pub fn gaussian_kernel_into(ksize: usize, sigma: f64, out: &mut Vec<f32>) {
    out.clear();
    let n = if ksize == 0 {
        if sigma > 0.0 { ((sigma * 8.0 + 1.0).round_ties_even() as usize) | 1 } else { 1 }
    } else {
        ksize
    };
    if sigma <= 0.0 {
        let table: Option<&[f64]> = match n {
            1 => Some(&[1.0]),
            3 => Some(&[0.25, 0.5, 0.25]),
            5 => Some(&[0.0625, 0.25, 0.375, 0.25, 0.0625]),
            7 => Some(&[0.03125, 0.109375, 0.21875, 0.28125, 0.21875, 0.109375, 0.03125]),
            9 => Some(&[4.0, 13.0, 30.0, 51.0, 60.0, 51.0, 30.0, 13.0, 4.0].map(|v| v / 256.0)),
            _ => None,
        };
        if let Some(t) = table {
            out.extend(t.iter().map(|&v| v as f32));
            return;
        }
    }
    let sigma = if sigma > 0.0 { sigma } else { (n as f64).mul_add(0.15, 0.35) };
    let scale = -0.125 / (sigma * sigma);
    // Same evaluation order as OpenCV: x runs over twice the offset from the centre, hence 0.125.
    let half = (n - 1) / 2;
    let tap = |i: usize| {
        let x = 2 * i as i64 + 1 - n as i64;
        ((x * x) as f64 * scale).exp()
    };
    let mut sum = (0..half).map(tap).sum::<f64>() * 2.0 + 1.0;
    if n % 2 == 0 {
        sum += 1.0;
    }
    let mul = 1.0 / sum;
    out.resize(n, 0.0);
    for i in 0..half {
        let v = (tap(i) * mul) as f32;
        out[i] = v;
        out[n - 1 - i] = v;
    }
    out[half] = mul as f32;
    if n % 2 == 0 {
        out[half + 1] = mul as f32;
    }
}

/// Reusable state of [`gaussian_blur`]: the kernel of the last call (rebuilt only when `ksize` or
/// `sigma` change) and the intermediate plane of the separable passes.
#[derive(Debug, Default)]
pub struct BlurScratch {
    kernel: Vec<f32>,
    key: Option<(usize, u64)>,
    tmp: Vec<f32>,
    line: Vec<f32>,
    /// [`gaussian_blur_runs`]'s view of each row.
    rows: Vec<RowShape>,
    /// [`gaussian_blur_runs`]'s sums of consecutive taps (see [`tap_run_sums`]), for `key`.
    run_sums: Vec<f32>,
    run_sums_key: Option<(usize, u64)>,
}

/// `sums[first · n + last]` = `kernel[first] + … + kernel[last]`, added in that order from 0: what a
/// window of taps gives where it reads ones from tap `first` to tap `last` and zeros elsewhere (a
/// product with a zero adds +0, which changes no sum), for `first ≤ last` of the `n` taps.
fn tap_run_sums(kernel: &[f32], sums: &mut Vec<f32>) {
    let n = kernel.len();
    sums.clear();
    sums.resize(n * n, 0.0);
    for first in 0..n {
        let mut sum = 0.0f32;
        for last in first..n {
            sum += kernel[last] * 1.0;
            sums[first * n + last] = sum;
        }
    }
}

impl BlurScratch {
    fn prepare(&mut self, ksize: usize, sigma: f64) {
        let key = (ksize, sigma.to_bits());
        if self.key != Some(key) {
            gaussian_kernel_into(ksize, sigma, &mut self.kernel);
            self.key = Some(key);
        }
    }
}

/// In-place Gaussian blur of a `w × h` plane, OpenCV's `GaussianBlur(buf, (ksize, ksize), sigma)`
/// with the default `BORDER_REFLECT_101`. An even `ksize` is rounded up to the next odd size
/// (OpenCV rejects it; the masks here always use `2k+1`).
///
/// Both passes are written as "add `k[j]` times a shifted line" loops over contiguous memory so the
/// compiler vectorises them; each output value still sums its taps in kernel order, so the result of
/// a pixel does not depend on how large the buffer around it is (the paste-back relies on this to
/// give the same bits over a face region as over the whole frame).
pub fn gaussian_blur(buf: &mut [f32], w: usize, h: usize, ksize: usize, sigma: f64, scratch: &mut BlurScratch) {
    if w == 0 || h == 0 || buf.len() < w * h {
        return;
    }
    let ksize = if ksize == 0 { 0 } else { ksize | 1 };
    scratch.prepare(ksize, sigma);
    let BlurScratch { kernel, tmp, line, .. } = scratch;
    let n = kernel.len();
    if n <= 1 {
        return;
    }
    let r = n / 2;
    let buf = &mut buf[..w * h];

    // Horizontal pass: buf → tmp, through a reflect-padded copy of each row.
    tmp.clear();
    tmp.resize(w * h, 0.0);
    for y in 0..h {
        pad_reflect101(&buf[y * w..(y + 1) * w], r, line);
        sum_row_taps(&mut tmp[y * w..(y + 1) * w], line, kernel, 0..w);
    }
    // Vertical pass: tmp → buf, one output row at a time.
    for y in 0..h {
        sum_column_taps(&mut buf[y * w..(y + 1) * w], tmp, w, h, y, kernel, 0..w);
    }
}

/// OpenCV's 1-D Gaussian blur of `values` in place (one row of [`gaussian_blur`]'s horizontal
/// pass: `ksize` and `sigma` as there, reflect-101 at both ends).
pub fn gaussian_blur_line(values: &mut [f32], ksize: usize, sigma: f64, scratch: &mut BlurScratch) {
    let ksize = if ksize == 0 { 0 } else { ksize | 1 };
    scratch.prepare(ksize, sigma);
    let BlurScratch { kernel, line, .. } = scratch;
    if kernel.len() <= 1 || values.is_empty() {
        return;
    }
    pad_reflect101(values, kernel.len() / 2, line);
    let w = values.len();
    sum_row_taps(values, line, kernel, 0..w);
}

/// `line` becomes `row` with `r` values on either side as `BORDER_REFLECT_101` gives them.
fn pad_reflect101(row: &[f32], r: usize, line: &mut Vec<f32>) {
    let w = row.len();
    line.clear();
    line.extend((0..r).map(|i| row[reflect101(i as isize - r as isize, w)]));
    line.extend_from_slice(row);
    line.extend((0..r).map(|i| row[reflect101((w + i) as isize, w)]));
}

/// `out[i] = Σ_j kernel[j] · source(j)[i]` for every `i` of `out`, the taps in kernel order from 0.
/// Four taps are added per pass over `out`, so that each value is loaded and stored once per four
/// taps rather than once per tap (which bounded the blur by memory traffic), while the sources read
/// at once stay few enough for the prefetcher to follow; each value still adds the same products
/// in the same order.
#[inline(always)]
fn sum_taps<'a>(out: &mut [f32], kernel: &[f32], source: impl Fn(usize) -> &'a [f32]) {
    let n = out.len();
    out.fill(0.0);
    let mut groups = kernel.chunks_exact(4);
    let mut j = 0;
    for k in &mut groups {
        let (s0, s1, s2, s3) = (&source(j)[..n], &source(j + 1)[..n], &source(j + 2)[..n], &source(j + 3)[..n]);
        for ((((o, &a), &b), &c), &d) in out.iter_mut().zip(s0).zip(s1).zip(s2).zip(s3) {
            *o = *o + k[0] * a + k[1] * b + k[2] * c + k[3] * d;
        }
        j += 4;
    }
    for &kj in groups.remainder() {
        for (o, &s) in out.iter_mut().zip(&source(j)[..n]) {
            *o += kj * s;
        }
        j += 1;
    }
}

with_avx2! {
    /// `out[x] = Σ_j kernel[j] · line[x + j]` for `x` in `span`, each sum taken in kernel order
    /// from 0 (`line` is the row padded by [`pad_reflect101`]); see [`sum_taps`]. On x86-64 with
    /// AVX2 eight values at a time (see [`with_avx2`]), with the same bits.
    fn sum_row_taps / sum_row_taps_portable(out: &mut [f32], line: &[f32], kernel: &[f32], span: std::ops::Range<usize>) {
        let start = span.start;
        let len = span.len();
        sum_taps(&mut out[span], kernel, |j| &line[start + j..start + j + len]);
    }
}

with_avx2! {
    /// Output row `y` of the vertical pass over the `w × h` plane `tmp`, for the columns in
    /// `span`: the taps in kernel order from 0, rows reflected at the plane's top and bottom
    /// (see [`sum_taps`]; AVX2 as [`sum_row_taps`]).
    fn sum_column_taps / sum_column_taps_portable(
        out: &mut [f32],
        tmp: &[f32],
        w: usize,
        h: usize,
        y: usize,
        kernel: &[f32],
        span: std::ops::Range<usize>,
    ) {
        let r = kernel.len() / 2;
        let (start, end) = (span.start, span.end);
        sum_taps(&mut out[span], kernel, |j| {
            let sy = reflect101(y as isize + j as isize - r as isize, h);
            &tmp[sy * w + start..sy * w + end]
        });
    }
}

/// One row of a plane as [`gaussian_blur_runs`] sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum RowShape {
    /// All zeros.
    Zero,
    /// Zeros, then ones from the first index to the second (inclusive), then zeros.
    Run(usize, usize),
    /// Anything else.
    Other,
}

/// The bits of 1.0f32.
const ONE_BITS: u32 = 0x3f80_0000;

/// Values [`row_shape`] compares at a time.
const SCAN_BLOCK: usize = 32;

with_avx2! {
    /// What `row` is as a [`RowShape`]. Bits are compared, so that the scan runs [`SCAN_BLOCK`]
    /// values at a time: a −0.0 counts as not zero (and its row as `Other`, summed in full, with
    /// the same result).
    fn row_shape / row_shape_portable(row: &[f32]) -> RowShape {
        let differs = |values: &[f32], bits: u32| values.iter().fold(0u32, |any, v| any | (v.to_bits() ^ bits)) != 0;
        let blocks = row.len().div_ceil(SCAN_BLOCK);
        let block = |i: usize| &row[i * SCAN_BLOCK..((i + 1) * SCAN_BLOCK).min(row.len())];
        let Some(first_block) = (0..blocks).find(|&i| differs(block(i), 0)) else { return RowShape::Zero };
        let last_block = (first_block..blocks).rev().find(|&i| differs(block(i), 0)).unwrap_or(first_block);
        let first = first_block * SCAN_BLOCK + block(first_block).iter().position(|v| v.to_bits() != 0).unwrap_or(0);
        let last = last_block * SCAN_BLOCK + block(last_block).iter().rposition(|v| v.to_bits() != 0).unwrap_or(0);
        if row[first..=last].chunks(SCAN_BLOCK).any(|values| differs(values, ONE_BITS)) {
            RowShape::Other
        } else {
            RowShape::Run(first, last)
        }
    }
}

/// [`gaussian_blur`] with the same bits, faster on a plane of zeros and ones whose rows are single
/// runs of ones (a filled convex shape, as FaceFusion's area mask is): a window of taps that reads
/// only ones sums to the kernel's own sum, and one that reads only zeros to 0, so only the pixels
/// whose window straddles an end of a run are summed tap by tap. Rows of any other shape are
/// summed in full. A run more than the kernel's radius from the plane's edges needs no taps at
/// all in the first pass: the window of a pixel reads ones from one tap to another and zeros
/// elsewhere, and the in-order sums of consecutive taps are kept in a table. With it the area
/// mask of a 1024-px crop takes about 0.8 ms rather than 4.5 (BENCHMARKS.md, "The area mask's
/// blur, run by run").
///
/// The plane's rows start `stride` values apart in `buf` (`stride ≥ w`), so that a window of a
/// larger plane is blurred where it lies.
pub fn gaussian_blur_runs(
    buf: &mut [f32],
    (w, h, stride): (usize, usize, usize),
    ksize: usize,
    sigma: f64,
    scratch: &mut BlurScratch,
) {
    if w == 0 || h == 0 || stride < w || buf.len() < (h - 1) * stride + w {
        return;
    }
    let ksize = if ksize == 0 { 0 } else { ksize | 1 };
    scratch.prepare(ksize, sigma);
    let key = scratch.key;
    let BlurScratch { kernel, tmp, line, rows, run_sums, run_sums_key, .. } = scratch;
    let n = kernel.len();
    if n <= 1 {
        return;
    }
    if *run_sums_key != key {
        tap_run_sums(kernel, run_sums);
        *run_sums_key = key;
    }
    let r = n / 2;
    // What a window of ones gives in each pass, summed in the same order as the taps.
    let ones = kernel.iter().fold(0.0f32, |o, &k| o + k * 1.0);
    let ones_twice = kernel.iter().fold(0.0f32, |o, &k| o + k * ones);
    let (wi, ri) = (w as i64, r as i64);
    // The columns whose window of `2r + 1` taps lies within a run, and those it reaches at all.
    let inside = |a: usize, b: usize| (a as i64 + ri, b as i64 - ri);
    let reached = |a: usize, b: usize| ((a as i64 - ri).max(0), (b as i64 + ri).min(wi - 1));

    let row_at = |y: usize| y * stride..y * stride + w;
    rows.clear();
    rows.extend((0..h).map(|y| row_shape(&buf[row_at(y)])));
    tmp.clear();
    tmp.resize(w * h, 0.0);
    for (y, shape) in rows.iter().enumerate() {
        let out = &mut tmp[y * w..(y + 1) * w];
        let row = &buf[row_at(y)];
        match *shape {
            RowShape::Zero => {}
            RowShape::Other => {
                pad_reflect101(row, r, line);
                sum_row_taps(out, line, kernel, 0..w);
            }
            // A run more than `r` from both ends of the row: its reflections beyond them read
            // zeros, so the window of column `x` reads ones from tap `a + r − x` to tap `b + r − x`
            // (clipped to the kernel) and zeros elsewhere, whose sum is in the table.
            RowShape::Run(a, b) if a > r && b + 1 + r < w => {
                sum_spans(out, reached(a, b), inside(a, b), ones, |out, span| {
                    for x in span {
                        out[x] = run_sums[(a + r).saturating_sub(x) * n + (b + r - x).min(n - 1)];
                    }
                });
            }
            RowShape::Run(a, b) => {
                // Beyond the reach of a run's ends every tap reads a zero, even where the row is
                // reflected at the plane's edge (the reflection lands nearer the edge still).
                pad_reflect101(row, r, line);
                let (lo, hi) = reached(a, b);
                sum_spans(out, (lo, hi), inside(a, b), ones, |out, span| sum_row_taps(out, line, kernel, span));
            }
        }
    }
    for y in 0..h {
        // The rows this output row's taps read, and what they have in common.
        let (mut lo, mut hi) = (i64::MAX, i64::MIN);
        let (mut in_lo, mut in_hi, mut all_runs) = (0i64, wi - 1, true);
        for j in 0..n {
            match rows[reflect101(y as isize + j as isize - r as isize, h)] {
                RowShape::Zero => all_runs = false,
                RowShape::Other => (lo, hi, all_runs) = (0, wi - 1, false),
                RowShape::Run(a, b) => {
                    let ((rl, rh), (il, ih)) = (reached(a, b), inside(a, b));
                    (lo, hi) = (lo.min(rl), hi.max(rh));
                    (in_lo, in_hi) = (in_lo.max(il), in_hi.min(ih));
                }
            }
        }
        let out = &mut buf[row_at(y)];
        out.fill(0.0);
        let inner = if all_runs { (in_lo, in_hi) } else { (1, 0) };
        if lo <= hi {
            sum_spans(out, (lo, hi), inner, ones_twice, |out, span| sum_column_taps(out, tmp, w, h, y, kernel, span));
        }
    }
}

/// Over the columns `reached` (inclusive), sets those `inner` covers (inclusive, may be empty) to
/// `inner_value` and has `sum` compute the rest, span by span.
fn sum_spans(
    out: &mut [f32],
    (lo, hi): (i64, i64),
    (in_lo, in_hi): (i64, i64),
    inner_value: f32,
    mut sum: impl FnMut(&mut [f32], std::ops::Range<usize>),
) {
    let (lo, hi) = (lo as usize, hi as usize + 1);
    if in_lo > in_hi {
        sum(out, lo..hi);
        return;
    }
    let (in_lo, in_hi) = (in_lo as usize, in_hi as usize + 1);
    sum(out, lo..in_lo);
    out[in_lo..in_hi].fill(inner_value);
    sum(out, in_hi..hi);
}

/// In-place erosion with a `k × k` box, like `cv2.erode(buf, np.ones((k, k)))`: the window of pixel
/// `x` spans `[x − k/2, x + (k − 1 − k/2)]` (OpenCV's default anchor) and pixels outside the image
/// are ignored (OpenCV pads erosion with +∞). A box minimum is separable, so rows then columns are
/// eroded with the van Herk/Gil-Werman algorithm: three comparisons per pixel whatever `k` is.
/// `scratch` is grown as needed and reused.
pub fn erode_box(buf: &mut [f32], w: usize, h: usize, k: usize, scratch: &mut Vec<f32>) {
    if k <= 1 || w == 0 || h == 0 || buf.len() < w * h {
        return;
    }
    let buf = &mut buf[..w * h];
    let padded = w.max(h) + k - 1;
    scratch.clear();
    scratch.resize(3 * padded + h, 0.0);
    let (line, rest) = scratch.split_at_mut(padded);
    let (g, rest) = rest.split_at_mut(padded);
    let (hbuf, col) = rest.split_at_mut(padded);
    for row in buf.chunks_exact_mut(w) {
        erode_line(row, k, line, g, hbuf);
    }
    let col = &mut col[..h];
    for x in 0..w {
        for (y, c) in col.iter_mut().enumerate() {
            *c = buf[y * w + x];
        }
        erode_line(col, k, line, g, hbuf);
        for (y, &c) in col.iter().enumerate() {
            buf[y * w + x] = c;
        }
    }
}

/// 1-D van Herk/Gil-Werman running minimum over `[i − k/2, i + k − 1 − k/2]`, in place. The line is
/// padded with +∞ so out-of-range taps never win, then split into blocks of `k`: `g` holds minima
/// from each block start, `h` minima up to each block end, and any window of length `k` is the
/// union of the tail of one block and the head of the next.
fn erode_line(data: &mut [f32], k: usize, line: &mut [f32], g: &mut [f32], h: &mut [f32]) {
    let n = data.len();
    let a = k / 2;
    let len = n + k - 1;
    let (line, g, h) = (&mut line[..len], &mut g[..len], &mut h[..len]);
    line.fill(f32::INFINITY);
    line[a..a + n].copy_from_slice(data);
    for start in (0..len).step_by(k) {
        let end = (start + k).min(len);
        let mut m = f32::INFINITY;
        for i in start..end {
            m = m.min(line[i]);
            g[i] = m;
        }
        m = f32::INFINITY;
        for i in (start..end).rev() {
            m = m.min(line[i]);
            h[i] = m;
        }
    }
    for (i, d) in data.iter_mut().enumerate() {
        *d = h[i].min(g[i + k - 1]);
    }
}

/// Sigma of the unsharp mask's blur. Small on purpose: `sharpness` is meant to restore fine skin
/// texture that the 128-px swapper softens, not to raise contrast at large scale, and a radius-3
/// kernel keeps it cheap enough to run per face per frame.
pub const UNSHARP_SIGMA: f64 = 1.0;
/// Kernel size for [`UNSHARP_SIGMA`]: OpenCV's rule for 8-bit images, `round(6σ + 1) | 1`.
pub const UNSHARP_KSIZE: usize = 7;

/// Unsharp mask for the `sharpness` property (0..5):
/// `out = clip(x + amount·(x − gaussian(x)), 0, 255)`, rounded to nearest, per RGB channel, with
/// the fixed blur [`UNSHARP_SIGMA`] / [`UNSHARP_KSIZE`] and reflect-101 borders. `amount <= 0` (or
/// not finite) leaves the image unchanged. `plane` and `blur` are reused between calls.
pub fn unsharp_mask(region: &mut RgbImage, amount: f32, plane: &mut Vec<f32>, blur: &mut BlurScratch) {
    let (w, h) = (region.width, region.height);
    if !amount.is_finite() || amount <= 0.0 || w == 0 || h == 0 {
        return;
    }
    if region.data.len() < w * h * 3 {
        return;
    }
    plane.clear();
    plane.resize(w * h, 0.0);
    for c in 0..3 {
        for (p, px) in plane.iter_mut().zip(region.data.chunks_exact(3)) {
            *p = px[c] as f32;
        }
        gaussian_blur(plane, w, h, UNSHARP_KSIZE, UNSHARP_SIGMA, blur);
        for (&b, px) in plane.iter().zip(region.data.chunks_exact_mut(3)) {
            let x = px[c] as f32;
            px[c] = (x + amount * (x - b)).round().clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Direct Gaussian with OpenCV's sigma rule, written independently of the code under test.
    fn direct_kernel(n: usize, sigma: f64) -> Vec<f64> {
        let s = if sigma > 0.0 { sigma } else { 0.3 * ((n as f64 - 1.0) * 0.5 - 1.0) + 0.8 };
        let c = (n as f64 - 1.0) / 2.0;
        let v: Vec<f64> = (0..n).map(|i| (-((i as f64 - c).powi(2)) / (2.0 * s * s)).exp()).collect();
        let sum: f64 = v.iter().sum();
        v.iter().map(|x| x / sum).collect()
    }

    fn close(a: &[f32], b: &[f64], tol: f64) {
        assert_eq!(a.len(), b.len());
        for (x, y) in a.iter().zip(b) {
            assert!((*x as f64 - y).abs() <= tol, "{a:?} vs {b:?}");
        }
    }

    #[test]
    fn kernels_match_opencv() {
        // OpenCV's fixed tables for small sizes with sigma 0.
        close(&gaussian_kernel(3, 0.0), &[0.25, 0.5, 0.25], 0.0);
        close(&gaussian_kernel(5, 0.0), &[0.0625, 0.25, 0.375, 0.25, 0.0625], 0.0);
        // Formula sizes: sigma 0 → 0.3·((n−1)/2 − 1) + 0.8 (31 → 5.0), and explicit sigma 12.
        close(&gaussian_kernel(31, 0.0), &direct_kernel(31, 0.0), 1e-7);
        close(&gaussian_kernel(31, 12.0), &direct_kernel(31, 12.0), 1e-7);
        close(&gaussian_kernel(3, 12.0), &direct_kernel(3, 12.0), 1e-7);
        close(&gaussian_kernel(5, 12.0), &direct_kernel(5, 12.0), 1e-7);
        close(&gaussian_kernel(11, 0.0), &direct_kernel(11, 0.0), 1e-7);
        // Hand-checked values: ksize 3, sigma 12 → exp(−1/288) = 0.996534..., sum 2.993068...
        let k = gaussian_kernel(3, 12.0);
        assert!((k[0] - 0.332947).abs() < 2e-6 && (k[1] - 0.334105).abs() < 2e-6, "{k:?}");
        // ksize 31, sigma 0 → sigma 5: centre weight 1/Σexp(−i²/50) for i in −15..=15 ≈ 0.079940.
        assert!((gaussian_kernel(31, 0.0)[15] - 0.079940).abs() < 2e-6);
    }

    /// Naive 2-D convolution with explicit reflect-101 indexing.
    fn naive_blur(src: &[f32], w: usize, h: usize, k: &[f32]) -> Vec<f32> {
        let r = k.len() as isize / 2;
        let refl = |p: isize, n: isize| -> usize {
            let mut p = p;
            if n == 1 {
                return 0;
            }
            loop {
                if p < 0 {
                    p = -p;
                } else if p >= n {
                    p = 2 * n - 2 - p;
                } else {
                    return p as usize;
                }
            }
        };
        let mut out = vec![0.0; w * h];
        for y in 0..h as isize {
            for x in 0..w as isize {
                let mut s = 0.0f64;
                for dy in -r..=r {
                    for dx in -r..=r {
                        let sx = refl(x + dx, w as isize);
                        let sy = refl(y + dy, h as isize);
                        s += k[(dy + r) as usize] as f64 * k[(dx + r) as usize] as f64 * src[sy * w + sx] as f64;
                    }
                }
                out[y as usize * w + x as usize] = s as f32;
            }
        }
        out
    }

    #[test]
    fn blur_constant_delta_and_border() {
        let mut s = BlurScratch::default();
        let mut c = vec![7.5f32; 20 * 13];
        gaussian_blur(&mut c, 20, 13, 11, 0.0, &mut s);
        assert!(c.iter().all(|v| (v - 7.5).abs() < 1e-5));

        // Delta in the middle → outer product of the kernel.
        let (w, h) = (15, 15);
        let mut d = vec![0.0f32; w * h];
        d[7 * w + 7] = 1.0;
        gaussian_blur(&mut d, w, h, 5, 1.3, &mut s);
        let k = gaussian_kernel(5, 1.3);
        for y in 0..h {
            for x in 0..w {
                let e = if (5..10).contains(&x) && (5..10).contains(&y) { k[y - 5] * k[x - 5] } else { 0.0 };
                assert!((d[y * w + x] - e).abs() < 1e-7);
            }
        }

        // Reflect-101 against brute force on tiny images, including a kernel wider than the image.
        for &(w, h, n) in &[(5usize, 4usize, 3usize), (6, 3, 5), (4, 5, 9), (1, 3, 3), (3, 2, 11)] {
            let src: Vec<f32> = (0..w * h).map(|i| ((i * 37) % 11) as f32).collect();
            let mut got = src.clone();
            gaussian_blur(&mut got, w, h, n, 0.9, &mut s);
            let want = naive_blur(&src, w, h, &gaussian_kernel(n, 0.9));
            for (g, e) in got.iter().zip(&want) {
                assert!((g - e).abs() < 1e-4, "{w}x{h} k{n}: {got:?} vs {want:?}");
            }
        }
    }

    #[test]
    #[cfg(target_arch = "x86_64")]
    fn the_avx2_loops_give_the_portable_loops_bits() {
        assert!(
            std::arch::is_x86_feature_detected!("avx2"),
            "this CPU has no AVX2, so the AVX2 copies of the blur's loops cannot be compared here"
        );
        let mut state = 12345u32;
        let mut random = || {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            state as f32 / u32::MAX as f32 * 3.0 - 1.0
        };
        let kernel = gaussian_kernel(41, 5.0);
        let (w, h) = (203usize, 57usize);
        let line: Vec<f32> = (0..w + 40).map(|_| random()).collect();
        let tmp: Vec<f32> = (0..w * h).map(|_| random()).collect();
        for span in [0..w, 3..11, 17..190, 100..101] {
            let (mut portable, mut dispatched) = (vec![0.0f32; w], vec![0.0f32; w]);
            sum_row_taps_portable(&mut portable, &line, &kernel, span.clone());
            sum_row_taps(&mut dispatched, &line, &kernel, span.clone());
            assert!(portable.iter().zip(&dispatched).all(|(a, b)| a.to_bits() == b.to_bits()), "rows {span:?}");
            for y in [0, 5, 30, h - 1] {
                let (mut portable, mut dispatched) = (vec![0.0f32; w], vec![0.0f32; w]);
                sum_column_taps_portable(&mut portable, &tmp, w, h, y, &kernel, span.clone());
                sum_column_taps(&mut dispatched, &tmp, w, h, y, &kernel, span.clone());
                let same = portable.iter().zip(&dispatched).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "columns {span:?} row {y}");
            }
        }
        let mut row = vec![0.0f32; 100];
        for (first, last) in [(0, 99), (40, 40), (31, 33), (33, 95)] {
            row.fill(0.0);
            row[first..=last].fill(1.0);
            assert_eq!(row_shape(&row), row_shape_portable(&row));
            assert_eq!(row_shape(&row), RowShape::Run(first, last));
        }
        row[64] = 0.5;
        assert!(matches!(row_shape(&row), RowShape::Other));
    }

    #[test]
    fn blurring_runs_gives_the_bits_of_the_full_blur() {
        // Filled ellipses inside, touching and cut by the plane's edges, thinner than the kernel,
        // planes smaller than it (reflections that bounce), and rows that are not one run.
        let ellipse = |w: usize, h: usize, (cx, cy, rx, ry): (f32, f32, f32, f32)| -> Vec<f32> {
            (0..w * h)
                .map(|i| {
                    let (x, y) = ((i % w) as f32 - cx, (i / w) as f32 - cy);
                    if (x / rx).powi(2) + (y / ry).powi(2) <= 1.0 { 1.0 } else { 0.0 }
                })
                .collect()
        };
        let mut planes = vec![
            (120, 100, ellipse(120, 100, (60.0, 50.0, 35.0, 40.0))),
            (120, 100, ellipse(120, 100, (10.0, 95.0, 50.0, 30.0))),
            (90, 70, ellipse(90, 70, (45.0, 35.0, 60.0, 50.0))),
            (64, 64, ellipse(64, 64, (30.0, 30.0, 3.0, 9.0))),
            (15, 12, ellipse(15, 12, (7.0, 6.0, 5.0, 4.0))),
            (3, 40, ellipse(3, 40, (1.0, 20.0, 2.0, 15.0))),
            (50, 50, vec![0.0; 2500]),
            (50, 50, vec![1.0; 2500]),
        ];
        let mut holes = ellipse(80, 60, (40.0, 30.0, 30.0, 25.0));
        for x in 30..34 {
            holes[30 * 80 + x] = 0.0;
        }
        holes[10 * 80 + 40] = 0.5;
        planes.push((80, 60, holes));
        // Negative zeros (a row of them is not taken for zeros) and a run wider than the kernel
        // beside one cut by the plane's edge.
        let mut signed = ellipse(200, 90, (100.0, 45.0, 70.0, 40.0));
        signed[3 * 200 + 7] = -0.0;
        signed[45 * 200 + 2] = -0.0;
        planes.push((200, 90, signed));
        let mut scratch = BlurScratch::default();
        for (w, h, plane) in &planes {
            for (ksize, sigma) in [(0, 5.0), (0, 2.0), (7, 0.0)] {
                let mut want = plane.clone();
                gaussian_blur(&mut want, *w, *h, ksize, sigma, &mut scratch);
                let mut got = plane.clone();
                gaussian_blur_runs(&mut got, (*w, *h, *w), ksize, sigma, &mut scratch);
                let differ = want.iter().zip(&got).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
                assert_eq!(differ, 0, "{w}x{h}, ksize {ksize}, sigma {sigma}: {differ} values differ");
            }
        }
    }

    #[test]
    fn erode_matches_brute_force() {
        let mut s = Vec::new();
        for &(w, h) in &[(17usize, 11usize), (1, 5), (6, 1), (30, 23)] {
            let src: Vec<f32> = (0..w * h).map(|i| ((i * 7919) % 97) as f32).collect();
            for k in [1usize, 2, 3, 4, 5, 10, 11, 40] {
                let mut got = src.clone();
                erode_box(&mut got, w, h, k, &mut s);
                let (a, b) = ((k / 2) as isize, (k - 1 - k / 2) as isize);
                for y in 0..h as isize {
                    for x in 0..w as isize {
                        let mut m = f32::INFINITY;
                        for yy in (y - a).max(0)..=(y + b).min(h as isize - 1) {
                            for xx in (x - a).max(0)..=(x + b).min(w as isize - 1) {
                                m = m.min(src[yy as usize * w + xx as usize]);
                            }
                        }
                        assert_eq!(got[y as usize * w + x as usize], m, "{w}x{h} k{k} ({x},{y})");
                    }
                }
            }
        }
    }

    #[test]
    fn unsharp_keeps_flat_and_boosts_edges() {
        let mut img = RgbImage::new(12, 8);
        img.data.fill(100);
        let (mut p, mut b) = (Vec::new(), BlurScratch::default());
        let before = img.clone();
        unsharp_mask(&mut img, 2.0, &mut p, &mut b);
        assert_eq!(img, before);
        for y in 0..8 {
            for x in 6..12 {
                img.set_pixel(x, y, [150, 150, 150]);
            }
        }
        unsharp_mask(&mut img, 1.0, &mut p, &mut b);
        assert!(img.pixel(5, 4)[0] < 100 && img.pixel(6, 4)[0] > 150);
        assert_eq!(img.pixel(0, 4), [100, 100, 100]);
        let mut empty = RgbImage::new(0, 0);
        unsharp_mask(&mut empty, 1.0, &mut p, &mut b);
    }
}
