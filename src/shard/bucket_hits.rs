//! Classic histogram buckets of one sampled series, counted as samples arrive.
//!
//! Each sample adds its weight (1/rate) to the first bucket whose bound is at
//! or above it (one `partition_point` over a few bounds), so every sample is
//! weighted by its own rate; the cumulative counts Prometheus wants are summed
//! at window close.

use std::sync::Arc;

use crate::store::Buckets;

/// Bounds, and the weight that fell at or below each bound but above the
/// previous one (not cumulative), since the series appeared.
#[derive(Debug)]
pub(super) struct BucketHits {
    bounds: Arc<[f64]>,
    hits: Box<[f64]>,
}

impl BucketHits {
    /// Empty buckets with `bounds`, or none without.
    pub fn new(bounds: Option<Arc<[f64]>>) -> Option<Self> {
        bounds.map(|bounds| BucketHits {
            hits: vec![0.0; bounds.len()].into_boxed_slice(),
            bounds,
        })
    }

    /// `current` under the `bounds` a reload assigned: kept when the bounds are
    /// the same, started from zero otherwise.
    pub fn retuned(current: Option<Self>, bounds: Option<Arc<[f64]>>) -> Option<Self> {
        match (current, bounds) {
            (Some(current), Some(bounds)) if current.bounds[..] == bounds[..] => Some(current),
            (_, bounds) => BucketHits::new(bounds),
        }
    }

    /// Adds `weight` to the bucket of `value` (nothing above the last bound:
    /// the `+Inf` bucket is the total count).
    #[inline]
    pub fn hit(&mut self, value: f64, weight: f64) {
        let bucket = self.bounds.partition_point(|&bound| bound < value);
        if let Some(hit) = self.hits.get_mut(bucket) {
            *hit += weight;
        }
    }

    /// The cumulative buckets.
    pub fn cumulative(&self) -> Buckets {
        let mut running = 0.0;
        let counts = self
            .hits
            .iter()
            .map(|&hit| {
                running += hit;
                running
            })
            .collect();
        Buckets {
            bounds: self.bounds.clone(),
            counts,
        }
    }
}
