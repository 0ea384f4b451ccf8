// SPDX-License-Identifier: MPL-2.0
//! dlcenhance: family recognition, equivalence with the independent reference implementation,
//! blend, face selection and the per-track inference-interval cache.

mod common;

use std::path::Path;

use gst::prelude::*;
use gstdlc::backend::Backend;
use gstdlc::faces::enhance::{EnhanceParams, FaceEnhancer};
use gstdlc::models::enhancer::{Enhancer, Family};
use gstdlc::runtime::{Batcher, ExecutionProvider, SessionOptions};
use gstdlc::vision::{FrameViewMut, PixelFormat, YuvMatrix};
use gstdlc::{Face, FaceFlags, FaceMeta};

#[test]
fn each_family_is_recognised_from_its_fixture() {
    let cases = [
        ("gfpgan.onnx", Family::Gfpgan, 512, 512),
        ("gfpgan_1024.onnx", Family::Gfpgan, 512, 1024),
        ("gpen_bfr_256.onnx", Family::GpenBfr, 256, 256),
        ("gpen_bfr_512.onnx", Family::GpenBfr, 512, 512),
        ("codeformer.onnx", Family::CodeFormer, 512, 512),
        ("restoreformer.onnx", Family::RestoreFormer, 512, 512),
    ];
    for (name, family, size, output_size) in cases {
        let path = require_fixture!(name);
        let enhancer =
            Enhancer::open(&path, "model-file", &SessionOptions::default()).unwrap_or_else(|e| panic!("{name}: {e}"));
        let kind = enhancer.kind();
        assert_eq!((kind.family, kind.size, kind.output_size), (family, size, output_size), "{name}");
    }
}

#[test]
fn a_model_of_no_family_is_refused_clearly() {
    let scrfd = require_fixture!("scrfd.onnx");
    let log = common::run_launch(&format!(
        "videotestsrc num-buffers=1 ! video/x-raw,format=RGB ! dlcenhance model-file={} ! fakesink",
        scrfd.display()
    ));
    let text = log.error_text();
    assert!(text.contains("scrfd.onnx") && text.contains("expected a face restoration model"), "{text}");
    assert!(text.contains("found inputs 'input.1'"), "{text}");
}

struct Run {
    original: Vec<u8>,
    enhanced: Vec<u8>,
    faces: Vec<Face>,
    width: usize,
}

/// `picture ! dlcdetect ! [dlcswap] ! dlcenhance <props>`, returning frames and faces.
fn run_picture(picture: &Path, detector: &Path, middle: &str, props: &str) -> Run {
    let pipeline = common::pipeline(&format!(
        "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format=RGB ! dlcdetect model-file={} {middle} \
         ! tee name=t t. ! queue ! appsink name=original sync=false \
         t. ! queue ! dlcenhance {props} ! appsink name=enhanced sync=false",
        picture.display(),
        detector.display()
    ));
    let pull = |name: &str| {
        let sink = pipeline.by_name(name).unwrap().downcast::<gst_app::AppSink>().unwrap();
        sink.try_pull_sample(gst::ClockTime::from_seconds(60)).unwrap_or_else(|| panic!("no frame at {name}"))
    };
    pipeline.set_state(gst::State::Playing).unwrap();
    let (a, b) = (pull("original"), pull("enhanced"));
    pipeline.set_state(gst::State::Null).unwrap();
    let info = gst_video::VideoInfo::from_caps(a.caps().unwrap()).unwrap();
    let bytes = |s: &gst::Sample| {
        let map = s.buffer().unwrap().map_readable().unwrap();
        let (w, h, stride) = (info.width() as usize, info.height() as usize, info.stride()[0] as usize);
        (0..h).flat_map(|y| map[y * stride..y * stride + w * 3].to_vec()).collect::<Vec<u8>>()
    };
    let faces = b.buffer().unwrap().meta::<FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default();
    Run { original: bytes(&a), enhanced: bytes(&b), faces, width: info.width() as usize }
}

fn composite(dir: &Path, media: &Path) -> std::path::PathBuf {
    let out = dir.join("composite.png");
    common::run_reference(&[
        "compose",
        "--out",
        out.to_str().unwrap(),
        "--size",
        "960x540",
        "--place",
        &format!("{}:20:20:0.45:10", media.join("gauss.png").display()),
        "--place",
        &format!("{}:560:60:0.7:-20", media.join("astronaut.png").display()),
    ]);
    out
}

#[test]
fn restoration_equals_the_reference_implementation() {
    if !common::have_ort() || common::reference_python().is_none() {
        common::skip("ORT_DYLIB_PATH or DLC_PYTHON is not set (run `make test`)");
        return;
    }
    let detector = require_testdata!("models/det_2.5g.onnx");
    let media = detector.parent().unwrap().parent().unwrap().join("media");
    let dir = tempfile::tempdir().unwrap();
    let target = composite(dir.path(), &media);
    let cases = [
        ("gfpgan.onnx", "gfpgan", 512, "blend=0.8"),
        ("gfpgan_1024.onnx", "gfpgan", 512, "blend=1.0"),
        ("gpen_bfr_256.onnx", "gpen", 256, "blend=0.8"),
        ("codeformer.onnx", "codeformer", 512, "blend=0.8 fidelity=0.3"),
    ];
    for (name, family, size, props) in cases {
        let model = require_fixture!(name);
        let run = run_picture(&target, &detector, "", &format!("model-file={} {props}", model.display()));
        assert_eq!(run.faces.len(), 2, "{name}: {:?}", run.faces);
        assert!(run.faces.iter().all(|f| f.flags.contains(FaceFlags::ENHANCED)));
        let json = dir.path().join("faces.json");
        common::write_faces_json(&run.faces, &json);
        let out = dir.path().join("reference.png");
        let blend = if props.contains("blend=1.0") { "1.0" } else { "0.8" };
        let fidelity = if props.contains("fidelity=0.3") { "0.3" } else { "0.5" };
        let size_arg = size.to_string();
        common::run_reference(&[
            "enhance",
            "--enhancer",
            model.to_str().unwrap(),
            "--faces-json",
            json.to_str().unwrap(),
            "--target",
            target.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--blend",
            blend,
            "--fidelity",
            fidelity,
            "--family",
            family,
            "--size",
            &size_arg,
        ]);
        let reference = image::open(&out).unwrap().to_rgb8().into_raw();
        let (change, _) = common::differences(&run.original, &reference);
        assert!(change > 0.2, "{name}: the reference barely changed the frame ({change})");
        let (mae, max) = common::differences(&run.enhanced, &reference);
        eprintln!("{name}: frame change {change:.3}, mean abs difference {mae:.4}, max {max}");
        assert!(mae <= 1.0 && max <= 8, "{name}: mean {mae}, max {max}");
    }
}

#[test]
fn blend_zero_and_swapped_only_leave_the_frame_alone() {
    let model = require_fixture!("gfpgan.onnx");
    let detector = require_testdata!("models/det_2.5g.onnx");
    let picture = require_testdata!("media/astronaut.png");
    let run = run_picture(&picture, &detector, "", &format!("model-file={} blend=0", model.display()));
    assert_eq!(run.original, run.enhanced);
    assert!(run.faces.iter().all(|f| !f.flags.contains(FaceFlags::ENHANCED)));

    // faces=swapped without dlcswap upstream: nothing is marked swapped, so nothing changes.
    let run = run_picture(&picture, &detector, "", &format!("model-file={} faces=swapped", model.display()));
    assert_eq!(run.original, run.enhanced);

    let run = run_picture(&picture, &detector, "", &format!("model-file={}", model.display()));
    assert_ne!(run.original, run.enhanced);
    assert!(run.faces[0].flags.contains(FaceFlags::ENHANCED));
    assert!(run.width > 0);
}

#[test]
fn only_swapped_faces_are_restored_when_asked() {
    let model = require_fixture!("gfpgan.onnx");
    let arcface = require_fixture!("arcface.onnx");
    let swapper = require_fixture!("inswapper.onnx");
    let detector = require_testdata!("models/det_2.5g.onnx");
    let media = detector.parent().unwrap().parent().unwrap().join("media");
    if common::reference_python().is_none() {
        common::skip("DLC_PYTHON is not set (run `make test`)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let target = composite(dir.path(), &media);
    let swap = format!(
        "! dlcswap source={} detector-model={} recognition-model={} model-file={} target=left-most",
        media.join("newton.png").display(),
        detector.display(),
        arcface.display(),
        swapper.display()
    );
    let run = run_picture(&target, &detector, &swap, &format!("model-file={} faces=swapped", model.display()));
    assert_eq!(run.faces.len(), 2);
    for face in &run.faces {
        assert_eq!(face.flags.contains(FaceFlags::ENHANCED), face.flags.contains(FaceFlags::SWAPPED), "{face:?}");
    }
    assert_eq!(run.faces.iter().filter(|f| f.flags.contains(FaceFlags::ENHANCED)).count(), 1);
}

/// A 640×480 frame of grey `level` with a white 32×32 block at (320, 256): the fixture detector
/// finds the same face in every such frame.
fn grey_frame(level: u8) -> Vec<u8> {
    let (w, h) = (640usize, 480usize);
    let mut data = vec![level; w * h * 3];
    for y in 256..288 {
        data[(y * w + 320) * 3..(y * w + 352) * 3].fill(255);
    }
    data
}

fn run_interval(interval: u32, lanes: u32) -> Vec<Vec<u8>> {
    let scrfd = common::fixture("scrfd.onnx").unwrap();
    let gfpgan = common::fixture("gfpgan.onnx").unwrap();
    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width=640,height=480,framerate=30/1 \
         ! dlcdetect model-file={} ! dlcenhance model-file={} blend=1 inference-interval={interval} lanes={lanes} \
         ! appsink name=sink sync=false",
        scrfd.display(),
        gfpgan.display()
    ));
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    for (i, level) in [100u8, 60, 60, 60].into_iter().enumerate() {
        let mut buffer = gst::Buffer::from_slice(grey_frame(level));
        buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(33 * i as u64));
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    common::pull_all(&pipeline, "sink").iter().map(|b| b.map_readable().unwrap().to_vec()).collect()
}

#[test]
fn interval_cache_repastes_the_restored_face_between_inferences() {
    require_fixture!("scrfd.onnx");
    require_fixture!("gfpgan.onnx");
    // A grey pixel inside the face, left of the white block, well inside the paste mask.
    let at = (270 * 640 + 300) * 3;
    let every_frame = run_interval(1, 1);
    let cached = run_interval(3, 1);
    assert_eq!(every_frame.len(), 4);
    // Frame 0 is restored in both runs.
    assert_eq!(every_frame[0][at], cached[0][at]);
    // Frames 1 and 2 re-paste frame 0's restored face (restored from grey 100), frame 3 restores
    // anew from grey 60, as restoring every frame does.
    assert_ne!(every_frame[1][at], cached[1][at], "frame 1 should show the cached face");
    assert_eq!(cached[1][at], cached[0][at]);
    assert_eq!(cached[2][at], cached[0][at]);
    assert_eq!(cached[3][at], every_frame[3][at]);
    // Outside the face the current frame shows through.
    assert_eq!(cached[1][0], 60);
}

/// With lanes each lane keeps its own restored faces: with 2 lanes and an interval of 2, lane 0
/// restores frame 0 and re-pastes it on frame 2, lane 1 restores frame 1 and re-pastes it on
/// frame 3 (README, "Frames in flight").
#[test]
fn each_lane_repastes_the_faces_it_restored() {
    require_fixture!("scrfd.onnx");
    require_fixture!("gfpgan.onnx");
    let at = (270 * 640 + 300) * 3;
    let every_frame = run_interval(1, 1);
    let lanes = run_interval(2, 2);
    assert_eq!(lanes.len(), 4);
    assert_eq!(lanes[0][at], every_frame[0][at], "frame 0 restored from grey 100");
    assert_eq!(lanes[1][at], every_frame[1][at], "frame 1 restored from grey 60");
    assert_ne!(lanes[0][at], lanes[1][at], "the two greys restore differently");
    assert_eq!(lanes[2][at], lanes[0][at], "frame 2 re-pastes lane 0's face of frame 0");
    assert_eq!(lanes[3][at], lanes[1][at], "frame 3 re-pastes lane 1's face of frame 1");
    assert_eq!(lanes[2][0], 60, "outside the face the current frame shows through");
}

#[test]
fn every_writable_format_is_restored_in_place_and_outside_stays_exact() {
    let model = require_fixture!("gfpgan.onnx");
    let detector = require_testdata!("models/det_2.5g.onnx");
    let picture = require_testdata!("media/astronaut.png");
    let formats = ["RGB", "BGR", "RGBx", "BGRx", "RGBA", "BGRA", "I420", "NV12"];
    for format in formats.into_iter().chain(common::CAMERA_FORMATS) {
        let middle = format!("! videoconvert ! video/x-raw,format={format}");
        let pipeline = common::pipeline(&format!(
            "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format=RGB ! dlcdetect model-file={} {middle} \
             ! tee name=t t. ! queue ! videoconvert ! video/x-raw,format=RGB ! appsink name=original sync=false \
             t. ! queue ! dlcenhance model-file={} ! videoconvert ! video/x-raw,format=RGB ! appsink name=enhanced sync=false",
            picture.display(),
            detector.display(),
            model.display()
        ));
        let pull = |name: &str| {
            let sink = pipeline.by_name(name).unwrap().downcast::<gst_app::AppSink>().unwrap();
            sink.try_pull_sample(gst::ClockTime::from_seconds(60))
                .unwrap_or_else(|| panic!("{format}: no frame at {name}"))
        };
        pipeline.set_state(gst::State::Playing).unwrap();
        let (a, b) = (pull("original"), pull("enhanced"));
        pipeline.set_state(gst::State::Null).unwrap();
        let faces: Vec<Face> = b.buffer().unwrap().meta::<FaceMeta>().unwrap().faces().to_vec();
        assert!(faces[0].flags.contains(FaceFlags::ENHANCED), "{format}");
        let info = gst_video::VideoInfo::from_caps(a.caps().unwrap()).unwrap();
        let (map_a, map_b) = (a.buffer().unwrap().map_readable().unwrap(), b.buffer().unwrap().map_readable().unwrap());
        let stride = info.stride()[0] as usize;
        let face = &faces[0];
        let (cx, cy) = ((face.bbox[0] + face.bbox[2]) / 2.0, (face.bbox[1] + face.bbox[3]) / 2.0);
        let reach = 1.5 * face.width().max(face.height());
        let mut changed_inside = false;
        for y in 0..info.height() as usize {
            for x in 0..info.width() as usize {
                let i = y * stride + x * 3;
                let same = map_a[i..i + 3] == map_b[i..i + 3];
                let far = (x as f32 - cx).abs() > reach || (y as f32 - cy).abs() > reach;
                if far {
                    assert!(same, "{format}: pixel {x},{y} outside the face changed");
                } else if !same {
                    changed_inside = true;
                }
            }
        }
        assert!(changed_inside, "{format}: the face was restored");
    }
}

#[test]
fn camera_formats_link_and_restore_in_place_to_the_end() {
    let scrfd = require_fixture!("scrfd.onnx");
    let gfpgan = require_fixture!("gfpgan.onnx");
    for format in common::CAMERA_FORMATS {
        // A white frame is a face in every 32×32 cell to the fixture detector: keep one.
        let (log, faces) = common::run_collecting_faces(&format!(
            "videotestsrc pattern=white num-buffers=3 ! video/x-raw,format={format},width=640,height=480 \
             ! dlcdetect model-file={} max-faces=1 ! dlcenhance model-file={} ! fakesink name=sink",
            scrfd.display(),
            gfpgan.display()
        ));
        common::assert_one_face_per_frame(format, &log, &faces, 3, FaceFlags::ENHANCED);
    }
}

#[test]
fn buffers_without_faces_pass_with_one_warning() {
    let model = require_fixture!("gfpgan.onnx");
    let log = common::run_launch(&format!(
        "videotestsrc num-buffers=5 ! video/x-raw,format=RGB ! dlcenhance model-file={} ! fakesink",
        model.display()
    ));
    assert!(log.eos && log.errors.is_empty(), "{log:?}");
    let warnings: Vec<&String> =
        log.warnings.iter().filter(|w| w.contains("put dlcdetect upstream of dlcenhance")).collect();
    assert_eq!(warnings.len(), 1, "{:?}", log.warnings);
}

/// The carphone clip through `dlcdetect ! dlcenhance lanes=N` (the real detector, the fixture
/// restorer), as I420 buffers.
fn carphone_through_lanes(lanes: u32) -> Option<gst::Pipeline> {
    let (detector, _, [gfpgan]) = common::real_faces(["gfpgan.onnx"])?;
    let video = common::testdata("media/carphone_pristine.mp4")?;
    Some(common::pipeline(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! video/x-raw,format=I420 \
         ! dlcdetect model-file={} ! dlcenhance model-file={} lanes={lanes} ! appsink name=sink sync=false",
        video.display(),
        detector.display(),
        gfpgan.display()
    )))
}

/// Frames restored by several lanes at once come out in order, every one of them, and equal to
/// the frames one lane restores.
#[test]
fn lanes_restore_every_frame_in_order_as_one_lane_does() {
    require_testdata!("media/carphone_pristine.mp4");
    let Some(one) = carphone_through_lanes(1) else { return };
    let one = common::pull_all(&one, "sink");
    let three = common::pull_all(&carphone_through_lanes(3).unwrap(), "sink");
    let frames = common::assert_lanes_keep_every_frame_in_order(&one, &three, FaceFlags::ENHANCED);
    for (i, (a, b)) in frames.iter().enumerate() {
        // Unlike dlcswap's paste masks, nothing a lane keeps changes how it restores a face
        // (inference-interval=1): the same face gives the same bytes whichever lane restores it.
        if a.as_slice() != b.as_slice() {
            let (mean, max) = common::differences(a.as_slice(), b.as_slice());
            panic!("frame {i}: lanes=3 differs from lanes=1 by {mean:.4} on average, {max} at most");
        }
    }
}

/// A flushing seek while lanes hold frames drops those frames and carries on from the seek.
#[test]
fn lanes_survive_a_flushing_seek() {
    require_testdata!("media/carphone_pristine.mp4");
    let Some(pipeline) = carphone_through_lanes(2) else { return };
    common::assert_frames_flow_across_a_flushing_seek(&pipeline);
}

/// Each lane beyond the first holds one more frame: the latency reported grows by as many frame
/// durations.
#[test]
fn each_extra_lane_adds_a_frame_of_latency() {
    let scrfd = require_fixture!("scrfd.onnx");
    let gfpgan = require_fixture!("gfpgan.onnx");
    let latency = |lanes: u32| {
        let pipeline = common::pipeline(&format!(
            "videotestsrc is-live=true pattern=white ! video/x-raw,format=I420,width=160,height=128,framerate=25/1 \
             ! dlcdetect model-file={} max-faces=1 ! dlcenhance name=enhance model-file={} lanes={lanes} \
             ! appsink name=sink sync=false",
            scrfd.display(),
            gfpgan.display()
        ));
        common::reported_latency(&pipeline, "enhance")
    };
    let one = latency(1);
    assert_eq!(latency(3), one + gst::ClockTime::from_mseconds(80), "2 extra frames of 40 ms");
}

/// A 320×320 RGB frame of a pattern that `seed` changes, for the restorer-level tests below.
fn pattern_frame(seed: usize) -> Vec<u8> {
    (0..320 * 320 * 3).map(|i| ((i * 31 + seed * 97 + (i / 960) * 7) % 251) as u8).collect()
}

/// A face in the middle of [`pattern_frame`], untracked (restored at every frame).
fn middle_face() -> Face {
    Face {
        bbox: [90.0, 80.0, 230.0, 250.0],
        score: 0.9,
        landmarks: [[125.0, 140.0], [195.0, 140.0], [160.0, 180.0], [132.0, 215.0], [188.0, 215.0]],
        landmarks_106: None,
        embedding: None,
        track_id: 0,
        flags: FaceFlags::empty(),
    }
}

/// `frame` with its face restored by `restorer` at `fidelity`.
fn restore_frame(restorer: &mut FaceEnhancer, mut frame: Vec<u8>, fidelity: f64) -> Vec<u8> {
    let mut view = FrameViewMut::new(
        PixelFormat::Rgb,
        320,
        320,
        [&mut frame, &mut [], &mut []],
        [960, 0, 0],
        YuvMatrix::default(),
        true,
    )
    .expect("a valid frame");
    let params = EnhanceParams { blend: 1.0, fidelity, inference_interval: 1 };
    let face = middle_face();
    restorer.begin_frame(std::slice::from_ref(&face));
    restorer.enhance_face(&mut view, &face, &params).expect("a restored face");
    frame
}

fn cpu_options() -> SessionOptions {
    SessionOptions { provider: ExecutionProvider::Cpu, ..SessionOptions::default() }
}

fn restorer(path: &Path, share: bool) -> FaceEnhancer {
    let mut enhancer = Enhancer::open(path, "model-file", &cpu_options()).unwrap_or_else(|e| panic!("{e}"));
    if share {
        enhancer.share_batches(&cpu_options()).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    }
    FaceEnhancer::new(enhancer, Backend::cpu())
}

/// Two restorers (two elements, streams or lanes) on one model file share the process's batcher:
/// their faces run in batches, and each restorer gets the frames it gets alone, with its own
/// CodeFormer fidelity.
#[test]
fn restorers_sharing_a_batcher_get_what_they_get_alone() {
    let gfpgan = require_fixture!("gfpgan.onnx");
    let dir = tempfile::tempdir().unwrap();
    // A file of its own: no other test's restorers join this batcher.
    let gfpgan_copy = dir.path().join("gfpgan.onnx");
    std::fs::copy(&gfpgan, &gfpgan_copy).unwrap();
    let codeformer = common::codeformer_with_a_weight_per_face(dir.path());
    let rounds = 6;
    for path in [gfpgan_copy, codeformer] {
        let fidelities = [0.3, 0.8];
        let barrier = std::sync::Barrier::new(2);
        let mut restorers = [restorer(&path, true), restorer(&path, true)];
        // Each batch waits for both restorers' faces, however loaded the machine is (with the
        // 2 ms default, a `make test` beside a busy machine once ran all twelve faces alone).
        let batcher = Batcher::shared(&path, &cpu_options(), |_| Ok(())).unwrap();
        batcher.set_max_wait(std::time::Duration::from_secs(5));
        let batched: Vec<Vec<Vec<u8>>> = std::thread::scope(|scope| {
            let handles: Vec<_> = (restorers.iter_mut().enumerate())
                .map(|(user, restorer)| {
                    let barrier = &barrier;
                    scope.spawn(move || -> Vec<Vec<u8>> {
                        (0..rounds)
                            .map(|round| {
                                // Both submit at about the same time, so that batches form.
                                barrier.wait();
                                restore_frame(restorer, pattern_frame(user * rounds + round), fidelities[user])
                            })
                            .collect()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let (runs, items) = batcher.counts();
        assert_eq!(items, 2 * rounds as u64, "{}: every face went through the batcher", path.display());
        assert_eq!(runs, rounds as u64, "{}: {runs} runs for {items} faces, not two at a time", path.display());
        let mut alone = restorer(&path, false);
        for (user, frames) in batched.iter().enumerate() {
            for (round, got) in frames.iter().enumerate() {
                let original = pattern_frame(user * rounds + round);
                let want = restore_frame(&mut alone, original.clone(), fidelities[user]);
                assert!(want != original, "{}: the face should change", path.display());
                assert!(*got == want, "{} user {user} round {round}: batched differs from alone", path.display());
            }
        }
    }
}

/// The CodeFormer fixture's weight is one value for the whole run (`[1]`, broadcast over the
/// image): a batch cannot give each face its own, so sharing is refused with the reason and the
/// restorer runs on its own as before.
#[test]
fn a_restorer_that_cannot_batch_is_refused_and_runs_alone() {
    let codeformer = require_fixture!("codeformer.onnx");
    let mut enhancer = Enhancer::open(&codeformer, "model-file", &cpu_options()).unwrap();
    let err = enhancer.share_batches(&cpu_options()).unwrap_err();
    assert!(err.contains("a batch of 3 does not run like single items"), "{err}");
    let mut refused = FaceEnhancer::new(enhancer, Backend::cpu());
    let mut alone = restorer(&codeformer, false);
    let frame = pattern_frame(1);
    let got = restore_frame(&mut refused, frame.clone(), 0.4);
    assert!(got != frame && got == restore_frame(&mut alone, frame, 0.4));
}
