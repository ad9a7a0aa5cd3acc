//! The Prometheus text rendering (`GET /metrics/prometheus`, text exposition format 0.0.4).
//! Every value of every component becomes one sample labelled `component="<name>"`, in a
//! family named after the value (see [`family_name`]).
//!
//! Invariants, from Prometheus' exposition format and naming conventions: each family
//! appears once, as `# HELP`, then `# TYPE` (`counter` or `gauge`), then all its samples; a
//! counter family's name ends in `_total` and a gauge's never does; the values are exactly
//! the JSON endpoint's, read from the same rows. This module only renames: Flume's names
//! stay in the JSON.

use std::fmt::Write as _;

use super::{ComponentType, Field, Kind, Registry};

impl Registry {
    /// Prometheus text: per family `# HELP`, `# TYPE` and one sample per component, e.g.
    /// `flumen_source_event_accepted_total{component="r1"} 50`.
    pub fn render_prometheus(&self) -> String {
        // Families in first-seen order, each gathering its samples from every row: the format
        // wants a family's HELP and TYPE once, before all of its samples.
        let mut families: Vec<(String, &'static Field, Vec<String>)> = Vec::new();
        for r in self.rows() {
            for (field, v) in r.values {
                let name = family_name(r.ty, field);
                let sample = format!(
                    "{name}{{component=\"{}\"}} {}",
                    escape_label(&r.name),
                    v.render()
                );
                match families.iter_mut().find(|f| f.0 == name) {
                    Some(f) => f.2.push(sample),
                    None => families.push((name, field, vec![sample])),
                }
            }
        }
        let mut out = String::new();
        for (name, field, samples) in families {
            let kind = match field.kind {
                Kind::Counter => "counter",
                Kind::Gauge => "gauge",
            };
            let _ = writeln!(out, "# HELP {name} {}", escape_help(field.help));
            let _ = writeln!(out, "# TYPE {name} {kind}");
            for s in samples {
                out.push_str(&s);
                out.push('\n');
            }
        }
        out
    }
}

/// The family of a component type's value: `flumen_<type>_<Flume's name in snake case>`,
/// where a counter drops Flume's trailing `Count` and ends in `_total` instead, Prometheus'
/// suffix for an accumulating count (`EventAcceptedCount` ->
/// `flumen_source_event_accepted_total`, `Fsyncs` -> `flumen_channel_fsyncs_total`). Dropping
/// `Count` keeps `_count_total` from saying it twice, and `_count` is the suffix of a
/// histogram's or summary's sample count in Prometheus. A gauge keeps its whole name
/// (`ChannelSize` -> `flumen_channel_channel_size`).
fn family_name(ty: ComponentType, field: &Field) -> String {
    let ty = match ty {
        ComponentType::Source => "source",
        ComponentType::Channel => "channel",
        ComponentType::Sink => "sink",
    };
    match field.kind {
        Kind::Counter => {
            let base = field.name.strip_suffix("Count").unwrap_or(field.name);
            format!("flumen_{ty}_{}_total", snake_case(base))
        }
        Kind::Gauge => format!("flumen_{ty}_{}", snake_case(field.name)),
    }
}

/// `EventAcceptedCount` -> `event_accepted_count`.
fn snake_case(name: &str) -> String {
    let mut out = String::with_capacity(name.len() + 4);
    for (i, ch) in name.chars().enumerate() {
        if ch.is_ascii_uppercase() {
            if i > 0 {
                out.push('_');
            }
            out.push(ch.to_ascii_lowercase());
        } else {
            out.push(ch);
        }
    }
    out
}

/// A label value's escapes: backslash, double quote and line feed.
fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A HELP text's escapes: backslash and line feed only (a quote stays as it is there).
fn escape_help(v: &str) -> String {
    v.replace('\\', "\\\\").replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::super::test_support::registry;
    use super::super::{Counter, SINK_COUNTERS, SOURCE_COUNTERS};
    use super::*;
    use crate::channel::memory::{MemoryChannel, MemoryChannelConfig};
    use crate::channel::Channel;

    #[test]
    fn families_have_help_type_and_conventional_names() {
        let (reg, _, _) = registry();
        let text = reg.render_prometheus();
        for want in [
            "# HELP flumen_source_event_accepted_total Events the source put into its channels.\n\
             # TYPE flumen_source_event_accepted_total counter\n\
             flumen_source_event_accepted_total{component=\"r1\"} 2\n",
            "# HELP flumen_channel_channel_size Events in the channel now.\n\
             # TYPE flumen_channel_channel_size gauge\n\
             flumen_channel_channel_size{component=\"c1\"} 1\n",
            "# TYPE flumen_channel_channel_fill_percentage gauge\n\
             flumen_channel_channel_fill_percentage{component=\"c1\"} 1.0\n",
            "# TYPE flumen_channel_event_put_success_total counter\n",
            "# TYPE flumen_channel_fsyncs_total counter\n",
            "# TYPE flumen_source_open_connection_count gauge\n",
            "# TYPE flumen_source_event_read_fail_total counter\n",
            "# TYPE flumen_sink_event_drain_success_total counter\n\
             flumen_sink_event_drain_success_total{component=\"k1\"} 7\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
    }

    /// What the whole rendering must satisfy, checked by a real exposition-format parser on
    /// a registry with every kind of value (a channel with the file channel's extra values,
    /// several sources): one family per name, HELP and TYPE on each, `_total` exactly on
    /// the counters, and one sample per component. `tests/it/metrics.rs` checks the same on a
    /// running agent over HTTP, values against the JSON endpoint's.
    #[test]
    fn the_rendering_parses_and_follows_the_conventions() {
        let (reg, _, _) = registry();
        let ch: Arc<dyn Channel> =
            Arc::new(MemoryChannel::new("c2", MemoryChannelConfig::default()).expect("channel"));
        reg.channel(ch, true);
        reg.component("quote\"and\\back\nslash", ComponentType::Source);
        let text = reg.render_prometheus();
        let parsed = openmetrics_parser::prometheus::parse_prometheus(&text)
            .unwrap_or_else(|e| panic!("does not parse ({e:?}):\n{text}"));
        // 2 sources x 9 + 1 sink x 11 + channel c1 10 + channel c2 13 + 2 times x 5 components.
        let samples: usize = parsed
            .families
            .values()
            .map(|f| f.iter_samples().count())
            .sum();
        assert_eq!(samples, 18 + 11 + 10 + 13 + 10, "{text}");
        for (name, family) in &parsed.families {
            assert!(
                !family.help.trim().is_empty(),
                "{name} has no HELP:\n{text}"
            );
            match family.family_type {
                openmetrics_parser::PrometheusType::Counter => {
                    assert!(name.ends_with("_total"), "counter {name} lacks _total")
                }
                openmetrics_parser::PrometheusType::Gauge => {
                    assert!(!name.ends_with("_total"), "gauge {name} ends in _total")
                }
                ref other => panic!("{name} has TYPE {other:?}, not counter or gauge"),
            }
        }
        let weird = ["quote\"and\\back\nslash".to_string()];
        assert!(
            parsed.families["flumen_source_event_received_total"]
                .get_sample_by_label_values(&weird)
                .is_some(),
            "the label value did not survive escaping:\n{text}"
        );
    }

    #[test]
    fn old_and_new_names() {
        let name = |ty, field| family_name(ty, field);
        let src = ComponentType::Source;
        for (counter, want) in [
            (
                Counter::EventAcceptedCount,
                "flumen_source_event_accepted_total",
            ),
            (
                Counter::EventReadFail,
                "flumen_source_event_read_fail_total",
            ),
            (
                Counter::AppendBatchReceivedCount,
                "flumen_source_append_batch_received_total",
            ),
            (
                Counter::OpenConnectionCount,
                "flumen_source_open_connection_count",
            ),
        ] {
            assert_eq!(name(src, counter.field()), want);
        }
        assert_eq!(
            name(
                ComponentType::Channel,
                &super::super::channel_fields::FSYNCS
            ),
            "flumen_channel_fsyncs_total"
        );
        assert_eq!(
            name(
                ComponentType::Channel,
                &super::super::channel_fields::FILL_PERCENTAGE
            ),
            "flumen_channel_channel_fill_percentage"
        );
        // Every source and sink counter gets a distinct family.
        let mut names: Vec<String> = SOURCE_COUNTERS
            .iter()
            .chain(SINK_COUNTERS)
            .map(|c| name(src, c.field()))
            .collect();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), SOURCE_COUNTERS.len() + SINK_COUNTERS.len());
    }
}
