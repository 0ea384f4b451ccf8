// SPDX-License-Identifier: MPL-2.0
//! dlcswap's FaceFusion path (swapper families, pixel boost, FaceFusion's masks): equivalence with
//! the independent reference implementation (tests/reference/facefusion_reference.py) on stills
//! with fixture stand-ins, the `auto` pixel-boost rule, and bad settings.

mod common;

use std::path::{Path, PathBuf};

use gst::prelude::*;
use gstdlc::{Face, FaceFlags, FaceMeta};

struct Setup {
    detector: PathBuf,
    arcface: PathBuf,
    inswapper: PathBuf,
    media: PathBuf,
    dir: tempfile::TempDir,
}

/// Real SCRFD for finding faces in real pictures, fixture ArcFace and inswapper.
fn setup() -> Option<Setup> {
    let (detector, media, [arcface, inswapper]) = common::real_faces(["arcface.onnx", "inswapper.onnx"])?;
    if common::reference_python().is_none() {
        common::skip("DLC_PYTHON is not set (run `make test`)");
        return None;
    }
    Some(Setup { detector, arcface, inswapper, media, dir: tempfile::tempdir().expect("a temporary folder") })
}

/// The bytes of one run: the frame before and after dlcswap, the faces it saw, the frame size.
struct Swapped {
    original: Vec<u8>,
    ours: Vec<u8>,
    faces: Vec<Face>,
}

impl Setup {
    fn picture(&self, name: &str) -> String {
        self.media.join(name).display().to_string()
    }

    /// Three portraits at different scales and angles on one 1280×720 frame (inswapper's crop
    /// squares of about 95, 270 and 125 frame pixels).
    fn composite(&self) -> PathBuf {
        common::composed_portraits(self.dir.path(), &self.media)
    }

    /// Runs `picture ! dlcdetect ! <format> ! dlcswap <props>` and returns the RGB frames before
    /// and after dlcswap (both through `format`) and the faces of the meta.
    fn run(&self, picture: &Path, format: &str, props: &str) -> Swapped {
        let pipeline = common::pipeline(&format!(
            "filesrc location={} ! pngdec ! videoconvert ! video/x-raw,format=RGB ! dlcdetect model-file={} \
             ! videoconvert ! video/x-raw,format={format} ! tee name=t \
             t. ! queue ! videoconvert ! video/x-raw,format=RGB ! appsink name=original sync=false \
             t. ! queue ! dlcswap detector-model={} recognition-model={} source={} many-faces=true {props} \
             ! videoconvert ! video/x-raw,format=RGB ! appsink name=swapped sync=false",
            picture.display(),
            self.detector.display(),
            self.detector.display(),
            self.arcface.display(),
            self.picture("newton.png"),
        ));
        let original = pipeline.by_name("original").unwrap().downcast::<gst_app::AppSink>().unwrap();
        let swapped = pipeline.by_name("swapped").unwrap().downcast::<gst_app::AppSink>().unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let a = original.try_pull_sample(gst::ClockTime::from_seconds(120));
        let b = swapped.try_pull_sample(gst::ClockTime::from_seconds(120));
        let errors = common::drain_errors(&pipeline);
        pipeline.set_state(gst::State::Null).unwrap();
        let (a, b) =
            (a.unwrap_or_else(|| panic!("no frame: {errors:?}")), b.unwrap_or_else(|| panic!("no frame: {errors:?}")));
        assert!(errors.is_empty(), "{props}: {errors:?}");
        let info = gst_video::VideoInfo::from_caps(a.caps().unwrap()).unwrap();
        let faces = b.buffer().unwrap().meta::<FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default();
        Swapped { original: packed(&a, &info), ours: packed(&b, &info), faces }
    }

    /// The reference's swap of `faces` in `target` with the swapper `family`/`swapper` and the
    /// reference's options `args`.
    fn reference(&self, target: &Path, faces: &[Face], family: &str, swapper: &Path, args: &[&str]) -> Vec<u8> {
        let json = self.dir.path().join("faces.json");
        common::write_faces_json(faces, &json);
        let out = self.dir.path().join("reference.png");
        let source = self.picture("newton.png");
        let mut all = vec![
            "swap",
            "--detector",
            self.detector.to_str().unwrap(),
            "--recognizer",
            self.arcface.to_str().unwrap(),
            "--swapper",
            swapper.to_str().unwrap(),
            "--family",
            family,
            "--source",
            &source,
            "--target",
            target.to_str().unwrap(),
            "--faces-json",
            json.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        all.extend_from_slice(args);
        run_facefusion_reference(&all);
        image::open(&out).unwrap().to_rgb8().into_raw()
    }
}

fn run_facefusion_reference(args: &[&str]) -> String {
    let python = common::reference_python().expect("DLC_PYTHON is set");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference/facefusion_reference.py");
    let output = std::process::Command::new(python).arg(script).args(args).output().expect("the reference runs");
    assert!(output.status.success(), "reference failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

/// The RGB bytes of a sample without row padding.
fn packed(sample: &gst::Sample, info: &gst_video::VideoInfo) -> Vec<u8> {
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let (w, h, stride) = (info.width() as usize, info.height() as usize, info.stride()[0] as usize);
    (0..h).flat_map(|y| map[y * stride..y * stride + w * 3].to_vec()).collect()
}

/// How two swaps of the same frame differ, over the bytes either of them changed.
#[derive(Debug)]
struct Agreement {
    /// Bytes that either swap changed.
    changed: usize,
    mean: f64,
    p999: u8,
}

fn agreement(original: &[u8], ours: &[u8], reference: &[u8]) -> Agreement {
    assert_eq!(ours.len(), reference.len());
    let mut diffs: Vec<u8> = (0..original.len())
        .filter(|&i| ours[i] != original[i] || reference[i] != original[i])
        .map(|i| ours[i].abs_diff(reference[i]))
        .collect();
    diffs.sort_unstable();
    let changed = diffs.len();
    let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / changed.max(1) as f64;
    let p999 = diffs.get((changed as f64 * 0.999) as usize).or(diffs.last()).copied().unwrap_or(0);
    Agreement { changed, mean, p999 }
}

/// The execution provider of dlcswap (`DLC_TEST_PROVIDER`, default `cpu`): `cuda` on a GPU
/// machine runs the graph backend's pixel steps there.
fn provider() -> String {
    std::env::var("DLC_TEST_PROVIDER").unwrap_or_else(|_| "cpu".to_string())
}

/// Swaps the composite with dlcswap `props` and with the reference `args`, with the pixel steps
/// on the CPU and as ONNX Runtime graphs, and checks that each agrees with the reference: mean
/// ≤ 1 and p99.9 ≤ 8 levels over the bytes either changed.
fn equivalence(setup: &Setup, family: &str, swapper: &Path, props: &str, args: &[&str]) {
    let target = setup.composite();
    let mut reference: Option<(Vec<Face>, Vec<u8>)> = None;
    for backend in ["cpu", "onnx-runtime"] {
        let props = format!(
            "model-file={} {props} pixel-backend={backend} execution-provider={}",
            swapper.display(),
            provider()
        );
        let run = setup.run(&target, "RGB", &props);
        assert_eq!(run.faces.len(), 3, "three faces on the composite: {:?}", run.faces);
        assert!(run.faces.iter().all(|f| f.flags.contains(FaceFlags::SWAPPED)), "{props}: not every face swapped");
        let (faces, reference) = reference
            .get_or_insert_with(|| (run.faces.clone(), setup.reference(&target, &run.faces, family, swapper, args)));
        assert_eq!(*faces, run.faces, "{props}: the same faces with either backend");
        let stats = agreement(&run.original, &run.ours, reference);
        // DLC_DEBUG_DUMP=DIR keeps the frames and faces of the last comparison there, for a look
        // at where the two swaps differ.
        if let Some(dir) = std::env::var_os("DLC_DEBUG_DUMP") {
            let dir = PathBuf::from(dir);
            let save = |name: &str, data: &[u8]| {
                image::RgbImage::from_raw(1280, 720, data.to_vec()).unwrap().save(dir.join(name)).unwrap()
            };
            save("original.png", &run.original);
            save(&format!("ours-{backend}.png"), &run.ours);
            save("reference.png", reference);
            std::fs::copy(setup.dir.path().join("faces.json"), dir.join("faces.json")).unwrap();
        }
        // Agreement only means something if the swap changed the faces a lot.
        let (change, _) = common::differences(&run.original, reference);
        eprintln!("{props} {args:?}: frame change {change:.3}, {stats:?}");
        assert!(change > 0.2 && stats.changed > 10_000, "the reference swap barely changed the frame: {change}");
        assert!(stats.mean <= 1.0 && stats.p999 <= 8, "{props}: {stats:?}");
    }
}

#[test]
fn inswapper_with_pixel_boost_and_box_mask_equals_the_reference() {
    let Some(setup) = setup() else { return };
    let swapper = setup.inswapper.clone();
    // mask-types=box alone switches to FaceFusion (at the model's size with pixel-boost=128).
    equivalence(&setup, "inswapper", &swapper, "mask-types=box pixel-boost=128", &["--boost", "128"]);
    for boost in ["256", "512"] {
        equivalence(&setup, "inswapper", &swapper, &format!("pixel-boost={boost}"), &["--boost", boost]);
    }
    equivalence(
        &setup,
        "inswapper",
        &swapper,
        "pixel-boost=384 mask-types=box mask-blur=0.6 mask-padding=10,0,20,5",
        &["--boost", "384", "--mask-blur", "0.6", "--mask-padding", "10,0,20,5"],
    );
    let fp16 = require!(common::fixture("inswapper_fp16.onnx"), "fixture inswapper_fp16.onnx missing");
    equivalence(&setup, "inswapper", &fp16, "pixel-boost=256", &["--boost", "256"]);
}

#[test]
fn every_family_with_pixel_boost_and_masks_equals_the_reference() {
    let Some(setup) = setup() else { return };
    let fixture = |name: &str| common::fixture(name).ok_or(format!("fixture {name} missing (run `make fixtures`)"));
    let (Ok(xseg), Ok(bisenet), Ok(fan)) = (fixture("xseg.onnx"), fixture("bisenet.onnx"), fixture("fan_68_5.onnx"))
    else {
        common::skip("mask fixtures missing (run `make fixtures`)");
        return;
    };
    let (xseg, bisenet, fan) = (xseg.display().to_string(), bisenet.display().to_string(), fan.display().to_string());
    let occlusion = (format!("occluder-model={xseg}"), vec!["--occluder", xseg.as_str()]);
    let region = (
        format!("parser-model={bisenet} mask-regions=skin,nose,mouth"),
        vec!["--parser", bisenet.as_str(), "--regions", "skin,nose,mouth"],
    );
    let area = (
        format!("landmark-68-model={fan} mask-areas=lower-face,mouth"),
        vec!["--landmark-68", fan.as_str(), "--areas", "lower-face,mouth"],
    );
    // family, swapper file, converter, boost, mask types.
    let cases = [
        ("inswapper", "inswapper.onnx", None, "256", "box+occlusion"),
        ("inswapper", "inswapper.onnx", None, "128", "area"),
        ("hyperswap", "hyperswap_256.onnx", None, "256", "box"),
        ("hyperswap", "hyperswap_256.onnx", None, "512", "box+occlusion+region"),
        ("simswap", "simswap_256.onnx", Some("crossface_simswap.onnx"), "256", "box+region"),
        ("simswap_unofficial_512", "simswap_unofficial_512.onnx", Some("crossface_simswap.onnx"), "1024", "box"),
        ("ghost", "ghost_256.onnx", Some("crossface_ghost.onnx"), "256", "box+area"),
        ("ghost", "ghost_256_batched.onnx", Some("crossface_ghost.onnx"), "512", "box"),
        ("hififace", "hififace_256.onnx", Some("crossface_hififace.onnx"), "512", "region+area"),
    ];
    for (family, file, converter, boost, types) in cases {
        let swapper = require!(common::fixture(file), format!("fixture {file} missing (run `make fixtures`)"));
        let nick = family.replace('_', "-");
        let mut props = format!("swapper-family={nick} pixel-boost={boost} mask-types={types}");
        let mut args = vec!["--boost", boost, "--mask-types"];
        let types_arg = types.replace('+', ",");
        args.push(&types_arg);
        let converter_path = converter.map(|c| common::fixture(c).expect("converter fixture").display().to_string());
        if let Some(path) = &converter_path {
            props += &format!(" converter-model={path}");
            args.extend(["--converter", path.as_str()]);
        }
        for (kind, (extra_props, extra_args)) in [("occlusion", &occlusion), ("region", &region), ("area", &area)] {
            if types.contains(kind) {
                props += &format!(" {extra_props}");
                args.extend(extra_args.iter().copied());
            }
        }
        equivalence(&setup, family, &swapper, &props, &args);
    }
}

#[test]
fn faces_at_the_frame_edge_replicate_its_pixels_into_the_crop() {
    let Some(setup) = setup() else { return };
    // Portraits cut by the frame's left and bottom edges: their 512-px crops reach far outside
    // the frame, where FaceFusion repeats the edge pixels (a black border would darken the
    // swapped face's edges through the model).
    let target = setup.dir.path().join("edges.png");
    common::run_reference(&[
        "compose",
        "--out",
        target.to_str().unwrap(),
        "--size",
        "960x540",
        "--place",
        &format!("{}:-220:60:0.6:0", setup.picture("gauss.png")),
        "--place",
        &format!("{}:600:400:0.7:10", setup.picture("astronaut.png")),
    ]);
    // No blur: the box mask reaches the crop's edge, so the pixels at the frame's edge come from
    // the model's view of the border.
    let props = format!("model-file={} pixel-boost=512 mask-types=box mask-blur=0", setup.inswapper.display());
    let run = setup.run(&target, "RGB", &props);
    assert_eq!(run.faces.len(), 2, "two faces on the edge composite: {:?}", run.faces);
    let args = ["--boost", "512", "--mask-blur", "0"];
    let reference = setup.reference(&target, &run.faces, "inswapper", &setup.inswapper, &args);
    let stats = agreement(&run.original, &run.ours, &reference);
    // Along the frame's edges, where the border decides the model's input.
    let (width, height) = (960, 540);
    let near_edge: Vec<usize> = (0..width * height)
        .filter(|i| i % width < 8 || i % width >= width - 8 || i / width < 8 || i / width >= height - 8)
        .flat_map(|i| i * 3..i * 3 + 3)
        .filter(|&b| run.ours[b] != run.original[b] || reference[b] != run.original[b])
        .collect();
    let edge_mean = near_edge.iter().map(|&b| run.ours[b].abs_diff(reference[b]) as f64).sum::<f64>()
        / near_edge.len().max(1) as f64;
    eprintln!(
        "{} faces at the edges: {stats:?}; {} bytes at the edge, mean {edge_mean:.3}",
        run.faces.len(),
        near_edge.len()
    );
    assert!(stats.changed > 10_000 && stats.mean <= 1.0 && stats.p999 <= 8, "{stats:?}");
    // The stand-in swapper sees only 3×3 neighbourhoods, so a black border changes just the last
    // few pixels: measured mean 0.14 there with the replicated border, 0.40 with a black one.
    assert!(near_edge.len() > 1000 && edge_mean <= 0.25, "at the frame's edge: mean {edge_mean}");
}

#[test]
fn yuv_frames_take_the_same_swap() {
    let Some(setup) = setup() else { return };
    let target = setup.composite();
    let props = format!("model-file={} pixel-boost=256", setup.inswapper.display());
    for format in ["I420", "NV12", "YUY2"] {
        // The reference swaps the frame as dlcswap received it (through `format` and back to RGB);
        // dlcswap writes the swapped face into subsampled chroma, which moves colours at the
        // mask's edges by a few levels.
        let yuv = setup.run(&target, format, &props);
        let received = setup.dir.path().join(format!("received-{format}.png"));
        image::RgbImage::from_raw(1280, 720, yuv.original.clone()).unwrap().save(&received).unwrap();
        let reference = setup.reference(&received, &yuv.faces, "inswapper", &setup.inswapper, &["--boost", "256"]);
        let stats = agreement(&yuv.original, &yuv.ours, &reference);
        eprintln!("{format}: {stats:?}");
        assert!(stats.changed > 30_000 && stats.mean <= 3.0 && stats.p999 <= 24, "{format}: {stats:?}");
    }
}

#[test]
fn automatic_pixel_boost_follows_the_stated_rule() {
    let Some(setup) = setup() else { return };
    // The reference applies the rule as gst-inspect states it, face by face.
    equivalence(&setup, "inswapper", &setup.inswapper, "pixel-boost=0 mask-types=box", &["--boost", "auto"]);
    let target = setup.composite();
    let picks = run_facefusion_reference(&[
        "auto-boost",
        "--family",
        "inswapper",
        "--faces-json",
        setup.dir.path().join("faces.json").to_str().unwrap(),
    ]);
    // The composite's faces are small, medium and large enough to get three different sizes.
    let sizes: Vec<u64> = serde_json::from_str(&picks).expect("a JSON list");
    eprintln!("auto boost on {}: {sizes:?}", target.display());
    assert_eq!(sizes.len(), 3);
    let mut distinct = sizes.clone();
    distinct.sort_unstable();
    distinct.dedup();
    assert!(distinct.len() >= 2, "the composite's faces should need different sizes: {sizes:?}");
}

/// The first error a one-frame pipeline posts with dlcswap `props`.
fn start_error(setup: &Setup, props: &str) -> String {
    let log = common::run_launch(&format!(
        "videotestsrc num-buffers=1 ! dlcdetect model-file={} ! dlcswap detector-model={} recognition-model={} \
         source={} model-file={} {props} ! fakesink",
        setup.detector.display(),
        setup.detector.display(),
        setup.arcface.display(),
        setup.picture("newton.png"),
        setup.inswapper.display(),
    ));
    assert!(!log.errors.is_empty(), "expected an error for '{props}'");
    log.error_text()
}

#[test]
fn bad_facefusion_settings_fail_start_naming_the_property() {
    let Some(setup) = setup() else { return };
    let text = start_error(&setup, "pixel-boost=200");
    assert!(text.contains("'pixel-boost'") && text.contains("200") && text.contains("384"), "{text}");
    let text = start_error(&setup, "pixel-boost=64");
    assert!(text.contains("'pixel-boost'") && text.contains("inswapper"), "{text}");
    let text = start_error(&setup, "mask-types=box mask-padding=10,x");
    assert!(text.contains("'mask-padding'") && text.contains("'x'"), "{text}");
    let text = start_error(&setup, "swapper-family=hyperswap");
    assert!(text.contains("hyperswap") && text.contains("[1,3,256,256]"), "{text}");
    let text = start_error(&setup, "mask-types=region mask-regions=skin,forehead");
    assert!(text.contains("'mask-regions'") && text.contains("'forehead'") && text.contains("lower-lip"), "{text}");
    let text = start_error(&setup, "mask-types=area mask-areas=chin");
    assert!(text.contains("'mask-areas'") && text.contains("'chin'"), "{text}");
    let missing = setup.dir.path().join("xseg_missing.onnx");
    let text = start_error(&setup, &format!("mask-types=occlusion occluder-model={}", missing.display()));
    assert!(text.contains("'occluder-model'") && text.contains("xseg_missing.onnx"), "{text}");
    let parser = common::fixture("bisenet_18_classes.onnx").expect("fixture bisenet_18_classes.onnx (make fixtures)");
    let text = start_error(&setup, &format!("mask-types=region parser-model={}", parser.display()));
    assert!(text.contains("bisenet_18_classes.onnx") && text.contains("19"), "{text}");
    // The families whose identity is a picture crop are refused at start, not face by face.
    for name in ["blendswap_256.onnx", "uniface_256.onnx"] {
        let model = common::fixture(name).unwrap_or_else(|| panic!("fixture {name} (make fixtures)"));
        let text = start_error(&setup, &format!("model-file={}", model.display()));
        assert!(text.contains("'model-file'") && text.contains("does not support"), "{name}: {text}");
    }
    // A converter family without its converter: none beside the copied swapper file.
    let ghost = common::fixture("ghost_256.onnx").expect("fixture ghost_256.onnx (make fixtures)");
    let alone = setup.dir.path().join("ghost_256.onnx");
    std::fs::copy(&ghost, &alone).unwrap();
    let text = start_error(&setup, &format!("model-file={} swapper-family=ghost", alone.display()));
    assert!(text.contains("'converter-model'") && text.contains("crossface_ghost.onnx"), "{text}");
}

#[test]
fn deep_live_cam_settings_say_they_are_off_with_facefusion() {
    let Some(setup) = setup() else { return };
    let launch = |props: &str| {
        common::run_launch(&format!(
            "videotestsrc num-buffers=1 ! dlcdetect model-file={} ! dlcswap detector-model={} recognition-model={} \
             source={} model-file={} mouth-mask=40 sharpness=1 {props} ! fakesink",
            setup.detector.display(),
            setup.detector.display(),
            setup.arcface.display(),
            setup.picture("newton.png"),
            setup.inswapper.display(),
        ))
    };
    let said = |log: &common::BusLog| log.warnings.iter().any(|w| w.contains("Deep-Live-Cam path only"));
    let log = launch("mask-types=box");
    assert!(log.eos && log.errors.is_empty(), "{log:?}");
    let warning = log.warnings.iter().find(|w| w.contains("Deep-Live-Cam path only")).expect("a warning");
    assert!(warning.contains("mouth-mask, sharpness") && !warning.contains("color-correction"), "{warning}");
    assert!(!said(&launch("")), "the Deep-Live-Cam path uses them");
}

/// `appsrc ! dlcdetect ! dlcswap <props> ! appsink` fed the same picture frame after frame.
struct Live {
    pipeline: gst::Pipeline,
    src: gst_app::AppSrc,
    sink: gst_app::AppSink,
    frame: Vec<u8>,
    pushed: u64,
}

impl Live {
    fn new(setup: &Setup, picture: &Path, props: &str) -> Live {
        let image = image::open(picture).unwrap().to_rgb8();
        let pipeline = common::pipeline(&format!(
            "appsrc name=src format=time caps=video/x-raw,format=RGB,width={},height={},framerate=30/1 \
             ! dlcdetect model-file={} ! dlcswap name=swap detector-model={} recognition-model={} model-file={} \
             many-faces=true {props} ! appsink name=sink sync=false",
            image.width(),
            image.height(),
            setup.detector.display(),
            setup.detector.display(),
            setup.arcface.display(),
            setup.inswapper.display(),
        ));
        pipeline.set_state(gst::State::Playing).unwrap();
        Live {
            src: pipeline.by_name("src").unwrap().downcast().unwrap(),
            sink: pipeline.by_name("sink").unwrap().downcast().unwrap(),
            pipeline,
            frame: image.into_raw(),
            pushed: 0,
        }
    }

    fn next(&mut self) -> Vec<u8> {
        let mut buffer = gst::Buffer::from_slice(self.frame.clone());
        buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(33 * self.pushed));
        self.pushed += 1;
        self.src.push_buffer(buffer).unwrap();
        let sample = self.sink.try_pull_sample(gst::ClockTime::from_seconds(60)).expect("a frame");
        sample.buffer().unwrap().map_readable().unwrap().to_vec()
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let _ = self.pipeline.set_state(gst::State::Null);
    }
}

#[test]
fn a_source_changed_while_playing_takes_facefusion_identity() {
    let Some(setup) = setup() else { return };
    let target = setup.composite();
    let props = "pixel-boost=256 mask-types=box";
    let first = |source: &str| Live::new(&setup, &target, &format!("{props} source={source}")).next();
    let (newton, gauss) = (setup.picture("newton.png"), setup.picture("gauss.png"));
    let (as_newton, as_gauss) = (first(&newton), first(&gauss));
    assert_ne!(as_newton, as_gauss, "two sources give the same swap");
    // The picture worker computes the new identity (the raw embedding this path takes) while the
    // frames go on; within a few seconds the frames are those of a start with the new source.
    let mut live = Live::new(&setup, &target, &format!("{props} source={newton}"));
    assert_eq!(live.next(), as_newton);
    live.pipeline.by_name("swap").unwrap().set_property("source", &gauss);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while live.next() != as_gauss {
        assert!(std::time::Instant::now() < deadline, "the new source never applied");
    }
}
