// SPDX-License-Identifier: MPL-2.0
//! README.md's recipes work as written. Every `gst-launch-1.0` command of its fenced code blocks
//! runs to its end, with only what a test machine lacks replaced (tests/common/recipes.rs lists
//! the stand-ins: camera, window, virtual camera, absent encoders, the user's files and models).
//! Fragments (`... ! dlcdetect ! dlcswap … ! ...`) are completed with a file source in front,
//! [`FRAGMENT_SOURCE`], and [`FRAGMENT_SINK`] behind. Every option of README's
//! `cargo run --example …` commands is one the example's `--help` documents (tests/examples.rs
//! runs the examples themselves).

mod common;

use std::path::Path;
use std::time::Duration;

use common::recipes::{self, StandIns};
use gst::prelude::*;

const README: &str = include_str!("../README.md");

/// What stands in front of a fragment that starts with `... !`: the recipe's input file, decoded.
const FRAGMENT_SOURCE: &str = "filesrc location=in.mp4 ! decodebin";
/// What stands behind a fragment that ends with `! ...`.
const FRAGMENT_SINK: &str = "fakesink";
/// Frames of carphone_pristine.mp4 (about) that the short clip standing in for `in.mp4` keeps.
const CLIP_FRAMES: usize = 12;

/// A command of a fenced code block of README.md, continuation lines joined.
#[derive(Debug)]
struct FencedCommand {
    /// Its first line in README.md.
    line: usize,
    text: String,
}

/// The lines of README.md's fenced code blocks, those that end with `\` joined to the next.
fn fenced_commands(readme: &str) -> Vec<FencedCommand> {
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending: Option<FencedCommand> = None;
    for (index, line) in readme.lines().enumerate() {
        if line.trim_start().starts_with("```") {
            in_block = !in_block;
            commands.extend(pending.take());
            continue;
        }
        if !in_block {
            continue;
        }
        let text = line.trim();
        let command = pending.get_or_insert_with(|| FencedCommand { line: index + 1, text: String::new() });
        match text.strip_suffix('\\') {
            Some(continued) => {
                command.text += continued.trim();
                command.text += " ";
            }
            None => {
                command.text += text;
                commands.extend(pending.take());
            }
        }
    }
    commands
}

/// A recipe: README's text and the launch description it stands for (fragments completed).
struct Recipe {
    line: usize,
    text: String,
    pipeline: String,
}

/// README's `gst-launch-1.0` commands and fragments, or the ones that cannot be read.
fn launch_recipes(commands: &[FencedCommand]) -> (Vec<Recipe>, Vec<String>) {
    let mut recipes = Vec::new();
    let mut unreadable = Vec::new();
    for FencedCommand { line, text } in commands {
        let pipeline = if text.starts_with("gst-launch-1.0") {
            recipes::launch_pipeline(text)
        } else if text.starts_with("...") {
            complete_fragment(text)
        } else if text.contains("gst-launch-1.0") {
            Err(format!("'{text}' has gst-launch-1.0 other than at its start"))
        } else {
            continue;
        };
        match pipeline {
            Ok(pipeline) => recipes.push(Recipe { line: *line, text: text.clone(), pipeline }),
            Err(reason) => unreadable.push(format!("README.md:{line}: {reason}")),
        }
    }
    (recipes, unreadable)
}

/// `... ! a ! b ! ...` → `FRAGMENT_SOURCE ! a ! b ! FRAGMENT_SINK` (the sink only where the
/// fragment leaves it open).
fn complete_fragment(text: &str) -> Result<String, String> {
    let body = text
        .strip_prefix("...")
        .and_then(|rest| rest.trim_start().strip_prefix('!'))
        .ok_or_else(|| format!("fragment '{text}' does not start with '... !'"))?;
    let (body, sink) = match body.trim_end().strip_suffix("...") {
        Some(open) => {
            let open = open.trim_end().strip_suffix('!');
            (open.ok_or_else(|| format!("fragment '{text}' ends with '...' but not '! ...'"))?, Some(FRAGMENT_SINK))
        }
        None => (body, None),
    };
    let body = body.trim();
    if body.is_empty() {
        return Err(format!("fragment '{text}' names no elements"));
    }
    Ok(match sink {
        Some(sink) => format!("{FRAGMENT_SOURCE} ! {body} ! {sink}"),
        None => format!("{FRAGMENT_SOURCE} ! {body}"),
    })
}

/// How many frames a video file decodes to, and their size.
fn decoded(video: &Path) -> (usize, Option<(i32, i32)>) {
    let pipeline = common::pipeline(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! appsink name=sink sync=false",
        video.display()
    ));
    let sink = pipeline.by_name("sink").and_then(|s| s.downcast::<gst_app::AppSink>().ok()).expect("an appsink");
    pipeline.set_state(gst::State::Playing).expect("the decoding pipeline plays");
    let mut frames = 0;
    let mut size = None;
    while let Some(sample) = sink.try_pull_sample(gst::ClockTime::from_seconds(30)) {
        frames += 1;
        let info = sample.caps().and_then(|caps| gst_video::VideoInfo::from_caps(caps).ok());
        size = info.map(|info| (info.width() as i32, info.height() as i32));
    }
    pipeline.set_state(gst::State::Null).expect("the decoding pipeline stops");
    (frames, size)
}

/// Whether a `dlcdetect` bus message lists at least one face.
fn lists_faces(message: &gst::Structure) -> bool {
    message.name() == "dlcdetect" && message.get::<gst::List>("faces").is_ok_and(|faces| !faces.is_empty())
}

#[test]
fn readme_gst_launch_recipes_run() {
    let commands = fenced_commands(README);
    let (recipes, unreadable) = launch_recipes(&commands);
    assert!(unreadable.is_empty(), "README.md has recipes that cannot be read:\n{}", unreadable.join("\n"));
    assert!(!recipes.is_empty(), "README.md has no gst-launch-1.0 recipes in its fenced code blocks");

    let Some((_models, media)) = recipes::models_dir_for_recipes() else { return };

    let files = tempfile::tempdir().expect("a temporary folder for the recipes' files");
    let dir = files.path();
    let clip = dir.join("in.mp4");
    recipes::short_clip(&media.join("carphone_pristine.mp4"), CLIP_FRAMES, &clip);
    let (_, clip_size) = decoded(&clip);
    // people.map: one `reference = source` line, paths relative to the map file.
    recipes::link(dir, "boss.png", &media.join("gauss.png"));
    recipes::link(dir, "face.png", &media.join("newton.png"));
    let map = dir.join("people.map");
    std::fs::write(&map, "# reference = source (written by tests/readme_recipes.rs)\nboss.png = face.png\n")
        .expect("people.map is written");
    let photo = media.join("astronaut.png");
    let stand_ins = StandIns::new([
        ("in.mp4", clip),
        ("face.jpg", media.join("newton.png")),
        ("boss.jpg", media.join("gauss.png")),
        ("people.map", map),
        ("photo.png", photo.clone()),
        ("out.mp4", dir.join("out.mp4")),
        ("faces.png", dir.join("faces.png")),
    ]);

    for recipe in &recipes {
        let adapted = stand_ins.adapt(&recipe.pipeline);
        let what = format!("README.md:{} '{}'\n  ran as: {}", recipe.line, recipe.text, adapted.description);
        println!("{what}");
        for substitution in &adapted.substitutions {
            println!("  replaced: {substitution}");
        }
        let outputs: Vec<&Path> = ["out.mp4", "faces.png"]
            .into_iter()
            .filter(|name| recipe.pipeline.contains(&format!("location={name}")))
            .filter_map(|name| stand_ins.file(name))
            .collect();
        for output in &outputs {
            let _ = std::fs::remove_file(output);
        }

        let pipeline = gst::parse::launch(&adapted.description)
            .unwrap_or_else(|e| panic!("{what}\ndoes not parse: {e}"))
            .downcast::<gst::Pipeline>()
            .unwrap_or_else(|_| panic!("{what}\nis not a pipeline"));
        let log = common::run(&pipeline, Duration::from_secs(120));
        assert!(log.errors.is_empty(), "{what}\nfails: {}", log.error_text());
        assert!(log.eos, "{what}\ndoes not reach its end: {log:?}");
        assert!(log.warnings.is_empty(), "{what}\nwarns: {:?}", log.warnings);

        if recipe.pipeline.contains("post-messages=true") && recipe.pipeline.contains("location=in.mp4") {
            assert!(log.elements.iter().any(lists_faces), "{what}\nposts no dlcdetect message with a face");
        }
        for output in outputs {
            match output.extension().and_then(|e| e.to_str()) {
                // Not the exact frame count: x264enc → mp4mux → decodebin may lose the first frame
                // of any clip (tests/examples.rs checks that the elements keep every frame).
                Some("mp4") => {
                    let (frames, size) = decoded(output);
                    assert!(
                        frames > 0 && size == clip_size,
                        "{what}\nwrites {frames} frames of {size:?}, not in.mp4's {clip_size:?}"
                    );
                }
                _ => {
                    let picture = image::open(output).unwrap_or_else(|e| panic!("{what}\nwrites no picture: {e}"));
                    let expected = image::image_dimensions(&photo).expect("the test photo's size");
                    assert_eq!((picture.width(), picture.height()), expected, "{what}\nwrites another size");
                }
            }
        }
    }
    println!("ran {} README recipes", recipes.len());
}

const ORT_CHILD: &str = "DLC_README_ORT_CHILD";

#[test]
#[ignore = "run by readme_onnx_runtime_lines_work after each line, in a process of its own"]
fn onnx_runtime_line_child() {
    if std::env::var_os(ORT_CHILD).is_none() {
        return;
    }
    let model = common::fixture("scrfd.onnx").expect("the parent checked the fixture");
    let log = common::run_launch(&format!(
        "videotestsrc num-buffers=1 ! dlcdetect model-file={} ! fakesink",
        model.display()
    ));
    println!("ORT ERRORS [{}]", log.error_text());
}

/// README.md's lines that make the ONNX Runtime of `make test`'s `.venv` findable work as written
/// from the checkout: each runs in a shell without ORT_DYLIB_PATH and LD_LIBRARY_PATH, which then
/// starts this binary's child test with what the line set; its dlcdetect must start.
#[test]
fn readme_onnx_runtime_lines_work() {
    let commands = fenced_commands(README);
    let lines: Vec<&FencedCommand> = commands
        .iter()
        .filter(|c| ["export ORT_DYLIB_PATH=", "export LD_LIBRARY_PATH="].iter().any(|p| c.text.starts_with(p)))
        .filter(|c| c.text.contains(".venv/"))
        .collect();
    assert!(lines.len() >= 2, "README.md shows ORT_DYLIB_PATH and LD_LIBRARY_PATH lines for the .venv: {lines:?}");
    let checkout = Path::new(env!("CARGO_MANIFEST_DIR"));
    if common::fixture("scrfd.onnx").is_none() || !checkout.join(".venv").exists() {
        common::skip("the scrfd fixture or the .venv with onnxruntime is missing (run `make test`)");
        return;
    }
    let this = std::env::current_exe().expect("this test binary");
    for line in lines {
        let script =
            format!("{} && exec \"$0\" --exact onnx_runtime_line_child --include-ignored --nocapture", line.text);
        let output = std::process::Command::new("bash")
            .args(["-e", "-c", &script])
            .arg(&this)
            .current_dir(checkout)
            .env(ORT_CHILD, "1")
            .env_remove("ORT_DYLIB_PATH")
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .expect("bash runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let what =
            format!("README.md:{} '{}':\n{stdout}\n{}", line.line, line.text, String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "{what}");
        assert!(stdout.contains("ORT ERRORS []"), "dlcdetect finds ONNX Runtime: {what}");
    }
}

/// The `--option`s of a `cargo run --example NAME -- …` command, with NAME.
fn example_options(command: &str) -> Option<(&str, Vec<&str>)> {
    let mut words = command.split_whitespace();
    if words.next() != Some("cargo") || words.next() != Some("run") {
        return None;
    }
    let name = words.by_ref().skip_while(|w| *w != "--example").nth(1)?;
    let arguments = words.skip_while(|w| *w != "--").take_while(|w| *w != "|");
    Some((name, arguments.filter(|w| w.starts_with("--") && w.len() > 2).collect()))
}

/// Whether `help` names `option` as a whole word (`--source` is not `--source-dir`).
fn documents(help: &str, option: &str) -> bool {
    help.match_indices(option).any(|(at, _)| {
        help[at + option.len()..].chars().next().is_none_or(|next| !(next.is_alphanumeric() || next == '-'))
    })
}

#[test]
fn readme_example_commands_use_documented_options() {
    let commands = fenced_commands(README);
    let uses: Vec<(usize, &str, Vec<&str>)> = commands
        .iter()
        .filter_map(|c| example_options(&c.text).map(|(name, options)| (c.line, name, options)))
        .collect();
    assert!(!uses.is_empty(), "README.md has no `cargo run --example` commands");
    for name in uses.iter().map(|(_, name, _)| *name).collect::<std::collections::BTreeSet<_>>() {
        let Some(binary) = common::example(name) else { return };
        let output = std::process::Command::new(&binary).arg("--help").output().expect("the example runs");
        assert!(output.status.success(), "{name} --help fails: {}", String::from_utf8_lossy(&output.stderr));
        let help = String::from_utf8_lossy(&output.stdout);
        for (line, _, options) in uses.iter().filter(|(_, n, _)| *n == name) {
            println!("README.md:{line}: {name} {options:?}");
            for option in options {
                assert!(documents(&help, option), "README.md:{line}: {name} has no {option} in its --help:\n{help}");
            }
        }
    }
}
