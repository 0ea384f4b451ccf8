// SPDX-License-Identifier: MPL-2.0
//! The bridge between GStreamer's mapped video frames and the GStreamer-free [`crate::vision`]
//! views, and the raw formats the elements accept.

use gst_video::VideoFormat as F;
use gst_video::prelude::*;

use crate::vision::{FrameView, FrameViewMut, PixelFormat, YuvMatrix};

/// The YUV formats, read and written alike (in place, chroma shared by pixel pairs or 2×2 blocks).
const YUV_FORMATS: [F; 7] = [F::I420, F::Nv12, F::Yuy2, F::Uyvy, F::Yvyu, F::Nv21, F::Yv12];

/// Every raw format dlcdetect reads, in caps preference order.
pub(crate) const READ_FORMATS: [F; 17] =
    concat([F::Rgb, F::Bgr, F::Rgba, F::Bgra, F::Rgbx, F::Bgrx, F::Xrgb, F::Xbgr, F::Argb, F::Abgr], YUV_FORMATS);

/// The raw formats dlcswap and dlcenhance write in place, in caps preference order.
pub(crate) const WRITE_FORMATS: [F; 13] = concat([F::Rgb, F::Bgr, F::Rgbx, F::Bgrx, F::Rgba, F::Bgra], YUV_FORMATS);

/// `a` followed by `b` (a compile error unless `N = A + B`).
const fn concat<const A: usize, const B: usize, const N: usize>(a: [F; A], b: [F; B]) -> [F; N] {
    assert!(A + B == N, "concat: wrong output length");
    let mut out = [F::Unknown; N];
    let mut i = 0;
    while i < N {
        out[i] = if i < A { a[i] } else { b[i - A] };
        i += 1;
    }
    out
}

/// Caps for `formats` at any size and frame rate.
pub(crate) fn raw_caps(formats: &[F]) -> gst::Caps {
    gst_video::VideoCapsBuilder::new().format_list(formats.iter().copied()).build()
}

fn pixel_format(format: F) -> Option<PixelFormat> {
    Some(match format {
        F::Rgb => PixelFormat::Rgb,
        F::Bgr => PixelFormat::Bgr,
        F::Rgba => PixelFormat::Rgba,
        F::Bgra => PixelFormat::Bgra,
        F::Rgbx => PixelFormat::Rgbx,
        F::Bgrx => PixelFormat::Bgrx,
        F::Xrgb => PixelFormat::Xrgb,
        F::Xbgr => PixelFormat::Xbgr,
        F::Argb => PixelFormat::Argb,
        F::Abgr => PixelFormat::Abgr,
        F::I420 => PixelFormat::I420,
        F::Nv12 => PixelFormat::Nv12,
        F::Yuy2 => PixelFormat::Yuy2,
        F::Uyvy => PixelFormat::Uyvy,
        F::Yvyu => PixelFormat::Yvyu,
        F::Nv21 => PixelFormat::Nv21,
        F::Yv12 => PixelFormat::Yv12,
        _ => return None,
    })
}

/// The YUV matrix and range of `info` (GStreamer fills in defaults by frame size when caps
/// leave colorimetry out).
fn yuv_matrix(info: &gst_video::VideoInfo) -> (YuvMatrix, bool) {
    let colorimetry = info.colorimetry();
    let matrix = match colorimetry.matrix() {
        gst_video::VideoColorMatrix::Bt709 => YuvMatrix::Bt709,
        gst_video::VideoColorMatrix::Bt2020 => YuvMatrix::Bt2020,
        _ => YuvMatrix::Bt601,
    };
    (matrix, colorimetry.range() == gst_video::VideoColorRange::Range0_255)
}

/// A read-only vision view of a mapped frame.
pub(crate) fn frame_view<'a, T>(frame: &'a gst_video::VideoFrameRef<T>) -> Result<FrameView<'a>, String> {
    let info = frame.info();
    let format = pixel_format(info.format()).ok_or_else(|| format!("unsupported format {:?}", info.format()))?;
    let (matrix, full_range) = yuv_matrix(info);
    let n = frame.n_planes() as usize;
    let mut planes: [&[u8]; 3] = [&[], &[], &[]];
    let mut strides = [0usize; 3];
    for i in 0..n.min(3) {
        planes[i] = frame.plane_data(i as u32).map_err(|e| e.to_string())?;
        strides[i] = frame.plane_stride()[i] as usize;
    }
    FrameView::new(format, info.width() as usize, info.height() as usize, planes, strides, matrix, full_range)
}

/// A writable vision view of a mapped frame.
pub(crate) fn frame_view_mut<'a>(
    frame: &'a mut gst_video::VideoFrameRef<&mut gst::BufferRef>,
) -> Result<FrameViewMut<'a>, String> {
    let info = frame.info();
    let format = pixel_format(info.format()).ok_or_else(|| format!("unsupported format {:?}", info.format()))?;
    let (matrix, full_range) = yuv_matrix(info);
    let (width, height) = (info.width() as usize, info.height() as usize);
    let n = (frame.n_planes() as usize).min(3);
    let mut strides = [0usize; 3];
    for (stride, &s) in strides.iter_mut().zip(frame.plane_stride()).take(n) {
        *stride = s as usize;
    }
    let mut planes: [&'a mut [u8]; 3] = [&mut [], &mut [], &mut []];
    for (i, slot) in planes.iter_mut().enumerate().take(n) {
        let plane = frame.plane_data_mut(i as u32).map_err(|e| e.to_string())?;
        let (ptr, len) = (plane.as_mut_ptr(), plane.len());
        // SAFETY: the planes of a mapped video frame are disjoint regions of its memory, valid
        // for as long as the frame stays mapped, which the `'a` borrow of `frame` guarantees; the
        // safe API only lends one plane per borrow of the frame.
        *slot = unsafe { std::slice::from_raw_parts_mut(ptr, len) };
    }
    FrameViewMut::new(format, width, height, planes, strides, matrix, full_range)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::vision::{Rect, RgbImage};

    /// 45×15 (odd, so that the last 4:2:2 pair and 4:2:0 block have one column) in 8×8 blocks
    /// of different colours.
    const W: usize = 45;
    const H: usize = 15;
    const COLOURS: [[u8; 3]; 6] =
        [[200, 40, 60], [30, 180, 90], [60, 70, 210], [220, 200, 40], [20, 150, 200], [170, 60, 190]];

    fn block_colour(x: usize, y: usize) -> [u8; 3] {
        COLOURS[(x / 8 + 3 * (y / 8)) % COLOURS.len()]
    }

    /// Pixels whose neighbours two pixels around share their block, so that GStreamer's chroma
    /// filters see one colour.
    fn block_interior(x: usize, y: usize) -> bool {
        (2..6).contains(&(x % 8)) && (2..6).contains(&(y % 8)) && x + 2 < W && y + 2 < H
    }

    fn video_info(format: gst_video::VideoFormat) -> gst_video::VideoInfo {
        gst_video::VideoInfo::builder(format, W as u32, H as u32).build().expect("video info")
    }

    fn rgb_frame(picture: &RgbImage) -> gst_video::VideoFrame<gst_video::video_frame::Readable> {
        let info = video_info(gst_video::VideoFormat::Rgb);
        let buffer = gst::Buffer::with_size(info.size()).expect("buffer");
        let mut frame = gst_video::VideoFrame::from_buffer_writable(buffer, &info).expect("RGB frame");
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data_mut(0).expect("plane 0");
        for (y, row) in picture.data.chunks_exact(3 * W).enumerate() {
            data[y * stride..y * stride + 3 * W].copy_from_slice(row);
        }
        let buffer = frame.into_buffer();
        gst_video::VideoFrame::from_buffer_readable(buffer, &info).expect("RGB frame")
    }

    /// GStreamer's own conversion of `frame` to `to` (no dithering).
    fn convert<T>(frame: &gst_video::VideoFrame<T>, to: &gst_video::VideoInfo) -> gst::Buffer {
        let mut config = gst_video::VideoConverterConfig::new();
        config.set_dither_method(gst_video::VideoDitherMethod::None);
        let converter = gst_video::VideoConverter::new(frame.info(), to, Some(config)).expect("converter");
        let buffer = gst::Buffer::with_size(to.size()).expect("buffer");
        let mut out = gst_video::VideoFrame::from_buffer_writable(buffer, to).expect("frame");
        converter.frame(frame, &mut out);
        out.into_buffer()
    }

    fn assert_block_colours(what: &str, rgb: impl Fn(usize, usize) -> [u8; 3]) {
        for y in 0..H {
            for x in (0..W).filter(|&x| block_interior(x, y)) {
                let (got, want) = (rgb(x, y), block_colour(x, y));
                assert!(
                    got.iter().zip(want).all(|(&g, w)| g.abs_diff(w) <= 4),
                    "{what}: pixel ({x}, {y}) is {got:?}, expected {want:?}"
                );
            }
        }
    }

    fn block_picture() -> RgbImage {
        let mut picture = RgbImage::new(W, H);
        for y in 0..H {
            for x in 0..W {
                picture.set_pixel(x, y, block_colour(x, y));
            }
        }
        picture
    }

    #[test]
    fn format_lists_map_to_pixel_formats() {
        for format in READ_FORMATS {
            assert!(pixel_format(format).is_some(), "{format:?}");
        }
        for format in WRITE_FORMATS {
            assert!(READ_FORMATS.contains(&format), "{format:?} is written but not read");
        }
    }

    /// The layouts agree with GStreamer's: frames GStreamer converts read as their colours.
    #[test]
    fn every_read_format_reads_what_gstreamer_wrote() {
        gst::init().expect("GStreamer initialises");
        let source = rgb_frame(&block_picture());
        for format in READ_FORMATS {
            let info = video_info(format);
            let buffer = convert(&source, &info);
            let frame = gst_video::VideoFrame::from_buffer_readable(buffer, &info).expect("frame");
            let frame_ref = frame.as_video_frame_ref();
            let view = frame_view(&frame_ref).unwrap_or_else(|e| panic!("{format:?}: {e}"));
            assert_block_colours(&format!("{format:?}"), |x, y| view.pixel_rgb(x, y));
        }
    }

    /// What the elements write in place is what GStreamer reads back.
    #[test]
    fn every_write_format_writes_what_gstreamer_reads() {
        gst::init().expect("GStreamer initialises");
        let mut grey = RgbImage::new(W, H);
        grey.data.fill(128);
        let grey = rgb_frame(&grey);
        let picture = block_picture();
        for format in WRITE_FORMATS {
            let info = video_info(format);
            let buffer = convert(&grey, &info);
            let mut frame = gst_video::VideoFrame::from_buffer_writable(buffer, &info).expect("frame");
            {
                let mut frame_ref = frame.as_mut_video_frame_ref();
                let mut view = frame_view_mut(&mut frame_ref).unwrap_or_else(|e| panic!("{format:?}: {e}"));
                view.write_region(Rect::new(0, 0, W as i32, H as i32), &picture, None);
            }
            let written = gst_video::VideoFrame::from_buffer_readable(frame.into_buffer(), &info).expect("frame");
            let back = rgb_frame_data(convert(&written, &video_info(gst_video::VideoFormat::Rgb)));
            assert_block_colours(&format!("{format:?}"), |x, y| back.pixel(x, y));
        }
    }

    /// The pixels of an RGB buffer of `W × H`.
    fn rgb_frame_data(buffer: gst::Buffer) -> RgbImage {
        let info = video_info(gst_video::VideoFormat::Rgb);
        let frame = gst_video::VideoFrame::from_buffer_readable(buffer, &info).expect("RGB frame");
        let stride = frame.plane_stride()[0] as usize;
        let data = frame.plane_data(0).expect("plane 0");
        let rows = (0..H).flat_map(|y| data[y * stride..y * stride + 3 * W].iter().copied()).collect();
        RgbImage::from_raw(W, H, rows).expect("W × H")
    }
}
