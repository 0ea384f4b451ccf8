//! Benchmarks that print figures (never assertions): see BENCHMARKS.md for the commands and the
//! latest results.
//!
//!   cargo run --release --example bench -- detect MODEL.onnx PICTURE.png [frames] [provider]
//!       ms per frame of dlcdetect alone (appsrc → dlcdetect → fakesink) at 720p and 1080p.
//!   cargo run --release --example bench -- overhead
//!       ms per face of everything dlcswap and dlcenhance do outside the model run, at 720p and
//!       1080p: alignment, crop, input tensor, output conversion, paste-back.
//!   cargo run --release --example bench -- pipeline DIR [frames] [provider]
//!       frames per second of dlcdetect ! dlcswap [! dlcenhance] at 1080p, with the models
//!       in DIR (det, w600k_r50, inswapper_128, GFPGANv1.4 names) and DIR/face.png as source.

use std::time::{Duration, Instant};

use gst::prelude::*;
use gstdlc::backend::{Backend, Crop};
use gstdlc::models::{enhancer, inswapper};
use gstdlc::vision::align::{ffhq_template, template, umeyama};
use gstdlc::vision::paste::{self, CropMask};
use gstdlc::vision::{FrameViewMut, PixelFormat, YuvMatrix, estimate_norm};
use ort::value::TensorElementType;

const SIZES: [(usize, usize); 2] = [(1280, 720), (1920, 1080)];

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("detect") if args.len() >= 3 => {
            detect(&args[1], &args[2], args.get(3).and_then(|n| n.parse().ok()).unwrap_or(60), args.get(4).map_or("cpu", |s| s))
        }
        Some("overhead") => overhead(),
        Some("pipeline") if args.len() >= 2 => {
            pipeline(&args[1], args.get(2).and_then(|n| n.parse().ok()).unwrap_or(300), args.get(3).map_or("cuda", |s| s))
        }
        _ => Err("usage: bench detect MODEL PICTURE [frames] [provider] | bench overhead | bench pipeline DIR [frames] [provider]".into()),
    };
    if let Err(e) = result {
        eprintln!("bench: {e}");
        std::process::exit(1);
    }
}

/// `picture` scaled to fill `width × height` (aspect kept, centred on grey), packed RGB.
fn frame_from_picture(picture: &str, width: usize, height: usize) -> Result<Vec<u8>, String> {
    let img = image::open(picture).map_err(|e| format!("{picture}: {e}"))?.to_rgb8();
    let scale = (height as f32 / img.height() as f32).min(width as f32 / img.width() as f32);
    let (w, h) = ((img.width() as f32 * scale) as u32, (img.height() as f32 * scale) as u32);
    let resized = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
    let mut canvas = image::RgbImage::from_pixel(width as u32, height as u32, image::Rgb([96, 96, 96]));
    image::imageops::overlay(&mut canvas, &resized, ((width as u32 - w) / 2) as i64, ((height as u32 - h) / 2) as i64);
    Ok(canvas.into_raw())
}

/// Pushes `frames` copies of `frame` through `launch` (which starts after an appsrc named src)
/// and returns the wall time per frame after the first 5 (warm-up).
fn time_pipeline(launch: &str, frame: &[u8], width: usize, height: usize, frames: usize) -> Result<Duration, String> {
    let pipeline = gst::parse::launch(&format!(
        "appsrc name=src format=time is-live=false block=true max-bytes={} caps=video/x-raw,format=RGB,width={width},height={height},framerate=30/1 ! {launch}",
        frame.len() * 4
    ))
    .map_err(|e| e.to_string())?
    .downcast::<gst::Pipeline>()
    .map_err(|_| "not a pipeline")?;
    let src = pipeline.by_name("src").ok_or("no appsrc")?.downcast::<gst_app::AppSrc>().map_err(|_| "not an appsrc")?;
    let sink = pipeline.by_name("sink").ok_or("no sink named sink")?;
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = std::sync::Arc::new(parking_lot::Mutex::new(None::<Instant>));
    {
        let (count, started) = (count.clone(), started.clone());
        sink.static_pad("sink").ok_or("sink pad")?.add_probe(gst::PadProbeType::BUFFER, move |_, _| {
            if count.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1 == 5 {
                *started.lock() = Some(Instant::now());
            }
            gst::PadProbeReturn::Ok
        });
    }
    pipeline.set_state(gst::State::Playing).map_err(|e| e.to_string())?;
    let shared = gst::Buffer::from_slice(frame.to_vec());
    for i in 0..frames {
        let mut buffer = shared.copy();
        buffer.get_mut().ok_or("buffer")?.set_pts(gst::ClockTime::from_mseconds(33 * i as u64));
        src.push_buffer(buffer).map_err(|e| format!("push: {e:?}"))?;
    }
    src.end_of_stream().map_err(|e| format!("{e:?}"))?;
    let bus = pipeline.bus().ok_or("bus")?;
    for msg in bus.iter_timed(gst::ClockTime::NONE) {
        match msg.view() {
            gst::MessageView::Eos(_) => break,
            gst::MessageView::Error(e) => return Err(format!("{} ({:?})", e.error(), e.debug())),
            _ => {}
        }
    }
    let elapsed = started.lock().ok_or("fewer than 5 frames")?.elapsed();
    // Say what really ran: providers, and any fallback or other warning on the bus.
    for element in pipeline.iterate_elements().into_iter().flatten() {
        if element.find_property("active-provider").is_some() {
            let provider = element.property::<Option<String>>("active-provider").unwrap_or_default();
            eprintln!("  {}: active-provider={provider}", element.name());
        }
    }
    while let Some(msg) = bus.pop_filtered(&[gst::MessageType::Warning]) {
        if let gst::MessageView::Warning(w) = msg.view() {
            eprintln!("  warning: {}", w.error());
        }
    }
    pipeline.set_state(gst::State::Null).map_err(|e| e.to_string())?;
    Ok(elapsed / (frames - 5) as u32)
}

fn detect(model: &str, picture: &str, frames: usize, provider: &str) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstdlc::plugin_register_static().map_err(|e| e.to_string())?;
    println!("dlcdetect alone, model {model}, execution-provider={provider}, {frames} frames (5 warm-up)");
    println!("| frame | ms/frame | fps |");
    println!("|---|---|---|");
    for (w, h) in SIZES {
        let frame = frame_from_picture(picture, w, h)?;
        let per_frame = time_pipeline(
            &format!("dlcdetect model-file={model} execution-provider={provider} ! fakesink name=sink sync=false"),
            &frame,
            w,
            h,
            frames,
        )?;
        println!("| {w}x{h} | {:.2} | {:.1} |", per_frame.as_secs_f64() * 1e3, 1.0 / per_frame.as_secs_f64());
    }
    Ok(())
}

/// Median time of `f` over `runs` calls.
fn median(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}

/// Five keypoints of an upright face whose eye distance is `eyes` pixels, centred in the frame.
fn face_keypoints(width: usize, height: usize, eyes: f64) -> [[f32; 2]; 5] {
    let t = template(112);
    let scale = eyes / (t[1][0] - t[0][0]);
    let (cx, cy) = (width as f64 / 2.0 - 56.0 * scale, height as f64 / 2.0 - 56.0 * scale);
    t.map(|[x, y]| [(cx + x * scale) as f32, (cy + y * scale) as f32])
}

fn overhead() -> Result<(), String> {
    const RUNS: usize = 51;
    gstdlc::runtime::environment().map_err(|e| e.to_string())?;
    println!("Per face, outside the model run (median of {RUNS}); face height about 40 % of the frame");
    println!(
        "| frame | swap: align+crop+tensor | swap: output | mask insightface | paste insightface | paste ellipse | swap total (insightface) | enhance: align+crop+tensor | enhance: output | paste ramp | enhance total |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    let float = TensorElementType::Float32;
    for (w, h) in SIZES {
        let mut frame: Vec<u8> = (0..w * h * 3).map(|i| ((i * 7) % 251) as u8).collect();
        let kps = face_keypoints(w, h, h as f64 * 0.15);
        let mut view = FrameViewMut::new(
            PixelFormat::Rgb,
            w,
            h,
            [&mut frame, &mut [], &mut []],
            [w * 3, 0, 0],
            YuvMatrix::Bt601,
            false,
        )
        .map_err(|e| e.to_string())?;
        let mut backend = Backend::cpu();
        let mut input = backend.tensor(&[1, 3, 128, 128], float)?;
        let output = random_output(&backend, 128, 0.0, 1.0)?;
        let mut crop = Crop::default();
        let mut m = estimate_norm(&kps, 128).ok_or("alignment")?;
        let rect = paste::crop_region(&m, 128, w, h);
        let region = backend.load_region(&view.as_view(), rect)?;
        let pre = median(RUNS, || {
            m = estimate_norm(&kps, 128).expect("alignment");
            let _ = backend.warp_to_input(&view.as_view(), &region, &m, inswapper::NORMALIZATION, &mut input);
        });
        let post = median(RUNS, || {
            let _ = backend.decode_output(&output, inswapper::DECODE, 128, &mut crop);
        });
        let mut mask = CropMask::default();
        let build = median(RUNS, || mask = CropMask::insightface(&m, 128, w, h).expect("mask"));
        let ellipse = CropMask::ellipse(128, &mut Default::default());
        let mut paste_with = |mask: &CropMask| {
            median(RUNS, || {
                let _ = backend.paste(&mut view, &region, &crop, mask, &m, 1.0);
            })
        };
        let (insightface, ellipse) = (paste_with(&mask), paste_with(&ellipse));
        eprintln!("{w}x{h}: swap region {:?}", mask.frame_region(&m, w, h));

        let ffhq = ffhq_template(512);
        let src = kps.map(|[x, y]| [x as f64, y as f64]);
        let mut input512 = backend.tensor(&[1, 3, 512, 512], float)?;
        let output512 = random_output(&backend, 512, -1.0, 2.0)?;
        let mut m512 = umeyama(&src, &ffhq).ok_or("alignment")?;
        let ramp = CropMask::ramp(512);
        let region512 = backend.load_region(&view.as_view(), ramp.frame_region(&m512, w, h))?;
        let enhance_pre = median(RUNS, || {
            m512 = umeyama(&src, &ffhq).expect("alignment");
            let _ = backend.warp_to_input(&view.as_view(), &region512, &m512, enhancer::NORMALIZATION, &mut input512);
        });
        let mut restored = Crop::default();
        let enhance_post = median(RUNS, || {
            let _ = backend.decode_output(&output512, enhancer::DECODE, 512, &mut restored);
        });
        let paste_ramp = median(RUNS, || {
            let _ = backend.paste(&mut view, &region512, &restored, &ramp, &m512, 0.8);
        });
        println!(
            "| {w}x{h} | {pre:.2} | {post:.2} | {build:.3} | {insightface:.2} | {ellipse:.2} | {:.2} | {enhance_pre:.2} | {enhance_post:.2} | {paste_ramp:.2} | {:.2} |",
            pre + post + build + insightface,
            enhance_pre + enhance_post + paste_ramp
        );
    }
    Ok(())
}

/// A host model output `[1, 3, size, size]` of values in `[offset, offset + span)`.
fn random_output(backend: &Backend, size: usize, offset: f32, span: f32) -> Result<ort::value::DynTensor, String> {
    let mut tensor = backend.tensor(&[1, 3, size, size], TensorElementType::Float32)?;
    let (_, values) = tensor.try_extract_tensor_mut::<f32>().map_err(|e| e.to_string())?;
    for (i, v) in values.iter_mut().enumerate() {
        *v = offset + span * ((i * 7919) % 997) as f32 / 997.0;
    }
    Ok(tensor)
}

fn pipeline(dir: &str, frames: usize, provider: &str) -> Result<(), String> {
    gst::init().map_err(|e| e.to_string())?;
    gstdlc::plugin_register_static().map_err(|e| e.to_string())?;
    let dir = std::path::Path::new(dir);
    let path = |name: &str| dir.join(name).display().to_string();
    let (w, h) = (1920, 1080);
    let frame = frame_from_picture(&path("target.png"), w, h)?;
    let detect = format!("dlcdetect model-file={} execution-provider={provider}", path("det_10g.onnx"));
    let swap = format!(
        "dlcswap source={} detector-model={} recognition-model={} model-file={} execution-provider={provider}",
        path("face.png"),
        path("det_10g.onnx"),
        path("w600k_r50.onnx"),
        path("inswapper_128.onnx")
    );
    let enhance = format!("dlcenhance model-file={} execution-provider={provider}", path("GFPGANv1.4.onnx"));
    println!("1920x1080, execution-provider={provider}, {frames} frames (5 warm-up)");
    println!("| pipeline | ms/frame | fps |");
    println!("|---|---|---|");
    for (name, launch) in [
        ("detect", format!("{detect} ! fakesink name=sink sync=false")),
        ("detect ! swap", format!("{detect} ! queue ! {swap} ! fakesink name=sink sync=false")),
        (
            "detect ! swap ! enhance",
            format!("{detect} ! queue ! {swap} ! queue ! {enhance} ! fakesink name=sink sync=false"),
        ),
    ] {
        let per_frame = time_pipeline(&launch, &frame, w, h, frames)?;
        println!("| {name} | {:.2} | {:.1} |", per_frame.as_secs_f64() * 1e3, 1.0 / per_frame.as_secs_f64());
    }
    Ok(())
}
