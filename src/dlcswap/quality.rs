// SPDX-License-Identifier: MPL-2.0
//! dlcswap's FaceFusion properties: the swapper family, pixel boost and FaceFusion's masks, and
//! the rule that decides which reference a face follows.
//!
//! A face follows Deep-Live-Cam (InsightFace's swap, exactly as without these properties) unless
//! another family than inswapper, a `pixel-boost` above the model's size, or `mask-types` is set;
//! then it follows FaceFusion throughout (source tensor, crop, masks, paste-back).

use std::path::{Path, PathBuf};

use gst::glib;
use gst::prelude::*;

use super::imp::StartError;
use crate::faces::facefusion::{FaceFusionParams, FaceFusionSwapper, MaskKinds, MaskModels};
use crate::models::landmark::Landmark106;
use crate::models::landmark68::Landmark68;
use crate::models::occluder::Occluder;
use crate::models::parser::Parser;
use crate::models::swapper::{CONTRACT, Swapper, SwapperFamilyChoice, inswapper};
use crate::runtime::{RuntimeError, SessionOptions, path_from_value, path_to_value, resolve_model_path};
use crate::vision::box_mask::BoxMaskSettings;
use crate::vision::masks::{Areas, Regions};

pub const DEFAULT_SWAPPER_FAMILY: SwapperFamily = SwapperFamily::Auto;
pub const DEFAULT_PIXEL_BOOST: u32 = 0;
/// FaceFusion's largest pixel boost.
pub const MAX_PIXEL_BOOST: u32 = 1024;
pub const DEFAULT_MASK_BLUR: f64 = 0.3;
pub const DEFAULT_MASK_PADDING: &str = "0,0,0,0";
/// FaceFusion's default regions: all it can select.
pub const DEFAULT_MASK_REGIONS: &str =
    "skin,left-eyebrow,right-eyebrow,left-eye,right-eye,glasses,nose,mouth,upper-lip,lower-lip";
pub const DEFAULT_MASK_AREAS: &str = "upper-face,lower-face,mouth";
/// The mask models' files in the model directory when their properties are unset (FaceFusion's
/// defaults).
pub const DEFAULT_OCCLUDER_MODEL: &str = "xseg_1.onnx";
pub const DEFAULT_PARSER_MODEL: &str = "bisenet_resnet_34.onnx";
pub const DEFAULT_LANDMARK_68_MODEL: &str = "fan_68_5.onnx";

/// The swapper family of `model-file` (`swapper-family`).
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDlcSwapperFamily")]
pub enum SwapperFamily {
    #[default]
    #[enum_value(
        name = "Auto: recognised from the model's inputs and outputs, the file name settling look-alikes",
        nick = "auto"
    )]
    Auto,
    #[enum_value(name = "inswapper_128 (and its fp16 export)", nick = "inswapper")]
    Inswapper,
    #[enum_value(name = "hyperswap_1a/1b/1c_256", nick = "hyperswap")]
    Hyperswap,
    #[enum_value(name = "simswap_256 (needs converter-model: crossface_simswap)", nick = "simswap")]
    Simswap,
    #[enum_value(
        name = "simswap_unofficial_512 (needs converter-model: crossface_simswap)",
        nick = "simswap-unofficial-512"
    )]
    SimswapUnofficial512,
    #[enum_value(name = "ghost_1/2/3_256 (needs converter-model: crossface_ghost)", nick = "ghost")]
    Ghost,
    #[enum_value(name = "hififace_unofficial_256 (needs converter-model: crossface_hififace)", nick = "hififace")]
    Hififace,
}

/// FaceFusion's masks, combined per pixel by their minimum (`mask-types`).
#[glib::flags(name = "GstDlcSwapMaskTypes")]
pub enum MaskTypes {
    #[flags_value(name = "Box: the crop's square, edges feathered by mask-blur, cut in by mask-padding", nick = "box")]
    BOX = 0b0001,
    #[flags_value(
        name = "Occlusion: what the XSeg occluder-model sees in front of the face is kept",
        nick = "occlusion"
    )]
    OCCLUSION = 0b0010,
    #[flags_value(
        name = "Region: the mask-regions the BiSeNet parser-model finds in the swapped face",
        nick = "region"
    )]
    REGION = 0b0100,
    #[flags_value(name = "Area: the mask-areas of the face's 68 landmarks (landmark-68-model)", nick = "area")]
    AREA = 0b1000,
}

impl From<SwapperFamily> for SwapperFamilyChoice {
    fn from(family: SwapperFamily) -> Self {
        match family {
            SwapperFamily::Auto => SwapperFamilyChoice::Auto,
            SwapperFamily::Inswapper => SwapperFamilyChoice::Inswapper,
            SwapperFamily::Hyperswap => SwapperFamilyChoice::Hyperswap,
            SwapperFamily::Simswap => SwapperFamilyChoice::Simswap,
            SwapperFamily::SimswapUnofficial512 => SwapperFamilyChoice::SimswapUnofficial512,
            SwapperFamily::Ghost => SwapperFamilyChoice::Ghost,
            SwapperFamily::Hififace => SwapperFamilyChoice::Hififace,
        }
    }
}

impl From<MaskTypes> for MaskKinds {
    fn from(types: MaskTypes) -> Self {
        MaskKinds {
            box_mask: types.contains(MaskTypes::BOX),
            occlusion: types.contains(MaskTypes::OCCLUSION),
            region: types.contains(MaskTypes::REGION),
            area: types.contains(MaskTypes::AREA),
        }
    }
}

#[derive(Debug, Clone)]
pub(super) struct QualitySettings {
    pub(super) family: SwapperFamily,
    pub(super) converter_model: Option<PathBuf>,
    pub(super) pixel_boost: u32,
    pub(super) mask_types: MaskTypes,
    pub(super) mask_blur: f64,
    pub(super) mask_padding: String,
    pub(super) occluder_model: Option<PathBuf>,
    pub(super) parser_model: Option<PathBuf>,
    pub(super) landmark_68_model: Option<PathBuf>,
    pub(super) mask_regions: String,
    pub(super) mask_areas: String,
}

impl Default for QualitySettings {
    fn default() -> Self {
        QualitySettings {
            family: DEFAULT_SWAPPER_FAMILY,
            converter_model: None,
            pixel_boost: DEFAULT_PIXEL_BOOST,
            mask_types: MaskTypes::empty(),
            mask_blur: DEFAULT_MASK_BLUR,
            mask_padding: DEFAULT_MASK_PADDING.to_string(),
            occluder_model: None,
            parser_model: None,
            landmark_68_model: None,
            mask_regions: DEFAULT_MASK_REGIONS.to_string(),
            mask_areas: DEFAULT_MASK_AREAS.to_string(),
        }
    }
}

/// The rule, as gst-inspect states it (in `swapper-family`'s blurb).
const RULE: &str = "A face follows Deep-Live-Cam (InsightFace's inswapper swap and paste-back, exactly as \
    without these properties) unless another family than inswapper, pixel-boost above the model's size, or \
    mask-types is set; then it follows FaceFusion 3.8.1 throughout (source tensor, crop with replicated \
    border, masks combined by their minimum, float paste-back), with the box mask when mask-types is empty; \
    mask, mouth-mask, color-correction and sharpness then do not apply (a warning says so). Its pixel steps \
    (crop, tiles, masks, paste) run where pixel-backend says, as the Deep-Live-Cam path's do";

impl QualitySettings {
    pub(super) fn properties() -> Vec<glib::ParamSpec> {
        vec![
            glib::ParamSpecEnum::builder_with_default("swapper-family", DEFAULT_SWAPPER_FAMILY)
                .nick("Swapper family")
                .blurb(&format!(
                    "Family of model-file: auto recognises it from the model's inputs and outputs (the file \
                     name settles families with the same ones). {RULE}"
                ))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("converter-model")
                .nick("Converter model")
                .blurb(
                    "Embedding converter (.onnx, input 'input' [1,512] → output [1,512]) for the families that \
                     need one: crossface_simswap.onnx for simswap, crossface_ghost.onnx for ghost, \
                     crossface_hififace.onnx for hififace. Runs once per source identity",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecUInt::builder("pixel-boost")
                .nick("Pixel boost")
                .blurb(
                    "Side in pixels of the face crop, split into interleaved model-size tiles swapped together \
                     (FaceFusion): inswapper 128, 256, 384, 512, 768, 1024; simswap_unofficial_512 512, 1024 \
                     (FaceFusion's 768 does not split into whole tiles); other 256-px families 256, 512, 768, \
                     1024. 0 = auto: the smallest allowed size at \
                     least the face's size in the frame (the side, in frame pixels, of the square the family's \
                     template spans), else the largest; with the Deep-Live-Cam path, the model's size. Each \
                     doubling runs the model on 4× the tiles (4× the swap's GPU time)",
                )
                .maximum(MAX_PIXEL_BOOST)
                .default_value(DEFAULT_PIXEL_BOOST)
                .mutable_ready()
                .build(),
            glib::ParamSpecFlags::builder::<MaskTypes>("mask-types")
                .nick("Mask types")
                .blurb(
                    "FaceFusion masks, combined per pixel by their minimum (a pixel is swapped only as much as \
                     every chosen mask allows), e.g. box+occlusion+region. Empty (default): the Deep-Live-Cam \
                     'mask' (or the box mask when FaceFusion's path runs). Cost on the CPU per face: box ≈ 0 \
                     (built once per size), area ≈ 1 ms; occlusion and region run one model each per face",
                )
                .mutable_ready()
                .build(),
            glib::ParamSpecDouble::builder("mask-blur")
                .nick("Mask blur")
                .blurb(
                    "Feathering of the box mask's edges, as a fraction of half the crop's side (FaceFusion's \
                     face_mask_blur); no cost per face (the mask is built once per setting)",
                )
                .minimum(0.0)
                .maximum(1.0)
                .default_value(DEFAULT_MASK_BLUR)
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("mask-padding")
                .nick("Mask padding")
                .blurb(
                    "Box mask padding 'top,right,bottom,left' in percent of the crop (0..100); one value \
                     for all sides, two for top/bottom and left/right, three for top, left/right, bottom",
                )
                .default_value(Some(DEFAULT_MASK_PADDING))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("occluder-model")
                .nick("Occluder model")
                .blurb(&format!(
                    "XSeg occluder (.onnx) for mask-types=occlusion: hands, microphones and hair in front of the \
                     face stay. One model run per face. Unset: '{DEFAULT_OCCLUDER_MODEL}' in the model directory"
                ))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("parser-model")
                .nick("Parser model")
                .blurb(&format!(
                    "BiSeNet face parser (.onnx, 19 classes) for mask-types=region. One model run per face. Unset: \
                     '{DEFAULT_PARSER_MODEL}' in the model directory"
                ))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("landmark-68-model")
                .nick("68-point landmark model")
                .blurb(&format!(
                    "fan_68_5 (.onnx, 5 → 68 points) for mask-types=area, as FaceFusion derives its areas (one \
                     tiny run per face). Unset: '{DEFAULT_LANDMARK_68_MODEL}' in the model directory when it is \
                     there, else the faces' 106-point landmarks converted (dlcdetect's or this element's \
                     landmark-model), which moves the areas a little (see models/README.md)"
                ))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("mask-regions")
                .nick("Mask regions")
                .blurb(&format!(
                    "Face parts mask-types=region swaps, comma-separated FaceFusion names: skin, left-eyebrow, \
                     right-eyebrow, left-eye, right-eye, glasses, nose, mouth, upper-lip, lower-lip (default: \
                     all, '{DEFAULT_MASK_REGIONS}')"
                ))
                .default_value(Some(DEFAULT_MASK_REGIONS))
                .mutable_ready()
                .build(),
            glib::ParamSpecString::builder("mask-areas")
                .nick("Mask areas")
                .blurb(
                    "Face areas mask-types=area swaps, comma-separated: upper-face, lower-face, mouth (default: \
                     all three, one convex hull around the chosen landmarks)",
                )
                .default_value(Some(DEFAULT_MASK_AREAS))
                .mutable_ready()
                .build(),
        ]
    }

    /// Stores property `name` when it is one of these; `false` when it is not.
    pub(super) fn set_property(&mut self, name: &str, value: &glib::Value) -> bool {
        let text = || value.get::<Option<String>>().ok().flatten().unwrap_or_default();
        match name {
            "swapper-family" => self.family = value.get().unwrap_or(DEFAULT_SWAPPER_FAMILY),
            "converter-model" => self.converter_model = path_from_value(value),
            "pixel-boost" => self.pixel_boost = value.get().unwrap_or(DEFAULT_PIXEL_BOOST),
            "mask-types" => self.mask_types = value.get().unwrap_or(MaskTypes::empty()),
            "mask-blur" => self.mask_blur = value.get().unwrap_or(DEFAULT_MASK_BLUR),
            "mask-padding" => self.mask_padding = text(),
            "occluder-model" => self.occluder_model = path_from_value(value),
            "parser-model" => self.parser_model = path_from_value(value),
            "landmark-68-model" => self.landmark_68_model = path_from_value(value),
            "mask-regions" => self.mask_regions = text(),
            "mask-areas" => self.mask_areas = text(),
            _ => return false,
        }
        true
    }

    /// The value of property `name` when it is one of these.
    pub(super) fn property(&self, name: &str) -> Option<glib::Value> {
        Some(match name {
            "swapper-family" => self.family.to_value(),
            "converter-model" => path_to_value(&self.converter_model),
            "pixel-boost" => self.pixel_boost.to_value(),
            "mask-types" => self.mask_types.to_value(),
            "mask-blur" => self.mask_blur.to_value(),
            "mask-padding" => self.mask_padding.to_value(),
            "occluder-model" => path_to_value(&self.occluder_model),
            "parser-model" => path_to_value(&self.parser_model),
            "landmark-68-model" => path_to_value(&self.landmark_68_model),
            "mask-regions" => self.mask_regions.to_value(),
            "mask-areas" => self.mask_areas.to_value(),
            _ => return None,
        })
    }

    /// Whether faces follow FaceFusion whatever the model file is: another family than
    /// inswapper is chosen, or a pixel boost other than inswapper's size, or masks (the rule of
    /// this module's documentation; a boost inswapper does not allow then fails with its error).
    pub(super) fn forces_facefusion(&self) -> bool {
        let family = SwapperFamilyChoice::from(self.family);
        let boost = self.pixel_boost as usize;
        !matches!(family, SwapperFamilyChoice::Auto | SwapperFamilyChoice::Inswapper)
            || (boost != 0 && boost != inswapper::CROP)
            || !self.mask_types.is_empty()
    }

    /// The FaceFusion path for the swapper file `model_file` (unset: the chosen family's
    /// default file, FaceFusion's first model of the family, in the model directory, or
    /// `dlc_default` for auto), or the property that is wrong and why.
    pub(super) fn open_facefusion(
        &self,
        (model_file, dlc_default): (Option<&Path>, &Path),
        landmark_model: Option<&Path>,
        options: &SessionOptions,
    ) -> Result<FaceFusionSwapper, StartError> {
        let params = self.params().map_err(StartError::Picture)?;
        let masks = self.mask_models(landmark_model, options)?;
        let choice = SwapperFamilyChoice::from(self.family);
        let path = match (model_file, choice.spec()) {
            (Some(path), _) => path.to_path_buf(),
            (None, Some(family)) => resolve_model_path(None, &format!("{}.onnx", family.models[0])),
            (None, None) => dlc_default.to_path_buf(),
        };
        let swapper = Swapper::open(&path, choice, self.converter_model.as_deref(), options)?;
        FaceFusionSwapper::new(swapper, params, masks).map_err(StartError::Picture)
    }

    /// The models and names of the masks `mask-types` asks for; the names are checked whatever
    /// the types. A mask model property left unset means FaceFusion's file in the model
    /// directory; for the area mask without fan_68_5 there, the faces' 106-point landmarks stand
    /// in (from `landmark_model` when they arrive without them).
    fn mask_models(&self, landmark_model: Option<&Path>, options: &SessionOptions) -> Result<MaskModels, StartError> {
        fn named<T>(property: &str, result: Result<T, String>) -> Result<T, StartError> {
            result.map_err(|e| StartError::Picture(format!("property '{property}': {e}")))
        }
        let regions = named("mask-regions", Regions::parse(&self.mask_regions))?;
        let areas = named("mask-areas", Areas::parse(&self.mask_areas))?;
        let kinds = MaskKinds::from(self.mask_types);
        let occluder = match kinds.occlusion {
            true => Some(Occluder::open(
                &resolve_model_path(self.occluder_model.as_deref(), DEFAULT_OCCLUDER_MODEL),
                "occluder-model",
                options,
            )?),
            false => None,
        };
        let parser = match kinds.region {
            true => Some(Parser::open(
                &resolve_model_path(self.parser_model.as_deref(), DEFAULT_PARSER_MODEL),
                "parser-model",
                options,
            )?),
            false => None,
        };
        let default_68 = resolve_model_path(None, DEFAULT_LANDMARK_68_MODEL);
        let landmark68 = match (kinds.area, &self.landmark_68_model) {
            (false, _) => None,
            (true, Some(path)) => Some(Landmark68::open(path, "landmark-68-model", options)?),
            (true, None) if default_68.is_file() => Some(Landmark68::open(&default_68, "landmark-68-model", options)?),
            (true, None) => None,
        };
        let landmark106 = match (kinds.area && landmark68.is_none(), landmark_model) {
            (true, Some(path)) => Some(Landmark106::open(path, "landmark-model", options)?),
            _ => None,
        };
        Ok(MaskModels { occluder, parser, regions, landmark68, landmark106, areas })
    }

    /// After inswapper failed to open `path` as Deep-Live-Cam's swapper (`error`), with
    /// `swapper-family=auto` and nothing else asking for FaceFusion: the FaceFusion path when
    /// the file is another family's, else `error`.
    pub(super) fn open_other_family(
        &self,
        path: &Path,
        landmark_model: Option<&Path>,
        options: &SessionOptions,
        error: RuntimeError,
    ) -> Result<FaceFusionSwapper, StartError> {
        if self.family != SwapperFamily::Auto || !matches!(error, RuntimeError::WrongKind { .. }) {
            return Err(error.into());
        }
        match self.open_facefusion((Some(path), path), landmark_model, options) {
            Ok(swapper) => Ok(swapper),
            // Not a swapper at all: inswapper's contract says what the default path expects.
            Err(StartError::Runtime(RuntimeError::WrongKind { expected, .. })) if expected == CONTRACT => {
                Err(error.into())
            }
            Err(other) => Err(other),
        }
    }

    /// The per-frame FaceFusion knobs, or the property that is wrong and why.
    pub(super) fn params(&self) -> Result<FaceFusionParams, String> {
        Ok(FaceFusionParams {
            pixel_boost: self.pixel_boost,
            masks: self.mask_types.into(),
            box_mask: BoxMaskSettings { blur: self.mask_blur, padding: parse_padding(&self.mask_padding)? },
        })
    }
}

/// The warning for the Deep-Live-Cam settings in `set` (name, whether set) that faces following
/// FaceFusion ignore; `None` when none is set or faces follow Deep-Live-Cam.
pub(super) fn ignored_by_facefusion(follows_facefusion: bool, set: &[(&str, bool)]) -> Option<String> {
    let names: Vec<&str> = set.iter().filter(|(_, on)| *on).map(|(name, _)| *name).collect();
    (follows_facefusion && !names.is_empty()).then(|| {
        format!(
            "{} apply to the Deep-Live-Cam path only: faces follow FaceFusion (swapper-family, pixel-boost or \
             mask-types), so they are off; use mask-types for FaceFusion's masks",
            names.join(", ")
        )
    })
}

/// `mask-padding`: one to four percentages 0..100, CSS-style (one for all sides; top/bottom and
/// left/right; top, left/right, bottom; top, right, bottom, left), as FaceFusion reads
/// `--face-mask-padding`.
pub(super) fn parse_padding(text: &str) -> Result<[u32; 4], String> {
    let invalid = |why: String| {
        format!(
            "property 'mask-padding': '{text}' {why}; expected 'top,right,bottom,left' in percent (0..100), e.g. '10,0,0,0'"
        )
    };
    let values = text
        .split(',')
        .map(|v| match v.trim().parse::<u32>() {
            Ok(p) if p <= 100 => Ok(p),
            _ => Err(invalid(format!("has '{}', not a whole percentage", v.trim()))),
        })
        .collect::<Result<Vec<u32>, String>>()?;
    match values.as_slice() {
        [all] => Ok([*all; 4]),
        [vertical, horizontal] => Ok([*vertical, *horizontal, *vertical, *horizontal]),
        [top, horizontal, bottom] => Ok([*top, *horizontal, *bottom, *horizontal]),
        [top, right, bottom, left] => Ok([*top, *right, *bottom, *left]),
        _ => Err(invalid(format!("has {} values", values.len()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padding_reads_like_facefusion() {
        assert_eq!(parse_padding("0,0,0,0"), Ok([0; 4]));
        assert_eq!(parse_padding("10"), Ok([10; 4]));
        assert_eq!(parse_padding("10, 5"), Ok([10, 5, 10, 5]));
        assert_eq!(parse_padding("10,5,20"), Ok([10, 5, 20, 5]));
        assert_eq!(parse_padding("1,2,3,4"), Ok([1, 2, 3, 4]));
        for bad in ["", "1,2,3,4,5", "a", "101", "-1,0", "0.5"] {
            let err = parse_padding(bad).unwrap_err();
            assert!(err.contains("'mask-padding'") && err.contains("top,right,bottom,left"), "{bad}: {err}");
        }
    }

    #[test]
    fn the_rule_keeps_deep_live_cam_unless_a_facefusion_property_is_set() {
        let mut settings = QualitySettings::default();
        assert!(!settings.forces_facefusion());
        settings.family = SwapperFamily::Inswapper;
        assert!(!settings.forces_facefusion(), "inswapper chosen explicitly");
        settings.family = SwapperFamily::Hyperswap;
        assert!(settings.forces_facefusion(), "another family");
        settings.family = SwapperFamily::Auto;
        settings.pixel_boost = 128;
        assert!(!settings.forces_facefusion(), "a boost of inswapper's size changes nothing");
        settings.pixel_boost = 256;
        assert!(settings.forces_facefusion());
        settings.pixel_boost = 0;
        settings.mask_types = MaskTypes::BOX;
        assert!(settings.forces_facefusion());
    }
}
