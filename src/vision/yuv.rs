// SPDX-License-Identifier: MPL-2.0
//! YUV ↔ RGB for the YUV frame formats: the matrices (BT.601, BT.709, BT.2020) in limited and
//! full range, as fixed-point decoding tables built at compile time and float encoding rows.

/// The YUV → RGB matrix of YUV frames (ignored for packed formats).
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
pub(super) const FIX: u32 = 16;

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

    /// The decoding tables (`luma`, `r_v`, `g_u`, `g_v`, `b_u`), for a device that decodes as
    /// [`YuvCoeffs::to_rgb`] does.
    pub(super) fn tables(&self) -> [[i32; 256]; 5] {
        [self.luma, self.r_v, self.g_u, self.g_v, self.b_u]
    }

    #[inline(always)]
    pub(super) fn to_rgb(&self, y: u8, u: u8, v: u8) -> [u8; 3] {
        let l = self.luma[y as usize];
        let (u, v) = (u as usize, v as usize);
        // Branch-free clamp to 0..=255 (compilers emit branches for `clamp` here, which
        // mispredict on saturated colours): negative values are masked to 0, values above 255
        // have every bit set by the OR and truncate to 255.
        let ch = |sum: i32| {
            let v = sum >> FIX;
            let v = v & !(v >> 31);
            (v | ((255 - v) >> 31)) as u8
        };
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
