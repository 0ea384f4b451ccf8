// SPDX-License-Identifier: MPL-2.0
//! Restoring one face: align to the restorer's template, run it (or reuse the track's last result
//! between inferences), paste back through the edge-ramp mask.

use std::collections::HashMap;
use std::time::Instant;

use crate::backend::{Backend, Crop};
use crate::face::Face;
use crate::models::enhancer::{self, Enhancer};
use crate::runtime::ModelSession;
use crate::timing::StepTimes;
use crate::vision::FrameViewMut;
use crate::vision::paste::CropMask;

/// The restoration knobs of one frame.
#[derive(Debug, Clone, Copy)]
pub struct EnhanceParams {
    /// How much of the restored face replaces the original (0..1).
    pub blend: f32,
    /// CodeFormer's fidelity weight (0..1).
    pub fidelity: f64,
    /// Restore each tracked face every this many frames and re-paste in between (≥ 1).
    pub inference_interval: u64,
}

/// A restored face kept for re-pasting between inferences.
struct CachedFace {
    crop: Crop,
    /// Frame counter of the inference that produced it.
    frame: u64,
}

pub struct FaceEnhancer {
    enhancer: Enhancer,
    backend: Backend,
    mask: CropMask,
    cache: HashMap<u64, CachedFace>,
    frame_count: u64,
    times: StepTimes,
}

impl FaceEnhancer {
    pub fn new(enhancer: Enhancer, backend: Backend) -> Self {
        let mask = CropMask::ramp(enhancer.kind().size);
        let times = StepTimes::new(&["region", "decode", "paste"]);
        FaceEnhancer { enhancer, backend, mask, cache: HashMap::new(), frame_count: 0, times }
    }

    pub fn enhancer(&self) -> &Enhancer {
        &self.enhancer
    }

    pub fn model(&self) -> &ModelSession {
        self.enhancer.model()
    }

    /// Whether the next face on this thread may capture the restorer's CUDA graph (see
    /// [`Enhancer::may_capture_here`]).
    pub fn may_capture_here(&self) -> bool {
        self.enhancer.may_capture_here()
    }

    /// Where the pixel steps run (the `active-pixel-backend` property).
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Runs the model `runs` times on the GPU (see [`Enhancer::warm_up`]) on the calling thread,
    /// which must be the thread that will run it: ONNX Runtime's CUDA provider captures a CUDA
    /// graph per thread. Nothing to do when the pixel steps run on the CPU.
    pub fn warm_up(&mut self, runs: usize, fidelity: f64) -> Result<(), String> {
        if !self.backend.on_gpu() {
            return Ok(());
        }
        self.enhancer.warm_up(&self.backend, runs, fidelity)
    }

    /// The mean time of each step since the last report (for the debug log).
    pub fn take_report(&mut self) -> String {
        let batches = self.enhancer.batch_report();
        crate::timing::lane_report(self.enhancer.times(), &mut self.times, batches)
    }

    /// Starts a frame whose faces are `faces`: forgets the results of tracks that ended.
    pub fn begin_frame(&mut self, faces: &[Face]) {
        self.frame_count += 1;
        self.cache.retain(|id, _| *id == 0 || faces.iter().any(|f| f.track_id == *id));
    }

    /// Forgets every cached result (the frame size changed, say).
    pub fn reset(&mut self) {
        self.cache.clear();
    }

    /// Restores (or re-pastes) `face` in `frame`, in place.
    pub fn enhance_face(
        &mut self,
        frame: &mut FrameViewMut,
        face: &Face,
        params: &EnhanceParams,
    ) -> Result<(), String> {
        let m = self.enhancer.alignment(&face.landmarks).ok_or("degenerate face landmarks")?;
        let size = self.enhancer.kind().size;
        let rect = self.mask.frame_region(&m, frame.width, frame.height);
        if rect.is_empty() {
            return Ok(());
        }
        // Untracked faces (id 0) cannot be matched across frames, so they are restored every
        // frame; slot 0 of the cache is their buffer.
        let key = if params.inference_interval > 1 { face.track_id } else { 0 };
        let fresh =
            key != 0 && self.cache.get(&key).is_some_and(|c| self.frame_count - c.frame < params.inference_interval);
        let view = frame.as_view();
        let start = Instant::now();
        let region = self.backend.load_region(&view, rect)?;
        let mut start = self.times.lap(0, start);
        if !fresh {
            let output = self.enhancer.restore(&mut self.backend, &view, &region, &m, params.fidelity)?;
            let entry = self.cache.entry(key).or_insert_with(|| CachedFace { crop: Crop::default(), frame: 0 });
            let decode = Instant::now();
            self.backend.decode_output(output, enhancer::DECODE, size, &mut entry.crop)?;
            entry.frame = self.frame_count;
            start = self.times.lap(1, decode);
        }
        let cached = self.cache.get_mut(&key).ok_or("restored face missing from the cache")?;
        self.backend.paste(frame, &region, &mut cached.crop, &self.mask, &m, params.blend)?;
        self.times.lap(2, start);
        Ok(())
    }
}
