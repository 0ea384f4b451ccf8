// SPDX-License-Identifier: MPL-2.0
//! gstdlc: real-time face swapping for GStreamer.
//!
//! The plugin `dlc` provides `dlcdetect` (SCRFD face detection and tracking), `dlcswap`
//! (inswapper_128 identity swap), `dlcenhance` (GFPGAN-class restoration) and `dlcoverlay`
//! (draws the faces found, like an on-screen display). Faces travel between them as
//! [`FaceMeta`] on the buffers; applications can read the same meta through this crate's rlib.
#![allow(clippy::non_send_fields_in_send_ty)]

use gst::glib;

pub mod backend;
pub mod capi;
mod cuda_memory;
mod dlcdetect;
mod dlcenhance;
mod dlcoverlay;
mod dlcswap;
mod element;
pub mod face;
mod face_editing;
pub mod faces;
#[doc(hidden)]
pub mod fuzzing;
mod lanes;
pub mod meta;
pub mod models;
pub mod runtime;
pub mod timing;
mod video;
pub mod vision;
mod warnings;

pub use face::{EMBEDDING_LEN, Face, FaceFlags};
pub use meta::FaceMeta;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    if let Some(dir) = plugin.filename().and_then(|f| f.parent().map(|d| d.to_path_buf())) {
        runtime::set_plugin_dir(dir);
    }
    // The pad templates depend on it: the registry is rebuilt when it changes.
    plugin.add_dependency(&[cuda_memory::OPT_IN], &[] as &[&str], &[] as &[&str], gst::PluginDependencyFlags::empty());
    dlcdetect::register(plugin)?;
    dlcswap::register(plugin)?;
    dlcenhance::register(plugin)?;
    dlcoverlay::register(plugin)?;
    Ok(())
}

gst::plugin_define!(
    dlc,
    env!("CARGO_PKG_DESCRIPTION"),
    plugin_init,
    concat!(env!("CARGO_PKG_VERSION"), "-", env!("COMMIT_ID")),
    "MPL",
    env!("CARGO_PKG_NAME"),
    env!("CARGO_PKG_NAME"),
    // The plugin's origin (gst-inspect's "Origin URL"): the project has no public address, and
    // GStreamer's own builds say this when they have none.
    "Unknown package origin",
    env!("BUILD_REL_DATE")
);
