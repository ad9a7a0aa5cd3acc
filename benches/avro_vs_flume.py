#!/usr/bin/env python3
"""flumen's Avro RPC against Apache Flume 1.11.0's (from Maven Central), side by side, in one run.

Two shapes, 1 KiB events, batch 100, a durable file channel (fsync on every commit, both
agents' default) and a null sink at the end:

  client  Flume's own Java client (benches/peer/flume's AvroLoad: RpcClientFactory's default
          Netty client, appendBatch of 100, --clients connections, default 4) -> avro source ->
          file channel -> null sink, once into `flumen agent`, once into Flume's agent
          (org.apache.flume.node.Application), the same properties file for both. AvroLoad
          first sends --warmup events untimed (JIT, and Flume's idle sink runner, which sleeps
          up to 5 s between polls of an empty channel), then N timed.
          Rate = N / (from AvroLoad's first timed send to the first poll of the agent's
          /metrics showing all W + N takes committed, CHANNEL.c1.EventTakeSuccessCount); the
          client-side rate (first timed send to last acknowledgement) is reported too.
  tier    upstream agent (StressSource, 1 KiB, batch 100, maxTotalEvents W + N -> memory
          channel -> avro sink, batch-size 100) -> downstream agent (avro source -> file channel
          -> null sink): flumen -> flumen against Flume -> Flume, the same two properties files.
          Rate = N / (from the first poll of the downstream /metrics showing W takes committed
          to the first showing W + N). With --warmup 0, from the upstream channel's start
          (CHANNEL.c1.StartTime, so JVM start-up is not counted) to N.

Every round runs the four (client flumen, client Flume, tier flumen, tier Flume), flumen first
in odd rounds and Flume first in even ones; ratios are taken within a round and the medians
reported. Peak RSS is each agent's VmHWM (/proc) at the end of its run. Progress goes to stderr;
a table and, as the last stdout line, one JSON object go to stdout.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

sys.dont_write_bytecode = True  # no benches/__pycache__ from importing peerlib
from peerlib import (ROOT, PEER, log, sh, maven_classpath, free_port, last_json,  # noqa: E402
                     vm_hwm_kb, drain_state, metrics, flumen_bin, flumen_agent_cmd,
                     flumen_agent_env, flume_agent_cmd, stop_group)

TARGET = 5.0
SHAPES = ["client", "tier"]
WHO = ["flumen", "flume"]


def file_null_agent(name, d, n, port):
    """avro source -> file channel (defaults: fsync on every commit) -> null sink."""
    return f"""# Run unchanged by flumen (flumen agent) and Flume (org.apache.flume.node.Application).
{name}.sources = r1
{name}.channels = c1
{name}.sinks = k1
{name}.sources.r1.type = avro
{name}.sources.r1.bind = 127.0.0.1
{name}.sources.r1.port = {port}
{name}.sources.r1.channels = c1
{name}.channels.c1.type = file
{name}.channels.c1.checkpointDir = {d}/checkpoint
{name}.channels.c1.dataDirs = {d}/data
{name}.channels.c1.capacity = {max(n, 1000000)}
{name}.channels.c1.transactionCapacity = 1000
{name}.channels.c1.minimumRequiredSpace = 1048576
{name}.sinks.k1.type = null
{name}.sinks.k1.batchSize = 100
{name}.sinks.k1.channel = c1
"""


def stress_avro_agent(name, n, port):
    """StressSource -> memory channel (room for every event: Flume's StressSource counts a batch
    refused by a full channel as sent, so it must never be full) -> avro sink."""
    return f"""# Run unchanged by flumen (flumen agent) and Flume (org.apache.flume.node.Application).
{name}.sources = r1
{name}.channels = c1
{name}.sinks = k1
{name}.sources.r1.type = org.apache.flume.source.StressSource
{name}.sources.r1.size = 1024
{name}.sources.r1.maxTotalEvents = {n}
{name}.sources.r1.batchSize = 100
{name}.sources.r1.channels = c1
{name}.channels.c1.type = memory
{name}.channels.c1.capacity = {max(n, 100000)}
{name}.channels.c1.transactionCapacity = 1000
{name}.sinks.k1.type = avro
{name}.sinks.k1.hostname = 127.0.0.1
{name}.sinks.k1.port = {port}
{name}.sinks.k1.batch-size = 100
{name}.sinks.k1.channel = c1
"""


class Agent:
    """One agent process (its own session, output to a log file), stopped by stop()."""

    def __init__(self, who, props, name, cp, what):
        self.what = what
        self.mport = free_port()
        self.log = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        if who == "flumen":
            cmd, env = flumen_agent_cmd(props, self.mport, name), flumen_agent_env()
        else:
            cmd, env = flume_agent_cmd(props, self.mport, cp, name), None
        self.p = subprocess.Popen(cmd, cwd=ROOT, stdout=self.log, stderr=subprocess.STDOUT,
                                  env=env, start_new_session=True)
        self.rss = 0

    def check(self):
        if self.p.poll() is not None:
            raise RuntimeError(f"{self.what} exited early ({self.p.returncode}); "
                               f"log {self.log.name}")

    def wait_listening(self, port, deadline_s=120):
        """Until port (its avro source) accepts connections and /metrics answers."""
        import socket
        start = time.monotonic()
        while True:
            self.check()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    pass
                if metrics(self.mport) is not None:
                    return
            except OSError:
                pass
            if time.monotonic() - start > deadline_s:
                raise RuntimeError(f"{self.what}: not listening on {port} after {deadline_s} s")
            time.sleep(0.02)

    def stop(self, ok=True):
        self.rss = vm_hwm_kb(self.p.pid)
        stop_group(self.p)
        self.log.close()
        if ok:
            os.unlink(self.log.name)
        return self.rss


def wait_drained(agent, n, deadline_s, others=(), first=None):
    """time.time() at the first poll of agent's /metrics showing n takes committed; with first,
    (that time, the time of the first poll showing first)."""
    start = time.monotonic()
    last_report = start
    t_first = None
    while True:
        done, _ = drain_state(agent.mport)
        if first is not None and t_first is None and done >= first:
            t_first = time.time()
        if done >= n:
            return time.time() if first is None else (time.time(), t_first)
        for o in (agent,) + tuple(others):
            o.check()
        now = time.monotonic()
        if now - start > deadline_s:
            raise RuntimeError(f"{agent.what}: {done}/{n} after {deadline_s} s; "
                               f"log {agent.log.name}")
        if now - last_report >= 5:
            last_report = now
            log(f"  {agent.what}: {max(done, 0)}/{n} events")
        time.sleep(0.005)


class Load:
    """AvroLoad (Flume's RpcClient) against port, as a checkable process."""

    def __init__(self, a, cp, port, what):
        self.what = what
        self.err = tempfile.NamedTemporaryFile("w+", suffix=".log", delete=False)
        self.p = subprocess.Popen(
            ["java", "-Xmx1g", "-Dflume.root.level=WARN", "-cp", cp, "flumen.peer.flume.AvroLoad",
             "--port", str(port), "--events", str(a.events), "--event-size", "1024",
             "--batch", "100", "--clients", str(a.clients), "--warmup", str(a.warmup)],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.err, text=True)

    def check(self):
        if self.p.poll() not in (None, 0):
            raise RuntimeError(f"{self.what}: AvroLoad failed ({self.p.returncode}); "
                               f"log {self.err.name}")

    def result(self):
        out, _ = self.p.communicate(timeout=600)
        self.check()
        self.err.close()
        os.unlink(self.err.name)
        return last_json(out)


def run_client(a, cp, who, wd):
    """Shape "client": AvroLoad -> avro source -> file -> null. Returns (delivered events/s,
    client-side events/s, agent peak RSS KiB)."""
    n = a.events
    port = free_port()
    props = os.path.join(wd, "agent.properties")
    with open(props, "w") as f:
        f.write(file_null_agent("a1", wd, n + a.warmup, port))
    what = f"client {who}"
    agent = Agent(who, props, "a1", cp, what)
    ok = False
    try:
        agent.wait_listening(port)
        load = Load(a, cp, port, what)
        try:
            t_done = wait_drained(agent, n + a.warmup, a.deadline, (load,))
            j = load.result()
        finally:
            if load.p.poll() is None:
                load.p.kill()
                load.p.wait()
        if j.get("retries"):
            log(f"  {what}: the client resent {j['retries']} batches")
        secs = t_done - j["start_ms"] / 1000.0
        ok = True
    finally:
        rss = agent.stop(ok)
    return n / secs, j["events_per_sec"], rss


def run_tier(a, cp, who, wd):
    """Shape "tier": stress -> memory -> avro sink  =>  avro source -> file -> null. Returns
    (delivered events/s, upstream peak RSS KiB, downstream peak RSS KiB)."""
    n, w = a.events, a.warmup
    port = free_port()
    down_props = os.path.join(wd, "down.properties")
    up_props = os.path.join(wd, "up.properties")
    with open(down_props, "w") as f:
        f.write(file_null_agent("down", os.path.join(wd, "down"), n + w, port))
    with open(up_props, "w") as f:
        f.write(stress_avro_agent("up", n + w, port))
    down = Agent(who, down_props, "down", cp, f"tier {who} downstream")
    up = None
    ok = False
    try:
        down.wait_listening(port)
        up = Agent(who, up_props, "up", cp, f"tier {who} upstream")
        if w:
            # From the first poll showing the warm-up delivered to the first showing all.
            t_done, t_warm = wait_drained(down, n + w, a.deadline, (up,), first=w)
            secs = t_done - t_warm
        else:
            t_done = wait_drained(down, n, a.deadline, (up,))
            up_m = (metrics(up.mport) or {}).get("CHANNEL.c1", {})
            started_ms = int(up_m.get("StartTime", "0"))
            if started_ms <= 0:
                raise RuntimeError(f"tier {who}: no CHANNEL.c1.StartTime in the upstream /metrics")
            secs = t_done - started_ms / 1000.0
        ok = True
    finally:
        up_rss = up.stop(ok) if up else 0
        down_rss = down.stop(ok)
    return n / secs, up_rss, down_rss


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--quick", action="store_true",
                    help="one round of 30,000 events (a smoke check)")
    ap.add_argument("--events", type=int, default=200_000, help="events per run (N)")
    ap.add_argument("--warmup", type=int, default=None,
                    help="events sent before the clock starts (default 20,000; --quick 5,000)")
    ap.add_argument("--clients", type=int, default=4,
                    help="AvroLoad connections (threads), the same for both agents (default 4)")
    ap.add_argument("--shapes", default="client,tier", help="comma-separated: client, tier")
    ap.add_argument("--dir", default=None, help="where channels live (default: a temp dir)")
    ap.add_argument("--skip-build", action="store_true",
                    help="use the flumen binary as it is ($FLUMEN_BIN or $CARGO_TARGET_DIR)")
    a = ap.parse_args()
    if a.quick:
        a.rounds, a.events = 1, 30_000
    if a.warmup is None:
        a.warmup = 5_000 if a.quick else 20_000
    shapes = [s for s in a.shapes.split(",") if s]
    if any(s not in SHAPES for s in shapes) or not shapes:
        ap.error(f"--shapes: one or more of {SHAPES}")
    a.deadline = max(120, (a.events + a.warmup) // 500)

    if not a.skip_build:
        log("building flumen (release) and the Java peer ...")
        sh(["cargo", "build", "--release", "--quiet"], stdout=sys.stderr)
    peer_cp = maven_classpath(PEER)
    log(f"flumen: {flumen_bin()}")

    base = tempfile.mkdtemp(prefix="flumen-avro-", dir=a.dir)
    tempfile.tempdir = base  # the agents' logs, kept there when a run fails
    res = {s: {"flumen": [], "flume": [], "ratio": []} for s in shapes}
    extra = {"client": {"flumen_client": [], "flume_client": []},
             "tier": {}}
    rss = {s: {"flumen": [], "flume": []} for s in shapes}
    for rnd in range(a.rounds):
        log(f"round {rnd + 1}/{a.rounds}")
        order = WHO if rnd % 2 == 0 else WHO[::-1]
        for shape in shapes:
            got = {}
            for who in order:
                wd = os.path.join(base, f"r{rnd}", f"{shape}-{who}")
                os.makedirs(wd, exist_ok=True)
                if shape == "client":
                    eps, client_eps, r = run_client(a, peer_cp, who, wd)
                    extra["client"][f"{who}_client"].append(client_eps)
                    rss[shape][who].append(r)
                    log(f"  client {who}: {eps:,.0f} events/s delivered "
                        f"({client_eps:,.0f}/s acknowledged to the client), {r // 1024} MiB")
                else:
                    eps, up_rss, down_rss = run_tier(a, peer_cp, who, wd)
                    rss[shape][who].append(up_rss + down_rss)
                    log(f"  tier {who}: {eps:,.0f} events/s delivered, "
                        f"{up_rss // 1024} + {down_rss // 1024} MiB")
                got[who] = eps
                sh(["rm", "-rf", wd])
            ratio = got["flumen"] / got["flume"] if got["flume"] else 0.0
            res[shape]["flumen"].append(got["flumen"])
            res[shape]["flume"].append(got["flume"])
            res[shape]["ratio"].append(ratio)
            log(f"  {shape}: {ratio:.2f}x")
    tempfile.tempdir = None
    sh(["rm", "-rf", base])

    summary = {}
    for s in shapes:
        r = res[s]
        summary[s] = {
            "flumen_eps": round(statistics.median(r["flumen"]), 1),
            "flume_eps": round(statistics.median(r["flume"]), 1),
            "ratio": round(statistics.median(r["ratio"]), 3),
            "rounds": [round(x, 3) for x in r["ratio"]],
            "flumen_rss_mib": round(statistics.median(rss[s]["flumen"]) / 1024, 1),
            "flume_rss_mib": round(statistics.median(rss[s]["flume"]) / 1024, 1),
        }
        if s == "client":
            summary[s]["flumen_client_eps"] = round(
                statistics.median(extra["client"]["flumen_client"]), 1)
            summary[s]["flume_client_eps"] = round(
                statistics.median(extra["client"]["flume_client"]), 1)
    summary.update({
        "events": a.events,
        "event_size": 1024,
        "batch": 100,
        "clients": a.clients,
        "warmup": a.warmup,
        "rounds_run": a.rounds,
        "target": TARGET,
        "met": {s: summary[s]["ratio"] >= TARGET for s in shapes},
    })
    names = {
        "client": "Java RpcClient -> avro -> file -> null",
        "tier": "stress -> mem -> avro => avro -> file -> null",
    }
    print(f"{'shape':<47} {'Flume ev/s':>11} {'flumen ev/s':>12} {'ratio':>6} "
          f"{'rounds':<20} {'RSS MiB Flume/flumen':>21}")
    for s in shapes:
        m = summary[s]
        rounds = ",".join(f"{x:.2f}" for x in m["rounds"])
        print(f"{names[s]:<47} {m['flume_eps']:>11,.0f} {m['flumen_eps']:>12,.0f} "
              f"{m['ratio']:>6.2f} {rounds:<20} "
              f"{m['flume_rss_mib']:>10.0f}/{m['flumen_rss_mib']:<10.0f}")
    if "client" in summary:
        m = summary["client"]
        print(f"  (client side, acknowledged: Flume {m['flume_client_eps']:,.0f}/s, "
              f"flumen {m['flumen_client_eps']:,.0f}/s; {a.clients} connection(s))")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
