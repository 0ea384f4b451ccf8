// SPDX-License-Identifier: MPL-2.0
//! Fuzzes FaceFusion's path for one face: alignment, pixel boost, tiles, masks and paste-back (see gstdlc::fuzzing::facefusion_face).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gstdlc::fuzzing::facefusion_face(data));
