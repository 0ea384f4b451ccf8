//! The bridge between GStreamer's mapped video frames and the GStreamer-free [`crate::vision`]
//! views, and the raw formats the elements accept.

use gst_video::prelude::*;

use crate::vision::{FrameView, FrameViewMut, PixelFormat, YuvMatrix};

/// Every raw format the elements read, in caps preference order.
pub(crate) const READ_FORMATS: [gst_video::VideoFormat; 12] = [
    gst_video::VideoFormat::Rgb,
    gst_video::VideoFormat::Bgr,
    gst_video::VideoFormat::Rgba,
    gst_video::VideoFormat::Bgra,
    gst_video::VideoFormat::Rgbx,
    gst_video::VideoFormat::Bgrx,
    gst_video::VideoFormat::Xrgb,
    gst_video::VideoFormat::Xbgr,
    gst_video::VideoFormat::Argb,
    gst_video::VideoFormat::Abgr,
    gst_video::VideoFormat::I420,
    gst_video::VideoFormat::Nv12,
];

/// Caps for `formats` at any size and frame rate.
pub(crate) fn raw_caps(formats: &[gst_video::VideoFormat]) -> gst::Caps {
    gst_video::VideoCapsBuilder::new().format_list(formats.iter().copied()).build()
}

fn pixel_format(format: gst_video::VideoFormat) -> Option<PixelFormat> {
    use gst_video::VideoFormat as F;
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
