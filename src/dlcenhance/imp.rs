// SPDX-License-Identifier: MPL-2.0
/**
 * SECTION:element-dlcenhance
 * @see_also: dlcdetect, dlcswap
 *
 * Restores the faces in the buffer's gstdlc `FaceMeta` (from `dlcdetect`, usually after
 * `dlcswap`) with a face restoration model: GFPGAN 1.2–1.4 (default `GFPGANv1.4.onnx`),
 * GPEN-BFR, CodeFormer or RestoreFormer++, recognised from the model file. Each face is aligned,
 * restored and blended back in place (`blend`), so pixels outside the faces stay untouched.
 *
 * `faces=swapped` restores only the faces `dlcswap` replaced. With `inference-interval=N` each
 * face is restored on every Nth frame and the cached result is re-pasted in between. With
 * `lanes=N` that many frames are restored at once, each by its own copy of the restorer. Frames
 * without `FaceMeta` pass unchanged, with one warning on the bus.
 *
 * ## Example pipelines
 *
 * |[
 * gst-launch-1.0 -e filesrc location=in.mp4 ! decodebin ! dlcdetect ! queue ! dlcswap source=face.jpg \
 *     ! queue ! dlcenhance ! videoconvert ! x264enc ! mp4mux ! filesink location=out.mp4
 * ]| Swaps the face in `in.mp4` with the face of `face.jpg` and restores the swapped face with
 * GFPGAN, writing `out.mp4`; the `queue`s let the three elements work on different frames at once.
 *
 * |[
 * gst-launch-1.0 v4l2src ! dlcdetect ! queue ! dlcswap source=face.jpg ! queue \
 *     ! dlcenhance faces=swapped inference-interval=2 ! videoconvert ! autovideosink
 * ]| Restores only the swapped webcam faces, every 2nd frame.
 *
 * Since: 0.1.0
 */
use std::sync::LazyLock;

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;
use parking_lot::Mutex;

use super::FaceSelection;
use crate::element::{
    Messages, WARM_UP_RUNS, as_cuda_graph, check_precision, edit_faces_in_place, log_warm_up, pad_templates,
    pixel_backend, post_provider_fallback, publish_active, report_step_times, warn_face_failure, warn_missing_meta,
    with_writable_frame,
};
use crate::faces::enhance::{EnhanceParams, FaceEnhancer};
use crate::lanes::{self, DEFAULT_LANES, InFlight, LanesSetting};
use crate::meta::{FaceFlags, FaceMeta};
use crate::models::enhancer::{Enhancer, Family};
use crate::runtime::{ActiveRuntime, RuntimeError, RuntimeSettings, gpu_work, resolve_model_path, return_freed_memory};
use crate::video::WRITE_FORMATS;
use crate::warnings::WarningLimiter;

static CAT: LazyLock<gst::DebugCategory> = LazyLock::new(|| {
    gst::DebugCategory::new("dlcenhance", gst::DebugColorFlags::empty(), Some("gstdlc face restorer"))
});

const DEFAULT_MODEL: &str = "GFPGANv1.4.onnx";
const DEFAULT_BLEND: f64 = 0.8;
const DEFAULT_FIDELITY: f64 = 0.5;
const DEFAULT_FACES: FaceSelection = FaceSelection::All;
const DEFAULT_INFERENCE_INTERVAL: u32 = 1;

#[derive(Debug, Clone)]
struct Settings {
    runtime: RuntimeSettings,
    blend: f64,
    fidelity: f64,
    faces: FaceSelection,
    inference_interval: u32,
    lanes: LanesSetting,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            runtime: RuntimeSettings::default(),
            blend: DEFAULT_BLEND,
            fidelity: DEFAULT_FIDELITY,
            faces: DEFAULT_FACES,
            inference_interval: DEFAULT_INFERENCE_INTERVAL,
            lanes: LanesSetting::default(),
        }
    }
}

struct State {
    info: Option<gst_video::VideoInfo>,
    /// Counts the caps set: a lane whose restorer last saw other caps forgets its cached faces.
    caps_epoch: u64,
    warned_no_meta: bool,
    failures: WarningLimiter,
}

/// One restorer, the frames it handled (for its step-time reports) and the caps its cache of
/// restored faces belongs to.
struct Lane {
    enhancer: FaceEnhancer,
    frames: u64,
    caps_epoch: u64,
}

pub struct DlcEnhance {
    settings: Mutex<Settings>,
    state: Mutex<Option<State>>,
    /// The restorers, one per lane (the single lane is locked before `state`, never while `state`
    /// is held).
    lanes: InFlight<Lane>,
    active: Mutex<ActiveRuntime>,
}

impl Default for DlcEnhance {
    fn default() -> Self {
        DlcEnhance {
            settings: Mutex::default(),
            state: Mutex::default(),
            lanes: InFlight::new(*CAT),
            active: Mutex::default(),
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for DlcEnhance {
    const NAME: &'static str = "GstDlcEnhance";
    type Type = super::DlcEnhance;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for DlcEnhance {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(|| {
            let mut props = RuntimeSettings::properties(
                DEFAULT_MODEL,
                "Face restoration model (.onnx): GFPGAN 1.2-1.4, GPEN-BFR-256/512/1024/2048 ('gpen' in the name), CodeFormer or RestoreFormer++ ('restoreformer' in the name)",
            );
            props.extend([
                glib::ParamSpecDouble::builder("blend")
                    .nick("Blend")
                    .blurb("How much of the restored face replaces the original: 1 = all, 0 = frame unchanged (FaceFusion uses 0.8)")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_BLEND)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecDouble::builder("fidelity")
                    .nick("Fidelity")
                    .blurb("CodeFormer only: 0 = strongest restoration, 1 = closest to the input face")
                    .minimum(0.0)
                    .maximum(1.0)
                    .default_value(DEFAULT_FIDELITY)
                    .mutable_playing()
                    .build(),
                glib::ParamSpecEnum::builder_with_default("faces", DEFAULT_FACES)
                    .nick("Faces")
                    .blurb("Which faces to restore: all faces in the metadata, or only those dlcswap replaced")
                    .mutable_playing()
                    .build(),
                glib::ParamSpecUInt::builder("inference-interval")
                    .nick("Inference interval")
                    .blurb("Restore each tracked face every Nth frame and re-paste the cached result, aligned to the current landmarks, in between (1 = every frame; 2 is Deep-Live-Cam's live setting)")
                    .minimum(1)
                    .maximum(100)
                    .default_value(DEFAULT_INFERENCE_INTERVAL)
                    .mutable_playing()
                    .build(),
                lanes::property(
                    "Frames restored at once, each by its own copy of the restorer (on CUDA with its own \
                     stream): with several faces per frame, or a GPU one thread does not keep busy, 2 or \
                     more restore more frames per second, at the cost of one frame of latency and one \
                     more restorer in GPU memory per extra lane. With inference-interval each lane keeps \
                     its own restored faces, so a re-pasted face can be up to lanes x (interval - 1) \
                     frames old; 1 restores one frame at a time",
                ),
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
            "blend" => settings.blend = value.get().unwrap_or(DEFAULT_BLEND),
            "fidelity" => settings.fidelity = value.get().unwrap_or(DEFAULT_FIDELITY),
            "faces" => settings.faces = value.get().unwrap_or(DEFAULT_FACES),
            "inference-interval" => settings.inference_interval = value.get().unwrap_or(DEFAULT_INFERENCE_INTERVAL),
            "lanes" => {
                if let Err(reason) = settings.lanes.set(value.get().unwrap_or(DEFAULT_LANES)) {
                    drop(settings);
                    gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", reason));
                }
            }
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
            "blend" => settings.blend.to_value(),
            "fidelity" => settings.fidelity.to_value(),
            "faces" => settings.faces.to_value(),
            "inference-interval" => settings.inference_interval.to_value(),
            "lanes" => settings.lanes.get().to_value(),
            _ => pspec.default_value().clone(),
        }
    }
}

impl GstObjectImpl for DlcEnhance {}

impl ElementImpl for DlcEnhance {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face restorer (GFPGAN, GPEN, CodeFormer)",
                "Filter/Effect/Video",
                "Restores the faces in the gstdlc face metadata (from dlcdetect, after dlcswap) with a \
                 face restoration model, in place; pixels outside the faces stay untouched.",
                "gstdlc developers",
            )
        });
        Some(&*METADATA)
    }

    fn pad_templates() -> &'static [gst::PadTemplate] {
        static PAD_TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| pad_templates(&WRITE_FORMATS));
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

impl DlcEnhance {
    /// One restorer with its own pixel backend and, on CUDA, its own stream (see `ComputeStream`)
    /// shared by its sessions; warmed up later, on the thread that runs it (`warm_up`).
    fn open_enhancer(&self, settings: &Settings) -> Result<FaceEnhancer, RuntimeError> {
        let options = settings.runtime.session_options().with_own_stream();
        let path = resolve_model_path(settings.runtime.model_file.as_deref(), DEFAULT_MODEL);
        let enhancer = Enhancer::open(&path, "model-file", &options)?;
        let backend =
            pixel_backend(self.obj().upcast_ref(), *CAT, settings.runtime.pixel_backend, enhancer.model(), &options);
        // CodeFormer's fidelity weight is a host input, which a CUDA graph cannot take.
        let fixed_inputs = enhancer.kind().family != Family::CodeFormer;
        let mut enhancer =
            match settings.runtime.with_cuda_graph(&options, enhancer.model(), backend.on_gpu() && fixed_inputs) {
                Some(graph) => as_cuda_graph(self.obj().upcast_ref(), *CAT, enhancer, || {
                    Enhancer::open(&path, "model-file", &graph)
                }),
                None => enhancer,
            };
        // Faces of other elements and lanes on the same GPU run in batches with this one's.
        if backend.on_gpu() {
            match enhancer.share_batches(&options) {
                Ok(how) => gst::info!(CAT, imp = self, "faces batched with other users of {how}"),
                Err(why) => gst::info!(CAT, imp = self, "faces run one by one: {why}"),
            }
        }
        Ok(FaceEnhancer::new(enhancer, backend))
    }

    /// The element's state and its restorers, one per lane.
    fn open(&self, settings: &Settings) -> Result<(State, Vec<FaceEnhancer>), RuntimeError> {
        let count = lanes::lane_count(settings.lanes.get());
        let mut enhancers = vec![self.open_enhancer(settings)?];
        for _ in 1..count {
            enhancers.push(self.open_enhancer(settings)?);
        }
        let enhancer = &enhancers[0];
        check_precision(self.obj().upcast_ref(), *CAT, settings.runtime.precision, enhancer.model());
        post_provider_fallback(self.obj().upcast_ref(), *CAT, enhancer.model());
        let provider = enhancer.model().active_provider.nick();
        let family = enhancer.enhancer().kind().family.name();
        let path = resolve_model_path(settings.runtime.model_file.as_deref(), DEFAULT_MODEL);
        gst::info!(CAT, imp = self, "{family} model '{}' runs on {provider}, {count} lane(s)", path.display());
        publish_active(
            self.obj().upcast_ref(),
            &self.active,
            ActiveRuntime { provider: Some(provider), pixel_backend: Some(enhancer.backend_name()) },
        );
        let state = State { info: None, caps_epoch: 0, warned_no_meta: false, failures: WarningLimiter::default() };
        Ok((state, enhancers))
    }
}

impl BaseTransformImpl for DlcEnhance {
    const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
    const PASSTHROUGH_ON_SAME_CAPS: bool = false;
    const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

    fn accept_caps(&self, direction: gst::PadDirection, caps: &gst::Caps) -> bool {
        crate::element::accept_memory(self.obj().upcast_ref(), caps) && self.parent_accept_caps(direction, caps)
    }

    fn start(&self) -> Result<(), gst::ErrorMessage> {
        // The lanes made now stay until stop: `lanes` is refused from here on.
        let settings = {
            let mut settings = self.settings.lock();
            settings.lanes.take();
            settings.clone()
        };
        self.start_with(&settings).inspect_err(|_| self.settings.lock().lanes.release())
    }

    fn stop(&self) -> Result<(), gst::ErrorMessage> {
        // Not under the GPU work lock: a lane may be waiting for it to finish its frame (the
        // lanes free their models under it themselves).
        self.lanes.stop();
        *self.state.lock() = None;
        publish_active(self.obj().upcast_ref(), &self.active, ActiveRuntime::default());
        // The lanes are gone: `lanes` may change again.
        self.settings.lock().lanes.release();
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.lanes.with_single(|lane| self.process(lane, buf))
    }

    fn submit_input_buffer(&self, is_discont: bool, inbuf: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.lanes.submit_input_buffer(self, is_discont, inbuf)
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        self.lanes.generate_output(self)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        self.lanes.sink_event(self, event)
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        self.lanes.query(self, direction, query)
    }
}

impl DlcEnhance {
    /// `start`, with the settings it took.
    fn start_with(&self, settings: &Settings) -> Result<(), gst::ErrorMessage> {
        let gpu = gpu_work(false);
        let opened = self.open(settings);
        drop(gpu);
        let (state, enhancers) = opened.map_err(|e| {
            gst::error!(CAT, imp = self, "{e}");
            e.to_error_message()
        })?;
        *self.state.lock() = Some(state);
        let lanes = enhancers.into_iter().map(|enhancer| Lane { enhancer, frames: 0, caps_epoch: 0 }).collect();
        self.lanes.start(self, "dlcenhance-lane", "restoring", lanes, Self::warm_up, Self::process)
    }

    /// Warms `lane`'s restorer up on the GPU, on the thread that will run it.
    fn warm_up(&self, lane: &mut Lane) {
        let fidelity = self.settings.lock().fidelity;
        let _gpu = gpu_work(false);
        log_warm_up(self.obj().upcast_ref(), *CAT, lane.enhancer.warm_up(WARM_UP_RUNS, fidelity));
    }

    /// Restores the faces of `buf` with `lane`'s restorer and marks them in its meta; the bus
    /// messages go out once no lock is held.
    fn process(&self, lane: &mut Lane, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        edit_faces_in_place(self.obj().upcast_ref(), buf, FaceFlags::ENHANCED, |buf, messages| {
            self.enhance_faces(lane, buf, messages)
        })
    }

    /// Restores the faces of one frame with `lane`'s restorer, returning which were restored; the
    /// bus messages it decides on go to `messages`, for the caller to post once the locks are
    /// released. The element's state is locked only to read it and to count failures, so that
    /// lanes restore their frames at the same time.
    fn enhance_faces(
        &self,
        lane: &mut Lane,
        buf: &mut gst::BufferRef,
        messages: &mut Messages,
    ) -> Result<Vec<usize>, gst::FlowError> {
        let (params, selection) = {
            let s = self.settings.lock();
            let params = EnhanceParams {
                blend: s.blend as f32,
                fidelity: s.fidelity,
                inference_interval: s.inference_interval.max(1) as u64,
            };
            (params, s.faces)
        };
        let element = self.obj();
        let (info, faces) = {
            let mut guard = self.state.lock();
            let state = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
            let info = state.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
            if lane.caps_epoch != state.caps_epoch {
                // The faces cached under other caps would be pasted at the wrong place or size.
                lane.enhancer.reset();
                lane.caps_epoch = state.caps_epoch;
            }
            let Some(faces) = buf.meta::<FaceMeta>().map(|m| m.faces().to_vec()) else {
                warn_missing_meta(element.upcast_ref(), &mut state.warned_no_meta, messages);
                return Ok(Vec::new());
            };
            (info, faces)
        };
        let wanted: Vec<usize> = faces
            .iter()
            .enumerate()
            .filter(|(_, f)| selection == FaceSelection::All || f.flags.contains(FaceFlags::SWAPPED))
            .map(|(i, _)| i)
            .collect();
        lane.enhancer.begin_frame(&faces);
        if wanted.is_empty() || params.blend <= 0.0 {
            return Ok(Vec::new());
        }

        let _gpu = gpu_work(lane.enhancer.model().may_capture_here());
        let mut failures = Vec::new();
        let enhanced = with_writable_frame(buf, &info, messages, |view, _| {
            let mut enhanced = Vec::with_capacity(wanted.len());
            for index in wanted {
                match lane.enhancer.enhance_face(view, &faces[index], &params) {
                    Ok(()) => enhanced.push(index),
                    Err(reason) => failures.push((index, reason)),
                }
            }
            enhanced
        })?;
        if !failures.is_empty()
            && let Some(state) = self.state.lock().as_mut()
        {
            for (index, reason) in failures {
                gst::debug!(CAT, imp = self, "face {index} not restored: {reason}");
                let what = "a face could not be restored and was left as it is";
                warn_face_failure(&mut state.failures, what, &reason, messages);
            }
        }
        report_step_times(element.upcast_ref(), *CAT, &mut lane.frames, || lane.enhancer.take_report());
        Ok(enhanced)
    }
}

impl VideoFilterImpl for DlcEnhance {
    fn set_info(
        &self,
        incaps: &gst::Caps,
        in_info: &gst_video::VideoInfo,
        outcaps: &gst::Caps,
        out_info: &gst_video::VideoInfo,
    ) -> Result<(), gst::LoggableError> {
        if let Some(state) = self.state.lock().as_mut() {
            state.info = Some(in_info.clone());
            state.caps_epoch += 1;
        }
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }
}
