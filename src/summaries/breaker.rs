//! A circuit breaker per provider: it opens when at least half of the recent calls failed,
//! refuses calls while open, and after the open period lets one probe through (half-open):
//! success closes it, failure opens it again.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The breaker's position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls go through.
    Closed,
    /// Calls are refused until the open period ends.
    Open,
    /// One probe call is in flight; others are refused.
    HalfOpen,
}

impl BreakerState {
    /// The value of the breaker-state gauge: 0 closed, 1 open, 2 half-open.
    pub fn gauge(self) -> f64 {
        match self {
            Self::Closed => 0.0,
            Self::Open => 1.0,
            Self::HalfOpen => 2.0,
        }
    }
}

/// When a breaker opens and for how long.
#[derive(Debug, Clone, Copy)]
pub struct BreakerSettings {
    /// Failure share of the window that opens the breaker (0.5 = 50 %).
    pub failure_ratio: f64,
    /// Calls counted: those of the last `window`.
    pub window: Duration,
    /// Fewest calls in the window before the ratio counts.
    pub min_calls: usize,
    /// How long the breaker stays open before a probe.
    pub open_for: Duration,
}

#[derive(Debug)]
struct Inner {
    state: BreakerState,
    opened_at: Option<Instant>,
    outcomes: VecDeque<(Instant, bool)>,
}

/// See the module documentation.
#[derive(Debug)]
pub struct Breaker {
    settings: BreakerSettings,
    inner: Mutex<Inner>,
}

impl Breaker {
    /// A closed breaker.
    pub fn new(settings: BreakerSettings) -> Self {
        Self {
            settings,
            inner: Mutex::new(Inner { state: BreakerState::Closed, opened_at: None, outcomes: VecDeque::new() }),
        }
    }

    /// The current state (an open breaker whose period ended reports half-open only once a
    /// probe has been allowed).
    pub fn state(&self) -> BreakerState {
        self.inner.lock().map_or(BreakerState::Open, |inner| inner.state)
    }

    /// Whether a call may go out now. Moves an expired open breaker to half-open and lets
    /// exactly one probe through.
    pub fn allow(&self, now: Instant) -> bool {
        let Ok(mut inner) = self.inner.lock() else { return false };
        match inner.state {
            BreakerState::Closed => true,
            BreakerState::HalfOpen => false,
            BreakerState::Open => {
                if inner.opened_at.is_some_and(|at| now.duration_since(at) >= self.settings.open_for) {
                    inner.state = BreakerState::HalfOpen;
                    true
                } else {
                    false
                }
            }
        }
    }

    /// Records a call's outcome and returns the state after it.
    pub fn record(&self, now: Instant, success: bool) -> BreakerState {
        let Ok(mut inner) = self.inner.lock() else { return BreakerState::Open };
        if inner.state == BreakerState::HalfOpen {
            if success {
                inner.state = BreakerState::Closed;
                inner.outcomes.clear();
            } else {
                inner.state = BreakerState::Open;
                inner.opened_at = Some(now);
            }
            return inner.state;
        }
        inner.outcomes.push_back((now, success));
        let window = self.settings.window;
        while inner.outcomes.front().is_some_and(|(at, _)| now.duration_since(*at) > window) {
            inner.outcomes.pop_front();
        }
        let calls = inner.outcomes.len();
        let failures = inner.outcomes.iter().filter(|(_, ok)| !ok).count();
        if inner.state == BreakerState::Closed
            && calls >= self.settings.min_calls
            && failures as f64 >= self.settings.failure_ratio * calls as f64
        {
            inner.state = BreakerState::Open;
            inner.opened_at = Some(now);
            inner.outcomes.clear();
        }
        inner.state
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker() -> Breaker {
        Breaker::new(BreakerSettings {
            failure_ratio: 0.5,
            window: Duration::from_secs(60),
            min_calls: 4,
            open_for: Duration::from_secs(60),
        })
    }

    #[test]
    fn opens_at_half_failures_then_probes_once_after_the_open_period() {
        let b = breaker();
        let t0 = Instant::now();
        for ok in [true, false, true] {
            assert!(b.allow(t0));
            assert_eq!(b.record(t0, ok), BreakerState::Closed, "too few calls to judge");
        }
        assert_eq!(b.record(t0, false), BreakerState::Open, "2 of 4 failed");
        assert!(!b.allow(t0 + Duration::from_secs(59)));
        assert!(b.allow(t0 + Duration::from_secs(60)), "the probe goes out");
        assert_eq!(b.state(), BreakerState::HalfOpen);
        assert!(!b.allow(t0 + Duration::from_secs(60)), "only one probe");
        assert_eq!(b.record(t0 + Duration::from_secs(61), false), BreakerState::Open, "a failed probe reopens");
        assert!(b.allow(t0 + Duration::from_secs(121)));
        assert_eq!(b.record(t0 + Duration::from_secs(121), true), BreakerState::Closed, "a good probe closes");
        assert!(b.allow(t0 + Duration::from_secs(121)));
    }

    #[test]
    fn old_failures_leave_the_window() {
        let b = breaker();
        let t0 = Instant::now();
        b.record(t0, false);
        b.record(t0, false);
        let later = t0 + Duration::from_secs(120);
        for _ in 0..3 {
            b.record(later, true);
        }
        assert_eq!(b.record(later, false), BreakerState::Closed, "1 of 4 in the window failed");
    }
}
