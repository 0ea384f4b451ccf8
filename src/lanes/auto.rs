// SPDX-License-Identifier: MPL-2.0
//! `lanes=auto`'s rule, as pure functions: how many lanes to make at start, how many work from
//! the first frame, and when a live source's lanes grow.

use std::time::Duration;

use super::AUTO_MAX_LANES;
use super::LanesMode;
use crate::runtime::ExecutionProvider;

/// Whether `lanes=auto` counts `provider` as an accelerator that a second and third lane keep
/// busier: every provider but the CPU's own and OpenVINO (which runs on the CPU by default).
pub fn accelerated(provider: ExecutionProvider) -> bool {
    !matches!(provider, ExecutionProvider::Cpu | ExecutionProvider::OpenVino)
}

/// How many copies of the per-frame work to open for `mode`, once the first one's provider is
/// known: the number asked for, or for `auto` as many as it may ever use: one where the model runs
/// on the CPU, or where other elements of the process already use the same model file (their
/// streams keep the GPU busy, and each lane is another copy of a captured model in GPU memory).
pub fn lanes_to_open(mode: LanesMode, on_accelerator: bool, model_used_elsewhere: bool) -> usize {
    match mode.fixed() {
        Some(n) => n as usize,
        None if on_accelerator && !model_used_elsewhere => AUTO_MAX_LANES as usize,
        None => 1,
    }
}

/// `lanes=auto`'s choice at the first frame: on the CPU one lane (the lanes would share its cores
/// with ONNX Runtime's own threads); on a GPU from a file [`AUTO_MAX_LANES`], the measured best;
/// from a live source one, which adds no latency, until [`grown_lanes`] says frames fall behind.
pub fn auto_lanes(on_accelerator: bool, live: bool) -> u32 {
    if on_accelerator && !live { AUTO_MAX_LANES } else { 1 }
}

/// `lanes=auto` from a live source: with `active` lanes working, a frame taking `mean` on
/// average and frames coming every `interval`, the lanes keep up while `mean` ≤ `active` ×
/// `interval`; past that one more lane works, up to the `opened` ones. Lanes never go back:
/// a lane that worked costs nothing more than its frame of latency.
pub fn grown_lanes(active: u32, opened: u32, mean: Duration, interval: Duration) -> u32 {
    if active < opened && mean > interval * active { active + 1 } else { active }
}

/// Frames over which [`grown_lanes`] averages (about a second of video).
pub(super) const GROWTH_WINDOW: u32 = 30;

#[cfg(test)]
mod tests {
    use super::*;

    /// `lanes=auto`'s table: one lane on the CPU, live or not; on a GPU three from a file and
    /// one from a live source. The rule only sees "accelerator or not", so a fake GPU is a flag.
    #[test]
    fn auto_chooses_by_provider_and_liveness() {
        assert_eq!(auto_lanes(false, false), 1);
        assert_eq!(auto_lanes(false, true), 1);
        assert_eq!(auto_lanes(true, false), AUTO_MAX_LANES);
        assert_eq!(auto_lanes(true, true), 1);
        assert!(!accelerated(ExecutionProvider::Cpu));
        assert!(!accelerated(ExecutionProvider::OpenVino));
        for gpu in [ExecutionProvider::Cuda, ExecutionProvider::TensorRt, ExecutionProvider::DirectMl] {
            assert!(accelerated(gpu), "{gpu:?}");
        }
    }

    /// `auto` opens one lane on the CPU and as many as it may use on a GPU; a number opens that
    /// many wherever the model runs.
    #[test]
    fn lanes_opened_for_each_mode() {
        assert_eq!(lanes_to_open(LanesMode::Auto, false, false), 1);
        assert_eq!(lanes_to_open(LanesMode::Auto, true, false), AUTO_MAX_LANES as usize);
        // A second stream of the same model on the GPU: one lane (the first keeps its three).
        assert_eq!(lanes_to_open(LanesMode::Auto, true, true), 1);
        for (mode, n) in [(LanesMode::One, 1), (LanesMode::Two, 2), (LanesMode::Three, 3), (LanesMode::Four, 4)] {
            assert_eq!(lanes_to_open(mode, false, false), n);
            assert_eq!(lanes_to_open(mode, true, false), n);
            assert_eq!(lanes_to_open(mode, true, true), n);
            assert_eq!(mode.fixed(), Some(n as u32));
            assert_eq!(mode.nick(), n.to_string());
        }
        assert_eq!(LanesMode::Auto.nick(), "auto");
    }

    /// From a live source a lane is added only when frames take longer than the working lanes
    /// keep up with (30 fps: 33.3 ms per lane), never past the lanes opened, and never removed.
    #[test]
    fn live_lanes_grow_when_frames_fall_behind() {
        let interval = Duration::from_micros(33_333);
        let ms = Duration::from_millis;
        assert_eq!(grown_lanes(1, 3, ms(20), interval), 1, "keeps up");
        assert_eq!(grown_lanes(1, 3, ms(40), interval), 2, "one lane falls behind");
        assert_eq!(grown_lanes(2, 3, ms(60), interval), 2, "two lanes keep up with 60 ms a frame");
        assert_eq!(grown_lanes(2, 3, ms(70), interval), 3);
        assert_eq!(grown_lanes(3, 3, ms(500), interval), 3, "no more than were opened");
        assert_eq!(grown_lanes(3, 3, ms(1), interval), 3, "lanes are not taken back");
    }
}
