// SPDX-License-Identifier: MPL-2.0
//! HifiFace, unofficial 256-px export (GuijiAI): MTCNN-512 template, target and output in
//! [−1, 1], identity the normalised output of the `crossface_hififace` converter.

use crate::vision::templates::MTCNN_512;

use super::{FamilySpec, OutputSpace, SourceKind, SwapperFamilyChoice};

pub const FAMILY: FamilySpec = FamilySpec {
    name: "hififace",
    choice: SwapperFamilyChoice::Hififace,
    models: &["hififace_unofficial_256"],
    file_hint: "hififace",
    template: &MTCNN_512,
    size: 256,
    mean: [0.5; 3],
    std: [0.5; 3],
    output: OutputSpace::Denormalized,
    boost_sizes: &[256, 512, 768, 1024],
    source: SourceKind::ConverterNormalized,
    converter: Some("crossface_hififace.onnx"),
    extra_output: None,
};
