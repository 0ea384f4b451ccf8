// SPDX-License-Identifier: MPL-2.0
//! Affine crops (`cv2.warpAffine` with bilinear sampling and a black border, or FaceFusion's
//! replicated border), as 8-bit RGB or straight into normalised NCHW model inputs.

use super::align::Affine;
use super::frame::{FrameView, PixelRow, PixelSource, Source, with_source};
use super::image::RgbImage;
use super::sample::{Tap, fixed};

/// Warps `src` into `out` (resized to `size_w × size_h`, reusing its allocation) so that output
/// pixel `(x, y)` samples the frame at `m⁻¹·(x, y)` bilinearly; neighbours outside the frame count
/// as black (OpenCV's `BORDER_CONSTANT` 0), results round to nearest.
///
/// OpenCV's fixed-point path (up to at least 4.10) quantises sampling positions to 1/32 pixel
/// and weights to 15 bits; this samples at 1/65536 px with 8-bit weights (see
/// [`Tap::lerp_u8`]), so single values may differ from `cv2.warpAffine` by about one level.
/// A singular `m` gives a black image.
pub fn warp_affine_rgb(src: &FrameView, m: &Affine, out: &mut RgbImage, size_w: usize, size_h: usize) {
    out.reshape(size_w, size_h);
    let data = &mut out.data;
    warp(src, m, (size_w, size_h), Border::Black, |i, rgb| data[i * 3..i * 3 + 3].copy_from_slice(&rgb));
}

/// [`warp_affine_rgb`] with OpenCV's `BORDER_REPLICATE`, as FaceFusion crops faces: a sample
/// outside the frame takes the nearest edge pixel, so a face at the frame's edge gets no black
/// wedge in the model's input. A singular `m` gives a black image.
pub fn warp_affine_rgb_replicate(src: &FrameView, m: &Affine, out: &mut RgbImage, size_w: usize, size_h: usize) {
    out.reshape(size_w, size_h);
    let data = &mut out.data;
    warp(src, m, (size_w, size_h), Border::Replicate, |i, rgb| data[i * 3..i * 3 + 3].copy_from_slice(&rgb));
}

/// What a warp samples outside the frame.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Border {
    /// Black (`BORDER_CONSTANT` 0).
    Black,
    /// The nearest edge pixel (`BORDER_REPLICATE`).
    Replicate,
}

/// [`warp_affine_rgb`] straight into a normalised planar model input (`3 × size_h × size_w`,
/// each value `(v − mean) · scale` of the 8-bit sample), without the intermediate 8-bit crop.
///
/// # Panics
/// When `out.len() != 3 * size_w * size_h` (a caller bug).
pub fn warp_affine_planar(
    src: &FrameView,
    m: &Affine,
    (size_w, size_h): (usize, usize),
    (mean, scale): (f32, f32),
    out: &mut [f32],
) {
    let plane = size_w * size_h;
    assert_eq!(out.len(), 3 * plane, "warp_affine_planar: output is not 3×{size_h}×{size_w}");
    let lut: [f32; 256] = std::array::from_fn(|v| (v as f32 - mean) * scale);
    let (r, rest) = out.split_at_mut(plane);
    let (g, b) = rest.split_at_mut(plane);
    warp(src, m, (size_w, size_h), Border::Black, |i, rgb| {
        r[i] = lut[rgb[0] as usize];
        g[i] = lut[rgb[1] as usize];
        b[i] = lut[rgb[2] as usize];
    });
}

/// The warp shared by all outputs: calls `put(pixel index, rgb)` for every output pixel in
/// row-major order (black for a singular or non-finite `m`).
fn warp(
    src: &FrameView,
    m: &Affine,
    (size_w, size_h): (usize, usize),
    border: Border,
    mut put: impl FnMut(usize, [u8; 3]),
) {
    let Some(inverse) = m.invert().filter(|inv| inv.m.iter().all(|v| v.is_finite())) else {
        (0..size_w * size_h).for_each(|i| put(i, [0; 3]));
        return;
    };
    if src.width == 0 || src.height == 0 {
        (0..size_w * size_h).for_each(|i| put(i, [0; 3]));
        return;
    }
    with_source!(src, |s| warp_into(&s, src.width, src.height, &inverse, (size_w, size_h), border, &mut put));
}

fn warp_into<S: PixelSource>(
    s: &S,
    w: usize,
    h: usize,
    inverse: &Affine,
    (out_w, out_h): (usize, usize),
    border: Border,
    put: &mut impl FnMut(usize, [u8; 3]),
) {
    let [a, b, c, d, e, f] = inverse.m;
    let (wi, hi) = (w as isize, h as isize);
    let (step_x, step_y) = (fixed(a), fixed(d));
    for y in 0..out_h {
        let (mut xq, mut yq) = (fixed(b * y as f64 + c), fixed(e * y as f64 + f));
        for x in 0..out_w {
            let tap = Tap::at(xq, yq);
            (xq, yq) = (xq + step_x, yq + step_y);
            let (x0, y0) = (tap.x, tap.y);
            let i = y * out_w + x;
            let outside = x0 < -1 || y0 < -1 || x0 >= wi || y0 >= hi;
            if outside && border == Border::Black {
                put(i, [0; 3]);
                continue;
            }
            let [p00, p01, p10, p11] = if x0 >= 0 && y0 >= 0 && x0 + 1 < wi && y0 + 1 < hi {
                let (x0, y0) = (x0 as usize, y0 as usize);
                let (r0, r1) = (s.row(y0), s.row(y0 + 1));
                [r0.rgb(x0), r0.rgb(x0 + 1), r1.rgb(x0), r1.rgb(x0 + 1)]
            } else {
                let at = |x: isize, y: isize| match border {
                    Border::Black if x >= 0 && y >= 0 && x < wi && y < hi => s.rgb(x as usize, y as usize),
                    Border::Black => [0; 3],
                    Border::Replicate => s.rgb(x.clamp(0, wi - 1) as usize, y.clamp(0, hi - 1) as usize),
                };
                [at(x0, y0), at(x0 + 1, y0), at(x0, y0 + 1), at(x0 + 1, y0 + 1)]
            };
            put(
                i,
                [
                    tap.lerp_u8(p00[0], p01[0], p10[0], p11[0]),
                    tap.lerp_u8(p00[1], p01[1], p10[1], p11[1]),
                    tap.lerp_u8(p00[2], p01[2], p10[2], p11[2]),
                ],
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::PixelFormat;
    use super::super::frame::tests::{ALL_FORMATS, same_picture_in};
    use super::super::image::Rect;
    use super::*;

    fn translation(tx: f64, ty: f64) -> Affine {
        Affine { m: [1.0, 0.0, tx, 0.0, 1.0, ty] }
    }

    #[test]
    fn identity_equals_read_region() {
        let (frame, _) = same_picture_in(PixelFormat::Nv12, 9, 7);
        let (mut warped, mut read) = (RgbImage::default(), RgbImage::default());
        warp_affine_rgb(&frame.view(), &Affine::IDENTITY, &mut warped, 9, 7);
        frame.view().read_region(Rect::new(0, 0, 9, 7), &mut read);
        assert_eq!(warped, read);
    }

    #[test]
    fn integer_translation_is_a_shifted_copy_with_black_border() {
        let (frame, rgb) = same_picture_in(PixelFormat::Rgb, 8, 6);
        let mut out = RgbImage::default();
        // m maps frame to crop: crop (x, y) shows frame (x + 3, y − 2).
        warp_affine_rgb(&frame.view(), &translation(-3.0, 2.0), &mut out, 6, 5);
        for y in 0..5 {
            for x in 0..6 {
                let (fx, fy) = (x as i32 + 3, y as i32 - 2);
                let expect = if fx < 8 && fy >= 0 { rgb.pixel(fx as usize, fy as usize) } else { [0; 3] };
                assert_eq!(out.pixel(x, y), expect, "({x}, {y})");
            }
        }
    }

    #[test]
    fn replicated_border_takes_the_nearest_edge_pixel() {
        let (frame, rgb) = same_picture_in(PixelFormat::Rgb, 8, 6);
        let mut out = RgbImage::default();
        // Crop (x, y) shows frame (x + 3, y − 2), clamped into the frame, including far outside.
        for (tx, ty) in [(-3.0, 2.0), (40.0, -30.0)] {
            warp_affine_rgb_replicate(&frame.view(), &translation(tx, ty), &mut out, 6, 5);
            for y in 0..5 {
                for x in 0..6 {
                    let fx = (x as f64 - tx).clamp(0.0, 7.0) as usize;
                    let fy = (y as f64 - ty).clamp(0.0, 5.0) as usize;
                    assert_eq!(out.pixel(x, y), rgb.pixel(fx, fy), "({x}, {y}) shifted by ({tx}, {ty})");
                }
            }
        }
        // Half a pixel left of the first column: the edge pixel with itself, not with black.
        warp_affine_rgb_replicate(&frame.view(), &translation(0.5, 0.0), &mut out, 2, 1);
        assert_eq!(out.pixel(0, 0), rgb.pixel(0, 0));
        // Inside the frame both borders agree, in every format.
        let m = Affine { m: [0.9, -0.3, 2.2, 0.35, 0.8, -1.7] };
        for format in ALL_FORMATS {
            let (frame, _) = same_picture_in(format, 11, 9);
            let (mut black, mut replicated) = (RgbImage::default(), RgbImage::default());
            warp_affine_rgb(&frame.view(), &m, &mut black, 10, 10);
            warp_affine_rgb_replicate(&frame.view(), &m, &mut replicated, 10, 10);
            let inv = m.invert().unwrap();
            for y in 0..10 {
                for x in 0..10 {
                    let (u, v) = inv.apply(x as f64, y as f64);
                    if u >= 0.0 && v >= 0.0 && u < 10.0 && v < 8.0 {
                        assert_eq!(black.pixel(x, y), replicated.pixel(x, y), "{format:?} ({x}, {y})");
                    }
                }
            }
        }
    }

    #[test]
    fn half_pixel_shift_averages_neighbours() {
        let data: Vec<u8> = (0..4 * 3 * 3).map(|i| (i * 7 % 256) as u8).collect();
        let img = RgbImage::from_raw(4, 3, data).expect("4×3");
        let mut out = RgbImage::default();
        // Crop (x, y) samples frame (x + 0.5, y): the mean of two horizontal neighbours, rounded
        // half up; the last column averages with the black outside.
        warp_affine_rgb(&FrameView::from_rgb(&img), &translation(-0.5, 0.0), &mut out, 4, 3);
        for y in 0..3 {
            for x in 0..4 {
                let right = if x + 1 < 4 { img.pixel(x + 1, y) } else { [0; 3] };
                let left = img.pixel(x, y);
                let expect: [u8; 3] = std::array::from_fn(|c| (left[c] as u32 + right[c] as u32).div_ceil(2) as u8);
                assert_eq!(out.pixel(x, y), expect, "({x}, {y})");
            }
        }
        // Vertically by half a pixel upwards: row 0 averages with the black row above.
        warp_affine_rgb(&FrameView::from_rgb(&img), &translation(0.0, 0.5), &mut out, 4, 3);
        for x in 0..4 {
            let p = img.pixel(x, 0);
            assert_eq!(out.pixel(x, 0), p.map(|v| (v as u32).div_ceil(2) as u8));
            let (a, b) = (img.pixel(x, 1), img.pixel(x, 2));
            let expect: [u8; 3] = std::array::from_fn(|c| (a[c] as u32 + b[c] as u32).div_ceil(2) as u8);
            assert_eq!(out.pixel(x, 2), expect);
        }
    }

    #[test]
    fn far_outside_and_singular_give_black() {
        let img = RgbImage::from_raw(2, 2, vec![255; 12]).expect("2×2");
        let mut out = RgbImage::default();
        warp_affine_rgb(&FrameView::from_rgb(&img), &translation(-100.0, 0.0), &mut out, 3, 3);
        assert_eq!(out, RgbImage::new(3, 3));
        let mut out = RgbImage::from_raw(1, 1, vec![9; 3]).expect("1×1");
        warp_affine_rgb(&FrameView::from_rgb(&img), &Affine { m: [0.0; 6] }, &mut out, 2, 1);
        assert_eq!(out, RgbImage::new(2, 1));
        let nan = Affine { m: [1.0, 0.0, f64::NAN, 0.0, 1.0, 0.0] };
        warp_affine_rgb(&FrameView::from_rgb(&img), &nan, &mut out, 2, 1);
        assert_eq!(out, RgbImage::new(2, 1));
    }

    #[test]
    fn scaled_rotation_samples_the_right_place() {
        // m = 2·rotation by 90° + translation: crop (x, y) ← frame m⁻¹(x, y). With
        // m(x, y) = (−2y + 10, 2x), m⁻¹(u, v) = (v/2, (10 − u)/2), so crop (4, 2) ← frame (1, 3)
        // and crop (2, 6) ← frame (3, 4).
        let (frame, rgb) = same_picture_in(PixelFormat::Xbgr, 6, 6);
        let m = Affine { m: [0.0, -2.0, 10.0, 2.0, 0.0, 0.0] };
        let mut out = RgbImage::default();
        warp_affine_rgb(&frame.view(), &m, &mut out, 12, 12);
        assert_eq!(out.pixel(4, 2), rgb.pixel(1, 3));
        assert_eq!(out.pixel(2, 6), rgb.pixel(3, 4));
    }

    #[test]
    fn every_format_warps_alike() {
        let m = Affine { m: [0.9, -0.3, 2.2, 0.35, 0.8, -1.7] };
        let (rgb_frame, _) = same_picture_in(PixelFormat::Rgb, 11, 9);
        let mut reference = RgbImage::default();
        warp_affine_rgb(&rgb_frame.view(), &m, &mut reference, 10, 10);
        for format in ALL_FORMATS {
            let (frame, _) = same_picture_in(format, 11, 9);
            let mut out = RgbImage::default();
            warp_affine_rgb(&frame.view(), &m, &mut out, 10, 10);
            assert_eq!(out, reference, "{format:?}");
        }
    }

    #[test]
    fn planar_output_is_the_normalised_crop() {
        let img = RgbImage::from_raw(2, 1, vec![0, 127, 255, 51, 102, 153]).expect("2×1");
        let mut out = vec![0.0; 6];
        warp_affine_planar(&FrameView::from_rgb(&img), &Affine::IDENTITY, (2, 1), (127.5, 1.0 / 127.5), &mut out);
        let arc = |v: f32| (v - 127.5) / 127.5;
        let expect = [arc(0.0), arc(51.0), arc(127.0), arc(102.0), arc(255.0), arc(153.0)];
        for (o, e) in out.iter().zip(expect) {
            assert!((o - e).abs() < 1e-6, "{o} vs {e}");
        }
        warp_affine_planar(&FrameView::from_rgb(&img), &Affine::IDENTITY, (2, 1), (0.0, 1.0 / 255.0), &mut out);
        assert!((out[4] - 1.0).abs() < 1e-6 && (out[1] - 0.2).abs() < 1e-6, "{out:?}");
        // The planar crop is the 8-bit crop, normalised.
        let (frame, _) = same_picture_in(PixelFormat::I420, 9, 7);
        let m = Affine { m: [0.8, 0.1, 0.5, -0.2, 0.9, 1.0] };
        let mut crop = RgbImage::default();
        warp_affine_rgb(&frame.view(), &m, &mut crop, 6, 5);
        let mut planar = vec![0.0; 90];
        warp_affine_planar(&frame.view(), &m, (6, 5), (0.0, 1.0), &mut planar);
        for (i, px) in crop.data.chunks_exact(3).enumerate() {
            assert_eq!([planar[i], planar[30 + i], planar[60 + i]], [px[0], px[1], px[2]].map(f32::from), "pixel {i}");
        }
    }
}
