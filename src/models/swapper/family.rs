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
    Blendswap,
    Uniface,
}

impl SwapperFamilyChoice {
    pub const ALL: [SwapperFamilyChoice; 9] = [
        SwapperFamilyChoice::Auto,
        SwapperFamilyChoice::Inswapper,
        SwapperFamilyChoice::Hyperswap,
        SwapperFamilyChoice::Simswap,
        SwapperFamilyChoice::SimswapUnofficial512,
        SwapperFamilyChoice::Ghost,
        SwapperFamilyChoice::Hififace,
        SwapperFamilyChoice::Blendswap,
        SwapperFamilyChoice::Uniface,
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
            SwapperFamilyChoice::Blendswap => "blendswap",
            SwapperFamilyChoice::Uniface => "uniface",
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

/// How a family's `source` input is made: from the source face's raw ArcFace embedding `e`
/// (FaceFusion's `prepare_source_embedding`), or from the source face's picture
/// (`prepare_source_frame`).
#[derive(Debug, Clone, Copy, PartialEq)]
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
    /// blendswap, uniface: the source face cropped from its picture at `size` px, aligned to
    /// `template` like a target crop (bilinear, border replicated), RGB `x / 255` (no mean/std),
    /// `[1,3,size,size]`.
    Image { template: &'static Template, size: usize },
}

impl SourceKind {
    /// The side of the source crop for picture sources; `None` for embeddings.
    pub fn image_size(self) -> Option<usize> {
        match self {
            SourceKind::Image { size, .. } => Some(size),
            _ => None,
        }
    }
}

/// What the model's output means (FaceFusion's `normalize_crop_frame`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputSpace {
    /// Taken as RGB in [0, 1] (inswapper, both simswaps, even simswap_256 whose input is
    /// ImageNet-normalised, blendswap).
    Unit,
    /// De-normalised with the input's mean and std: `y · std + mean` (ghost, hififace,
    /// hyperswap, uniface).
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
    /// The pixel-boost sizes FaceFusion allows (`choices.py`) and can run (multiples of the
    /// model size), the model size first.
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

    /// How many values the `source` input takes: 512, or 3 × side² for picture sources.
    pub fn source_len(&self) -> usize {
        self.source.image_size().map_or(EMBEDDING_LEN, |side| 3 * side * side)
    }

    /// The contract of the family's model files, for error messages.
    pub fn contract(&self) -> String {
        let s = self.size;
        let source = match self.source.image_size() {
            Some(side) => format!("[1,3,{side},{side}]"),
            None => format!("[1,{EMBEDDING_LEN}]"),
        };
        format!(
            "a {} face swapper: inputs 'source' {source} and 'target' [1,3,{s},{s}] (float32 or float16, batch 1 or \
             symbolic), first output [1,3,{s},{s}]{}",
            self.name,
            if self.source == SourceKind::Emap { ", and a 512×512 'emap' as the last graph initializer" } else { "" }
        )
    }
}

/// The contract every swapper file meets, for error messages.
pub const CONTRACT: &str = "a face swapper: inputs 'source' [1,512] and 'target' [1,3,S,S] (float32 or float16, \
    batch 1 or symbolic) and a first output [1,3,S,S], S 128 (inswapper), 256 (hyperswap, simswap, ghost, \
    hififace) or 512 (simswap_unofficial_512); or with 'source' a picture [1,3,112,112] (blendswap) or \
    [1,3,256,256] (uniface) and S 256";

/// The shape of a model with FaceFusion's swapper inputs: exactly `source` and `target`
/// `[N,3,S,S]` (FaceFusion feeds inputs by name and fails on others), and a first output
/// `[N,3,S,S]`. Returns S and, for a picture source `[N,3,P,P]`, P (`None` for an embedding
/// source `[N,512]`); `None` for other models.
pub fn swapper_shape(io: &ModelIo) -> Option<(usize, Option<usize>)> {
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
    let source_image = match source.shape.as_slice() {
        [_, 3, h, w] if h == w && *h > 0 => Some(*h as usize),
        [_, len] if *len == EMBEDDING_LEN as i64 => None,
        _ => return None,
    };
    let ok = io.inputs.len() == 2
        && image(target)
        && target.dim_accepts(0, 1)
        && source.is_float()
        && source.dim_accepts(0, 1)
        && image(output)
        && output.dim_accepts(0, 1);
    ok.then_some((side as usize, source_image))
}

/// The family of a swapper model: the one `choice` names, checked against the model's inputs and
/// outputs; or with `Auto`, by this rule:
/// 1. the families whose size is the model's S and whose source has the model's `source` shape
///    (128: inswapper; 512: simswap_unofficial_512; 256 with a picture source 112: blendswap,
///    256: uniface; 256 with an embedding source: hyperswap, simswap, ghost, hififace);
/// 2. if several, the one whose name the file name contains (`hyperswap_1a_256.onnx`);
/// 3. else the one whose extra output the model has (hyperswap's second output `mask`);
/// 4. else an error asking for `swapper-family`.
pub fn recognise(io: &ModelIo, file_name: &str, choice: SwapperFamilyChoice) -> Result<&'static FamilySpec, String> {
    let shape = swapper_shape(io);
    let fits = |f: &FamilySpec| shape == Some((f.size, f.source.image_size()));
    if let Some(spec) = choice.spec() {
        return fits(spec).then_some(spec).ok_or_else(|| spec.contract());
    }
    let (side, _) = shape.ok_or_else(|| CONTRACT.to_string())?;
    let candidates: Vec<&'static FamilySpec> = FAMILIES.into_iter().filter(|f| fits(f)).collect();
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

#[cfg(test)]
mod tests {
    use super::*;
    use ort::value::TensorElementType::{Float16, Float32, Int64};

    fn spec(name: &str, element: ort::value::TensorElementType, shape: &[i64]) -> TensorSpec {
        TensorSpec { name: name.into(), element: Some(element), shape: shape.to_vec() }
    }

    /// A swapper's I/O: `source` [b,512], `target` [b,3,S,S], output [b,3,S,S] (+ hyperswap's mask).
    fn io(side: i64, batch: i64, mask: bool) -> ModelIo {
        let mut outputs = vec![spec("output", Float32, &[batch, 3, side, side])];
        if mask {
            outputs.push(spec("mask", Float32, &[batch, 1, side, side]));
        }
        ModelIo {
            inputs: vec![spec("source", Float32, &[batch, 512]), spec("target", Float32, &[batch, 3, side, side])],
            outputs,
        }
    }

    fn auto(io: &ModelIo, file: &str) -> Result<&'static str, String> {
        recognise(io, file, SwapperFamilyChoice::Auto).map(|f| f.name)
    }

    #[test]
    fn sizes_that_only_one_family_has_need_no_name() {
        assert_eq!(auto(&io(128, 1, false), "model.onnx"), Ok("inswapper"));
        assert_eq!(auto(&io(128, -1, false), "inswapper_128_fp16.onnx"), Ok("inswapper"));
        assert_eq!(auto(&io(512, 1, false), "swap.onnx"), Ok("simswap_unofficial_512"));
    }

    #[test]
    fn the_256_families_are_told_by_file_name_then_by_the_mask_output() {
        assert_eq!(auto(&io(256, 1, false), "hyperswap_1b_256.onnx"), Ok("hyperswap"));
        assert_eq!(auto(&io(256, 1, false), "SimSwap_256.onnx"), Ok("simswap"));
        assert_eq!(auto(&io(256, 1, false), "ghost_3_256.onnx"), Ok("ghost"));
        assert_eq!(auto(&io(256, 1, false), "hififace_unofficial_256.onnx"), Ok("hififace"));
        // hyperswap's export has the second output 'mask'.
        assert_eq!(auto(&io(256, 1, true), "face_swapper.onnx"), Ok("hyperswap"));
        // The file name wins over the outputs.
        assert_eq!(auto(&io(256, 1, true), "ghost_1_256.onnx"), Ok("ghost"));
        let err = auto(&io(256, 1, false), "face_swapper.onnx").unwrap_err();
        assert!(err.contains("swapper-family") && err.contains("hyperswap, simswap, ghost, hififace"), "{err}");
    }

    #[test]
    fn picture_sources_tell_blendswap_and_uniface() {
        let with_source = |side: i64| {
            let mut io = io(256, 1, false);
            io.inputs[0] = spec("source", Float32, &[1, 3, side, side]);
            io
        };
        assert_eq!(auto(&with_source(112), "model.onnx"), Ok("blendswap"));
        assert_eq!(auto(&with_source(256), "model.onnx"), Ok("uniface"));
        // The file name cannot make an embedding swapper of one.
        assert!(auto(&io(256, 1, false), "blendswap_256.onnx").unwrap_err().contains("swapper-family"));
        let err = recognise(&io(256, 1, false), "x.onnx", SwapperFamilyChoice::Uniface).unwrap_err();
        assert!(err.contains("'source' [1,3,256,256]"), "{err}");
        assert!(recognise(&with_source(112), "x.onnx", SwapperFamilyChoice::Ghost).is_err());
    }

    #[test]
    fn an_explicit_choice_settles_the_family_if_the_size_fits() {
        let ghost = recognise(&io(256, 1, false), "face_swapper.onnx", SwapperFamilyChoice::Ghost);
        assert_eq!(ghost.map(|f| f.name), Ok("ghost"));
        // The choice outranks the file name.
        let simswap = recognise(&io(256, 1, false), "ghost_1_256.onnx", SwapperFamilyChoice::Simswap);
        assert_eq!(simswap.map(|f| f.name), Ok("simswap"));
        let err = recognise(&io(256, 1, false), "x.onnx", SwapperFamilyChoice::Inswapper).unwrap_err();
        assert!(err.contains("inswapper face swapper") && err.contains("[1,3,128,128]"), "{err}");
        let err = recognise(&io(256, 1, false), "x.onnx", SwapperFamilyChoice::SimswapUnofficial512).unwrap_err();
        assert!(err.contains("[1,3,512,512]"), "{err}");
    }

    #[test]
    fn other_models_are_not_swappers() {
        // An enhancer: one image input.
        let enhancer = ModelIo {
            inputs: vec![spec("input", Float32, &[1, 3, 512, 512])],
            outputs: vec![spec("output", Float32, &[1, 3, 512, 512])],
        };
        assert_eq!(auto(&enhancer, "gfpgan.onnx"), Err(CONTRACT.to_string()));
        // Inputs by other names (FaceFusion feeds 'source' and 'target' only).
        let mut renamed = io(256, 1, false);
        renamed.inputs[0].name = "embedding".into();
        assert!(auto(&renamed, "hyperswap.onnx").is_err());
        // A third input, a batch of 2, a picture source of a size no family has, integer input.
        let mut third = io(256, 1, false);
        third.inputs.push(spec("weight", Float32, &[1]));
        assert!(auto(&third, "hyperswap.onnx").is_err());
        assert!(auto(&io(256, 2, false), "hyperswap.onnx").is_err());
        let mut image_source = io(256, 1, false);
        image_source.inputs[0] = spec("source", Float32, &[1, 3, 128, 128]);
        assert!(auto(&image_source, "blendswap_256.onnx").is_err());
        let mut integer = io(256, 1, false);
        integer.inputs[1].element = Some(Int64);
        assert!(auto(&integer, "hyperswap.onnx").is_err());
        // Output of another size, or a size no family has.
        let mut upscaled = io(256, 1, false);
        upscaled.outputs[0].shape = vec![1, 3, 512, 512];
        assert!(auto(&upscaled, "hyperswap.onnx").is_err());
        assert_eq!(auto(&io(384, 1, false), "swap.onnx"), Err(CONTRACT.to_string()));
        // float16 I/O is fine.
        let mut half = io(128, 1, false);
        half.inputs.iter_mut().chain(half.outputs.iter_mut()).for_each(|t| t.element = Some(Float16));
        assert_eq!(auto(&half, "inswapper_128_fp16.onnx"), Ok("inswapper"));
    }

    #[test]
    fn choices_round_trip_and_name_their_family() {
        for choice in SwapperFamilyChoice::ALL {
            assert_eq!(SwapperFamilyChoice::from_nick(choice.nick()), Some(choice));
            match choice.spec() {
                Some(spec) => assert_eq!(spec.choice, choice),
                None => assert_eq!(choice, SwapperFamilyChoice::Auto),
            }
        }
        assert!(SwapperFamilyChoice::from_nick("deepswap").is_none());
    }

    #[test]
    fn family_table_matches_facefusion() {
        // (name, template, size, first and last boost size, converter) per FaceFusion 3.8.1.
        let want = [
            ("inswapper", "arcface_128", 128, [128, 1024], None),
            ("hyperswap", "arcface_128", 256, [256, 1024], None),
            ("simswap", "arcface_112_v1", 256, [256, 1024], Some("crossface_simswap.onnx")),
            ("simswap_unofficial_512", "arcface_112_v1", 512, [512, 1024], Some("crossface_simswap.onnx")),
            ("ghost", "arcface_112_v1", 256, [256, 1024], Some("crossface_ghost.onnx")),
            ("hififace", "mtcnn_512", 256, [256, 1024], Some("crossface_hififace.onnx")),
            ("blendswap", "ffhq_512", 256, [256, 1024], None),
            ("uniface", "ffhq_512", 256, [256, 1024], None),
        ];
        for (family, (name, template, size, boosts, converter)) in FAMILIES.iter().zip(want) {
            assert_eq!((family.name, family.template.name, family.size), (name, template, size));
            assert_eq!([family.boost_sizes[0], *family.boost_sizes.last().unwrap_or(&0)], boosts, "{name}");
            assert_eq!(family.converter, converter, "{name}");
            assert_eq!(family.needs_converter(), converter.is_some(), "{name}");
            // Every boost size is a multiple of the model size (whole tiles).
            assert!(family.boost_sizes.iter().all(|b| b % family.size == 0), "{name}");
        }
        assert!(FAMILIES[0].allows_boost(384) && !FAMILIES[1].allows_boost(384) && !FAMILIES[3].allows_boost(256));
    }
}
