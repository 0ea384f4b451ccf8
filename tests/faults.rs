// SPDX-License-Identifier: MPL-2.0
//! Bad input and faults, with the fixture models: every case ends in a bus error or warning that
//! names the file or property and what was wrong, or in correct output; never in a panic, an
//! abort, a hang (every bus wait has a timeout) or a corrupted frame. RELIABILITY.md lists the
//! cases with what happens in each.

mod common;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use gst::glib;
use gst::prelude::*;
use gstdlc::{Face, FaceFlags, FaceMeta};

const TIMEOUT: Duration = Duration::from_secs(60);

/// The fixture models the cases use, and a scratch folder with a face picture in it.
struct Fixtures {
    scrfd: PathBuf,
    arcface: PathBuf,
    inswapper: PathBuf,
    gfpgan: PathBuf,
    landmark: PathBuf,
    dir: tempfile::TempDir,
    /// A 640×640 black picture with one white 32×32 block: one face to the fixture detector.
    face: PathBuf,
}

impl Fixtures {
    /// The dlcswap properties that make it start: every model, and `face` as the source.
    fn swap_props(&self) -> String {
        format!(
            "model-file={} detector-model={} recognition-model={} source={}",
            self.inswapper.display(),
            self.scrfd.display(),
            self.arcface.display(),
            self.face.display()
        )
    }

    /// detect ! swap ! enhance with the fixture models, for launch lines.
    fn chain(&self) -> String {
        format!(
            "dlcdetect model-file={} max-faces=2 ! dlcswap {} ! dlcenhance model-file={}",
            self.scrfd.display(),
            self.swap_props(),
            self.gfpgan.display()
        )
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

fn fixtures() -> Option<Fixtures> {
    if !common::have_ort() {
        common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
        return None;
    }
    let mut paths = Vec::new();
    for name in ["scrfd.onnx", "arcface.onnx", "inswapper.onnx", "gfpgan.onnx", "landmark106.onnx"] {
        let Some(path) = common::fixture(name) else {
            common::skip(&format!("fixture {name} missing (run `make fixtures`)"));
            return None;
        };
        paths.push(path);
    }
    let dir = tempfile::tempdir().expect("a scratch folder");
    let face = dir.path().join("block-face.png");
    block_picture(640, 640, &[(320, 256)]).save(&face).expect("the face picture is written");
    let [scrfd, arcface, inswapper, gfpgan, landmark] = paths.try_into().ok()?;
    Some(Fixtures { scrfd, arcface, inswapper, gfpgan, landmark, dir, face })
}

/// A black RGB picture with a white 32×32 block at each top-left corner of `blocks`: one face
/// each to the fixture detector when the corners are on the 32-px grid.
fn block_picture(width: u32, height: u32, blocks: &[(u32, u32)]) -> image::RgbImage {
    let mut picture = image::RgbImage::new(width, height);
    for &(bx, by) in blocks {
        for y in by..(by + 32).min(height) {
            for x in bx..(bx + 32).min(width) {
                picture.put_pixel(x, y, image::Rgb([255, 255, 255]));
            }
        }
    }
    picture
}

/// A named pipe made at `path`, with what its error must say: opening one to read would wait for
/// a writer forever. Windows has no named pipes among its files, so no such case there.
#[cfg(unix)]
fn fifo_case(path: &Path, expected: &'static str) -> Option<(PathBuf, &'static str)> {
    let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
    // SAFETY: a valid NUL-terminated path.
    assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0, "mkfifo {}", path.display());
    Some((path.to_path_buf(), expected))
}

#[cfg(not(unix))]
fn fifo_case(_path: &Path, _expected: &'static str) -> Option<(PathBuf, &'static str)> {
    None
}

fn start_error(description: &str) -> String {
    let log = common::run_launch(description);
    assert!(!log.errors.is_empty(), "expected an error from '{description}', got {log:?}");
    log.error_text()
}

// ------------------------------------------------------------------------------------------
// Model files
// ------------------------------------------------------------------------------------------

/// Each way a model file can be bad, written into `dir` from `valid` (a model of the right kind)
/// and `wrong` (a valid model of another kind), with what the error must say.
fn bad_model_files(dir: &Path, tag: &str, valid: &Path, wrong: &Path) -> Vec<(PathBuf, &'static str)> {
    let bytes = std::fs::read(valid).expect("the fixture reads");
    let empty = dir.join(format!("{tag}-empty.onnx"));
    std::fs::write(&empty, b"").unwrap();
    let truncated = dir.join(format!("{tag}-truncated.onnx"));
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    let corrupt = dir.join(format!("{tag}-corrupt.onnx"));
    let mut garbled = bytes.clone();
    for (i, byte) in garbled.iter_mut().enumerate().skip(8) {
        *byte = (i as u8).wrapping_mul(151) ^ 0x5a;
    }
    std::fs::write(&corrupt, &garbled).unwrap();
    let folder = dir.join(format!("{tag}-folder.onnx"));
    std::fs::create_dir(&folder).unwrap();
    let mut cases = vec![
        (dir.join(format!("{tag}-missing.onnx")), "does not exist"),
        (empty, "the file is empty"),
        (truncated, "could not be loaded as an ONNX model"),
        (corrupt, "could not be loaded as an ONNX model"),
        (folder, "it is a directory"),
    ];
    cases.extend(fifo_case(&dir.join(format!("{tag}-pipe.onnx")), "not a regular file"));
    cases.push((wrong.to_path_buf(), "is not the kind of model this element needs: expected"));
    cases
}

#[test]
fn every_model_property_refuses_bad_files_naming_file_and_cause() {
    let Some(f) = fixtures() else { return };
    // (element line with {} for the bad file, the property, a model of the right kind, a wrong one)
    let detect = |extra: &str| format!("dlcdetect model-file={} {extra}", f.scrfd.display());
    let swap = |extra: &str| format!("dlcswap {} {extra}", f.swap_props());
    let cases: Vec<(String, &str, &Path, &Path)> = vec![
        ("dlcdetect model-file={}".into(), "model-file", &f.scrfd, &f.gfpgan),
        (detect("recognition-model={}"), "recognition-model", &f.arcface, &f.landmark),
        (detect("landmark-model={}"), "landmark-model", &f.landmark, &f.arcface),
        (swap("model-file={}"), "model-file", &f.inswapper, &f.arcface),
        (swap("detector-model={}"), "detector-model", &f.scrfd, &f.inswapper),
        (swap("recognition-model={}"), "recognition-model", &f.arcface, &f.scrfd),
        (swap("landmark-model={}"), "landmark-model", &f.landmark, &f.gfpgan),
        ("dlcenhance model-file={}".into(), "model-file", &f.gfpgan, &f.scrfd),
    ];
    for (index, (element, property, valid, wrong)) in cases.into_iter().enumerate() {
        let tag = format!("{index}-{property}");
        for (bad, expected) in bad_model_files(f.dir.path(), &tag, valid, wrong) {
            let line = element.replace("{}", &bad.display().to_string());
            let text = start_error(&format!(
                "videotestsrc num-buffers=1 ! video/x-raw,width=64,height=64 ! {line} ! fakesink"
            ));
            let what = format!("{line}: {text}");
            assert!(text.contains(&bad.display().to_string()), "the file is named: {what}");
            assert!(text.contains(expected), "'{expected}' expected: {what}");
            if expected == "does not exist" || expected == "it is a directory" {
                assert!(text.contains(&format!("'{property}'")), "the property is named: {what}");
            }
        }
    }
}

// Bare model names (`model-file=det_10g.onnx`, as README's recipes write them) are looked for in
// the current directory, then in the model directory. The model directory comes from the
// environment, so the cases run in a process of their own with `DLC_MODELS_DIR` and the current
// directory set.

const LOOKUP_CHILD: &str = "DLC_FAULTS_LOOKUP_CHILD";

#[test]
#[ignore = "run by bare_model_names_are_found_in_the_model_directory in a process of its own"]
fn bare_model_names_child() {
    if std::env::var_os(LOOKUP_CHILD).is_none() {
        return;
    }
    let Some(f) = fixtures() else { return };
    let models = PathBuf::from(std::env::var_os("DLC_MODELS_DIR").expect("the parent sets DLC_MODELS_DIR"));
    let here = std::env::current_dir().expect("a current directory");
    let face = f.face.display();
    // (element line, its model properties) with bare file names only.
    let lines = [
        (
            "dlcdetect model-file=det.onnx recognition-model=rec.onnx landmark-model=lmk.onnx".to_string(),
            vec!["model-file", "recognition-model", "landmark-model"],
        ),
        (
            format!(
                "dlcswap model-file=swap.onnx detector-model=det.onnx recognition-model=rec.onnx landmark-model=lmk.onnx source={face}"
            ),
            vec!["model-file", "detector-model", "recognition-model", "landmark-model"],
        ),
        ("dlcenhance model-file=gfpgan.onnx".to_string(), vec!["model-file"]),
    ];
    let description =
        |line: &str| format!("videotestsrc num-buffers=1 ! video/x-raw,width=64,height=64 ! {line} ! fakesink");
    let mut checked = 0;
    for (line, properties) in &lines {
        let log = common::run_launch(&description(line));
        assert!(log.eos && log.errors.is_empty(), "{line}: {}", log.error_text());
        for property in properties {
            let missing = format!("absent-{property}.onnx");
            let words: Vec<String> = line
                .split_whitespace()
                .map(|w| {
                    if w.starts_with(&format!("{property}=")) { format!("{property}={missing}") } else { w.to_string() }
                })
                .collect();
            let text = start_error(&description(&words.join(" ")));
            let what = format!("{property} of '{line}': {text}");
            assert!(text.contains(&format!("model file '{missing}' does not exist")), "{what}");
            assert!(text.contains(&format!("'{}' (the current directory)", here.join(&missing).display())), "{what}");
            assert!(text.contains(&format!("'{}' (the model directory)", models.join(&missing).display())), "{what}");
            assert!(text.contains(&format!("'{property}'")), "the property is named: {what}");
            checked += 1;
        }
    }
    println!("LOOKUPS CHECKED {checked}");
}

#[test]
fn bare_model_names_are_found_in_the_model_directory() {
    let Some(f) = fixtures() else { return };
    let models = tempfile::tempdir().unwrap();
    for (name, fixture) in [
        ("det.onnx", &f.scrfd),
        ("rec.onnx", &f.arcface),
        ("lmk.onnx", &f.landmark),
        ("swap.onnx", &f.inswapper),
        ("gfpgan.onnx", &f.gfpgan),
    ] {
        common::link_file(fixture, &models.path().join(name));
    }
    let elsewhere = tempfile::tempdir().unwrap();
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "bare_model_names_child", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(LOOKUP_CHILD, "1")
        .env("DLC_MODELS_DIR", models.path())
        .current_dir(elsewhere.path())
        .output()
        .expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let what = format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "{what}");
    assert!(stdout.contains("LOOKUPS CHECKED 8"), "every model property was checked: {what}");
}

#[test]
fn an_unavailable_provider_falls_back_to_the_cpu_with_a_warning_on_every_element() {
    let Some(f) = fixtures() else { return };
    // DirectML: absent from Linux's ONNX Runtime; `make windows-check` runs this test again with
    // the DirectML build of ONNX Runtime, which Wine gives no Direct3D 12 device.
    for provider in ["cuda", "tensorrt", "directml"] {
        let (log, faces) = common::run_collecting_faces(&format!(
            "videotestsrc pattern=black num-buffers=2 ! video/x-raw,format=RGB,width=640,height=480 \
             ! dlcdetect model-file={} execution-provider={provider} ! dlcswap {} execution-provider={provider} \
             ! dlcenhance model-file={} execution-provider={provider} ! fakesink name=sink",
            f.scrfd.display(),
            f.swap_props(),
            f.gfpgan.display()
        ));
        assert!(log.eos && log.errors.is_empty(), "{provider}: {log:?}");
        assert_eq!(faces.len(), 2, "{provider}: every frame passes");
        for model in [&f.scrfd, &f.inswapper, &f.arcface, &f.gfpgan] {
            let name = model.file_name().unwrap().to_str().unwrap();
            assert!(
                log.warnings.iter().any(|w| w.contains(&format!("'{provider}'"))
                    && w.contains(name)
                    && w.contains("running on the CPU")),
                "{provider}: no fallback warning for {name}: {:?}",
                log.warnings
            );
        }
    }
}

// ------------------------------------------------------------------------------------------
// ONNX Runtime library faults: one ONNX Runtime per process, so each case runs this binary
// again with only the child test below, and a library path of its own.
// ------------------------------------------------------------------------------------------

const CHILD_CASE: &str = "DLC_FAULTS_ORT_CASE";

#[test]
#[ignore = "run by onnx_runtime_library_faults in a process of its own"]
fn onnx_runtime_library_child() {
    let Some(case) = std::env::var_os(CHILD_CASE) else { return };
    let model = common::fixture("scrfd.onnx").expect("the parent checked the fixture");
    let log = common::run_launch(&format!(
        "videotestsrc num-buffers=1 ! dlcdetect model-file={} ! fakesink",
        model.display()
    ));
    println!("CASE {case:?} ERRORS {}", log.error_text());
    // The other elements ask about providers before opening a model (the float16 file, the CUDA
    // stream): they too report the library rather than panic.
    let fixture = |name: &str| common::fixture(name).expect("the parent checked the fixtures").display().to_string();
    for (element, chain) in [
        (
            "dlcswap",
            format!(
                "dlcswap source=face.png detector-model={} recognition-model={} model-file={}",
                fixture("scrfd.onnx"),
                fixture("arcface.onnx"),
                fixture("inswapper.onnx")
            ),
        ),
        ("dlcenhance", format!("dlcenhance model-file={}", fixture("gfpgan.onnx"))),
    ] {
        let log = common::run_launch(&format!("videotestsrc num-buffers=1 ! {chain} ! fakesink"));
        println!("ELEMENT {element} ERRORS {}", log.error_text().replace('\n', " "));
    }
    // GStreamer goes on working after the failure.
    let after = common::run_launch("videotestsrc num-buffers=2 ! fakesink");
    println!("AFTER eos={} errors={}", after.eos, after.errors.len());
}

#[test]
fn onnx_runtime_library_faults() {
    if ["scrfd.onnx", "arcface.onnx", "inswapper.onnx", "gfpgan.onnx"].iter().any(|f| common::fixture(f).is_none()) {
        common::skip("fixtures scrfd, arcface, inswapper or gfpgan missing (run `make fixtures`)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let text_file = dir.path().join("libonnxruntime.so.1.20.0");
    std::fs::write(&text_file, "not a shared library\n").unwrap();
    let truncated = dir.path().join("libonnxruntime.so.1.21.0");
    std::fs::write(&truncated, b"\x7fELF\x02\x01\x01\0").unwrap();
    let other_library = another_library();
    let cases = [
        ("missing", dir.path().join("absent/libonnxruntime.so.1.19.0")),
        ("text", text_file),
        ("truncated", truncated),
        ("folder", dir.path().to_path_buf()),
        ("another library", other_library),
    ];
    for (case, library) in cases {
        let output = std::process::Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "onnx_runtime_library_child", "--include-ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_CASE, case)
            .env("ORT_DYLIB_PATH", &library)
            .env_remove("LD_LIBRARY_PATH")
            .output()
            .expect("the test binary runs again");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let what = format!("{case}: {stdout}\n{}", String::from_utf8_lossy(&output.stderr));
        assert!(output.status.success(), "the child ends normally: {what}");
        assert!(stdout.contains("ONNX Runtime library not found"), "{what}");
        for element in ["dlcswap", "dlcenhance"] {
            let line = stdout.lines().find(|l| l.starts_with(&format!("ELEMENT {element} ERRORS"))).unwrap_or_default();
            assert!(line.contains("ONNX Runtime library not found"), "{element}: {what}");
        }
        assert!(stdout.contains("ORT_DYLIB_PATH") && stdout.contains(&library.display().to_string()), "{what}");
        assert!(stdout.contains("AFTER eos=true errors=0"), "GStreamer keeps working: {what}");
    }
}

/// A real shared library that is not ONNX Runtime: GStreamer's own, loaded in this process.
#[cfg(unix)]
fn another_library() -> PathBuf {
    let maps = std::fs::read_to_string("/proc/self/maps").unwrap_or_default();
    maps.lines()
        .filter_map(|line| line.split_whitespace().nth(5))
        .find(|path| path.contains("libgstreamer-1.0.so"))
        .map(PathBuf::from)
        .expect("libgstreamer-1.0 is mapped into the test process")
}

/// A real DLL that is not ONNX Runtime: Windows' own kernel32.dll.
#[cfg(windows)]
fn another_library() -> PathBuf {
    let windows = std::env::var_os("SystemRoot").expect("SystemRoot is set on Windows");
    PathBuf::from(windows).join("System32").join("kernel32.dll")
}

/// A folder on `PATH` that holds `onnxruntime.dll`, as a wheel's `onnxruntime\capi\` does, with
/// `ORT_DYLIB_PATH` unset: the plugin finds the library there.
#[test]
#[cfg(windows)]
fn onnx_runtime_from_a_folder_on_path() {
    if !common::have_ort() || common::fixture("scrfd.onnx").is_none() {
        common::skip("ORT_DYLIB_PATH or the scrfd fixture missing (run `make windows-check`)");
        return;
    }
    let library = PathBuf::from(std::env::var_os("ORT_DYLIB_PATH").unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(&library, dir.path().join("onnxruntime.dll")).unwrap();
    let mut path = vec![dir.path().to_path_buf()];
    path.extend(std::env::var_os("PATH").map(|p| std::env::split_paths(&p).collect::<Vec<_>>()).unwrap_or_default());
    elements_start_in_a_child("onnxruntime.dll on PATH", |child| {
        child.env("PATH", std::env::join_paths(path).unwrap());
    });
}

/// A folder on `LD_LIBRARY_PATH` that holds only a versioned `libonnxruntime.so.1.x`, as a
/// wheel's `onnxruntime/capi/` does: the dynamic loader finds no `libonnxruntime.so.1` there, the
/// plugin takes the versioned file.
#[test]
#[cfg(unix)]
fn onnx_runtime_from_a_versioned_file_on_ld_library_path() {
    if !common::have_ort() || common::fixture("scrfd.onnx").is_none() {
        common::skip("ORT_DYLIB_PATH or the scrfd fixture missing (run `make test`)");
        return;
    }
    let library = PathBuf::from(std::env::var_os("ORT_DYLIB_PATH").unwrap());
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&library, dir.path().join("libonnxruntime.so.1.30.0")).unwrap();
    elements_start_in_a_child("versioned file on LD_LIBRARY_PATH", |child| {
        child.env("LD_LIBRARY_PATH", dir.path());
    });
}

/// Runs `onnx_runtime_library_child` again in a child process for `case`, without
/// `ORT_DYLIB_PATH` and with the environment `set_up` gives it, and checks that dlcdetect and
/// dlcenhance started there with no error (the child prints a line for each).
fn elements_start_in_a_child(case: &str, set_up: impl FnOnce(&mut std::process::Command)) {
    let mut child = std::process::Command::new(std::env::current_exe().unwrap());
    child
        .args(["--exact", "onnx_runtime_library_child", "--include-ignored", "--nocapture", "--test-threads=1"])
        .env(CHILD_CASE, case)
        .env_remove("ORT_DYLIB_PATH");
    set_up(&mut child);
    let output = child.output().expect("the test binary runs again");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let what = format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success(), "the child ends normally: {what}");
    // The child's first line follows its test's name.
    let detect = stdout.lines().find_map(|l| l.split_once("CASE ")).map(|(_, case)| case).unwrap_or_default();
    assert_eq!(detect.trim_end(), format!("{case:?} ERRORS"), "dlcdetect starts: {what}");
    let enhance = stdout.lines().find(|l| l.starts_with("ELEMENT dlcenhance ERRORS")).unwrap_or_default();
    assert_eq!(enhance.trim_end(), "ELEMENT dlcenhance ERRORS", "dlcenhance starts: {what}");
}

// ------------------------------------------------------------------------------------------
// Pictures: source, reference and face-map
// ------------------------------------------------------------------------------------------

/// Bad pictures, each with what the start error must say about it.
fn bad_pictures(f: &Fixtures) -> Vec<(PathBuf, &'static str)> {
    let empty = f.path("empty.png");
    std::fs::write(&empty, b"").unwrap();
    let truncated = f.path("truncated.png");
    let bytes = std::fs::read(&f.face).unwrap();
    std::fs::write(&truncated, &bytes[..bytes.len() / 3]).unwrap();
    let corrupt = f.path("corrupt.jpg");
    let mut garbled = bytes.clone();
    for byte in garbled.iter_mut().skip(40) {
        *byte ^= 0x55;
    }
    std::fs::write(&corrupt, &garbled).unwrap();
    let text = f.path("notes.jpg");
    std::fs::write(&text, "a text file, not a picture\n").unwrap();
    let faceless = f.path("grey.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128])).save(&faceless).unwrap();
    let huge = f.path("huge.png");
    image::GrayImage::new(12000, 12000).save(&huge).unwrap();
    let mut cases = vec![
        (f.path("missing.png"), "cannot open"),
        (empty, "not a readable PNG or JPEG"),
        (truncated, "not a readable PNG or JPEG"),
        (corrupt, "not a readable PNG or JPEG"),
        (text, "not a readable PNG or JPEG"),
        (faceless, "no face found"),
        (huge, "is 12000×12000 pixels, more than the 67 megapixels"),
    ];
    cases.extend(fifo_case(&f.path("pipe.png"), "not a regular file"));
    cases.push((f.dir.path().to_path_buf(), "not a regular file"));
    cases
}

#[test]
fn bad_source_reference_and_face_map_pictures_fail_start_naming_the_file() {
    let Some(f) = fixtures() else { return };
    let models = format!(
        "model-file={} detector-model={} recognition-model={}",
        f.inswapper.display(),
        f.scrfd.display(),
        f.arcface.display()
    );
    for (bad, expected) in bad_pictures(&f) {
        let bad_text = bad.display().to_string();
        let map = f.path("map.txt");
        std::fs::write(&map, format!("{} = {}\n", f.face.display(), bad.display())).unwrap();
        for (props, property) in [
            (format!("source={bad_text}"), "source"),
            (format!("source={} target=reference reference={bad_text}", f.face.display()), "reference"),
            (format!("face-map={}", map.display()), "face-map source"),
        ] {
            let text = start_error(&format!(
                "videotestsrc num-buffers=1 ! video/x-raw,width=64,height=64 ! dlcswap {models} {props} ! fakesink"
            ));
            assert!(text.contains(&bad_text) && text.contains(expected), "{property} {bad_text}: {text}");
            assert!(text.contains(property), "the property is named: {text}");
        }
    }
    // The face map file itself.
    let empty_map = f.path("empty-map.txt");
    std::fs::write(&empty_map, "# nothing yet\n").unwrap();
    let broken_map = f.path("broken-map.txt");
    std::fs::write(&broken_map, "me.jpg: you.jpg\n").unwrap();
    let maps = [
        (f.path("absent-map.txt"), "cannot be read"),
        (empty_map, "has no 'reference-image = source-image' lines"),
        (broken_map, "line 1: expected 'reference-image = source-image'"),
        (f.dir.path().to_path_buf(), "not a regular file"),
    ];
    for (map, expected) in maps.into_iter().chain(fifo_case(&f.path("pipe-map.txt"), "not a regular file")) {
        let text = start_error(&format!(
            "videotestsrc num-buffers=1 ! dlcswap {models} face-map={} ! fakesink",
            map.display()
        ));
        assert!(text.contains("face-map") && text.contains(&map.display().to_string()), "{text}");
        assert!(text.contains(expected), "'{expected}': {text}");
    }
}

/// Runs a frame with one block face through detect ! swap with `source`, returning the frame.
fn swapped_frame(f: &Fixtures, source: &Path) -> (common::BusLog, Vec<u8>) {
    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width=640,height=480,framerate=30/1 \
         ! dlcdetect model-file={} ! dlcswap model-file={} detector-model={} recognition-model={} source={} \
         ! appsink name=sink sync=false",
        f.scrfd.display(),
        f.inswapper.display(),
        f.scrfd.display(),
        f.arcface.display(),
        source.display()
    ));
    let out = Arc::new(Mutex::new(Vec::new()));
    let seen = out.clone();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                let buffer = sample.buffer().ok_or(gst::FlowError::Error)?;
                *seen.lock().unwrap() = buffer.map_readable().map_err(|_| gst::FlowError::Error)?.to_vec();
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    src.push_buffer(gst::Buffer::from_slice(block_picture(640, 480, &[(320, 256)]).into_raw())).unwrap();
    src.end_of_stream().unwrap();
    let log = common::run(&pipeline, TIMEOUT);
    let frame = std::mem::take(&mut *out.lock().unwrap());
    (log, frame)
}

#[test]
fn grey_16_bit_alpha_and_crowded_source_pictures_give_the_same_swap() {
    let Some(f) = fixtures() else { return };
    let (log, expected) = swapped_frame(&f, &f.face);
    assert!(log.eos && log.errors.is_empty() && !expected.is_empty(), "{log:?}");
    let original = block_picture(640, 480, &[(320, 256)]).into_raw();
    assert_ne!(expected, original, "the face was swapped");

    let rgb = image::DynamicImage::ImageRgb8(block_picture(640, 640, &[(320, 256)]));
    let grey = f.path("grey.png");
    rgb.to_luma8().save(&grey).unwrap();
    let grey16 = f.path("grey16.png");
    rgb.to_luma16().save(&grey16).unwrap();
    let rgb16 = f.path("rgb16.png");
    rgb.to_rgb16().save(&rgb16).unwrap();
    let alpha = f.path("alpha.png");
    rgb.to_rgba8().save(&alpha).unwrap();
    let jpeg = f.path("face.jpg");
    rgb.to_rgb8().save(&jpeg).unwrap();
    for picture in [grey, grey16, rgb16, alpha] {
        let (log, frame) = swapped_frame(&f, &picture);
        assert!(log.eos && log.errors.is_empty() && log.warnings.is_empty(), "{}: {log:?}", picture.display());
        assert!(frame == expected, "{}: the same identity as the 8-bit RGB picture", picture.display());
    }
    // Lossy, so a slightly different identity, but a face all the same.
    let (log, frame) = swapped_frame(&f, &jpeg);
    assert!(log.eos && log.errors.is_empty() && frame != original, "{log:?}");

    // Hundreds of faces: the largest (the first of equals) is the identity.
    let blocks: Vec<(u32, u32)> = (0..20).flat_map(|y| (0..20).map(move |x| (x * 32, y * 32))).collect();
    let crowd = f.path("crowd.png");
    block_picture(640, 640, &blocks).save(&crowd).unwrap();
    let (log, frame) = swapped_frame(&f, &crowd);
    assert!(log.eos && log.errors.is_empty() && frame != original, "{log:?}");
}

#[test]
fn a_bad_picture_set_while_playing_keeps_the_previous_face_with_a_warning() {
    let Some(f) = fixtures() else { return };
    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width=640,height=480,framerate=30/1 \
         ! dlcdetect model-file={} ! dlcswap name=swap {} ! appsink name=sink sync=false",
        f.scrfd.display(),
        f.swap_props()
    ));
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    let swap = pipeline.by_name("swap").unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let frame = block_picture(640, 480, &[(320, 256)]).into_raw();
    let next = |i: u64| {
        let mut buffer = gst::Buffer::from_slice(frame.clone());
        buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(33 * i));
        src.push_buffer(buffer).unwrap();
        let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(60)).expect("a frame");
        sample.buffer().unwrap().map_readable().unwrap().to_vec()
    };
    let first = next(0);
    assert_ne!(first, frame, "swapped");
    let mut i = 1;
    for (bad, expected) in bad_pictures(&f) {
        swap.set_property("source", bad.display().to_string());
        // The worker reports on the bus; frames go on meanwhile with the previous face.
        let warning = loop {
            let out = next(i);
            i += 1;
            assert!(out == first, "{}: the previous face stays", bad.display());
            if let Some(msg) = bus.timed_pop_filtered(
                gst::ClockTime::from_mseconds(200),
                &[gst::MessageType::Warning, gst::MessageType::Error],
            ) {
                match msg.view() {
                    gst::MessageView::Warning(w) => break format!("{} {:?}", w.error(), w.debug()),
                    gst::MessageView::Error(e) => {
                        panic!("{}: an error instead of a warning: {}", bad.display(), e.error())
                    }
                    _ => unreachable!("filtered"),
                }
            }
            assert!(i < 300, "{}: no warning", bad.display());
        };
        assert!(warning.contains(&bad.display().to_string()) && warning.contains(expected), "{warning}");
        assert!(warning.contains("keeping the previous face"), "{warning}");
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

// ------------------------------------------------------------------------------------------
// Caps
// ------------------------------------------------------------------------------------------

const WRITE_FORMATS: [&str; 13] =
    ["RGB", "BGR", "RGBx", "BGRx", "RGBA", "BGRA", "I420", "NV12", "YUY2", "UYVY", "YVYU", "NV21", "YV12"];
const READ_ONLY_FORMATS: [&str; 4] = ["xRGB", "xBGR", "ARGB", "ABGR"];

#[test]
fn tiny_odd_and_large_frames_in_every_format_pass_the_whole_chain() {
    let Some(f) = fixtures() else { return };
    let sizes = [(1, 1), (2, 2), (3, 5), (33, 17), (97, 61)];
    for (width, height) in sizes {
        // Every format at one odd size, the most common ones at every size.
        let formats =
            if (width, height) == (33, 17) { &WRITE_FORMATS[..] } else { &["RGB", "I420", "YUY2", "NV21"][..] };
        for &format in formats {
            let (log, faces) = common::run_collecting_faces(&format!(
                "videotestsrc pattern=white num-buffers=2 ! video/x-raw,format={format},width={width},height={height} \
                 ! {} ! fakesink name=sink",
                f.chain()
            ));
            let what = format!("{format} {width}x{height}");
            assert!(log.eos && log.errors.is_empty(), "{what}: {log:?}");
            assert_eq!(faces.len(), 2, "{what}");
        }
    }
    for format in READ_ONLY_FORMATS {
        let (log, faces) = common::run_collecting_faces(&format!(
            "videotestsrc num-buffers=2 ! video/x-raw,format={format},width=33,height=17 \
             ! dlcdetect model-file={} ! fakesink name=sink",
            f.scrfd.display()
        ));
        assert!(log.eos && log.errors.is_empty() && faces.len() == 2, "{format}: {log:?}");
    }
    // 4097×2161 (odd, just over 4K): one face at a known place, found and swapped.
    // In the detector's 640-wide letterbox (scale 640/4097) this block covers exactly one whole
    // 32-px cell (x 128..160, y 64..96) and less than 75 % of its neighbours: one face.
    let mut picture = image::RgbImage::new(4097, 2161);
    for y in 300..720 {
        for x in 700..1150 {
            picture.put_pixel(x, y, image::Rgb([255, 255, 255]));
        }
    }
    // GStreamer's rows of RGB are 4-byte aligned: 12292 bytes, one of padding.
    let packed = picture.into_raw();
    let frame: Vec<u8> = packed.chunks_exact(4097 * 3).flat_map(|row| row.iter().copied().chain([0])).collect();
    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width=4097,height=2161,framerate=30/1 \
         ! {} ! appsink name=sink sync=false",
        f.chain()
    ));
    let out = pull_frames(&pipeline, vec![frame.clone()]);
    assert_eq!(out.len(), 1);
    let faces = out[0].meta::<FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default();
    assert!(faces.iter().any(|face| face.flags.contains(FaceFlags::SWAPPED)), "{faces:?}");
    let pixels = out[0].map_readable().unwrap();
    assert_eq!(pixels.len(), frame.len());
    // Far from the face the frame is untouched.
    assert_eq!(&pixels[..12292 * 100], &frame[..12292 * 100]);
}

#[test]
fn a_buffer_smaller_than_its_caps_is_a_clear_error() {
    let Some(f) = fixtures() else { return };
    for element in [
        format!("dlcdetect model-file={}", f.scrfd.display()),
        format!("dlcswap {}", f.swap_props()),
        format!("dlcenhance model-file={}", f.gfpgan.display()),
    ] {
        let pipeline = common::pipeline(&format!(
            "appsrc name=src format=time caps=video/x-raw,format=RGB,width=64,height=64,framerate=30/1 \
             ! {element} ! fakesink"
        ));
        let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
        let mut buffer = gst::Buffer::from_slice(vec![0u8; 1000]);
        if !element.starts_with("dlcdetect") {
            FaceMeta::add(buffer.get_mut().unwrap(), vec![face([10.0, 10.0, 40.0, 50.0])]);
        }
        src.push_buffer(buffer).unwrap();
        src.end_of_stream().unwrap();
        let log = common::run(&pipeline, TIMEOUT);
        let text = log.error_text();
        assert!(text.contains("the buffer holds 1000 bytes, a 64×64 RGB frame"), "{element}: {log:?}");
        assert!(text.contains("needs 12288"), "{element}: {text}");
    }
}

/// Pushes `frames` (packed, the appsrc's caps) into `pipeline`'s appsrc `src` and returns every
/// buffer that reaches its appsink `sink`; fails on a bus error.
fn pull_frames(pipeline: &gst::Pipeline, frames: Vec<Vec<u8>>) -> Vec<gst::Buffer> {
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    for (i, frame) in frames.into_iter().enumerate() {
        let mut buffer = gst::Buffer::from_slice(frame);
        buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(33 * i as u64));
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    common::pull_all(pipeline, "sink")
}

#[test]
fn padded_strides_give_the_same_faces_and_pixels_and_keep_the_padding() {
    let Some(f) = fixtures() else { return };
    let (width, height) = (640usize, 480usize);
    let frame = block_picture(width as u32, height as u32, &[(320, 256)]).into_raw();
    let line = format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={width},height={height},framerate=30/1 \
         ! {} ! appsink name=sink sync=false",
        f.chain()
    );
    let plain = pull_frames(&common::pipeline(&line), vec![frame.clone()]);
    let plain_faces = plain[0].meta::<FaceMeta>().unwrap().faces().to_vec();
    let plain_pixels = plain[0].map_readable().unwrap().to_vec();

    // Rows of 1984 bytes (64 bytes of padding, 0xAB), described by a VideoMeta.
    let stride = width * 3 + 64;
    let mut padded = vec![0xABu8; stride * height];
    for y in 0..height {
        padded[y * stride..y * stride + width * 3].copy_from_slice(&frame[y * width * 3..(y + 1) * width * 3]);
    }
    let mut buffer = gst::Buffer::from_slice(padded);
    gst_video::VideoMeta::add_full(
        buffer.get_mut().unwrap(),
        gst_video::VideoFrameFlags::empty(),
        gst_video::VideoFormat::Rgb,
        width as u32,
        height as u32,
        &[0],
        &[stride as i32],
    )
    .unwrap();
    let pipeline = common::pipeline(&line);
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    src.push_buffer(buffer).unwrap();
    src.end_of_stream().unwrap();
    let out = common::pull_all(&pipeline, "sink");
    assert_eq!(out.len(), 1);
    assert_eq!(out[0].meta::<FaceMeta>().unwrap().faces(), &plain_faces[..]);
    let pixels = out[0].map_readable().unwrap();
    for y in 0..height {
        let row = &pixels[y * stride..(y + 1) * stride];
        assert_eq!(&row[..width * 3], &plain_pixels[y * width * 3..(y + 1) * width * 3], "row {y}");
        assert!(row[width * 3..].iter().all(|&b| b == 0xAB), "row {y}: the padding is kept");
    }
}

#[test]
fn resolution_and_format_changes_while_playing_are_followed() {
    let Some(f) = fixtures() else { return };
    let pipeline = common::pipeline(&format!(
        "videotestsrc pattern=white ! capsfilter name=caps caps=video/x-raw,format=RGB,width=320,height=240 \
         ! dlcdetect model-file={} max-faces=2 ! dlcswap {} many-faces=true ! dlcenhance model-file={} \
         ! appsink name=sink sync=false max-buffers=2",
        f.scrfd.display(),
        f.swap_props(),
        f.gfpgan.display()
    ));
    let capsfilter = pipeline.by_name("caps").unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    for (format, width, height) in
        [("RGB", 320, 240), ("I420", 641, 361), ("YUY2", 160, 97), ("RGBA", 1, 1), ("NV12", 320, 240), ("RGB", 64, 64)]
    {
        let caps: gst::Caps = format!("video/x-raw,format={format},width={width},height={height}").parse().unwrap();
        capsfilter.set_property("caps", &caps);
        let what = format!("{format} {width}x{height}");
        let mut seen = 0;
        for _ in 0..200 {
            let sample =
                sink.try_pull_sample(gst::ClockTime::from_seconds(30)).unwrap_or_else(|| panic!("{what}: a frame"));
            let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
            if (info.format().to_str().as_str(), info.width(), info.height()) != (format, width, height) {
                continue;
            }
            let faces = sample.buffer().unwrap().meta::<FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default();
            for face in &faces {
                assert!(face.flags.contains(FaceFlags::SWAPPED | FaceFlags::ENHANCED), "{what}: {faces:?}");
            }
            seen += 1;
            if seen == 3 {
                break;
            }
        }
        assert_eq!(seen, 3, "{what}: frames of the new caps arrive");
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error]) {
            panic!("{what}: {msg:?}");
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
}

// ------------------------------------------------------------------------------------------
// Faces on buffers: hand-made FaceMeta
// ------------------------------------------------------------------------------------------

fn face(bbox: [f32; 4]) -> Face {
    let [x0, y0, x1, y1] = bbox;
    let (w, h) = (x1 - x0, y1 - y0);
    Face {
        bbox,
        score: 0.9,
        landmarks: [
            [x0 + 0.3 * w, y0 + 0.4 * h],
            [x0 + 0.7 * w, y0 + 0.4 * h],
            [x0 + 0.5 * w, y0 + 0.6 * h],
            [x0 + 0.35 * w, y0 + 0.8 * h],
            [x0 + 0.65 * w, y0 + 0.8 * h],
        ],
        landmarks_106: None,
        embedding: None,
        track_id: 0,
        flags: FaceFlags::INFERRED,
    }
}

/// The buffers that reach appsink `name` of `pipeline`, collected as they arrive.
fn collect_buffers(pipeline: &gst::Pipeline, name: &str) -> Arc<Mutex<Vec<gst::Buffer>>> {
    let out = Arc::new(Mutex::new(Vec::new()));
    let seen = out.clone();
    let sink = pipeline.by_name(name).unwrap().downcast::<gst_app::AppSink>().unwrap();
    sink.set_callbacks(
        gst_app::AppSinkCallbacks::builder()
            .new_sample(move |sink| {
                let sample = sink.pull_sample().map_err(|_| gst::FlowError::Eos)?;
                seen.lock().unwrap().push(sample.buffer_owned().ok_or(gst::FlowError::Error)?);
                Ok(gst::FlowSuccess::Ok)
            })
            .build(),
    );
    out
}

/// Runs frames of mid-grey RGB 320×240 carrying `faces` through swap ! enhance (`middle`).
fn run_with_faces(middle: &str, faces: Vec<Vec<Face>>) -> (common::BusLog, Vec<gst::Buffer>, Vec<u8>) {
    let frame = vec![128u8; 320 * 240 * 3];
    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width=320,height=240,framerate=30/1 \
         ! {middle} ! appsink name=sink sync=false"
    ));
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    let out = collect_buffers(&pipeline, "sink");
    for (i, frame_faces) in faces.into_iter().enumerate() {
        let mut buffer = gst::Buffer::from_slice(frame.clone());
        let b = buffer.get_mut().unwrap();
        b.set_pts(gst::ClockTime::from_mseconds(33 * i as u64));
        FaceMeta::add(b, frame_faces);
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    let log = common::run(&pipeline, TIMEOUT);
    let buffers = std::mem::take(&mut *out.lock().unwrap());
    (log, buffers, frame)
}

#[test]
fn broken_outside_tiny_and_crowded_faces_never_corrupt_a_frame() {
    let Some(f) = fixtures() else { return };
    let nan = f32::NAN;
    let inf = f32::INFINITY;
    let mut nan_landmarks = face([100.0, 100.0, 160.0, 170.0]);
    nan_landmarks.landmarks[2] = [nan, nan];
    let mut same_point = face([100.0, 100.0, 160.0, 170.0]);
    same_point.landmarks = [[130.0, 130.0]; 5];
    let mut short_106 = face([100.0, 100.0, 160.0, 170.0]);
    short_106.landmarks_106 = Some(vec![[120.0, 120.0]; 3].into());
    let mut short_embedding = face([100.0, 100.0, 160.0, 170.0]);
    short_embedding.embedding = Some(vec![0.1; 7].into());
    // 106 points spread over 1e30 pixels (a broken landmark model): the mouth mask's feathering
    // must not follow them.
    let mut huge_106 = face([100.0, 100.0, 160.0, 170.0]);
    let spread = |i: usize| (i as f32 * 0.7).sin_cos();
    huge_106.landmarks_106 = Some((0..106).map(|i| [spread(i).0 * 1e30, spread(i).1 * 1e30]).collect());
    // A box given right-to-left, bottom-to-top: the landmarks (an upside-down face) still hold.
    let inverted = face([200.0, 200.0, 100.0, 100.0]);
    // Faces that cannot be swapped: the frame must come out exactly as it went in.
    let unusable = vec![
        face([nan, nan, nan, nan]),
        face([inf, 0.0, inf, 10.0]),
        face([-inf, -inf, inf, inf]),
        face([50.0, 50.0, 50.0, 50.0]),
        nan_landmarks,
        same_point,
    ];
    // Wholly outside: swapped out there, which changes nothing in the frame.
    let outside = vec![face([5000.0, 5000.0, 5100.0, 5100.0]), face([-400.0, -400.0, -300.0, -300.0])];
    let partly_out = vec![face([-30.0, -40.0, 40.0, 50.0]), face([280.0, 190.0, 360.0, 280.0])];
    let tiny =
        vec![face([10.0, 10.0, 14.0, 15.0]), face([300.0, 200.0, 309.0, 209.0]), face([100.0, 100.0, 100.5, 100.5])];
    let crowd: Vec<Face> = (0..200)
        .map(|i| {
            let (x, y) = ((i % 20) as f32 * 16.0, (i / 20) as f32 * 24.0);
            face([x, y, x + 16.0, y + 24.0])
        })
        .collect();
    let mut frames: Vec<Vec<Face>> = unusable.iter().map(|face| vec![face.clone()]).collect();
    frames.extend([outside, partly_out, tiny, crowd, vec![short_106, short_embedding, inverted, huge_106]]);
    let middle = format!(
        "dlcswap {} many-faces=true mouth-mask=20 color-correction=true sharpness=1 \
         ! dlcenhance model-file={}",
        f.swap_props(),
        f.gfpgan.display()
    );
    let (log, out, original) = run_with_faces(&middle, frames);
    assert!(log.eos && log.errors.is_empty(), "{log:?}");
    assert_eq!(out.len(), unusable.len() + 5, "every frame passes");
    for (buffer, face) in out.iter().zip(&unusable) {
        let pixels = buffer.map_readable().unwrap();
        assert!(pixels.as_slice() == original.as_slice(), "{face:?}: the frame is left exactly as it was");
        let faces = buffer.meta::<FaceMeta>().unwrap().faces().to_vec();
        assert!(faces.len() == 1 && !faces[0].flags.contains(FaceFlags::SWAPPED), "{faces:?}");
    }
    let out = &out[unusable.len()..];
    assert!(out[0].map_readable().unwrap().as_slice() == original.as_slice(), "faces outside change nothing");
    let crowd_out = out[3].meta::<FaceMeta>().unwrap().faces().to_vec();
    assert_eq!(crowd_out.len(), 200);
    assert!(crowd_out.iter().all(|face| face.flags.contains(FaceFlags::SWAPPED | FaceFlags::ENHANCED)));
    let partly = out[1].meta::<FaceMeta>().unwrap().faces().to_vec();
    assert!(partly.iter().all(|face| face.flags.contains(FaceFlags::SWAPPED)), "{partly:?}");
}

#[test]
fn models_that_output_nan_leave_the_faces_as_they_were_with_a_warning() {
    let Some(f) = fixtures() else { return };
    let (Some(inswapper_nan), Some(gfpgan_nan)) =
        (common::fixture("inswapper_nan.onnx"), common::fixture("gfpgan_nan.onnx"))
    else {
        common::skip("fixtures inswapper_nan.onnx / gfpgan_nan.onnx missing (run `make fixtures`)");
        return;
    };
    let faces = vec![vec![face([100.0, 60.0, 180.0, 160.0])]; 3];
    for (middle, model) in [
        (
            format!(
                "dlcswap model-file={} detector-model={} recognition-model={} source={}",
                inswapper_nan.display(),
                f.scrfd.display(),
                f.arcface.display(),
                f.face.display()
            ),
            &inswapper_nan,
        ),
        (format!("dlcenhance model-file={}", gfpgan_nan.display()), &gfpgan_nan),
    ] {
        let (log, out, original) = run_with_faces(&middle, faces.clone());
        let what = model.display().to_string();
        assert!(log.eos && log.errors.is_empty(), "{what}: {log:?}");
        assert_eq!(out.len(), 3, "{what}");
        for buffer in &out {
            assert!(buffer.map_readable().unwrap().as_slice() == original.as_slice(), "{what}: the frame is unchanged");
            let faces = buffer.meta::<FaceMeta>().unwrap().faces().to_vec();
            assert!(!faces[0].flags.contains(FaceFlags::SWAPPED) && !faces[0].flags.contains(FaceFlags::ENHANCED));
        }
        let warnings: Vec<&String> = log.warnings.iter().filter(|w| w.contains("left as it is")).collect();
        assert_eq!(warnings.len(), 1, "{what}: one rate-limited warning: {:?}", log.warnings);
        assert!(warnings[0].contains("model output holds a non-finite value"), "{}", warnings[0]);
    }
}

// ------------------------------------------------------------------------------------------
// Stream events, shared buffers, state changes, concurrency
// ------------------------------------------------------------------------------------------

#[test]
fn eos_without_frames_ends_cleanly() {
    let Some(f) = fixtures() else { return };
    let log = common::run_launch(&format!("videotestsrc num-buffers=0 ! {} ! fakesink", f.chain()));
    assert!(log.eos && log.errors.is_empty() && log.warnings.is_empty(), "{log:?}");
}

#[test]
fn flushing_and_segment_seeks_while_playing_keep_frames_coming() {
    let Some(f) = fixtures() else { return };
    let pipeline = common::pipeline(&format!(
        "videotestsrc pattern=white ! video/x-raw,format=I420,width=160,height=120,framerate=30/1 \
         ! dlcdetect model-file={} max-faces=1 inference-interval=3 ! dlcswap {} ! dlcenhance model-file={} \
         ! appsink name=sink sync=false max-buffers=2",
        f.scrfd.display(),
        f.swap_props(),
        f.gfpgan.display()
    ));
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    let bus = pipeline.bus().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let pull = |what: &str| {
        for _ in 0..5 {
            let sample =
                sink.try_pull_sample(gst::ClockTime::from_seconds(30)).unwrap_or_else(|| panic!("{what}: a frame"));
            let faces = sample.buffer().unwrap().meta::<FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default();
            assert!(
                faces.len() == 1 && faces[0].flags.contains(FaceFlags::SWAPPED | FaceFlags::ENHANCED),
                "{what}: {faces:?}"
            );
        }
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Warning]) {
            panic!("{what}: {msg:?}");
        }
    };
    pull("start");
    let flush = gst::SeekFlags::FLUSH | gst::SeekFlags::ACCURATE;
    for position in [10u64, 0, 3] {
        pipeline.seek_simple(flush, gst::ClockTime::from_seconds(position)).unwrap();
        pull(&format!("after a flushing seek to {position} s"));
    }
    // A new segment without flushing, at another rate.
    pipeline
        .seek(
            2.0,
            gst::SeekFlags::empty(),
            gst::SeekType::Set,
            gst::ClockTime::from_seconds(1),
            gst::SeekType::None,
            gst::ClockTime::NONE,
        )
        .unwrap();
    pull("after a rate change");
    pipeline.set_state(gst::State::Null).unwrap();
}

#[test]
fn a_branch_beside_a_tee_never_sees_our_pixels_or_flags() {
    let Some(f) = fixtures() else { return };
    let pipeline = common::pipeline(&format!(
        "videotestsrc pattern=white num-buffers=3 ! video/x-raw,format=RGB,width=320,height=240 \
         ! dlcdetect model-file={} max-faces=2 ! tee name=t \
         t. ! queue ! dlcswap {} many-faces=true ! dlcenhance model-file={} ! appsink name=edited sync=false \
         t. ! queue ! appsink name=other sync=false",
        f.scrfd.display(),
        f.swap_props(),
        f.gfpgan.display()
    ));
    let collected: Vec<Arc<Mutex<Vec<gst::Buffer>>>> =
        ["edited", "other"].iter().map(|name| collect_buffers(&pipeline, name)).collect();
    let log = common::run(&pipeline, TIMEOUT);
    assert!(log.eos && log.errors.is_empty(), "{log:?}");
    let edited = collected[0].lock().unwrap().clone();
    let other = collected[1].lock().unwrap().clone();
    assert_eq!((edited.len(), other.len()), (3, 3));
    for (e, o) in edited.iter().zip(&other) {
        assert!(o.map_readable().unwrap().iter().all(|&b| b == 255), "the other branch keeps the white frame");
        assert!(e.map_readable().unwrap().iter().any(|&b| b != 255), "the edited branch has swapped faces");
        let other_faces = o.meta::<FaceMeta>().unwrap().faces().to_vec();
        assert!(other_faces.iter().all(|face| !face.flags.contains(FaceFlags::SWAPPED)), "{other_faces:?}");
        let edited_faces = e.meta::<FaceMeta>().unwrap().faces().to_vec();
        assert!(edited_faces.iter().all(|face| face.flags.contains(FaceFlags::SWAPPED | FaceFlags::ENHANCED)));
    }
}

#[test]
fn a_hundred_null_playing_null_cycles() {
    let Some(f) = fixtures() else { return };
    let pipeline = common::pipeline(&format!(
        "videotestsrc pattern=white ! video/x-raw,format=RGB,width=64,height=64 ! {} ! fakesink",
        f.chain()
    ));
    let bus = pipeline.bus().unwrap();
    for cycle in 0..100 {
        pipeline.set_state(gst::State::Playing).unwrap();
        let (result, current, _) = pipeline.state(gst::ClockTime::from_seconds(30));
        assert!(result.is_ok() && current == gst::State::Playing, "cycle {cycle}: {result:?} {current:?}");
        pipeline.set_state(gst::State::Null).unwrap();
        if let Some(msg) = bus.pop_filtered(&[gst::MessageType::Error, gst::MessageType::Warning]) {
            panic!("cycle {cycle}: {msg:?}");
        }
    }
}

#[test]
fn eight_pipelines_at_once_give_the_same_frames() {
    let Some(f) = fixtures() else { return };
    let line = format!(
        "videotestsrc pattern=white num-buffers=4 ! video/x-raw,format=RGB,width=160,height=128 \
         ! dlcdetect threads=1 model-file={} max-faces=2 ! dlcswap threads=1 {} many-faces=true \
         ! dlcenhance threads=1 model-file={} ! appsink name=sink sync=false",
        f.scrfd.display(),
        f.swap_props(),
        f.gfpgan.display()
    );
    let runs: Vec<Vec<Vec<u8>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    let pipeline = common::pipeline(&line);
                    common::pull_all(&pipeline, "sink").iter().map(|b| b.map_readable().unwrap().to_vec()).collect()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().expect("a pipeline thread")).collect()
    });
    assert_eq!(runs[0].len(), 4);
    assert!(runs[0].iter().all(|frame| frame.iter().any(|&b| b != 255)), "faces were swapped");
    for run in &runs[1..] {
        assert!(run == &runs[0], "every pipeline gives the same frames");
    }
}

#[test]
fn properties_changed_from_another_thread_while_frames_flow() {
    let Some(f) = fixtures() else { return };
    let pipeline = common::pipeline(&format!(
        "videotestsrc pattern=white num-buffers=60 ! video/x-raw,format=I420,width=160,height=128 \
         ! dlcdetect name=detect model-file={} max-faces=3 ! dlcswap name=swap {} \
         ! dlcenhance name=enhance model-file={} ! fakesink name=sink",
        f.scrfd.display(),
        f.swap_props(),
        f.gfpgan.display()
    ));
    let (detect, swap, enhance) =
        (pipeline.by_name("detect").unwrap(), pipeline.by_name("swap").unwrap(), pipeline.by_name("enhance").unwrap());
    let done = std::sync::atomic::AtomicBool::new(false);
    let log = std::thread::scope(|scope| {
        scope.spawn(|| {
            let mut i = 0u32;
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                detect.set_property("threshold", [0.3f64, 0.9][i as usize % 2]);
                detect.set_property("inference-interval", 1 + i % 3);
                detect.set_property("smoothing", f64::from(i % 5) / 5.0);
                swap.set_property("opacity", f64::from(i % 3) / 2.0);
                swap.set_property("many-faces", i.is_multiple_of(2));
                swap.set_property_from_str("target", ["largest", "left-most", "best-score"][i as usize % 3]);
                swap.set_property_from_str("mask", ["insightface", "ellipse"][i as usize % 2]);
                swap.set_property("sharpness", f64::from(i % 4));
                swap.set_property("color-correction", i % 2 == 1);
                enhance.set_property("blend", f64::from(i % 3) / 2.0);
                enhance.set_property_from_str("faces", ["all", "swapped"][i as usize % 2]);
                enhance.set_property("inference-interval", 1 + i % 2);
                i += 1;
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        let log = common::run(&pipeline, TIMEOUT);
        done.store(true, std::sync::atomic::Ordering::Relaxed);
        log
    });
    assert!(log.eos && log.errors.is_empty() && log.warnings.is_empty(), "{log:?}");
}

#[test]
fn target_reference_without_a_reference_while_playing_says_so_once() {
    let Some(f) = fixtures() else { return };
    let pipeline = common::pipeline(&format!(
        "videotestsrc pattern=white num-buffers=5 ! video/x-raw,format=RGB,width=160,height=128 \
         ! dlcdetect model-file={} max-faces=1 ! dlcswap name=swap {} ! fakesink",
        f.scrfd.display(),
        f.swap_props()
    ));
    pipeline.set_state(gst::State::Paused).unwrap();
    pipeline.by_name("swap").unwrap().set_property_from_str("target", "reference");
    let log = common::run(&pipeline, TIMEOUT);
    assert!(log.eos && log.errors.is_empty(), "{log:?}");
    assert_eq!(log.warnings.len(), 1, "{:?}", log.warnings);
    assert!(log.warnings[0].contains("target=reference needs the 'reference' property"), "{}", log.warnings[0]);
}

#[test]
fn non_finite_float_properties_are_refused() {
    common::init();
    for factory in ["dlcdetect", "dlcswap", "dlcenhance"] {
        let element = gst::ElementFactory::make(factory).build().unwrap();
        let doubles: Vec<glib::ParamSpec> = element
            .list_properties()
            .into_iter()
            .filter(|p| p.value_type() == f64::static_type() && p.flags().contains(glib::ParamFlags::WRITABLE))
            .collect();
        assert!(!doubles.is_empty(), "{factory} has float properties");
        for pspec in doubles {
            let name = pspec.name();
            // From a launch line (g_object_set_property): GLib warns that the value is out of
            // range and the property keeps its default.
            for bad in ["nan", "inf", "-inf"] {
                let bin = gst::parse::bin_from_description(&format!("{factory} name=e {name}={bad}"), false).unwrap();
                let value = bin.by_name("e").unwrap().property::<f64>(name);
                assert_eq!(Some(value), pspec.default_value().get::<f64>().ok(), "{factory} {name}={bad}");
            }
        }
    }
}

/// Also with dlcswap and dlcenhance holding frames in flight (`lanes=2`): the new caps wait for
/// them.
#[test]
fn an_appsrc_pushing_samples_with_new_caps_is_followed() {
    let Some(f) = fixtures() else { return };
    for lanes in [1, 2] {
        let chain = f.chain().replace("dlcswap ", &format!("dlcswap lanes={lanes} "));
        caps_changes_are_followed(&chain.replace("dlcenhance ", &format!("dlcenhance lanes={lanes} ")));
    }
}

fn caps_changes_are_followed(chain: &str) {
    let pipeline = common::pipeline(&format!("appsrc name=src format=time ! {chain} ! appsink name=sink sync=false"));
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    // (caps, frame, where the one face is): a block face at 640×480, a 4-byte format, a tiny frame.
    let rgb = block_picture(640, 480, &[(320, 256)]).into_raw();
    let rgbx: Vec<u8> = rgb.chunks_exact(3).flat_map(|p| [p[0], p[1], p[2], 0]).collect();
    let frames = [
        ("video/x-raw,format=RGB,width=640,height=480,framerate=30/1", rgb.clone()),
        ("video/x-raw,format=RGBx,width=640,height=480,framerate=30/1", rgbx),
        ("video/x-raw,format=RGB,width=2,height=2,framerate=30/1", vec![255u8; 16]),
        ("video/x-raw,format=RGB,width=640,height=480,framerate=30/1", rgb),
    ];
    for (i, (caps, data)) in frames.iter().enumerate() {
        let mut buffer = gst::Buffer::from_slice(data.clone());
        buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(33 * i as u64));
        let sample = gst::Sample::builder().buffer(&buffer).caps(&caps.parse::<gst::Caps>().unwrap()).build();
        src.push_sample(&sample).unwrap();
    }
    src.end_of_stream().unwrap();
    let out = common::pull_all(&pipeline, "sink");
    assert_eq!(out.len(), 4, "{chain}: every frame passes");
    for i in [0, 1, 3] {
        let faces = out[i].meta::<FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default();
        assert!(faces.len() == 1 && (faces[0].bbox[0] - 288.0).abs() < 1.0, "{chain}: frame {i}: {faces:?}");
        assert!(faces[0].flags.contains(FaceFlags::SWAPPED | FaceFlags::ENHANCED), "{chain}: frame {i}: {faces:?}");
    }
    // The RGBx frame is swapped like the RGB one (the padding byte left alone).
    let first = out[0].map_readable().unwrap();
    let second = out[1].map_readable().unwrap();
    let second_rgb: Vec<u8> = second.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect();
    assert!(second_rgb == first.as_slice(), "RGBx gives the RGB result");
    assert!(second.chunks_exact(4).all(|p| p[3] == 0));
}
