//! How long a sink waits before sending a failed request again: doubling from
//! `min_backoff` to `max_backoff`, or what the receiver asked for in
//! `Retry-After` (read here, in seconds or as an HTTP date).

use std::time::{Duration, SystemTime};

/// The waits of one request's retries.
#[derive(Debug, Clone)]
pub struct Backoff {
    next: Duration,
    max: Duration,
}

impl Backoff {
    /// Waits from `min` doubling up to `max`.
    pub fn new(min: Duration, max: Duration) -> Self {
        Backoff {
            next: min,
            max: max.max(min),
        }
    }

    /// The wait before the next try: `retry_after` when the receiver gave
    /// one, the doubling wait otherwise.
    pub fn wait(&mut self, retry_after: Option<Duration>) -> Duration {
        let doubling = self.next;
        self.next = (self.next * 2).min(self.max);
        retry_after.unwrap_or(doubling)
    }
}

/// A `Retry-After` value as a wait from `now`: seconds, or an HTTP date (a
/// date already past is no wait).
pub fn retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_up_to_the_max_unless_the_receiver_says_otherwise() {
        let ms = Duration::from_millis;
        let mut backoff = Backoff::new(ms(30), ms(100));
        assert_eq!(backoff.wait(None), ms(30));
        assert_eq!(backoff.wait(None), ms(60));
        assert_eq!(
            backoff.wait(Some(Duration::from_secs(2))),
            Duration::from_secs(2)
        );
        assert_eq!(backoff.wait(None), ms(100));
        assert_eq!(backoff.wait(None), ms(100));
    }
}
