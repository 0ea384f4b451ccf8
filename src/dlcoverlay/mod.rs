// SPDX-License-Identifier: MPL-2.0
//! `dlcoverlay`: draws the faces of the [`crate::FaceMeta`] onto the frame in place (boxes,
//! landmarks, track ids, scores, swapped/enhanced marks), so a user sees what the detector found.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct DlcOverlay(ObjectSubclass<imp::DlcOverlay>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(Some(plugin), "dlcoverlay", gst::Rank::NONE, DlcOverlay::static_type())
}
