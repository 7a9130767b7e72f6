//! The mapping file as ingest uses it: the live [`Mapper`], and each router's
//! cache from a name to what the mapping makes of it.
//!
//! A series is keyed by what it is exposed as, so two StatsD names a rule maps to
//! the same name and labels are one series, summed exactly (as statsd_exporter
//! does). That makes the key depend on the mapping, so routing needs it before
//! the shard sees the line. Matching runs once per distinct (type, name) on each
//! router; after that a line costs one probe of the router's cache keyed by the
//! name hash the key needs anyway, and nothing is allocated. That probe is the
//! mapping's per-line cost; with many distinct names the cache outgrows the
//! CPU's and the probe misses (BENCHMARKS.md has the figures). Shards map a series'
//! name once more when they create it, to build its labels (`state.rs`).
//!
//! A reload publishes a new mapper ([`LiveMapping::publish`]); each router
//! switches to it when it next flushes, after handing over every batch made
//! under the old one, so a batch's keys and the mapper it carries always agree.

use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use arc_swap::ArcSwapOption;

use super::key_map::IdentityHasher;
use crate::codec::{Metric, MetricType};
use crate::mapping::{Mapper, Mapping};
use crate::series::{KeyHasher, SeriesKey, label_key_is};
use crate::telemetry::DropReason;

/// Names remembered per router before the cache starts over: bounds its memory
/// (about 100 bytes a name, plus its labels) when names have unbounded cardinality.
const MAX_NAMES: usize = 1 << 17;

/// The mapping in force, shared by every router and replaced by reloads.
#[derive(Debug, Default)]
pub struct LiveMapping {
    current: ArcSwapOption<Mapper>,
    generation: AtomicU64,
}

impl LiveMapping {
    /// The mapping `mapper` (none: names are only sanitised).
    pub fn new(mapper: Option<Arc<Mapper>>) -> Arc<LiveMapping> {
        Arc::new(LiveMapping {
            current: ArcSwapOption::new(mapper),
            generation: AtomicU64::new(0),
        })
    }

    /// Makes `mapper` the mapping of every line routed after each router's next flush.
    pub fn publish(&self, mapper: Option<Arc<Mapper>>) {
        self.current.store(mapper);
        self.generation.fetch_add(1, Ordering::Release);
    }

    /// The mapping in force.
    pub fn current(&self) -> Option<Arc<Mapper>> {
        self.current.load_full()
    }

    fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }
}

/// One router's view of the mapping.
#[derive(Debug)]
pub(super) struct MappedNames {
    live: Arc<LiveMapping>,
    generation: u64,
    mapper: Option<Arc<Mapper>>,
    routes: HashMap<u128, Route, BuildHasherDefault<IdentityHasher>>,
}

/// What the mapping makes of one (type, name), kept inline in the cache so a
/// known name costs one probe and no further pointer chase (with names of
/// high cardinality, as Graphite-style names are, each probe misses the cache).
#[derive(Debug)]
enum Route {
    /// No rule matched: keyed as received.
    Unmapped,
    /// Dropped, for this reason.
    Dropped(DropReason),
    /// Renamed and labelled.
    Mapped(MappedRoute),
}

/// A mapped name, ready for keying lines.
#[derive(Debug)]
struct MappedRoute {
    name_hash: u128,
    label_sum: u128,
    scale: f64,
    honor_labels: bool,
    /// Label names and the hash of each label as a `name:value` tag; read only
    /// for lines that carry tags of their own.
    labels: Box<[(Box<str>, u128)]>,
}

impl MappedNames {
    /// The view of `live` as it is now.
    pub(super) fn new(live: Arc<LiveMapping>) -> Self {
        // The generation is read first: a publish in between is taken up at
        // the next refresh, never missed.
        MappedNames {
            generation: live.generation(),
            mapper: live.current(),
            live,
            routes: HashMap::default(),
        }
    }

    /// The mapper the keys are made under now.
    pub(super) fn mapper(&self) -> Option<&Arc<Mapper>> {
        self.mapper.as_ref()
    }

    /// Takes up a newly published mapping. The caller hands over every batch
    /// made under the old one first.
    pub(super) fn refresh(&mut self) {
        let generation = self.live.generation();
        if generation != self.generation {
            self.generation = generation;
            self.mapper = self.live.current();
            self.routes.clear();
        }
    }

    /// The key of `metric` under the mapping and the factor its values are
    /// scaled by, or why it is dropped.
    #[inline]
    pub(super) fn key(
        &mut self,
        hasher: &mut KeyHasher,
        metric: &Metric<'_>,
    ) -> Result<(SeriesKey, f64), DropReason> {
        let name_hash = KeyHasher::name_hash(metric.kind, metric.name);
        // Keyed as received, as `KeyHasher::key` does, reusing the name hash.
        let unmapped = |hasher: &mut KeyHasher| {
            let tags = hasher.tag_sum(metric.tags, |_| false);
            Ok((KeyHasher::with_name_hash(name_hash, tags), 1.0))
        };
        let Some(mapper) = &self.mapper else {
            return unmapped(hasher);
        };
        if self.routes.len() >= MAX_NAMES && !self.routes.contains_key(&name_hash) {
            self.routes.clear();
        }
        let route = self
            .routes
            .entry(name_hash)
            .or_insert_with(|| route(mapper, metric.kind, metric.name));
        match route {
            Route::Unmapped => unmapped(hasher),
            Route::Dropped(reason) => Err(*reason),
            Route::Mapped(mapped) => Ok((mapped.key(hasher, metric), mapped.scale)),
        }
    }
}

/// The route of (`kind`, `name`) under `mapper`.
fn route(mapper: &Mapper, kind: MetricType, name: &str) -> Route {
    match mapper.map(kind, name) {
        Mapping::Unmatched(_) => Route::Unmapped,
        Mapping::Drop => Route::Dropped(DropReason::MappingDrop),
        Mapping::EmptyName => Route::Dropped(DropReason::MappingEmptyName),
        Mapping::Map(mapped) => {
            let labels: Box<[(Box<str>, u128)]> = mapped
                .labels
                .iter()
                .map(|(key, value)| (key.clone(), KeyHasher::tag_hash(&format!("{key}:{value}"))))
                .collect();
            Route::Mapped(MappedRoute {
                name_hash: KeyHasher::name_hash(kind, &mapped.name),
                label_sum: labels.iter().fold(0, |sum, (_, h)| sum.wrapping_add(*h)),
                labels,
                honor_labels: mapped.rule.honor_labels,
                scale: mapped.rule.scale.unwrap_or(1.0),
            })
        }
    }
}

impl MappedRoute {
    /// The key of a line of this name: the mapped name, and the labels and tags
    /// that `SeriesMeta::mapped` keeps, each hashed as a tag.
    #[inline]
    fn key(&self, hasher: &mut KeyHasher, metric: &Metric<'_>) -> SeriesKey {
        if self.labels.is_empty() || metric.tags.is_empty() {
            let tags = hasher.tag_sum(metric.tags, |_| false);
            return KeyHasher::with_name_hash(self.name_hash, tags.wrapping_add(self.label_sum));
        }
        let labelled = |tag: &str| {
            self.labels
                .iter()
                .any(|(label, _)| label_key_is(tag_key(tag), label))
        };
        if self.honor_labels {
            // Tags stay; a label stands in only where no tag has its name.
            let tags = hasher.tag_sum(metric.tags, |_| false);
            let labels = self
                .labels
                .iter()
                .filter(|(label, _)| !metric.tags.pairs().any(|(key, _)| label_key_is(key, label)))
                .fold(0u128, |sum, (_, h)| sum.wrapping_add(*h));
            KeyHasher::with_name_hash(self.name_hash, tags.wrapping_add(labels))
        } else {
            // Labels replace every tag of their name.
            let tags = hasher.tag_sum(metric.tags, labelled);
            KeyHasher::with_name_hash(self.name_hash, tags.wrapping_add(self.label_sum))
        }
    }
}

/// The key of a tag: the text before its first `:`, or all of a bare tag.
fn tag_key(tag: &str) -> &str {
    tag.split_once(':').map_or(tag, |(key, _)| key)
}
