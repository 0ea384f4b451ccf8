// SPDX-License-Identifier: MPL-2.0
//! The fuzz harnesses: each takes arbitrary bytes to one reader of outside data and checks what
//! it gives back. The cargo-fuzz targets in `fuzz/` call them, and `tests/fuzz_regressions.rs`
//! replays every input that once crashed one. Hidden from the docs; not for applications.
//!
//! A harness panics only where the code under test broke a promise (a failed check here) or
//! panicked itself: that is what the fuzzer reports.

use std::path::Path;

use crate::face::{Face, FaceFlags};
use crate::faces::select::parse_face_map;
use crate::models::scrfd::{ScrfdLayout, decode, nms};
use crate::models::swapper::inswapper::Inswapper;
use crate::vision::letterbox::letterbox_size;
use crate::vision::paste::{InsightfaceMask, PackedPixels, crop_region, paste_crop};
use crate::vision::track::Tracker;
use crate::vision::warp::warp_affine_rgb;
use crate::vision::{FrameView, RgbImage};

/// A harness: takes one input, panics on what the fuzzer should report.
pub type Harness = fn(&[u8]);

/// The fuzz targets, by the name of their `fuzz/fuzz_targets/NAME.rs` and their regression folder.
pub const TARGETS: [(&str, Harness); 4] =
    [("scrfd_decode", scrfd_decode), ("onnx_graph", onnx_graph), ("face_map", face_map), ("picture", picture)];

/// The ONNX graph reader (node names, last initializer) on the bytes of a model file.
pub fn onnx_graph(data: &[u8]) {
    if let Ok(summary) = crate::runtime::onnx_graph::summarize_graph(data.to_vec()) {
        assert!(summary.first_node_names.len() <= 8);
        if let Some((_, dims, values)) = summary.last_initializer {
            // Whatever it accepts has as many values as its dims say.
            let count = dims.iter().try_fold(1usize, |n, &d| n.checked_mul(usize::try_from(d).ok()?));
            assert_eq!(count, Some(values.len()), "dims {dims:?}");
        }
    }
}

/// dlcswap's `face-map` parser on the text of a map file.
pub fn face_map(data: &[u8]) {
    // dlcswap reads the file with `read_to_string`: only UTF-8 reaches the parser.
    let Ok(text) = std::str::from_utf8(data) else { return };
    match parse_face_map(text, Path::new("/maps")) {
        Ok(entries) => {
            assert!(!entries.is_empty());
            for entry in entries {
                assert!(entry.reference.starts_with("/") && entry.source.starts_with("/"), "{entry:?}");
            }
        }
        Err(message) => assert!(message.contains("line") || message.contains("no 'reference-image"), "{message}"),
    }
}

/// Picture loading (dlcswap's `source`, `reference` and face-map pictures) on the bytes of a file.
pub fn picture(data: &[u8]) {
    if let Ok(image) = crate::faces::identity::decode_rgb_image(data) {
        assert_eq!(image.data.len(), image.width * image.height * 3);
    }
}

/// The detector's output path on arbitrary head values: SCRFD decode and NMS, the tracker, and
/// the swap geometry the keypoints drive (alignment, InsightFace mask, crop region, warp and
/// paste-back into a small frame). Model outputs are outside data: a broken or hostile model can
/// put any float (NaN, ±inf, 1e38) in any head.
///
/// Input: 8 header bytes (layout and a missing-head fault, frame width and height, input size,
/// score and NMS thresholds, a short-head fault, tracker smoothing), then little-endian f32 head
/// values, repeated to fill every head.
pub fn scrfd_decode(data: &[u8]) {
    const CROP: usize = 128;
    let Some((header, values)) = data.split_first_chunk::<8>() else { return };
    let [shape, frame_w, frame_h, size, threshold, nms_threshold, fault, smoothing] = *header;
    let (strides, anchors, keypoints) = match shape % 4 {
        0 => (vec![8, 16, 32], 2, false),
        1 => (vec![8, 16, 32], 2, true),
        2 => (vec![8, 16, 32, 64, 128], 1, false),
        _ => (vec![8, 16, 32, 64, 128], 1, true),
    };
    let layout = ScrfdLayout { strides, anchors_per_location: anchors, has_keypoints: keypoints, fixed_input: None };
    // Input sizes up to 128 keep a run fast (NMS is quadratic in the faces that pass).
    let input = 32 * (1 + usize::from(size % 4));
    let (frame_w, frame_h) = (usize::from(frame_w) + 1, usize::from(frame_h) + 1);
    let (_, _, det_scale) = letterbox_size(frame_w, frame_h, input, input);

    let values: Vec<f32> = values.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let mut cycle = values.iter().copied().chain(std::iter::once(0.0)).cycle();
    let widths: &[usize] = if keypoints { &[1, 4, 10] } else { &[1, 4] };
    let mut heads: Vec<Vec<f32>> = Vec::new();
    for &width in widths {
        for &stride in &layout.strides {
            let count = (input / stride) * (input / stride) * anchors * width;
            heads.push(cycle.by_ref().take(count).collect());
        }
    }
    // Faults a broken model could show: a head one value short, a head missing.
    if fault & 0x80 != 0 {
        let head = usize::from(fault & 0x0f) % heads.len();
        heads[head].pop();
    }
    if shape & 0x80 != 0 {
        heads.pop();
    }
    let outputs: Vec<&[f32]> = heads.iter().map(Vec::as_slice).collect();
    let threshold = f32::from(threshold) / 255.0;
    let Ok(detections) = decode(&outputs, &layout, input, input, det_scale, threshold) else { return };
    let count = detections.len();
    let kept = nms(detections, f32::from(nms_threshold) / 255.0);
    assert!(kept.len() <= count);
    assert!(kept.windows(2).all(|w| w[0].score >= w[1].score), "NMS keeps score order");

    let faces: Vec<Face> = kept
        .into_iter()
        .take(8)
        .map(|d| Face {
            bbox: d.bbox,
            score: d.score,
            landmarks: d.kps.unwrap_or([[(d.bbox[0] + d.bbox[2]) / 2.0, (d.bbox[1] + d.bbox[3]) / 2.0]; 5]),
            landmarks_106: None,
            embedding: None,
            track_id: 0,
            flags: FaceFlags::INFERRED,
        })
        .collect();
    let mut tracker = Tracker::new(2, f32::from(smoothing) / 255.0);
    tracker.update(faces.clone());
    let tracked = tracker.update(faces);

    let pixels = (0..frame_w * frame_h * 3).map(|i| i as u8).collect();
    let Some(frame) = RgbImage::from_raw(frame_w, frame_h, pixels) else { return };
    let view = FrameView::from_rgb(&frame);
    let (mut crop, mut region, mut weights) = (RgbImage::default(), RgbImage::default(), Vec::new());
    for face in &tracked {
        let Some(m) = Inswapper::alignment(&face.landmarks) else { continue };
        let Some(shape) = InsightfaceMask::of(&m, CROP, frame_w, frame_h) else { continue };
        let mask = shape.grid();
        let rect = mask.frame_region(&m, frame_w, frame_h).union(crop_region(&m, CROP, frame_w, frame_h));
        assert_eq!(rect, rect.clip_to(frame_w, frame_h), "regions lie inside the frame");
        if rect.is_empty() {
            continue;
        }
        view.read_region(rect, &mut region);
        warp_affine_rgb(&view, &m, &mut crop, CROP, CROP);
        let mut target = PackedPixels::region(&mut region, rect);
        paste_crop(&mut target, rect, &crop, &mask, &m, 1.0, Some(&mut weights));
        assert!(weights.iter().all(|w| (0.0..=1.0).contains(w)), "paste weights lie in [0, 1]");
    }
}
