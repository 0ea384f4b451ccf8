// SPDX-License-Identifier: MPL-2.0
//! The face-editing core of dlcswap and dlcenhance: the elements that change the faces of a
//! frame in place. The core owns what the two share: the lanes ([`crate::lanes::InFlight`]),
//! submitting and finishing frames, the negotiated caps, the per-frame skeleton (the faces from
//! the buffer's `FaceMeta` or the one-time missing-meta warning, the GPU work lock, the frame
//! mapped for writing, the rate-limited warnings for the faces left as they were, the faces
//! marked as edited, the step-time reports) and the bus messages posted once its locks are
//! released. An element says what differs through [`FaceEditor`]: how a lane warms up, which
//! faces of a frame to edit (and the warnings that calls for), and how to edit them.

use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use parking_lot::Mutex;

use crate::element::{Messages, WARM_UP_RUNS, log_warm_up, report_step_times, warn_face_failure, warn_missing_meta};
use crate::face::Face;
use crate::lanes::{InFlight, LanesMode, accelerated, lanes_to_open};
use crate::meta::{FaceFlags, FaceMeta};
use crate::runtime::{ModelSession, gpu_work, users_of};
use crate::vision::FrameViewMut;
use crate::warnings::WarningLimiter;

/// One lane's copy of an element's per-frame work (a swapper, a restorer).
pub(crate) trait FaceLane: Send + 'static {
    /// What the warm-up takes from the element's settings (dlcenhance: CodeFormer's fidelity).
    type WarmUpSettings;

    /// The model that edits the faces: its provider decides what `lanes=auto` opens.
    fn model(&self) -> &ModelSession;

    /// Whether one of the lane's models may capture a CUDA graph on this thread (then the frame
    /// takes the GPU work lock exclusively, see [`gpu_work`]).
    fn may_capture_here(&self) -> bool;

    /// Warms the lane's models up ([`WARM_UP_RUNS`] runs), on the thread that will run them.
    fn warm_up(&mut self, runs: usize, settings: &Self::WarmUpSettings) -> Result<(), String>;

    /// Called on every frame that has face metadata, before any face is edited: the lane drops
    /// what it kept for faces that left.
    fn begin_frame(&mut self, faces: &[Face]);

    /// The mean time of each step since the last call, for the debug log.
    fn take_report(&mut self) -> String;

    /// The caps changed: the lane forgets what it kept from frames of other caps.
    fn caps_changed(&mut self) {}
}

/// A face the element had to leave as it was.
pub(crate) struct FaceFailure {
    /// The face's index in the frame's `FaceMeta`.
    pub index: usize,
    /// For the debug log: "not swapped", "not recognised".
    pub outcome: &'static str,
    /// The warning's text before the reason: what happened to the face.
    pub what: &'static str,
    pub reason: String,
}

/// What an element that edits faces in place tells the core.
pub(crate) trait FaceEditor: BaseTransformImpl
where
    <Self as ObjectSubclass>::Type: IsA<gst::Element>,
{
    type Lane: FaceLane;
    /// What the element keeps for one run beyond the core's (dlcswap: its recogniser and the
    /// warnings said once).
    type Run: Send + 'static;
    /// The element's settings for one frame, read once per frame.
    type Params;
    /// What [`FaceEditor::plan_frame`] hands to [`FaceEditor::edit_faces`].
    type Plan;

    /// The element's debug category.
    const CAT: &'static std::sync::LazyLock<gst::DebugCategory>;
    /// The lanes' thread names: `{LANE_THREAD}-N`.
    const LANE_THREAD: &'static str;
    /// The work, in the error a panic posts ("internal error while swapping a frame").
    const DOING: &'static str;
    /// How the edited faces are marked in the `FaceMeta`.
    const EDITED: FaceFlags;

    /// The element's core.
    fn editing(&self) -> &FaceEditing<Self::Lane, Self::Run>;

    /// What a lane's warm-up takes from the settings.
    fn warm_up_settings(&self) -> <Self::Lane as FaceLane>::WarmUpSettings;

    /// The settings for one frame.
    fn frame_params(&self) -> Self::Params;

    /// Called with the run's state locked, for a frame with face metadata: the warnings the
    /// frame calls for (into `messages`) and what to edit; `None` when nothing is.
    fn plan_frame(
        &self,
        run: &mut Self::Run,
        params: &Self::Params,
        faces: &[Face],
        messages: &mut Messages,
    ) -> Option<Self::Plan>;

    /// Edits the faces of the mapped `frame` with `lane`, under the GPU work lock and with no
    /// lock of the element held; returns the faces edited and puts those it had to leave as
    /// they were in `failures`.
    fn edit_faces(
        &self,
        lane: &mut Self::Lane,
        plan: Self::Plan,
        params: &Self::Params,
        frame: &mut FrameViewMut,
        faces: &mut [Face],
        failures: &mut Vec<FaceFailure>,
    ) -> Vec<usize>;
}

/// What one run of the element keeps, beyond its lanes.
struct Run<R> {
    info: Option<gst_video::VideoInfo>,
    /// Counts the caps set: a lane that last saw other caps forgets what it kept.
    caps_epoch: u64,
    warned_no_meta: bool,
    failures: WarningLimiter,
    element: R,
}

/// One lane: the element's work, the frames it handled (for its step-time reports) and the
/// caps it last saw.
pub(crate) struct Lane<L> {
    work: L,
    frames: u64,
    caps_epoch: u64,
}

/// The core an element holds: its run's state and its lanes. The single lane (`lanes=1`) is
/// locked before the run's state, never while it is held.
pub(crate) struct FaceEditing<L, R> {
    run: Mutex<Option<Run<R>>>,
    lanes: InFlight<Lane<L>>,
}

impl<L: FaceLane, R: Send + 'static> FaceEditing<L, R> {
    /// Nothing runs until [`FaceEditing::start`]; `cat` is the element's debug category.
    pub(crate) fn new(cat: gst::DebugCategory) -> Self {
        FaceEditing { run: Mutex::new(None), lanes: InFlight::new(cat) }
    }

    /// Opens the lanes `mode` asks for with `open`: the first one, then as many more as `mode`
    /// wants once the first one's provider is known (see [`lanes_to_open`]). A lane that cannot
    /// be opened fails the start when its number was asked for; `auto` keeps the lanes it has and
    /// says why it has fewer (a GPU short of memory for three copies still runs with one).
    pub(crate) fn open_lanes<E: std::fmt::Display>(
        element: &gst::Element,
        cat: gst::DebugCategory,
        mode: LanesMode,
        mut open: impl FnMut() -> Result<L, E>,
    ) -> Result<Vec<L>, E> {
        let first = open()?;
        // The first lane's own handle is one user of its model file.
        let used_elsewhere = users_of(&first.model().path) > 1;
        let count = lanes_to_open(mode, accelerated(first.model().active_provider), used_elsewhere);
        let mut lanes = vec![first];
        if let Some(e) = open_more(&mut lanes, count, mode == LanesMode::Auto, open)? {
            let reason = format!("lanes=auto: {} of {count} lanes could be made, going on with them: {e}", lanes.len());
            gst::warning!(cat, obj = element, "{reason}");
            gst::element_warning!(element, gst::ResourceError::NoSpaceLeft, ("{}", reason));
        }
        Ok(lanes)
    }

    /// Starts a run with the element's state `run` and its `lanes` (from
    /// [`FaceEditing::open_lanes`] with `mode`), each warmed up on the thread that runs it.
    pub(crate) fn start<T>(&self, imp: &T, mode: LanesMode, run: R, lanes: Vec<L>) -> Result<(), gst::ErrorMessage>
    where
        T: FaceEditor<Lane = L, Run = R>,
        T::Type: IsA<gst::Element> + Send + Sync,
    {
        let run =
            Run { info: None, caps_epoch: 0, warned_no_meta: false, failures: WarningLimiter::default(), element: run };
        *self.run.lock() = Some(run);
        let lanes = lanes.into_iter().map(|work| Lane { work, frames: 0, caps_epoch: 0 }).collect();
        self.lanes.start(imp, T::LANE_THREAD, T::DOING, mode, lanes, warm_up::<T>, edit_frame::<T>)
    }

    /// Ends the run: the lanes first (each finishes its frame), then the run's state, freed
    /// under the GPU work lock (dlcswap's recogniser may live on the GPU).
    pub(crate) fn stop(&self, element: &gst::Element) {
        // Not under the GPU work lock: a lane may be waiting for it to finish its frame (the
        // lanes free their models under it themselves).
        self.lanes.stop(element);
        let run = self.run.lock().take();
        let gpu = gpu_work(false);
        drop(run);
        drop(gpu);
    }

    /// The caps negotiated (`set_info`): the lanes forget what they kept under other caps.
    pub(crate) fn set_info(&self, info: &gst_video::VideoInfo) {
        if let Some(run) = self.run.lock().as_mut() {
            run.info = Some(info.clone());
            run.caps_epoch += 1;
        }
    }

    /// How many lanes work now (`lanes-active`).
    pub(crate) fn lanes_active(&self) -> u32 {
        self.lanes.active()
    }

    /// `transform_ip`: the frame edited by the single lane, on the streaming thread.
    pub(crate) fn transform_ip<T>(&self, imp: &T, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError>
    where
        T: FaceEditor<Lane = L, Run = R>,
        T::Type: IsA<gst::Element>,
    {
        self.lanes.with_single(|lane| edit_frame(imp, lane, buf))
    }

    /// `submit_input_buffer`, see [`InFlight::submit_input_buffer`].
    pub(crate) fn submit_input_buffer<T: BaseTransformImpl>(
        &self,
        imp: &T,
        is_discont: bool,
        inbuf: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        self.lanes.submit_input_buffer(imp, is_discont, inbuf)
    }

    /// `generate_output`, see [`InFlight::generate_output`].
    pub(crate) fn generate_output<T: BaseTransformImpl>(
        &self,
        imp: &T,
    ) -> Result<GenerateOutputSuccess, gst::FlowError> {
        self.lanes.generate_output(imp)
    }

    /// `sink_event`, see [`InFlight::sink_event`].
    pub(crate) fn sink_event<T: BaseTransformImpl>(&self, imp: &T, event: gst::Event) -> bool {
        self.lanes.sink_event(imp, event)
    }

    /// `query`, see [`InFlight::query`].
    pub(crate) fn query<T: BaseTransformImpl>(
        &self,
        imp: &T,
        direction: gst::PadDirection,
        query: &mut gst::QueryRef,
    ) -> bool {
        self.lanes.query(imp, direction, query)
    }
}

/// Adds lanes made by `open` to `lanes` until there are `count`. The first failure ends it: an
/// error when `may_stop_short` is false, else the lanes made so far stay and the reason is
/// returned.
fn open_more<L, E>(
    lanes: &mut Vec<L>,
    count: usize,
    may_stop_short: bool,
    mut open: impl FnMut() -> Result<L, E>,
) -> Result<Option<E>, E> {
    while lanes.len() < count {
        match open() {
            Ok(lane) => lanes.push(lane),
            Err(e) if may_stop_short => return Ok(Some(e)),
            Err(e) => return Err(e),
        }
    }
    Ok(None)
}

/// Warms `lane` up on the GPU, on the thread that will run it.
fn warm_up<T>(imp: &T, lane: &mut Lane<T::Lane>)
where
    T: FaceEditor,
    T::Type: IsA<gst::Element>,
{
    let settings = imp.warm_up_settings();
    let _gpu = gpu_work(false);
    log_warm_up(imp.obj().upcast_ref(), **T::CAT, lane.work.warm_up(WARM_UP_RUNS, &settings));
}

/// Edits the faces of `buf` with `lane` and marks them in its meta; the bus messages the frame
/// calls for go out once no lock is held.
fn edit_frame<T>(
    imp: &T,
    lane: &mut Lane<T::Lane>,
    buf: &mut gst::BufferRef,
) -> Result<gst::FlowSuccess, gst::FlowError>
where
    T: FaceEditor,
    T::Type: IsA<gst::Element>,
{
    let mut messages = Messages::default();
    let edited = edit_faces(imp, lane, buf, &mut messages);
    messages.post(imp.obj().upcast_ref());
    FaceMeta::mark(buf, &edited?, T::EDITED);
    Ok(gst::FlowSuccess::Ok)
}

/// Edits the faces of one frame with `lane`, returning which were edited; the bus messages it
/// decides on go to `messages`, for the caller to post once the locks are released. The run's
/// state is locked only to read it and to count failures, so that lanes edit their frames at
/// the same time.
fn edit_faces<T>(
    imp: &T,
    lane: &mut Lane<T::Lane>,
    buf: &mut gst::BufferRef,
    messages: &mut Messages,
) -> Result<Vec<usize>, gst::FlowError>
where
    T: FaceEditor,
    T::Type: IsA<gst::Element>,
{
    let params = imp.frame_params();
    let element = imp.obj();
    let (info, plan, mut faces) = {
        let mut guard = imp.editing().run.lock();
        let run = guard.as_mut().ok_or(gst::FlowError::Flushing)?;
        let info = run.info.clone().ok_or(gst::FlowError::NotNegotiated)?;
        if lane.caps_epoch != run.caps_epoch {
            lane.work.caps_changed();
            lane.caps_epoch = run.caps_epoch;
        }
        let Some(faces) = buf.meta::<FaceMeta>().map(|m| m.faces().to_vec()) else {
            warn_missing_meta(element.upcast_ref(), &mut run.warned_no_meta, messages);
            return Ok(Vec::new());
        };
        let plan = imp.plan_frame(&mut run.element, &params, &faces, messages);
        (info, plan, faces)
    };
    // What the lane drops may live on the GPU.
    let _gpu = gpu_work(lane.work.may_capture_here());
    lane.work.begin_frame(&faces);
    let Some(plan) = plan else { return Ok(Vec::new()) };

    let mut failures = Vec::new();
    let edited = crate::element::with_writable_frame(buf, &info, messages, |view, _| {
        imp.edit_faces(&mut lane.work, plan, &params, view, &mut faces, &mut failures)
    })?;
    if !failures.is_empty()
        && let Some(run) = imp.editing().run.lock().as_mut()
    {
        for FaceFailure { index, outcome, what, reason } in failures {
            gst::debug!(**T::CAT, imp = imp, "face {index} {outcome}: {reason}");
            warn_face_failure(&mut run.failures, what, &reason, messages);
        }
    }
    report_step_times(element.upcast_ref(), **T::CAT, &mut lane.frames, || lane.work.take_report());
    Ok(edited)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Lanes asked for by number are all made or the start fails; `auto` keeps those it made.
    #[test]
    fn auto_keeps_the_lanes_it_could_make() {
        let opener = |works: usize| {
            let mut made = 0;
            move || {
                made += 1;
                if made <= works { Ok(made) } else { Err(format!("lane {made}: out of memory")) }
            }
        };
        let mut lanes = vec![0];
        assert_eq!(open_more(&mut lanes, 3, false, opener(5)), Ok(None));
        assert_eq!(lanes, [0, 1, 2]);
        let mut lanes = vec![0];
        assert_eq!(open_more(&mut lanes, 3, false, opener(1)), Err("lane 2: out of memory".to_string()));
        let mut lanes = vec![0];
        assert_eq!(open_more(&mut lanes, 3, true, opener(1)), Ok(Some("lane 2: out of memory".to_string())));
        assert_eq!(lanes, [0, 1], "auto goes on with the lanes it has");
    }
}
