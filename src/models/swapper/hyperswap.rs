// SPDX-License-Identifier: MPL-2.0
//! HyperSwap 1a/1b/1c (FaceFusion, 256 px; FaceFusion's default swapper): ArcFace-128 template,
//! target and output in [−1, 1], identity the source's normalised ArcFace embedding. The exports
//! have a second output `mask` (the model's own face mask), which FaceFusion ignores.

use crate::vision::templates::ARCFACE_128;

use super::{FamilySpec, OutputSpace, SourceKind, SwapperFamilyChoice};

pub const FAMILY: FamilySpec = FamilySpec {
    name: "hyperswap",
    choice: SwapperFamilyChoice::Hyperswap,
    models: &["hyperswap_1a_256", "hyperswap_1b_256", "hyperswap_1c_256"],
    file_hint: "hyperswap",
    template: &ARCFACE_128,
    size: 256,
    mean: [0.5; 3],
    std: [0.5; 3],
    output: OutputSpace::Denormalized,
    boost_sizes: &[256, 512, 768, 1024],
    source: SourceKind::Normalized,
    converter: None,
    extra_output: Some("mask"),
};
