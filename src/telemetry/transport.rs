//! The ways in, as the `transport` label of the per-transport self-metrics.

/// One ingest transport. The label names are operator interface.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// DogStatsD over UDP.
    Udp,
    /// Newline-delimited lines over TCP.
    Tcp,
    /// DogStatsD over a Unix datagram socket.
    UnixDatagram,
    /// Newline-delimited lines over a Unix stream socket.
    UnixStream,
    /// tallyd's own gRPC API (`tallyd.v1.Ingest`).
    Grpc,
    /// OTLP metrics over gRPC.
    Otlp,
}

impl Transport {
    /// Every transport, in label order.
    pub const ALL: [Transport; 6] = [
        Transport::Udp,
        Transport::Tcp,
        Transport::UnixDatagram,
        Transport::UnixStream,
        Transport::Grpc,
        Transport::Otlp,
    ];

    /// The `transport` label value.
    pub const fn as_str(self) -> &'static str {
        match self {
            Transport::Udp => "udp",
            Transport::Tcp => "tcp",
            Transport::UnixDatagram => "unix_datagram",
            Transport::UnixStream => "unix_stream",
            Transport::Grpc => "grpc",
            Transport::Otlp => "otlp",
        }
    }

    /// The transport's position in [`Transport::ALL`].
    pub const fn index(self) -> usize {
        self as usize
    }

    /// Whether the transport carries StatsD text (and so events and service checks).
    pub const fn carries_text_lines(self) -> bool {
        !matches!(self, Transport::Grpc | Transport::Otlp)
    }

    /// Whether the transport has frames to count: datagrams, or gRPC messages.
    pub const fn has_frames(self) -> bool {
        self.is_datagram() || !self.carries_text_lines()
    }

    /// Whether the transport delivers whole datagrams (and so can truncate them).
    pub const fn is_datagram(self) -> bool {
        matches!(self, Transport::Udp | Transport::UnixDatagram)
    }

    /// Whether the transport has connections to count. OTLP shares the gRPC
    /// port, whose connections count as `grpc`.
    pub const fn is_connected(self) -> bool {
        !self.is_datagram() && !matches!(self, Transport::Otlp)
    }
}
