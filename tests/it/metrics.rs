//! `flumen agent --monitoring-port P` end to end: netcat -> file channel -> file_roll with the
//! HTTP monitoring server on; `GET /metrics` (Flume's JSON) and `GET /metrics/prometheus`
//! answer with the counters moving as events flow, unknown paths get 404, and SIGTERM still
//! exits 0.

use std::io::{BufRead, BufReader, Write};
use std::time::{Duration, Instant};

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

    let (status, prom) = get(&mut run, mport, "/metrics/prometheus");
    assert_eq!(status, 200, "{prom}");
    assert!(
        prom.contains("flumen_source_event_accepted_count{component=\"r1\"} 50\n"),
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
