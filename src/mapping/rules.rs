//! The compiled mapping file: rules checked, defaults applied, and matching.
//!
//! Matching follows statsd_exporter: globs first, in file order, the first match
//! winning (a `*` is one whole dot-separated component, possibly empty); then
//! regular expressions, in file order; names no rule matches are kept (and
//! sanitised later, as every unmapped name is). Matching allocates and walks the
//! rules, so it runs once per new name on each ingest thread and once per new
//! series on its shard; never per line.

use std::collections::BTreeMap;
use std::sync::Arc;

use regex::Regex;
use serde_saphyr::Spanned;

use super::file::{
    Action, Defaults, HistogramOptions, MappingFile, MatchType, MetricTypeFilter, ObserverType,
    RawMapping, SummaryOptions,
};
use super::template::{GlobTemplate, escape_metric_name};
use crate::codec::MetricType;
use crate::config::InvalidConfig;
use crate::series::{NativeOverride, Observer, SeriesOptions};

/// Prometheus' client default buckets: what statsd_exporter gives a histogram
/// mapping that names none.
pub const DEFAULT_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// A mapping file, compiled.
#[derive(Debug)]
pub struct Mapper {
    rules: Box<[Rule]>,
    /// Indices of glob rules, then of regex rules, in file order.
    globs: Box<[usize]>,
    regexes: Box<[usize]>,
    /// What `defaults` give series no rule matches (none when they give nothing).
    unmatched: Option<Arc<SeriesOptions>>,
    /// Every quantile a summary rule asks for.
    quantiles: Box<[f64]>,
}

/// One rule of the file.
#[derive(Debug)]
pub struct Rule {
    pattern: Pattern,
    metric_type: Option<MetricTypeFilter>,
    name: Template,
    labels: Box<[(Box<str>, Template)]>,
    /// `map` or `drop`.
    pub action: Action,
    /// A tag on the line wins over a label of the same name.
    pub honor_labels: bool,
    /// Values are multiplied by this.
    pub scale: Option<f64>,
    /// Help, idle time, observer type and its options of the series it maps.
    pub options: Option<Arc<SeriesOptions>>,
}

#[derive(Debug)]
enum Pattern {
    /// One entry per component: `None` for `*`.
    Glob(Box<[Option<Box<str>>]>),
    Regex(Regex),
}

#[derive(Debug)]
enum Template {
    Glob(GlobTemplate),
    Regex(String),
}

/// What the file says of one name.
#[derive(Debug)]
pub enum Mapping<'m> {
    /// No rule matched: the name is kept; `defaults` may still give options.
    Unmatched(Option<&'m Arc<SeriesOptions>>),
    /// A rule with `action: drop` matched.
    Drop,
    /// A rule matched but its name template gave an empty name: dropped too.
    EmptyName,
    /// Renamed and labelled by `rule`.
    Map(Mapped<'m>),
}

/// A name a rule renamed.
#[derive(Debug)]
pub struct Mapped<'m> {
    /// The rule.
    pub rule: &'m Rule,
    /// The new name, escaped.
    pub name: String,
    /// Labels in name order, values with captures filled in.
    pub labels: Vec<(Box<str>, String)>,
}

impl Mapper {
    /// Compiles `file` (read from `source`, for error positions); native
    /// histogram options need `native_enabled`.
    pub fn compile(
        file: MappingFile,
        source: &str,
        native_enabled: bool,
    ) -> Result<Mapper, InvalidConfig> {
        let context = Context {
            source,
            defaults: &file.defaults,
            native_enabled,
        };
        let mut rules = Vec::with_capacity(file.mappings.len());
        for (i, raw) in file.mappings.iter().enumerate() {
            rules.push(context.rule(i, raw)?);
        }
        let unmatched = context
            .options(None, None, None, None, None)
            .map_err(|message| context.error(None, "defaults", message))?;
        let globs = indices(&rules, |p| matches!(p, Pattern::Glob(_)));
        let regexes = indices(&rules, |p| matches!(p, Pattern::Regex(_)));
        let mut quantiles: Vec<f64> = rules
            .iter()
            .filter_map(|r| r.options.as_deref())
            .chain(unmatched.as_deref())
            .filter_map(|o| match &o.observer {
                Some(Observer::Summary { quantiles }) => Some(quantiles.iter().copied()),
                _ => None,
            })
            .flatten()
            .collect();
        quantiles.sort_by(f64::total_cmp);
        quantiles.dedup();
        Ok(Mapper {
            rules: rules.into(),
            globs,
            regexes,
            unmatched,
            quantiles: quantiles.into(),
        })
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Every quantile a summary rule (or `defaults`) asks for, sorted.
    pub fn quantiles(&self) -> &[f64] {
        &self.quantiles
    }

    /// What the file makes of a line of type `kind` named `name`.
    pub fn map(&self, kind: MetricType, name: &str) -> Mapping<'_> {
        let components: smallvec::SmallVec<[&str; 8]> = name.split('.').collect();
        let mut captures: smallvec::SmallVec<[&str; 8]> = smallvec::SmallVec::new();
        for &i in &*self.globs {
            let rule = &self.rules[i];
            let Pattern::Glob(pattern) = &rule.pattern else {
                continue;
            };
            if !rule.applies_to(kind) || pattern.len() != components.len() {
                continue;
            }
            captures.clear();
            let matched = pattern.iter().zip(&components).all(|(p, c)| match p {
                Some(literal) => **literal == **c,
                None => {
                    captures.push(c);
                    true
                }
            });
            if matched {
                return rule.apply(|t| match t {
                    Template::Glob(t) => t.format(&captures),
                    Template::Regex(_) => unreachable!("glob rules have glob templates"),
                });
            }
        }
        for &i in &*self.regexes {
            let rule = &self.rules[i];
            let Pattern::Regex(regex) = &rule.pattern else {
                continue;
            };
            if !rule.applies_to(kind) {
                continue;
            }
            if let Some(found) = regex.captures(name) {
                return rule.apply(|t| {
                    let mut out = String::new();
                    if let Template::Regex(t) = t {
                        found.expand(t, &mut out);
                    }
                    out
                });
            }
        }
        Mapping::Unmatched(self.unmatched.as_ref())
    }
}

impl Rule {
    fn applies_to(&self, kind: MetricType) -> bool {
        match self.metric_type {
            None => true,
            Some(MetricTypeFilter::Counter) => kind == MetricType::Counter,
            Some(MetricTypeFilter::Gauge) => kind == MetricType::Gauge,
            Some(MetricTypeFilter::Observer) => matches!(
                kind,
                MetricType::Timer | MetricType::Histogram | MetricType::Distribution
            ),
        }
    }

    fn apply(&self, fill: impl Fn(&Template) -> String) -> Mapping<'_> {
        if self.action == Action::Drop {
            return Mapping::Drop;
        }
        let name = escape_metric_name(&fill(&self.name));
        if name.is_empty() {
            return Mapping::EmptyName;
        }
        let labels = self
            .labels
            .iter()
            .map(|(key, value)| (key.clone(), fill(value)))
            .collect();
        Mapping::Map(Mapped {
            rule: self,
            name,
            labels,
        })
    }
}

fn indices(rules: &[Rule], keep: impl Fn(&Pattern) -> bool) -> Box<[usize]> {
    (0..rules.len())
        .filter(|&i| keep(&rules[i].pattern))
        .collect()
}

/// What compiling one rule needs besides the rule.
struct Context<'a> {
    source: &'a str,
    defaults: &'a Defaults,
    native_enabled: bool,
}

impl Context<'_> {
    fn error(
        &self,
        at: Option<&serde_saphyr::Location>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> InvalidConfig {
        InvalidConfig {
            source_name: self.source.to_owned(),
            position: at.filter(|l| l.line() > 0).map(|l| (l.line(), l.column())),
            key: key.into(),
            message: message.into(),
        }
    }

    fn rule(&self, index: usize, raw: &Spanned<RawMapping>) -> Result<Rule, InvalidConfig> {
        let at = &raw.referenced;
        let raw = &raw.value;
        let key = |field: &str| format!("mappings[{index}].{field}");
        let action = raw.action.unwrap_or(Action::Map);
        let match_type = raw
            .match_type
            .or(self.defaults.match_type)
            .unwrap_or(MatchType::Glob);
        let text = &raw.pattern.value;
        let pattern = match match_type {
            MatchType::Glob => {
                check_glob(text)
                    .map_err(|m| self.error(Some(&raw.pattern.referenced), key("match"), m))?;
                Pattern::Glob(
                    text.split('.')
                        .map(|c| (c != "*").then(|| c.into()))
                        .collect(),
                )
            }
            MatchType::Regex => Pattern::Regex(Regex::new(text).map_err(|e| {
                self.error(
                    Some(&raw.pattern.referenced),
                    key("match"),
                    format!("{text:?} is not a valid regular expression: {e}"),
                )
            })?),
        };
        let captures = match &pattern {
            Pattern::Glob(parts) => parts.iter().filter(|p| p.is_none()).count(),
            Pattern::Regex(_) => 0,
        };
        let template = |text: &str| match match_type {
            MatchType::Glob => Template::Glob(GlobTemplate::parse(text, captures)),
            MatchType::Regex => Template::Regex(text.to_owned()),
        };
        let name = match (&raw.name, action) {
            (Some(name), _) => {
                check_name(&name.value)
                    .map_err(|m| self.error(Some(&name.referenced), key("name"), m))?;
                template(&name.value)
            }
            (None, Action::Drop) => template(""),
            (None, Action::Map) => {
                return Err(self.error(Some(at), key("name"), "a mapping needs a name"));
            }
        };
        let labels = match &raw.labels {
            Some(labels) => check_labels(&labels.value)
                .map_err(|m| self.error(Some(&labels.referenced), key("labels"), m))?
                .iter()
                .map(|(k, v)| (k.as_str().into(), template(v)))
                .collect(),
            None => Box::default(),
        };
        if let Some(scale) = raw.scale
            && !(scale.is_finite() && scale != 0.0)
        {
            return Err(self.error(Some(at), key("scale"), "must be a finite, non-zero number"));
        }
        let options = self
            .options(
                raw.observer_type,
                raw.summary_options.as_ref(),
                raw.histogram_options.as_ref(),
                raw.ttl.map(|t| t.0),
                raw.help.as_deref(),
            )
            .map_err(|m| self.error(Some(at), format!("mappings[{index}]"), m))?;
        Ok(Rule {
            pattern,
            metric_type: raw.match_metric_type,
            name,
            labels,
            action,
            honor_labels: raw.honor_labels,
            scale: raw.scale,
            options,
        })
    }

    /// The options of a rule (or, with every argument `None`, of unmatched
    /// names) with `defaults` filled in; `None` when nothing differs from the
    /// config's own behaviour.
    fn options(
        &self,
        observer_type: Option<ObserverType>,
        summary: Option<&SummaryOptions>,
        histogram: Option<&HistogramOptions>,
        ttl: Option<std::time::Duration>,
        help: Option<&str>,
    ) -> Result<Option<Arc<SeriesOptions>>, String> {
        let defaults = self.defaults;
        let observer_type = observer_type.or(defaults.observer_type);
        match (observer_type, summary.is_some(), histogram.is_some()) {
            (Some(ObserverType::Histogram), true, _) => {
                return Err(
                    "summary_options cannot go with observer_type: histogram; remove one".into(),
                );
            }
            (Some(ObserverType::Summary), _, true) => {
                return Err(
                    "histogram_options cannot go with observer_type: summary; remove one".into(),
                );
            }
            _ => {}
        }
        let quantiles = summary
            .filter(|s| !s.quantiles.is_empty())
            .or(defaults
                .summary_options
                .as_ref()
                .filter(|s| !s.quantiles.is_empty()))
            .map(check_quantiles)
            .transpose()?;
        let histogram_options = histogram.or(defaults.histogram_options.as_ref());
        let observer = match observer_type {
            Some(ObserverType::Histogram) => {
                let buckets = histogram_options
                    .map(|h| &h.buckets)
                    .filter(|b| !b.is_empty())
                    .or(defaults
                        .histogram_options
                        .as_ref()
                        .map(|h| &h.buckets)
                        .filter(|b| !b.is_empty()))
                    .map_or(Ok(DEFAULT_BUCKETS.to_vec()), |b| check_buckets(b))?;
                Some(Observer::Histogram {
                    buckets: buckets.into(),
                })
            }
            Some(ObserverType::Summary) => Some(Observer::Summary {
                quantiles: quantiles.unwrap_or_else(default_quantiles).into(),
            }),
            None => quantiles.map(|q| Observer::Summary {
                quantiles: q.into(),
            }),
        };
        let native = histogram_options
            .map(|h| self.native(h))
            .transpose()?
            .flatten();
        let idle_ttl = ttl
            .filter(|t| !t.is_zero())
            .or(defaults.ttl.map(|t| t.0).filter(|t| !t.is_zero()));
        let options = SeriesOptions {
            help: help.filter(|h| !h.is_empty()).map(Into::into),
            idle_ttl_ms: idle_ttl.map(|t| u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            observer,
            native,
        };
        Ok((options != SeriesOptions::default()).then(|| Arc::new(options)))
    }

    fn native(&self, options: &HistogramOptions) -> Result<Option<NativeOverride>, String> {
        let factor = options.native_histogram_bucket_factor;
        let max = options.native_histogram_max_buckets;
        if factor.is_none() && max.is_none() {
            return Ok(None);
        }
        if !self.native_enabled {
            return Err("native_histogram_* options need aggregation.native_histograms.enabled: true in the config".into());
        }
        let schema = factor
            .map(|f| {
                crate::kernels::native::schema_for_factor(f).ok_or_else(|| {
                    format!("native_histogram_bucket_factor {f} must be greater than 1")
                })
            })
            .transpose()?;
        let max_buckets = max
            .map(|m| match m {
                0 => Err("native_histogram_max_buckets must be at least 1".to_owned()),
                m => Ok(m as usize),
            })
            .transpose()?;
        Ok(Some(NativeOverride {
            schema,
            max_buckets,
        }))
    }
}

fn default_quantiles() -> Vec<f64> {
    vec![0.5, 0.9, 0.99]
}

fn check_quantiles(summary: &SummaryOptions) -> Result<Vec<f64>, String> {
    let mut quantiles = Vec::with_capacity(summary.quantiles.len());
    for objective in &summary.quantiles {
        let q = objective.quantile;
        if !(0.0..=1.0).contains(&q) {
            return Err(format!("quantile {q} is outside [0, 1]"));
        }
        if !quantiles.contains(&q) {
            quantiles.push(q);
        }
    }
    quantiles.sort_by(f64::total_cmp);
    Ok(quantiles)
}

fn check_buckets(buckets: &[f64]) -> Result<Vec<f64>, String> {
    if buckets.iter().any(|b| !b.is_finite()) || buckets.windows(2).any(|w| w[0] >= w[1]) {
        return Err(format!(
            "buckets {buckets:?} must be finite and strictly increasing (+Inf is added)"
        ));
    }
    Ok(buckets.to_vec())
}

/// statsd_exporter's rule for `match` globs: components of `[a-zA-Z0-9_-]`
/// (the first not starting with a digit or `-`) or a lone `*`.
fn check_glob(pattern: &str) -> Result<(), String> {
    let ok = pattern.split('.').enumerate().all(|(i, c)| {
        if c == "*" {
            return true;
        }
        let mut chars = c.chars();
        let first_ok = match chars.next() {
            Some(f) if i == 0 => f.is_ascii_alphabetic() || f == '_',
            Some(f) => f.is_ascii_alphanumeric() || f == '_',
            None => false,
        };
        first_ok && chars.all(|ch| ch.is_ascii_alphanumeric() || ch == '_' || ch == '-')
    });
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{pattern:?} is not a valid glob: dot-separated components of [a-zA-Z0-9_-] or *, \
             the first not starting with a digit (use match_type: regex for more)"
        ))
    }
}

/// statsd_exporter's rule for names: `[a-zA-Z_]` then `[a-zA-Z0-9_]`, with
/// `$n` or `${n}` references anywhere.
fn check_name(name: &str) -> Result<(), String> {
    let bytes = name.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'$' {
            let braced = bytes.get(i + 1) == Some(&b'{');
            let digits_from = i + 1 + usize::from(braced);
            let digits = bytes[digits_from.min(bytes.len())..]
                .iter()
                .take_while(|b| b.is_ascii_digit())
                .count();
            if digits > 0 {
                i = digits_from + digits;
                if bytes.get(i) == Some(&b'}') {
                    i += 1;
                }
                continue;
            }
        }
        let b = bytes[i];
        let ok = b.is_ascii_alphabetic() || b == b'_' || (i > 0 && b.is_ascii_digit());
        if !ok {
            return Err(format!(
                "{name:?} is not a valid metric name: [a-zA-Z_][a-zA-Z0-9_]* with $1 or ${{1}} captures"
            ));
        }
        i += 1;
    }
    if name.is_empty() {
        return Err("the name is empty".into());
    }
    Ok(())
}

/// statsd_exporter's rule for label names: `[a-zA-Z_][a-zA-Z0-9_]+`.
fn check_labels(labels: &BTreeMap<String, String>) -> Result<&BTreeMap<String, String>, String> {
    for key in labels.keys() {
        let mut chars = key.chars();
        let first = chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
        let rest: Vec<char> = chars.collect();
        if !first || rest.is_empty() || !rest.iter().all(|c| c.is_ascii_alphanumeric() || *c == '_')
        {
            return Err(format!(
                "{key:?} is not a valid label name: [a-zA-Z_][a-zA-Z0-9_]+"
            ));
        }
    }
    Ok(labels)
}
