// SPDX-License-Identifier: MPL-2.0
//! The C interface to [`FaceMeta`], declared by `include/gst/dlc/dlc.h` and exported by the
//! plugin library itself, so that C applications read the faces `dlcdetect` found without Rust.
//!
//! The ABI is kept small so that it can stay stable: plain C types only; a face is copied into a
//! caller-owned [`GstDlcFace`] whose reserved words leave room for later fields without changing
//! its size; the variable-length data (embedding, 106 landmarks) is copied into caller buffers
//! with the full length returned. Every pointer is checked, and no panic crosses into C: each
//! function answers as it does for a bad argument instead.

use std::panic::{AssertUnwindSafe, catch_unwind};

use gst::glib;
use gst::glib::translate::IntoGlib;
use gst::prelude::*;

use crate::face::{Face, FaceFlags};
use crate::meta::FaceMeta;

/// Number of landmarks in [`GstDlcFace::landmarks`] (`GST_DLC_FACE_N_LANDMARKS`).
pub const N_LANDMARKS: usize = 5;

/// One face, as C reads it (`GstDlcFace` in the header: the field order, types and offsets there
/// must match this struct; `tests/embedding.rs` compiles the header and compares).
#[repr(C)]
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct GstDlcFace {
    /// Bounding box corners in frame pixels.
    pub x1: f32,
    pub y1: f32,
    pub x2: f32,
    pub y2: f32,
    /// Detection score in 0..1.
    pub score: f32,
    /// Left eye, right eye, nose, left and right mouth corner as (x, y) in frame pixels.
    pub landmarks: [[f32; 2]; N_LANDMARKS],
    /// `GST_DLC_FACE_FLAG_*` bits ([`FaceFlags`]).
    pub flags: u32,
    /// Stable id of the face's track (0 = untracked).
    pub track_id: u64,
    /// Zeroed; room for later fields without changing the struct's size.
    pub reserved: [u32; 8],
}

// The layout the header documents (and checks with G_STATIC_ASSERT on its side).
const _: () = {
    use std::mem::{align_of, offset_of, size_of};
    assert!(size_of::<GstDlcFace>() == 104 && align_of::<GstDlcFace>() == 8);
    assert!(offset_of!(GstDlcFace, score) == 16 && offset_of!(GstDlcFace, landmarks) == 20);
    assert!(offset_of!(GstDlcFace, flags) == 60 && offset_of!(GstDlcFace, track_id) == 64);
    assert!(offset_of!(GstDlcFace, reserved) == 72);
};

impl From<&Face> for GstDlcFace {
    fn from(face: &Face) -> Self {
        let [x1, y1, x2, y2] = face.bbox;
        GstDlcFace {
            x1,
            y1,
            x2,
            y2,
            score: face.score,
            landmarks: face.landmarks,
            flags: face.flags.bits(),
            track_id: face.track_id,
            reserved: [0; 8],
        }
    }
}

// The flag values the header defines are FaceFlags' bits.
const _: () = {
    assert!(FaceFlags::INFERRED.bits() == 1 && FaceFlags::TRACKED.bits() == 2);
    assert!(FaceFlags::SWAPPED.bits() == 4 && FaceFlags::ENHANCED.bits() == 8);
};

/// Runs `f` on the faces of `buffer`, or answers `default` for a null pointer, something that is
/// not a `GstBuffer`, a buffer without `FaceMeta`, or a panic.
///
/// # Safety
/// `buffer` is null or points to a live `GstBuffer` (or at least to a `GstMiniObject`) that the
/// caller holds a reference to.
unsafe fn with_faces<T>(buffer: *mut gst::ffi::GstBuffer, default: T, f: impl FnOnce(&[Face]) -> T) -> T {
    if buffer.is_null() {
        return default;
    }
    let answer = catch_unwind(AssertUnwindSafe(|| {
        // As GST_IS_BUFFER: a pointer to some other mini object is refused, not misread.
        let is_buffer = unsafe { (*buffer).mini_object.type_ == gst::ffi::gst_buffer_get_type() };
        if !is_buffer {
            return None;
        }
        let buffer = unsafe { gst::BufferRef::from_ptr(buffer) };
        let meta = buffer.meta::<FaceMeta>()?;
        if !meta.made_by_this_library() {
            warn_other_copy();
            return None;
        }
        Some(f(meta.faces()))
    }));
    answer.ok().flatten().unwrap_or(default)
}

/// Says once per process why faces are not read: the application calls a different copy of the
/// plugin library than the one whose elements made the metas.
fn warn_other_copy() {
    static WARNED: std::sync::Once = std::sync::Once::new();
    WARNED.call_once(|| {
        glib::g_warning!(
            "gstdlc",
            "the face metas on these buffers were made by another copy of the dlc plugin library than the \
             one this application calls (linked against one libgstdlc.so while GStreamer loaded another, \
             e.g. through LD_LIBRARY_PATH or GST_PLUGIN_PATH): link against the file GStreamer loads; \
             faces are not read"
        );
    });
}

/// The face at `index`, if any.
fn face_at(faces: &[Face], index: u32) -> Option<&Face> {
    faces.get(usize::try_from(index).ok()?)
}

/// Copies `values` (or fewer, as many as `capacity`) to `out` when it is not null; answers the
/// full number of values.
///
/// # Safety
/// `out` is null or has room for `capacity` values.
unsafe fn copy_out(values: &[f32], out: *mut f32, capacity: u32) -> u32 {
    if !out.is_null() {
        let n = values.len().min(capacity as usize);
        unsafe { std::ptr::copy_nonoverlapping(values.as_ptr(), out, n) };
    }
    u32::try_from(values.len()).unwrap_or(u32::MAX)
}

/// The `GType` of the face meta API (`GstDlcFaceMetaAPI`), for `gst_buffer_get_meta()` and
/// `gst_buffer_iterate_meta_filtered()`. Needs `gst_init()` first.
#[unsafe(no_mangle)]
pub extern "C" fn gst_dlc_face_meta_api_get_type() -> glib::ffi::GType {
    catch_unwind(|| FaceMeta::meta_api().into_glib()).unwrap_or(glib::Type::INVALID.into_glib())
}

/// Number of faces on `buffer`: 0 when it has no face meta (or `buffer` is NULL).
///
/// # Safety
/// `buffer` is NULL or a `GstBuffer` the caller holds a reference to.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gst_dlc_buffer_get_face_count(buffer: *mut gst::ffi::GstBuffer) -> u32 {
    unsafe { with_faces(buffer, 0, |faces| u32::try_from(faces.len()).unwrap_or(u32::MAX)) }
}

/// Copies the face at `index` of `buffer` into `*face`. Returns FALSE (leaving `*face` as it was)
/// when an argument is NULL, the buffer has no face meta or `index` is past its last face.
///
/// # Safety
/// `buffer` is NULL or a `GstBuffer` the caller holds a reference to; `face` is NULL or points to
/// writable memory for one `GstDlcFace`.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gst_dlc_buffer_get_face(
    buffer: *mut gst::ffi::GstBuffer,
    index: u32,
    face: *mut GstDlcFace,
) -> glib::ffi::gboolean {
    if face.is_null() {
        return glib::ffi::GFALSE;
    }
    let found = unsafe { with_faces(buffer, None, |faces| face_at(faces, index).map(GstDlcFace::from)) };
    match found {
        Some(found) => {
            unsafe { face.write(found) };
            glib::ffi::GTRUE
        }
        None => glib::ffi::GFALSE,
    }
}

/// Copies the ArcFace embedding of the face at `index` (at most `n_values` floats) into `values`
/// when it is not NULL. Returns the embedding's length (`GST_DLC_FACE_EMBEDDING_LEN`), or 0 when
/// the face has none (no identity model ran) or does not exist.
///
/// # Safety
/// `buffer` is NULL or a `GstBuffer` the caller holds a reference to; `values` is NULL or has
/// room for `n_values` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gst_dlc_buffer_get_face_embedding(
    buffer: *mut gst::ffi::GstBuffer,
    index: u32,
    values: *mut f32,
    n_values: u32,
) -> u32 {
    let embedding =
        unsafe { with_faces(buffer, None, |faces| face_at(faces, index).and_then(|face| face.embedding.clone())) };
    match embedding {
        Some(embedding) => unsafe { copy_out(&embedding, values, n_values) },
        None => 0,
    }
}

/// Copies the 106-point landmarks of the face at `index` as (x, y) pairs (at most `n_points`
/// points, so `2 * n_points` floats) into `points` when it is not NULL. Returns the number of
/// points (106), or 0 when the face has none (no landmark model ran) or does not exist.
///
/// # Safety
/// `buffer` is NULL or a `GstBuffer` the caller holds a reference to; `points` is NULL or has
/// room for `2 * n_points` floats.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn gst_dlc_buffer_get_face_landmarks_106(
    buffer: *mut gst::ffi::GstBuffer,
    index: u32,
    points: *mut f32,
    n_points: u32,
) -> u32 {
    let landmarks =
        unsafe { with_faces(buffer, None, |faces| face_at(faces, index).and_then(|face| face.landmarks_106.clone())) };
    match landmarks {
        Some(landmarks) => {
            let flat: Vec<f32> = landmarks.iter().flatten().copied().collect();
            unsafe { copy_out(&flat, points, n_points.saturating_mul(2)) / 2 }
        }
        None => 0,
    }
}

#[cfg(test)]
mod tests {
    use std::ptr;

    use super::*;
    use crate::EMBEDDING_LEN;
    use crate::face::tests::face;

    fn buffer_with_faces(faces: Vec<Face>) -> gst::Buffer {
        gst::init().unwrap();
        let mut buffer = gst::Buffer::with_size(16).unwrap();
        FaceMeta::add(buffer.get_mut().unwrap(), faces);
        buffer
    }

    #[test]
    fn faces_are_copied_field_by_field() {
        let mut second = face(100.0);
        second.flags = FaceFlags::TRACKED | FaceFlags::SWAPPED;
        second.track_id = 42;
        let buffer = buffer_with_faces(vec![face(5.0), second.clone()]);
        let ptr = buffer.as_mut_ptr();
        unsafe {
            assert_eq!(gst_dlc_buffer_get_face_count(ptr), 2);
            let mut out = GstDlcFace::default();
            assert_eq!(gst_dlc_buffer_get_face(ptr, 1, &mut out), glib::ffi::GTRUE);
            assert_eq!([out.x1, out.y1, out.x2, out.y2], second.bbox);
            assert_eq!((out.score, out.landmarks, out.track_id), (second.score, second.landmarks, 42));
            assert_eq!(out.flags, 2 | 4);
            assert_eq!(out.reserved, [0; 8]);
        }
    }

    #[test]
    fn embedding_and_106_landmarks_are_copied_up_to_the_room_given() {
        let mut only = face(5.0);
        only.embedding = Some((0..EMBEDDING_LEN).map(|i| i as f32).collect());
        only.landmarks_106 = Some((0..106).map(|i| [i as f32, -(i as f32)]).collect());
        let buffer = buffer_with_faces(vec![only]);
        let ptr = buffer.as_mut_ptr();
        unsafe {
            let mut values = vec![0f32; EMBEDDING_LEN];
            assert_eq!(gst_dlc_buffer_get_face_embedding(ptr, 0, values.as_mut_ptr(), EMBEDDING_LEN as u32), 512);
            assert_eq!(values[511], 511.0);
            let mut few = [-1f32; 4];
            assert_eq!(gst_dlc_buffer_get_face_embedding(ptr, 0, few.as_mut_ptr(), 3), 512);
            assert_eq!(few, [0.0, 1.0, 2.0, -1.0], "no more than asked for is written");
            assert_eq!(gst_dlc_buffer_get_face_embedding(ptr, 0, ptr::null_mut(), 0), 512, "length only");

            let mut points = [0f32; 6];
            assert_eq!(gst_dlc_buffer_get_face_landmarks_106(ptr, 0, points.as_mut_ptr(), 3), 106);
            assert_eq!(points, [0.0, -0.0, 1.0, -1.0, 2.0, -2.0]);
        }
    }

    #[test]
    fn bad_arguments_answer_nothing() {
        let mut without = face(5.0);
        without.embedding = None;
        without.landmarks_106 = None;
        let buffer = buffer_with_faces(vec![without]);
        let ptr = buffer.as_mut_ptr();
        let bare = gst::Buffer::with_size(16).unwrap();
        let mut out = GstDlcFace { score: -1.0, ..Default::default() };
        unsafe {
            assert_eq!(gst_dlc_buffer_get_face_count(ptr::null_mut()), 0);
            assert_eq!(gst_dlc_buffer_get_face_count(bare.as_mut_ptr()), 0);
            assert_eq!(gst_dlc_buffer_get_face(ptr::null_mut(), 0, &mut out), glib::ffi::GFALSE);
            assert_eq!(gst_dlc_buffer_get_face(ptr, 0, ptr::null_mut()), glib::ffi::GFALSE);
            assert_eq!(gst_dlc_buffer_get_face(ptr, 1, &mut out), glib::ffi::GFALSE);
            assert_eq!(gst_dlc_buffer_get_face(bare.as_mut_ptr(), 0, &mut out), glib::ffi::GFALSE);
            assert_eq!(out.score, -1.0, "left untouched");
            assert_eq!(gst_dlc_buffer_get_face_embedding(ptr, 0, ptr::null_mut(), 0), 0);
            assert_eq!(gst_dlc_buffer_get_face_landmarks_106(ptr, 0, ptr::null_mut(), 0), 0);
            assert_eq!(gst_dlc_buffer_get_face_embedding(ptr, 9, ptr::null_mut(), 0), 0);

            // Another mini object passed where a buffer is expected.
            let caps = gst::Caps::new_empty_simple("video/x-raw");
            let not_a_buffer = caps.as_ptr() as *mut gst::ffi::GstBuffer;
            assert_eq!(gst_dlc_buffer_get_face_count(not_a_buffer), 0);
        }
    }

    #[test]
    fn api_type_is_the_meta_api() {
        gst::init().unwrap();
        let api = gst_dlc_face_meta_api_get_type();
        assert_eq!(api, FaceMeta::meta_api().into_glib());
        let buffer = buffer_with_faces(vec![face(1.0)]);
        assert!(!unsafe { gst::ffi::gst_buffer_get_meta(buffer.as_mut_ptr(), api) }.is_null());
    }
}
