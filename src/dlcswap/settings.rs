// SPDX-License-Identifier: MPL-2.0
//! dlcswap's settings: the values of its properties, their defaults, and the property
//! descriptions gst-inspect shows. The properties whose setting does more than store a value
//! (`source` and `reference` ask the picture worker, `lanes` may be refused) are handled by the
//! element itself.

use std::path::PathBuf;

use gst::glib;
use gst::prelude::*;

use super::quality::QualitySettings;
use super::worker::IdentityKind;
use super::{MaskMode, TargetMode};
use crate::faces::select::DEFAULT_REFERENCE_DISTANCE;
use crate::lanes::{self, LanesSetting};
use crate::runtime::{RuntimeSettings, path_from_value, path_to_value};

pub(super) const DEFAULT_MODEL: &str = "inswapper_128.onnx";
/// The float16 export, taken when `precision` asks for it (or allows it on a GPU) and
/// `model-file` is unset.
pub(super) const DEFAULT_MODEL_FP16: &str = "inswapper_128_fp16.onnx";
pub(super) const DEFAULT_DETECTOR_MODEL: &str = "det_10g.onnx";
pub(super) const DEFAULT_RECOGNITION_MODEL: &str = "w600k_r50.onnx";
const DEFAULT_MANY_FACES: bool = false;
const DEFAULT_TARGET: TargetMode = TargetMode::Largest;
pub(super) const DEFAULT_MASK: MaskMode = MaskMode::Insightface;
const DEFAULT_OPACITY: f64 = 1.0;
const DEFAULT_MOUTH_MASK: u32 = 0;
const DEFAULT_COLOR_CORRECTION: bool = false;
const DEFAULT_SHARPNESS: f64 = 0.0;

#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) runtime: RuntimeSettings,
    pub(super) detector_model: Option<PathBuf>,
    pub(super) recognition_model: Option<PathBuf>,
    pub(super) landmark_model: Option<PathBuf>,
    pub(super) source: Option<PathBuf>,
    pub(super) reference: Option<PathBuf>,
    pub(super) reference_distance: f64,
    pub(super) face_map: Option<PathBuf>,
    pub(super) many_faces: bool,
    pub(super) target: TargetMode,
    pub(super) mask: MaskMode,
    pub(super) opacity: f64,
    pub(super) mouth_mask: u32,
    pub(super) color_correction: bool,
    pub(super) sharpness: f64,
    pub(super) lanes: LanesSetting,
    pub(super) quality: QualitySettings,
}

impl Settings {
    pub(super) fn picture(&self, kind: IdentityKind) -> &Option<PathBuf> {
        match kind {
            IdentityKind::Source => &self.source,
            IdentityKind::Reference => &self.reference,
        }
    }

    pub(super) fn picture_mut(&mut self, kind: IdentityKind) -> &mut Option<PathBuf> {
        match kind {
            IdentityKind::Source => &mut self.source,
            IdentityKind::Reference => &mut self.reference,
        }
    }
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            runtime: RuntimeSettings::default(),
            detector_model: None,
            recognition_model: None,
            landmark_model: None,
            source: None,
            reference: None,
            reference_distance: DEFAULT_REFERENCE_DISTANCE,
            face_map: None,
            many_faces: DEFAULT_MANY_FACES,
            target: DEFAULT_TARGET,
            mask: DEFAULT_MASK,
            opacity: DEFAULT_OPACITY,
            mouth_mask: DEFAULT_MOUTH_MASK,
            color_correction: DEFAULT_COLOR_CORRECTION,
            sharpness: DEFAULT_SHARPNESS,
            lanes: LanesSetting::default(),
            quality: QualitySettings::default(),
        }
    }
}

impl Settings {
    /// Every property of the element, with its blurb, default and range.
    pub(super) fn properties() -> Vec<glib::ParamSpec> {
        let mut props = RuntimeSettings::properties(
            DEFAULT_MODEL,
            "Face swapper (.onnx): inswapper_128.onnx or its fp16 export (inswapper_128_fp16.onnx, the default with precision=fp16, and with precision=auto on a GPU when the file is in the model directory), or a FaceFusion family's model (see swapper-family; unset with a family chosen: FaceFusion's file of that family, e.g. hyperswap_1a_256.onnx)",
        );
        props.extend([
                glib::ParamSpecString::builder("source")
                    .nick("Source image")
                    .blurb("PNG or JPEG picture whose largest face is put onto the target faces (required unless face-map is set). Can be changed while playing: the new face applies once computed")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("detector-model")
                    .nick("Detector model")
                    .blurb(&format!("SCRFD model used to find the face in the source/reference pictures. Unset: '{DEFAULT_DETECTOR_MODEL}' in the model directory"))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("recognition-model")
                    .nick("Recognition model")
                    .blurb(&format!("ArcFace model giving face identities (source, reference and target faces without embeddings). Unset: '{DEFAULT_RECOGNITION_MODEL}' in the model directory"))
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("many-faces")
                    .nick("Many faces")
                    .blurb("Swap every selected face instead of only the first one chosen by 'target'")
                    .default_value(DEFAULT_MANY_FACES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("target", DEFAULT_TARGET)
                    .nick("Target")
                    .blurb("Which face(s) to swap: largest, left-most (Deep-Live-Cam), best-score, or reference (faces that look like the 'reference' picture)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("reference")
                    .nick("Reference image")
                    .blurb("PNG or JPEG picture of the person to replace, for target=reference. Can be changed while playing")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("reference-distance")
                    .nick("Reference distance")
                    .blurb("Largest squared embedding distance at which a face counts as the reference (or face-map) person; lower is stricter (0..4)")
                    .minimum(0.0)
                    .maximum(4.0)
                    .default_value(DEFAULT_REFERENCE_DISTANCE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("face-map")
                    .nick("Face map")
                    .blurb("Text file mapping people to sources, one 'reference.jpg = source.jpg' per line ('#' comments, paths relative to the file): each face like a reference gets that source. Overrides source/target")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("mask", DEFAULT_MASK)
                    .nick("Blend mask")
                    .blurb("How the swapped face is blended in: insightface (reference, eroded and blurred crop) or ellipse (Deep-Live-Cam's soft ellipse)")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("opacity")
                    .nick("Opacity")
                    .blurb("Strength of the swap: 1 = full swap, 0 = original frame")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_OPACITY)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("mouth-mask")
                    .nick("Mouth mask")
                    .blurb("Keep the original mouth (0 = off, 1..100 = size of the kept area). Needs 106-point landmarks: dlcdetect landmark-model or this element's landmark-model")
                    .maximum(100)
                    .default_value(DEFAULT_MOUTH_MASK)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("landmark-model")
                    .nick("Landmark model")
                    .blurb("Optional 2d106det.onnx for mouth-mask when the faces arrive without 106-point landmarks")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecBoolean::builder("color-correction")
                    .nick("Colour correction")
                    .blurb("Match the swapped face's colours (LAB mean and spread) to the original face, against skin-tone and lighting mismatch")
                    .default_value(DEFAULT_COLOR_CORRECTION)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("sharpness")
                    .nick("Sharpness")
                    .blurb("Unsharp-mask amount for the 128-px swapped face (0 = off, 5 = strongest)")
                    .minimum(0.0)
                    .maximum(5.0)
                    .default_value(DEFAULT_SHARPNESS)
                    .mutable_playing()
                    .build(),
            ]);
        props.extend(lanes::properties(
            "Frames swapped at once, each on tensors of its own (on CUDA with its own stream) \
                     with the swapper session all elements share: with 2, one frame's model runs on the \
                     GPU while another is cropped and pasted on the CPU, for more frames per second at \
                     the cost of one frame of latency per extra lane, and one more swapper in GPU memory \
                     where it replays a CUDA graph (a captured model is not shared); 1 swaps one frame \
                     at a time",
        ));
        props.extend(QualitySettings::properties());
        props
    }

    /// Stores the value of a property that only holds a value; false for the others (`source`,
    /// `reference`, `lanes` and the read-only ones).
    pub(super) fn set_plain(&mut self, name: &str, value: &glib::Value) -> bool {
        if self.runtime.set_property(name, value) || self.quality.set_property(name, value) {
            return true;
        }
        match name {
            "detector-model" => self.detector_model = path_from_value(value),
            "recognition-model" => self.recognition_model = path_from_value(value),
            "landmark-model" => self.landmark_model = path_from_value(value),
            "face-map" => self.face_map = path_from_value(value),
            "reference-distance" => self.reference_distance = value.get().unwrap_or(DEFAULT_REFERENCE_DISTANCE),
            "many-faces" => self.many_faces = value.get().unwrap_or(DEFAULT_MANY_FACES),
            "target" => self.target = value.get().unwrap_or(DEFAULT_TARGET),
            "mask" => self.mask = value.get().unwrap_or(DEFAULT_MASK),
            "opacity" => self.opacity = value.get().unwrap_or(DEFAULT_OPACITY),
            "mouth-mask" => self.mouth_mask = value.get().unwrap_or(DEFAULT_MOUTH_MASK),
            "color-correction" => self.color_correction = value.get().unwrap_or(DEFAULT_COLOR_CORRECTION),
            "sharpness" => self.sharpness = value.get().unwrap_or(DEFAULT_SHARPNESS),
            _ => return false,
        }
        true
    }

    /// The value of a settable property (`None` for the read-only ones the element reports).
    pub(super) fn plain(&self, name: &str) -> Option<glib::Value> {
        if let Some(value) = self.runtime.property(name).or_else(|| self.quality.property(name)) {
            return Some(value);
        }
        Some(match name {
            "source" => path_to_value(&self.source),
            "reference" => path_to_value(&self.reference),
            "detector-model" => path_to_value(&self.detector_model),
            "recognition-model" => path_to_value(&self.recognition_model),
            "landmark-model" => path_to_value(&self.landmark_model),
            "face-map" => path_to_value(&self.face_map),
            "reference-distance" => self.reference_distance.to_value(),
            "many-faces" => self.many_faces.to_value(),
            "target" => self.target.to_value(),
            "mask" => self.mask.to_value(),
            "opacity" => self.opacity.to_value(),
            "mouth-mask" => self.mouth_mask.to_value(),
            "color-correction" => self.color_correction.to_value(),
            "sharpness" => self.sharpness.to_value(),
            "lanes" => self.lanes.get().to_value(),
            _ => return None,
        })
    }
}
