// SPDX-License-Identifier: MPL-2.0
/**
 * SECTION:element-dlcswap
 * @see_also: dlcdetect, dlcenhance
 *
 * Replaces the faces that `dlcdetect` attached to the buffer (as gstdlc `FaceMeta`) with the
 * identity of the face in the `source` picture, using the `inswapper_128` model and InsightFace's
 * paste-back (or Deep-Live-Cam's ellipse with `mask=ellipse`), in place: pixels outside the faces
 * keep their bytes. The source identity comes from an ArcFace model (`recognition-model`, default
 * `w600k_r50.onnx`) run on the face an SCRFD model (`detector-model`) finds in the picture.
 *
 * With another swapper family (`swapper-family`, e.g. hyperswap), `pixel-boost` above the model's
 * size, or `mask-types` set, each face follows FaceFusion 3.8.1 instead: the crop taken at up to
 * 1024 px and swapped in interleaved model-size tiles, and box, occlusion (XSeg), region
 * (BiSeNet) and area (68 landmarks) masks combined by their minimum, so hands, hair or a
 * microphone in front of the face stay.
 *
 * `target` chooses which faces to swap (the largest, the left-most, the best-scored, or those
 * that look like the `reference` picture); `many-faces=true` swaps every chosen face, and
 * `face-map` maps several people to several sources. `source` and `reference` can be changed
 * while playing: the new face applies once computed, without stalling the stream. Frames without
 * `FaceMeta` pass unchanged, with one warning on the bus.
 *
 * ## Example pipelines
 *
 * |[
 * gst-launch-1.0 -e filesrc location=in.mp4 ! decodebin ! dlcdetect ! queue ! dlcswap source=face.jpg \
 *     ! videoconvert ! x264enc ! mp4mux ! filesink location=out.mp4
 * ]| Puts the face of `face.jpg` onto the largest face in every frame of `in.mp4` and writes the
 * result to `out.mp4`.
 *
 * |[
 * gst-launch-1.0 v4l2src ! dlcdetect ! queue ! dlcswap source=face.jpg target=reference \
 *     reference=boss.jpg many-faces=true ! videoconvert ! autovideosink
 * ]| Swaps only the webcam faces that look like the person in `boss.jpg`.
 *
 * Since: 0.1.0
 */
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use gst_video::subclass::prelude::*;
use parking_lot::Mutex;

use super::TargetMode;
use super::quality;
use super::settings::{
    DEFAULT_DETECTOR_MODEL, DEFAULT_MASK, DEFAULT_MODEL, DEFAULT_MODEL_FP16, DEFAULT_RECOGNITION_MODEL, Settings,
};
use super::worker::{IdentityKind, Models, PictureWorker, Report, Reporter, Requested, picture_identity};
use crate::element::{
    Messages, as_cuda_graph, check_precision, defer_message, join_batches, pad_templates, pixel_backend,
    post_provider_fallback, publish_active,
};
use crate::face::Face;
use crate::face_editing::{FaceEditing, FaceEditor, FaceFailure, FaceLane};
use crate::faces::facefusion::{FaceFusionSwapper, MaskModels};
use crate::faces::identity::{IdentityModels, SourceProjection, normalized_embedding};
use crate::faces::select::{Identities, Selection, parse_face_map};
use crate::faces::swap::{FaceSwapper, SwapParams};
use crate::faces::swapping::Swapping;
use crate::meta::FaceFlags;
use crate::models::landmark::Landmark106;
use crate::models::occluder::Occluder;
use crate::models::parser::Parser;
use crate::models::swapper::inswapper::Inswapper;
use crate::runtime::{
    ActiveRuntime, ModelSession, RuntimeError, RuntimeSettings, SessionOptions, gpu_work, path_from_value,
    resolve_model_path, return_freed_memory,
};
use crate::video::WRITE_FORMATS;
use crate::vision::{FrameView, FrameViewMut};

static CAT: LazyLock<gst::DebugCategory> =
    LazyLock::new(|| gst::DebugCategory::new("dlcswap", gst::DebugColorFlags::empty(), Some("gstdlc face swapper")));

/// Per-frame knobs, copied once per buffer.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FrameParams {
    selection: Selection,
    swap: SwapParams,
    /// `target=reference` with neither `reference` nor `face-map` set: no face can match.
    reference_missing: bool,
}

/// What one run keeps beyond the face-editing core's state.
pub(crate) struct SwapRun {
    /// The recogniser that embeds the frames' faces for `target=reference` and `face-map`, one
    /// for all lanes: a lane waits while another uses it. Lanes share the GPU (or the CPU cores)
    /// anyway, so a copy per lane would buy little time for its memory; the picture worker has
    /// handles of its own (see `worker::Models`), so no lane waits for a whole picture, only, at
    /// most, for one run of the model session they share.
    identity_models: Arc<Mutex<IdentityModels>>,
    /// Whether the swappers can add 106-point landmarks themselves (`landmark-model`).
    has_landmarker: bool,
    warned_no_landmarks: bool,
    warned_no_reference: bool,
}

/// The faces to swap on one frame and the latent to give each, and the faces that could not be
/// recognised (so were matched to no reference or face-map picture), with the reason.
struct Plan {
    swaps: Vec<(usize, Arc<[f32]>)>,
    unrecognised: Vec<(usize, String)>,
}

pub struct DlcSwap {
    settings: Mutex<Settings>,
    /// The swappers, one per lane, and the run's state.
    editing: FaceEditing<Swapping, SwapRun>,
    identities: Arc<Mutex<Identities>>,
    active: Mutex<ActiveRuntime>,
    /// Computes the pictures set while playing; stores into `identities`.
    pictures: PictureWorker,
}

impl Default for DlcSwap {
    fn default() -> Self {
        let identities = Arc::new(Mutex::new(Identities::default()));
        DlcSwap {
            settings: Mutex::default(),
            editing: FaceEditing::new(*CAT),
            pictures: PictureWorker::new(identities.clone()),
            identities,
            active: Mutex::default(),
        }
    }
}

#[glib::object_subclass]
impl ObjectSubclass for DlcSwap {
    const NAME: &'static str = "GstDlcSwap";
    type Type = super::DlcSwap;
    type ParentType = gst_video::VideoFilter;
}

impl ObjectImpl for DlcSwap {
    fn properties() -> &'static [glib::ParamSpec] {
        static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> = LazyLock::new(Settings::properties);
        PROPERTIES.as_ref()
    }

    fn set_property(&self, _id: usize, value: &glib::Value, pspec: &glib::ParamSpec) {
        let name = pspec.name();
        let mut settings = self.settings.lock();
        if settings.set_plain(name, value) {
            return;
        }
        match name {
            "source" | "reference" => {
                let kind = if name == "source" { IdentityKind::Source } else { IdentityKind::Reference };
                let path = path_from_value(value);
                *settings.picture_mut(kind) = path.clone();
                // Asked while the settings are locked, so that when two threads set the property
                // at once, the value that stays is also the one the worker computes last.
                let requested = self.pictures.request(kind, path);
                drop(settings);
                self.picture_requested(kind, requested);
            }
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
        settings
            .plain(name)
            .or_else(|| self.active.lock().property(name))
            .or_else(|| (name == "lanes-active").then(|| self.editing.lanes_active().to_value()))
            .unwrap_or_else(|| pspec.default_value().clone())
    }
}

impl GstObjectImpl for DlcSwap {}

impl ElementImpl for DlcSwap {
    fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
        static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
            gst::subclass::ElementMetadata::new(
                "Face swapper (inswapper_128, hyperswap, simswap, ghost, hififace)",
                "Filter/Effect/Video",
                "Replaces the faces that an upstream dlcdetect put on the buffer with the face in the \
                 'source' picture, in place, as Deep-Live-Cam (inswapper_128) or FaceFusion (swapper \
                 families, pixel boost, occlusion/region/area masks) does; pixels outside the faces stay \
                 untouched.",
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

/// Start-up failures: a model problem or a picture (or setting) problem, both fatal at start.
pub(super) enum StartError {
    Runtime(RuntimeError),
    Picture(String),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Runtime(e) => e.fmt(f),
            StartError::Picture(reason) => f.write_str(reason),
        }
    }
}

impl From<RuntimeError> for StartError {
    fn from(e: RuntimeError) -> Self {
        StartError::Runtime(e)
    }
}

impl DlcSwap {
    fn post_fallback(&self, model: &ModelSession) {
        post_provider_fallback(self.obj().upcast_ref(), *CAT, model);
    }

    /// The detector and recogniser files (the picture worker opens handles of its own to them).
    fn identity_model_paths(settings: &Settings) -> (PathBuf, PathBuf) {
        (
            resolve_model_path(settings.detector_model.as_deref(), DEFAULT_DETECTOR_MODEL),
            resolve_model_path(settings.recognition_model.as_deref(), DEFAULT_RECOGNITION_MODEL),
        )
    }

    /// The swapper file `model-file` means (the float16 export when `precision` prefers it).
    fn swapper_path(settings: &Settings) -> PathBuf {
        let default_model =
            if settings.runtime.prefers_fp16_file(DEFAULT_MODEL_FP16) { DEFAULT_MODEL_FP16 } else { DEFAULT_MODEL };
        resolve_model_path(settings.runtime.model_file.as_deref(), default_model)
    }

    /// One swapper with its own pixel backend and, on CUDA, its own stream (see `ComputeStream`)
    /// shared by all its sessions; warmed up later, on the thread that runs it (`warm_up`).
    fn open_swapper(&self, settings: &Settings) -> Result<Swapping, StartError> {
        let options = settings.runtime.session_options().with_own_stream();
        let swapper_path = Self::swapper_path(settings);
        let (quality, model_file) = (&settings.quality, settings.runtime.model_file.as_deref());
        let landmark_model = settings.landmark_model.as_deref();
        let facefusion = |opened: FaceFusionSwapper| {
            match opened.tile_batching() {
                Some(Ok(how)) => gst::info!(CAT, imp = self, "pixel-boost tiles: {how}"),
                Some(Err(why)) => gst::info!(CAT, imp = self, "pixel-boost tiles run one by one: {why}"),
                None => {}
            }
            let backend =
                pixel_backend(self.obj().upcast_ref(), *CAT, settings.runtime.pixel_backend, opened.model(), &options);
            let mut opened = opened;
            if crate::runtime::mask_models_as_cuda_graphs() {
                self.replay_mask_models((&settings.runtime, &options, backend.on_gpu()), opened.mask_models_mut());
            }
            Swapping::FaceFusion(opened.with_backend(backend))
        };
        if quality.forces_facefusion() {
            let opened = quality.open_facefusion((model_file, &swapper_path), landmark_model, &options);
            return opened.map(facefusion);
        }
        let swapper = match Inswapper::open(&swapper_path, "model-file", &options) {
            Ok(swapper) => swapper,
            Err(e) => {
                let opened = quality.open_other_family(&swapper_path, landmark_model, &options, e);
                return opened.map(facefusion);
            }
        };
        let landmarker = match &settings.landmark_model {
            Some(p) => Some(Landmark106::open(p, "landmark-model", &options)?),
            None => None,
        };
        let backend =
            pixel_backend(self.obj().upcast_ref(), *CAT, settings.runtime.pixel_backend, swapper.model(), &options);
        // Faces of other elements and lanes on the same GPU run in batches with this one's
        // (experimental: DLC_BATCH_FACES=1, see `faces_batched_across_elements`). A batched
        // swapper keeps the shared session rather than a CUDA graph of its own: a replayed copy per
        // lane would hold the model's GPU memory again for the runs made alone only.
        let mut swapper = swapper;
        let batched = join_batches(self.obj().upcast_ref(), *CAT, backend.on_gpu(), || swapper.share_batches(&options));
        let graph_allowed = (&settings.runtime, &options, backend.on_gpu() && !batched);
        let swapper = as_cuda_graph(self.obj().upcast_ref(), *CAT, graph_allowed, swapper, |graph| {
            Inswapper::open(&swapper_path, "model-file", graph)
        });
        Ok(Swapping::DeepLiveCam(FaceSwapper::new(swapper, landmarker, backend)))
    }

    /// The occluder and the parser reopened to replay as CUDA graphs where `graph_allowed` allows
    /// (experimental: `DLC_MASK_CUDA_GRAPHS=1`, see `mask_models_as_cuda_graphs`). Their inputs and
    /// outputs are tensors the pixel backend keeps at fixed addresses, as a replay needs.
    fn replay_mask_models(&self, graph_allowed: (&RuntimeSettings, &SessionOptions, bool), masks: &mut MaskModels) {
        let element = self.obj();
        if let Some(occluder) = masks.occluder.take() {
            let path = occluder.model().path.clone();
            masks.occluder = Some(as_cuda_graph(element.upcast_ref(), *CAT, graph_allowed, occluder, |graph| {
                Occluder::open(&path, "occluder-model", graph)
            }));
        }
        if let Some(parser) = masks.parser.take() {
            let path = parser.model().path.clone();
            masks.parser = Some(as_cuda_graph(element.upcast_ref(), *CAT, graph_allowed, parser, |graph| {
                Parser::open(&path, "parser-model", graph)
            }));
        }
    }

    /// The run's state and its swappers, one per lane.
    fn open(&self, settings: &Settings) -> Result<(SwapRun, Vec<Swapping>), StartError> {
        let swapper_path = Self::swapper_path(settings);
        let swappers =
            FaceEditing::<Swapping, SwapRun>::open_lanes(self.obj().upcast_ref(), *CAT, settings.lanes.get(), || {
                self.open_swapper(settings)
            })?;
        let [swapper, ..] = swappers.as_slice() else {
            return Err(StartError::Picture("no swapper could be opened".to_string()));
        };
        // The lanes' shared recogniser (and the detector of the pictures at start): not on a lane's
        // stream.
        let options = settings.runtime.session_options();
        let (detector_path, recognizer_path) = Self::identity_model_paths(settings);
        let mut models = IdentityModels::open(&detector_path, &recognizer_path, &options)?;
        check_precision(self.obj().upcast_ref(), *CAT, settings.runtime.precision, swapper.model());
        let pixels = swapper.backend_name();
        for model in swapper.models().chain(models.models()) {
            self.post_fallback(model);
        }
        let projection = swapper.projection();
        let to_latent = |raw: &[f32], what: &str| {
            projection
                .apply(raw)
                .map(Arc::from)
                .ok_or_else(|| StartError::Picture(format!("{what}: the identity projection failed")))
        };

        let mut identities = Identities::default();
        if let Some(map_path) = &settings.face_map {
            let unreadable = |reason: String| {
                StartError::Picture(format!("face-map '{}' cannot be read: {reason}", map_path.display()))
            };
            // Reading a named pipe would wait for a writer forever.
            if !map_path.is_file() {
                let reason = if map_path.exists() { "not a regular file" } else { "no such file" };
                return Err(unreadable(reason.to_string()));
            }
            let text = std::fs::read_to_string(map_path).map_err(|e| unreadable(e.to_string()))?;
            let base = map_path.parent().unwrap_or(Path::new("."));
            let entries = parse_face_map(&text, base)
                .map_err(|e| StartError::Picture(format!("face-map '{}': {e}", map_path.display())))?;
            for entry in entries {
                let reference = picture_identity(&mut models, "face-map reference", &entry.reference)
                    .and_then(|raw| normalized_embedding(&raw))
                    .map_err(StartError::Picture)?;
                let source =
                    picture_identity(&mut models, "face-map source", &entry.source).map_err(StartError::Picture)?;
                identities.face_map.push((Arc::from(reference), to_latent(&source, "face-map source")?));
            }
        } else {
            let source = settings.source.as_ref().ok_or_else(|| {
                StartError::Picture("property 'source' is not set: give the picture whose face to use, e.g. source=face.jpg (or set face-map)".to_string())
            })?;
            let embedding = picture_identity(&mut models, "source", source).map_err(StartError::Picture)?;
            identities.source = Some(to_latent(&embedding, "source")?);
            if settings.target == TargetMode::Reference {
                let reference = settings.reference.as_ref().ok_or_else(|| {
                    StartError::Picture(
                        "target=reference needs the 'reference' property: a picture of the person to replace"
                            .to_string(),
                    )
                })?;
                identities.reference = Some(Arc::from(
                    picture_identity(&mut models, "reference", reference)
                        .and_then(|raw| normalized_embedding(&raw))
                        .map_err(StartError::Picture)?,
                ));
            }
        }
        *self.identities.lock() = identities;
        // From here on the lanes embed the frames' faces with these.
        let models = Arc::new(Mutex::new(models));

        let deep_live_cam_only = [
            ("mask", settings.mask != DEFAULT_MASK),
            ("mouth-mask", settings.mouth_mask > 0),
            ("color-correction", settings.color_correction),
            ("sharpness", settings.sharpness > 0.0),
        ];
        let follows_facefusion = matches!(swapper, Swapping::FaceFusion(_));
        if let Some(reason) = quality::ignored_by_facefusion(follows_facefusion, &deep_live_cam_only) {
            gst::element_imp_warning!(self, gst::LibraryError::Settings, ("{}", reason));
        }
        let provider = swapper.model().active_provider.nick();
        gst::info!(CAT, imp = self, "swapper '{}' runs on {provider}", swapper_path.display());
        publish_active(
            self.obj().upcast_ref(),
            &self.active,
            ActiveRuntime { provider: Some(provider), pixel_backend: Some(pixels) },
        );
        let has_landmarker = swapper.has_landmarker();
        let run =
            SwapRun { identity_models: models, has_landmarker, warned_no_landmarks: false, warned_no_reference: false };
        Ok((run, swappers))
    }

    /// Reports a `source` or `reference` change; call with no lock held.
    fn picture_requested(&self, kind: IdentityKind, requested: Requested) {
        let reason = match requested {
            Requested::Stopped | Requested::Queued => return,
            Requested::Cleared => format!("'{}' was cleared while playing: keeping the previous face", kind.property()),
            Requested::NoWorker(reason) => format!("{}: {reason}; keeping the previous face", kind.property()),
        };
        gst::element_imp_warning!(self, gst::ResourceError::Settings, ("{}", reason));
    }

    /// How the picture worker reports, from its own thread with no lock held. It holds the element
    /// weakly, so that the worker never keeps a dropped element alive.
    fn reporter(&self) -> Reporter {
        let element = self.obj().downgrade();
        Arc::new(move |report| {
            let Some(element) = element.upgrade() else { return };
            match report {
                Report::Applied(kind, path) => {
                    gst::info!(CAT, obj = element, "now using {} '{}'", kind.property(), path.display())
                }
                Report::Superseded(kind, path) => {
                    gst::debug!(CAT, obj = element, "{} '{}' was superseded: dropped", kind.property(), path.display())
                }
                Report::Failed(reason) => {
                    gst::element_warning!(element, gst::ResourceError::Read, ("{}; keeping the previous face", reason));
                }
            }
        })
    }

    /// What to swap on this frame, and which faces could not be recognised.
    fn plan(
        &self,
        identity_models: &Mutex<IdentityModels>,
        frame: &FrameView,
        faces: &[Face],
        selection: &Selection,
    ) -> Plan {
        let identities = self.identities.lock().clone();
        let mut embeddings: Vec<Option<Arc<[f32]>>> = faces.iter().map(|f| f.embedding.clone()).collect();
        let mut unrecognised = Vec::new();
        if identities.needs_embeddings(selection) && embeddings.iter().any(Option::is_none) {
            let mut models = identity_models.lock();
            for (index, (face, slot)) in faces.iter().zip(embeddings.iter_mut()).enumerate() {
                if slot.is_none() {
                    match models.embed(frame, &face.landmarks) {
                        Ok(embedding) => *slot = Some(Arc::from(embedding)),
                        Err(reason) => unrecognised.push((index, reason)),
                    }
                }
            }
        }
        Plan { swaps: identities.plan(faces, selection, |i| embeddings[i].clone()), unrecognised }
    }
}

impl BaseTransformImpl for DlcSwap {
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
        // First: from here on nothing the worker computed can be stored.
        self.pictures.stop();
        // Freeing GPU memory (the identity models) is GPU work too: the core does it under the lock.
        self.editing.stop(self.obj().upcast_ref());
        *self.identities.lock() = Identities::default();
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

impl DlcSwap {
    /// `start`, with the settings it took.
    fn start_with(&self, settings: &Settings) -> Result<(), gst::ErrorMessage> {
        let gpu = gpu_work(false);
        let opened = self.open(settings);
        drop(gpu);
        let (run, swappers) = opened.map_err(|e| match e {
            StartError::Runtime(e) => {
                gst::error!(CAT, imp = self, "{e}");
                e.to_error_message()
            }
            StartError::Picture(reason) => {
                gst::error!(CAT, imp = self, "{reason}");
                gst::error_msg!(gst::ResourceError::Settings, ("{}", reason))
            }
        })?;
        let projection = swappers.first().map_or(SourceProjection::RawEmbedding, Swapping::projection);
        let (detector, recognizer) = Self::identity_model_paths(settings);
        let models = Models::new(detector, recognizer, settings.runtime.session_options(), projection);
        self.editing.start(self, settings.lanes.get(), run, swappers)?;
        self.pictures.start(models, self.reporter());
        // A picture set while the models opened found the element stopped and was left to this
        // start, which had read the settings before: ask for it now.
        let now = self.settings.lock();
        let changed: Vec<(IdentityKind, Requested)> = IdentityKind::ALL
            .into_iter()
            .filter(|&kind| now.picture(kind) != settings.picture(kind))
            .map(|kind| (kind, self.pictures.request(kind, now.picture(kind).clone())))
            .collect();
        drop(now);
        for (kind, requested) in changed {
            self.picture_requested(kind, requested);
        }
        Ok(())
    }
}

impl FaceLane for Swapping {
    type WarmUpSettings = ();

    fn model(&self) -> &ModelSession {
        Swapping::model(self)
    }

    fn may_capture_here(&self) -> bool {
        Swapping::may_capture_here(self)
    }

    fn warm_up(&mut self, runs: usize, _: &()) -> Result<(), String> {
        Swapping::warm_up(self, runs)
    }

    fn begin_frame(&mut self, faces: &[Face]) {
        Swapping::begin_frame(self, faces)
    }

    fn take_report(&mut self) -> String {
        Swapping::take_report(self)
    }
}

impl FaceEditor for DlcSwap {
    type Lane = Swapping;
    type Run = SwapRun;
    type Params = FrameParams;
    /// The recogniser of the frame's faces, for `target=reference` and `face-map`.
    type Plan = Arc<Mutex<IdentityModels>>;

    const CAT: &'static LazyLock<gst::DebugCategory> = &CAT;
    const LANE_THREAD: &'static str = "dlcswap-lane";
    const DOING: &'static str = "swapping";
    const EDITED: FaceFlags = FaceFlags::SWAPPED;

    fn editing(&self) -> &FaceEditing<Swapping, SwapRun> {
        &self.editing
    }

    fn warm_up_settings(&self) {}

    fn frame_params(&self) -> FrameParams {
        let s = self.settings.lock();
        FrameParams {
            selection: Selection {
                target: s.target.into(),
                many_faces: s.many_faces,
                reference_distance: s.reference_distance as f32,
            },
            swap: SwapParams {
                mask: s.mask.into(),
                opacity: s.opacity as f32,
                mouth_mask: s.mouth_mask,
                color_correction: s.color_correction,
                sharpness: s.sharpness as f32,
            },
            reference_missing: s.target == TargetMode::Reference && s.reference.is_none() && s.face_map.is_none(),
        }
    }

    /// The settings' warnings (said once each, and only when there is something to swap, as
    /// the swap itself would show it), and the recogniser when there is.
    fn plan_frame(
        &self,
        run: &mut SwapRun,
        params: &FrameParams,
        faces: &[Face],
        messages: &mut Messages,
    ) -> Option<Self::Plan> {
        let swapping = !faces.is_empty() && params.swap.opacity > 0.0;
        if params.reference_missing && swapping && !std::mem::replace(&mut run.warned_no_reference, true) {
            defer_message!(
                messages,
                Warning,
                gst::LibraryError::Settings,
                [
                    "target=reference needs the 'reference' property: a picture of the person to replace (no face is swapped until it is set)"
                ]
            );
        }
        if params.swap.mouth_mask > 0
            && !run.warned_no_landmarks
            && swapping
            && faces.iter().all(|f| f.landmarks_106.is_none())
            && !run.has_landmarker
        {
            run.warned_no_landmarks = true;
            defer_message!(
                messages,
                Warning,
                gst::LibraryError::Settings,
                [
                    "mouth-mask needs 106-point landmarks: set landmark-model on dlcdetect or dlcswap (mouth-mask is off until then)"
                ]
            );
        }
        swapping.then(|| run.identity_models.clone())
    }

    /// Adds the landmarks the swapper needs, matches the faces to the identities, and swaps
    /// those chosen.
    fn edit_faces(
        &self,
        swapper: &mut Swapping,
        identity_models: Self::Plan,
        params: &FrameParams,
        frame: &mut FrameViewMut,
        faces: &mut [Face],
        failures: &mut Vec<FaceFailure>,
    ) -> Vec<usize> {
        if swapper.wants_landmarks(params.swap.mouth_mask) {
            swapper.add_landmarks(&frame.as_view(), faces);
        }
        let plan = self.plan(&identity_models, &frame.as_view(), faces, &params.selection);
        failures.extend(plan.unrecognised.into_iter().map(|(index, reason)| FaceFailure {
            index,
            outcome: "not recognised",
            what: "a face could not be recognised, so it was not matched against the reference or face-map pictures \
                   and was left as it is",
            reason,
        }));
        let jobs: Vec<(&Face, &[f32])> =
            plan.swaps.iter().map(|(index, latent)| (&faces[*index], &latent[..])).collect();
        let outcomes = swapper.swap_faces(frame, &jobs, &params.swap);
        let mut swapped = Vec::with_capacity(plan.swaps.len());
        for ((index, _), outcome) in plan.swaps.iter().zip(outcomes) {
            match outcome {
                Ok(()) => swapped.push(*index),
                Err(reason) => failures.push(FaceFailure {
                    index: *index,
                    outcome: "not swapped",
                    what: "a face could not be swapped and was left as it is",
                    reason,
                }),
            }
        }
        swapped
    }
}

impl VideoFilterImpl for DlcSwap {
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
