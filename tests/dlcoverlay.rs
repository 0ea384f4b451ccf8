// SPDX-License-Identifier: MPL-2.0
//! dlcoverlay: it draws exactly at the faces of the FaceMeta (hand-made, so the geometry is known
//! to the pixel, and from the fixture detector) in every raw format, nowhere else, never on the
//! other branch of a tee, and passes buffers without faces through uncopied.

mod common;

use gst::prelude::*;
use gst_video::prelude::*;
use gstdlc::vision::{FrameView, PixelFormat, YuvMatrix};
use gstdlc::{Face, FaceFlags, FaceMeta};

/// Every raw format dlcoverlay (like dlcdetect) takes.
const FORMATS: [&str; 17] = [
    "RGB", "BGR", "RGBA", "BGRA", "RGBx", "BGRx", "xRGB", "xBGR", "ARGB", "ABGR", "I420", "NV12", "YUY2", "UYVY",
    "YVYU", "NV21", "YV12",
];

/// Colours far from the grey test picture, given as the ARGB properties take them.
const BOX: [u8; 3] = [40, 200, 90];
const BOX_ARGB: &str = "0xff28c85a";
const SWAPPED: [u8; 3] = [220, 30, 200];
const SWAPPED_ARGB: &str = "0xffdc1ec8";
const LANDMARK: [u8; 3] = [230, 20, 30];
const LANDMARK_ARGB: &str = "0xffe6141e";

fn pixel_format(name: &str) -> PixelFormat {
    match name {
        "RGB" => PixelFormat::Rgb,
        "BGR" => PixelFormat::Bgr,
        "RGBA" => PixelFormat::Rgba,
        "BGRA" => PixelFormat::Bgra,
        "RGBx" => PixelFormat::Rgbx,
        "BGRx" => PixelFormat::Bgrx,
        "xRGB" => PixelFormat::Xrgb,
        "xBGR" => PixelFormat::Xbgr,
        "ARGB" => PixelFormat::Argb,
        "ABGR" => PixelFormat::Abgr,
        "I420" => PixelFormat::I420,
        "NV12" => PixelFormat::Nv12,
        "YUY2" => PixelFormat::Yuy2,
        "UYVY" => PixelFormat::Uyvy,
        "YVYU" => PixelFormat::Yvyu,
        "NV21" => PixelFormat::Nv21,
        "YV12" => PixelFormat::Yv12,
        other => panic!("no pixel format for {other}"),
    }
}

/// A decoded output frame: its pixels read through the crate's own per-format access (nearest
/// chroma, so a pixel reads only its own chroma sample, unlike a converter's interpolation).
struct Picture {
    format: PixelFormat,
    width: usize,
    height: usize,
    planes: Vec<Vec<u8>>,
    strides: [usize; 3],
    matrix: YuvMatrix,
    full_range: bool,
}

impl Picture {
    fn new(buffer: &gst::Buffer, info: &gst_video::VideoInfo) -> Picture {
        let frame =
            gst_video::VideoFrameRef::from_buffer_ref_readable(buffer.as_ref(), info).expect("a readable frame");
        let mut strides = [0; 3];
        let planes = (0..frame.n_planes())
            .map(|i| {
                strides[i as usize] = frame.plane_stride()[i as usize] as usize;
                frame.plane_data(i).expect("plane data").to_vec()
            })
            .collect();
        let colorimetry = info.colorimetry();
        let matrix = match colorimetry.matrix() {
            gst_video::VideoColorMatrix::Bt709 => YuvMatrix::Bt709,
            gst_video::VideoColorMatrix::Bt2020 => YuvMatrix::Bt2020,
            _ => YuvMatrix::Bt601,
        };
        Picture {
            format: pixel_format(info.format().to_str().as_str()),
            width: info.width() as usize,
            height: info.height() as usize,
            planes,
            strides,
            matrix,
            full_range: colorimetry.range() == gst_video::VideoColorRange::Range0_255,
        }
    }

    fn view(&self) -> FrameView<'_> {
        let plane = |i: usize| self.planes.get(i).map(Vec::as_slice).unwrap_or_default();
        FrameView::new(
            self.format,
            self.width,
            self.height,
            [plane(0), plane(1), plane(2)],
            self.strides,
            self.matrix,
            self.full_range,
        )
        .expect("a valid frame")
    }

    /// `rgb` as this frame stores it and reads it back (its YUV round trip for YUV layouts).
    fn stored(&self, rgb: [u8; 3]) -> [u8; 3] {
        match self.format.packed_layout() {
            Some(_) => rgb,
            None => self.matrix.to_rgb(self.full_range, self.matrix.to_yuv(self.full_range, rgb)),
        }
    }

    /// The pixels sharing a chroma sample with `(x, y)` (itself alone for packed RGB).
    fn chroma_block(&self, x: usize, y: usize) -> Vec<(usize, usize)> {
        let (w, h) = match self.format {
            PixelFormat::I420 | PixelFormat::Yv12 | PixelFormat::Nv12 | PixelFormat::Nv21 => (2, 2),
            PixelFormat::Yuy2 | PixelFormat::Uyvy | PixelFormat::Yvyu => (2, 1),
            _ => (1, 1),
        };
        let (x0, y0) = (x / w * w, y / h * h);
        (y0..(y0 + h).min(self.height)).flat_map(|by| (x0..(x0 + w).min(self.width)).map(move |bx| (bx, by))).collect()
    }
}

/// What one run left: the drawn frame, the frame of the tee's other branch, their video info and
/// the bus warnings.
struct Run {
    drawn: gst::Buffer,
    plain: gst::Buffer,
    info: gst_video::VideoInfo,
    warnings: Vec<String>,
}

/// A grey picture with a gentle pattern (far from every drawing colour), packed RGB.
fn grey_picture(width: usize, height: usize) -> Vec<u8> {
    (0..height).flat_map(|y| (0..width).flat_map(move |x| [(60 + (x * 7 + y * 3) % 120) as u8; 3])).collect()
}

/// Pushes one RGB frame through `videoconvert ! <format> ! <upstream> ! tee`, one branch through
/// `dlcoverlay <props>`, the other straight to a sink. `faces`, when given, are attached as
/// FaceMeta just before `upstream`.
fn run(format: &str, upstream: &str, props: &str, faces: Option<Vec<Face>>, frame: (usize, usize, Vec<u8>)) -> Run {
    run_branches(format, upstream, props, faces, frame, true)
}

/// [`run`], with `tee` false: dlcoverlay gets the buffer alone (writable, drawn on without a
/// copy), and the frame of the other branch comes from a second run that does not draw.
fn run_branches(
    format: &str,
    upstream: &str,
    props: &str,
    faces: Option<Vec<Face>>,
    frame: (usize, usize, Vec<u8>),
    tee: bool,
) -> Run {
    if !tee {
        let plain = run(
            format,
            upstream,
            "draw-boxes=false draw-landmarks=false draw-labels=false",
            faces.clone(),
            frame.clone(),
        );
        let alone = run_branches(format, &format!("{upstream} ! dlcoverlay {props}"), "", faces, frame, true);
        // The drawing happened upstream of the tee, so both of its branches show it.
        return Run { drawn: alone.plain, plain: plain.plain, ..alone };
    }
    let (width, height, data) = frame;
    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={width},height={height},framerate=30/1 \
         ! videoconvert ! video/x-raw,format={format} ! identity name=tag ! {upstream} ! tee name=t \
         t. ! queue ! dlcoverlay {props} ! appsink name=drawn sync=false \
         t. ! queue ! appsink name=plain sync=false"
    ));
    if let Some(faces) = faces {
        let tag = pipeline.by_name("tag").expect("the identity");
        tag.static_pad("src").expect("a sink pad").add_probe(gst::PadProbeType::BUFFER, move |_, info| {
            if let Some(gst::PadProbeData::Buffer(buffer)) = &mut info.data {
                FaceMeta::add(buffer.make_mut(), faces.clone());
            }
            gst::PadProbeReturn::Ok
        });
    }
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    let sink = |name: &str| pipeline.by_name(name).unwrap().downcast::<gst_app::AppSink>().unwrap();
    let (drawn_sink, plain_sink) = (sink("drawn"), sink("plain"));
    pipeline.set_state(gst::State::Playing).expect("the pipeline plays");
    src.push_buffer(gst::Buffer::from_slice(data)).expect("the frame is pushed");
    src.end_of_stream().expect("EOS");
    let pull = |sink: &gst_app::AppSink| {
        sink.try_pull_sample(gst::ClockTime::from_seconds(30)).unwrap_or_else(|| panic!("{format}: no frame at a sink"))
    };
    let (drawn, plain) = (pull(&drawn_sink), pull(&plain_sink));
    let mut warnings = Vec::new();
    let bus = pipeline.bus().expect("a bus");
    while let Some(msg) = bus.pop() {
        match msg.view() {
            gst::MessageView::Error(e) => panic!("{format}: pipeline error: {} ({:?})", e.error(), e.debug()),
            gst::MessageView::Warning(w) => warnings.push(format!("{} {:?}", w.error(), w.debug())),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).expect("the pipeline stops");
    let info = gst_video::VideoInfo::from_caps(drawn.caps().expect("caps")).expect("video caps");
    Run {
        drawn: drawn.buffer_owned().expect("a buffer"),
        plain: plain.buffer_owned().expect("a buffer"),
        info,
        warnings,
    }
}

/// Checks the drawn frame against the plain one: every pixel of `covered` whose chroma block is
/// all covered reads `colour`, every pixel that shares no chroma sample with a covered pixel is
/// unchanged; and the plain branch holds the picture, not the drawing. Returns the number of
/// pixels changed.
fn assert_drawn(what: &str, run: &Run, covered: impl Fn(usize, usize) -> bool, colour: [u8; 3]) -> usize {
    let (drawn, plain) = (Picture::new(&run.drawn, &run.info), Picture::new(&run.plain, &run.info));
    let (after, before) = (drawn.view(), plain.view());
    let expected = drawn.stored(colour);
    let mut changed = 0;
    for y in 0..drawn.height {
        for x in 0..drawn.width {
            let block = drawn.chroma_block(x, y);
            let (got, was) = (after.pixel_rgb(x, y), before.pixel_rgb(x, y));
            changed += (got != was) as usize;
            if block.iter().all(|&(bx, by)| covered(bx, by)) {
                assert_eq!(got, expected, "{what}: ({x}, {y}) is drawn");
                let far = was.iter().zip(expected).any(|(&a, b)| a.abs_diff(b) > 40);
                assert!(far, "{what}: the tee's other branch shows {was:?} at ({x}, {y}), the drawing's colour");
            } else if !block.iter().any(|&(bx, by)| covered(bx, by)) {
                assert_eq!(got, was, "{what}: ({x}, {y}) is not drawn");
            }
        }
    }
    changed
}

/// Whether `(x, y)` lies in the `[x0, x1) × [y0, y1)` rectangle.
fn inside(x: usize, y: usize, [x0, y0, x1, y1]: [usize; 4]) -> bool {
    (x0..x1).contains(&x) && (y0..y1).contains(&y)
}

/// The outline dlcoverlay draws around `bbox` with `thickness`: the pixels just outside it.
fn outline(bbox: [usize; 4], t: usize) -> impl Fn(usize, usize) -> bool {
    let [x0, y0, x1, y1] = bbox;
    move |x, y| inside(x, y, [x0 - t, y0 - t, x1 + t, y1 + t]) && !inside(x, y, bbox)
}

/// A hand-made face at `bbox` with landmarks inside it.
fn face_at(bbox: [f32; 4], track_id: u64, flags: FaceFlags) -> Face {
    let [x0, y0, x1, y1] = bbox;
    let at = |fx: f32, fy: f32| [x0 + fx * (x1 - x0), y0 + fy * (y1 - y0)];
    Face {
        bbox,
        score: 0.87,
        landmarks: [at(0.3, 0.35), at(0.7, 0.35), at(0.5, 0.55), at(0.35, 0.75), at(0.65, 0.75)],
        landmarks_106: None,
        embedding: None,
        track_id,
        flags,
    }
}

const W: usize = 160;
const H: usize = 120;

#[test]
fn hand_made_faces_get_exactly_their_outlines_in_every_format() {
    let faces = vec![face_at([40.0, 30.0, 100.0, 90.0], 3, FaceFlags::INFERRED)];
    let props = format!("draw-landmarks=false draw-labels=false box-color={BOX_ARGB}");
    for format in FORMATS {
        let out = run(format, "identity", &props, Some(faces.clone()), (W, H, grey_picture(W, H)));
        let changed = assert_drawn(format, &out, outline([40, 30, 100, 90], 2), BOX);
        // The outline lies on whole chroma blocks: exactly its pixels change in every layout.
        assert_eq!(changed, 64 * 64 - 60 * 60, "{format}");
        assert!(out.warnings.is_empty(), "{format}: {:?}", out.warnings);
    }
}

#[test]
fn unshared_buffers_are_drawn_too() {
    let faces = vec![face_at([40.0, 30.0, 100.0, 90.0], 3, FaceFlags::INFERRED)];
    let props = format!("draw-landmarks=false draw-labels=false box-color={BOX_ARGB}");
    for format in ["RGB", "I420", "NV12", "YUY2"] {
        let out = run_branches(format, "identity", &props, Some(faces.clone()), (W, H, grey_picture(W, H)), false);
        assert_eq!(assert_drawn(format, &out, outline([40, 30, 100, 90], 2), BOX), 64 * 64 - 60 * 60, "{format}");
    }
}

#[test]
fn thickness_and_odd_boxes_change_only_their_outline_and_shared_chroma() {
    // Odd, fractional coordinates round to [41, 27, 96, 84]; one box hangs off the frame.
    let faces = vec![
        face_at([40.6, 27.2, 95.5, 83.9], 1, FaceFlags::INFERRED),
        face_at([150.0, -10.0, 200.0, 20.0], 2, FaceFlags::INFERRED),
    ];
    let props = format!("draw-landmarks=false draw-labels=false thickness=5 box-color={BOX_ARGB}");
    let covered =
        |x, y| outline([41, 27, 96, 84], 5)(x, y) || (inside(x, y, [145, 0, W, 25]) && !inside(x, y, [150, 0, W, 20]));
    for format in FORMATS {
        let out = run(format, "identity", &props, Some(faces.clone()), (W, H, grey_picture(W, H)));
        assert!(assert_drawn(format, &out, covered, BOX) >= 65 * 67 - 55 * 57, "{format}");
    }
}

#[test]
fn landmarks_are_dots_at_their_points() {
    let mut face = face_at([40.0, 30.0, 100.0, 90.0], 3, FaceFlags::INFERRED);
    face.landmarks_106 = Some(vec![[70.5, 80.5], [20.0, 100.0]].into());
    let props = format!("draw-boxes=false draw-labels=false thickness=2 landmark-color={LANDMARK_ARGB}");
    // Radius 2.5 for the five points, 1.25 for the 106 (pixel (x, y) has its centre at x + 0.5).
    let mut discs: Vec<([f32; 2], f32)> = face.landmarks.iter().map(|&p| (p, 2.5)).collect();
    discs.extend([([70.5, 80.5], 1.25), ([20.0, 100.0], 1.25)]);
    let covered = |x: usize, y: usize| {
        discs.iter().any(|&([cx, cy], r)| (x as f32 + 0.5 - cx).powi(2) + (y as f32 + 0.5 - cy).powi(2) <= r * r)
    };
    for format in FORMATS {
        let out = run(format, "identity", &props, Some(vec![face.clone()]), (W, H, grey_picture(W, H)));
        // 16 pixels per dot of the five, 5 and 4 for the two of the 106.
        assert!(assert_drawn(format, &out, covered, LANDMARK) >= 5 * 16 + 5 + 4, "{format}");
        if pixel_format(format).packed_layout().is_some() {
            let drawn = Picture::new(&out.drawn, &out.info);
            for &[x, y] in &face.landmarks {
                assert_eq!(drawn.view().pixel_rgb(x as usize, y as usize), LANDMARK, "{format}: landmark ({x}, {y})");
            }
        }
    }
}

#[test]
fn labels_sit_above_the_box_with_the_face_colour() {
    let (w, h) = (320, 120);
    let faces = vec![
        face_at([40.0, 50.0, 70.0, 90.0], 3, FaceFlags::INFERRED),
        face_at([280.0, 60.0, 310.0, 100.0], 12, FaceFlags::INFERRED | FaceFlags::SWAPPED | FaceFlags::ENHANCED),
    ];
    let props = format!("draw-boxes=false draw-landmarks=false box-color={BOX_ARGB} swapped-color={SWAPPED_ARGB}");
    // Thickness 2 draws text at 2× (5×7 glyphs + 1 column of gap), on a tag with a 2-pixel margin
    // all round, ending 2 rows above the box. "#3 0.87" is 7 characters; "#12 0.87 SWAP ENH" is 17
    // and would reach past the right edge, so its tag moves left to end at the frame's edge.
    let tag = |chars: usize| (chars * 12 - 2 + 4, 7 * 2 + 4);
    let (w3, h3) = tag(7);
    let (w12, h12) = tag(17);
    let first = [38, 48 - h3, 38 + w3, 48];
    let second = [w - w12, 58 - h12, w, 58];
    for format in FORMATS {
        let out = run(format, "identity", &props, Some(faces.clone()), (w, h, grey_picture(w, h)));
        let drawn = Picture::new(&out.drawn, &out.info);
        let plain = Picture::new(&out.plain, &out.info);
        let (after, before) = (drawn.view(), plain.view());
        for y in 0..h {
            for x in 0..w {
                let near = |r: [usize; 4]| drawn.chroma_block(x, y).iter().any(|&(bx, by)| inside(bx, by, r));
                if !near(first) && !near(second) {
                    assert_eq!(after.pixel_rgb(x, y), before.pixel_rgb(x, y), "{format}: ({x}, {y}) is not drawn");
                }
            }
        }
        // The tags' margins have the face colours (the second tag is drawn over the first's
        // end); the text is black on the light green, white on the dark magenta, on whole
        // chroma blocks.
        assert_eq!(after.pixel_rgb(first[0], first[1]), drawn.stored(BOX), "{format}");
        assert_eq!(after.pixel_rgb(w - 1, second[1]), drawn.stored(SWAPPED), "{format}");
        let text = |xs: std::ops::Range<usize>, y: usize, colour: [u8; 3]| {
            xs.filter(|&x| after.pixel_rgb(x, y) == drawn.stored(colour)).count()
        };
        let on_first = text(first[0]..second[0], first[1] + 8, [0; 3]);
        let on_second = text(second[0]..w, second[1] + 8, [255; 3]);
        // Glyph row 3 (frame row tag top + 2 + 3·2) at 2×: "#3 0.8" (the "7" lies under the
        // second tag) holds 2 + 1 + 3 + 0 + 3 lit pixels, "#12 0.87 SWAP ENH" 2 + 1 + 1 + 3 + 0 +
        // 3 + 1 + 3 + 3 + 2 + 4 + 4 + 3 + 5.
        assert_eq!((on_first, on_second), (9 * 2, 35 * 2), "{format}: text pixels in glyph row 3");
    }
}

#[test]
fn buffers_without_faces_pass_uncopied_with_one_warning() {
    for format in ["RGB", "I420", "YUY2"] {
        let out = run(format, "identity", "", None, (W, H, grey_picture(W, H)));
        assert_eq!(out.drawn.as_ptr(), out.plain.as_ptr(), "{format}: the very buffer of the other branch");
        assert_eq!(out.warnings.len(), 1, "{format}: {:?}", out.warnings);
        assert!(out.warnings[0].contains("put dlcdetect upstream of dlcoverlay"), "{:?}", out.warnings);

        // A FaceMeta without faces (dlcdetect found none) passes as quietly.
        let out = run(format, "identity", "", Some(Vec::new()), (W, H, grey_picture(W, H)));
        assert_eq!(out.drawn.as_ptr(), out.plain.as_ptr(), "{format}");
        assert!(out.warnings.is_empty(), "{format}: {:?}", out.warnings);
    }
    // Nothing to draw: faces, but every kind of drawing off.
    let faces = vec![face_at([40.0, 30.0, 100.0, 90.0], 3, FaceFlags::INFERRED)];
    let props = "draw-boxes=false draw-landmarks=false draw-labels=false";
    let out = run("NV12", "identity", props, Some(faces), (W, H, grey_picture(W, H)));
    assert_eq!(out.drawn.as_ptr(), out.plain.as_ptr());
}

/// A black 640×480 RGB frame with one white 32×32 block at (320, 256): the fixture detector
/// finds one face at exactly [288, 224, 352, 288] in it (see tests/dlcdetect.rs).
fn block_frame() -> (usize, usize, Vec<u8>) {
    let (w, h) = (640, 480);
    let mut data = vec![0u8; w * h * 3];
    for y in 256..288 {
        data[(y * w + 320) * 3..(y * w + 352) * 3].fill(255);
    }
    (w, h, data)
}

#[test]
fn detected_faces_are_drawn_in_every_format() {
    let model = require_fixture!("scrfd.onnx");
    let detect = format!("dlcdetect model-file={}", model.display());
    let bbox = [288, 224, 352, 288];
    for format in FORMATS {
        let props = format!("draw-landmarks=false draw-labels=false box-color={BOX_ARGB}");
        let out = run(format, &detect, &props, None, block_frame());
        let faces = out.drawn.meta::<FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default();
        assert_eq!(faces.len(), 1, "{format}: the face travels on");
        assert_eq!(assert_drawn(format, &out, outline(bbox, 2), BOX), 68 * 68 - 64 * 64, "{format}");

        // Everything on: the label above the box ("#1 1.00" or "#1 0.99", 7 characters of 12
        // pixels, a little more allowed), the landmarks in it, nothing elsewhere.
        let out = run(format, &detect, "", None, block_frame());
        let drawn = Picture::new(&out.drawn, &out.info);
        let plain = Picture::new(&out.plain, &out.info);
        let (after, before) = (drawn.view(), plain.view());
        let label = [286, 224 - 2 - 18, 286 + 9 * 12, 222];
        let allowed = |x: usize, y: usize| outline(bbox, 2)(x, y) || inside(x, y, bbox) || inside(x, y, label);
        let mut changed = 0;
        for y in 0..480 {
            for x in 0..640 {
                let (got, was) = (after.pixel_rgb(x, y), before.pixel_rgb(x, y));
                changed += (got != was) as usize;
                if !drawn.chroma_block(x, y).iter().any(|&(bx, by)| allowed(bx, by)) {
                    assert_eq!(got, was, "{format}: ({x}, {y}) is not drawn");
                }
            }
        }
        assert!(changed > 68 * 68 - 64 * 64, "{format}: {changed} pixels changed");
        // The default colours: green outline (below the label), red landmarks.
        assert_eq!(after.pixel_rgb(287, 260), drawn.stored([0, 255, 0]), "{format}");
        let nose = faces[0].landmarks[2];
        assert_eq!(after.pixel_rgb(nose[0] as usize, nose[1] as usize), drawn.stored([255, 0, 0]), "{format}");
    }
}

#[test]
fn overlay_registers_with_documented_properties() {
    common::init();
    let factory = gst::ElementFactory::find("dlcoverlay").expect("dlcoverlay is registered");
    assert_eq!(factory.plugin_name().as_deref(), Some("dlc"));
    let element = factory.create().build().expect("dlcoverlay is created");
    let own: Vec<_> = element
        .list_properties()
        .into_iter()
        .filter(|p| p.owner_type() != gst::Object::static_type() && p.name() != "qos")
        .collect();
    let names: Vec<&str> = own.iter().map(|p| p.name()).collect();
    assert_eq!(names.len(), 7, "draw-boxes, draw-landmarks, draw-labels, thickness and three colours, found {names:?}");
    for pspec in &own {
        let blurb = pspec.blurb().unwrap_or_default();
        assert!(blurb.len() >= 25, "dlcoverlay::{} needs a blurb a user can act on, has '{blurb}'", pspec.name());
    }
    assert!(element.property::<bool>("draw-boxes") && element.property::<bool>("draw-labels"));
    assert_eq!(element.property::<u32>("thickness"), 2);
    assert_eq!(element.property::<u32>("box-color"), 0xff00_ff00);
    element.set_property("swapped-color", 0x80ff_8000u32);
    assert_eq!(element.property::<u32>("swapped-color"), 0x80ff_8000);
}
