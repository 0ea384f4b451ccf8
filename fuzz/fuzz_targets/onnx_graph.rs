// SPDX-License-Identifier: MPL-2.0
//! Fuzzes the ONNX graph reader (initializers, node names) on the bytes of a model file.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| gstdlc::fuzzing::onnx_graph(data));
