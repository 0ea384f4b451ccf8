//! `dlcswap`: replaces the faces `dlcdetect` found with the identity of a source picture,
//! using `inswapper_128` and InsightFace's (or Deep-Live-Cam's) paste-back.

use gst::glib;
use gst::prelude::*;

mod imp;
pub mod select;

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

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "dlcswap", gst::Rank::NONE, DlcSwap::static_type())
}
