//! `FaceMeta`: the faces of a video frame, carried on its buffer from `dlcdetect` to the
//! elements downstream (and to applications, through the `gstdlc` rlib).
//!
//! The meta is tagged `video`, `size` and `orientation`: elements that only convert colours copy
//! it, scalers (`videoscale`, `videoconvertscale`) call its transform so that coordinates follow
//! the new frame size, and every other transform drops it rather than carry stale coordinates.

use std::fmt;
use std::sync::Arc;

use gst::prelude::*;

/// Length of an ArcFace identity embedding.
pub const EMBEDDING_LEN: usize = 512;

/// Per-face state bits.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct FaceFlags(u32);

impl FaceFlags {
    /// The detector ran on this frame and found this face.
    pub const INFERRED: FaceFlags = FaceFlags(1);
    /// The face was carried forward by tracking (no detection on this frame).
    pub const TRACKED: FaceFlags = FaceFlags(1 << 1);
    /// `dlcswap` replaced this face.
    pub const SWAPPED: FaceFlags = FaceFlags(1 << 2);
    /// `dlcenhance` restored this face.
    pub const ENHANCED: FaceFlags = FaceFlags(1 << 3);

    pub const fn empty() -> Self {
        FaceFlags(0)
    }
    pub const fn bits(self) -> u32 {
        self.0
    }
    pub const fn contains(self, other: FaceFlags) -> bool {
        self.0 & other.0 == other.0
    }
    pub fn insert(&mut self, other: FaceFlags) {
        self.0 |= other.0;
    }
    pub fn remove(&mut self, other: FaceFlags) {
        self.0 &= !other.0;
    }
}

impl std::ops::BitOr for FaceFlags {
    type Output = FaceFlags;
    fn bitor(self, rhs: FaceFlags) -> FaceFlags {
        FaceFlags(self.0 | rhs.0)
    }
}

/// One face in frame pixel coordinates.
#[derive(Clone, Debug, PartialEq)]
pub struct Face {
    /// Bounding box `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
    /// Detection score in 0..1.
    pub score: f32,
    /// Left eye, right eye, nose, left and right mouth corner (InsightFace order, image left/right).
    pub landmarks: [[f32; 2]; 5],
    /// The 106-point landmarks of `2d106det`, when a landmark model ran.
    pub landmarks_106: Option<Arc<[[f32; 2]]>>,
    /// L2-normalised ArcFace embedding ([`EMBEDDING_LEN`] values), shared between copies.
    pub embedding: Option<Arc<[f32]>>,
    /// Stable id of the track this face belongs to (0 = untracked).
    pub track_id: u64,
    pub flags: FaceFlags,
}

impl Face {
    pub fn width(&self) -> f32 {
        self.bbox[2] - self.bbox[0]
    }
    pub fn height(&self) -> f32 {
        self.bbox[3] - self.bbox[1]
    }
    pub fn area(&self) -> f32 {
        self.width().max(0.0) * self.height().max(0.0)
    }

    /// The same face in a frame scaled by `sx`, `sy`.
    pub fn scaled(&self, sx: f32, sy: f32) -> Face {
        let mut face = self.clone();
        face.bbox = [self.bbox[0] * sx, self.bbox[1] * sy, self.bbox[2] * sx, self.bbox[3] * sy];
        for p in face.landmarks.iter_mut() {
            *p = [p[0] * sx, p[1] * sy];
        }
        if let Some(points) = &self.landmarks_106 {
            face.landmarks_106 = Some(points.iter().map(|p| [p[0] * sx, p[1] * sy]).collect());
        }
        face
    }
}

/// The faces of one buffer. Add it with [`FaceMeta::add`], read it with `buffer.meta::<FaceMeta>()`.
#[repr(transparent)]
pub struct FaceMeta(imp::FaceMeta);

unsafe impl Send for FaceMeta {}
unsafe impl Sync for FaceMeta {}

impl FaceMeta {
    /// Attaches `faces` to `buffer`, replacing the faces of an existing `FaceMeta`.
    pub fn add(buffer: &mut gst::BufferRef, faces: Vec<Face>) -> gst::MetaRefMut<'_, Self, gst::meta::Standalone> {
        // One FaceMeta per buffer: a second detector replaces the faces instead of stacking.
        if buffer.meta::<FaceMeta>().is_some() {
            let mut meta = buffer.meta_mut::<FaceMeta>().expect("checked above");
            meta.0.faces = faces;
            return meta;
        }
        unsafe {
            let mut params = std::mem::ManuallyDrop::new(imp::FaceMetaParams { faces });
            let meta = gst::ffi::gst_buffer_add_meta(
                buffer.as_mut_ptr(),
                imp::face_meta_get_info(),
                &mut *params as *mut imp::FaceMetaParams as gst::glib::ffi::gpointer,
            ) as *mut imp::FaceMeta;
            FaceMeta::from_mut_ptr(buffer, meta)
        }
    }

    /// Sets `flag` on the faces at `indices` of `buffer`'s FaceMeta (if it has one).
    pub fn mark(buffer: &mut gst::BufferRef, indices: &[usize], flag: FaceFlags) {
        if indices.is_empty() {
            return;
        }
        if let Some(mut meta) = buffer.meta_mut::<FaceMeta>() {
            for &index in indices {
                if let Some(face) = meta.0.faces.get_mut(index) {
                    face.flags.insert(flag);
                }
            }
        }
    }

    pub fn faces(&self) -> &[Face] {
        &self.0.faces
    }

    pub fn faces_mut(&mut self) -> &mut Vec<Face> {
        &mut self.0.faces
    }
}

unsafe impl MetaAPI for FaceMeta {
    type GstType = imp::FaceMeta;

    fn meta_api() -> gst::glib::Type {
        imp::face_meta_api_get_type()
    }
}

impl fmt::Debug for FaceMeta {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.debug_struct("FaceMeta").field("faces", &self.0.faces).finish()
    }
}

mod imp {
    use std::mem;
    use std::ptr;
    use std::sync::LazyLock;

    use gst::glib;
    use gst::glib::translate::*;
    use gst::meta::MetaTransform;

    use super::Face;

    pub(super) struct FaceMetaParams {
        pub faces: Vec<Face>,
    }

    #[repr(C)]
    pub struct FaceMeta {
        parent: gst::ffi::GstMeta,
        pub(super) faces: Vec<Face>,
    }

    pub(super) fn face_meta_api_get_type() -> glib::Type {
        static TYPE: LazyLock<glib::Type> = LazyLock::new(|| unsafe {
            let tags = [
                gst_video::ffi::GST_META_TAG_VIDEO_STR.as_ptr() as *const std::ffi::c_char,
                gst_video::ffi::GST_META_TAG_VIDEO_SIZE_STR.as_ptr() as *const std::ffi::c_char,
                gst_video::ffi::GST_META_TAG_VIDEO_ORIENTATION_STR.as_ptr() as *const std::ffi::c_char,
                ptr::null(),
            ];
            let t = from_glib(gst::ffi::gst_meta_api_type_register(
                c"GstDlcFaceMetaAPI".as_ptr(),
                tags.as_ptr() as *mut *const _,
            ));
            assert_ne!(t, glib::Type::INVALID);
            t
        });
        *TYPE
    }

    unsafe extern "C" fn face_meta_init(
        meta: *mut gst::ffi::GstMeta,
        params: glib::ffi::gpointer,
        _buffer: *mut gst::ffi::GstBuffer,
    ) -> glib::ffi::gboolean {
        unsafe {
            let meta = &mut *(meta as *mut FaceMeta);
            // `gst_buffer_add_meta` may be called with no params from C: start empty then.
            let faces = if params.is_null() { Vec::new() } else { ptr::read(params as *const FaceMetaParams).faces };
            ptr::write(&mut meta.faces, faces);
            true.into_glib()
        }
    }

    unsafe extern "C" fn face_meta_free(meta: *mut gst::ffi::GstMeta, _buffer: *mut gst::ffi::GstBuffer) {
        unsafe {
            let meta = &mut *(meta as *mut FaceMeta);
            ptr::drop_in_place(&mut meta.faces);
        }
    }

    unsafe extern "C" fn face_meta_transform(
        dest: *mut gst::ffi::GstBuffer,
        meta: *mut gst::ffi::GstMeta,
        _buffer: *mut gst::ffi::GstBuffer,
        type_: glib::ffi::GQuark,
        data: glib::ffi::gpointer,
    ) -> glib::ffi::gboolean {
        unsafe {
            let meta = &*(meta as *const FaceMeta);
            let type_ = glib::Quark::from_glib(type_);
            let faces: Vec<Face> = if type_ == gst::meta::MetaTransformCopy::quark() {
                meta.faces.clone()
            } else if type_ == gst_video::video_meta::VideoMetaTransformScale::quark() && !data.is_null() {
                let transform = &*(data as *const gst_video::ffi::GstVideoMetaTransform);
                if transform.in_info.is_null() || transform.out_info.is_null() {
                    return false.into_glib();
                }
                let (in_info, out_info) = (&*transform.in_info, &*transform.out_info);
                if in_info.width <= 0 || in_info.height <= 0 {
                    return false.into_glib();
                }
                let sx = out_info.width as f32 / in_info.width as f32;
                let sy = out_info.height as f32 / in_info.height as f32;
                meta.faces.iter().map(|f| f.scaled(sx, sy)).collect()
            } else {
                // Crops, rotations and unknown transforms would leave coordinates wrong.
                return false.into_glib();
            };
            let dest = gst::BufferRef::from_mut_ptr(dest);
            super::FaceMeta::add(dest, faces);
            true.into_glib()
        }
    }

    pub(super) fn face_meta_get_info() -> *const gst::ffi::GstMetaInfo {
        struct MetaInfo(ptr::NonNull<gst::ffi::GstMetaInfo>);
        unsafe impl Send for MetaInfo {}
        unsafe impl Sync for MetaInfo {}

        static META_INFO: LazyLock<MetaInfo> = LazyLock::new(|| unsafe {
            MetaInfo(
                ptr::NonNull::new(gst::ffi::gst_meta_register(
                    face_meta_api_get_type().into_glib(),
                    c"GstDlcFaceMeta".as_ptr(),
                    mem::size_of::<FaceMeta>(),
                    Some(face_meta_init),
                    Some(face_meta_free),
                    Some(face_meta_transform),
                ) as *mut gst::ffi::GstMetaInfo)
                .expect("registering GstDlcFaceMeta failed"),
            )
        });
        META_INFO.0.as_ptr()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn face(x: f32) -> Face {
        Face {
            bbox: [x, 10.0, x + 40.0, 60.0],
            score: 0.9,
            landmarks: [[x + 10.0, 25.0], [x + 30.0, 25.0], [x + 20.0, 35.0], [x + 12.0, 48.0], [x + 28.0, 48.0]],
            landmarks_106: Some(vec![[x, 10.0]; 106].into()),
            embedding: Some(vec![0.5; EMBEDDING_LEN].into()),
            track_id: 7,
            flags: FaceFlags::INFERRED,
        }
    }

    #[test]
    fn meta_is_copied_with_the_buffer() {
        gst::init().unwrap();
        let mut buffer = gst::Buffer::with_size(16).unwrap();
        FaceMeta::add(buffer.get_mut().unwrap(), vec![face(5.0), face(100.0)]);
        let copy = buffer.copy();
        let faces = copy.meta::<FaceMeta>().unwrap().faces().to_vec();
        assert_eq!(faces, vec![face(5.0), face(100.0)]);
        // The embedding is shared, not duplicated.
        let original = buffer.meta::<FaceMeta>().unwrap();
        assert!(Arc::ptr_eq(original.faces()[0].embedding.as_ref().unwrap(), faces[0].embedding.as_ref().unwrap()));
    }

    #[test]
    fn adding_twice_replaces_the_faces() {
        gst::init().unwrap();
        let mut buffer = gst::Buffer::with_size(16).unwrap();
        FaceMeta::add(buffer.get_mut().unwrap(), vec![face(5.0)]);
        FaceMeta::add(buffer.get_mut().unwrap(), vec![face(9.0), face(1.0)]);
        assert_eq!(buffer.iter_meta::<FaceMeta>().count(), 1);
        assert_eq!(buffer.meta::<FaceMeta>().unwrap().faces().len(), 2);
    }

    #[test]
    fn scaling_moves_every_point() {
        let scaled = face(10.0).scaled(0.5, 2.0);
        assert_eq!(scaled.bbox, [5.0, 20.0, 25.0, 120.0]);
        assert_eq!(scaled.landmarks[4], [19.0, 96.0]);
        assert_eq!(scaled.landmarks_106.unwrap()[0], [5.0, 20.0]);
    }

    #[test]
    fn flags_combine() {
        let mut flags = FaceFlags::INFERRED | FaceFlags::SWAPPED;
        assert!(flags.contains(FaceFlags::SWAPPED));
        flags.remove(FaceFlags::INFERRED);
        assert!(!flags.contains(FaceFlags::INFERRED));
        flags.insert(FaceFlags::ENHANCED);
        assert_eq!(flags.bits(), FaceFlags::SWAPPED.bits() | FaceFlags::ENHANCED.bits());
    }
}
