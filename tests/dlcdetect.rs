// SPDX-License-Identifier: MPL-2.0
//! dlcdetect: the real SCRFD models on real faces (and against the independent reference
//! implementation), the fixture detector on synthetic frames in every input format, tracking,
//! messages and metas.

mod common;

use gst::prelude::*;
use gstdlc::{Face, FaceFlags, FaceMeta};

const WIDTH: usize = 640;
const HEIGHT: usize = 480;

fn faces_of(buffer: &gst::Buffer) -> Vec<Face> {
    buffer.meta::<FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default()
}

/// Faces dlcdetect finds in a still picture with the given detector.
fn detect_picture(model: &std::path::Path, picture: &std::path::Path) -> Vec<Face> {
    let pipeline = common::pipeline(&format!(
        "filesrc location={} ! pngdec ! videoconvert ! dlcdetect model-file={} ! appsink name=sink sync=false",
        picture.display(),
        model.display()
    ));
    let buffers = common::pull_all(&pipeline, "sink");
    assert_eq!(buffers.len(), 1);
    faces_of(&buffers[0])
}

fn assert_anatomical(face: &Face, what: &str) {
    let [x1, y1, x2, y2] = face.bbox;
    for (i, p) in face.landmarks.iter().enumerate() {
        assert!(
            p[0] > x1 && p[0] < x2 && p[1] > y1 && p[1] < y2,
            "{what}: landmark {i} {p:?} outside box {:?}",
            face.bbox
        );
    }
    let [le, re, nose, lm, rm] = face.landmarks;
    assert!(le[0] < re[0] && lm[0] < rm[0], "{what}: left/right swapped: {:?}", face.landmarks);
    assert!(
        le[1].max(re[1]) < nose[1] && nose[1] < lm[1].min(rm[1]),
        "{what}: eyes, nose, mouth not top to bottom: {:?}",
        face.landmarks
    );
}

#[test]
fn real_detectors_find_one_face_in_each_portrait() {
    if !common::have_ort() {
        common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
        return;
    }
    for model in ["det_2.5g.onnx", "det_500m.onnx"] {
        let model_path = require_testdata!(format!("models/{model}"));
        for picture in ["astronaut.png", "newton.png", "gauss.png"] {
            let picture_path = require_testdata!(format!("media/{picture}"));
            let faces = detect_picture(&model_path, &picture_path);
            assert_eq!(faces.len(), 1, "{model} on {picture}: {faces:?}");
            assert!(faces[0].score >= 0.5 && faces[0].flags.contains(FaceFlags::INFERRED));
            assert_anatomical(&faces[0], &format!("{model} on {picture}"));
        }
    }
}

/// InsightFace's det_500m.onnx has a dynamic input but declares the output sizes of its 640×640
/// export; det_2.5g.onnx declares none. Both must find the face at every `det-size`, with either
/// pixel backend (the graph backend runs the detector with its input size fixed).
#[test]
fn real_detectors_find_the_face_at_every_det_size_with_either_backend() {
    if !common::have_ort() {
        common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
        return;
    }
    let picture = require_testdata!("media/astronaut.png");
    for model in ["det_500m.onnx", "det_2.5g.onnx"] {
        let model_path = require_testdata!(format!("models/{model}"));
        for backend in ["cpu", "onnx-runtime"] {
            for det_size in [160, 320, 480, 640, 800, 1280] {
                let (log, faces) = common::run_collecting_faces(&format!(
                    "filesrc location={} ! pngdec ! videoconvert ! dlcdetect model-file={} execution-provider=cpu \
                     pixel-backend={backend} det-size={det_size} ! fakesink name=sink",
                    picture.display(),
                    model_path.display()
                ));
                let what = format!("{model}, pixel-backend={backend}, det-size={det_size}");
                assert!(log.eos && log.errors.is_empty() && log.warnings.is_empty(), "{what}: {log:?}");
                assert_eq!(faces.len(), 1, "{what}: one frame");
                assert_eq!(faces[0].len(), 1, "{what}: {faces:?}");
                assert!(faces[0][0].score >= 0.5, "{what}: {faces:?}");
                assert_anatomical(&faces[0][0], &what);
            }
        }
    }
}

#[test]
fn detections_match_the_reference_implementation() {
    if !common::have_ort() || common::reference_python().is_none() {
        common::skip("ORT_DYLIB_PATH or DLC_PYTHON is not set (run `make test`)");
        return;
    }
    let model = require_testdata!("models/det_2.5g.onnx");
    for picture in ["astronaut.png", "newton.png", "gauss.png"] {
        let picture_path = require_testdata!(format!("media/{picture}"));
        let ours = detect_picture(&model, &picture_path);
        let json = common::run_reference(&[
            "detect",
            "--model",
            model.to_str().unwrap(),
            "--image",
            picture_path.to_str().unwrap(),
        ]);
        let reference = parse_reference_faces(&json);
        assert_eq!(ours.len(), reference.len(), "{picture}: {ours:?} vs {json}");
        for (face, (bbox, score, kps)) in ours.iter().zip(&reference) {
            // OpenCV's fixed-point resize rounds a little differently: allow half a pixel.
            for (a, b) in face.bbox.iter().zip(bbox) {
                assert!((a - b).abs() < 0.5, "{picture}: box {:?} vs reference {bbox:?}", face.bbox);
            }
            for (p, q) in face.landmarks.iter().zip(kps) {
                assert!(
                    (p[0] - q[0]).abs() < 0.5 && (p[1] - q[1]).abs() < 0.5,
                    "{picture}: {:?} vs {kps:?}",
                    face.landmarks
                );
            }
            assert!((face.score - score).abs() < 0.005, "{picture}: score {} vs {score}", face.score);
        }
    }
}

/// Minimal parsing of the reference's `[{"bbox": [...], "score": s, "kps": [[x, y], ...]}, ...]`.
fn parse_reference_faces(json: &str) -> Vec<([f32; 4], f32, Vec<[f32; 2]>)> {
    let numbers = |s: &str| -> Vec<f32> {
        s.split(|c: char| !(c.is_ascii_digit() || c == '.' || c == '-' || c == 'e'))
            .filter(|t| !t.is_empty())
            .map(|t| t.parse().expect("a number"))
            .collect()
    };
    json.split("{\"bbox\"")
        .skip(1)
        .map(|face| {
            let (bbox_part, rest) = face.split_once("\"score\"").expect("score field");
            let (score_part, kps_part) = rest.split_once("\"kps\"").expect("kps field");
            let b = numbers(bbox_part);
            let k = numbers(kps_part);
            ([b[0], b[1], b[2], b[3]], numbers(score_part)[0], k.chunks(2).map(|p| [p[0], p[1]]).collect())
        })
        .collect()
}

#[test]
fn carphone_video_gives_one_face_with_one_track() {
    if !common::have_ort() {
        common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
        return;
    }
    let model = require_testdata!("models/det_2.5g.onnx");
    let video = require_testdata!("media/carphone_pristine.mp4");
    let pipeline = common::pipeline(&format!(
        "filesrc location={} ! decodebin ! videoconvert ! dlcdetect model-file={} ! appsink name=sink sync=false",
        video.display(),
        model.display()
    ));
    let buffers = common::pull_all(&pipeline, "sink");
    assert_eq!(buffers.len(), 120);
    let faces: Vec<Vec<Face>> = buffers.iter().map(faces_of).collect();
    let with_one = faces.iter().filter(|f| f.len() == 1).count();
    assert!(with_one * 100 >= buffers.len() * 95, "one face on only {with_one} of {} frames", buffers.len());
    let ids: std::collections::BTreeSet<u64> = faces.iter().flatten().map(|f| f.track_id).collect();
    assert_eq!(ids.len(), 1, "track ids: {ids:?}");
}

/// A black RGB frame with white 32×32 blocks at the given top-left corners (multiples of 32,
/// so that each fills one stride-32 cell of the fixture detector).
fn frame_with_blocks(blocks: &[(usize, usize)]) -> Vec<u8> {
    let mut data = vec![0u8; WIDTH * HEIGHT * 3];
    for &(bx, by) in blocks {
        for y in by..by + 32 {
            data[(y * WIDTH + bx) * 3..(y * WIDTH + bx + 32) * 3].fill(255);
        }
    }
    data
}

/// Pushes `frames` (RGB 640×480) through `videoconvert ! <format> ! dlcdetect <props>` and
/// returns the output buffers.
fn run_fixture(format: &str, props: &str, frames: &[Vec<u8>]) -> Vec<gst::Buffer> {
    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={WIDTH},height={HEIGHT},framerate=30/1 \
         ! videoconvert ! video/x-raw,format={format} ! dlcdetect name=detect {props} ! appsink name=sink sync=false"
    ));
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    for (i, frame) in frames.iter().enumerate() {
        let mut buffer = gst::Buffer::from_slice(frame.clone());
        {
            let b = buffer.get_mut().unwrap();
            b.set_pts(gst::ClockTime::from_mseconds(33 * i as u64));
            b.set_duration(gst::ClockTime::from_mseconds(33));
        }
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    common::pull_all(&pipeline, "sink")
}

fn assert_block_face(face: &Face, bx: f32, by: f32, what: &str) {
    // The anchor sits at the block's top-left corner; distances of 1 stride (32 px) each side.
    assert_eq!(face.bbox, [bx - 32.0, by - 32.0, bx + 32.0, by + 32.0], "{what}");
    assert!(face.score > 0.99, "{what}: score {}", face.score);
    let expected = [(-0.35, -0.25), (0.35, -0.25), (0.0, 0.05), (-0.28, 0.4), (0.28, 0.4)];
    for (p, (dx, dy)) in face.landmarks.iter().zip(expected) {
        assert!(
            (p[0] - (bx + dx * 32.0)).abs() < 1e-3 && (p[1] - (by + dy * 32.0)).abs() < 1e-3,
            "{what}: {:?}",
            face.landmarks
        );
    }
}

#[test]
fn fixture_detector_reads_every_input_format_without_touching_pixels() {
    let model = require_fixture!("scrfd.onnx");
    let formats = ["RGB", "BGR", "RGBA", "BGRA", "RGBx", "BGRx", "xRGB", "xBGR", "ARGB", "ABGR", "I420", "NV12"];
    let frame = frame_with_blocks(&[(320, 256)]);
    for format in formats.into_iter().chain(common::CAMERA_FORMATS) {
        let buffers = run_fixture(format, &format!("model-file={}", model.display()), std::slice::from_ref(&frame));
        let faces = faces_of(&buffers[0]);
        assert_eq!(faces.len(), 1, "{format}: {faces:?}");
        assert_block_face(&faces[0], 320.0, 256.0, format);
        let roi = buffers[0].meta::<gst_video::VideoRegionOfInterestMeta>().expect("an ROI meta");
        assert_eq!(roi.roi_type(), "face");
        assert_eq!(roi.rect(), (288, 224, 64, 64));
        let detection = roi.param("detection").expect("DL Streamer-style detection params");
        assert!((detection.get::<f64>("x_min").unwrap() - 288.0 / 640.0).abs() < 1e-6);
        assert!(detection.get::<f64>("confidence").unwrap() > 0.99);
    }
    // The pixels leave exactly as they came.
    let buffers = run_fixture("RGB", &format!("model-file={}", model.display()), std::slice::from_ref(&frame));
    assert_eq!(buffers[0].map_readable().unwrap().as_slice(), frame.as_slice());
}

/// `det-size` off the detector's stride grid is rounded down with a warning that says to what;
/// a model whose file fixes its input size ignores `det-size` without a word.
#[test]
fn a_det_size_off_the_stride_grid_is_rounded_down_with_a_warning() {
    let model = require_fixture!("scrfd.onnx");
    let fixed = require_fixture!("scrfd_fixed640.onnx");
    let warnings = |model: &std::path::Path, det_size: u32| {
        let (log, faces) = common::run_collecting_faces(&format!(
            "videotestsrc num-buffers=2 ! video/x-raw,width=320,height=240 ! dlcdetect model-file={} \
             det-size={det_size} ! fakesink name=sink",
            model.display()
        ));
        assert!(log.eos && log.errors.is_empty() && faces.len() == 2, "det-size {det_size}: {log:?}");
        log.warnings
    };
    let rounded = warnings(&model, 33);
    assert_eq!(rounded.len(), 1, "one warning, not one per frame: {rounded:?}");
    assert!(
        rounded[0].contains("det-size 33 is not a multiple of 32") && rounded[0].contains("detecting at 32x32"),
        "{rounded:?}"
    );
    let rounded = warnings(&model, 650);
    assert!(rounded.len() == 1 && rounded[0].contains("detecting at 640x640"), "{rounded:?}");
    for det_size in [32, 640] {
        assert_eq!(warnings(&model, det_size), Vec::<String>::new(), "det-size {det_size}");
    }
    assert_eq!(warnings(&fixed, 33), Vec::<String>::new(), "a fixed input size ignores det-size");
}

#[test]
fn detector_variants_decode_alike() {
    let frame = frame_with_blocks(&[(320, 256)]);
    for name in ["scrfd_batched.onnx", "scrfd_fixed640.onnx"] {
        let model = require_fixture!(name);
        let buffers = run_fixture("RGB", &format!("model-file={}", model.display()), std::slice::from_ref(&frame));
        let faces = faces_of(&buffers[0]);
        assert_eq!(faces.len(), 1, "{name}");
        assert_block_face(&faces[0], 320.0, 256.0, name);
    }
    let model = require_fixture!("scrfd_nokps.onnx");
    let buffers = run_fixture("RGB", &format!("model-file={}", model.display()), std::slice::from_ref(&frame));
    let faces = faces_of(&buffers[0]);
    assert_eq!(faces[0].bbox, [288.0, 224.0, 352.0, 288.0]);
}

#[test]
fn max_faces_min_face_size_and_thresholds_filter() {
    let model = require_fixture!("scrfd.onnx");
    let frame = frame_with_blocks(&[(64, 64), (320, 256), (512, 384)]);
    let count = |props: &str| {
        faces_of(
            &run_fixture("RGB", &format!("model-file={} {props}", model.display()), std::slice::from_ref(&frame))[0],
        )
        .len()
    };
    assert_eq!(count(""), 3);
    assert_eq!(count("max-faces=2"), 2);
    assert_eq!(count("min-face-size=64"), 3);
    assert_eq!(count("min-face-size=65"), 0);
    assert_eq!(count("threshold=0.99999"), 0);
}

#[test]
fn inference_interval_tracks_faces_between_detections() {
    let model = require_fixture!("scrfd.onnx");
    let frames: Vec<Vec<u8>> = (0..7).map(|_| frame_with_blocks(&[(320, 256)])).collect();
    let buffers = run_fixture("RGB", &format!("model-file={} inference-interval=3", model.display()), &frames);
    let faces: Vec<Face> =
        buffers.iter().map(|b| faces_of(b).into_iter().next().expect("a face on every frame")).collect();
    for (i, face) in faces.iter().enumerate() {
        let inferred = i % 3 == 0;
        assert_eq!(face.flags.contains(FaceFlags::INFERRED), inferred, "frame {i}: {:?}", face.flags);
        assert_eq!(face.flags.contains(FaceFlags::TRACKED), !inferred, "frame {i}");
        assert_eq!(face.track_id, faces[0].track_id);
        assert_block_face(face, 320.0, 256.0, &format!("frame {i}"));
    }

    // A face missing on one detection is carried, not dropped; a new one far away gets a new id.
    let frames =
        vec![frame_with_blocks(&[(320, 256)]), frame_with_blocks(&[]), frame_with_blocks(&[(320, 256), (64, 64)])];
    let buffers = run_fixture("RGB", &format!("model-file={}", model.display()), &frames);
    let f1 = faces_of(&buffers[1]);
    assert_eq!(f1.len(), 1);
    assert!(f1[0].flags.contains(FaceFlags::TRACKED));
    let f2 = faces_of(&buffers[2]);
    let ids: Vec<u64> = f2.iter().map(|f| f.track_id).collect();
    assert!(ids.contains(&f1[0].track_id) && ids.iter().any(|id| *id != f1[0].track_id), "{ids:?}");
}

#[test]
fn messages_carry_faces_like_facedetect() {
    let model = require_fixture!("scrfd.onnx");
    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={WIDTH},height={HEIGHT},framerate=30/1 \
         ! dlcdetect model-file={} post-messages=true ! fakesink",
        model.display()
    ));
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    let mut buffer = gst::Buffer::from_slice(frame_with_blocks(&[(320, 256)]));
    buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(40));
    src.push_buffer(buffer).unwrap();
    src.end_of_stream().unwrap();
    let log = common::run(&pipeline, std::time::Duration::from_secs(30));
    assert!(log.errors.is_empty(), "{:?}", log.errors);
    let s = log.elements.iter().find(|s| s.name() == "dlcdetect").expect("a dlcdetect message");
    assert_eq!(s.get::<u64>("timestamp").unwrap(), 40_000_000);
    assert_eq!(s.get::<u64>("running-time").unwrap(), 40_000_000);
    assert_eq!(s.get::<u64>("stream-time").unwrap(), 40_000_000);
    assert_eq!(s.get::<u64>("duration").unwrap(), u64::MAX);
    let faces = s.get::<gst::List>("faces").unwrap();
    assert_eq!(faces.len(), 1);
    let face = faces.first().unwrap().get::<gst::Structure>().unwrap();
    assert_eq!(face.name(), "face");
    assert_eq!(face.get::<f64>("x").unwrap(), 288.0);
    assert_eq!(face.get::<f64>("width").unwrap(), 64.0);
    assert!(face.get::<f64>("score").unwrap() > 0.99);
    assert_eq!(face.get::<u64>("track-id").unwrap(), 1);
    let landmarks = face.get::<gst::Array>("landmarks").unwrap();
    assert_eq!(landmarks.len(), 10);
    assert!((landmarks.as_slice()[0].get::<f64>().unwrap() - (320.0 - 0.35 * 32.0)).abs() < 1e-3);
}

#[test]
fn embeddings_and_106_landmarks_when_asked() {
    let model = require_fixture!("scrfd.onnx");
    let arcface = require_fixture!("arcface.onnx");
    let landmarks = require_fixture!("landmark106.onnx");
    let buffers = run_fixture(
        "RGB",
        &format!(
            "model-file={} recognition-model={} landmark-model={}",
            model.display(),
            arcface.display(),
            landmarks.display()
        ),
        &[frame_with_blocks(&[(320, 256)])],
    );
    let face = &faces_of(&buffers[0])[0];
    let embedding = face.embedding.as_ref().expect("an embedding");
    assert_eq!(embedding.len(), gstdlc::EMBEDDING_LEN);
    let norm: f32 = embedding.iter().map(|v| v * v).sum::<f32>().sqrt();
    assert!((norm - 1.0).abs() < 1e-4, "normalised: {norm}");
    let points = face.landmarks_106.as_ref().expect("106 landmarks");
    assert_eq!(points.len(), 106);
    assert!(points.iter().all(|p| p[0].is_finite() && p[1].is_finite()));
}

#[test]
fn non_finite_model_output_skips_frames_with_one_warning() {
    let model = require_fixture!("scrfd_nan.onnx");
    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={WIDTH},height={HEIGHT},framerate=30/1 \
         ! dlcdetect model-file={} ! fakesink",
        model.display()
    ));
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    for i in 0..10u64 {
        let mut buffer = gst::Buffer::from_slice(frame_with_blocks(&[(320, 256)]));
        buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(33 * i));
        src.push_buffer(buffer).unwrap();
    }
    src.end_of_stream().unwrap();
    let log = common::run(&pipeline, std::time::Duration::from_secs(30));
    // The stream goes on to the end; ten failing frames within seconds post one warning.
    assert!(log.eos && log.errors.is_empty(), "{log:?}");
    assert_eq!(log.warnings.len(), 1, "{:?}", log.warnings);
    assert!(log.warnings[0].contains("non-finite"), "{}", log.warnings[0]);
}
