// SPDX-License-Identifier: MPL-2.0
//! FaceFusion's occlusion and region masks as ONNX graphs around their models, with the CPU's
//! arithmetic (`vision::masks`): the occluder's input resized from the 8-bit crop with OpenCV's
//! fixed-point bilinear resize (added to the tiles graph, which has the crop's bytes), the
//! parser's input resized from the float crop with OpenCV's float resize, the models' outputs
//! made into crop-sized masks (clip or argmax and region lookup, float resize, softening).
//!
//! The resizes take their taps from `vision::resize` (built into the graph per crop size), so
//! they equal the CPU's value for value; the softening's Gaussian blur is two convolutions with
//! the CPU's kernel and reflect-101 borders, equal to the CPU's loops up to float rounding (the
//! convolution sums its taps in another order).

use super::onnx::{Attr, Dim, Elem, Graph};
use super::pixels::unsqueeze;
use crate::vision::filter::gaussian_kernel;
use crate::vision::masks::{IMAGENET_MEAN, IMAGENET_STD, OCCLUDER_SIZE, PARSER_SIZE, SOFTEN_SIGMA};
use crate::vision::resize::{axis_taps, float_axis_taps};

fn cast(g: &mut Graph, x: &str, to: Elem) -> String {
    g.op("Cast", &[x], vec![Attr::Int("to", to as i64)])
}

fn gather(g: &mut Graph, x: &str, indices: &str, axis: i64) -> String {
    g.op("Gather", &[x, indices], vec![Attr::Int("axis", axis)])
}

/// Adds to `g` the occluder's input made from `pixels`, the `[side, side, 3]` int64 bytes of
/// the crop: resized to 256 × 256 as `vision::resize::resize_rgb8` does (OpenCV's
/// `INTER_LINEAR` in fixed point), BGR, `/ 255`, `[1, 256, 256, 3]` of `out`.
pub(super) fn occluder_input(g: &mut Graph, pixels: &str, side: usize, out: Elem) -> String {
    let n = OCCLUDER_SIZE as i64;
    let mut taps = Vec::new();
    axis_taps(side, OCCLUDER_SIZE, &mut taps);
    let indices = |g: &mut Graph, pick: fn(&crate::vision::resize::Tap) -> i64| {
        let values: Vec<i64> = taps.iter().map(pick).collect();
        g.ints(&values, &[n])
    };
    let (i0, i1) = (indices(g, |t| t.i0 as i64), indices(g, |t| t.i1 as i64));
    let (w0, w1) = (indices(g, |t| t.w0 as i64), indices(g, |t| t.w1 as i64));
    let column = g.ints(&[n, 1], &[2]);
    let (cw0, cw1) = (g.op("Reshape", &[&w0, &column], vec![]), g.op("Reshape", &[&w1, &column], vec![]));
    let plane = g.ints(&[n, 1, 1], &[3]);
    let (rw0, rw1) = (g.op("Reshape", &[&w0, &plane], vec![]), g.op("Reshape", &[&w1, &plane], vec![]));
    let (sixteen, shift16, two, four) =
        (g.ints(&[16], &[]), g.ints(&[1 << 16], &[]), g.ints(&[2], &[]), g.ints(&[4], &[]));
    // The horizontal pass of source row set `rows`: s[i0]·w0 + s[i1]·w1, in 32-bit range.
    let mut vertical_terms = Vec::new();
    for (source_rows, row_weight) in [(&i0, &rw0), (&i1, &rw1)] {
        let lines = gather(g, pixels, source_rows, 0);
        let left = gather(g, &lines, &i0, 1);
        let right = gather(g, &lines, &i1, 1);
        let left = g.op("Mul", &[&left, &cw0], vec![]);
        let right = g.op("Mul", &[&right, &cw1], vec![]);
        let horizontal = g.op("Add", &[&left, &right], vec![]);
        // OpenCV's vertical step: ((a >> 4)·w >> 16) per row.
        let shifted = g.op("Div", &[&horizontal, &sixteen], vec![]);
        let weighted = g.op("Mul", &[&shifted, row_weight], vec![]);
        vertical_terms.push(g.op("Div", &[&weighted, &shift16], vec![]));
    }
    let sum = g.op("Add", &[&vertical_terms[0], &vertical_terms[1]], vec![]);
    let sum = g.op("Add", &[&sum, &two], vec![]);
    let bytes = g.op("Div", &[&sum, &four], vec![]);
    let (lo, hi) = (g.ints(&[0], &[]), g.ints(&[255], &[]));
    let bytes = g.op("Max", &[&bytes, &lo], vec![]);
    let bytes = g.op("Min", &[&bytes, &hi], vec![]);
    let bgr = g.ints(&[2, 1, 0], &[3]);
    let bgr = gather(g, &bytes, &bgr, 2);
    let values = cast(g, &bgr, Elem::Float);
    let scale = g.scalar(255.0);
    let values = g.op("Div", &[&values, &scale], vec![]);
    let values = match out {
        Elem::Float => values,
        other => cast(g, &values, other),
    };
    unsqueeze(g, &values, &[0])
}

/// `cv2.resize(INTER_LINEAR)` of float planes `src` (`[…, src, src]`, the last two axes at
/// `axes`) to `dst × dst`, as `vision::resize::resize_f32` computes it: the two source rows'
/// horizontal passes, then their weighted sum.
fn resize_float(g: &mut Graph, src: &str, src_side: usize, dst_side: usize, axes: (i64, i64)) -> String {
    let taps = float_axis_taps(src_side, dst_side);
    let n = dst_side as i64;
    let i0: Vec<i64> = taps.iter().map(|t| t.i0 as i64).collect();
    let i1: Vec<i64> = taps.iter().map(|t| t.i1 as i64).collect();
    let w0: Vec<f32> = taps.iter().map(|t| t.w0).collect();
    let w1: Vec<f32> = taps.iter().map(|t| t.w1).collect();
    let (i0, i1) = (g.ints(&i0, &[n]), g.ints(&i1, &[n]));
    let (cw0, cw1) = (g.floats(&w0, &[n]), g.floats(&w1, &[n]));
    let (rw0, rw1) = (g.floats(&w0, &[n, 1]), g.floats(&w1, &[n, 1]));
    let mut rows = Vec::new();
    for source_rows in [&i0, &i1] {
        let lines = gather(g, src, source_rows, axes.0);
        let left = gather(g, &lines, &i0, axes.1);
        let right = gather(g, &lines, &i1, axes.1);
        let left = g.op("Mul", &[&left, &cw0], vec![]);
        let right = g.op("Mul", &[&right, &cw1], vec![]);
        rows.push(g.op("Add", &[&left, &right], vec![]));
    }
    let top = g.op("Mul", &[&rows[0], &rw0], vec![]);
    let bottom = g.op("Mul", &[&rows[1], &rw1], vec![]);
    g.op("Add", &[&top, &bottom], vec![])
}

/// `vision::masks::soften_with` of the `[side, side]` float plane `mask` → `[1, 1, side, side]`:
/// clipped to [0, 1], blurred (σ 5, OpenCV's kernel, reflect-101 borders), `(clip(·, ½, 1) − ½)·2`.
fn soften(g: &mut Graph, mask: &str) -> String {
    let (zero, one) = (g.scalar(0.0), g.scalar(1.0));
    let clipped = g.op("Clip", &[mask, &zero, &one], vec![]);
    let image = unsqueeze(g, &clipped, &[0, 1]);
    let kernel = gaussian_kernel(0, SOFTEN_SIGMA);
    let (n, r) = (kernel.len() as i64, (kernel.len() / 2) as i64);
    let mut blurred = image;
    for (pads, dims) in [([0, 0, 0, r, 0, 0, 0, r], [1, 1, 1, n]), ([0, 0, r, 0, 0, 0, r, 0], [1, 1, n, 1])] {
        let pads = g.ints(&pads, &[8]);
        let padded = g.op("Pad", &[&blurred, &pads], vec![Attr::Str("mode", "reflect")]);
        let weights = g.floats(&kernel, &dims);
        blurred = g.op("Conv", &[&padded, &weights], vec![]);
    }
    let (half, two) = (g.scalar(0.5), g.scalar(2.0));
    let upper = g.op("Clip", &[&blurred, &half, &one], vec![]);
    let centred = g.op("Sub", &[&upper, &half], vec![]);
    g.op("Mul", &[&centred, &two], vec![])
}

fn mask_dims(side: usize) -> [Dim; 4] {
    let s = Dim::Fixed(side as i64);
    [Dim::Fixed(1), Dim::Fixed(1), s.clone(), s]
}

/// The occluder's output `output` (`[1, 256, 256, 1]` or `[1, 256, 256]` of `input`, by `rank`)
/// → `mask [1, 1, side, side]`: clipped, resized to the crop, softened
/// (`vision::masks::occlusion_from_output`).
pub fn occlusion_mask(side: usize, rank: usize, input: Elem) -> Vec<u8> {
    let mut g = Graph::new("gstdlc_occlusion_mask");
    let n = OCCLUDER_SIZE as i64;
    let dims: Vec<Dim> = [1, n, n, 1].iter().take(rank).map(|&d| Dim::Fixed(d)).collect();
    let output = g.input("output", input, &dims);
    let plane = g.ints(&[n, n], &[2]);
    let mut values = g.op("Reshape", &[&output, &plane], vec![]);
    if input != Elem::Float {
        values = cast(&mut g, &values, Elem::Float);
    }
    let (zero, one) = (g.scalar(0.0), g.scalar(1.0));
    let clipped = g.op("Clip", &[&values, &zero, &one], vec![]);
    let resized = resize_float(&mut g, &clipped, OCCLUDER_SIZE, side, (0, 1));
    let mask = soften(&mut g, &resized);
    g.output(&mask, "mask", Elem::Float, &mask_dims(side));
    g.encode()
}

/// The swapped float crop `crop [1, 3, side, side]` → the parser's input `input [1, 3, 512,
/// 512]` of `out`: resized, `(x / 255 − mean) / std` per channel (`vision::masks::parser_input`).
pub fn parser_input(side: usize, out: Elem) -> Vec<u8> {
    let mut g = Graph::new("gstdlc_parser_input");
    let s = Dim::Fixed(side as i64);
    let crop = g.input("crop", Elem::Float, &[Dim::Fixed(1), Dim::Fixed(3), s.clone(), s]);
    let planes = g.ints(&[3, side as i64, side as i64], &[3]);
    let planes = g.op("Reshape", &[&crop, &planes], vec![]);
    let resized = resize_float(&mut g, &planes, side, PARSER_SIZE, (1, 2));
    let scale = g.scalar(255.0);
    let unit = g.op("Div", &[&resized, &scale], vec![]);
    let (mean, std) = (g.floats(&IMAGENET_MEAN, &[3, 1, 1]), g.floats(&IMAGENET_STD, &[3, 1, 1]));
    let centred = g.op("Sub", &[&unit, &mean], vec![]);
    let values = g.op("Div", &[&centred, &std], vec![]);
    let values = unsqueeze(&mut g, &values, &[0]);
    let values = match out {
        Elem::Float => values,
        other => cast(&mut g, &values, other),
    };
    let p = Dim::Fixed(PARSER_SIZE as i64);
    g.output(&values, "input", out, &[Dim::Fixed(1), Dim::Fixed(3), p.clone(), p]);
    g.encode()
}

/// The parser's logits `logits [1, classes, 512, 512]` of `input` → `mask [1, 1, side, side]`:
/// 1 where the most likely class (the first of equals) has `selected[class]` 1, resized to the
/// crop, softened (`vision::masks::region_from_logits`).
pub fn region_mask(side: usize, selected: &[f32], input: Elem) -> Vec<u8> {
    let mut g = Graph::new("gstdlc_region_mask");
    let p = Dim::Fixed(PARSER_SIZE as i64);
    let classes = Dim::Fixed(selected.len() as i64);
    let mut logits = g.input("logits", input, &[Dim::Fixed(1), classes, p.clone(), p]);
    if input != Elem::Float {
        // Widening keeps the order of the values (and ONNX Runtime's CPU ArgMax takes no float16).
        logits = cast(&mut g, &logits, Elem::Float);
    }
    let best = g.op(
        "ArgMax",
        &[&logits],
        vec![Attr::Int("axis", 1), Attr::Int("keepdims", 0), Attr::Int("select_last_index", 0)],
    );
    let table = g.floats(selected, &[selected.len() as i64]);
    let inside = gather(&mut g, &table, &best, 0);
    let plane = g.ints(&[PARSER_SIZE as i64, PARSER_SIZE as i64], &[2]);
    let inside = g.op("Reshape", &[&inside, &plane], vec![]);
    let resized = resize_float(&mut g, &inside, PARSER_SIZE, side, (0, 1));
    let mask = soften(&mut g, &resized);
    g.output(&mask, "mask", Elem::Float, &mask_dims(side));
    g.encode()
}
