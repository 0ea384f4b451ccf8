// SPDX-License-Identifier: MPL-2.0
//! FaceFusion's pixel steps on the graph backend equal the CPU path's: the tiles the swapper
//! reads (crop warped with the edge replicated, polyphase split, the family's normalisation), the
//! float crop made from its outputs, the float paste through the masks' minimum, and whole
//! frames through dlcswap with either `pixel-backend`.
//!
//! `DLC_TEST_PROVIDER` picks the execution provider (default `cpu`); on a GPU machine
//! `DLC_TEST_PROVIDER=cuda` runs the graphs on the GPU. On ONNX Runtime's CPU provider the steps
//! are exact (the graphs compute the CPU's fixed-point positions, integer interpolation and float
//! arithmetic in the same order); on a GPU the float steps may round differently, within the
//! tolerances below.

mod common;

use gstdlc::backend::graph::facefusion::BoostFace;
use gstdlc::backend::{Backend, GraphBackend};
use gstdlc::models::swapper::tiles::{finish, prepare, tile_format, tiles_output};
use gstdlc::models::swapper::{FamilySpec, ghost, hyperswap, inswapper, simswap};
use gstdlc::runtime::{ExecutionProvider, ModelSession, SessionOptions};
use gstdlc::vision::boost::{explode, implode};
use gstdlc::vision::box_mask::{BoxMaskSettings, box_mask};
use gstdlc::vision::filter::BlurScratch;
use gstdlc::vision::float_paste::{FloatCrop, paste_float, paste_rect};
use gstdlc::vision::paste::PackedPixels;
use gstdlc::vision::warp::warp_affine_rgb_replicate;
use gstdlc::vision::{Affine, FrameView, FrameViewMut, PixelFormat, Rect, RgbImage, YuvMatrix};
use ort::value::{DynTensor, TensorElementType};

fn provider() -> String {
    std::env::var("DLC_TEST_PROVIDER").unwrap_or_else(|_| "cpu".to_string())
}

fn exact() -> bool {
    provider() == "cpu"
}

/// An ONNX model of one Identity node, for a session that only lends the graph backend its
/// provider.
fn identity_model() -> Vec<u8> {
    use gstdlc::backend::graph::onnx::{Dim, Elem, Graph};
    let mut g = Graph::new("identity");
    let x = g.input("x", Elem::Float, &[Dim::Fixed(1)]);
    g.output(&x, "y", Elem::Float, &[Dim::Fixed(1)]);
    g.encode()
}

/// The graph backend on the test's provider, or `None` (skipped) without ONNX Runtime.
fn graphs() -> Option<Backend> {
    if !common::have_ort() {
        common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
        return None;
    }
    let execution_provider = match provider().as_str() {
        "cuda" => ExecutionProvider::Cuda,
        _ => ExecutionProvider::Cpu,
    };
    let options = SessionOptions { provider: execution_provider, ..SessionOptions::default() }.with_own_stream();
    let model = ModelSession::open_memory("identity", &identity_model(), &options).expect("identity session");
    Some(Backend::Graph(GraphBackend::new(&model, &options).expect("graph backend")))
}

fn graph(backend: &mut Backend) -> &mut GraphBackend {
    match backend {
        Backend::Graph(g) => g,
        Backend::Cpu(_) => unreachable!("the test made a graph backend"),
    }
}

/// A 320×240 RGB picture with smooth gradients and fine texture.
fn picture() -> RgbImage {
    let (w, h) = (320usize, 240usize);
    let data = (0..w * h)
        .flat_map(|i| {
            let (x, y) = (i % w, i / w);
            [
                ((x * 255 / w + (x * y) % 7) % 256) as u8,
                ((y * 255 / h + (x * 13 + y * 3) % 11) % 256) as u8,
                ((x + y) * 2 % 256) as u8,
            ]
        })
        .collect();
    RgbImage::from_raw(w, h, data).expect("w·h pixels")
}

/// Frame → crop alignments of a crop of `side` px: a face inside the frame, one rotated and
/// magnified across the left edge, and one shrunk across the bottom-right corner.
fn alignments(side: usize) -> Vec<Affine> {
    let s = side as f64;
    let similarity = |scale: f64, angle: f64, cx: f64, cy: f64| {
        // Crop centre (s/2, s/2) shows frame (cx, cy); crop = scale·R·(frame − c) + s/2.
        let (c, n) = (scale * angle.cos(), scale * angle.sin());
        Affine { m: [c, -n, s / 2.0 - c * cx + n * cy, n, c, s / 2.0 - n * cx - c * cy] }
    };
    vec![
        similarity(s / 150.0, 0.1, 160.3, 120.7),
        similarity(s / 90.0, -0.6, 20.2, 100.1),
        similarity(s / 400.0, 0.35, 300.6, 230.4),
    ]
}

fn device_tensors(backend: &Backend, count: usize, shape: &[usize], element: TensorElementType) -> Vec<DynTensor> {
    (0..count).map(|_| backend.tensor(shape, element).expect("tensor")).collect()
}

fn read(backend: &mut Backend, tensors: Vec<DynTensor>) -> Vec<f32> {
    backend.read_outputs(&tensors, |values| values.concat()).expect("read back")
}

fn load(backend: &mut Backend, view: &FrameView, m: &Affine, side: usize) -> BoostFace {
    graph(backend).load_boost_face(view, m, side).expect("load").expect("the face touches the frame")
}

/// Families and boost sizes covering both output spaces, model sizes 128 and 256, factors 1 to 4.
const CASES: [(&FamilySpec, usize); 5] = [
    (&inswapper::FAMILY, 128),
    (&inswapper::FAMILY, 512),
    (&hyperswap::FAMILY, 512),
    (&simswap::FAMILY_256, 256),
    (&ghost::FAMILY, 512),
];

#[test]
fn the_tiles_graph_writes_the_cpu_tiles_exactly() {
    let Some(mut backend) = graphs() else { return };
    let picture = picture();
    let view = FrameView::from_rgb(&picture);
    let mut compared = 0;
    for (family, side) in CASES {
        let (size, factor) = (family.size, side / family.size);
        let count = factor * factor;
        for m in alignments(side) {
            let mut crop = RgbImage::default();
            warp_affine_rgb_replicate(&view, &m, &mut crop, side, side);
            let mut tiles = Vec::new();
            assert_eq!(implode(&crop, size, factor, &mut tiles), count);
            let mut expected = vec![0.0f32; count * 3 * size * size];
            prepare(family, &tiles, count, size, &mut expected);
            let face = load(&mut backend, &view, &m, side);
            for (batched, element) in [
                (true, TensorElementType::Float32),
                (false, TensorElementType::Float32),
                (true, TensorElementType::Float16),
            ] {
                let (n, batch) = if batched { (1, count) } else { (count, 1) };
                let mut inputs = device_tensors(&backend, n, &[batch, 3, size, size], element);
                let format = tile_format(family, factor, batched, element);
                let mut graph_crop = RgbImage::default();
                graph(&mut backend)
                    .boost_tiles_in(&face, &format, &mut inputs, Some(&mut graph_crop), None)
                    .expect("tiles");
                let found = read(&mut backend, inputs);
                let what = format!("{} at {side}, batched {batched}, {element:?}", family.name);
                let wrong_bytes = crop.data.iter().zip(&graph_crop.data).filter(|(a, b)| a != b).count();
                assert_eq!(graph_crop.width, side, "{what}");
                assert_eq!(wrong_bytes, 0, "{what}: {wrong_bytes} crop bytes differ from the CPU warp");
                // float16 inputs: the CPU narrows the same float32 values the same way.
                let want: Vec<f32> = if element == TensorElementType::Float16 {
                    expected.iter().map(|&v| half::f16::from_f32(v).to_f32()).collect()
                } else {
                    expected.clone()
                };
                let differing = want.iter().zip(&found).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
                assert_eq!(found.len(), want.len(), "{what}");
                assert_eq!(differing, 0, "{what}: {differing} tile values differ");
                compared += 1;
            }
        }
    }
    eprintln!("tiles (provider {}): {compared} tile sets, every value equal to the CPU path's", provider());
}

/// Deterministic model-like outputs in [−0.3, 1.3].
fn outputs(len: usize, seed: u32) -> Vec<f32> {
    let mut state = seed.wrapping_mul(2_654_435_761).max(1);
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 17;
            state ^= state << 5;
            (state % 16_001) as f32 / 10_000.0 - 0.3
        })
        .collect()
}

#[test]
fn the_untile_graph_makes_the_cpu_float_crop() {
    let Some(mut backend) = graphs() else { return };
    let mut compared = 0;
    for (seed, (family, side)) in CASES.into_iter().enumerate() {
        let (size, factor) = (family.size, side / family.size);
        let count = factor * factor;
        for (batched, element) in [
            (true, TensorElementType::Float32),
            (false, TensorElementType::Float32),
            (false, TensorElementType::Float16),
        ] {
            let mut planar = outputs(count * 3 * size * size, seed as u32 + 1);
            if element == TensorElementType::Float16 {
                planar.iter_mut().for_each(|v| *v = half::f16::from_f32(*v).to_f32());
            }
            let mut packed = vec![0.0f32; planar.len()];
            finish(family, &planar, count, size, &mut packed);
            let mut expected = Vec::new();
            assert!(explode(&packed, size, factor, &mut expected));
            let (n, batch) = if batched { (1, count) } else { (count, 1) };
            let mut tensors = device_tensors(&backend, n, &[batch, 3, size, size], element);
            for (tensor, values) in tensors.iter_mut().zip(planar.chunks_exact(batch * 3 * size * size)) {
                backend.fill(tensor, values).expect("fill");
            }
            let mut crop = None;
            let g = graph(&mut backend);
            g.boost_tiles_out(&tensors, (size, factor), tiles_output(family), &mut crop).expect("untile");
            let mut found = Vec::new();
            g.download_float_crop(crop.as_ref().expect("a crop"), &mut found).expect("download");
            let what = format!("{} at {side}, batched {batched}, {element:?}", family.name);
            let worst = expected.iter().zip(&found).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
            let differing = expected.iter().zip(&found).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
            assert_eq!(found.len(), expected.len(), "{what}");
            if exact() {
                assert_eq!(differing, 0, "{what}: {differing} values differ, by up to {worst}");
            } else {
                assert!(worst <= 1e-3, "{what}: values differ by up to {worst}");
            }
            compared += 1;
        }
    }
    eprintln!("untile (provider {}): {compared} crops equal to the CPU path's", provider());
}

/// The masks the paste combines: the box mask, and a ramp reaching past [0, 1].
fn masks(side: usize) -> [Vec<f32>; 2] {
    let settings = BoxMaskSettings { blur: 0.3, padding: [5, 0, 10, 0] };
    let ramp = (0..side * side).map(|i| ((i % side) as f32 / side as f32) * 1.4 - 0.1).collect();
    [box_mask(side, settings, &mut BlurScratch::default()), ramp]
}

/// How two frames differ: (bytes that differ, mean, max).
fn compare(a: &[u8], b: &[u8]) -> (usize, f64, u8) {
    let differing = a.iter().zip(b).filter(|(x, y)| x != y).count();
    let (mean, max) = common::differences(a, b);
    (differing, mean, max)
}

/// The graph backend's paste of `crop` (the `side`-pixel float crop of `face`) into `image`
/// (packed RGB) through the minimum of the two `masks`, at `opacity`.
fn boost_paste_into(
    backend: &mut Backend,
    image: &mut RgbImage,
    (face, side): (&BoostFace, usize),
    crop: &DynTensor,
    masks: &[Vec<f32>; 2],
    opacity: f32,
) -> Result<(), String> {
    let (w, h) = (image.width, image.height);
    let g = graph(backend);
    let (mut first, mut second) = (None, None);
    g.upload_mask(&masks[0], side, &mut first).expect("upload");
    g.upload_mask(&masks[1], side, &mut second).expect("upload");
    let layers = [first.as_ref().expect("a mask"), second.as_ref().expect("a mask")];
    let planes = [image.data.as_mut_slice(), &mut [], &mut []];
    let mut frame =
        FrameViewMut::new(PixelFormat::Rgb, w, h, planes, [w * 3, 0, 0], YuvMatrix::Bt601, false).expect("frame");
    g.boost_paste(&mut frame, face, crop, &layers, opacity)
}

#[test]
fn the_float_paste_graph_pastes_as_the_cpu_does() {
    let Some(mut backend) = graphs() else { return };
    let picture = picture();
    let (w, h) = (picture.width, picture.height);
    let mut compared = 0;
    for (seed, (family, side)) in CASES.into_iter().enumerate() {
        let values = outputs(side * side * 3, 100 + seed as u32);
        let rgb: Vec<f32> = values.iter().map(|v| v.clamp(0.0, 1.0) * 255.0).collect();
        let masks = masks(side);
        let opacity = 0.8;
        let mut combined: Vec<f32> = masks[0].iter().zip(&masks[1]).map(|(a, b)| a.min(*b)).collect();
        combined.iter_mut().for_each(|v| *v = v.clamp(0.0, 1.0) * opacity);
        for m in alignments(side) {
            let mut expected = picture.clone();
            let rect = paste_rect(&m, side, w, h);
            let mut pixels = PackedPixels::region(&mut expected, Rect::new(0, 0, w as i32, h as i32));
            paste_float(&mut pixels, rect, FloatCrop { side, rgb: &rgb, mask: &combined }, &m, None);

            let mut found = picture.clone();
            let view = FrameView::from_rgb(&picture);
            let face = load(&mut backend, &view, &m, side);
            let mut crop = backend.tensor(&[1, 3, side, side], TensorElementType::Float32).expect("crop");
            let planar: Vec<f32> = (0..3).flat_map(|c| rgb.iter().skip(c).step_by(3).copied()).collect();
            backend.fill(&mut crop, &planar).expect("fill");
            boost_paste_into(&mut backend, &mut found, (&face, side), &crop, &masks, opacity).expect("paste");
            let what = format!("{} at {side}, face at {:?}", family.name, face.paste);
            let (differing, mean, max) = compare(&expected.data, &found.data);
            let (changed, _, _) = compare(&expected.data, &picture.data);
            assert!(changed > 1000, "{what}: the paste changed only {changed} bytes");
            if exact() {
                assert_eq!(differing, 0, "{what}: {differing} bytes differ (mean {mean}, max {max})");
            } else {
                assert!(mean <= 0.02 && max <= 1, "{what}: mean {mean}, max {max}");
            }
            compared += 1;
        }
    }
    eprintln!("float paste (provider {}): {compared} pastes equal to the CPU path's", provider());

    // A mask with a NaN (made from an occluder or parser output that held one; the CPU path
    // refuses such an output): the paste is refused and the frame left as it was.
    let (family, side) = CASES[0];
    let m = alignments(side)[0];
    let mut masks = masks(side);
    masks[1][side * side / 2 + side / 2] = f32::NAN;
    let view = FrameView::from_rgb(&picture);
    let face = load(&mut backend, &view, &m, side);
    let mut crop = backend.tensor(&[1, 3, side, side], TensorElementType::Float32).expect("crop");
    backend.fill(&mut crop, &vec![128.0; 3 * side * side]).expect("fill");
    let mut found = picture.clone();
    let refused = boost_paste_into(&mut backend, &mut found, (&face, side), &crop, &masks, 1.0);
    assert!(refused.as_ref().is_err_and(|e| e.contains("non-finite")), "{}: {refused:?}", family.name);
    assert!(found.data == picture.data, "a refused paste leaves the frame as it was");
}

/// The occluder's input made by the tiles graph equals `vision::masks::occluder_input` of the
/// CPU crop, and the occlusion and region masks made on the device from model outputs equal
/// `occlusion_from_output` and `region_from_logits` (to float rounding: the blur is a
/// convolution there), as does the parser's input made from the float crop.
#[test]
fn the_mask_graphs_make_the_cpu_masks() {
    use gstdlc::models::parser::Parser;
    use gstdlc::vision::masks::{
        OCCLUDER_SIZE, PARSER_CLASSES, PARSER_SIZE, Regions, occluder_input, occlusion_from_output, parser_input,
        region_from_logits,
    };
    let Some(mut backend) = graphs() else { return };
    let picture = picture();
    let view = FrameView::from_rgb(&picture);
    // On a GPU the blur's convolutions may run in TF32 (cuDNN's default on recent GPUs): 10-bit
    // products, about 1e-3 after the two passes, doubled by the soft threshold.
    let tolerance = if exact() { 1e-5 } else { 4e-3 };
    let worst = |a: &[f32], b: &[f32]| {
        assert_eq!(a.len(), b.len());
        a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0f32, f32::max)
    };
    for (seed, (family, side)) in CASES.into_iter().enumerate() {
        let (size, factor) = (family.size, side / family.size);
        let m = &alignments(side)[seed % 3];
        // The occluder's input, from the crop the tiles graph warps.
        let mut crop = RgbImage::default();
        warp_affine_rgb_replicate(&view, m, &mut crop, side, side);
        let n = OCCLUDER_SIZE;
        let mut expected = vec![0.0f32; n * n * 3];
        occluder_input(&crop, &mut Vec::new(), &mut expected);
        let face = load(&mut backend, &view, m, side);
        let count = factor * factor;
        let mut inputs = device_tensors(&backend, 1, &[count, 3, size, size], TensorElementType::Float32);
        let mut occluder = backend.tensor(&[1, n, n, 3], TensorElementType::Float32).expect("tensor");
        let format = gstdlc::backend::graph::facefusion::TileFormat {
            occluder: Some(TensorElementType::Float32),
            ..tile_format(family, factor, true, TensorElementType::Float32)
        };
        graph(&mut backend).boost_tiles_in(&face, &format, &mut inputs, None, Some(&mut occluder)).expect("tiles");
        let found = read(&mut backend, vec![occluder]);
        let differing = expected.iter().zip(&found).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        let what = format!("{} at {side}", family.name);
        assert_eq!(differing, 0, "{what}: {differing} occluder input values differ");

        // The occlusion mask from an XSeg-like output with values past [0, 1].
        let output: Vec<f32> = outputs(n * n, 7 + seed as u32).iter().map(|v| (v - 0.5) * 3.0 + 0.5).collect();
        let expected = occlusion_from_output(&output, side, &mut BlurScratch::default());
        let mut raw = backend.tensor(&[1, n, n, 1], TensorElementType::Float32).expect("tensor");
        backend.fill(&mut raw, &output).expect("fill");
        let mut mask = None;
        graph(&mut backend).occlusion_mask(&raw, side, &mut mask).expect("occlusion");
        let found = read(&mut backend, vec![mask.expect("a mask")]);
        let occlusion_error = worst(&expected, &found);
        let partial = expected.iter().filter(|v| **v > 0.0 && **v < 1.0).count();
        assert!(partial > side, "{what}: the occlusion mask should have soft edges");
        assert!(occlusion_error <= tolerance, "{what}: occlusion masks differ by {occlusion_error}");

        // The parser's input from a float crop.
        let rgb: Vec<f32> =
            outputs(side * side * 3, 20 + seed as u32).iter().map(|v| v.clamp(0.0, 1.0) * 255.0).collect();
        let p = PARSER_SIZE;
        let mut expected = vec![0.0f32; 3 * p * p];
        parser_input(&rgb, side, &mut Vec::new(), &mut expected);
        let mut float_crop = backend.tensor(&[1, 3, side, side], TensorElementType::Float32).expect("crop");
        let planar: Vec<f32> = (0..3).flat_map(|c| rgb.iter().skip(c).step_by(3).copied()).collect();
        backend.fill(&mut float_crop, &planar).expect("fill");
        let mut input = backend.tensor(&[1, 3, p, p], TensorElementType::Float32).expect("tensor");
        graph(&mut backend).parser_input(&float_crop, &mut input).expect("parser input");
        let found = read(&mut backend, vec![input]);
        let differing = expected.iter().zip(&found).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
        if exact() {
            assert_eq!(differing, 0, "{what}: {differing} parser input values differ");
        } else {
            assert!(worst(&expected, &found) <= 1e-4, "{what}: parser inputs differ");
        }

        // The region mask from logits whose winner changes across the picture.
        let regions = Regions::parse("skin,nose,mouth,upper-lip").expect("regions");
        let plane = p * p;
        let mut logits = outputs(PARSER_CLASSES * plane, 40 + seed as u32);
        for (i, v) in logits[plane..2 * plane].iter_mut().enumerate() {
            // Class 1 (skin) wins in a disc in the middle.
            let (x, y) = ((i % p) as f32 - 256.0, (i / p) as f32 - 256.0);
            if x * x + y * y < 150.0 * 150.0 {
                *v += 2.0;
            }
        }
        let expected = region_from_logits(&logits, PARSER_CLASSES, &regions, side, &mut BlurScratch::default());
        let mut raw = backend.tensor(&[1, PARSER_CLASSES, p, p], TensorElementType::Float32).expect("tensor");
        backend.fill(&mut raw, &logits).expect("fill");
        let mut mask = None;
        let selected = Parser::selected_classes(&regions);
        graph(&mut backend).region_mask(&raw, side, &selected, &mut mask).expect("region");
        let found = read(&mut backend, vec![mask.expect("a mask")]);
        let region_error = worst(&expected, &found);
        let inside = expected.iter().filter(|v| **v > 0.99).count();
        assert!(inside > side * side / 10, "{what}: the region mask should cover the disc");
        assert!(region_error <= tolerance, "{what}: region masks differ by {region_error}");
        eprintln!(
            "masks (provider {}) {what}: occluder and parser inputs equal; occlusion mask within \
             {occlusion_error:e}, region mask within {region_error:e}",
            provider()
        );
    }
}

/// Pushes `frame` through `appsrc ! <chain> ! videoconvert ! RGB appsink`; returns the output
/// frame and the `active-pixel-backend` of the element named `swap`.
fn run_chain(frame: &(Vec<u8>, usize, usize), chain: &str) -> (Vec<u8>, String) {
    use gst::prelude::*;
    let (data, w, h) = frame;
    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={w},height={h},framerate=30/1 ! {chain} \
         ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false"
    ));
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    src.push_buffer(gst::Buffer::from_slice(data.clone())).unwrap();
    src.end_of_stream().unwrap();
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(300));
    let errors = common::drain_errors(&pipeline);
    let pixels = pipeline.by_name("swap").unwrap().property::<Option<String>>("active-pixel-backend");
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(errors.is_empty(), "{chain}: {errors:?}");
    let sample = sample.unwrap_or_else(|| panic!("no frame from {chain}"));
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let stride = info.stride()[0] as usize;
    let bytes = (0..*h).flat_map(|y| map[y * stride..y * stride + w * 3].to_vec()).collect();
    (bytes, pixels.unwrap_or_default())
}

/// dlcswap's FaceFusion path gives the same frames with `pixel-backend=cpu` and
/// `pixel-backend=onnx-runtime`: families with one and several tiles, batched and one by one,
/// float16, every mask kind, packed RGB and YUV frames.
#[test]
fn dlcswap_facefusion_frames_are_the_same_with_either_backend() {
    let Some((detector, media, [arcface, xseg, bisenet, fan])) =
        common::real_faces(["arcface.onnx", "xseg.onnx", "bisenet.onnx", "fan_68_5.onnx"])
    else {
        return;
    };
    let frame = common::three_portraits(&media);
    let p = provider();
    let fixture = |name: &str| common::fixture(name).unwrap_or_else(|| panic!("fixture {name} (run `make fixtures`)"));
    let masks = format!(
        "occluder-model={} parser-model={} mask-regions=skin,nose,mouth landmark-68-model={} mask-areas=lower-face,mouth",
        xseg.display(),
        bisenet.display(),
        fan.display()
    );
    let cases = [
        ("inswapper.onnx", "RGB", "pixel-boost=256".to_string()),
        ("inswapper_fp16.onnx", "I420", "pixel-boost=384 mask-types=box+area".to_string()),
        (
            "hyperswap_256.onnx",
            "RGBx",
            "swapper-family=hyperswap pixel-boost=512 mask-types=box+occlusion+region".into(),
        ),
        (
            "ghost_256_batched.onnx",
            "NV12",
            format!(
                "swapper-family=ghost converter-model={} pixel-boost=512",
                fixture("crossface_ghost.onnx").display()
            ),
        ),
        (
            "simswap_256.onnx",
            "BGR",
            format!(
                "swapper-family=simswap converter-model={} pixel-boost=256 mask-types=occlusion+area opacity=0.7",
                fixture("crossface_simswap.onnx").display()
            ),
        ),
    ];
    for (file, format, props) in cases {
        let chain = |backend: &str| {
            format!(
                "dlcdetect model-file={det} execution-provider={p} ! videoconvert ! video/x-raw,format={format} \
                 ! dlcswap name=swap detector-model={det} recognition-model={arc} source={src} many-faces=true \
                 model-file={model} execution-provider={p} pixel-backend={backend} {props} {masks}",
                det = detector.display(),
                arc = arcface.display(),
                src = media.join("newton.png").display(),
                model = fixture(file).display(),
            )
        };
        let (cpu, on_cpu) = run_chain(&frame, &chain("cpu"));
        let (graphs, on_graphs) = run_chain(&frame, &chain("onnx-runtime"));
        assert_eq!((on_cpu.as_str(), on_graphs.as_str()), ("cpu", "onnx-runtime"), "{file} {props}");
        let (change, _) = common::differences(&cpu, &frame.0);
        let (differing, mean, max) = compare(&cpu, &graphs);
        eprintln!(
            "{file} {format} {props} (provider {p}): the frame changed by {change:.3} on average; backends differ \
             in {differing} bytes, by {mean:.4} on average, {max} at most"
        );
        assert!(change > 0.1, "{file} {props}: the swap changed the frame by {change} only");
        assert!(mean <= 0.02 && max <= 2, "{file} {format} {props}: mean {mean}, max {max}");
    }
}
