// SPDX-License-Identifier: MPL-2.0
//! `bench overhead`: ms per face of what dlcswap and dlcenhance do outside the model run, and the
//! detector's letterbox per frame.

use super::*;

/// Five keypoints of an upright face whose eye distance is `eyes` pixels, centred in the frame.
pub fn face_keypoints(width: usize, height: usize, eyes: f64) -> [[f32; 2]; 5] {
    let t = template(112);
    let scale = eyes / (t[1][0] - t[0][0]);
    let (cx, cy) = (width as f64 / 2.0 - 56.0 * scale, height as f64 / 2.0 - 56.0 * scale);
    t.map(|[x, y]| [(cx + x * scale) as f32, (cy + y * scale) as f32])
}

pub fn overhead() -> Result<(), String> {
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
                let _ = backend.paste(&mut view, &region, &mut crop, mask, &m, 1.0);
            })
        };
        let (insightface, ellipse) = (paste_with(&mask), paste_with(&ellipse));

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
            let _ = backend.paste(&mut view, &region512, &mut restored, &ramp, &m512, 0.8);
        });
        println!(
            "| {w}x{h} | {pre:.2} | {post:.2} | {build:.3} | {insightface:.2} | {ellipse:.2} | {:.2} | {enhance_pre:.2} | {enhance_post:.2} | {paste_ramp:.2} | {:.2} |",
            pre + post + build + insightface,
            enhance_pre + enhance_post + paste_ramp
        );
    }
    letterbox_table()
}

/// The detector's letterbox into SCRFD's 640×640 input, per frame, for a packed 3-byte, a packed
/// 4-byte, the two 4:2:0 and a packed 4:2:2 layout.
pub fn letterbox_table() -> Result<(), String> {
    const RUNS: usize = 101;
    const DET: usize = 640;
    println!("\nLetterbox into {DET}x{DET} per frame, ms (median of {RUNS})");
    println!("| frame | format | float NCHW blob (CPU backend) | rows staged (GPU backend) | staged MB |");
    println!("|---|---|---|---|---|");
    let mut scratch = LetterboxScratch::default();
    let mut blob = vec![0.0f32; 3 * DET * DET];
    for (w, h) in SIZES {
        let (cw, ch) = (w.div_ceil(2), h.div_ceil(2));
        let pattern = |len: usize| -> Vec<u8> { (0..len).map(|i| ((i * 7) % 251) as u8).collect() };
        let layouts: [(PixelFormat, [Vec<u8>; 3], [usize; 3]); 5] = [
            (PixelFormat::Rgb, [pattern(w * h * 3), vec![], vec![]], [w * 3, 0, 0]),
            (PixelFormat::Bgrx, [pattern(w * h * 4), vec![], vec![]], [w * 4, 0, 0]),
            (PixelFormat::I420, [pattern(w * h), pattern(cw * ch), pattern(cw * ch)], [w, cw, cw]),
            (PixelFormat::Nv12, [pattern(w * h), pattern(2 * cw * ch), vec![]], [w, 2 * cw, 0]),
            (PixelFormat::Yuy2, [pattern(4 * cw * h), vec![], vec![]], [4 * cw, 0, 0]),
        ];
        for (format, planes, strides) in &layouts {
            let view =
                FrameView::new(*format, w, h, [&planes[0], &planes[1], &planes[2]], *strides, YuvMatrix::Bt601, false)?;
            let to_blob = median(RUNS, || {
                let _ = letterbox_blob(&mut scratch, &view, DET, DET, (127.5, 1.0 / 128.0), &mut blob);
            });
            let plan = LetterboxPlan::new(&view, DET, DET)?;
            let mut staged = vec![0u8; plan.staged_len];
            let to_rows = median(RUNS, || {
                let _ = plan.stage(&view, &mut staged);
            });
            let mb = plan.staged_len as f64 / 1e6;
            println!("| {w}x{h} | {format:?} | {to_blob:.2} | {to_rows:.2} | {mb:.2} |");
        }
    }
    Ok(())
}

/// A host model output `[1, 3, size, size]` of values in `[offset, offset + span)`.
pub fn random_output(backend: &Backend, size: usize, offset: f32, span: f32) -> Result<ort::value::DynTensor, String> {
    let mut tensor = backend.tensor(&[1, 3, size, size], TensorElementType::Float32)?;
    let (_, values) = tensor.try_extract_tensor_mut::<f32>().map_err(|e| e.to_string())?;
    for (i, v) in values.iter_mut().enumerate() {
        *v = offset + span * ((i * 7919) % 997) as f32 / 997.0;
    }
    Ok(tensor)
}
