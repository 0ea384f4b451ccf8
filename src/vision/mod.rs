// SPDX-License-Identifier: MPL-2.0
//! Image and geometry code shared by the elements: pixel access for every raw format the elements
//! accept, letterbox resize, similarity alignment, affine warps, paste-back masks and filters.
//!
//! Nothing here knows about GStreamer: the elements wrap their mapped frames in [`FrameView`] /
//! [`FrameViewMut`] and call in. Each operation exists once and is unit-tested on its own.

pub mod align;
pub mod boost;
pub mod box_mask;
pub mod color;
pub mod draw;
pub mod filter;
pub mod float_paste;
pub mod frame;
pub mod image;
pub mod letterbox;
pub mod letterbox_plan;
pub mod masks;
pub mod paste;
pub(crate) mod resize;
pub(crate) mod sample;
pub mod templates;
pub mod track;
pub mod warp;
pub mod yuv;

pub use align::{Affine, estimate_norm};
pub use frame::{FrameView, FrameViewMut, PixelFormat};
pub use image::{Rect, RgbImage};
pub use yuv::YuvMatrix;
