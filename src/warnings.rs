// SPDX-License-Identifier: MPL-2.0
//! Rate limiting for per-frame warnings, so that a model failing on every frame posts one bus
//! warning every few seconds (with a count) instead of flooding the bus.

use std::time::{Duration, Instant};

/// Minimum time between two posted warnings of the same kind.
pub(crate) const WARNING_INTERVAL: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub(crate) struct WarningLimiter {
    last_posted: Option<Instant>,
    suppressed: u64,
}

impl WarningLimiter {
    /// Whether to post now; `Some(n)` carries how many warnings were held back since the last.
    pub(crate) fn check(&mut self, now: Instant) -> Option<u64> {
        match self.last_posted {
            Some(last) if now.duration_since(last) < WARNING_INTERVAL => {
                self.suppressed += 1;
                None
            }
            _ => {
                self.last_posted = Some(now);
                Some(std::mem::take(&mut self.suppressed))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posts_once_per_interval_with_count() {
        let mut limiter = WarningLimiter::default();
        let t0 = Instant::now();
        assert_eq!(limiter.check(t0), Some(0));
        assert_eq!(limiter.check(t0 + Duration::from_secs(1)), None);
        assert_eq!(limiter.check(t0 + Duration::from_secs(2)), None);
        assert_eq!(limiter.check(t0 + WARNING_INTERVAL + Duration::from_millis(1)), Some(2));
    }
}
