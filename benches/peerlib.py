"""Helpers shared by the side-by-side benchmarks against Apache Flume 1.11.0
(benches/compare.py, benches/avro_vs_flume.py): building the Java peer's classpath, finding the
flumen binary, ports, the agents' command lines, reading their HTTP monitoring, stopping them.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PEER = os.path.join(ROOT, "benches", "peer", "flume")


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sh(cmd, cwd=ROOT, **kw):
    return subprocess.run(cmd, cwd=cwd, check=True, **kw)


def maven_classpath(project):
    out = os.path.join(project, "target", "classpath.txt")
    # Maven's output goes to stderr, so stdout stays the table and the JSON line.
    sh(["mvn", "-q", "-B", "-Dstyle.color=never", "compile", "dependency:build-classpath",
        f"-Dmdep.outputFile={out}"], cwd=project, stdout=sys.stderr)
    with open(out) as f:
        deps = f.read().strip()
    return os.path.join(project, "target", "classes") + ":" + deps


def flumen_bin():
    """$FLUMEN_BIN if set, else release/flumen under $CARGO_TARGET_DIR (default ROOT/target)."""
    if os.environ.get("FLUMEN_BIN"):
        return os.environ["FLUMEN_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))
    return os.path.join(target, "release", "flumen")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def last_json(text):
    for line in reversed(text.strip().splitlines()):
        line = line.strip()
        if line.startswith("{"):
            return json.loads(line)
    raise RuntimeError(f"no JSON line in output:\n{text[-2000:]}")


def proc_status_kb(pid, field):
    """A kB field of /proc/PID/status (VmRSS, VmHWM, ...), 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def vm_hwm_kb(pid):
    return proc_status_kb(pid, "VmHWM")


def fd_count(pid):
    """Open file descriptors of a process, 0 once it is gone."""
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return 0


def choose(ap, text, choices, what):
    """A comma-separated option value checked against `choices` (argparse error otherwise)."""
    picked = [k.strip() for k in text.split(",") if k.strip()]
    for k in picked:
        if k not in choices:
            ap.error(f"unknown {what} {k!r}: choose from {', '.join(choices)}")
    return picked


def metrics(port):
    """The agent's /metrics (Flume's JSON: {"CHANNEL.c1": {"EventTakeSuccessCount": "12", ...}}),
    or None while it does not answer."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            return json.loads(r.read().decode())
    except (OSError, ValueError):
        return None


def drain_state(port, channels=("c1",)):
    """(events whose take committed, the first channel's start time in ms) from /metrics,
    summed over `channels`. Both agents serve CHANNEL.<c>.EventTakeSuccessCount (Flume's null
    sink has no sink counter) and CHANNEL.<c>.StartTime (Flume's StressSource has no source
    counter)."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            m = json.loads(r.read().decode())
        taken = sum(int(m.get(f"CHANNEL.{c}", {}).get("EventTakeSuccessCount", "0"))
                    for c in channels)
        started = int(m.get(f"CHANNEL.{channels[0]}", {}).get("StartTime", "0"))
        return taken, started
    except (OSError, ValueError):
        return -1, 0


def flumen_agent_cmd(props, port, name="a1"):
    """`flumen agent` on a properties file, HTTP monitoring on port."""
    return [flumen_bin(), "agent", "-f", props, "-n", name,
            "-Dflume.monitoring.type=http", f"-Dflume.monitoring.port={port}"]


def flumen_agent_env():
    return dict(os.environ, RUST_LOG="warn")


def flume_agent_cmd(props, port, cp, name="a1"):
    """Flume's own agent main (org.apache.flume.node.Application, -Xmx1g) on a properties file,
    HTTP monitoring on port."""
    # conf/single-datanode (dfs.replication = 1) first: without it Flume's HDFS client asks for
    # 3 replicas, sees every block of the one-DataNode cluster as under-replicated and rolls
    # the file after almost every batch.
    cp = os.path.join(PEER, "conf", "single-datanode") + ":" + cp
    return ["java", "-Xmx1g", "-Dflume.root.level=WARN", "-Dflume.monitoring.type=http",
            f"-Dflume.monitoring.port={port}", "-cp", cp, "org.apache.flume.node.Application",
            "-n", name, "-f", props]


def stop_group(p):
    """SIGTERM to the process group of p (started with start_new_session=True); SIGKILL if it
    has not exited after 60 s. One signal only: a second one makes flumen exit at once."""
    if p.poll() is None:
        os.killpg(p.pid, signal.SIGTERM)
        try:
            p.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)
            p.wait()
