//! Synthetic DogStatsD traffic for benches, allocation tests and the load generator.
//!
//! The shape follows what production clients send: short dotted names, one value,
//! a mix of counters, gauges, timers and distributions, 0-6 short `key:value` tags,
//! lines of about 40 bytes packed into datagrams that fit a 1500-byte MTU (1432
//! bytes of payload, as the Datadog clients use). Everything is seeded, so a bench
//! run and a test see the same bytes every time.

use std::io::Write;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::codec::MetricType;

/// Payload size that fits one Ethernet frame with IPv4/UDP headers and some slack.
pub const PACKED_DATAGRAM_BYTES: usize = 1432;

/// What traffic to generate.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// Distinct series (name + tag set) to draw from.
    pub series: usize,
    /// Relative weights of counter, gauge, timer and distribution series.
    pub mix: [u32; 4],
    /// Largest number of tags on one series (0-6 is typical).
    pub max_tags: usize,
    /// Seed for every random choice.
    pub seed: u64,
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            series: 1_000,
            mix: [4, 2, 3, 1],
            max_tags: 6,
            seed: 0x007a_117d,
        }
    }
}

const TYPES: [MetricType; 4] = [
    MetricType::Counter,
    MetricType::Gauge,
    MetricType::Timer,
    MetricType::Distribution,
];
const SERVICES: [&str; 8] = [
    "api", "web", "db", "auth", "cart", "queue", "cache", "search",
];
const MEASURES: [&str; 8] = ["req", "err", "lat", "hits", "miss", "size", "conn", "retry"];
const TAG_KEYS: [&str; 6] = ["env", "az", "host", "code", "ver", "pod"];

/// One series: the text before and after its value.
#[derive(Debug, Clone)]
struct Series {
    head: String,
    tail: String,
    kind: MetricType,
}

/// Produces lines and packed datagrams drawn from a fixed set of series.
#[derive(Debug)]
pub struct Generator {
    series: Vec<Series>,
    rng: StdRng,
}

impl Generator {
    /// Builds the series set described by `spec`.
    pub fn new(spec: &Spec) -> Self {
        let mut rng = StdRng::seed_from_u64(spec.seed);
        let total: u32 = spec.mix.iter().sum();
        assert!(
            total > 0 && spec.series > 0,
            "a workload needs series and a type mix"
        );
        let series = (0..spec.series)
            .map(|i| {
                let mut pick = rng.random_range(0..total);
                let kind_index = spec
                    .mix
                    .iter()
                    .position(|&w| {
                        let hit = pick < w;
                        pick = pick.saturating_sub(w);
                        hit
                    })
                    .expect("pick is below the total weight");
                let kind = TYPES[kind_index];
                let head = format!(
                    "{}.{}.{i}:",
                    SERVICES[i % SERVICES.len()],
                    MEASURES[(i / SERVICES.len()) % MEASURES.len()]
                );
                let tags = rng.random_range(0..=spec.max_tags.min(TAG_KEYS.len()));
                let tag_text: Vec<String> = TAG_KEYS[..tags]
                    .iter()
                    .map(|k| format!("{k}:{}", rng.random_range(0..10u32)))
                    .collect();
                let mut tail = format!("|{}", kind.as_str());
                if !tag_text.is_empty() {
                    tail.push_str("|#");
                    tail.push_str(&tag_text.join(","));
                }
                Series { head, tail, kind }
            })
            .collect();
        Generator { series, rng }
    }

    /// Number of distinct series.
    pub fn series_count(&self) -> usize {
        self.series.len()
    }

    /// Appends one line for a random series, with a `\n`.
    pub fn write_line(&mut self, out: &mut Vec<u8>) {
        let s = &self.series[self.rng.random_range(0..self.series.len())];
        out.extend_from_slice(s.head.as_bytes());
        let written = match s.kind {
            MetricType::Counter => write!(out, "{}", self.rng.random_range(1..=10u32)),
            MetricType::Gauge => write!(out, "{}", self.rng.random_range(0..1000u32)),
            _ => write!(out, "{:.1}", self.rng.random_range(0.0..500.0f64)),
        };
        written.expect("writing to a Vec cannot fail");
        out.extend_from_slice(s.tail.as_bytes());
        out.push(b'\n');
    }

    /// Replaces `out` with whole lines up to `max_bytes`; returns the line count.
    /// Always writes at least one line.
    pub fn fill_datagram(&mut self, out: &mut Vec<u8>, max_bytes: usize) -> usize {
        out.clear();
        let mut lines = 0;
        let mut line = Vec::with_capacity(128);
        loop {
            line.clear();
            self.write_line(&mut line);
            if lines > 0 && out.len() + line.len() > max_bytes {
                // Drop the trailing newline of the last line, as clients do.
                out.pop();
                return lines;
            }
            out.extend_from_slice(&line);
            lines += 1;
        }
    }

    /// `count` packed datagrams of at most [`PACKED_DATAGRAM_BYTES`] bytes, with the
    /// total line count.
    pub fn packed_datagrams(&mut self, count: usize) -> (Vec<Vec<u8>>, usize) {
        let mut lines = 0;
        let datagrams = (0..count)
            .map(|_| {
                let mut buf = Vec::with_capacity(PACKED_DATAGRAM_BYTES);
                lines += self.fill_datagram(&mut buf, PACKED_DATAGRAM_BYTES);
                buf
            })
            .collect();
        (datagrams, lines)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{Decoder, Message};

    #[test]
    fn packed_datagrams_fit_the_mtu_and_decode_cleanly() {
        let mut generator = Generator::new(&Spec::default());
        let (datagrams, lines) = generator.packed_datagrams(50);
        let decoder = Decoder::new(65_535);
        let mut decoded = 0;
        for d in &datagrams {
            assert!(d.len() <= PACKED_DATAGRAM_BYTES && d.len() > PACKED_DATAGRAM_BYTES - 100);
            for m in decoder.lines(d) {
                assert!(matches!(m, Ok(Message::Metric(_))), "{m:?}");
                decoded += 1;
            }
        }
        assert_eq!(decoded, lines);
        let avg = datagrams.iter().map(Vec::len).sum::<usize>() / lines;
        assert!((30..=50).contains(&avg), "average line length {avg}");
    }

    #[test]
    fn the_same_seed_gives_the_same_bytes() {
        let a = Generator::new(&Spec::default()).packed_datagrams(3);
        let b = Generator::new(&Spec::default()).packed_datagrams(3);
        assert_eq!(a, b);
    }
}
