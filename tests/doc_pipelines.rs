// SPDX-License-Identifier: MPL-2.0
//! The example pipelines of the elements' `SECTION:element-*` documentation run as written, with
//! only what a test machine lacks replaced (tests/common/recipes.rs lists the stand-ins: camera,
//! window, absent encoders, the user's files). The models are found the documented way, in the
//! model directory under their default names.

mod common;

use std::time::Duration;

use common::recipes::{self, StandIns};

/// The `|[ … ]|` examples of a documentation block, continuation lines joined.
fn examples(source: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut current: Option<String> = None;
    for line in source.lines() {
        let text = line.trim_start().trim_start_matches('*').trim();
        match (&mut current, text) {
            (None, "|[") => current = Some(String::new()),
            (Some(_), t) if t.starts_with("]|") => found.extend(current.take()),
            (Some(example), t) => {
                *example += t.trim_end_matches('\\');
                *example += " ";
            }
            (None, _) => {}
        }
    }
    found
}

#[test]
fn documented_example_pipelines_run() {
    let Some((models, media)) = recipes::models_dir_for_recipes() else { return };

    let clip = models.path().join("in.mp4");
    recipes::short_clip(&media.join("carphone_pristine.mp4"), 12, &clip);
    let out = models.path().join("out.mp4");
    let face = media.join("newton.png");
    let stand_ins =
        StandIns::new([("in.mp4", clip), ("out.mp4", out.clone()), ("face.jpg", face.clone()), ("boss.jpg", face)]);
    let sources = [
        ("dlcdetect", include_str!("../src/dlcdetect/imp.rs")),
        ("dlcswap", include_str!("../src/dlcswap/imp.rs")),
        ("dlcenhance", include_str!("../src/dlcenhance/imp.rs")),
        ("dlcoverlay", include_str!("../src/dlcoverlay/imp.rs")),
    ];
    for (element, source) in sources {
        let found = examples(source);
        assert!(found.len() >= 2, "{element} documents at least two example pipelines, found {found:?}");
        for example in found {
            let pipeline = recipes::launch_pipeline(&example).unwrap_or_else(|e| panic!("{element}: {e}"));
            let adapted = stand_ins.adapt(&pipeline);
            println!("{element}: {example}\n  ran {}\n  replaced {:?}", adapted.description, adapted.substitutions);
            let description = adapted.description;
            let _ = std::fs::remove_file(&out);
            let pipeline = common::pipeline(&description);
            let log = common::run(&pipeline, Duration::from_secs(120));
            assert!(log.errors.is_empty(), "{element} example '{example}' fails: {}", log.error_text());
            assert!(log.eos, "{element} example '{example}' does not reach its end: {log:?}");
            if example.contains("post-messages=true") {
                assert!(
                    log.elements.iter().any(|s| s.name() == "dlcdetect"),
                    "{element} example '{example}' posts no dlcdetect messages"
                );
            }
            if example.contains("location=out.mp4") {
                let written = std::fs::metadata(&out).map(|m| m.len()).unwrap_or(0);
                assert!(written > 0, "{element} example '{example}' writes no out.mp4");
            }
        }
    }
}
