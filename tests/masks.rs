// SPDX-License-Identifier: MPL-2.0
//! FaceFusion's occlusion, region and area masks and its fan_68_5 landmarks against the
//! independent NumPy/OpenCV reference (tests/reference/facefusion_masks.py), on the fixture
//! stand-ins (tests/fixtures/mask_models.py) and crops of a real picture.

mod common;

use std::path::{Path, PathBuf};

use gstdlc::models::landmark68::Landmark68;
use gstdlc::models::occluder::Occluder;
use gstdlc::models::parser::Parser;
use gstdlc::runtime::{RuntimeError, SessionOptions};
use gstdlc::vision::RgbImage;
use gstdlc::vision::masks::{Areas, Regions, area_mask};

/// Runs the masks reference with `args`, returning its standard output.
fn reference(args: &[&str]) -> String {
    let python = common::reference_python().expect("DLC_PYTHON is set");
    let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/reference/facefusion_masks.py");
    let output = std::process::Command::new(python).arg(script).args(args).output().expect("the reference runs");
    assert!(output.status.success(), "reference failed: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("UTF-8 output")
}

fn have_reference() -> bool {
    if common::reference_python().is_none() {
        common::skip("DLC_PYTHON is not set (run `make test`)");
        return false;
    }
    true
}

fn write_f32(path: &Path, values: &[f32]) {
    std::fs::write(path, values.iter().flat_map(|v| v.to_le_bytes()).collect::<Vec<u8>>()).expect("written");
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("reference output");
    bytes.chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect()
}

/// Mean and maximum absolute difference, and how many values differ by more than `tolerance`.
fn compare(ours: &[f32], theirs: &[f32], tolerance: f32) -> (f64, f32, usize) {
    assert_eq!(ours.len(), theirs.len());
    let diffs: Vec<f32> = ours.iter().zip(theirs).map(|(a, b)| (a - b).abs()).collect();
    let mean = diffs.iter().map(|&d| d as f64).sum::<f64>() / diffs.len().max(1) as f64;
    let max = diffs.iter().copied().fold(0.0, f32::max);
    (mean, max, diffs.iter().filter(|&&d| d > tolerance).count())
}

/// A small deterministic generator (SplitMix64) for test inputs.
struct Random(u64);

impl Random {
    fn next(&mut self) -> f32 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 40) as f32 / (1u64 << 24) as f32
    }

    fn range(&mut self, lo: f32, hi: f32) -> f32 {
        lo + (hi - lo) * self.next()
    }
}

/// Face-like landmark sets: 68 points scattered over an ellipse, some of whose hulls reach out of
/// the crop (the fill then clips its edges), with fractional coordinates.
fn landmark_sets(count: usize, side: usize, random: &mut Random) -> Vec<[[f32; 2]; 68]> {
    let s = side as f32;
    (0..count)
        .map(|_| {
            let (cx, cy) = (random.range(0.2, 0.8) * s, random.range(0.2, 0.8) * s);
            let (rx, ry) = (random.range(0.05, 0.6) * s, random.range(0.05, 0.6) * s);
            std::array::from_fn(|_| {
                let t = random.range(0.0, std::f32::consts::TAU);
                let r = random.range(0.3, 1.0);
                [cx + rx * r * t.cos(), cy + ry * r * t.sin()]
            })
        })
        .collect()
}

#[test]
fn area_masks_match_reference() {
    if !have_reference() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    let mut random = Random(18);
    for side in [128usize, 256, 512] {
        let sets = landmark_sets(12, side, &mut random);
        let points = dir.path().join("points.f32");
        write_f32(&points, &sets.iter().flatten().flatten().copied().collect::<Vec<_>>());
        for areas in ["upper-face,lower-face,mouth", "mouth", "upper-face", "lower-face,mouth"] {
            let out = dir.path().join("area.f32");
            reference(&[
                "area",
                "--points",
                points.to_str().unwrap(),
                "--count",
                &sets.len().to_string(),
                "--side",
                &side.to_string(),
                "--areas",
                areas,
                "--out",
                out.to_str().unwrap(),
            ]);
            let theirs = read_f32(&out);
            let parsed = Areas::parse(areas).unwrap();
            for (k, landmarks) in sets.iter().enumerate() {
                let ours = area_mask(side, landmarks, &parsed);
                let (mean, max, off) = compare(&ours, &theirs[k * side * side..(k + 1) * side * side], 1e-4);
                assert!(
                    max <= 1e-4 && off == 0,
                    "side {side}, areas {areas}, set {k}: mean {mean:.2e}, max {max:.2e}, {off} values off"
                );
            }
        }
    }
}

/// The astronaut's face in the shared test picture, with a margin like an aligned crop's.
const FACE_BOX: &str = "141,32,311,202";

/// A square RGB crop of the test picture's face at `side` pixels (from the reference's `crop`).
fn face_crop(dir: &Path, side: usize) -> Option<RgbImage> {
    let picture = common::testdata("media/astronaut.png")?;
    let out = dir.join(format!("crop{side}.rgb"));
    let side_text = side.to_string();
    reference(&["crop", "--image", picture.to_str()?, "--box", FACE_BOX, "--side", &side_text, "--out", out.to_str()?]);
    RgbImage::from_raw(side, side, std::fs::read(out).ok()?)
}

/// The fixture `name`, or a skip (a failure under `make test`) when it or ONNX Runtime is missing.
fn fixture(name: &str) -> Option<PathBuf> {
    if !common::have_ort() {
        common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
        return None;
    }
    let path = common::fixture(name);
    if path.is_none() {
        common::skip(&format!("fixture {name} missing (run `make fixtures`)"));
    }
    path
}

#[test]
fn occlusion_masks_match_reference() {
    if !have_reference() {
        return;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    for name in ["xseg.onnx", "xseg_3d.onnx"] {
        let Some(model) = fixture(name) else { return };
        let mut occluder = Occluder::open(&model, "occluder-model", &SessionOptions::default())
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for side in [128usize, 256, 384, 512] {
            let Some(crop) = face_crop(dir.path(), side) else {
                common::skip_without_testdata();
                return;
            };
            let ours = occluder.mask(&crop).expect("occlusion mask");
            let out = dir.path().join("occlusion.f32");
            let crop_path = dir.path().join(format!("crop{side}.rgb"));
            let side_text = side.to_string();
            reference(&[
                "occlusion",
                "--model",
                model.to_str().unwrap(),
                "--crop",
                crop_path.to_str().unwrap(),
                "--side",
                &side_text,
                "--out",
                out.to_str().unwrap(),
            ]);
            let theirs = read_f32(&out);
            let (mean, max, off) = compare(&ours, &theirs, 1e-3);
            let covered = theirs.iter().filter(|&&v| v < 0.5).count() as f64 / theirs.len() as f64;
            eprintln!(
                "{name} {side}: mean {mean:.2e}, max {max:.2e}, {off} values off by > 1e-3; {covered:.2} covered"
            );
            // The mask is not trivial: parts of the crop are occluded, parts are not.
            assert!(covered > 0.05 && covered < 0.95, "{name} {side}: {covered} of the crop covered");
            assert!(mean <= 1e-4 && max <= 2e-3, "{name} {side}: mean {mean:.2e}, max {max:.2e}");
        }
    }
}

/// A swapped crop as the parser sees it: float RGB in [0, 255] with fractional values.
fn swapped_from(crop: &RgbImage) -> Vec<f32> {
    crop.data.iter().enumerate().map(|(i, &v)| (v as f32 + 0.37 * (i as f32 * 0.7).sin()).clamp(0.0, 255.0)).collect()
}

#[test]
fn region_masks_match_reference() {
    if !have_reference() {
        return;
    }
    let Some(model) = fixture("bisenet.onnx") else { return };
    let dir = tempfile::tempdir().expect("temp dir");
    let mut parser = Parser::open(&model, "parser-model", &SessionOptions::default()).expect("parser opens");
    for side in [128usize, 256, 512, 1024] {
        let Some(crop) = face_crop(dir.path(), side) else {
            common::skip_without_testdata();
            return;
        };
        let swapped = swapped_from(&crop);
        let crop_path = dir.path().join("swapped.f32");
        write_f32(&crop_path, &swapped);
        for regions in [
            "skin,left-eyebrow,right-eyebrow,left-eye,right-eye,glasses,nose,mouth,upper-lip,lower-lip",
            "skin",
            "left-eyebrow,right-eyebrow,mouth",
            "skin,glasses,nose",
        ] {
            let ours = parser.mask(&swapped, side, &Regions::parse(regions).unwrap()).expect("region mask");
            let out = dir.path().join("region.f32");
            let side_text = side.to_string();
            reference(&[
                "region",
                "--model",
                model.to_str().unwrap(),
                "--crop",
                crop_path.to_str().unwrap(),
                "--side",
                &side_text,
                "--regions",
                regions,
                "--out",
                out.to_str().unwrap(),
            ]);
            let theirs = read_f32(&out);
            let (mean, max, off) = compare(&ours, &theirs, 1e-3);
            let inside = theirs.iter().filter(|&&v| v > 0.5).count() as f64 / theirs.len() as f64;
            eprintln!(
                "{side} {regions}: mean {mean:.2e}, max {max:.2e}, {off} values off by > 1e-3; {inside:.2} inside"
            );
            assert!(inside > 0.01 && inside < 0.99, "{side} {regions}: {inside} of the crop inside");
            assert!(mean <= 1e-4 && max <= 2e-3, "{side} {regions}: mean {mean:.2e}, max {max:.2e}");
        }
    }
}

#[test]
fn fan_68_5_landmarks_match_reference() {
    if !have_reference() {
        return;
    }
    let Some(model) = fixture("fan_68_5.onnx") else { return };
    let mut landmarker = Landmark68::open(&model, "landmark-68-model", &SessionOptions::default()).expect("opens");
    // Five points of the astronaut and of Newton as SCRFD finds them, and a tilted small face.
    let faces: [[[f32; 2]; 5]; 3] = [
        [
            [204.41728, 100.81293],
            [247.30928, 103.08883],
            [223.52695, 128.42294],
            [201.16403, 138.53365],
            [246.44772, 140.61621],
        ],
        [
            [371.35837, 143.38258],
            [419.4504, 145.874],
            [399.3914, 177.59734],
            [371.40836, 197.8533],
            [408.64484, 200.33762],
        ],
        [[30.0, 42.0], [48.0, 36.0], [41.0, 50.0], [37.0, 60.0], [52.0, 55.0]],
    ];
    for five in faces {
        let ours = landmarker.landmarks(&five).expect("landmarks");
        let text: Vec<String> = five.iter().flatten().map(|v| v.to_string()).collect();
        let json = reference(&["landmarks68", "--model", model.to_str().unwrap(), "--five", &text.join(",")]);
        let theirs: Vec<[f32; 2]> = serde_json::from_str(&json).expect("68 points");
        assert_eq!(theirs.len(), 68);
        let worst = ours.iter().zip(&theirs).map(|(a, b)| (a[0] - b[0]).hypot(a[1] - b[1])).fold(0.0, f32::max);
        eprintln!("{five:?}: worst point {worst:.2e} px apart");
        assert!(worst <= 1e-3, "{five:?}: a landmark is {worst} px from the reference's");
    }
}

#[test]
fn bad_mask_models_and_inputs_are_refused() {
    let Some(wrong) = fixture("bisenet_18_classes.onnx") else { return };
    let Some(xseg) = fixture("xseg.onnx") else { return };
    let options = SessionOptions::default();
    match Parser::open(&wrong, "parser-model", &options) {
        Err(e @ RuntimeError::WrongKind { .. }) => {
            let text = e.to_string();
            assert!(text.contains("19 CelebAMask-HQ classes") && text.contains("[?,18,512,512]"), "{text}");
        }
        other => panic!("a parser with 18 classes was not refused: {:?}", other.err()),
    }
    assert!(matches!(Occluder::open(&wrong, "occluder-model", &options), Err(RuntimeError::WrongKind { .. })));
    assert!(matches!(Landmark68::open(&xseg, "landmark-68-model", &options), Err(RuntimeError::WrongKind { .. })));
    let mut occluder = Occluder::open(&xseg, "occluder-model", &options).expect("opens");
    let err = occluder.mask(&RgbImage::new(64, 32)).unwrap_err();
    assert!(err.contains("square") && err.contains("64×32"), "{err}");
    let Some(bisenet) = fixture("bisenet.onnx") else { return };
    let mut parser = Parser::open(&bisenet, "parser-model", &options).expect("opens");
    let err = parser.mask(&[0.0; 10], 4, &Regions::all()).unwrap_err();
    assert!(err.contains("4×4"), "{err}");
}
