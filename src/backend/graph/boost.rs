// SPDX-License-Identifier: MPL-2.0
//! FaceFusion's pixel steps as ONNX graphs, with the CPU's numerics: the crop warped at the
//! pixel-boost size with the frame's edge replicated and split straight into the swapper's
//! normalised tiles ([`tiles_in`]), the swapped tiles put back into one float crop
//! ([`tiles_out`]), and the float paste-back through the per-pixel minimum of the masks
//! ([`float_paste`]).
//!
//! The sampling positions are the CPU's fixed-point positions (16 fractional bits, see
//! `vision::sample`), computed in int64 from per-row starts and a per-column step that the host
//! computes as the CPU loops do: the warp then takes the CPU's 8-bit integer interpolation
//! (`Tap::lerp_u8`), and the paste its float32 interpolation and float64 blend, so that both
//! backends agree value for value on ONNX Runtime's CPU provider.

use super::face_masks;
use super::onnx::{Attr, Dim, Elem, Graph};
use super::pixels::{element, unsqueeze};
use crate::vision::masks::OCCLUDER_SIZE;

/// Parameters of [`tiles_in`]: the column steps of the two fixed-point positions, then the
/// lowest and highest region column and row a tap may read (the frame's edges).
pub const TILES_PARAMS: usize = 6;
/// Parameters of [`float_paste`]: the column steps of the two fixed-point positions, the region
/// column the row starts belong to, then the paste area in region coordinates (x0, x1, y0, y1).
pub const PASTE_PARAMS: usize = 7;

/// An offset that makes every fixed-point position non-negative (positions are clamped to
/// ±2⁴⁰, region offsets are far smaller), so that integer division floors; a multiple of 2¹⁶.
const POSITIVE: i64 = 1 << 42;
const ONE: i64 = 1 << 16;

/// Dimension `i` of `tensor`'s shape, as an int64 scalar.
fn dim_int(g: &mut Graph, tensor: &str, i: i64) -> String {
    let shape = g.op("Shape", &[tensor], vec![]);
    let index = g.ints(&[i], &[]);
    g.op("Gather", &[&shape, &index], vec![Attr::Int("axis", 0)])
}

fn cast(g: &mut Graph, x: &str, to: Elem) -> String {
    g.op("Cast", &[x], vec![Attr::Int("to", to as i64)])
}

fn clamp_int(g: &mut Graph, x: &str, lo: &str, hi: &str) -> String {
    let low = g.op("Max", &[x, lo], vec![]);
    g.op("Min", &[&low, hi], vec![])
}

/// Splits fixed-point positions into the pixel (floored) and the 16-bit fraction.
fn split_fixed(g: &mut Graph, q: &str) -> (String, String) {
    let (positive, one) = (g.ints(&[POSITIVE], &[]), g.ints(&[ONE], &[]));
    let shifted = g.op("Add", &[q, &positive], vec![]);
    let whole = g.op("Div", &[&shifted, &one], vec![]);
    let back = g.op("Mul", &[&whole, &one], vec![]);
    let fraction = g.op("Sub", &[&shifted, &back], vec![]);
    let offset = g.ints(&[POSITIVE / ONE], &[]);
    let pixel = g.op("Sub", &[&whole, &offset], vec![]);
    (pixel, fraction)
}

/// The `[rows, cols]` fixed-point positions `start[row] + (col − col0) · step`, with `starts` a
/// `[rows]` vector and `cols` a `[1, cols]` row of column offsets.
fn positions(g: &mut Graph, starts: &str, cols: &str, step: &str) -> String {
    let column = unsqueeze(g, starts, &[1]);
    let along = g.op("Mul", &[cols, step], vec![]);
    g.op("Add", &[&column, &along], vec![])
}

/// Row `i` of a `[2, n]` int64 matrix.
fn row(g: &mut Graph, matrix: &str, i: i64) -> String {
    let index = g.ints(&[i], &[]);
    g.op("Gather", &[matrix, &index], vec![Attr::Int("axis", 0)])
}

/// `a·(1 − f) + b·f`, the CPU's float interpolation step.
fn lerp(g: &mut Graph, a: &str, b: &str, f: &str, one_minus_f: &str) -> String {
    let left = g.op("Mul", &[a, one_minus_f], vec![]);
    let right = g.op("Mul", &[b, f], vec![]);
    g.op("Add", &[&left, &right], vec![])
}

/// A face region `region [1, h, w, 3]` (8-bit RGB), the fixed-point row starts
/// `rows [2, side]` (x then y, in region coordinates) and `params [TILES_PARAMS]` → the swapper's
/// input: the `side`-pixel crop (`side = size · factor`) sampled as `vision::warp`'s replicate
/// warp does, split into `factor²` polyphase tiles (`vision::boost::implode`'s order), each value
/// `table[c][v]` (the family's normalisation of byte `v` in channel `c`, computed on the host as
/// `models::swapper::tiles::prepare` does). Outputs `tiles [factor², 3, size, size]` when
/// `batched`, else `tile0 … tile{factor²−1}` `[1, 3, size, size]`; and `crop [1, side, side, 3]`
/// (the 8-bit crop, for a mask made on the host); with `occluder`, also `occluder [1, 256, 256,
/// 3]` of that type, the occluder's input made from the crop (see [`face_masks::occluder_input`]).
pub fn tiles_in(
    size: usize,
    factor: usize,
    table: &[f32; 768],
    batched: bool,
    out: Elem,
    occluder: Option<Elem>,
) -> Vec<u8> {
    let side = size * factor;
    let (s, t, b) = (size as i64, factor as i64, side as i64);
    let mut g = Graph::new("gstdlc_boost_tiles_in");
    let region = g.input("region", Elem::Uint8, &[Dim::Fixed(1), Dim::Named("h"), Dim::Named("w"), Dim::Fixed(3)]);
    let rows = g.input("rows", Elem::Int64, &[Dim::Fixed(2), Dim::Fixed(b)]);
    let params = g.input("params", Elem::Int64, &[Dim::Fixed(TILES_PARAMS as i64)]);
    let p: Vec<String> = (0..TILES_PARAMS as i64).map(|i| element(&mut g, &params, i)).collect();
    let columns: Vec<i64> = (0..b).collect();
    let cols = g.ints(&columns, &[1, b]);
    let (start_x, start_y) = (row(&mut g, &rows, 0), row(&mut g, &rows, 1));
    let xq = positions(&mut g, &start_x, &cols, &p[0]);
    let yq = positions(&mut g, &start_y, &cols, &p[1]);
    let (x0, fx) = split_fixed(&mut g, &xq);
    let (y0, fy) = split_fixed(&mut g, &yq);
    let one = g.ints(&[1], &[]);
    let x1 = g.op("Add", &[&x0, &one], vec![]);
    let y1 = g.op("Add", &[&y0, &one], vec![]);
    let xs = [clamp_int(&mut g, &x0, &p[2], &p[3]), clamp_int(&mut g, &x1, &p[2], &p[3])];
    let ys = [clamp_int(&mut g, &y0, &p[4], &p[5]), clamp_int(&mut g, &y1, &p[4], &p[5])];
    let width = dim_int(&mut g, &region, 2);
    let flat_shape = g.ints(&[-1, 3], &[2]);
    let flat = g.op("Reshape", &[&region, &flat_shape], vec![]);
    let row_starts: Vec<String> = ys.iter().map(|y| g.op("Mul", &[y, &width], vec![])).collect();
    let mut corner = |k: usize, x: &str| {
        let index = g.op("Add", &[&row_starts[k], x], vec![]);
        let bytes = g.op("Gather", &[&flat, &index], vec![Attr::Int("axis", 0)]);
        cast(&mut g, &bytes, Elem::Int64)
    };
    let (p00, p01) = (corner(0, &xs[0]), corner(0, &xs[1]));
    let (p10, p11) = (corner(1, &xs[0]), corner(1, &xs[1]));
    // Tap::lerp_u8: 8-bit fractions, integer weights, rounded.
    let eighth = g.ints(&[1 << 8], &[]);
    let ix = g.op("Div", &[&fx, &eighth], vec![]);
    let iy = g.op("Div", &[&fy, &eighth], vec![]);
    let ix = unsqueeze(&mut g, &ix, &[2]);
    let iy = unsqueeze(&mut g, &iy, &[2]);
    let full = g.ints(&[256], &[]);
    let rest_x = g.op("Sub", &[&full, &ix], vec![]);
    let rest_y = g.op("Sub", &[&full, &iy], vec![]);
    let top = lerp(&mut g, &p00, &p01, &ix, &rest_x);
    let bottom = lerp(&mut g, &p10, &p11, &ix, &rest_x);
    let both = lerp(&mut g, &top, &bottom, &iy, &rest_y);
    let (half, scale) = (g.ints(&[1 << 15], &[]), g.ints(&[1 << 16], &[]));
    let rounded = g.op("Add", &[&both, &half], vec![]);
    let pixels = g.op("Div", &[&rounded, &scale], vec![]);
    // The 8-bit crop, for the host.
    let bytes = cast(&mut g, &pixels, Elem::Uint8);
    let crop = unsqueeze(&mut g, &bytes, &[0]);
    g.output(&crop, "crop", Elem::Uint8, &[Dim::Fixed(1), Dim::Fixed(b), Dim::Fixed(b), Dim::Fixed(3)]);
    if let Some(elem) = occluder {
        let input = face_masks::occluder_input(&mut g, &pixels, side, elem);
        let n = Dim::Fixed(OCCLUDER_SIZE as i64);
        g.output(&input, "occluder", elem, &[Dim::Fixed(1), n.clone(), n, Dim::Fixed(3)]);
    }
    // Normalised by table, channel c's entries at 256·c.
    let channel_base = g.ints(&[0, 256, 512], &[3]);
    let index = g.op("Add", &[&pixels, &channel_base], vec![]);
    let table = g.floats(table, &[768]);
    let values = g.op("Gather", &[&table, &index], vec![Attr::Int("axis", 0)]);
    // crop[y·T + i, x·T + j] → tile i·T + j, pixel (x, y).
    let phases = g.ints(&[s, t, s, t, 3], &[5]);
    let phases = g.op("Reshape", &[&values, &phases], vec![]);
    let tiles = g.op("Transpose", &[&phases], vec![Attr::Ints("perm", vec![1, 3, 4, 0, 2])]);
    let shape = g.ints(&[t * t, 3, s, s], &[4]);
    let tiles = g.op("Reshape", &[&tiles, &shape], vec![]);
    let tiles = match out {
        Elem::Float => tiles,
        other => cast(&mut g, &tiles, other),
    };
    if batched {
        g.output(&tiles, "tiles", out, &[Dim::Fixed(t * t), Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)]);
    } else {
        let names: Vec<String> = (0..t * t).map(|k| format!("tile{k}")).collect();
        let outputs: Vec<&str> = names.iter().map(String::as_str).collect();
        if outputs.len() == 1 {
            g.output(&tiles, outputs[0], out, &[Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)]);
        } else {
            g.node_multi("Split", &[&tiles], &outputs, vec![Attr::Int("axis", 0)]);
            for name in outputs {
                g.declare_output(name, out, &[Dim::Fixed(1), Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)]);
            }
        }
    }
    g.encode()
}

/// How the swapper's output values become crop values in [0, 255] (FaceFusion's
/// `normalize_crop_frame`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TilesOutput {
    /// `clip(y, 0, 1) · 255` in float32.
    Unit,
    /// `clip(y · std + mean, 0, 1) · 255` in float64, per channel (the bits of std and mean).
    Denormalized { std: [u64; 3], mean: [u64; 3] },
}

/// The swapper's outputs `o0 … o{n−1}` (`[batch_k, 3, size, size]` each, `factor²` tiles in all,
/// in tile order) → `crop [1, 3, side, side]`, float values in [0, 255], not rounded: the tiles
/// converted as `output` says and put back as `vision::boost::explode` does.
pub fn tiles_out(size: usize, factor: usize, batches: &[usize], input: Elem, output: TilesOutput) -> Vec<u8> {
    let (s, t) = (size as i64, factor as i64);
    let mut g = Graph::new("gstdlc_boost_tiles_out");
    let mut parts = Vec::with_capacity(batches.len());
    for (k, &batch) in batches.iter().enumerate() {
        let dims = [Dim::Fixed(batch as i64), Dim::Fixed(3), Dim::Fixed(s), Dim::Fixed(s)];
        parts.push(g.input(&format!("o{k}"), input, &dims));
    }
    let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
    let mut x =
        if parts.len() == 1 { parts[0].to_string() } else { g.op("Concat", &parts, vec![Attr::Int("axis", 0)]) };
    if input != Elem::Float {
        x = cast(&mut g, &x, Elem::Float);
    }
    let values = match output {
        TilesOutput::Unit => {
            let (lo, hi, k) = (g.scalar(0.0), g.scalar(1.0), g.scalar(255.0));
            let clipped = g.op("Clip", &[&x, &lo, &hi], vec![]);
            g.op("Mul", &[&clipped, &k], vec![])
        }
        TilesOutput::Denormalized { std, mean } => {
            let wide = cast(&mut g, &x, Elem::Double);
            let std = g.doubles(&std.map(f64::from_bits), &[1, 3, 1, 1]);
            let mean = g.doubles(&mean.map(f64::from_bits), &[1, 3, 1, 1]);
            let scaled = g.op("Mul", &[&wide, &std], vec![]);
            let shifted = g.op("Add", &[&scaled, &mean], vec![]);
            let (lo, hi, k) = (g.doubles(&[0.0], &[]), g.doubles(&[1.0], &[]), g.doubles(&[255.0], &[]));
            let low = g.op("Max", &[&shifted, &lo], vec![]);
            let clipped = g.op("Min", &[&low, &hi], vec![]);
            let bytes = g.op("Mul", &[&clipped, &k], vec![]);
            cast(&mut g, &bytes, Elem::Float)
        }
    };
    // Tile i·T + j, pixel (x, y) → crop (x·T + j, y·T + i): axes (i, j, c, y, x) → (c, y, i, x, j).
    let phases = g.ints(&[t, t, 3, s, s], &[5]);
    let phases = g.op("Reshape", &[&values, &phases], vec![]);
    let planar = g.op("Transpose", &[&phases], vec![Attr::Ints("perm", vec![2, 3, 0, 4, 1])]);
    let shape = g.ints(&[1, 3, s * t, s * t], &[4]);
    let crop = g.op("Reshape", &[&planar, &shape], vec![]);
    let b = Dim::Fixed(s * t);
    g.output(&crop, "crop", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(3), b.clone(), b]);
    g.encode()
}

/// `region [1, h, w, 3]` (8-bit RGB), `crop [1, 3, S, S]` (float values), `masks` inputs
/// `mask0 … mask{masks−1}` `[1, 1, S, S]`, the fixed-point row starts `rows [2, h]` (u then v,
/// for region column `params[2]`), `params [PASTE_PARAMS]` and `opacity [1]` → `pasted
/// [1, h, w, 3]` and `weights [h, w]`: `vision::float_paste::paste_float` over the paste area
/// (weight `clip(min(masks), 0, 1) · opacity` sampled bilinearly with zero outside the crop, then
/// clipped; colour sampled bilinearly with the crop's edge replicated; `frame·(1 − w) + crop·w`
/// in float64, truncated; pixels of weight 0 keep their bytes), and `bad []`, 1 when the crop
/// holds a non-finite value or a mask a NaN.
pub fn float_paste(masks: usize) -> Vec<u8> {
    let mut g = Graph::new("gstdlc_float_paste");
    let hw = [Dim::Fixed(1), Dim::Named("h"), Dim::Named("w"), Dim::Fixed(3)];
    let region = g.input("region", Elem::Uint8, &hw);
    let crop = g.input("crop", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(3), Dim::Named("S"), Dim::Named("S")]);
    let mask_names: Vec<String> = (0..masks)
        .map(|k| {
            let dims = [Dim::Fixed(1), Dim::Fixed(1), Dim::Named("S"), Dim::Named("S")];
            g.input(&format!("mask{k}"), Elem::Float, &dims)
        })
        .collect();
    let rows = g.input("rows", Elem::Int64, &[Dim::Fixed(2), Dim::Named("h")]);
    let params = g.input("params", Elem::Int64, &[Dim::Fixed(PASTE_PARAMS as i64)]);
    let opacity = g.input("opacity", Elem::Float, &[Dim::Fixed(1)]);
    let p: Vec<String> = (0..PASTE_PARAMS as i64).map(|i| element(&mut g, &params, i)).collect();
    // The combined weights over the crop: min, clip, opacity (as the face layer does on the CPU).
    let names: Vec<&str> = mask_names.iter().map(String::as_str).collect();
    let combined = if names.len() == 1 { names[0].to_string() } else { g.op("Min", &names, vec![]) };
    let (zero, one) = (g.scalar(0.0), g.scalar(1.0));
    let combined = g.op("Clip", &[&combined, &zero, &one], vec![]);
    let combined = g.op("Mul", &[&combined, &opacity], vec![]);
    let flat = g.ints(&[-1], &[1]);
    let weights_flat = g.op("Reshape", &[&combined, &flat], vec![]);
    let planes = g.ints(&[3, -1], &[2]);
    let colours_flat = g.op("Reshape", &[&crop, &planes], vec![]);
    // Positions.
    let (height, width) = (dim_int(&mut g, &region, 1), dim_int(&mut g, &region, 2));
    let (zero_i, one_i) = (g.ints(&[0], &[]), g.ints(&[1], &[]));
    let columns = g.op("Range", &[&zero_i, &width, &one_i], vec![]);
    let lines = g.op("Range", &[&zero_i, &height, &one_i], vec![]);
    let offsets = g.op("Sub", &[&columns, &p[2]], vec![]);
    let offsets = unsqueeze(&mut g, &offsets, &[0]);
    let (start_u, start_v) = (row(&mut g, &rows, 0), row(&mut g, &rows, 1));
    let uq = positions(&mut g, &start_u, &offsets, &p[0]);
    let vq = positions(&mut g, &start_v, &offsets, &p[1]);
    let (u0, fu) = split_fixed(&mut g, &uq);
    let (v0, fv) = split_fixed(&mut g, &vq);
    let u1 = g.op("Add", &[&u0, &one_i], vec![]);
    let v1 = g.op("Add", &[&v0, &one_i], vec![]);
    let side = dim_int(&mut g, &crop, 3);
    let last = g.op("Sub", &[&side, &one_i], vec![]);
    let to_unit = g.scalar(1.0 / ONE as f32);
    let fu = cast(&mut g, &fu, Elem::Float);
    let fu = g.op("Mul", &[&fu, &to_unit], vec![]);
    let fv = cast(&mut g, &fv, Elem::Float);
    let fv = g.op("Mul", &[&fv, &to_unit], vec![]);
    let rest_u = g.op("Sub", &[&one, &fu], vec![]);
    let rest_v = g.op("Sub", &[&one, &fv], vec![]);
    let us = [u0, u1];
    let vs = [v0, v1];
    let clamped_u = [clamp_int(&mut g, &us[0], &zero_i, &last), clamp_int(&mut g, &us[1], &zero_i, &last)];
    let clamped_v = [clamp_int(&mut g, &vs[0], &zero_i, &last), clamp_int(&mut g, &vs[1], &zero_i, &last)];
    // The four taps' indices into the crop (rows v0, v1 × columns u0, u1), computed once for the
    // weights and the colours, and whether each tap lies inside the crop.
    let rows_at: Vec<String> = clamped_v.iter().map(|v| g.op("Mul", &[v, &side], vec![])).collect();
    let at: Vec<Vec<String>> =
        rows_at.iter().map(|r| clamped_u.iter().map(|u| g.op("Add", &[r, u], vec![])).collect()).collect();
    let inside_u: Vec<String> = (0..2).map(|l| g.op("Equal", &[&us[l], &clamped_u[l]], vec![])).collect();
    let inside_v: Vec<String> = (0..2).map(|k| g.op("Equal", &[&vs[k], &clamped_v[k]], vec![])).collect();
    // Weights: zero outside the crop.
    let weight_at = |g: &mut Graph, k: usize, l: usize| {
        let value = g.op("Gather", &[&weights_flat, &at[k][l]], vec![Attr::Int("axis", 0)]);
        let inside = g.op("And", &[&inside_u[l], &inside_v[k]], vec![]);
        g.op("Where", &[&inside, &value, &zero], vec![])
    };
    let (w00, w01) = (weight_at(&mut g, 0, 0), weight_at(&mut g, 0, 1));
    let (w10, w11) = (weight_at(&mut g, 1, 0), weight_at(&mut g, 1, 1));
    let top = lerp(&mut g, &w00, &w01, &fu, &rest_u);
    let bottom = lerp(&mut g, &w10, &w11, &fu, &rest_u);
    let weight = lerp(&mut g, &top, &bottom, &fv, &rest_v);
    let weight = g.op("Clip", &[&weight, &zero, &one], vec![]);
    // Only the paste area.
    let in_columns = within(&mut g, &columns, &p[3], &p[4]);
    let in_columns = unsqueeze(&mut g, &in_columns, &[0]);
    let in_lines = within(&mut g, &lines, &p[5], &p[6]);
    let in_lines = unsqueeze(&mut g, &in_lines, &[1]);
    let in_area = g.op("And", &[&in_lines, &in_columns], vec![]);
    let weight = g.op("Where", &[&in_area, &weight, &zero], vec![]);
    let written = g.op("Greater", &[&weight, &zero], vec![]);
    let weight = g.op("Where", &[&written, &weight, &zero], vec![]);
    // Colours: the edge replicated.
    let colour_at =
        |g: &mut Graph, k: usize, l: usize| g.op("Gather", &[&colours_flat, &at[k][l]], vec![Attr::Int("axis", 1)]);
    let (c00, c01) = (colour_at(&mut g, 0, 0), colour_at(&mut g, 0, 1));
    let (c10, c11) = (colour_at(&mut g, 1, 0), colour_at(&mut g, 1, 1));
    let top = lerp(&mut g, &c00, &c01, &fu, &rest_u);
    let bottom = lerp(&mut g, &c10, &c11, &fu, &rest_u);
    let colour = lerp(&mut g, &top, &bottom, &fv, &rest_v);
    // The blend in float64, truncated.
    let original = cast(&mut g, &region, Elem::Double);
    let original = g.op("Transpose", &[&original], vec![Attr::Ints("perm", vec![0, 3, 1, 2])]);
    let colour = cast(&mut g, &colour, Elem::Double);
    let colour = unsqueeze(&mut g, &colour, &[0]);
    let w64 = cast(&mut g, &weight, Elem::Double);
    let one64 = g.doubles(&[1.0], &[]);
    let keep = g.op("Sub", &[&one64, &w64], vec![]);
    let blend = lerp(&mut g, &original, &colour, &w64, &keep);
    // Weight 0 gives `frame·1 + crop·0`: the frame's own value (the crop is finite, see `bad`).
    let blend = g.op("Floor", &[&blend], vec![]);
    let bytes = cast(&mut g, &blend, Elem::Uint8);
    let pasted = g.op("Transpose", &[&bytes], vec![Attr::Ints("perm", vec![0, 2, 3, 1])]);
    g.output(&pasted, "pasted", Elem::Uint8, &hw);
    g.output(&weight, "weights", Elem::Float, &[Dim::Named("h"), Dim::Named("w")]);
    let nan = g.op("IsNaN", &[&crop], vec![]);
    let inf = g.op("IsInf", &[&crop], vec![]);
    let either = g.op("Or", &[&nan, &inf], vec![]);
    let flags = cast(&mut g, &either, Elem::Float);
    let mut bad = g.op("ReduceMax", &[&flags], vec![Attr::Int("keepdims", 0)]);
    // A mask made from a model's output (the occluder's) holding NaN: the CPU path refuses such
    // an output before it makes the mask, and leaves the face as it is. A NaN anywhere makes the
    // mask's sum NaN: one reduction per mask, no mask-sized temporaries.
    for mask in &mask_names {
        let sum = g.op("ReduceSum", &[mask], vec![Attr::Int("keepdims", 0)]);
        let nan = g.op("IsNaN", &[&sum], vec![]);
        let flag = cast(&mut g, &nan, Elem::Float);
        bad = g.op("Max", &[&bad, &flag], vec![]);
    }
    g.output(&bad, "bad", Elem::Float, &[]);
    g.encode()
}

/// `lo ≤ x < hi`, elementwise.
fn within(g: &mut Graph, x: &str, lo: &str, hi: &str) -> String {
    let above = g.op("GreaterOrEqual", &[x, lo], vec![]);
    let below = g.op("Less", &[x, hi], vec![]);
    g.op("And", &[&above, &below], vec![])
}
