//! Who was turned away at the door: TLS handshakes that failed, HTTP requests
//! refused (no or wrong credentials, over the rate limit, too large), and
//! connections refused or closed by a limit. The label names are operator
//! interface.

use super::{Counter, Transport};

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

/// A listener that holds connections, as the `listener` label of the
/// connection limits' counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectionListener {
    /// Newline-delimited lines over TCP.
    Tcp,
    /// Newline-delimited lines over a Unix stream socket.
    UnixStream,
    /// The gRPC port (tallyd's API and OTLP).
    Grpc,
    /// The HTTP endpoint.
    Http,
}

impl ConnectionListener {
    /// Every listener, in label order.
    pub const ALL: [ConnectionListener; 4] = [
        ConnectionListener::Tcp,
        ConnectionListener::UnixStream,
        ConnectionListener::Grpc,
        ConnectionListener::Http,
    ];

    /// The listeners whose connections close when idle (HTTP has its own
    /// request-head timeout instead).
    pub const IDLE_CLOSED: [ConnectionListener; 3] = [
        ConnectionListener::Tcp,
        ConnectionListener::UnixStream,
        ConnectionListener::Grpc,
    ];

    /// The `listener` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            ConnectionListener::Tcp => "tcp",
            ConnectionListener::UnixStream => "unix_stream",
            ConnectionListener::Grpc => "grpc",
            ConnectionListener::Http => "http",
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
    /// A request head over the 64 KiB limit (431).
    TooLarge,
}

impl HttpRefusal {
    /// Every reason, in label order.
    pub const ALL: [HttpRefusal; 4] = [
        HttpRefusal::Unauthorized,
        HttpRefusal::RateLimited,
        HttpRefusal::LifecycleDisabled,
        HttpRefusal::TooLarge,
    ];

    /// The `reason` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            HttpRefusal::Unauthorized => "unauthorized",
            HttpRefusal::RateLimited => "rate_limited",
            HttpRefusal::LifecycleDisabled => "lifecycle_disabled",
            HttpRefusal::TooLarge => "too_large",
        }
    }
}

/// The counters of refusals at the door.
#[derive(Debug, Default)]
pub struct AccessCounters {
    handshakes_failed: [Counter; Listener::ALL.len()],
    http_refused: [Counter; HttpRefusal::ALL.len()],
    connections_refused: [Counter; ConnectionListener::ALL.len()],
    connections_idle_closed: [Counter; ConnectionListener::ALL.len()],
    grpc_too_large: [Counter; 2],
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

    /// Connections on `listener` closed at accept: `limits.max_connections`
    /// were open.
    pub fn connection_refused(&self, listener: ConnectionListener) -> &Counter {
        &self.connections_refused[listener as usize]
    }

    /// Connections on `listener` closed after `limits.connection_idle_timeout`
    /// without a byte.
    pub fn connection_idle_closed(&self, listener: ConnectionListener) -> &Counter {
        &self.connections_idle_closed[listener as usize]
    }

    /// gRPC messages over `limits.max_grpc_message_bytes`, for tallyd's API
    /// (`Transport::Grpc`) or OTLP (`Transport::Otlp`; any other transport
    /// counts as `Grpc`).
    pub fn grpc_message_too_large(&self, transport: Transport) -> &Counter {
        &self.grpc_too_large[usize::from(transport == Transport::Otlp)]
    }
}
