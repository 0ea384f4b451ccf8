// SPDX-License-Identifier: MPL-2.0
//! The pixel backends agree: the CPU backend and the ONNX Runtime graphs (`pixel-backend`) give
//! the same detections and the same swapped and restored frames within the stated tolerance.
//!
//! `DLC_TEST_PROVIDER` picks the execution provider of every element (default `cpu`); on a GPU
//! machine `DLC_TEST_PROVIDER=cuda` compares the CPU pixel steps with the graphs on the GPU, the
//! same models running on the GPU in both.

mod common;

use std::path::PathBuf;

use gst::prelude::*;
use gstdlc::{Face, FaceFlags, FaceMeta};

/// Mean and largest difference allowed between the two backends' frames (8-bit levels): the
/// graphs sample in float where the CPU uses 8-bit fractions, which moves single values by a
/// level or two; a rounding that lands on the other side of a truncation adds one more.
const MEAN_TOLERANCE: f64 = 0.05;
const MAX_TOLERANCE: u8 = 6;

fn provider() -> String {
    std::env::var("DLC_TEST_PROVIDER").unwrap_or_else(|_| "cpu".to_string())
}

struct Setup {
    detector: PathBuf,
    arcface: PathBuf,
    media: PathBuf,
}

fn setup() -> Option<Setup> {
    let (detector, media, [arcface]) = common::real_faces(["arcface.onnx"])?;
    Some(Setup { detector, arcface, media })
}

/// Pushes `frame` through `appsrc ! <chain> ! videoconvert ! RGB appsink`; returns the output
/// frame and its faces.
fn run(frame: &(Vec<u8>, usize, usize), chain: &str) -> (Vec<u8>, Vec<Face>) {
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
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(120));
    let mut problems = Vec::new();
    let bus = pipeline.bus().unwrap();
    while let Some(msg) = bus.pop() {
        match msg.view() {
            gst::MessageView::Error(e) => problems.push(format!("error: {} {:?}", e.error(), e.debug())),
            gst::MessageView::Warning(e) => problems.push(format!("warning: {} {:?}", e.error(), e.debug())),
            _ => {}
        }
    }
    pipeline.set_state(gst::State::Null).unwrap();
    assert!(problems.is_empty(), "{chain}: {problems:?}");
    let sample = sample.unwrap_or_else(|| panic!("no frame from {chain}"));
    let info = gst_video::VideoInfo::from_caps(sample.caps().unwrap()).unwrap();
    let map = sample.buffer().unwrap().map_readable().unwrap();
    let stride = info.stride()[0] as usize;
    let bytes = (0..*h).flat_map(|y| map[y * stride..y * stride + w * 3].to_vec()).collect();
    let faces = sample.buffer().unwrap().meta::<FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default();
    (bytes, faces)
}

/// Runs `chain(backend)` with both backends and compares the frames.
fn compare(frame: &(Vec<u8>, usize, usize), what: &str, chain: impl Fn(&str) -> String) {
    let (cpu, faces) = run(frame, &chain("cpu"));
    let (graphs, _) = run(frame, &chain("onnx-runtime"));
    assert!(faces.len() >= 3, "{what}: three faces expected, found {}", faces.len());
    let (change, _) = common::differences(&cpu, &frame.0);
    let (mean, max) = common::differences(&cpu, &graphs);
    eprintln!(
        "{what} (provider {}): the frame changed by {change:.3} on average; backends differ by {mean:.4} on average, {max} at most",
        provider()
    );
    assert!(change > 0.2, "{what}: the chain changed the frame");
    assert!(mean <= MEAN_TOLERANCE && max <= MAX_TOLERANCE, "{what}: mean {mean}, max {max}");
}

#[test]
fn detection_is_the_same_with_either_backend() {
    let Some(setup) = setup() else { return };
    let frame = common::three_portraits(&setup.media);
    let detect = |backend: &str| {
        format!(
            "dlcdetect model-file={} execution-provider={} pixel-backend={backend}",
            setup.detector.display(),
            provider()
        )
    };
    let (_, cpu) = run(&frame, &detect("cpu"));
    let (_, graphs) = run(&frame, &detect("onnx-runtime"));
    assert_eq!(cpu.len(), 3, "{cpu:?}");
    assert_eq!(cpu.len(), graphs.len());
    for (a, b) in cpu.iter().zip(&graphs) {
        let box_error = a.bbox.iter().zip(b.bbox).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
        let point_error = a
            .landmarks
            .iter()
            .zip(b.landmarks)
            .map(|(p, q)| (p[0] - q[0]).abs().max((p[1] - q[1]).abs()))
            .fold(0.0f32, f32::max);
        eprintln!(
            "detection (provider {}): boxes within {box_error:.3} px, landmarks within {point_error:.3} px",
            provider()
        );
        assert!(box_error <= 1.0 && point_error <= 1.0, "{a:?} vs {b:?}");
    }
}

/// The graph backend runs the detector with its input size fixed (ONNX Runtime then folds its
/// shape computations, and on a GPU captures it as a CUDA graph): a `det-size` change while
/// playing reopens it for the new size, and it finds what the CPU backend finds at that size.
#[test]
fn the_fixed_size_detector_follows_det_size_changes() {
    let Some(setup) = setup() else { return };
    let (data, w, h) = common::three_portraits(&setup.media);
    let detect = |backend: &str, det_size: u32| {
        format!(
            "dlcdetect name=detect model-file={} execution-provider={} pixel-backend={backend} det-size={det_size}",
            setup.detector.display(),
            provider()
        )
    };
    let frame = (data.clone(), w, h);
    let (_, at_640) = run(&frame, &detect("cpu", 640));
    let (_, at_320) = run(&frame, &detect("cpu", 320));
    assert_ne!(at_640, at_320, "the two sizes should detect slightly different boxes");

    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={w},height={h},framerate=30/1 ! {} \
         ! appsink name=sink sync=false",
        detect("onnx-runtime", 640)
    ));
    let src = pipeline.by_name("src").unwrap().downcast::<gst_app::AppSrc>().unwrap();
    let sink = pipeline.by_name("sink").unwrap().downcast::<gst_app::AppSink>().unwrap();
    pipeline.set_state(gst::State::Playing).unwrap();
    let pull = || {
        src.push_buffer(gst::Buffer::from_slice(data.clone())).unwrap();
        let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(60)).expect("a frame");
        let faces = sample.buffer().unwrap().meta::<FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default();
        // Faces the tracker carries over from the previous frame are not this frame's detections.
        faces.into_iter().filter(|f| f.flags.contains(FaceFlags::INFERRED)).collect::<Vec<_>>()
    };
    let first = pull();
    pipeline.by_name("detect").unwrap().set_property("det-size", 320u32);
    let second = pull();
    pipeline.set_state(gst::State::Null).unwrap();
    for (what, graphs, cpu) in [("det-size 640", &first, &at_640), ("det-size 320", &second, &at_320)] {
        assert_eq!(graphs.len(), cpu.len(), "{what}: {graphs:?} vs {cpu:?}");
        for (a, b) in graphs.iter().zip(cpu.iter()) {
            let error = a.bbox.iter().zip(b.bbox).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
            assert!(error <= 1.0, "{what}: {a:?} vs {b:?}");
        }
    }
}

#[test]
fn swap_is_the_same_with_either_backend() {
    let Some(setup) = setup() else { return };
    let frame = common::three_portraits(&setup.media);
    let source = setup.media.join("newton.png");
    for (swapper, mask, format) in [
        ("inswapper.onnx", "insightface", "RGB"),
        ("inswapper.onnx", "ellipse", "BGRx"),
        ("inswapper_fp16.onnx", "insightface", "I420"),
    ] {
        let swapper = require!(common::fixture(swapper), format!("fixture {swapper} missing"));
        let chain = |backend: &str| {
            format!(
                "dlcdetect model-file={det} execution-provider={p} ! videoconvert ! video/x-raw,format={format} \
                 ! dlcswap source={src} many-faces=true mask={mask} detector-model={det} recognition-model={arc} \
                 model-file={swap} execution-provider={p} pixel-backend={backend}",
                det = setup.detector.display(),
                p = provider(),
                src = source.display(),
                arc = setup.arcface.display(),
                swap = swapper.display(),
            )
        };
        compare(&frame, &format!("swap {} mask={mask} {format}", swapper.display()), chain);
    }
}

/// Pushes three frames (PTS 0, 33 and 66 ms) into each named appsrc of `pipeline`, then EOS.
fn push_three_frames(pipeline: &gst::Pipeline, sources: &[(&str, &Vec<u8>)]) {
    for (name, frame) in sources {
        let src = pipeline.by_name(name).unwrap().downcast::<gst_app::AppSrc>().unwrap();
        for i in 0..3u64 {
            let mut buffer = gst::Buffer::from_slice((*frame).clone());
            buffer.get_mut().unwrap().set_pts(gst::ClockTime::from_mseconds(i * 33));
            src.push_buffer(buffer).unwrap();
        }
        src.end_of_stream().unwrap();
    }
}

/// Three frames from each of the appsinks `a` and `b` of `pipeline`, which is then stopped.
fn pull_three_frames_each(pipeline: &gst::Pipeline) -> Vec<Vec<Vec<u8>>> {
    let frames = ["a", "b"]
        .iter()
        .map(|name| {
            let sink = pipeline.by_name(name).unwrap().downcast::<gst_app::AppSink>().unwrap();
            (0..3)
                .map(|_| {
                    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(120)).expect("a frame");
                    sample.buffer().unwrap().map_readable().unwrap().to_vec()
                })
                .collect()
        })
        .collect();
    pipeline.set_state(gst::State::Null).unwrap();
    frames
}

/// Asserts that each stream's frames from the two backends are within the tolerances.
fn assert_streams_match(what: &str, cpu: &[Vec<Vec<u8>>], graphs: &[Vec<Vec<u8>>]) {
    for (stream, (cpu, graphs)) in cpu.iter().zip(graphs).enumerate() {
        for (i, (c, g)) in cpu.iter().zip(graphs).enumerate() {
            let (mean, max) = common::differences(c, g);
            eprintln!(
                "{what} stream {stream} frame {i} (provider {}): backends differ by {mean:.4} on average, {max} at most",
                provider()
            );
            assert!(
                mean <= MEAN_TOLERANCE && max <= MAX_TOLERANCE,
                "{what} stream {stream} frame {i}: mean {mean}, max {max}"
            );
        }
    }
}

/// Two streams' dlcswap elements on one swapper file: on a GPU their faces run in batches through
/// the process's shared batcher (`Batcher`), and each stream must still get its own faces.
#[test]
fn swaps_of_two_streams_batched_together_match_the_cpu_steps() {
    let Some(setup) = setup() else { return };
    let frame = common::three_portraits(&setup.media);
    let swapper = require!(common::fixture("inswapper_fp16.onnx"), "fixture inswapper_fp16.onnx missing");
    let swap = |backend: &str, source: &str| {
        format!(
            "dlcswap source={src} many-faces=true detector-model={det} recognition-model={arc} model-file={swap} \
             execution-provider={p} pixel-backend={backend}",
            src = setup.media.join(source).display(),
            det = setup.detector.display(),
            p = provider(),
            arc = setup.arcface.display(),
            swap = swapper.display(),
        )
    };
    let (data, w, h) = &frame;
    let two_streams = |backend: &str| {
        let pipeline = common::pipeline(&format!(
            "appsrc name=src format=time caps=video/x-raw,format=RGB,width={w},height={h},framerate=30/1 \
             ! dlcdetect model-file={det} execution-provider={p} ! tee name=t \
             t. ! queue ! {a} ! appsink name=a sync=false  t. ! queue ! {b} ! appsink name=b sync=false",
            det = setup.detector.display(),
            p = provider(),
            a = swap(backend, "newton.png"),
            b = swap(backend, "gauss.png"),
        ));
        pipeline.set_state(gst::State::Playing).unwrap();
        push_three_frames(&pipeline, &[("src", data)]);
        pull_three_frames_each(&pipeline)
    };
    let cpu = two_streams("cpu");
    let graphs = two_streams("onnx-runtime");
    assert_streams_match("swap", &cpu, &graphs);
    // The two sources give two different swaps: a batch that mixed them up would show here.
    let (mean, _) = common::differences(&cpu[0][0], &cpu[1][0]);
    assert!(mean > 0.2, "the two streams' faces should differ");
}

/// Two streams' dlcenhance elements on one restorer file: on a GPU their faces run in batches
/// through the process's shared batcher (`Batcher`), and each stream must still get its own faces
/// (with its own CodeFormer fidelity). The second stream's frame is the first one mirrored, so
/// that a batch that mixed faces up would paste the wrong ones. (On the CPU the elements run their
/// own sessions: this compares the backends; tests/dlcenhance.rs batches on the CPU.)
#[test]
fn restorations_of_two_streams_batched_together_match_the_cpu_steps() {
    let Some(setup) = setup() else { return };
    let gfpgan = require!(common::fixture("gfpgan.onnx"), "fixture gfpgan.onnx missing");
    let dir = tempfile::tempdir().unwrap();
    let codeformer = common::codeformer_with_a_weight_per_face(dir.path());
    let (data, w, h) = common::three_portraits(&setup.media);
    let mirrored: Vec<u8> =
        data.chunks_exact(w * 3).flat_map(|row| row.chunks_exact(3).rev().flatten()).copied().collect();
    for model in [gfpgan, codeformer] {
        let two_streams = |backend: &str| {
            let stream = |name: &str, fidelity: f64| {
                format!(
                    "appsrc name=src_{name} format=time caps=video/x-raw,format=RGB,width={w},height={h},framerate=30/1 \
                     ! dlcdetect model-file={det} execution-provider={p} \
                     ! dlcenhance model-file={model} fidelity={fidelity} execution-provider={p} pixel-backend={backend} \
                     ! appsink name={name} sync=false",
                    det = setup.detector.display(),
                    model = model.display(),
                    p = provider(),
                )
            };
            let pipeline = common::pipeline(&format!("{}  {}", stream("a", 0.3), stream("b", 0.8)));
            pipeline.set_state(gst::State::Playing).unwrap();
            push_three_frames(&pipeline, &[("src_a", &data), ("src_b", &mirrored)]);
            pull_three_frames_each(&pipeline)
        };
        let cpu = two_streams("cpu");
        let graphs = two_streams("onnx-runtime");
        for (stream, cpu) in cpu.iter().enumerate() {
            let original = if stream == 0 { &data } else { &mirrored };
            let (change, _) = common::differences(&cpu[0], original);
            assert!(change > 0.05, "{}: stream {stream}'s faces should be restored", model.display());
        }
        assert_streams_match(&model.display().to_string(), &cpu, &graphs);
    }
}

#[test]
fn restoration_is_the_same_with_either_backend() {
    let Some(setup) = setup() else { return };
    let frame = common::three_portraits(&setup.media);
    for (model, format) in [("gfpgan.onnx", "RGB"), ("gfpgan_1024.onnx", "NV12"), ("codeformer.onnx", "RGBx")] {
        let model = require!(common::fixture(model), format!("fixture {model} missing"));
        let chain = |backend: &str| {
            format!(
                "dlcdetect model-file={} execution-provider={p} ! videoconvert ! video/x-raw,format={format} \
                 ! dlcenhance model-file={} execution-provider={p} pixel-backend={backend}",
                setup.detector.display(),
                model.display(),
                p = provider(),
            )
        };
        compare(&frame, &format!("restore {} {format}", model.display()), chain);
    }
}

/// The element's `active-pixel-backend` and `active-provider` once a one-frame pipeline ran,
/// and the bus warnings.
fn active(setup: &Setup, props: &str) -> (String, String, Vec<String>) {
    let pipeline = common::pipeline(&format!(
        "videotestsrc num-buffers=1 ! video/x-raw,format=RGB,width=64,height=64 ! dlcdetect name=d model-file={} {props} ! fakesink",
        setup.detector.display()
    ));
    let detect = pipeline.by_name("d").unwrap();
    pipeline.set_state(gst::State::Paused).unwrap();
    let _ = pipeline.state(gst::ClockTime::from_seconds(60));
    let read = |name: &str| detect.property::<Option<String>>(name).unwrap_or_default();
    let (pixels, provider) = (read("active-pixel-backend"), read("active-provider"));
    let log = common::run(&pipeline, std::time::Duration::from_secs(60));
    (pixels, provider, log.warnings)
}

#[test]
fn without_a_gpu_the_pixel_steps_run_on_the_cpu_and_say_so() {
    let Some(setup) = setup() else { return };
    if provider() != "cpu" {
        common::skip(&format!("this test is about machines without a GPU (DLC_TEST_PROVIDER={})", provider()));
        return;
    }
    let (pixels, provider, warnings) = active(&setup, "");
    assert_eq!((pixels.as_str(), provider.as_str()), ("cpu", "cpu"), "{warnings:?}");
    let (pixels, _, _) = active(&setup, "pixel-backend=onnx-runtime");
    assert_eq!(pixels, "onnx-runtime");
    // CUDA asked for on a CPU-only ONNX Runtime: the model falls back with a warning, and the
    // pixel steps stay on the CPU.
    let (pixels, provider, warnings) = active(&setup, "execution-provider=cuda");
    assert_eq!((pixels.as_str(), provider.as_str()), ("cpu", "cpu"));
    assert!(warnings.iter().any(|w| w.contains("'cuda' could not be used")), "{warnings:?}");
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

/// A frame of `format` whose every byte is a pattern value, rows padded past their pixels (the
/// padding is never read), for `FrameView::new`.
fn patterned_planes(format: gstdlc::vision::PixelFormat, w: usize, h: usize) -> ([Vec<u8>; 3], [usize; 3]) {
    let (shapes, used) = format.plane_shapes(w, h).expect("a frame size that fits");
    let pad = 24;
    let strides: [usize; 3] = std::array::from_fn(|p| if p < used { shapes[p].0 + pad } else { 0 });
    let planes = std::array::from_fn(|p| {
        let (stride, rows) = (strides[p], shapes[p].1);
        (0..stride * rows).map(|i| ((i * 37 + (p + 1) * 11 + (i / stride.max(1)) * 5) % 256) as u8).collect()
    });
    (planes, strides)
}

/// The graph backend letterboxes the frame for the detector on the models' provider (an integer
/// graph built from the CPU resize's indices and weights, fed only the rows it reads): the
/// detector input it writes equals the CPU backend's value for value, in every pixel format,
/// downscaling and upscaling, in float32 and float16.
#[test]
fn the_letterbox_graph_writes_the_cpu_blob_exactly() {
    use gstdlc::backend::{Backend, GraphBackend, Normalization};
    use gstdlc::runtime::{ExecutionProvider, ModelSession, SessionOptions};
    use gstdlc::vision::{FrameView, PixelFormat::*, YuvMatrix};
    use ort::value::TensorElementType;
    if !common::have_ort() {
        return common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
    }
    let execution_provider = match provider().as_str() {
        "cuda" => ExecutionProvider::Cuda,
        _ => ExecutionProvider::Cpu,
    };
    let options = SessionOptions { provider: execution_provider, ..SessionOptions::default() }.with_own_stream();
    let model = ModelSession::open_memory("identity", &identity_model(), &options).expect("identity session");
    let mut graphs = Backend::Graph(GraphBackend::new(&model, &options).expect("graph backend"));
    let mut cpu = Backend::cpu();
    let norm = Normalization { mean: 127.5, scale: 1.0 / 128.0 };
    let formats = [Rgb, Bgr, Rgba, Rgbx, Bgra, Bgrx, Xrgb, Argb, Xbgr, Abgr, I420, Nv12, Yuy2, Uyvy, Yvyu, Nv21, Yv12];
    let mut compared = 0;
    for (w, h, det, matrix, full_range) in [
        (1920, 1080, 640, YuvMatrix::Bt709, false),
        (1280, 720, 640, YuvMatrix::Bt601, false),
        (177, 143, 640, YuvMatrix::Bt601, true),
        (361, 641, 320, YuvMatrix::Bt2020, false),
    ] {
        for format in formats {
            let (planes, strides) = patterned_planes(format, w, h);
            let view = FrameView::new(format, w, h, [&planes[0], &planes[1], &planes[2]], strides, matrix, full_range)
                .expect("frame");
            let elements: &[TensorElementType] = if format == Bgrx {
                &[TensorElementType::Float32, TensorElementType::Float16]
            } else {
                &[TensorElementType::Float32]
            };
            for &element in elements {
                let blob = |backend: &mut Backend| {
                    let mut input = backend.tensor(&[1, 3, det, det], element).expect("input tensor");
                    let scale = backend.letterbox(&view, norm, &mut input).expect("letterbox");
                    let values = backend.read_outputs(&[input], |v| v[0].to_vec()).expect("read");
                    (values, scale)
                };
                let (expected, expected_scale) = blob(&mut cpu);
                let (found, scale) = blob(&mut graphs);
                assert_eq!(scale, expected_scale, "{format:?} {w}×{h}");
                let differing = expected.iter().zip(&found).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
                assert_eq!(differing, 0, "{format:?} {w}×{h} → {det} {element:?}: {differing} values differ");
                compared += 1;
            }
        }
    }
    eprintln!("letterbox (provider {}): {compared} blobs, every value equal to the CPU backend's", provider());
}
