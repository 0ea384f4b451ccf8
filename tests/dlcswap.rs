// SPDX-License-Identifier: MPL-2.0
//! dlcswap: equivalence with the independent reference implementation, target selection,
//! reference and face-map matching, blending controls, live source changes and bad input.

mod common;

use std::path::{Path, PathBuf};

use gst::prelude::*;
use gstdlc::{Face, FaceFlags, FaceMeta};

struct Setup {
    detector: PathBuf,
    arcface: PathBuf,
    swapper: PathBuf,
    media: PathBuf,
    dir: tempfile::TempDir,
}

/// Real SCRFD for finding faces in real pictures, fixture ArcFace and inswapper for identities.
fn setup() -> Option<Setup> {
    let (detector, media, [arcface, swapper]) = common::real_faces(["arcface.onnx", "inswapper.onnx"])?;
    Some(Setup { detector, arcface, swapper, media, dir: tempfile::tempdir().expect("a temporary folder") })
}

impl Setup {
    fn picture(&self, name: &str) -> String {
        self.media.join(name).display().to_string()
    }

    /// Three portraits at different scales and angles on one 1280×720 frame.
    fn composite(&self) -> PathBuf {
        common::composed_portraits(self.dir.path(), &self.media)
    }

    fn swap_props(&self) -> String {
        format!(
            "detector-model={} recognition-model={} model-file={}",
            self.detector.display(),
            self.arcface.display(),
            self.swapper.display()
        )
    }

    /// Runs `picture ! dlcdetect ! <format> ! dlcswap <props>` and returns (original, swapped)
    /// RGB frames and the faces from the meta. Both frames went through `format`, so that they
    /// differ only where dlcswap wrote.
    fn run(&self, picture: &Path, format: &str, props: &str) -> (Vec<u8>, Vec<u8>, Vec<Face>, (usize, usize)) {
        let pipeline = common::pipeline(&format!(
            "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format=RGB ! dlcdetect model-file={} \
             ! videoconvert ! video/x-raw,format={format} ! tee name=t \
             t. ! queue ! videoconvert ! video/x-raw,format=RGB ! appsink name=original sync=false \
             t. ! queue ! dlcswap {} {props} ! videoconvert ! video/x-raw,format=RGB ! appsink name=swapped sync=false",
            picture.display(),
            self.detector.display(),
            self.swap_props()
        ));
        let original = pipeline.by_name("original").unwrap().downcast::<gst_app::AppSink>().unwrap();
        let swapped = pipeline.by_name("swapped").unwrap().downcast::<gst_app::AppSink>().unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let a = original.try_pull_sample(gst::ClockTime::from_seconds(60));
        let b = swapped.try_pull_sample(gst::ClockTime::from_seconds(60));
        let errors = common::drain_errors(&pipeline);
        pipeline.set_state(gst::State::Null).unwrap();
        let (a, b) =
            (a.unwrap_or_else(|| panic!("no frame: {errors:?}")), b.unwrap_or_else(|| panic!("no frame: {errors:?}")));
        let caps = a.caps().unwrap();
        let info = gst_video::VideoInfo::from_caps(caps).unwrap();
        let faces = b.buffer().unwrap().meta::<FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default();
        (packed(&a, &info), packed(&b, &info), faces, (info.width() as usize, info.height() as usize))
    }
}

/// The RGB bytes of a sample without row padding.
fn packed(sample: &gst::Sample, info: &gst_video::VideoInfo) -> Vec<u8> {
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let (w, h, stride) = (info.width() as usize, info.height() as usize, info.stride()[0] as usize);
    (0..h).flat_map(|y| map[y * stride..y * stride + w * 3].to_vec()).collect()
}

fn load_rgb(path: &Path) -> Vec<u8> {
    image::open(path).unwrap().to_rgb8().into_raw()
}

/// Whether any pixel inside `face`'s box differs between two frames.
fn face_changed(a: &[u8], b: &[u8], width: usize, face: &Face) -> bool {
    let [x1, y1, x2, y2] = face.bbox.map(|v| v.max(0.0) as usize);
    (y1..y2).any(|y| (x1..x2).any(|x| (0..3).any(|c| a[(y * width + x) * 3 + c] != b[(y * width + x) * 3 + c])))
}

fn equivalence(setup: &Setup, swapper: &Path, props: &str, reference_args: &[&str]) {
    let target = setup.composite();
    let props = format!("{props} model-file={}", swapper.display());
    let (original, ours, faces, _) = setup.run(&target, "RGB", &props);
    assert_eq!(faces.len(), 3, "three faces on the composite: {faces:?}");
    assert!(faces.iter().all(|f| f.flags.contains(FaceFlags::SWAPPED)));
    let json = setup.dir.path().join("faces.json");
    common::write_faces_json(&faces, &json);
    let out = setup.dir.path().join("reference.png");
    let source = setup.picture("newton.png");
    let mut args = vec![
        "swap",
        "--detector",
        setup.detector.to_str().unwrap(),
        "--recognizer",
        setup.arcface.to_str().unwrap(),
        "--swapper",
        swapper.to_str().unwrap(),
        "--source",
        &source,
        "--target",
        target.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--faces-json",
        json.to_str().unwrap(),
        "--many",
    ];
    args.extend_from_slice(reference_args);
    common::run_reference(&args);
    let reference = load_rgb(&out);
    // Agreement only means something if the swap changed the frame a lot.
    let (change, _) = common::differences(&original, &reference);
    assert!(change > 0.5, "the reference swap barely changed the frame: {change}");
    let (mae, max) = common::differences(&ours, &reference);
    eprintln!("{props} {reference_args:?}: frame change {change:.3}, mean abs difference {mae:.4}, max {max}");
    assert!(mae <= 1.0 && max <= 8, "mean {mae}, max {max}");
}

#[test]
fn swap_equals_the_reference_implementation() {
    let Some(setup) = setup() else { return };
    if common::reference_python().is_none() {
        common::skip("DLC_PYTHON is not set (run `make test`)");
        return;
    }
    let source = setup.picture("newton.png");
    equivalence(&setup, &setup.swapper, &format!("source={source} many-faces=true"), &[]);
    equivalence(
        &setup,
        &setup.swapper,
        &format!("source={source} many-faces=true mask=ellipse"),
        &["--mask", "ellipse"],
    );
    let fp16 = require!(common::fixture("inswapper_fp16.onnx"), "fixture inswapper_fp16.onnx missing");
    equivalence(&setup, &fp16, &format!("source={source} many-faces=true"), &[]);
}

#[test]
fn target_modes_choose_the_documented_face() {
    let Some(setup) = setup() else { return };
    let target = setup.composite();
    let source = setup.picture("newton.png");
    for (mode, expect) in [("largest", "largest"), ("left-most", "left"), ("best-score", "score")] {
        let (original, swapped, faces, (width, _)) =
            setup.run(&target, "RGB", &format!("source={source} target={mode}"));
        let chosen = match expect {
            "largest" => faces.iter().max_by(|a, b| a.area().total_cmp(&b.area())),
            "left" => faces.iter().min_by(|a, b| a.bbox[0].total_cmp(&b.bbox[0])),
            _ => faces.iter().max_by(|a, b| a.score.total_cmp(&b.score)),
        }
        .unwrap();
        for face in &faces {
            let is_chosen = face.track_id == chosen.track_id;
            assert_eq!(face.flags.contains(FaceFlags::SWAPPED), is_chosen, "{mode}: {face:?}");
            assert_eq!(face_changed(&original, &swapped, width, face), is_chosen, "{mode}: pixels of {face:?}");
        }
    }
}

#[test]
fn reference_and_face_map_pick_people_by_identity() {
    let Some(setup) = setup() else { return };
    let target = setup.composite();
    let (source, astronaut, gauss) =
        (setup.picture("newton.png"), setup.picture("astronaut.png"), setup.picture("gauss.png"));
    // Faces are ordered by score; find which face is which person by position on the composite.
    let who = |face: &Face| match face.bbox[0] {
        x if x < 450.0 => "gauss",
        x if x < 880.0 => "astronaut",
        _ => "newton",
    };
    let (_, _, faces, _) = setup.run(
        &target,
        "RGB",
        &format!("source={source} target=reference reference={astronaut} reference-distance=0.3 many-faces=true"),
    );
    let swapped: Vec<&str> = faces.iter().filter(|f| f.flags.contains(FaceFlags::SWAPPED)).map(who).collect();
    assert_eq!(swapped, vec!["astronaut"], "{faces:?}");

    let map = setup.dir.path().join("people.map");
    std::fs::write(&map, format!("# who becomes whom\n{astronaut} = {source}\n{gauss} = {astronaut}\n")).unwrap();
    let (_, _, faces, _) = setup.run(&target, "RGB", &format!("face-map={} reference-distance=0.3", map.display()));
    let mut swapped: Vec<&str> = faces.iter().filter(|f| f.flags.contains(FaceFlags::SWAPPED)).map(who).collect();
    swapped.sort();
    assert_eq!(swapped, vec!["astronaut", "gauss"], "{faces:?}");
}

#[test]
fn opacity_zero_leaves_the_frame_unchanged_and_outside_stays_exact() {
    let Some(setup) = setup() else { return };
    let target = setup.composite();
    let source = setup.picture("newton.png");
    let (original, swapped, _, _) = setup.run(&target, "RGB", &format!("source={source} opacity=0"));
    assert_eq!(original, swapped);

    // Outside the faces' reach the frame is bit-exact, in every writable format (compared after
    // the same conversion back to RGB).
    for format in ["RGB", "BGRx", "RGBA", "I420", "NV12"].into_iter().chain(common::CAMERA_FORMATS) {
        let (original, swapped, faces, (width, height)) =
            setup.run(&target, format, &format!("source={source} many-faces=true"));
        assert!(faces.iter().all(|f| f.flags.contains(FaceFlags::SWAPPED)), "{format}");
        let near_face = |x: usize, y: usize| {
            faces.iter().any(|f| {
                let (cx, cy) = ((f.bbox[0] + f.bbox[2]) / 2.0, (f.bbox[1] + f.bbox[3]) / 2.0);
                let reach = 1.2 * (f.width().max(f.height()));
                (x as f32 - cx).abs() < reach && (y as f32 - cy).abs() < reach
            })
        };
        for y in 0..height {
            for x in 0..width {
                if !near_face(x, y) {
                    let i = (y * width + x) * 3;
                    assert_eq!(original[i..i + 3], swapped[i..i + 3], "{format}: pixel {x},{y} changed");
                }
            }
        }
        assert!(faces.iter().all(|f| face_changed(&original, &swapped, width, f)), "{format}: faces swapped");
    }
}

#[test]
fn mouth_mask_keeps_the_original_mouth() {
    let Some(setup) = setup() else { return };
    let landmarks = require!(common::fixture("landmark106.onnx"), "fixture landmark106.onnx missing");
    let target = setup.composite();
    let source = setup.picture("newton.png");
    let props = format!("source={source} target=largest landmark-model={}", landmarks.display());
    let (original, plain, _, (width, _)) = setup.run(&target, "RGB", &props);
    let (_, masked, faces, _) = setup.run(&target, "RGB", &format!("{props} mouth-mask=40"));
    let face = faces.iter().find(|f| f.flags.contains(FaceFlags::SWAPPED)).unwrap();
    // dlcswap computed the 106 points itself (dlcdetect had no landmark model); measure how
    // close to the original the lip area is with and without the mask.
    let (x0, y0) = ((face.landmarks[3][0]) as usize, (face.landmarks[3][1] - 4.0) as usize);
    let (x1, y1) = ((face.landmarks[4][0]) as usize, (face.landmarks[4][1] + 4.0) as usize);
    let distance = |frame: &[u8]| -> u64 {
        (y0..y1)
            .flat_map(|y| (x0..x1).map(move |x| (y * width + x) * 3))
            .map(|i| (0..3).map(|c| frame[i + c].abs_diff(original[i + c]) as u64).sum::<u64>())
            .sum()
    };
    let (with_mask, without) = (distance(&masked), distance(&plain));
    assert!(without > 0, "the swap changes the mouth");
    assert!(with_mask * 2 < without, "mouth-mask keeps the mouth closer to the original: {with_mask} vs {without}");
}

#[test]
fn colour_correction_and_sharpness_change_the_face_only() {
    let Some(setup) = setup() else { return };
    let target = setup.composite();
    let source = setup.picture("newton.png");
    let (_, plain, _, _) = setup.run(&target, "RGB", &format!("source={source}"));
    for extra in ["color-correction=true", "sharpness=3"] {
        let (original, tuned, faces, (width, _)) = setup.run(&target, "RGB", &format!("source={source} {extra}"));
        assert_ne!(plain, tuned, "{extra} has an effect");
        let swapped = faces.iter().find(|f| f.flags.contains(FaceFlags::SWAPPED)).unwrap();
        for face in faces.iter().filter(|f| !f.flags.contains(FaceFlags::SWAPPED)) {
            assert!(!face_changed(&original, &tuned, width, face), "{extra} touched another face");
        }
        assert!(face_changed(&plain, &tuned, width, swapped));
    }
}

fn start_error(setup: &Setup, props: &str) -> String {
    let log = common::run_launch(&format!(
        "videotestsrc num-buffers=1 ! dlcdetect model-file={} ! dlcswap {} {props} ! fakesink",
        setup.detector.display(),
        setup.swap_props()
    ));
    assert!(!log.errors.is_empty(), "expected an error for '{props}'");
    log.error_text()
}

#[test]
fn bad_sources_fail_start_with_the_file_and_reason() {
    let Some(setup) = setup() else { return };
    let text = start_error(&setup, "");
    assert!(text.contains("'source' is not set"), "{text}");

    let text = start_error(&setup, "source=/nonexistent/face.jpg");
    assert!(text.contains("/nonexistent/face.jpg") && text.contains("cannot open"), "{text}");

    let not_image = setup.dir.path().join("face.jpg");
    std::fs::write(&not_image, "not a picture").unwrap();
    let text = start_error(&setup, &format!("source={}", not_image.display()));
    assert!(text.contains("face.jpg") && text.contains("not a readable PNG or JPEG"), "{text}");

    let faceless = setup.dir.path().join("grey.png");
    image::RgbImage::from_pixel(64, 64, image::Rgb([128, 128, 128])).save(&faceless).unwrap();
    let text = start_error(&setup, &format!("source={}", faceless.display()));
    assert!(text.contains("grey.png") && text.contains("no face found"), "{text}");

    let text = start_error(&setup, &format!("source={} target=reference", setup.picture("newton.png")));
    assert!(text.contains("'reference'"), "{text}");

    let text = start_error(&setup, &format!("face-map={}", not_image.display()));
    assert!(text.contains("face-map") && text.contains("line 1"), "{text}");
}

#[test]
fn camera_formats_link_and_swap_in_place_to_the_end() {
    let scrfd = require_fixture!("scrfd.onnx");
    let arcface = require_fixture!("arcface.onnx");
    let swapper = require_fixture!("inswapper.onnx");
    let dir = tempfile::tempdir().unwrap();
    let source = common::fixture_face_picture(dir.path());
    for format in common::CAMERA_FORMATS {
        // A white frame is a face in every 32×32 cell to the fixture detector: keep one.
        let (log, faces) = common::run_collecting_faces(&format!(
            "videotestsrc pattern=white num-buffers=3 ! video/x-raw,format={format},width=640,height=480 \
             ! dlcdetect model-file={} max-faces=1 ! dlcswap source={} detector-model={} recognition-model={} \
             model-file={} ! fakesink name=sink",
            scrfd.display(),
            source.display(),
            scrfd.display(),
            arcface.display(),
            swapper.display()
        ));
        common::assert_one_face_per_frame(format, &log, &faces, 3, FaceFlags::SWAPPED);
    }
}

#[test]
fn buffers_without_faces_pass_with_one_warning() {
    let Some(setup) = setup() else { return };
    let log = common::run_launch(&format!(
        "videotestsrc num-buffers=5 ! video/x-raw,format=RGB ! dlcswap {} source={} ! fakesink",
        setup.swap_props(),
        setup.picture("newton.png")
    ));
    assert!(log.eos && log.errors.is_empty(), "{log:?}");
    let warnings: Vec<&String> = log.warnings.iter().filter(|w| w.contains("put dlcdetect upstream")).collect();
    assert_eq!(warnings.len(), 1, "{:?}", log.warnings);
}

/// A playing `appsrc ! dlcdetect ! dlcswap ! appsink` that is fed the same still picture one
/// frame at a time, so that the output of each frame can be compared across property changes,
/// restarts and pipelines.
struct LiveSwap {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    swap: gst::Element,
    frame: Vec<u8>,
    pushed: std::cell::Cell<u64>,
}

impl LiveSwap {
    fn new(setup: &Setup, frame: &Path, props: &str) -> Self {
        let picture = image::open(frame).unwrap().to_rgb8();
        let pipeline = common::pipeline(&format!(
            "appsrc name=src format=time caps=video/x-raw,format=RGB,width={},height={},framerate=30/1 \
             ! dlcdetect model-file={} ! dlcswap name=swap {} {props} ! appsink name=sink sync=false",
            picture.width(),
            picture.height(),
            setup.detector.display(),
            setup.swap_props()
        ));
        let live = LiveSwap {
            src: pipeline.by_name("src").unwrap().downcast().unwrap(),
            sink: pipeline.by_name("sink").unwrap().downcast().unwrap(),
            swap: pipeline.by_name("swap").unwrap(),
            pipeline,
            frame: picture.into_raw(),
            pushed: std::cell::Cell::new(0),
        };
        live.play();
        live
    }

    fn play(&self) {
        self.pipeline.set_state(gst::State::Playing).unwrap();
    }

    /// Pushes the picture as the next frame and returns that frame as dlcswap left it.
    fn next(&self) -> Vec<u8> {
        let i = self.pushed.replace(self.pushed.get() + 1);
        let mut buffer = gst::Buffer::from_slice(self.frame.clone());
        buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(33 * i));
        self.src.push_buffer(buffer).unwrap();
        let sample = self.sink.try_pull_sample(gst::ClockTime::from_seconds(60)).expect("a frame");
        sample.buffer().unwrap().map_readable().unwrap().to_vec()
    }

    fn stop(&self) {
        self.pipeline.set_state(gst::State::Null).unwrap();
        self.pushed.set(0);
    }

    /// The output of the first frame of a pipeline that has only `source` from the start.
    fn first_frame(setup: &Setup, frame: &Path, source: &str) -> Vec<u8> {
        let live = LiveSwap::new(setup, frame, &format!("source={source}"));
        let out = live.next();
        live.stop();
        out
    }
}

impl Drop for LiveSwap {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[test]
fn source_changes_while_playing_apply_without_stalling() {
    let Some(setup) = setup() else { return };
    let live = LiveSwap::new(&setup, &setup.composite(), &format!("source={}", setup.picture("newton.png")));
    let newton = live.next();

    // A broken picture: a warning, and the previous identity stays.
    live.swap.set_property("source", "/nonexistent/other.png");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let bus = live.pipeline.bus().unwrap();
    let mut warned = false;
    while !warned && std::time::Instant::now() < deadline {
        if let Some(msg) = bus.timed_pop_filtered(gst::ClockTime::from_mseconds(100), &[gst::MessageType::Warning])
            && let gst::MessageView::Warning(w) = msg.view()
        {
            warned = format!("{} {:?}", w.error(), w.debug()).contains("/nonexistent/other.png");
        }
    }
    assert!(warned, "a warning names the broken picture");
    assert_eq!(live.next(), newton, "the previous identity stays");

    // A good picture: frames keep flowing while it is processed, and it takes over.
    live.swap.set_property("source", setup.picture("gauss.png"));
    let mut changed = false;
    for _ in 2..200 {
        if live.next() != newton {
            changed = true;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    assert!(changed, "the new source face is used");
    live.src.end_of_stream().unwrap();
}

/// How many threads this process has now.
fn thread_count() -> usize {
    std::fs::read_dir("/proc/self/task").map(|tasks| tasks.count()).unwrap_or(0)
}

#[test]
fn a_sync_bus_handler_may_set_source_on_every_warning() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::time::{Duration, Instant};

    let Some(setup) = setup() else { return };
    let good = setup.picture("gauss.png");
    let missing = setup.dir.path().join("missing.png").display().to_string();
    let picture = image::open(setup.picture("newton.png")).unwrap().to_rgb8();
    let caps = format!("video/x-raw,format=RGB,width={},height={},framerate=30/1", picture.width(), picture.height());
    // The first warning comes from the streaming thread: frames without face metadata, or
    // mouth-mask without 106-point landmarks. The handler answers every warning by setting
    // `source`: alternately cleared (which warns at once, from inside set_property) and a missing
    // picture (which the picture worker warns about), then a good picture to end the chain.
    let cases = [
        ("frames without faces", String::new()),
        ("mouth-mask without landmarks", format!("dlcdetect model-file={} !", setup.detector.display())),
    ];
    const CHANGES: usize = 12;
    for (what, detect) in cases {
        let pipeline = common::pipeline(&format!(
            "appsrc name=src format=time caps={caps} ! {detect} dlcswap name=swap {} source={good} mouth-mask=40 \
             ! fakesink",
            setup.swap_props()
        ));
        let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
        let swap = pipeline.by_name("swap").unwrap().downgrade();
        let warnings = std::sync::Arc::new(AtomicUsize::new(0));
        let counted = warnings.clone();
        let (good, missing) = (good.clone(), missing.clone());
        pipeline.bus().unwrap().set_sync_handler(move |_, msg| {
            if let (gst::MessageView::Warning(_), Some(swap)) = (msg.view(), swap.upgrade())
                && msg.src() == Some(swap.upcast_ref::<gst::Object>())
            {
                let n = counted.fetch_add(1, Ordering::SeqCst) + 1;
                let next = match n {
                    n if n >= CHANGES => Some(good.as_str()),
                    n if n % 2 == 1 => None,
                    _ => Some(missing.as_str()),
                };
                swap.set_property("source", next);
            }
            gst::BusSyncReply::Pass
        });

        // The pipeline runs to its end on another thread, so that a deadlock inside it fails
        // this test instead of hanging it.
        let (done, ended) = std::sync::mpsc::channel();
        let running = pipeline.clone();
        std::thread::spawn(move || {
            let _ = done.send(common::run(&running, Duration::from_secs(120)));
        });
        // Frames flow until the handler has seen every warning it answers (a deadlock stops
        // the count), then the stream ends.
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut pts = 0;
        while warnings.load(Ordering::SeqCst) < CHANGES {
            let seen = warnings.load(Ordering::SeqCst);
            assert!(Instant::now() < deadline, "{what}: the pipeline hangs after {seen} warnings (a deadlock?)");
            let mut buffer = gst::Buffer::from_slice(picture.as_raw().clone());
            buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(33 * pts));
            pts += 1;
            src.push_buffer(buffer).unwrap();
            std::thread::sleep(Duration::from_millis(20));
        }
        src.end_of_stream().unwrap();
        let log = ended
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{what}: the pipeline does not end (a deadlock?)"));
        assert!(log.eos && log.errors.is_empty(), "{what}: {log:?}");
        assert!(log.warnings.iter().any(|w| w.contains("missing.png")), "{what}: {:?}", log.warnings);
    }
}

#[test]
fn a_burst_of_source_changes_uses_one_worker_and_the_last_wins() {
    let Some(setup) = setup() else { return };
    let frame = PathBuf::from(setup.picture("astronaut.png"));
    let (newton, gauss) = (setup.picture("newton.png"), setup.picture("gauss.png"));
    let expected = LiveSwap::first_frame(&setup, &frame, &gauss);
    let live = LiveSwap::new(&setup, &frame, &format!("source={newton}"));
    let first = live.next();
    assert_ne!(first, expected, "the two sources give different frames");

    let before = thread_count();
    for i in 0..50 {
        live.swap.set_property("source", if i % 2 == 0 { &newton } else { &gauss });
    }
    // Other tests of this binary may start pipelines meanwhile: allow for their threads, far
    // fewer than one thread per change.
    let mut most = thread_count();
    let mut settled = 0;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while settled < 10 {
        assert!(std::time::Instant::now() < deadline, "the last source set never took over");
        let out = live.next();
        most = most.max(thread_count());
        settled = if out == expected { settled + 1 } else { 0 };
    }
    assert!(most <= before + 20, "{} threads before the changes, up to {most} after", before);
    // Nothing older comes back once the worker is idle.
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(live.next(), expected, "the last source set stays");
}

/// `picture` enlarged `factor` times, as a PNG in `dir`: its identity takes the picture worker
/// long enough to be still in flight at a stop.
fn enlarged(picture: &str, factor: u32, dir: &Path) -> PathBuf {
    let image = image::open(picture).unwrap();
    let (w, h) = (image.width() * factor, image.height() * factor);
    let path = dir.join("enlarged.png");
    image.resize_exact(w, h, image::imageops::FilterType::Triangle).to_rgb8().save(&path).unwrap();
    path
}

#[test]
fn a_picture_in_flight_at_stop_never_replaces_the_identity_of_the_next_start() {
    let Some(setup) = setup() else { return };
    let frame = PathBuf::from(setup.picture("astronaut.png"));
    let big = enlarged(&setup.picture("gauss.png"), 4, setup.dir.path());
    let started = std::time::Instant::now();
    let stale = LiveSwap::first_frame(&setup, &frame, &big.display().to_string());
    // An upper bound of the time the worker needs for the big picture.
    let slow = started.elapsed();
    let sources = [setup.picture("newton.png"), setup.picture("astronaut.png")];
    let expected: Vec<Vec<u8>> = sources.iter().map(|s| LiveSwap::first_frame(&setup, &frame, s)).collect();
    assert!(expected.iter().all(|e| *e != stale), "the big picture's face is told apart");

    let live = LiveSwap::new(&setup, &frame, &format!("source={}", sources[0]));
    for cycle in 0..3 {
        live.next();
        live.swap.set_property("source", big.display().to_string());
        let asked = std::time::Instant::now();
        // Long enough for the worker to be busy with the big picture, far shorter than it takes.
        std::thread::sleep(slow / 10);
        live.stop();
        let source = (cycle + 1) % 2;
        live.swap.set_property("source", &sources[source]);
        live.play();
        // Frames until well after the big picture would have been done.
        while asked.elapsed() < 2 * slow {
            assert!(live.next() == expected[source], "cycle {cycle}: a frame with another face than the new start's");
        }
    }
}

#[test]
fn precision_fp16_says_when_it_cannot_take_effect() {
    let Some(setup) = setup() else { return };
    let fp16 = require!(common::fixture("inswapper_fp16.onnx"), "fixture inswapper_fp16.onnx missing");
    let run = |props: &str| {
        common::run_launch(&format!(
            "videotestsrc num-buffers=1 ! video/x-raw,format=RGB ! dlcdetect model-file={} ! dlcswap {} source={} {props} ! fakesink",
            setup.detector.display(),
            setup.swap_props(),
            setup.picture("newton.png")
        ))
    };
    let log = run("precision=fp16");
    assert!(log.eos && log.errors.is_empty(), "{log:?}");
    let warned =
        |log: &common::BusLog| log.warnings.iter().any(|w| w.contains("precision=fp16") && w.contains("float32"));
    assert!(warned(&log), "a float32 model with precision=fp16 on the CPU: {:?}", log.warnings);
    let log = run(&format!("precision=fp16 model-file={}", fp16.display()));
    assert!(log.eos && !warned(&log), "{:?}", log.warnings);
}

/// The carphone clip through `dlcdetect ! dlcswap <props> lanes=N`, as I420 buffers.
fn carphone_swapped(setup: &Setup, video: &Path, props: &str, lanes: u32) -> gst::Pipeline {
    common::pipeline(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=I420 \
         ! dlcdetect model-file={} ! dlcswap {} {props} lanes={lanes} ! appsink name=sink sync=false",
        video.display(),
        setup.detector.display(),
        setup.swap_props()
    ))
}

/// The carphone clip through `dlcdetect ! dlcswap lanes=N` with newton.png as the source.
fn carphone_through_lanes(setup: &Setup, video: &Path, lanes: u32) -> gst::Pipeline {
    carphone_swapped(setup, video, &format!("source={}", setup.picture("newton.png")), lanes)
}

/// Frames swapped by `lanes` equal, byte for byte, the frames one lane swaps (`one`), and are
/// marked swapped exactly where one lane marked them: a lane's swapper keeps nothing from the
/// frames it swapped before that changes the pixels (its paste masks are a function of the face
/// alone, see `InsightfaceMask::snapped`).
fn assert_same_frames_as_one_lane(one: &[gst::Buffer], many: &[gst::Buffer], what: &str) {
    let frames = common::assert_lanes_keep_every_frame_in_order(one, many, FaceFlags::SWAPPED);
    let differing: Vec<String> = frames
        .iter()
        .enumerate()
        .filter(|(_, (a, b))| a.as_slice() != b.as_slice())
        .map(|(i, (a, b))| {
            let (mean, max) = common::differences(a.as_slice(), b.as_slice());
            format!("frame {i}: {mean:.4} on average, {max} at most")
        })
        .collect();
    assert!(
        differing.is_empty(),
        "{what}: {} of {} frames differ from lanes=1: {differing:?}",
        differing.len(),
        frames.len()
    );
}

/// Frames swapped by several lanes at once come out in order, every one of them, and equal byte
/// for byte to the frames one lane swaps.
#[test]
fn lanes_swap_every_frame_in_order_as_one_lane_does() {
    let Some(setup) = setup() else { return };
    let video = require_testdata!("media/carphone_pristine.mp4");
    let one = common::pull_all(&carphone_through_lanes(&setup, &video, 1), "sink");
    let three = common::pull_all(&carphone_through_lanes(&setup, &video, 3), "sink");
    assert_same_frames_as_one_lane(&one, &three, "lanes=3");
}

/// Frame `index` of `video` as a PNG picture (the person of the clip, for `reference`).
fn frame_picture(video: &Path, index: usize, out: &Path) {
    let pipeline = common::pipeline(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false",
        video.display()
    ));
    let frames = common::pull_all(&pipeline, "sink");
    let frame = frames.get(index).expect("the clip has that frame");
    // The carphone clip is 176×144: RGB rows of 528 bytes, a multiple of 4, so no row padding.
    image::RgbImage::from_raw(176, 144, frame.map_readable().unwrap().to_vec())
        .expect("a 176×144 RGB frame")
        .save(out)
        .unwrap();
}

/// The carphone clip's I420 frames with the faces the real detector found, and their caps.
fn carphone_detected(setup: &Setup, video: &Path) -> (gst::Caps, Vec<gst::Buffer>) {
    let pipeline = common::pipeline(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=I420 ! dlcdetect model-file={} \
         ! appsink name=sink sync=false",
        video.display(),
        setup.detector.display(),
    ));
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let samples: Vec<gst::Sample> =
        std::iter::from_fn(|| sink.try_pull_sample(gst::ClockTime::from_seconds(30))).collect();
    let errors = common::drain_errors(&pipeline);
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(errors.is_empty() && !samples.is_empty(), "{errors:?}");
    let caps = samples[0].caps_owned().unwrap();
    (caps, samples.iter().map(|s| s.buffer_owned().unwrap()).collect())
}

/// `frames` (with their faces) through `dlcswap <props> lanes=N` alone.
fn swap_detected(
    setup: &Setup,
    (caps, frames): &(gst::Caps, Vec<gst::Buffer>),
    props: &str,
    lanes: u32,
) -> Vec<gst::Buffer> {
    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time ! dlcswap {} {props} lanes={lanes} ! appsink name=sink sync=false",
        setup.swap_props()
    ));
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    src.set_caps(Some(caps));
    for frame in frames {
        // A copy: dlcswap swaps in place, and the frames are swapped again in the next run.
        src.push_buffer(frame.copy()).unwrap();
    }
    src.end_of_stream().unwrap();
    common::pull_all(&pipeline, "sink")
}

/// Every target mode and the face map swap the same faces, to the same bytes, with 1 to 4 lanes.
/// The lanes share one recogniser for `target=reference` and `face-map`: a lane waits for it
/// rather than leave its faces unmatched (which left every other frame unswapped).
#[test]
fn every_target_and_the_face_map_swap_the_same_frames_with_any_lanes() {
    let Some(setup) = setup() else { return };
    let video = require_testdata!("media/carphone_pristine.mp4");
    let person = setup.dir.path().join("carphone-person.png");
    frame_picture(&video, 0, &person);
    let newton = setup.picture("newton.png");
    let map = setup.dir.path().join("carphone.map");
    std::fs::write(&map, format!("{} = {newton}\n", person.display())).unwrap();
    let modes = [
        format!("source={newton} target=largest"),
        format!("source={newton} target=left-most"),
        format!("source={newton} target=best-score"),
        format!("source={newton} target=reference reference={} many-faces=true", person.display()),
        format!("face-map={}", map.display()),
    ];
    let detected = carphone_detected(&setup, &video);
    for props in &modes {
        let one = swap_detected(&setup, &detected, props, 1);
        for lanes in 2..=4 {
            let many = swap_detected(&setup, &detected, props, lanes);
            assert_same_frames_as_one_lane(&one, &many, &format!("{props} lanes={lanes}"));
        }
    }
}

/// A flushing seek while lanes hold frames drops those frames and carries on from the seek.
#[test]
fn lanes_survive_a_flushing_seek() {
    let Some(setup) = setup() else { return };
    let video = require_testdata!("media/carphone_pristine.mp4");
    common::assert_frames_flow_across_a_flushing_seek(&carphone_through_lanes(&setup, &video, 2));
}

/// Each lane beyond the first holds one more frame: the latency reported grows by as many frame
/// durations.
#[test]
fn each_extra_lane_adds_a_frame_of_latency() {
    let Some(setup) = setup() else { return };
    let latency = |lanes: u32| {
        let pipeline = common::pipeline(&format!(
            "videotestsrc is-live=true ! video/x-raw,format=I420,width=160,height=128,framerate=25/1 \
             ! dlcdetect model-file={} ! dlcswap name=swap source={} {} lanes={lanes} ! appsink name=sink sync=false",
            setup.detector.display(),
            setup.picture("newton.png"),
            setup.swap_props()
        ));
        common::reported_latency(&pipeline, "swap")
    };
    let one = latency(1);
    assert_eq!(latency(3), one + gst::ClockTime::from_mseconds(80), "2 extra frames of 40 ms");
}

/// Each of our elements sends every frame on with the timestamps it came with, with one lane and
/// with several: a muxer refuses a frame without PTS ("Buffer has no PTS"). Pad probes on each
/// element's sink and src pads record the timestamps that pass.
#[test]
fn every_element_sends_each_frame_on_with_its_timestamps() {
    let Some(setup) = setup() else { return };
    let video = require_testdata!("media/carphone_pristine.mp4");
    let gfpgan = require_fixture!("gfpgan.onnx");
    type Times = Vec<(Option<gst::ClockTime>, Option<gst::ClockTime>)>;
    for lanes in [1, 3] {
        let description = format!(
            "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=I420 \
             ! dlcdetect name=detect model-file={} ! dlcswap name=swap source={} {} lanes={lanes} \
             ! dlcenhance name=enhance model-file={} lanes={lanes} ! dlcoverlay name=overlay ! fakesink sync=false",
            video.display(),
            setup.detector.display(),
            setup.picture("newton.png"),
            setup.swap_props(),
            gfpgan.display()
        );
        let pipeline = common::pipeline(&description);
        let seen: std::sync::Arc<std::sync::Mutex<std::collections::BTreeMap<String, Times>>> = Default::default();
        for element in ["detect", "swap", "enhance", "overlay"] {
            for pad in ["sink", "src"] {
                let seen = seen.clone();
                let key = format!("{element}:{pad}");
                pipeline.by_name(element).unwrap().static_pad(pad).unwrap().add_probe(
                    gst::PadProbeType::BUFFER,
                    move |_, info| {
                        if let Some(buffer) = info.buffer() {
                            seen.lock()
                                .unwrap()
                                .entry(key.clone())
                                .or_default()
                                .push((buffer.pts(), buffer.duration()));
                        }
                        gst::PadProbeReturn::Ok
                    },
                );
            }
        }
        let log = common::run(&pipeline, std::time::Duration::from_secs(300));
        assert!(log.eos && log.errors.is_empty(), "lanes={lanes}: {log:?}");
        let seen = seen.lock().unwrap();
        for element in ["detect", "swap", "enhance", "overlay"] {
            let (came, went) = (&seen[&format!("{element}:sink")], &seen[&format!("{element}:src")]);
            assert_eq!(came.len(), 120, "{element}, lanes={lanes}: the clip's frames came in");
            assert!(came.iter().all(|(pts, _)| pts.is_some()), "{element}, lanes={lanes}: the decoder gave every PTS");
            assert_eq!(went, came, "{element}, lanes={lanes}: frames out with other timestamps than they came with");
        }
    }
}

/// A face like the one in the middle of a portrait, `side` px wide, centred on `(cx, cy)`.
fn face_at(cx: f32, cy: f32, side: f32, track_id: u64) -> Face {
    // The five points of a frontal face, relative to its centre, for a side of 1.
    let points = [[-0.25, -0.15], [0.25, -0.15], [0.0, 0.1], [-0.2, 0.3], [0.2, 0.3]];
    Face {
        bbox: [cx - side / 2.0, cy - side * 0.6, cx + side / 2.0, cy + side * 0.6],
        score: 0.9,
        landmarks: points.map(|[x, y]| [cx + x * side, cy + y * side]),
        landmarks_106: None,
        embedding: None,
        track_id,
        flags: FaceFlags::empty(),
    }
}

/// `faces` of `frame` (RGB, `width` wide) swapped by `swap`, on a copy.
fn swapped_copy(frame: &[u8], width: usize, swap: impl FnOnce(&mut gstdlc::vision::FrameViewMut)) -> Vec<u8> {
    use gstdlc::vision::{FrameViewMut, PixelFormat, YuvMatrix};
    let mut copy = frame.to_vec();
    let height = frame.len() / (width * 3);
    let mut view = FrameViewMut::new(
        PixelFormat::Rgb,
        width,
        height,
        [&mut copy, &mut [], &mut []],
        [width * 3, 0, 0],
        YuvMatrix::default(),
        true,
    )
    .expect("a valid frame");
    swap(&mut view);
    copy
}

/// Faces of one frame whose rectangles lie apart run in one batch through the process's batcher
/// (when the swapper shares one: on a GPU with `DLC_BATCH_FACES=1`), and the frame equals the one
/// that swapping them one by one gives; a face overlapping one of the batch waits for the next,
/// and a face that cannot be aligned fails alone, as one by one. Each face has an identity of its
/// own, so a batch that mixed up faces would show. For the float32 and the float16 export.
#[test]
fn faces_apart_run_in_one_batch_and_give_the_frame_of_one_by_one() {
    use gstdlc::backend::Backend;
    use gstdlc::faces::swap::{BlendMask, FaceSwapper, SwapParams};
    use gstdlc::models::swapper::inswapper::Inswapper;
    use gstdlc::runtime::{Batcher, ExecutionProvider, SessionOptions};

    let w = 640usize;
    let original: Vec<u8> = (0..w * 320 * 3).map(|i| ((i * 31 + (i / (w * 3)) * 7) % 251) as u8).collect();
    // Three faces apart, one over the first (it runs in a batch of its own), and one whose five
    // points coincide (no alignment).
    let mut degenerate = face_at(450.0, 60.0, 40.0, 5);
    degenerate.landmarks = [[450.0, 60.0]; 5];
    let faces = [
        face_at(110.0, 160.0, 90.0, 1),
        face_at(320.0, 150.0, 100.0, 2),
        face_at(530.0, 170.0, 80.0, 3),
        face_at(200.0, 160.0, 110.0, 4),
        degenerate,
    ];
    let latents: Vec<Vec<f32>> = (0..faces.len())
        .map(|f| {
            let v: Vec<f32> =
                (0..gstdlc::EMBEDDING_LEN).map(|i| (((i * 13 + f * 101) % 17) as f32 - 8.0) / 8.0).collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.iter().map(|x| x / norm).collect()
        })
        .collect();
    let params = SwapParams {
        mask: BlendMask::Insightface,
        opacity: 1.0,
        mouth_mask: 0,
        color_correction: false,
        sharpness: 0.0,
    };
    let options = SessionOptions { provider: ExecutionProvider::Cpu, ..SessionOptions::default() };
    for name in ["inswapper.onnx", "inswapper_fp16.onnx"] {
        let swapper = require!(common::fixture(name), "fixture {name} missing");
        let dir = tempfile::tempdir().unwrap();
        // A file of its own: no other test's swappers join this batcher.
        let path = dir.path().join(name);
        std::fs::copy(&swapper, &path).unwrap();
        let open = |share: bool| {
            let mut inswapper = Inswapper::open(&path, "model-file", &options).unwrap_or_else(|e| panic!("{e}"));
            if share {
                inswapper.share_batches(&options).unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            FaceSwapper::new(inswapper, None, Backend::cpu())
        };
        let one_by_one = |order: &[usize]| {
            let mut swapper = open(false);
            let mut outcomes = Vec::new();
            let frame = swapped_copy(&original, w, |view| {
                swapper.begin_frame(&faces);
                outcomes = order.iter().map(|&i| swapper.swap_face(view, &faces[i], &latents[i], &params)).collect();
            });
            (frame, outcomes)
        };
        let (in_order, alone) = one_by_one(&[0, 1, 2, 3, 4]);
        // (Kept until the batcher is read: it closes with its last user.)
        let mut sharing = open(true);
        let mut together = Vec::new();
        let batched = swapped_copy(&original, w, |view| {
            sharing.begin_frame(&faces);
            let jobs: Vec<(&Face, &[f32])> = faces.iter().zip(&latents).map(|(f, l)| (f, l.as_slice())).collect();
            together = sharing.swap_faces(view, &jobs, &params);
        });
        assert_eq!(together, alone, "{name}: each face's outcome");
        assert!(alone[..4].iter().all(Result::is_ok), "{name}: {alone:?}");
        assert!(alone[4].as_ref().is_err_and(|e| e.contains("degenerate")), "{name}: {alone:?}");
        let batcher = Batcher::shared(&path, &options, |_| Ok(())).unwrap();
        assert_eq!(
            batcher.counts(),
            (2, 4),
            "{name} (runs, faces): the three faces apart in one run, the fourth in another"
        );

        for face in &faces[..4] {
            let [x0, y0, x1, y1] = face.bbox.map(|v| v as usize);
            let rows = |frame: &[u8], y: usize| frame[(y * w + x0) * 3..(y * w + x1) * 3].to_vec();
            assert!(
                (y0..y1).any(|y| rows(&in_order, y) != rows(&original, y)),
                "{name}: face {} was not swapped",
                face.track_id
            );
        }
        let (mean, max) = common::differences(&in_order, &batched);
        assert!(max == 0, "{name}: batched faces differ from one by one: mean {mean}, max {max}");
        // The order shows where faces overlap (the fourth pasted before the first gives another
        // frame), so the fourth face had to wait.
        assert!(
            one_by_one(&[3, 0, 1, 2]).0 != in_order,
            "{name}: the fourth face overlaps the first: its order should show"
        );
    }
}
