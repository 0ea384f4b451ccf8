// SPDX-License-Identifier: MPL-2.0
//! FaceFusion's pixel boost: a face cropped at `factor` times the swapper's size is split into
//! `factor²` interleaved tiles of the model's size, each swapped on its own, and put back together.
//!
//! The split is polyphase (space-to-depth), not spatial: with `T = factor`, tile `k = i·T + j`
//! holds the crop's pixels `crop[i::T, j::T]` (row phase `i`, column phase `j`), so every tile
//! sees the whole face at the model's resolution, shifted by a fraction of a model pixel. This is
//! FaceFusion 3.8.1's `implode_pixel_boost` / `explode_pixel_boost` (`reshape(S, T, S, T, 3)`,
//! `transpose(1, 3, 0, 2, 4)`).

use super::image::RgbImage;

/// Splits the square packed RGB `crop` (side `size · factor`) into `factor²` tiles of
/// `size × size` packed RGB, tile after tile in `tiles` (resized, reusing its allocation).
/// Returns the tile count; 0 (and no tiles) when the crop's side is not `size · factor`.
pub fn implode(crop: &RgbImage, size: usize, factor: usize, tiles: &mut Vec<u8>) -> usize {
    let side = size * factor;
    if size == 0 || factor == 0 || crop.width != side || crop.height != side || crop.data.len() != side * side * 3 {
        tiles.clear();
        return 0;
    }
    tiles.resize(factor * factor * size * size * 3, 0);
    for (k, tile) in tiles.chunks_exact_mut(size * size * 3).enumerate() {
        let (i, j) = (k / factor, k % factor);
        for (y, row) in tile.chunks_exact_mut(size * 3).enumerate() {
            let src_row = &crop.data[(y * factor + i) * side * 3..][..side * 3];
            for (x, px) in row.chunks_exact_mut(3).enumerate() {
                let at = (x * factor + j) * 3;
                px.copy_from_slice(&src_row[at..at + 3]);
            }
        }
    }
    factor * factor
}

/// Puts `factor²` swapped tiles (`size × size × 3` values each, tile after tile, as [`implode`]
/// ordered them) back into one `size · factor` square of packed RGB values in `out` (resized,
/// reusing its allocation). Returns `false` (leaving `out` empty) when `tiles` holds another
/// number of values.
pub fn explode(tiles: &[f32], size: usize, factor: usize, out: &mut Vec<f32>) -> bool {
    let side = size * factor;
    let tile_len = size * size * 3;
    if size == 0 || factor == 0 || tiles.len() != factor * factor * tile_len {
        out.clear();
        return false;
    }
    out.resize(side * side * 3, 0.0);
    for (k, tile) in tiles.chunks_exact(tile_len).enumerate() {
        let (i, j) = (k / factor, k % factor);
        for (y, row) in tile.chunks_exact(size * 3).enumerate() {
            let out_row = &mut out[(y * factor + i) * side * 3..][..side * 3];
            for (x, px) in row.chunks_exact(3).enumerate() {
                let at = (x * factor + j) * 3;
                out_row[at..at + 3].copy_from_slice(px);
            }
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A crop whose pixel (x, y) holds (x, y, x + y) (mod 256), so that every value says where
    /// it came from.
    fn labelled(side: usize) -> RgbImage {
        let data = (0..side * side).flat_map(|i| [(i % side) as u8, (i / side) as u8, (i % side + i / side) as u8]);
        RgbImage::from_raw(side, side, data.collect()).expect("side² pixels")
    }

    #[test]
    fn tiles_are_the_interleaved_phases() {
        let (size, factor) = (4, 3);
        let crop = labelled(size * factor);
        let mut tiles = Vec::new();
        assert_eq!(implode(&crop, size, factor, &mut tiles), 9);
        assert_eq!(tiles.len(), 9 * size * size * 3);
        // Tile k = i·T + j, pixel (x, y) = crop pixel (x·T + j, y·T + i).
        for k in 0..9 {
            let (i, j) = (k / factor, k % factor);
            for y in 0..size {
                for x in 0..size {
                    let at = (k * size * size + y * size + x) * 3;
                    assert_eq!(tiles[at..at + 3], crop.pixel(x * factor + j, y * factor + i), "tile {k} ({x}, {y})");
                }
            }
        }
    }

    #[test]
    fn explode_undoes_implode() {
        for (size, factor) in [(4, 1), (3, 2), (5, 4)] {
            let crop = labelled(size * factor);
            let mut tiles = Vec::new();
            implode(&crop, size, factor, &mut tiles);
            let values: Vec<f32> = tiles.iter().map(|&v| f32::from(v)).collect();
            let mut out = vec![7.0; 3];
            assert!(explode(&values, size, factor, &mut out));
            let expect: Vec<f32> = crop.data.iter().map(|&v| f32::from(v)).collect();
            assert_eq!(out, expect, "size {size} × {factor}");
        }
    }

    #[test]
    fn wrong_sizes_give_nothing() {
        let mut tiles = vec![1; 5];
        assert_eq!(implode(&labelled(10), 4, 2, &mut tiles), 0);
        assert!(tiles.is_empty());
        let mut out = vec![1.0; 5];
        assert!(!explode(&[0.0; 10], 2, 2, &mut out));
        assert!(out.is_empty());
    }
}
