// SPDX-License-Identifier: MPL-2.0
//! SCRFD input preparation: InsightFace's aspect-keeping letterbox (top-left aligned), bilinear
//! resize as OpenCV's `cv2.resize(INTER_LINEAR)`, then either NCHW RGB normalised
//! `(v − mean) · scale` (SCRFD: mean 127.5, scale 1/128) for the CPU, or packed 8-bit RGB for a
//! device that normalises itself.
//!
//! The resize runs on the frame's own planes (see [`super::resize`]), before any conversion to
//! RGB: packed RGB layouts resize their 3- or 4-byte pixels as they are, YUV layouts resize luma
//! and chroma separately, the chroma straight to the letterbox size so that each output pixel
//! gets chroma interpolated at its own position. Only the `new_w × new_h` result is then read
//! as RGB, by one loop per output kind.

use fast_image_resize::Resizer;

use super::frame::{FrameView, PixelRow, PixelSource, YuvCoeffs, YuvFamily, YuvLayout, YuvSource};
use super::resize::{Plane, replicated_chroma, resize_plane};
use fast_image_resize::FilterType::Bilinear;

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

/// Buffers of the letterbox that are kept from one frame to the next, so that a stream of frames
/// of one size allocates only on the first (`fast_image_resize` itself still builds its small
/// coefficient tables on each call).
#[derive(Debug, Default)]
pub struct LetterboxScratch {
    resizer: Resizer,
    /// The resized frame: the pixels of a packed RGB layout, or a YUV layout's luma (packed
    /// 4:2:2: its (Y, chroma) byte pairs).
    main: Vec<u8>,
    /// A YUV layout's chroma resized to the letterbox size: the U and V planes of planar
    /// layouts; the layout's interleaved chroma in `chroma[0]` otherwise.
    chroma: [Vec<u8>; 2],
}

/// Fills `out` (`3 × det_h × det_w`, NCHW planar RGB) with the letterboxed frame, each 8-bit
/// value `v` as `(v − mean) · scale` and the padding as 0 would be, and returns `det_scale` (see
/// [`letterbox_size`]).
///
/// Interpolation is bilinear in 8-bit fixed point, rounded to 8 bits as OpenCV's output is;
/// single values may differ from OpenCV by one level (see [`super::resize`]). A YUV frame is
/// resized before its conversion to RGB, which puts it within a few levels of its own RGB
/// conversion letterboxed (the tests measure it).
pub fn letterbox_blob(
    scratch: &mut LetterboxScratch,
    src: &FrameView,
    det_w: usize,
    det_h: usize,
    (mean, scale): (f32, f32),
    out: &mut [f32],
) -> Result<f32, String> {
    check_output_len(out.len(), det_w, det_h)?;
    let lut = std::array::from_fn(|v| (v as f32 - mean) * scale);
    scratch.letterbox(src, Geometry::new(src, det_w, det_h), Output::Blob { mean, scale, lut: &lut, out })
}

/// Fills `out` (`det_h × det_w × 3`, packed 8-bit RGB) with the letterboxed frame, padded with
/// zeros, and returns `det_scale`: the same pixels as [`letterbox_blob`], before normalisation.
pub fn letterbox_rgb(
    scratch: &mut LetterboxScratch,
    src: &FrameView,
    det_w: usize,
    det_h: usize,
    out: &mut [u8],
) -> Result<f32, String> {
    check_output_len(out.len(), det_w, det_h)?;
    scratch.letterbox(src, Geometry::new(src, det_w, det_h), Output::Rgb(out))
}

fn check_output_len(len: usize, det_w: usize, det_h: usize) -> Result<(), String> {
    match det_w.checked_mul(det_h).and_then(|n| n.checked_mul(3)) {
        Some(n) if n == len => Ok(()),
        _ => Err(format!("letterbox: output holds {len} values, expected 3×{det_h}×{det_w}")),
    }
}

#[derive(Clone, Copy)]
struct Geometry {
    /// The letterboxed frame's size, at the top-left of the `det_w × det_h` output.
    new_w: usize,
    new_h: usize,
    det_w: usize,
    det_h: usize,
    det_scale: f32,
}

impl Geometry {
    fn new(src: &FrameView, det_w: usize, det_h: usize) -> Self {
        let (new_w, new_h, det_scale) = letterbox_size(src.width, src.height, det_w, det_h);
        Geometry { new_w, new_h, det_w, det_h, det_scale }
    }
}

impl LetterboxScratch {
    fn letterbox(&mut self, src: &FrameView, g: Geometry, mut out: Output) -> Result<f32, String> {
        if g.new_w == 0 || g.new_h == 0 {
            out.pad_from_row(0, g);
            return Ok(g.det_scale);
        }
        let size = (g.new_w, g.new_h);
        if let Some((bpp, offsets)) = src.format.packed_layout() {
            let frame = plane(src, 0, src.width, src.height, bpp);
            resize_plane(&mut self.resizer, frame, None, Bilinear, &mut self.main, size)?;
            let layout = PackedLayout::of(bpp, offsets)?;
            for (y, row) in self.main.chunks_exact(g.new_w * bpp).enumerate() {
                out.put_packed_row(y, row, layout, g);
            }
        } else {
            let layout = src.format.yuv_layout().ok_or_else(|| format!("letterbox: {:?} is not YUV", src.format))?;
            self.resize_yuv(src, layout, size)?;
            let [u_buf, v_buf] = if layout.family == YuvFamily::Planar420 { [0, 1] } else { [0, 0] };
            let bufs = [&self.main, &self.chroma[u_buf], &self.chroma[v_buf]];
            let planes = std::array::from_fn(|c| bufs[c].get(layout.offsets[c]..).unwrap_or_default());
            let (coeffs, w) = (YuvCoeffs::of(src.matrix, src.full_range), g.new_w);
            match layout.family {
                YuvFamily::Planar420 => {
                    let s = YuvSource::<1, 1, 1, 1>::from_planes(planes, [w, w, w], coeffs);
                    yuv_rows(&s, &mut out, g)
                }
                YuvFamily::SemiPlanar420 => {
                    let s = YuvSource::<1, 2, 1, 1>::from_planes(planes, [w, 2 * w, 2 * w], coeffs);
                    yuv_rows(&s, &mut out, g)
                }
                YuvFamily::Packed422 => {
                    let s = YuvSource::<2, 4, 1, 1>::from_planes(planes, [2 * w, 4 * w, 4 * w], coeffs);
                    yuv_rows(&s, &mut out, g)
                }
            }
        }
        out.pad_from_row(g.new_h, g);
        Ok(g.det_scale)
    }

    /// Resizes a YUV frame's luma into `main` and its chroma into `chroma`, all to `size`, the
    /// samples interleaved as the layout interleaves them (packed 4:2:2 luma is resized as
    /// (Y, chroma) byte pairs of which only Y is read).
    ///
    /// The chroma is resized straight to the letterbox size with the kernel of
    /// [`replicated_chroma`], so that each output pixel gets the chroma that the frame's RGB
    /// conversion, letterboxed, would give it: what is left between the two is rounding (the
    /// resizer rounds Y, U and V to 8 bits before the conversion amplifies them) and where the
    /// conversion clips to the RGB gamut.
    fn resize_yuv(&mut self, src: &FrameView, layout: YuvLayout, size: (usize, usize)) -> Result<(), String> {
        let (y_step, c_step, c_rows) = layout.family.steps();
        let luma = plane(src, layout.planes[0], src.width, src.height, y_step);
        resize_plane(&mut self.resizer, luma, None, Bilinear, &mut self.main, size)?;
        let chroma_kernel = replicated_chroma()?;
        // Chroma sample `c` stands for frame pixels `2c` and `2c + 1`: the frame covers half a
        // chroma sample per pixel, less than the whole chroma plane when its size is odd.
        let (cw, ch) = (src.width.div_ceil(2), src.height.div_ceil(c_rows));
        let half_w = src.width as f64 / 2.0;
        let extent = Some((half_w, src.height as f64 / c_rows as f64));
        let [c0, c1] = &mut self.chroma;
        match layout.family {
            YuvFamily::Planar420 => {
                for (&p, buf) in layout.planes[1..].iter().zip([c0, c1]) {
                    resize_plane(&mut self.resizer, plane(src, p, cw, ch, c_step), extent, chroma_kernel, buf, size)?;
                }
            }
            YuvFamily::SemiPlanar420 => {
                let uv = plane(src, layout.planes[1], cw, ch, c_step);
                resize_plane(&mut self.resizer, uv, extent, chroma_kernel, c0, size)?;
            }
            YuvFamily::Packed422 => {
                // Chroma rows are not subsampled: rows first, bilinearly as the luma (into the
                // buffer that planar V would use), then columns with the replicated kernel.
                let rows = (cw, size.1);
                resize_plane(&mut self.resizer, plane(src, 0, cw, src.height, c_step), None, Bilinear, c1, rows)?;
                let resized = Plane { data: c1, stride: cw * c_step, width: cw, height: size.1, bpp: c_step };
                resize_plane(&mut self.resizer, resized, Some((half_w, size.1 as f64)), chroma_kernel, c0, size)?;
            }
        }
        Ok(())
    }
}

/// Plane `p` of `src` as `width × height` pixels of `bpp` bytes.
fn plane<'a>(src: &FrameView<'a>, p: usize, width: usize, height: usize, bpp: usize) -> Plane<'a> {
    Plane { data: src.planes[p], stride: src.strides[p], width, height, bpp }
}

/// Converts the resized YUV rows of `s` to RGB into `out`.
fn yuv_rows<S: PixelSource>(s: &S, out: &mut Output, g: Geometry) {
    for y in 0..g.new_h {
        out.put_converted_row(y, &s.row(y), g);
    }
}

/// Where the colour bytes lie in a row of resized packed pixels: `bpp` bytes per pixel, R, G and
/// B at `offsets`, which are the three contiguous bytes from `first` on (true of every packed
/// layout): byte `first + k` holds channel `channels[k]`.
#[derive(Clone, Copy, Debug, PartialEq)]
struct PackedLayout {
    bpp: usize,
    offsets: [usize; 3],
    first: usize,
    channels: [usize; 3],
}

impl PackedLayout {
    const RGB: PackedLayout = PackedLayout { bpp: 3, offsets: [0, 1, 2], first: 0, channels: [0, 1, 2] };

    fn of(bpp: usize, offsets: [usize; 3]) -> Result<Self, String> {
        let first = offsets.iter().copied().min().unwrap_or_default();
        let mut channels = [usize::MAX; 3];
        for (c, &o) in offsets.iter().enumerate() {
            if let Some(k) = o.checked_sub(first).filter(|&k| k < 3) {
                channels[k] = c;
            }
        }
        match (bpp, first) {
            (3, 0) | (4, 0 | 1) if !channels.contains(&usize::MAX) => {
                Ok(PackedLayout { bpp, offsets, first, channels })
            }
            _ => Err(format!("letterbox: no conversion for {bpp}-byte pixels with colour bytes at {offsets:?}")),
        }
    }
}

/// Where the letterboxed pixels go.
enum Output<'a> {
    /// NCHW planar float RGB: value `v` becomes `(v − mean) · scale`, which `lut` holds for each
    /// `v` (for the loops that look values up one by one).
    Blob { mean: f32, scale: f32, lut: &'a [f32; 256], out: &'a mut [f32] },
    /// Packed 8-bit RGB.
    Rgb(&'a mut [u8]),
}

impl Output<'_> {
    /// Writes row `y` from a row of resized packed pixels laid out as `layout` says.
    fn put_packed_row(&mut self, y: usize, row: &[u8], layout: PackedLayout, g: Geometry) {
        match self {
            Output::Blob { mean, scale, lut, out } => {
                let mut lines = blob_lines(out, lut[0], y, g).map(Some);
                let by_byte = layout.channels.map(|c| lines[c].take().unwrap_or_default());
                match (layout.bpp, layout.first) {
                    (3, _) => normalise_row::<3, 0>(row, by_byte, *mean, *scale),
                    (_, 0) => normalise_row::<4, 0>(row, by_byte, *mean, *scale),
                    _ => normalise_row::<4, 1>(row, by_byte, *mean, *scale),
                }
            }
            Output::Rgb(out) => {
                let pixels = rgb_line(out, y, g);
                if layout == PackedLayout::RGB {
                    pixels.copy_from_slice(&row[..pixels.len()]);
                } else {
                    let [r, gr, b] = layout.offsets;
                    for (o, p) in pixels.chunks_exact_mut(3).zip(row.chunks_exact(layout.bpp)) {
                        o.copy_from_slice(&[p[r], p[gr], p[b]]);
                    }
                }
            }
        }
    }

    /// Writes row `y` from a row that converts its pixels to RGB one by one (YUV).
    fn put_converted_row(&mut self, y: usize, row: &impl PixelRow, g: Geometry) {
        match self {
            Output::Blob { lut, out, .. } => {
                let [r, gr, b] = blob_lines(out, lut[0], y, g);
                for (x, ((r, gr), b)) in r.iter_mut().zip(gr.iter_mut()).zip(b.iter_mut()).enumerate() {
                    let [pr, pg, pb] = row.rgb(x);
                    (*r, *gr, *b) = (lut[pr as usize], lut[pg as usize], lut[pb as usize]);
                }
            }
            Output::Rgb(out) => {
                for (x, px) in rgb_line(out, y, g).chunks_exact_mut(3).enumerate() {
                    px.copy_from_slice(&row.rgb(x));
                }
            }
        }
    }

    /// Pads every row from `y` on.
    fn pad_from_row(&mut self, y: usize, g: Geometry) {
        let w = g.det_w;
        match self {
            Output::Blob { lut, out, .. } => {
                for plane in out.chunks_exact_mut(w * g.det_h) {
                    plane[y * w..].fill(lut[0]);
                }
            }
            Output::Rgb(out) => out[y * w * 3..].fill(0),
        }
    }
}

/// Row `y` of each plane of a blob (`out` has the size that `check_output_len` checked), its
/// right padding filled with `pad`; returns the row's `new_w` pixels of each.
fn blob_lines(out: &mut [f32], pad: f32, y: usize, g: Geometry) -> [&mut [f32]; 3] {
    let (w, plane) = (g.det_w, g.det_w * g.det_h);
    let (r, rest) = out.split_at_mut(plane);
    let (gr, b) = rest.split_at_mut(plane);
    [r, gr, b].map(|p| {
        let (pixels, padding) = p[y * w..(y + 1) * w].split_at_mut(g.new_w);
        padding.fill(pad);
        pixels
    })
}

/// Row `y` of a packed RGB output, its right padding zeroed; returns the row's `new_w` pixels.
fn rgb_line(out: &mut [u8], y: usize, g: Geometry) -> &mut [u8] {
    let w = g.det_w;
    let (pixels, padding) = out[y * w * 3..(y + 1) * w * 3].split_at_mut(g.new_w * 3);
    padding.fill(0);
    pixels
}

/// `(v − mean) · scale` of the colour bytes of each `BPP`-byte pixel of `row`, byte `FIRST + k`
/// into `planes[k]`. The byte positions are constants so that the loop vectorises (AVX2 where
/// the CPU has it: the float blob is most of the letterbox's memory traffic).
fn normalise_row<const BPP: usize, const FIRST: usize>(row: &[u8], planes: [&mut [f32]; 3], mean: f32, scale: f32) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: the function's one requirement is a CPU with AVX2, checked just above.
        return unsafe { normalise_row_avx2::<BPP, FIRST>(row, planes, mean, scale) };
    }
    normalise_row_portable::<BPP, FIRST>(row, planes, mean, scale)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn normalise_row_avx2<const BPP: usize, const FIRST: usize>(
    row: &[u8],
    planes: [&mut [f32]; 3],
    mean: f32,
    scale: f32,
) {
    normalise_row_portable::<BPP, FIRST>(row, planes, mean, scale)
}

#[inline(always)]
fn normalise_row_portable<const BPP: usize, const FIRST: usize>(
    row: &[u8],
    [a, b, c]: [&mut [f32]; 3],
    mean: f32,
    scale: f32,
) {
    let norm = |v: u8| (v as f32 - mean) * scale;
    for (p, ((a, b), c)) in row.chunks_exact(BPP).zip(a.iter_mut().zip(b.iter_mut()).zip(c.iter_mut())) {
        (*a, *b, *c) = (norm(p[FIRST]), norm(p[FIRST + 1]), norm(p[FIRST + 2]));
    }
}

#[cfg(test)]
mod tests {
    use super::super::frame::PixelFormat;
    use super::super::frame::tests::{ALL_FORMATS, TestFrame, same_picture_in, yuv_picture_in};
    use super::*;

    const SCRFD: (f32, f32) = (127.5, 1.0 / 128.0);
    const PAD: f32 = -127.5 / 128.0;

    fn norm(v: u8) -> f32 {
        (v as f32 - 127.5) * (1.0 / 128.0)
    }

    /// The SCRFD blob of `frame` letterboxed into `det_w × det_h`, and `det_scale`.
    fn blob(scratch: &mut LetterboxScratch, frame: &TestFrame, det_w: usize, det_h: usize) -> (Vec<f32>, f32) {
        let mut out = vec![f32::NAN; 3 * det_w * det_h];
        let scale = letterbox_blob(scratch, &frame.view(), det_w, det_h, SCRFD, &mut out).expect("letterbox");
        (out, scale)
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
        let (out, scale) = blob(&mut LetterboxScratch::default(), &frame, 4, 4);
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
        let mut scratch = LetterboxScratch::default();
        let (out, scale) = blob(&mut scratch, &frame, 4, 4);
        assert_eq!(scale, 1.0);
        assert_eq!(&out[..4], &[norm(10), norm(16), norm(106), norm(250)]);
        assert!(out[4..16].iter().all(|&v| v == PAD));
        assert_eq!(&out[16..20], &[norm(0); 4]);
        assert_eq!(&out[32..36], &[norm(255); 4]);
        assert!(out[20..32].iter().chain(&out[36..]).all(|&v| v == PAD));

        // Portrait: 1×3 into 4×2: 3/1 > 2/4, so height fills: new 0 → kept at 1 wide, 2 high.
        let frame = frame_from_channels(PixelFormat::Rgb, 1, 3, |_, y| [vals[y], 0, 0]);
        let (out, scale) = blob(&mut scratch, &frame, 4, 2);
        assert_eq!(scale, 2.0 / 3.0);
        // y: (d + 0.5)·1.5 − 0.5 = 0.25, 1.75 → 10 + 0.25·10 = 12.5 → 13; 20 + 0.75·230 = 192.5 → 193.
        assert_eq!(&out[..8], &[norm(13), PAD, PAD, PAD, norm(193), PAD, PAD, PAD]);
    }

    /// The largest difference between two SCRFD blobs, and the mean one, in 8-bit levels.
    fn levels_apart(a: &[f32], b: &[f32]) -> (f32, f32) {
        let diffs = a.iter().zip(b).map(|(x, y)| ((x - y) * 128.0).abs());
        (diffs.clone().fold(0.0, f32::max), diffs.sum::<f32>() / a.len() as f32)
    }

    /// `(frame width, frame height, detector side)`: downscaling by 3 (as 1080p into 640) and 2
    /// (720p), odd sizes, fractional scales, upscaling, single pixels and rows.
    const SIZES: [(usize, usize, usize); 8] =
        [(96, 54, 32), (64, 36, 32), (61, 37, 40), (100, 75, 64), (160, 90, 64), (23, 15, 64), (1, 1, 4), (5, 1, 8)];

    #[test]
    fn packed_formats_letterbox_exactly_alike() {
        // Every packed layout resizes the same RGB values, whatever its byte order and size; one
        // scratch serves every size and format in turn.
        let mut scratch = LetterboxScratch::default();
        for (w, h, det) in SIZES {
            let (rgb_frame, _) = same_picture_in(PixelFormat::Rgb, w, h);
            let reference = blob(&mut LetterboxScratch::default(), &rgb_frame, det, det);
            for format in ALL_FORMATS.into_iter().filter(|f| f.packed_layout().is_some()) {
                let (frame, _) = same_picture_in(format, w, h);
                assert_eq!(blob(&mut scratch, &frame, det, det), reference, "{format:?} {w}×{h}");
            }
        }
    }

    /// A smooth I420 picture (BT.601 limited) whose colours stay inside the RGB gamut: Y in
    /// 60..190 and chroma within ±20 of neutral never clip when decoded.
    fn smooth_yuv(width: usize, height: usize) -> TestFrame {
        let mut yuv = TestFrame::new(PixelFormat::I420, width, height, 0);
        let wave = |x: usize, y: usize, fx: f32, fy: f32| (x as f32 * fx + y as f32 * fy).sin();
        for y in 0..height {
            for x in 0..width {
                yuv.planes[0][y * yuv.strides[0] + x] = (125.0 + 60.0 * wave(x, y, 0.21, 0.13)) as u8;
            }
        }
        for (p, (fx, fy)) in [(1, (0.17, 0.29)), (2, (0.31, -0.11))] {
            for y in 0..height.div_ceil(2) {
                for x in 0..width.div_ceil(2) {
                    yuv.planes[p][y * yuv.strides[p] + x] = (128.0 + 20.0 * wave(x, y, fx, fy)) as u8;
                }
            }
        }
        yuv
    }

    #[test]
    fn yuv_formats_letterbox_within_levels_of_rgb() {
        // YUV frames are resized before their conversion to RGB, with chroma positioned as the
        // RGB conversion replicates it, so on a picture that never leaves the RGB gamut only
        // rounding separates them from their RGB conversion letterboxed: Y, U and V are each
        // rounded to 8 bits (twice: after the vertical and the horizontal pass) before the
        // conversion multiplies their error by up to 1.16 + 1.60 (BT.601 limited, R). Measured:
        // within 1 level at the 2× and 3× downscales (720p and 1080p into 640), whose samples fall
        // on or halfway between pixels; at most 3 levels at fractional scales and 4 when
        // upscaling, with a mean of 0.3 levels (97 % of the values within 1 level). On colours
        // that the conversion clips, the two differ by far more (a 2×2 average of clipped RGB is
        // not the clipped RGB of the average YUV): see `clipped_colours_differ`.
        let mut scratch = LetterboxScratch::default();
        for (w, h, det) in SIZES {
            let yuv = smooth_yuv(w, h);
            let (rgb_frame, _) = yuv_picture_in(PixelFormat::Rgb, &yuv);
            let (reference, _) = blob(&mut scratch, &rgb_frame, det, det);
            let on_pixel_grid = w == 2 * det || w == 3 * det;
            for format in ALL_FORMATS.into_iter().filter(|f| f.packed_layout().is_none()) {
                let (frame, _) = yuv_picture_in(format, &yuv);
                let (out, _) = blob(&mut scratch, &frame, det, det);
                let (max, mean) = levels_apart(&out, &reference);
                let what = format!("{format:?} {w}×{h} into {det}: max {max}, mean {mean}");
                assert!(max <= if on_pixel_grid { 1.0 } else { 4.0 } && mean < 0.4, "{what}");
            }
        }
    }

    #[test]
    fn clipped_colours_differ() {
        // Random Y, U and V mostly decode outside the RGB gamut. Downscaling by 3 samples exactly
        // at pixel centres, so nothing is averaged and the two agree; by 2, each output pixel
        // averages 2×2 pixels of one chroma block, clipped before (RGB) or after (YUV).
        let mut scratch = LetterboxScratch::default();
        for (w, h, det) in [(96, 54, 32), (64, 36, 32)] {
            let (rgb_frame, _) = same_picture_in(PixelFormat::Rgb, w, h);
            let (i420, _) = same_picture_in(PixelFormat::I420, w, h);
            let (max, _) =
                levels_apart(&blob(&mut scratch, &i420, det, det).0, &blob(&mut scratch, &rgb_frame, det, det).0);
            // Measured: 52 levels apart at 2×.
            assert!(if w == 3 * det { max == 0.0 } else { max > 20.0 }, "{w}×{h}: {max}");
        }
    }

    #[test]
    fn rgb_output_is_the_blob_before_normalisation() {
        let mut scratch = LetterboxScratch::default();
        for (w, h, det) in SIZES {
            for format in ALL_FORMATS {
                let (frame, _) = same_picture_in(format, w, h);
                let mut rgb = vec![0x5A; det * det * 3];
                let scale = letterbox_rgb(&mut scratch, &frame.view(), det, det, &mut rgb).expect("letterbox_rgb");
                // The blob from a fresh scratch: what the reused one held changes nothing.
                let (planar, blob_scale) = blob(&mut LetterboxScratch::default(), &frame, det, det);
                assert_eq!(scale, blob_scale);
                let plane = det * det;
                for (i, px) in rgb.chunks_exact(3).enumerate() {
                    for c in 0..3 {
                        assert_eq!(norm(px[c]), planar[c * plane + i], "{format:?} {w}×{h}: pixel {i} channel {c}");
                    }
                }
                let (new_w, new_h, _) = letterbox_size(w, h, det, det);
                let padding = rgb.chunks_exact(3 * det).enumerate().flat_map(|(y, row)| {
                    let from = if y < new_h { new_w * 3 } else { 0 };
                    &row[from..]
                });
                assert!(padding.into_iter().all(|&v| v == 0), "{format:?} {w}×{h}: padding");
            }
        }
    }

    #[test]
    fn empty_frames_pad_and_bad_outputs_are_errors() {
        let mut scratch = LetterboxScratch::default();
        let frame = TestFrame::new(PixelFormat::I420, 0, 0, 0);
        assert_eq!(blob(&mut scratch, &frame, 4, 2), (vec![PAD; 24], 1.0));
        let frame = TestFrame::new(PixelFormat::Rgb, 3, 2, 9);
        let err = letterbox_blob(&mut scratch, &frame.view(), 4, 4, SCRFD, &mut [0.0; 47]).expect_err("short blob");
        assert!(err.contains("holds 47 values, expected 3×4×4"), "{err}");
        assert!(letterbox_rgb(&mut scratch, &frame.view(), 4, 4, &mut [0; 49]).is_err(), "long RGB");
        assert!(letterbox_rgb(&mut scratch, &frame.view(), usize::MAX, 4, &mut []).is_err(), "overflow");
    }
}
