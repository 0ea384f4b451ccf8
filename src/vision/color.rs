// SPDX-License-Identifier: MPL-2.0
//! sRGB ↔ CIE L*a*b* and the Reinhard colour transfer behind `color-correction`.
//!
//! The LAB scale is OpenCV's for 8-bit images (`COLOR_RGB2LAB` on `CV_8U`): D65 white, sRGB
//! gamma, `L` scaled from 0..100 to 0..255 (`L·255/100`) and `a`, `b` offset by +128. OpenCV's 8-bit
//! path uses fixed-point tables; the float formulas here agree with it to ±1 level after rounding.

use std::sync::OnceLock;

use super::image::RgbImage;

/// OpenCV's sRGB → XYZ matrix (D65) with the rows divided by the white point, so X, Y, Z are
/// already relative to white.
const RGB2XYZ: [[f32; 3]; 3] = [
    [0.412453 / 0.950456, 0.357580 / 0.950456, 0.180423 / 0.950456],
    [0.212671, 0.715160, 0.072169],
    [0.019334 / 1.088754, 0.119193 / 1.088754, 0.950227 / 1.088754],
];
/// OpenCV's XYZ → sRGB matrix (D65).
const XYZ2RGB: [[f32; 3]; 3] =
    [[3.240479, -1.53715, -0.498535], [-0.969256, 1.875991, 0.041556], [0.055648, -0.204043, 1.057311]];
const WHITE: [f32; 3] = [0.950456, 1.0, 1.088754];
/// CIE's linear-segment threshold (`(6/29)³`) and slope, with OpenCV's rounded constants.
const T0: f32 = 0.008856;
const SLOPE: f32 = 7.787;

/// sRGB 8-bit → linear light, tabulated once (256 entries): the per-pixel hot path of the transfer.
fn linear_table() -> &'static [f32; 256] {
    static TABLE: OnceLock<[f32; 256]> = OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|i| {
            let c = i as f32 / 255.0;
            if c <= 0.04045 { c / 12.92 } else { ((c + 0.055) / 1.055).powf(2.4) }
        })
    })
}

#[inline]
fn lab_f(t: f32) -> f32 {
    if t > T0 { t.cbrt() } else { SLOPE * t + 16.0 / 116.0 }
}

/// One sRGB pixel → LAB on OpenCV's 8-bit scale, unrounded (`L` 0..255, `a`, `b` around 128).
#[inline]
pub fn rgb_to_lab_f32(rgb: [u8; 3]) -> [f32; 3] {
    let lin = linear_table();
    let c = rgb.map(|v| lin[v as usize]);
    let [x, y, z] = RGB2XYZ.map(|r| r[0] * c[0] + r[1] * c[1] + r[2] * c[2]);
    let (fx, fy, fz) = (lab_f(x), lab_f(y), lab_f(z));
    let l = if y > T0 { 116.0 * fy - 16.0 } else { 903.3 * y };
    [l * 255.0 / 100.0, 500.0 * (fx - fy) + 128.0, 200.0 * (fy - fz) + 128.0]
}

/// LAB on OpenCV's 8-bit scale (any real values) → sRGB, rounded and clamped.
#[inline]
pub fn lab_f32_to_rgb(lab: [f32; 3]) -> [u8; 3] {
    let l = lab[0] * 100.0 / 255.0;
    let (a, b) = (lab[1] - 128.0, lab[2] - 128.0);
    let (y, fy) = if l <= T0 * 903.3 {
        let y = l / 903.3;
        (y, SLOPE * y + 16.0 / 116.0)
    } else {
        let fy = (l + 16.0) / 116.0;
        (fy * fy * fy, fy)
    };
    let inv = |f: f32| {
        if f > 0.206_893_03 { f * f * f } else { (f - 16.0 / 116.0) / SLOPE }
    };
    let xyz = [inv(a / 500.0 + fy) * WHITE[0], y, inv(fy - b / 200.0) * WHITE[2]];
    XYZ2RGB.map(|r| {
        let c = (r[0] * xyz[0] + r[1] * xyz[1] + r[2] * xyz[2]).clamp(0.0, 1.0);
        let s = if c <= 0.003_130_8 { 12.92 * c } else { 1.055 * c.powf(1.0 / 2.4) - 0.055 };
        (s * 255.0).round().clamp(0.0, 255.0) as u8
    })
}

/// `cv2.cvtColor(COLOR_RGB2LAB)` for one 8-bit pixel (rounded to nearest).
pub fn rgb_to_lab(rgb: [u8; 3]) -> [u8; 3] {
    rgb_to_lab_f32(rgb).map(|v| v.round().clamp(0.0, 255.0) as u8)
}

/// `cv2.cvtColor(COLOR_LAB2RGB)` for one 8-bit pixel.
pub fn lab_to_rgb(lab: [u8; 3]) -> [u8; 3] {
    lab_f32_to_rgb(lab.map(f32::from))
}

/// Per-channel mean and (population) standard deviation, like `cv2.meanStdDev`, accumulated in f64.
struct Stats {
    n: f64,
    sum: [f64; 3],
    sq: [f64; 3],
}

impl Stats {
    fn new() -> Self {
        Self { n: 0.0, sum: [0.0; 3], sq: [0.0; 3] }
    }

    fn add(&mut self, v: [f32; 3]) {
        self.n += 1.0;
        for ((s, q), v) in self.sum.iter_mut().zip(&mut self.sq).zip(v.map(f64::from)) {
            *s += v;
            *q += v * v;
        }
    }

    fn mean_std(&self) -> ([f64; 3], [f64; 3]) {
        let mean = self.sum.map(|s| s / self.n);
        let std = std::array::from_fn(|c| (self.sq[c] / self.n - mean[c] * mean[c]).max(0.0).sqrt());
        (mean, std)
    }
}

/// Reinhard colour transfer (Deep-Live-Cam's `color-correction`): in LAB, shift and scale each
/// channel of the swapped face so that its mean and standard deviation match the original face's.
///
/// `target` is the swapped region, `reference` the original pixels at the same positions,
/// `weight` the paste-back weights (same size). Statistics come from the pixels with
/// `weight > 0.5` (the face proper, not the feathered edge) of both images; each pixel with
/// `weight > 0` becomes `x + w·(T(x) − x)`, with `T` the transfer computed in unrounded LAB and
/// clamped to the 8-bit LAB range as the reference's `np.clip(…, 0, 255)`. Scaling by the weight
/// keeps the feathered edge continuous with the untouched frame around it. A channel whose swapped
/// standard deviation is ~0 is only shifted. Does nothing if sizes mismatch or no pixel has
/// `weight > 0.5`.
pub fn transfer_color(target: &mut RgbImage, weight: &[f32], reference: &RgbImage) {
    let n = target.width * target.height;
    if reference.width != target.width
        || reference.height != target.height
        || weight.len() != n
        || target.data.len() != n * 3
        || reference.data.len() != n * 3
    {
        return;
    }
    let (mut src, mut dst) = (Stats::new(), Stats::new());
    for ((t, r), &w) in target.data.chunks_exact(3).zip(reference.data.chunks_exact(3)).zip(weight) {
        if w > 0.5 {
            src.add(rgb_to_lab_f32([t[0], t[1], t[2]]));
            dst.add(rgb_to_lab_f32([r[0], r[1], r[2]]));
        }
    }
    if src.n == 0.0 {
        return;
    }
    let ((sm, ss), (dm, ds)) = (src.mean_std(), dst.mean_std());
    let gain: [f32; 3] = std::array::from_fn(|c| if ss[c] > 1e-6 { (ds[c] / ss[c]) as f32 } else { 1.0 });
    let (sm, dm) = (sm.map(|v| v as f32), dm.map(|v| v as f32));
    for (t, &w) in target.data.chunks_exact_mut(3).zip(weight) {
        if w.is_nan() || w <= 0.0 {
            continue;
        }
        let w = w.min(1.0);
        let lab = rgb_to_lab_f32([t[0], t[1], t[2]]);
        let moved: [f32; 3] = std::array::from_fn(|c| ((lab[c] - sm[c]) * gain[c] + dm[c]).clamp(0.0, 255.0));
        let rgb = lab_f32_to_rgb(moved);
        for (o, v) in t.iter_mut().zip(rgb) {
            let x = *o as f32;
            *o = (x + w * (v as f32 - x)).round().clamp(0.0, 255.0) as u8;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_matches_known_values() {
        // Values from the CIE formulas (D65), on OpenCV's 8-bit scale.
        assert_eq!(rgb_to_lab([255, 255, 255]), [255, 128, 128]);
        assert_eq!(rgb_to_lab([0, 0, 0]), [0, 128, 128]);
        // Pure red: L 53.24, a 80.09, b 67.20 → 136, 208, 195.
        assert_eq!(rgb_to_lab([255, 0, 0]), [136, 208, 195]);
        // Pure green: L 87.73, a −86.18, b 83.18 → 224, 42, 211.
        assert_eq!(rgb_to_lab([0, 255, 0]), [224, 42, 211]);
        // Mid grey 128: L 53.59 → 137.
        assert_eq!(rgb_to_lab([128, 128, 128]), [137, 128, 128]);
    }

    #[test]
    fn lab_round_trips() {
        for r in (0..256).step_by(15) {
            for g in (0..256).step_by(17) {
                for b in (0..256).step_by(19) {
                    let p = [r as u8, g as u8, b as u8];
                    let q = lab_f32_to_rgb(rgb_to_lab_f32(p));
                    assert!(p.iter().zip(q).all(|(a, b)| a.abs_diff(b) <= 1), "{p:?} {q:?}");
                }
            }
        }
    }

    fn lab_mean(img: &RgbImage) -> [f64; 3] {
        let mut s = Stats::new();
        img.data.chunks_exact(3).for_each(|p| s.add(rgb_to_lab_f32([p[0], p[1], p[2]])));
        s.mean_std().0
    }

    #[test]
    fn transfer_moves_mean_to_reference() {
        let (w, h) = (40, 30);
        let mut target = RgbImage::new(w, h);
        let mut reference = RgbImage::new(w, h);
        for y in 0..h {
            for x in 0..w {
                let v = ((x * 3 + y * 5) % 60) as u8;
                target.set_pixel(x, y, [150 + v, 110 + v / 2, 90 + v / 3]);
                reference.set_pixel(x, y, [90 + v / 2, 120 + v, 140 + v / 2]);
            }
        }
        let weight = vec![1.0; w * h];
        let before = target.clone();
        transfer_color(&mut target, &weight, &reference);
        let (got, want) = (lab_mean(&target), lab_mean(&reference));
        for c in 0..3 {
            assert!((got[c] - want[c]).abs() <= 1.0, "{got:?} vs {want:?}");
        }
        assert_ne!(target, before);

        // Zero weight leaves pixels alone; half weight moves them about halfway.
        let mut t2 = before.clone();
        let mut wt = vec![1.0; w * h];
        wt[0] = 0.0;
        wt[1] = 0.5;
        transfer_color(&mut t2, &wt, &reference);
        assert_eq!(t2.pixel(0, 0), before.pixel(0, 0));
        let (b1, f1, h1) = (before.pixel(1, 0), target.pixel(1, 0), t2.pixel(1, 0));
        for c in 0..3 {
            let mid = (b1[c] as f32 + f1[c] as f32) / 2.0;
            assert!((h1[c] as f32 - mid).abs() <= 1.5, "{b1:?} {f1:?} {h1:?}");
        }

        // Nothing above 0.5 or mismatched sizes: unchanged.
        let mut t3 = before.clone();
        transfer_color(&mut t3, &vec![0.4; w * h], &reference);
        assert_eq!(t3, before);
        transfer_color(&mut t3, &weight, &RgbImage::new(3, 3));
        assert_eq!(t3, before);
    }
}
