//! tallyd's YAML configuration: the model, its value types, and the loader.
//!
//! Parse, don't validate: every key has a type that cannot hold a bad value, so code
//! that receives a [`Config`] never re-checks it. Unknown keys, duplicate keys and
//! out-of-range values are refused at load time with the file position and key path.
//! `config/tallyd.yaml` in the repository documents every key.

mod graphite;
mod load;
mod model;
mod otlp_export;
mod sinks;
#[cfg(test)]
mod tests;
mod values;
mod web;

pub use graphite::{Graphite, GraphitePrefix, GraphiteTags, HostPort};
pub use load::{ConfigError, InvalidConfig, load_file, parse, parse_yaml};
pub use model::{
    Aggregation, Config, GaugeSign, Gpu, GpuMode, HistogramRule, Limits, Listen, LogFormat,
    LogLevel, Logging, Mapping, NativeHistograms, ShardPriority, TagStyle, TimerSamples, Web,
    Window,
};
pub use otlp_export::{
    OtlpCompression, OtlpExport, OtlpProtocol, OtlpTemporality, ResourceAttributes,
};
pub use sinks::{
    Authorization, BasicAuth, ExpandError, ExternalLabels, ProtobufMessage, PushQueue, QueueConfig,
    RemoteWrite, SinkUrl, TlsConfig, expand_env,
};
pub use values::{
    AddrList, Buckets, ByteSize, HumanDuration, ListenAddr, NamePattern, NativeSchema, Quantile,
    Quantiles, SocketPath, ThreadCount, ZeroThreshold,
};
pub use web::{
    CipherSuite, ClientAuthType, Curve, HttpServerConfig, RateLimit, ResponseHeaders,
    TlsServerConfig, TlsVersion, WebFile, load_web_file, parse_web_file,
};
