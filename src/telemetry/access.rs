//! Who was turned away at the door: TLS handshakes that failed, HTTP requests
//! refused (no or wrong credentials, over the rate limit, too large), and
//! connections refused or closed by a limit. The label names are operator
//! interface.

use super::Counter;

/// A listener that can speak TLS, as the `listener` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Listener {
    /// The HTTP endpoint.
    Http,
    /// The gRPC port (tallyd's API and OTLP).
    Grpc,
}

impl Listener {
    /// Every listener, in label order.
    pub const ALL: [Listener; 2] = [Listener::Http, Listener::Grpc];

    /// The `listener` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Listener::Http => "http",
            Listener::Grpc => "grpc",
        }
    }
}

/// Why an HTTP request was answered without being served.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HttpRefusal {
    /// No credentials, or wrong ones (401).
    Unauthorized,
    /// Over the web configuration's `rate_limit` (429).
    RateLimited,
    /// `POST /-/reload` without `web.enable_lifecycle` (403).
    LifecycleDisabled,
}

impl HttpRefusal {
    /// Every reason, in label order.
    pub const ALL: [HttpRefusal; 3] = [
        HttpRefusal::Unauthorized,
        HttpRefusal::RateLimited,
        HttpRefusal::LifecycleDisabled,
    ];

    /// The `reason` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            HttpRefusal::Unauthorized => "unauthorized",
            HttpRefusal::RateLimited => "rate_limited",
            HttpRefusal::LifecycleDisabled => "lifecycle_disabled",
        }
    }
}

/// The counters of refusals at the door.
#[derive(Debug, Default)]
pub struct AccessCounters {
    handshakes_failed: [Counter; Listener::ALL.len()],
    http_refused: [Counter; HttpRefusal::ALL.len()],
}

impl AccessCounters {
    /// TLS handshakes on `listener` that failed or timed out.
    pub fn handshake_failed(&self, listener: Listener) -> &Counter {
        &self.handshakes_failed[listener as usize]
    }

    /// HTTP requests refused for `reason`.
    pub fn http_refused(&self, reason: HttpRefusal) -> &Counter {
        &self.http_refused[reason as usize]
    }
}
