// SPDX-License-Identifier: MPL-2.0
/**
 * SECTION:element-dlcoverlay
 * @see_also: dlcdetect, dlcswap, dlcenhance
 *
 * Draws the faces of the gstdlc face metadata onto the video, in place: each face's box, its five
 * landmarks (and the 106-point landmarks when dlcdetect's `landmark-model` added them), and a
 * label with the track id, the detection score and the marks `SWAP` (dlcswap replaced the face)
 * and `ENH` (dlcenhance restored it). Faces dlcswap replaced get their own box colour. Like
 * DL Streamer's `gvawatermark` or DeepStream's `nvdsosd`, it shows what the detector found.
 *
 * Every raw format dlcdetect reads is drawn in directly (packed RGB variants and 8-bit YUV
 * 4:2:0 / 4:2:2), so no `videoconvert` is needed around it. Buffers without faces pass through
 * untouched and uncopied; a buffer shared with another branch (after a `tee`) is copied before
 * drawing, so the other branch never sees the overlay.
 *
 * ## Example pipeline
 *
 * |[
 * gst-launch-1.0 v4l2src ! dlcdetect ! dlcoverlay ! videoconvert ! autovideosink
 * ]| Shows the camera with a box, landmarks and a label on every face found.
 *
 * |[
 * gst-launch-1.0 filesrc location=in.mp4 ! decodebin ! dlcdetect ! dlcswap source=face.jpg \
 *     ! dlcoverlay draw-landmarks=false swapped-color=0xffff00ff ! videoconvert ! autovideosink
 * ]| Marks the swapped faces in magenta, the others in the default green.
 */
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;
use parking_lot::Mutex;

use crate::element::{Messages, pad_templates, warn_missing_meta, with_writable_frame};
use crate::meta::FaceMeta;
use crate::video::READ_FORMATS;
use crate::vision::draw::{Colour, OverlayStyle, Painter};

static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("dlcoverlay", gst::DebugColorFlags::empty(), Some("gstdlc face overlay")));

const DEFAULT_DRAW_BOXES: bool = true;
const DEFAULT_DRAW_LANDMARKS: bool = true;
const DEFAULT_DRAW_LABELS: bool = true;
const DEFAULT_THICKNESS: u32 = 2;
const MAX_THICKNESS: u32 = 32;
/// Opaque green.
const DEFAULT_BOX_COLOR: u32 = 0xff00_ff00;
/// Opaque magenta.
const DEFAULT_SWAPPED_COLOR: u32 = 0xffff_00ff;
/// Opaque red.
const DEFAULT_LANDMARK_COLOR: u32 = 0xffff_0000;

#[derive(Debug, Clone, Copy)]
struct Settings {
    draw_boxes: bool,
    draw_landmarks: bool,
    draw_labels: bool,
    thickness: u32,
    box_color: u32,
    swapped_color: u32,
    landmark_color: u32,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            draw_boxes: DEFAULT_DRAW_BOXES,
            draw_landmarks: DEFAULT_DRAW_LANDMARKS,
            draw_labels: DEFAULT_DRAW_LABELS,
            thickness: DEFAULT_THICKNESS,
            box_color: DEFAULT_BOX_COLOR,
            swapped_color: DEFAULT_SWAPPED_COLOR,
            landmark_color: DEFAULT_LANDMARK_COLOR,
        }
    }
}

impl Settings {
    fn style(&self) -> OverlayStyle {
        OverlayStyle {
            boxes: self.draw_boxes,
            landmarks: self.draw_landmarks,
            labels: self.draw_labels,
            thickness: self.thickness,
            box_colour: Colour::from_argb(self.box_color),
            swapped_colour: Colour::from_argb(self.swapped_color),
            landmark_colour: Colour::from_argb(self.landmark_color),
        }
    }

    fn draws_anything(&self) -> bool {
        self.draw_boxes || self.draw_landmarks || self.draw_labels
    }
}

struct State {
    info: Option<gst_video::VideoInfo>,
    painter: Painter,
    warned_no_meta: bool,
}

#[derive(Default)]
pub struct DlcOverlay {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
}

#[glib::object_subclass]
impl ObjectSubclass for DlcOverlay {
    const NAME: &'static str = "GstDlcOverlay";
    type Type = super::DlcOverlay;
    type ParentType = gst_video::VideoFilter;
}

/// A colour property in textoverlay's form.
fn color_property(name: &str, nick: &str, what: &str, default: u32) -> glib::ParamSpec {
    glib::ParamSpecUInt::builder(name)
        .nick(nick)
        .blurb(&format!(
            "Colour of {what}, as big-endian ARGB (0xAARRGGBB, like textoverlay's 'color'): \
             alpha 0xff is opaque, lower values blend with the picture, 0 hides it"
        ))
        .default_value(default)
        .mutable_playing()
        .build()
}

impl ObjectImpl for DlcOverlay {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            vec![
                glib::ParamSpecBoolean::builder("draw-boxes")
                    .nick("Draw boxes")
                    .blurb("Outline each face's box (just outside it, so the face itself stays visible)")
                    .default_value(DEFAULT_DRAW_BOXES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("draw-landmarks")
                    .nick("Draw landmarks")
                    .blurb("Mark the 5 landmarks (eyes, nose, mouth corners) and, when dlcdetect's landmark-model ran, the 106 points")
                    .default_value(DEFAULT_DRAW_LANDMARKS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("draw-labels")
                    .nick("Draw labels")
                    .blurb("Label each face with '#<track id> <score>' and SWAP / ENH when dlcswap / dlcenhance changed it")
                    .default_value(DEFAULT_DRAW_LABELS)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("thickness")
                    .nick("Thickness")
                    .blurb("Width of the box outlines in pixels; the landmark dots and the label text grow with it")
                    .minimum(1)
                    .maximum(MAX_THICKNESS)
                    .default_value(DEFAULT_THICKNESS)
                    .mutable_playing()
                    .build(),
                color_property(
                    "box-color",
                    "Box colour",
                    "the boxes and labels of faces (those dlcswap replaced take swapped-color)",
                    DEFAULT_BOX_COLOR,
                ),
                color_property(
                    "swapped-color",
                    "Swapped box colour",
                    "the boxes and labels of faces dlcswap replaced",
                    DEFAULT_SWAPPED_COLOR,
                ),
                color_property("landmark-color", "Landmark colour", "the landmark dots", DEFAULT_LANDMARK_COLOR),
            ]
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock();
        match pspec.name() {
            "draw-boxes" => settings.draw_boxes = value.get().unwrap_or(DEFAULT_DRAW_BOXES),
            "draw-landmarks" => settings.draw_landmarks = value.get().unwrap_or(DEFAULT_DRAW_LANDMARKS),
            "draw-labels" => settings.draw_labels = value.get().unwrap_or(DEFAULT_DRAW_LABELS),
            "thickness" => settings.thickness = value.get().unwrap_or(DEFAULT_THICKNESS),
            "box-color" => settings.box_color = value.get().unwrap_or(DEFAULT_BOX_COLOR),
            "swapped-color" => settings.swapped_color = value.get().unwrap_or(DEFAULT_SWAPPED_COLOR),
            "landmark-color" => settings.landmark_color = value.get().unwrap_or(DEFAULT_LANDMARK_COLOR),
            other => gst::warning!(CAT, imp = self, "unknown property '{other}'"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock();
        match pspec.name() {
            "draw-boxes" => settings.draw_boxes.to_value(),
            "draw-landmarks" => settings.draw_landmarks.to_value(),
            "draw-labels" => settings.draw_labels.to_value(),
            "thickness" => settings.thickness.to_value(),
            "box-color" => settings.box_color.to_value(),
            "swapped-color" => settings.swapped_color.to_value(),
            "landmark-color" => settings.landmark_color.to_value(),
            _ => pspec.default_value().clone(),
        }
    }
}

impl GstObjectImpl for DlcOverlay {}

impl ElementImpl for DlcOverlay {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face overlay",
                "Filter/Effect/Video",
                "Draws the faces of the gstdlc face metadata (from dlcdetect) onto the video in place: \
                 boxes, landmarks, track ids, scores and the faces dlcswap/dlcenhance changed.",
                "gstdlc developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| pad_templates(&READ_FORMATS));
        PAD_TEMPLATES.as_ref()
    }
}

impl BaseTransformImpl for DlcOverlay {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn accept_caps(&self, direction: gst::PadDirection, caps: &gst::Caps) -> bool {
        crate::element::accept_memory(self.obj().upcast_ref(), caps) && self.parent_accept_caps(direction, caps)
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock() = Some(State { info: None, painter: Painter::default(), warned_no_meta: false });
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        *self.state.lock() = None;
        Ok(())
    }

    /// Buffers with nothing to draw pass through: no copy of a buffer shared with other
    /// branches, no writable mapping.
    fn before_transform(&self, inbuf: &gst::BufferRef) {
        let draws = self.settings.lock().draws_anything();
        let mut messages = Messages::default();
        let faces = inbuf.meta::<FaceMeta>().map(|meta| meta.faces().len());
        if faces.is_none()
            && let Some(state) = self.state.lock().as_mut()
        {
            warn_missing_meta(self.obj().upcast_ref(), &mut state.warned_no_meta, &mut messages);
        }
        messages.post(self.obj().upcast_ref());
        let passthrough = !draws || faces.unwrap_or(0) == 0;
        if self.obj().is_passthrough() != passthrough {
            gst::debug!(CAT, imp = self, "{} drawing", if passthrough { "pausing" } else { "resuming" });
            self.obj().set_passthrough(passthrough);
        }
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let style = self.settings.lock().style();
        let mut messages = Messages::default();
        let drawn = self.draw(buf, &style, &mut messages);
        messages.post(self.obj().upcast_ref());
        drawn.map(|()| gst::FlowSuccess::Ok)
    }
}

impl DlcOverlay {
    /// Draws the faces of `buf`'s FaceMeta onto it; the bus messages it decides on go to
    /// `messages`, for the caller to post once the state lock is released.
    fn draw(
        &self,
        buf: &mut gst::BufferRef,
        style: &OverlayStyle,
        messages: &mut Messages,
    ) -> Result<(), gst::FlowError> {
        let mut guard = self.state.lock();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let info = state.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        // Copied out: the frame mapping below borrows the buffer mutably (the embeddings and
        // 106-point landmarks are shared, not copied).
        let faces = buf.meta::<FaceMeta>().map(|meta| meta.faces().to_vec()).unwrap_or_default();
        gst::trace!(CAT, imp = self, "drawing {} faces", faces.len());
        let painter = &mut state.painter;
        with_writable_frame(buf, &info, messages, |view, _| painter.draw_faces(view, &faces, style))
    }
}

impl VideoFilterImpl for DlcOverlay {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        if let Some(state) = self.state.lock().as_mut() {
            state.info = Some(in_info.clone());
        }
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }
}
