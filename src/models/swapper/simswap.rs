// SPDX-License-Identifier: MPL-2.0
//! SimSwap (neuralchen): `simswap_256` (ImageNet-normalised input) and `simswap_unofficial_512`
//! (RGB `x / 255` input), both on the ArcFace-112 v1 template, output taken as [0, 1] (FaceFusion
//! does not de-normalise simswap_256's output), identity the normalised output of the
//! `crossface_simswap` converter.

use crate::vision::templates::ARCFACE_112_V1;

use super::{FamilySpec, OutputSpace, SourceKind, SwapperFamilyChoice};

pub const FAMILY_256: FamilySpec = FamilySpec {
    name: "simswap",
    choice: SwapperFamilyChoice::Simswap,
    models: &["simswap_256"],
    file_hint: "simswap",
    template: &ARCFACE_112_V1,
    size: 256,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    output: OutputSpace::Unit,
    boost_sizes: &[256, 512, 768, 1024],
    source: SourceKind::ConverterNormalized,
    converter: Some("crossface_simswap.onnx"),
    extra_output: None,
};

pub const FAMILY_UNOFFICIAL_512: FamilySpec = FamilySpec {
    name: "simswap_unofficial_512",
    choice: SwapperFamilyChoice::SimswapUnofficial512,
    models: &["simswap_unofficial_512"],
    file_hint: "simswap",
    template: &ARCFACE_112_V1,
    size: 512,
    mean: [0.0; 3],
    std: [1.0; 3],
    output: OutputSpace::Unit,
    // FaceFusion lists 768 too, but its pixel boost needs whole tiles: at 768 its
    // `implode_pixel_boost` reshapes a 768² crop into 1 × 512² tiles and raises.
    boost_sizes: &[512, 1024],
    source: SourceKind::ConverterNormalized,
    converter: Some("crossface_simswap.onnx"),
    extra_output: None,
};
