//! The daemon's clock: the system's, or for tests one that starts at
//! `RUNNER_CLOCK_START` (RFC 3339) and runs `RUNNER_CLOCK_SPEED` times faster, so a test
//! can watch a 06:30 New York run happen a few real seconds after starting the daemon.

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};

use super::SchedulerError;
use crate::error::Result;

#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// Where the clock started, and when (real time) it did.
    start: DateTime<Utc>,
    started: Instant,
    speed: f64,
}

impl Clock {
    /// The system clock.
    pub fn system() -> Self {
        Clock {
            start: Utc::now(),
            started: Instant::now(),
            speed: 1.0,
        }
    }

    /// The system clock, or the test clock when `RUNNER_CLOCK_START` / `RUNNER_CLOCK_SPEED`
    /// are set.
    ///
    /// # Errors
    /// A value that is not an RFC 3339 instant or a positive factor.
    pub fn from_env() -> Result<Self> {
        let mut clock = Clock::system();
        if let Ok(start) = std::env::var("RUNNER_CLOCK_START") {
            clock.start = DateTime::parse_from_rfc3339(start.trim())
                .map_err(|source| SchedulerError::ClockStart {
                    value: start.clone(),
                    source,
                })?
                .with_timezone(&Utc);
        }
        if let Ok(speed) = std::env::var("RUNNER_CLOCK_SPEED") {
            clock.speed = speed
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|s| s.is_finite() && *s > 0.0)
                .ok_or_else(|| SchedulerError::ClockSpeed {
                    value: speed.clone(),
                })?;
        }
        Ok(clock)
    }

    pub fn now(&self) -> DateTime<Utc> {
        let elapsed = self.started.elapsed().mul_f64(self.speed);
        self.start + chrono::Duration::from_std(elapsed).unwrap_or(chrono::TimeDelta::MAX)
    }

    /// Real time until the clock shows `at` (zero when it already does).
    pub fn until(&self, at: DateTime<Utc>) -> Duration {
        (at - self.now())
            .to_std()
            .map_or(Duration::ZERO, |d| d.div_f64(self.speed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fast_clock_reaches_an_instant_in_a_fraction_of_the_real_time() {
        let start = DateTime::parse_from_rfc3339("2026-03-09T10:29:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let clock = Clock {
            start,
            started: Instant::now(),
            speed: 60.0,
        };
        let wait = clock.until(start + chrono::Duration::minutes(1));
        assert!(
            wait <= Duration::from_secs(1) && wait > Duration::from_millis(900),
            "{wait:?}"
        );
        assert_eq!(
            clock.until(start - chrono::Duration::minutes(1)),
            Duration::ZERO
        );
    }
}
