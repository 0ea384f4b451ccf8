// SPDX-License-Identifier: MPL-2.0
//! Swapping one face: align, run inswapper, the optional colour transfer and sharpening of the
//! swapped crop, paste-back through the chosen mask, and the optional restoring of the original
//! mouth.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::backend::{Backend, Crop};
use crate::face::Face;
use crate::models::landmark::Landmark106;
use crate::models::swapper::inswapper::{self, CROP, Inswapper};
use crate::runtime::ModelSession;
use crate::timing::StepTimes;
use crate::vision::filter::{BlurScratch, unsharp_mask};
use crate::vision::paste::{CropMask, InsightfaceMask, MouthScratch, crop_region, mouth_mask};
use crate::vision::warp::warp_affine_rgb;
use crate::vision::{Affine, FrameView, FrameViewMut, Rect, RgbImage, color};

/// Outer-lip points of the 106-point layout (2d106det).
const OUTER_LIP: std::ops::Range<usize> = 52..64;

/// How the swapped face is blended into the frame.
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default)]
pub enum BlendMask {
    /// InsightFace's eroded and blurred crop mask (the reference).
    #[default]
    Insightface,
    /// Deep-Live-Cam's soft ellipse.
    Ellipse,
}

/// The blending knobs of one frame.
#[derive(Debug, Clone, Copy)]
pub struct SwapParams {
    pub mask: BlendMask,
    /// 1 = full swap, 0 = the original frame.
    pub opacity: f32,
    /// 0 = off; 1..100 grows the kept mouth area.
    pub mouth_mask: u32,
    pub color_correction: bool,
    /// Unsharp-mask amount for the swapped crop (0 = off).
    pub sharpness: f32,
}

/// The InsightFace mask of one track, kept while the face's scale and rotation are steady.
struct CachedMask {
    key: [i32; 10],
    mask: CropMask,
}

/// Reusable buffers of the CPU-only refinements.
#[derive(Default)]
struct Scratch {
    original_crop: RgbImage,
    /// Colour-transfer weights over the whole crop.
    whole_crop: Vec<f32>,
    sharpen_plane: Vec<f32>,
    blur: BlurScratch,
    original_region: RgbImage,
    swapped_region: RgbImage,
    mouth: MouthScratch,
}

pub struct FaceSwapper {
    swapper: Inswapper,
    landmarker: Option<Landmark106>,
    backend: Backend,
    crop: Crop,
    masks: HashMap<u64, CachedMask>,
    ellipse: CropMask,
    scratch: Scratch,
    times: StepTimes,
}

impl FaceSwapper {
    pub fn new(swapper: Inswapper, landmarker: Option<Landmark106>, backend: Backend) -> Self {
        let mut blur = BlurScratch::default();
        FaceSwapper {
            ellipse: CropMask::ellipse(CROP, &mut blur),
            swapper,
            landmarker,
            backend,
            crop: Crop::default(),
            masks: HashMap::new(),
            scratch: Scratch { blur, ..Scratch::default() },
            times: StepTimes::new(&["mask", "region", "decode", "refine", "paste", "mouth"]),
        }
    }

    /// The swapper's session (whose provider the element reports).
    pub fn swapper(&self) -> &Inswapper {
        &self.swapper
    }

    /// Every frame-path session, for the provider fallback warnings.
    /// Whether the next face on this thread may capture a model's CUDA graph (the caller then
    /// takes the GPU work lock exclusively).
    pub fn may_capture_here(&self) -> bool {
        self.swapper.may_capture_here() || self.landmarker.iter().any(|l| l.model().may_capture_here())
    }

    pub fn models(&self) -> impl Iterator<Item = &ModelSession> {
        std::iter::once(self.swapper.model()).chain(self.landmarker.iter().map(|l| l.model()))
    }

    /// What runs the pixel steps (see [`Backend::name`]).
    pub fn backend_name(&self) -> &'static str {
        self.backend.name()
    }

    /// Runs the model `runs` times on the GPU (see [`Inswapper::warm_up`]) on the calling thread,
    /// which must be the thread that will run it: ONNX Runtime's CUDA provider captures a CUDA
    /// graph per thread. Nothing to do when the pixel steps run on the CPU.
    pub fn warm_up(&mut self, runs: usize) -> Result<(), String> {
        if !self.backend.on_gpu() {
            return Ok(());
        }
        self.swapper.warm_up(&self.backend, runs)
    }

    pub fn has_landmarker(&self) -> bool {
        self.landmarker.is_some()
    }

    /// Computes the 106-point landmarks of the faces that arrive without them (for `mouth-mask`).
    pub fn add_landmarks(&mut self, frame: &FrameView, faces: &mut [Face]) {
        let Some(landmarker) = self.landmarker.as_mut() else { return };
        for face in faces.iter_mut().filter(|f| f.landmarks_106.is_none()) {
            face.landmarks_106 = landmarker.landmarks(&mut self.backend, frame, &face.bbox).ok().map(Arc::from);
        }
    }

    /// The mean time of each step since the last report (for the debug log).
    pub fn take_report(&mut self) -> String {
        let batches = self.swapper.batch_report();
        crate::timing::lane_report(self.swapper.times(), &mut self.times, batches)
    }

    /// Forgets the masks of tracks that are gone, so the cache stays as small as the scene.
    pub fn begin_frame(&mut self, faces: &[Face]) {
        self.masks.retain(|id, _| faces.iter().any(|f| f.track_id == *id));
    }

    /// The InsightFace mask for a face of track `track` aligned by `m`, rebuilt only when the face's
    /// scale or rotation changed noticeably (untracked faces, id 0, share one slot). The mask is
    /// snapped to its key, so what comes out is a function of this face alone, never of the
    /// frames this swapper saw before: a lane swaps a frame to the same bytes as one lane does.
    fn insightface_mask(
        &mut self,
        track: u64,
        m: &Affine,
        (width, height): (usize, usize),
    ) -> Result<&CropMask, String> {
        let shape = InsightfaceMask::of(m, CROP, width, height).ok_or("degenerate face landmarks")?.snapped();
        let key = shape.key();
        let cached = self.masks.entry(track).or_insert_with(|| CachedMask { key, mask: shape.grid() });
        if cached.key != key {
            *cached = CachedMask { key, mask: shape.grid() };
        }
        Ok(&cached.mask)
    }

    /// Swaps `face` in `frame` to the identity `latent`, in place.
    pub fn swap_face(
        &mut self,
        frame: &mut FrameViewMut,
        face: &Face,
        latent: &[f32],
        params: &SwapParams,
    ) -> Result<(), String> {
        let start = Instant::now();
        let m = Inswapper::alignment(&face.landmarks).ok_or("degenerate face landmarks")?;
        let (width, height) = (frame.width, frame.height);
        if params.mask == BlendMask::Insightface {
            self.insightface_mask(face.track_id, &m, (width, height))?;
        }
        let start = self.times.lap(0, start);
        let mask = match params.mask {
            BlendMask::Insightface => self.masks.get(&face.track_id).map(|c| &c.mask).ok_or("mask missing")?,
            BlendMask::Ellipse => &self.ellipse,
        };
        let rect = mask.frame_region(&m, width, height).union(crop_region(&m, CROP, width, height));
        if rect.is_empty() {
            return Ok(());
        }
        let view = frame.as_view();
        let region = self.backend.load_region(&view, rect)?;
        self.times.lap(1, start);
        let output = self.swapper.swap(&mut self.backend, &view, &region, &m, latent)?;
        let start = Instant::now();
        self.backend.decode_output(output, inswapper::DECODE, CROP, &mut self.crop)?;
        let start = self.times.lap(2, start);
        let scratch = &mut self.scratch;
        if params.color_correction || params.sharpness > 0.0 {
            let fake = self.backend.crop_pixels(&mut self.crop)?;
            if params.color_correction {
                warp_affine_rgb(&view, &m, &mut scratch.original_crop, CROP, CROP);
                scratch.whole_crop.resize(CROP * CROP, 1.0);
                color::transfer_color(fake, &scratch.whole_crop, &scratch.original_crop);
            }
            if params.sharpness > 0.0 {
                unsharp_mask(fake, params.sharpness, &mut scratch.sharpen_plane, &mut scratch.blur);
            }
        }
        let start = self.times.lap(3, start);
        let lip = face
            .landmarks_106
            .as_ref()
            .filter(|points| params.mouth_mask > 0 && points.len() >= OUTER_LIP.end)
            .map(|points| points[OUTER_LIP].iter().map(|p| (p[0], p[1])).collect::<Vec<_>>());
        if lip.is_some() {
            view.read_region(rect, &mut scratch.original_region);
        }
        self.backend.paste(frame, &region, &mut self.crop, mask, &m, params.opacity)?;
        let start = self.times.lap(4, start);
        if let Some(lip) = lip {
            restore_mouth(frame, rect, &lip, params.mouth_mask, scratch);
            self.times.lap(5, start);
        }
        Ok(())
    }
}

/// Puts the original mouth back over the swapped one: `out = w·original + (1 − w)·swapped` with
/// the feathered lip-polygon weights of [`mouth_mask`].
fn restore_mouth(frame: &mut FrameViewMut, rect: Rect, lip: &[(f32, f32)], size: u32, scratch: &mut Scratch) {
    frame.as_view().read_region(rect, &mut scratch.swapped_region);
    let weights = mouth_mask(lip, size as f32, rect, &mut scratch.mouth);
    let (original, swapped) = (&scratch.original_region.data, &mut scratch.swapped_region.data);
    for (i, &w) in weights.iter().enumerate().filter(|(_, w)| **w > 0.0) {
        for c in i * 3..i * 3 + 3 {
            let (o, s) = (original[c] as f32, swapped[c] as f32);
            swapped[c] = (w * o + (1.0 - w) * s).round().clamp(0.0, 255.0) as u8;
        }
    }
    frame.write_region(rect, &scratch.swapped_region, Some(weights));
}
