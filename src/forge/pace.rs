//! The pace of content-creating calls (POST, PATCH, PUT, DELETE). GitHub's secondary rate limits
//! allow no more than 80 of them a minute (and advise spacing them): a token bucket of 80 that
//! refills at that rate lets a burst through at once and spreads a storm out, instead of
//! earning a 403 and a `retry-after`.

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Content-creating calls allowed in a minute.
pub const PER_MINUTE: u32 = 80;

/// A token bucket, refilled continuously.
#[derive(Debug)]
pub struct Pace {
    capacity: f64,
    per_second: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    /// Takes one token at `now`: how long the caller must wait first (zero when one is there).
    /// The token is spent either way, so waiters queue in order.
    fn take(&mut self, now: Instant, capacity: f64, per_second: f64) -> Duration {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(capacity) - 1.0;
        self.at = now;
        if self.tokens >= 0.0 {
            Duration::ZERO
        } else {
            Duration::from_secs_f64(-self.tokens / per_second)
        }
    }
}

impl Pace {
    pub fn per_minute(calls: u32) -> Self {
        let capacity = f64::from(calls.max(1));
        Pace {
            capacity,
            per_second: capacity / 60.0,
            state: Mutex::new(Bucket {
                tokens: capacity,
                at: Instant::now(),
            }),
        }
    }

    /// Waits until one more content-creating call fits the pace.
    pub async fn admit(&self) {
        let wait = {
            let mut b = self.state.lock().unwrap_or_else(|p| p.into_inner());
            b.take(Instant::now(), self.capacity, self.per_second)
        };
        if !wait.is_zero() {
            tracing::debug!(
                wait_ms = wait.as_millis() as u64,
                "pacing a content-creating GitHub call"
            );
            tokio::time::sleep(wait).await;
        }
    }
}

impl Default for Pace {
    fn default() -> Self {
        Pace::per_minute(PER_MINUTE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_up_to_the_capacity_goes_at_once_and_the_next_waits_its_share() {
        let start = Instant::now();
        let mut b = Bucket {
            tokens: 80.0,
            at: start,
        };
        for _ in 0..80 {
            assert_eq!(b.take(start, 80.0, 80.0 / 60.0), Duration::ZERO);
        }
        let wait = b.take(start, 80.0, 80.0 / 60.0);
        assert_eq!(wait.as_millis(), 750, "one token every 60/80 s");
        // The one after queues behind it.
        assert_eq!(b.take(start, 80.0, 80.0 / 60.0).as_millis(), 1500);
    }

    #[test]
    fn the_bucket_refills_with_time_up_to_its_capacity() {
        let start = Instant::now();
        let mut b = Bucket {
            tokens: 0.0,
            at: start,
        };
        assert_eq!(
            b.take(start + Duration::from_secs(3), 80.0, 80.0 / 60.0),
            Duration::ZERO
        );
        let later = start + Duration::from_secs(3600);
        let mut full = Bucket {
            tokens: 0.0,
            at: start,
        };
        full.take(later, 80.0, 80.0 / 60.0);
        assert!(
            (full.tokens - 79.0).abs() < 1e-9,
            "capped at 80, one spent: {}",
            full.tokens
        );
    }
}
