// SPDX-License-Identifier: MPL-2.0
//! UniFace (xc-csc101, 256 px): FFHQ-512 template, target and output in [−1, 1]; the identity is
//! the source face's picture, cropped at 256 px on the same FFHQ-512 template (taken as RGB
//! `x / 255`, without the target's mean and std).

use crate::vision::templates::FFHQ_512;

use super::{FamilySpec, OutputSpace, SourceKind, SwapperFamilyChoice};

pub const FAMILY: FamilySpec = FamilySpec {
    name: "uniface",
    choice: SwapperFamilyChoice::Uniface,
    models: &["uniface_256"],
    file_hint: "uniface",
    template: &FFHQ_512,
    size: 256,
    mean: [0.5; 3],
    std: [0.5; 3],
    output: OutputSpace::Denormalized,
    boost_sizes: &[256, 512, 768, 1024],
    source: SourceKind::Image { template: &FFHQ_512, size: 256 },
    converter: None,
    extra_output: None,
};
