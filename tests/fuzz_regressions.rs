// SPDX-License-Identifier: MPL-2.0
//! Replays every input that once made a fuzz target fail (`make fuzz`, see RELIABILITY.md)
//! through the same harness ([`gstdlc::fuzzing`]), so that what was fixed stays fixed. The inputs
//! live in `tests/fuzz-regressions/TARGET/`, one file each, named after what they broke.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::PathBuf;

use gstdlc::fuzzing::TARGETS;

#[test]
fn every_input_that_once_failed_a_fuzz_target_now_passes() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz-regressions");
    let mut replayed = 0;
    let mut failed = Vec::new();
    let mut folders: Vec<_> = std::fs::read_dir(&root).expect("tests/fuzz-regressions exists").collect();
    folders.sort_by_key(|e| e.as_ref().map(|e| e.file_name()).ok());
    for folder in folders {
        let folder = folder.expect("the folder lists").path();
        let name = folder.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let Some((_, harness)) = TARGETS.iter().find(|(target, _)| *target == name) else {
            panic!("tests/fuzz-regressions/{name} is no fuzz target (expected one of {:?})", TARGETS.map(|t| t.0));
        };
        for input in std::fs::read_dir(&folder).expect("the target's folder lists") {
            let path = input.expect("the folder lists").path();
            let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            replayed += 1;
            if catch_unwind(AssertUnwindSafe(|| harness(&bytes))).is_err() {
                failed.push(path.display().to_string());
            }
        }
    }
    assert!(replayed > 0, "no inputs under {}", root.display());
    assert!(failed.is_empty(), "these inputs fail their fuzz target again: {failed:#?}");
}
