//! The remote-write messages, declared with `prost`'s derive field for field as
//! Prometheus numbers them: `prometheus.WriteRequest` (remote write 1.0,
//! `prompb/remote.proto` and `types.proto`) and `io.prometheus.write.v2.Request`
//! (2.0, `prompb/io/prometheus/write/v2/types.proto`). Only the fields tallyd
//! writes are declared; the tests read what is sent with real receivers.

/// Remote write 1.0's request.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series, each with its samples.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

/// A 1.0 series: its labels (sorted, `__name__` among them) and samples.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Labels, sorted by name.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histogram samples.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// A label pair.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, prost::Message)]
pub struct Label {
    /// The name.
    #[prost(string, tag = "1")]
    pub name: String,
    /// The value.
    #[prost(string, tag = "2")]
    pub value: String,
}

/// A float sample (the same message in 1.0 and 2.0).
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// The value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Unix milliseconds.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// A native histogram sample (the same field numbers in 1.0 and 2.0).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// Observations, as an integer or a float count.
    #[prost(oneof = "Count", tags = "1, 2")]
    pub count: Option<Count>,
    /// Sum of the observations.
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Bucket resolution: base `2^(2^-schema)`.
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    /// Width of the zero bucket.
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    /// Observations in the zero bucket.
    #[prost(oneof = "ZeroCount", tags = "6, 7")]
    pub zero_count: Option<ZeroCount>,
    /// Negative buckets' spans.
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    /// Their counts, delta-encoded (integer histograms).
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    /// Their counts (float histograms).
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    /// Positive buckets' spans.
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    /// Their counts, delta-encoded (integer histograms).
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    /// Their counts (float histograms).
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// Unix milliseconds.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
}

/// `Histogram.count`.
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum Count {
    /// An integer histogram's count.
    #[prost(uint64, tag = "1")]
    Int(u64),
    /// A float histogram's count.
    #[prost(double, tag = "2")]
    Float(f64),
}

/// `Histogram.zero_count`.
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum ZeroCount {
    /// An integer histogram's zero bucket.
    #[prost(uint64, tag = "6")]
    Int(u64),
    /// A float histogram's zero bucket.
    #[prost(double, tag = "7")]
    Float(f64),
}

/// A run of consecutive buckets.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct BucketSpan {
    /// Gap to the previous span (the first: the starting key).
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Buckets in the run.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}

/// Remote write 2.0's request: strings once in `symbols`, series by reference.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestV2 {
    /// Every string, `""` first.
    #[prost(string, repeated, tag = "4")]
    pub symbols: Vec<String>,
    /// The series.
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeriesV2>,
}

/// A 2.0 series.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeriesV2 {
    /// Name and value references into `symbols`, pairwise, sorted by name.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// Float samples.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histogram samples.
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<Histogram>,
    /// The series' type and help.
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<MetadataV2>,
}

/// A 2.0 series' metadata.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct MetadataV2 {
    /// The metric type.
    #[prost(enumeration = "MetricTypeV2", tag = "1")]
    pub r#type: i32,
    /// Help text, a reference into `symbols`.
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
}

/// `io.prometheus.write.v2.Metadata.MetricType`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, prost::Enumeration)]
#[repr(i32)]
pub enum MetricTypeV2 {
    /// Not said.
    Unspecified = 0,
    /// A counter.
    Counter = 1,
    /// A gauge.
    Gauge = 2,
    /// A histogram (classic series or native).
    Histogram = 3,
    /// A summary.
    Summary = 5,
}
