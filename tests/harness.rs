// SPDX-License-Identifier: MPL-2.0
//! Each element alone in a `gst_check::Harness`: caps, FaceMeta in and out, flushes and property
//! changes while running. A harness aborts the test binary when its element fails to start, so
//! every element here is built with settings that start (the fixture models).

mod common;

use std::path::PathBuf;

use gst::prelude::*;
use gst_check::Harness;
use gstdlc::{Face, FaceFlags, FaceMeta};

const WIDTH: u32 = 640;
const HEIGHT: u32 = 480;

fn rgb_caps() -> gst::Caps {
    format!("video/x-raw,format=RGB,width={WIDTH},height={HEIGHT},framerate=30/1").parse().unwrap()
}

struct Models {
    scrfd: PathBuf,
    arcface: PathBuf,
    inswapper: PathBuf,
    gfpgan: PathBuf,
    _dir: tempfile::TempDir,
    face_picture: PathBuf,
}

fn models() -> Option<Models> {
    if !common::have_ort() {
        common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
        return None;
    }
    let mut found = Vec::new();
    for name in ["scrfd.onnx", "arcface.onnx", "inswapper.onnx", "gfpgan.onnx"] {
        let Some(path) = common::fixture(name) else {
            common::skip(&format!("fixture {name} missing (run `make fixtures`)"));
            return None;
        };
        found.push(path);
    }
    let dir = tempfile::tempdir().unwrap();
    let face_picture = dir.path().join("face.png");
    image::RgbImage::from_raw(640, 640, white_block_frame(640, 640, 320, 256)).unwrap().save(&face_picture).unwrap();
    let [scrfd, arcface, inswapper, gfpgan] = found.try_into().ok()?;
    common::init();
    Some(Models { scrfd, arcface, inswapper, gfpgan, _dir: dir, face_picture })
}

/// Black packed RGB with one white 32×32 block at (`bx`, `by`): one face to the fixture detector.
fn white_block_frame(width: u32, height: u32, bx: u32, by: u32) -> Vec<u8> {
    let mut frame = vec![0u8; (width * height * 3) as usize];
    for y in by..by + 32 {
        let row = (y * width * 3) as usize;
        frame[row + (bx * 3) as usize..row + ((bx + 32) * 3) as usize].fill(255);
    }
    frame
}

fn buffer(data: Vec<u8>, pts_ms: u64, faces: Option<Vec<Face>>) -> gst::Buffer {
    let mut buffer = gst::Buffer::from_slice(data);
    let b = buffer.get_mut().unwrap();
    b.set_pts(gst::ClockTime::from_mseconds(pts_ms));
    if let Some(faces) = faces {
        FaceMeta::add(b, faces);
    }
    buffer
}

fn faces_of(buffer: &gst::Buffer) -> Vec<Face> {
    buffer.meta::<FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default()
}

/// A harness around `element` (fully configured), with RGB caps on its source.
fn harness(element: &gst::Element) -> Harness {
    let mut h = Harness::with_element(element, Some("sink"), Some("src"));
    h.set_src_caps(rgb_caps());
    h
}

fn flush(h: &mut Harness) {
    assert!(h.push_event(gst::event::FlushStart::new()));
    assert!(h.push_event(gst::event::FlushStop::new(true)));
    // A flush-stop resets the segment: send a new one.
    assert!(h.push_event(gst::event::Segment::new(&gst::FormattedSegment::<gst::ClockTime>::new())));
}

/// The face the fixture detector reports for a block at (`bx`, `by`): a 64×64 box centred on
/// the block's top-left corner, keypoints from the fixture's constant offsets.
fn block_face(bx: f32, by: f32) -> Face {
    let k = [(-0.35, -0.25), (0.35, -0.25), (0.0, 0.05), (-0.28, 0.4), (0.28, 0.4)];
    Face {
        bbox: [bx - 32.0, by - 32.0, bx + 32.0, by + 32.0],
        score: 0.99,
        landmarks: k.map(|(x, y)| [bx + 32.0 * x, by + 32.0 * y]),
        landmarks_106: None,
        embedding: None,
        track_id: 0,
        flags: FaceFlags::INFERRED,
    }
}

#[test]
fn dlcdetect_caps_meta_flushes_and_property_changes() {
    let Some(m) = models() else { return };
    let element =
        gst::ElementFactory::make("dlcdetect").property("model-file", m.scrfd.to_str().unwrap()).build().unwrap();
    // Every format the element reads is in its sink caps.
    let sink_caps = element.static_pad("sink").unwrap().query_caps(None);
    for format in ["RGB", "BGRx", "ARGB", "I420", "NV12", "YUY2", "UYVY", "YV12"] {
        let caps: gst::Caps = format!("video/x-raw,format={format}").parse().unwrap();
        assert!(sink_caps.can_intersect(&caps), "{format} in {sink_caps}");
    }
    let gray: gst::Caps = "video/x-raw,format=GRAY8".parse().unwrap();
    assert!(!sink_caps.can_intersect(&gray), "GRAY8 is not taken: {sink_caps}");

    let mut h = harness(&element);
    let out = h.push_and_pull(buffer(white_block_frame(WIDTH, HEIGHT, 128, 96), 0, None)).unwrap();
    let faces = faces_of(&out);
    assert_eq!(faces.len(), 1, "{faces:?}");
    assert!((faces[0].bbox[0] - 96.0).abs() < 1.0 && (faces[0].bbox[1] - 64.0).abs() < 1.0, "{faces:?}");
    assert!(faces[0].flags.contains(FaceFlags::INFERRED));
    // The standard region-of-interest meta goes out beside FaceMeta, one per face.
    let rois: Vec<_> = out.iter_meta::<gst_video::VideoRegionOfInterestMeta>().collect();
    assert_eq!(rois.len(), 1);
    assert_eq!(rois[0].roi_type(), "face");
    assert_eq!(rois[0].rect(), (96, 64, 64, 64));
    // The detector reads only: the pixels leave as they came.
    assert!(out.map_readable().unwrap().as_slice() == white_block_frame(WIDTH, HEIGHT, 128, 96).as_slice());

    // A flush, then the block elsewhere: found there, nothing carried from before the flush.
    flush(&mut h);
    let out = h.push_and_pull(buffer(white_block_frame(WIDTH, HEIGHT, 224, 160), 33, None)).unwrap();
    let faces = faces_of(&out);
    assert!(faces.len() == 1 && (faces[0].bbox[0] - 192.0).abs() < 1.0, "{faces:?}");

    // Property change while running: faces under 100 px are no longer detected from the next
    // frame on (the tracker may still carry the lost face a few frames, marked TRACKED).
    element.set_property("min-face-size", 100u32);
    let out = h.push_and_pull(buffer(white_block_frame(WIDTH, HEIGHT, 224, 160), 66, None)).unwrap();
    let faces = faces_of(&out);
    assert!(faces.iter().all(|f| !f.flags.contains(FaceFlags::INFERRED)), "{faces:?}");
    element.set_property("min-face-size", 0u32);

    // New caps mid-stream: a larger frame, in I420.
    h.set_src_caps_str("video/x-raw,format=I420,width=640,height=480,framerate=30/1");
    // Limited-range black (Y 16) with grey chroma (128), and a white (Y 235) block.
    let mut info_frame = vec![128u8; 640 * 480 * 3 / 2];
    info_frame[..640 * 480].fill(16);
    for y in 256..288 {
        info_frame[y * 640 + 320..y * 640 + 352].fill(235);
    }
    let out = h.push_and_pull(buffer(info_frame, 99, None)).unwrap();
    let faces = faces_of(&out);
    assert!(faces.len() == 1 && (faces[0].bbox[0] - 288.0).abs() < 1.0, "{faces:?}");

    // A format the element does not take is refused at negotiation.
    h.set_src_caps_str("video/x-raw,format=GRAY8,width=64,height=64,framerate=30/1");
    assert_eq!(h.push(buffer(vec![0; 64 * 64], 132, None)), Err(gst::FlowError::NotNegotiated));
}

#[test]
fn dlcswap_meta_in_and_out_flushes_and_property_changes() {
    let Some(m) = models() else { return };
    let element = gst::ElementFactory::make("dlcswap")
        .property("model-file", m.inswapper.to_str().unwrap())
        .property("detector-model", m.scrfd.to_str().unwrap())
        .property("recognition-model", m.arcface.to_str().unwrap())
        .property("source", m.face_picture.to_str().unwrap())
        .build()
        .unwrap();
    let mut h = harness(&element);
    let frame = white_block_frame(WIDTH, HEIGHT, 128, 96);
    let face = block_face(128.0, 96.0);

    let out = h.push_and_pull(buffer(frame.clone(), 0, Some(vec![face.clone()]))).unwrap();
    let faces = faces_of(&out);
    assert_eq!(faces.len(), 1, "the faces go on with the buffer");
    assert!(faces[0].flags.contains(FaceFlags::SWAPPED | FaceFlags::INFERRED), "{faces:?}");
    let swapped = out.map_readable().unwrap().to_vec();
    assert!(swapped != frame, "the face is replaced");

    // Without FaceMeta the frame passes unchanged.
    let out = h.push_and_pull(buffer(frame.clone(), 33, None)).unwrap();
    assert!(out.map_readable().unwrap().as_slice() == frame.as_slice());
    assert!(out.meta::<FaceMeta>().is_none());

    // opacity=0 while running: the frame is left alone, and the face is not marked.
    element.set_property("opacity", 0.0f64);
    let out = h.push_and_pull(buffer(frame.clone(), 66, Some(vec![face.clone()]))).unwrap();
    assert!(out.map_readable().unwrap().as_slice() == frame.as_slice());
    assert!(!faces_of(&out)[0].flags.contains(FaceFlags::SWAPPED));
    element.set_property("opacity", 1.0f64);

    // After a flush the same frame gives the same swap.
    flush(&mut h);
    let out = h.push_and_pull(buffer(frame.clone(), 99, Some(vec![face.clone()]))).unwrap();
    assert!(out.map_readable().unwrap().as_slice() == swapped.as_slice());

    // New caps: the same picture as BGR is swapped to the same colours, channel-swapped.
    h.set_src_caps_str(&format!("video/x-raw,format=BGR,width={WIDTH},height={HEIGHT},framerate=30/1"));
    let bgr: Vec<u8> = frame.chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
    let out = h.push_and_pull(buffer(bgr, 132, Some(vec![face]))).unwrap();
    let back: Vec<u8> = out.map_readable().unwrap().chunks_exact(3).flat_map(|p| [p[2], p[1], p[0]]).collect();
    assert!(back == swapped, "BGR gives the RGB swap");
}

#[test]
fn dlcenhance_meta_in_and_out_flushes_and_property_changes() {
    let Some(m) = models() else { return };
    let element =
        gst::ElementFactory::make("dlcenhance").property("model-file", m.gfpgan.to_str().unwrap()).build().unwrap();
    let mut h = harness(&element);
    // Mid-grey stays mid-grey through the fixture restorer: a grey ramp shows the change.
    let frame: Vec<u8> = (0..WIDTH * HEIGHT * 3).map(|i| ((i / 3) % WIDTH) as u8).collect();
    let mut swapped_face = block_face(128.0, 96.0);
    swapped_face.flags.insert(FaceFlags::SWAPPED);
    let plain_face = block_face(224.0, 160.0);

    let out = h.push_and_pull(buffer(frame.clone(), 0, Some(vec![swapped_face.clone(), plain_face.clone()]))).unwrap();
    let faces = faces_of(&out);
    assert!(faces.iter().all(|f| f.flags.contains(FaceFlags::ENHANCED)), "{faces:?}");
    assert!(faces[0].flags.contains(FaceFlags::SWAPPED), "flags set upstream are kept");
    let restored = out.map_readable().unwrap().to_vec();
    assert!(restored != frame);

    // faces=swapped while running: only the swapped face is restored.
    element.set_property_from_str("faces", "swapped");
    let out = h.push_and_pull(buffer(frame.clone(), 33, Some(vec![swapped_face.clone(), plain_face.clone()]))).unwrap();
    let faces = faces_of(&out);
    assert!(faces[0].flags.contains(FaceFlags::ENHANCED) && !faces[1].flags.contains(FaceFlags::ENHANCED), "{faces:?}");
    element.set_property_from_str("faces", "all");

    // blend=0: nothing changes.
    element.set_property("blend", 0.0f64);
    let out = h.push_and_pull(buffer(frame.clone(), 66, Some(vec![swapped_face.clone()]))).unwrap();
    assert!(out.map_readable().unwrap().as_slice() == frame.as_slice());
    element.set_property("blend", 0.8f64);

    // After a flush: the same result as the first frame.
    flush(&mut h);
    let out = h.push_and_pull(buffer(frame, 99, Some(vec![swapped_face, plain_face]))).unwrap();
    assert!(out.map_readable().unwrap().as_slice() == restored.as_slice());
}

/// The warnings `bus` holds, as their text.
fn warnings(bus: &gst::Bus) -> Vec<String> {
    std::iter::from_fn(|| bus.pop())
        .filter_map(|msg| match msg.view() {
            gst::MessageView::Warning(w) => Some(format!("{} ({:?})", w.error(), w.debug())),
            _ => None,
        })
        .collect()
}

/// The `lanes` property's value as its nick: `auto`, `1` … `4`.
fn lanes_nick(element: &gst::Element) -> String {
    let value = element.property_value("lanes");
    gst::glib::EnumValue::from_value(&value).map(|(_, v)| v.nick().to_string()).unwrap()
}

/// dlcswap and dlcenhance built on the fixture models, with nothing else set.
fn editing_elements(m: &Models) -> [gst::Element; 2] {
    let swap = gst::ElementFactory::make("dlcswap")
        .property("model-file", m.inswapper.to_str().unwrap())
        .property("detector-model", m.scrfd.to_str().unwrap())
        .property("recognition-model", m.arcface.to_str().unwrap())
        .property("source", m.face_picture.to_str().unwrap())
        .build()
        .unwrap();
    let enhance =
        gst::ElementFactory::make("dlcenhance").property("model-file", m.gfpgan.to_str().unwrap()).build().unwrap();
    [swap, enhance]
}

/// `lanes` is taken when the element starts: a change while it runs is refused with a warning,
/// and the value read back stays the one running; stopped, it may change again.
#[test]
fn lanes_changed_while_running_are_refused_with_a_warning() {
    let Some(m) = models() else { return };
    for element in editing_elements(&m) {
        let name = element.factory().unwrap().name();
        let blurb = element.find_property("lanes").unwrap().blurb().unwrap_or_default().to_string();
        assert!(blurb.contains("refused with a warning"), "{name}: gst-inspect says so: {blurb}");
        element.set_property_from_str("lanes", "2");
        let bus = gst::Bus::new();
        element.set_bus(Some(&bus));
        let mut h = harness(&element);
        let frame = white_block_frame(WIDTH, HEIGHT, 128, 96);
        // Two lanes hold one frame in flight: the first comes out after the second.
        h.push(buffer(frame.clone(), 0, Some(vec![block_face(128.0, 96.0)]))).unwrap();
        assert!(warnings(&bus).is_empty());
        assert_eq!(element.property::<u32>("lanes-active"), 2, "{name}");

        element.set_property_from_str("lanes", "3");
        assert_eq!(lanes_nick(&element), "2", "{name}: the value read back is the one running");
        assert_eq!(element.property::<u32>("lanes-active"), 2, "{name}");
        let said = warnings(&bus);
        assert!(
            said.iter()
                .any(|w| w.contains("'lanes' cannot change while the element runs")
                    && w.contains("lanes=2 keeps running")),
            "{name}: {said:?}"
        );
        element.set_property_from_str("lanes", "auto");
        assert_eq!(lanes_nick(&element), "2", "{name}: auto is refused as well");
        assert_eq!(warnings(&bus).len(), 1, "{name}");
        // The same value again is no change.
        element.set_property_from_str("lanes", "2");
        assert!(warnings(&bus).is_empty(), "{name}");
        // Frames still flow, through the two lanes.
        h.push(buffer(frame.clone(), 33, Some(vec![block_face(128.0, 96.0)]))).unwrap();
        assert_eq!(h.pull().unwrap().pts(), Some(gst::ClockTime::ZERO), "{name}");
        assert!(h.push_event(gst::event::Eos::new()));
        assert_eq!(h.pull().unwrap().pts(), Some(gst::ClockTime::from_mseconds(33)), "{name}");

        drop(h);
        element.set_state(gst::State::Null).unwrap();
        assert_eq!(element.property::<u32>("lanes-active"), 0, "{name}: stopped, no lane works");
        element.set_property_from_str("lanes", "3");
        assert_eq!(lanes_nick(&element), "3", "{name}: stopped, lanes may change");
        assert!(warnings(&bus).is_empty(), "{name}");
    }
}

/// `lanes=auto` is the default; on the CPU provider it makes one lane, which works on the
/// streaming thread (no frame held back: each frame comes out as it goes in), and says so in
/// `lanes-active`, while `lanes` still reads `auto`. A number still sets that many lanes.
#[test]
fn lanes_auto_is_the_default_and_makes_one_lane_on_the_cpu() {
    let Some(m) = models() else { return };
    for element in editing_elements(&m) {
        let name = element.factory().unwrap().name();
        assert_eq!(lanes_nick(&element), "auto", "{name}: the default");
        assert_eq!(element.property::<u32>("lanes-active"), 0, "{name}: not started");
        let mut h = harness(&element);
        let frame = white_block_frame(WIDTH, HEIGHT, 128, 96);
        let out = h.push_and_pull(buffer(frame.clone(), 0, Some(vec![block_face(128.0, 96.0)]))).unwrap();
        assert_eq!(out.pts(), Some(gst::ClockTime::ZERO), "{name}");
        assert_eq!(element.property::<String>("active-provider"), "cpu", "{name}");
        assert_eq!(element.property::<u32>("lanes-active"), 1, "{name}: auto on the CPU");
        assert_eq!(lanes_nick(&element), "auto", "{name}: what was asked for reads back");
        drop(h);
        element.set_state(gst::State::Null).unwrap();

        element.set_property_from_str("lanes", "3");
        let mut h = harness(&element);
        h.push(buffer(frame.clone(), 0, Some(vec![block_face(128.0, 96.0)]))).unwrap();
        assert_eq!(element.property::<u32>("lanes-active"), 3, "{name}: an explicit number");
        assert!(h.try_pull().is_none(), "{name}: three lanes hold the frame until two more come");
        drop(h);
        element.set_state(gst::State::Null).unwrap();
    }
}

/// A C program's `g_object_set (element, "lanes", 3, NULL)` passes an int, as it did when
/// `lanes` was a number; the enum takes it as three lanes, and 0 as auto.
#[test]
fn lanes_set_from_c_with_a_number() {
    use gst::glib::translate::ToGlibPtr;
    let Some(m) = models() else { return };
    for element in editing_elements(&m) {
        for (number, nick) in [(3, "3"), (0, "auto"), (1, "1")] {
            // SAFETY: `element` is a live GObject with an enum property "lanes"; the varargs are
            // one name/int pair ended by NULL, as g_object_set expects.
            unsafe {
                let object: *mut gst::glib::gobject_ffi::GObject =
                    element.upcast_ref::<gst::glib::Object>().to_glib_none().0;
                gst::glib::gobject_ffi::g_object_set(
                    object,
                    c"lanes".as_ptr(),
                    number as std::ffi::c_int,
                    std::ptr::null::<std::ffi::c_char>(),
                );
            }
            assert_eq!(lanes_nick(&element), nick);
        }
    }
}

/// A face that cannot be recognised for `target=reference` is not swapped, and is said to be
/// so on the bus, not skipped silently.
#[test]
fn dlcswap_warns_of_a_face_it_cannot_recognise() {
    let Some(m) = models() else { return };
    let element = gst::ElementFactory::make("dlcswap")
        .property("model-file", m.inswapper.to_str().unwrap())
        .property("detector-model", m.scrfd.to_str().unwrap())
        .property("recognition-model", m.arcface.to_str().unwrap())
        .property("source", m.face_picture.to_str().unwrap())
        .property("reference", m.face_picture.to_str().unwrap())
        .property_from_str("target", "reference")
        .property("reference-distance", 4.0f64)
        .build()
        .unwrap();
    let bus = gst::Bus::new();
    element.set_bus(Some(&bus));
    let mut h = harness(&element);
    let frame = white_block_frame(WIDTH, HEIGHT, 128, 96);
    // Five keypoints on one point: no alignment for the recogniser.
    let mut face = block_face(128.0, 96.0);
    face.landmarks = [[128.0, 96.0]; 5];
    let out = h.push_and_pull(buffer(frame.clone(), 0, Some(vec![face]))).unwrap();
    assert!(!faces_of(&out)[0].flags.contains(FaceFlags::SWAPPED));
    let said = warnings(&bus);
    assert!(said.iter().any(|w| w.contains("could not be recognised") && w.contains("degenerate")), "{said:?}");
    // A face it can recognise matches (reference-distance=4 matches any face) and is swapped.
    let out = h.push_and_pull(buffer(frame, 33, Some(vec![block_face(128.0, 96.0)]))).unwrap();
    assert!(faces_of(&out)[0].flags.contains(FaceFlags::SWAPPED));
}

/// A `reference` picture computed while frames flow through two lanes leaves no frame's face
/// unmatched: the picture worker has a recogniser of its own, and the lanes wait for theirs.
#[test]
fn dlcswap_lanes_match_every_frame_while_a_reference_is_computed() {
    let Some(m) = models() else { return };
    let element = gst::ElementFactory::make("dlcswap")
        .property("model-file", m.inswapper.to_str().unwrap())
        .property("detector-model", m.scrfd.to_str().unwrap())
        .property("recognition-model", m.arcface.to_str().unwrap())
        .property("source", m.face_picture.to_str().unwrap())
        .property("reference", m.face_picture.to_str().unwrap())
        .property_from_str("target", "reference")
        // Any face matches: what is checked is that each face gets an embedding.
        .property("reference-distance", 4.0f64)
        .property_from_str("lanes", "2")
        .build()
        .unwrap();
    let mut h = harness(&element);
    let frame = white_block_frame(WIDTH, HEIGHT, 128, 96);
    for i in 0..40u64 {
        if i % 4 == 0 {
            element.set_property("reference", m.face_picture.to_str().unwrap());
        }
        h.push(buffer(frame.clone(), i * 33, Some(vec![block_face(128.0, 96.0)]))).unwrap();
    }
    assert!(h.push_event(gst::event::Eos::new()));
    let unswapped: Vec<u64> = (0..40u64)
        .filter(|_| {
            let out = h.pull().unwrap();
            !faces_of(&out)[0].flags.contains(FaceFlags::SWAPPED)
        })
        .collect();
    assert!(unswapped.is_empty(), "frames left unswapped: {unswapped:?}");
}
