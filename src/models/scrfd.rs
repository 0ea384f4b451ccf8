// SPDX-License-Identifier: MPL-2.0
//! SCRFD face detection (`det_10g.onnx` and its family), as InsightFace's `SCRFD.detect` does it:
//! letterbox at the top-left, RGB `(x − 127.5) / 128`, per-stride anchor decode, score
//! threshold, NMS with the "+1" area convention, coordinates back in frame pixels.

use std::path::{Path, PathBuf};
use std::time::Instant;

use ort::session::IoBinding;
use ort::value::DynTensor;

use crate::backend::{Backend, Normalization};
use crate::runtime::{CoreMlUnits, ModelIo, ModelSession, RuntimeError, SessionOptions};
use crate::timing::StepTimes;
use crate::vision::FrameView;

use super::{NOT_BOUND, float_type, run_on_backend};

/// A face as the detector reports it, in frame pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// `[x1, y1, x2, y2]`.
    pub bbox: [f32; 4],
    pub score: f32,
    /// Five keypoints (eyes, nose, mouth corners), absent for models without a keypoint head.
    pub kps: Option<[[f32; 2]; 5]>,
}

impl Detection {
    pub fn area(&self) -> f32 {
        (self.bbox[2] - self.bbox[0]).max(0.0) * (self.bbox[3] - self.bbox[1]).max(0.0)
    }
}

/// How a particular SCRFD export lays out its heads.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScrfdLayout {
    pub strides: Vec<usize>,
    pub anchors_per_location: usize,
    pub has_keypoints: bool,
    /// `(width, height)` when the export has a fixed input size.
    pub fixed_input: Option<(usize, usize)>,
}

/// The contract, worded for error messages.
pub const CONTRACT: &str = "an SCRFD face detector (det_10g.onnx family): one float32 input \
    [1,3,H,W] and 6, 9, 10 or 15 float32 outputs (scores [N,1], boxes [N,4], keypoints [N,10] per \
    stride, optionally with a leading batch dimension)";

/// Checks a model's inputs and outputs against the SCRFD contract.
pub fn layout_of(io: &ModelIo) -> Result<ScrfdLayout, String> {
    let expected = || CONTRACT.to_string();
    let [input] = io.inputs.as_slice() else { return Err(expected()) };
    if !input.is_float() || input.shape.len() != 4 || !input.dim_accepts(1, 3) || !input.dim_accepts(0, 1) {
        return Err(expected());
    }
    let (strides, anchors_per_location, has_keypoints) = match io.outputs.len() {
        6 => (vec![8, 16, 32], 2, false),
        9 => (vec![8, 16, 32], 2, true),
        10 => (vec![8, 16, 32, 64, 128], 1, false),
        15 => (vec![8, 16, 32, 64, 128], 1, true),
        _ => return Err(expected()),
    };
    let heads = if has_keypoints { 3 } else { 2 };
    let widths = [1i64, 4, 10];
    for (i, output) in io.outputs.iter().enumerate() {
        let width = widths[i / strides.len()];
        let rank_ok = matches!(output.shape.len(), 2 | 3);
        if !output.is_float()
            || !rank_ok
            || !output.dim_accepts(output.shape.len() - 1, width)
            || i / strides.len() >= heads
        {
            return Err(expected());
        }
    }
    let fixed_input = match (input.shape[3], input.shape[2]) {
        (w, h) if w > 0 && h > 0 => Some((w as usize, h as usize)),
        _ => None,
    };
    Ok(ScrfdLayout { strides, anchors_per_location, has_keypoints, fixed_input })
}

/// Decodes raw head outputs (in model output order, any batch dim flattened away) for an input
/// of `input_w × input_h`, keeping scores `>= threshold`, scaled back by `det_scale`. NaN scores
/// and anchors whose box or keypoints decode to a non-finite position are dropped; a wrong number
/// of outputs or a head of the wrong length is an error.
pub fn decode(
    outputs: &[&[f32]],
    layout: &ScrfdLayout,
    input_w: usize,
    input_h: usize,
    det_scale: f32,
    threshold: f32,
) -> Result<Vec<Detection>, String> {
    let n_strides = layout.strides.len();
    let heads = if layout.has_keypoints { 3 } else { 2 };
    if outputs.len() != heads * n_strides {
        return Err(format!(
            "the detector gave {} outputs, expected {} for its layout",
            outputs.len(),
            heads * n_strides
        ));
    }
    let mut detections = Vec::new();
    for (idx, &stride) in layout.strides.iter().enumerate() {
        let (grid_w, grid_h) = (input_w / stride.max(1), input_h / stride.max(1));
        let count = grid_w
            .checked_mul(grid_h)
            .and_then(|n| n.checked_mul(layout.anchors_per_location))
            .filter(|n| n.checked_mul(10).is_some())
            .ok_or_else(|| format!("a {input_w}x{input_h} input is too large to decode"))?;
        let head = |offset: usize| {
            outputs.get(idx + offset * n_strides).copied().ok_or_else(|| {
                format!("the detector gave {} outputs, expected {} for its layout", outputs.len(), n_strides * heads)
            })
        };
        let (scores, boxes) = (head(0)?, head(1)?);
        let kps = if layout.has_keypoints { Some(head(2)?) } else { None };
        if scores.len() != count || boxes.len() != count * 4 || kps.is_some_and(|k| k.len() != count * 10) {
            return Err(format!(
                "stride {stride} heads hold {} scores / {} box values, expected {count} / {} for a {input_w}x{input_h} input",
                scores.len(),
                boxes.len(),
                count * 4
            ));
        }
        let s = stride as f32;
        for (i, &score) in scores.iter().enumerate() {
            // Written so that a NaN score fails too.
            if !(score >= threshold && score.is_finite()) {
                continue;
            }
            let location = i / layout.anchors_per_location;
            let (cx, cy) = ((location % grid_w) as f32 * s, (location / grid_w) as f32 * s);
            let d = &boxes[i * 4..i * 4 + 4];
            let bbox = [
                (cx - d[0] * s) / det_scale,
                (cy - d[1] * s) / det_scale,
                (cx + d[2] * s) / det_scale,
                (cy + d[3] * s) / det_scale,
            ];
            let kps: Option<[[f32; 2]; 5]> = kps.map(|k| {
                let k = &k[i * 10..i * 10 + 10];
                std::array::from_fn(|p| [(cx + k[2 * p] * s) / det_scale, (cy + k[2 * p + 1] * s) / det_scale])
            });
            // Offsets so large that the decoded position overflows are no face anyone can use.
            let finite = bbox.iter().chain(kps.iter().flatten().flatten()).all(|v| v.is_finite());
            if finite {
                detections.push(Detection { bbox, score, kps });
            }
        }
    }
    Ok(detections)
}

/// Non-maximum suppression as InsightFace does it: highest score first, areas with the "+1"
/// pixel convention, drop any box whose IoU with a kept one exceeds `iou_threshold`.
pub fn nms(mut detections: Vec<Detection>, iou_threshold: f32) -> Vec<Detection> {
    // A stable sort keeps the model's order among equal scores, as NumPy's argsort does.
    detections.sort_by(|a, b| b.score.total_cmp(&a.score));
    let area = |b: &[f32; 4]| (b[2] - b[0] + 1.0) * (b[3] - b[1] + 1.0);
    let mut kept: Vec<Detection> = Vec::new();
    'candidates: for det in detections {
        for k in &kept {
            let w = (det.bbox[2].min(k.bbox[2]) - det.bbox[0].max(k.bbox[0]) + 1.0).max(0.0);
            let h = (det.bbox[3].min(k.bbox[3]) - det.bbox[1].max(k.bbox[1]) + 1.0).max(0.0);
            let inter = w * h;
            if inter / (area(&k.bbox) + area(&det.bbox) - inter) > iou_threshold {
                continue 'candidates;
            }
        }
        kept.push(det);
    }
    kept
}

/// `det_size` rounded down to a multiple of `step` (at least one `step`).
pub fn round_det_size(det_size: usize, step: usize) -> usize {
    (det_size / step.max(1)).max(1) * step.max(1)
}

/// SCRFD's input normalisation: RGB `(v − 127.5) / 128`.
pub const NORMALIZATION: Normalization = Normalization { mean: 127.5, scale: 1.0 / 128.0 };

/// A loaded SCRFD model, bound to an input tensor and output tensors from the backend
/// (reallocated when the input size changes).
pub struct ScrfdDetector {
    model: ModelSession,
    layout: ScrfdLayout,
    /// The file and options the model came from, to reopen it for another input size.
    path: PathBuf,
    property: &'static str,
    options: SessionOptions,
    /// The `det_size` the session's input size is fixed for, when [`ScrfdDetector::specialize`]
    /// fixed it, and the options it was fixed with.
    specialized: Option<(usize, SessionOptions)>,
    bound: Option<Bound>,
    times: StepTimes,
}

struct Bound {
    binding: IoBinding,
    input: DynTensor,
    outputs: Vec<DynTensor>,
    size: (usize, usize),
}

impl ScrfdDetector {
    pub fn open(path: &Path, property: &'static str, options: &SessionOptions) -> Result<Self, RuntimeError> {
        let model = Self::load(path, property, options)?;
        let layout = Self::layout(&model)?;
        Ok(ScrfdDetector {
            path: model.path.clone(),
            model,
            layout,
            property,
            options: options.clone(),
            specialized: None,
            bound: None,
            times: StepTimes::new(&["letterbox", "detector run and decode", "nms"]),
        })
    }

    fn load(path: &Path, property: &'static str, options: &SessionOptions) -> Result<ModelSession, RuntimeError> {
        // On an Apple machine the detector, which runs on every frame, takes the GPU and leaves
        // the Neural Engine to the swapper (as Deep-Live-Cam places them).
        let options = SessionOptions { coreml_units: CoreMlUnits::CpuAndGpu, ..options.clone() };
        ModelSession::open(path, property, &options, |io| layout_of(io).map(|_| ()))
    }

    fn layout(model: &ModelSession) -> Result<ScrfdLayout, RuntimeError> {
        layout_of(&model.io).map_err(|expected| RuntimeError::WrongKind {
            path: model.path.clone(),
            expected,
            found: model.io.to_string(),
        })
    }

    pub fn model(&self) -> &ModelSession {
        &self.model
    }

    /// Time spent in letterboxing, running and decoding.
    pub fn times(&mut self) -> &mut StepTimes {
        &mut self.times
    }

    /// Reopens the model for inputs of `det_size` only, with `options` (for example a CUDA
    /// graph): its symbolic input dimensions are fixed, so ONNX Runtime folds the model's shape
    /// computations away, which leaves every node on the GPU. Later frames with another
    /// `det_size` reopen it again. On failure the detector stays as it was.
    pub fn specialize(&mut self, det_size: usize, options: &SessionOptions) -> Result<(), String> {
        let (w, h) = self.input_size(det_size);
        let symbols = self.model.input_symbols(0);
        let mut overrides: Vec<(String, i64)> = Vec::new();
        for (symbol, size) in symbols.iter().zip([1, 3, h as i64, w as i64]) {
            if symbol.is_empty() {
                continue;
            }
            match overrides.iter().find(|(s, _)| s == symbol) {
                Some((_, fixed)) if *fixed != size => {
                    return Err(format!("input dimension '{symbol}' names both {fixed} and {size}"));
                }
                Some(_) => {}
                None => overrides.push((symbol.clone(), size)),
            }
        }
        let options = SessionOptions { dimension_overrides: overrides, ..options.clone() };
        let model = Self::load(&self.path, self.property, &options).map_err(|e| e.to_string())?;
        if model.active_provider != self.model.active_provider {
            return Err(format!(
                "with the input fixed at {w}x{h} it runs on {} instead of {}",
                model.active_provider.nick(),
                self.model.active_provider.nick()
            ));
        }
        let layout = Self::layout(&model).map_err(|e| e.to_string())?;
        if layout.fixed_input != Some((w, h)) {
            return Err(format!("its input is still {:?} with the input size fixed at {w}x{h}", layout.fixed_input));
        }
        self.model = model;
        self.layout = layout;
        self.specialized = Some((det_size, options));
        self.bound = None;
        Ok(())
    }

    /// Reopens the model when it is specialised for another `det_size`: specialised again, or as
    /// opened when that fails.
    fn respecialize(&mut self, det_size: usize) -> Result<(), String> {
        let Some((fixed, options)) = self.specialized.clone() else { return Ok(()) };
        if fixed == det_size {
            return Ok(());
        }
        if self.specialize(det_size, &options).is_err() {
            self.model = Self::load(&self.path, self.property, &self.options).map_err(|e| e.to_string())?;
            self.layout = Self::layout(&self.model).map_err(|e| e.to_string())?;
            self.specialized = None;
            self.bound = None;
        }
        Ok(())
    }

    /// What `det_size` is rounded down to a multiple of: the largest stride, so that every head
    /// grid is whole (32, or 128 for the five-stride exports). `None` when the model file fixes
    /// its input size: `det_size` then does not apply.
    pub fn det_size_step(&self) -> Option<usize> {
        match (self.layout.fixed_input, &self.specialized) {
            (Some(_), None) => None,
            _ => Some(self.layout.strides.iter().copied().max().unwrap_or(32)),
        }
    }

    /// The network input size for `det_size`: the export's own size when it is fixed, otherwise
    /// `det_size` rounded down to a multiple of [`ScrfdDetector::det_size_step`].
    pub fn input_size(&self, det_size: usize) -> (usize, usize) {
        match (self.det_size_step(), self.layout.fixed_input) {
            (Some(step), _) => {
                let size = round_det_size(det_size, step);
                (size, size)
            }
            (None, fixed) => fixed.unwrap_or((det_size, det_size)),
        }
    }

    /// The shape of every output for an input of `(w, h)`, checked against the model's fixed
    /// dimensions.
    fn output_shapes(&self, (w, h): (usize, usize)) -> Result<Vec<Vec<usize>>, String> {
        let n = self.layout.strides.len();
        let mut shapes = Vec::with_capacity(self.model.io.outputs.len());
        for (i, spec) in self.model.io.outputs.iter().enumerate() {
            let (Some(stride), Some(width)) = (self.layout.strides.get(i % n.max(1)), [1, 4, 10].get(i / n.max(1)))
            else {
                return Err(CONTRACT.to_string());
            };
            let count = (w / stride) * (h / stride) * self.layout.anchors_per_location;
            let shape = if spec.shape.len() == 3 { vec![1, count, *width] } else { vec![count, *width] };
            if spec.shape.iter().zip(&shape).any(|(&d, &s)| d >= 0 && d as usize != s) {
                return Err(format!(
                    "output {spec} does not match the {count} anchors of stride {stride} for a {w}x{h} input"
                ));
            }
            shapes.push(shape);
        }
        Ok(shapes)
    }

    /// Makes the session's declared output dimensions those of `det_size`. An export with a
    /// dynamic input may still declare the output dimensions of the size it was exported at
    /// (InsightFace's det_500m.onnx declares those of 640×640), and ONNX Runtime refuses output
    /// tensors of any other size for them. The declarations are only advisory there: for another
    /// size the session is reopened with its input size fixed ([`ScrfdDetector::specialize`]),
    /// and ONNX Runtime works the output dimensions out anew from the graph.
    fn fit_declared_outputs(&mut self, det_size: usize) -> Result<(), String> {
        let size = self.input_size(det_size);
        // Bound tensors were made for outputs that fit (and checking allocates).
        let bound_for_size = self.bound.as_ref().is_some_and(|b| b.size == size);
        if bound_for_size || self.det_size_step().is_none() || self.output_shapes(size).is_ok() {
            return Ok(());
        }
        let options = match &self.specialized {
            Some((_, options)) => options.clone(),
            None => self.options.clone(),
        };
        self.specialize(det_size, &options).map_err(|e| {
            format!(
                "the model declares its output sizes for another input size, and fixing its input at {}x{} \
                 failed: {e}",
                size.0, size.1
            )
        })
    }

    /// The binding for an input of `(w, h)`, made anew when the size changed.
    fn bind(&mut self, backend: &Backend, (w, h): (usize, usize)) -> Result<(), String> {
        if self.bound.as_ref().is_none_or(|b| b.size != (w, h)) {
            let input = backend.tensor(&[1, 3, h, w], float_type(self.model.io.inputs.first()))?;
            let element = float_type(self.model.io.outputs.first());
            let mut outputs = Vec::with_capacity(self.model.io.outputs.len());
            for shape in self.output_shapes((w, h))? {
                outputs.push(backend.tensor(&shape, element)?);
            }
            let mut binding = self.model.binding()?;
            for (spec, output) in self.model.io.outputs.iter().zip(outputs.iter_mut()) {
                binding
                    .bind_output(spec.name.as_str(), &mut *output)
                    .map_err(|e| format!("cannot bind output '{}': {e}", spec.name))?;
            }
            self.bound = Some(Bound { binding, input, outputs, size: (w, h) });
        }
        Ok(())
    }

    /// Runs the model `runs` times for `det_size` on its bound tensors as they are (see
    /// [`crate::models::swapper::inswapper::Inswapper::warm_up`]).
    pub fn warm_up(&mut self, backend: &Backend, det_size: usize, runs: usize) -> Result<(), String> {
        self.respecialize(det_size)?;
        self.fit_declared_outputs(det_size)?;
        let size = self.input_size(det_size);
        let input_name = self.model.io.inputs.first().map(|i| i.name.clone()).unwrap_or_default();
        self.bind(backend, size)?;
        let ScrfdDetector { model, bound: Some(bound), .. } = self else { return Err(NOT_BOUND.to_string()) };
        bound
            .binding
            .bind_input(input_name.as_str(), &bound.input)
            .map_err(|e| format!("cannot bind the input: {e}"))?;
        model.warm_up(&bound.binding, runs)
    }

    /// Detects faces in `frame`; results sorted by score, after NMS.
    pub fn detect(
        &mut self,
        backend: &mut Backend,
        frame: &FrameView,
        det_size: usize,
        threshold: f32,
        nms_threshold: f32,
    ) -> Result<Vec<Detection>, String> {
        let start = Instant::now();
        self.respecialize(det_size)?;
        self.fit_declared_outputs(det_size)?;
        let (w, h) = self.input_size(det_size);
        let input_name = self.model.io.inputs.first().map(|i| i.name.clone()).unwrap_or_default();
        self.bind(backend, (w, h))?;
        let ScrfdDetector { model, bound: Some(bound), layout, times, .. } = self else {
            return Err(NOT_BOUND.to_string());
        };
        let det_scale = backend.letterbox(frame, NORMALIZATION, &mut bound.input)?;
        let start = times.lap(0, start);
        bound
            .binding
            .bind_input(input_name.as_str(), &bound.input)
            .map_err(|e| format!("cannot bind the input: {e}"))?;
        run_on_backend(model, &bound.binding, backend)?;
        // The anchors are decoded where the outputs lie (no copy of them on the CPU backend).
        let detections =
            backend.read_outputs(&bound.outputs, |heads| decode(heads, layout, w, h, det_scale, threshold))??;
        let start = times.lap(1, start);
        let kept = nms(detections, nms_threshold);
        times.lap(2, start);
        Ok(kept)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::TensorSpec;
    use ort::value::TensorElementType::Float32;

    fn spec(shape: &[i64]) -> TensorSpec {
        TensorSpec { name: "t".into(), element: Some(Float32), shape: shape.to_vec() }
    }

    fn scrfd_io(batched: bool, kps: bool) -> ModelIo {
        let mut outputs = Vec::new();
        let widths: &[i64] = if kps { &[1, 4, 10] } else { &[1, 4] };
        for &w in widths {
            for _ in 0..3 {
                outputs.push(if batched { spec(&[1, -1, w]) } else { spec(&[-1, w]) });
            }
        }
        ModelIo { inputs: vec![spec(&[1, 3, -1, -1])], outputs }
    }

    #[test]
    fn recognises_scrfd_layouts() {
        let layout = layout_of(&scrfd_io(false, true)).unwrap();
        assert_eq!(layout.strides, vec![8, 16, 32]);
        assert!(layout.has_keypoints && layout.fixed_input.is_none());
        assert!(!layout_of(&scrfd_io(true, false)).unwrap().has_keypoints);

        let enhancer = ModelIo { inputs: vec![spec(&[1, 3, 512, 512])], outputs: vec![spec(&[1, 3, 512, 512])] };
        assert!(layout_of(&enhancer).unwrap_err().contains("SCRFD"));
    }

    /// One stride-8 anchor fires on a 16×16 input: expected box and keypoints worked out by hand.
    #[test]
    fn decodes_one_anchor_by_hand() {
        let layout =
            ScrfdLayout { strides: vec![8, 16, 32], anchors_per_location: 2, has_keypoints: true, fixed_input: None };
        // Grids: 2×2 (8 anchors), 1×1 (2), 0×0 (0) for a 16×16 input (32 > 16).
        let mut s8 = vec![0.0f32; 8];
        // Anchor 5 = location 2 (x 0, y 1), second anchor: centre (0, 8).
        s8[5] = 0.9;
        let mut b8 = vec![0.0f32; 32];
        b8[20..24].copy_from_slice(&[0.5, 0.25, 1.0, 2.0]);
        let mut k8 = vec![0.0f32; 80];
        k8[50..60].copy_from_slice(&[0.0, 0.0, 1.0, 0.0, 0.5, 0.5, 0.0, 1.0, 1.0, 1.0]);
        let (s16, b16, k16) = (vec![0.1f32; 2], vec![0.0f32; 8], vec![0.0f32; 20]);
        let empty: Vec<f32> = Vec::new();
        let outputs: Vec<&[f32]> = vec![&s8, &s16, &empty, &b8, &b16, &empty, &k8, &k16, &empty];
        let dets = decode(&outputs, &layout, 16, 16, 0.5, 0.5).unwrap();
        assert_eq!(dets.len(), 1);
        // x1 = (0 − 0.5·8)/0.5 = −8, y1 = (8 − 0.25·8)/0.5 = 12, x2 = (0 + 8)/0.5 = 16, y2 = (8 + 16)/0.5 = 48.
        assert_eq!(dets[0].bbox, [-8.0, 12.0, 16.0, 48.0]);
        let kps = dets[0].kps.unwrap();
        assert_eq!(kps[0], [0.0, 16.0]);
        assert_eq!(kps[1], [16.0, 16.0]);
        assert_eq!(kps[2], [8.0, 24.0]);
        assert_eq!(kps[4], [16.0, 32.0]);
    }

    #[test]
    fn decode_rejects_wrong_head_sizes() {
        let layout =
            ScrfdLayout { strides: vec![8, 16, 32], anchors_per_location: 2, has_keypoints: false, fixed_input: None };
        let short = vec![0.0f32; 3];
        let outputs: Vec<&[f32]> = vec![&short; 6];
        assert!(decode(&outputs, &layout, 64, 64, 1.0, 0.5).unwrap_err().contains("stride 8"));
    }

    #[test]
    fn decode_rejects_a_missing_head_and_drops_non_finite_anchors() {
        let layout =
            ScrfdLayout { strides: vec![8, 16, 32], anchors_per_location: 2, has_keypoints: false, fixed_input: None };
        // 32×32 input: 4×4, 2×2 and 1×1 grids, two anchors each.
        let scores = [vec![0.9f32; 32], vec![0.0; 8], vec![0.0; 2]];
        let mut boxes = [vec![1.0f32; 128], vec![0.0; 32], vec![0.0; 8]];
        let outputs: Vec<&[f32]> = scores.iter().chain(&boxes).map(Vec::as_slice).collect();
        assert!(decode(&outputs[..5], &layout, 32, 32, 1.0, 0.5).unwrap_err().contains("5 outputs, expected 6"));
        assert_eq!(decode(&outputs, &layout, 32, 32, 1.0, 0.5).unwrap().len(), 32);

        // A NaN score, and box offsets that overflow to infinity once scaled by the stride.
        let mut scores = scores;
        scores[0][0] = f32::NAN;
        boxes[0][4..8].copy_from_slice(&[f32::MAX; 4]);
        let outputs: Vec<&[f32]> = scores.iter().chain(&boxes).map(Vec::as_slice).collect();
        let dets = decode(&outputs, &layout, 32, 32, 1.0, 0.5).unwrap();
        assert_eq!(dets.len(), 30);
        assert!(dets.iter().all(|d| d.score == 0.9 && d.bbox.iter().all(|v| v.is_finite())));
    }

    fn det(bbox: [f32; 4], score: f32) -> Detection {
        Detection { bbox, score, kps: None }
    }

    #[test]
    fn nms_uses_plus_one_areas() {
        // Boxes 0..9 and 3..12 (10 px wide with +1): overlap 7·10 = 70, union 100 + 100 − 70 = 130,
        // IoU 0.538 > 0.4 → suppressed. Boxes 0..9 and 6..15: overlap 40, IoU 40/160 = 0.25 → kept.
        let kept = nms(vec![det([3.0, 0.0, 12.0, 9.0], 0.8), det([0.0, 0.0, 9.0, 9.0], 0.9)], 0.4);
        assert_eq!(kept, vec![det([0.0, 0.0, 9.0, 9.0], 0.9)]);
        let kept = nms(vec![det([0.0, 0.0, 9.0, 9.0], 0.9), det([6.0, 0.0, 15.0, 9.0], 0.8)], 0.4);
        assert_eq!(kept.len(), 2);
        // IoU exactly at the threshold is kept (InsightFace drops only `> thresh`): boxes 0..9 and
        // 0..3 (4×10 = 40 with +1) give IoU 40/100 = 0.4.
        let kept = nms(vec![det([0.0, 0.0, 9.0, 9.0], 0.9), det([0.0, 0.0, 3.0, 9.0], 0.8)], 0.4);
        assert_eq!(kept.len(), 2);
    }

    #[test]
    fn too_few_outputs_are_an_error_not_a_panic() {
        let layout =
            ScrfdLayout { strides: vec![8, 16, 32], anchors_per_location: 2, has_keypoints: true, fixed_input: None };
        let scores = vec![0.0f32; 8];
        let err = decode(&[&scores], &layout, 16, 16, 1.0, 0.5).unwrap_err();
        assert!(err.contains("gave 1 outputs, expected 9"), "{err}");
    }
}
