#!/usr/bin/env python3
"""flumen against Apache Flume 1.11.0 (from Maven Central), side by side, in one run.

Workloads (1 KiB events, batch 100, durable commits on both sides):
  channel        flumen's file channel vs Flume's FileChannel: 4 producers, 1 consumer
                 (`flumen bench channel` vs benches/peer/flume's ChannelBench, same fields)
  channel_mem    flumen's file channel vs Flume's MemoryChannel, same workload
  agent_null     one properties file both agents run unchanged: StressSource -> file channel
                 -> null sink; each timed from its channel's start (CHANNEL.c1.StartTime) until
                 its monitoring endpoint shows every event's take committed
                 (CHANNEL.c1.EventTakeSuccessCount)
  agent_hdfs     the same with an hdfs sink (DataStream) into a MiniDFSCluster this script
                 starts (tests/hdfs)
  routed         one properties file both agents run unchanged: StressSource -> timestamp,
                 host and regex_extractor interceptors -> multiplexing selector over two file
                 channels -> a null sink each; timed as agent_null until both channels'
                 takes add up to every event. The regex captures body byte 8, which the
                 mapping sends to c1 in both agents (Flume's StressSource bodies are every
                 byte 0x7F, so no header of theirs can split them; routing both the same way
                 keeps the work equal). `flumen bench agent` measures a split routing.
  kafka_sink     one properties file both agents run unchanged: StressSource -> file channel
                 -> Kafka sink (acks=all, flumeBatchSize 100) into a fresh 4-partition topic
                 on a single-node KRaft broker this script starts (tests/kafka, Apache
                 Kafka 3.9); timed as agent_null (a take commits only once Kafka acknowledged
                 every record of the batch)
  kafka_producer flumen's kafka_sink run of the round against Kafka's own Java producer
                 (ProducerPerformance from kafka-tools, same broker, acks=all, 1 KiB records,
                 the same count), timed by the tool from its first send
  kafka_source   one properties file both agents run unchanged: Kafka source (a new consumer
                 group per run, from the earliest offset, batchSize 1000) on a topic filled
                 once with the run's events by Kafka's producer -> file channel -> null sink;
                 timed as agent_null
  taildir        one properties file both agents run unchanged: TAILDIR on one log of
                 --taildir-events lines of 200 bytes (written and synced once per run, read by
                 every agent from the start through its own fresh positionFile) -> file
                 channel -> null sink, batch 100; timed as agent_null

  netcat_ack     one properties file both agents run unchanged: netcat (ack-every-event) ->
                 file channel -> null sink, driven by `flumen bench load` from one connection
                 keeping 64 lines of 200 bytes unanswered; timed from the first line sent
                 until the monitoring endpoint shows every take committed
  syslog_tcp     the same with syslogtcp and 50 connections sending RFC 5424 lines of 200
                 bytes (--net-events in all)
  http_json      the same with the http source (JSONHandler) and 16 clients posting JSON
                 arrays of 100 events of 200 bytes, each waiting for its 200

--workloads picks some of them (comma-separated; default all); the MiniDFSCluster only starts
for agent_hdfs, the Kafka broker only for the kafka workloads.

Every pair runs alternately, flumen then Flume, for --rounds rounds; medians are reported and
ratios are taken within a round. Peak RSS is each process's VmHWM (/proc) at the end of the
run (for the channel benches, /usr/bin/time's maximum resident set size). Progress goes to
stderr; a table and, as the last stdout line, one JSON object go to stdout.
"""

import argparse
import base64
import json
import os
import statistics
import subprocess
import sys
import shutil
import socket
import tempfile
import time

sys.dont_write_bytecode = True  # no benches/__pycache__ from importing peerlib
from peerlib import (ROOT, PEER, log, sh, maven_classpath, flumen_bin, free_port,  # noqa: E402
                     last_json, vm_hwm_kb, drain_state, flumen_agent_cmd, flumen_agent_env,
                     flume_agent_cmd, stop_group)

HDFS_PROJECT = os.path.join(ROOT, "tests", "hdfs")
KAFKA_PROJECT = os.path.join(ROOT, "tests", "kafka")
WORKLOADS = ["channel", "channel_mem", "agent_null", "agent_hdfs", "taildir", "routed",
             "kafka_sink", "kafka_producer", "kafka_source", "netcat_ack", "syslog_tcp",
             "http_json"]
# Network sources: (Flume source properties after `type = `, load URL scheme, clients).
NET_WORKLOADS = {
    "netcat_ack": ("netcat\na1.sources.r1.bind = 127.0.0.1\n", "netcat", 1),
    "syslog_tcp": ("syslogtcp\na1.sources.r1.host = 127.0.0.1\n", "syslog+tcp", 50),
    "http_json": ("http\na1.sources.r1.bind = 127.0.0.1\n", "http", 16),
}
KAFKA_WORKLOADS = {"kafka_sink", "kafka_producer", "kafka_source"}
TARGETS = {
    "channel_ratio": 10.0,
    "file_vs_flume_memory_ratio": 1.0,
    "agent_null_ratio": 5.0,
    "agent_hdfs_ratio": 3.0,
    "taildir_ratio": 10.0,
    "routed_ratio": 8.0,
    "kafka_sink_ratio": 3.0,
    "kafka_sink_vs_java_producer_ratio": 1.0,
    "kafka_source_ratio": 3.0,
    "netcat_ack_ratio": 10.0,
    "syslog_tcp_ratio": 10.0,
    "http_json_ratio": 10.0,
    "rss_ratio": 0.25,  # at most
}


# ---------------------------------------------------------------------------------------------
# Channel workloads


def timed(cmd):
    """Runs cmd; returns (stdout, peak RSS in KiB) via /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r", suffix=".rss") as rss:
        p = subprocess.run(["/usr/bin/time", "-f", "%M", "-o", rss.name] + cmd,
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed ({p.returncode}):\n{p.stderr[-3000:]}")
        rss.seek(0)
        peak = int((rss.read().strip().splitlines() or ["0"])[-1])
    return p.stdout, peak


def channel_args(a, channel, d):
    return ["--channel", channel, "--dir", d, "--events", str(a.channel_events),
            "--event-size", "1024", "--batch", "100", "--producers", "4",
            "--consumers", "1", "--json"]


def flumen_channel(a, d):
    out, rss = timed([flumen_bin(), "bench", "channel"] + channel_args(a, "file", d))
    j = last_json(out)
    if not j.get("verified"):
        raise RuntimeError(f"flumen bench channel did not verify: {j}")
    return j["events_per_sec"], rss


def flume_channel(a, cp, channel, d):
    out, rss = timed(["java", "-Xmx1g", "-cp", cp, "flumen.peer.flume.ChannelBench"]
                     + channel_args(a, channel, d))
    j = last_json(out)
    if not j.get("verified", True):
        raise RuntimeError(f"Flume ChannelBench did not verify: {j}")
    return j["events_per_sec"], rss


# ---------------------------------------------------------------------------------------------
# Agent workloads


def file_channel(name, d, n):
    """File channel `name` with its directories under d and room for n events."""
    return f"""a1.channels.{name}.type = file
a1.channels.{name}.checkpointDir = {d}/checkpoint
a1.channels.{name}.dataDirs = {d}/data
a1.channels.{name}.capacity = {max(n, 1000000)}
a1.channels.{name}.transactionCapacity = 1000
a1.channels.{name}.minimumRequiredSpace = 1048576
"""


def agent_properties(d, n, sink):
    return f"""# Run unchanged by flumen (flumen agent) and Flume (org.apache.flume.node.Application).
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.StressSource
a1.sources.r1.size = 1024
a1.sources.r1.maxTotalEvents = {n}
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1
{file_channel('c1', d, n)}a1.sinks.k1.channel = c1
{sink}"""


def routed_properties(d, n):
    channels = "".join(file_channel(c, f"{d}/{c}", n) + f"""a1.sinks.k{c[1]}.type = null
a1.sinks.k{c[1]}.batchSize = 100
a1.sinks.k{c[1]}.channel = {c}
""" for c in ["c1", "c2"])
    return f"""# Run unchanged by flumen (flumen agent) and Flume (org.apache.flume.node.Application).
a1.sources = r1
a1.channels = c1 c2
a1.sinks = k1 k2
a1.sources.r1.type = org.apache.flume.source.StressSource
a1.sources.r1.size = 1024
a1.sources.r1.maxTotalEvents = {n}
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1 c2
a1.sources.r1.interceptors = ts host rx
a1.sources.r1.interceptors.ts.type = timestamp
a1.sources.r1.interceptors.host.type = host
a1.sources.r1.interceptors.rx.type = regex_extractor
a1.sources.r1.interceptors.rx.regex = ^[\\\\s\\\\S]{{8}}([\\\\s\\\\S])
a1.sources.r1.interceptors.rx.serializers = s1
a1.sources.r1.interceptors.rx.serializers.s1.name = b8
a1.sources.r1.selector.type = multiplexing
a1.sources.r1.selector.header = b8
# Body byte 8: `(` in flumen's stress bodies, 0x7F in Flume's: both go to c1.
a1.sources.r1.selector.mapping.( = c1
a1.sources.r1.selector.mapping.\\u007F = c1
a1.sources.r1.selector.default = c2
{channels}"""


def taildir_properties(d, log_dir, n):
    return f"""# Run unchanged by flumen (flumen agent) and Flume (org.apache.flume.node.Application).
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = TAILDIR
a1.sources.r1.filegroups = f1
a1.sources.r1.filegroups.f1 = {log_dir}/bench[.]log
a1.sources.r1.positionFile = {d}/taildir_position.json
a1.sources.r1.batchSize = 100
a1.sources.r1.channels = c1
{file_channel('c1', d, n)}a1.sinks.k1.channel = c1
a1.sinks.k1.type = null
a1.sinks.k1.batchSize = 100
"""


def write_taildir_log(log_dir, n, size=200):
    """n lines of size bytes plus a newline, each starting with its number (as `flumen bench
    taildir` writes them), synced."""
    os.makedirs(log_dir, exist_ok=True)
    filler = bytes(b"abcdefghijklmnopqrstuvwxyz"[i % 26] for i in range(size))
    with open(os.path.join(log_dir, "bench.log"), "wb", buffering=1 << 20) as f:
        for i in range(n):
            digits = str(i).encode()
            f.write(digits + filler[len(digits):] + b"\n")
        # Synced now, so the kernel's writeback of the fresh log does not compete with the
        # first agent's channel fsyncs.
        f.flush()
        os.fsync(f.fileno())


def null_sink():
    return "a1.sinks.k1.type = null\na1.sinks.k1.batchSize = 100\n"


def hdfs_sink(url, path):
    return (f"a1.sinks.k1.type = hdfs\n"
            f"a1.sinks.k1.hdfs.path = {url}{path}\n"
            f"a1.sinks.k1.hdfs.fileType = DataStream\n"
            f"a1.sinks.k1.hdfs.batchSize = 100\n"
            f"a1.sinks.k1.hdfs.rollCount = 0\n"
            f"a1.sinks.k1.hdfs.rollSize = 0\n"
            f"a1.sinks.k1.hdfs.rollInterval = 0\n")


def run_agent(cmd, n, port, what, deadline_s, env=None, channels=("c1",)):
    """Starts an agent and waits until takes of n events committed. Returns (seconds from the
    channel's start, as the agent reports it, to the first poll showing n; peak RSS in KiB):
    JVM start-up is not counted against Flume."""
    log_file = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    start = time.monotonic()
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                         env=env, start_new_session=True)
    last_report = start
    try:
        while True:
            done, source_start_ms = drain_state(port, channels)
            if done >= n:
                if source_start_ms <= 0:
                    raise RuntimeError(f"{what}: no CHANNEL.c1.StartTime in /metrics")
                elapsed = time.time() - source_start_ms / 1000.0
                break
            if p.poll() is not None:
                raise RuntimeError(f"{what} exited early ({p.returncode}); log {log_file.name}")
            now = time.monotonic()
            if now - start > deadline_s:
                raise RuntimeError(f"{what}: {done}/{n} after {deadline_s} s; log {log_file.name}")
            if now - last_report >= 5:
                last_report = now
                log(f"  {what}: {max(done, 0)}/{n} events")
            time.sleep(0.005)
        rss = vm_hwm_kb(p.pid)
    finally:
        stop_group(p)
    os.unlink(log_file.name)
    return elapsed, rss


def flumen_agent(props, n, what, deadline_s, channels=("c1",)):
    port = free_port()
    return run_agent(flumen_agent_cmd(props, port), n, port, what, deadline_s,
                     flumen_agent_env(), channels)


def flume_agent(props, n, cp, what, deadline_s, channels=("c1",)):
    port = free_port()
    return run_agent(flume_agent_cmd(props, port, cp), n, port, what, deadline_s,
                     channels=channels)


def net_properties(d, n, key, port):
    source, _, _ = NET_WORKLOADS[key]
    return f"""# Run unchanged by flumen (flumen agent) and Flume (org.apache.flume.node.Application).
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = {source}a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
{file_channel('c1', d, n)}a1.sinks.k1.channel = c1
{null_sink()}"""


def run_net_agent(cmd, n, mport, sport, load, what, deadline_s, env=None):
    """Starts an agent, waits until its source accepts connections, then times `load` (a
    `flumen bench load` command line) from its start until the monitoring endpoint on mport
    shows n takes committed. Returns (seconds, peak RSS in KiB)."""
    log_file = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
    p = subprocess.Popen(cmd, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT,
                         env=env, start_new_session=True)
    try:
        up = time.monotonic() + 120
        while True:
            if p.poll() is not None:
                raise RuntimeError(f"{what} exited early ({p.returncode}); log {log_file.name}")
            try:
                socket.create_connection(("127.0.0.1", sport), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > up:
                    raise RuntimeError(f"{what}: port {sport} not listening after 120 s")
                time.sleep(0.05)
        start = time.monotonic()
        out = subprocess.run(load, cwd=ROOT, capture_output=True, text=True)
        if out.returncode != 0:
            raise RuntimeError(f"{what}: load failed ({out.returncode}): {out.stderr[-2000:]}"
                               f"{out.stdout[-500:]}; agent log {log_file.name}")
        last_report = time.monotonic()
        while True:
            done, _ = drain_state(mport)
            if done >= n:
                elapsed = time.monotonic() - start
                break
            now = time.monotonic()
            if now - start > deadline_s:
                raise RuntimeError(f"{what}: {done}/{n} after {deadline_s} s; log {log_file.name}")
            if now - last_report >= 5:
                last_report = now
                log(f"  {what}: {max(done, 0)}/{n} events")
            time.sleep(0.005)
        rss = vm_hwm_kb(p.pid)
    finally:
        stop_group(p)
    os.unlink(log_file.name)
    return elapsed, rss


def net_workload(key, who, d, n, cp, deadline_s):
    """One network-source run of `who` (flumen or flume): (events/s, peak RSS in KiB)."""
    _, scheme, clients = NET_WORKLOADS[key]
    wd = os.path.join(d, f"{key}-{who}")
    os.makedirs(wd, exist_ok=True)
    props = os.path.join(wd, "agent.properties")
    sport, mport = free_port(), free_port()
    with open(props, "w") as f:
        f.write(net_properties(wd, n, key, sport))
    load = [flumen_bin(), "bench", "load", "--to", f"{scheme}://127.0.0.1:{sport}/",
            "--events", str(n), "--event-size", "200", "--clients", str(clients),
            "--in-flight", "64", "--batch", "100", "--json"]
    if who == "flumen":
        cmd, env = flumen_agent_cmd(props, mport), flumen_agent_env()
    else:
        cmd, env = flume_agent_cmd(props, mport, cp), None
    secs, rss = run_net_agent(cmd, n, mport, sport, load, f"{key} {who}", deadline_s, env)
    shutil.rmtree(wd, ignore_errors=True)
    return n / secs, rss


def kafka_sink(bootstrap, topic):
    return (f"a1.sinks.k1.type = org.apache.flume.sink.kafka.KafkaSink\n"
            f"a1.sinks.k1.kafka.bootstrap.servers = {bootstrap}\n"
            f"a1.sinks.k1.kafka.topic = {topic}\n"
            f"a1.sinks.k1.flumeBatchSize = 100\n"
            f"a1.sinks.k1.kafka.producer.acks = all\n")


def kafka_source_properties(d, n, bootstrap, topic, group):
    return f"""# Run unchanged by flumen (flumen agent) and Flume (org.apache.flume.node.Application).
a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = org.apache.flume.source.kafka.KafkaSource
a1.sources.r1.kafka.bootstrap.servers = {bootstrap}
a1.sources.r1.kafka.topics = {topic}
a1.sources.r1.kafka.consumer.group.id = {group}
a1.sources.r1.kafka.consumer.auto.offset.reset = earliest
a1.sources.r1.batchSize = 1000
a1.sources.r1.channels = c1
{file_channel('c1', d, n)}a1.sinks.k1.channel = c1
a1.sinks.k1.type = null
a1.sinks.k1.batchSize = 1000
"""


def java_producer(cp, bootstrap, topic, n, acks="all"):
    """Kafka's own producer benchmark: (events/s as it reports them, peak RSS in KiB)."""
    out, rss = timed(["java", "-Xmx1g", "-cp", cp, "org.apache.kafka.tools.ProducerPerformance",
                      "--topic", topic, "--num-records", str(n), "--record-size", "1024",
                      "--throughput", "-1", "--producer-props", f"bootstrap.servers={bootstrap}",
                      f"acks={acks}"])
    # The summary line: "N records sent, R records/sec (M MB/sec), ...".
    for line in reversed(out.strip().splitlines()):
        if "records sent," in line:
            return float(line.split(",")[1].split()[0]), rss
    raise RuntimeError(f"ProducerPerformance printed no summary:\n{out[-2000:]}")


class KafkaBroker:
    """A single-node KRaft broker from tests/kafka (Apache Kafka 3.9), halted when its stdin
    closes. Topics are created on first use with 4 partitions."""

    def __init__(self, cp, base):
        d = os.path.join(base, "kafka")
        os.makedirs(d)
        port, controller = free_port(), free_port()
        props = os.path.join(d, "server.properties")
        with open(props, "w") as f:
            f.write(f"""process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller}
advertised.listeners=PLAINTEXT://127.0.0.1:{port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
log.dirs={d}/logs
num.partitions=4
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
group.initial.rebalance.delay.ms=0
""")
        cluster_id = base64.urlsafe_b64encode(os.urandom(16)).rstrip(b"=").decode()
        self.log = open(os.path.join(d, "broker.log"), "w")
        self.p = subprocess.Popen(
            ["java", "-Xmx1g", "-cp", cp, "flumen.test.KafkaBroker", props, cluster_id],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=self.log)
        self.bootstrap = f"127.0.0.1:{port}"
        deadline = time.monotonic() + 90
        while True:
            if self.p.poll() is not None:
                raise RuntimeError(f"the Kafka broker exited; see {d}/broker.log")
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the Kafka broker did not listen in 90 s; {d}/broker.log")
                time.sleep(0.2)

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=60)
        self.log.close()


class MiniHdfs:
    """A MiniDFSCluster from tests/hdfs, shut down when its stdin closes."""

    def __init__(self, cp, base):
        self.p = subprocess.Popen(
            ["java", "-Xmx512m", "-XX:+UseSerialGC", "-cp", cp, "flumen.test.MiniHdfs",
             os.path.join(base, "dfs")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.p.stdout.readline()
        if not line.startswith("READY "):
            raise RuntimeError(f"MiniDFSCluster did not start: {line!r}")
        self.url = line.split()[1]

    def close(self):
        self.p.stdin.close()
        self.p.wait(timeout=60)


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="one short round of each workload")
    ap.add_argument("--channel-events", type=int, default=200_000)
    ap.add_argument("--agent-events", type=int, default=200_000)
    ap.add_argument("--taildir-events", type=int, default=2_000_000,
                    help="lines of 200 bytes in the taildir workload's log")
    ap.add_argument("--net-events", type=int, default=100_000,
                    help="events per run of the network-source workloads")
    ap.add_argument("--workloads", default=",".join(WORKLOADS),
                    help=f"comma-separated subset of {','.join(WORKLOADS)}")
    ap.add_argument("--dir", default=None, help="where channels live (default: a temp dir)")
    ap.add_argument("--skip-build", action="store_true")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.channel_events, a.agent_events, a.taildir_events = 1, 20_000, 20_000, 100_000
        a.net_events = 20_000
    chosen = [w for w in a.workloads.split(",") if w]
    unknown = set(chosen) - set(WORKLOADS)
    if unknown or not chosen:
        ap.error(f"--workloads: unknown {sorted(unknown)}; choose from {','.join(WORKLOADS)}")
    if "kafka_producer" in chosen and "kafka_sink" not in chosen:
        chosen.append("kafka_sink")  # the producer is compared with the kafka_sink run

    if not a.skip_build:
        log("building flumen (release) and the Java peers ...")
        sh(["cargo", "build", "--release", "--quiet"], stdout=sys.stderr)
    peer_cp = maven_classpath(PEER)
    hdfs_cp = maven_classpath(HDFS_PROJECT) if "agent_hdfs" in chosen else None
    kafka_cp = maven_classpath(KAFKA_PROJECT) if KAFKA_WORKLOADS & set(chosen) else None

    base = tempfile.mkdtemp(prefix="flumen-compare-", dir=a.dir)
    results = {k: {"flumen": [], "flume": [], "ratio": [], "rss_flumen": [], "rss_flume": []}
               for k in WORKLOADS if k in chosen}

    def record(key, f_eps, f_rss, j_eps, j_rss):
        r = results[key]
        r["flumen"].append(f_eps)
        r["flume"].append(j_eps)
        r["ratio"].append(f_eps / j_eps if j_eps else 0.0)
        r["rss_flumen"].append(f_rss)
        r["rss_flume"].append(j_rss)
        log(f"  {key}: flumen {f_eps:,.0f}/s ({f_rss // 1024} MiB) vs Flume {j_eps:,.0f}/s "
            f"({j_rss // 1024} MiB): {f_eps / j_eps if j_eps else 0:.2f}x")

    hdfs = None
    if "agent_hdfs" in chosen:
        hdfs = MiniHdfs(hdfs_cp, base)
        log(f"MiniDFSCluster at {hdfs.url}")
    kafka = None
    if kafka_cp:
        kafka = KafkaBroker(kafka_cp, base)
        log(f"Kafka broker at {kafka.bootstrap}; warming it up with Kafka's producer ...")
        java_producer(kafka_cp, kafka.bootstrap, "warmup", a.agent_events)
        if "kafka_source" in chosen:
            log(f"filling topic source-fill with {a.agent_events} records ...")
            java_producer(kafka_cp, kafka.bootstrap, "source-fill", a.agent_events, acks="1")
    taildir_logs = os.path.join(base, "taildir-logs")
    if "taildir" in chosen:
        log(f"writing the taildir log ({a.taildir_events} lines of 200 bytes) ...")
        write_taildir_log(taildir_logs, a.taildir_events)
    try:
        n = a.agent_events
        deadline = max(120, n // 500)
        for rnd in range(a.rounds):
            log(f"round {rnd + 1}/{a.rounds}")
            d = os.path.join(base, f"r{rnd}")

            if "channel" in chosen or "channel_mem" in chosen:
                f_eps, f_rss = flumen_channel(a, os.path.join(d, "ch-flumen"))
            if "channel" in chosen:
                j_eps, j_rss = flume_channel(a, peer_cp, "file", os.path.join(d, "ch-flume"))
                record("channel", f_eps, f_rss, j_eps, j_rss)
            if "channel_mem" in chosen:
                m_eps, m_rss = flume_channel(a, peer_cp, "memory",
                                             os.path.join(d, "ch-flume-mem"))
                record("channel_mem", f_eps, f_rss, m_eps, m_rss)

            if "taildir" in chosen:
                tn = a.taildir_events
                runs = {}
                for who in ["flumen", "flume"]:
                    wd = os.path.join(d, f"taildir-{who}")
                    os.makedirs(wd, exist_ok=True)
                    props = os.path.join(wd, "agent.properties")
                    with open(props, "w") as f:
                        f.write(taildir_properties(wd, taildir_logs, tn))
                    what = f"taildir {who}"
                    t_deadline = max(120, tn // 500)
                    if who == "flumen":
                        secs, rss = flumen_agent(props, tn, what, t_deadline)
                    else:
                        secs, rss = flume_agent(props, tn, peer_cp, what, t_deadline)
                    runs[who] = (tn / secs, rss)
                    shutil.rmtree(wd, ignore_errors=True)
                record("taildir", runs["flumen"][0], runs["flumen"][1], runs["flume"][0],
                       runs["flume"][1])

            if "routed" in chosen:
                runs = {}
                for who in ["flumen", "flume"]:
                    wd = os.path.join(d, f"routed-{who}")
                    os.makedirs(wd, exist_ok=True)
                    props = os.path.join(wd, "agent.properties")
                    with open(props, "w") as f:
                        f.write(routed_properties(wd, n))
                    what = f"routed {who}"
                    if who == "flumen":
                        secs, rss = flumen_agent(props, n, what, deadline, ("c1", "c2"))
                    else:
                        secs, rss = flume_agent(props, n, peer_cp, what, deadline,
                                                ("c1", "c2"))
                    runs[who] = (n / secs, rss)
                    shutil.rmtree(wd, ignore_errors=True)
                record("routed", runs["flumen"][0], runs["flumen"][1], runs["flume"][0],
                       runs["flume"][1])

            for key in NET_WORKLOADS:
                if key not in chosen:
                    continue
                nn = a.net_events
                f_eps, f_rss = net_workload(key, "flumen", d, nn, peer_cp, max(120, nn // 200))
                j_eps, j_rss = net_workload(key, "flume", d, nn, peer_cp, max(300, nn // 200))
                record(key, f_eps, f_rss, j_eps, j_rss)

            if "kafka_source" in chosen:
                runs = {}
                for who in ["flumen", "flume"]:
                    wd = os.path.join(d, f"kafka_source-{who}")
                    os.makedirs(wd, exist_ok=True)
                    props = os.path.join(wd, "agent.properties")
                    with open(props, "w") as f:
                        f.write(kafka_source_properties(wd, n, kafka.bootstrap, "source-fill",
                                                        f"g-r{rnd}-{who}"))
                    what = f"kafka_source {who}"
                    if who == "flumen":
                        secs, rss = flumen_agent(props, n, what, deadline)
                    else:
                        secs, rss = flume_agent(props, n, peer_cp, what, deadline)
                    runs[who] = (n / secs, rss)
                    shutil.rmtree(wd, ignore_errors=True)
                record("kafka_source", runs["flumen"][0], runs["flumen"][1], runs["flume"][0],
                       runs["flume"][1])

            for key, sink in [("agent_null", lambda who: null_sink()),
                              ("agent_hdfs",
                               lambda who: hdfs_sink(hdfs.url, f"/compare/r{rnd}/{who}")),
                              ("kafka_sink",
                               lambda who: kafka_sink(kafka.bootstrap, f"sink-r{rnd}-{who}"))]:
                if key not in chosen:
                    continue
                runs = {}
                for who in ["flumen", "flume"]:
                    wd = os.path.join(d, f"{key}-{who}")
                    os.makedirs(wd, exist_ok=True)
                    props = os.path.join(wd, "agent.properties")
                    with open(props, "w") as f:
                        f.write(agent_properties(wd, n, sink(who)))
                    what = f"{key} {who}"
                    if who == "flumen":
                        secs, rss = flumen_agent(props, n, what, deadline)
                    else:
                        secs, rss = flume_agent(props, n, peer_cp, what, deadline)
                    runs[who] = (n / secs, rss)
                record(key, runs["flumen"][0], runs["flumen"][1], runs["flume"][0],
                       runs["flume"][1])
                if key == "kafka_sink" and "kafka_producer" in chosen:
                    j_eps, j_rss = java_producer(kafka_cp, kafka.bootstrap, f"java-r{rnd}", n)
                    record("kafka_producer", runs["flumen"][0], runs["flumen"][1], j_eps, j_rss)
    finally:
        if hdfs:
            hdfs.close()
        if kafka:
            kafka.close()
        shutil.rmtree(taildir_logs, ignore_errors=True)

    med = {k: {m: statistics.median(v[m]) for m in v} for k, v in results.items()}
    # Against Flume only: kafka_producer's other side is Kafka's producer, not an agent.
    rss_ratio = max(med[k]["rss_flumen"] / med[k]["rss_flume"] for k in med
                    if med[k]["rss_flume"] and k != "kafka_producer")
    ratio_names = {"channel": "channel_ratio", "channel_mem": "file_vs_flume_memory_ratio",
                   "agent_null": "agent_null_ratio", "agent_hdfs": "agent_hdfs_ratio",
                   "taildir": "taildir_ratio", "routed": "routed_ratio",
                   "kafka_sink": "kafka_sink_ratio",
                   "kafka_producer": "kafka_sink_vs_java_producer_ratio",
                   "kafka_source": "kafka_source_ratio", "netcat_ack": "netcat_ack_ratio",
                   "syslog_tcp": "syslog_tcp_ratio", "http_json": "http_json_ratio"}
    summary = {
        "rounds": a.rounds,
        "workloads": chosen,
        "channel_events": a.channel_events,
        "agent_events": a.agent_events,
        "taildir_events": a.taildir_events,
        **{ratio_names[k]: round(med[k]["ratio"], 3) for k in med},
        "rss_ratio": round(rss_ratio, 3),
        "targets": TARGETS,
        "detail": {k: {m: round(v, 1) for m, v in med[k].items()} for k in med},
    }
    names = {
        "channel": "channel: flumen file vs Flume FileChannel",
        "channel_mem": "channel: flumen file vs Flume MemoryChannel",
        "agent_null": "agent: stress -> file -> null",
        "agent_hdfs": "agent: stress -> file -> hdfs (DataStream)",
        "taildir": "agent: TAILDIR -> file -> null",
        "routed": "agent: stress -> 3 icpt -> mux -> 2 file -> null",
        "kafka_sink": "agent: stress -> file -> kafka (acks=all)",
        "kafka_producer": "kafka sink vs Kafka's Java producer (in Flume col)",
        "kafka_source": "agent: kafka -> file -> null",
    }
    print(f"{'workload':<46} {'Flume ev/s':>12} {'flumen ev/s':>12} {'ratio':>7} "
          f"{'Flume RSS MiB':>14} {'flumen RSS MiB':>15}")
    for k, m in med.items():
        print(f"{names[k]:<46} {m['flume']:>12,.0f} {m['flumen']:>12,.0f} {m['ratio']:>7.2f} "
              f"{m['rss_flume'] / 1024:>14.0f} {m['rss_flumen'] / 1024:>15.0f}")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
