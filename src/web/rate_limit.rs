//! `rate_limit`: a token bucket in front of every HTTP request, as
//! exporter-toolkit's (one token per `interval`, at most `burst` saved up).

use std::sync::Mutex;
use std::time::{Duration, Instant};

/// One bucket for the whole endpoint.
#[derive(Debug)]
pub struct RateLimiter {
    interval: Duration,
    burst: f64,
    state: Mutex<Bucket>,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl RateLimiter {
    /// A full bucket; `None` when `interval` is zero (no limit).
    pub fn new(interval: Duration, burst: u32) -> Option<Self> {
        if interval.is_zero() {
            return None;
        }
        let burst = f64::from(burst.max(1));
        Some(RateLimiter {
            interval,
            burst,
            state: Mutex::new(Bucket {
                tokens: burst,
                refilled: Instant::now(),
            }),
        })
    }

    /// Takes a token if there is one at `now`.
    pub fn allow(&self, now: Instant) -> bool {
        let mut bucket = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let earned = now.saturating_duration_since(bucket.refilled).as_secs_f64()
            / self.interval.as_secs_f64();
        bucket.tokens = (bucket.tokens + earned).min(self.burst);
        bucket.refilled = now.max(bucket.refilled);
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_then_one_per_interval() {
        let limiter = RateLimiter::new(Duration::from_secs(1), 3).unwrap();
        let start = Instant::now();
        assert!((0..3).all(|_| limiter.allow(start)));
        assert!(!limiter.allow(start));
        assert!(!limiter.allow(start + Duration::from_millis(500)));
        assert!(limiter.allow(start + Duration::from_millis(1000)));
        assert!(!limiter.allow(start + Duration::from_millis(1100)));
        assert!((0..3).all(|_| limiter.allow(start + Duration::from_secs(60))));
        assert!(!limiter.allow(start + Duration::from_secs(60)));
        assert!(RateLimiter::new(Duration::ZERO, 5).is_none());
    }
}
