// SPDX-License-Identifier: MPL-2.0
//! Face restoration models (GFPGAN 1.2–1.4, GPEN-BFR 256–2048, CodeFormer, RestoreFormer++),
//! recognised from their inputs and outputs (and the file name where shapes alone cannot tell),
//! each with its own alignment template; RGB `x / 127.5 − 1` in, `(clip(y, −1, 1) + 1) · 127.5`
//! out.

use std::path::Path;
use std::time::Instant;

use ort::session::IoBinding;
use ort::value::{DynTensor, Tensor, TensorElementType};

use crate::backend::{Backend, FaceRegion, Normalization, OutputDecode};
use crate::runtime::{
    BatchUser, Batcher, ModelIo, ModelSession, RuntimeError, SessionOptions, TensorSpec, host_tensor,
};
use crate::timing::StepTimes;
use crate::vision::align::{ffhq_template, template, umeyama};
use crate::vision::{Affine, FrameView};

use super::{NOT_BOUND, float_type, run_on_backend};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    Gfpgan,
    GpenBfr,
    CodeFormer,
    RestoreFormer,
}

impl Family {
    pub fn name(self) -> &'static str {
        match self {
            Family::Gfpgan => "GFPGAN",
            Family::GpenBfr => "GPEN-BFR",
            Family::CodeFormer => "CodeFormer",
            Family::RestoreFormer => "RestoreFormer++",
        }
    }
}

/// A recognised model: family, crop size and output size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EnhancerKind {
    pub family: Family,
    /// Side of the aligned input crop.
    pub size: usize,
    /// Side of the model's output (GFPGAN exports that upscale ×2 return 1024).
    pub output_size: usize,
}

pub const CONTRACT: &str = "a face restoration model: GFPGAN or RestoreFormer++ (input [1,3,512,512], \
    output 512 or 1024), GPEN-BFR (input [1,3,S,S] with S 256, 512, 1024 or 2048 and 'gpen' in the \
    file name) or CodeFormer (inputs [1,3,512,512] and 'weight', one float64 such as [1])";

fn square_side(shape: &[i64]) -> Option<usize> {
    match shape {
        [n, 3, h, w] if (*n == 1 || *n < 0) && h == w && *h > 0 => Some(*h as usize),
        _ => None,
    }
}

/// Recognises the family from the model's I/O and file name.
pub fn recognise(io: &ModelIo, file_name: &str) -> Result<EnhancerKind, String> {
    let name = file_name.to_lowercase();
    let image_inputs: Vec<_> = io.inputs.iter().filter(|i| i.element != Some(TensorElementType::Float64)).collect();
    let weight_input = io.inputs.iter().find(|i| i.element == Some(TensorElementType::Float64));
    let ([input], [output]) = (image_inputs.as_slice(), io.outputs.as_slice()) else {
        return Err(CONTRACT.to_string());
    };
    let (Some(size), Some(output_size)) = (square_side(&input.shape), square_side(&output.shape)) else {
        return Err(CONTRACT.to_string());
    };
    if !input.is_float() || !output.is_float() {
        return Err(CONTRACT.to_string());
    }
    let kind = |family| Ok(EnhancerKind { family, size, output_size });
    match (weight_input, size) {
        (Some(weight), 512)
            if io.inputs.len() == 2 && output_size == 512 && weight.shape.iter().all(|&d| d == 1 || d < 0) =>
        {
            kind(Family::CodeFormer)
        }
        (Some(_), _) => Err(CONTRACT.to_string()),
        (None, 256 | 512 | 1024 | 2048) if name.contains("gpen") && output_size == size => kind(Family::GpenBfr),
        (None, 512) if name.contains("restoreformer") && output_size == 512 => kind(Family::RestoreFormer),
        (None, 512) if output_size == 512 || output_size == 1024 => kind(Family::Gfpgan),
        _ => Err(CONTRACT.to_string()),
    }
}

/// The five-point template a family aligns faces to, at its crop size.
pub fn family_template(kind: &EnhancerKind) -> [[f64; 2]; 5] {
    match (kind.family, kind.size) {
        // FaceFusion aligns GPEN-BFR-256 to the ArcFace template at 128 px, doubled.
        (Family::GpenBfr, 256) => template(128).map(|[x, y]| [x * 2.0, y * 2.0]),
        (_, size) => ffhq_template(size),
    }
}

/// The image input's name, and CodeFormer's fidelity weight's name and shape.
type InputNames = (String, Option<(String, Vec<usize>)>);

/// The shape of an input for one face: the dimensions the model fixes, 1 for the symbolic ones
/// (a batch). CodeFormer's weight is `[1]` in the usual export; an export may give it more
/// dimensions of 1, such as `[1,1,1,1]` (which batches: one value per face).
fn one_face_shape(shape: &[i64]) -> Vec<usize> {
    shape.iter().map(|&d| if d > 0 { d as usize } else { 1 }).collect()
}

/// The restorers' input normalisation: RGB `x / 127.5 − 1`.
pub const NORMALIZATION: Normalization = Normalization { mean: 127.5, scale: 1.0 / 127.5 };
/// The restorers' output: RGB in [−1, 1].
pub const DECODE: OutputDecode = OutputDecode::SignedRounded;

/// The restorer's tensors: the face crop and the output from the backend, CodeFormer's fidelity
/// weight in host memory.
struct Bound {
    binding: IoBinding,
    input: DynTensor,
    output: DynTensor,
}

impl Bound {
    /// Binds the face crop, and CodeFormer's fidelity weight when the model has one.
    fn bind_inputs(&mut self, (image, weight): &InputNames, fidelity: f64) -> Result<(), String> {
        self.binding.bind_input(image.as_str(), &self.input).map_err(|e| format!("cannot bind the input: {e}"))?;
        if let Some((name, shape)) = weight {
            let values = vec![fidelity; shape.iter().product()];
            let value = Tensor::from_array((shape.clone(), values)).map_err(|e| e.to_string())?;
            self.binding.bind_input(name.as_str(), &value).map_err(|e| format!("cannot bind '{name}': {e}"))?;
        }
        Ok(())
    }
}

/// This restorer's part in the process's [`Batcher`] of its model (see
/// [`Enhancer::share_batches`]).
struct SharedBatches {
    user: BatchUser,
    /// CodeFormer's fidelity weight as one batch item, where the batcher reads it (the backend's
    /// memory), and the value it holds.
    weight: Option<(DynTensor, f64)>,
}

pub struct Enhancer {
    model: ModelSession,
    kind: EnhancerKind,
    template: [[f64; 2]; 5],
    bound: Option<Bound>,
    batches: Option<SharedBatches>,
    times: StepTimes,
}

impl Enhancer {
    pub fn open(path: &Path, property: &'static str, options: &SessionOptions) -> Result<Self, RuntimeError> {
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let model = ModelSession::open(path, property, options, |io| recognise(io, &file_name).map(|_| ()))?;
        let kind = recognise(&model.io, &file_name).map_err(|expected| RuntimeError::WrongKind {
            path: path.to_path_buf(),
            expected,
            found: model.io.to_string(),
        })?;
        let times = StepTimes::new(&["crop", "restorer run"]);
        Ok(Enhancer { template: family_template(&kind), model, kind, bound: None, batches: None, times })
    }

    /// Joins the process's [`Batcher`] of this model file and options: from then on, while
    /// another element (or lane) uses it too, this restorer's faces run in batches with theirs;
    /// alone, it keeps running its own session. Fails when the model cannot batch, as
    /// CodeFormer exports whose fidelity weight is one value for the whole run (the restorer then
    /// runs as before). Returns what the batcher is, for the log.
    pub fn share_batches(&mut self, options: &SessionOptions) -> Result<String, String> {
        let file_name = self.model.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let batcher = Batcher::shared(&self.model.path, options, |io| recognise(io, &file_name).map(|_| ()))?;
        let description = batcher.description.clone();
        self.batches = Some(SharedBatches { user: batcher.user(), weight: None });
        Ok(description)
    }

    /// The batcher's runs so far, once this restorer's faces go through it.
    pub fn batch_report(&self) -> Option<String> {
        self.batches.as_ref().filter(|shared| shared.user.in_use()).map(|shared| shared.user.batcher().report())
    }

    pub fn model(&self) -> &ModelSession {
        &self.model
    }

    /// Whether the next face on this thread may capture the restorer's CUDA graph (the caller
    /// then takes the GPU work lock exclusively): never once its faces go through the batcher,
    /// whose session is not captured.
    pub fn may_capture_here(&self) -> bool {
        !self.batches.as_ref().is_some_and(|shared| shared.user.in_use()) && self.model.may_capture_here()
    }

    pub fn kind(&self) -> EnhancerKind {
        self.kind
    }

    /// Time spent in preparing the input and running the model.
    pub fn times(&mut self) -> &mut StepTimes {
        &mut self.times
    }

    /// The alignment (frame → crop) of a face with keypoints `kps`.
    pub fn alignment(&self, kps: &[[f32; 2]; 5]) -> Option<Affine> {
        let src = kps.map(|[x, y]| [x as f64, y as f64]);
        umeyama(&src, &self.template)
    }

    /// The image input: the one that is not CodeFormer's float64 weight.
    fn image_input(&self) -> Option<&TensorSpec> {
        self.model.io.inputs.iter().find(|i| i.element != Some(TensorElementType::Float64))
    }

    /// The names of the image input and of CodeFormer's fidelity weight (if any, with its shape).
    fn input_names(&self) -> InputNames {
        let image = self.image_input().map(|i| i.name.clone()).unwrap_or_default();
        let weight = (self.model.io.inputs.iter().find(|i| i.element == Some(TensorElementType::Float64)))
            .map(|i| (i.name.clone(), one_face_shape(&i.shape)));
        (image, weight)
    }

    /// Allocates and binds the tensors on first use.
    fn bind(&mut self, backend: &Backend) -> Result<(), String> {
        if self.bound.is_none() {
            let (size, out) = (self.kind.size, self.kind.output_size);
            let input = backend.tensor(&[1, 3, size, size], float_type(self.image_input()))?;
            let mut output = backend.tensor(&[1, 3, out, out], float_type(self.model.io.outputs.first()))?;
            let mut binding = self.model.binding()?;
            let name = self.model.io.outputs.first().map(|o| o.name.as_str()).unwrap_or_default();
            binding.bind_output(name, &mut output).map_err(|e| format!("cannot bind output '{name}': {e}"))?;
            self.bound = Some(Bound { binding, input, output });
        }
        Ok(())
    }

    /// Runs the model `runs` times on its bound tensors as they are (see
    /// [`crate::models::swapper::inswapper::Inswapper::warm_up`]).
    pub fn warm_up(&mut self, backend: &Backend, runs: usize, fidelity: f64) -> Result<(), String> {
        let names = self.input_names();
        self.bind(backend)?;
        let Enhancer { model, bound: Some(bound), .. } = self else { return Err(NOT_BOUND.to_string()) };
        bound.bind_inputs(&names, fidelity)?;
        model.warm_up(&bound.binding, runs)
    }

    /// Restores the face aligned by `m` in `frame` (its pixels in `region`); returns the model
    /// output (`[1,3,O,O]`, see [`DECODE`]; O is the crop size or an integer multiple of it).
    pub fn restore(
        &mut self,
        backend: &mut Backend,
        frame: &FrameView,
        region: &FaceRegion,
        m: &Affine,
        fidelity: f64,
    ) -> Result<&DynTensor, String> {
        let names = self.input_names();
        let start = Instant::now();
        self.bind(backend)?;
        let Enhancer { model, bound: Some(bound), times, batches, .. } = self else {
            return Err(NOT_BOUND.to_string());
        };
        backend.warp_to_input(frame, region, m, NORMALIZATION, &mut bound.input)?;
        let start = times.lap(0, start);
        match batches.as_mut().filter(|shared| shared.user.in_use()) {
            Some(shared) => {
                shared.write_weight(backend, fidelity)?;
                let weight = shared.weight.as_ref().map(|(tensor, _)| tensor);
                // The batcher reads the input from its own stream: it must be complete.
                backend.finish_queued()?;
                let inputs: Vec<&DynTensor> = (shared.user.batcher().io.inputs.iter())
                    .map(|i| match (i.element, weight) {
                        (Some(TensorElementType::Float64), Some(weight)) => weight,
                        _ => &bound.input,
                    })
                    .collect();
                shared.user.run(&inputs, &mut [&mut bound.output])?;
            }
            None => {
                bound.bind_inputs(&names, fidelity)?;
                run_on_backend(model, &bound.binding, backend)?;
            }
        }
        times.lap(1, start);
        Ok(&bound.output)
    }
}

impl SharedBatches {
    /// Writes CodeFormer's fidelity weight as one batch item into the backend's memory, when it
    /// changed (nothing to do for the families without one).
    fn write_weight(&mut self, backend: &Backend, fidelity: f64) -> Result<(), String> {
        let io = &self.user.batcher().io;
        let Some(spec) = io.inputs.iter().find(|i| i.element == Some(TensorElementType::Float64)) else {
            return Ok(());
        };
        if self.weight.as_ref().is_none_or(|(_, held)| *held != fidelity) {
            let shape = one_face_shape(&spec.shape);
            let mut tensor = match self.weight.take() {
                Some((tensor, _)) => tensor,
                None => backend.tensor(&shape, TensorElementType::Float64)?,
            };
            let mut host = host_tensor(&shape, TensorElementType::Float64)?;
            let (_, values) = host.try_extract_tensor_mut::<f64>().map_err(|e| e.to_string())?;
            values.fill(fidelity);
            host.copy_into(&mut tensor).map_err(|e| format!("cannot write the fidelity weight: {e}"))?;
            self.weight = Some((tensor, fidelity));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::TensorSpec;
    use ort::value::TensorElementType::{Float32, Float64};

    fn spec(name: &str, element: TensorElementType, shape: &[i64]) -> TensorSpec {
        TensorSpec { name: name.into(), element: Some(element), shape: shape.to_vec() }
    }

    fn io(size: i64, out: i64, weight: bool) -> ModelIo {
        let mut inputs = vec![spec("input", Float32, &[1, 3, size, size])];
        if weight {
            inputs.push(spec("weight", Float64, &[1]));
        }
        ModelIo { inputs, outputs: vec![spec("output", Float32, &[1, 3, out, out])] }
    }

    #[test]
    fn families_are_told_apart() {
        assert_eq!(recognise(&io(512, 512, false), "GFPGANv1.4.onnx").unwrap().family, Family::Gfpgan);
        assert_eq!(recognise(&io(512, 1024, false), "gfpgan_1.2.onnx").unwrap().output_size, 1024);
        assert_eq!(recognise(&io(256, 256, false), "GPEN-BFR-256.onnx").unwrap().family, Family::GpenBfr);
        assert_eq!(recognise(&io(2048, 2048, false), "gpen_bfr_2048.onnx").unwrap().size, 2048);
        assert_eq!(recognise(&io(512, 512, true), "codeformer.onnx").unwrap().family, Family::CodeFormer);
        // CodeFormer's weight is one value, whatever its rank.
        let mut one_per_face = io(512, 512, true);
        one_per_face.inputs[1].shape = vec![1, 1, 1, 1];
        assert_eq!(recognise(&one_per_face, "codeformer.onnx").unwrap().family, Family::CodeFormer);
        one_per_face.inputs[1].shape = vec![2];
        assert!(recognise(&one_per_face, "codeformer.onnx").is_err());
        assert_eq!(
            recognise(&io(512, 512, false), "restoreformer_plus_plus.onnx").unwrap().family,
            Family::RestoreFormer
        );
        // A detector-shaped or unknown-size model is none of them.
        assert!(recognise(&io(640, 640, false), "det_10g.onnx").unwrap_err().contains("face restoration model"));
        assert!(recognise(&io(256, 256, false), "mystery.onnx").is_err());
    }

    #[test]
    fn gpen_256_uses_doubled_arcface_128_template() {
        let kind = EnhancerKind { family: Family::GpenBfr, size: 256, output_size: 256 };
        // ArcFace at 128: first point (46.2946, 51.6963) → doubled.
        let t = family_template(&kind);
        assert!((t[0][0] - 92.5892).abs() < 1e-4 && (t[0][1] - 103.3926).abs() < 1e-4);
        let gfpgan = EnhancerKind { family: Family::Gfpgan, size: 512, output_size: 512 };
        assert!((family_template(&gfpgan)[2][0] - 256.63416).abs() < 1e-4);
    }
}
