// SPDX-License-Identifier: MPL-2.0
//! The `inswapper_128` identity swap, as InsightFace's `INSwapper.get` with Deep-Live-Cam's
//! settings: 128-px similarity alignment, RGB `x / 255` input, latent = embedding × `emap`
//! renormalised, output clipped and truncated to 8 bits. Float16 exports are fed and read in
//! float16 (the tensors take the element types the model declares). [`FAMILY`] describes the
//! same model run the FaceFusion way, by [`super::Swapper`].

use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

use ort::session::IoBinding;
use ort::value::DynTensor;

use crate::backend::{Backend, FaceRegion, Normalization, OutputDecode};
use crate::face::EMBEDDING_LEN;
use crate::models::{NOT_BOUND, float_type, l2_normalized, run_on_backend};
use crate::runtime::{BatchUser, Batcher, ModelIo, ModelSession, RuntimeError, SessionOptions, read_graph_summary};
use crate::timing::StepTimes;
use crate::vision::templates::ARCFACE_128;
use crate::vision::{Affine, FrameView, estimate_norm};

use super::{FamilySpec, OutputSpace, SourceKind, SwapperFamilyChoice};

/// Side of the aligned face crop the swapper works on.
pub const CROP: usize = 128;

/// inswapper_128 as FaceFusion runs it (the [`super::Swapper`] path): the same model and crop,
/// but FaceFusion's latent (not renormalised) and pixel boost up to 1024.
pub const FAMILY: FamilySpec = FamilySpec {
    name: "inswapper",
    choice: SwapperFamilyChoice::Inswapper,
    models: &["inswapper_128", "inswapper_128_fp16"],
    file_hint: "inswapper",
    template: &ARCFACE_128,
    size: CROP,
    mean: [0.0; 3],
    std: [1.0; 3],
    output: OutputSpace::Unit,
    boost_sizes: &[128, 256, 384, 512, 768, 1024],
    source: SourceKind::Emap,
    converter: None,
    extra_output: None,
};

pub const CONTRACT: &str = "an inswapper_128 face swapper: inputs 'target' [1,3,128,128] and \
    'source' [1,512] (float32 or float16), output [1,3,128,128], and a 512×512 'emap' as the last \
    graph initializer";

pub fn check(io: &ModelIo) -> Result<(), String> {
    let target = io.inputs.iter().find(|i| i.name == "target");
    let source = io.inputs.iter().find(|i| i.name == "source");
    let ok = match (target, source, io.outputs.as_slice()) {
        (Some(t), Some(s), [out]) => {
            io.inputs.len() == 2
                && t.is_float()
                && t.shape.len() == 4
                && (1..4).all(|i| t.dim_accepts(i, [1, 3, CROP as i64, CROP as i64][i]))
                && s.is_float()
                && s.shape.len() == 2
                && s.dim_accepts(1, EMBEDDING_LEN as i64)
                && out.is_float()
                && out.shape.len() == 4
                && out.dim_accepts(1, 3)
                && out.dim_accepts(2, CROP as i64)
                && out.dim_accepts(3, CROP as i64)
        }
        _ => false,
    };
    ok.then_some(()).ok_or_else(|| CONTRACT.to_string())
}

/// The identity projection `emap`: the last graph initializer of an inswapper file, 512×512.
pub(crate) fn read_emap(path: &Path) -> Result<Arc<[f32]>, RuntimeError> {
    let summary = read_graph_summary(path)
        .map_err(|reason| RuntimeError::ModelUnreadable { path: path.to_path_buf(), reason })?;
    match summary.last_initializer {
        Some((_, dims, values)) if dims == [EMBEDDING_LEN as i64, EMBEDDING_LEN as i64] => Ok(Arc::from(values)),
        other => {
            let found = other.map_or("no initializers".to_string(), |(name, dims, _)| {
                format!("last initializer '{name}' with dims {dims:?}")
            });
            Err(RuntimeError::WrongKind { path: path.to_path_buf(), expected: CONTRACT.to_string(), found })
        }
    }
}

/// The swapper's identity input: `embedding · emap`, L2-normalised (InsightFace and
/// Deep-Live-Cam renormalise; FaceFusion does not). `emap` is row-major 512×512.
pub fn latent(embedding: &[f32], emap: &[f32]) -> Option<Vec<f32>> {
    if embedding.len() != EMBEDDING_LEN || emap.len() != EMBEDDING_LEN * EMBEDDING_LEN {
        return None;
    }
    let mut out = vec![0.0f32; EMBEDDING_LEN];
    for (e, row) in embedding.iter().zip(emap.chunks_exact(EMBEDDING_LEN)) {
        for (o, m) in out.iter_mut().zip(row) {
            *o += e * m;
        }
    }
    l2_normalized(&out)
}

/// inswapper's input normalisation: RGB `x / 255`.
pub const NORMALIZATION: Normalization = Normalization { mean: 0.0, scale: 1.0 / 255.0 };
/// inswapper's output: RGB in [0, 1], `clip(255·x)` truncated.
pub const DECODE: OutputDecode = OutputDecode::UnitTruncated;

/// The swapper's tensors: the face crop and the output from the backend, the latent in host
/// memory (it is small and changes only with the identity).
struct Bound {
    binding: IoBinding,
    target: DynTensor,
    source: DynTensor,
    output: DynTensor,
}

/// One face's tensors for a batched run (see [`Inswapper::swap_together`]).
struct Slot {
    target: DynTensor,
    source: DynTensor,
    output: DynTensor,
    /// The latent `source` holds.
    uploaded_latent: Vec<f32>,
}

/// One face of [`Inswapper::swap_together`]: its pixels, its alignment and its identity.
pub struct FaceToSwap<'a> {
    pub region: &'a FaceRegion,
    pub alignment: &'a Affine,
    pub latent: &'a [f32],
}

pub struct Inswapper {
    model: ModelSession,
    emap: Arc<[f32]>,
    bound: Option<Bound>,
    /// The latent `bound.source` holds.
    uploaded_latent: Vec<f32>,
    /// The process's batcher of this model, when faces are run together with other elements'
    /// (see [`Inswapper::share_batches`]).
    batches: Option<BatchUser>,
    /// The tensors of the faces of one frame run together, grown to the most faces seen.
    slots: Vec<Slot>,
    times: StepTimes,
}

impl Inswapper {
    pub fn open(path: &Path, property: &'static str, options: &SessionOptions) -> Result<Self, RuntimeError> {
        let model = ModelSession::open(path, property, options, check)?;
        // The model's resolved path (a bare name may have been found in the model directory).
        let emap = read_emap(&model.path)?;
        Ok(Inswapper {
            model,
            emap,
            bound: None,
            uploaded_latent: Vec::new(),
            batches: None,
            slots: Vec::new(),
            times: StepTimes::new(&["crop", "swapper run"]),
        })
    }

    pub fn model(&self) -> &ModelSession {
        &self.model
    }

    /// Time spent in preparing the input and running the model.
    pub fn times(&mut self) -> &mut StepTimes {
        &mut self.times
    }

    /// The identity projection read from the model file (shared with identity workers).
    pub fn emap(&self) -> Arc<[f32]> {
        self.emap.clone()
    }

    /// The alignment of a face with keypoints `kps` (frame → 128-px crop).
    /// Joins the process's [`Batcher`] of this model file and options: from then on, while
    /// another element (or lane) uses it too, this swapper's faces run in batches with theirs;
    /// alone, it keeps running its own session. Fails when the model cannot batch (the
    /// swapper then runs as before). Returns what the batcher is, for the log.
    pub fn share_batches(&mut self, options: &SessionOptions) -> Result<String, String> {
        let batcher = Batcher::shared(&self.model.path, options, check)?;
        let description = batcher.description.clone();
        self.batches = Some(batcher.user());
        Ok(description)
    }

    /// The batcher's runs so far, once this swapper's faces go through it.
    pub fn batch_report(&self) -> Option<String> {
        self.batches.as_ref().filter(|user| user.in_use()).map(|user| user.batcher().report())
    }

    /// Whether the next face on this thread may capture the swapper's CUDA graph (the caller
    /// then takes the GPU work lock exclusively): never once its faces go through the batcher,
    /// whose session is not captured.
    pub fn may_capture_here(&self) -> bool {
        !self.batches.as_ref().is_some_and(BatchUser::in_use) && self.model.may_capture_here()
    }

    pub fn alignment(kps: &[[f32; 2]; 5]) -> Option<Affine> {
        estimate_norm(kps, CROP)
    }

    /// Allocates and binds the tensors on first use.
    fn bind(&mut self, backend: &Backend) -> Result<(), String> {
        if self.bound.is_none() {
            let io = &self.model.io;
            let element_of = |name: &str| float_type(io.inputs.iter().find(|i| i.name == name));
            let target = backend.tensor(&[1, 3, CROP, CROP], element_of("target"))?;
            let source = backend.tensor(&[1, EMBEDDING_LEN], element_of("source"))?;
            let mut output = backend.tensor(&[1, 3, CROP, CROP], float_type(io.outputs.first()))?;
            let mut binding = self.model.binding()?;
            let name = io.outputs.first().map(|o| o.name.as_str()).unwrap_or_default();
            binding.bind_output(name, &mut output).map_err(|e| format!("cannot bind output '{name}': {e}"))?;
            self.bound = Some(Bound { binding, target, source, output });
        }
        Ok(())
    }

    /// Runs the model `runs` times on its bound tensors as they are (zeros at first), so that
    /// ONNX Runtime's first-run work — cuDNN's algorithm search, its memory planning — happens
    /// now rather than on the first frame (the elements run it once, at start).
    pub fn warm_up(&mut self, backend: &Backend, runs: usize) -> Result<(), String> {
        self.bind(backend)?;
        let Inswapper { model, bound: Some(bound), .. } = self else { return Err(NOT_BOUND.to_string()) };
        for (name, value) in [("target", &bound.target), ("source", &bound.source)] {
            bound.binding.bind_input(name, value).map_err(|e| format!("cannot bind input '{name}': {e}"))?;
        }
        model.warm_up(&bound.binding, runs)
    }

    /// Swaps the face aligned by `m` in `frame` (its pixels in `region`) to the identity
    /// `latent`; returns the model output (`[1,3,128,128]`, see [`DECODE`]).
    pub fn swap(
        &mut self,
        backend: &mut Backend,
        frame: &FrameView,
        region: &FaceRegion,
        m: &Affine,
        latent: &[f32],
    ) -> Result<&DynTensor, String> {
        if latent.len() != EMBEDDING_LEN {
            return Err(format!("latent has {} values, expected {EMBEDDING_LEN}", latent.len()));
        }
        let start = Instant::now();
        self.bind(backend)?;
        let Inswapper { model, bound: Some(bound), uploaded_latent, times, batches, .. } = self else {
            return Err(NOT_BOUND.to_string());
        };
        backend.warp_to_input(frame, region, m, NORMALIZATION, &mut bound.target)?;
        upload_latent(backend, &mut bound.source, uploaded_latent, latent)?;
        let bind = |binding: &mut IoBinding, name: &str, value: &DynTensor| {
            binding.bind_input(name, value).map_err(|e| format!("cannot bind input '{name}': {e}"))
        };
        bind(&mut bound.binding, "target", &bound.target)?;
        bind(&mut bound.binding, "source", &bound.source)?;
        let start = times.lap(0, start);
        match batches.as_ref().filter(|user| user.in_use()) {
            Some(user) => {
                // The batcher reads the inputs from its own stream: they must be complete.
                backend.finish_queued()?;
                user.run(&in_model_order(user, &bound.source, &bound.target), &mut [&mut bound.output])?;
            }
            None => run_on_backend(model, &bound.binding, backend)?,
        }
        times.lap(1, start);
        Ok(&bound.output)
    }

    /// Whether [`Inswapper::swap_together`] can run several faces in one batch: the swapper
    /// shares the process's batcher of its model ([`Inswapper::share_batches`]).
    pub fn swaps_together(&self) -> bool {
        self.batches.is_some()
    }

    /// Swaps `faces` in one batched run through the process's batcher (with whatever other users'
    /// faces are waiting); face `i`'s model output is then [`Inswapper::output_together`]`(i)`.
    /// Every face is warped from `frame` before any is run: the caller gives faces whose pixels
    /// none of the others' paste-back changes. From the first call on, this
    /// swapper's faces go through the batcher for good (see [`BatchUser::join`]): its own session
    /// then runs no more, so it never captures a CUDA graph on the caller's thread.
    pub fn swap_together(
        &mut self,
        backend: &mut Backend,
        frame: &FrameView,
        faces: &[FaceToSwap],
    ) -> Result<(), String> {
        let Some(user) = self.batches.as_ref() else {
            return Err("the swapper does not share a batcher, so it cannot run faces together".to_string());
        };
        if let Some(face) = faces.iter().find(|f| f.latent.len() != EMBEDDING_LEN) {
            return Err(format!("latent has {} values, expected {EMBEDDING_LEN}", face.latent.len()));
        }
        let start = Instant::now();
        user.join();
        let io = &self.model.io;
        let element_of = |name: &str| float_type(io.inputs.iter().find(|i| i.name == name));
        while self.slots.len() < faces.len() {
            self.slots.push(Slot {
                target: backend.tensor(&[1, 3, CROP, CROP], element_of("target"))?,
                source: backend.tensor(&[1, EMBEDDING_LEN], element_of("source"))?,
                output: backend.tensor(&[1, 3, CROP, CROP], float_type(io.outputs.first()))?,
                uploaded_latent: Vec::new(),
            });
        }
        let slots = &mut self.slots[..faces.len()];
        for (slot, face) in slots.iter_mut().zip(faces) {
            backend.warp_to_input(frame, face.region, face.alignment, NORMALIZATION, &mut slot.target)?;
            upload_latent(backend, &mut slot.source, &mut slot.uploaded_latent, face.latent)?;
        }
        let start = self.times.lap(0, start);
        // The batcher reads the inputs from its own stream: they must be complete.
        backend.finish_queued()?;
        let (inputs, mut outputs): (Vec<[&DynTensor; 2]>, Vec<[&mut DynTensor; 1]>) =
            slots.iter_mut().map(|slot| (in_model_order(user, &slot.source, &slot.target), [&mut slot.output])).unzip();
        let inputs: Vec<&[&DynTensor]> = inputs.iter().map(|i| i.as_slice()).collect();
        let mut outputs: Vec<&mut [&mut DynTensor]> = outputs.iter_mut().map(|o| o.as_mut_slice()).collect();
        user.run_all(&inputs, &mut outputs)?;
        self.times.lap(1, start);
        Ok(())
    }

    /// The model output of face `index` of the last [`Inswapper::swap_together`]
    /// (`[1,3,128,128]`, see [`DECODE`]).
    pub fn output_together(&self, index: usize) -> Option<&DynTensor> {
        self.slots.get(index).map(|slot| &slot.output)
    }
}

/// Writes `latent` into `source` unless it holds it already (`uploaded` says what it holds): the
/// latent changes only with the identity, and uploading it then keeps every input at the same
/// device address from frame to frame (which CUDA graphs need).
fn upload_latent(
    backend: &mut Backend,
    source: &mut DynTensor,
    uploaded: &mut Vec<f32>,
    latent: &[f32],
) -> Result<(), String> {
    if uploaded.as_slice() != latent {
        backend.fill(source, latent)?;
        uploaded.clear();
        uploaded.extend_from_slice(latent);
    }
    Ok(())
}

/// A face's two inputs in the batcher's model's input order (the contract checked at open: two
/// inputs, `source` and `target`).
fn in_model_order<'t>(user: &BatchUser, source: &'t DynTensor, target: &'t DynTensor) -> [&'t DynTensor; 2] {
    match user.batcher().io.inputs.first().is_some_and(|i| i.name == "source") {
        true => [source, target],
        false => [target, source],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn latent_is_embedding_times_emap_renormalised() {
        // emap = 2·identity except e0 → (3, 4) in the first two columns of row 0.
        let mut emap = vec![0.0f32; EMBEDDING_LEN * EMBEDDING_LEN];
        for i in 0..EMBEDDING_LEN {
            emap[i * EMBEDDING_LEN + i] = 2.0;
        }
        emap[0] = 3.0;
        emap[1] = 4.0;
        let mut embedding = vec![0.0f32; EMBEDDING_LEN];
        embedding[0] = 1.0;
        // e·emap = (3, 4, 0, …): normalised (0.6, 0.8).
        let l = latent(&embedding, &emap).unwrap();
        assert!((l[0] - 0.6).abs() < 1e-6 && (l[1] - 0.8).abs() < 1e-6);
        assert!(l[2..].iter().all(|v| *v == 0.0));
        assert!(latent(&embedding[..10], &emap).is_none());
    }
}
