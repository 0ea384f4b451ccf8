// SPDX-License-Identifier: MPL-2.0
//! Bilinear sampling positions in fixed point, shared by the warps into model crops and the
//! paste-back: stepping along a row is an integer add, and splitting a position into pixel and
//! fraction a shift and a mask (`floor` is a library call on baseline x86-64, and these loops run
//! over every pixel of a face).

/// Fractional bits of a position: 16 keep a position within 0.01 px over a thousand steps.
pub(crate) const FIX: u32 = 16;
const ONE: f64 = (1u64 << FIX) as f64;

/// `v` in fixed point, kept far from overflow (such positions are far outside any image); NaN
/// maps to 0, so callers check their transform for finiteness first.
#[inline]
pub(crate) fn fixed(v: f64) -> i64 {
    const LIMIT: f64 = (1u64 << 40) as f64;
    (v * ONE).clamp(-LIMIT, LIMIT) as i64
}

/// A bilinear sampling position: the top-left source pixel and the fixed-point fractions towards
/// the next pixel right and down.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tap {
    pub x: isize,
    pub y: isize,
    pub fx: u32,
    pub fy: u32,
}

impl Tap {
    /// The tap at fixed-point position `(xq, yq)` (an arithmetic shift floors negatives too).
    #[inline(always)]
    pub(crate) fn at(xq: i64, yq: i64) -> Tap {
        let mask = (1i64 << FIX) - 1;
        Tap { x: (xq >> FIX) as isize, y: (yq >> FIX) as isize, fx: (xq & mask) as u32, fy: (yq & mask) as u32 }
    }

    /// The same position `d` pixels further up and left.
    #[inline(always)]
    pub(crate) fn shifted(self, d: isize) -> Tap {
        Tap { x: self.x - d, y: self.y - d, ..self }
    }

    /// The fractions as floats.
    #[inline(always)]
    pub(crate) fn fractions(self) -> (f32, f32) {
        let scale = (1.0 / ONE) as f32;
        (self.fx as f32 * scale, self.fy as f32 * scale)
    }

    /// Bilinear interpolation of four 8-bit values (top-left, top-right, bottom-left,
    /// bottom-right) in integer arithmetic with 8-bit fractions, rounded to nearest: within half
    /// a level of the exact value (OpenCV's 8-bit warp uses 5-bit fractions).
    #[inline(always)]
    pub(crate) fn lerp_u8(self, p00: u8, p01: u8, p10: u8, p11: u8) -> u8 {
        let (ix, iy) = (self.fx >> (FIX - 8), self.fy >> (FIX - 8));
        let top = p00 as u32 * (256 - ix) + p01 as u32 * ix;
        let bottom = p10 as u32 * (256 - ix) + p11 as u32 * ix;
        ((top * (256 - iy) + bottom * iy + (1 << 15)) >> 16) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_floor_and_split() {
        let t = Tap::at(fixed(2.25), fixed(-0.5));
        assert_eq!((t.x, t.y), (2, -1));
        assert_eq!(t.fractions(), (0.25, 0.5));
        assert_eq!(t.shifted(2), Tap { x: 0, y: -3, ..t });
        assert_eq!(Tap::at(fixed(-3.0), 0).x, -3);
        assert_eq!(fixed(f64::INFINITY), 1 << 40);
    }

    #[test]
    fn integer_lerp_rounds_to_nearest() {
        // Half way: (10 + 21) / 2 = 15.5 → 16; a quarter: 10 + 0.25·100 = 35.
        assert_eq!(Tap::at(fixed(0.5), 0).lerp_u8(10, 21, 0, 0), 16);
        assert_eq!(Tap::at(fixed(0.25), 0).lerp_u8(10, 110, 0, 0), 35);
        assert_eq!(Tap::at(0, fixed(0.75)).lerp_u8(0, 0, 200, 200), 150);
        assert_eq!(Tap::at(fixed(0.999), fixed(0.999)).lerp_u8(0, 0, 0, 255), 253);
        assert_eq!(Tap::at(0, 0).lerp_u8(255, 0, 0, 0), 255);
    }
}
