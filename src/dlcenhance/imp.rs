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
 * `lanes=N` that many frames are restored at once, each on tensors of its own; the default
 * `lanes=auto` takes 3 on a GPU from a file and 1 on the CPU or from a live source. Frames
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
    Messages, as_cuda_graph, check_precision, join_batches, pad_templates, pixel_backend, post_provider_fallback,
    publish_active,
};
use crate::face::Face;
use crate::face_editing::{FaceEditing, FaceEditor, FaceFailure, FaceLane};
use crate::faces::enhance::{EnhanceParams, FaceEnhancer};
use crate::lanes::{self, LanesSetting};
use crate::meta::FaceFlags;
use crate::models::enhancer::{Enhancer, Family};
use crate::runtime::{
    ActiveRuntime, ModelSession, RuntimeError, RuntimeSettings, gpu_work, resolve_model_path, return_freed_memory,
};
use crate::video::WRITE_FORMATS;
use crate::vision::FrameViewMut;

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

pub struct DlcEnhance {
    settings: Mutex<Settings>,
    /// The restorers, one per lane, and the run's state (nothing beyond the core's).
    editing: FaceEditing<FaceEnhancer, ()>,
    active: Mutex<ActiveRuntime>,
}

impl Default for DlcEnhance {
    fn default() -> Self {
        DlcEnhance { settings: Mutex::default(), editing: FaceEditing::new(*CAT), active: Mutex::default() }
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
            ]);
            props.extend(lanes::properties(
                "Frames restored at once, each on tensors of its own (on CUDA with its own stream) \
                     with the restorer session all elements share: with several faces per frame, or a \
                     GPU one thread does not keep busy, 2 or more restore more frames per second, at the \
                     cost of one frame of latency per extra lane, and one more restorer in GPU memory \
                     where it replays a CUDA graph (a captured model is not shared). With inference-interval each lane keeps \
                     its own restored faces, so a re-pasted face can be up to lanes x (interval - 1) \
                     frames old; 1 restores one frame at a time",
            ));
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
                if let Err(reason) = settings.lanes.set(value.get().unwrap_or_default()) {
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
            "lanes-active" => self.editing.lanes_active().to_value(),
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
        // Faces of other elements and lanes on the same GPU run in batches with this one's
        // (experimental: DLC_BATCH_FACES=1, see `faces_batched_across_elements`); a batched
        // restorer keeps the shared session rather than a CUDA graph of its own (as dlcswap's).
        let mut enhancer = enhancer;
        let batched =
            join_batches(self.obj().upcast_ref(), *CAT, backend.on_gpu(), || enhancer.share_batches(&options));
        let graph_allowed = (&settings.runtime, &options, backend.on_gpu() && fixed_inputs && !batched);
        let enhancer = as_cuda_graph(self.obj().upcast_ref(), *CAT, graph_allowed, enhancer, |graph| {
            Enhancer::open(&path, "model-file", graph)
        });
        Ok(FaceEnhancer::new(enhancer, backend))
    }

    /// The restorers, one per lane.
    fn open(&self, settings: &Settings) -> Result<Vec<FaceEnhancer>, RuntimeError> {
        let enhancers =
            FaceEditing::<FaceEnhancer, ()>::open_lanes(self.obj().upcast_ref(), *CAT, settings.lanes.get(), || {
                self.open_enhancer(settings)
            })?;
        let (enhancer, count) = (&enhancers[0], enhancers.len());
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
        Ok(enhancers)
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
        self.editing.stop(self.obj().upcast_ref());
        publish_active(self.obj().upcast_ref(), &self.active, ActiveRuntime::default());
        // The lanes are gone: `lanes` may change again.
        self.settings.lock().lanes.release();
        Ok(())
    }

    fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.editing.transform_ip(self, buf)
    }

    fn submit_input_buffer(&self, is_discont: bool, inbuf: gst::Buffer) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.editing.submit_input_buffer(self, is_discont, inbuf)
    }

    fn generate_output(&self) -> Result<GenerateOutputSuccess, gst::FlowError> {
        self.editing.generate_output(self)
    }

    fn sink_event(&self, event: gst::Event) -> bool {
        self.editing.sink_event(self, event)
    }

    fn query(&self, direction: gst::PadDirection, query: &mut gst::QueryRef) -> bool {
        self.editing.query(self, direction, query)
    }
}

impl DlcEnhance {
    /// `start`, with the settings it took.
    fn start_with(&self, settings: &Settings) -> Result<(), gst::ErrorMessage> {
        let gpu = gpu_work(false);
        let opened = self.open(settings);
        drop(gpu);
        let enhancers = opened.map_err(|e| {
            gst::error!(CAT, imp = self, "{e}");
            e.to_error_message()
        })?;
        self.editing.start(self, settings.lanes.get(), (), enhancers)
    }
}

impl FaceLane for FaceEnhancer {
    /// CodeFormer's fidelity.
    type WarmUpSettings = f64;

    fn model(&self) -> &ModelSession {
        FaceEnhancer::model(self)
    }

    fn may_capture_here(&self) -> bool {
        FaceEnhancer::may_capture_here(self)
    }

    fn warm_up(&mut self, runs: usize, fidelity: &f64) -> Result<(), String> {
        FaceEnhancer::warm_up(self, runs, *fidelity)
    }

    fn begin_frame(&mut self, faces: &[Face]) {
        FaceEnhancer::begin_frame(self, faces)
    }

    fn take_report(&mut self) -> String {
        FaceEnhancer::take_report(self)
    }

    /// The faces cached under other caps would be pasted at the wrong place or size.
    fn caps_changed(&mut self) {
        self.reset();
    }
}

impl FaceEditor for DlcEnhance {
    type Lane = FaceEnhancer;
    type Run = ();
    /// The restorer's settings, and which faces to restore.
    type Params = (EnhanceParams, FaceSelection);
    /// The faces to restore.
    type Plan = Vec<usize>;

    const CAT: &'static LazyLock<gst::DebugCategory> = &CAT;
    const LANE_THREAD: &'static str = "dlcenhance-lane";
    const DOING: &'static str = "restoring";
    const EDITED: FaceFlags = FaceFlags::ENHANCED;

    fn editing(&self) -> &FaceEditing<FaceEnhancer, ()> {
        &self.editing
    }

    fn warm_up_settings(&self) -> f64 {
        self.settings.lock().fidelity
    }

    fn frame_params(&self) -> (EnhanceParams, FaceSelection) {
        let s = self.settings.lock();
        let params = EnhanceParams {
            blend: s.blend as f32,
            fidelity: s.fidelity,
            inference_interval: s.inference_interval.max(1) as u64,
        };
        (params, s.faces)
    }

    /// The faces `faces` selects, when `blend` leaves anything to restore.
    fn plan_frame(
        &self,
        _: &mut (),
        (params, selection): &(EnhanceParams, FaceSelection),
        faces: &[Face],
        _: &mut Messages,
    ) -> Option<Vec<usize>> {
        let wanted: Vec<usize> = faces
            .iter()
            .enumerate()
            .filter(|(_, f)| *selection == FaceSelection::All || f.flags.contains(FaceFlags::SWAPPED))
            .map(|(i, _)| i)
            .collect();
        (!wanted.is_empty() && params.blend > 0.0).then_some(wanted)
    }

    fn edit_faces(
        &self,
        enhancer: &mut FaceEnhancer,
        wanted: Vec<usize>,
        (params, _): &(EnhanceParams, FaceSelection),
        frame: &mut FrameViewMut,
        faces: &mut [Face],
        failures: &mut Vec<FaceFailure>,
    ) -> Vec<usize> {
        let mut enhanced = Vec::with_capacity(wanted.len());
        for index in wanted {
            match enhancer.enhance_face(frame, &faces[index], params) {
                Ok(()) => enhanced.push(index),
                Err(reason) => failures.push(FaceFailure {
                    index,
                    outcome: "not restored",
                    what: "a face could not be restored and was left as it is",
                    reason,
                }),
            }
        }
        enhanced
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
        self.editing.set_info(in_info);
        self.parent_set_info(incaps, in_info, outcaps, out_info)
    }
}
