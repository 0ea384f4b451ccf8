// SPDX-License-Identifier: MPL-2.0
//! FaceFusion's per-tile conversions around the swapper run, on host memory:
//! `prepare_crop_frame` (packed RGB bytes → `(x / 255 − mean) / std`, planar, float32) and
//! `normalize_crop_frame` (planar model output → packed RGB `clip(y, 0, 1) · 255`, after
//! `y · std + mean` for the de-normalised families), with FaceFusion's arithmetic: float64 for
//! the input and the de-normalised output, float32 for outputs taken as they are.

use ort::value::TensorElementType;

use super::{FamilySpec, OutputSpace};
use crate::backend::graph::boost::TilesOutput;
use crate::backend::graph::facefusion::TileFormat;

/// Writes `count` packed RGB tiles of side `size` (`tiles`, count × size × size × 3) into `planar`
/// (count × 3 × size × size) as the family's model input.
pub fn prepare(spec: &FamilySpec, tiles: &[u8], count: usize, size: usize, planar: &mut [f32]) {
    let table = input_table(spec);
    let plane = size * size;
    for (tile, out) in tiles.chunks_exact(plane * 3).zip(planar.chunks_exact_mut(plane * 3)).take(count) {
        let (r, rest) = out.split_at_mut(plane);
        let (g, b) = rest.split_at_mut(plane);
        for (i, px) in tile.chunks_exact(3).enumerate() {
            r[i] = table[0][px[0] as usize];
            g[i] = table[1][px[1] as usize];
            b[i] = table[2][px[2] as usize];
        }
    }
}

/// The family's model input value of each byte, per channel: the same float64 expression
/// FaceFusion evaluates per pixel, `(v / 255 − mean) / std`, as float32.
pub fn input_table(spec: &FamilySpec) -> [[f32; 256]; 3] {
    std::array::from_fn(|c| std::array::from_fn(|p| ((p as f64 / 255.0 - spec.mean[c]) / spec.std[c]) as f32))
}

/// The graph backend's version of [`prepare`] for `spec` at the pixel-boost `factor`: its
/// tiles graph writes the model input of `element` (one batched tensor when `batched`).
pub fn tile_format(spec: &FamilySpec, factor: usize, batched: bool, element: TensorElementType) -> TileFormat {
    let mut table = [0.0f32; 768];
    for (c, values) in input_table(spec).iter().enumerate() {
        table[256 * c..256 * (c + 1)].copy_from_slice(values);
    }
    TileFormat { size: spec.size, factor, batched, element, table, occluder: None }
}

/// The graph backend's version of [`finish`] for `spec`.
pub fn tiles_output(spec: &FamilySpec) -> TilesOutput {
    match spec.output {
        OutputSpace::Unit => TilesOutput::Unit,
        OutputSpace::Denormalized => {
            TilesOutput::Denormalized { std: spec.std.map(f64::to_bits), mean: spec.mean.map(f64::to_bits) }
        }
    }
}

/// Converts `count` planar model outputs of side `size` (`planar`, count × 3 × size × size) into
/// packed RGB values in [0, 255] (`packed`, count × size × size × 3), not rounded.
pub fn finish(spec: &FamilySpec, planar: &[f32], count: usize, size: usize, packed: &mut [f32]) {
    let plane = size * size;
    for (tile, out) in planar.chunks_exact(plane * 3).zip(packed.chunks_exact_mut(plane * 3)).take(count) {
        for c in 0..3 {
            let channel = &tile[c * plane..(c + 1) * plane];
            let targets = out.iter_mut().skip(c).step_by(3);
            match spec.output {
                // float32 throughout: numpy keeps a float32 array float32 under clip and `* 255`.
                OutputSpace::Unit => {
                    for (o, &y) in targets.zip(channel) {
                        *o = y.clamp(0.0, 1.0) * 255.0;
                    }
                }
                // `y * std + mean` with Python floats promotes to float64.
                OutputSpace::Denormalized => {
                    let (std, mean) = (spec.std[c], spec.mean[c]);
                    for (o, &y) in targets.zip(channel) {
                        *o = ((y as f64 * std + mean).clamp(0.0, 1.0) * 255.0) as f32;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::swapper::{ghost, inswapper, simswap};

    #[test]
    fn input_is_normalised_per_channel_and_planar() {
        // Two 1×1 tiles: (0, 128, 255) and (255, 0, 51).
        let tiles = [0u8, 128, 255, 255, 0, 51];
        let mut planar = [0f32; 6];
        prepare(&simswap::FAMILY_256, &tiles, 2, 1, &mut planar);
        let want = [
            (0.0 - 0.485) / 0.229,
            (128.0 / 255.0 - 0.456) / 0.224,
            (1.0 - 0.406) / 0.225,
            (1.0 - 0.485) / 0.229,
            (0.0 - 0.456) / 0.224,
            (0.2 - 0.406) / 0.225,
        ];
        for (got, want) in planar.iter().zip(want) {
            assert!((*got as f64 - want).abs() < 1e-6, "{planar:?}");
        }
        prepare(&ghost::FAMILY, &tiles[..3], 1, 1, &mut planar[..3]);
        assert_eq!(planar[..3], [-1.0, (128.0f64 / 255.0 * 2.0 - 1.0) as f32, 1.0]);
    }

    #[test]
    fn input_planes_follow_pixel_order() {
        // A 2×2 tile: the red plane reads the pixels row by row.
        let tiles = [10u8, 0, 0, 20, 0, 0, 30, 0, 0, 40, 0, 0];
        let mut planar = [0f32; 12];
        prepare(&inswapper::FAMILY, &tiles, 1, 2, &mut planar);
        assert_eq!(planar[..4], [10.0 / 255.0, 20.0 / 255.0, 30.0 / 255.0, 40.0 / 255.0].map(|v: f64| v as f32));
        assert!(planar[4..].iter().all(|v| *v == 0.0));
    }

    #[test]
    fn output_is_clipped_and_scaled_in_the_family_space() {
        // One 1×1 tile, planar (r, g, b).
        let mut packed = [0f32; 3];
        finish(&inswapper::FAMILY, &[-0.2, 0.5, 1.3], 1, 1, &mut packed);
        assert_eq!(packed, [0.0, 127.5, 255.0]);
        // ghost de-normalises: (y·0.5 + 0.5)·255.
        finish(&ghost::FAMILY, &[-1.5, 0.2, 0.9], 1, 1, &mut packed);
        for (got, want) in packed.iter().zip([0.0, 0.6 * 255.0, 0.95 * 255.0]) {
            assert!((got - want).abs() < 1e-4, "{packed:?}");
        }
        // simswap_256 is not de-normalised although its input was ImageNet-normalised.
        finish(&simswap::FAMILY_256, &[0.25, 0.5, 0.75], 1, 1, &mut packed);
        assert_eq!(packed, [63.75, 127.5, 191.25]);
    }

    #[test]
    fn output_planes_are_interleaved_per_tile() {
        // Two tiles of side 1: each tile's three planes become one pixel.
        let planar = [0.1f32, 0.2, 0.3, 0.4, 0.5, 0.6];
        let mut packed = [0f32; 6];
        finish(&inswapper::FAMILY, &planar, 2, 1, &mut packed);
        let want = planar.map(|v| v * 255.0);
        assert_eq!(packed, want);
        // Side 2: the plane of each channel lands on every third value.
        let planar: Vec<f32> = (0..12).map(|i| i as f32 / 20.0).collect();
        let mut packed = [0f32; 12];
        finish(&inswapper::FAMILY, &planar, 1, 2, &mut packed);
        for pixel in 0..4 {
            for c in 0..3 {
                assert_eq!(packed[pixel * 3 + c], planar[c * 4 + pixel] * 255.0);
            }
        }
    }
}
