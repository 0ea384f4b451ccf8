//! SCRFD input preparation: InsightFace's aspect-keeping letterbox (top-left aligned), bilinear
//! resize as OpenCV's `cv2.resize(INTER_LINEAR)`, NCHW RGB normalised `(v − mean) · scale`
//! (SCRFD: mean 127.5, scale 1/128).

use super::frame::{FrameView, PixelRow, PixelSource, Source, with_source};

/// InsightFace's size rule: the frame scaled to fit `det_w × det_h` keeping its aspect, sizes
/// truncated like Python's `int()`. Returns `(new_w, new_h, det_scale)` with
/// `det_scale = new_h / h`, the factor that detections are divided by to get back to frame space.
///
/// The ratios are computed in f64 as Python does, so truncation agrees at exact ratios
/// (1080/1920·640 = 360). Where InsightFace would compute a 0-pixel side (extreme aspect ratios,
/// on which OpenCV raises), the side is kept at 1 pixel; an empty frame or detector size gives
/// `(0, 0, 1.0)`.
pub fn letterbox_size(w: usize, h: usize, det_w: usize, det_h: usize) -> (usize, usize, f32) {
    if w == 0 || h == 0 || det_w == 0 || det_h == 0 {
        return (0, 0, 1.0);
    }
    let im_ratio = h as f64 / w as f64;
    let model_ratio = det_h as f64 / det_w as f64;
    let (new_w, new_h) = if im_ratio > model_ratio {
        ((det_h as f64 / im_ratio) as usize, det_h)
    } else {
        (det_w, (det_w as f64 * im_ratio) as usize)
    };
    let (new_w, new_h) = (new_w.max(1), new_h.max(1));
    (new_w, new_h, (new_h as f64 / h as f64) as f32)
}

/// Fills `out` (`3 × det_h × det_w`, NCHW planar RGB) with the letterboxed frame and returns
/// `det_scale` (see [`letterbox_size`]).
///
/// Interpolation is exact bilinear on the 8-bit pixels, rounded to 8 bits as OpenCV's output is;
/// OpenCV itself works in 11-bit fixed point, so single values may differ from it by one level.
///
/// # Panics
/// When `out.len() != 3 * det_w * det_h` (a caller bug).
pub fn letterbox_blob(src: &FrameView, det_w: usize, det_h: usize, (mean, scale): (f32, f32), out: &mut [f32]) -> f32 {
    assert_eq!(out.len(), 3 * det_w * det_h, "letterbox_blob: output is not 3×{det_h}×{det_w}");
    let (new_w, new_h, det_scale) = letterbox_size(src.width, src.height, det_w, det_h);
    let geometry = Geometry { src_w: src.width, src_h: src.height, new_w, new_h, det_w, det_h, mean, scale };
    with_source!(src, |s| resize_into(&s, &geometry, out));
    det_scale
}

struct Geometry {
    src_w: usize,
    src_h: usize,
    new_w: usize,
    new_h: usize,
    det_w: usize,
    det_h: usize,
    mean: f32,
    scale: f32,
}

/// One output coordinate's source neighbours `(i0, i1)` and the weight of `i1`, by OpenCV's rule:
/// half-pixel centres, and at the edges the outermost pixel with weight 1.
#[derive(Clone, Copy)]
struct Tap {
    i0: usize,
    i1: usize,
    frac: f32,
}

fn taps(src_len: usize, dst_len: usize) -> Vec<Tap> {
    let scale = src_len as f64 / dst_len as f64;
    (0..dst_len)
        .map(|d| {
            // OpenCV rounds the source coordinate to float before splitting it.
            let s = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let floor = s.floor();
            if floor < 0.0 {
                Tap { i0: 0, i1: 0, frac: 0.0 }
            } else if floor as usize >= src_len - 1 {
                Tap { i0: src_len - 1, i1: src_len - 1, frac: 0.0 }
            } else {
                let i0 = floor as usize;
                Tap { i0, i1: i0 + 1, frac: s - floor }
            }
        })
        .collect()
}

fn resize_into<S: PixelSource>(s: &S, g: &Geometry, out: &mut [f32]) {
    // The normalised value of the zero padding.
    let pad = -g.mean * g.scale;
    let plane = g.det_w * g.det_h;
    let (r_plane, rest) = out.split_at_mut(plane);
    let (g_plane, b_plane) = rest.split_at_mut(plane);
    if g.new_w == 0 {
        for p in [r_plane, g_plane, b_plane] {
            p.fill(pad);
        }
        return;
    }
    let x_taps = taps(g.src_w, g.new_w);
    let y_taps = taps(g.src_h, g.new_h);

    // Horizontally interpolated source rows, cached by source row (upscaling reuses a row for
    // several output rows; each output row needs two). Planar R, G, B so that the vertical pass
    // runs over contiguous values and vectorises.
    let n = g.new_w;
    let mut rows = [vec![0.0f32; 3 * n], vec![0.0f32; 3 * n]];
    let mut cached = [usize::MAX; 2];
    let horizontal = |y: usize, buf: &mut [f32]| {
        let row = s.row(y);
        let (r, rest) = buf.split_at_mut(n);
        let (gr, b) = rest.split_at_mut(n);
        for (dx, t) in x_taps.iter().enumerate() {
            let (p, q) = (row.rgb(t.i0), row.rgb(t.i1));
            let lerp = |c: usize| p[c] as f32 + t.frac * (q[c] as f32 - p[c] as f32);
            r[dx] = lerp(0);
            gr[dx] = lerp(1);
            b[dx] = lerp(2);
        }
    };

    for (dy, t) in y_taps.iter().enumerate() {
        if cached[0] != t.i0 {
            if cached[1] == t.i0 {
                rows.swap(0, 1);
                cached.swap(0, 1);
            } else {
                horizontal(t.i0, &mut rows[0]);
                cached[0] = t.i0;
            }
        }
        if cached[1] != t.i1 {
            horizontal(t.i1, &mut rows[1]);
            cached[1] = t.i1;
        }
        let line = dy * g.det_w..(dy + 1) * g.det_w;
        let planes = [&mut r_plane[line.clone()], &mut g_plane[line.clone()], &mut b_plane[line]];
        for (c, out_row) in planes.into_iter().enumerate() {
            let (top, bottom) = (&rows[0][c * n..(c + 1) * n], &rows[1][c * n..(c + 1) * n]);
            for ((o, &a), &b) in out_row[..n].iter_mut().zip(top).zip(bottom) {
                // Rounded to 8 bits first, as OpenCV's uint8 output is.
                let q = (a + t.frac * (b - a) + 0.5) as i32;
                *o = (q as f32 - g.mean) * g.scale;
            }
            out_row[n..].fill(pad);
        }
    }
    for p in [r_plane, g_plane, b_plane] {
        p[g.new_h * g.det_w..].fill(pad);
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::PixelFormat;
    use super::super::frame::tests::{ALL_FORMATS, TestFrame, same_picture_in};
    use super::*;

    const SCRFD: (f32, f32) = (127.5, 1.0 / 128.0);
    const PAD: f32 = -127.5 / 128.0;

    fn norm(v: u8) -> f32 {
        (v as f32 - 127.5) * (1.0 / 128.0)
    }

    #[test]
    fn size_rule_matches_insightface() {
        // 1080/1920 = 0.5625 ≤ 1: width fills, 640·0.5625 = 360; scale 360/1080 = 1/3.
        assert_eq!(letterbox_size(1920, 1080, 640, 640), (640, 360, 1.0 / 3.0));
        // Square: ratio 1 is not > 1, so width fills: 640 × 640, scale 640/512 = 1.25.
        assert_eq!(letterbox_size(512, 512, 640, 640), (640, 640, 1.25));
        // 144/176 = 0.8182: 640·0.8182 = 523.64 → 523; scale 523/144 = 3.63194.
        assert_eq!(letterbox_size(176, 144, 640, 640), (640, 523, (523.0f64 / 144.0) as f32));
        // Portrait 1920/1080 = 1.778 > 1: height fills, 640/1.778 = 360; scale 640/1920.
        assert_eq!(letterbox_size(1080, 1920, 640, 640), (360, 640, 1.0 / 3.0));
        // Non-square detector 640 × 384 (ratio 0.6); 480/640 = 0.75 > 0.6: height fills,
        // 384/0.75 = 512; scale 384/480 = 0.8.
        assert_eq!(letterbox_size(640, 480, 640, 384), (512, 384, 0.8));
        // 7/3 > 1: 640/(7/3) = 274.29 → 274; scale 640/7.
        assert_eq!(letterbox_size(3, 7, 640, 640), (274, 640, (640.0f64 / 7.0) as f32));
        // 640·3/1000 = 1.92 → 1 row; scale 1/3.
        assert_eq!(letterbox_size(1000, 3, 640, 640), (640, 1, 1.0 / 3.0));
        // 640·1/10000 = 0.064 would be 0 rows: kept at 1.
        assert_eq!(letterbox_size(10000, 1, 640, 640), (640, 1, 1.0));
        assert_eq!(letterbox_size(0, 10, 640, 640), (0, 0, 1.0));
    }

    /// A 1-row-per-channel packed frame in `format` with the given R, G, B rows.
    fn frame_from_channels(
        format: PixelFormat,
        w: usize,
        h: usize,
        rgb: impl Fn(usize, usize) -> [u8; 3],
    ) -> TestFrame {
        let mut frame = TestFrame::new(format, w, h, 0x5A);
        let (bpp, offsets) = format.packed_layout().expect("packed");
        for y in 0..h {
            for x in 0..w {
                let px = rgb(x, y);
                for c in 0..3 {
                    frame.planes[0][y * frame.strides[0] + x * bpp + offsets[c]] = px[c];
                }
            }
        }
        frame
    }

    #[test]
    fn upscale_matches_hand_computed_bilinear() {
        // 2×2 → 4×4 (scale 2). Source coordinates (d + 0.5)/2 − 0.5 = −0.25, 0.25, 0.75, 1.25:
        // the outer ones clamp to the edge pixel, the inner ones weigh the second pixel 1/4, 3/4.
        // Red: rows [0, 100] and [200, 40] →
        //   row 0: 0, 25, 75, 100;  row 3: 200, 160, 80, 40;
        //   row 1 = ¾·row0 + ¼·row3 = 50, 58.75, 76.25, 85 → 50, 59, 76, 85;
        //   row 2 = ¼·row0 + ¾·row3 = 150, 126.25, 78.75, 55 → 150, 126, 79, 55.
        let red = [[0u8, 100], [200, 40]];
        let frame = frame_from_channels(PixelFormat::Bgra, 2, 2, |x, y| [red[y][x], 7, 255 - red[y][x]]);
        let mut out = vec![f32::NAN; 3 * 16];
        let scale = letterbox_blob(&frame.view(), 4, 4, SCRFD, &mut out);
        assert_eq!(scale, 2.0);
        let expect: [u8; 16] = [0, 25, 75, 100, 50, 59, 76, 85, 150, 126, 79, 55, 200, 160, 80, 40];
        for i in 0..16 {
            assert_eq!(out[i], norm(expect[i]), "red {i}");
            assert_eq!(out[16 + i], norm(7), "green {i}");
        }
        // Blue is 255 − red, whose interpolation rounds at the mirrored points: 255 − 58.75 =
        // 196.25 → 196, 255 − 126.25 = 128.75 → 129, 255 − 76.25 = 178.75 → 179, ….
        let blue: [u8; 16] = [255, 230, 180, 155, 205, 196, 179, 170, 105, 129, 176, 200, 55, 95, 175, 215];
        for i in 0..16 {
            assert_eq!(out[32 + i], norm(blue[i]), "blue {i}");
        }
    }

    #[test]
    fn downscale_pads_right_and_bottom() {
        // 3×1 → det 4×4: width fills, new size 4 × int(4/3) = 4 × 1.
        // x: (d + 0.5)·0.75 − 0.5 = −0.125, 0.625, 1.375, 2.125 → 10, 10 + 0.625·10 = 16.25,
        // 20 + 0.375·230 = 106.25, and the clamped last pixel 250.
        let vals = [10u8, 20, 250];
        let frame = frame_from_channels(PixelFormat::Rgb, 3, 1, |x, _| [vals[x], 0, 255]);
        let mut out = vec![f32::NAN; 3 * 16];
        let scale = letterbox_blob(&frame.view(), 4, 4, SCRFD, &mut out);
        assert_eq!(scale, 1.0);
        assert_eq!(&out[..4], &[norm(10), norm(16), norm(106), norm(250)]);
        assert!(out[4..16].iter().all(|&v| v == PAD));
        assert_eq!(&out[16..20], &[norm(0); 4]);
        assert_eq!(&out[32..36], &[norm(255); 4]);
        assert!(out[20..32].iter().chain(&out[36..]).all(|&v| v == PAD));

        // Portrait: 1×3 into 4×2: 3/1 > 2/4, so height fills: new 0 → kept at 1 wide, 2 high.
        let frame = frame_from_channels(PixelFormat::Rgb, 1, 3, |_, y| [vals[y], 0, 0]);
        let mut out = vec![f32::NAN; 3 * 8];
        let scale = letterbox_blob(&frame.view(), 4, 2, SCRFD, &mut out);
        assert_eq!(scale, 2.0 / 3.0);
        // y: (d + 0.5)·1.5 − 0.5 = 0.25, 1.75 → 10 + 0.25·10 = 12.5 → 13; 20 + 0.75·230 = 192.5 → 193.
        assert_eq!(&out[..8], &[norm(13), PAD, PAD, PAD, norm(193), PAD, PAD, PAD]);
    }

    #[test]
    fn every_format_letterboxes_alike() {
        let (w, h) = (9, 5);
        let mut reference = vec![0.0f32; 3 * 8 * 8];
        let (rgb_frame, _) = same_picture_in(PixelFormat::Rgb, w, h);
        letterbox_blob(&rgb_frame.view(), 8, 8, SCRFD, &mut reference);
        for format in ALL_FORMATS {
            let (frame, _) = same_picture_in(format, w, h);
            let mut out = vec![f32::NAN; 3 * 8 * 8];
            letterbox_blob(&frame.view(), 8, 8, SCRFD, &mut out);
            assert_eq!(out, reference, "{format:?}");
        }
    }
}
