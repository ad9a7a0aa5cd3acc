#!/usr/bin/env python3
"""Runs a benchmark script against two flumen binaries alternately (A B A B ...), so that a noisy
neighbour hurts both alike, and reports for every figure the script prints each side's median
and run-to-run spread (max - min), and whether the median moved (B's median - A's) by more than
A's spread: a move within it is indistinguishable from noise on this machine.

    python3 benches/ab.py --a OLD_BIN --b NEW_BIN --pairs 5 -- \\
        python3 benches/channel_targets.py --rounds 1 --reopen-gb 5
    python3 benches/ab.py --a OLD_BIN --b NEW_BIN --pairs 3 -- \\
        benches/compare.sh --rounds 1 --skip-build

The command gets the binary in $FLUMEN_BIN (channel_targets.py and compare.sh read it) and must
print one JSON object as its last stdout line. Each run's object is appended to --record as
{"who": "a"|"b", "pair": N, "r": {...}}; --summarize FILE... reads such records instead of
running anything. The last stdout line is one JSON object.
"""

import argparse
import json
import os
import statistics
import subprocess
import sys


def run(cmd, binary):
    env = dict(os.environ, FLUMEN_BIN=binary)
    out = subprocess.run(cmd, env=env, check=True, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def summarize(records):
    """Per numeric key of the runs' JSON: each side's median and min-max."""
    sides = {"a": [], "b": []}
    for rec in records:
        sides[rec["who"]].append(rec["r"])
    keys = [k for k, v in sides["a"][0].items()
            if isinstance(v, (int, float)) and not isinstance(v, bool)]
    out = {}
    for k in keys:
        a = [r[k] for r in sides["a"] if k in r]
        b = [r[k] for r in sides["b"] if k in r]
        if not a or not b:
            continue
        moved = statistics.median(b) - statistics.median(a)
        out[k] = {
            "a_median": statistics.median(a), "a_min": min(a), "a_max": max(a),
            "b_median": statistics.median(b), "b_min": min(b), "b_max": max(b),
            "moved": moved, "a_spread": max(a) - min(a),
            "moved_within_spread": abs(moved) <= max(a) - min(a),
        }
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--a", help="the baseline binary")
    ap.add_argument("--b", help="the binary under test")
    ap.add_argument("--pairs", type=int, default=5)
    ap.add_argument("--record", default=None, help="append each run's JSON here")
    ap.add_argument("--summarize", nargs="*", default=None, help="records to summarize")
    ap.add_argument("cmd", nargs=argparse.REMAINDER)
    a = ap.parse_args()

    records = []
    if a.summarize is not None:
        for path in a.summarize:
            with open(path) as f:
                records += [json.loads(line) for line in f if line.strip()]
    else:
        cmd = a.cmd[1:] if a.cmd and a.cmd[0] == "--" else a.cmd
        if not (a.a and a.b and cmd):
            sys.exit("give --a, --b and a command after --")
        for pair in range(1, a.pairs + 1):
            for who, binary in (("a", a.a), ("b", a.b)):
                print(f"pair {pair}/{a.pairs}: {who}", file=sys.stderr, flush=True)
                rec = {"who": who, "pair": pair, "r": run(cmd, binary)}
                records.append(rec)
                if a.record:
                    with open(a.record, "a") as f:
                        f.write(json.dumps(rec) + "\n")

    summary = summarize(records)
    print(f"{'key':<36} {'A median':>12} {'A min-max':>25} {'B median':>12} "
          f"{'B min-max':>25} {'moved':>10}  within A's spread")
    for k, s in summary.items():
        print(f"{k:<36} {s['a_median']:>12.3f} {s['a_min']:>12.3f}-{s['a_max']:<12.3f} "
              f"{s['b_median']:>12.3f} {s['b_min']:>12.3f}-{s['b_max']:<12.3f} "
              f"{s['moved']:>+10.3f}  {'yes' if s['moved_within_spread'] else 'NO'}")
    print(json.dumps({"pairs": len(records) // 2, "keys": summary}))


if __name__ == "__main__":
    main()
