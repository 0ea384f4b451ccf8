// SPDX-License-Identifier: MPL-2.0
//! Fuzzes the detector's output path: SCRFD decode, NMS, tracking and the swap geometry (see gstdlc::fuzzing::scrfd_decode).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gstdlc::fuzzing::scrfd_decode(data));
