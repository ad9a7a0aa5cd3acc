#!/usr/bin/env python3
"""netcat -> file channel -> null: two flumen builds side by side in one run, each driven by
`flumen bench load` (one connection keeping 64 lines of 200 bytes unanswered), timed from the
first line to the last take committed, as compare.py's netcat_ack workload times them.

    benches/netcat_before_after.py --before OLD/flumen [--after target/release/flumen]
        [--events 100000] [--rounds 3]

Used to measure the group commit of network sources against the build before it (one
transaction per line). The last stdout line is one JSON object.
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402
from peerlib import free_port, flumen_agent_env, log  # noqa: E402


def run(binary, load_bin, d, n):
    os.makedirs(d, exist_ok=True)
    props = os.path.join(d, "agent.properties")
    sport, mport = free_port(), free_port()
    with open(props, "w") as f:
        f.write(compare.net_properties(d, n, "netcat_ack", sport))
    cmd = [binary, "agent", "-f", props, "-n", "a1", "-Dflume.monitoring.type=http",
           f"-Dflume.monitoring.port={mport}"]
    load = [load_bin, "bench", "load", "--to", f"netcat://127.0.0.1:{sport}", "--events",
            str(n), "--event-size", "200", "--clients", "1", "--in-flight", "64", "--json"]
    secs, rss = compare.run_net_agent(cmd, n, mport, sport, load, os.path.basename(d),
                                      max(300, n // 100), flumen_agent_env())
    shutil.rmtree(d, ignore_errors=True)
    return n / secs


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--before", required=True)
    ap.add_argument("--after", default=os.path.join(compare.ROOT, "target", "release", "flumen"))
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    base = tempfile.mkdtemp(prefix="flumen-netcat-")
    before, after, ratio = [], [], []
    try:
        for r in range(a.rounds):
            b = run(a.before, a.after, os.path.join(base, f"before-{r}"), a.events)
            f = run(a.after, a.after, os.path.join(base, f"after-{r}"), a.events)
            before.append(b)
            after.append(f)
            ratio.append(f / b)
            log(f"round {r + 1}: before {b:,.0f} OK/s, after {f:,.0f} OK/s: {f / b:.1f}x")
    finally:
        shutil.rmtree(base, ignore_errors=True)
    print(json.dumps({"events": a.events, "before_ok_per_sec": before,
                      "after_ok_per_sec": after, "ratios": ratio,
                      "median_ratio": statistics.median(ratio)}))


if __name__ == "__main__":
    main()
