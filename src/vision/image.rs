// SPDX-License-Identifier: MPL-2.0
//! Owned packed-RGB images and integer rectangles: the working buffers of the face pipeline.

/// A packed 8-bit RGB image (`width * height * 3` bytes, rows without padding).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RgbImage {
    pub width: usize,
    pub height: usize,
    pub data: Vec<u8>,
}

impl RgbImage {
    /// A black image.
    pub fn new(width: usize, height: usize) -> Self {
        Self { width, height, data: vec![0; width * height * 3] }
    }

    /// Wraps packed RGB bytes; `None` when the length does not match the size.
    pub fn from_raw(width: usize, height: usize, data: Vec<u8>) -> Option<Self> {
        (data.len() == width * height * 3).then_some(Self { width, height, data })
    }

    /// Resizes in place to `width × height`, reusing the allocation; the content is unspecified
    /// afterwards (callers overwrite it). Lets per-frame scratch buffers live in element state.
    pub fn reshape(&mut self, width: usize, height: usize) {
        self.width = width;
        self.height = height;
        self.data.resize(width * height * 3, 0);
    }

    #[inline]
    pub fn pixel(&self, x: usize, y: usize) -> [u8; 3] {
        let i = (y * self.width + x) * 3;
        [self.data[i], self.data[i + 1], self.data[i + 2]]
    }

    #[inline]
    pub fn set_pixel(&mut self, x: usize, y: usize, rgb: [u8; 3]) {
        let i = (y * self.width + x) * 3;
        self.data[i..i + 3].copy_from_slice(&rgb);
    }
}

/// An integer pixel rectangle; `x`, `y` may be negative before clipping.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Rect {
    pub x: i32,
    pub y: i32,
    pub width: i32,
    pub height: i32,
}

impl Rect {
    pub fn new(x: i32, y: i32, width: i32, height: i32) -> Self {
        Self { x, y, width, height }
    }

    /// The smallest rectangle holding both (either may be empty).
    pub fn union(self, other: Rect) -> Rect {
        match (self.is_empty(), other.is_empty()) {
            (true, _) => other,
            (_, true) => self,
            _ => {
                let (x0, y0) = (self.x.min(other.x), self.y.min(other.y));
                let (x1, y1) = (
                    (self.x + self.width).max(other.x + other.width),
                    (self.y + self.height).max(other.y + other.height),
                );
                Rect::new(x0, y0, x1 - x0, y1 - y0)
            }
        }
    }

    pub fn is_empty(&self) -> bool {
        self.width <= 0 || self.height <= 0
    }

    /// Whether the two share a pixel.
    pub fn overlaps(&self, other: &Rect) -> bool {
        !self.is_empty()
            && !other.is_empty()
            && self.x < other.x + other.width
            && other.x < self.x + self.width
            && self.y < other.y + other.height
            && other.y < self.y + self.height
    }

    /// This rectangle grown by `by` pixels on every side.
    pub fn grown(&self, by: i32) -> Rect {
        Rect::new(self.x - by, self.y - by, self.width + 2 * by, self.height + 2 * by)
    }

    /// The part of this rectangle inside a `width × height` frame (possibly empty).
    pub fn clip_to(&self, width: usize, height: usize) -> Rect {
        let x0 = self.x.max(0);
        let y0 = self.y.max(0);
        let x1 = (self.x + self.width).min(width as i32);
        let y1 = (self.y + self.height).min(height as i32);
        Rect::new(x0, y0, (x1 - x0).max(0), (y1 - y0).max(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rectangles_overlap_where_they_share_a_pixel() {
        let a = Rect::new(0, 0, 10, 5);
        assert!(a.overlaps(&Rect::new(9, 4, 3, 3)));
        assert!(!a.overlaps(&Rect::new(10, 0, 3, 3)), "side by side");
        assert!(!a.overlaps(&Rect::new(0, 5, 3, 3)), "one above the other");
        assert!(!a.overlaps(&Rect::new(2, 2, 0, 3)), "empty");
        assert!(a.grown(1).overlaps(&Rect::new(10, 0, 3, 3)));
        assert_eq!(a.grown(2), Rect::new(-2, -2, 14, 9));
    }

    #[test]
    fn union_holds_both_and_ignores_empty_ones() {
        let (a, b) = (Rect::new(0, 0, 10, 5), Rect::new(5, -2, 10, 4));
        assert_eq!(a.union(b), Rect::new(0, -2, 15, 7));
        assert_eq!(Rect::new(3, 3, 0, 0).union(a), a);
        assert_eq!(a.union(Rect::new(100, 100, 0, 4)), a);
    }

    #[test]
    fn clip_keeps_inside_part() {
        let r = Rect::new(-5, 10, 20, 100).clip_to(12, 50);
        assert_eq!(r, Rect::new(0, 10, 12, 40));
        assert!(Rect::new(60, 0, 5, 5).clip_to(50, 50).is_empty());
    }

    #[test]
    fn pixels_round_trip() {
        let mut img = RgbImage::new(3, 2);
        img.set_pixel(2, 1, [1, 2, 3]);
        assert_eq!(img.pixel(2, 1), [1, 2, 3]);
        assert_eq!(&img.data[15..18], &[1, 2, 3]);
        assert!(RgbImage::from_raw(2, 2, vec![0; 11]).is_none());
    }
}
