// SPDX-License-Identifier: MPL-2.0
//! Pixel access for every raw video format the elements accept, without GStreamer: the elements
//! wrap their mapped planes in a [`FrameView`] / [`FrameViewMut`], and the face pipeline reads and
//! writes packed RGB through them.
//!
//! The per-layout row readers (`PackedSource` and the three instances of `YuvSource`) let the hot
//! loops in this module, `letterbox` and `warp` pick the format once per call and run a
//! monomorphised loop.

use std::fmt;
use std::ops::Range;

use super::image::{Rect, RgbImage};
use super::paste::PackedPixels;
use super::yuv::{YuvCoeffs, YuvMatrix, to_u8};

/// The raw layouts the elements accept: packed 8-bit RGB variants (alpha / padding bytes are
/// ignored on read and preserved on write), and YUV with chroma shared by two horizontally
/// adjacent pixels: planar and semi-planar 4:2:0, packed 4:2:2.
///
/// Planes are in the format's memory order, as GStreamer maps them (YV12: Y, V, U).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PixelFormat {
    Rgb,
    Bgr,
    Rgba,
    Bgra,
    Rgbx,
    Bgrx,
    Xrgb,
    Xbgr,
    Argb,
    Abgr,
    /// Y plane, then U and V planes at half resolution (rounded up) in both directions.
    I420,
    /// Y plane, then one plane of interleaved U, V at half resolution (rounded up).
    Nv12,
    /// Packed 4:2:2: each pair of horizontally adjacent pixels is the 4 bytes Y₀ U Y₁ V (an odd
    /// width still fills the last pair).
    Yuy2,
    /// Packed 4:2:2 as U Y₀ V Y₁.
    Uyvy,
    /// Packed 4:2:2 as Y₀ V Y₁ U.
    Yvyu,
    /// NV12 with V before U in each chroma pair.
    Nv21,
    /// I420 with the V plane before the U plane.
    Yv12,
}

impl PixelFormat {
    /// Bytes per pixel and the byte offsets of R, G and B within a pixel; `None` for YUV.
    pub fn packed_layout(self) -> Option<(usize, [usize; 3])> {
        use PixelFormat::*;
        Some(match self {
            Rgb => (3, [0, 1, 2]),
            Bgr => (3, [2, 1, 0]),
            Rgba | Rgbx => (4, [0, 1, 2]),
            Bgra | Bgrx => (4, [2, 1, 0]),
            Xrgb | Argb => (4, [1, 2, 3]),
            Xbgr | Abgr => (4, [3, 2, 1]),
            I420 | Nv12 | Yuy2 | Uyvy | Yvyu | Nv21 | Yv12 => return None,
        })
    }

    /// Where a YUV format keeps its samples (GStreamer's format info: plane and offset of each
    /// component); `None` for packed RGB.
    pub(super) fn yuv_layout(self) -> Option<YuvLayout> {
        use PixelFormat::*;
        use YuvFamily::*;
        let (family, planes, offsets) = match self {
            I420 => (Planar420, [0, 1, 2], [0, 0, 0]),
            Yv12 => (Planar420, [0, 2, 1], [0, 0, 0]),
            Nv12 => (SemiPlanar420, [0, 1, 1], [0, 0, 1]),
            Nv21 => (SemiPlanar420, [0, 1, 1], [0, 1, 0]),
            Yuy2 => (Packed422, [0, 0, 0], [0, 1, 3]),
            Uyvy => (Packed422, [0, 0, 0], [1, 0, 2]),
            Yvyu => (Packed422, [0, 0, 0], [0, 3, 1]),
            _ => return None,
        };
        Some(YuvLayout { family, planes, offsets })
    }

    /// `(bytes per row, rows)` of each plane the format uses, and how many it uses; `None` when
    /// the sizes overflow `usize`.
    pub fn plane_shapes(self, width: usize, height: usize) -> Option<([(usize, usize); 3], usize)> {
        use PixelFormat::*;
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        Some(match self {
            I420 | Yv12 => ([(width, height), (cw, ch), (cw, ch)], 3),
            Nv12 | Nv21 => ([(width, height), (cw.checked_mul(2)?, ch), (0, 0)], 2),
            // Whole pairs: GStreamer's rows hold 4·⌈width/2⌉ bytes (and more with its padding).
            Yuy2 | Uyvy | Yvyu => ([(cw.checked_mul(4)?, height), (0, 0), (0, 0)], 1),
            packed => {
                let (bpp, _) = packed.packed_layout()?;
                ([(width.checked_mul(bpp)?, height), (0, 0), (0, 0)], 1)
            }
        })
    }
}

/// How a YUV layout subsamples and interleaves its chroma. In all of them one U and one V sample
/// serve two horizontally adjacent pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum YuvFamily {
    /// 4:2:0, one plane per component (I420, YV12).
    Planar420,
    /// 4:2:0, one plane of interleaved chroma pairs (NV12, NV21).
    SemiPlanar420,
    /// 4:2:2 packed into one plane (YUY2, UYVY, YVYU).
    Packed422,
}

impl YuvFamily {
    /// Bytes from one Y sample to the next in a row, bytes from one chroma sample to the next,
    /// and pixel rows per chroma row.
    pub(super) const fn steps(self) -> (usize, usize, usize) {
        match self {
            YuvFamily::Planar420 => (1, 1, 2),
            YuvFamily::SemiPlanar420 => (1, 2, 2),
            YuvFamily::Packed422 => (2, 4, 1),
        }
    }

    /// Bytes of a row of the luma and of the chroma samples' plane that a `width`-pixel frame
    /// uses (packed 4:2:2 rows hold whole pairs, chroma included).
    pub(super) const fn row_lens(self, width: usize) -> [usize; 2] {
        let cw = width.div_ceil(2);
        match self {
            YuvFamily::Planar420 => [width, cw],
            YuvFamily::SemiPlanar420 => [width, 2 * cw],
            YuvFamily::Packed422 => [4 * cw, 4 * cw],
        }
    }
}

/// Where a YUV format keeps its Y, U and V samples.
#[derive(Clone, Copy, Debug)]
pub(super) struct YuvLayout {
    pub(super) family: YuvFamily,
    /// The plane of the Y, U and V samples.
    pub(super) planes: [usize; 3],
    /// The byte offset of the first Y, U and V sample within a row of its plane.
    pub(super) offsets: [usize; 3],
}

impl YuvLayout {
    /// The Y, U and V samples of a frame with these plane strides.
    fn samples(self, strides: [usize; 3]) -> [Samples; 3] {
        let (y_step, c_step, _) = self.family.steps();
        let steps = [y_step, c_step, c_step];
        std::array::from_fn(|c| Samples {
            plane: self.planes[c],
            stride: strides[self.planes[c]],
            offset: self.offsets[c],
            step: steps[c],
        })
    }
}

/// Where the samples of one YUV component lie: sample `(col, row)` is byte
/// `row·stride + offset + col·step` of plane `plane`.
#[derive(Clone, Copy, Debug)]
struct Samples {
    plane: usize,
    stride: usize,
    offset: usize,
    step: usize,
}

impl Samples {
    #[inline(always)]
    fn index(&self, col: usize, row: usize) -> usize {
        row * self.stride + self.offset + col * self.step
    }
}

/// Reads pixels as RGB, one row at a time; implemented once per layout so that loops over pixels
/// are monomorphised per layout instead of matching on the format per pixel.
pub(super) trait PixelSource {
    type Row: PixelRow;

    /// Row `y`; panics when outside the frame.
    fn row(&self, y: usize) -> Self::Row;

    #[inline(always)]
    fn rgb(&self, x: usize, y: usize) -> [u8; 3] {
        self.row(y).rgb(x)
    }
}

pub(super) trait PixelRow {
    /// RGB of pixel `x` of the row; panics past the row's data.
    fn rgb(&self, x: usize) -> [u8; 3];
}

#[derive(Clone, Copy)]
/// Packed RGB with `BPP` bytes per pixel; the byte size is a constant so that the per-pixel
/// indexing compiles to fixed offsets.
pub(super) struct PackedSource<'a, const BPP: usize> {
    data: &'a [u8],
    stride: usize,
    /// Byte offsets of R, G and B, each below `BPP`.
    offsets: [usize; 3],
}

impl<'a, const BPP: usize> PixelSource for PackedSource<'a, BPP> {
    type Row = PackedRow<'a, BPP>;

    #[inline(always)]
    fn row(&self, y: usize) -> PackedRow<'a, BPP> {
        PackedRow { data: &self.data[y * self.stride..], offsets: self.offsets }
    }
}

pub(super) struct PackedRow<'a, const BPP: usize> {
    data: &'a [u8],
    offsets: [usize; 3],
}

impl<const BPP: usize> PixelRow for PackedRow<'_, BPP> {
    #[inline(always)]
    fn rgb(&self, x: usize) -> [u8; 3] {
        let p: &[u8; BPP] = self.data[x * BPP..x * BPP + BPP].try_into().expect("BPP bytes");
        // `min` tells the compiler the offsets are in range, so the reads need no checks.
        let [r, g, b] = self.offsets.map(|o| o.min(BPP - 1));
        [p[r], p[g], p[b]]
    }
}

/// Reads a YUV layout whose family has the steps `(Y_STEP, C_STEP, C_ROWS)` (see
/// [`YuvFamily::steps`]); constants, so that each family gets its own loop. The planes start at
/// their component's first sample, so that a row's samples are at `x·Y_STEP` and `x/2·C_STEP`.
pub(super) struct YuvSource<'a, const Y_STEP: usize, const C_STEP: usize, const C_ROWS: usize> {
    /// The Y, U and V samples, from the component's offset on (they may share a plane).
    planes: [&'a [u8]; 3],
    strides: [usize; 3],
    coeffs: &'static YuvCoeffs,
}

impl<'a, const Y_STEP: usize, const C_STEP: usize, const C_ROWS: usize> YuvSource<'a, Y_STEP, C_STEP, C_ROWS> {
    fn new(view: &FrameView<'a>, layout: YuvLayout) -> Self {
        debug_assert_eq!(layout.family.steps(), (Y_STEP, C_STEP, C_ROWS), "{:?}", view.format);
        let samples = layout.samples(view.strides);
        YuvSource {
            // An empty frame may have empty planes.
            planes: samples.map(|s| view.planes[s.plane].get(s.offset..).unwrap_or_default()),
            strides: samples.map(|s| s.stride),
            coeffs: YuvCoeffs::of(view.matrix, view.full_range),
        }
    }
}

impl<'a, const Y_STEP: usize, const C_STEP: usize, const C_ROWS: usize> PixelSource
    for YuvSource<'a, Y_STEP, C_STEP, C_ROWS>
{
    type Row = YuvRow<'a, Y_STEP, C_STEP>;

    #[inline(always)]
    fn row(&self, y: usize) -> Self::Row {
        let [ys, us, vs] = self.strides;
        let c = y / C_ROWS;
        YuvRow {
            y: &self.planes[0][y * ys..],
            u: &self.planes[1][c * us..],
            v: &self.planes[2][c * vs..],
            coeffs: self.coeffs,
        }
    }
}

pub(super) struct YuvRow<'a, const Y_STEP: usize, const C_STEP: usize> {
    y: &'a [u8],
    u: &'a [u8],
    v: &'a [u8],
    coeffs: &'static YuvCoeffs,
}

impl<const Y_STEP: usize, const C_STEP: usize> PixelRow for YuvRow<'_, Y_STEP, C_STEP> {
    #[inline(always)]
    fn rgb(&self, x: usize) -> [u8; 3] {
        let c = x / 2 * C_STEP;
        self.coeffs.to_rgb(self.y[x * Y_STEP], self.u[c], self.v[c])
    }
}

/// Runs `$body` with `$s` bound to the row reader of `$view`'s layout: the body is compiled once
/// per layout, so the pixel loops inside it are monomorphic.
macro_rules! with_source {
    ($view:expr, |$s:ident| $body:expr) => {
        match $view.source() {
            Source::Packed3($s) => $body,
            Source::Packed4($s) => $body,
            Source::I420($s) => $body,
            Source::Nv12($s) => $body,
            Source::Yuv422($s) => $body,
        }
    };
}
pub(super) use with_source;

/// A frame's reader for its layout; match on it once, outside the pixel loop.
pub(super) enum Source<'a> {
    /// RGB, BGR.
    Packed3(PackedSource<'a, 3>),
    /// The 4-byte RGB layouts (with alpha or padding).
    Packed4(PackedSource<'a, 4>),
    /// Planar 4:2:0: I420, YV12.
    I420(YuvSource<'a, 1, 1, 2>),
    /// Semi-planar 4:2:0: NV12, NV21.
    Nv12(YuvSource<'a, 1, 2, 2>),
    /// Packed 4:2:2: YUY2, UYVY, YVYU.
    Yuv422(YuvSource<'a, 2, 4, 1>),
}

/// Checks that every plane `format` needs holds `rows` rows of `strides[i]` bytes (the last row
/// only needs its pixels, as some allocators leave out the padding there).
fn check_planes(
    format: PixelFormat,
    width: usize,
    height: usize,
    lens: [usize; 3],
    strides: [usize; 3],
) -> Result<(), String> {
    let what = || format!("{format:?} frame {width}×{height}");
    let (shapes, n) = format.plane_shapes(width, height).ok_or_else(|| format!("{}: size overflows", what()))?;
    for (i, &(row_bytes, rows)) in shapes[..n].iter().enumerate() {
        let stride = strides[i];
        if rows > 0 && stride < row_bytes {
            return Err(format!("{}: plane {i} stride is {stride} bytes, expected at least {row_bytes}", what()));
        }
        let need = match rows {
            0 => Some(0),
            _ => stride.checked_mul(rows - 1).and_then(|v| v.checked_add(row_bytes)),
        }
        .ok_or_else(|| format!("{}: plane {i} size overflows (stride {stride})", what()))?;
        if lens[i] < need {
            return Err(format!(
                "{}: plane {i} holds {} bytes, expected at least {need} ({rows} rows of {row_bytes} \
                 bytes, stride {stride})",
                what(),
                lens[i]
            ));
        }
    }
    Ok(())
}

/// A read-only view of one video frame. Build it with [`FrameView::new`], which checks the
/// planes; the methods rely on that check (a hand-built inconsistent view panics on access).
#[derive(Clone, Copy)]
pub struct FrameView<'a> {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    /// Packed RGB and packed 4:2:2 use plane 0 only; unused planes may be empty.
    pub planes: [&'a [u8]; 3],
    /// Bytes from one row to the next, per plane.
    pub strides: [usize; 3],
    pub matrix: YuvMatrix,
    /// YUV range: `true` for 0..255, `false` for Y 16..235 / UV 16..240.
    pub full_range: bool,
}

impl<'a> FrameView<'a> {
    /// Checks that the planes are large enough for `width × height` in `format`.
    pub fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        planes: [&'a [u8]; 3],
        strides: [usize; 3],
        matrix: YuvMatrix,
        full_range: bool,
    ) -> Result<Self, String> {
        check_planes(format, width, height, planes.map(<[u8]>::len), strides)?;
        Ok(FrameView { format, width, height, planes, strides, matrix, full_range })
    }

    /// A view of a packed RGB image, e.g. a model output to warp back into a frame.
    pub fn from_rgb(img: &'a RgbImage) -> Self {
        FrameView {
            format: PixelFormat::Rgb,
            width: img.width,
            height: img.height,
            planes: [&img.data, &[], &[]],
            strides: [img.width * 3, 0, 0],
            matrix: YuvMatrix::Bt601,
            full_range: true,
        }
    }

    pub(super) fn source(&self) -> Source<'a> {
        if let Some((bpp, offsets)) = self.format.packed_layout() {
            let (data, stride) = (self.planes[0], self.strides[0]);
            return match bpp {
                3 => Source::Packed3(PackedSource { data, stride, offsets }),
                _ => Source::Packed4(PackedSource { data, stride, offsets }),
            };
        }
        let layout = self.format.yuv_layout().expect("a format is packed RGB or YUV");
        match layout.family {
            YuvFamily::Planar420 => Source::I420(YuvSource::new(self, layout)),
            YuvFamily::SemiPlanar420 => Source::Nv12(YuvSource::new(self, layout)),
            YuvFamily::Packed422 => Source::Yuv422(YuvSource::new(self, layout)),
        }
    }

    /// RGB of pixel `(x, y)`; panics when outside the frame.
    #[inline]
    pub fn pixel_rgb(&self, x: usize, y: usize) -> [u8; 3] {
        with_source!(self, |s| s.rgb(x, y))
    }

    /// Copies `rect` into `out` as packed RGB, reusing `out`'s allocation. `out` takes the size
    /// of `rect`; the parts of `rect` outside the frame read as black.
    pub fn read_region(&self, rect: Rect, out: &mut RgbImage) {
        out.reshape(rect.width.max(0) as usize, rect.height.max(0) as usize);
        self.read_region_into(rect, &mut out.data);
    }

    /// [`read_region`](Self::read_region) into a buffer the caller owns (e.g. a model's input
    /// tensor), which must hold exactly `rect`'s pixels as packed RGB.
    pub fn read_region_into(&self, rect: Rect, out: &mut [u8]) {
        let out_w = rect.width.max(0) as usize;
        assert_eq!(out.len(), out_w * rect.height.max(0) as usize * 3, "the buffer holds the region");
        let clip = rect.clip_to(self.width, self.height);
        if clip != rect {
            out.fill(0);
        }
        if clip.is_empty() {
            return;
        }
        match self.source() {
            Source::Packed3(s) if s.offsets == [0, 1, 2] => copy_rgb_rows(&s, clip, rect, out, out_w),
            _ => with_source!(self, |s| copy_region(&s, clip, rect, out, out_w)),
        }
    }
}

/// Debug output of a view: its geometry and plane sizes, not megabytes of pixel bytes.
fn debug_view(f: &mut fmt::Formatter<'_>, name: &str, v: &FrameView) -> fmt::Result {
    f.debug_struct(name)
        .field("format", &v.format)
        .field("width", &v.width)
        .field("height", &v.height)
        .field("plane_lens", &v.planes.map(<[u8]>::len))
        .field("strides", &v.strides)
        .field("matrix", &v.matrix)
        .field("full_range", &v.full_range)
        .finish()
}

impl fmt::Debug for FrameView<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_view(f, "FrameView", self)
    }
}

impl fmt::Debug for FrameViewMut<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        debug_view(f, "FrameViewMut", &self.as_view())
    }
}

/// Where the clipped rectangle starts inside `out` (whose origin is `rect`'s corner), and the
/// clipped size.
fn clip_geometry(clip: Rect, rect: Rect) -> (usize, usize, usize, usize) {
    ((clip.x - rect.x) as usize, (clip.y - rect.y) as usize, clip.width as usize, clip.height as usize)
}

fn copy_region<S: PixelSource>(s: &S, clip: Rect, rect: Rect, out: &mut [u8], out_w: usize) {
    let (ox, oy, w, h) = clip_geometry(clip, rect);
    for j in 0..h {
        let row = s.row(clip.y as usize + j);
        let start = ((oy + j) * out_w + ox) * 3;
        for (i, px) in out[start..start + w * 3].chunks_exact_mut(3).enumerate() {
            px.copy_from_slice(&row.rgb(clip.x as usize + i));
        }
    }
}

/// `copy_region` for frames that already are packed RGB: whole rows at once.
fn copy_rgb_rows(s: &PackedSource<3>, clip: Rect, rect: Rect, out: &mut [u8], out_w: usize) {
    let (ox, oy, w, h) = clip_geometry(clip, rect);
    for j in 0..h {
        let from = (clip.y as usize + j) * s.stride + clip.x as usize * 3;
        let to = ((oy + j) * out_w + ox) * 3;
        out[to..to + w * 3].copy_from_slice(&s.data[from..from + w * 3]);
    }
}

/// A writable view of one video frame; see [`FrameView`].
pub struct FrameViewMut<'a> {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub planes: [&'a mut [u8]; 3],
    pub strides: [usize; 3],
    pub matrix: YuvMatrix,
    pub full_range: bool,
}

impl<'a> FrameViewMut<'a> {
    /// Checks that the planes are large enough for `width × height` in `format`.
    pub fn new(
        format: PixelFormat,
        width: usize,
        height: usize,
        planes: [&'a mut [u8]; 3],
        strides: [usize; 3],
        matrix: YuvMatrix,
        full_range: bool,
    ) -> Result<Self, String> {
        check_planes(format, width, height, [planes[0].len(), planes[1].len(), planes[2].len()], strides)?;
        Ok(FrameViewMut { format, width, height, planes, strides, matrix, full_range })
    }

    pub fn as_view(&self) -> FrameView<'_> {
        FrameView {
            format: self.format,
            width: self.width,
            height: self.height,
            planes: [&*self.planes[0], &*self.planes[1], &*self.planes[2]],
            strides: self.strides,
            matrix: self.matrix,
            full_range: self.full_range,
        }
    }

    /// The frame's pixels as packed bytes to paste into; `None` for YUV layouts.
    pub fn packed_pixels(&mut self) -> Option<PackedPixels<'_>> {
        let (bpp, offsets) = self.format.packed_layout()?;
        Some(PackedPixels {
            data: &mut *self.planes[0],
            stride: self.strides[0],
            bpp,
            offsets,
            origin: (0, 0),
            width: self.width,
            height: self.height,
        })
    }

    /// Writes `src` (the size of `rect`) into the frame at `rect`; parts outside the frame are
    /// skipped. With `weight` (one value per `src` pixel, row-major), pixels of weight 0 (or NaN)
    /// keep their bytes exactly, and in YUV frames a chroma sample changes only when one of its
    /// pixels (2×2 in 4:2:0, 2×1 in 4:2:2) is written: it becomes the mean of its pixels' chroma,
    /// written pixels contributing their new colour and the others the current sample. Alpha /
    /// padding bytes are kept.
    ///
    /// # Panics
    /// When `src` or `weight` do not match the size of `rect` (a caller bug, not a data error).
    pub fn write_region(&mut self, rect: Rect, src: &RgbImage, weight: Option<&[f32]>) {
        let (rw, rh) = (rect.width.max(0) as usize, rect.height.max(0) as usize);
        assert!(
            src.width == rw && src.height == rh,
            "write_region: source is {}×{}, rectangle is {rw}×{rh}",
            src.width,
            src.height
        );
        if let Some(w) = weight {
            assert_eq!(w.len(), rw * rh, "write_region: weight length does not match the rectangle");
        }
        let clip = rect.clip_to(self.width, self.height);
        if clip.is_empty() {
            return;
        }
        let region = Region { rect, clip, src, weight };
        match self.format.packed_layout() {
            Some((bpp, offsets)) => write_packed(self.planes[0], self.strides[0], bpp, offsets, &region),
            None => self.write_yuv(self.format.yuv_layout().expect("a format is packed RGB or YUV"), &region),
        }
    }

    fn write_yuv(&mut self, layout: YuvLayout, region: &Region) {
        let coeffs = YuvCoeffs::of(self.matrix, self.full_range);
        let [luma, u, v] = layout.samples(self.strides);
        let chroma = ChromaBlocks { u, v, rows: layout.family.steps().2 };
        let planes = &mut self.planes;
        let (blocks_x, blocks_y) = chroma.covering(region.clip);
        for by in blocks_y {
            for bx in blocks_x.clone() {
                let (cur_u, cur_v) = chroma.get(planes, bx, by);
                let (mut su, mut sv, mut n, mut touched) = (0.0f32, 0.0f32, 0.0f32, false);
                let (xs, ys) = chroma.pixels(bx, by, self.width, self.height);
                for y in ys {
                    for x in xs.clone() {
                        n += 1.0;
                        match region.new_pixel(x, y) {
                            Some(rgb) => {
                                let [py, pu, pv] = coeffs.to_yuv(rgb);
                                planes[luma.plane][luma.index(x, y)] = to_u8(py);
                                su += pu;
                                sv += pv;
                                touched = true;
                            }
                            None => {
                                su += cur_u as f32;
                                sv += cur_v as f32;
                            }
                        }
                    }
                }
                if touched {
                    chroma.set(planes, bx, by, to_u8(su / n), to_u8(sv / n));
                }
            }
        }
    }
}

/// Whether a blend weight marks its pixel as written; NaN does not, like 0.
#[inline]
fn is_weighted(w: f32) -> bool {
    w > 0.0
}

/// The arguments of one `write_region` call.
struct Region<'s> {
    rect: Rect,
    clip: Rect,
    src: &'s RgbImage,
    weight: Option<&'s [f32]>,
}

impl Region<'_> {
    /// The colour to write at frame pixel `(x, y)`, or `None` to leave it as it is.
    #[inline]
    fn new_pixel(&self, x: usize, y: usize) -> Option<[u8; 3]> {
        let c = self.clip;
        if (x as i32) < c.x || (x as i32) >= c.x + c.width || (y as i32) < c.y || (y as i32) >= c.y + c.height {
            return None;
        }
        let (sx, sy) = ((x as i32 - self.rect.x) as usize, (y as i32 - self.rect.y) as usize);
        let i = sy * self.src.width + sx;
        if self.weight.is_some_and(|w| !is_weighted(w[i])) {
            return None;
        }
        Some(self.src.pixel(sx, sy))
    }
}

fn write_packed(data: &mut [u8], stride: usize, bpp: usize, offsets: [usize; 3], region: &Region) {
    let (ox, oy, w, h) = clip_geometry(region.clip, region.rect);
    let src = region.src;
    for j in 0..h {
        let y = region.clip.y as usize + j;
        let row = &mut data[y * stride + region.clip.x as usize * bpp..][..w * bpp];
        let src_start = (oy + j) * src.width + ox;
        let src_row = &src.data[src_start * 3..(src_start + w) * 3];
        for (i, (px, rgb)) in row.chunks_exact_mut(bpp).zip(src_row.chunks_exact(3)).enumerate() {
            if region.weight.is_some_and(|wt| !is_weighted(wt[src_start + i])) {
                continue;
            }
            px[offsets[0]] = rgb[0];
            px[offsets[1]] = rgb[1];
            px[offsets[2]] = rgb[2];
        }
    }
}

/// The chroma of a YUV frame by block: one U and one V sample serve each block of 2 × `rows`
/// pixels (`rows` is 2 in 4:2:0, 1 in 4:2:2); block `(bx, by)` holds chroma sample `(bx, by)`.
struct ChromaBlocks {
    u: Samples,
    v: Samples,
    rows: usize,
}

impl ChromaBlocks {
    /// The columns and rows of the blocks that hold pixels of `rect` (inside the frame).
    fn covering(&self, rect: Rect) -> (Range<usize>, Range<usize>) {
        let (x0, y0) = (rect.x as usize, rect.y as usize);
        let (x1, y1) = (x0 + rect.width as usize, y0 + rect.height as usize);
        (x0 / 2..x1.div_ceil(2), y0 / self.rows..y1.div_ceil(self.rows))
    }

    /// The pixel columns and rows of block `(bx, by)` within a `width × height` frame.
    fn pixels(&self, bx: usize, by: usize, width: usize, height: usize) -> (Range<usize>, Range<usize>) {
        (2 * bx..(2 * bx + 2).min(width), self.rows * by..(self.rows * (by + 1)).min(height))
    }

    #[inline]
    fn get(&self, planes: &[&mut [u8]; 3], bx: usize, by: usize) -> (u8, u8) {
        (planes[self.u.plane][self.u.index(bx, by)], planes[self.v.plane][self.v.index(bx, by)])
    }

    #[inline]
    fn set(&self, planes: &mut [&mut [u8]; 3], bx: usize, by: usize, u: u8, v: u8) {
        planes[self.u.plane][self.u.index(bx, by)] = u;
        planes[self.v.plane][self.v.index(bx, by)] = v;
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in super::super) const ALL_FORMATS: [PixelFormat; 17] = [
        PixelFormat::Rgb,
        PixelFormat::Bgr,
        PixelFormat::Rgba,
        PixelFormat::Bgra,
        PixelFormat::Rgbx,
        PixelFormat::Bgrx,
        PixelFormat::Xrgb,
        PixelFormat::Xbgr,
        PixelFormat::Argb,
        PixelFormat::Abgr,
        PixelFormat::I420,
        PixelFormat::Nv12,
        PixelFormat::Yuy2,
        PixelFormat::Uyvy,
        PixelFormat::Yvyu,
        PixelFormat::Nv21,
        PixelFormat::Yv12,
    ];

    /// The YUV formats of `ALL_FORMATS`.
    fn yuv_formats() -> impl Iterator<Item = PixelFormat> {
        ALL_FORMATS.into_iter().filter(|f| f.packed_layout().is_none())
    }

    /// Owned planes of a test frame, with row padding so that strides differ from row sizes.
    pub(in super::super) struct TestFrame {
        pub format: PixelFormat,
        pub width: usize,
        pub height: usize,
        pub planes: [Vec<u8>; 3],
        pub strides: [usize; 3],
        pub matrix: YuvMatrix,
        pub full_range: bool,
    }

    impl TestFrame {
        /// A frame filled with `fill` bytes (so alpha / padding bytes are recognisable).
        pub fn new(format: PixelFormat, width: usize, height: usize, fill: u8) -> Self {
            let (shapes, n) = format.plane_shapes(width, height).expect("small test size");
            let mut planes: [Vec<u8>; 3] = Default::default();
            let mut strides = [0; 3];
            for i in 0..n {
                let (row, rows) = shapes[i];
                strides[i] = row + 5;
                planes[i] = vec![fill; strides[i] * rows];
            }
            TestFrame { format, width, height, planes, strides, matrix: YuvMatrix::Bt601, full_range: false }
        }

        pub fn view(&self) -> FrameView<'_> {
            let p = &self.planes;
            FrameView::new(
                self.format,
                self.width,
                self.height,
                [&p[0], &p[1], &p[2]],
                self.strides,
                self.matrix,
                self.full_range,
            )
            .expect("valid test frame")
        }

        pub fn view_mut(&mut self) -> FrameViewMut<'_> {
            let [a, b, c] = &mut self.planes;
            FrameViewMut::new(
                self.format,
                self.width,
                self.height,
                [a, b, c],
                self.strides,
                self.matrix,
                self.full_range,
            )
            .expect("valid test frame")
        }
    }

    /// A picture that is exactly representable in every format: random YUV with constant chroma
    /// per 2×2 block (so also per 2×1 pair), decoded once; packed frames store the decoded RGB
    /// directly. The YUV layouts are written out here from the formats' definitions, not from
    /// `PixelFormat::yuv_layout`, so that a wrong layout there fails the reading tests.
    pub(in super::super) fn same_picture_in(format: PixelFormat, width: usize, height: usize) -> (TestFrame, RgbImage) {
        let mut yuv = TestFrame::new(PixelFormat::I420, width, height, 0);
        let mut seed = 0x1234_5678u32;
        for plane in yuv.planes.iter_mut() {
            for b in plane.iter_mut() {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *b = 16 + (seed >> 24) as u8 % 224;
            }
        }
        yuv_picture_in(format, &yuv)
    }

    /// The picture of `yuv` (an I420 test frame, BT.601 limited range) in `format`, as
    /// [`same_picture_in`] writes it, and its RGB decoding.
    pub(in super::super) fn yuv_picture_in(format: PixelFormat, yuv: &TestFrame) -> (TestFrame, RgbImage) {
        let (width, height) = (yuv.width, yuv.height);
        // Y of pixel (x, y), and U or V (plane 1 or 2) of the 2×2 block holding it.
        let luma = |x: usize, y: usize| yuv.planes[0][y * yuv.strides[0] + x];
        let chroma = |p: usize, x: usize, y: usize| yuv.planes[p][(y / 2) * yuv.strides[p] + x / 2];
        let mut rgb = RgbImage::new(width, height);
        for y in 0..height {
            for x in 0..width {
                rgb.set_pixel(x, y, YuvMatrix::Bt601.to_rgb(false, [luma(x, y), chroma(1, x, y), chroma(2, x, y)]));
            }
        }
        let mut frame = TestFrame::new(format, width, height, 0xA5);
        match format {
            PixelFormat::I420 => frame.planes = yuv.planes.clone(),
            PixelFormat::Yv12 => frame.planes = [yuv.planes[0].clone(), yuv.planes[2].clone(), yuv.planes[1].clone()],
            PixelFormat::Nv12 | PixelFormat::Nv21 => {
                frame.planes[0] = yuv.planes[0].clone();
                let (u_at, v_at) = if format == PixelFormat::Nv12 { (0, 1) } else { (1, 0) };
                for cy in 0..height.div_ceil(2) {
                    for cx in 0..width.div_ceil(2) {
                        let i = cy * frame.strides[1] + 2 * cx;
                        frame.planes[1][i + u_at] = chroma(1, 2 * cx, 2 * cy);
                        frame.planes[1][i + v_at] = chroma(2, 2 * cx, 2 * cy);
                    }
                }
            }
            PixelFormat::Yuy2 | PixelFormat::Uyvy | PixelFormat::Yvyu => {
                // The byte order of each pair of pixels; an odd width leaves the last pair's
                // second Y at the fill value.
                let order = match format {
                    PixelFormat::Yuy2 => b"YUYV",
                    PixelFormat::Uyvy => b"UYVY",
                    _ => b"YVYU",
                };
                for y in 0..height {
                    for pair in 0..width.div_ceil(2) {
                        let mut x = 2 * pair;
                        for (i, &what) in order.iter().enumerate() {
                            let byte = &mut frame.planes[0][y * frame.strides[0] + 4 * pair + i];
                            match what {
                                b'U' => *byte = chroma(1, 2 * pair, y),
                                b'V' => *byte = chroma(2, 2 * pair, y),
                                _ => {
                                    if x < width {
                                        *byte = luma(x, y);
                                    }
                                    x += 1;
                                }
                            }
                        }
                    }
                }
            }
            packed => {
                let (bpp, offsets) = packed.packed_layout().expect("packed");
                for y in 0..height {
                    for x in 0..width {
                        let px = &mut frame.planes[0][y * frame.strides[0] + x * bpp..];
                        let rgb_px = rgb.pixel(x, y);
                        for c in 0..3 {
                            px[offsets[c]] = rgb_px[c];
                        }
                    }
                }
            }
        }
        (frame, rgb)
    }

    #[test]
    fn constructor_reports_bad_sizes() {
        let data = vec![0u8; 100];
        // 4×4 RGBx needs 16 bytes per row and 3·stride + 16 bytes in all.
        let err = FrameView::new(PixelFormat::Rgbx, 4, 4, [&data, &[], &[]], [12, 0, 0], YuvMatrix::Bt601, false)
            .expect_err("stride shorter than a row");
        assert!(err.contains("stride is 12") && err.contains("at least 16"), "{err}");
        let err = FrameView::new(PixelFormat::Rgbx, 4, 4, [&data[..63], &[], &[]], [16, 0, 0], YuvMatrix::Bt601, false)
            .expect_err("plane too short");
        assert!(err.contains("holds 63") && err.contains("at least 64"), "{err}");
        // The last row needs no padding: 3·20 + 16 = 76 bytes.
        assert!(
            FrameView::new(PixelFormat::Rgbx, 4, 4, [&data[..76], &[], &[]], [20, 0, 0], YuvMatrix::Bt601, false)
                .is_ok()
        );
        // 5×3 I420: chroma is 3×2 (rounded up), so U needs stride 3 and 3 + 3 = 6 bytes.
        let (y, u) = (vec![0u8; 15], vec![0u8; 6]);
        assert!(FrameView::new(PixelFormat::I420, 5, 3, [&y, &u, &u], [5, 3, 3], YuvMatrix::Bt601, false).is_ok());
        let err = FrameView::new(PixelFormat::I420, 5, 3, [&y, &u, &u[..5]], [5, 3, 3], YuvMatrix::Bt601, false)
            .expect_err("V too short");
        assert!(err.contains("plane 2 holds 5"), "{err}");
        // 5×3 NV12: UV rows hold 3 pairs = 6 bytes.
        let err = FrameView::new(PixelFormat::Nv12, 5, 3, [&y, &u, &[]], [5, 5, 0], YuvMatrix::Bt601, false)
            .expect_err("UV stride too short");
        assert!(err.contains("plane 1 stride is 5") && err.contains("at least 6"), "{err}");
        // 5×3 YUY2 (and UYVY, YVYU): rows hold 3 whole pairs = 12 bytes, as GStreamer's do.
        let packed = [0u8; 36];
        for format in [PixelFormat::Yuy2, PixelFormat::Uyvy, PixelFormat::Yvyu] {
            let view = |len: usize, stride: usize| {
                FrameView::new(format, 5, 3, [&packed[..len], &[], &[]], [stride, 0, 0], YuvMatrix::Bt601, false)
            };
            assert!(view(36, 12).is_ok(), "{format:?}");
            let err = view(36, 10).expect_err("stride of 5 pixels");
            assert!(err.contains("plane 0 stride is 10") && err.contains("at least 12"), "{format:?}: {err}");
            let err = view(35, 12).expect_err("last pair cut short");
            assert!(err.contains("holds 35") && err.contains("at least 36"), "{format:?}: {err}");
        }
        let err =
            FrameView::new(PixelFormat::Rgb, usize::MAX / 2, 2, [&data, &[], &[]], [0; 3], YuvMatrix::Bt601, false)
                .expect_err("overflow");
        assert!(err.contains("overflow"), "{err}");
        let mut m = vec![0u8; 10];
        assert!(
            FrameViewMut::new(PixelFormat::Bgr, 2, 2, [&mut m, &mut [], &mut []], [6, 0, 0], YuvMatrix::Bt601, false)
                .is_err()
        );
    }

    #[test]
    fn yuv_conversion_matches_reference_values() {
        // BT.601 limited, red: Y = 16 + 219·0.299 = 81.48; Cb = 128 − 112·0.299/0.886 = 90.20;
        // Cr = 128 + 112 = 240.
        assert_eq!(YuvMatrix::Bt601.to_yuv(false, [255, 0, 0]), [81, 90, 240]);
        // BT.709 limited, red: Y = 16 + 219·0.2126 = 62.56; Cb = 128 − 112·0.2126/0.9278 = 102.34.
        assert_eq!(YuvMatrix::Bt709.to_yuv(false, [255, 0, 0]), [63, 102, 240]);
        // BT.601 full, red: Y = 76.245; Cb = 128 − 127.5·0.299/0.886 = 84.97; Cr = 255.5 → 255.
        assert_eq!(YuvMatrix::Bt601.to_yuv(true, [255, 0, 0]), [76, 85, 255]);
        // BT.2020 limited, blue: Y = 16 + 219·0.0593 = 28.99; Cb = 240;
        // Cr = 128 − 112·0.0593/0.7373 = 118.99.
        assert_eq!(YuvMatrix::Bt2020.to_yuv(false, [0, 0, 255]), [29, 240, 119]);
        assert_eq!(YuvMatrix::Bt709.to_yuv(false, [255, 255, 255]), [235, 128, 128]);
        assert_eq!(YuvMatrix::Bt709.to_yuv(false, [0, 0, 0]), [16, 128, 128]);

        assert_eq!(YuvMatrix::Bt601.to_rgb(false, [235, 128, 128]), [255, 255, 255]);
        assert_eq!(YuvMatrix::Bt601.to_rgb(false, [16, 128, 128]), [0, 0, 0]);
        // Below black and above white clamp.
        assert_eq!(YuvMatrix::Bt709.to_rgb(false, [0, 128, 128]), [0, 0, 0]);
        assert_eq!(YuvMatrix::Bt709.to_rgb(false, [255, 128, 128]), [255, 255, 255]);
        // (81, 90, 240) BT.601 limited: Y' = 65·255/219 = 75.685; R = Y' + 1.402·112·255/224 =
        // 254.440; B = Y' + 1.772·(−38)·255/224 = −0.970 → 0; G = (Y' − 0.299·R − 0.114·B)/0.587
        // = −0.480 → 0.
        assert_eq!(YuvMatrix::Bt601.to_rgb(false, [81, 90, 240]), [254, 0, 0]);
        // Full range grey passes through.
        assert_eq!(YuvMatrix::Bt2020.to_rgb(true, [77, 128, 128]), [77, 77, 77]);
    }

    #[test]
    fn every_format_reads_the_same_picture() {
        let (w, h) = (7, 5);
        for format in ALL_FORMATS {
            let (frame, rgb) = same_picture_in(format, w, h);
            let view = frame.view();
            for y in 0..h {
                for x in 0..w {
                    assert_eq!(view.pixel_rgb(x, y), rgb.pixel(x, y), "{format:?} at ({x}, {y})");
                }
            }
            let mut out = RgbImage::default();
            view.read_region(Rect::new(0, 0, w as i32, h as i32), &mut out);
            assert_eq!(out, rgb, "{format:?}");
        }
    }

    #[test]
    fn read_region_offsets_and_blacks_out_outside() {
        let (frame, rgb) = same_picture_in(PixelFormat::Bgrx, 6, 4);
        let mut out = RgbImage::new(50, 50);
        frame.view().read_region(Rect::new(-1, 2, 4, 3), &mut out);
        assert_eq!((out.width, out.height), (4, 3));
        for y in 0..3 {
            for x in 0..4 {
                let (fx, fy) = (x as i32 - 1, y as i32 + 2);
                let expect = if fx < 0 || fy >= 4 { [0; 3] } else { rgb.pixel(fx as usize, fy as usize) };
                assert_eq!(out.pixel(x, y), expect, "({x}, {y})");
            }
        }
        frame.view().read_region(Rect::new(10, 10, 2, 2), &mut out);
        assert_eq!(out, RgbImage::new(2, 2));
    }

    #[test]
    fn packed_write_keeps_alpha_and_unweighted_pixels() {
        for format in [PixelFormat::Argb, PixelFormat::Bgra, PixelFormat::Xbgr, PixelFormat::Bgr] {
            let mut frame = TestFrame::new(format, 4, 3, 0xA5);
            let before = frame.planes[0].clone();
            let src = RgbImage::from_raw(2, 2, vec![1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]).expect("2×2");
            // Rectangle hangs off the right edge: only its left column lands.
            frame.view_mut().write_region(Rect::new(3, 1, 2, 2), &src, Some(&[1.0, 1.0, 0.0, 0.5]));
            let view = frame.view();
            assert_eq!(view.pixel_rgb(3, 1), [1, 2, 3], "{format:?}");
            assert_eq!(view.pixel_rgb(3, 2), frame.as_before(&before, 3, 2), "{format:?}");
            let (bpp, offsets) = format.packed_layout().expect("packed");
            let px = &frame.planes[0][frame.strides[0] + 3 * bpp..][..bpp];
            for (i, &b) in px.iter().enumerate() {
                if !offsets.contains(&i) {
                    assert_eq!(b, 0xA5, "{format:?}: alpha byte changed");
                }
            }
            let changed = frame.planes[0].iter().zip(&before).filter(|(a, b)| a != b).count();
            assert_eq!(changed, 3, "{format:?}: only one pixel's colour bytes change");
        }
    }

    impl TestFrame {
        fn as_before(&self, before: &[u8], x: usize, y: usize) -> [u8; 3] {
            let (bpp, o) = self.format.packed_layout().expect("packed");
            let p = &before[y * self.strides[0] + x * bpp..];
            [p[o[0]], p[o[1]], p[o[2]]]
        }
    }

    #[test]
    fn yuv_write_touches_only_weighted_pixels_and_their_chroma() {
        for format in [PixelFormat::I420, PixelFormat::Nv12, PixelFormat::Nv21, PixelFormat::Yv12] {
            let mut frame = TestFrame::new(format, 6, 4, 128);
            let before = frame.planes.clone();
            let red = RgbImage::from_raw(3, 2, [255, 0, 0].repeat(6)).expect("3×2");
            // Only frame pixel (2, 1) has weight: block (1, 0) gets its chroma from one red pixel
            // and three untouched pixels at 128: U = (90.20 + 3·128)/4 = 118.55 → 119,
            // V = (240 + 3·128)/4 = 156. Y of red is 81.48 → 81.
            let mut weight = [0.0f32; 6];
            weight[4] = 0.25;
            frame.view_mut().write_region(Rect::new(1, 0, 3, 2), &red, Some(&weight));
            let y_changes: Vec<usize> = (0..before[0].len()).filter(|&i| frame.planes[0][i] != before[0][i]).collect();
            assert_eq!(y_changes, vec![frame.strides[0] + 2], "{format:?}");
            assert_eq!(frame.planes[0][frame.strides[0] + 2], 81);
            let (u, v) = match format {
                PixelFormat::I420 => (frame.planes[1][1], frame.planes[2][1]),
                PixelFormat::Yv12 => (frame.planes[2][1], frame.planes[1][1]),
                PixelFormat::Nv12 => (frame.planes[1][2], frame.planes[1][3]),
                _ => (frame.planes[1][3], frame.planes[1][2]),
            };
            assert_eq!((u, v), (119, 156), "{format:?}");
            let chroma_changes =
                (1..3).map(|p| frame.planes[p].iter().zip(&before[p]).filter(|(a, b)| a != b).count()).sum::<usize>();
            assert_eq!(chroma_changes, 2, "{format:?}: one U and one V sample change");
        }
    }

    /// Byte offsets of Y₀, U, Y₁ and V within a pair of a packed 4:2:2 format.
    fn pair_layout(format: PixelFormat) -> [usize; 4] {
        match format {
            PixelFormat::Yuy2 => [0, 1, 2, 3],
            PixelFormat::Uyvy => [1, 0, 3, 2],
            PixelFormat::Yvyu => [0, 3, 2, 1],
            _ => unreachable!("{format:?} is not packed 4:2:2"),
        }
    }

    const PACKED_422: [PixelFormat; 3] = [PixelFormat::Yuy2, PixelFormat::Uyvy, PixelFormat::Yvyu];

    /// The bytes that differ between two frames' plane 0, by index.
    fn changed_bytes(frame: &TestFrame, before: &[u8]) -> Vec<usize> {
        (0..before.len()).filter(|&i| frame.planes[0][i] != before[i]).collect()
    }

    #[test]
    fn packed_422_write_touches_only_weighted_pixels_and_their_pair() {
        for format in PACKED_422 {
            let [y0, u, y1, v] = pair_layout(format);
            let mut frame = TestFrame::new(format, 6, 4, 128);
            let before = frame.planes[0].clone();
            let red = RgbImage::from_raw(3, 2, [255, 0, 0].repeat(6)).expect("3×2");
            // Only frame pixel (2, 1) has weight: pair 1 of row 1 gets its chroma from one red
            // pixel and one untouched pixel at 128: U = (90.20 + 128)/2 = 109.10 → 109,
            // V = (240 + 128)/2 = 184. Y of red is 81.48 → 81.
            let mut weight = [0.0f32; 6];
            weight[4] = 0.25;
            frame.view_mut().write_region(Rect::new(1, 0, 3, 2), &red, Some(&weight));
            let pair = frame.strides[0] + 4;
            let mut expect = [pair + y0, pair + u, pair + v];
            expect.sort();
            assert_eq!(changed_bytes(&frame, &before), expect, "{format:?}");
            let p = &frame.planes[0][pair..pair + 4];
            assert_eq!((p[y0], p[u], p[y1], p[v]), (81, 109, 128, 184), "{format:?}");

            // A rectangle starting at an odd column: pixel 3 is written, its pair partner 2 is
            // outside the rectangle and keeps its Y; two colours in one pair average.
            let mut frame = TestFrame::new(format, 6, 4, 128);
            let before = frame.planes[0].clone();
            let src = RgbImage::from_raw(2, 1, vec![255, 0, 0, 0, 0, 255]).expect("2×1");
            frame.view_mut().write_region(Rect::new(3, 2, 2, 1), &src, None);
            let (a, b) = (2 * frame.strides[0] + 4, 2 * frame.strides[0] + 8);
            let (pa, pb) = (&frame.planes[0][a..a + 4], &frame.planes[0][b..b + 4]);
            // Pair 1: pixel 2 untouched (Y 128, chroma 128), pixel 3 red.
            assert_eq!((pa[y0], pa[u], pa[y1], pa[v]), (128, 109, 81, 184), "{format:?}");
            // Pair 2: pixel 4 blue (Y = 16 + 219·0.114 = 40.97, U 240, V = 128 − 112·0.114/0.701
            // = 109.79), pixel 5 outside the rectangle: U = (240 + 128)/2 = 184,
            // V = (109.79 + 128)/2 = 118.89 → 119.
            assert_eq!((pb[y0], pb[u], pb[y1], pb[v]), (41, 184, 128, 119), "{format:?}");
            assert_eq!(changed_bytes(&frame, &before).len(), 6, "{format:?}");
        }
    }

    #[test]
    fn packed_422_odd_width_last_pair_has_one_pixel() {
        for format in PACKED_422 {
            let [y0, u, y1, v] = pair_layout(format);
            // 5 pixels wide, rows of exactly 3 pairs as GStreamer allocates them.
            let mut planes = [vec![128u8; 12 * 2], Vec::new(), Vec::new()];
            planes[0][8 + y1] = 7;
            planes[0][12 + 8 + y1] = 7;
            let before = planes[0].clone();
            let [p0, p1, p2] = &mut planes;
            let mut view =
                FrameViewMut::new(format, 5, 2, [p0, p1, p2], [12, 0, 0], YuvMatrix::Bt601, false).expect("5×2");
            // Pixel 4 is alone in its pair: the pair takes red's chroma as it is (90.20 → 90),
            // and the padding Y after it is neither read nor written.
            let red = RgbImage::from_raw(2, 2, [255, 0, 0].repeat(4)).expect("2×2");
            view.write_region(Rect::new(4, 0, 2, 2), &red, None);
            assert_eq!(view.as_view().pixel_rgb(4, 1), YuvMatrix::Bt601.to_rgb(false, [81, 90, 240]));
            for row in [0, 12] {
                let p = &planes[0][row + 8..row + 12];
                assert_eq!((p[y0], p[u], p[y1], p[v]), (81, 90, 7, 240), "{format:?}");
            }
            assert_eq!(planes[0][..8], before[..8], "{format:?}");
            assert_eq!(planes[0][12..20], before[12..20], "{format:?}");
        }
    }

    #[test]
    fn yuv_write_without_weight_round_trips_solid_blocks() {
        // A solid colour written over whole chroma blocks reads back as its own YUV→RGB round
        // trip.
        for format in yuv_formats() {
            // Every sample 128: mid grey in every layout.
            let mut frame = TestFrame::new(format, 5, 5, 128);
            let colour = [200, 30, 90];
            let src = RgbImage::from_raw(4, 4, colour.repeat(16)).expect("4×4");
            frame.view_mut().write_region(Rect::new(0, 0, 4, 4), &src, None);
            let expect = YuvMatrix::Bt601.to_rgb(false, YuvMatrix::Bt601.to_yuv(false, colour));
            let view = frame.view();
            for y in 0..4 {
                for x in 0..4 {
                    assert_eq!(view.pixel_rgb(x, y), expect, "{format:?} ({x}, {y})");
                }
            }
            // The odd last column / row kept its grey.
            assert_eq!(view.pixel_rgb(4, 4), YuvMatrix::Bt601.to_rgb(false, [128; 3]), "{format:?}");
        }
    }
}
