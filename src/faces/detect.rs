// SPDX-License-Identifier: MPL-2.0
//! Detecting the faces of a frame: SCRFD, the size and count filters, and the optional identity
//! embedding and 106-point landmarks of every face.

use std::sync::Arc;
use std::time::Instant;

use crate::backend::Backend;
use crate::face::{Face, FaceFlags};
use crate::models::arcface::ArcFace;
use crate::models::landmark::Landmark106;
use crate::models::scrfd::{Detection, ScrfdDetector};
use crate::runtime::ModelSession;
use crate::timing::StepTimes;
use crate::vision::FrameView;

/// The detection knobs of one frame.
#[derive(Debug, Clone, Copy)]
pub struct DetectParams {
    pub threshold: f32,
    pub nms_threshold: f32,
    pub det_size: usize,
    /// At most this many faces, the largest first (0 = all).
    pub max_faces: usize,
    /// Faces narrower or shorter than this (pixels) are dropped.
    pub min_face_size: f32,
}

pub struct FaceDetector {
    detector: ScrfdDetector,
    recognizer: Option<ArcFace>,
    landmarker: Option<Landmark106>,
    backend: Backend,
    times: StepTimes,
}

impl FaceDetector {
    pub fn new(
        detector: ScrfdDetector,
        recognizer: Option<ArcFace>,
        landmarker: Option<Landmark106>,
        backend: Backend,
    ) -> Self {
        let times = StepTimes::new(&["embeddings", "106 landmarks"]);
        FaceDetector { detector, recognizer, landmarker, backend, times }
    }

    /// The detector's session (whose provider the element reports).
    pub fn detector(&self) -> &ModelSession {
        self.detector.model()
    }

    /// Every session, for the provider fallback warnings.
    pub fn models(&self) -> impl Iterator<Item = &ModelSession> {
        std::iter::once(self.detector.model())
            .chain(self.recognizer.iter().map(|r| r.model()))
            .chain(self.landmarker.iter().map(|l| l.model()))
    }

    /// The mean time of each step since the last report (for the debug log).
    pub fn take_report(&mut self) -> String {
        [self.detector.times().take_report(), self.times.take_report()].join("; ")
    }

    /// The faces of `frame` that pass the filters, in score order, before tracking.
    pub fn detect(&mut self, frame: &FrameView, params: &DetectParams) -> Result<Vec<Face>, String> {
        let mut detections: Vec<Detection> = self
            .detector
            .detect(&mut self.backend, frame, params.det_size, params.threshold, params.nms_threshold)?
            .into_iter()
            .filter(|d| {
                let (w, h) = (d.bbox[2] - d.bbox[0], d.bbox[3] - d.bbox[1]);
                w.min(h) >= params.min_face_size
            })
            .collect();
        if params.max_faces > 0 && detections.len() > params.max_faces {
            // Keep the largest faces, then restore score order (the order downstream sees).
            detections.sort_by(|a, b| b.area().total_cmp(&a.area()));
            detections.truncate(params.max_faces);
            detections.sort_by(|a, b| b.score.total_cmp(&a.score));
        }
        let mut faces = Vec::with_capacity(detections.len());
        for det in detections {
            // A model without a keypoint head cannot align faces; its boxes still get centred
            // stand-in points so that the meta is well-formed.
            let landmarks = det.kps.unwrap_or_else(|| {
                let (cx, cy) = ((det.bbox[0] + det.bbox[2]) / 2.0, (det.bbox[1] + det.bbox[3]) / 2.0);
                [[cx, cy]; 5]
            });
            let start = Instant::now();
            let embedding = match (&mut self.recognizer, det.kps) {
                (Some(recognizer), Some(kps)) => Some(Arc::from(recognizer.embed(&mut self.backend, frame, &kps)?)),
                _ => None,
            };
            let start = if embedding.is_some() { self.times.lap(0, start) } else { start };
            let landmarks_106 = match &mut self.landmarker {
                Some(landmarker) => Some(Arc::from(landmarker.landmarks(&mut self.backend, frame, &det.bbox)?)),
                None => None,
            };
            if landmarks_106.is_some() {
                self.times.lap(1, start);
            }
            faces.push(Face {
                bbox: det.bbox,
                score: det.score,
                landmarks,
                landmarks_106,
                embedding,
                track_id: 0,
                flags: FaceFlags::INFERRED,
            });
        }
        Ok(faces)
    }
}
