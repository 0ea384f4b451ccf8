// SPDX-License-Identifier: MPL-2.0
//! Drawing what the face metadata holds onto a frame, in place: box outlines, landmark dots and
//! labels in a built-in 5×7 bitmap font, in every layout [`FrameViewMut`] writes.
//!
//! Shapes are rasterised here to per-pixel coverage and written through
//! [`FrameViewMut::write_region`], so YUV frames get the colour in luma and chroma alike: the luma
//! of exactly the covered pixels changes, and a chroma sample shared with pixels left undrawn
//! (2×2 blocks in 4:2:0, pairs in 4:2:2) takes the mean of its pixels, as in every write.

use super::frame::FrameViewMut;
use super::image::{Rect, RgbImage};
use crate::face::{Face, FaceFlags};

/// An RGB colour with an opacity (255 = opaque, 0 = invisible).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Colour {
    pub rgb: [u8; 3],
    pub alpha: u8,
}

impl Colour {
    /// The colour of a packed `0xAARRGGBB` value, as textoverlay's `color` property takes it.
    pub const fn from_argb(argb: u32) -> Self {
        let [alpha, r, g, b] = argb.to_be_bytes();
        Colour { rgb: [r, g, b], alpha }
    }

    pub const fn opaque(rgb: [u8; 3]) -> Self {
        Colour { rgb, alpha: 255 }
    }

    /// This colour laid over `below` (rounded to nearest).
    fn over(self, below: [u8; 3]) -> [u8; 3] {
        let a = self.alpha as u32;
        std::array::from_fn(|c| ((self.rgb[c] as u32 * a + below[c] as u32 * (255 - a) + 127) / 255) as u8)
    }

    /// Black or white, whichever reads better on this colour (by BT.601 luma).
    fn contrasting(self) -> Colour {
        let [r, g, b] = self.rgb.map(u32::from);
        if 299 * r + 587 * g + 114 * b > 128_000 { Colour::opaque([0; 3]) } else { Colour::opaque([255; 3]) }
    }
}

/// What [`Painter::draw_faces`] draws, and how.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct OverlayStyle {
    pub boxes: bool,
    pub landmarks: bool,
    pub labels: bool,
    /// Width of the box outlines in pixels; the dots and the label text grow with it.
    pub thickness: u32,
    pub box_colour: Colour,
    /// The box (and label) colour of faces `dlcswap` replaced.
    pub swapped_colour: Colour,
    pub landmark_colour: Colour,
}

/// Coordinates beyond this (in either direction) are clamped: far outside any frame, small enough
/// that sums of a few of them stay within `i32`.
const COORD_LIMIT: f32 = (1 << 24) as f32;

/// A frame coordinate as an integer pixel position: rounded, clamped to ±[`COORD_LIMIT`]
/// (NaN gives 0; callers skip non-finite faces first).
fn to_pixel(v: f32) -> i32 {
    v.round().clamp(-COORD_LIMIT, COORD_LIMIT) as i32
}

/// Draws into frames, reusing its scratch buffers from frame to frame.
#[derive(Debug, Default)]
pub struct Painter {
    patch: RgbImage,
    coverage: Vec<f32>,
}

impl Painter {
    /// Draws `faces` onto `frame` as `style` says: for each face its box outline just outside the
    /// box, its landmarks (the 106 points too when present, smaller), and a label above the box
    /// (inside it when there is no room above) with the track id, the score, `SWAP` when dlcswap
    /// replaced the face and `ENH` when dlcenhance restored it. All boxes come first, then all
    /// landmarks, then all labels, so that no face's box hides another's landmarks or label.
    /// Faces with non-finite boxes are skipped, as are non-finite points.
    pub fn draw_faces(&mut self, frame: &mut FrameViewMut, faces: &[Face], style: &OverlayStyle) {
        let thickness = style.thickness.clamp(1, 64) as i32;
        let faces: Vec<(&Face, Rect, Colour)> = faces
            .iter()
            .filter(|f| f.bbox.iter().all(|v| v.is_finite()))
            .map(|face| {
                let [x1, y1, x2, y2] = face.bbox.map(to_pixel);
                let swapped = face.flags.contains(FaceFlags::SWAPPED);
                (
                    face,
                    Rect::new(x1, y1, x2 - x1, y2 - y1),
                    if swapped { style.swapped_colour } else { style.box_colour },
                )
            })
            .collect();
        if style.boxes {
            for &(_, bbox, colour) in &faces {
                self.outline(frame, bbox, thickness, colour);
            }
        }
        if style.landmarks {
            let small = thickness as f32 * 0.5 + 0.25;
            for &(face, _, _) in &faces {
                for &point in face.landmarks_106.iter().flat_map(|points| points.iter()) {
                    self.dot(frame, point, small, style.landmark_colour);
                }
                for &point in &face.landmarks {
                    self.dot(frame, point, thickness as f32 + 0.5, style.landmark_colour);
                }
            }
        }
        if style.labels {
            for &(face, bbox, colour) in &faces {
                self.label(frame, bbox, thickness, &label_text(face), colour);
            }
        }
    }

    /// An outline `thickness` pixels wide just outside `rect`, leaving `rect` itself untouched.
    ///
    /// Painted in bands that share no chroma sample, in any layout: a sample written twice would
    /// take the mean of the first write's mean, and the corners of the outline would come out
    /// paler than its sides. So the top and bottom bands reach to even rows (painting only the
    /// outline's pixels there), and the sides are one band when they are close enough to share
    /// a pair of columns.
    pub fn outline(&mut self, frame: &mut FrameViewMut, rect: Rect, thickness: i32, colour: Colour) {
        let (t, w, h) = (thickness, rect.width.max(0), rect.height.max(0));
        let (x, y) = (rect.x, rect.y);
        let inner_top = (y + 1).div_euclid(2) * 2;
        let inner_bottom = ((y + h).div_euclid(2) * 2).max(inner_top);
        let in_outline = |px: i32, py: i32| !(x..x + w).contains(&px) || !(y..y + h).contains(&py);
        let (outer_x, outer_w) = (x - t, w + 2 * t);
        self.paint(frame, Rect::new(outer_x, y - t, outer_w, inner_top - (y - t)), colour, Some(&in_outline));
        self.paint(
            frame,
            Rect::new(outer_x, inner_bottom, outer_w, y + h + t - inner_bottom),
            colour,
            Some(&in_outline),
        );
        let middle = inner_bottom - inner_top;
        if w >= 2 {
            self.paint(frame, Rect::new(outer_x, inner_top, t, middle), colour, None);
            self.paint(frame, Rect::new(x + w, inner_top, t, middle), colour, None);
        } else {
            self.paint(frame, Rect::new(outer_x, inner_top, outer_w, middle), colour, Some(&in_outline));
        }
    }

    /// A filled disc: the pixels whose centres lie within `radius` of `centre` (frame pixel
    /// `(x, y)` spans `x..x+1`, so its centre is at `x + 0.5`).
    pub fn dot(&mut self, frame: &mut FrameViewMut, centre: [f32; 2], radius: f32, colour: Colour) {
        let [cx, cy] = centre;
        if !(cx.is_finite() && cy.is_finite() && radius > 0.0) {
            return;
        }
        let (x0, y0) = (to_pixel((cx - radius).floor()), to_pixel((cy - radius).floor()));
        let (x1, y1) = (to_pixel((cx + radius).ceil()), to_pixel((cy + radius).ceil()));
        let covered = |x: i32, y: i32| {
            let (dx, dy) = (x as f32 + 0.5 - cx, y as f32 + 0.5 - cy);
            dx * dx + dy * dy <= radius * radius
        };
        self.paint(frame, Rect::new(x0, y0, x1 - x0 + 1, y1 - y0 + 1), colour, Some(&covered));
    }

    /// `text` in the built-in font with its top-left corner at `(x, y)`, each font pixel a
    /// `scale × scale` square; characters without a glyph leave a gap.
    pub fn text(&mut self, frame: &mut FrameViewMut, x: i32, y: i32, scale: i32, text: &str, colour: Colour) {
        let scale = scale.max(1);
        for (i, c) in text.chars().enumerate() {
            let Some(rows) = glyph(c) else { continue };
            let left = x + i as i32 * GLYPH_ADVANCE * scale;
            let covered = |px: i32, py: i32| {
                let (col, row) = ((px - left) / scale, (py - y) / scale);
                rows[row as usize] & (1 << (GLYPH_WIDTH - 1 - col)) != 0
            };
            let cell = Rect::new(left, y, GLYPH_WIDTH * scale, GLYPH_HEIGHT * scale);
            self.paint(frame, cell, colour, Some(&covered));
        }
    }

    /// A filled tag with `text` on it, over the top-left corner of the outline of `bbox`, or just
    /// inside the box when the frame has no room above it.
    fn label(&mut self, frame: &mut FrameViewMut, bbox: Rect, thickness: i32, text: &str, colour: Colour) {
        let scale = label_scale(thickness);
        let (text_w, text_h) = text_size(text, scale);
        let (tag_w, tag_h) = (text_w + 2 * scale, text_h + 2 * scale);
        let above = bbox.y - thickness - tag_h;
        let y = if above >= 0 { above } else { bbox.y };
        let x = (bbox.x - thickness).min(frame.width as i32 - tag_w).max(0);
        self.paint(frame, Rect::new(x, y, tag_w, tag_h), colour, None);
        self.text(frame, x + scale, y + scale, scale, text, colour.contrasting());
    }

    /// Paints `colour` over the pixels of `rect` (the part inside the frame) for which
    /// `covered(x, y)` holds, in frame coordinates; all of them without `covered`.
    fn paint(
        &mut self,
        frame: &mut FrameViewMut,
        rect: Rect,
        colour: Colour,
        covered: Option<&dyn Fn(i32, i32) -> bool>,
    ) {
        let clip = rect.clip_to(frame.width, frame.height);
        if clip.is_empty() || colour.alpha == 0 {
            return;
        }
        let (w, h) = (clip.width as usize, clip.height as usize);
        if colour.alpha == 255 {
            self.patch.reshape(w, h);
            for px in self.patch.data.chunks_exact_mut(3) {
                px.copy_from_slice(&colour.rgb);
            }
        } else {
            frame.as_view().read_region(clip, &mut self.patch);
            for px in self.patch.data.chunks_exact_mut(3) {
                let blended = colour.over([px[0], px[1], px[2]]);
                px.copy_from_slice(&blended);
            }
        }
        let weight = covered.map(|covered| {
            self.coverage.clear();
            for y in clip.y..clip.y + clip.height {
                self.coverage.extend((clip.x..clip.x + clip.width).map(|x| if covered(x, y) { 1.0 } else { 0.0 }));
            }
            &self.coverage[..]
        });
        frame.write_region(clip, &self.patch, weight);
    }
}

/// The font pixel size of labels drawn with box outlines `thickness` wide: 1 for 1, 2 for 2 and
/// 3, and so on, so that labels stay in proportion without swamping small faces.
pub fn label_scale(thickness: i32) -> i32 {
    1 + thickness.max(1) / 2
}

/// What the label of `face` says: `#<track id>` (when tracked), the score with two decimals,
/// then `SWAP` and `ENH` when dlcswap replaced and dlcenhance restored the face.
pub fn label_text(face: &Face) -> String {
    let mut parts = Vec::with_capacity(4);
    if face.track_id != 0 {
        parts.push(format!("#{}", face.track_id));
    }
    if face.score.is_finite() {
        parts.push(format!("{:.2}", face.score.clamp(0.0, 1.0)));
    }
    if face.flags.contains(FaceFlags::SWAPPED) {
        parts.push("SWAP".to_string());
    }
    if face.flags.contains(FaceFlags::ENHANCED) {
        parts.push("ENH".to_string());
    }
    parts.join(" ")
}

const GLYPH_WIDTH: i32 = 5;
const GLYPH_HEIGHT: i32 = 7;
/// A glyph and the one-pixel gap after it.
const GLYPH_ADVANCE: i32 = GLYPH_WIDTH + 1;

/// Width and height in pixels of `text` drawn at `scale` (no gap after the last character).
pub fn text_size(text: &str, scale: i32) -> (i32, i32) {
    let n = text.chars().count() as i32;
    ((n * GLYPH_ADVANCE - 1).max(0) * scale, GLYPH_HEIGHT * scale)
}

/// The 5×7 bitmap of `c` (digits, upper-case letters and `#.-:%`), one byte per row with the
/// leftmost pixel in bit 4; `None` for a character the font lacks, space included.
fn glyph(c: char) -> Option<&'static [u8; 7]> {
    let index = match c {
        '0'..='9' => c as usize - '0' as usize,
        'A'..='Z' => 10 + c as usize - 'A' as usize,
        '#' => 36,
        '.' => 37,
        '-' => 38,
        ':' => 39,
        '%' => 40,
        _ => return None,
    };
    FONT.get(index)
}

#[rustfmt::skip]
const FONT: [[u8; 7]; 41] = [
    [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E], // 0
    [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E], // 1
    [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F], // 2
    [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E], // 3
    [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02], // 4
    [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E], // 5
    [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E], // 6
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08], // 7
    [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E], // 8
    [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C], // 9
    [0x0E, 0x11, 0x11, 0x11, 0x1F, 0x11, 0x11], // A
    [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E], // B
    [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E], // C
    [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C], // D
    [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F], // E
    [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10], // F
    [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F], // G
    [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11], // H
    [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E], // I
    [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C], // J
    [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11], // K
    [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F], // L
    [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11], // M
    [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11], // N
    [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], // O
    [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10], // P
    [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D], // Q
    [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11], // R
    [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E], // S
    [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04], // T
    [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E], // U
    [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04], // V
    [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A], // W
    [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11], // X
    [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04], // Y
    [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F], // Z
    [0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A], // #
    [0x00, 0x00, 0x00, 0x00, 0x00, 0x0C, 0x0C], // .
    [0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00], // -
    [0x00, 0x0C, 0x0C, 0x00, 0x0C, 0x0C, 0x00], // :
    [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03], // %
];

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::frame::tests::{ALL_FORMATS, TestFrame, same_picture_in};
    use super::super::frame::{FrameView, PixelFormat};
    use super::super::yuv::YuvMatrix;
    use super::*;
    use crate::face::tests::face;

    /// Colours that the random test pictures, whose decoded YUV often saturates, hardly hold.
    const GREEN: Colour = Colour::opaque([40, 200, 90]);
    const MAGENTA: Colour = Colour::opaque([220, 30, 200]);

    const RED: Colour = Colour::opaque([230, 20, 30]);

    fn style() -> OverlayStyle {
        OverlayStyle {
            boxes: true,
            landmarks: false,
            labels: false,
            thickness: 2,
            box_colour: GREEN,
            swapped_colour: MAGENTA,
            landmark_colour: RED,
        }
    }

    /// The pixels that share a chroma sample with pixel `(x, y)` in `format` (itself alone for
    /// packed RGB).
    fn chroma_block(format: PixelFormat, x: usize, y: usize) -> (std::ops::Range<usize>, std::ops::Range<usize>) {
        match format.yuv_layout() {
            None => (x..x + 1, y..y + 1),
            Some(layout) => {
                let rows = layout.family.steps().2;
                (x / 2 * 2..x / 2 * 2 + 2, y / rows * rows..y / rows * rows + rows)
            }
        }
    }

    /// `colour` as `format` stores and reads it back (its YUV round trip for YUV layouts).
    fn stored(format: PixelFormat, rgb: [u8; 3]) -> [u8; 3] {
        match format.packed_layout() {
            Some(_) => rgb,
            None => YuvMatrix::Bt601.to_rgb(false, YuvMatrix::Bt601.to_yuv(false, rgb)),
        }
    }

    /// Every covered pixel reads `colour` (with `exact_colour`; YUV frames only where whole
    /// chroma blocks are covered), and every pixel that is not covered and shares no chroma
    /// sample with a covered one reads as before; returns how many pixels changed.
    fn assert_drawn(
        what: &str,
        before: &FrameView,
        after: &FrameView,
        covered: impl Fn(usize, usize) -> bool,
        colour: [u8; 3],
    ) -> usize {
        let format = before.format;
        let mut changed = 0;
        for y in 0..before.height {
            for x in 0..before.width {
                let (xs, ys) = chroma_block(format, x, y);
                let block: Vec<(usize, usize)> = ys
                    .flat_map(|by| xs.clone().map(move |bx| (bx, by)))
                    .filter(|&(bx, by)| bx < before.width && by < before.height)
                    .collect();
                let (got, was) = (after.pixel_rgb(x, y), before.pixel_rgb(x, y));
                changed += (got != was) as usize;
                if block.iter().all(|&(bx, by)| covered(bx, by)) {
                    assert_eq!(got, stored(format, colour), "{what}: {format:?} ({x}, {y}) is drawn");
                } else if !block.iter().any(|&(bx, by)| covered(bx, by)) {
                    assert_eq!(got, was, "{what}: {format:?} ({x}, {y}) is not drawn");
                }
            }
        }
        changed
    }

    /// Whether `(x, y)` lies in the `[x0, x1) × [y0, y1)` rectangle.
    fn inside(x: usize, y: usize, [x0, y0, x1, y1]: [usize; 4]) -> bool {
        (x0..x1).contains(&x) && (y0..y1).contains(&y)
    }

    #[test]
    fn outline_covers_the_ring_outside_the_box_in_every_format() {
        for format in ALL_FORMATS {
            let (mut frame, _) = same_picture_in(format, 24, 20);
            let before = TestFrame { planes: frame.planes.clone(), ..TestFrame::new(format, 24, 20, 0) };
            let mut painter = Painter::default();
            painter.outline(&mut frame.view_mut(), Rect::new(6, 4, 10, 8), 2, GREEN);
            let ring = |x, y| inside(x, y, [4, 2, 18, 14]) && !inside(x, y, [6, 4, 16, 12]);
            let changed = assert_drawn("outline", &before.view(), &frame.view(), ring, GREEN.rgb);
            // The ring is aligned to the chroma blocks, so in every layout exactly its pixels change.
            assert_eq!(changed, 14 * 12 - 10 * 8, "{format:?}");
        }
    }

    #[test]
    fn odd_shapes_change_only_their_pixels_and_shared_chroma() {
        for format in ALL_FORMATS {
            let (mut frame, _) = same_picture_in(format, 23, 17);
            let before = TestFrame { planes: frame.planes.clone(), ..TestFrame::new(format, 23, 17, 0) };
            let mut painter = Painter::default();
            // An odd position and width, hanging off the right edge.
            painter.outline(&mut frame.view_mut(), Rect::new(13, 5, 7, 6), 3, GREEN);
            let ring = |x, y| inside(x, y, [10, 2, 23, 14]) && !inside(x, y, [13, 5, 20, 11]);
            assert!(assert_drawn("odd outline", &before.view(), &frame.view(), ring, GREEN.rgb) > 0);

            let (mut frame, _) = same_picture_in(format, 23, 17);
            painter.dot(&mut frame.view_mut(), [5.3, 7.9], 2.2, GREEN);
            let disc =
                |x: usize, y: usize| (x as f32 + 0.5 - 5.3).powi(2) + (y as f32 + 0.5 - 7.9).powi(2) <= 2.2 * 2.2;
            assert!(assert_drawn("dot", &before.view(), &frame.view(), disc, GREEN.rgb) > 0);
        }
    }

    #[test]
    fn dot_is_a_disc_around_its_centre() {
        let (mut frame, _) = same_picture_in(PixelFormat::Rgb, 20, 20);
        let before = TestFrame { planes: frame.planes.clone(), ..TestFrame::new(PixelFormat::Rgb, 20, 20, 0) };
        // Radius 1.25 around the centre of pixel (10, 10): it and its four neighbours.
        Painter::default().dot(&mut frame.view_mut(), [10.5, 10.5], 1.25, GREEN);
        let plus = |x: usize, y: usize| x.abs_diff(10) + y.abs_diff(10) <= 1;
        assert_eq!(assert_drawn("plus", &before.view(), &frame.view(), plus, GREEN.rgb), 5);
    }

    #[test]
    fn text_draws_the_glyph_bits_scaled() {
        for scale in [1usize, 3] {
            let (mut frame, _) = same_picture_in(PixelFormat::Bgrx, 64, 30);
            let before = TestFrame { planes: frame.planes.clone(), ..TestFrame::new(PixelFormat::Bgrx, 64, 30, 0) };
            Painter::default().text(&mut frame.view_mut(), 4, 3, scale as i32, "4 #", GREEN);
            // '4' at x 4.., a space, '#' two advances on.
            let bit = |rows: &[u8; 7], x: usize, y: usize, left: usize| {
                inside(x, y, [left, 3, left + 5 * scale, 3 + 7 * scale])
                    && rows[(y - 3) / scale] & (0x10 >> ((x - left) / scale)) != 0
            };
            let (four, hash) = (glyph('4').unwrap(), glyph('#').unwrap());
            let covered = |x, y| bit(four, x, y, 4) || bit(hash, x, y, 4 + 12 * scale);
            let changed = assert_drawn("text", &before.view(), &frame.view(), covered, GREEN.rgb);
            let bits: u32 = four.iter().chain(hash).map(|r| r.count_ones()).sum();
            assert_eq!(changed, bits as usize * scale * scale);
            assert_eq!(text_size("4 #", scale as i32), (17 * scale as i32, 7 * scale as i32));
        }
    }

    #[test]
    fn colours_blend_by_their_alpha() {
        let mut frame = TestFrame::new(PixelFormat::Rgbx, 4, 4, 0);
        let mut painter = Painter::default();
        painter.outline(&mut frame.view_mut(), Rect::new(1, 1, 2, 2), 1, Colour::from_argb(0x80FF_FF40));
        // 0xFF·128/255 = 128, 0x40·128/255 = 32.1; the padding byte stays 0.
        assert_eq!(frame.view().pixel_rgb(0, 0), [128, 128, 32]);
        assert_eq!(frame.planes[0][3], 0);
        assert_eq!(frame.view().pixel_rgb(1, 1), [0, 0, 0]);
        let before = frame.planes.clone();
        painter.outline(&mut frame.view_mut(), Rect::new(1, 1, 2, 2), 1, Colour::from_argb(0x00FF_FFFF));
        assert_eq!(frame.planes, before, "a transparent colour draws nothing");
        assert_eq!(Colour::from_argb(0xFF12_3456), Colour::opaque([0x12, 0x34, 0x56]));
    }

    #[test]
    fn labels_say_track_score_and_flags() {
        let mut f = face(0.0);
        assert_eq!(label_text(&f), "#7 0.90");
        f.flags.insert(FaceFlags::SWAPPED | FaceFlags::ENHANCED);
        f.track_id = 0;
        f.score = f32::NAN;
        assert_eq!(label_text(&f), "SWAP ENH");
        f.score = 1.5;
        assert_eq!(label_text(&f), "1.00 SWAP ENH");
        // Every character a label can hold has a glyph, the space apart.
        assert!("#0123456789.SWAPENH".chars().all(|c| glyph(c).is_some()));
    }

    #[test]
    fn font_glyphs_fit_five_columns_and_differ() {
        for (i, rows) in FONT.iter().enumerate() {
            assert!(rows.iter().all(|&r| r < 1 << GLYPH_WIDTH), "glyph {i}");
            assert!(FONT[..i].iter().all(|other| other != rows), "glyph {i} repeats another");
        }
        assert_eq!(glyph(' '), None);
        assert_eq!(glyph('Z'), Some(&FONT[35]));
    }

    #[test]
    fn label_sits_above_the_box_or_inside_it_at_the_top() {
        let mut painter = Painter::default();
        let (w, h) = (120, 80);
        let changed_rows = |frame: &TestFrame| {
            let blank = TestFrame::new(PixelFormat::Rgb, w, h, 0);
            (0..h)
                .filter(|&y| (0..w).any(|x| frame.view().pixel_rgb(x, y) != blank.view().pixel_rgb(x, y)))
                .collect::<Vec<_>>()
        };
        let mut labelled = style();
        labelled.boxes = false;
        labelled.labels = true;
        // Box top at 40, thickness 2: the tag (7·2 + 2·2 = 18 rows) ends just above the outline.
        let mut frame = TestFrame::new(PixelFormat::Rgb, w, h, 0);
        let mut f = face(30.0);
        f.bbox = [30.0, 40.0, 70.0, 70.0];
        painter.draw_faces(&mut frame.view_mut(), std::slice::from_ref(&f), &labelled);
        assert_eq!(changed_rows(&frame), (20..38).collect::<Vec<_>>());
        assert_eq!(frame.view().pixel_rgb(28, 20), GREEN.rgb, "the tag starts at the outline's corner");
        // No room above: inside the box, from its top.
        let mut frame = TestFrame::new(PixelFormat::Rgb, w, h, 0);
        f.bbox = [30.0, 5.0, 70.0, 70.0];
        painter.draw_faces(&mut frame.view_mut(), std::slice::from_ref(&f), &labelled);
        assert_eq!(changed_rows(&frame), (5..23).collect::<Vec<_>>());
    }

    #[test]
    fn faces_get_their_colours_and_bad_coordinates_are_harmless() {
        let mut painter = Painter::default();
        let mut frame = TestFrame::new(PixelFormat::Rgb, 64, 48, 0);
        let mut swapped = face(10.0);
        swapped.flags.insert(FaceFlags::SWAPPED);
        let plain = face(30.0);
        let mut broken = face(0.0);
        broken.bbox[2] = f32::NAN;
        let mut huge = face(0.0);
        huge.bbox = [-1e30, -1e30, 1e30, 1e30];
        huge.landmarks = [[f32::INFINITY, 3.0]; 5];
        huge.landmarks_106 = Some(Arc::from(vec![[1e30, -1e30]; 106]));
        let mut all = style();
        all.landmarks = true;
        all.labels = true;
        painter.draw_faces(&mut frame.view_mut(), &[swapped, plain, broken, huge], &all);
        // Outlines just outside the boxes: the swapped face's left edge at x 8..10, the other's
        // right edge at x 70..72 lies outside the frame, its left edge at 28..30.
        assert_eq!(frame.view().pixel_rgb(8, 30), MAGENTA.rgb);
        assert_eq!(frame.view().pixel_rgb(28, 30), GREEN.rgb);
        // Landmarks on top of every box: the swapped face's nose dot at (30, 35) reaches the
        // other's outline.
        assert_eq!(frame.view().pixel_rgb(29, 35), RED.rgb);
    }
}
