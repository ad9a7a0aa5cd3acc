#!/usr/bin/env python3
"""Measures the file channel's targets (issue 2) in one run, alternating the workloads of each
pair (A B A B ...) so that a noisy neighbour hurts both sides alike, and prints medians, the
ratios the targets are stated in, and, as the last line, one JSON object.

    python3 benches/channel_targets.py [--rounds 3] [--reopen-gb 5]

Needs a release build (`cargo build --release`); uses target/release/flumen or $FLUMEN_BIN.
"""
import argparse
import json
import os
import statistics
import subprocess
import sys

BIN = os.environ.get("FLUMEN_BIN", "target/release/flumen")


def bench(*args):
    out = subprocess.run(
        [BIN, "bench", *args, "--json"],
        check=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--reopen-gb", type=float, default=5.0)
    a = ap.parse_args()

    shapes = {
        "file_b100_p4_c1": ["channel", "--channel", "file"],
        "memory_b100_p4_c1": ["channel", "--channel", "memory"],
        # A brand-new channel (no spare segments to reuse yet), for comparison.
        "file_fresh_b100_p4_c1": ["channel", "--channel", "file", "--warmup", "false"],
        "file_uring_b100_p4_c1": ["channel", "--channel", "file", "--io", "uring"],
        "file_b1_p1": ["channel", "--batch", "1", "--producers", "1", "--events", "30000"],
        "file_b1_p16": ["channel", "--batch", "1", "--producers", "16", "--events", "30000"],
    }
    runs = {k: [] for k in shapes}
    for r in range(a.rounds):
        for name, args in shapes.items():
            print(f"round {r + 1}/{a.rounds}: {name}", file=sys.stderr, flush=True)
            d = bench(*args)
            if not d.get("verified", False):
                sys.exit(f"{name}: the workload did not verify: {d}")
            runs[name].append(d)

    def med(name, key):
        return statistics.median(d[key] for d in runs[name])

    print(f"{'workload':<24} {'events/s':>12} {'MB/s':>9} {'commits/s':>10} "
          f"{'fsync/commit':>12} {'p50 us':>7} {'p99 us':>7} {'ratio_to_raw':>12}")
    for name in shapes:
        print(f"{name:<24} {med(name, 'events_per_sec'):>12.0f} {med(name, 'mb_per_sec'):>9.1f} "
              f"{med(name, 'commits_per_sec'):>10.0f} {med(name, 'fsyncs_per_commit'):>12.3f} "
              f"{med(name, 'p50_commit_us'):>7.0f} {med(name, 'p99_commit_us'):>7.0f} "
              f"{med(name, 'ratio_to_raw'):>12.3f}")

    # Ratios are taken within a round (same minute, same neighbours), then the median.
    def ratio(num, den, key):
        return statistics.median(
            n[key] / d[key] for n, d in zip(runs[num], runs[den]) if d[key] > 0
        )

    summary = {
        "rounds": a.rounds,
        "ratio_to_raw_b100_p4_c1": round(med("file_b100_p4_c1", "ratio_to_raw"), 3),
        "file_vs_memory_events": round(ratio("file_b100_p4_c1", "memory_b100_p4_c1", "events_per_sec"), 3),
        "fresh_file_vs_memory_events": round(ratio("file_fresh_b100_p4_c1", "memory_b100_p4_c1", "events_per_sec"), 3),
        "uring_vs_std_events": round(ratio("file_uring_b100_p4_c1", "file_b100_p4_c1", "events_per_sec"), 3),
        "group_commit_p16_vs_p1_commits": round(ratio("file_b1_p16", "file_b1_p1", "commits_per_sec"), 3),
        "group_commit_p16_vs_p1_put_commits": round(ratio("file_b1_p16", "file_b1_p1", "put_commits_per_sec"), 3),
        "file_events_per_sec": round(med("file_b100_p4_c1", "events_per_sec")),
        "memory_events_per_sec": round(med("memory_b100_p4_c1", "events_per_sec")),
    }
    if a.reopen_gb > 0:
        print(f"reopen with {a.reopen_gb} GB queued...", file=sys.stderr, flush=True)
        d = bench("reopen", "--gb", str(a.reopen_gb))
        summary["reopen_gb"] = a.reopen_gb
        summary["reopen_after_crash_s"] = d["crash_open_seconds"]
        summary["reopen_after_clean_s"] = d["clean_open_seconds"]
        print(f"reopen {a.reopen_gb} GB: after a crash (full replay) {d['crash_open_seconds']} s, "
              f"after a clean shutdown {d['clean_open_seconds']} s")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
