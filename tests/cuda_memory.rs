// SPDX-License-Identifier: MPL-2.0
//! Caps negotiation of frames in CUDA memory (`video/x-raw(memory:CUDAMemory)`): where this
//! process does not accept them (no GStreamer CUDA library, no CUDA driver or device, or
//! `DLC_CUDA_MEMORY=1` not set) the elements do not offer them, refuse them with a warning that
//! says why, and host memory works as before. Where they are accepted (the GPU machine, opted
//! in), the same tests check the other side: offered and flowing.

mod common;

use gst::prelude::*;

const ELEMENTS: [&str; 4] = ["dlcdetect", "dlcswap", "dlcenhance", "dlcoverlay"];
const CUDA_MEMORY: &str = "memory:CUDAMemory";

/// Whether the elements of this process should accept CUDA memory: opted in, and GStreamer's
/// nvcodec plugin registered its CUDA elements (it does only where the CUDA library, the driver
/// and a device are there).
fn cuda_expected() -> bool {
    std::env::var("DLC_CUDA_MEMORY").as_deref() == Ok("1") && gst::ElementFactory::find("cudaupload").is_some()
}

fn has_cuda_memory(caps: &gst::Caps) -> bool {
    caps.iter_with_features().any(|(_, features)| features.contains(CUDA_MEMORY))
}

fn frame_caps(cuda: bool) -> gst::Caps {
    let mut caps = gst_video::VideoInfo::builder(gst_video::VideoFormat::Rgb, 64, 48)
        .fps(gst::Fraction::new(30, 1))
        .build()
        .expect("video info")
        .to_caps()
        .expect("caps");
    if cuda {
        caps.make_mut().set_features_simple(Some(gst::CapsFeatures::new([CUDA_MEMORY])));
    }
    caps
}

#[test]
fn every_element_offers_cuda_memory_only_where_it_is_accepted() {
    common::init();
    let expected = cuda_expected();
    for name in ELEMENTS {
        let element = gst::ElementFactory::make(name).build().expect("element");
        for pad in ["sink", "src"] {
            let pad = element.static_pad(pad).expect("pad");
            let template = pad.pad_template_caps();
            assert_eq!(has_cuda_memory(&template), expected, "{name} {}: {template}", pad.name());
            let offered = pad.query_caps(None);
            assert_eq!(has_cuda_memory(&offered), expected, "{name} {} offers {offered}", pad.name());
            assert!(pad.query_accept_caps(&frame_caps(false)), "{name} {} refuses host memory", pad.name());
        }
    }
}

#[test]
fn cuda_memory_is_refused_with_the_reason_when_not_accepted() {
    common::init();
    if cuda_expected() {
        eprintln!("skipped: this process accepts CUDA memory (see the next test)");
        return;
    }
    for name in ELEMENTS {
        let pipeline = gst::Pipeline::new();
        let element = gst::ElementFactory::make(name).build().expect("element");
        pipeline.add(&element).expect("added");
        let sink = element.static_pad("sink").expect("sink pad");
        assert!(!sink.query_accept_caps(&frame_caps(true)), "{name} accepts CUDA memory");
        let bus = pipeline.bus().expect("bus");
        let warning = std::iter::from_fn(|| bus.pop())
            .find_map(|message| match message.view() {
                gst::MessageView::Warning(w) => Some(w.error().message().to_string()),
                _ => None,
            })
            .unwrap_or_else(|| panic!("{name}: no warning says why CUDA memory is refused"));
        assert!(warning.contains(CUDA_MEMORY) && warning.contains("cudadownload"), "{name}: {warning}");
    }
}

/// `appsrc` with the caps `cuda` asks for, three black frames, then `dlcoverlay` (it needs no
/// model) into a fakesink.
fn run_overlay(cuda: bool) -> common::BusLog {
    common::init();
    let pipeline = common::pipeline("appsrc name=src format=time ! dlcoverlay ! fakesink");
    let src = pipeline.by_name("src").expect("appsrc").downcast::<gst_app::AppSrc>().expect("an appsrc");
    let caps = frame_caps(cuda);
    src.set_caps(Some(&caps));
    let info = gst_video::VideoInfo::from_caps(&caps).expect("video info");
    for i in 0..3u64 {
        let mut buffer = gst::Buffer::from_mut_slice(vec![0u8; info.size()]);
        buffer.get_mut().expect("writable").set_pts(gst::ClockTime::from_mseconds(33 * i));
        src.push_buffer(buffer).expect("queued");
    }
    src.end_of_stream().expect("EOS queued");
    common::run(&pipeline, std::time::Duration::from_secs(30))
}

#[test]
fn refused_cuda_memory_stops_negotiation_and_host_memory_flows() {
    let host = run_overlay(false);
    assert!(host.eos && host.errors.is_empty(), "host memory: {host:?}");
    let cuda = run_overlay(true);
    if cuda_expected() {
        assert!(cuda.eos && cuda.errors.is_empty(), "CUDA memory accepted: {cuda:?}");
        return;
    }
    assert!(!cuda.eos && cuda.error_text().contains("not-negotiated"), "{cuda:?}");
    assert!(cuda.warnings.iter().any(|w| w.contains(CUDA_MEMORY) && w.contains("cudadownload")), "{cuda:?}");
}

/// Mean and largest difference allowed between the frames of the host-memory and CUDA-memory
/// runs (8-bit levels): the tolerances of GPU = CPU in tests/backends.rs.
const MEAN_TOLERANCE: f64 = 0.05;
const MAX_TOLERANCE: u8 = 6;

/// Pushes `frame` as `format` through `chain`, in host memory or (`cuda`) uploaded with
/// `cudaupload` and downloaded after it; returns the output frame (packed RGB) and its faces.
fn run_chain(frame: &(Vec<u8>, usize, usize), format: &str, chain: &str, cuda: bool) -> (Vec<u8>, Vec<gstdlc::Face>) {
    let (data, w, h) = frame;
    let (upload, download) = if cuda {
        (format!("! cudaupload ! video/x-raw({CUDA_MEMORY}) "), "! cudadownload ")
    } else {
        (String::new(), "")
    };
    let pipeline = common::pipeline(&format!(
        "appsrc name=src format=time caps=video/x-raw,format=RGB,width={w},height={h},framerate=30/1 \
         ! videoconvert ! video/x-raw,format={format} {upload}! {chain} {download}! videoconvert \
         ! video/x-raw,format=RGB ! appsink name=sink sync=false"
    ));
    let src = pipeline.by_name("src").expect("appsrc").downcast::<gst_app::AppSrc>().expect("an appsrc");
    let sink = pipeline.by_name("sink").expect("appsink").downcast::<gst_app::AppSink>().expect("an appsink");
    pipeline.set_state(gst::State::Playing).expect("plays");
    src.push_buffer(gst::Buffer::from_slice(data.clone())).expect("queued");
    src.end_of_stream().expect("EOS queued");
    let sample = sink.try_pull_sample(gst::ClockTime::from_seconds(120));
    let problems = common::drain_errors(&pipeline);
    pipeline.set_state(gst::State::Null).expect("stops");
    assert!(problems.is_empty(), "{chain} (CUDA memory: {cuda}): {problems:?}");
    let sample = sample.unwrap_or_else(|| panic!("no frame from {chain} (CUDA memory: {cuda})"));
    let info = gst_video::VideoInfo::from_caps(sample.caps().expect("caps")).expect("video info");
    let buffer = sample.buffer().expect("buffer");
    let map = buffer.map_readable().expect("readable");
    let stride = info.stride()[0] as usize;
    let bytes = (0..*h).flat_map(|y| map[y * stride..y * stride + w * 3].to_vec()).collect();
    let faces = buffer.meta::<gstdlc::FaceMeta>().map(|m| m.faces().to_vec()).unwrap_or_default();
    (bytes, faces)
}

/// On the GPU machine (`DLC_CUDA_MEMORY=1`, `DLC_TEST_PROVIDER=cuda`): detect ! swap ! enhance
/// on frames in CUDA memory gives the faces and pixels of the same chain on host memory.
#[test]
fn cuda_memory_gives_the_faces_and_frames_of_host_memory() {
    common::init();
    if !cuda_expected() {
        eprintln!("skipped: needs a process that accepts CUDA memory (GPU machine, DLC_CUDA_MEMORY=1)");
        return;
    }
    let Some((detector, media, [arcface, swapper, restorer])) =
        common::real_faces(["arcface.onnx", "inswapper_fp16.onnx", "gfpgan.onnx"])
    else {
        return;
    };
    let provider = std::env::var("DLC_TEST_PROVIDER").unwrap_or_else(|_| "cpu".to_string());
    let chain = format!(
        "dlcdetect model-file={det} execution-provider={provider} ! dlcswap source={source} many-faces=true \
         detector-model={det} recognition-model={arc} model-file={swap} execution-provider={provider} \
         ! dlcenhance model-file={restore} execution-provider={provider}",
        det = detector.display(),
        source = media.join("newton.png").display(),
        arc = arcface.display(),
        swap = swapper.display(),
        restore = restorer.display(),
    );
    let frame = common::three_portraits(&media);
    for format in ["NV12", "RGBA"] {
        let (host, host_faces) = run_chain(&frame, format, &chain, false);
        let (cuda, cuda_faces) = run_chain(&frame, format, &chain, true);
        assert_eq!(host_faces.len(), 3, "{format}: {host_faces:?}");
        assert_eq!(host_faces.len(), cuda_faces.len(), "{format}");
        for (a, b) in host_faces.iter().zip(&cuda_faces) {
            let box_error = a.bbox.iter().zip(b.bbox).map(|(p, q)| (p - q).abs()).fold(0.0f32, f32::max);
            assert!(box_error <= 1.0, "{format}: {a:?} vs {b:?}");
        }
        let (change, _) = common::differences(&host, &frame.0);
        let (mean, max) = common::differences(&host, &cuda);
        eprintln!(
            "{format} (provider {provider}): the chain changed the frame by {change:.3} on average; host and CUDA \
             memory differ by {mean:.4} on average, {max} at most"
        );
        assert!(change > 0.2, "{format}: the chain changed the frame");
        assert!(mean <= MEAN_TOLERANCE && max <= MAX_TOLERANCE, "{format}: mean {mean}, max {max}");
    }
}
