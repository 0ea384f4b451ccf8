// SPDX-License-Identifier: MPL-2.0
//! `dlcswap`: replaces the faces `dlcdetect` found with the identity of a source picture,
//! using `inswapper_128` and InsightFace's (or Deep-Live-Cam's) paste-back.

use gst::glib;
use gst::prelude::*;

mod imp;
mod quality;
mod settings;
mod worker;

use crate::faces::select::Target;
use crate::faces::swap::BlendMask;

glib::wrapper! {
    pub struct DlcSwap(ObjectSubclass<imp::DlcSwap>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// How the swapped face is blended into the frame.
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDlcSwapMask")]
pub enum MaskMode {
    #[default]
    #[enum_value(name = "InsightFace: warped crop mask, eroded and blurred (the reference)", nick = "insightface")]
    Insightface,
    #[enum_value(name = "Ellipse: Deep-Live-Cam's soft ellipse, cheaper", nick = "ellipse")]
    Ellipse,
}

impl From<MaskMode> for BlendMask {
    fn from(mode: MaskMode) -> Self {
        match mode {
            MaskMode::Insightface => BlendMask::Insightface,
            MaskMode::Ellipse => BlendMask::Ellipse,
        }
    }
}

/// Which face(s) to swap (the `target` property).
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDlcSwapTarget")]
pub enum TargetMode {
    #[default]
    #[enum_value(name = "Largest: the face with the largest box", nick = "largest")]
    Largest,
    #[enum_value(name = "Left-most: the face furthest left (Deep-Live-Cam's rule)", nick = "left-most")]
    LeftMost,
    #[enum_value(name = "Best score: the face the detector is surest of", nick = "best-score")]
    BestScore,
    #[enum_value(
        name = "Reference: faces matching the 'reference' image within 'reference-distance'",
        nick = "reference"
    )]
    Reference,
}

impl From<TargetMode> for Target {
    fn from(mode: TargetMode) -> Self {
        match mode {
            TargetMode::Largest => Target::Largest,
            TargetMode::LeftMost => Target::LeftMost,
            TargetMode::BestScore => Target::BestScore,
            TargetMode::Reference => Target::Reference,
        }
    }
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    crate::runtime::RuntimeSettings::mark_plugin_api();
    crate::lanes::LanesMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    MaskMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    TargetMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    quality::SwapperFamily::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    quality::MaskTypes::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(Some(plugin), "dlcswap", gst::Rank::NONE, DlcSwap::static_type())
}
