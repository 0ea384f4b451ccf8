// SPDX-License-Identifier: MPL-2.0
//! The pixel steps as small ONNX graphs ([`pixels`]) that ONNX Runtime runs on the element's
//! execution provider, next to the models: on an NVIDIA GPU the crops, model inputs and outputs
//! and the paste stay in GPU memory, and only a face's rectangle travels each way. The same
//! graphs run on ONNX Runtime's CPU provider, which is how the tests compare them with the CPU
//! backend on machines without a GPU.

pub mod boost;
pub mod face_masks;
pub mod facefusion;
pub mod onnx;
pub mod pixels;

use std::collections::HashMap;

use ort::memory::Allocator;
use ort::value::{DynTensor, Tensor, TensorElementType};

use super::{Crop, CropSide, FaceRegion, Normalization, OutputDecode};
use crate::runtime::{
    ComputeStream, ExecutionProvider, ModelSession, RuntimeError, SessionOptions, fill_host_f32, host_tensor,
    read_host_f32, tensor_shape,
};
use crate::vision::letterbox_plan::{LetterboxPlan, PlanKey};
use crate::vision::paste::CropMask;
use crate::vision::{Affine, FrameView, FrameViewMut, Rect, RgbImage};
use onnx::Elem;
use pixels::{Decode, PASTE_PARAMS, WARP_PARAMS};

/// Uploaded masks kept per backend (one per face size and rotation in view).
const MASK_CACHE: usize = 8;

/// The gather graph of [`GraphBackend::read_outputs`] for one set of output shapes.
struct Gather {
    element: TensorElementType,
    shapes: Vec<Vec<usize>>,
    session: ModelSession,
    /// Every output's values, float32, in output order, in host memory.
    values: DynTensor,
}

/// The letterbox graph for one frame layout, detector size, input type and normalisation, with
/// the host buffer the frame's rows are staged in and, on the element's own CUDA stream, the GPU
/// tensor they are copied to.
struct Letterbox {
    key: (PlanKey, Elem, [u32; 2]),
    plan: LetterboxPlan,
    session: ModelSession,
    staging: DynTensor,
    rows_on_gpu: Option<DynTensor>,
}

/// A graph's session, built on first use.
type Graphs<K> = HashMap<K, ModelSession>;

pub struct GraphBackend {
    options: SessionOptions,
    /// Allocates the tensors that stay with the models (GPU memory on CUDA and TensorRT).
    allocator: Allocator,
    warp: Graphs<(Elem, usize)>,
    decode: Graphs<(Elem, Decode, i64)>,
    paste: Option<ModelSession>,
    /// The gather graph for the output shapes it was built for, with its host output.
    gather: Option<Gather>,
    /// Masks in the models' memory, by [`CropMask::revision`], most recent last.
    masks: Vec<(u64, DynTensor)>,
    /// The letterbox graph of the current frame layout.
    letterbox: Option<Letterbox>,
    /// Float staging of uploads.
    staging: Vec<f32>,
    /// Written-pixel weights of the last paste, for YUV frames.
    weights: Vec<f32>,
    /// The pasted region in host memory, on its way into the frame.
    pasted: RgbImage,
    /// A face region in host memory, on its way to the GPU.
    region_staging: Vec<u8>,
    /// FaceFusion's steps ([`facefusion`]).
    facefusion: facefusion::Graphs,
}

fn elem_of(element: TensorElementType) -> Result<Elem, String> {
    match element {
        TensorElementType::Float32 => Ok(Elem::Float),
        TensorElementType::Float16 => Ok(Elem::Float16),
        other => Err(format!("the pixel graphs do not produce {other:?} tensors")),
    }
}

/// A float vector in host memory.
fn floats(values: &[f32]) -> Result<Tensor<f32>, String> {
    Tensor::from_array((vec![values.len()], values.to_vec().into_boxed_slice())).map_err(|e| e.to_string())
}

/// The session of `key`'s graph, built by `build` on first use.
fn graph<'g, K: std::hash::Hash + Eq + Copy + std::fmt::Debug>(
    graphs: &'g mut Graphs<K>,
    key: K,
    name: &str,
    options: &SessionOptions,
    build: impl FnOnce() -> Vec<u8>,
) -> Result<&'g mut ModelSession, String> {
    match graphs.entry(key) {
        std::collections::hash_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
        std::collections::hash_map::Entry::Vacant(entry) => {
            let session =
                ModelSession::open_memory(&format!("{name} {key:?}"), &build(), options).map_err(|e| e.to_string())?;
            Ok(entry.insert(session))
        }
    }
}

fn run_error(what: &str) -> impl Fn(ort::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

impl GraphBackend {
    /// A backend whose graphs run like `model` does (same provider and GPU). Fails when the
    /// graphs cannot be built there.
    pub fn new(model: &ModelSession, options: &SessionOptions) -> Result<GraphBackend, RuntimeError> {
        let mut options = options.clone();
        options.provider = model.active_provider;
        let paste = ModelSession::open_memory("paste graph", &pixels::paste(), &options)?;
        if paste.active_provider != model.active_provider {
            return Err(RuntimeError::Session {
                path: "paste graph".into(),
                reason: format!(
                    "it runs on {} instead of {}",
                    paste.active_provider.nick(),
                    model.active_provider.nick()
                ),
            });
        }
        // The graphs' own session lends the allocator, so that it lives as long as the backend
        // whatever happens to the model's session.
        let allocator =
            paste.device_allocator().map_err(|reason| RuntimeError::Session { path: "paste graph".into(), reason })?;
        Ok(GraphBackend {
            options,
            allocator,
            warp: HashMap::new(),
            decode: HashMap::new(),
            paste: Some(paste),
            gather: None,
            masks: Vec::new(),
            letterbox: None,
            staging: Vec::new(),
            weights: Vec::new(),
            pasted: RgbImage::default(),
            region_staging: Vec::new(),
            facefusion: facefusion::Graphs::default(),
        })
    }

    /// Whether the tensors it allocates live on a GPU.
    pub fn on_gpu(&self) -> bool {
        self.paste.as_ref().is_some_and(|p| p.on_nvidia_gpu())
    }

    /// The element's CUDA stream, when the graphs compute on it (CUDA provider): uploads are
    /// then queued on it, before the runs that read them.
    fn own_stream(&self) -> Option<&ComputeStream> {
        self.options
            .compute_stream
            .as_ref()
            .filter(|_| self.on_gpu() && self.options.provider == ExecutionProvider::Cuda)
    }

    /// Waits for the work queued on the element's stream (none queued without one).
    pub fn finish_queued(&self) -> Result<(), String> {
        self.own_stream().map_or(Ok(()), ComputeStream::synchronize)
    }

    pub fn tensor(&self, shape: &[usize], element: TensorElementType) -> Result<DynTensor, String> {
        DynTensor::new(&self.allocator, element, shape.to_vec())
            .map_err(|e| format!("cannot allocate a {element:?} tensor {shape:?}: {e}"))
    }

    pub fn fill(&mut self, tensor: &mut DynTensor, values: &[f32]) -> Result<(), String> {
        let shape = tensor_shape(tensor);
        if shape.iter().product::<usize>() != values.len() {
            return Err(format!("cannot fill a tensor {shape:?} with {} values", values.len()));
        }
        let mut host = host_tensor(&shape, *tensor.data_type())?;
        fill_host_f32(&mut host, &mut self.staging, |slots| slots.copy_from_slice(values))?;
        host.copy_into(tensor).map_err(run_error("cannot upload the values"))
    }

    /// One gather-graph run and one copy to host memory for all `outputs`, into a host tensor
    /// kept for the next frames.
    pub fn read_outputs<R>(&mut self, outputs: &[DynTensor], read: impl FnOnce(&[&[f32]]) -> R) -> Result<R, String> {
        let first = outputs.first().ok_or("no model outputs to read")?;
        if outputs.iter().any(|o| *o.data_type() != *first.data_type()) {
            return Err("the model's outputs mix element types".to_string());
        }
        let built_for_these = |gather: &Gather| {
            gather.element == *first.data_type()
                && gather.shapes.len() == outputs.len()
                && gather
                    .shapes
                    .iter()
                    .zip(outputs)
                    .all(|(shape, o)| o.shape().iter().map(|&d| d.max(0) as usize).eq(shape.iter().copied()))
        };
        if self.gather.as_ref().is_none_or(|g| !built_for_these(g)) {
            let shapes: Vec<Vec<usize>> = outputs.iter().map(tensor_shape).collect();
            let bytes = pixels::gather(elem_of(*first.data_type())?, &shapes);
            let session =
                ModelSession::open_memory("gather graph", &bytes, &self.options).map_err(|e| e.to_string())?;
            let total = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
            let values = host_tensor(&[total], TensorElementType::Float32)?;
            self.gather = Some(Gather { element: *first.data_type(), shapes, session, values });
        }
        let Gather { shapes, session, values, .. } = self.gather.as_mut().ok_or("the gather graph is missing")?;
        let mut binding = session.binding()?;
        for (i, output) in outputs.iter().enumerate() {
            binding.bind_input(format!("o{i}"), output).map_err(run_error("cannot bind a model output"))?;
        }
        binding.bind_output("values", &mut *values).map_err(run_error("cannot bind the gathered values"))?;
        session.run(&binding)?;
        let all = read_host_f32(&*values, &mut self.staging)?;
        let mut heads = Vec::with_capacity(shapes.len());
        let mut rest = all;
        for shape in shapes.iter() {
            let (head, tail) =
                rest.split_at_checked(shape.iter().product()).ok_or("the gathered values are too few")?;
            heads.push(head);
            rest = tail;
        }
        Ok(read(&heads))
    }

    pub fn letterbox(&mut self, frame: &FrameView, norm: Normalization, input: &mut DynTensor) -> Result<f32, String> {
        let out = elem_of(*input.data_type())?;
        let (h, w) = match tensor_shape(input).as_slice() {
            [1, 3, h, w] => (*h, *w),
            other => return Err(format!("expected an image tensor [1,3,H,W], found {other:?}")),
        };
        let key = (PlanKey::of(frame, w, h), out, [norm.mean.to_bits(), norm.scale.to_bits()]);
        if self.letterbox.as_ref().is_none_or(|l| l.key != key) {
            // Dropped first: a stream that changes caps keeps one graph, not one per layout.
            self.letterbox = None;
            let plan = LetterboxPlan::new(frame, w, h)?;
            let bytes = pixels::letterbox(&plan, (norm.mean, norm.scale), out);
            let session =
                ModelSession::open_memory("letterbox graph", &bytes, &self.options).map_err(|e| e.to_string())?;
            let staging = host_tensor(&[plan.staged_len], TensorElementType::Uint8)?;
            let rows_on_gpu = match self.own_stream() {
                Some(_) => Some(self.tensor(&[plan.staged_len], TensorElementType::Uint8)?),
                None => None,
            };
            self.letterbox = Some(Letterbox { key, plan, session, staging, rows_on_gpu });
        }
        let stream = self.own_stream().cloned();
        let Letterbox { plan, session, staging, rows_on_gpu, .. } =
            self.letterbox.as_mut().ok_or("the letterbox graph is missing")?;
        // The CPU copies the rows the resize reads (a third of a 1080p frame); the resize runs
        // with the detector.
        let (_, bytes) = staging.try_extract_tensor_mut::<u8>().map_err(|e| e.to_string())?;
        plan.stage(frame, bytes)?;
        let rows = match (stream, rows_on_gpu.as_mut()) {
            (Some(stream), Some(rows_on_gpu)) => {
                stream.upload(bytes, rows_on_gpu)?;
                &*rows_on_gpu
            }
            // Bound from host memory, ONNX Runtime copies the rows at bind time.
            _ => &*staging,
        };
        let mut binding = session.binding()?;
        binding.bind_input("rows", rows).map_err(run_error("cannot bind the frame's rows"))?;
        binding.bind_output("blob", &mut *input).map_err(run_error("cannot bind the detector input"))?;
        session.run_queued(&binding)?;
        Ok(plan.det_scale)
    }

    pub fn load_region(&mut self, frame: &FrameView, rect: Rect) -> Result<FaceRegion, String> {
        let (w, h) = (rect.width.max(0) as usize, rect.height.max(0) as usize);
        if let Some(stream) = self.own_stream().cloned() {
            // Uploaded once, on the element's stream, for both graphs that read it (the warp,
            // then the paste).
            self.region_staging.resize(w * h * 3, 0);
            frame.read_region_into(rect, &mut self.region_staging);
            let mut device = self.tensor(&[1, h, w, 3], TensorElementType::Uint8)?;
            stream.upload(&self.region_staging, &mut device)?;
            return Ok(FaceRegion { rect, pixels: Some(device) });
        }
        let mut pixels = host_tensor(&[1, h, w, 3], TensorElementType::Uint8)?;
        let (_, bytes) = pixels.try_extract_tensor_mut::<u8>().map_err(|e| e.to_string())?;
        frame.read_region_into(rect, bytes);
        if !self.on_gpu() {
            return Ok(FaceRegion { rect, pixels: Some(pixels) });
        }
        // Uploaded once here: bound from host memory, the region would travel again for every
        // graph that reads it (the warp, then the paste).
        let mut device = self.tensor(&[1, h, w, 3], TensorElementType::Uint8)?;
        pixels.copy_into(&mut device).map_err(run_error("cannot upload the face region"))?;
        Ok(FaceRegion { rect, pixels: Some(device) })
    }

    pub fn warp_to_input(
        &mut self,
        region: &FaceRegion,
        m: &Affine,
        norm: Normalization,
        input: &mut DynTensor,
    ) -> Result<(), String> {
        let out = elem_of(*input.data_type())?;
        let size = match tensor_shape(input).as_slice() {
            [1, 3, h, w] if h == w => *w,
            other => return Err(format!("expected a square image tensor [1,3,S,S], found {other:?}")),
        };
        let pixels = region.pixels.as_ref().ok_or("the face region was not loaded")?;
        // Crop pixel → frame position, moved into the region's coordinates.
        let inv = m.invert().ok_or("degenerate face alignment")?;
        let [a, b, c, d, e, f] = inv.m;
        let (rx, ry) = (region.rect.x as f64, region.rect.y as f64);
        let params: [f64; WARP_PARAMS] = [a, b, c - rx, d, e, f - ry, norm.mean as f64, norm.scale as f64];
        let params = floats(&params.map(|v| v as f32))?;
        let session =
            graph(&mut self.warp, (out, size), "warp graph", &self.options, || pixels::warp_to_crop(out, size))?;
        let mut binding = session.binding()?;
        binding.bind_input("region", pixels).map_err(run_error("cannot bind the face region"))?;
        binding.bind_input("params", &params).map_err(run_error("cannot bind the warp"))?;
        binding.bind_output("crop", &mut *input).map_err(run_error("cannot bind the model input"))?;
        session.run_queued(&binding)?;
        Ok(())
    }

    pub fn decode_output(
        &mut self,
        output: &DynTensor,
        decode: OutputDecode,
        size: usize,
        crop: &mut Crop,
    ) -> Result<(), String> {
        let input = elem_of(*output.data_type())?;
        let n = match tensor_shape(output).as_slice() {
            [1, 3, h, w] if h == w && size > 0 && w.is_multiple_of(size) => *w,
            other => return Err(format!("model output is {other:?}, expected [1,3,S,S] with S a multiple of {size}")),
        };
        let kind = match decode {
            OutputDecode::UnitTruncated => Decode::UnitTruncated,
            OutputDecode::SignedRounded => Decode::SignedRounded,
        };
        let factor = (n / size) as i64;
        if crop.device.as_ref().is_none_or(|t| tensor_shape(t) != [1, 3, size, size]) {
            crop.device = Some(self.tensor(&[1, 3, size, size], TensorElementType::Float32)?);
        }
        let target = crop.device.as_mut().ok_or("the crop has no device tensor")?;
        let session = graph(&mut self.decode, (input, kind, factor), "decode graph", &self.options, || {
            pixels::decode(input, kind, factor)
        })?;
        let mut binding = session.binding()?;
        binding.bind_input("output", output).map_err(run_error("cannot bind the model output"))?;
        binding.bind_output("crop", &mut *target).map_err(run_error("cannot bind the crop"))?;
        ModelSession::bind_output_to_host(&mut binding, "bad")?;
        let outputs = session.run(&binding)?;
        let (_, bad) = outputs["bad"].try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
        if bad.first().is_none_or(|&b| b != 0.0) {
            return Err("model output holds a non-finite value".to_string());
        }
        crop.current = CropSide::Device;
        Ok(())
    }

    /// Brings the crop to host memory for a CPU-only step; the next paste uploads it again.
    pub fn crop_pixels<'c>(&mut self, crop: &'c mut Crop) -> Result<&'c mut RgbImage, String> {
        if crop.current == CropSide::Device {
            let device = crop.device.as_ref().ok_or("the crop has no device tensor")?;
            let shape = tensor_shape(device);
            let mut host = host_tensor(&shape, TensorElementType::Float32)?;
            device.copy_into(&mut host).map_err(run_error("cannot download the crop"))?;
            let (_, values) = host.try_extract_tensor::<f32>().map_err(|e| e.to_string())?;
            let size = shape.last().copied().unwrap_or(0);
            crop.image.reshape(size, size);
            let plane = size * size;
            for (i, px) in crop.image.data.chunks_exact_mut(3).enumerate() {
                for (c, b) in px.iter_mut().enumerate() {
                    *b = values[c * plane + i] as u8;
                }
            }
        }
        crop.current = CropSide::Host;
        Ok(&mut crop.image)
    }

    /// The crop in the models' memory, uploaded when the host copy is the current one.
    fn crop_tensor<'c>(&self, crop: &'c mut Crop) -> Result<&'c DynTensor, String> {
        if crop.current == CropSide::Host {
            let size = crop.image.width;
            let plane = size * size;
            let mut host = host_tensor(&[1, 3, size, size], TensorElementType::Float32)?;
            let (_, values) = host.try_extract_tensor_mut::<f32>().map_err(|e| e.to_string())?;
            for (i, px) in crop.image.data.chunks_exact(3).enumerate() {
                for (c, &b) in px.iter().enumerate() {
                    values[c * plane + i] = b as f32;
                }
            }
            if crop.device.as_ref().is_none_or(|t| tensor_shape(t) != [1, 3, size, size]) {
                crop.device = Some(self.tensor(&[1, 3, size, size], TensorElementType::Float32)?);
            }
            let device = crop.device.as_mut().ok_or("the crop has no device tensor")?;
            host.copy_into(&mut *device).map_err(run_error("cannot upload the crop"))?;
            crop.current = CropSide::Device;
        }
        crop.device.as_ref().ok_or_else(|| "the crop has no device tensor".to_string())
    }

    /// The index in `masks` of the mask in the models' memory, uploaded once per mask.
    fn mask_index(&mut self, mask: &CropMask) -> Result<usize, String> {
        if let Some(pos) = self.masks.iter().position(|(revision, _)| *revision == mask.revision()) {
            let entry = self.masks.remove(pos);
            self.masks.push(entry);
        } else {
            let side = mask.side();
            let host = Tensor::from_array((vec![1, 1, side, side], mask.weights().to_vec().into_boxed_slice()))
                .map_err(|e| e.to_string())?
                .upcast();
            let mut device = self.tensor(&[1, 1, side, side], TensorElementType::Float32)?;
            host.copy_into(&mut device).map_err(run_error("cannot upload the mask"))?;
            if self.masks.len() >= MASK_CACHE {
                self.masks.remove(0);
            }
            self.masks.push((mask.revision(), device));
        }
        self.masks.len().checked_sub(1).ok_or_else(|| "the mask cache is empty".to_string())
    }

    pub fn paste(
        &mut self,
        frame: &mut FrameViewMut,
        region: &FaceRegion,
        crop: &mut Crop,
        mask: &CropMask,
        m: &Affine,
        opacity: f32,
    ) -> Result<(), String> {
        let rect = region.rect;
        if rect.is_empty() || rect.clip_to(frame.width, frame.height) != rect {
            return Err(format!("the face region {rect:?} is not inside the {}×{} frame", frame.width, frame.height));
        }
        let pixels = region.pixels.as_ref().ok_or("the face region was not loaded")?;
        let size =
            crop.image.width.max(crop.device.as_ref().map_or(0, |t| tensor_shape(t).last().copied().unwrap_or(0)));
        // Region pixel → crop position.
        let [a, b, c, d, e, f] = m.m;
        let (rx, ry) = (rect.x as f64, rect.y as f64);
        let params: [f64; PASTE_PARAMS] = [
            a,
            b,
            a * rx + b * ry + c,
            d,
            e,
            d * rx + e * ry + f,
            size as f64,
            mask.side() as f64,
            mask.pad() as f64,
            opacity.clamp(0.0, 1.0) as f64,
        ];
        let params = floats(&params.map(|v| v as f32))?;
        let crop_tensor = self.crop_tensor(crop)?;
        let mask = self.mask_index(mask)?;
        let GraphBackend { masks, paste, pasted: host_region, weights, allocator, .. } = self;
        let session = paste.as_mut().ok_or("the paste graph is missing")?;
        let mut binding = session.binding()?;
        binding.bind_input("region", pixels).map_err(run_error("cannot bind the face region"))?;
        binding.bind_input("crop", crop_tensor).map_err(run_error("cannot bind the crop"))?;
        binding.bind_input("mask", &masks[mask].1).map_err(run_error("cannot bind the mask"))?;
        binding.bind_input("params", &params).map_err(run_error("cannot bind the paste"))?;
        ModelSession::bind_output_to_host(&mut binding, "pasted")?;
        // In packed RGB a pixel of weight 0 comes back with its own bytes (the blend keeps them
        // exactly), so the whole rectangle can be written and which pixels changed stays on the
        // GPU. In YUV it decides which chroma samples may change.
        let packed = frame.format.packed_layout().is_some();
        if packed {
            binding
                .bind_output_to_device("written", allocator.memory_info())
                .map_err(run_error("cannot bind the written pixels"))?;
        } else {
            ModelSession::bind_output_to_host(&mut binding, "written")?;
        }
        let outputs = session.run(&binding)?;
        let (_, pasted) = outputs["pasted"].try_extract_tensor::<u8>().map_err(|e| e.to_string())?;
        let (w, h) = (rect.width as usize, rect.height as usize);
        if pasted.len() != w * h * 3 {
            return Err("the paste graph returned a region of the wrong size".to_string());
        }
        host_region.reshape(w, h);
        host_region.data.copy_from_slice(pasted);
        if packed {
            frame.write_region(rect, host_region, None);
            return Ok(());
        }
        let (_, written) = outputs["written"].try_extract_tensor::<u8>().map_err(|e| e.to_string())?;
        if written.len() != w * h {
            return Err("the paste graph returned a region of the wrong size".to_string());
        }
        weights.clear();
        weights.extend(written.iter().map(|&v| f32::from(v)));
        frame.write_region(rect, host_region, Some(weights));
        Ok(())
    }
}
