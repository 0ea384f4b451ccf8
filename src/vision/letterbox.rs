// SPDX-License-Identifier: MPL-2.0
//! SCRFD input preparation: InsightFace's aspect-keeping letterbox (top-left aligned), bilinear
//! resize as OpenCV's `cv2.resize(INTER_LINEAR)` computes it (see [`super::resize`]), then NCHW
//! RGB normalised `(v − mean) · scale` (SCRFD: mean 127.5, scale 1/128). A device computes the
//! same from the plan of [`super::letterbox_plan`].
//!
//! The resize reads the frame's planes where they lie (rows `stride` bytes apart, no copy), one
//! output row at a time, and resizes three components before any conversion: R, G and B of a
//! packed layout, or Y, U and V of a YUV layout, each to every output pixel. Only the
//! `new_w × new_h` output pixels are then converted.

use super::frame::{FrameView, YuvLayout};
use super::resize::{Tap, axis_taps, combine, horizontal, horizontal_pixels};
use super::yuv::YuvCoeffs;

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
/// of one size allocates nothing after the first.
#[derive(Debug, Default)]
pub struct LetterboxScratch {
    /// The taps of the output columns (on pixels and on subsampled chroma) and rows.
    x_taps: Vec<Tap>,
    chroma_x_taps: Vec<Tap>,
    y_taps: Vec<Tap>,
    /// The horizontal passes of two source rows, each component's, and which rows they are:
    /// an output row needs two, and upscaling reuses them for the next.
    passes: [(Option<usize>, [Vec<i32>; 3]); 2],
    /// One output row's components.
    row: [Vec<u8>; 3],
}

/// Fills `out` (`3 × det_h × det_w`, NCHW planar RGB) with the letterboxed frame, each 8-bit
/// value `v` as `(v − mean) · scale` and the padding as 0 would be, and returns `det_scale` (see
/// [`letterbox_size`]).
///
/// A packed RGB frame gets the values `cv2.resize` gives (exactly when downscaling, see
/// [`super::resize`]). A YUV frame is resized before its conversion to RGB, which puts it within
/// a few levels of its own RGB conversion letterboxed (the tests measure it).
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
    scratch.letterbox(src, Geometry::new(src, det_w, det_h), Output { mean, scale, lut: &lut, out })
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

/// The three components a frame is resized as.
enum Source<'a> {
    /// R, G and B, bytes `offsets` of the `bpp`-byte pixels (3 or 4) of the rows.
    Packed { rows: PlaneRows<'a>, bpp: usize, offsets: [usize; 3] },
    /// Y, U and V, each where its [`Component`] says.
    Yuv([Component<'a>; 3]),
}

/// Where one of Y, U and V lies: byte `offset` of every `step` bytes of the rows of a plane,
/// source row `i` in plane row `i / rows_per`.
#[derive(Clone, Copy)]
struct Component<'a> {
    rows: PlaneRows<'a>,
    offset: usize,
    step: usize,
    rows_per: usize,
}

impl<'a> Component<'a> {
    /// The component's samples on source row `i`, from the first on.
    fn row(&self, i: usize) -> Result<&'a [u8], String> {
        Ok(self.rows.row(i / self.rows_per)?.get(self.offset..).unwrap_or_default())
    }
}

impl Source<'_> {
    /// The horizontal passes of source row `i` of the three components into `out`.
    fn pass(&self, i: usize, taps: &[Tap], chroma_taps: &[Tap], out: [&mut [i32]; 3]) -> Result<(), String> {
        match self {
            Source::Packed { rows, bpp: 3, offsets } => horizontal_pixels::<3>(rows.row(i)?, taps, *offsets, out),
            Source::Packed { rows, offsets, .. } => horizontal_pixels::<4>(rows.row(i)?, taps, *offsets, out),
            Source::Yuv([y, u, v]) => {
                let [out_y, out_u, out_v] = out;
                let (luma, chroma) = (y.row(i)?, [u.row(i)?, v.row(i)?]);
                match y.step {
                    1 => horizontal::<1, 1>([luma], taps, [out_y]),
                    _ => horizontal::<2, 1>([luma], taps, [out_y]),
                }
                // U and V share their taps: one loop for both.
                match u.step {
                    1 => horizontal::<1, 2>(chroma, chroma_taps, [out_u, out_v]),
                    2 => horizontal::<2, 2>(chroma, chroma_taps, [out_u, out_v]),
                    _ => horizontal::<4, 2>(chroma, chroma_taps, [out_u, out_v]),
                }
            }
        }
        Ok(())
    }
}

impl LetterboxScratch {
    fn letterbox(&mut self, src: &FrameView, g: Geometry, mut out: Output) -> Result<f32, String> {
        if g.new_w > 0 && g.new_h > 0 {
            axis_taps(src.width, g.new_w, &mut self.x_taps);
            axis_taps(src.height, g.new_h, &mut self.y_taps);
            self.chroma_x_taps.clear();
            self.chroma_x_taps.extend(self.x_taps.iter().map(|t| t.subsampled(2)));
            if let Some((bpp, offsets)) = src.format.packed_layout() {
                let rows = PlaneRows::of(src, 0, src.width * bpp);
                self.resize(&Source::Packed { rows, bpp, offsets }, g, |y, rgb| out.put_rgb(y, rgb, g))?;
            } else if let Some(layout) = src.format.yuv_layout() {
                let coeffs = YuvCoeffs::of(src.matrix, src.full_range);
                let source = Source::Yuv(yuv_components(src, layout));
                self.resize(&source, g, |y, yuv| out.put_yuv(y, yuv, coeffs, g))?;
            } else {
                return Err(format!("letterbox: no layout for {:?}", src.format));
            }
        }
        out.pad_from_row(g.new_h, g);
        Ok(g.det_scale)
    }

    /// Resizes the three components to `new_w × new_h`, handing each output row to `emit`.
    fn resize(&mut self, source: &Source, g: Geometry, mut emit: impl FnMut(usize, [&[u8]; 3])) -> Result<(), String> {
        // The passes are of the previous frame.
        for pass in &mut self.passes {
            pass.0 = None;
        }
        for y in 0..g.new_h {
            let tap = self.y_taps[y];
            let mut slots = [0; 2];
            for (k, source_row) in [tap.i0, tap.i1].into_iter().enumerate() {
                slots[k] = match self.passes.iter().position(|pass| pass.0 == Some(source_row)) {
                    Some(slot) => slot,
                    None => {
                        // Not the slot that holds the tap's other row.
                        let slot = if k == 1 { 1 - slots[0] } else { usize::from(self.passes[0].0 == Some(tap.i1)) };
                        let (rows, passes) = &mut self.passes[slot];
                        for pass in passes.iter_mut() {
                            pass.resize(g.new_w, 0);
                        }
                        let [p0, p1, p2] = passes;
                        source.pass(source_row, &self.x_taps, &self.chroma_x_taps, [p0, p1, p2])?;
                        *rows = Some(source_row);
                        slot
                    }
                };
            }
            let [(_, p0), (_, p1)] = &self.passes;
            let (first, second) = if slots[0] == 0 { (p0, p1) } else { (p1, p0) };
            let second = if slots[0] == slots[1] { first } else { second };
            for ((out, d0), d1) in self.row.iter_mut().zip(first).zip(second) {
                out.resize(g.new_w, 0);
                combine(d0, d1, tap, out);
            }
            let [a, b, c] = &self.row;
            emit(y, [a, b, c]);
        }
        Ok(())
    }
}

/// Y, U and V of a YUV layout. Packed 4:2:2 rows hold whole pairs, chroma included.
fn yuv_components<'a>(src: &FrameView<'a>, layout: YuvLayout) -> [Component<'a>; 3] {
    let (y_step, c_step, c_rows) = layout.family.steps();
    let [luma_len, chroma_len] = layout.family.row_lens(src.width);
    std::array::from_fn(|c| {
        let (len, step, rows_per) = if c == 0 { (luma_len, y_step, 1) } else { (chroma_len, c_step, c_rows) };
        let rows = PlaneRows::of(src, layout.planes[c], len);
        Component { rows, offset: layout.offsets[c], step, rows_per }
    })
}

/// The first `len` bytes of each row of one plane of a frame.
#[derive(Clone, Copy)]
struct PlaneRows<'a> {
    data: &'a [u8],
    stride: usize,
    len: usize,
}

impl<'a> PlaneRows<'a> {
    fn of(src: &FrameView<'a>, plane: usize, len: usize) -> Self {
        PlaneRows { data: src.planes[plane], stride: src.strides[plane], len }
    }

    fn row(&self, i: usize) -> Result<&'a [u8], String> {
        i.checked_mul(self.stride).and_then(|start| self.data.get(start..start.checked_add(self.len)?)).ok_or_else(
            || format!("letterbox: a plane of {} bytes has no row {i} (stride {})", self.data.len(), self.stride),
        )
    }
}

/// Where the letterboxed pixels go: an NCHW planar float RGB blob, value `v` written as
/// `(v − mean) · scale`, which `lut` holds for each `v` (for the loop that converts YUV pixel by
/// pixel).
struct Output<'a> {
    mean: f32,
    scale: f32,
    lut: &'a [f32; 256],
    out: &'a mut [f32],
}

impl Output<'_> {
    /// Writes row `y` from its R, G and B (`new_w` each), then its padding.
    fn put_rgb(&mut self, y: usize, rgb: [&[u8]; 3], g: Geometry) {
        for (line, channel) in blob_lines(self.out, self.lut[0], y, g).into_iter().zip(rgb) {
            normalise(channel, self.mean, self.scale, line);
        }
    }

    /// Writes row `y` from its Y, U and V (`new_w` each), then its padding.
    fn put_yuv(&mut self, y: usize, [ys, us, vs]: [&[u8]; 3], coeffs: &YuvCoeffs, g: Geometry) {
        let rgb = ys.iter().zip(us).zip(vs).map(|((&y, &u), &v)| coeffs.to_rgb(y, u, v));
        let lut = self.lut;
        let [r, gr, b] = blob_lines(self.out, lut[0], y, g);
        for (((r, gr), b), [pr, pg, pb]) in r.iter_mut().zip(gr.iter_mut()).zip(b.iter_mut()).zip(rgb) {
            (*r, *gr, *b) = (lut[pr as usize], lut[pg as usize], lut[pb as usize]);
        }
    }

    /// Pads every row from `y` on.
    fn pad_from_row(&mut self, y: usize, g: Geometry) {
        let w = g.det_w;
        for plane in self.out.chunks_exact_mut(w * g.det_h) {
            plane[y * w..].fill(self.lut[0]);
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

/// `out[i] = (v[i] − mean) · scale`, the same floats as the lookup table, in SIMD lanes.
fn normalise(v: &[u8], mean: f32, scale: f32, out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(v) {
        *o = (v as f32 - mean) * scale;
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
        // `cv2.resize` gives these values too.
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

    /// The largest difference between two SCRFD blobs in 8-bit levels.
    fn max_levels_apart(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| ((x - y) * 128.0).abs()).fold(0.0, f32::max)
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
        // YUV frames are resized before their conversion to RGB, chroma sampled where the RGB
        // conversion replicates it, so on a picture that never leaves the RGB gamut only rounding
        // separates them from their RGB conversion letterboxed: Y, U and V are rounded to 8 bits
        // before the conversion multiplies their error (by up to 1.16 + 1.60 for R, BT.601
        // limited), the RGB path rounds after it. Measured: within 1 level at the 2× and 3×
        // downscales (720p and 1080p into 640), whose samples fall on or halfway between pixels;
        // otherwise about 40 % of the values 1 level apart, 2 % 2 levels, and 1 in 10 000 3
        // levels. Colours that the conversion clips differ by far more: see
        // `clipped_colours_differ`.
        let mut scratch = LetterboxScratch::default();
        for (w, h, det) in SIZES {
            let yuv = smooth_yuv(w, h);
            let (rgb_frame, _) = yuv_picture_in(PixelFormat::Rgb, &yuv);
            let (reference, _) = blob(&mut scratch, &rgb_frame, det, det);
            let on_pixel_grid = w == 2 * det || w == 3 * det;
            for format in ALL_FORMATS.into_iter().filter(|f| f.packed_layout().is_none()) {
                let (frame, _) = yuv_picture_in(format, &yuv);
                let (out, _) = blob(&mut scratch, &frame, det, det);
                let levels: Vec<f32> = out.iter().zip(&reference).map(|(a, b)| ((a - b) * 128.0).abs()).collect();
                let max = levels.iter().copied().fold(0.0, f32::max);
                let two_or_more = levels.iter().filter(|&&l| l > 1.5).count();
                let what = format!("{format:?} {w}×{h} into {det}: max {max}, {two_or_more} values 2 or more apart");
                assert!(max <= if on_pixel_grid { 1.0 } else { 3.0 } && two_or_more * 30 <= out.len(), "{what}");
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
            let (yuv_blob, _) = blob(&mut scratch, &i420, det, det);
            let max = max_levels_apart(&yuv_blob, &blob(&mut scratch, &rgb_frame, det, det).0);
            // Measured: 54 levels apart at 2×.
            assert!(if w == 3 * det { max == 0.0 } else { max > 20.0 }, "{w}×{h}: {max}");
        }
    }

    #[test]
    fn nothing_carries_over_between_frames() {
        // Two frames of one size through one scratch, whose horizontal passes of source rows
        // are kept between output rows (a single output row reads row 0 of both frames): the
        // second frame comes out as from a fresh scratch.
        let mut scratch = LetterboxScratch::default();
        for (w, h, det) in [(8, 1, 4), (5, 4, 16)] {
            let (first, _) = same_picture_in(PixelFormat::Rgb, w, h);
            let second = frame_from_channels(PixelFormat::Rgb, w, h, |x, y| [(x * 40) as u8, (y * 50) as u8, 9]);
            blob(&mut scratch, &first, det, det);
            let fresh = blob(&mut LetterboxScratch::default(), &second, det, det);
            assert_eq!(blob(&mut scratch, &second, det, det), fresh, "{w}×{h}");
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
        assert!(letterbox_blob(&mut scratch, &frame.view(), usize::MAX, 4, SCRFD, &mut []).is_err(), "overflow");
        // A view built by hand, bypassing `FrameView::new`'s checks, with a plane too short: an
        // error, not a panic.
        let view = FrameView { planes: [&frame.planes[0][..10], &[], &[]], ..frame.view() };
        let err = letterbox_blob(&mut scratch, &view, 4, 4, SCRFD, &mut [0.0; 48]).expect_err("short plane");
        assert!(err.contains("has no row"), "{err}");
    }
}
