//! Tags carried in the metric name, as other StatsD dialects write them.
//!
//! `aggregation.tag_styles` turns these on one by one: InfluxDB (Telegraf)
//! `name,k=v,k2=v2`, Librato `name#k=v,k2=v2`, SignalFx `name[k=v,k2=v2]` (the
//! brackets at the start or the end of the name) and Graphite `name;k=v;k2=v2`,
//! besides DogStatsD's `|#k:v` field. The rules are statsd_exporter's: SignalFx
//! brackets are looked for first, then the first of the other styles' characters
//! that is on. Every pair must have a key and a value; a malformed section
//! rejects the line (`bad_tags`) rather than guessing. Nothing is copied: the name
//! and the tag section are both slices of the line.

use super::error::RejectReason;
use super::metric::{Metric, Tags};
use super::scan::find_any;

/// Which tag styles are read; DogStatsD's alone by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagStyles(u8);

impl TagStyles {
    /// `|#k:v,k2:v2`.
    pub const DOGSTATSD: TagStyles = TagStyles(1);
    /// `name,k=v,k2=v2`.
    pub const INFLUXDB: TagStyles = TagStyles(2);
    /// `name#k=v,k2=v2`.
    pub const LIBRATO: TagStyles = TagStyles(4);
    /// `name[k=v,k2=v2]`.
    pub const SIGNALFX: TagStyles = TagStyles(8);
    /// `name;k=v;k2=v2`.
    pub const GRAPHITE: TagStyles = TagStyles(16);
    /// No style at all: every name is taken whole and `|#` is ignored.
    pub const NONE: TagStyles = TagStyles(0);

    /// Both sets of styles.
    pub const fn with(self, other: TagStyles) -> TagStyles {
        TagStyles(self.0 | other.0)
    }

    /// True when every style of `other` is on.
    pub const fn contains(self, other: TagStyles) -> bool {
        self.0 & other.0 == other.0
    }

    /// True when a style that reads the name is on.
    const fn reads_names(self) -> bool {
        self.0 & !Self::DOGSTATSD.0 != 0
    }

    /// Applies the styles to a decoded `metric`: drops its `|#` tags when
    /// DogStatsD's style is off, and moves tags out of its name.
    #[inline]
    /// `line` is the text `metric` was decoded from.
    pub(crate) fn apply<'a>(
        self,
        metric: &mut Metric<'a>,
        line: &'a str,
    ) -> Result<(), RejectReason> {
        if !self.contains(Self::DOGSTATSD) {
            metric.tags = Tags::default();
        }
        if self.reads_names() {
            self.split_name(metric, line)?;
        }
        Ok(())
    }

    fn split_name<'a>(self, metric: &mut Metric<'a>, line: &'a str) -> Result<(), RejectReason> {
        let name = metric.name;
        let bytes = name.as_bytes();
        // One word-at-a-time pass finds the first character any style could
        // claim; most names have none and stop here.
        let first = find_any(bytes, 0, [b'[', b']', b',', b'#', b';']);
        if first == bytes.len() {
            return Ok(());
        }
        if self.contains(Self::SIGNALFX) {
            match (name.find('['), name.find(']')) {
                (Some(open), Some(close)) if open < close => {
                    let rest = if open == 0 {
                        &name[close + 1..]
                    } else if close + 1 == name.len() {
                        &name[..open]
                    } else {
                        // The name would be two pieces; only whole slices are kept.
                        return Err(RejectReason::BadTags);
                    };
                    return set(metric, line, rest, &name[open..close]);
                }
                (None, None) => {}
                _ => return Err(RejectReason::BadTags),
            }
        }
        let claimed = |b: u8| {
            (b == b',' && self.contains(Self::INFLUXDB))
                || (b == b'#' && self.contains(Self::LIBRATO))
                || (b == b';' && self.contains(Self::GRAPHITE))
        };
        match bytes[first..].iter().position(|&b| claimed(b)) {
            None => Ok(()),
            Some(i) => set(metric, line, &name[..first + i], &name[first + i..]),
        }
    }
}

impl Default for TagStyles {
    fn default() -> Self {
        TagStyles::DOGSTATSD
    }
}

/// Gives `metric` the name `name` and the tag section `section` (its opening
/// character, then pairs), after checking every pair.
fn set<'a>(
    metric: &mut Metric<'a>,
    line: &'a str,
    name: &'a str,
    section: &'a str,
) -> Result<(), RejectReason> {
    if name.is_empty() {
        return Err(RejectReason::EmptyName);
    }
    let separator = if section.starts_with(';') { ';' } else { ',' };
    let tags = &section[1..];
    let well_formed = tags.is_empty()
        || tags.split(separator).all(|pair| {
            // Tags travel on in DogStatsD's form, where `,` separates tags.
            !pair.contains(',')
                && pair
                    .split_once('=')
                    .is_some_and(|(k, v)| !k.is_empty() && !v.is_empty())
        });
    if !well_formed {
        return Err(RejectReason::BadTags);
    }
    metric.name = name;
    metric.tags = metric.tags.with_named(line, section);
    Ok(())
}
