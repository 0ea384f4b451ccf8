// SPDX-License-Identifier: MPL-2.0
//! The face pipeline without GStreamer: detect the faces of a frame, swap one face, restore one
//! face, and choose which faces get which identity. The elements copy their settings into the
//! parameter structs here once per frame and report what comes back; everything below works on
//! plain frames ([`crate::vision`]), models ([`crate::models`]) and the element's
//! [`crate::backend::Backend`].

pub mod detect;
pub mod enhance;
pub mod facefusion;
pub mod identity;
pub mod select;
pub mod swap;
pub mod swapping;
