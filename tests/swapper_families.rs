// SPDX-License-Identifier: MPL-2.0
//! The FaceFusion swapper families (src/models/swapper) on their fixture stand-ins, against the
//! NumPy evaluation in tests/reference/facefusion_swapper.py: the source tensor (converter run
//! included) and `run_tiles` (prepare → model → normalise, per pixel-boost tile), per family;
//! the batched run; recognition and the errors for a missing or wrong converter, an ambiguous
//! file and a model of another kind.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use gstdlc::models::swapper::{Swapper, SwapperFamilyChoice};
use gstdlc::runtime::{ExecutionProvider, RuntimeError, SessionOptions};

fn options() -> SessionOptions {
    SessionOptions { provider: ExecutionProvider::Cpu, threads: 1, ..Default::default() }
}

/// The fixtures `names` (ORT and the fixtures required), or `None` after skipping.
fn fixtures<const N: usize>(names: [&str; N]) -> Option<[PathBuf; N]> {
    if !common::have_ort() {
        common::skip("ORT_DYLIB_PATH is not set (run `make test`)");
        return None;
    }
    let mut paths = Vec::with_capacity(N);
    for name in names {
        let Some(path) = common::fixture(name) else {
            common::skip(&format!("fixture {name} missing (run `make fixtures`)"));
            return None;
        };
        paths.push(path);
    }
    paths.try_into().ok()
}

/// SplitMix64 stream: deterministic test inputs without a random-number crate.
struct Noise(u64);

impl Noise {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-1, 1).
    fn unit(&mut self) -> f32 {
        ((self.next() >> 11) as f64 / (1u64 << 52) as f64 - 1.0) as f32
    }
}

/// A raw ArcFace-like embedding (norm about 20, like w600k_r50's).
fn embedding(seed: u64) -> Vec<f32> {
    let mut noise = Noise(seed);
    (0..512).map(|_| noise.unit() * 1.5).collect()
}

/// `count` tiles of side `size`: smooth gradients per channel plus noise, so that the whole
/// byte range occurs and neighbouring pixels differ.
fn tiles(count: usize, size: usize, seed: u64) -> Vec<u8> {
    let mut noise = Noise(seed);
    let mut out = Vec::with_capacity(count * size * size * 3);
    for k in 0..count {
        for y in 0..size {
            for x in 0..size {
                for c in 0..3 {
                    let ramp = [x, y, x + y][c] as f32 / (2 * size) as f32 * 255.0;
                    let value = ramp + 40.0 * k as f32 + 60.0 * noise.unit();
                    out.push(value.clamp(0.0, 255.0) as u8);
                }
            }
        }
    }
    out
}

fn write_f32(path: &Path, values: &[f32]) {
    let bytes: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    std::fs::write(path, bytes).expect("writes the file");
}

fn read_f32(path: &Path) -> Vec<f32> {
    let bytes = std::fs::read(path).expect("the reference wrote its output");
    bytes.chunks_exact(4).map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]])).collect()
}

/// The source face as a swapper family takes it.
enum Identity<'a> {
    /// The raw ArcFace embedding.
    Embedding(&'a [f32]),
    /// The aligned crop of the face's picture, packed RGB (blendswap, uniface).
    Picture(&'a [u8]),
}

/// The reference's source tensor and tiles for `family` (see tests/reference/facefusion_swapper.py).
fn reference(
    family: &str,
    model: &Path,
    converter: Option<&Path>,
    identity: Identity,
    tiles: &[u8],
    count: usize,
) -> Option<(Vec<f32>, Vec<f32>)> {
    let Some(python) = common::reference_python() else {
        common::skip("DLC_PYTHON is not set (run `make test`)");
        return None;
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let file = |name: &str| dir.path().join(name);
    std::fs::write(file("tiles.u8"), tiles).expect("writes the tiles");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/reference/facefusion_swapper.py");
    let mut command = Command::new(python);
    command.arg(script).args(["--family", family, "--count", &count.to_string()]);
    command.arg("--model").arg(model);
    match identity {
        Identity::Embedding(raw) => {
            write_f32(&file("embedding.f32"), raw);
            command.arg("--embedding").arg(file("embedding.f32"));
        }
        Identity::Picture(crop) => {
            std::fs::write(file("source.u8"), crop).expect("writes the source crop");
            command.arg("--source-crop").arg(file("source.u8"));
        }
    }
    command.arg("--tiles").arg(file("tiles.u8")).arg("--out").arg(file("out.f32"));
    command.arg("--source-out").arg(file("source.f32"));
    if let Some(converter) = converter {
        command.arg("--converter").arg(converter);
    }
    let output = command.output().expect("the reference script runs");
    assert!(output.status.success(), "reference failed: {}", String::from_utf8_lossy(&output.stderr));
    Some((read_f32(&file("source.f32")), read_f32(&file("out.f32"))))
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max)
}

/// Opens `file` (auto recognition, converter found beside it), checks the family, and compares
/// its source tensor and `count` tiles with the reference; returns the tiles' output.
fn check_family(file: &str, family: &str, converter: Option<&str>, count: usize, tolerance: f32) -> Option<Vec<f32>> {
    let [model] = fixtures([file])?;
    let converter_path = match converter {
        Some(name) => Some(fixtures([name])?[0].clone()),
        None => None,
    };
    let mut swapper = Swapper::open(&model, SwapperFamilyChoice::Auto, None, &options())
        .unwrap_or_else(|e| panic!("{file} opens: {e}"));
    assert_eq!(swapper.family().name, family, "{file} recognised");
    assert_eq!(swapper.converter().is_some(), converter.is_some());
    let raw = embedding(7);
    let picture = swapper.family().source.image_size().map(|side| tiles(1, side, 13));
    let (source, identity) = match &picture {
        Some(crop) => (swapper.source_image_tensor(crop).expect("a source tensor"), Identity::Picture(crop)),
        None => (swapper.source_tensor(&raw).expect("a source tensor"), Identity::Embedding(&raw)),
    };
    let size = swapper.family().size;
    let input = tiles(count, size, 11);
    let out = swapper.run_tiles(&input, count, &source).expect("the tiles run").to_vec();
    assert_eq!(out.len(), count * size * size * 3);
    let (want_source, want_out) = reference(family, &model, converter_path.as_deref(), identity, &input, count)?;
    let source_diff = max_abs_diff(&source, &want_source);
    let scale = want_source.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert!(source_diff <= 1e-5 * scale.max(1.0), "{family}: source tensor off by {source_diff} (max {scale})");
    let diff = max_abs_diff(&out, &want_out);
    eprintln!("{family} ({file}): {count} tiles, max |Δ| {diff:.2e} levels, source max |Δ| {source_diff:.1e}");
    assert!(diff <= tolerance, "{family}: tiles differ from the reference by up to {diff} levels");
    // Not a constant output: the identity and the pixels both matter.
    let spread = out.iter().fold(f32::MAX, |m, v| m.min(*v)) < out.iter().fold(f32::MIN, |m, v| m.max(*v));
    assert!(spread, "{family}: constant output");
    Some(out)
}

// float32 models: ONNX Runtime (float32 sums) and NumPy (float64) agree to ~1e-5 before × 255
// (measured: at most 9e-4 levels); a wrong channel, pixel or normalisation costs whole levels.
const F32_TOLERANCE: f32 = 0.01;

#[test]
fn inswapper_matches_facefusion() {
    // 3 × 3 tiles: pixel boost 384.
    check_family("inswapper.onnx", "inswapper", None, 9, F32_TOLERANCE);
}

#[test]
fn inswapper_fp16_matches_facefusion() {
    // float16 inputs and outputs, rounded alike on both sides; one float16 step of the output
    // (2⁻¹¹ near 1) is 0.125 levels.
    check_family("inswapper_fp16.onnx", "inswapper", None, 4, 0.2);
}

#[test]
fn hyperswap_matches_facefusion() {
    // 2 × 2 tiles: pixel boost 512. The stand-in also has hyperswap's 'mask' output, unread.
    check_family("hyperswap_256.onnx", "hyperswap", None, 4, F32_TOLERANCE);
}

#[test]
fn hyperswap_is_recognised_by_its_mask_output() {
    let Some([model]) = fixtures(["hyperswap_256.onnx"]) else { return };
    let dir = tempfile::tempdir().expect("a temporary folder");
    let renamed = dir.path().join("face_swapper.onnx");
    std::fs::copy(&model, &renamed).expect("copies the model");
    let swapper = Swapper::open(&renamed, SwapperFamilyChoice::Auto, None, &options()).expect("opens");
    assert_eq!(swapper.family().name, "hyperswap");
    assert!(!swapper.batched(), "hyperswap's export has batch 1");
}

#[test]
fn simswap_256_matches_facefusion() {
    // ImageNet-normalised input, output taken as [0, 1]; the converter found beside the model.
    check_family("simswap_256.onnx", "simswap", Some("crossface_simswap.onnx"), 4, F32_TOLERANCE);
}

#[test]
fn simswap_unofficial_512_matches_facefusion() {
    check_family(
        "simswap_unofficial_512.onnx",
        "simswap_unofficial_512",
        Some("crossface_simswap.onnx"),
        1,
        F32_TOLERANCE,
    );
}

#[test]
fn ghost_matches_facefusion() {
    // The converter's raw output as the source.
    check_family("ghost_256.onnx", "ghost", Some("crossface_ghost.onnx"), 4, F32_TOLERANCE);
}

#[test]
fn ghost_with_a_symbolic_batch_runs_all_tiles_at_once_with_the_same_result() {
    let Some([single, batched]) = fixtures(["ghost_256.onnx", "ghost_256_batched.onnx"]) else { return };
    let mut one_by_one = Swapper::open(&single, SwapperFamilyChoice::Auto, None, &options()).expect("opens");
    let mut at_once = Swapper::open(&batched, SwapperFamilyChoice::Auto, None, &options()).expect("opens");
    assert!(!one_by_one.batched() && at_once.batched());
    let source = one_by_one.source_tensor(&embedding(3)).expect("a source tensor");
    // 4 × 4 tiles: pixel boost 1024.
    let input = tiles(16, 256, 5);
    let a = one_by_one.run_tiles(&input, 16, &source).expect("runs").to_vec();
    let b = at_once.run_tiles(&input, 16, &source).expect("runs").to_vec();
    let diff = max_abs_diff(&a, &b);
    assert!(diff <= 1e-3, "batched run differs by {diff} levels");
    // And again with another count (the tensors are rebound) and the reference.
    let input = tiles(4, 256, 6);
    let out = at_once.run_tiles(&input, 4, &source).expect("runs").to_vec();
    let converter = fixtures(["crossface_ghost.onnx"]).map(|[c]| c);
    let raw = embedding(3);
    let Some((_, want)) = reference("ghost", &batched, converter.as_deref(), Identity::Embedding(&raw), &input, 4)
    else {
        return;
    };
    let diff = max_abs_diff(&out, &want);
    assert!(diff <= F32_TOLERANCE, "batched ghost differs from the reference by {diff} levels");
}

#[test]
fn a_fixed_batch_made_symbolic_runs_all_tiles_at_once_with_the_same_result() {
    // The fixtures fix their batch at 1 (as the real exports do) and reshape their identity
    // through a constant [1, C, 1, 1]: the rewrite makes both follow the batch.
    for (file, converter, count) in [
        ("inswapper.onnx", None, 16),
        ("hyperswap_256.onnx", None, 4),
        ("ghost_256.onnx", Some("crossface_ghost.onnx"), 4),
    ] {
        let Some([path]) = fixtures([file]) else { return };
        let converter = converter.and_then(|c| fixtures([c])).map(|[c]| c);
        let open = || Swapper::open(&path, SwapperFamilyChoice::Auto, converter.as_deref(), &options()).expect("opens");
        let (mut one_by_one, mut at_once) = (open(), open());
        assert!(!one_by_one.batched() && one_by_one.batching().is_none(), "{file}: no batching tried on the CPU");
        let how = at_once.batch_tiles(&options(), 4).expect("the batch is made symbolic");
        assert!(at_once.batched() && how.contains("a batch of 4 equals single runs"), "{file}: {how}");
        let source = one_by_one.source_tensor(&embedding(9)).expect("a source tensor");
        let size = one_by_one.family().size;
        let input = tiles(count, size, 11);
        let a = one_by_one.run_tiles(&input, count, &source).expect("runs").to_vec();
        let b = at_once.run_tiles(&input, count, &source).expect("runs").to_vec();
        let diff = max_abs_diff(&a, &b);
        assert!(diff <= 1e-3, "{file}: batched tiles differ from single runs by {diff} levels");
    }
}

#[test]
fn hififace_matches_facefusion() {
    check_family("hififace_256.onnx", "hififace", Some("crossface_hififace.onnx"), 4, F32_TOLERANCE);
}

#[test]
fn bad_models_and_converters_are_refused_with_the_property_named() {
    let Some([simswap, ghost, arcface, gfpgan, converter]) =
        fixtures(["simswap_256.onnx", "ghost_256.onnx", "arcface.onnx", "gfpgan.onnx", "crossface_simswap.onnx"])
    else {
        return;
    };
    let dir = tempfile::tempdir().expect("a temporary folder");
    // A converter family alone in its folder, no converter given.
    let lonely = dir.path().join("simswap_256.onnx");
    std::fs::copy(&simswap, &lonely).expect("copies the model");
    let err = Swapper::open(&lonely, SwapperFamilyChoice::Auto, None, &options()).err().expect("refused");
    assert!(matches!(err, RuntimeError::ModelMissing { property: "converter-model", .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains("converter-model") && text.contains("crossface_simswap.onnx"), "{text}");
    // Given explicitly, it opens.
    let swapper = Swapper::open(&lonely, SwapperFamilyChoice::Auto, Some(&converter), &options()).expect("opens");
    assert_eq!(swapper.family().name, "simswap");
    // A converter that is not one (ArcFace).
    let err = Swapper::open(&lonely, SwapperFamilyChoice::Auto, Some(&arcface), &options()).err().expect("refused");
    assert!(matches!(err, RuntimeError::WrongKind { .. }) && err.to_string().contains("embedding converter"), "{err}");
    // A 256 swapper whose name says nothing: the family must be chosen.
    let anonymous = dir.path().join("swap.onnx");
    std::fs::copy(&ghost, &anonymous).expect("copies the model");
    let err =
        Swapper::open(&anonymous, SwapperFamilyChoice::Auto, Some(&converter), &options()).err().expect("refused");
    assert!(err.to_string().contains("swapper-family"), "{err}");
    let chosen = Swapper::open(&anonymous, SwapperFamilyChoice::Hififace, Some(&converter), &options());
    assert_eq!(chosen.expect("opens").family().name, "hififace");
    // A family whose size does not fit, and a model that is no swapper.
    let err = Swapper::open(&ghost, SwapperFamilyChoice::Inswapper, None, &options()).err().expect("refused");
    assert!(matches!(err, RuntimeError::WrongKind { .. }) && err.to_string().contains("[1,3,128,128]"), "{err}");
    let err = Swapper::open(&gfpgan, SwapperFamilyChoice::Auto, None, &options()).err().expect("refused");
    assert!(err.to_string().contains("a face swapper"), "{err}");
}

#[test]
fn wrong_inputs_to_a_swapper_are_errors() {
    let Some([model]) = fixtures(["hyperswap_256.onnx"]) else { return };
    let mut swapper = Swapper::open(&model, SwapperFamilyChoice::Auto, None, &options()).expect("opens");
    assert!(swapper.source_tensor(&[1.0; 100]).is_err());
    assert!(swapper.source_tensor(&[0.0; 512]).unwrap_err().contains("no length"));
    let mut nan = embedding(1);
    nan[3] = f32::NAN;
    assert!(swapper.source_tensor(&nan).is_err());
    let source = swapper.source_tensor(&embedding(1)).expect("a source tensor");
    assert!(swapper.run_tiles(&[0; 100], 1, &source).unwrap_err().contains("expected 1 tiles"));
    assert!(swapper.run_tiles(&tiles(1, 256, 1), 1, &source[..10]).is_err());
    assert!(swapper.run_tiles(&[], 0, &source).expect("no tiles, no run").is_empty());
}

#[test]
fn blendswap_matches_facefusion() {
    // The identity is a 112-px picture crop.
    check_family("blendswap_256.onnx", "blendswap", None, 4, F32_TOLERANCE);
}

#[test]
fn uniface_matches_facefusion() {
    // The identity is a 256-px picture crop, taken as x / 255 while the target is (x/255 − .5)/.5.
    check_family("uniface_256.onnx", "uniface", None, 4, F32_TOLERANCE);
}

#[test]
fn picture_and_embedding_sources_are_not_mixed_up() {
    let Some([blendswap, hyperswap]) = fixtures(["blendswap_256.onnx", "hyperswap_256.onnx"]) else { return };
    let mut picture = Swapper::open(&blendswap, SwapperFamilyChoice::Auto, None, &options()).expect("opens");
    assert!(picture.source_tensor(&embedding(1)).unwrap_err().contains("picture"));
    assert!(picture.source_image_tensor(&[0; 100]).unwrap_err().contains("112×112×3"));
    // An embedding where the picture belongs.
    assert!(picture.run_tiles(&tiles(1, 256, 1), 1, &embedding(1)).is_err());
    let embedding_swapper = Swapper::open(&hyperswap, SwapperFamilyChoice::Auto, None, &options()).expect("opens");
    assert!(embedding_swapper.source_image_tensor(&tiles(1, 112, 1)).unwrap_err().contains("embedding"));
}
