// SPDX-License-Identifier: MPL-2.0
//! What a swapper family is (FaceFusion 3.8.1, `processors/modules/face_swapper/core.py`): its
//! alignment template and model size, the normalisation of the target crop and of the output,
//! the pixel-boost sizes it allows and how its identity input is made; and how a model file is
//! recognised as one of them.

use crate::face::EMBEDDING_LEN;
use crate::runtime::{ModelIo, TensorSpec};
use crate::vision::templates::Template;

use super::FAMILIES;

/// The `swapper-family` choice: `Auto` recognises the family from the model (see [`recognise`]),
/// the others say which one it is where the model's inputs and outputs cannot tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SwapperFamilyChoice {
    #[default]
    Auto,
    Inswapper,
    Hyperswap,
    Simswap,
    SimswapUnofficial512,
    Ghost,
    Hififace,
}

impl SwapperFamilyChoice {
    pub const ALL: [SwapperFamilyChoice; 7] = [
        SwapperFamilyChoice::Auto,
        SwapperFamilyChoice::Inswapper,
        SwapperFamilyChoice::Hyperswap,
        SwapperFamilyChoice::Simswap,
        SwapperFamilyChoice::SimswapUnofficial512,
        SwapperFamilyChoice::Ghost,
        SwapperFamilyChoice::Hififace,
    ];

    /// The choice's name on a gst-launch line.
    pub fn nick(self) -> &'static str {
        match self {
            SwapperFamilyChoice::Auto => "auto",
            SwapperFamilyChoice::Inswapper => "inswapper",
            SwapperFamilyChoice::Hyperswap => "hyperswap",
            SwapperFamilyChoice::Simswap => "simswap",
            SwapperFamilyChoice::SimswapUnofficial512 => "simswap-unofficial-512",
            SwapperFamilyChoice::Ghost => "ghost",
            SwapperFamilyChoice::Hififace => "hififace",
        }
    }

    pub fn from_nick(nick: &str) -> Option<SwapperFamilyChoice> {
        Self::ALL.into_iter().find(|c| c.nick() == nick)
    }

    /// The family chosen; `None` for `Auto`.
    pub fn spec(self) -> Option<&'static FamilySpec> {
        FAMILIES.into_iter().find(|f| f.choice == self)
    }
}

/// How a family's `source` input is made from the source face's raw ArcFace embedding `e`
/// (FaceFusion's `prepare_source_embedding`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SourceKind {
    /// inswapper: `e · emap / ‖e‖`, `emap` the model file's last initializer (512×512); not
    /// renormalised after the product (InsightFace and Deep-Live-Cam renormalise).
    Emap,
    /// hyperswap: `e / ‖e‖`.
    Normalized,
    /// ghost: the converter's output `c = converter(e)` as it is.
    ConverterRaw,
    /// simswap, hififace: `c / ‖c‖`.
    ConverterNormalized,
}

/// What the model's output means (FaceFusion's `normalize_crop_frame`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputSpace {
    /// Taken as RGB in [0, 1] (inswapper, both simswaps, even simswap_256 whose input is
    /// ImageNet-normalised).
    Unit,
    /// De-normalised with the input's mean and std: `y · std + mean` (ghost, hififace, hyperswap).
    Denormalized,
}

/// One swapper family.
#[derive(Debug, PartialEq)]
pub struct FamilySpec {
    /// FaceFusion's name for the family's models, without the variant (`hyperswap`, not
    /// `hyperswap_1a_256`).
    pub name: &'static str,
    pub choice: SwapperFamilyChoice,
    /// FaceFusion's model names of the family (files `<name>.onnx`), the first one FaceFusion's
    /// default among them.
    pub models: &'static [&'static str],
    /// What the file name of one of the family's exports contains (auto recognition).
    pub file_hint: &'static str,
    /// The alignment template, on the unit square (scaled to the crop or pixel-boost size).
    pub template: &'static Template,
    /// Side S of the model's target input and output.
    pub size: usize,
    /// Per RGB channel: the target input is `(x / 255 − mean) / std`.
    pub mean: [f64; 3],
    pub std: [f64; 3],
    pub output: OutputSpace,
    /// The pixel-boost sizes FaceFusion allows (`choices.py`), the model size first.
    pub boost_sizes: &'static [usize],
    pub source: SourceKind,
    /// The file name of the embedding converter FaceFusion pairs with the family, for the
    /// families whose source needs one.
    pub converter: Option<&'static str>,
    /// An output after the swapped face that only this family's exports have (hyperswap's
    /// `mask`, which FaceFusion ignores).
    pub extra_output: Option<&'static str>,
}

impl FamilySpec {
    pub fn needs_converter(&self) -> bool {
        matches!(self.source, SourceKind::ConverterRaw | SourceKind::ConverterNormalized)
    }

    /// Whether `size` is one of the family's pixel-boost sizes.
    pub fn allows_boost(&self, size: usize) -> bool {
        self.boost_sizes.contains(&size)
    }

    /// The contract of the family's model files, for error messages.
    pub fn contract(&self) -> String {
        let s = self.size;
        format!(
            "a {} face swapper: inputs 'source' [1,{EMBEDDING_LEN}] and 'target' [1,3,{s},{s}] (float32 or \
             float16, batch 1 or symbolic), first output [1,3,{s},{s}]{}",
            self.name,
            if self.source == SourceKind::Emap { ", and a 512×512 'emap' as the last graph initializer" } else { "" }
        )
    }
}

/// The contract every swapper file meets, for error messages.
pub const CONTRACT: &str = "a face swapper: inputs 'source' [1,512] and 'target' [1,3,S,S] (float32 or float16, \
    batch 1 or symbolic) and a first output [1,3,S,S], S 128 (inswapper), 256 (hyperswap, simswap, ghost, \
    hififace) or 512 (simswap_unofficial_512)";

/// The side S of a model with FaceFusion's swapper inputs: exactly `source` `[N,512]` and
/// `target` `[N,3,S,S]` (FaceFusion feeds inputs by name and fails on others), and a first
/// output `[N,3,S,S]`; `None` otherwise.
pub fn swapper_side(io: &ModelIo) -> Option<usize> {
    let target = io.inputs.iter().find(|i| i.name == "target")?;
    let source = io.inputs.iter().find(|i| i.name == "source")?;
    let output = io.outputs.first()?;
    let side = match target.shape.as_slice() {
        [_, 3, h, w] if h == w && *h > 0 => *h,
        _ => return None,
    };
    let image = |t: &TensorSpec| {
        t.is_float() && t.shape.len() == 4 && t.dim_accepts(1, 3) && t.dim_accepts(2, side) && t.dim_accepts(3, side)
    };
    let ok = io.inputs.len() == 2
        && image(target)
        && target.dim_accepts(0, 1)
        && source.is_float()
        && source.shape.len() == 2
        && source.dim_accepts(0, 1)
        && source.dim_accepts(1, EMBEDDING_LEN as i64)
        && image(output)
        && output.dim_accepts(0, 1);
    ok.then_some(side as usize)
}

/// The family of a swapper model: the one `choice` names, checked against the model's inputs and
/// outputs; or with `Auto`, by this rule:
/// 1. the families whose size is the model's S (128: inswapper; 512: simswap_unofficial_512;
///    256: hyperswap, simswap, ghost, hififace);
/// 2. if several, the one whose name the file name contains (`hyperswap_1a_256.onnx`);
/// 3. else the one whose extra output the model has (hyperswap's second output `mask`);
/// 4. else an error asking for `swapper-family`.
pub fn recognise(io: &ModelIo, file_name: &str, choice: SwapperFamilyChoice) -> Result<&'static FamilySpec, String> {
    let side = swapper_side(io);
    if let Some(spec) = choice.spec() {
        return (side == Some(spec.size)).then_some(spec).ok_or_else(|| spec.contract());
    }
    let side = side.ok_or_else(|| CONTRACT.to_string())?;
    let candidates: Vec<&'static FamilySpec> = FAMILIES.into_iter().filter(|f| f.size == side).collect();
    if let [only] = candidates.as_slice() {
        return Ok(only);
    }
    let file_name = file_name.to_lowercase();
    let named: Vec<_> = candidates.iter().filter(|f| file_name.contains(f.file_hint)).collect();
    if let [only] = named.as_slice() {
        return Ok(only);
    }
    let second_output = io.outputs.get(1).map(|o| o.name.as_str());
    let marked: Vec<_> =
        candidates.iter().filter(|f| f.extra_output.is_some() && f.extra_output == second_output).collect();
    if let [only] = marked.as_slice() {
        return Ok(only);
    }
    let names: Vec<&str> = candidates.iter().map(|f| f.choice.nick()).collect();
    if names.is_empty() {
        return Err(CONTRACT.to_string());
    }
    Err(format!(
        "a face swapper whose family can be told: a [1,3,{side},{side}] swapper is one of {} and neither the file \
         name nor the outputs say which; set 'swapper-family'",
        names.join(", ")
    ))
}
