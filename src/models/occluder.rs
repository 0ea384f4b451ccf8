// SPDX-License-Identifier: MPL-2.0
//! The occlusion mask's model: DeepFaceLab's XSeg as FaceFusion exports it (`xseg_1.onnx`,
//! `xseg_2`, `xseg_3`), which marks the pixels of a face crop that belong to the face (1) and
//! those a hand, microphone, hair or glasses cover (0). FaceFusion 3.8.1 `face_masker.py`:
//! the pre-swap crop resized to 256 × 256, BGR `/ 255` NHWC in, a 256 × 256 map out.

use std::path::Path;

use ort::value::DynTensor;

use crate::runtime::{ModelIo, ModelSession, RuntimeError, SessionOptions};
use crate::vision::RgbImage;
use crate::vision::filter::BlurScratch;
use crate::vision::masks::{OCCLUDER_SIZE, occluder_input, occlusion_from_output};

use super::{DeviceIo, HostIo};
use crate::backend::Backend;

pub const CONTRACT: &str = "an XSeg occluder (xseg_1.onnx): float input [N,256,256,3] (NHWC) and \
    float output [N,256,256,1] or [N,256,256]";

pub fn check(io: &ModelIo) -> Result<(), String> {
    let side = OCCLUDER_SIZE as i64;
    let ok = match (io.inputs.as_slice(), io.outputs.as_slice()) {
        ([input], [output]) => {
            input.is_float()
                && input.shape.len() == 4
                && [side, side, 3].iter().enumerate().all(|(i, &d)| input.dim_accepts(i + 1, d))
                && output.is_float()
                && match output.shape.len() {
                    4 => [side, side, 1].iter().enumerate().all(|(i, &d)| output.dim_accepts(i + 1, d)),
                    3 => output.dim_accepts(1, side) && output.dim_accepts(2, side),
                    _ => false,
                }
        }
        _ => false,
    };
    ok.then_some(()).ok_or_else(|| CONTRACT.to_string())
}

pub struct Occluder {
    model: ModelSession,
    host: HostIo,
    resized: Vec<u8>,
    blur: BlurScratch,
    device: Option<DeviceIo>,
}

impl Occluder {
    pub fn open(path: &Path, property: &'static str, options: &SessionOptions) -> Result<Self, RuntimeError> {
        let model = ModelSession::open(path, property, options, check)?;
        Ok(Occluder { model, host: HostIo::default(), resized: Vec::new(), blur: BlurScratch::default(), device: None })
    }

    pub fn model(&self) -> &ModelSession {
        &self.model
    }

    /// The occluder's input tensor on `backend` (`[1, 256, 256, 3]`), where the graph backend's
    /// tiles graph writes it; run it with [`Occluder::run_device`].
    pub fn device_input(&mut self, backend: &Backend) -> Result<&mut DynTensor, String> {
        if self.device.is_none() {
            let n = OCCLUDER_SIZE;
            let output: &[usize] = if self.model.io.outputs.first().is_some_and(|o| o.shape.len() == 3) {
                &[1, n, n]
            } else {
                &[1, n, n, 1]
            };
            self.device = Some(DeviceIo::new(&self.model, backend, &[1, n, n, 3], output)?);
        }
        let device = self.device.as_mut().ok_or_else(|| super::NOT_BOUND.to_string())?;
        Ok(device.input())
    }

    /// Runs the occluder on [`Occluder::device_input`]; returns its raw output where the backend
    /// keeps it (the graph backend makes the mask from it).
    pub fn run_device(&mut self, backend: &Backend) -> Result<&DynTensor, String> {
        let device = self.device.as_mut().ok_or_else(|| super::NOT_BOUND.to_string())?;
        device.run(&mut self.model, backend)
    }

    /// FaceFusion's occlusion mask of a square face crop taken before the swap (RGB, at the
    /// working size): `side × side` values in `[0, 1]`, 0 where something covers the face.
    pub fn mask(&mut self, crop_rgb8: &RgbImage) -> Result<Vec<f32>, String> {
        let side = crop_rgb8.width;
        if side == 0 || crop_rgb8.height != side || crop_rgb8.data.len() != side * side * 3 {
            return Err(format!("the occluder needs a square RGB crop, got {}×{}", crop_rgb8.width, crop_rgb8.height));
        }
        let Occluder { model, host, resized, blur, .. } = self;
        let fill = |values: &mut [f32]| occluder_input(crop_rgb8, resized, values);
        host.run(model, &[1, OCCLUDER_SIZE, OCCLUDER_SIZE, 3], fill, |values| {
            let expected = OCCLUDER_SIZE * OCCLUDER_SIZE;
            if values.len() != expected {
                return Err(format!("occluder output has {} values, expected {expected} (256×256)", values.len()));
            }
            Ok(occlusion_from_output(values, side, blur))
        })
    }
}
