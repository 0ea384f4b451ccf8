// SPDX-License-Identifier: MPL-2.0
//! Swapping one face: align, run inswapper, the optional colour transfer and sharpening of the
//! swapped crop, paste-back through the chosen mask, and the optional restoring of the original
//! mouth.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use crate::backend::{Backend, Crop, FaceRegion};
use crate::face::Face;
use crate::models::landmark::Landmark106;
use crate::models::swapper::inswapper::{self, CROP, FaceToSwap, Inswapper};
use crate::runtime::{MAX_BATCH, ModelSession};
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
        let Some(placed) = self.place(frame, face, params)? else { return Ok(()) };
        let start = Instant::now();
        let view = frame.as_view();
        let region = self.backend.load_region(&view, placed.rect)?;
        self.times.lap(1, start);
        let output = self.swapper.swap(&mut self.backend, &view, &region, &placed.alignment, latent)?;
        let start = Instant::now();
        self.backend.decode_output(output, inswapper::DECODE, CROP, &mut self.crop)?;
        self.times.lap(2, start);
        self.refine_and_paste(frame, face, &placed, &region, params)
    }

    /// Swaps each face of `faces` to its identity (`faces[i] = (face, latent)`), in place, in
    /// order, and returns each one's outcome. It gives the frame [`FaceSwapper::swap_face`] gives
    /// face by face. Where the swapper runs faces together ([`Inswapper::swaps_together`]), the
    /// faces whose frame rectangles (pixels read and written) are apart from each other's run in
    /// one batch: each face reads pixels no other face of its batch writes, so the order in which
    /// they are read and pasted changes nothing. A face that overlaps one of its batch starts the
    /// next batch, after the first is pasted.
    pub fn swap_faces(
        &mut self,
        frame: &mut FrameViewMut,
        faces: &[(&Face, &[f32])],
        params: &SwapParams,
    ) -> Vec<Result<(), String>> {
        if !self.swapper.swaps_together() || faces.len() < 2 {
            return faces.iter().map(|(face, latent)| self.swap_face(frame, face, latent, params)).collect();
        }
        let mut outcomes: Vec<Result<(), String>> = Vec::with_capacity(faces.len());
        // The faces of the batch being gathered: (index in `faces`, where it goes).
        let mut batch: Vec<(usize, Placed)> = Vec::new();
        for (index, (face, _)) in faces.iter().enumerate() {
            let placed = match self.place(frame, face, params) {
                Ok(Some(placed)) => placed,
                other => {
                    outcomes.push(other.map(drop));
                    continue;
                }
            };
            let apart = batch.iter().all(|(_, other)| !other.reach.overlaps(&placed.reach));
            if !apart || batch.len() == MAX_BATCH {
                self.swap_batch(frame, faces, std::mem::take(&mut batch), params, &mut outcomes);
            }
            outcomes.push(Ok(()));
            batch.push((index, placed));
        }
        self.swap_batch(frame, faces, batch, params, &mut outcomes);
        outcomes
    }

    /// Runs the faces of `batch` (apart from each other, see [`FaceSwapper::swap_faces`])
    /// together and pastes them in order; a face's failure goes into `outcomes[index]`.
    fn swap_batch(
        &mut self,
        frame: &mut FrameViewMut,
        faces: &[(&Face, &[f32])],
        batch: Vec<(usize, Placed)>,
        params: &SwapParams,
        outcomes: &mut [Result<(), String>],
    ) {
        let start = Instant::now();
        let view = frame.as_view();
        let mut loaded = Vec::with_capacity(batch.len());
        for (index, placed) in batch {
            match self.backend.load_region(&view, placed.rect) {
                Ok(region) => loaded.push((index, placed, region)),
                Err(reason) => outcomes[index] = Err(reason),
            }
        }
        self.times.lap(1, start);
        let together: Vec<FaceToSwap> = loaded
            .iter()
            .map(|(index, placed, region)| FaceToSwap { region, alignment: &placed.alignment, latent: faces[*index].1 })
            .collect();
        if let Err(reason) = self.swapper.swap_together(&mut self.backend, &view, &together) {
            for (index, ..) in &loaded {
                outcomes[*index] = Err(reason.clone());
            }
            return;
        }
        for (slot, (index, placed, region)) in loaded.iter().enumerate() {
            let start = Instant::now();
            let decoded = match self.swapper.output_together(slot) {
                Some(output) => self.backend.decode_output(output, inswapper::DECODE, CROP, &mut self.crop),
                None => Err(format!("the batched run has no output {slot}")),
            };
            self.times.lap(2, start);
            outcomes[*index] =
                decoded.and_then(|()| self.refine_and_paste(frame, faces[*index].0, placed, region, params));
        }
    }

    /// Where `face` goes: its alignment, its mask (built or taken from the track's cache) and the
    /// frame rectangle its swap reads and writes; `None` when that lies outside the frame.
    fn place(&mut self, frame: &FrameViewMut, face: &Face, params: &SwapParams) -> Result<Option<Placed>, String> {
        let start = Instant::now();
        let m = Inswapper::alignment(&face.landmarks).ok_or("degenerate face landmarks")?;
        let (width, height) = (frame.width, frame.height);
        if params.mask == BlendMask::Insightface {
            self.insightface_mask(face.track_id, &m, (width, height))?;
        }
        self.times.lap(0, start);
        let mask = paste_mask(&self.masks, &self.ellipse, face, params)?;
        let rect = mask.frame_region(&m, width, height).union(crop_region(&m, CROP, width, height));
        // Sampling reads a pixel beyond the rectangle's edge at most.
        Ok((!rect.is_empty()).then(|| Placed { alignment: m, rect, reach: rect.grown(2) }))
    }

    /// The swapped crop (decoded into `self.crop`) refined as `params` ask, pasted into `frame`
    /// through the face's mask, and the original mouth restored.
    fn refine_and_paste(
        &mut self,
        frame: &mut FrameViewMut,
        face: &Face,
        placed: &Placed,
        region: &FaceRegion,
        params: &SwapParams,
    ) -> Result<(), String> {
        let start = Instant::now();
        let (m, rect) = (&placed.alignment, placed.rect);
        let view = frame.as_view();
        let scratch = &mut self.scratch;
        if params.color_correction || params.sharpness > 0.0 {
            let fake = self.backend.crop_pixels(&mut self.crop)?;
            if params.color_correction {
                warp_affine_rgb(&view, m, &mut scratch.original_crop, CROP, CROP);
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
        let mask = paste_mask(&self.masks, &self.ellipse, face, params)?;
        self.backend.paste(frame, region, &mut self.crop, mask, m, params.opacity)?;
        let start = self.times.lap(4, start);
        if let Some(lip) = lip {
            restore_mouth(frame, rect, &lip, params.mouth_mask, scratch);
            self.times.lap(5, start);
        }
        Ok(())
    }
}

/// The paste-back mask of `face`: its track's InsightFace mask (which [`FaceSwapper::place`]
/// builds) or the ellipse. (A function of the fields it reads, so that the backend and the crop
/// can be borrowed beside it.)
fn paste_mask<'a>(
    masks: &'a HashMap<u64, CachedMask>,
    ellipse: &'a CropMask,
    face: &Face,
    params: &SwapParams,
) -> Result<&'a CropMask, String> {
    match params.mask {
        BlendMask::Insightface => {
            masks.get(&face.track_id).map(|c| &c.mask).ok_or_else(|| "the face's mask is missing".to_string())
        }
        BlendMask::Ellipse => Ok(ellipse),
    }
}

/// Where a face's swap goes in the frame (see [`FaceSwapper::place`]).
struct Placed {
    alignment: Affine,
    /// The frame rectangle loaded for the warp and the paste-back, which the paste writes into.
    rect: Rect,
    /// `rect` and the pixels beyond it that sampling may read.
    reach: Rect,
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
