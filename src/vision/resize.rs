// SPDX-License-Identifier: MPL-2.0
//! Bilinear resize of frame planes with `fast_image_resize` (SIMD), reading the mapped planes
//! where they lie: GStreamer rows are `stride` bytes apart, so each plane is handed to the
//! resizer as a strided view instead of being copied into a packed image first.
//!
//! `ResizeAlg::Interpolation(Bilinear)` is the crate's OpenCV-like mode: a fixed 2-tap kernel
//! with half-pixel centres and no anti-aliasing when downscaling, as `cv2.resize(INTER_LINEAR)`.
//! It works in 8-bit fixed point with the vertical pass first and an 8-bit intermediate, so a
//! value may differ from exact bilinear (and from OpenCV) by one level.

use std::marker::PhantomData;

use bytemuck::Pod;
use fast_image_resize::images::TypedImage;
use fast_image_resize::pixels::{U8, U8x2, U8x3, U8x4};
use fast_image_resize::{Filter, FilterType, ImageView, PixelTrait, ResizeAlg, ResizeOptions, Resizer};

/// One plane of a frame: `height` rows of `width` pixels of type `P`, row `y` starting at byte
/// `y · stride` of `data`.
struct PlaneView<'a, P> {
    data: &'a [u8],
    stride: usize,
    width: u32,
    height: u32,
    row_bytes: usize,
    pixel: PhantomData<P>,
}

impl<'a, P: Pod> PlaneView<'a, P> {
    /// Checks that every row lies within `data` (the last row needs no padding after it).
    fn new(data: &'a [u8], stride: usize, width: usize, height: usize) -> Result<Self, String> {
        let row_bytes = width.checked_mul(size_of::<P>());
        let fits = row_bytes.and_then(|row| match height {
            0 => Some(true),
            _ => {
                Some((height == 1 || stride >= row) && stride.checked_mul(height - 1)?.checked_add(row)? <= data.len())
            }
        });
        let (Some(row_bytes), Some(true), Ok(w), Ok(h)) =
            (row_bytes, fits, u32::try_from(width), u32::try_from(height))
        else {
            return Err(format!(
                "resize: a {width}×{height} plane of {}-byte pixels does not fit {} bytes with stride {stride}",
                size_of::<P>(),
                data.len()
            ));
        };
        Ok(PlaneView { data, stride, width: w, height: h, row_bytes, pixel: PhantomData })
    }

    #[inline]
    fn row(&self, y: usize) -> Option<&'a [P]> {
        let start = y.checked_mul(self.stride)?;
        bytemuck::try_cast_slice(self.data.get(start..start.checked_add(self.row_bytes)?)?).ok()
    }
}

// SAFETY: the contract is that every row the view yields holds at least `width` pixels. `row`
// yields exactly `width` pixels (`row_bytes` bytes cast to `P`) or nothing, and `iter_rows` stops
// at the first row it cannot yield (none, after `new`'s check) instead of yielding a short one.
unsafe impl<P: PixelTrait + Pod> ImageView for PlaneView<'_, P> {
    type Pixel = P;

    fn width(&self) -> u32 {
        self.width
    }

    fn height(&self) -> u32 {
        self.height
    }

    fn iter_rows(&self, start_row: u32) -> impl Iterator<Item = &[P]> {
        (start_row as usize..self.height as usize).map_while(|y| self.row(y))
    }
}

/// A plane to resize: `width × height` pixels of `bpp` bytes (1 to 4, resized per byte) with
/// rows `stride` bytes apart.
#[derive(Clone, Copy, Debug)]
pub(super) struct Plane<'a> {
    pub data: &'a [u8],
    pub stride: usize,
    pub width: usize,
    pub height: usize,
    pub bpp: usize,
}

/// Resizes `src` into `dst` as a packed `width × height` image of `src.bpp`-byte pixels (`dst`
/// keeps its allocation across calls). `extent`, when given, is the part of the plane that maps
/// onto the output, `(width, height)` from the top-left corner in (possibly fractional) source
/// pixels: subsampled chroma covers the frame's extent, half of it, which is less than its whole
/// plane when the frame's size is odd.
pub(super) fn resize_plane(
    resizer: &mut Resizer,
    src: Plane,
    extent: Option<(f64, f64)>,
    filter: FilterType,
    dst: &mut Vec<u8>,
    size: (usize, usize),
) -> Result<(), String> {
    match src.bpp {
        1 => resize_typed::<U8>(resizer, src, extent, filter, dst, size),
        2 => resize_typed::<U8x2>(resizer, src, extent, filter, dst, size),
        3 => resize_typed::<U8x3>(resizer, src, extent, filter, dst, size),
        4 => resize_typed::<U8x4>(resizer, src, extent, filter, dst, size),
        bpp => Err(format!("resize: no {bpp}-byte pixel type")),
    }
}

/// The kernel of chroma that is replicated to the pixels it stands for (as the frame readers
/// decode it) and then sampled bilinearly at pixel positions, expressed on the chroma samples
/// themselves: with `d` the distance from a chroma sample in chroma samples, the two pixels it
/// stands for are at `2d ± 0.5` pixels from the sampling position, so its weight is
/// `hat(2d − 0.5) + hat(2d + 0.5)`: 1 within a quarter sample, falling to 0 at three quarters.
/// Resizing chroma with it gives each output pixel the chroma that the RGB conversion of the
/// frame, letterboxed, would have given it.
pub(super) fn replicated_chroma() -> Result<FilterType, String> {
    fn kernel(d: f64) -> f64 {
        let hat = |x: f64| (1.0 - x.abs()).max(0.0);
        hat(2.0 * d - 0.5) + hat(2.0 * d + 0.5)
    }
    Filter::new("replicated chroma", kernel, 0.75).map(FilterType::Custom).map_err(|e| format!("resize: {e}"))
}

fn resize_typed<P: PixelTrait + Pod>(
    resizer: &mut Resizer,
    src: Plane,
    extent: Option<(f64, f64)>,
    filter: FilterType,
    dst: &mut Vec<u8>,
    (width, height): (usize, usize),
) -> Result<(), String> {
    let view = PlaneView::<P>::new(src.data, src.stride, src.width, src.height)?;
    let too_large = || format!("resize: output {width}×{height} is too large");
    let len = width.checked_mul(height).and_then(|n| n.checked_mul(size_of::<P>())).ok_or_else(too_large)?;
    let (w, h) = (u32::try_from(width).map_err(|_| too_large())?, u32::try_from(height).map_err(|_| too_large())?);
    dst.resize(len, 0);
    let mut out = TypedImage::<P>::from_buffer(w, h, dst).map_err(|e| format!("resize: {e}"))?;
    // No alpha handling: 4-byte layouts carry alpha or padding that the callers never read, and
    // premultiplying would change the colour channels.
    let mut options = ResizeOptions::new().resize_alg(ResizeAlg::Interpolation(filter)).use_alpha(false);
    if let Some((ew, eh)) = extent {
        options = options.crop(0.0, 0.0, ew, eh);
    }
    resizer.resize_typed(&view, &mut out, &options).map_err(|e| format!("resize: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strided_plane_resizes_like_a_packed_one() {
        // 5×3 one-byte pixels with 4 bytes of padding per row (0xEE, never read), and no
        // padding after the last row.
        let pixels: Vec<u8> = (0..15).map(|i| (i * 17) as u8).collect();
        let mut strided = vec![0xEE; 9 * 2 + 5];
        for y in 0..3 {
            strided[y * 9..y * 9 + 5].copy_from_slice(&pixels[y * 5..y * 5 + 5]);
        }
        let mut resizer = Resizer::new();
        let (mut a, mut b) = (Vec::new(), Vec::new());
        let plane = |data, stride| Plane { data, stride, width: 5, height: 3, bpp: 1 };
        resize_plane(&mut resizer, plane(&strided, 9), None, FilterType::Bilinear, &mut a, (3, 2)).expect("strided");
        resize_plane(&mut resizer, plane(&pixels, 5), None, FilterType::Bilinear, &mut b, (3, 2)).expect("packed");
        assert_eq!(a, b);
        assert_eq!(a.len(), 6);
        assert!(!a.contains(&0xEE));
    }

    #[test]
    fn short_planes_and_bad_pixel_sizes_are_errors() {
        let data = [0u8; 20];
        let mut resizer = Resizer::new();
        let mut out = Vec::new();
        let plane = |len: usize, stride, bpp| Plane { data: &data[..len], stride, width: 4, height: 3, bpp };
        // 3 rows of 4 bytes, stride 8: 2·8 + 4 = 20 bytes.
        assert!(resize_plane(&mut resizer, plane(20, 8, 1), None, FilterType::Bilinear, &mut out, (2, 2)).is_ok());
        let err = resize_plane(&mut resizer, plane(19, 8, 1), None, FilterType::Bilinear, &mut out, (2, 2))
            .expect_err("short");
        assert!(err.contains("does not fit 19 bytes"), "{err}");
        assert!(
            resize_plane(&mut resizer, plane(20, 3, 1), None, FilterType::Bilinear, &mut out, (2, 2)).is_err(),
            "stride < row"
        );
        assert!(
            resize_plane(&mut resizer, plane(20, 8, 5), None, FilterType::Bilinear, &mut out, (2, 2)).is_err(),
            "5-byte pixels"
        );
    }
}
