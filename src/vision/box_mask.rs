// SPDX-License-Identifier: MPL-2.0
//! FaceFusion's box mask: a crop-sized weight grid, zero along the crop's edges (a band as wide as
//! half the blur, or the padding when that is wider), one inside, softened by a Gaussian blur.
//! It depends only on the crop's size and the settings, so the face layer builds it once per
//! setting and reuses it for every face.

use super::filter::{BlurScratch, gaussian_blur_line};

/// The box mask's settings: `mask-blur` and `mask-padding`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxMaskSettings {
    /// Blur amount as a fraction of half the crop's side, 0..1 (FaceFusion's `face_mask_blur`).
    pub blur: f64,
    /// Percent of the crop's side cut off at the top, right, bottom and left (0..100).
    pub padding: [u32; 4],
}

impl Default for BoxMaskSettings {
    /// FaceFusion's defaults: blur 0.3, no padding.
    fn default() -> Self {
        BoxMaskSettings { blur: 0.3, padding: [0; 4] }
    }
}

/// The box mask of a `side × side` crop, row-major, values in [0, 1] (FaceFusion 3.8.1
/// `create_box_mask`): with `b = ⌊side · 0.5 · blur⌋`, each edge band of `max(⌊b/2⌋ or 1,
/// ⌊side · padding / 100⌋)` rows or columns is zeroed, then the grid is blurred with a Gaussian of
/// sigma `b / 4` (kernel size by OpenCV's rule for float images, reflect-101 borders) when `b > 0`.
///
/// The grid of ones is the outer product of a column of ones between the top and bottom bands
/// and a row of ones between the left and right ones, and a Gaussian blur acts on each axis on its
/// own (reflect-101 too), so the blurred grid is the outer product of the two lines blurred: side²
/// products instead of a 2-D blur whose kernel grows with the crop (307 taps a pass at 1024 px,
/// 59 ms). The values equal the 2-D blur's to a few units in the last place of an f32.
pub fn box_mask(side: usize, settings: BoxMaskSettings, blur: &mut BlurScratch) -> Vec<f32> {
    let amount = (side as f64 * 0.5 * settings.blur.clamp(0.0, 1.0)) as usize;
    let area = (amount / 2).max(1);
    let band = |percent: u32| area.max(side * percent.min(100) as usize / 100).min(side);
    let [top, right, bottom, left] = settings.padding.map(band);
    let open = top + bottom < side && left + right < side;
    let ones = |first: usize, after_last: usize| -> Vec<f32> {
        (0..side).map(|i| if open && (first..side - after_last).contains(&i) { 1.0 } else { 0.0 }).collect()
    };
    let (mut rows, mut columns) = (ones(top, bottom), ones(left, right));
    if amount > 0 {
        let sigma = amount as f64 * 0.25;
        gaussian_blur_line(&mut rows, 0, sigma, blur);
        gaussian_blur_line(&mut columns, 0, sigma, blur);
    }
    // Written into a mask of its final size: collected from a flat map, the vector grew (and was
    // copied) step by step, which cost as much as the products.
    let mut mask = vec![0.0f32; side * side];
    for (out, &r) in mask.chunks_exact_mut(side.max(1)).zip(&rows) {
        for (o, &c) in out.iter_mut().zip(&columns) {
            *o = r * c;
        }
    }
    mask
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unblurred_box_is_zero_on_its_bands() {
        // blur 0: bands of 1 px, or the padding: 10 % of 20 = 2 rows at the top, 25 % = 5 columns
        // on the left.
        let settings = BoxMaskSettings { blur: 0.0, padding: [10, 0, 0, 25] };
        let mask = box_mask(20, settings, &mut BlurScratch::default());
        for y in 0..20 {
            for x in 0..20 {
                let inside = (2..19).contains(&y) && (5..19).contains(&x);
                assert_eq!(mask[y * 20 + x], if inside { 1.0 } else { 0.0 }, "({x}, {y})");
            }
        }
        // Padding over 50 % on opposite sides leaves nothing.
        let closed = box_mask(20, BoxMaskSettings { blur: 0.0, padding: [60, 0, 60, 0] }, &mut BlurScratch::default());
        assert!(closed.iter().all(|&v| v == 0.0));
    }

    #[test]
    fn the_outer_product_equals_the_two_dimensional_blur() {
        use crate::vision::filter::gaussian_blur;
        for (side, settings) in [
            (128, BoxMaskSettings::default()),
            (96, BoxMaskSettings { blur: 0.8, padding: [10, 0, 30, 5] }),
            (40, BoxMaskSettings { blur: 1.0, padding: [0, 45, 0, 0] }),
            (256, BoxMaskSettings { blur: 0.05, padding: [0; 4] }),
        ] {
            // The grid as FaceFusion makes it, blurred in two dimensions.
            let amount = (side as f64 * 0.5 * settings.blur) as usize;
            let band = |percent: u32| ((amount / 2).max(1)).max(side * percent as usize / 100);
            let [top, right, bottom, left] = settings.padding.map(band);
            let mut grid = vec![0.0f32; side * side];
            for y in top..side - bottom {
                grid[y * side + left..y * side + side - right].fill(1.0);
            }
            gaussian_blur(&mut grid, side, side, 0, amount as f64 * 0.25, &mut BlurScratch::default());
            let mask = box_mask(side, settings, &mut BlurScratch::default());
            let worst = grid.iter().zip(&mask).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            assert!(worst <= 1e-6, "side {side} {settings:?}: {worst}");
        }
    }

    #[test]
    fn blurred_box_follows_facefusion_numbers() {
        // Side 128, blur 0.3: amount ⌊19.2⌋ = 19, bands of 9 px, sigma 4.75.
        let mask = box_mask(128, BoxMaskSettings::default(), &mut BlurScratch::default());
        // The same mask built here independently: bands, then a direct 2-D Gaussian sum with
        // reflect-101 borders, kernel size round(8σ + 1) | 1 = 39.
        let sigma = 4.75f64;
        let radius = 19isize;
        let weights: Vec<f64> = (-radius..=radius).map(|i| (-(i * i) as f64 / (2.0 * sigma * sigma)).exp()).collect();
        let total: f64 = weights.iter().sum();
        let reflect = |p: isize| -> usize {
            let p = if p < 0 { -p } else { p };
            (if p > 127 { 254 - p } else { p }) as usize
        };
        let inside = |v: usize| (9..119).contains(&v);
        let profile: Vec<f64> = (0..128isize)
            .map(|x| {
                (-radius..=radius)
                    .zip(&weights)
                    .map(|(d, w)| if inside(reflect(x + d)) { *w } else { 0.0 })
                    .sum::<f64>()
                    / total
            })
            .collect();
        for (y, x) in [(0, 0), (9, 64), (20, 20), (64, 64), (127, 3), (64, 118)] {
            let expect = profile[x] * profile[y];
            assert!((mask[y * 128 + x] as f64 - expect).abs() < 1e-5, "({x}, {y}): {} vs {expect}", mask[y * 128 + x]);
        }
        assert!(mask[64 * 128 + 64] > 0.999 && mask[0] < 0.01);
    }
}
