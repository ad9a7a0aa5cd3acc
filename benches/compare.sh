#!/usr/bin/env bash
# flumen against Apache Flume 1.11.0, side by side, in one run (see benches/compare.py):
#   benches/compare.sh            3 rounds of every workload
#   benches/compare.sh --quick    one short round of each (a smoke check)
#   benches/compare.sh --workloads taildir    only some workloads (comma-separated)
# Needs JDK 17 and Maven (Flume and Hadoop come from Maven Central); builds what it runs and
# starts and stops everything itself. The last stdout line is one JSON object.
set -euo pipefail
exec python3 "$(dirname "$0")/compare.py" "$@"
