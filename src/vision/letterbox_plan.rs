// SPDX-License-Identifier: MPL-2.0
//! The detector's letterbox as a plan for a device that computes it (the graph backend on a GPU),
//! so that the CPU only copies the source rows the resize reads instead of resizing.
//!
//! [`LetterboxPlan`] holds, for one frame layout and detector size, every index and weight of the
//! resize in [`super::letterbox`]: which rows of each plane are read, and for each output sample
//! its two source samples and 11-bit weights along each axis. With them a device computes exactly
//! the integer arithmetic of the CPU letterbox (horizontal pass in 32 bits, OpenCV's truncating
//! vertical step, the YUV tables), so the detector gets the same bytes and the boxes do not move.
//! [`LetterboxPlan::stage`] copies the rows the plan reads into one buffer: for 1080p into 640
//! that is the 360 rows a third of the frame's lie on (a third of the bytes; the copy is a
//! `memcpy` per row), for 720p every row.

use super::frame::{FrameView, PixelFormat};
use super::letterbox::letterbox_size;
use super::resize::{Tap, axis_taps};
use super::yuv::{FIX, YuvCoeffs, YuvMatrix};

/// What a plan was made for: a plan is reused while frames have these.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PlanKey {
    pub format: PixelFormat,
    pub width: usize,
    pub height: usize,
    pub matrix: YuvMatrix,
    pub full_range: bool,
    pub det_w: usize,
    pub det_h: usize,
}

impl PlanKey {
    pub fn of(frame: &FrameView, det_w: usize, det_h: usize) -> PlanKey {
        PlanKey {
            format: frame.format,
            width: frame.width,
            height: frame.height,
            matrix: frame.matrix,
            full_range: frame.full_range,
            det_w,
            det_h,
        }
    }
}

/// Components of one plane resized together (R, G, B of a packed frame; Y; U and V of a
/// semi-planar one; …), their samples interleaved in the output: output sample `x·k + s` is
/// component `s` of output pixel `x`, for `k` components.
#[derive(Clone, Debug, PartialEq)]
pub struct SampleGroup {
    /// The frame plane the components lie in.
    pub plane: usize,
    /// Bytes of each staged row (the part of a plane row the components occupy).
    pub row_len: usize,
    /// Where the group's staged rows start in the staging buffer, and the plane rows they are.
    pub start: usize,
    pub source_rows: Vec<usize>,
    /// Components in the group (`k`).
    pub components: usize,
    /// Per output sample (`new_w · k`): the byte of its first and second source sample within a
    /// staged row, and their weights.
    pub cols: [Vec<i64>; 2],
    pub col_weights: [Vec<i32>; 2],
    /// Per output row (`new_h`): the staged rows (indices into `source_rows`) of its first and
    /// second source row, and their weights.
    pub rows: [Vec<i64>; 2],
    pub row_weights: [Vec<i32>; 2],
}

/// How the resized components become RGB.
#[derive(Clone, Debug, PartialEq)]
pub enum PlanColour {
    /// The one group holds R, G and B.
    Rgb,
    /// Y, U and V, each `(group, component)`, converted by the CPU's tables: with
    /// `l = luma[Y]`, R = `l + r_v[V]`, G = `l + g_u[U] + g_v[V]`, B = `l + b_u[U]`, each shifted
    /// right by `shift` and clamped to 0..=255.
    Yuv { y: (usize, usize), u: (usize, usize), v: (usize, usize), tables: Box<YuvTables>, shift: u32 },
}

/// The YUV → RGB lookup tables in fixed point: `luma`, `r_v`, `g_u`, `g_v`, `b_u`.
pub type YuvTables = [[i32; 256]; 5];

/// The letterbox of frames with one [`PlanKey`], as indices and weights (see the module text).
#[derive(Clone, Debug, PartialEq)]
pub struct LetterboxPlan {
    pub key: PlanKey,
    /// The resized frame's size, at the top-left of the `det_w × det_h` input (zero padding).
    pub new_w: usize,
    pub new_h: usize,
    pub det_scale: f32,
    pub groups: Vec<SampleGroup>,
    pub colour: PlanColour,
    /// Bytes [`LetterboxPlan::stage`] writes.
    pub staged_len: usize,
}

/// One component as the resize reads it: byte `offset` of every `step` bytes of the rows of
/// `plane`, source row `i` in plane row `i / rows_per`, chroma at half the columns.
struct ComponentLayout {
    plane: usize,
    row_len: usize,
    offset: usize,
    step: usize,
    rows_per: usize,
    chroma: bool,
}

impl LetterboxPlan {
    /// The plan for frames like `frame` into `det_w × det_h`. Fails for a frame or detector of
    /// no pixels (nothing to resize) and for sizes whose indices overflow.
    pub fn new(frame: &FrameView, det_w: usize, det_h: usize) -> Result<LetterboxPlan, String> {
        let key = PlanKey::of(frame, det_w, det_h);
        let (new_w, new_h, det_scale) = letterbox_size(frame.width, frame.height, det_w, det_h);
        if new_w == 0 || new_h == 0 {
            return Err(format!("letterbox plan: nothing to resize from {}×{}", frame.width, frame.height));
        }
        let (mut x_taps, mut y_taps) = (Vec::new(), Vec::new());
        axis_taps(frame.width, new_w, &mut x_taps);
        axis_taps(frame.height, new_h, &mut y_taps);
        let chroma_taps: Vec<Tap> = x_taps.iter().map(|t| t.subsampled(2)).collect();

        let (layouts, colour) = component_layouts(frame)?;
        // Components of one plane and row rate form a group, in the order they first appear.
        let mut members: Vec<Vec<usize>> = Vec::new();
        for (c, layout) in layouts.iter().enumerate() {
            let same = |m: &&mut Vec<usize>| {
                let first = &layouts[m[0]];
                first.plane == layout.plane && first.rows_per == layout.rows_per
            };
            match members.iter_mut().find(same) {
                Some(m) => m.push(c),
                None => members.push(vec![c]),
            }
        }
        let mut groups = Vec::with_capacity(members.len());
        let mut start = 0usize;
        for member in &members {
            let first = &layouts[member[0]];
            let (row_len, rows_per) = (member.iter().map(|&c| layouts[c].row_len).max().unwrap_or(0), first.rows_per);
            let mut source_rows: Vec<usize> = y_taps.iter().flat_map(|t| [t.i0 / rows_per, t.i1 / rows_per]).collect();
            source_rows.sort_unstable();
            source_rows.dedup();
            let staged = |row: usize| source_rows.binary_search(&(row / rows_per)).map(|i| i as i64);
            let mut rows = [Vec::with_capacity(new_h), Vec::with_capacity(new_h)];
            for t in &y_taps {
                rows[0].push(staged(t.i0).map_err(|_| "letterbox plan: a row was not staged")?);
                rows[1].push(staged(t.i1).map_err(|_| "letterbox plan: a row was not staged")?);
            }
            let k = member.len();
            let (mut cols, mut col_weights) = ([Vec::new(), Vec::new()], [Vec::new(), Vec::new()]);
            for x in 0..new_w {
                for &c in member {
                    let layout = &layouts[c];
                    let t = if layout.chroma { chroma_taps[x] } else { x_taps[x] };
                    for (slot, (i, w)) in [(t.i0, t.w0), (t.i1, t.w1)].into_iter().enumerate() {
                        let byte = i.checked_mul(layout.step).and_then(|b| b.checked_add(layout.offset));
                        match byte {
                            Some(b) if b < row_len => cols[slot].push(b as i64),
                            _ => return Err(format!("letterbox plan: column {x} reads past a {row_len}-byte row")),
                        }
                        col_weights[slot].push(w);
                    }
                }
            }
            let staged_bytes = source_rows.len().checked_mul(row_len).ok_or("letterbox plan: overflow")?;
            groups.push(SampleGroup {
                plane: first.plane,
                row_len,
                start,
                source_rows,
                components: k,
                cols,
                col_weights,
                rows,
                row_weights: [y_taps.iter().map(|t| t.w0).collect(), y_taps.iter().map(|t| t.w1).collect()],
            });
            start = start.checked_add(staged_bytes).ok_or("letterbox plan: overflow")?;
        }
        let colour = match colour {
            None => PlanColour::Rgb,
            Some(tables) => {
                let locate = |c: usize| {
                    members.iter().enumerate().find_map(|(g, m)| m.iter().position(|&x| x == c).map(|s| (g, s)))
                };
                let missing = || "letterbox plan: a YUV component is in no group".to_string();
                PlanColour::Yuv {
                    y: locate(0).ok_or_else(missing)?,
                    u: locate(1).ok_or_else(missing)?,
                    v: locate(2).ok_or_else(missing)?,
                    tables: Box::new(tables),
                    shift: FIX,
                }
            }
        };
        Ok(LetterboxPlan { key, new_w, new_h, det_scale, groups, colour, staged_len: start })
    }

    /// Copies the rows the plan reads from `frame` (a frame with the plan's key) into `out`
    /// (`staged_len` bytes), group after group.
    pub fn stage(&self, frame: &FrameView, out: &mut [u8]) -> Result<(), String> {
        if PlanKey::of(frame, self.key.det_w, self.key.det_h) != self.key {
            return Err("letterbox plan: the frame is not the one the plan was made for".to_string());
        }
        if out.len() != self.staged_len {
            return Err(format!("letterbox plan: {} staging bytes, expected {}", out.len(), self.staged_len));
        }
        for group in &self.groups {
            let (plane, stride) = (frame.planes[group.plane], frame.strides[group.plane]);
            let staged = out[group.start..].chunks_exact_mut(group.row_len);
            for (&row, dst) in group.source_rows.iter().zip(staged) {
                let src = row
                    .checked_mul(stride)
                    .and_then(|s| plane.get(s..s.checked_add(group.row_len)?))
                    .ok_or_else(|| format!("letterbox: a plane of {} bytes has no row {row}", plane.len()))?;
                dst.copy_from_slice(src);
            }
        }
        Ok(())
    }
}

/// How the three components of `frame`'s format are read, and the YUV tables for a YUV format.
#[allow(clippy::type_complexity)]
fn component_layouts(frame: &FrameView) -> Result<([ComponentLayout; 3], Option<YuvTables>), String> {
    if let Some((bpp, offsets)) = frame.format.packed_layout() {
        let row_len = frame.width * bpp;
        let layout =
            |c: usize| ComponentLayout { plane: 0, row_len, offset: offsets[c], step: bpp, rows_per: 1, chroma: false };
        return Ok(([layout(0), layout(1), layout(2)], None));
    }
    let layout = frame.format.yuv_layout().ok_or_else(|| format!("letterbox: no layout for {:?}", frame.format))?;
    let (y_step, c_step, c_rows) = layout.family.steps();
    let [luma_len, chroma_len] = layout.family.row_lens(frame.width);
    let component = |c: usize| {
        let chroma = c > 0;
        ComponentLayout {
            plane: layout.planes[c],
            row_len: if chroma { chroma_len } else { luma_len },
            offset: layout.offsets[c],
            step: if chroma { c_step } else { y_step },
            rows_per: if chroma { c_rows } else { 1 },
            chroma,
        }
    };
    let tables = YuvCoeffs::of(frame.matrix, frame.full_range).tables();
    Ok(([component(0), component(1), component(2)], Some(tables)))
}

#[cfg(test)]
mod tests {
    use super::super::frame::tests::{ALL_FORMATS, TestFrame, same_picture_in};
    use super::*;

    #[test]
    fn a_third_of_1080p_reads_one_row_in_three() {
        let frame = TestFrame::new(PixelFormat::Rgb, 1920, 1080, 0);
        let plan = LetterboxPlan::new(&frame.view(), 640, 640).expect("plan");
        assert_eq!((plan.new_w, plan.new_h, plan.det_scale), (640, 360, 1.0 / 3.0));
        let group = &plan.groups[0];
        assert_eq!(group.source_rows, (0..360).map(|r| 3 * r + 1).collect::<Vec<_>>());
        assert_eq!(plan.staged_len, 360 * 1920 * 3);
        // Output pixel 0 reads source pixel 1 alone: R, G, B at bytes 3, 4, 5.
        assert_eq!(&group.cols[0][..3], &[3, 4, 5]);
        assert_eq!((group.col_weights[0][0], group.col_weights[1][0]), (2048, 0));
    }

    #[test]
    fn groups_follow_the_planes() {
        for (format, groups) in [
            (PixelFormat::Bgrx, vec![(0, 3)]),
            (PixelFormat::I420, vec![(0, 1), (1, 1), (2, 1)]),
            (PixelFormat::Yv12, vec![(0, 1), (2, 1), (1, 1)]),
            (PixelFormat::Nv21, vec![(0, 1), (1, 2)]),
            (PixelFormat::Uyvy, vec![(0, 3)]),
        ] {
            let frame = TestFrame::new(format, 64, 48, 0);
            let plan = LetterboxPlan::new(&frame.view(), 32, 32).expect("plan");
            let found: Vec<_> = plan.groups.iter().map(|g| (g.plane, g.components)).collect();
            assert_eq!(found, groups, "{format:?}");
        }
    }

    /// The letterbox computed from the staged rows with the plan's indices and weights, in the
    /// arithmetic a device runs, equals the CPU's 8-bit RGB for every format and size.
    #[test]
    fn the_plan_computes_the_cpu_letterbox() {
        for (w, h, det) in [(64, 36, 32), (31, 17, 16), (7, 5, 16), (40, 64, 24)] {
            for format in ALL_FORMATS {
                let (frame, _) = same_picture_in(format, w, h);
                let view = frame.view();
                let plan = LetterboxPlan::new(&view, det, det).expect("plan");
                let mut staged = vec![0; plan.staged_len];
                plan.stage(&view, &mut staged).expect("stage");
                let expected = cpu_rgb(&view, det);
                let computed = evaluate(&plan, &staged);
                for (y, row) in computed.iter().enumerate() {
                    for (x, rgb) in row.iter().enumerate() {
                        let i = (y * det + x) * 3;
                        assert_eq!(rgb[..], expected[i..i + 3], "{format:?} {w}×{h} → {det}: ({x}, {y})");
                    }
                }
            }
        }
    }

    #[test]
    fn frames_of_another_key_and_short_planes_are_errors() {
        let frame = TestFrame::new(PixelFormat::Rgb, 8, 6, 1);
        let plan = LetterboxPlan::new(&frame.view(), 4, 4).expect("plan");
        let mut out = vec![0; plan.staged_len];
        let other = TestFrame::new(PixelFormat::Rgb, 8, 7, 1);
        assert!(plan.stage(&other.view(), &mut out).is_err());
        assert!(plan.stage(&frame.view(), &mut out[1..]).is_err());
        let short = FrameView { planes: [&frame.planes[0][..20], &[], &[]], ..frame.view() };
        assert!(plan.stage(&short, &mut out).expect_err("short plane").contains("has no row"));
        let empty = TestFrame::new(PixelFormat::I420, 0, 0, 0);
        assert!(LetterboxPlan::new(&empty.view(), 4, 4).is_err());
    }

    /// The CPU letterbox's 8-bit RGB, from its normalised blob with mean 0 and scale 1.
    fn cpu_rgb(view: &FrameView, det: usize) -> Vec<u8> {
        let mut blob = vec![0.0; 3 * det * det];
        let mut scratch = super::super::letterbox::LetterboxScratch::default();
        super::super::letterbox::letterbox_blob(&mut scratch, view, det, det, (0.0, 1.0), &mut blob).expect("blob");
        let plane = det * det;
        (0..plane).flat_map(|i| [0, 1, 2].map(|c| blob[c * plane + i] as u8)).collect()
    }

    /// The plan evaluated as the device graph does: per group, the horizontal pass of the staged
    /// rows, the vertical step, then the colour conversion.
    fn evaluate(plan: &LetterboxPlan, staged: &[u8]) -> Vec<Vec<[u8; 3]>> {
        let combined: Vec<Vec<Vec<i32>>> = plan
            .groups
            .iter()
            .map(|g| {
                let row = |r: i64| &staged[g.start + r as usize * g.row_len..][..g.row_len];
                let pass = |r: i64| -> Vec<i32> {
                    (0..g.cols[0].len())
                        .map(|i| {
                            let s = row(r);
                            (s[g.cols[0][i] as usize] as i32 * g.col_weights[0][i]
                                + s[g.cols[1][i] as usize] as i32 * g.col_weights[1][i])
                                / 16
                        })
                        .collect()
                };
                (0..plan.new_h)
                    .map(|y| {
                        let (a, b) = (pass(g.rows[0][y]), pass(g.rows[1][y]));
                        let (w0, w1) = (g.row_weights[0][y], g.row_weights[1][y]);
                        a.iter().zip(&b).map(|(a, b)| (a * w0 / 65536 + b * w1 / 65536 + 2) / 4).collect()
                    })
                    .collect()
            })
            .collect();
        let sample = |(g, s): (usize, usize), x: usize, y: usize| combined[g][y][x * plan.groups[g].components + s];
        (0..plan.new_h)
            .map(|y| {
                (0..plan.new_w)
                    .map(|x| match &plan.colour {
                        PlanColour::Rgb => [0, 1, 2].map(|s| sample((0, s), x, y) as u8),
                        PlanColour::Yuv { y: cy, u, v, tables, shift } => {
                            let (yy, uu, vv) =
                                (sample(*cy, x, y) as usize, sample(*u, x, y) as usize, sample(*v, x, y) as usize);
                            let l = tables[0][yy];
                            let ch = |sum: i32| (sum / (1 << shift)).clamp(0, 255) as u8;
                            [ch(l + tables[1][vv]), ch(l + tables[2][uu] + tables[3][vv]), ch(l + tables[4][uu])]
                        }
                    })
                    .collect()
            })
            .collect()
    }
}
