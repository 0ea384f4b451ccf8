// SPDX-License-Identifier: MPL-2.0
//! Which reference the faces of an element follow, chosen once at start: Deep-Live-Cam
//! (InsightFace's inswapper swap and paste-back, [`FaceSwapper`]) or FaceFusion (any swapper
//! family, pixel boost, FaceFusion's masks, [`FaceFusionSwapper`]). The element calls this one
//! type either way.

use crate::face::Face;
use crate::runtime::ModelSession;
use crate::vision::{FrameView, FrameViewMut};

use super::facefusion::FaceFusionSwapper;
use super::identity::SourceProjection;
use super::swap::{FaceSwapper, SwapParams};

/// One lives in each lane for the element's whole run, so the size difference between the
/// variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Swapping {
    DeepLiveCam(FaceSwapper),
    FaceFusion(FaceFusionSwapper),
}

impl Swapping {
    /// The swapper's session (whose provider the element reports).
    pub fn model(&self) -> &ModelSession {
        match self {
            Swapping::DeepLiveCam(s) => s.swapper().model(),
            Swapping::FaceFusion(s) => s.model(),
        }
    }

    /// How a source picture's raw embedding becomes the identity [`Swapping::swap_faces`] takes.
    pub fn projection(&self) -> SourceProjection {
        match self {
            Swapping::DeepLiveCam(s) => SourceProjection::InsightfaceLatent(s.swapper().emap()),
            Swapping::FaceFusion(_) => SourceProjection::RawEmbedding,
        }
    }

    /// Every frame-path session, for the provider fallback warnings.
    /// Whether the next frame on this thread may capture a model's CUDA graph (see
    /// [`FaceSwapper::may_capture_here`]).
    pub fn may_capture_here(&self) -> bool {
        match self {
            Swapping::DeepLiveCam(s) => s.may_capture_here(),
            Swapping::FaceFusion(s) => s.models().any(ModelSession::may_capture_here),
        }
    }

    pub fn models(&self) -> Box<dyn Iterator<Item = &ModelSession> + '_> {
        match self {
            Swapping::DeepLiveCam(s) => Box::new(s.models()),
            Swapping::FaceFusion(s) => Box::new(s.models()),
        }
    }

    /// What runs the pixel steps.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Swapping::DeepLiveCam(s) => s.backend_name(),
            Swapping::FaceFusion(s) => s.backend_name(),
        }
    }

    /// See [`FaceSwapper::warm_up`] and [`FaceFusionSwapper::warm_up`].
    pub fn warm_up(&mut self, runs: usize) -> Result<(), String> {
        match self {
            Swapping::DeepLiveCam(s) => s.warm_up(runs),
            Swapping::FaceFusion(s) => s.warm_up(runs),
        }
    }

    /// Whether the swapper can add 106-point landmarks itself (`mouth-mask`).
    pub fn has_landmarker(&self) -> bool {
        match self {
            Swapping::DeepLiveCam(s) => s.has_landmarker(),
            Swapping::FaceFusion(s) => s.has_landmarker(),
        }
    }

    /// Whether faces need 106-point landmarks with `mouth-mask` at `mouth_mask`: for the mouth
    /// (Deep-Live-Cam), or for the area mask without fan_68_5 (FaceFusion).
    pub fn wants_landmarks(&self, mouth_mask: u32) -> bool {
        match self {
            Swapping::DeepLiveCam(_) => mouth_mask > 0,
            Swapping::FaceFusion(s) => s.needs_landmarks_106(),
        }
    }

    /// See [`FaceSwapper::add_landmarks`].
    pub fn add_landmarks(&mut self, frame: &FrameView, faces: &mut [Face]) {
        match self {
            Swapping::DeepLiveCam(s) => s.add_landmarks(frame, faces),
            Swapping::FaceFusion(s) => s.add_landmarks(frame, faces),
        }
    }

    /// The mean time of each step since the last report (for the debug log).
    pub fn take_report(&mut self) -> String {
        match self {
            Swapping::DeepLiveCam(s) => s.take_report(),
            Swapping::FaceFusion(s) => s.take_report(),
        }
    }

    /// Forgets what was kept for tracks that are gone.
    pub fn begin_frame(&mut self, faces: &[Face]) {
        match self {
            Swapping::DeepLiveCam(s) => s.begin_frame(faces),
            Swapping::FaceFusion(s) => s.begin_frame(faces),
        }
    }

    /// Swaps each of `faces` (`(face, identity)`, the identity made by [`Swapping::projection`])
    /// in `frame`, in place, in order, with each one's outcome. On the Deep-Live-Cam path faces
    /// apart from each other may run in one batch (see [`FaceSwapper::swap_faces`]), with the
    /// frame face-by-face swapping gives. The FaceFusion path takes only `params.opacity`: its
    /// masks and boost are its own settings.
    pub fn swap_faces(
        &mut self,
        frame: &mut FrameViewMut,
        faces: &[(&Face, &[f32])],
        params: &SwapParams,
    ) -> Vec<Result<(), String>> {
        match self {
            Swapping::DeepLiveCam(s) => s.swap_faces(frame, faces, params),
            Swapping::FaceFusion(s) => {
                faces.iter().map(|(face, identity)| s.swap_face(frame, face, identity, params.opacity)).collect()
            }
        }
    }
}
