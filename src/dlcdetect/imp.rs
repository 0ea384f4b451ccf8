// SPDX-License-Identifier: MPL-2.0
/**
 * SECTION:element-dlcdetect
 * @see_also: dlcswap, dlcenhance
 *
 * Finds faces with an SCRFD model (InsightFace's `det_10g.onnx` family, the detector
 * Deep-Live-Cam uses) through ONNX Runtime, tracks them between detections and attaches them to
 * the buffer as gstdlc `FaceMeta` (box, score, 5 landmarks, optional 106 landmarks and ArcFace
 * embedding, track id) and as `GstVideoRegionOfInterestMeta`s of type `face`. Pixels pass
 * unchanged. With `post-messages=true` each frame's faces are also posted on the bus as a
 * `dlcdetect` element message holding a list of `face` structures (`x`, `y`, `width`, `height`,
 * `score`, `landmarks`, `track-id`).
 *
 * The element reads the raw formats of webcams and decoders directly (packed RGB variants, I420,
 * YV12, NV12, NV21, YUY2, UYVY, YVYU). With `inference-interval=N` the detector runs on every Nth
 * frame and the tracker carries the faces in between. The model is looked up in the model
 * directory (`$DLC_MODELS_DIR`, else `$XDG_DATA_HOME/gstdlc/models`) unless `model-file` names it.
 *
 * ## Example pipelines
 *
 * |[
 * gst-launch-1.0 -m filesrc location=in.mp4 ! decodebin ! dlcdetect post-messages=true ! fakesink
 * ]| Prints the faces found in every frame of `in.mp4` as `dlcdetect` element messages.
 *
 * |[
 * gst-launch-1.0 v4l2src ! dlcdetect inference-interval=3 smoothing=0.5 ! queue \
 *     ! dlcswap source=face.jpg ! videoconvert ! autovideosink
 * ]| Detects faces in every 3rd webcam frame, tracks them in between with damped jitter, and
 * hands them to `dlcswap`.
 *
 * Since: 0.1.0
 */
use std::path::PathBuf;
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;
use parking_lot::Mutex;

use crate::element::{
    Messages, WARM_UP_RUNS, check_precision, defer_message, log_warm_up, pad_templates, pixel_backend,
    post_provider_fallback, publish_active, report_step_times, unmappable, warn_face_failure,
};
use crate::face::Face;
use crate::faces::detect::{DetectParams, FaceDetector};
use crate::meta::FaceMeta;
use crate::models::arcface::ArcFace;
use crate::models::landmark::Landmark106;
use crate::models::scrfd::{ScrfdDetector, round_det_size};
use crate::runtime::{
    ActiveRuntime, ExecutionProvider, RuntimeError, RuntimeSettings, gpu_work, path_from_value, path_to_value,
    resolve_model_path, return_freed_memory,
};
use crate::video::{READ_FORMATS, frame_view};
use crate::vision::track::Tracker;
use crate::warnings::WarningLimiter;

static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("dlcdetect", gst::DebugColorFlags::empty(), Some("gstdlc face detector")));

const DEFAULT_MODEL: &str = "det_10g.onnx";
const DEFAULT_THRESHOLD: f64 = 0.5;
const DEFAULT_NMS_THRESHOLD: f64 = 0.4;
const DEFAULT_DET_SIZE: u32 = 640;
const DEFAULT_MAX_FACES: u32 = 0;
const DEFAULT_MIN_FACE_SIZE: u32 = 0;
const DEFAULT_INFERENCE_INTERVAL: u32 = 1;
const DEFAULT_SMOOTHING: f64 = 0.0;
const DEFAULT_POST_MESSAGES: bool = false;
const DEFAULT_ROI_META: bool = true;
/// Detector runs in a row a face may be missing before its track ends: bridges blinks of the
/// detector (motion blur, a hand passing) without keeping ghosts around for long.
const MAX_MISSED_DETECTIONS: u32 = 3;

#[derive(Debug, Clone)]
struct Settings {
    runtime: RuntimeSettings,
    threshold: f64,
    nms_threshold: f64,
    det_size: u32,
    max_faces: u32,
    min_face_size: u32,
    inference_interval: u32,
    recognition_model: Option<PathBuf>,
    landmark_model: Option<PathBuf>,
    smoothing: f64,
    post_messages: bool,
    roi_meta: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            runtime: RuntimeSettings::default(),
            threshold: DEFAULT_THRESHOLD,
            nms_threshold: DEFAULT_NMS_THRESHOLD,
            det_size: DEFAULT_DET_SIZE,
            max_faces: DEFAULT_MAX_FACES,
            min_face_size: DEFAULT_MIN_FACE_SIZE,
            inference_interval: DEFAULT_INFERENCE_INTERVAL,
            recognition_model: None,
            landmark_model: None,
            smoothing: DEFAULT_SMOOTHING,
            post_messages: DEFAULT_POST_MESSAGES,
            roi_meta: DEFAULT_ROI_META,
        }
    }
}

/// The per-frame knobs, copied out of the settings once per buffer (no allocation).
#[derive(Debug, Clone, Copy)]
struct FrameParams {
    detect: DetectParams,
    inference_interval: u64,
    smoothing: f32,
    post_messages: bool,
    roi_meta: bool,
}

struct State {
    /// Frames handled, for the step-time reports.
    frames: u64,
    detector: FaceDetector,
    tracker: Tracker,
    info: Option<gst_video::VideoInfo>,
    frames_since_inference: u64,
    failures: WarningLimiter,
    /// What the detector rounds `det-size` down to a multiple of (`None`: its file fixes the
    /// input size), and the `det-size` last checked against it.
    det_size_step: Option<usize>,
    checked_det_size: Option<usize>,
}

#[derive(Default)]
pub struct DlcDetect {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    active: Mutex<ActiveRuntime>,
}

#[glib::object_subclass]
impl ObjectSubclass for DlcDetect {
    const NAME: &'static str = "GstDlcDetect";
    type Type = super::DlcDetect;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for DlcDetect {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut props = RuntimeSettings::properties(
                DEFAULT_MODEL,
                "SCRFD face detector (.onnx) with 5 keypoints: det_10g, det_2.5g, det_500m or scrfd_*_bnkps",
            );
            props.extend([
                glib::ParamSpecDouble::builder("threshold")
                    .nick("Score threshold")
                    .blurb("Minimum detection score for a face (lower finds more faces and more false ones)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("nms-threshold")
                    .nick("NMS IoU threshold")
                    .blurb("Overlapping detections with an IoU above this are merged into the best one")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_NMS_THRESHOLD)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("det-size")
                    .nick("Detection size")
                    .blurb("Side of the square the frame is letterboxed into for detection: a multiple of 32, the detector's largest stride (128 for five-stride exports); other values are rounded down to one, with a warning. Larger finds smaller faces and costs more. Ignored by models with a fixed input size")
                    .minimum(32)
                    .maximum(4096)
                    .default_value(DEFAULT_DET_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("max-faces")
                    .nick("Maximum faces")
                    .blurb("Keep at most this many faces per frame, the largest first (0 = all)")
                    .default_value(DEFAULT_MAX_FACES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("min-face-size")
                    .nick("Minimum face size")
                    .blurb("Ignore faces whose box is narrower or shorter than this many pixels (0 = keep all)")
                    .default_value(DEFAULT_MIN_FACE_SIZE)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("inference-interval")
                    .nick("Inference interval")
                    .blurb("Run the detector on every Nth frame and track faces in between (1 = every frame). While no face is tracked it runs on every frame")
                    .minimum(1)
                    .maximum(1000)
                    .default_value(DEFAULT_INFERENCE_INTERVAL)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecString::builder("recognition-model")
                    .nick("Recognition model")
                    .blurb("Optional ArcFace model (.onnx, e.g. w600k_r50.onnx): each face then carries its normalised 512-d identity embedding (unset = no embeddings)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecString::builder("landmark-model")
                    .nick("Landmark model")
                    .blurb("Optional 106-point landmark model (.onnx, 2d106det.onnx): each face then carries 106 landmarks, used by dlcswap's mouth-mask (unset = none)")
                    .mutable_ready()
                    .build(),
                glib::ParamSpecDouble::builder("smoothing")
                    .nick("Smoothing")
                    .blurb("Damps landmark and box jitter on live video: weight of the previous position in a moving average (0 = off, 0.5 = strong; high values lag on fast motion)")
                    .minimum(0.0)
                    .maximum(0.95)
                    .default_value(DEFAULT_SMOOTHING)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("post-messages")
                    .nick("Post messages")
                    .blurb("Post an element message named 'dlcdetect' with the faces of every buffer on the bus")
                    .default_value(DEFAULT_POST_MESSAGES)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecBoolean::builder("roi-meta")
                    .nick("ROI meta")
                    .blurb("Also attach a GstVideoRegionOfInterestMeta (type 'face', DL Streamer-style 'detection' params) per face for other elements")
                    .default_value(DEFAULT_ROI_META)
                    .mutable_playing()
                    .build(),
            ]);
            props
        });
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let mut settings = self.settings.lock();
        let name = pspec.name();
        if settings.runtime.set_property(name, value) {
            return;
        }
        match name {
            "threshold" => settings.threshold = value.get().unwrap_or(DEFAULT_THRESHOLD),
            "nms-threshold" => settings.nms_threshold = value.get().unwrap_or(DEFAULT_NMS_THRESHOLD),
            "det-size" => settings.det_size = value.get().unwrap_or(DEFAULT_DET_SIZE),
            "max-faces" => settings.max_faces = value.get().unwrap_or(DEFAULT_MAX_FACES),
            "min-face-size" => settings.min_face_size = value.get().unwrap_or(DEFAULT_MIN_FACE_SIZE),
            "inference-interval" => settings.inference_interval = value.get().unwrap_or(DEFAULT_INFERENCE_INTERVAL),
            "recognition-model" => settings.recognition_model = path_from_value(value),
            "landmark-model" => settings.landmark_model = path_from_value(value),
            "smoothing" => settings.smoothing = value.get().unwrap_or(DEFAULT_SMOOTHING),
            "post-messages" => settings.post_messages = value.get().unwrap_or(DEFAULT_POST_MESSAGES),
            "roi-meta" => settings.roi_meta = value.get().unwrap_or(DEFAULT_ROI_META),
            other => gst::warning!(CAT, imp = self, "unknown property '{other}'"),
        }
    }

    fn property(&self, _id: usize, pspec: &glib::ParamSpec) -> glib::Value {
        let settings = self.settings.lock();
        let name = pspec.name();
        if let Some(value) = settings.runtime.property(name).or_else(|| self.active.lock().property(name)) {
            return value;
        }
        match name {
            "threshold" => settings.threshold.to_value(),
            "nms-threshold" => settings.nms_threshold.to_value(),
            "det-size" => settings.det_size.to_value(),
            "max-faces" => settings.max_faces.to_value(),
            "min-face-size" => settings.min_face_size.to_value(),
            "inference-interval" => settings.inference_interval.to_value(),
            "recognition-model" => path_to_value(&settings.recognition_model),
            "landmark-model" => path_to_value(&settings.landmark_model),
            "smoothing" => settings.smoothing.to_value(),
            "post-messages" => settings.post_messages.to_value(),
            "roi-meta" => settings.roi_meta.to_value(),
            _ => pspec.default_value().clone(),
        }
    }
}

impl GstObjectImpl for DlcDetect {}

impl ElementImpl for DlcDetect {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face detector (SCRFD)",
                "Filter/Analyzer/Video",
                "Finds faces with an SCRFD model (InsightFace det_10g family) and tracks them between \
                 detections. Faces leave on the buffer as gstdlc FaceMeta and region-of-interest metas, \
                 and optionally as 'dlcdetect' element messages. Pixels pass unchanged.",
                "gstdlc developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| pad_templates(&READ_FORMATS));
        PAD_TEMPLATES.as_ref()
    }

    /// In NULL every element of the pipeline has stopped and freed its run's memory: the
    /// allocator is asked to give its free pages back (see [`return_freed_memory`]).
    fn change_state(&self, transition: gst::StateChange) -> Result<gst::StateChangeSuccess, gst::StateChangeError> {
        let result = self.parent_change_state(transition);
        if transition == gst::StateChange::ReadyToNull {
            return_freed_memory();
        }
        result
    }
}

impl DlcDetect {
    fn open(&self, settings: &Settings) -> Result<State, RuntimeError> {
        // One CUDA stream for all of the element's sessions (see `ComputeStream`), ahead of the
        // other elements' on the GPU: every frame waits for the detector.
        let options = settings.runtime.session_options().with_own_high_priority_stream();
        let path = resolve_model_path(settings.runtime.model_file.as_deref(), DEFAULT_MODEL);
        let detector = ScrfdDetector::open(&path, "model-file", &options)?;
        let det_size_step = detector.det_size_step();
        let recognizer = match &settings.recognition_model {
            Some(p) => Some(ArcFace::open(p, "recognition-model", &options)?),
            None => None,
        };
        let landmarker = match &settings.landmark_model {
            Some(p) => Some(Landmark106::open(p, "landmark-model", &options)?),
            None => None,
        };
        check_precision(self.obj().upcast_ref(), *CAT, settings.runtime.precision, detector.model());
        let backend =
            pixel_backend(self.obj().upcast_ref(), *CAT, settings.runtime.pixel_backend, detector.model(), &options);
        let pixels = backend.name();
        let mut detector = detector;
        // CoreML too: with the shape computations folded, the detector is not cut into several
        // CoreML partitions by its Shape → Gather chains.
        if backend.is_graph() || detector.model().active_provider == ExecutionProvider::CoreMl {
            // Fixed input dimensions let ONNX Runtime fold the detector's shape computations, and
            // then capture it as a CUDA graph when the tensors live on the GPU.
            let fixed = settings
                .runtime
                .with_cuda_graph(&options, detector.model(), backend.on_gpu())
                .unwrap_or_else(|| options.clone());
            let det_size = settings.det_size as usize;
            let graphed = fixed.cuda_graph.then(|| detector.specialize(det_size, &fixed));
            match graphed {
                Some(Ok(())) => gst::info!(CAT, imp = self, "'{}' replays as a CUDA graph", path.display()),
                _ => {
                    if let Some(Err(e)) = graphed {
                        gst::debug!(CAT, imp = self, "'{}' cannot run as a CUDA graph: {e}", path.display());
                    }
                    match detector.specialize(det_size, &options) {
                        Ok(()) => gst::info!(CAT, imp = self, "'{}' runs with its input size fixed", path.display()),
                        Err(e) => {
                            gst::debug!(CAT, imp = self, "'{}' keeps its dynamic input size: {e}", path.display())
                        }
                    }
                }
            }
        }
        if backend.on_gpu() {
            let warmed = detector.warm_up(&backend, settings.det_size as usize, WARM_UP_RUNS);
            log_warm_up(self.obj().upcast_ref(), *CAT, warmed);
        }
        let detector = FaceDetector::new(detector, recognizer, landmarker, backend);
        for model in detector.models() {
            post_provider_fallback(self.obj().upcast_ref(), *CAT, model);
        }
        let provider = detector.detector().active_provider.nick();
        gst::info!(CAT, imp = self, "detector '{}' runs on {provider}", path.display());
        publish_active(
            self.obj().upcast_ref(),
            &self.active,
            ActiveRuntime { provider: Some(provider), pixel_backend: Some(pixels) },
        );
        Ok(State {
            frames: 0,
            detector,
            tracker: Tracker::new(MAX_MISSED_DETECTIONS, settings.smoothing as f32),
            info: None,
            frames_since_inference: 0,
            failures: WarningLimiter::default(),
            det_size_step,
            checked_det_size: None,
        })
    }

    fn frame_params(&self) -> FrameParams {
        let s = self.settings.lock();
        FrameParams {
            detect: DetectParams {
                threshold: s.threshold as f32,
                nms_threshold: s.nms_threshold as f32,
                det_size: s.det_size as usize,
                max_faces: s.max_faces as usize,
                min_face_size: s.min_face_size as f32,
            },
            inference_interval: s.inference_interval.max(1) as u64,
            smoothing: s.smoothing as f32,
            post_messages: s.post_messages,
            roi_meta: s.roi_meta,
        }
    }

    fn attach_roi_metas(buf: &mut gst::BufferRef, faces: &[Face], width: u32, height: u32) {
        let (fw, fh) = (width.max(1) as f64, height.max(1) as f64);
        for (index, face) in faces.iter().enumerate() {
            let x1 = face.bbox[0].clamp(0.0, width as f32) as u32;
            let y1 = face.bbox[1].clamp(0.0, height as f32) as u32;
            let x2 = face.bbox[2].clamp(0.0, width as f32) as u32;
            let y2 = face.bbox[3].clamp(0.0, height as f32) as u32;
            let mut roi = gst_video::VideoRegionOfInterestMeta::add(buf, "face", (x1, y1, x2 - x1, y2 - y1));
            // The id names the ROI within its buffer (what `parent_id` refers to): the face's
            // index, as in FaceMeta and the bus message, so that bindings without meta iteration
            // (PyGObject) can fetch them with gst_buffer_get_video_region_of_interest_meta_id
            // for 0..n. The track id is the `object_id` param, as with DL Streamer's trackers.
            roi.set_id(i32::try_from(index).unwrap_or(i32::MAX));
            roi.add_param(
                gst::Structure::builder("detection")
                    .field("x_min", (face.bbox[0] as f64 / fw).clamp(0.0, 1.0))
                    .field("y_min", (face.bbox[1] as f64 / fh).clamp(0.0, 1.0))
                    .field("x_max", (face.bbox[2] as f64 / fw).clamp(0.0, 1.0))
                    .field("y_max", (face.bbox[3] as f64 / fh).clamp(0.0, 1.0))
                    .field("confidence", face.score as f64)
                    .field("label", "face")
                    .build(),
            );
            let points: Vec<glib::SendValue> = face
                .landmarks
                .iter()
                .flat_map(|p| [(p[0] as f64 / fw).to_send_value(), (p[1] as f64 / fh).to_send_value()])
                .collect();
            roi.add_param(gst::Structure::builder("landmarks").field("points", gst::Array::new(points)).build());
            roi.add_param(gst::Structure::builder("object_id").field("id", face.track_id as i32).build());
        }
    }

    fn post_faces_message(&self, buf: &gst::BufferRef, faces: &[Face]) {
        let none = u64::MAX;
        let pts = buf.pts();
        let obj = self.obj();
        let segment = obj.segment();
        let segment = segment.downcast_ref::<gst::ClockTime>();
        let stream_time = segment.and_then(|s| s.to_stream_time(pts?)).map_or(none, |t| t.nseconds());
        let running_time = segment.and_then(|s| s.to_running_time(pts?)).map_or(none, |t| t.nseconds());
        let face_values: Vec<glib::SendValue> = faces
            .iter()
            .map(|f| {
                let landmarks: Vec<glib::SendValue> = f
                    .landmarks
                    .iter()
                    .flat_map(|p| [(p[0] as f64).to_send_value(), (p[1] as f64).to_send_value()])
                    .collect();
                gst::Structure::builder("face")
                    .field("x", f.bbox[0] as f64)
                    .field("y", f.bbox[1] as f64)
                    .field("width", f.width() as f64)
                    .field("height", f.height() as f64)
                    .field("score", f.score as f64)
                    .field("landmarks", gst::Array::new(landmarks))
                    .field("track-id", f.track_id)
                    .build()
                    .to_send_value()
            })
            .collect();
        let structure = gst::Structure::builder("dlcdetect")
            .field("timestamp", pts.map_or(none, |t| t.nseconds()))
            .field("stream-time", stream_time)
            .field("running-time", running_time)
            .field("duration", buf.duration().map_or(none, |t| t.nseconds()))
            .field("faces", gst::List::new(face_values))
            .build();
        let _ = obj.post_message(gst::message::Element::builder(structure).src(&*obj).build());
    }
}

impl BaseTransformImpl for DlcDetect {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn accept_caps(&self, direction: gst::PadDirection, caps: &gst::Caps) -> bool {
        crate::element::accept_memory(self.obj().upcast_ref(), caps) && self.parent_accept_caps(direction, caps)
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        let settings = self.settings.lock().clone();
        let gpu = gpu_work(false);
        let state = self.open(&settings).map_err(|e| {
            gst::error!(CAT, imp = self, "{e}");
            e.to_error_message()
        })?;
        drop(gpu);
        *self.state.lock() = Some(state);
        Ok(())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        let state = self.state.lock().take();
        // Freeing GPU memory is GPU work too.
        let gpu = gpu_work(false);
        drop(state);
        drop(gpu);
        publish_active(self.obj().upcast_ref(), &self.active, ActiveRuntime::default());
        Ok(())
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        if let gst::EventView::FlushStop(_) = event.view() {
            // After a seek the old positions mean nothing.
            if let Some(state) = self.state.lock().as_mut() {
                state.tracker.reset();
            }
        }
        self.parent_sink_event(event)
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        let params = self.frame_params();
        let mut messages = Messages::default();
        let found = self.find_faces(buf, &params, &mut messages);
        messages.post(self.obj().upcast_ref());
        let (faces, info) = found?;

        gst::trace!(CAT, imp = self, "{} faces", faces.len());
        if params.roi_meta {
            Self::attach_roi_metas(buf, &faces, info.width(), info.height());
        }
        if params.post_messages {
            self.post_faces_message(buf, &faces);
        }
        FaceMeta::add(buf, faces);
        Ok(gst::FlowSuccess::Ok)
    }
}

impl DlcDetect {
    /// The faces of one frame (detected, or carried between inferences) and the frame's video
    /// info; the bus messages it decides on go to `messages`, for the caller to post once the
    /// state lock is released.
    fn find_faces(
        &self,
        buf: &gst::BufferRef,
        params: &FrameParams,
        messages: &mut Messages,
    ) -> Result<(Vec<Face>, gst_video::VideoInfo), gst::FlowError> {
        let mut guard = self.state.lock();
        let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let info = state.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        state.tracker.set_smoothing(params.smoothing);
        if state.checked_det_size != Some(params.detect.det_size) {
            state.checked_det_size = Some(params.detect.det_size);
            Self::check_det_size(params.detect.det_size, state.det_size_step, messages);
        }

        let run_detector = state.frames_since_inference % params.inference_interval == 0 || state.tracker.is_empty();
        let faces = if run_detector {
            let frame = gst_video::VideoFrameRef::from_buffer_ref_readable(buf, &info).map_err(|_| {
                defer_message!(
                    messages,
                    Error,
                    gst::StreamError::Format,
                    ["{}", unmappable(buf.size(), &info, "reading")]
                );
                gst::FlowError::Error
            })?;
            let may_capture = state.detector.models().any(|m| m.may_capture_here());
            let gpu = gpu_work(may_capture);
            let result = frame_view(&frame).and_then(|view| state.detector.detect(&view, &params.detect));
            drop(gpu);
            drop(frame);
            state.frames_since_inference = 1;
            match result {
                Ok(faces) => state.tracker.update(faces),
                Err(reason) => {
                    gst::debug!(CAT, imp = self, "detection skipped: {reason}");
                    let what = "face detection failed on this frame, faces carried from earlier frames";
                    warn_face_failure(&mut state.failures, what, &reason, messages);
                    state.tracker.carry()
                }
            }
        } else {
            state.frames_since_inference += 1;
            state.tracker.carry()
        };
        let state = &mut *state;
        report_step_times(self.obj().upcast_ref(), *CAT, &mut state.frames, || state.detector.take_report());
        Ok((faces, info))
    }
}

impl DlcDetect {
    /// Warns when the detector cannot run at `det_size` (set at start or while playing): it
    /// runs at the size rounded down to a multiple of its largest stride, which finds fewer
    /// faces than the user asked for.
    fn check_det_size(det_size: usize, step: Option<usize>, messages: &mut Messages) {
        let Some(step) = step else { return };
        let used = round_det_size(det_size, step);
        if used != det_size {
            defer_message!(
                messages,
                Warning,
                gst::LibraryError::Settings,
                [
                    "det-size {} is not a multiple of {} (the detector's largest stride): detecting at {}x{} instead",
                    det_size,
                    step,
                    used,
                    used
                ]
            );
        }
    }
}

impl VideoFilterImpl for DlcDetect {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        if let Some(state) = self.state.lock().as_mut() {
            state.info = Some(in_info.clone());
            state.tracker.reset();
        }
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }
}
