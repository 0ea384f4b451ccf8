// SPDX-License-Identifier: MPL-2.0
//! The `BaseTransform` side of the lanes that dlcswap and dlcenhance share: submitting, sending
//! on in order, events, flushes, the latency query, and `lanes=auto` at run time.

use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use gst::glib;
use gst::prelude::*;
use gst::subclass::prelude::*;
use gst_base::prelude::*;
use gst_base::subclass::base_transform::GenerateOutputSuccess;
use gst_base::subclass::prelude::*;
use parking_lot::Mutex;

use super::auto::GROWTH_WINDOW;
use super::{Lanes, LanesMode, Starter, Work, auto_lanes, grown_lanes};

/// What an element does to one frame with one lane's copy of the per-frame work.
pub type Process<T, L> = fn(&T, &mut L, &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError>;

/// How an element warms one lane's models up (on the GPU), on the thread that will run it.
pub type WarmUp<T, L> = fn(&T, &mut L);

/// The time the lanes spent on their frames since the last look (for `lanes=auto`).
#[derive(Debug, Default)]
struct FrameTimes {
    total: Duration,
    frames: u32,
}

/// `lanes=auto` with several lanes open (on a GPU): what it chose at the first frame.
#[derive(Debug)]
struct AutoLanes {
    /// The lanes made at start: the most that can work.
    opened: u32,
    /// `None` until the first frame; then whether the source is live (only a live source's
    /// lanes grow).
    live: Option<bool>,
}

/// An element's lanes as `BaseTransform` sees them. With one lane the frame is worked on by the
/// streaming thread ([`InFlight::with_single`] from `transform_ip`); with more, the element's
/// `submit_input_buffer`, `generate_output`, `sink_event` and `query` hand over to the methods
/// of the same names here.
pub struct InFlight<L> {
    cat: gst::DebugCategory,
    /// The lane of `lanes=1`, used by the streaming thread.
    single: Mutex<Option<L>>,
    /// The worker threads of `lanes` > 1 (or of `auto` on a GPU), each with its own lane.
    threads: Mutex<Option<Lanes>>,
    /// How many lanes work on frames now (0 when stopped): `lanes-active`, and for the latency
    /// query, which must not wait for a lock held while frames are pushed.
    active: AtomicU32,
    /// Set while `lanes=auto` chooses among several lanes.
    auto: Mutex<Option<AutoLanes>>,
    /// Filled by the lanes' threads, read by `auto`.
    times: Arc<Mutex<FrameTimes>>,
}

impl<L: Send + 'static> InFlight<L> {
    /// Nothing in flight until [`InFlight::start`]; `cat` is the element's debug category.
    pub fn new(cat: gst::DebugCategory) -> Self {
        InFlight {
            cat,
            single: Mutex::new(None),
            threads: Mutex::new(None),
            active: AtomicU32::new(0),
            auto: Mutex::new(None),
            times: Arc::default(),
        }
    }

    /// How many lanes work on frames now: `lanes-active` (0 when stopped).
    pub fn active(&self) -> u32 {
        self.active.load(Ordering::Relaxed)
    }

    /// Takes the element's lanes, opened in its `start` for `mode` (see [`lanes_to_open`]), and
    /// warms each up with `warm_up` on the thread that will run it (see [`Lanes::start`]): one
    /// lane is warmed up here and kept for the streaming thread; several get a thread each (named
    /// `name-N`) that runs `process` on their frames, `doing` (say "swapping") naming the work in
    /// the error a panic posts. With `auto` and several lanes one works until the first frame
    /// decides (see [`auto_lanes`]): it is what a live source gets, so the latency answered before
    /// that frame holds.
    #[allow(clippy::too_many_arguments)]
    pub fn start<T>(
        &self,
        imp: &T,
        name: &str,
        doing: &'static str,
        mode: LanesMode,
        lanes: Vec<L>,
        warm_up: WarmUp<T, L>,
        process: Process<T, L>,
    ) -> Result<(), gst::ErrorMessage>
    where
        T: ObjectSubclass,
        T::Type: IsA<gst::Element> + Send + Sync,
    {
        let opened = lanes.len().max(1) as u32;
        let auto = mode == LanesMode::Auto && opened > 1;
        *self.auto.lock() = auto.then_some(AutoLanes { opened, live: None });
        *self.times.lock() = FrameTimes::default();
        if lanes.len() > 1 {
            let starters: Vec<Starter> = lanes
                .into_iter()
                .map(|lane| Self::starter(imp, lane, doing, warm_up, process, self.times.clone()))
                .collect();
            let threads = Lanes::start(name, starters)
                .map_err(|e| gst::error_msg!(gst::CoreError::Failed, ("cannot start the lanes' threads: {}", e)))?;
            *self.threads.lock() = Some(threads);
        } else {
            let mut lanes = lanes;
            lanes.iter_mut().for_each(|lane| warm_up(imp, lane));
            *self.single.lock() = lanes.into_iter().next();
        }
        if mode == LanesMode::Auto && !auto {
            gst::info!(self.cat, imp = imp, "lanes=auto: 1 lane (the model does not run on a GPU)");
        }
        self.set_active(imp.obj().upcast_ref(), if auto { 1 } else { opened });
        Ok(())
    }

    /// Ends the lanes: joins their threads (each finishes the frame it is on) with no lock held.
    pub fn stop(&self, element: &gst::Element) {
        let threads = self.threads.lock().take();
        drop(threads);
        let single = self.single.lock().take();
        let gpu = crate::runtime::gpu_work(false);
        drop(single);
        drop(gpu);
        *self.auto.lock() = None;
        self.set_active(element, 0);
    }

    /// Stores how many lanes work and says so (`lanes-active`) when that changed; call with no
    /// lock held (notify handlers run here).
    fn set_active(&self, element: &gst::Element, active: u32) {
        if self.active.swap(active, Ordering::Relaxed) != active {
            element.notify("lanes-active");
        }
    }

    /// Runs `f` on the single lane (`transform_ip` with `lanes=1`); `Flushing` when stopped.
    pub fn with_single<R>(&self, f: impl FnOnce(&mut L) -> Result<R, gst::FlowError>) -> Result<R, gst::FlowError> {
        let mut single = self.single.lock();
        f(single.as_mut().ok_or(gst::FlowError::Flushing)?)
    }

    /// What one lane's thread does: warms `lane`, its own, up, then works on its frames.
    fn starter<T>(
        imp: &T,
        mut lane: L,
        doing: &'static str,
        warm_up: WarmUp<T, L>,
        process: Process<T, L>,
        times: Arc<Mutex<FrameTimes>>,
    ) -> Starter
    where
        T: ObjectSubclass,
        T::Type: IsA<gst::Element> + Send + Sync,
    {
        let element = imp.obj().downgrade();
        Box::new(move || {
            if let Some(element) = element.upgrade() {
                warm_up(element.imp(), &mut lane);
            }
            Self::work(element, lane, doing, process, times)
        })
    }

    /// What one lane's thread does with a frame: `lane` is its own; the time it took goes to
    /// `times`.
    fn work<T>(
        element: glib::WeakRef<T::Type>,
        mut lane: L,
        doing: &'static str,
        process: Process<T, L>,
        times: Arc<Mutex<FrameTimes>>,
    ) -> Work
    where
        T: ObjectSubclass,
        T::Type: IsA<gst::Element> + Send + Sync,
    {
        Box::new(move |mut buffer: gst::Buffer| {
            let element = element.upgrade().ok_or(gst::FlowError::Flushing)?;
            let began = Instant::now();
            let done =
                std::panic::catch_unwind(AssertUnwindSafe(|| process(element.imp(), &mut lane, buffer.make_mut())));
            let mut times = times.lock();
            times.total += began.elapsed();
            times.frames += 1;
            drop(times);
            match done {
                Ok(result) => result.map(|_| buffer),
                Err(_) => {
                    gst::element_error!(element, gst::CoreError::Failed, ("internal error while {} a frame", doing));
                    Err(gst::FlowError::Error)
                }
            }
        })
    }

    /// `submit_input_buffer`: hands the frame to the next lane when there are several.
    pub fn submit_input_buffer<T: BaseTransformImpl>(
        &self,
        imp: &T,
        is_discont: bool,
        inbuf: gst::Buffer,
    ) -> Result<gst::FlowSuccess, gst::FlowError> {
        if self.threads.lock().is_none() {
            return imp.parent_submit_input_buffer(is_discont, inbuf);
        }
        self.choose_at_first_frame(imp);
        let active = self.active() as usize;
        let mut threads = self.threads.lock();
        let threads = threads.as_mut().ok_or(gst::FlowError::Flushing)?;
        // In place, as with one lane: a buffer another branch also holds is copied first.
        let mut buffer = inbuf;
        buffer.make_mut();
        threads.submit(buffer, active)?;
        Ok(gst::FlowSuccess::Ok)
    }

    /// `lanes=auto`, at the first frame: from a live source one lane, else [`AUTO_MAX_LANES`].
    fn choose_at_first_frame<T: BaseTransformImpl>(&self, imp: &T) {
        let mut guard = self.auto.lock();
        let Some(auto) = guard.as_mut().filter(|auto| auto.live.is_none()) else { return };
        let live = upstream_is_live(imp);
        auto.live = Some(live);
        let chosen = auto_lanes(true, live).min(auto.opened);
        drop(guard);
        let source = if live { "a live source" } else { "a source that is not live" };
        gst::info!(self.cat, imp = imp, "lanes=auto: {chosen} lanes (the model runs on a GPU, {source})");
        self.change_lanes(imp, chosen);
    }

    /// `lanes=auto` from a live source, after each frame sent on: one more lane when the frames
    /// of the last [`GROWTH_WINDOW`] took longer than the lanes working can keep up with.
    fn grow_if_behind<T: BaseTransformImpl>(&self, imp: &T) {
        let opened = match &*self.auto.lock() {
            Some(AutoLanes { opened, live: Some(true) }) => *opened,
            _ => return,
        };
        let mean = {
            let mut times = self.times.lock();
            if times.frames < GROWTH_WINDOW {
                return;
            }
            let mean = times.total / times.frames;
            *times = FrameTimes::default();
            mean
        };
        let Some(interval) = frame_duration(imp) else { return };
        let active = self.active();
        let grown = grown_lanes(active, opened, mean, interval.into());
        if grown != active {
            gst::info!(
                self.cat,
                imp = imp,
                "lanes=auto: {grown} lanes (a frame took {:.1} ms on average, {active} lanes keep up with {:.1} ms \
                 per frame)",
                mean.as_secs_f64() * 1e3,
                Duration::from(interval).as_secs_f64() * 1e3 * f64::from(active)
            );
            self.change_lanes(imp, grown);
        }
    }

    /// Makes `lanes` lanes work from the next frame, and tells the pipeline that the latency
    /// changed (each lane beyond the first holds a frame).
    fn change_lanes<T: BaseTransformImpl>(&self, imp: &T, lanes: u32) {
        let element = imp.obj();
        let before = self.active();
        self.set_active(element.upcast_ref(), lanes);
        if before != lanes {
            let _ = element.post_message(gst::message::Latency::builder().src(&*element).build());
        }
    }

    /// `generate_output`: the oldest frame once every working lane holds one.
    pub fn generate_output<T: BaseTransformImpl>(&self, imp: &T) -> Result<GenerateOutputSuccess, gst::FlowError> {
        let mut threads = self.threads.lock();
        let Some(lanes) = threads.as_mut() else {
            drop(threads);
            return imp.parent_generate_output();
        };
        // Keep every working lane busy: a frame goes out once all of them hold one.
        let keep = (self.active() as usize).saturating_sub(1);
        let done = lanes.next_done(keep);
        drop(threads);
        match done {
            Some(done) => {
                self.grow_if_behind(imp);
                done.map(GenerateOutputSuccess::Buffer)
            }
            None => Ok(GenerateOutputSuccess::NoOutput),
        }
    }

    /// `sink_event`: a flush drops the frames in flight; other serialized events (caps, segments,
    /// EOS) first send them on, so as not to overtake them.
    pub fn sink_event<T: BaseTransformImpl>(&self, imp: &T, event: gst::Event) -> bool {
        if matches!(event.view(), gst::EventView::FlushStop(_)) {
            // The frames in flight belong to the flushed segment.
            let dropped = self.threads.lock().as_mut().map(Lanes::drain).unwrap_or_default();
            gst::debug!(self.cat, imp = imp, "flush: dropping {} frames in flight", dropped.len());
        } else if event.is_serialized() {
            self.push_in_flight(imp);
        }
        imp.parent_sink_event(event)
    }

    /// Sends the frames in flight on, oldest first (before an event that must follow them). No
    /// lock is held while pushing: downstream may query the element meanwhile.
    fn push_in_flight<T: BaseTransformImpl>(&self, imp: &T) {
        let done = self.threads.lock().as_mut().map(Lanes::drain).unwrap_or_default();
        let src = imp.obj().src_pad().clone();
        for outcome in done {
            match outcome.and_then(|buffer| src.push(buffer)) {
                Ok(_) => {}
                Err(e) => gst::debug!(self.cat, imp = imp, "a frame in flight was not sent on: {e:?}"),
            }
        }
    }

    /// `query`: the latency grows by one frame duration per working lane beyond the first.
    pub fn query<T: BaseTransformImpl>(
        &self,
        imp: &T,
        direction: gst::PadDirection,
        query: &mut gst::QueryRef,
    ) -> bool {
        if !BaseTransformImplExt::parent_query(imp, direction, query) {
            return false;
        }
        let extra_frames = u64::from(self.active().saturating_sub(1));
        if let (gst::PadDirection::Src, gst::QueryViewMut::Latency(latency), true) =
            (direction, query.view_mut(), extra_frames > 0)
            && let Some(frame) = frame_duration(imp)
        {
            let (live, min, max) = latency.result();
            let extra = frame * extra_frames;
            latency.set(live, min + extra, max.map(|m| m + extra));
        }
        true
    }
}

/// Whether the source upstream of `imp` is live (its answer to the latency query).
fn upstream_is_live<T: BaseTransformImpl>(imp: &T) -> bool {
    let mut query = gst::query::Latency::new();
    imp.obj().sink_pad().peer_query(&mut query) && query.result().0
}

/// The duration of one frame of the negotiated caps; `None` without a frame rate.
fn frame_duration<T: BaseTransformImpl>(imp: &T) -> Option<gst::ClockTime> {
    let info = imp.obj().sink_pad().current_caps().and_then(|caps| gst_video::VideoInfo::from_caps(&caps).ok())?;
    let fps = info.fps();
    if fps.numer() <= 0 {
        return None;
    }
    gst::ClockTime::SECOND.mul_div_floor(fps.denom() as u64, fps.numer() as u64)
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use super::*;
    use crate::lanes::AUTO_MAX_LANES;

    /// A filter with `lanes=auto` on three lanes, as on a GPU (the element's lanes are opened on
    /// an accelerator), whose lanes take `delay` per frame; the in-place work does nothing.
    mod slow {
        use super::*;

        static CAT: LazyLock<gst::DebugCategory> =
            LazyLock::new(|| gst::DebugCategory::new("dlctestlanes", gst::DebugColorFlags::empty(), None));

        pub struct SlowLanes {
            pub lanes: InFlight<()>,
            pub delay: Mutex<Duration>,
        }

        impl Default for SlowLanes {
            fn default() -> Self {
                SlowLanes { lanes: InFlight::new(*CAT), delay: Mutex::default() }
            }
        }

        #[glib::object_subclass]
        impl ObjectSubclass for SlowLanes {
            const NAME: &'static str = "GstDlcTestSlowLanes";
            type Type = SlowLanesElement;
            type ParentType = gst_base::BaseTransform;
        }

        impl ObjectImpl for SlowLanes {
            fn properties() -> &'static [glib::ParamSpec] {
                static PROPERTIES: LazyLock<Vec<glib::ParamSpec>> =
                    LazyLock::new(|| vec![glib::ParamSpecUInt::builder("lanes-active").read_only().build()]);
                PROPERTIES.as_ref()
            }

            fn property(&self, _id: usize, _pspec: &glib::ParamSpec) -> glib::Value {
                self.lanes.active().to_value()
            }
        }

        impl GstObjectImpl for SlowLanes {}

        impl ElementImpl for SlowLanes {
            fn metadata() -> Option<&'static gst::subclass::ElementMetadata> {
                static METADATA: LazyLock<gst::subclass::ElementMetadata> = LazyLock::new(|| {
                    gst::subclass::ElementMetadata::new("Test lanes", "Filter/Video", "Slow lanes, auto", "test")
                });
                Some(&*METADATA)
            }

            fn pad_templates() -> &'static [gst::PadTemplate] {
                static TEMPLATES: LazyLock<Vec<gst::PadTemplate>> = LazyLock::new(|| {
                    let caps = gst::Caps::new_empty_simple("video/x-raw");
                    [("src", gst::PadDirection::Src), ("sink", gst::PadDirection::Sink)]
                        .into_iter()
                        .map(|(name, direction)| {
                            gst::PadTemplate::new(name, direction, gst::PadPresence::Always, &caps).unwrap()
                        })
                        .collect()
                });
                TEMPLATES.as_ref()
            }
        }

        impl BaseTransformImpl for SlowLanes {
            const MODE: gst_base::subclass::BaseTransformMode = gst_base::subclass::BaseTransformMode::AlwaysInPlace;
            const PASSTHROUGH_ON_SAME_CAPS: bool = false;
            const TRANSFORM_IP_ON_PASSTHROUGH: bool = false;

            fn start(&self) -> Result<(), gst::ErrorMessage> {
                let lanes = vec![(); AUTO_MAX_LANES as usize];
                self.lanes.start(self, "test-auto", "testing", LanesMode::Auto, lanes, |_, _| {}, slow_frame)
            }

            fn stop(&self) -> Result<(), gst::ErrorMessage> {
                self.lanes.stop(self.obj().upcast_ref());
                Ok(())
            }

            fn transform_ip(&self, buf: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
                self.lanes.with_single(|lane| slow_frame(self, lane, buf))
            }

            fn submit_input_buffer(
                &self,
                is_discont: bool,
                inbuf: gst::Buffer,
            ) -> Result<gst::FlowSuccess, gst::FlowError> {
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

        fn slow_frame(imp: &SlowLanes, _: &mut (), _: &mut gst::BufferRef) -> Result<gst::FlowSuccess, gst::FlowError> {
            let delay = *imp.delay.lock();
            std::thread::sleep(delay);
            Ok(gst::FlowSuccess::Ok)
        }

        glib::wrapper! {
            pub struct SlowLanesElement(ObjectSubclass<SlowLanes>) @extends gst_base::BaseTransform, gst::Element, gst::Object;
        }
    }

    /// What `lanes-active` read at the end of `frames` 30 fps frames from a live or non-live
    /// source through lanes taking `delay` per frame, and how many latency messages the element
    /// posted.
    fn run(live: bool, frames: u32, delay: Duration) -> (u32, usize) {
        gst::init().unwrap();
        let pipeline = gst::parse::launch(&format!(
            "videotestsrc is-live={live} num-buffers={frames} ! video/x-raw,width=64,height=48,framerate=30/1 \
             ! identity name=slot ! fakesink sync=false"
        ))
        .unwrap()
        .downcast::<gst::Pipeline>()
        .unwrap();
        let slot = pipeline.by_name("slot").unwrap();
        let element: slow::SlowLanesElement = glib::Object::new();
        element.imp().delay.lock().clone_from(&delay);
        // In place of the identity: src ! caps ! slow ! sink.
        let before = slot.static_pad("sink").unwrap().peer().unwrap().parent_element().unwrap();
        let after = slot.static_pad("src").unwrap().peer().unwrap().parent_element().unwrap();
        pipeline.remove(&slot).unwrap();
        pipeline.add(&element).unwrap();
        gst::Element::link_many([&before, element.upcast_ref(), &after]).unwrap();
        let bus = pipeline.bus().unwrap();
        pipeline.set_state(gst::State::Playing).unwrap();
        let mut latency_messages = 0;
        for message in bus.iter_timed(gst::ClockTime::from_seconds(30)) {
            match message.view() {
                gst::MessageView::Latency(_) if message.src() == Some(element.upcast_ref()) => latency_messages += 1,
                gst::MessageView::Eos(_) => break,
                gst::MessageView::Error(e) => panic!("{e:?}"),
                _ => {}
            }
        }
        let active = element.property::<u32>("lanes-active");
        pipeline.set_state(gst::State::Null).unwrap();
        assert_eq!(element.property::<u32>("lanes-active"), 0, "stopped");
        (active, latency_messages)
    }

    /// From a file `auto` puts all three lanes to work at the first frame (and says the latency
    /// changed); from a live source that keeps up it stays at one.
    #[test]
    fn auto_on_a_gpu_takes_three_lanes_from_a_file_and_one_from_a_live_source() {
        assert_eq!(run(false, 10, Duration::ZERO), (AUTO_MAX_LANES, 1));
        assert_eq!(run(true, 40, Duration::from_millis(1)), (1, 0));
    }

    /// A live source whose frames take 50 ms at 30 fps (33 ms apart): after a second of frames
    /// a second lane works, which keeps up (two lanes: 67 ms), so no third.
    #[test]
    fn auto_grows_a_live_source_lanes_while_frames_fall_behind() {
        assert_eq!(run(true, 75, Duration::from_millis(50)), (2, 1));
    }
}
