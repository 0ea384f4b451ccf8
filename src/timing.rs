// SPDX-License-Identifier: MPL-2.0
//! Per-step time totals of the per-frame work, so that `GST_DEBUG=dlc*:5` shows where a frame's
//! time goes (on a GPU machine without a profiler this is the only breakdown there is). Reading
//! the clock a few times per frame costs well under a microsecond.

use std::fmt::Write;
use std::time::{Duration, Instant};

/// Totals and counts of named steps.
#[derive(Debug, Clone)]
pub struct StepTimes {
    names: &'static [&'static str],
    totals: Vec<Duration>,
    counts: Vec<u32>,
}

impl StepTimes {
    pub fn new(names: &'static [&'static str]) -> Self {
        StepTimes { names, totals: vec![Duration::ZERO; names.len()], counts: vec![0; names.len()] }
    }

    /// Adds the time since `since` to step `step`; returns now, the start of the next step.
    pub fn lap(&mut self, step: usize, since: Instant) -> Instant {
        let now = Instant::now();
        if let (Some(total), Some(count)) = (self.totals.get_mut(step), self.counts.get_mut(step)) {
            *total += now.duration_since(since);
            *count += 1;
        }
        now
    }

    /// The mean time per call of each step that ran, e.g. `letterbox 0.84 ms, run 2.10 ms`, and
    /// clears the totals.
    pub fn take_report(&mut self) -> String {
        let mut text = String::new();
        for ((name, total), count) in self.names.iter().zip(&mut self.totals).zip(&mut self.counts) {
            if *count > 0 {
                let separator = if text.is_empty() { "" } else { ", " };
                let _ = write!(text, "{separator}{name} {:.2} ms", total.as_secs_f64() * 1e3 / *count as f64);
            }
            (*total, *count) = (Duration::ZERO, 0);
        }
        text
    }
}

/// A face-editing lane's report for the debug log: its model's step times, its own, and where its
/// faces are batched with other elements' the batcher's counters, `; `-separated.
pub fn lane_report(model: &mut StepTimes, own: &mut StepTimes, batches: Option<String>) -> String {
    let parts = [Some(model.take_report()), Some(own.take_report()), batches];
    parts.into_iter().flatten().filter(|part| !part.is_empty()).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_means_of_the_steps_that_ran_and_clears() {
        let mut times = StepTimes::new(&["a", "b", "c"]);
        let start = Instant::now() - Duration::from_millis(4);
        times.lap(0, start);
        times.lap(0, Instant::now() - Duration::from_millis(2));
        times.lap(2, Instant::now() - Duration::from_millis(1));
        times.lap(7, Instant::now());
        let report = times.take_report();
        assert!(report.starts_with("a 3.") && report.contains(", c 1.") && !report.contains('b'), "{report}");
        assert_eq!(times.take_report(), "");
    }

    #[test]
    fn a_lane_report_joins_the_model_the_lane_and_the_batcher() {
        let (mut model, mut own) = (StepTimes::new(&["run"]), StepTimes::new(&["paste"]));
        model.lap(0, Instant::now() - Duration::from_millis(2));
        own.lap(0, Instant::now() - Duration::from_millis(1));
        let report = lane_report(&mut model, &mut own, Some("batcher 3 runs".to_string()));
        assert!(
            report.starts_with("run 2.") && report.contains("; paste 1.") && report.ends_with("; batcher 3 runs"),
            "{report}"
        );
        // Steps that did not run since leave no empty parts.
        assert_eq!(lane_report(&mut model, &mut own, None), "");
    }
}
