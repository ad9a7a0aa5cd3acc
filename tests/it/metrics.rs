//! `flumen agent --monitoring-port P` end to end: netcat -> file channel -> file_roll with the
//! HTTP monitoring server on; `GET /metrics` (Flume's JSON) and `GET /metrics/prometheus`
//! answer with the counters moving as events flow, unknown paths get 404, and SIGTERM still
//! exits 0. The Prometheus text is read by a real exposition-format parser
//! (openmetrics-parser) and held to Prometheus' conventions: HELP and TYPE on every family,
//! `_total` on every counter and on no gauge, and the same values as the JSON.

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

use openmetrics_parser::{PrometheusType, PrometheusValue};

use crate::agent_proc::{
    free_port, get, json, netcat_file_roll_config as write_config, AgentProcess, DEADLINE,
};

#[test]
fn metrics_endpoints_count_events_as_they_flow() {
    let dir = tempfile::tempdir().expect("tempdir");
    let port = free_port();
    let mport = free_port();
    let conf = write_config(dir.path(), port);
    let mport_arg = mport.to_string();
    let mut run = AgentProcess::start_with(
        dir.path(),
        &conf,
        "a1",
        "metrics",
        &[
            "--monitoring-bind",
            "127.0.0.1",
            "--monitoring-port",
            &mport_arg,
        ],
    );

    let v = json(&mut run, mport);
    assert_eq!(v["CHANNEL.c1"]["Type"], "CHANNEL", "{v}");
    assert_eq!(v["CHANNEL.c1"]["ChannelSize"], "0", "{v}");
    assert_eq!(v["CHANNEL.c1"]["Unhealthy"], "0", "{v}");
    assert_eq!(v["SOURCE.r1"]["Type"], "SOURCE", "{v}");
    assert_eq!(v["SOURCE.r1"]["EventAcceptedCount"], "0", "{v}");
    assert_eq!(v["SINK.k1"]["Type"], "SINK", "{v}");
    assert_ne!(v["SOURCE.r1"]["StartTime"], "0", "{v}");

    let stream = run.connect(port);
    stream.set_read_timeout(Some(DEADLINE)).expect("timeout");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut w = stream;
    for i in 0..50 {
        w.write_all(format!("event-{i}\n").as_bytes())
            .expect("send");
        let mut reply = String::new();
        reader.read_line(&mut reply).expect("read the ack");
        assert_eq!(reply, "OK\n", "ack for line {i}");
    }

    let end = Instant::now() + DEADLINE;
    let v = loop {
        let v = json(&mut run, mport);
        if v["SOURCE.r1"]["EventAcceptedCount"] == "50"
            && v["SINK.k1"]["EventDrainSuccessCount"] == "50"
            && v["CHANNEL.c1"]["EventPutSuccessCount"] == "50"
        {
            break v;
        }
        assert!(Instant::now() < end, "counters never reached 50: {v}");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(v["SOURCE.r1"]["EventReceivedCount"], "50", "{v}");
    assert_eq!(v["SOURCE.r1"]["OpenConnectionCount"], "1", "{v}");
    assert_eq!(v["CHANNEL.c1"]["ChannelSize"], "0", "{v}");
    assert_eq!(v["CHANNEL.c1"]["EventTakeSuccessCount"], "50", "{v}");
    assert_eq!(v["SINK.k1"]["EventDrainAttemptCount"], "50", "{v}");
    assert_eq!(v["SINK.k1"]["StopTime"], "0", "{v}");
    drop((reader, w));

    let prom = check_prometheus_against_json(&mut run, mport);
    assert!(
        prom.contains("flumen_source_event_accepted_total{component=\"r1\"} 50\n"),
        "{prom}"
    );
    assert!(
        prom.contains("# TYPE flumen_channel_channel_size gauge\n"),
        "{prom}"
    );
    assert_eq!(get(&mut run, mport, "/nope").0, 404);

    let (st, log) = run.terminate();
    assert_eq!(st.code(), Some(0), "{log}");
}

/// Flume's values that go up and down, or are settings or times: Prometheus gauges, which keep
/// their whole name. Every other value only grows and is a counter.
const GAUGES: &[&str] = &[
    "ChannelSize",
    "ChannelCapacity",
    "ChannelFillPercentage",
    "Unhealthy",
    "StartTime",
    "StopTime",
    "OpenConnectionCount",
    "Active",
];

/// The Prometheus family of the JSON's `<TYPE>.<name>` component's value `field` (the naming
/// rule in docs/CONFIG.md, Monitoring): `flumen_<type>_<field in snake case>`, a counter without
/// Flume's trailing `Count` and with `_total`. Returns the name and whether it is a counter.
fn prometheus_family(json_type: &str, field: &str) -> (String, bool) {
    let counter = !GAUGES.contains(&field);
    let base = if counter {
        field.strip_suffix("Count").unwrap_or(field)
    } else {
        field
    };
    let mut snake = String::new();
    for (i, ch) in base.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            snake.push('_');
        }
        snake.push(ch.to_ascii_lowercase());
    }
    let suffix = if counter { "_total" } else { "" };
    let ty = json_type.to_ascii_lowercase();
    (format!("flumen_{ty}_{snake}{suffix}"), counter)
}

/// Scrapes `/metrics`, `/metrics/prometheus`, then `/metrics` again, and checks the
/// Prometheus text: it parses; every family has a HELP text and a counter or gauge TYPE; every
/// counter's name ends in `_total` and no gauge's does; every JSON value has its sample, with
/// a value between the JSON's before and after (the agent keeps counting while we scrape: a
/// sink polling an empty channel counts takes), and there is no sample without a JSON value.
/// Returns the Prometheus text.
fn check_prometheus_against_json(run: &mut AgentProcess, mport: u16) -> String {
    let before = json(run, mport);
    let (status, text) = get(run, mport, "/metrics/prometheus");
    assert_eq!(status, 200, "{text}");
    let after = json(run, mport);
    let parsed = openmetrics_parser::prometheus::parse_prometheus(&text)
        .unwrap_or_else(|e| panic!("/metrics/prometheus does not parse ({e:?}):\n{text}"));

    for (name, family) in &parsed.families {
        assert!(
            !family.help.trim().is_empty(),
            "{name} has no HELP:\n{text}"
        );
        match family.family_type {
            PrometheusType::Counter => assert!(name.ends_with("_total"), "counter {name}"),
            PrometheusType::Gauge => assert!(!name.ends_with("_total"), "gauge {name}"),
            ref other => panic!("{name} has TYPE {other:?}, not counter or gauge:\n{text}"),
        }
    }

    let number = |v: &serde_json::Value| -> f64 {
        let s = v
            .as_str()
            .unwrap_or_else(|| panic!("JSON value {v} is not a string"));
        s.parse()
            .unwrap_or_else(|e| panic!("JSON value {s:?}: {e}"))
    };
    let components = before.as_object().expect("a JSON object of components");
    assert_eq!(components.len(), 3, "r1, c1 and k1: {before}");
    let mut matched = 0;
    for (key, values) in components {
        let (json_type, component) = key.split_once('.').expect("<TYPE>.<name>");
        for (field, value) in values.as_object().expect("an object of values") {
            if field == "Type" {
                continue;
            }
            let (name, counter) = prometheus_family(json_type, field);
            let family = parsed
                .families
                .get(&name)
                .unwrap_or_else(|| panic!("{key} {field}: no family {name} in:\n{text}"));
            let want_type = if counter {
                PrometheusType::Counter
            } else {
                PrometheusType::Gauge
            };
            assert_eq!(family.family_type, want_type, "{name}");
            let sample = family
                .iter_samples()
                .find(|s| {
                    s.get_labelset()
                        .is_ok_and(|l| l.get_label_value("component") == Some(component))
                })
                .unwrap_or_else(|| panic!("{name} has no sample for {component}:\n{text}"));
            let got = match &sample.value {
                PrometheusValue::Counter(c) => c.value.as_f64(),
                PrometheusValue::Gauge(g) => g.as_f64(),
                other => panic!("{name}: unexpected value {other:?}"),
            };
            let (a, b) = (number(value), number(&after[key][field]));
            assert!(
                a.min(b) <= got && got <= a.max(b),
                "{name}{{component={component:?}}} is {got}; the JSON's {field} was {a}, then {b}"
            );
            matched += 1;
        }
    }
    let samples: usize = parsed
        .families
        .values()
        .map(|f| f.iter_samples().count())
        .sum();
    assert_eq!(samples, matched, "samples without a JSON value in:\n{text}");
    text
}
