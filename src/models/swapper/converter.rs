// SPDX-License-Identifier: MPL-2.0
//! The embedding converters FaceFusion pairs with simswap, ghost and hififace
//! (`crossface_simswap`, `crossface_ghost`, `crossface_hififace`): a raw ArcFace embedding in,
//! the swapper's identity space out. Input `input` `[1,512]`, output `output` `[1,512]`.

use std::path::Path;

use ort::session::IoBinding;
use ort::value::DynTensor;

use crate::face::EMBEDDING_LEN;
use crate::models::float_type;
use crate::runtime::{ModelIo, ModelSession, RuntimeError, SessionOptions, fill_host_f32, host_tensor, read_host_f32};

/// The property that names the converter file.
pub const PROPERTY: &str = "converter-model";

pub const CONTRACT: &str = "an embedding converter (crossface_simswap, crossface_ghost or crossface_hififace): \
    input 'input' [1,512] and one output [1,512], float32 or float16";

pub fn check(io: &ModelIo) -> Result<(), String> {
    let vector =
        |shape: &[i64]| shape.len() == 2 && (shape[0] == 1 || shape[0] < 0) && shape[1] == EMBEDDING_LEN as i64;
    let ok = match (io.inputs.as_slice(), io.outputs.as_slice()) {
        ([input], [output]) => {
            input.name == "input"
                && input.is_float()
                && vector(&input.shape)
                && output.is_float()
                && vector(&output.shape)
        }
        _ => false,
    };
    ok.then_some(()).ok_or_else(|| CONTRACT.to_string())
}

/// An opened converter, its tensors in host memory (it runs once per source identity).
pub struct Converter {
    model: ModelSession,
    bound: Option<(IoBinding, DynTensor)>,
    scratch: Vec<f32>,
}

impl Converter {
    pub fn open(path: &Path, options: &SessionOptions) -> Result<Converter, RuntimeError> {
        let model = ModelSession::open(path, PROPERTY, options, check)?;
        Ok(Converter { model, bound: None, scratch: Vec::new() })
    }

    pub fn model(&self) -> &ModelSession {
        &self.model
    }

    /// The converted embedding of a raw ArcFace embedding (512 values).
    pub fn convert(&mut self, embedding: &[f32]) -> Result<Vec<f32>, String> {
        if embedding.len() != EMBEDDING_LEN {
            return Err(format!("embedding has {} values, expected {EMBEDDING_LEN}", embedding.len()));
        }
        if self.bound.is_none() {
            let input = host_tensor(&[1, EMBEDDING_LEN], float_type(self.model.io.inputs.first()))?;
            let mut binding = self.model.binding()?;
            let output = self.model.io.outputs.first().map(|o| o.name.clone()).unwrap_or_default();
            ModelSession::bind_output_to_host(&mut binding, &output)?;
            self.bound = Some((binding, input));
        }
        let Converter { model, bound: Some((binding, input)), scratch } = self else {
            return Err(crate::models::NOT_BOUND.to_string());
        };
        fill_host_f32(input, scratch, |values| values.copy_from_slice(embedding))?;
        binding.bind_input("input", &*input).map_err(|e| format!("cannot bind input 'input': {e}"))?;
        let outputs = model.run(binding)?;
        let values = read_host_f32(&outputs[0], scratch)?;
        if values.len() != EMBEDDING_LEN {
            return Err(format!("the converter returned {} values, expected {EMBEDDING_LEN}", values.len()));
        }
        Ok(values.to_vec())
    }
}
