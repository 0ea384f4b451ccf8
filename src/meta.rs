// SPDX-License-Identifier: MPL-2.0
//! `FaceMeta`: the faces of a video frame, carried on its buffer from `dlcdetect` to the
//! elements downstream (and to applications, through the `gstdlc` rlib). The faces themselves are
//! plain data ([`crate::face`]); this module only carries them on buffers.
//!
//! The meta is tagged `video`, `size` and `orientation`: elements that only convert colours copy
//! it, scalers (`videoscale`, `videoconvertscale`) call its transform so that coordinates follow
//! the new frame size, and every other transform drops it rather than carry stale coordinates.

use std::fmt;

use gst::prelude::*;

pub use crate::face::{EMBEDDING_LEN, Face, FaceFlags};

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

    /// Whether this meta was made by this copy of the library. A process can hold two copies
    /// (an application linked against one file, GStreamer loading the plugin from another):
    /// they share the meta API by name, but the faces of the other copy's metas are laid out by
    /// a build that may differ, so only metas made by this copy can be read safely.
    pub(crate) fn made_by_this_library(&self) -> bool {
        let init = unsafe { (*self.0.parent.info).init_func };
        init.is_some_and(|f| std::ptr::fn_addr_eq(f, imp::REGISTERED_INIT))
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
        pub(super) parent: gst::ffi::GstMeta,
        pub(super) faces: Vec<Face>,
    }

    pub(super) fn face_meta_api_get_type() -> glib::Type {
        static TYPE: LazyLock<glib::Type> = LazyLock::new(|| unsafe {
            // Registered already by another copy of the library in this process (see
            // `made_by_this_library`): the API is the same, registering it again would fail.
            if let Some(existing) = glib::Type::from_name("GstDlcFaceMetaAPI") {
                return existing;
            }
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

    type InitFn = unsafe extern "C" fn(
        *mut gst::ffi::GstMeta,
        glib::ffi::gpointer,
        *mut gst::ffi::GstBuffer,
    ) -> glib::ffi::gboolean;

    /// The init function as registered, and as `made_by_this_library` compares it: one stored
    /// address. Naming `face_meta_init` at each place instead can give two: an optimised build
    /// may copy a small function into every codegen unit that uses it (the Windows release
    /// build did, and read no faces through the C interface).
    pub(super) static REGISTERED_INIT: InitFn = face_meta_init;

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
                    Some(REGISTERED_INIT),
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
    use std::sync::Arc;

    use super::*;
    use crate::face::tests::face;

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
}
