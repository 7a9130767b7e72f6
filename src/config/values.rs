//! Value types that cannot hold an invalid setting: durations, sizes, quantiles,
//! addresses, bucket bounds, name patterns, shard counts.
//!
//! Each type parses its YAML text once, at load time, and its error message says
//! what was wrong and what to write instead; the loader adds the key path and the
//! file position. Each also serialises back to the form an operator would write,
//! so `tallyd check-config` prints a config that loads again.

use std::fmt;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use crate::kernels::native::{MAX_SCHEMA, MIN_SCHEMA};

/// Deserialises a YAML scalar as text and parses it with `parse`, whose error
/// message is reported at the value's position.
fn parse_text<'de, D, T>(d: D, parse: impl FnOnce(&str) -> Result<T, String>) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let text = String::deserialize(d)?;
    parse(text.trim()).map_err(de::Error::custom)
}

/// The first item that also appears earlier in `items`. Config lists are short, so
/// a quadratic scan is fine and needs no `Hash` or `Ord`.
fn first_repeat<T: PartialEq>(items: &[T]) -> Option<&T> {
    items
        .iter()
        .enumerate()
        .find(|(i, item)| items[..*i].contains(item))
        .map(|(_, item)| item)
}

/// A positive duration written with a unit: `500ms`, `10s`, `5m`, `1h`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct HumanDuration(Duration);

impl HumanDuration {
    /// A duration of whole seconds.
    pub const fn from_secs(secs: u64) -> Self {
        HumanDuration(Duration::from_secs(secs))
    }

    /// A duration of milliseconds.
    pub const fn from_millis(millis: u64) -> Self {
        HumanDuration(Duration::from_millis(millis))
    }

    /// The duration.
    pub const fn get(self) -> Duration {
        self.0
    }

    fn parse(text: &str) -> Result<Self, String> {
        match humantime::parse_duration(text) {
            Ok(d) if d.is_zero() => Err(format!("{text:?} must be greater than zero")),
            Ok(d) => Ok(HumanDuration(d)),
            Err(_) => Err(format!("{text:?} is not a duration (use e.g. 10s, 1m)")),
        }
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&humantime::format_duration(self.0), f)
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_text(d, HumanDuration::parse)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&humantime::format_duration(self.0))
    }
}

/// A byte count written as a number or with a unit: `65535`, `64KiB`, `16MiB`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct ByteSize(u64);

impl ByteSize {
    /// A size of `bytes` bytes.
    pub const fn new(bytes: u64) -> Self {
        ByteSize(bytes)
    }

    /// The size in bytes.
    pub const fn bytes(self) -> u64 {
        self.0
    }

    fn parse(text: &str) -> Result<Self, String> {
        parse_size::parse_size(text)
            .map(ByteSize)
            .map_err(|_| format!("{text:?} is not a size (use e.g. 65535, 64KiB, 16MiB)"))
    }
}

impl<'de> Deserialize<'de> for ByteSize {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_text(d, ByteSize::parse)
    }
}

impl Serialize for ByteSize {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(self.0)
    }
}

/// A socket address to listen on: an IP address and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ListenAddr(SocketAddr);

impl ListenAddr {
    /// The address.
    pub const fn get(self) -> SocketAddr {
        self.0
    }

    fn parse(text: &str) -> Result<Self, String> {
        text.parse().map(ListenAddr).map_err(|_| {
            format!("{text:?} is not an address to listen on (use IP:port, e.g. 127.0.0.1:8125 or [::1]:8125)")
        })
    }
}

impl From<SocketAddr> for ListenAddr {
    fn from(addr: SocketAddr) -> Self {
        ListenAddr(addr)
    }
}

impl<'de> Deserialize<'de> for ListenAddr {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_text(d, ListenAddr::parse)
    }
}

impl Serialize for ListenAddr {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.0)
    }
}

/// The filesystem path of a Unix socket to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SocketPath(PathBuf);

impl SocketPath {
    /// The path.
    pub fn get(&self) -> &Path {
        &self.0
    }

    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err(
                "the socket path is empty (use e.g. /run/tallyd/dsd.sock, or null for off)"
                    .to_owned(),
            );
        }
        Ok(SocketPath(PathBuf::from(text)))
    }
}

impl<'de> Deserialize<'de> for SocketPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_text(d, SocketPath::parse)
    }
}

impl Serialize for SocketPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.0.serialize(s)
    }
}

/// Permission bits of a socket file, written as a quoted octal string: `"0622"`.
///
/// A string, because YAML readers disagree on whether `0622` is octal or decimal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMode(u32);

impl FileMode {
    /// The mode DogStatsD gives its socket: anyone may write, only the owner read.
    pub const DOGSTATSD: FileMode = FileMode(0o622);

    /// The permission bits.
    pub const fn bits(self) -> u32 {
        self.0
    }

    fn parse(text: &str) -> Result<Self, String> {
        let digits = text.strip_prefix("0o").unwrap_or(text);
        match u32::from_str_radix(digits, 8) {
            Ok(bits) if !digits.is_empty() && bits <= 0o777 => Ok(FileMode(bits)),
            _ => Err(format!(
                "{text:?} is not a file mode (write permission bits in octal as a quoted string, e.g. \"0622\")"
            )),
        }
    }
}

impl<'de> Deserialize<'de> for FileMode {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_text(d, FileMode::parse)
    }
}

impl Serialize for FileMode {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&format!("{:04o}", self.0))
    }
}

/// A list of listen addresses with no address listed twice.
///
/// A repeated UDP address would not fail to bind: with `SO_REUSEPORT` the kernel
/// would quietly split traffic between two sockets, so it is refused here.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<ListenAddr>")]
pub struct AddrList(Vec<ListenAddr>);

impl AddrList {
    /// The addresses, in configured order.
    pub fn iter(&self) -> impl Iterator<Item = SocketAddr> + '_ {
        self.0.iter().map(|a| a.get())
    }

    /// True when the listener is off.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<ListenAddr>> for AddrList {
    type Error = String;

    fn try_from(addrs: Vec<ListenAddr>) -> Result<Self, String> {
        match first_repeat(&addrs) {
            Some(addr) => Err(format!("{} is listed twice", addr.get())),
            None => Ok(AddrList(addrs)),
        }
    }
}

impl From<SocketAddr> for AddrList {
    fn from(addr: SocketAddr) -> Self {
        AddrList(vec![ListenAddr(addr)])
    }
}

/// A quantile in (0, 1].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Quantile(f64);

impl Quantile {
    /// The quantile as a fraction.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for Quantile {
    type Error = String;

    fn try_from(q: f64) -> Result<Self, String> {
        if q > 0.0 && q <= 1.0 {
            Ok(Quantile(q))
        } else {
            Err(format!(
                "{q} is not a quantile (use a number in (0, 1], e.g. 0.99)"
            ))
        }
    }
}

impl From<Quantile> for f64 {
    fn from(q: Quantile) -> f64 {
        q.0
    }
}

/// A native histogram schema in -4..=8: bucket base `2^(2^-schema)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct NativeSchema(i8);

impl NativeSchema {
    /// The schema number.
    pub const fn get(self) -> i8 {
        self.0
    }
}

impl TryFrom<i64> for NativeSchema {
    type Error = String;

    fn try_from(schema: i64) -> Result<Self, String> {
        match i8::try_from(schema) {
            Ok(s) if (MIN_SCHEMA..=MAX_SCHEMA).contains(&s) => Ok(NativeSchema(s)),
            _ => Err(format!(
                "schema {schema} is not a native histogram schema (use {MIN_SCHEMA} to \
                 {MAX_SCHEMA}; 3 gives buckets 9% wide, each step up halves the width)"
            )),
        }
    }
}

impl From<NativeSchema> for i64 {
    fn from(schema: NativeSchema) -> i64 {
        i64::from(schema.0)
    }
}

/// The width of a native histogram's zero bucket: a finite number >= 0.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct ZeroThreshold(f64);

impl ZeroThreshold {
    /// The threshold: values with `|v| <=` it fall in the zero bucket.
    pub const fn get(self) -> f64 {
        self.0
    }
}

impl TryFrom<f64> for ZeroThreshold {
    type Error = String;

    fn try_from(threshold: f64) -> Result<Self, String> {
        if threshold.is_finite() && threshold >= 0.0 {
            Ok(ZeroThreshold(threshold))
        } else {
            Err(format!(
                "{threshold} is not a zero threshold (use a finite number >= 0; 0 keeps \
                 only exact zeros in the zero bucket)"
            ))
        }
    }
}

impl From<ZeroThreshold> for f64 {
    fn from(threshold: ZeroThreshold) -> f64 {
        threshold.0
    }
}

/// Quantiles to report, each in (0, 1], none repeated.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<Quantile>")]
pub struct Quantiles(Vec<Quantile>);

impl Quantiles {
    /// The quantiles, in configured order.
    pub fn iter(&self) -> impl Iterator<Item = f64> + '_ {
        self.0.iter().map(|q| q.get())
    }

    /// How many quantiles are reported.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no quantile is reported.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl TryFrom<Vec<Quantile>> for Quantiles {
    type Error = String;

    fn try_from(qs: Vec<Quantile>) -> Result<Self, String> {
        match first_repeat(&qs) {
            Some(q) => Err(format!("quantile {} is listed twice", q.get())),
            None => Ok(Quantiles(qs)),
        }
    }
}

/// Histogram bucket upper bounds: finite, strictly increasing, at least one.
/// The `+Inf` bucket is implied and must not be listed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "Vec<f64>")]
pub struct Buckets(Vec<f64>);

impl Buckets {
    /// The upper bounds, ascending.
    pub fn bounds(&self) -> &[f64] {
        &self.0
    }
}

impl TryFrom<Vec<f64>> for Buckets {
    type Error = String;

    fn try_from(bounds: Vec<f64>) -> Result<Self, String> {
        if bounds.is_empty() {
            return Err("list at least one bucket bound, e.g. [0.01, 0.1, 1]".to_owned());
        }
        if let Some(b) = bounds.iter().find(|b| !b.is_finite()) {
            return Err(format!("bucket bound {b} is not finite (+Inf is implied)"));
        }
        if let Some(w) = bounds.windows(2).find(|w| w[0] >= w[1]) {
            return Err(format!(
                "bucket bounds must be strictly increasing ({} then {})",
                w[0], w[1]
            ));
        }
        Ok(Buckets(bounds))
    }
}

/// A metric-name glob such as `api.*` or `*.latency`.
#[derive(Debug, Clone)]
pub struct NamePattern {
    text: String,
    matcher: globset::GlobMatcher,
}

impl NamePattern {
    /// True when `name` matches the pattern.
    pub fn is_match(&self, name: &str) -> bool {
        self.matcher.is_match(name)
    }

    /// The pattern as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }

    fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("the pattern is empty (use e.g. \"api.*\")".to_owned());
        }
        let glob = globset::Glob::new(text)
            .map_err(|e| format!("{text:?} is not a valid pattern: {}", e.kind()))?;
        Ok(NamePattern {
            text: text.to_owned(),
            matcher: glob.compile_matcher(),
        })
    }
}

impl PartialEq for NamePattern {
    fn eq(&self, other: &Self) -> bool {
        self.text == other.text
    }
}

impl<'de> Deserialize<'de> for NamePattern {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        parse_text(d, NamePattern::parse)
    }
}

impl Serialize for NamePattern {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.text)
    }
}

/// How many threads of a kind to run: `auto` (one per available core) or a number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThreadCount {
    /// One per core the process may run on.
    #[default]
    Auto,
    /// Exactly this many.
    Count(NonZeroUsize),
}

impl ThreadCount {
    /// The number of shards to start on this machine.
    pub fn resolve(self) -> NonZeroUsize {
        match self {
            ThreadCount::Auto => std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN),
            ThreadCount::Count(n) => n,
        }
    }
}

impl<'de> Deserialize<'de> for ThreadCount {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ThreadCountVisitor;
        const EXPECTED: &str = "`auto` or a number of threads from 1 up";

        impl Visitor<'_> for ThreadCountVisitor {
            type Value = ThreadCount;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(EXPECTED)
            }

            fn visit_u64<E: de::Error>(self, n: u64) -> Result<ThreadCount, E> {
                usize::try_from(n)
                    .ok()
                    .and_then(NonZeroUsize::new)
                    .map(ThreadCount::Count)
                    .ok_or_else(|| E::custom(format!("{n} is not {EXPECTED}")))
            }

            fn visit_i64<E: de::Error>(self, n: i64) -> Result<ThreadCount, E> {
                Err(E::custom(format!("{n} is not {EXPECTED}")))
            }

            fn visit_str<E: de::Error>(self, text: &str) -> Result<ThreadCount, E> {
                match text.trim() {
                    "auto" => Ok(ThreadCount::Auto),
                    other => match other.parse::<u64>() {
                        Ok(n) => self.visit_u64(n),
                        Err(_) => Err(E::custom(format!("{other:?} is not {EXPECTED}"))),
                    },
                }
            }
        }

        d.deserialize_any(ThreadCountVisitor)
    }
}

impl Serialize for ThreadCount {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            ThreadCount::Auto => s.serialize_str("auto"),
            ThreadCount::Count(n) => s.serialize_u64(n.get() as u64),
        }
    }
}
