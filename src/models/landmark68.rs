// SPDX-License-Identifier: MPL-2.0
//! FaceFusion's `fan_68_5` (`fan_68_5.onnx`): 68 face landmarks regressed from the five the
//! detector gives, which FaceFusion's area masks are drawn from. FaceFusion 3.8.1
//! `face_landmarker.py`: the five points moved into the unit FFHQ frame (the similarity onto
//! the `ffhq_512` template at size 1), `[1,5,2]` in, `[1,68,2]` out, moved back.

use std::path::Path;

use crate::runtime::{ModelIo, ModelSession, RuntimeError, SessionOptions};
use crate::vision::align::{ffhq_template, umeyama};

use super::HostIo;

pub const POINTS: usize = 68;

pub const CONTRACT: &str = "a 5-to-68 landmark model (fan_68_5.onnx): float input [N,5,2] and float \
    output [N,68,2]";

pub fn check(io: &ModelIo) -> Result<(), String> {
    let ok = match (io.inputs.as_slice(), io.outputs.as_slice()) {
        ([input], [output]) => {
            input.is_float()
                && input.shape.len() == 3
                && input.dim_accepts(1, 5)
                && input.dim_accepts(2, 2)
                && output.is_float()
                && output.shape.len() == 3
                && output.dim_accepts(1, POINTS as i64)
                && output.dim_accepts(2, 2)
        }
        _ => false,
    };
    ok.then_some(()).ok_or_else(|| CONTRACT.to_string())
}

pub struct Landmark68 {
    model: ModelSession,
    host: HostIo,
}

impl Landmark68 {
    pub fn open(path: &Path, property: &'static str, options: &SessionOptions) -> Result<Self, RuntimeError> {
        let model = ModelSession::open(path, property, options, check)?;
        Ok(Landmark68 { model, host: HostIo::default() })
    }

    pub fn model(&self) -> &ModelSession {
        &self.model
    }

    /// The 68 landmarks (frame coordinates) of the face with the five landmarks `five` (frame
    /// coordinates: eyes, nose, mouth corners).
    pub fn landmarks(&mut self, five: &[[f32; 2]; 5]) -> Result<[[f32; 2]; POINTS], String> {
        let unit = ffhq_template(1);
        let m = umeyama(&five.map(|[x, y]| [x as f64, y as f64]), &unit).ok_or("degenerate face landmarks")?;
        let inverse = m.invert().ok_or("degenerate face landmarks")?;
        let fill = |values: &mut [f32]| {
            for (v, &[x, y]) in values.chunks_exact_mut(2).zip(five) {
                let (ux, uy) = m.apply(x as f64, y as f64);
                (v[0], v[1]) = (ux as f32, uy as f32);
            }
        };
        self.host.run(&mut self.model, &[1, 5, 2], fill, |values| {
            if values.len() != 2 * POINTS {
                return Err(format!("landmark output has {} values, expected {}", values.len(), 2 * POINTS));
            }
            let mut points = [[0.0f32; 2]; POINTS];
            for (p, v) in points.iter_mut().zip(values.chunks_exact(2)) {
                let (x, y) = inverse.apply(v[0] as f64, v[1] as f64);
                *p = [x as f32, y as f32];
            }
            Ok(points)
        })
    }
}
