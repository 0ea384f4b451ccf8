// SPDX-License-Identifier: MPL-2.0
//! GHOST 1/2/3 (ai-forever, 256 px): ArcFace-112 v1 template, target and output in [−1, 1],
//! identity the raw (not normalised) output of the `crossface_ghost` converter.

use crate::vision::templates::ARCFACE_112_V1;

use super::{FamilySpec, OutputSpace, SourceKind, SwapperFamilyChoice};

pub const FAMILY: FamilySpec = FamilySpec {
    name: "ghost",
    choice: SwapperFamilyChoice::Ghost,
    models: &["ghost_1_256", "ghost_2_256", "ghost_3_256"],
    file_hint: "ghost",
    template: &ARCFACE_112_V1,
    size: 256,
    mean: [0.5; 3],
    std: [0.5; 3],
    output: OutputSpace::Denormalized,
    boost_sizes: &[256, 512, 768, 1024],
    source: SourceKind::ConverterRaw,
    converter: Some("crossface_ghost.onnx"),
    extra_output: None,
};
