//! The configuration tree: one struct per YAML section, each key with its default.
//!
//! Every struct denies unknown keys, so a typo is an error with a position rather
//! than a setting silently ignored. Defaults are the values of the shipped
//! `config/tallyd.yaml`; a test loads that file and compares it with
//! [`Config::default`], so the two cannot drift apart.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::num::{NonZeroU32, NonZeroU64, NonZeroUsize};
use std::ops::RangeInclusive;
use std::time::Duration;

use serde::de::{self, Deserializer};
use serde::{Deserialize, Serialize};

use super::values::{
    AddrList, Buckets, ByteSize, FileMode, HumanDuration, ListenAddr, NamePattern, NativeSchema,
    Quantiles, SocketPath, ThreadCount, ZeroThreshold,
};

use super::graphite::Graphite;
use super::otlp_export::OtlpExport;
use super::sinks::{ExternalLabels, RemoteWrite};
use crate::kernels::KernelChoice;

const LOCALHOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);

/// The whole configuration file.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Config {
    /// Where tallyd accepts traffic and serves its endpoints.
    pub listen: Listen,
    /// Aggregation window length and retention.
    pub window: Window,
    /// What is computed per series.
    pub aggregation: Aggregation,
    /// Bounds that protect the daemon from runaway clients.
    pub limits: Limits,
    /// Number of shard threads: `auto` (one per core) or a number.
    pub shards: ThreadCount,
    /// Where shard and flush threads stand against the receivers: `idle`
    /// (below them, so a receiver never waits) or `normal`. Default idle.
    pub shard_priority: ShardPriority,
    /// Log level and format.
    pub logging: Logging,
    /// Offloading large windows to a GPU.
    pub gpu: Gpu,
    /// Renaming StatsD names into Prometheus names and labels.
    pub mapping: Mapping,
    /// Labels added to every series a sink pushes (never to `/metrics`).
    pub external_labels: ExternalLabels,
    /// Prometheus remote-write targets, each pushed every window.
    pub remote_write: Vec<RemoteWrite>,
    /// Graphite (carbon plaintext) targets, each pushed every window.
    pub graphite: Vec<Graphite>,
    /// OTLP targets (collectors, vendors), each pushed every window.
    pub otlp_export: Vec<OtlpExport>,
    /// TLS, client certificates and basic auth on the HTTP and gRPC listeners,
    /// and whether `POST /-/reload` is served.
    pub web: Web,
}

/// `web`: who may use the HTTP endpoint and the gRPC port.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Web {
    /// A web configuration file in the Prometheus exporter-toolkit format (as
    /// Prometheus' `--web.config.file`): TLS for HTTP and gRPC, client
    /// certificates, basic auth users, response headers, a rate limit. Re-read,
    /// certificates included, on every reload. Default: none (plain text, open).
    pub config_file: Option<std::path::PathBuf>,
    /// Serve `POST /-/reload` (as Prometheus' `--web.enable-lifecycle`),
    /// behind the same auth. SIGHUP reloads either way. Default false.
    pub enable_lifecycle: bool,
}

/// `mapping`: statsd_exporter's mapping file.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Mapping {
    /// A statsd_exporter mapping file (YAML), re-read on every reload. Default:
    /// none (names are only sanitised).
    pub file: Option<std::path::PathBuf>,
}

/// `listen`: every ingest listener and the HTTP endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Listen {
    /// DogStatsD over UDP; empty turns UDP off. Default `["127.0.0.1:8125"]`.
    pub udp: AddrList,
    /// Receiving threads per UDP address, each with its own `SO_REUSEPORT` socket.
    /// Default `auto`: one per core. Fewer leaves cores to the shards on busy hosts.
    pub udp_threads: ThreadCount,
    /// Kernel receive buffer of each UDP socket. Default 16MiB: about 0.1 s of
    /// traffic at 10M lines/s, enough to ride out a window flush. Above the
    /// `net.core.rmem_max` sysctl it needs `CAP_NET_ADMIN`; the size obtained is logged.
    pub udp_recv_buffer: ByteSize,
    /// Worker threads of the async runtime that serves TCP, Unix stream and gRPC
    /// connections. Default `auto`: one per core. Started only when one of those
    /// listeners is configured.
    pub stream_threads: ThreadCount,
    /// Newline-delimited StatsD over TCP. Default: off.
    pub tcp: AddrList,
    /// Path of a DogStatsD Unix datagram socket. Default: off.
    pub unix_datagram: Option<SocketPath>,
    /// Path of a Unix stream socket. Default: off.
    pub unix_stream: Option<SocketPath>,
    /// Permission bits of the Unix socket files. Default `"0622"`, as DogStatsD.
    pub unix_socket_mode: FileMode,
    /// gRPC ingest address. Default: off.
    pub grpc: Option<ListenAddr>,
    /// HTTP endpoint for /metrics, /api/v1, /healthz, /readyz. Default `127.0.0.1:9102`.
    pub http: ListenAddr,
}

impl Default for Listen {
    fn default() -> Self {
        Listen {
            udp: AddrList::from(SocketAddr::new(LOCALHOST, 8125)),
            udp_threads: ThreadCount::Auto,
            udp_recv_buffer: ByteSize::new(16 << 20),
            stream_threads: ThreadCount::Auto,
            tcp: AddrList::default(),
            unix_datagram: None,
            unix_stream: None,
            unix_socket_mode: FileMode::DOGSTATSD,
            grpc: None,
            http: ListenAddr::from(SocketAddr::new(LOCALHOST, 9102)),
        }
    }
}

/// `window`: how time is cut into aggregation windows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Window {
    /// Window length; windows align to multiples of it since the unix epoch. Default 10s.
    #[serde(deserialize_with = "interval")]
    pub interval: HumanDuration,
    /// Completed windows kept for the JSON API. Default 60.
    pub retain: NonZeroU32,
}

impl Window {
    /// The shortest interval accepted: shorter windows cost more in flushes than they show.
    pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

    /// The built-in defaults.
    pub const DEFAULT: Window = Window {
        interval: HumanDuration::from_secs(10),
        retain: NonZeroU32::new(6).unwrap(),
    };
}

impl Default for Window {
    fn default() -> Self {
        Window::DEFAULT
    }
}

fn interval<'de, D: Deserializer<'de>>(d: D) -> Result<HumanDuration, D::Error> {
    let interval = HumanDuration::deserialize(d)?;
    if interval.get() < Window::MIN_INTERVAL {
        return Err(de::Error::custom(format!(
            "{interval} is shorter than the minimum of {}ms",
            Window::MIN_INTERVAL.as_millis()
        )));
    }
    Ok(interval)
}

/// `shard_priority`: the scheduling of shard and flush threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ShardPriority {
    /// `SCHED_IDLE`: every normal thread of tallyd's cgroup (the receivers)
    /// preempts them at once.
    #[default]
    Idle,
    /// As the receivers: the scheduler shares the core fairly.
    Normal,
}

/// Whether a leading `+`/`-` on a gauge value is a delta.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GaugeSign {
    /// Etsy StatsD: a signed value adjusts an existing gauge.
    #[default]
    Statsd,
    /// DogStatsD: every value is absolute.
    Dogstatsd,
}

/// What a timer, histogram or distribution keeps of its samples.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimerSamples {
    /// Every sample of the window: exact quantiles, 8 bytes a sample.
    #[default]
    Exact,
    /// A native histogram per series and window: quantiles estimated within
    /// one bucket's width, memory bounded by `native_histograms.max_buckets`.
    Histogram,
}

/// One `aggregation.histograms` entry: buckets for the metrics whose name matches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HistogramRule {
    /// Metric-name glob, e.g. `api.*`. The first matching rule applies.
    #[serde(rename = "match")]
    pub pattern: NamePattern,
    /// Bucket upper bounds, strictly increasing; `+Inf` is implied.
    pub buckets: Buckets,
}

/// `aggregation`: what is computed for each series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Aggregation {
    /// Quantiles of timers, histograms and distributions. Default `[0.5, 0.9, 0.99]`.
    pub quantiles: Quantiles,
    /// `statsd` (signed gauge values are deltas) or `dogstatsd`. Default `statsd`.
    pub gauge_sign: GaugeSign,
    /// Prometheus histogram buckets by metric name. Default: none (summaries).
    pub histograms: Vec<HistogramRule>,
    /// Kernel backend: `auto` (the fastest this CPU supports), `scalar` (the
    /// reference), or `simd` (the fastest SIMD one; an error on a CPU with none).
    /// The `TALLYD_KERNEL` environment variable overrides it. Default `auto`.
    pub kernel: KernelChoice,
    /// Prometheus native histograms for timers, histograms and distributions.
    pub native_histograms: NativeHistograms,
    /// `exact` (keep every sample: exact quantiles) or `histogram` (keep a
    /// native histogram of the window, with `native_histograms`' schema: memory
    /// per series bounded whatever the rate). Default `exact`.
    pub timer_samples: TimerSamples,
    /// Where tags are read from: `dogstatsd` (`|#k:v`), `influxdb` (`name,k=v`),
    /// `librato` (`name#k=v`), `signalfx` (`name[k=v]`), `graphite`
    /// (`name;k=v`). Default `[dogstatsd]`.
    pub tag_styles: Vec<TagStyle>,
}

/// One way of carrying tags on a StatsD line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TagStyle {
    /// `name:1|c|#k:v,k2:v2`.
    Dogstatsd,
    /// `name,k=v,k2=v2:1|c` (Telegraf's statsd input).
    Influxdb,
    /// `name#k=v,k2=v2:1|c`.
    Librato,
    /// `name[k=v,k2=v2]:1|c`, the brackets anywhere in the name.
    Signalfx,
    /// `name;k=v;k2=v2:1|c` (Graphite's tag syntax, as Etsy StatsD passes it on).
    Graphite,
}

/// `aggregation.native_histograms`: sparse exponential buckets that merge
/// exactly across hosts (`histogram_quantile` over `sum(rate(...))`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct NativeHistograms {
    /// Expose every timer, histogram and distribution as a histogram family
    /// with native buckets, in place of the summary. Default false.
    pub enabled: bool,
    /// Bucket resolution, -4..=8: bucket base `2^(2^-schema)`. Pin one value
    /// fleet-wide; histograms of different schemas merge at the lower. Default 3.
    pub schema: NativeSchema,
    /// Populated buckets per series before its schema is lowered. Default 160.
    pub max_buckets: NonZeroUsize,
    /// Values with `|v| <=` this go to the zero bucket. Default 0.
    pub zero_threshold: ZeroThreshold,
}

impl Default for NativeHistograms {
    fn default() -> Self {
        NativeHistograms {
            enabled: false,
            schema: NativeSchema::try_from(3).expect("valid default schema"),
            max_buckets: NonZeroUsize::new(160).expect("nonzero"),
            zero_threshold: ZeroThreshold::try_from(0.0).expect("valid default threshold"),
        }
    }
}

impl Default for Aggregation {
    fn default() -> Self {
        let quantiles = [0.5, 0.9, 0.99].map(|q| q.try_into().expect("valid default quantile"));
        Aggregation {
            quantiles: quantiles
                .to_vec()
                .try_into()
                .expect("distinct default quantiles"),
            gauge_sign: GaugeSign::Statsd,
            histograms: Vec::new(),
            kernel: KernelChoice::Auto,
            native_histograms: NativeHistograms::default(),
            timer_samples: TimerSamples::Exact,
            tag_styles: vec![TagStyle::Dogstatsd],
        }
    }
}

/// `gpu`: whether large windows may be computed on a GPU.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Gpu {
    /// `auto`, `off` or `force`. Default `auto`.
    pub mode: GpuMode,
    /// With `auto`, windows of fewer samples always stay on the CPU. Default 1000000.
    pub min_window_samples: u64,
}

impl Default for Gpu {
    fn default() -> Self {
        Gpu {
            mode: GpuMode::Auto,
            min_window_samples: 1_000_000,
        }
    }
}

/// When the GPU computes a window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GpuMode {
    /// When the cost model predicts it at most a fifth of the CPU's time.
    #[default]
    Auto,
    /// Never; no adapter is opened.
    Off,
    /// Every window, whatever its size, while an adapter works.
    Force,
}

impl GpuMode {
    /// The name used in config and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            GpuMode::Auto => "auto",
            GpuMode::Off => "off",
            GpuMode::Force => "force",
        }
    }
}

/// `limits`: bounds that keep one bad client from taking the daemon down.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Series held at once; new series beyond it are refused and counted. Default 1000000.
    pub max_series: NonZeroU64,
    /// A series with no sample for this long is removed. Default 5m.
    pub series_idle_ttl: HumanDuration,
    /// Longest datagram (and line) accepted; longer ones are truncated and counted.
    /// Default 65535.
    #[serde(deserialize_with = "datagram_bytes")]
    pub max_datagram_bytes: ByteSize,
    /// Longest a gRPC call waits for room in a full shard queue (less when the
    /// call's own deadline is sooner); values still not queued then are rejected
    /// back to the client as `queue_timeout`. Default 10s.
    pub queue_wait: HumanDuration,
    /// Connections held at once on each of the TCP, Unix stream, gRPC and
    /// HTTP listeners; one more is closed as soon as it is accepted, and
    /// counted. Default 1024.
    pub max_connections: NonZeroU32,
    /// A TCP, Unix stream or gRPC connection that sends nothing for this long
    /// is closed, and counted. Default 5m.
    pub connection_idle_timeout: HumanDuration,
    /// Largest gRPC message accepted (tallyd's API and OTLP), measured after
    /// decompression; a larger one is refused with `OUT_OF_RANGE` (or
    /// `RESOURCE_EXHAUSTED` when it was compressed), and counted. 1KiB to
    /// 256MiB; default 4MiB, gRPC's and the OpenTelemetry Collector's.
    #[serde(deserialize_with = "grpc_message_bytes")]
    pub max_grpc_message_bytes: ByteSize,
}

impl Limits {
    /// The smallest and largest `max_datagram_bytes` accepted.
    pub const DATAGRAM_BYTES: RangeInclusive<u64> = 64..=16 << 20;

    /// The built-in defaults.
    pub const DEFAULT: Limits = Limits {
        max_series: NonZeroU64::new(1_000_000).unwrap(),
        series_idle_ttl: HumanDuration::from_secs(300),
        max_datagram_bytes: ByteSize::new(65_535),
        queue_wait: HumanDuration::from_secs(10),
        max_connections: NonZeroU32::new(1024).unwrap(),
        connection_idle_timeout: HumanDuration::from_secs(300),
        max_grpc_message_bytes: ByteSize::new(4 << 20),
    };

    /// The smallest and largest `max_grpc_message_bytes` accepted.
    pub const GRPC_MESSAGE_BYTES: RangeInclusive<u64> = 1 << 10..=256 << 20;
}

impl Default for Limits {
    fn default() -> Self {
        Limits::DEFAULT
    }
}

fn datagram_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
    size_within(d, &Limits::DATAGRAM_BYTES)
}

fn grpc_message_bytes<'de, D: Deserializer<'de>>(d: D) -> Result<ByteSize, D::Error> {
    size_within(d, &Limits::GRPC_MESSAGE_BYTES)
}

fn size_within<'de, D: Deserializer<'de>>(
    d: D,
    range: &RangeInclusive<u64>,
) -> Result<ByteSize, D::Error> {
    let size = ByteSize::deserialize(d)?;
    if !range.contains(&size.bytes()) {
        return Err(de::Error::custom(format!(
            "{} bytes is outside the accepted range {} to {}",
            size.bytes(),
            range.start(),
            range.end()
        )));
    }
    Ok(size)
}

/// Log verbosity; `RUST_LOG`, when set, overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogLevel {
    /// Everything, including per-connection detail.
    Trace,
    /// Diagnostic detail.
    Debug,
    /// Start-up, shutdown and notable events.
    #[default]
    Info,
    /// Problems tallyd works around.
    Warn,
    /// Problems that lose data or stop a component.
    Error,
}

impl LogLevel {
    /// The level as a `tracing` filter directive.
    pub const fn as_str(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
        }
    }
}

/// How log lines are written to stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Pretty,
    /// One JSON object per line, for log shippers.
    Json,
}

/// `logging`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Logging {
    /// `trace`, `debug`, `info`, `warn` or `error`. Default `info`.
    pub level: LogLevel,
    /// `pretty` or `json`. Default `pretty`.
    pub format: LogFormat,
}
