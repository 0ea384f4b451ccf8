// SPDX-License-Identifier: MPL-2.0
//! What the three elements share beyond their runtime properties: pad templates, the bus
//! warnings every element posts the same way (after its locks are released), and mapping a
//! buffer for in-place pixel work.

use std::time::Instant;

use gst::prelude::*;
use parking_lot::Mutex;

use crate::backend::{Backend, GraphBackend};
use crate::runtime::{ActiveRuntime, ExecutionProvider, ModelSession, PixelBackend, Precision, SessionOptions};
use crate::video::{frame_view_mut, raw_caps};
use crate::vision::FrameViewMut;
use crate::warnings::WarningLimiter;

/// Always-present src and sink templates with the same raw-video caps (in-place filters), in
/// host memory and, where this process accepts it, CUDA memory ([`crate::cuda_memory`]).
pub(crate) fn pad_templates(formats: &[gst_video::VideoFormat]) -> Vec<gst::PadTemplate> {
    let caps = crate::cuda_memory::with_cuda_memory(raw_caps(formats));
    [("src", gst::PadDirection::Src), ("sink", gst::PadDirection::Sink)]
        .into_iter()
        .map(|(name, direction)| {
            gst::PadTemplate::new(name, direction, gst::PadPresence::Always, &caps).expect("valid pad template")
        })
        .collect()
}

/// `accept_caps` of the elements, before GStreamer's own check: caps asking for CUDA memory
/// where this process does not accept it are refused with a warning that says why (GStreamer
/// alone would only report not-negotiated upstream).
pub(crate) fn accept_memory(element: &gst::Element, caps: &gst::Caps) -> bool {
    let Some(reason) = crate::cuda_memory::refusal(caps) else { return true };
    gst::warning!(gst::CAT_CAPS, obj = element, "{reason}");
    gst::element_warning!(element, gst::CoreError::Negotiation, ("{}", reason));
    false
}

/// Stores what now runs in `active` and notifies the `active-*` properties whose value changed.
/// Call with none of the element's locks held: notify handlers run synchronously and may read or
/// set the element's properties, which take those locks.
pub(crate) fn publish_active(element: &gst::Element, active: &Mutex<ActiveRuntime>, now: ActiveRuntime) {
    let before = std::mem::replace(&mut *active.lock(), now);
    for name in before.changed_properties(&now) {
        element.notify(name);
    }
}

/// Posts a warning when `model` does not run on the provider asked for: users must never be
/// left on the CPU without a word.
pub(crate) fn post_provider_fallback(element: &gst::Element, cat: gst::DebugCategory, model: &ModelSession) {
    if let Some(reason) = &model.fallback {
        gst::warning!(cat, obj = element, "{reason}");
        gst::element_warning!(element, gst::CoreError::Failed, ("{}", reason));
    }
}

/// The pixel backend for an element whose frame-path model is `model`: the ONNX Runtime graphs
/// next to the model on an NVIDIA GPU (or wherever `choice` asks for them), else the CPU. When the
/// graphs cannot be built there the element runs its pixel steps on the CPU and says why.
pub(crate) fn pixel_backend(
    element: &gst::Element,
    cat: gst::DebugCategory,
    choice: PixelBackend,
    model: &ModelSession,
    options: &SessionOptions,
) -> Backend {
    let graphs = match choice {
        PixelBackend::Cpu => false,
        PixelBackend::OnnxRuntime => true,
        PixelBackend::Auto => model.on_nvidia_gpu(),
    };
    let backend = if graphs {
        match GraphBackend::new(model, options) {
            Ok(graph) => Backend::Graph(graph),
            Err(e) => {
                let reason = format!("the pixel steps cannot run as ONNX Runtime graphs, using the CPU: {e}");
                gst::warning!(cat, obj = element, "{reason}");
                gst::element_warning!(element, gst::CoreError::Failed, ("{}", reason));
                Backend::cpu()
            }
        }
    } else {
        Backend::cpu()
    };
    gst::info!(
        cat,
        obj = element,
        "pixel steps run on {} ({} for the model)",
        backend.name(),
        model.active_provider.nick()
    );
    if model.on_nvidia_gpu() && !options.spin_wait {
        match crate::runtime::prefer_blocking_sync(options.gpu_id) {
            Ok(()) => gst::info!(cat, obj = element, "threads waiting for the GPU sleep (blocking synchronisation)"),
            Err(e) => gst::info!(cat, obj = element, "threads waiting for the GPU spin: {e}"),
        }
    }
    backend
}

/// Warns when `precision=fp16` cannot take effect: the CUDA provider (and the CPU) run a model
/// in its file's precision, so a float32 file stays float32.
pub(crate) fn check_precision(
    element: &gst::Element,
    cat: gst::DebugCategory,
    precision: Precision,
    model: &ModelSession,
) {
    let float32 = model.io.inputs.iter().any(|i| i.element == Some(ort::value::TensorElementType::Float32));
    if precision == Precision::Fp16 && model.active_provider != ExecutionProvider::TensorRt && float32 {
        let reason = format!(
            "precision=fp16: '{}' is a float32 model and the {} provider runs it in float32; use a float16 export \
             (e.g. inswapper_128_fp16.onnx) or the TensorRT provider",
            model.path.display(),
            model.active_provider.nick()
        );
        gst::warning!(cat, obj = element, "{reason}");
        gst::element_warning!(element, gst::LibraryError::Settings, ("{}", reason));
    }
}

/// `model` reopened by `reopen` (given the options to reopen it with) to replay as a CUDA graph,
/// when the element's `cuda-graph` allows it on this pixel backend (see
/// [`RuntimeSettings::with_cuda_graph`](crate::runtime::RuntimeSettings::with_cuda_graph)) and the
/// reopened model runs on CUDA; else `model` as it was (the graph needs every node on the GPU;
/// the reason goes to the debug log).
pub(crate) fn as_cuda_graph<M: HasModel>(
    element: &gst::Element,
    cat: gst::DebugCategory,
    (runtime, options, pixels_on_gpu): (&crate::runtime::RuntimeSettings, &SessionOptions, bool),
    model: M,
    reopen: impl FnOnce(&SessionOptions) -> Result<M, crate::runtime::RuntimeError>,
) -> M {
    let Some(graph) = runtime.with_cuda_graph(options, model.session(), pixels_on_gpu) else { return model };
    match reopen(&graph) {
        Ok(graphed) if graphed.session().active_provider == ExecutionProvider::Cuda => {
            gst::info!(cat, obj = element, "'{}' replays as a CUDA graph", graphed.session().path.display());
            graphed
        }
        Ok(_) => {
            gst::debug!(cat, obj = element, "'{}' cannot run as a CUDA graph", model.session().path.display());
            model
        }
        Err(e) => {
            gst::debug!(cat, obj = element, "'{}' cannot run as a CUDA graph: {e}", model.session().path.display());
            model
        }
    }
}

/// Whether a face-editing element's faces go into the process's batches of its model with other
/// elements' and lanes' (experimental: on a GPU with `DLC_BATCH_FACES=1`, see
/// [`faces_batched_across_elements`](crate::runtime::faces_batched_across_elements)): `share` joins
/// the model's batcher, and the debug log says which way the faces go.
pub(crate) fn join_batches(
    element: &gst::Element,
    cat: gst::DebugCategory,
    on_gpu: bool,
    share: impl FnOnce() -> Result<String, String>,
) -> bool {
    if !(on_gpu && crate::runtime::faces_batched_across_elements()) {
        return false;
    }
    match share() {
        Ok(how) => {
            gst::info!(cat, obj = element, "faces batched with other users of {how}");
            true
        }
        Err(why) => {
            gst::info!(cat, obj = element, "faces run one by one: {why}");
            false
        }
    }
}

/// A model wrapper with one session (for [`as_cuda_graph`]).
pub(crate) trait HasModel {
    fn session(&self) -> &ModelSession;
}

impl HasModel for crate::models::swapper::inswapper::Inswapper {
    fn session(&self) -> &ModelSession {
        self.model()
    }
}

impl HasModel for crate::models::enhancer::Enhancer {
    fn session(&self) -> &ModelSession {
        self.model()
    }
}

impl HasModel for crate::models::occluder::Occluder {
    fn session(&self) -> &ModelSession {
        self.model()
    }
}

impl HasModel for crate::models::parser::Parser {
    fn session(&self) -> &ModelSession {
        self.model()
    }
}

/// Model runs at start on the GPU: the first run of a model pays cuDNN's algorithm search and
/// ONNX Runtime's memory planning, which would otherwise stall the first frame. One run: ONNX
/// Runtime keeps CUDA graphs per thread and captures one at a thread's third run, so a capture
/// here would only serve the thread that starts the element, not the one that streams (those
/// captures happen on the first frames, under the exclusive GPU work lock, see
/// [`crate::runtime::gpu_work`]).
pub(crate) const WARM_UP_RUNS: usize = 1;

/// Logs a failed warm-up (the first frame then reports whatever is wrong, on the bus).
pub(crate) fn log_warm_up(element: &gst::Element, cat: gst::DebugCategory, result: Result<(), String>) {
    if let Err(e) = result {
        gst::warning!(cat, obj = element, "warming the model up failed: {e}");
    }
}

/// Frames between two step-time reports in the debug log.
const REPORT_FRAMES: u64 = 300;

/// Counts a frame and, every [`REPORT_FRAMES`] frames when `cat` logs at DEBUG, logs the mean
/// time of each step over them (`report` gathers and clears the totals).
pub(crate) fn report_step_times(
    element: &gst::Element,
    cat: gst::DebugCategory,
    frames: &mut u64,
    report: impl FnOnce() -> String,
) {
    *frames += 1;
    if frames.is_multiple_of(REPORT_FRAMES) && cat.threshold() >= gst::DebugLevel::Debug {
        gst::debug!(cat, obj = element, "mean time per call over the last {REPORT_FRAMES} frames: {}", report());
    }
}
/// A bus message recorded for later, as `post` will send it.
type Deferred = Box<dyn FnOnce(&gst::Element) + Send>;

/// Bus messages that an element decides on while it holds one of its locks, posted only once
/// every lock is released: an application's synchronous bus handler runs inside the post, and
/// one that reacts by setting a property of the element (which takes the same locks) would
/// deadlock otherwise. Record them with [`defer_message!`].
#[derive(Default)]
#[must_use = "post the messages once the locks are released"]
pub(crate) struct Messages(Vec<Deferred>);

impl Messages {
    /// What `gst::element_warning!`/`element_error!` with the message `text` would post now.
    pub(crate) fn defer<T: gst::MessageErrorDomain + Send + 'static>(
        &mut self,
        kind: gst::ElementMessageType,
        code: T,
        text: String,
        (file, function, line): (&'static str, &'static str, u32),
    ) {
        self.0.push(Box::new(move |element: &gst::Element| {
            element.message_full(kind, code, Some(&text), None, file, function, line)
        }));
    }

    /// Posts the messages in the order they were recorded; call with no lock held.
    pub(crate) fn post(self, element: &gst::Element) {
        for post in self.0 {
            post(element);
        }
    }
}

/// `gst::element_warning!(element, code, (...))` (or `Error`), recorded on a [`Messages`]
/// instead of posted, with the same text and origin. The text is the message itself, which
/// applications show (`err.message`), not only its debug text.
macro_rules! defer_message {
    ($messages:expr, $kind:ident, $code:expr, [$($text:tt)*]) => {
        $messages.defer(
            gst::ElementMessageType::$kind,
            $code,
            format!($($text)*),
            (file!(), gst::glib::function_name!(), line!()),
        )
    };
}
pub(crate) use defer_message;

/// The one-time warning of an element that needs faces but gets buffers without `FaceMeta`.
pub(crate) fn warn_missing_meta(element: &gst::Element, warned: &mut bool, messages: &mut Messages) {
    if !std::mem::replace(warned, true) {
        defer_message!(
            messages,
            Warning,
            gst::StreamError::Format,
            [
                "buffers arrive without face metadata: put dlcdetect upstream of {} (frames pass unchanged)",
                element.factory().map(|f| f.name().to_string()).unwrap_or_default()
            ]
        );
    }
}

/// A rate-limited warning for a face (or frame) the element had to leave as it was.
pub(crate) fn warn_face_failure(limiter: &mut WarningLimiter, what: &str, reason: &str, messages: &mut Messages) {
    if let Some(suppressed) = limiter.check(Instant::now()) {
        defer_message!(
            messages,
            Warning,
            gst::StreamError::Failed,
            ["{}: {} ({} similar warnings suppressed)", what, reason, suppressed]
        );
    }
}

/// Why a buffer of `size` bytes could not be mapped as a frame of `info` (for `access`): most
/// often an upstream element that sent a buffer smaller than its caps say.
pub(crate) fn unmappable(size: usize, info: &gst_video::VideoInfo, access: &str) -> String {
    format!(
        "cannot map the video frame for {access}: the buffer holds {size} bytes, a {}×{} {} frame of the negotiated \
         caps needs {} (is the upstream element sending buffers that match its caps?)",
        info.width(),
        info.height(),
        info.format().to_str(),
        info.size()
    )
}

/// Maps `buf` writable as a frame of `info` and runs `work` on its vision view; a frame that
/// cannot be mapped is an error message in `messages`.
pub(crate) fn with_writable_frame<R>(
    buf: &mut gst::BufferRef,
    info: &gst_video::VideoInfo,
    messages: &mut Messages,
    work: impl FnOnce(&mut FrameViewMut, &mut Messages) -> R,
) -> Result<R, gst::FlowError> {
    let size = buf.size();
    let mut frame = gst_video::VideoFrameRef::from_buffer_ref_writable(buf, info).map_err(|_| {
        defer_message!(messages, Error, gst::StreamError::Format, ["{}", unmappable(size, info, "writing")]);
        gst::FlowError::Error
    })?;
    let mut view = frame_view_mut(&mut frame).map_err(|e| {
        defer_message!(messages, Error, gst::CoreError::Failed, ["{}", e]);
        gst::FlowError::Error
    })?;
    Ok(work(&mut view, messages))
}
