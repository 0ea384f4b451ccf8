// SPDX-License-Identifier: MPL-2.0
//! `dlcenhance`: restores the faces in the metadata with GFPGAN, GPEN-BFR, CodeFormer or
//! RestoreFormer++, in place, optionally every Nth frame per face with cached re-pasting.

use gst::glib;
use gst::prelude::*;

mod imp;

glib::wrapper! {
    pub struct DlcEnhance(ObjectSubclass<imp::DlcEnhance>) @extends gst_video::VideoFilter, gst_base::BaseTransform, gst::Element, gst::Object;
}

/// Which faces to restore.
#[derive(Debug, Eq, PartialEq, Hash, Clone, Copy, Default, glib::Enum)]
#[repr(u32)]
#[enum_type(name = "GstDlcEnhanceFaces")]
pub enum FaceSelection {
    #[default]
    #[enum_value(name = "All faces in the metadata", nick = "all")]
    All,
    #[enum_value(name = "Only faces dlcswap replaced", nick = "swapped")]
    Swapped,
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    crate::runtime::RuntimeSettings::mark_plugin_api();
    crate::lanes::LanesMode::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    FaceSelection::static_type().mark_as_plugin_api(gst::PluginAPIFlags::empty());
    gst::Element::register(Some(plugin), "dlcenhance", gst::Rank::NONE, DlcEnhance::static_type())
}
