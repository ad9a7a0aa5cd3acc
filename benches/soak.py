#!/usr/bin/env python3
"""The soak (docs/RELIABILITY.md, "Soak").

One `flumen agent` runs for a long time at a sustained fraction of its peak: stress source
(fixed-size events, `maxEventsPerSecond`) -> file channel (small segments so they roll and are
reused as spares, frequent checkpoints) -> hdfs sink writing text into a real HDFS (Hadoop's
MiniDFSCluster from tests/hdfs, started here), rolling a file every `--roll` seconds.

First a short unthrottled run on the same pipeline measures the peak (events drained per
second); the soak then runs at `--fraction` of it (default 0.5). Every `--every` seconds it
samples the agent's resident memory (VmRSS), open file descriptors, the channel's bytes on disk
and its depth. At the end the source stops (it was given exactly rate x duration events), the
channel drains, the agent stops with SIGTERM (closing its files), and the files in HDFS are
measured: each event is `--size` bytes plus a newline, so the bytes in closed files give the
number delivered, which must equal the number sent.

Verdicts: RSS flat (the median of the last quarter of samples within 10% or 8 MiB, whichever
is larger, of the median of the second quarter, after warm-up), fds flat (the last quarter's
maximum no more than 8 above the second quarter's), disk bounded (never above maxFileSize x
(data segments the channel may hold + spares) = `--disk-bound-mib`), every event delivered.
With `--svg FILE` the RSS curve is drawn (plain SVG written here: no chart library in a
stdlib-only script).

    benches/soak.py [--seconds 3600] [--every 10] [--fraction 0.5] [--bin FLUMEN]
                    [--hdfs-classpath CP] [--svg docs/soak-rss.svg]

The last line is one JSON object; exit 1 if a verdict fails, 2 on a harness failure.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402
from kill9 import Agent, HarnessError, channel_size, wait_for  # noqa: E402

MIB = 1 << 20


class MiniHdfs:
    """tests/hdfs's launcher: `READY hdfs://...` on stdout, one answer line per command, gone
    when its stdin closes."""

    def __init__(self, cp, base):
        self.proc = subprocess.Popen(
            ["java", "-Xmx768m", "-XX:+UseSerialGC", "-cp", cp, "flumen.test.MiniHdfs",
             os.path.join(base, "dfs")],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=open(os.path.join(base, "hdfs.log"), "wb"), text=True)
        line = self.proc.stdout.readline()
        if not line.startswith("READY "):
            raise HarnessError(f"MiniHdfs did not start: {line!r}; see {base}/hdfs.log")
        self.url = line.split()[1]

    def ls(self, path):
        self.proc.stdin.write(f"ls\t{path}\n")
        self.proc.stdin.flush()
        head = self.proc.stdout.readline().rstrip("\n")
        if not head.startswith("OK"):
            raise HarnessError(f"ls {path}: {head}")
        # `OK` then, per file, TAB path TAB length TAB closed|open, on the same line.
        parts = head.split("\t")[1:]
        return [(parts[i], int(parts[i + 1]), parts[i + 2]) for i in range(0, len(parts), 3)]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(120)


def conf(d, url, size, rate, total, roll):
    limit = f"a1.sources.r1.maxEventsPerSecond = {rate}\n" if rate else ""
    return (f"a1.sources = r1\n"
            f"a1.channels = c1\n"
            f"a1.sinks = k1\n"
            f"a1.sources.r1.type = org.apache.flume.source.StressSource\n"
            f"a1.sources.r1.size = {size}\n"
            f"a1.sources.r1.batchSize = 100\n"
            f"a1.sources.r1.maxTotalEvents = {total}\n" + limit +
            f"a1.sources.r1.channels = c1\n"
            f"a1.channels.c1.type = file\n"
            f"a1.channels.c1.checkpointDir = {d}/checkpoint\n"
            f"a1.channels.c1.dataDirs = {d}/data\n"
            f"a1.channels.c1.capacity = 1000000\n"
            f"a1.channels.c1.checkpointInterval = 10000\n"
            f"a1.channels.c1.maxFileSize = 16777216\n"
            f"a1.channels.c1.minimumRequiredSpace = 1048576\n"
            f"a1.sinks.k1.type = hdfs\n"
            f"a1.sinks.k1.channel = c1\n"
            f"a1.sinks.k1.hdfs.path = {url}/soak\n"
            f"a1.sinks.k1.hdfs.fileType = DataStream\n"
            f"a1.sinks.k1.hdfs.batchSize = 1000\n"
            f"a1.sinks.k1.hdfs.rollInterval = {roll}\n"
            f"a1.sinks.k1.hdfs.rollSize = 0\n"
            f"a1.sinks.k1.hdfs.rollCount = 0\n")


def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.stat(os.path.join(root, name)).st_blocks * 512
            except OSError:
                pass
    return total


def drained(agent):
    m = agent.metrics() or {}
    return int(m.get("SINK.k1", {}).get("EventDrainSuccessCount", "0"))


def measure_peak(args, cp_url, base):
    d = os.path.join(base, "peak")
    os.makedirs(d)
    path = os.path.join(d, "agent.properties")
    with open(path, "w") as f:
        f.write(conf(d, cp_url + "/peak", args.size, 0, -1, 0))
    agent = Agent(args.bin, path, os.path.join(d, "agent.log"), peerlib.free_port())
    try:
        agent.wait_ready()
        wait_for("the sink to start draining", lambda: drained(agent) > 0, 60)
        # The first seconds fill the pipeline; the steady rate is measured after them.
        t0, n0 = time.monotonic(), drained(agent)
        wait_for("the peak measurement window", lambda: time.monotonic() - t0 >= args.peak_seconds,
                 args.peak_seconds + 5)
        t1, n1 = time.monotonic(), drained(agent)
    finally:
        agent.kill9()
    return (n1 - n0) / (t1 - t0)


def svg(samples, path, title):
    """RSS (MiB) against minutes, as a plain SVG line chart."""
    w, h, pad = 720, 300, 50
    xs = [s["t"] / 60 for s in samples]
    ys = [s["rss_kb"] / 1024 for s in samples]
    xmax = max(xs) or 1
    ymax = max(ys) * 1.2 or 1
    pts = " ".join(f"{pad + x / xmax * (w - 2 * pad):.1f},{h - pad - y / ymax * (h - 2 * pad):.1f}"
                   for x, y in zip(xs, ys))
    ticks = []
    for i in range(5):
        yv = ymax * i / 4
        yp = h - pad - (h - 2 * pad) * i / 4
        ticks.append(f'<line x1="{pad}" y1="{yp:.1f}" x2="{w - pad}" y2="{yp:.1f}" '
                     f'stroke="#ddd"/><text x="{pad - 6}" y="{yp + 4:.1f}" font-size="11" '
                     f'text-anchor="end">{yv:.0f}</text>')
        xv = xmax * i / 4
        xp = pad + (w - 2 * pad) * i / 4
        ticks.append(f'<text x="{xp:.1f}" y="{h - pad + 16}" font-size="11" '
                     f'text-anchor="middle">{xv:.0f}</text>')
    with open(path, "w") as f:
        f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
                f'font-family="sans-serif">\n<rect width="{w}" height="{h}" fill="white"/>\n'
                f'<text x="{w / 2}" y="20" font-size="13" text-anchor="middle">{title}</text>\n'
                + "\n".join(ticks) +
                f'\n<polyline fill="none" stroke="#1f77b4" stroke-width="1.5" points="{pts}"/>\n'
                f'<text x="{w / 2}" y="{h - 10}" font-size="11" text-anchor="middle">minutes'
                f'</text>\n<text x="14" y="{h / 2}" font-size="11" text-anchor="middle" '
                f'transform="rotate(-90 14 {h / 2})">RSS (MiB)</text>\n</svg>\n')


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=3600)
    ap.add_argument("--every", type=float, default=10.0)
    ap.add_argument("--fraction", type=float, default=0.5)
    ap.add_argument("--size", type=int, default=200, help="event body bytes")
    ap.add_argument("--roll", type=int, default=30, help="hdfs.rollInterval, seconds")
    ap.add_argument("--peak-seconds", type=float, default=15.0)
    ap.add_argument("--disk-bound-mib", type=int, default=0,
                    help="bound on the channel's bytes on disk (default: capacity x (size + "
                         "record overhead) plus 3 segments, as computed)")
    ap.add_argument("--bin", default=None)
    ap.add_argument("--hdfs-classpath", default=None)
    ap.add_argument("--svg", default=None)
    args = ap.parse_args()
    args.bin = args.bin or peerlib.flumen_bin()
    cp = args.hdfs_classpath or peerlib.maven_classpath(os.path.join(peerlib.ROOT, "tests", "hdfs"))
    result = {"campaign": "soak", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    status = 0
    with tempfile.TemporaryDirectory(prefix="flumen-soak-") as base:
        hdfs = MiniHdfs(cp, base)
        try:
            peak = measure_peak(args, hdfs.url, base)
            rate = max(1, int(peak * args.fraction))
            total = rate * args.seconds
            peerlib.log(f"soak: peak {peak:.0f} events/s, soaking at {rate}/s for "
                        f"{args.seconds} s ({total} events of {args.size} bytes)")
            d = os.path.join(base, "soak")
            os.makedirs(d)
            path = os.path.join(d, "agent.properties")
            with open(path, "w") as f:
                f.write(conf(d, hdfs.url, args.size, rate, total, args.roll))
            agent = Agent(args.bin, path, os.path.join(d, "agent.log"), peerlib.free_port())
            samples = []
            try:
                agent.wait_ready()
                t0 = time.monotonic()
                stop = threading.Event()
                while time.monotonic() - t0 < args.seconds:
                    pid = agent.proc.pid
                    samples.append({
                        "t": round(time.monotonic() - t0, 1),
                        "rss_kb": peerlib.proc_status_kb(pid, "VmRSS"),
                        "fds": peerlib.fd_count(pid),
                        "disk_bytes": dir_bytes(d + "/data") + dir_bytes(d + "/checkpoint"),
                        "depth": channel_size(agent),
                        "drained": drained(agent),
                    })
                    if agent.proc.poll() is not None:
                        raise HarnessError(f"the agent died:\n{agent.read_log()[-3000:]}")
                    stop.wait(args.every)
                wait_for("the channel to drain every event",
                         lambda: drained(agent) >= total and channel_size(agent) == 0, 600)
                hwm = peerlib.proc_status_kb(agent.proc.pid, "VmHWM")
                code = agent.terminate()
            except BaseException:
                agent.kill9()
                raise
            log_text = agent.read_log()
            files = hdfs.ls("/soak")
            closed = [f for f in files if f[2] == "closed"]
            delivered_bytes = sum(f[1] for f in closed)
            delivered = delivered_bytes // (args.size + 1)
            q = max(1, len(samples) // 4)
            second, last = samples[q:2 * q], samples[-q:]
            rss2 = statistics.median(s["rss_kb"] for s in second)
            rss4 = statistics.median(s["rss_kb"] for s in last)
            rss_flat = rss4 <= rss2 + max(0.10 * rss2, 8 * 1024)
            fds_flat = max(s["fds"] for s in last) <= max(s["fds"] for s in second) + 8
            disk_max = max(s["disk_bytes"] for s in samples)
            bound = args.disk_bound_mib * MIB or (1_000_000 * (args.size + 64) + 3 * 16 * MIB)
            disk_ok = disk_max <= bound
            every = (delivered == total and delivered_bytes % (args.size + 1) == 0
                     and len(closed) == len(files))
            result.update(
                seconds=args.seconds, every_s=args.every, peak_events_s=round(peak),
                rate_events_s=rate, events_sent=total, events_in_hdfs=delivered,
                hdfs_files=len(files), hdfs_files_open=len(files) - len(closed),
                rss_mib={"second_quarter_median": round(rss2 / 1024, 1),
                         "last_quarter_median": round(rss4 / 1024, 1),
                         "max": round(max(s["rss_kb"] for s in samples) / 1024, 1),
                         "hwm": round(hwm / 1024, 1)},
                fds={"second_quarter_max": max(s["fds"] for s in second),
                     "last_quarter_max": max(s["fds"] for s in last)},
                disk_mib={"max": round(disk_max / MIB, 1), "bound": round(bound / MIB, 1)},
                max_depth=max((s["depth"] or 0) for s in samples),
                rss_flat=rss_flat, fds_flat=fds_flat, disk_bounded=disk_ok,
                every_event_delivered=every, exit_code=code,
                panics=sum(1 for line in log_text.splitlines() if "panicked" in line),
                samples=len(samples))
            if args.svg:
                svg(samples, args.svg, f"flumen soak: RSS over {args.seconds // 60} min at "
                    f"{rate} events/s ({args.fraction:.0%} of peak), {result['date']}")
            if not (rss_flat and fds_flat and disk_ok and every and code == 0
                    and result["panics"] == 0):
                status = 1
        except HarnessError as e:
            result["error"] = str(e)[:3000]
            status = 2
        finally:
            hdfs.close()
    print(json.dumps(result))
    sys.exit(status)


if __name__ == "__main__":
    main()
