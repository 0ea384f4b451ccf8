// SPDX-License-Identifier: MPL-2.0
//! The median time of a step, for the CPU-cost tables of `bench overhead` and `mask-cost`.

use std::time::Instant;

/// Median milliseconds of `f` over `runs` calls, after one unmeasured call (first-touch of its
/// buffers, a kernel built).
pub fn median(runs: usize, mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[runs / 2]
}
