//! The Prometheus text rendering (`GET /metrics/prometheus`, exposition format 0.0.4):
//! every value of every component becomes a sample labelled with the component's name.

use std::fmt::Write as _;

use super::{ComponentType, Registry, SINK_COUNTERS, SOURCE_COUNTERS};

impl Registry {
    /// Prometheus text format: `flumen_<type>_<counter_snake_case>{component="c1"} value`,
    /// one `# TYPE` line per metric.
    pub fn render_prometheus(&self) -> String {
        // Metric name -> (is gauge, lines), in first-seen order.
        let mut families: Vec<(String, bool, Vec<String>)> = Vec::new();
        for r in self.rows() {
            for (k, v) in r.values {
                let metric = format!("flumen_{}_{}", prom_name(r.ty), snake_case(k));
                let line = format!(
                    "{metric}{{component=\"{}\"}} {}",
                    escape_label(&r.name),
                    v.render()
                );
                match families.iter_mut().find(|f| f.0 == metric) {
                    Some(f) => f.2.push(line),
                    None => families.push((metric, is_gauge(k), vec![line])),
                }
            }
        }
        let mut out = String::new();
        for (metric, gauge, lines) in families {
            let kind = if gauge { "gauge" } else { "counter" };
            let _ = writeln!(out, "# TYPE {metric} {kind}");
            for l in lines {
                out.push_str(&l);
                out.push('\n');
            }
        }
        out
    }
}

fn prom_name(ty: ComponentType) -> &'static str {
    match ty {
        ComponentType::Source => "source",
        ComponentType::Channel => "channel",
        ComponentType::Sink => "sink",
    }
}

fn is_gauge(name: &str) -> bool {
    matches!(
        name,
        "ChannelSize"
            | "ChannelCapacity"
            | "ChannelFillPercentage"
            | "Unhealthy"
            | "StartTime"
            | "StopTime"
    ) || SOURCE_COUNTERS
        .iter()
        .chain(SINK_COUNTERS)
        .any(|c| c.name() == name && c.is_gauge())
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

fn escape_label(v: &str) -> String {
    v.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::super::test_support::registry;
    use super::*;

    #[test]
    fn prometheus_text() {
        let (reg, _, _) = registry();
        let text = reg.render_prometheus();
        for want in [
            "# TYPE flumen_channel_channel_size gauge\nflumen_channel_channel_size{component=\"c1\"} 1\n",
            "# TYPE flumen_channel_channel_fill_percentage gauge\n",
            "# TYPE flumen_channel_event_put_success_count counter\n",
            "flumen_source_event_accepted_count{component=\"r1\"} 2\n",
            "# TYPE flumen_source_open_connection_count gauge\n",
            "# TYPE flumen_sink_event_drain_success_count counter\nflumen_sink_event_drain_success_count{component=\"k1\"} 7\n",
        ] {
            assert!(text.contains(want), "missing {want:?} in:\n{text}");
        }
        // One TYPE line per metric.
        let types = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        let metrics: std::collections::HashSet<&str> = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split('{').next())
            .collect();
        assert_eq!(types, metrics.len());
    }

    #[test]
    fn snake_case_names() {
        assert_eq!(snake_case("EventAcceptedCount"), "event_accepted_count");
        assert_eq!(
            snake_case("ChannelFillPercentage"),
            "channel_fill_percentage"
        );
    }
}
