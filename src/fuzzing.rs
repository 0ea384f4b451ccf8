// SPDX-License-Identifier: MPL-2.0
//! The fuzz harnesses: each takes arbitrary bytes to one reader of outside data and checks what
//! it gives back. The cargo-fuzz targets in `fuzz/` call them, and `tests/fuzz_regressions.rs`
//! replays every input that once crashed one. Hidden from the docs; not for applications.
//!
//! A harness panics only where the code under test broke a promise (a failed check here) or
//! panicked itself: that is what the fuzzer reports.

use std::path::Path;

use crate::face::{Face, FaceFlags};
use crate::faces::facefusion::{boost_size, face_side};
use crate::faces::select::parse_face_map;
use crate::models::scrfd::{ScrfdLayout, decode, nms};
use crate::models::swapper::FAMILIES;
use crate::models::swapper::inswapper::Inswapper;
use crate::vision::align::umeyama;
use crate::vision::boost::{explode, implode};
use crate::vision::box_mask::{BoxMaskSettings, box_mask};
use crate::vision::filter::BlurScratch;
use crate::vision::float_paste::{FloatCrop, paste_float, paste_rect};
use crate::vision::letterbox::letterbox_size;
use crate::vision::masks::{AreaMaskCache, Areas, OCCLUDER_SIZE, occlusion_from_output};
use crate::vision::paste::{InsightfaceMask, MouthScratch, PackedPixels, crop_region, mouth_mask, paste_crop};
use crate::vision::track::Tracker;
use crate::vision::warp::{warp_affine_rgb, warp_affine_rgb_replicate};
use crate::vision::{Affine, FrameView, Rect, RgbImage};

/// A harness: takes one input, panics on what the fuzzer should report.
pub type Harness = fn(&[u8]);

/// The fuzz targets, by the name of their `fuzz/fuzz_targets/NAME.rs` and their regression folder.
pub const TARGETS: [(&str, Harness); 5] = [
    ("scrfd_decode", scrfd_decode),
    ("onnx_graph", onnx_graph),
    ("face_map", face_map),
    ("picture", picture),
    ("facefusion_face", facefusion_face),
];

/// The readers of model files on the bytes of one: the graph reader (node names, last
/// initializer), the batch rewrite the batcher and pixel-boost tiles make of a swapper or restorer,
/// and the CoreML rewrites.
pub fn onnx_graph(data: &[u8]) {
    // A rewritten model reads again, and has nothing left to rewrite.
    if let Ok((rewritten, report)) = crate::runtime::make_batch_symbolic(data) {
        assert!(!report.tensors.is_empty());
        let again = crate::runtime::make_batch_symbolic(&rewritten).map(|(_, r)| r);
        assert_eq!(again, Err("no input of the model has its batch fixed at 1".to_string()));
    }
    if let Ok(Some((rewritten, what))) = crate::runtime::coreml_rewrites::rewrite_for_coreml(data) {
        assert!(what.any());
        assert_eq!(
            crate::runtime::coreml_rewrites::rewrite_for_coreml(&rewritten).map(|r| r.map(|(_, w)| w)),
            Ok(None)
        );
    }
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
/// paste-back into a small frame, `mouth-mask`'s weights over the same region). Model outputs
/// are outside data: a broken or hostile model can put any float (NaN, ±inf, 1e38) in any head.
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
    let mut mouth_scratch = MouthScratch::default();
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
        // `mouth-mask` over the same region, the keypoints and the box's corners as the lips.
        let [x0, y0, x1, y1] = face.bbox;
        let lips: Vec<(f32, f32)> =
            face.landmarks.iter().map(|p| (p[0], p[1])).chain([(x0, y0), (x1, y0), (x1, y1), (x0, y1)]).collect();
        let mouth = mouth_mask(&lips, f32::from(smoothing % 101), rect, &mut mouth_scratch);
        assert_eq!(mouth.len(), rect.width as usize * rect.height as usize);
        assert!(mouth.iter().all(|w| (0.0..=1.0).contains(w)), "mouth weights lie in [0, 1]");
    }
}

/// FaceFusion's path for one face on arbitrary landmarks and mask model output: the family's
/// alignment and pixel-boost size (`auto` or a fixed one), the crop, its split into tiles and
/// reassembly, the box, area and occlusion masks combined, and the paste-back into a small frame.
/// The 5 landmarks come from the detector or an application's face meta, the 68 from the
/// `fan_68_5` model (or the 106-point one), the occlusion values from the occluder model: all
/// outside data.
///
/// Input: 8 header bytes (family, boost choice, areas, box blur, top and left padding, frame
/// width and height), then little-endian f32 values: 10 for the 5 landmarks, 136 for the 68 in
/// frame pixels, then the occluder's output, repeated to fill its 256 × 256 plane (no occlusion
/// mask when none are left, or when one is not finite).
pub fn facefusion_face(data: &[u8]) {
    // Crops above this side are not made (they only cost the fuzzer time): sides up to 256 run.
    const LARGEST_SIDE: usize = 256;
    let Some((header, values)) = data.split_first_chunk::<8>() else { return };
    let [family, boost, areas, blur, top, left, frame_w, frame_h] = *header;
    let values: Vec<f32> = values.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect();
    let (Some(five), Some(sixty_eight)) = (values.get(..10), values.get(10..146)) else { return };
    let occluder_output = &values[146..];

    let family = FAMILIES[usize::from(family) % FAMILIES.len()];
    let kps: [[f64; 2]; 5] = std::array::from_fn(|i| [f64::from(five[2 * i]), f64::from(five[2 * i + 1])]);
    let Some(unit) = umeyama(&kps, &family.template.points) else { return };
    // 0 = auto; else one of the family's sizes, or a size it does not allow (an error).
    let requested = match boost % 8 {
        0 => 0,
        7 => 100,
        i => family.boost_sizes.get(usize::from(i - 1)).map_or(0, |&s| s as u32),
    };
    let side = match boost_size(family, requested, &unit) {
        Ok(side) => side,
        Err(message) => {
            assert!(requested != 0 && message.contains("'pixel-boost'"), "{message}");
            return;
        }
    };
    assert!(family.boost_sizes.contains(&side), "boost {side} for a {}-px face", face_side(&unit));
    if side > LARGEST_SIDE {
        return;
    }
    let factor = side / family.size;
    let m = Affine { m: unit.m.map(|v| v * side as f64) };

    let (frame_w, frame_h) = (usize::from(frame_w) + 1, usize::from(frame_h) + 1);
    let pixels = (0..frame_w * frame_h * 3).map(|i| (i * 7) as u8).collect();
    let Some(mut frame) = RgbImage::from_raw(frame_w, frame_h, pixels) else { return };
    let mut crop = RgbImage::default();
    warp_affine_rgb_replicate(&FrameView::from_rgb(&frame), &m, &mut crop, side, side);

    // The tiles put back together are the crop (the swapper would change them in between).
    let (mut tiles, mut swapped) = (Vec::new(), Vec::new());
    assert_eq!(implode(&crop, family.size, factor, &mut tiles), factor * factor);
    let tiles: Vec<f32> = tiles.iter().map(|&v| f32::from(v)).collect();
    assert!(explode(&tiles, family.size, factor, &mut swapped));
    assert!(swapped.iter().zip(&crop.data).all(|(&a, &b)| a == f32::from(b)), "tiles reassemble the crop");

    let mut blur_scratch = BlurScratch::default();
    let settings =
        BoxMaskSettings { blur: f64::from(blur) / 255.0, padding: [u32::from(top) % 101, 0, 0, u32::from(left) % 101] };
    let mut mask = vec![1.0f32; side * side];
    // Each mask lies in [0, 1] up to float rounding (the box mask's blur of ones can sum to a
    // hair over 1, as OpenCV's does in FaceFusion); the combination is clipped before the paste.
    let mut combine = |kind: &str, other: &[f32]| {
        assert_eq!(other.len(), side * side, "the {kind} mask covers the crop");
        let outside = other.iter().find(|v| !(-1e-5..=1.0 + 1e-5).contains(*v));
        assert!(outside.is_none(), "the {kind} mask's values lie in [0, 1], not {outside:?}");
        for (a, &b) in mask.iter_mut().zip(other) {
            *a = a.min(b);
        }
    };
    combine("box", &box_mask(side, settings, &mut blur_scratch));
    let names = ["upper-face", "lower-face", "mouth"];
    let chosen: Vec<&str> = names.iter().enumerate().filter(|(i, _)| areas & (1 << i) != 0).map(|(_, n)| *n).collect();
    if let Ok(areas) = Areas::parse(&chosen.join(",")) {
        let in_crop: [[f32; 2]; 68] = std::array::from_fn(|i| {
            let (u, v) = m.apply(f64::from(sixty_eight[2 * i]), f64::from(sixty_eight[2 * i + 1]));
            [u as f32, v as f32]
        });
        combine("area", AreaMaskCache::default().mask(side, &in_crop, &areas));
    }
    // The elements refuse a model output holding a non-finite value before a mask is made of it.
    if !occluder_output.is_empty() && occluder_output.iter().all(|v| v.is_finite()) {
        let plane: Vec<f32> = occluder_output.iter().copied().cycle().take(OCCLUDER_SIZE * OCCLUDER_SIZE).collect();
        combine("occlusion", &occlusion_from_output(&plane, side, &mut blur_scratch));
    }

    for w in mask.iter_mut() {
        *w = w.clamp(0.0, 1.0);
    }
    let rect = paste_rect(&m, side, frame_w, frame_h);
    assert_eq!(rect, rect.clip_to(frame_w, frame_h), "the paste rectangle lies inside the frame");
    let crop = FloatCrop { side, rgb: &swapped, mask: &mask };
    let mut weights = Vec::new();
    let mut target = PackedPixels::region(&mut frame, Rect::new(0, 0, frame_w as i32, frame_h as i32));
    paste_float(&mut target, rect, crop, &m, Some(&mut weights));
    assert!(weights.iter().all(|w| (0.0..=1.0).contains(w)), "paste weights lie in [0, 1]");
}
