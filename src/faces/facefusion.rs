// SPDX-License-Identifier: MPL-2.0
//! Swapping one face as FaceFusion 3.8.1 does, for any swapper family: the crop taken straight at
//! the pixel-boost size with the family's template (edge pixels replicated), the masks FaceFusion
//! makes from the crop before the swap, the crop split into interleaved model-size tiles that are
//! swapped together, the tiles put back into one float crop, the masks made from the swapped
//! crop, all masks combined by their per-pixel minimum, and the float crop pasted back through
//! the combined mask with a float blend truncated to 8 bits.
//!
//! The pixel steps below run on the CPU; with the graph backend (the element's `pixel-backend`)
//! the same steps run as ONNX Runtime graphs next to the models ([`graph`]), with the same
//! numerics.

mod graph;

use std::time::Instant;

use std::collections::HashMap;
use std::sync::Arc;

use crate::backend::Backend;
use crate::face::Face;
use crate::models::landmark::Landmark106;
use crate::models::landmark68::Landmark68;
use crate::models::occluder::Occluder;
use crate::models::parser::Parser;
use crate::models::swapper::{FamilySpec, SourceKind, Swapper};
use crate::runtime::ModelSession;
use crate::timing::StepTimes;
use crate::vision::align::umeyama;
use crate::vision::boost::{explode, implode};
use crate::vision::box_mask::{BoxMaskSettings, box_mask};
use crate::vision::filter::BlurScratch;
use crate::vision::float_paste::{FloatCrop, paste_float, paste_rect};
use crate::vision::masks::{AreaMaskCache, Areas, Regions, landmarks_68_from_106};
use crate::vision::paste::PackedPixels;
use crate::vision::warp::warp_affine_rgb_replicate;
use crate::vision::{Affine, FrameView, FrameViewMut, RgbImage};

/// The mask kinds FaceFusion combines (`mask-types`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MaskKinds {
    pub box_mask: bool,
    pub occlusion: bool,
    pub region: bool,
    pub area: bool,
}

impl MaskKinds {
    pub fn is_empty(&self) -> bool {
        !(self.box_mask || self.occlusion || self.region || self.area)
    }

    /// The masks a face gets: these, or FaceFusion's default (the box mask) when none is set.
    fn or_box(self) -> MaskKinds {
        if self.is_empty() { MaskKinds { box_mask: true, ..self } } else { self }
    }
}

/// Where one face's crop lies: the frame → crop matrix at the boost size `side`, and the tiles
/// it splits into (`factor`² tiles of the model's `size`).
struct BoostGeometry {
    m: Affine,
    side: usize,
    size: usize,
    factor: usize,
}

/// The FaceFusion knobs of one frame.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FaceFusionParams {
    /// Side of the crop in pixels; 0 = automatic (see [`auto_boost`]).
    pub pixel_boost: u32,
    /// Which masks to combine; none set means FaceFusion's default, the box mask.
    pub masks: MaskKinds,
    pub box_mask: BoxMaskSettings,
}

/// The models and names of the occlusion, region and area masks.
#[derive(Default)]
pub struct MaskModels {
    /// XSeg, for the occlusion mask.
    pub occluder: Option<Occluder>,
    /// BiSeNet, for the region mask.
    pub parser: Option<Parser>,
    pub regions: Regions,
    /// fan_68_5, for the area mask's 68 landmarks (FaceFusion's source of them).
    pub landmark68: Option<Landmark68>,
    /// The 106-point model for faces that arrive without 106-point landmarks, whose conversion
    /// to 68 points stands in for fan_68_5 when it is not given.
    pub landmark106: Option<Landmark106>,
    pub areas: Areas,
}

/// The pixel-boost size `auto` picks: the smallest size the family allows that is at least the
/// face's size in the frame, else the largest it allows. The face's size is the side, in frame
/// pixels, of the square the family's template spans at the model's size (the crop square mapped
/// back into the frame: `S / scale` of the frame → crop alignment at size `S`), so a face shown
/// at 300 px gets a crop of at least 300 px and is never magnified on the way into the model.
pub fn auto_boost(family: &FamilySpec, face_side: f64) -> usize {
    let sizes = family.boost_sizes;
    sizes.iter().copied().find(|&s| s as f64 >= face_side).or_else(|| sizes.last().copied()).unwrap_or(family.size)
}

/// The side, in frame pixels, of the crop square of the alignment `unit` (frame → unit-square
/// crop): `1 / scale` of the similarity.
pub fn face_side(unit: &Affine) -> f64 {
    let [a, b, _, d, e, _] = unit.m;
    1.0 / (a * e - b * d).abs().sqrt()
}

/// The pixel-boost size for `requested` (0 = auto) on `family`, or why it cannot be used.
pub fn boost_size(family: &FamilySpec, requested: u32, unit: &Affine) -> Result<usize, String> {
    if requested == 0 {
        return Ok(auto_boost(family, face_side(unit)));
    }
    let size = requested as usize;
    if family.boost_sizes.contains(&size) { Ok(size) } else { Err(unsupported_boost(family, requested)) }
}

/// The error for a `pixel-boost` the family does not allow.
pub fn unsupported_boost(family: &FamilySpec, requested: u32) -> String {
    let allowed: Vec<String> = family.boost_sizes.iter().map(|s| s.to_string()).collect();
    format!(
        "property 'pixel-boost': {requested} is not a size the {} swapper allows; use 0 (auto) or one of {}",
        family.name,
        allowed.join(", ")
    )
}

/// A box mask built for one crop size and setting.
struct CachedBoxMask {
    side: usize,
    settings: BoxMaskSettings,
    weights: Vec<f32>,
}

/// The source tensor of one identity (the raw embedding it came from is the key).
struct CachedSource {
    embedding: Vec<f32>,
    tensor: Vec<f32>,
}

/// Identities whose source tensors are kept; more are recomputed (a converter run each).
const SOURCE_CACHE: usize = 8;

/// Reusable buffers: no allocation per frame once the largest boost size was seen.
#[derive(Default)]
struct Scratch {
    crop: RgbImage,
    tiles: Vec<u8>,
    swapped: Vec<f32>,
    mask: Vec<f32>,
    blur: BlurScratch,
    /// RGB copy of a YUV frame's paste rectangle, and the weights written there.
    region: RgbImage,
    weights: Vec<f32>,
}

pub struct FaceFusionSwapper {
    swapper: Swapper,
    params: FaceFusionParams,
    masks: MaskModels,
    /// Each track's area mask, kept while its hull repeats (untracked faces, id 0, share one).
    area_masks: HashMap<u64, AreaMaskCache>,
    /// Runs the 106-point model's crop (host memory, like the rest of this path).
    landmark_backend: Backend,
    /// Where the pixel steps run: the CPU code below, or the graphs of [`graph`].
    pixels: Backend,
    device: graph::DeviceState,
    box_masks: Vec<CachedBoxMask>,
    sources: Vec<CachedSource>,
    scratch: Scratch,
    times: StepTimes,
}

impl FaceFusionSwapper {
    /// The path for `swapper` with the element's settings `params` and the mask models; fails
    /// when the family does not allow `params`' pixel boost or a chosen mask has no model.
    pub fn new(swapper: Swapper, params: FaceFusionParams, masks: MaskModels) -> Result<Self, String> {
        let family = swapper.family();
        // blendswap and uniface take a crop of the source picture rather than an embedding: the
        // identities this path gets are embeddings, so those families would fail on every face.
        if let SourceKind::Image { .. } = family.source {
            return Err(format!(
                "'model-file': {} takes the source face's picture as its identity, which dlcswap does not \
                 support yet; use an inswapper, hyperswap, simswap, ghost or hififace model",
                family.name
            ));
        }
        if params.pixel_boost != 0 && !family.allows_boost(params.pixel_boost as usize) {
            return Err(unsupported_boost(family, params.pixel_boost));
        }
        if params.masks.occlusion && masks.occluder.is_none() {
            return Err("mask-types=occlusion needs an XSeg model: set 'occluder-model'".to_string());
        }
        if params.masks.region && masks.parser.is_none() {
            return Err("mask-types=region needs a BiSeNet face parser: set 'parser-model'".to_string());
        }
        Ok(FaceFusionSwapper {
            swapper,
            params,
            masks,
            area_masks: HashMap::new(),
            landmark_backend: Backend::cpu(),
            pixels: Backend::cpu(),
            device: graph::DeviceState::default(),
            box_masks: Vec::new(),
            sources: Vec::new(),
            scratch: Scratch::default(),
            times: StepTimes::new(&["crop", "masks before", "source", "swap tiles", "masks after", "paste"]),
        })
    }

    /// The path with its pixel steps on `pixels` (the element's backend): on the graph backend
    /// they run where the models run, else on the CPU.
    pub fn with_backend(mut self, pixels: Backend) -> Self {
        self.pixels = pixels;
        self
    }

    /// What runs the pixel steps (see [`Backend::name`]).
    pub fn backend_name(&self) -> &'static str {
        self.pixels.name()
    }

    pub fn family(&self) -> &'static FamilySpec {
        self.swapper.family()
    }

    pub fn model(&self) -> &ModelSession {
        self.swapper.model()
    }

    /// Whether the swapper runs a face's tiles as one batch, or why not (see
    /// [`Swapper::batch_tiles`]; `None`: not tried, as on the CPU).
    pub fn tile_batching(&self) -> Option<&Result<String, String>> {
        self.swapper.batching()
    }

    /// Runs the swapper `runs` times on blank tiles when it runs on an NVIDIA GPU, so that cuDNN's
    /// algorithm search and ONNX Runtime's memory planning happen at start rather than on the
    /// first face (on the thread that will run it). As many tiles as a fixed pixel boost makes, or
    /// one with `auto`.
    pub fn warm_up(&mut self, runs: usize) -> Result<(), String> {
        if !self.swapper.model().on_nvidia_gpu() {
            return Ok(());
        }
        let size = self.family().size;
        let side = (self.params.pixel_boost as usize).max(size);
        let count = (side / size).pow(2);
        let source = vec![0.0f32; self.family().source_len()];
        // Once per shared session: another element's start may have warmed it up already.
        let warm_up = self.swapper.model().shared_warm_up();
        if self.pixels.is_graph() {
            // The tensors the graph path runs on (their values until the first face do not matter).
            self.swapper.device_inputs(&self.pixels, count)?;
            return warm_up.once(|| {
                (0..runs).try_for_each(|_| self.swapper.run_device_tiles(&mut self.pixels, &source).map(drop))
            });
        }
        let tiles = vec![0u8; count * size * size * 3];
        warm_up.once(|| (0..runs).try_for_each(|_| self.swapper.run_tiles(&tiles, count, &source).map(drop)))
    }

    /// Forgets the area masks of tracks that are gone, so the cache stays as small as the scene.
    pub fn begin_frame(&mut self, faces: &[Face]) {
        self.area_masks.retain(|id, _| faces.iter().any(|f| f.track_id == *id));
        self.device.begin_frame(faces);
    }

    /// The mask models, for the element to reopen (as CUDA graphs) once it knows the backend.
    pub fn mask_models_mut(&mut self) -> &mut MaskModels {
        &mut self.masks
    }

    /// Every session of the path, for the provider fallback warnings.
    pub fn models(&self) -> impl Iterator<Item = &ModelSession> {
        let masks = &self.masks;
        std::iter::once(self.swapper.model())
            .chain(self.swapper.converter())
            .chain(masks.occluder.as_ref().map(Occluder::model))
            .chain(masks.parser.as_ref().map(Parser::model))
            .chain(masks.landmark68.as_ref().map(Landmark68::model))
            .chain(masks.landmark106.as_ref().map(Landmark106::model))
    }

    /// Whether faces need 106-point landmarks: the area mask without fan_68_5.
    pub fn needs_landmarks_106(&self) -> bool {
        self.params.masks.area && self.masks.landmark68.is_none()
    }

    /// Whether the path can add 106-point landmarks itself (`landmark-model`).
    pub fn has_landmarker(&self) -> bool {
        self.masks.landmark106.is_some()
    }

    /// Computes the 106-point landmarks of the faces that arrive without them, where the area
    /// mask takes its 68 points from them.
    pub fn add_landmarks(&mut self, frame: &FrameView, faces: &mut [Face]) {
        if !self.needs_landmarks_106() {
            return;
        }
        let Some(landmarker) = self.masks.landmark106.as_mut() else { return };
        for face in faces.iter_mut().filter(|f| f.landmarks_106.is_none()) {
            face.landmarks_106 =
                landmarker.landmarks(&mut self.landmark_backend, frame, &face.bbox).ok().map(Arc::from);
        }
    }

    /// The 68 landmarks of `face` in frame coordinates: fan_68_5's, else converted from its
    /// 106-point landmarks.
    fn landmarks_68(&mut self, face: &Face) -> Result<[[f32; 2]; 68], String> {
        if let Some(model) = self.masks.landmark68.as_mut() {
            return model.landmarks(&face.landmarks);
        }
        face.landmarks_106.as_deref().and_then(landmarks_68_from_106).ok_or_else(|| {
            "mask-types=area needs 68-point landmarks: set 'landmark-68-model' (fan_68_5.onnx), or give the faces \
             106-point landmarks (landmark-model on dlcdetect or dlcswap)"
                .to_string()
        })
    }

    /// The mean time of each step since the last report (for the debug log).
    pub fn take_report(&mut self) -> String {
        self.times.take_report()
    }

    /// The crop of `face`: aligned to the family's template at the boost size the settings and
    /// the face's size give.
    fn geometry(&self, face: &Face) -> Result<BoostGeometry, String> {
        let family = self.family();
        let kps = face.landmarks.map(|[x, y]| [x as f64, y as f64]);
        let unit = umeyama(&kps, &family.template.points).ok_or("degenerate face landmarks")?;
        let side = boost_size(family, self.params.pixel_boost, &unit)?;
        let m = Affine { m: unit.m.map(|v| v * side as f64) };
        Ok(BoostGeometry { m, side, size: family.size, factor: side / family.size })
    }

    /// The box mask for a `side`-pixel crop, built once per size and setting.
    fn box_mask(&mut self, side: usize, settings: BoxMaskSettings) -> &[f32] {
        let found = self.box_masks.iter().position(|c| c.side == side && c.settings == settings);
        let index = found.unwrap_or_else(|| {
            // Settings change rarely (mask-blur while playing): keep the few most recent.
            if self.box_masks.len() >= 4 {
                self.box_masks.remove(0);
            }
            let weights = box_mask(side, settings, &mut self.scratch.blur);
            self.box_masks.push(CachedBoxMask { side, settings, weights });
            self.box_masks.len() - 1
        });
        &self.box_masks[index].weights
    }

    /// The family's source tensor for the identity `embedding` (raw ArcFace output), computed
    /// once per identity.
    fn source_index(&mut self, embedding: &[f32]) -> Result<usize, String> {
        if let Some(i) = self.sources.iter().position(|c| c.embedding == embedding) {
            return Ok(i);
        }
        let tensor = self.swapper.source_tensor(embedding)?;
        if self.sources.len() >= SOURCE_CACHE {
            self.sources.remove(0);
        }
        self.sources.push(CachedSource { embedding: embedding.to_vec(), tensor });
        Ok(self.sources.len() - 1)
    }

    /// Swaps `face` in `frame` to the identity whose raw ArcFace embedding is `embedding`, in
    /// place, at `opacity` (the combined mask is scaled by it; 1 is FaceFusion's swap).
    pub fn swap_face(
        &mut self,
        frame: &mut FrameViewMut,
        face: &Face,
        embedding: &[f32],
        opacity: f32,
    ) -> Result<(), String> {
        if self.pixels.is_graph() {
            return self.swap_face_on_graphs(frame, face, embedding, opacity);
        }
        let start = Instant::now();
        let params = self.params;
        let BoostGeometry { m, side, size, factor } = self.geometry(face)?;
        warp_affine_rgb_replicate(&frame.as_view(), &m, &mut self.scratch.crop, side, side);
        let start = self.times.lap(0, start);

        // Masks from the crop before the swap.
        let kinds = params.masks.or_box();
        let mut mask = std::mem::take(&mut self.scratch.mask);
        mask.clear();
        mask.resize(side * side, 1.0);
        // (A face that fails here leaves the buffer to be allocated again: failures are rare.)
        self.pre_swap_masks(kinds, side, &mut mask)?;
        // The area's landmarks before the swap: a face without them fails before its model runs.
        let landmarks_68 = if kinds.area { Some(self.landmarks_68(face)?) } else { None };
        let start = self.times.lap(1, start);

        let source = self.source_index(embedding)?;
        let start = self.times.lap(2, start);
        let FaceFusionSwapper { swapper, sources, scratch, .. } = self;
        let count = implode(&scratch.crop, size, factor, &mut scratch.tiles);
        let swapped = swapper.run_tiles(&scratch.tiles, count, &sources[source].tensor)?;
        if !explode(swapped, size, factor, &mut scratch.swapped) {
            return Err(format!("the swapper returned {} values for {count} tiles of {size} px", swapped.len()));
        }
        let start = self.times.lap(3, start);

        // Masks from the swapped crop.
        if let Some(points) = landmarks_68 {
            let in_crop = points.map(|[x, y]| {
                let (u, v) = m.apply(x as f64, y as f64);
                [u as f32, v as f32]
            });
            let cache = self.area_masks.entry(face.track_id).or_default();
            combine(&mut mask, cache.mask(side, &in_crop, &self.masks.areas));
        }
        if kinds.region {
            let parser = self.masks.parser.as_mut().ok_or("mask-types=region needs 'parser-model'")?;
            combine(&mut mask, &parser.mask(&self.scratch.swapped, side, &self.masks.regions)?);
        }
        let start = self.times.lap(4, start);

        let opacity = opacity.clamp(0.0, 1.0);
        for w in mask.iter_mut() {
            *w = w.clamp(0.0, 1.0) * opacity;
        }
        let Scratch { swapped, region, weights, .. } = &mut self.scratch;
        let crop = FloatCrop { side, rgb: swapped, mask: &mask };
        let rect = paste_rect(&m, side, frame.width, frame.height);
        if let Some(mut pixels) = frame.packed_pixels() {
            paste_float(&mut pixels, rect, crop, &m, None);
        } else if !rect.is_empty() {
            frame.as_view().read_region(rect, region);
            let mut pixels = PackedPixels::region(region, rect);
            paste_float(&mut pixels, rect, crop, &m, Some(weights));
            frame.write_region(rect, region, Some(weights));
        }
        self.scratch.mask = mask;
        self.times.lap(5, start);
        Ok(())
    }

    /// Combines into `mask` the masks FaceFusion makes from the crop before the swap: box and
    /// occlusion.
    fn pre_swap_masks(&mut self, kinds: MaskKinds, side: usize, mask: &mut [f32]) -> Result<(), String> {
        if kinds.box_mask {
            combine(mask, self.box_mask(side, self.params.box_mask));
        }
        if kinds.occlusion {
            let occluder = self.masks.occluder.as_mut().ok_or("mask-types=occlusion needs 'occluder-model'")?;
            combine(mask, &occluder.mask(&self.scratch.crop)?);
        }
        Ok(())
    }
}

/// FaceFusion's combination: `mask = min(mask, other)` per pixel.
fn combine(mask: &mut [f32], other: &[f32]) {
    for (m, &o) in mask.iter_mut().zip(other) {
        *m = m.min(o);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::models::swapper::{hyperswap, inswapper};

    /// The alignment of a face whose crop square spans `side` frame pixels (rotated a little).
    fn face_of(side: f64) -> Affine {
        let (c, s) = (0.3f64.cos() / side, 0.3f64.sin() / side);
        Affine { m: [c, -s, 0.1, s, c, -0.2] }
    }

    #[test]
    fn auto_boost_takes_the_smallest_size_covering_the_face() {
        assert!((face_side(&face_of(300.0)) - 300.0).abs() < 1e-9);
        // inswapper: 128, 256, 384, 512, 768, 1024.
        let cases = [(90.0, 128), (128.0, 128), (128.5, 256), (300.0, 384), (700.0, 768), (4000.0, 1024)];
        for (side, boost) in cases {
            assert_eq!(boost_size(&inswapper::FAMILY, 0, &face_of(side)), Ok(boost), "inswapper, a {side}-px face");
        }
        // hyperswap: 256, 512, 768, 1024 (a small face still gets the model's size).
        for (side, boost) in [(60.0, 256), (300.0, 512), (513.0, 768)] {
            assert_eq!(boost_size(&hyperswap::FAMILY, 0, &face_of(side)), Ok(boost), "hyperswap, a {side}-px face");
        }
    }

    #[test]
    fn a_fixed_boost_must_be_one_the_family_allows() {
        assert_eq!(boost_size(&inswapper::FAMILY, 384, &face_of(50.0)), Ok(384));
        let err = boost_size(&hyperswap::FAMILY, 384, &face_of(50.0)).unwrap_err();
        assert!(err.contains("'pixel-boost'") && err.contains("256, 512, 768, 1024"), "{err}");
    }

    #[test]
    fn masks_combine_by_their_minimum() {
        let mut mask = vec![1.0, 0.5, 0.2];
        combine(&mut mask, &[0.3, 0.9, 0.0]);
        assert_eq!(mask, vec![0.3, 0.5, 0.0]);
    }
}
