// SPDX-License-Identifier: MPL-2.0
//! One face of a video frame, as plain data: what the detector found, what tracking and the other
//! elements added. [`crate::meta::FaceMeta`] carries these on buffers; everything below the
//! elements (tracking, the face pipeline) works on them without GStreamer.

use std::sync::Arc;

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

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A face with every field set, at `x` (shared by the tests of the modules that carry faces).
    pub(crate) fn face(x: f32) -> Face {
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
