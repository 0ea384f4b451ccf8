// SPDX-License-Identifier: MPL-2.0
//! Fuzzes picture loading for dlcswap's source, reference and face-map pictures.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gstdlc::fuzzing::picture(data));
