// SPDX-License-Identifier: MPL-2.0
//! Fuzzes dlcswap's face-map parser on the text of a map file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gstdlc::fuzzing::face_map(data));
