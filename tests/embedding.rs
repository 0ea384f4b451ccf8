// SPDX-License-Identifier: MPL-2.0
//! Embedding gstdlc in applications: the C header against the Rust ABI, the C example
//! (examples/c/faces-probe.c, built with `pkg-config gstdlc-1.0` against the plugin that
//! `make install-check` installed with meson) and the Python example (examples/python/faces.py).
//! Both examples must print the faces that dlcdetect posts on the bus and attaches as FaceMeta in
//! the same pipeline run in-process.

// The C and Python examples build and run with the Linux toolchain that scripts/setup-debian.sh
// installs (gcc, pkg-config, meson, PyGObject) against the plugin `make install-check` installs:
// those tests are Unix-only, and the helpers only they use go unused in a Windows build.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use gstdlc::capi::GstDlcFace;
use gstdlc::{Face, FaceFlags};

/// Where `make install-check` installs with meson (the Makefile's PREFIX).
const PREFIX: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/target/install-check");

fn source_path(relative: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(relative)
}

/// Runs a command, failing the test with its output when it does not succeed.
fn run_ok(command: &mut Command) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{stdout}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn have_program(name: &str) -> bool {
    Command::new(name).arg("--version").output().is_ok_and(|o| o.status.success())
}

/// The C compiler flags of GStreamer, or `None` after skipping without gcc / pkg-config.
fn gstreamer_cflags() -> Option<Vec<String>> {
    if !have_program("gcc") || !have_program("pkg-config") {
        common::skip("gcc or pkg-config missing (scripts/setup-debian.sh installs them)");
        return None;
    }
    let flags = run_ok(Command::new("pkg-config").args(["--cflags", "gstreamer-1.0"]));
    Some(flags.split_whitespace().map(str::to_owned).collect())
}

/// Newest modification time of the files under `dir`.
fn newest_under(dir: &Path) -> std::time::SystemTime {
    let mut newest = std::time::SystemTime::UNIX_EPOCH;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        let time = if path.is_dir() {
            newest_under(&path)
        } else {
            entry.metadata().and_then(|m| m.modified()).unwrap_or(newest)
        };
        newest = newest.max(time);
    }
    newest
}

/// The meson-installed prefix, when `make install-check` installed it from the current sources;
/// otherwise `None` after skipping (a failure under `make test`, which installs it first).
fn installed_prefix() -> Option<PathBuf> {
    let prefix = PathBuf::from(PREFIX);
    let plugin = prefix.join("lib/gstreamer-1.0/libgstdlc.so");
    let Ok(installed) = plugin.metadata().and_then(|m| m.modified()) else {
        common::skip(&format!("{} missing: run `make install-check`", plugin.display()));
        return None;
    };
    if ["src", "include"].iter().any(|dir| newest_under(&source_path(dir)) > installed) {
        common::skip(&format!("{} is older than the sources: run `make install-check`", plugin.display()));
        return None;
    }
    Some(prefix)
}

/// The environment in which a program finds the installed plugin (and only it): the plugin
/// directory on GST_PLUGIN_PATH and a registry of its own. `cargo test` puts target/debug on
/// LD_LIBRARY_PATH, which would make the C example load that copy of libgstdlc.so instead of
/// the installed one GStreamer loads (see `a_second_copy_of_the_library_is_refused_clearly`).
fn with_installed_plugin(command: &mut Command, prefix: &Path, scratch: &Path) {
    command
        .env_remove("LD_LIBRARY_PATH")
        .env("GST_PLUGIN_PATH", prefix.join("lib/gstreamer-1.0"))
        .env_remove("GST_PLUGIN_PATH_1_0")
        .env("GST_REGISTRY", scratch.join("registry.bin"));
}

/// Builds examples/c/faces-probe.c the way the README says, with `pkg-config gstdlc-1.0`.
fn build_c_example(prefix: &Path, scratch: &Path) -> Option<PathBuf> {
    gstreamer_cflags()?;
    let flags = run_ok(
        Command::new("pkg-config")
            .args(["--cflags", "--libs", "gstdlc-1.0"])
            .env("PKG_CONFIG_PATH", prefix.join("lib/pkgconfig")),
    );
    let program = scratch.join("faces-probe");
    run_ok(
        Command::new("gcc")
            .args(["-Wall", "-Wextra", "-Werror", "-o"])
            .arg(&program)
            .arg(source_path("examples/c/faces-probe.c"))
            .args(flags.split_whitespace()),
    );
    Some(program)
}

/// One face as the examples print it: `box x1 y1 x2 y2 score s track t landmarks x,y …`, with
/// `flags` and `embedding` (C) or `rect` (the Python ROI lines) where printed.
#[derive(Debug, Default)]
struct Printed {
    bbox: [f64; 4],
    score: f64,
    track: u64,
    landmarks: Vec<(f64, f64)>,
    flags: Option<String>,
    embedding: Option<usize>,
    rect: Option<[i64; 4]>,
}

fn parse_number<T: std::str::FromStr>(token: Option<&str>, line: &str) -> T {
    token.and_then(|t| t.parse().ok()).unwrap_or_else(|| panic!("a number expected in '{line}'"))
}

/// Parses the part of a face line after its colon.
fn parse_face(line: &str) -> Printed {
    let (_, fields) = line.split_once(": ").unwrap_or_else(|| panic!("no ': ' in '{line}'"));
    let mut tokens = fields.split_whitespace().peekable();
    let mut face = Printed::default();
    while let Some(key) = tokens.next() {
        match key {
            "box" => face.bbox = std::array::from_fn(|_| parse_number(tokens.next(), line)),
            "rect" => face.rect = Some(std::array::from_fn(|_| parse_number(tokens.next(), line))),
            "score" => face.score = parse_number(tokens.next(), line),
            "track" => face.track = parse_number(tokens.next(), line),
            "flags" => face.flags = tokens.next().map(str::to_owned),
            "embedding" => face.embedding = Some(parse_number(tokens.next(), line)),
            "landmarks" => {
                while let Some((x, y)) = tokens.peek().and_then(|t| t.split_once(',')) {
                    face.landmarks.push((parse_number(Some(x), line), parse_number(Some(y), line)));
                    tokens.next();
                }
            }
            other => panic!("unknown field '{other}' in '{line}'"),
        }
    }
    face
}

/// Groups an example's output into frames: a line `<kind> … faces` (or `no face meta`) opens a
/// frame, the indented `<kind> … face i: …` lines after it are its faces.
fn parse_frames(output: &str, header: &str, face_line: &str) -> Vec<Vec<Printed>> {
    let mut frames: Vec<Vec<Printed>> = Vec::new();
    for line in output.lines() {
        if line.starts_with(header) {
            frames.push(Vec::new());
        } else if let Some(rest) = line.trim_start().strip_prefix(face_line) {
            let frame = frames.last_mut().unwrap_or_else(|| panic!("a face before any frame: '{line}'"));
            // `… face <i>: …`: faces come in index order.
            let index: usize = parse_number(rest.split(" face ").last().and_then(|r| r.split(':').next()), line);
            assert_eq!(index, frame.len(), "face lines out of order: '{line}'");
            frame.push(parse_face(line));
        }
    }
    frames
}

fn flag_names(flags: FaceFlags) -> String {
    let names = [
        (FaceFlags::INFERRED, "inferred"),
        (FaceFlags::TRACKED, "tracked"),
        (FaceFlags::SWAPPED, "swapped"),
        (FaceFlags::ENHANCED, "enhanced"),
    ];
    let set: Vec<&str> = names.iter().filter(|(flag, _)| flags.contains(*flag)).map(|(_, name)| *name).collect();
    if set.is_empty() { "none".to_owned() } else { set.join("|") }
}

/// What dlcdetect gives in-process for `file` with `properties`: the faces of each bus message
/// and the FaceMeta faces of each buffer.
fn in_process(file: &Path, properties: &str) -> (Vec<Vec<Printed>>, Vec<Vec<Face>>) {
    let (log, metas) = common::run_collecting_faces(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! dlcdetect {properties} post-messages=true ! fakesink name=sink",
        file.display()
    ));
    assert!(log.eos && log.errors.is_empty(), "in-process run: {log:?}");
    let messages: Vec<Vec<Printed>> = log
        .elements
        .iter()
        .filter(|s| s.name() == "dlcdetect")
        .map(|s| {
            let faces = s.get::<gst::List>("faces").expect("a faces list");
            faces
                .iter()
                .map(|value| {
                    let face = value.get::<gst::Structure>().expect("face structures");
                    let number = |name: &str| face.get::<f64>(name).unwrap_or_else(|e| panic!("{name}: {e}"));
                    let (x, y) = (number("x"), number("y"));
                    let points: Vec<f64> = face
                        .get::<gst::Array>("landmarks")
                        .expect("landmarks")
                        .iter()
                        .map(|v| v.get::<f64>().expect("doubles"))
                        .collect();
                    Printed {
                        bbox: [x, y, x + number("width"), y + number("height")],
                        score: number("score"),
                        track: face.get::<u64>("track-id").expect("track-id"),
                        landmarks: points.chunks(2).map(|p| (p[0], p[1])).collect(),
                        ..Default::default()
                    }
                })
                .collect()
        })
        .collect();
    assert_eq!(messages.len(), metas.len(), "one message per buffer");
    (messages, metas)
}

/// Whether two coordinates agree to the 3 decimals the examples print (and the rounding of
/// `x + width`).
fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 2e-3
}

/// Checks that `printed` (by an example) holds the faces of `expected` (the bus messages).
fn assert_same_faces(what: &str, printed: &[Vec<Printed>], expected: &[Vec<Printed>]) {
    assert_eq!(printed.len(), expected.len(), "{what}: frames printed vs. messages");
    for (frame, (got, want)) in printed.iter().zip(expected).enumerate() {
        assert_eq!(got.len(), want.len(), "{what}: faces of frame {frame}: {got:?} vs. {want:?}");
        for (g, w) in got.iter().zip(want) {
            let same = g.bbox.iter().zip(&w.bbox).all(|(a, b)| close(*a, *b))
                && close(g.score, w.score)
                && g.track == w.track
                && g.landmarks.len() == w.landmarks.len()
                && g.landmarks.iter().zip(&w.landmarks).all(|(a, b)| close(a.0, b.0) && close(a.1, b.1));
            assert!(same, "{what}: frame {frame}: printed {g:?}, on the bus {w:?}");
        }
    }
}

/// Runs the C example on `file` and checks its faces against the in-process run; returns the
/// faces it printed.
fn check_c_example(file: &Path, properties: &[String]) -> Option<Vec<Vec<Printed>>> {
    let prefix = installed_prefix()?;
    let scratch = tempfile::tempdir().expect("a scratch dir");
    let program = build_c_example(&prefix, scratch.path())?;
    let mut command = Command::new(&program);
    command.arg(file).args(properties);
    with_installed_plugin(&mut command, &prefix, scratch.path());
    let output = run_ok(&mut command);
    let printed = parse_frames(&output, "frame ", "face ");

    let (messages, metas) = in_process(file, &properties.join(" "));
    assert_same_faces(&format!("faces-probe printed\n{output}"), &printed, &messages);
    for (frame, (got, faces)) in printed.iter().zip(&metas).enumerate() {
        for (g, face) in got.iter().zip(faces) {
            assert_eq!(g.flags.as_deref(), Some(flag_names(face.flags).as_str()), "frame {frame}");
            assert_eq!(g.embedding, face.embedding.as_ref().map(|e| e.len()), "frame {frame}");
        }
    }
    Some(printed)
}

/// Runs the Python example on `file`; checks that its bus-message faces and its ROI faces both
/// equal the in-process bus messages, and that each ROI's rectangle is its box in whole pixels.
fn check_python_example(file: &Path, properties: &[String]) -> Option<Vec<Vec<Printed>>> {
    let prefix = installed_prefix()?;
    let python = "/usr/bin/python3";
    let bindings = "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstVideo', '1.0'); \
         from gi.repository import Gst, GstVideo; import gi.overrides.Gst";
    if !Command::new(python).args(["-c", bindings]).output().is_ok_and(|o| o.status.success()) {
        common::skip(
            "Debian's PyGObject with the GStreamer bindings is missing (python3-gi, python3-gst-1.0, \
             gir1.2-gstreamer-1.0, gir1.2-gst-plugins-base-1.0: scripts/setup-debian.sh installs them)",
        );
        return None;
    }
    let scratch = tempfile::tempdir().expect("a scratch dir");
    let mut command = Command::new(python);
    command.arg(source_path("examples/python/faces.py")).arg(file).args(properties);
    with_installed_plugin(&mut command, &prefix, scratch.path());
    let output = run_ok(&mut command);
    let from_messages = parse_frames(&output, "message pts ", "message pts ");
    let from_rois = parse_frames(&output, "roi pts ", "roi pts ");

    let (messages, _) = in_process(file, &properties.join(" "));
    assert_same_faces(&format!("faces.py messages in\n{output}"), &from_messages, &messages);
    assert_same_faces(&format!("faces.py ROI metas in\n{output}"), &from_rois, &messages);
    for face in from_rois.iter().flatten() {
        let rect = face.rect.expect("ROI lines print the rectangle");
        let [x1, y1, x2, y2] = face.bbox.map(|v| v.max(0.0).floor() as i64);
        // The box is normalised by the frame size and back, so allow a pixel of rounding.
        let near = |a: i64, b: i64| (a - b).abs() <= 1;
        assert!(
            near(rect[0], x1) && near(rect[1], y1) && near(rect[2], x2 - x1) && near(rect[3], y2 - y1),
            "ROI rectangle {rect:?} vs. box {:?}",
            face.bbox
        );
    }
    Some(from_rois)
}

/// A black 640×480 PNG with white 32×32 blocks at `blocks`: faces for the fixture detector
/// (one per block, see tests/dlcdetect.rs).
fn fixture_picture(blocks: &[(u32, u32)], path: &Path) {
    let mut picture = image::RgbImage::new(640, 480);
    for &(bx, by) in blocks {
        for y in by..by + 32 {
            for x in bx..bx + 32 {
                picture.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
    }
    picture.save(path).expect("the fixture picture is written");
}

#[test]
#[cfg(unix)]
fn header_layout_matches_the_rust_abi() {
    let Some(cflags) = gstreamer_cflags() else { return };
    let scratch = tempfile::tempdir().expect("a scratch dir");
    let source = scratch.path().join("layout.c");
    std::fs::write(
        &source,
        r#"#include <stdio.h>
#include <stddef.h>
#include <gst/dlc/dlc.h>
#define FIELD(name) printf (#name " %zu\n", offsetof (GstDlcFace, name))
int main (void) {
  printf ("size %zu\nalign %zu\n", sizeof (GstDlcFace), G_ALIGNOF (GstDlcFace));
  FIELD (x1); FIELD (y1); FIELD (x2); FIELD (y2); FIELD (score); FIELD (landmarks);
  FIELD (flags); FIELD (track_id); FIELD (_reserved);
  printf ("landmark_stride %zu\n", sizeof (((GstDlcFace *) 0)->landmarks[0]));
  printf ("n_landmarks %d\nembedding_len %d\nn_landmarks_106 %d\n", GST_DLC_FACE_N_LANDMARKS,
      GST_DLC_FACE_EMBEDDING_LEN, GST_DLC_FACE_N_LANDMARKS_106);
  printf ("inferred %d\ntracked %d\nswapped %d\nenhanced %d\n", GST_DLC_FACE_FLAG_INFERRED,
      GST_DLC_FACE_FLAG_TRACKED, GST_DLC_FACE_FLAG_SWAPPED, GST_DLC_FACE_FLAG_ENHANCED);
  return 0;
}
"#,
    )
    .expect("the layout program is written");
    let program = scratch.path().join("layout");
    run_ok(
        Command::new("gcc")
            .args(["-Wall", "-Werror", "-o"])
            .arg(&program)
            .arg(&source)
            .arg(format!("-I{}", source_path("include").display()))
            .args(&cflags),
    );
    let output = run_ok(&mut Command::new(&program));
    let c: std::collections::HashMap<&str, usize> = output
        .lines()
        .filter_map(|line| line.split_once(' '))
        .map(|(name, value)| (name, value.parse().expect("numbers")))
        .collect();

    use std::mem::{align_of, offset_of, size_of};
    let rust = [
        ("size", size_of::<GstDlcFace>()),
        ("align", align_of::<GstDlcFace>()),
        ("x1", offset_of!(GstDlcFace, x1)),
        ("y1", offset_of!(GstDlcFace, y1)),
        ("x2", offset_of!(GstDlcFace, x2)),
        ("y2", offset_of!(GstDlcFace, y2)),
        ("score", offset_of!(GstDlcFace, score)),
        ("landmarks", offset_of!(GstDlcFace, landmarks)),
        ("flags", offset_of!(GstDlcFace, flags)),
        ("track_id", offset_of!(GstDlcFace, track_id)),
        ("_reserved", offset_of!(GstDlcFace, reserved)),
        ("landmark_stride", size_of::<[f32; 2]>()),
        ("n_landmarks", gstdlc::capi::N_LANDMARKS),
        ("embedding_len", gstdlc::EMBEDDING_LEN),
        ("n_landmarks_106", 106),
        ("inferred", FaceFlags::INFERRED.bits() as usize),
        ("tracked", FaceFlags::TRACKED.bits() as usize),
        ("swapped", FaceFlags::SWAPPED.bits() as usize),
        ("enhanced", FaceFlags::ENHANCED.bits() as usize),
    ];
    for (name, value) in rust {
        assert_eq!(c.get(name), Some(&value), "{name}: the header says {:?}, Rust {value}", c.get(name));
    }
}

#[test]
#[cfg(unix)]
fn c_example_prints_the_faces_of_the_fixture_detector() {
    let detector = require_fixture!("scrfd.onnx");
    let recognition = require_fixture!("arcface.onnx");
    let scratch = tempfile::tempdir().expect("a scratch dir");
    let picture = scratch.path().join("two blocks.png");
    fixture_picture(&[(192, 256), (448, 128)], &picture);
    let properties =
        [format!("model-file={}", detector.display()), format!("recognition-model={}", recognition.display())];
    let Some(printed) = check_c_example(&picture, &properties) else { return };
    assert_eq!(printed.len(), 1, "one picture, one frame");
    assert_eq!(printed[0].len(), 2, "{printed:?}");
    assert!(printed[0].iter().all(|f| f.embedding == Some(gstdlc::EMBEDDING_LEN)), "{printed:?}");
}

#[test]
#[cfg(unix)]
fn c_example_prints_the_faces_of_a_real_portrait_and_video() {
    let Some((detector, media, [])) = common::real_faces([]) else { return };
    let model = format!("model-file={}", detector.display());
    let Some(printed) = check_c_example(&media.join("astronaut.png"), std::slice::from_ref(&model)) else { return };
    assert_eq!(printed.iter().map(Vec::len).collect::<Vec<_>>(), [1], "one face in the portrait");

    // A video with detection on every second frame: inferred and tracked faces alternate.
    let properties = [model, "inference-interval=2".to_owned()];
    let Some(printed) = check_c_example(&media.join("carphone_pristine.mp4"), &properties) else { return };
    assert_eq!(printed.len(), 120);
    let flags: std::collections::BTreeSet<&str> = printed.iter().flatten().filter_map(|f| f.flags.as_deref()).collect();
    assert!(flags.contains("inferred") && flags.contains("tracked"), "{flags:?}");
}

#[test]
#[cfg(unix)]
fn python_example_reads_faces_from_messages_and_roi_metas() {
    let detector = require_fixture!("scrfd.onnx");
    let scratch = tempfile::tempdir().expect("a scratch dir");
    let picture = scratch.path().join("three blocks.png");
    fixture_picture(&[(128, 128), (320, 256), (512, 384)], &picture);
    let properties = [format!("model-file={}", detector.display())];
    let Some(rois) = check_python_example(&picture, &properties) else { return };
    assert_eq!(rois.iter().map(Vec::len).collect::<Vec<_>>(), [3], "{rois:?}");
}

#[test]
#[cfg(unix)]
fn python_example_reads_the_faces_of_a_real_portrait() {
    let Some((detector, media, [])) = common::real_faces([]) else { return };
    let properties = [format!("model-file={}", detector.display())];
    let Some(rois) = check_python_example(&media.join("newton.png"), &properties) else { return };
    assert_eq!(rois.iter().map(Vec::len).collect::<Vec<_>>(), [1], "{rois:?}");
}

#[test]
#[cfg(unix)]
fn a_second_copy_of_the_library_is_refused_clearly() {
    // The application linked against one file, GStreamer loading the plugin from another: the
    // faces of the elements' copy are not read by the application's copy (their layout could
    // differ), with a warning that says why; nothing crashes.
    let detector = require_fixture!("scrfd.onnx");
    let Some(prefix) = installed_prefix() else { return };
    let scratch = tempfile::tempdir().expect("a scratch dir");
    let Some(program) = build_c_example(&prefix, scratch.path()) else { return };
    let picture = scratch.path().join("one block.png");
    fixture_picture(&[(320, 256)], &picture);
    // A copy, not a hard link: the dynamic loader would take a hard link for the same file.
    let other = scratch.path().join("other");
    std::fs::create_dir(&other).expect("a folder for the other copy");
    std::fs::copy(prefix.join("lib/gstreamer-1.0/libgstdlc.so"), other.join("libgstdlc.so")).expect("a copy");
    let mut command = Command::new(&program);
    command.arg(&picture).arg(format!("model-file={}", detector.display()));
    with_installed_plugin(&mut command, &prefix, scratch.path());
    let output = command.env("LD_LIBRARY_PATH", &other).output().expect("faces-probe runs");
    let (stdout, stderr) = (String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains(": 0 faces"), "no faces read: {stdout}");
    assert!(stderr.contains("another copy of the dlc plugin library"), "the warning says why: {stderr}");
}

/// `make install-check` builds in a directory of its own under target/: a `builddir` left in the
/// checkout, configured for the scratch prefix, made README's `meson setup builddir …` say
/// "Directory already configured" and install into that prefix instead of the user's.
#[test]
#[cfg(unix)]
fn the_install_check_leaves_no_build_directory_in_the_checkout() {
    let Some(prefix) = installed_prefix() else { return };
    let own = source_path("target/meson-install-check/meson-info/intro-buildoptions.json");
    let prefix_of = |options: &Path| -> Option<String> {
        let text = std::fs::read_to_string(options).ok()?;
        let options: serde_json::Value = serde_json::from_str(&text).ok()?;
        options.as_array()?.iter().find(|o| o["name"] == "prefix")?["value"].as_str().map(str::to_owned)
    };
    assert_eq!(prefix_of(&own).as_deref(), prefix.to_str(), "the install check builds in {}", own.display());
    for entry in std::fs::read_dir(source_path("")).expect("the checkout").flatten() {
        let options = entry.path().join("meson-info/intro-buildoptions.json");
        assert_ne!(
            prefix_of(&options).as_deref(),
            prefix.to_str(),
            "{} is configured for the install check's prefix",
            entry.path().display()
        );
    }
}

/// README.md's fenced code block that contains `marker`, and the block after it (the output it
/// shows).
fn readme_recipe(marker: &str) -> (String, String) {
    let readme = std::fs::read_to_string(source_path("README.md")).expect("README.md");
    let mut blocks: Vec<String> = Vec::new();
    let mut open: Option<String> = None;
    for line in readme.lines() {
        if line.trim_start().starts_with("```") {
            match open.take() {
                Some(block) => blocks.push(block),
                None => open = Some(String::new()),
            }
        } else if let Some(block) = open.as_mut() {
            block.push_str(line);
            block.push('\n');
        }
    }
    let index = blocks.iter().position(|b| b.contains(marker)).unwrap_or_else(|| panic!("README.md shows {marker}"));
    let shown = blocks.get(index + 1).cloned().unwrap_or_else(|| panic!("README.md shows what {marker} prints"));
    (blocks[index].clone(), shown)
}

/// Checks that `output` prints the lines `shown` (README's output, whose lines may end with `…`
/// where they are cut short): the output's lines whose first word starts a line of `shown`, in
/// the order shown among the lines of that first word. Lines of different first words may come
/// in any order: faces.py prints its `message` lines from the bus and its `roi` lines from a pad
/// probe, two threads (a clean clone's `make test` once printed the `roi` lines first).
fn assert_prints_as_shown(what: &str, output: &str, shown: &str) {
    let shown: Vec<&str> = shown.lines().map(|l| l.trim_end_matches('…').trim_end()).collect();
    let first_word = |line: &str| line.split_whitespace().next().unwrap_or_default().to_string();
    let mut words: Vec<String> = shown.iter().map(|l| first_word(l)).collect();
    words.sort();
    words.dedup();
    let printed: Vec<&str> = output.lines().filter(|l| words.contains(&first_word(l))).collect();
    assert_eq!(printed.len(), shown.len(), "{what} prints README's lines:\n{output}");
    for word in &words {
        let of_word = |lines: &[&str]| -> Vec<String> {
            lines.iter().filter(|l| first_word(l) == *word).map(|l| l.to_string()).collect()
        };
        for (got, expected) in of_word(&printed).iter().zip(&of_word(&shown)) {
            assert!(got.starts_with(expected.as_str()), "{what}: README shows '{expected}', printed '{got}'");
        }
    }
}

/// Runs `script` with bash in `dir`, `home` as HOME and `models` as the model directory, in an
/// environment of its own choosing for the plugin (the script's lines set it).
fn run_recipe(script: &str, dir: &Path, home: &Path, models: &Path, scratch: &Path) -> String {
    // The checkout's target folder: cargo reuses the dependencies it built there.
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| source_path("target"));
    run_ok(
        Command::new("bash")
            .args(["-e", "-c", script])
            .current_dir(dir)
            .env("HOME", home)
            .env("DLC_MODELS_DIR", models)
            .env("CARGO_TARGET_DIR", &target)
            .env("GST_REGISTRY", scratch.join("registry.bin"))
            .env_remove("LD_LIBRARY_PATH")
            .env_remove("PKG_CONFIG_PATH")
            .env_remove("GST_PLUGIN_PATH")
            .env_remove("GST_PLUGIN_PATH_1_0"),
    )
}

/// README.md's C recipe runs as written (its build type aside, see below): meson builds the
/// plugin in a build directory of its own and installs it into `~/.local`, gcc builds the example with pkg-config, and the
/// example prints README's sample output for the portrait and the bare model name it gives
/// (README says which: the test data's astronaut, with det_2.5g.onnx as det_10g.onnx in the model
/// directory). Then README's Python line does the same with the plugin installed so. They run in
/// a copy of the checkout made of links to its sources, with HOME in a scratch folder: no build
/// directory stays in the checkout (where `meson setup` would find it configured for the scratch
/// prefix), nothing goes into the user's home.
#[test]
#[cfg(unix)]
fn readme_c_and_python_recipes_run_as_written() {
    let Some((detector, media, [])) = common::real_faces([]) else { return };
    if gstreamer_cflags().is_none() {
        return;
    }
    if !have_program("meson") {
        common::skip("meson missing (scripts/setup-debian.sh installs it)");
        return;
    }
    let (c_recipe, c_shown) = readme_recipe("gcc examples/c/faces-probe.c");
    let (python_recipe, python_shown) = readme_recipe("examples/python/faces.py");
    let scratch = tempfile::tempdir().expect("a scratch dir");
    let [home, checkout, models] = ["home", "checkout", "models"].map(|name| scratch.path().join(name));
    for dir in [&home, &checkout, &models] {
        std::fs::create_dir(dir).expect("a scratch folder");
    }
    let link = |target: &Path, link: &Path| {
        std::os::unix::fs::symlink(target, link).unwrap_or_else(|e| panic!("cannot link {}: {e}", link.display()))
    };
    for entry in ["Cargo.toml", "Cargo.lock", "build.rs", "meson.build", "src", "include", "scripts", "examples"] {
        link(&source_path(entry), &checkout.join(entry));
    }
    link(&media.join("astronaut.png"), &checkout.join("portrait.png"));
    link(&detector, &models.join("det_10g.onnx"));

    // The one substitution: the recipe's release build becomes a debug build here, which reuses
    // the dependencies `make test` already built (a release build from scratch takes about ten
    // minutes on a 2-core machine: more than half of make test's budget). The build type is all
    // it changes; the build directory, prefix and install are the recipe's.
    assert!(c_recipe.contains("--buildtype=release"), "README's C recipe builds a release plugin:\n{c_recipe}");
    let c_recipe = c_recipe.replace("--buildtype=release", "--buildtype=debug");
    let started = std::time::Instant::now();
    let output = run_recipe(&c_recipe, &checkout, &home, &models, scratch.path());
    eprintln!("README's C recipe ran in {:.0} s", started.elapsed().as_secs_f64());
    assert!(output.contains("buildtype: debug"), "meson used the recipe's build type:\n{output}");
    assert!(home.join(".local/lib/gstreamer-1.0/libgstdlc.so").is_file(), "installed into ~/.local:\n{output}");
    assert_prints_as_shown("faces-probe", &output, &c_shown);

    let bindings = "import gi; gi.require_version('Gst', '1.0'); gi.require_version('GstVideo', '1.0'); \
         from gi.repository import Gst, GstVideo";
    if !Command::new("/usr/bin/python3").args(["-c", bindings]).output().is_ok_and(|o| o.status.success()) {
        common::skip(
            "Debian's PyGObject with the GStreamer bindings is missing (scripts/setup-debian.sh installs them)",
        );
        return;
    }
    // The C recipe's `export` line finds the installed plugin, as in the user's shell.
    let exports: Vec<&str> = c_recipe.lines().filter(|l| l.starts_with("export ")).collect();
    let script = format!("{}\n{python_recipe}", exports.join("\n"));
    let output = run_recipe(&script, &checkout, &home, &models, scratch.path());
    assert_prints_as_shown("faces.py", &output, &python_shown);
}

// README.md ("Embedding: Rust, C and Python") shows the lines between the markers verbatim.
// readme-rust-start
use gst::prelude::*;

/// Calls `on_faces` with the faces of every buffer that passes `pad` (any pad after dlcdetect).
fn watch_faces(pad: &gst::Pad, on_faces: impl Fn(&[gstdlc::Face]) + Send + Sync + 'static) {
    pad.add_probe(gst::PadProbeType::BUFFER, move |_pad, info| {
        if let Some(meta) = info.buffer().and_then(|buffer| buffer.meta::<gstdlc::FaceMeta>()) {
            on_faces(meta.faces());
        }
        gst::PadProbeReturn::Ok
    });
}
// readme-rust-end

#[test]
fn rust_application_reads_faces_through_the_rlib() {
    let detector = require_fixture!("scrfd.onnx");
    let scratch = tempfile::tempdir().expect("a scratch dir");
    let picture = scratch.path().join("blocks.png");
    fixture_picture(&[(128, 128), (448, 320)], &picture);
    let pipeline = common::pipeline(&format!(
        "filesrc location=\"{}\" ! decodebin ! videoconvert ! dlcdetect model-file={} ! fakesink name=sink",
        picture.display(),
        detector.display()
    ));
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let collected = seen.clone();
    let sink_pad = pipeline.by_name("sink").and_then(|sink| sink.static_pad("sink")).expect("the sink's pad");
    watch_faces(&sink_pad, move |faces| collected.lock().unwrap().push(faces.to_vec()));
    let log = common::run(&pipeline, std::time::Duration::from_secs(60));
    assert!(log.eos && log.errors.is_empty(), "{log:?}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen.len(), 1, "one picture, one frame");
    let boxes: Vec<[f32; 4]> = seen[0].iter().map(|f| f.bbox).collect();
    assert_eq!(boxes, [[96.0, 96.0, 160.0, 160.0], [416.0, 288.0, 480.0, 352.0]].to_vec(), "{seen:?}");
}

#[test]
fn readme_shows_the_rust_snippet_of_these_tests() {
    let this_file = include_str!("embedding.rs");
    let snippet = this_file
        .split("// readme-rust-start\n")
        .nth(1)
        .and_then(|rest| rest.split("// readme-rust-end").next())
        .expect("the markers");
    let readme = std::fs::read_to_string(source_path("README.md")).expect("README.md");
    assert!(readme.contains(snippet), "README.md no longer shows tests/embedding.rs's snippet:\n{snippet}");
}
