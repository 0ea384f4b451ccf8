// SPDX-License-Identifier: MPL-2.0
//! `dlcdetect`: SCRFD face detection with tracking; faces leave as [`crate::FaceMeta`] (plus
//! standard region-of-interest metas) and, optionally, as element messages on the bus.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct DlcDetect(ObjectSubclass<imp::DlcDetect>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    crate::runtime::RuntimeSettings::mark_plugin_api();
    gst::Element::register(Some(plugin), "dlcdetect", gst::Rank::NONE, DlcDetect::static_type())
}
