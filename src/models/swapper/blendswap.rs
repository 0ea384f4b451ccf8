// SPDX-License-Identifier: MPL-2.0
//! BlendSwap (mapooon, 256 px): FFHQ-512 template, target and output RGB `x / 255` / [0, 1];
//! the identity is the source face's picture, cropped at 112 px on the ArcFace-112 v2 template.

use crate::vision::templates::{ARCFACE_112_V2, FFHQ_512};

use super::{FamilySpec, OutputSpace, SourceKind, SwapperFamilyChoice};

pub const FAMILY: FamilySpec = FamilySpec {
    name: "blendswap",
    choice: SwapperFamilyChoice::Blendswap,
    models: &["blendswap_256"],
    file_hint: "blendswap",
    template: &FFHQ_512,
    size: 256,
    mean: [0.0; 3],
    std: [1.0; 3],
    output: OutputSpace::Unit,
    // FaceFusion lists 384 too, which does not split into whole 256-px tiles (its
    // `implode_pixel_boost` raises there).
    boost_sizes: &[256, 512, 768, 1024],
    source: SourceKind::Image { template: &ARCFACE_112_V2, size: 112 },
    converter: None,
    extra_output: None,
};
