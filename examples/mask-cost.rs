// SPDX-License-Identifier: MPL-2.0
//! CPU milliseconds per face of FaceFusion's occlusion, region and area masks and of the 68
//! landmarks they need, and of making the box mask (once per crop size and setting), at each crop
//! (pixel boost) size. Prints a markdown table and asserts nothing; BENCHMARKS.md keeps the
//! command and the figures.
//!
//! The masks are computed in crop space, so their cost depends on the boost size, not on the frame
//! size. The model columns run the fixture stand-ins (tiny graphs): they time the wrapper and ONNX
//! Runtime's per-run overhead, not the real XSeg or BiSeNet, whose cost is the GPU's.

#[path = "bench/median.rs"]
mod median;

use std::path::PathBuf;

use gstdlc::models::landmark68::Landmark68;
use gstdlc::models::occluder::Occluder;
use gstdlc::models::parser::Parser;
use gstdlc::runtime::SessionOptions;
use gstdlc::vision::RgbImage;
use gstdlc::vision::box_mask::{BoxMaskSettings, box_mask};
use gstdlc::vision::filter::BlurScratch;
use gstdlc::vision::masks::{
    AreaMaskCache, Areas, OCCLUDER_SIZE, PARSER_CLASSES, PARSER_SIZE, Regions, landmarks_68_from_106, occluder_input,
    occlusion_from_output, parser_input, region_from_logits, soften_with,
};
use median::median;

const USAGE: &str = "\
usage: mask-cost [--fixtures DIR] [--runs N]

Prints, per crop side 128, 256, 384, 512, 768 and 1024, the median CPU ms of: the box mask with
FaceFusion's defaults (made once per crop size and setting, then reused); the area mask (all three
areas, hull + fill + softening, redrawn in a track's cache as the face moves); the softening alone (sigma 5 blur of the whole crop); the
occluder's input (resize to 256, BGR /255) and output (resize to the crop, softening); the
parser's input (resize to 512, ImageNet normalisation) and output (argmax of 19 x 512 x 512,
resize, softening); whole Occluder::mask and Parser::mask calls with the fixture stand-ins; and
fan_68_5 (fixture) and the 106-point fallback per face.
  --fixtures DIR   the fixture models (default $DLC_FIXTURES_DIR, else target/fixtures/models)
  --runs N         timed runs per figure, median printed (default 21)
";

fn main() {
    if let Err(e) = run() {
        eprintln!("mask-cost: {e}");
        std::process::exit(1);
    }
}

fn run() -> Result<(), String> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut fixtures = std::env::var_os("DLC_FIXTURES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target/fixtures/models"));
    let mut runs = 21usize;
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        match arg.as_str() {
            "--help" | "-h" => {
                print!("{USAGE}");
                return Ok(());
            }
            "--fixtures" => fixtures = rest.next().ok_or("--fixtures needs a directory")?.into(),
            "--runs" => {
                let text = rest.next().ok_or("--runs needs a number")?;
                runs =
                    text.parse().ok().filter(|&n| n > 0).ok_or(format!("--runs: '{text}' is not a positive number"))?;
            }
            other => return Err(format!("unknown argument '{other}'\n{USAGE}")),
        }
    }
    let options = SessionOptions { threads: 1, ..SessionOptions::default() };
    let open_error = |e: gstdlc::runtime::RuntimeError| e.to_string();
    let mut occluder = Occluder::open(&fixtures.join("xseg.onnx"), "occluder-model", &options).map_err(open_error)?;
    let mut parser = Parser::open(&fixtures.join("bisenet.onnx"), "parser-model", &options).map_err(open_error)?;
    let mut landmarker =
        Landmark68::open(&fixtures.join("fan_68_5.onnx"), "landmark-68-model", &options).map_err(open_error)?;

    println!("CPU ms per face, median of {runs} runs, one thread; model columns run the fixture stand-ins");
    println!(
        "| crop side | box (once) | area | soften | occlusion pre | occlusion post | Occluder::mask (fixture) | region pre | region post | Parser::mask (fixture) |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut blur = BlurScratch::default();
    for side in [128usize, 256, 384, 512, 768, 1024] {
        let s = side as f32;
        let crop = RgbImage::from_raw(side, side, (0..side * side * 3).map(|i| ((i * 7) % 251) as u8).collect())
            .ok_or("crop size")?;
        // A face-sized hull: the 68 points on an ellipse over the crop's middle.
        let landmarks: [[f32; 2]; 68] = std::array::from_fn(|i| {
            let t = i as f32 * std::f32::consts::TAU / 68.0;
            [s * (0.5 + 0.3 * t.cos()), s * (0.55 + 0.35 * t.sin())]
        });
        let areas = Areas::all();
        let boxed = median(runs, || drop(box_mask(side, BoxMaskSettings::default(), &mut blur)));
        // A track's cache, as dlcswap keeps it, redrawing every time: the face moves by a pixel
        // between calls, so the integer hull changes.
        let (mut cache, mut moved) = (AreaMaskCache::default(), false);
        let area = median(runs, || {
            moved = !moved;
            let shift = if moved { 1.0 } else { 0.0 };
            std::hint::black_box(cache.mask(side, &landmarks.map(|[x, y]| [x + shift, y]), &areas));
        });
        let mut plane: Vec<f32> = (0..side * side).map(|i| ((i % side) as f32 / s).min(1.0)).collect();
        let soften = median(runs, || soften_with(&mut plane, side, &mut blur));

        let (mut resized, mut input) = (Vec::new(), vec![0.0f32; OCCLUDER_SIZE * OCCLUDER_SIZE * 3]);
        let occlusion_pre = median(runs, || occluder_input(&crop, &mut resized, &mut input));
        let output: Vec<f32> = (0..OCCLUDER_SIZE * OCCLUDER_SIZE).map(|i| ((i % 97) as f32) / 96.0).collect();
        let occlusion_post = median(runs, || drop(occlusion_from_output(&output, side, &mut blur)));
        let mut failure = None;
        let occlusion = median(runs, || {
            if let Err(e) = occluder.mask(&crop) {
                failure = Some(e);
            }
        });

        let swapped: Vec<f32> = crop.data.iter().map(|&v| v as f32).collect();
        let (mut big, mut parser_in) = (Vec::new(), vec![0.0f32; 3 * PARSER_SIZE * PARSER_SIZE]);
        let region_pre = median(runs, || parser_input(&swapped, side, &mut big, &mut parser_in));
        let logits: Vec<f32> =
            (0..PARSER_CLASSES * PARSER_SIZE * PARSER_SIZE).map(|i| ((i * 31) % 101) as f32 / 10.0).collect();
        let regions = Regions::all();
        let region_post = median(runs, || drop(region_from_logits(&logits, PARSER_CLASSES, &regions, side, &mut blur)));
        let region = median(runs, || {
            if let Err(e) = parser.mask(&swapped, side, &regions) {
                failure = Some(e);
            }
        });
        if let Some(e) = failure {
            return Err(e);
        }
        println!(
            "| {side} | {boxed:.3} | {area:.3} | {soften:.3} | {occlusion_pre:.3} | {occlusion_post:.3} | {occlusion:.3} | {region_pre:.3} | {region_post:.3} | {region:.3} |"
        );
    }

    let five = [[204.4, 100.8], [247.3, 103.1], [223.5, 128.4], [201.2, 138.5], [246.4, 140.6]];
    let mut failure = None;
    let fan = median(runs, || {
        if let Err(e) = landmarker.landmarks(&five) {
            failure = Some(e);
        }
    });
    if let Some(e) = failure {
        return Err(e);
    }
    let points: Vec<[f32; 2]> = (0..106).map(|i| [i as f32, (i * 3 % 17) as f32]).collect();
    let fallback = median(runs, || {
        let _ = landmarks_68_from_106(&points);
    });
    println!();
    println!("68 landmarks per face: fan_68_5 (fixture) {fan:.3} ms, from the 106 points {fallback:.4} ms");
    Ok(())
}
