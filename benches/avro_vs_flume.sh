#!/usr/bin/env bash
# flumen's Avro RPC against Apache Flume 1.11.0's, side by side, in one run (issue 7; see
# benches/avro_vs_flume.py and docs/BENCHMARKS.md):
#   benches/avro_vs_flume.sh                 3 rounds of both shapes, 200,000 timed events of
#                                            1 KiB (+20,000 warm-up), 4 client connections
#   benches/avro_vs_flume.sh --quick         one round of 30,000 (+5,000): a smoke check
#   benches/avro_vs_flume.sh --clients 1     Flume's client over 1 connection (both targets)
#   FLUMEN_BIN=/path/to/flumen benches/avro_vs_flume.sh --skip-build
# Shapes: "client" (Flume's Java RpcClient -> avro source -> file channel -> null sink) and
# "tier" (stress -> memory -> avro sink -> avro source -> file channel -> null sink), flumen
# against Flume on each. Needs JDK 17 and Maven (Flume comes from Maven Central); builds what
# it runs and starts and stops everything itself. The last stdout line is one JSON object.
set -euo pipefail
exec python3 "$(dirname "$0")/avro_vs_flume.py" "$@"
