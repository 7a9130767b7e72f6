//! Rendering tallyd's own `tallyd_*` families after the user's series on `/metrics`.
//!
//! The families, their names, help, types and labels come from the telemetry
//! catalogue through [`Telemetry::collect`]; this module only hands them to an
//! [`Exposition`] (text or protobuf), so it holds no metric names of its own.

use std::sync::Arc;

use super::{Exposition, FamilyType, HistogramValues};
use crate::series::escape_label_value;
use crate::store::Buckets;
use crate::telemetry::{Collector, Family, HistogramSnapshot, Kind, ScrapeFacts, Telemetry};

/// Writes every `tallyd_*` family that applies.
pub fn write_self_metrics(w: &mut impl Exposition, telemetry: &Telemetry, facts: &ScrapeFacts) {
    let mut renderer = Renderer {
        writer: w,
        family: None,
        labels: String::new(),
    };
    telemetry.collect(facts, &mut renderer);
}

/// A [`Collector`] writing to the exposition.
struct Renderer<'w, E> {
    writer: &'w mut E,
    family: Option<&'static Family>,
    /// Scratch for one sample's rendered labels.
    labels: String,
}

impl<E: Exposition> Collector for Renderer<'_, E> {
    fn family(&mut self, family: &'static Family) {
        let kind = match family.kind {
            Kind::Counter => FamilyType::Counter,
            Kind::Gauge => FamilyType::Gauge,
            Kind::Histogram => FamilyType::Histogram,
        };
        self.writer.family(family.name, kind, family.help);
        self.family = Some(family);
    }

    fn sample(&mut self, label_values: &[&str], value: f64) {
        if self.render_labels(label_values) {
            self.writer.value(&self.labels, value);
        }
    }

    fn histogram(&mut self, label_values: &[&str], histogram: &HistogramSnapshot) {
        if !self.render_labels(label_values) {
            return;
        }
        let buckets = Buckets {
            bounds: Arc::from(histogram.bounds),
            counts: histogram.cumulative.iter().map(|&c| c as f64).collect(),
        };
        let values = HistogramValues {
            classic: Some(&buckets),
            native: None,
            sum: histogram.sum,
            count: histogram.count as f64,
        };
        self.writer.histogram(&self.labels, &values);
    }
}

impl<E> Renderer<'_, E> {
    /// Renders `label_values` under the current family's label names into
    /// `self.labels`; false before any family.
    fn render_labels(&mut self, label_values: &[&str]) -> bool {
        let Some(family) = self.family else {
            return false;
        };
        self.labels.clear();
        for (i, (name, value)) in family.labels.iter().zip(label_values).enumerate() {
            if i > 0 {
                self.labels.push(',');
            }
            self.labels.push_str(name);
            self.labels.push_str("=\"");
            escape_label_value(&mut self.labels, value);
            self.labels.push('"');
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{Format, Writer};

    #[test]
    fn families_render_with_their_type_suffix_and_escaped_labels() {
        let telemetry = Telemetry::new(1);
        if let Ok(mut adapter) = telemetry.gpu.adapter.lock() {
            adapter.push_str("GPU \"9\"");
        }
        let mut out = String::new();
        let mut writer = Writer::new(&mut out, Format::Prometheus);
        write_self_metrics(&mut writer, &telemetry, &ScrapeFacts::default());
        writer.finish();
        assert!(out.contains("# TYPE tallyd_lines_dropped_total counter\n"));
        assert!(out.contains("tallyd_lines_dropped_total{reason=\"queue_full\"} 0\n"));
        assert!(out.contains("# TYPE tallyd_series gauge\ntallyd_series{shard=\"0\"} 0\n"));
        assert!(out.contains("tallyd_kernel_gpu_adapter_info{adapter=\"GPU \\\"9\\\"\"} 1\n"));
    }
}
