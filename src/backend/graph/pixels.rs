// SPDX-License-Identifier: MPL-2.0
//! The pixel steps as ONNX graphs, the same operations as the CPU backend's loops: letterboxing a
//! frame into the detector input, warping a face region into a model crop, decoding a model
//! output into an 8-bit crop, and pasting a crop back through its mask. The face graphs take
//! their geometry (affine coefficients, sizes) as a small input tensor, so one session per graph
//! serves every face; the letterbox is integer arithmetic with the indices and weights of a
//! [`LetterboxPlan`] built into the graph.
//!
//! Sampling is `GridSample` (bilinear, zero padding, `align_corners = 0`), which reads source
//! pixel `p` at normalised position `(2p + 1)/size − 1`: the same taps and border as the CPU's
//! bilinear samples. Values are rounded where the CPU rounds to 8 bits, so both backends agree
//! to a level or two.

use super::onnx::{Attr, Dim, Elem, Graph};
use crate::vision::letterbox_plan::{LetterboxPlan, PlanColour, SampleGroup};

/// Parameters of [`warp_to_crop`]: the crop → region affine `(a, b, c, d, e, f)`, then the
/// normalisation `(mean, scale)`.
pub const WARP_PARAMS: usize = 8;
/// Parameters of [`paste`]: the region → crop affine `(a, b, c, d, e, f)`, the crop side, the
/// mask grid's side and pad, and the opacity.
pub const PASTE_PARAMS: usize = 10;

/// Scalar `i` of a float vector.
pub(super) fn element(g: &mut Graph, vector: &str, i: i64) -> String {
    let index = g.ints(&[i], &[]);
    g.op("Gather", &[vector, &index], vec![Attr::Int("axis", 0)])
}

/// Dimension `i` of `tensor`'s shape, as a float scalar.
pub(super) fn dim(g: &mut Graph, tensor: &str, i: i64) -> String {
    let shape = g.op("Shape", &[tensor], vec![]);
    let index = g.ints(&[i], &[]);
    let d = g.op("Gather", &[&shape, &index], vec![Attr::Int("axis", 0)]);
    g.op("Cast", &[&d], vec![Attr::Int("to", Elem::Float as i64)])
}

/// `0, 1, …, n − 1` as floats, with `n` a float scalar.
fn range(g: &mut Graph, n: &str) -> String {
    let (zero, one) = (g.scalar(0.0), g.scalar(1.0));
    g.op("Range", &[&zero, n, &one], vec![])
}

pub(super) fn unsqueeze(g: &mut Graph, x: &str, axes: &[i64]) -> String {
    let axes = g.ints(axes, &[axes.len() as i64]);
    g.op("Unsqueeze", &[x, &axes], vec![])
}

/// `a·x + b·y + c` over a `[rows, cols]` grid, with `x` a row `[1, cols]` and `y` a column
/// `[rows, 1]`.
fn affine_plane(g: &mut Graph, x: &str, y: &str, (a, b, c): (&str, &str, &str)) -> String {
    let ax = g.op("Mul", &[x, a], vec![]);
    let by = g.op("Mul", &[y, b], vec![]);
    let sum = g.op("Add", &[&ax, &by], vec![]);
    g.op("Add", &[&sum, c], vec![])
}

/// GridSample's normalised coordinate of pixel position `p` in a source of `size` pixels.
fn normalised(g: &mut Graph, p: &str, size: &str) -> String {
    let (two, one) = (g.scalar(2.0), g.scalar(1.0));
    let twice = g.op("Mul", &[p, &two], vec![]);
    let shifted = g.op("Add", &[&twice, &one], vec![]);
    let scaled = g.op("Div", &[&shifted, size], vec![]);
    g.op("Sub", &[&scaled, &one], vec![])
}

/// The `[1, rows, cols, 2]` sampling grid of positions `(px, py)` (each `[rows, cols]`) in a
/// source of `width × height`.
fn grid(g: &mut Graph, (px, py): (&str, &str), (width, height): (&str, &str)) -> String {
    let gx = normalised(g, px, width);
    let gy = normalised(g, py, height);
    let gx = unsqueeze(g, &gx, &[2]);
    let gy = unsqueeze(g, &gy, &[2]);
    let both = g.op("Concat", &[&gx, &gy], vec![Attr::Int("axis", 2)]);
    unsqueeze(g, &both, &[0])
}

fn grid_sample(g: &mut Graph, image: &str, grid: &str) -> String {
    g.op(
        "GridSample",
        &[image, grid],
        vec![Attr::Str("mode", "bilinear"), Attr::Str("padding_mode", "zeros"), Attr::Int("align_corners", 0)],
    )
}

/// An 8-bit `[1, h, w, 3]` image as float `[1, 3, h, w]`.
fn planar_floats(g: &mut Graph, image: &str) -> String {
    let floats = g.op("Cast", &[image], vec![Attr::Int("to", Elem::Float as i64)]);
    g.op("Transpose", &[&floats], vec![Attr::Ints("perm", vec![0, 3, 1, 2])])
}

/// `floor(x + 0.5)`: rounding half up, as the CPU rounds an 8-bit sample.
fn round_half_up(g: &mut Graph, x: &str) -> String {
    let half = g.scalar(0.5);
    let shifted = g.op("Add", &[x, &half], vec![]);
    g.op("Floor", &[&shifted], vec![])
}

/// `(x − mean) · scale`, cast to the model's element type.
fn normalise(g: &mut Graph, x: &str, (mean, scale): (&str, &str), out: Elem) -> String {
    let centred = g.op("Sub", &[x, mean], vec![]);
    let scaled = g.op("Mul", &[&centred, scale], vec![]);
    match out {
        Elem::Float => scaled,
        other => g.op("Cast", &[&scaled], vec![Attr::Int("to", other as i64)]),
    }
}

/// `a / b` for int32 tensors, with `b` a positive constant: on the non-negative values the
/// letterbox computes, the division truncates as the CPU's right shift does.
fn div_int(g: &mut Graph, a: &str, b: i32) -> String {
    let b = g.int32s(&[b], &[]);
    g.op("Div", &[a, &b], vec![])
}

/// One group of the plan resized: `[new_h, new_w · k]` int32 samples, computed as
/// [`crate::vision::letterbox`] computes them (11-bit weights, a 32-bit horizontal pass, then
/// OpenCV's vertical step `((a >> 4)·w0 >> 16) + ((b >> 4)·w1 >> 16) + 2 >> 2`).
fn resize_group(g: &mut Graph, staged: &str, group: &SampleGroup, new_h: usize) -> String {
    let (rows, len) = (group.source_rows.len() as i64, group.row_len as i64);
    let start = g.ints(&[group.start as i64], &[1]);
    let end = g.ints(&[group.start as i64 + rows * len], &[1]);
    let bytes = g.op("Slice", &[staged, &start, &end], vec![]);
    let shape = g.ints(&[rows, len], &[2]);
    let plane = g.op("Reshape", &[&bytes, &shape], vec![]);
    let samples = group.cols[0].len() as i64;
    let taps: Vec<String> = (0..2)
        .map(|k| {
            let cols = g.ints(&group.cols[k], &[samples]);
            let picked = g.op("Gather", &[&plane, &cols], vec![Attr::Int("axis", 1)]);
            let weights = g.int32s(&group.col_weights[k], &[samples]);
            g.op("Mul", &[&picked, &weights], vec![])
        })
        .collect();
    let horizontal = g.op("Add", &[&taps[0], &taps[1]], vec![]);
    let horizontal = div_int(g, &horizontal, 1 << 4);
    let vertical: Vec<String> = (0..2)
        .map(|k| {
            let rows = g.ints(&group.rows[k], &[new_h as i64]);
            let picked = g.op("Gather", &[&horizontal, &rows], vec![Attr::Int("axis", 0)]);
            let weights = g.int32s(&group.row_weights[k], &[new_h as i64, 1]);
            let weighted = g.op("Mul", &[&picked, &weights], vec![]);
            div_int(g, &weighted, 1 << 16)
        })
        .collect();
    let sum = g.op("Add", &[&vertical[0], &vertical[1]], vec![]);
    let two = g.int32s(&[2], &[]);
    let sum = g.op("Add", &[&sum, &two], vec![]);
    div_int(g, &sum, 4)
}

/// The letterbox of frames with `plan`'s key: `rows [staged_len]` (the bytes
/// [`LetterboxPlan::stage`] writes) → the detector input `blob [1, 3, det_h, det_w]`, the frame
/// resized at the top-left, normalised `(v − mean)·scale`, padded with what 0 normalises to. The
/// plan's indices and weights are constants of the graph, so it is built per frame layout and
/// detector size; every value equals the CPU letterbox's.
pub fn letterbox(plan: &LetterboxPlan, (mean, scale): (f32, f32), out: Elem) -> Vec<u8> {
    let mut g = Graph::new("gstdlc_letterbox");
    let staged = g.input("rows", Elem::Uint8, &[Dim::Fixed(plan.staged_len as i64)]);
    let staged = g.op("Cast", &[&staged], vec![Attr::Int("to", Elem::Int32 as i64)]);
    let (w, h) = (plan.new_w as i64, plan.new_h as i64);
    let groups: Vec<String> =
        plan.groups.iter().map(|group| resize_group(&mut g, &staged, group, plan.new_h)).collect();
    let rgb = match &plan.colour {
        PlanColour::Rgb => {
            let shape = g.ints(&[h, w, 3], &[3]);
            g.op("Reshape", &[&groups[0], &shape], vec![])
        }
        PlanColour::Yuv { y, u, v, tables, shift } => {
            let mut component = |(group, slot): (usize, usize)| {
                let k = plan.groups[group].components as i64;
                let shape = g.ints(&[h, w, k], &[3]);
                let samples = g.op("Reshape", &[&groups[group], &shape], vec![]);
                let slot = g.ints(&[slot as i64], &[]);
                g.op("Gather", &[&samples, &slot], vec![Attr::Int("axis", 2)])
            };
            let (y, u, v) = (component(*y), component(*u), component(*v));
            let mut lookup = |table: usize, index: &str| {
                let table = g.int32s(&tables[table], &[256]);
                g.op("Gather", &[&table, index], vec![Attr::Int("axis", 0)])
            };
            let luma = lookup(0, &y);
            let (r_v, g_u, g_v, b_u) = (lookup(1, &v), lookup(2, &u), lookup(3, &v), lookup(4, &u));
            let (lo, hi) = (g.int32s(&[0], &[]), g.int32s(&[255], &[]));
            let channels: Vec<String> = [vec![r_v], vec![g_u, g_v], vec![b_u]]
                .iter()
                .map(|terms| {
                    let sum = terms.iter().fold(luma.clone(), |acc, t| g.op("Add", &[&acc, t], vec![]));
                    // Negative sums truncate towards 0 where the CPU's shift floors: both clamp to 0.
                    let shifted = div_int(&mut g, &sum, 1 << shift);
                    let low = g.op("Max", &[&shifted, &lo], vec![]);
                    let clamped = g.op("Min", &[&low, &hi], vec![]);
                    unsqueeze(&mut g, &clamped, &[2])
                })
                .collect();
            g.op("Concat", &[&channels[0], &channels[1], &channels[2]], vec![Attr::Int("axis", 2)])
        }
    };
    // Normalised by table: the floats the CPU computes for each 8-bit value.
    let table: Vec<f32> = (0..256).map(|v| (v as f32 - mean) * scale).collect();
    let table = g.floats(&table, &[256]);
    let values = g.op("Gather", &[&table, &rgb], vec![Attr::Int("axis", 0)]);
    let planar = g.op("Transpose", &[&values], vec![Attr::Ints("perm", vec![2, 0, 1])]);
    let (det_w, det_h) = (plan.key.det_w as i64, plan.key.det_h as i64);
    let pads = g.ints(&[0, 0, 0, 0, det_h - h, det_w - w], &[6]);
    let pad_value = g.scalar((0.0 - mean) * scale);
    let padded = g.op("Pad", &[&planar, &pads, &pad_value], vec![]);
    let blob = unsqueeze(&mut g, &padded, &[0]);
    let blob = match out {
        Elem::Float => blob,
        other => g.op("Cast", &[&blob], vec![Attr::Int("to", other as i64)]),
    };
    g.output(&blob, "blob", out, &[Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(det_h), Dim::Fixed(det_w)]);
    g.encode()
}

/// A face region `region [1, h, w, 3]` (8-bit RGB) and `params [WARP_PARAMS]` → the model input
/// `crop [1, 3, size, size]`: crop pixel `(u, v)` samples region position
/// `(a·u + b·v + c, d·u + e·v + f)` bilinearly, rounded to 8 bits, then normalised. The crop side
/// is part of the graph, not a parameter: a size computed on the GPU would have to come back to
/// the host (a synchronisation) before the grid could be made.
pub fn warp_to_crop(out: Elem, size: usize) -> Vec<u8> {
    let mut g = Graph::new("gstdlc_warp_to_crop");
    let region = g.input("region", Elem::Uint8, &[Dim::Fixed(1), Dim::Named("h"), Dim::Named("w"), Dim::Fixed(3)]);
    let params = g.input("params", Elem::Float, &[Dim::Fixed(WARP_PARAMS as i64)]);
    let p: Vec<String> = (0..WARP_PARAMS as i64).map(|i| element(&mut g, &params, i)).collect();
    let positions: Vec<f32> = (0..size).map(|i| i as f32).collect();
    let u = g.floats(&positions, &[1, size as i64]);
    let v = g.floats(&positions, &[size as i64, 1]);
    let px = affine_plane(&mut g, &u, &v, (&p[0], &p[1], &p[2]));
    let py = affine_plane(&mut g, &u, &v, (&p[3], &p[4], &p[5]));
    let (width, height) = (dim(&mut g, &region, 2), dim(&mut g, &region, 1));
    let grid = grid(&mut g, (&px, &py), (&width, &height));
    let image = planar_floats(&mut g, &region);
    let sampled = grid_sample(&mut g, &image, &grid);
    let pixels = round_half_up(&mut g, &sampled);
    let crop = normalise(&mut g, &pixels, (&p[6], &p[7]), out);
    let side = Dim::Fixed(size as i64);
    g.output(&crop, "crop", out, &[Dim::Fixed(1), Dim::Fixed(3), side.clone(), side]);
    g.encode()
}

/// How [`decode`] turns model values into 8-bit values.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Decode {
    /// `floor(clip(255·x, 0, 255))`.
    UnitTruncated,
    /// `floor((clip(y, −1, 1) + 1) · 127.5 + 0.5)`.
    SignedRounded,
}

/// A model output `output [1, 3, O, O]` → `crop [1, 3, O/factor, O/factor]` (float, 8-bit
/// values; box-averaged by `factor` first) and `bad []`, 1 when the output held a non-finite
/// value.
pub fn decode(input: Elem, decode: Decode, factor: i64) -> Vec<u8> {
    let mut g = Graph::new("gstdlc_decode");
    let output = g.input("output", input, &[Dim::Fixed(1), Dim::Fixed(3), Dim::Named("O"), Dim::Named("O")]);
    let mut x = match input {
        Elem::Float => output,
        _ => g.op("Cast", &[&output], vec![Attr::Int("to", Elem::Float as i64)]),
    };
    if factor > 1 {
        let k = vec![factor, factor];
        x = g.op("AveragePool", &[&x], vec![Attr::Ints("kernel_shape", k.clone()), Attr::Ints("strides", k)]);
    }
    let values = match decode {
        Decode::UnitTruncated => {
            let (k, lo, hi) = (g.scalar(255.0), g.scalar(0.0), g.scalar(255.0));
            let scaled = g.op("Mul", &[&x, &k], vec![]);
            let clipped = g.op("Clip", &[&scaled, &lo, &hi], vec![]);
            g.op("Floor", &[&clipped], vec![])
        }
        Decode::SignedRounded => {
            let (lo, hi, one, k) = (g.scalar(-1.0), g.scalar(1.0), g.scalar(1.0), g.scalar(127.5));
            let clipped = g.op("Clip", &[&x, &lo, &hi], vec![]);
            let shifted = g.op("Add", &[&clipped, &one], vec![]);
            let scaled = g.op("Mul", &[&shifted, &k], vec![]);
            round_half_up(&mut g, &scaled)
        }
    };
    g.output(&values, "crop", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(3), Dim::Named("S"), Dim::Named("S")]);
    let nan = g.op("IsNaN", &[&x], vec![]);
    let inf = g.op("IsInf", &[&x], vec![]);
    let either = g.op("Or", &[&nan, &inf], vec![]);
    let flags = g.op("Cast", &[&either], vec![Attr::Int("to", Elem::Float as i64)]);
    let bad = g.op("ReduceMax", &[&flags], vec![Attr::Int("keepdims", 0)]);
    g.output(&bad, "bad", Elem::Float, &[]);
    g.encode()
}

/// `region [1, h, w, 3]` (8-bit RGB), `crop [1, 3, S, S]` (8-bit values), `mask [1, 1, G, G]`,
/// `params [PASTE_PARAMS]` → `pasted [1, h, w, 3]` (8-bit RGB) and `written [1, 1, h, w]`
/// (1 where the weight is above 0). Region pixel `(x, y)` sits at crop position
/// `(u, v) = (a·x + b·y + c, d·x + e·y + f)` and mask position `(u + pad, v + pad)`; its weight
/// is the mask's times the opacity (1 within 1e-6 of 1), and
/// `pasted = floor(w·crop + (1 − w)·region)`.
pub fn paste() -> Vec<u8> {
    let mut g = Graph::new("gstdlc_paste");
    let hw = [Dim::Fixed(1), Dim::Named("h"), Dim::Named("w"), Dim::Fixed(3)];
    let region = g.input("region", Elem::Uint8, &hw);
    let crop = g.input("crop", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(3), Dim::Named("S"), Dim::Named("S")]);
    let mask = g.input("mask", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(1), Dim::Named("G"), Dim::Named("G")]);
    let params = g.input("params", Elem::Float, &[Dim::Fixed(PASTE_PARAMS as i64)]);
    let p: Vec<String> = (0..PASTE_PARAMS as i64).map(|i| element(&mut g, &params, i)).collect();
    let (width, height) = (dim(&mut g, &region, 2), dim(&mut g, &region, 1));
    let xs = range(&mut g, &width);
    let ys = range(&mut g, &height);
    let x = unsqueeze(&mut g, &xs, &[0]);
    let y = unsqueeze(&mut g, &ys, &[1]);
    let u = affine_plane(&mut g, &x, &y, (&p[0], &p[1], &p[2]));
    let v = affine_plane(&mut g, &x, &y, (&p[3], &p[4], &p[5]));
    let crop_grid = grid(&mut g, (&u, &v), (&p[6], &p[6]));
    let um = g.op("Add", &[&u, &p[8]], vec![]);
    let vm = g.op("Add", &[&v, &p[8]], vec![]);
    let mask_grid = grid(&mut g, (&um, &vm), (&p[7], &p[7]));
    let sampled = grid_sample(&mut g, &crop, &crop_grid);
    let fake = round_half_up(&mut g, &sampled);
    let weight = grid_sample(&mut g, &mask, &mask_grid);
    let weight = g.op("Mul", &[&weight, &p[9]], vec![]);
    let (almost, one, zero) = (g.scalar(1.0 - 1e-6), g.scalar(1.0), g.scalar(0.0));
    let full = g.op("GreaterOrEqual", &[&weight, &almost], vec![]);
    let weight = g.op("Where", &[&full, &one, &weight], vec![]);
    let original = planar_floats(&mut g, &region);
    let keep = g.op("Sub", &[&one, &weight], vec![]);
    let new = g.op("Mul", &[&weight, &fake], vec![]);
    let old = g.op("Mul", &[&keep, &original], vec![]);
    let blend = g.op("Add", &[&new, &old], vec![]);
    let (lo, hi) = (g.scalar(0.0), g.scalar(255.0));
    let blend = g.op("Floor", &[&blend], vec![]);
    let blend = g.op("Clip", &[&blend, &lo, &hi], vec![]);
    let bytes = g.op("Cast", &[&blend], vec![Attr::Int("to", Elem::Uint8 as i64)]);
    let pasted = g.op("Transpose", &[&bytes], vec![Attr::Ints("perm", vec![0, 2, 3, 1])]);
    g.output(&pasted, "pasted", Elem::Uint8, &hw);
    let written = g.op("Greater", &[&weight, &zero], vec![]);
    let written = g.op("Cast", &[&written], vec![Attr::Int("to", Elem::Uint8 as i64)]);
    g.output(&written, "written", Elem::Uint8, &[Dim::Fixed(1), Dim::Fixed(1), Dim::Named("h"), Dim::Named("w")]);
    g.encode()
}

/// Model outputs `o0 … oN` of element type `input` and the given fixed shapes → `values [T]`:
/// all of them flattened, widened to float32 and concatenated in order, so that the outputs of a
/// model with many heads (SCRFD has 6 to 15) come back to host memory in one copy.
pub fn gather(input: Elem, shapes: &[Vec<usize>]) -> Vec<u8> {
    let mut g = Graph::new("gstdlc_gather");
    let flat = g.ints(&[-1], &[1]);
    let mut parts = Vec::with_capacity(shapes.len());
    for (i, shape) in shapes.iter().enumerate() {
        let dims: Vec<Dim> = shape.iter().map(|&d| Dim::Fixed(d as i64)).collect();
        let output = g.input(&format!("o{i}"), input, &dims);
        let row = g.op("Reshape", &[&output, &flat], vec![]);
        parts.push(match input {
            Elem::Float => row,
            _ => g.op("Cast", &[&row], vec![Attr::Int("to", Elem::Float as i64)]),
        });
    }
    let total: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let values = g.op("Concat", &parts, vec![Attr::Int("axis", 0)]);
    g.output(&values, "values", Elem::Float, &[Dim::Fixed(total as i64)]);
    g.encode()
}
