// SPDX-License-Identifier: MPL-2.0
//! Two-tap bilinear resize with OpenCV's `cv2.resize(INTER_LINEAR)` arithmetic on 8-bit samples,
//! so that the detector sees the input InsightFace's Python gives it: the same source positions
//! (half-pixel centres, the edge sample repeated, no anti-aliasing when downscaling), the same
//! 11-bit weights, a horizontal pass kept in 32 bits, and OpenCV's vector vertical step, which
//! drops bits before rounding ([`combine`]). Downscaling random 4K, 1080p, 720p and portrait
//! frames into 640, this gives exactly the bytes `cv2.resize` (OpenCV 4.13) gives; upscaling
//! (176×144 into 640×523) differs in 0.1 % of them, by one level.
//!
//! Why not a SIMD resizer such as `fast_image_resize`: those round to 8 bits between their two
//! passes, and SCRFD's boxes on some pictures move by more than half a pixel for that much
//! noise (0.76 px on `gauss.png`, where the reference test allows 0.5; exact rounding without
//! OpenCV's truncations gives 0.45, this gives 0).

/// Fractional bits of a weight, as OpenCV's `INTER_RESIZE_COEF_BITS`.
const BITS: u32 = 11;
const ONE: f32 = (1 << BITS) as f32;

/// One output sample along an axis: `s[i0]·w0 + s[i1]·w1`, weights in units of 2⁻¹¹.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Tap {
    pub i0: usize,
    pub i1: usize,
    pub w0: i32,
    pub w1: i32,
}

impl Tap {
    /// The tap on a subsampled component whose sample `c` stands for source samples
    /// `per·c .. per·c + per` (chroma): the same weights on the samples holding `i0` and `i1`,
    /// which is sampling the component replicated to full resolution, as the frame readers
    /// decode it.
    #[inline]
    pub fn subsampled(self, per: usize) -> Tap {
        Tap { i0: self.i0 / per, i1: self.i1 / per, ..self }
    }
}

/// Fills `taps` with the taps of resizing `src_len` samples to `dst_len` (both at least 1) as
/// OpenCV computes them: output `d` samples source position `(d + 0.5)·src/dst − 0.5` (in `f32`),
/// positions before the first or past the last sample take that sample, and each weight is
/// rounded to 11 bits on its own (ties to even). A tap whose second weight is 0 reads one sample
/// twice, so that a caller caching source rows computes one.
pub(crate) fn axis_taps(src_len: usize, dst_len: usize, taps: &mut Vec<Tap>) {
    let scale = 1.0 / (dst_len as f64 / src_len as f64);
    let last = src_len.saturating_sub(1);
    taps.clear();
    taps.extend((0..dst_len).map(|d| {
        let pos = ((d as f64 + 0.5) * scale - 0.5) as f32;
        let floor = pos.floor();
        let (i0, frac) = match floor {
            f if f < 0.0 => (0, 0.0),
            f if f as usize >= last => (last, 0.0),
            f => (f as usize, pos - f),
        };
        let (w0, w1) = (((1.0 - frac) * ONE).round_ties_even() as i32, (frac * ONE).round_ties_even() as i32);
        Tap { i0, i1: if w1 == 0 { i0 } else { i0 + 1 }, w0, w1 }
    }));
}

/// The horizontal pass over one source row of each of `N` components that share taps:
/// `out[k][x] = s[t.i0]·t.w0 + s[t.i1]·t.w1` for the tap `t` of each output `x`, where sample `i`
/// of component `k` is `rows[k][i·STEP]` (0 past the row's end, which the callers' geometry never
/// reaches).
#[inline]
pub(super) fn horizontal<const STEP: usize, const N: usize>(rows: [&[u8]; N], taps: &[Tap], out: [&mut [i32]; N]) {
    let len = out.iter().map(|o| o.len()).min().unwrap_or(0).min(taps.len());
    let mut out = out.map(|o| &mut o[..len]);
    for (x, t) in taps[..len].iter().enumerate() {
        for (row, out) in rows.iter().zip(&mut out) {
            let sample = |i: usize| row.get(i * STEP).copied().unwrap_or(0) as i32;
            out[x] = sample(t.i0) * t.w0 + sample(t.i1) * t.w1;
        }
    }
}

/// [`horizontal`] of three components of `BPP`-byte pixels at once (bytes `offsets` of each
/// pixel), which reads each tap and pixel once for the three.
#[inline]
pub(super) fn horizontal_pixels<const BPP: usize>(row: &[u8], taps: &[Tap], offsets: [usize; 3], out: [&mut [i32]; 3]) {
    // A reference, not a copy: indexing a copied array by a runtime offset goes through the
    // stack.
    let pixel = |i: usize| -> &[u8; BPP] {
        row.get(i * BPP..i * BPP + BPP).and_then(|p| p.try_into().ok()).unwrap_or(&[0; BPP])
    };
    // `min` tells the compiler the offsets are in range.
    let [r, g, b] = offsets.map(|o| o.min(BPP - 1));
    let [out_r, out_g, out_b] = out;
    for (((t, out_r), out_g), out_b) in taps.iter().zip(out_r).zip(out_g).zip(out_b) {
        let (p0, p1) = (pixel(t.i0), pixel(t.i1));
        let blend = |o: usize| p0[o] as i32 * t.w0 + p1[o] as i32 * t.w1;
        (*out_r, *out_g, *out_b) = (blend(r), blend(g), blend(b));
    }
}

/// The vertical step of one output row from the horizontal passes `d0`, `d1` of its two source
/// rows and their weights `tap.w0`, `tap.w1`, as OpenCV's vector code computes it (`v_mul_hi` of
/// the values shifted right by 4, then a rounding shift by 2, saturated).
pub(super) fn combine(d0: &[i32], d1: &[i32], tap: Tap, out: &mut [u8]) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the function's one requirement is a CPU with AVX2, checked just above.
        return unsafe { combine_avx2(d0, d1, tap, out) };
    }
    combine_portable(d0, d1, tap, out)
}

/// [`combine`] compiled for AVX2 (32-bit multiplies in 8 lanes; the baseline has none).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn combine_avx2(d0: &[i32], d1: &[i32], tap: Tap, out: &mut [u8]) {
    combine_portable(d0, d1, tap, out)
}

#[inline(always)]
fn combine_portable(d0: &[i32], d1: &[i32], tap: Tap, out: &mut [u8]) {
    let (w0, w1) = (tap.w0, tap.w1);
    for ((o, &a), &b) in out.iter_mut().zip(d0).zip(d1) {
        let v = ((((a >> 4) * w0) >> 16) + (((b >> 4) * w1) >> 16) + 2) >> 2;
        *o = v.clamp(0, 255) as u8;
    }
}

/// One output sample of a float resize along an axis: `s[i0]·w0 + s[i1]·w1`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct FloatTap {
    pub i0: usize,
    pub i1: usize,
    pub w0: f32,
    pub w1: f32,
}

/// The taps of resizing `src_len` samples to `dst_len` as OpenCV does for float images: the
/// source positions of [`axis_taps`], weights `1 − f` and `f` kept in `f32`.
pub(crate) fn float_axis_taps(src_len: usize, dst_len: usize) -> Vec<FloatTap> {
    let scale = 1.0 / (dst_len as f64 / src_len as f64);
    let last = src_len.saturating_sub(1);
    (0..dst_len)
        .map(|d| {
            let pos = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let floor = pos.floor();
            let (i0, frac) = match floor {
                f if f < 0.0 => (0, 0.0),
                f if f as usize >= last => (last, 0.0),
                f => (f as usize, pos - f),
            };
            FloatTap { i0, i1: (i0 + 1).min(last), w0: 1.0 - frac, w1: frac }
        })
        .collect()
}

/// `cv2.resize(src, (dst_w, dst_h), interpolation=cv2.INTER_LINEAR)` of a float image of
/// `channels` interleaved channels (`src_w × src_h × channels` values): a horizontal then a
/// vertical two-tap pass in `f32`. OpenCV's exact 2× reduction takes its area path, which averages
/// the same four samples with the same weights. `out` is resized to fit.
pub(super) fn resize_f32(
    src: &[f32],
    (src_w, src_h): (usize, usize),
    channels: usize,
    (dst_w, dst_h): (usize, usize),
    out: &mut Vec<f32>,
) {
    out.clear();
    out.resize(dst_w * dst_h * channels, 0.0);
    if src_w == 0 || src_h == 0 || src.len() < src_w * src_h * channels {
        return;
    }
    let (x_taps, y_taps) = (float_axis_taps(src_w, dst_w), float_axis_taps(src_h, dst_h));
    let row_len = dst_w * channels;
    let horizontal = |y: usize, row: &mut [f32]| {
        let line = &src[y * src_w * channels..(y + 1) * src_w * channels];
        for (t, px) in x_taps.iter().zip(row.chunks_exact_mut(channels)) {
            for (c, v) in px.iter_mut().enumerate() {
                *v = line[t.i0 * channels + c] * t.w0 + line[t.i1 * channels + c] * t.w1;
            }
        }
    };
    let (mut h0, mut h1) = (vec![0.0f32; row_len], vec![0.0f32; row_len]);
    for (t, out_row) in y_taps.iter().zip(out.chunks_exact_mut(row_len)) {
        horizontal(t.i0, &mut h0);
        horizontal(t.i1, &mut h1);
        for ((o, &a), &b) in out_row.iter_mut().zip(&h0).zip(&h1) {
            *o = a * t.w0 + b * t.w1;
        }
    }
}

/// `cv2.resize(src, (dst_w, dst_h), interpolation=cv2.INTER_LINEAR)` of a packed 8-bit
/// three-channel image, with OpenCV's fixed-point arithmetic ([`axis_taps`], [`combine`]).
/// `out` is resized to `dst_w × dst_h × 3` bytes.
pub(super) fn resize_rgb8(
    src: &[u8],
    (src_w, src_h): (usize, usize),
    (dst_w, dst_h): (usize, usize),
    out: &mut Vec<u8>,
) {
    out.clear();
    out.resize(dst_w * dst_h * 3, 0);
    if src_w == 0 || src_h == 0 || src.len() < src_w * src_h * 3 {
        return;
    }
    let (mut x_taps, mut y_taps) = (Vec::new(), Vec::new());
    axis_taps(src_w, dst_w, &mut x_taps);
    axis_taps(src_h, dst_h, &mut y_taps);
    let mut passes: [[Vec<i32>; 3]; 2] = Default::default();
    let mut channel_row = vec![0u8; dst_w];
    for (t, out_row) in y_taps.iter().zip(out.chunks_exact_mut(dst_w * 3)) {
        for (pass, y) in passes.iter_mut().zip([t.i0, t.i1]) {
            let line = &src[y * src_w * 3..(y + 1) * src_w * 3];
            let [r, g, b] = pass;
            for plane in [&mut *r, &mut *g, &mut *b] {
                plane.resize(dst_w, 0);
            }
            horizontal_pixels::<3>(line, &x_taps, [0, 1, 2], [r, g, b]);
        }
        for c in 0..3 {
            combine(&passes[0][c], &passes[1][c], *t, &mut channel_row);
            for (px, &v) in out_row.chunks_exact_mut(3).zip(&channel_row) {
                px[c] = v;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_follow_opencv() {
        let mut taps = Vec::new();
        // 2 → 4: positions −0.25 (edge), 0.25, 0.75, 1.25 (edge).
        axis_taps(2, 4, &mut taps);
        assert_eq!(
            taps,
            [
                Tap { i0: 0, i1: 0, w0: 2048, w1: 0 },
                Tap { i0: 0, i1: 1, w0: 1536, w1: 512 },
                Tap { i0: 0, i1: 1, w0: 512, w1: 1536 },
                Tap { i0: 1, i1: 1, w0: 2048, w1: 0 },
            ]
        );
        // 9 → 3: positions 1, 4, 7, exactly on samples: one sample each.
        axis_taps(9, 3, &mut taps);
        assert_eq!(
            taps.iter().map(|t| (t.i0, t.i1, t.w0)).collect::<Vec<_>>(),
            [(1, 1, 2048), (4, 4, 2048), (7, 7, 2048)]
        );
        // A single source sample serves every output.
        axis_taps(1, 3, &mut taps);
        assert!(taps.iter().all(|t| *t == Tap { i0: 0, i1: 0, w0: 2048, w1: 0 }));
        // Chroma of pixels 3 and 4 (samples 1 and 2): the weights stay, the indices halve.
        let t = Tap { i0: 3, i1: 4, w0: 1000, w1: 1048 };
        assert_eq!(t.subsampled(2), Tap { i0: 1, i1: 2, ..t });
    }

    #[test]
    fn passes_compute_as_opencv() {
        // Row [10, 20, 250] to 4 samples (taps of 3 → 4): 10, 16.25, 106.25, 250, in units of
        // 2⁻¹¹.
        let mut taps = Vec::new();
        axis_taps(3, 4, &mut taps);
        let expect = [10 * 2048, 16 * 2048 + 512, 106 * 2048 + 512, 250 * 2048];
        let mut d = [0i32; 4];
        horizontal::<1, 1>([&[10, 20, 250]], &taps, [&mut d]);
        assert_eq!(d, expect);
        // Two components of 2-byte samples sharing the taps.
        let mut e = [0i32; 4];
        horizontal::<2, 2>([&[10, 0, 20, 0, 250, 0], &[1, 0, 1, 0, 1, 0]], &taps, [&mut d, &mut e]);
        assert_eq!((d, e), (expect, [2048; 4]));
        // The three colour bytes of 4-byte pixels, in the order of `offsets`.
        let (mut r, mut g, mut b) = ([0i32; 4], [0i32; 4], [0i32; 4]);
        horizontal_pixels::<4>(&[0, 10, 1, 2, 0, 20, 1, 2, 0, 250, 1, 2], &taps, [1, 3, 2], [&mut r, &mut g, &mut b]);
        assert_eq!((r, g, b), (expect, [2 * 2048; 4], [2048; 4]));
        // A quarter of the way down from [10, 200, 255] to [20, 40, 255]: 12.5 rounds up, 160
        // and 255 are exact.
        let (d0, d1) = ([10 * 2048, 200 * 2048, 255 * 2048], [20 * 2048, 40 * 2048, 255 * 2048]);
        let mut out = [0u8; 3];
        combine(&d0, &d1, Tap { i0: 0, i1: 1, w0: 1536, w1: 512 }, &mut out);
        assert_eq!(out, [13, 160, 255]);
        // OpenCV drops bits on the way: (77·1000 + 78·1048) / 2048 = 77.51 comes out as 77.
        combine(&[77 * 2048], &[78 * 2048], Tap { i0: 0, i1: 1, w0: 1000, w1: 1048 }, &mut out[..1]);
        assert_eq!(out[0], 77);
    }

    #[test]
    fn float_resize_is_opencvs_bilinear() {
        let mut out = Vec::new();
        // 2 → 4 on one axis: positions −0.25 (edge), 0.25, 0.75, 1.25 (edge); rows repeat.
        resize_f32(&[0.0, 8.0, 0.0, 8.0], (2, 2), 1, (4, 1), &mut out);
        assert_eq!(out, [0.0, 2.0, 6.0, 8.0]);
        // 4 → 2: positions 0.5 and 2.5, the mean of each pair (OpenCV's area path gives the same).
        resize_f32(&[1.0, 3.0, 5.0, 9.0], (4, 1), 1, (2, 1), &mut out);
        assert_eq!(out, [2.0, 7.0]);
        // Interleaved channels are resized apart, and the same size is a copy.
        let src = [1.0, 10.0, 2.0, 20.0, 3.0, 30.0, 4.0, 40.0];
        resize_f32(&src, (2, 2), 2, (2, 2), &mut out);
        assert_eq!(out, src);
        resize_f32(&src, (2, 2), 2, (1, 1), &mut out);
        assert_eq!(out, [2.5, 25.0]);
    }

    #[test]
    fn rgb_resize_rounds_like_the_fixed_point_passes() {
        // 2 × 1 → 4 × 1: 10·0.75 + 250·0.25 = 70 and 190 in the middle, the ends repeat.
        let mut out = Vec::new();
        resize_rgb8(&[10, 20, 30, 250, 240, 230], (2, 1), (4, 1), &mut out);
        assert_eq!(out, [10, 20, 30, 70, 75, 80, 190, 185, 180, 250, 240, 230]);
        // 2 × 2 → 1 × 1: the mean of four, per channel.
        resize_rgb8(&[0, 0, 0, 100, 4, 8, 200, 8, 16, 100, 4, 8], (2, 2), (1, 1), &mut out);
        assert_eq!(out, [100, 4, 8]);
    }
}
