//! Pixel access for every raw video format the elements accept, without GStreamer: the elements
//! wrap their mapped planes in a [`FrameView`] / [`FrameViewMut`], and the face pipeline reads and
//! writes packed RGB through them.
//!
//! The per-layout row readers (`PackedSource`, `I420Source`, `Nv12Source`) let the hot loops in
//! this module, `letterbox` and `warp` pick the format once per call and run a monomorphised loop.

use std::fmt;

use super::image::{Rect, RgbImage};
use super::paste::PackedPixels;

/// The raw layouts the elements accept: packed 8-bit RGB variants (alpha / padding bytes are
/// ignored on read and preserved on write), planar I420 and semi-planar NV12.
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
            I420 | Nv12 => return None,
        })
    }

    /// `(bytes per row, rows)` of each plane the format uses, and how many it uses; `None` when
    /// the sizes overflow `usize`.
    fn plane_shapes(self, width: usize, height: usize) -> Option<([(usize, usize); 3], usize)> {
        let (cw, ch) = (width.div_ceil(2), height.div_ceil(2));
        Some(match self {
            PixelFormat::I420 => ([(width, height), (cw, ch), (cw, ch)], 3),
            PixelFormat::Nv12 => ([(width, height), (cw.checked_mul(2)?, ch), (0, 0)], 2),
            packed => {
                let (bpp, _) = packed.packed_layout()?;
                ([(width.checked_mul(bpp)?, height), (0, 0), (0, 0)], 1)
            }
        })
    }
}

/// The YUV → RGB matrix of I420 / NV12 frames (ignored for packed formats).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum YuvMatrix {
    #[default]
    Bt601,
    Bt709,
    Bt2020,
}

impl YuvMatrix {
    /// Decodes one YUV sample to RGB, rounded to nearest and clamped.
    pub fn to_rgb(self, full_range: bool, yuv: [u8; 3]) -> [u8; 3] {
        YuvCoeffs::of(self, full_range).to_rgb(yuv[0], yuv[1], yuv[2])
    }

    /// Encodes one RGB pixel to YUV, rounded to nearest and clamped.
    pub fn to_yuv(self, full_range: bool, rgb: [u8; 3]) -> [u8; 3] {
        YuvCoeffs::of(self, full_range).to_yuv(rgb).map(to_u8)
    }
}

/// Rounds to nearest (halves up) and saturates; NaN becomes 0.
#[inline(always)]
pub(super) fn to_u8(v: f32) -> u8 {
    (v.clamp(0.0, 255.0) + 0.5) as u8
}

/// Fixed-point precision of the YUV → RGB tables.
const FIX: u32 = 16;

/// Conversion tables of one matrix and range, built at compile time: decoding is five table
/// lookups, two adds per channel and a shift, which keeps YUV frames close to packed ones on the
/// per-frame paths.
pub(super) struct YuvCoeffs {
    /// `(Y − offset)·gain` in fixed point, with the rounding half folded in.
    luma: [i32; 256],
    r_v: [i32; 256],
    g_u: [i32; 256],
    g_v: [i32; 256],
    b_u: [i32; 256],
    y_off: f32,
    /// Rows Y, U, V of the RGB → YUV matrix (without the offsets).
    enc: [[f32; 3]; 3],
}

/// `v·2^FIX` rounded to nearest (`f64::round` is not const).
const fn fixed(v: f64) -> i32 {
    let s = v * (1u32 << FIX) as f64;
    if s >= 0.0 { (s + 0.5) as i32 } else { -((0.5 - s) as i32) }
}

impl YuvCoeffs {
    const fn new(kr: f64, kb: f64, full_range: bool) -> Self {
        let kg = 1.0 - kr - kb;
        // Limited range maps Y' 0..255 to 16..235 and the colour differences ±127.5 to ±112.
        let (y_off, y_mul, c_mul) = if full_range { (0.0, 1.0, 1.0) } else { (16.0, 255.0 / 219.0, 255.0 / 224.0) };
        let (cb, cr) = (2.0 * (1.0 - kb), 2.0 * (1.0 - kr));
        let mut t = YuvCoeffs {
            luma: [0; 256],
            r_v: [0; 256],
            g_u: [0; 256],
            g_v: [0; 256],
            b_u: [0; 256],
            y_off: y_off as f32,
            enc: [
                [(kr / y_mul) as f32, (kg / y_mul) as f32, (kb / y_mul) as f32],
                [(-kr / cb / c_mul) as f32, (-kg / cb / c_mul) as f32, (0.5 / c_mul) as f32],
                [(0.5 / c_mul) as f32, (-kg / cr / c_mul) as f32, (-kb / cr / c_mul) as f32],
            ],
        };
        let mut i = 0;
        while i < 256 {
            let (l, c) = ((i as f64 - y_off) * y_mul, (i as f64 - 128.0) * c_mul);
            t.luma[i] = fixed(l) + (1 << (FIX - 1));
            t.r_v[i] = fixed(cr * c);
            t.g_u[i] = fixed(-kb * cb * c / kg);
            t.g_v[i] = fixed(-kr * cr * c / kg);
            t.b_u[i] = fixed(cb * c);
            i += 1;
        }
        t
    }

    #[inline]
    pub(super) fn of(matrix: YuvMatrix, full_range: bool) -> &'static YuvCoeffs {
        let m = match matrix {
            YuvMatrix::Bt601 => 0,
            YuvMatrix::Bt709 => 1,
            YuvMatrix::Bt2020 => 2,
        };
        &YUV_TABLES[m][full_range as usize]
    }

    #[inline(always)]
    pub(super) fn to_rgb(&self, y: u8, u: u8, v: u8) -> [u8; 3] {
        let l = self.luma[y as usize];
        let (u, v) = (u as usize, v as usize);
        let ch = |sum: i32| (sum >> FIX).clamp(0, 255) as u8;
        [ch(l + self.r_v[v]), ch(l + self.g_u[u] + self.g_v[v]), ch(l + self.b_u[u])]
    }

    /// Unrounded YUV, so that chroma can be averaged before rounding.
    #[inline(always)]
    pub(super) fn to_yuv(&self, rgb: [u8; 3]) -> [f32; 3] {
        let [r, g, b] = rgb.map(f32::from);
        let [ky, ku, kv] = &self.enc;
        [
            self.y_off + ky[0] * r + ky[1] * g + ky[2] * b,
            128.0 + ku[0] * r + ku[1] * g + ku[2] * b,
            128.0 + kv[0] * r + kv[1] * g + kv[2] * b,
        ]
    }
}

/// Indexed by matrix, then by `full_range`.
static YUV_TABLES: [[YuvCoeffs; 2]; 3] = [
    [YuvCoeffs::new(0.299, 0.114, false), YuvCoeffs::new(0.299, 0.114, true)],
    [YuvCoeffs::new(0.2126, 0.0722, false), YuvCoeffs::new(0.2126, 0.0722, true)],
    [YuvCoeffs::new(0.2627, 0.0593, false), YuvCoeffs::new(0.2627, 0.0593, true)],
];

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
pub(super) struct PackedSource<'a> {
    data: &'a [u8],
    stride: usize,
    bpp: usize,
    offsets: [usize; 3],
}

impl<'a> PixelSource for PackedSource<'a> {
    type Row = PackedRow<'a>;

    #[inline(always)]
    fn row(&self, y: usize) -> PackedRow<'a> {
        PackedRow { data: &self.data[y * self.stride..], bpp: self.bpp, offsets: self.offsets }
    }
}

pub(super) struct PackedRow<'a> {
    data: &'a [u8],
    bpp: usize,
    offsets: [usize; 3],
}

impl PixelRow for PackedRow<'_> {
    #[inline(always)]
    fn rgb(&self, x: usize) -> [u8; 3] {
        let p = &self.data[x * self.bpp..];
        [p[self.offsets[0]], p[self.offsets[1]], p[self.offsets[2]]]
    }
}

pub(super) struct I420Source<'a> {
    planes: [&'a [u8]; 3],
    strides: [usize; 3],
    coeffs: &'static YuvCoeffs,
}

impl<'a> PixelSource for I420Source<'a> {
    type Row = I420Row<'a>;

    #[inline(always)]
    fn row(&self, y: usize) -> I420Row<'a> {
        let [ys, us, vs] = self.strides;
        I420Row {
            y: &self.planes[0][y * ys..],
            u: &self.planes[1][y / 2 * us..],
            v: &self.planes[2][y / 2 * vs..],
            coeffs: self.coeffs,
        }
    }
}

pub(super) struct I420Row<'a> {
    y: &'a [u8],
    u: &'a [u8],
    v: &'a [u8],
    coeffs: &'static YuvCoeffs,
}

impl PixelRow for I420Row<'_> {
    #[inline(always)]
    fn rgb(&self, x: usize) -> [u8; 3] {
        self.coeffs.to_rgb(self.y[x], self.u[x / 2], self.v[x / 2])
    }
}

pub(super) struct Nv12Source<'a> {
    planes: [&'a [u8]; 2],
    strides: [usize; 2],
    coeffs: &'static YuvCoeffs,
}

impl<'a> PixelSource for Nv12Source<'a> {
    type Row = Nv12Row<'a>;

    #[inline(always)]
    fn row(&self, y: usize) -> Nv12Row<'a> {
        Nv12Row {
            y: &self.planes[0][y * self.strides[0]..],
            uv: &self.planes[1][y / 2 * self.strides[1]..],
            coeffs: self.coeffs,
        }
    }
}

pub(super) struct Nv12Row<'a> {
    y: &'a [u8],
    uv: &'a [u8],
    coeffs: &'static YuvCoeffs,
}

impl PixelRow for Nv12Row<'_> {
    #[inline(always)]
    fn rgb(&self, x: usize) -> [u8; 3] {
        let uv = &self.uv[x / 2 * 2..];
        self.coeffs.to_rgb(self.y[x], uv[0], uv[1])
    }
}

/// A frame's reader for its layout; match on it once, outside the pixel loop.
pub(super) enum Source<'a> {
    Packed(PackedSource<'a>),
    I420(I420Source<'a>),
    Nv12(Nv12Source<'a>),
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
    /// Packed formats use plane 0 only; unused planes may be empty.
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
            return Source::Packed(PackedSource { data: self.planes[0], stride: self.strides[0], bpp, offsets });
        }
        let coeffs = YuvCoeffs::of(self.matrix, self.full_range);
        if self.format == PixelFormat::Nv12 {
            Source::Nv12(Nv12Source {
                planes: [self.planes[0], self.planes[1]],
                strides: [self.strides[0], self.strides[1]],
                coeffs,
            })
        } else {
            Source::I420(I420Source { planes: self.planes, strides: self.strides, coeffs })
        }
    }

    /// RGB of pixel `(x, y)`; panics when outside the frame.
    #[inline]
    pub fn pixel_rgb(&self, x: usize, y: usize) -> [u8; 3] {
        match self.source() {
            Source::Packed(s) => s.rgb(x, y),
            Source::I420(s) => s.rgb(x, y),
            Source::Nv12(s) => s.rgb(x, y),
        }
    }

    /// Copies `rect` into `out` as packed RGB, reusing `out`'s allocation. `out` takes the size
    /// of `rect`; the parts of `rect` outside the frame read as black.
    pub fn read_region(&self, rect: Rect, out: &mut RgbImage) {
        out.reshape(rect.width.max(0) as usize, rect.height.max(0) as usize);
        let clip = rect.clip_to(self.width, self.height);
        if clip != rect {
            out.data.fill(0);
        }
        if clip.is_empty() {
            return;
        }
        match self.source() {
            Source::Packed(s) if s.bpp == 3 && s.offsets == [0, 1, 2] => copy_rgb_rows(&s, clip, rect, out),
            Source::Packed(s) => copy_region(&s, clip, rect, out),
            Source::I420(s) => copy_region(&s, clip, rect, out),
            Source::Nv12(s) => copy_region(&s, clip, rect, out),
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

fn copy_region<S: PixelSource>(s: &S, clip: Rect, rect: Rect, out: &mut RgbImage) {
    let (ox, oy, w, h) = clip_geometry(clip, rect);
    let out_w = out.width;
    for j in 0..h {
        let row = s.row(clip.y as usize + j);
        let start = ((oy + j) * out_w + ox) * 3;
        for (i, px) in out.data[start..start + w * 3].chunks_exact_mut(3).enumerate() {
            px.copy_from_slice(&row.rgb(clip.x as usize + i));
        }
    }
}

/// `copy_region` for frames that already are packed RGB: whole rows at once.
fn copy_rgb_rows(s: &PackedSource, clip: Rect, rect: Rect, out: &mut RgbImage) {
    let (ox, oy, w, h) = clip_geometry(clip, rect);
    let out_w = out.width;
    for j in 0..h {
        let from = (clip.y as usize + j) * s.stride + clip.x as usize * 3;
        let to = ((oy + j) * out_w + ox) * 3;
        out.data[to..to + w * 3].copy_from_slice(&s.data[from..from + w * 3]);
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
    /// keep their bytes exactly, and for I420 / NV12 a chroma sample changes only when one of its
    /// pixels is written: it becomes the mean of its pixels' chroma, written pixels contributing
    /// their new colour and the others the current sample. Alpha / padding bytes are kept.
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
            None => self.write_yuv(&region),
        }
    }

    fn write_yuv(&mut self, region: &Region) {
        let coeffs = YuvCoeffs::of(self.matrix, self.full_range);
        let [y_plane, p1, p2] = &mut self.planes;
        let [ys, s1, s2] = self.strides;
        let mut chroma = match self.format {
            PixelFormat::Nv12 => Chroma::Interleaved { uv: p1, stride: s1 },
            _ => Chroma::Planar { u: p1, v: p2, u_stride: s1, v_stride: s2 },
        };
        let c = region.clip;
        let (x0, y0) = (c.x as usize, c.y as usize);
        let (x1, y1) = (x0 + c.width as usize, y0 + c.height as usize);
        for by in y0 / 2..y1.div_ceil(2) {
            for bx in x0 / 2..x1.div_ceil(2) {
                let (cur_u, cur_v) = chroma.get(bx, by);
                let (mut su, mut sv, mut n, mut touched) = (0.0f32, 0.0f32, 0.0f32, false);
                for y in 2 * by..(2 * by + 2).min(self.height) {
                    for x in 2 * bx..(2 * bx + 2).min(self.width) {
                        n += 1.0;
                        match region.new_pixel(x, y) {
                            Some(rgb) => {
                                let [py, pu, pv] = coeffs.to_yuv(rgb);
                                y_plane[y * ys + x] = to_u8(py);
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
                    chroma.set(bx, by, to_u8(su / n), to_u8(sv / n));
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

/// The chroma planes of a YUV frame, addressed by 2×2 block.
enum Chroma<'p> {
    Planar { u: &'p mut [u8], v: &'p mut [u8], u_stride: usize, v_stride: usize },
    Interleaved { uv: &'p mut [u8], stride: usize },
}

impl Chroma<'_> {
    #[inline]
    fn get(&self, bx: usize, by: usize) -> (u8, u8) {
        match self {
            Chroma::Planar { u, v, u_stride, v_stride } => (u[by * u_stride + bx], v[by * v_stride + bx]),
            Chroma::Interleaved { uv, stride } => (uv[by * stride + 2 * bx], uv[by * stride + 2 * bx + 1]),
        }
    }

    #[inline]
    fn set(&mut self, bx: usize, by: usize, cu: u8, cv: u8) {
        match self {
            Chroma::Planar { u, v, u_stride, v_stride } => {
                u[by * *u_stride + bx] = cu;
                v[by * *v_stride + bx] = cv;
            }
            Chroma::Interleaved { uv, stride } => {
                uv[by * *stride + 2 * bx] = cu;
                uv[by * *stride + 2 * bx + 1] = cv;
            }
        }
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub(in super::super) const ALL_FORMATS: [PixelFormat; 12] = [
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
    ];

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
    /// per 2×2 block, decoded once; packed frames store the decoded RGB directly.
    pub(in super::super) fn same_picture_in(format: PixelFormat, width: usize, height: usize) -> (TestFrame, RgbImage) {
        let mut yuv = TestFrame::new(PixelFormat::I420, width, height, 0);
        let mut seed = 0x1234_5678u32;
        for plane in yuv.planes.iter_mut() {
            for b in plane.iter_mut() {
                seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                *b = 16 + (seed >> 24) as u8 % 224;
            }
        }
        let mut rgb = RgbImage::new(width, height);
        for y in 0..height {
            for x in 0..width {
                let c = (y / 2) * yuv.strides[1] + x / 2;
                let sample = [yuv.planes[0][y * yuv.strides[0] + x], yuv.planes[1][c], yuv.planes[2][c]];
                rgb.set_pixel(x, y, YuvMatrix::Bt601.to_rgb(false, sample));
            }
        }
        let mut frame = TestFrame::new(format, width, height, 0xA5);
        match format {
            PixelFormat::I420 => frame.planes = yuv.planes.clone(),
            PixelFormat::Nv12 => {
                frame.planes[0] = yuv.planes[0].clone();
                for cy in 0..height.div_ceil(2) {
                    for cx in 0..width.div_ceil(2) {
                        let i = cy * frame.strides[1] + 2 * cx;
                        frame.planes[1][i] = yuv.planes[1][cy * yuv.strides[1] + cx];
                        frame.planes[1][i + 1] = yuv.planes[2][cy * yuv.strides[2] + cx];
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
        for format in [PixelFormat::I420, PixelFormat::Nv12] {
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
                _ => (frame.planes[1][2], frame.planes[1][3]),
            };
            assert_eq!((u, v), (119, 156), "{format:?}");
            let chroma_changes =
                (1..3).map(|p| frame.planes[p].iter().zip(&before[p]).filter(|(a, b)| a != b).count()).sum::<usize>();
            assert_eq!(chroma_changes, 2, "{format:?}: one U and one V sample change");
        }
    }

    #[test]
    fn yuv_write_without_weight_round_trips_solid_blocks() {
        // A solid colour written over whole 2×2 blocks reads back as its own YUV→RGB round trip.
        for format in [PixelFormat::I420, PixelFormat::Nv12] {
            let mut frame = TestFrame::new(format, 5, 5, 128);
            frame.planes[0].fill(16);
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
            // The odd last column / row kept its black.
            assert_eq!(view.pixel_rgb(4, 4), [0, 0, 0]);
        }
    }
}
