// SPDX-License-Identifier: MPL-2.0
//! Face swappers. [`inswapper::Inswapper`] is the Deep-Live-Cam path (InsightFace's
//! `INSwapper.get`, on the element's pixel backend). [`Swapper`] runs any family the way
//! FaceFusion 3.8.1 does (`processors/modules/face_swapper/core.py`): its source tensor, and the
//! pixel-boost tiles through `prepare_crop_frame` → model → `normalize_crop_frame`, on host memory.
//!
//! A family is a [`FamilySpec`] in its own file, listed in [`FAMILIES`]; adding one means that
//! file, its line in the table, its stand-in model (tests/fixtures/swapper_families.py) and its test.

pub mod blendswap;
mod converter;
mod family;
pub mod ghost;
pub mod hififace;
pub mod hyperswap;
pub mod inswapper;
pub mod simswap;
pub mod tiles;
pub mod uniface;

use std::path::Path;
use std::sync::Arc;

use ort::session::IoBinding;
use ort::value::DynTensor;

use crate::backend::Backend;
use crate::face::EMBEDDING_LEN;
use crate::runtime::{
    ModelIo, ModelSession, RuntimeError, SessionOptions, batch_tolerance, check_batched, fill_host_f32, host_tensor,
    make_batch_symbolic, read_host_f32,
};

pub use converter::Converter;
pub use family::{CONTRACT, FamilySpec, OutputSpace, SourceKind, SwapperFamilyChoice, recognise, swapper_shape};

use super::{NOT_BOUND, float_type, run_on_backend};

/// Every family [`Swapper`] knows, in the order [`recognise`] lists them.
pub const FAMILIES: [&FamilySpec; 8] = [
    &inswapper::FAMILY,
    &hyperswap::FAMILY,
    &simswap::FAMILY_256,
    &simswap::FAMILY_UNOFFICIAL_512,
    &ghost::FAMILY,
    &hififace::FAMILY,
    &blendswap::FAMILY,
    &uniface::FAMILY,
];

/// How many tiles [`Swapper::batch_tiles`] checks at open (a 256-px boost of a 128-px model).
const BATCH_CHECK_TILES: usize = 4;

/// The property that names the swapper file.
pub const MODEL_PROPERTY: &str = "model-file";

/// Whether the model takes a batch of tiles: the batch dimension of `target`, `source` and the
/// first output is symbolic.
pub fn batch_is_symbolic(io: &ModelIo) -> bool {
    let symbolic = |shape: Option<&Vec<i64>>| shape.and_then(|s| s.first()).is_some_and(|d| *d < 0);
    let input = |name: &str| io.inputs.iter().find(|i| i.name == name).map(|i| &i.shape);
    symbolic(input("target")) && symbolic(input("source")) && symbolic(io.outputs.first().map(|o| &o.shape))
}

/// The host tensors of one batch size.
struct Bound {
    batch: usize,
    binding: IoBinding,
    target: DynTensor,
    source: DynTensor,
}

/// The tensors of one tile count where the pixel backend keeps them (see
/// [`Swapper::device_inputs`]): one input and output of all tiles where the model is batched,
/// else one of each per tile, run one after the other.
struct DeviceBound {
    count: usize,
    inputs: Vec<DynTensor>,
    outputs: Vec<DynTensor>,
    /// The outputs FaceFusion ignores (hyperswap's `mask`), bound to tensors of the backend too:
    /// left unbound, ONNX Runtime would allocate and free them at every run, on a GPU through
    /// pinned host memory, which CUDA forbids while another thread captures a CUDA graph.
    _ignored_outputs: Vec<DynTensor>,
    source: DynTensor,
    bindings: Vec<IoBinding>,
    /// The identity `source` holds (uploaded when it changes).
    uploaded: Vec<f32>,
}

/// A swapper of any family, run as FaceFusion runs it.
pub struct Swapper {
    model: ModelSession,
    family: &'static FamilySpec,
    /// inswapper's identity projection (the last initializer of its file).
    emap: Option<Arc<[f32]>>,
    converter: Option<Converter>,
    batched: bool,
    /// Whether [`Swapper::open`] made the batch symbolic, or why not (`None`: not tried).
    batching: Option<Result<String, String>>,
    bound: Option<Bound>,
    device: Option<DeviceBound>,
    /// float16 staging of the inputs and outputs.
    scratch: Vec<f32>,
    output: Vec<f32>,
}

impl Swapper {
    /// Opens the swapper at `path` as the family `choice` names (or the one [`recognise`] finds),
    /// with its embedding converter where the family needs one: `converter`, else the family's
    /// converter file (e.g. `crossface_simswap.onnx`) beside the swapper. A missing converter is
    /// a [`RuntimeError::ModelMissing`] naming `converter-model`; a converter given to a family
    /// that needs none is not opened.
    pub fn open(
        path: &Path,
        choice: SwapperFamilyChoice,
        converter: Option<&Path>,
        options: &SessionOptions,
    ) -> Result<Swapper, RuntimeError> {
        let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
        let model =
            ModelSession::open(path, MODEL_PROPERTY, options, |io| recognise(io, &file_name, choice).map(drop))?;
        let family = recognise(&model.io, &file_name, choice).map_err(|expected| RuntimeError::WrongKind {
            path: path.to_path_buf(),
            expected,
            found: model.io.to_string(),
        })?;
        // `model.path` is where the file was found (a bare name may come from the model directory).
        let emap = match family.source {
            SourceKind::Emap => Some(inswapper::read_emap(&model.path)?),
            _ => None,
        };
        // (The family table pairs a converter file with exactly the families that need one.)
        let converter = match (family.converter, converter) {
            (None, _) => None,
            (Some(_), Some(given)) => Some(Converter::open(given, options)?),
            (Some(default_name), None) => Some(Converter::open(&model.path.with_file_name(default_name), options)?),
        };
        let batched = batch_is_symbolic(&model.io);
        let mut swapper = Swapper {
            model,
            family,
            emap,
            converter,
            batched,
            batching: None,
            bound: None,
            device: None,
            scratch: Vec::new(),
            output: Vec::new(),
        };
        // A face's pixel-boost tiles in one run: worth a second open and a check on a GPU, where
        // one tile leaves most of the card idle; on the CPU a batch costs what its tiles cost.
        if !batched && swapper.model.on_nvidia_gpu() && family.boost_sizes.iter().any(|&b| b > family.size) {
            // The check's runs allocate and free host memory for their outputs, never while another
            // element captures a CUDA graph: the element opens its models under the GPU work lock
            // (taken again here, a recursive read would wait behind a queued capture forever).
            swapper.batching = Some(swapper.batch_tiles(options, BATCH_CHECK_TILES));
        }
        Ok(swapper)
    }

    /// Replaces the session by one of the same file with a symbolic batch
    /// ([`make_batch_symbolic`]) when a batch of `n` tiles then gives what `n` single runs give
    /// (within [`batch_tolerance`]); else keeps the session as it is. Either way the result says
    /// what happened, for the element's log. Exports fix the batch at 1 although their graphs
    /// rarely depend on it; the check catches those that do.
    pub fn batch_tiles(&mut self, options: &SessionOptions, n: usize) -> Result<String, String> {
        if self.batched {
            return Ok("the model's batch is already symbolic".to_string());
        }
        let bytes = std::fs::read(&self.model.path).map_err(|e| format!("cannot read the model again: {e}"))?;
        let (rewritten, rewrite) = make_batch_symbolic(&bytes)?;
        drop(bytes);
        let name = format!("{} (batch made symbolic)", self.model.path.display());
        let mut batched = ModelSession::open_memory(&name, &rewritten, options).map_err(|e| e.to_string())?;
        let size = self.family.size;
        let source_shape = match self.family.source.image_size() {
            Some(side) => vec![1, 3, side, side],
            None => vec![1, EMBEDDING_LEN],
        };
        // Different values per tile and per identity, so that a graph mixing batch items shows.
        let mut state = 0x2545_f491_u32;
        let mut noise = |len: usize| -> Vec<f32> {
            (0..len)
                .map(|_| {
                    state ^= state << 13;
                    state ^= state >> 17;
                    state ^= state << 5;
                    (state as f32 / u32::MAX as f32) * 2.0 - 1.0
                })
                .collect()
        };
        let inputs: Vec<(Vec<usize>, Vec<f32>)> = (batched.io.inputs.iter())
            .map(|input| {
                let shape = if input.name == "source" { source_shape.clone() } else { vec![1, 3, size, size] };
                let len = n * shape.iter().product::<usize>();
                (shape, noise(len))
            })
            .collect();
        let float16 =
            batched.io.outputs.first().is_some_and(|o| float_type(Some(o)) == ort::value::TensorElementType::Float16);
        let worst = check_batched(&mut batched, n, &inputs)?;
        let tolerance = batch_tolerance(float16 || batched.on_nvidia_gpu());
        if worst > tolerance {
            return Err(format!(
                "a batch of {n} tiles differs from single runs by up to {worst} (tolerance {tolerance}): the graph mixes batch items; tiles run one after the other"
            ));
        }
        self.model = batched;
        self.batched = true;
        self.bound = None;
        self.device = None;
        Ok(format!(
            "tiles run as one batch: batch of {} made symbolic ({} reshape shapes), a batch of {n} equals single runs within {worst}",
            rewrite.tensors.join(", "),
            rewrite.reshape_shapes.len()
        ))
    }

    /// What [`Swapper::open`] did about batching tiles, where it tried (see [`Swapper::batch_tiles`]).
    pub fn batching(&self) -> Option<&Result<String, String>> {
        self.batching.as_ref()
    }

    pub fn family(&self) -> &'static FamilySpec {
        self.family
    }

    pub fn model(&self) -> &ModelSession {
        &self.model
    }

    /// The embedding converter's session, for the families that have one.
    pub fn converter(&self) -> Option<&ModelSession> {
        self.converter.as_ref().map(Converter::model)
    }

    /// Whether [`Swapper::run_tiles`] runs all tiles of a face at once (the model's batch
    /// dimension is symbolic) rather than one after the other.
    pub fn batched(&self) -> bool {
        self.batched
    }

    /// FaceFusion's source tensor (`prepare_source_embedding`) from the source face's RAW ArcFace
    /// embedding (512 floats, as faces/identity.rs computes it), the converter run included.
    /// FaceFusion then balances it against the target's embedding by `face_swapper_weight`; at
    /// its default 0.5 that leaves it unchanged, which is what this returns.
    pub fn source_tensor(&mut self, raw_embedding: &[f32]) -> Result<Vec<f32>, String> {
        if raw_embedding.len() != EMBEDDING_LEN {
            return Err(format!("embedding has {} values, expected {EMBEDDING_LEN}", raw_embedding.len()));
        }
        if raw_embedding.iter().any(|v| !v.is_finite()) {
            return Err("embedding holds a non-finite value".to_string());
        }
        let converted = |converter: &mut Option<Converter>| match converter {
            Some(c) => c.convert(raw_embedding),
            None => Err(format!("the {} swapper has no embedding converter", self.family.name)),
        };
        match self.family.source {
            SourceKind::Emap => match &self.emap {
                Some(emap) => emap_latent(raw_embedding, emap),
                None => Err("the inswapper file's emap was not read".to_string()),
            },
            SourceKind::Normalized => unit_length(raw_embedding),
            SourceKind::ConverterRaw => converted(&mut self.converter),
            SourceKind::ConverterNormalized => unit_length(&converted(&mut self.converter)?),
            SourceKind::Image { .. } => {
                Err(format!("the {} swapper takes the source face's picture (source_image_tensor)", self.family.name))
            }
        }
    }

    /// FaceFusion's source tensor for the families whose identity is a picture (blendswap,
    /// uniface; `prepare_source_frame`): `crop` is the source face aligned to the family's source
    /// template (`SourceKind::Image`), side × side packed RGB u8; returns it planar, RGB `x / 255`.
    pub fn source_image_tensor(&self, crop: &[u8]) -> Result<Vec<f32>, String> {
        let Some(side) = self.family.source.image_size() else {
            return Err(format!("the {} swapper takes an embedding (source_tensor)", self.family.name));
        };
        if crop.len() != side * side * 3 {
            return Err(format!("source crop of {} bytes, expected {side}×{side}×3", crop.len()));
        }
        let plane = side * side;
        let mut planar = vec![0.0f32; 3 * plane];
        for (i, px) in crop.chunks_exact(3).enumerate() {
            for (c, &value) in px.iter().enumerate() {
                // float64 like numpy's `/ 255.0`, then float32 like its `astype`.
                planar[c * plane + i] = (value as f64 / 255.0) as f32;
            }
        }
        Ok(planar)
    }

    /// Runs `count` tiles with the identity `source` (from [`Swapper::source_tensor`] or
    /// [`Swapper::source_image_tensor`]): `tiles` is count × S × S × 3 packed RGB u8 (the crop's
    /// own pixels, already in RGB order); returns count × S × S × 3 packed RGB f32 in [0, 255]: FaceFusion's
    /// prepare_crop_frame → model → normalize_crop_frame (incl. clip(0,1)·255), not rounded.
    /// One batched run where the model's batch dim is symbolic, else one run per tile.
    pub fn run_tiles(&mut self, tiles: &[u8], count: usize, source: &[f32]) -> Result<&[f32], String> {
        let size = self.family.size;
        let tile_len = size * size * 3;
        if tiles.len() != count * tile_len {
            return Err(format!("{} tile bytes, expected {count} tiles of {size}×{size}×3", tiles.len()));
        }
        let source_len = self.family.source_len();
        if source.len() != source_len {
            return Err(format!("source tensor has {} values, expected {source_len}", source.len()));
        }
        self.output.resize(count * tile_len, 0.0);
        let batch = if self.batched { count.max(1) } else { 1 };
        for first in (0..count).step_by(batch) {
            let n = batch.min(count - first);
            self.run_batch(&tiles[first * tile_len..(first + n) * tile_len], n, source, first * tile_len)?;
        }
        Ok(&self.output)
    }

    /// The swapper's input tensors for `count` tiles on `backend`, where the backend's tiles
    /// graph writes them: one `[count, 3, S, S]` tensor where the model is batched, else `count`
    /// `[1, 3, S, S]` tensors. Allocated and bound when the count changes; run them with
    /// [`Swapper::run_device_tiles`].
    pub fn device_inputs(&mut self, backend: &Backend, count: usize) -> Result<&mut [DynTensor], String> {
        if count == 0 {
            return Err("no tiles to swap".to_string());
        }
        if self.device.as_ref().is_none_or(|d| d.count != count) {
            self.device = None;
            let size = self.family.size;
            let io = &self.model.io;
            let element_of = |name: &str| float_type(io.inputs.iter().find(|i| i.name == name));
            let (runs, batch) = if self.batched { (1, count) } else { (count, 1) };
            let source_shape = match self.family.source.image_size() {
                Some(side) => vec![batch, 3, side, side],
                None => vec![batch, EMBEDDING_LEN],
            };
            let source = backend.tensor(&source_shape, element_of("source"))?;
            let output_name = io.outputs.first().map(|o| o.name.clone()).unwrap_or_default();
            let (mut inputs, mut outputs, mut bindings) = (Vec::new(), Vec::new(), Vec::new());
            let mut ignored_outputs = Vec::new();
            for _ in 0..runs {
                inputs.push(backend.tensor(&[batch, 3, size, size], element_of("target"))?);
                let mut output = backend.tensor(&[batch, 3, size, size], float_type(io.outputs.first()))?;
                let mut binding = self.model.binding()?;
                binding
                    .bind_output(&output_name, &mut output)
                    .map_err(|e| format!("cannot bind output '{output_name}': {e}"))?;
                for other in io.outputs.iter().skip(1) {
                    // The declared shape with the batch of this run; other symbolic sides are
                    // the model's size (hyperswap's mask: [N,1,S,S]).
                    let shape: Vec<usize> = (other.shape.iter().enumerate())
                        .map(|(i, &d)| {
                            if i == 0 {
                                batch
                            } else if d > 0 {
                                d as usize
                            } else {
                                size
                            }
                        })
                        .collect();
                    let mut tensor = backend.tensor(&shape, float_type(Some(other)))?;
                    binding
                        .bind_output(other.name.as_str(), &mut tensor)
                        .map_err(|e| format!("cannot bind output '{}': {e}", other.name))?;
                    ignored_outputs.push(tensor);
                }
                outputs.push(output);
                bindings.push(binding);
            }
            self.device = Some(DeviceBound {
                count,
                inputs,
                outputs,
                _ignored_outputs: ignored_outputs,
                source,
                bindings,
                uploaded: Vec::new(),
            });
        }
        let device = self.device.as_mut().ok_or_else(|| NOT_BOUND.to_string())?;
        Ok(&mut device.inputs)
    }

    /// Runs the tiles that the backend wrote into [`Swapper::device_inputs`] with the identity
    /// `source` (as for [`Swapper::run_tiles`]); returns the model outputs, in tile order, where
    /// the backend keeps them (on a GPU, queued on the element's stream without waiting).
    pub fn run_device_tiles(&mut self, backend: &mut Backend, source: &[f32]) -> Result<&[DynTensor], String> {
        let source_len = self.family.source_len();
        if source.len() != source_len {
            return Err(format!("source tensor has {} values, expected {source_len}", source.len()));
        }
        let Swapper { model, device: Some(device), .. } = self else { return Err(NOT_BOUND.to_string()) };
        // The identity changes rarely: uploaded then, one copy per tile of a batch.
        if device.uploaded.as_slice() != source {
            let copies = tensor_rows(&device.source);
            let values: Vec<f32> = source.iter().copied().cycle().take(copies * source_len).collect();
            backend.fill(&mut device.source, &values)?;
            device.uploaded.clear();
            device.uploaded.extend_from_slice(source);
        }
        for (binding, input) in device.bindings.iter_mut().zip(&device.inputs) {
            for (name, value) in [("target", input), ("source", &device.source)] {
                binding.bind_input(name, value).map_err(|e| format!("cannot bind input '{name}': {e}"))?;
            }
            run_on_backend(model, binding, backend)?;
        }
        Ok(&device.outputs)
    }

    /// Runs `n` tiles in one run; writes their packed output at `self.output[at..]`.
    fn run_batch(&mut self, tiles: &[u8], n: usize, source: &[f32], at: usize) -> Result<(), String> {
        let size = self.family.size;
        if self.bound.as_ref().is_none_or(|b| b.batch != n) {
            let io = &self.model.io;
            let element_of = |name: &str| float_type(io.inputs.iter().find(|i| i.name == name));
            let target = host_tensor(&[n, 3, size, size], element_of("target"))?;
            let source_shape = match self.family.source.image_size() {
                Some(side) => vec![n, 3, side, side],
                None => vec![n, EMBEDDING_LEN],
            };
            let source = host_tensor(&source_shape, element_of("source"))?;
            let mut binding = self.model.binding()?;
            let output = io.outputs.first().map(|o| o.name.clone()).unwrap_or_default();
            ModelSession::bind_output_to_host(&mut binding, &output)?;
            self.bound = Some(Bound { batch: n, binding, target, source });
        }
        let Swapper { model, family, bound: Some(bound), scratch, output, .. } = self else {
            return Err(NOT_BOUND.to_string());
        };
        fill_host_f32(&mut bound.target, scratch, |values| tiles::prepare(family, tiles, n, size, values))?;
        fill_host_f32(&mut bound.source, scratch, |values| {
            for row in values.chunks_exact_mut(source.len()) {
                row.copy_from_slice(source);
            }
        })?;
        for (name, value) in [("target", &bound.target), ("source", &bound.source)] {
            bound.binding.bind_input(name, value).map_err(|e| format!("cannot bind input '{name}': {e}"))?;
        }
        let outputs = model.run(&bound.binding)?;
        let values = read_host_f32(&outputs[0], scratch)?;
        let want = n * 3 * size * size;
        if values.len() != want {
            return Err(format!("the swapper returned {} values for {n} tiles, expected {want}", values.len()));
        }
        tiles::finish(family, values, n, size, &mut output[at..at + want]);
        Ok(())
    }
}

/// The first dimension of a tensor (its batch).
fn tensor_rows(tensor: &DynTensor) -> usize {
    crate::runtime::tensor_shape(tensor).first().copied().unwrap_or(0)
}

/// FaceFusion's inswapper latent: `e · emap / ‖e‖`, not renormalised (`emap` row-major 512×512).
/// Sums in float64 (numpy sums the float32 product in float32, with its own order: the two agree
/// to float32 rounding).
pub fn emap_latent(embedding: &[f32], emap: &[f32]) -> Result<Vec<f32>, String> {
    if embedding.len() != EMBEDDING_LEN || emap.len() != EMBEDDING_LEN * EMBEDDING_LEN {
        return Err(format!("emap latent of {} values with a {}-value emap", embedding.len(), emap.len()));
    }
    let norm = norm(embedding)?;
    let mut out = vec![0.0f64; EMBEDDING_LEN];
    for (&e, row) in embedding.iter().zip(emap.chunks_exact(EMBEDDING_LEN)) {
        for (o, &m) in out.iter_mut().zip(row) {
            *o += e as f64 * m as f64;
        }
    }
    Ok(out.into_iter().map(|v| (v / norm) as f32).collect())
}

/// `v / ‖v‖` (FaceFusion's `embedding_norm`).
pub fn unit_length(v: &[f32]) -> Result<Vec<f32>, String> {
    let norm = norm(v)?;
    Ok(v.iter().map(|&x| (x as f64 / norm) as f32).collect())
}

fn norm(v: &[f32]) -> Result<f64, String> {
    let norm = v.iter().map(|&x| x as f64 * x as f64).sum::<f64>().sqrt();
    (norm.is_finite() && norm > 0.0)
        .then_some(norm)
        .ok_or_else(|| "the embedding has no length (all zeros)".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::TensorSpec;
    use ort::value::TensorElementType::Float32;

    #[test]
    fn facefusion_latent_is_not_renormalised() {
        // emap = 2·identity except row 0 → (3, 4, 0, …); e = (3, 4, 0, …), ‖e‖ = 5.
        let mut emap = vec![0.0f32; EMBEDDING_LEN * EMBEDDING_LEN];
        for i in 0..EMBEDDING_LEN {
            emap[i * EMBEDDING_LEN + i] = 2.0;
        }
        emap[0] = 3.0;
        emap[1] = 4.0;
        let mut e = vec![0.0f32; EMBEDDING_LEN];
        e[0] = 3.0;
        e[1] = 4.0;
        // e·emap = (3·3, 3·4 + 4·2, 0, …) = (9, 20, 0, …); divided by 5: (1.8, 4, 0, …), length
        // 4.39 (InsightFace's latent would be renormalised to 1).
        let latent = emap_latent(&e, &emap).expect("a latent");
        assert!((latent[0] - 1.8).abs() < 1e-6 && (latent[1] - 4.0).abs() < 1e-6, "{:?}", &latent[..2]);
        assert!(latent[2..].iter().all(|v| *v == 0.0));
        assert!(emap_latent(&vec![0.0; EMBEDDING_LEN], &emap).is_err());
        assert!(emap_latent(&e[..100], &emap).is_err());
    }

    #[test]
    fn normalised_embedding_has_unit_length() {
        let v = unit_length(&[3.0, 0.0, -4.0]).expect("a vector");
        assert_eq!(v, vec![0.6, 0.0, -0.8]);
        assert!(unit_length(&[0.0, 0.0]).unwrap_err().contains("no length"));
    }

    #[test]
    fn a_swapper_can_move_to_a_worker_thread() {
        fn send<T: Send>() {}
        send::<Swapper>();
    }

    #[test]
    fn batching_needs_a_symbolic_batch_on_every_tensor() {
        let t =
            |name: &str, shape: &[i64]| TensorSpec { name: name.into(), element: Some(Float32), shape: shape.to_vec() };
        let io = |b_target: i64, b_source: i64, b_out: i64| ModelIo {
            inputs: vec![t("target", &[b_target, 3, 256, 256]), t("source", &[b_source, 512])],
            outputs: vec![t("output", &[b_out, 3, 256, 256])],
        };
        assert!(batch_is_symbolic(&io(-1, -1, -1)));
        assert!(!batch_is_symbolic(&io(1, 1, 1)));
        // A symbolic target batch with a fixed source batch cannot take several tiles at once.
        assert!(!batch_is_symbolic(&io(-1, 1, -1)));
        assert!(!batch_is_symbolic(&io(-1, -1, 1)));
    }
}
