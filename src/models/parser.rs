// SPDX-License-Identifier: MPL-2.0
//! The region mask's model: a BiSeNet face parser trained on CelebAMask-HQ (19 classes), as
//! FaceFusion uses it (`bisenet_resnet_34.onnx`, `bisenet_resnet_18.onnx`, exported by yakhyo's
//! face-parsing). FaceFusion 3.8.1 `face_masker.py`: the swapped crop resized to 512 × 512, RGB
//! with ImageNet normalisation NCHW in, `[19,512,512]` class scores out.

use std::path::Path;

use ort::value::DynTensor;

use crate::runtime::{ModelIo, ModelSession, RuntimeError, SessionOptions};
use crate::vision::filter::BlurScratch;
use crate::vision::masks::{PARSER_CLASSES, PARSER_SIZE, Regions, parser_input, region_from_logits};

use super::{DeviceIo, HostIo};
use crate::backend::Backend;

pub const CONTRACT: &str = "a BiSeNet face parser with the 19 CelebAMask-HQ classes \
    (bisenet_resnet_34.onnx): float input [N,3,512,512] and float output [N,19,512,512]";

pub fn check(io: &ModelIo) -> Result<(), String> {
    let side = PARSER_SIZE as i64;
    let ok = match (io.inputs.as_slice(), io.outputs.as_slice()) {
        ([input], [output]) => {
            input.is_float()
                && input.shape.len() == 4
                && [3, side, side].iter().enumerate().all(|(i, &d)| input.dim_accepts(i + 1, d))
                && output.is_float()
                && output.shape.len() == 4
                && [PARSER_CLASSES as i64, side, side].iter().enumerate().all(|(i, &d)| output.dim_accepts(i + 1, d))
        }
        _ => false,
    };
    ok.then_some(()).ok_or_else(|| CONTRACT.to_string())
}

pub struct Parser {
    model: ModelSession,
    host: HostIo,
    resized: Vec<f32>,
    blur: BlurScratch,
    device: Option<DeviceIo>,
}

impl Parser {
    /// Opens a face parser; a model with another number of classes than 19 is refused with
    /// [`RuntimeError::WrongKind`] (its message shows the classes the file declares).
    pub fn open(path: &Path, property: &'static str, options: &SessionOptions) -> Result<Self, RuntimeError> {
        let model = ModelSession::open(path, property, options, check)?;
        Ok(Parser { model, host: HostIo::default(), resized: Vec::new(), blur: BlurScratch::default(), device: None })
    }

    pub fn model(&self) -> &ModelSession {
        &self.model
    }

    /// The parser's input tensor on `backend` (`[1, 3, 512, 512]`), where the graph backend
    /// writes it from the swapped crop; run it with [`Parser::run_device`].
    pub fn device_input(&mut self, backend: &Backend) -> Result<&mut DynTensor, String> {
        if self.device.is_none() {
            let (n, classes) = (PARSER_SIZE, PARSER_CLASSES);
            self.device = Some(DeviceIo::new(&self.model, backend, &[1, 3, n, n], &[1, classes, n, n])?);
        }
        let device = self.device.as_mut().ok_or_else(|| super::NOT_BOUND.to_string())?;
        Ok(device.input())
    }

    /// Runs the parser on [`Parser::device_input`]; returns its logits (`[1, 19, 512, 512]`)
    /// where the backend keeps them.
    pub fn run_device(&mut self, backend: &Backend) -> Result<&DynTensor, String> {
        let device = self.device.as_mut().ok_or_else(|| super::NOT_BOUND.to_string())?;
        device.run(&mut self.model, backend)
    }

    /// 1 for each class the region mask keeps, 0 for the others.
    pub fn selected_classes(regions: &Regions) -> Vec<f32> {
        (0..PARSER_CLASSES).map(|c| if regions.contains_class(c) { 1.0 } else { 0.0 }).collect()
    }

    /// FaceFusion's region mask of a swapped face crop (`side × side × 3` RGB `f32` in
    /// `[0, 255]`): `side × side` values in `[0, 1]`, 1 over the pixels whose most likely class
    /// is one of `regions`.
    pub fn mask(&mut self, swapped: &[f32], side: usize, regions: &Regions) -> Result<Vec<f32>, String> {
        if side == 0 || swapped.len() != side * side * 3 {
            return Err(format!(
                "the face parser needs a {side}×{side} RGB crop ({} values), got {} values",
                side * side * 3,
                swapped.len()
            ));
        }
        let Parser { model, host, resized, blur, .. } = self;
        let fill = |values: &mut [f32]| parser_input(swapped, side, resized, values);
        host.run(model, &[1, 3, PARSER_SIZE, PARSER_SIZE], fill, |logits| {
            let expected = PARSER_CLASSES * PARSER_SIZE * PARSER_SIZE;
            if logits.len() != expected {
                // A model whose class axis is symbolic only shows its count here.
                return Err(format!(
                    "face parser output has {} values, expected {expected} (19 classes × 512 × 512): {} classes",
                    logits.len(),
                    logits.len() as f64 / (PARSER_SIZE * PARSER_SIZE) as f64
                ));
            }
            Ok(region_from_logits(logits, PARSER_CLASSES, regions, side, blur))
        })
    }
}
