// SPDX-License-Identifier: MPL-2.0
//! The pixel steps of the face pipeline behind one interface, so that the face layer
//! ([`crate::faces`]) and the models ([`crate::models`]) never know where pixels and tensors live:
//! letterbox and normalise a frame into a detector input, warp a face into a model input, turn a
//! model output into an 8-bit crop, and paste a crop back into the frame through a mask.
//!
//! Each element instance owns one [`Backend`], chosen at start. The CPU implementation
//! ([`cpu::CpuBackend`]) works on the mapped frame directly. The models get their input and output
//! tensors from the backend ([`Backend::tensor`]), so a backend that keeps them on a device can fill
//! and read them there without the model code changing.

pub mod cpu;
pub mod graph;

use ort::value::{DynTensor, TensorElementType};

use crate::vision::paste::CropMask;
use crate::vision::{Affine, FrameView, FrameViewMut, Rect, RgbImage};

pub use cpu::CpuBackend;
pub use graph::GraphBackend;

/// How 8-bit pixel values become model input values: `(v − mean) · scale`, per RGB channel.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Normalization {
    pub mean: f32,
    pub scale: f32,
}

/// How a model's output values become 8-bit pixel values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutputDecode {
    /// Values in [0, 1] (inswapper): `clip(255·x, 0, 255)` truncated, as the reference's
    /// `astype(np.uint8)`.
    UnitTruncated,
    /// Values in [−1, 1] (face restorers): `(clip(y, −1, 1) + 1) · 127.5` rounded; an output
    /// larger than the crop by an integer factor (GFPGAN ×2 exports) is box-averaged down first,
    /// which is what an area resize by an integer factor does.
    SignedRounded,
}

/// The frame rectangle one face's steps read and write, as the backend holds it.
#[derive(Debug)]
pub struct FaceRegion {
    pub rect: Rect,
    /// The rectangle's pixels (8-bit RGB `[1, h, w, 3]`) for a backend that hands them to
    /// ONNX Runtime; the CPU reads the frame itself.
    pixels: Option<DynTensor>,
}

/// Which copy of a [`Crop`] is current.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum CropSide {
    #[default]
    Host,
    Device,
}

/// A model crop in 8-bit RGB (a swapped or restored face), where the backend keeps it: packed RGB
/// in host memory, or (graph backend) planar float values in the models' memory.
#[derive(Debug, Default)]
pub struct Crop {
    image: RgbImage,
    device: Option<DynTensor>,
    current: CropSide,
}

impl Crop {
    /// Side of the (square) crop; 0 before anything was decoded into it.
    pub fn size(&self) -> usize {
        match (&self.device, self.current) {
            (Some(t), CropSide::Device) => crate::runtime::tensor_shape(t).last().copied().unwrap_or(0),
            _ => self.image.width,
        }
    }
}

/// The pixel steps, implemented once per kind of hardware. One lives in each element instance
/// for its whole run, so the size difference between the variants does not matter.
#[allow(clippy::large_enum_variant)]
pub enum Backend {
    Cpu(CpuBackend),
    Graph(GraphBackend),
}

impl Backend {
    /// The CPU backend.
    pub fn cpu() -> Backend {
        Backend::Cpu(CpuBackend::default())
    }

    /// What runs the pixel steps, for logs and the elements' reports.
    pub fn name(&self) -> &'static str {
        match self {
            Backend::Cpu(_) => "cpu",
            Backend::Graph(_) => "onnx-runtime",
        }
    }

    /// Whether the pixel steps run as ONNX Runtime graphs (on the models' provider).
    pub fn is_graph(&self) -> bool {
        matches!(self, Backend::Graph(_))
    }

    /// Whether the backend keeps the models' tensors in GPU memory.
    pub fn on_gpu(&self) -> bool {
        match self {
            Backend::Cpu(_) => false,
            Backend::Graph(b) => b.on_gpu(),
        }
    }

    /// A tensor of `shape` where this backend's steps and the models meet (bound to the model's
    /// session, filled or read by the steps below).
    pub fn tensor(&self, shape: &[usize], element: TensorElementType) -> Result<DynTensor, String> {
        match self {
            Backend::Cpu(b) => b.tensor(shape, element),
            Backend::Graph(b) => b.tensor(shape, element),
        }
    }

    /// Writes `values` into `tensor` (a tensor from [`Backend::tensor`]), wherever it lives.
    pub fn fill(&mut self, tensor: &mut DynTensor, values: &[f32]) -> Result<(), String> {
        match self {
            Backend::Cpu(b) => b.fill(tensor, values),
            Backend::Graph(b) => b.fill(tensor, values),
        }
    }

    /// Hands the values of model outputs (tensors from [`Backend::tensor`]), as float32 in output
    /// order, to `read`; fails on a non-finite value (a model that produced NaN must not move
    /// faces).
    pub fn read_outputs<R>(&mut self, outputs: &[DynTensor], read: impl FnOnce(&[&[f32]]) -> R) -> Result<R, String> {
        match self {
            Backend::Cpu(b) => b.read_outputs(outputs, read),
            Backend::Graph(b) => b.read_outputs(outputs, read),
        }
    }

    /// Letterboxes `frame` into `input` (`[1, 3, H, W]`): scaled to fit keeping its aspect
    /// (InsightFace's size rule), at the top-left, zero padding, normalised. Returns the scale
    /// from frame to input (`det_scale`).
    pub fn letterbox(&mut self, frame: &FrameView, norm: Normalization, input: &mut DynTensor) -> Result<f32, String> {
        match self {
            Backend::Cpu(b) => b.letterbox(frame, norm, input),
            Backend::Graph(b) => b.letterbox(frame, norm, input),
        }
    }

    /// Waits until the work this backend queued on the GPU is done (for a model run elsewhere,
    /// such as a shared [`crate::runtime::Batcher`], that reads what it wrote).
    pub fn finish_queued(&self) -> Result<(), String> {
        match self {
            Backend::Cpu(_) => Ok(()),
            Backend::Graph(b) => b.finish_queued(),
        }
    }

    /// Prepares the frame rectangle `rect` for one face's warps and paste-back.
    pub fn load_region(&mut self, frame: &FrameView, rect: Rect) -> Result<FaceRegion, String> {
        match self {
            Backend::Cpu(b) => b.load_region(frame, rect),
            Backend::Graph(b) => b.load_region(frame, rect),
        }
    }

    /// Warps the face aligned by `m` (frame → crop) into the square model input `input`
    /// (`[1, 3, S, S]`), normalised. The frame pixels it reads lie in `region`.
    pub fn warp_to_input(
        &mut self,
        frame: &FrameView,
        region: &FaceRegion,
        m: &Affine,
        norm: Normalization,
        input: &mut DynTensor,
    ) -> Result<(), String> {
        match self {
            Backend::Cpu(b) => b.warp_to_input(frame, region, m, norm, input),
            Backend::Graph(b) => b.warp_to_input(region, m, norm, input),
        }
    }

    /// Turns the model output `output` (`[1, 3, O, O]`) into the `size × size` crop `crop`.
    pub fn decode_output(
        &mut self,
        output: &DynTensor,
        decode: OutputDecode,
        size: usize,
        crop: &mut Crop,
    ) -> Result<(), String> {
        match self {
            Backend::Cpu(b) => b.decode_output(output, decode, size, crop),
            Backend::Graph(b) => b.decode_output(output, decode, size, crop),
        }
    }

    /// The crop's pixels for a step that only the CPU does (colour transfer, sharpening); what is
    /// changed there is what the next paste uses.
    pub fn crop_pixels<'c>(&mut self, crop: &'c mut Crop) -> Result<&'c mut RgbImage, String> {
        match self {
            Backend::Cpu(_) => Ok(&mut crop.image),
            Backend::Graph(b) => b.crop_pixels(crop),
        }
    }

    /// Pastes `crop` (aligned by `m`) back into `frame` through `mask` at `opacity`, within
    /// `region`; pixels of weight 0 keep their bytes exactly.
    #[allow(clippy::too_many_arguments)]
    pub fn paste(
        &mut self,
        frame: &mut FrameViewMut,
        region: &FaceRegion,
        crop: &mut Crop,
        mask: &CropMask,
        m: &Affine,
        opacity: f32,
    ) -> Result<(), String> {
        match self {
            Backend::Cpu(b) => b.paste(frame, region, crop, mask, m, opacity),
            Backend::Graph(b) => b.paste(frame, region, crop, mask, m, opacity),
        }
    }
}
