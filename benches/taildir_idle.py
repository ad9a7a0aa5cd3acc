#!/usr/bin/env python3
"""CPU of an idle TAILDIR agent following many files (issue: "CPU at idle with 1,000 tailed
files stays near zero").

    benches/taildir_idle.py [--files 1000] [--seconds 30] [--idle-timeout-ms 120000]

Writes N small log files into a temporary directory, starts `flumen agent` (release build, or
$FLUMEN_BIN) with TAILDIR on them -> memory channel -> null sink, waits until the position
file lists every file and every line was accepted, then samples the agent's CPU time (utime +
stime from /proc/<pid>/stat) over the window, twice: files open (within idleTimeout) and,
when --closed-too, after idleTimeout closed them. Then it appends one line to one file and
reports how long it took to be committed to the channel (the source's EventAcceptedCount on
the agent's monitoring port; an inotify wake-up, not the next poll). The last stdout line is one JSON object.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import flumen_bin, free_port, log  # noqa: E402

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    # utime, stime are fields 14 and 15 of stat(5); index 11 and 12 after the comm field.
    return (int(fields[11]) + int(fields[12])) / TICKS


def positions(path):
    try:
        with open(path) as f:
            return json.JSONDecoder().raw_decode(f.read())[0]
    except (OSError, ValueError):
        return []


def accepted(port):
    """The source's EventAcceptedCount from Flume's JSON monitoring."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return int(json.load(r)["SOURCE.r1"]["EventAcceptedCount"])
    except (OSError, ValueError, KeyError):
        return -1


def wait(what, cond, deadline=120):
    end = time.time() + deadline
    while time.time() < end:
        if cond():
            return
        time.sleep(0.1)
    raise SystemExit(f"timed out waiting for {what}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--files", type=int, default=1000)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--idle-timeout-ms", type=int, default=120000)
    ap.add_argument("--closed-too", action="store_true",
                    help="also measure after idleTimeout closed every file")
    a = ap.parse_args()
    work = tempfile.mkdtemp(prefix="flumen-taildir-idle-")
    try:
        logs = os.path.join(work, "logs")
        os.makedirs(logs)
        for i in range(a.files):
            with open(os.path.join(logs, f"app-{i:05}.log"), "w") as f:
                f.write(f"file {i} line 0\n")
        pos = os.path.join(work, "pos.json")
        conf = os.path.join(work, "agent.properties")
        with open(conf, "w") as f:
            f.write(f"""a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = TAILDIR
a1.sources.r1.filegroups = f1
a1.sources.r1.filegroups.f1 = {logs}/app-.*\\\\.log
a1.sources.r1.positionFile = {pos}
a1.sources.r1.idleTimeout = {a.idle_timeout_ms}
a1.sources.r1.channels = c1
a1.channels.c1.type = memory
a1.channels.c1.capacity = 100000
a1.channels.c1.transactionCapacity = 1000
a1.sinks.k1.type = null
a1.sinks.k1.channel = c1
""")
        agent_log = open(os.path.join(work, "agent.log"), "w")
        port = free_port()
        p = subprocess.Popen([flumen_bin(), "agent", "-f", conf, "-n", "a1",
                              "--monitoring-port", str(port)],
                             stdout=subprocess.DEVNULL, stderr=agent_log)
        try:
            wait("every file's line accepted", lambda: accepted(port) == a.files)
            wait("every file in the position file", lambda: len(positions(pos)) == a.files)
            time.sleep(1)
            c0, t0 = cpu_seconds(p.pid), time.time()
            time.sleep(a.seconds)
            c1, t1 = cpu_seconds(p.pid), time.time()
            open_pct = 100 * (c1 - c0) / (t1 - t0)
            log(f"{a.files} files open, idle: {open_pct:.3f}% of one core over {t1 - t0:.0f} s")
            closed_pct = None
            if a.closed_too:
                time.sleep(a.idle_timeout_ms / 1000 + 2)
                c0, t0 = cpu_seconds(p.pid), time.time()
                time.sleep(a.seconds)
                c1, t1 = cpu_seconds(p.pid), time.time()
                closed_pct = 100 * (c1 - c0) / (t1 - t0)
                log(f"{a.files} files closed idle: {closed_pct:.3f}% of one core")
            # One new line in one file: the wake-up is inotify, not the next poll.
            target = os.path.join(logs, f"app-{a.files // 2:05}.log")
            t_write = time.time()
            with open(target, "a") as f:
                f.write("one more line\n")
            end = time.time() + 30
            while accepted(port) != a.files + 1:
                if time.time() > end:
                    raise SystemExit("timed out waiting for the new line")
                time.sleep(0.005)
            latency_ms = (time.time() - t_write) * 1000
            log(f"a line appended to one of {a.files} idle files committed after {latency_ms:.0f} ms")
        finally:
            p.terminate()
            p.wait(timeout=30)
        print(json.dumps({
            "files": a.files,
            "seconds": a.seconds,
            "idle_cpu_percent_files_open": round(open_pct, 3),
            "idle_cpu_percent_files_closed": None if closed_pct is None else round(closed_pct, 3),
            "append_to_commit_ms": round(latency_ms, 1),
            "flumen": flumen_bin(),
        }))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
