#!/usr/bin/env bash
# The hbase2 sink against Apache Flume 1.11's hbase2 sink and HBase's own Java BufferedMutator,
# in one run (issue 20's benchmark): builds flumen (release) and the tests/hbase Maven project
# (HBase's mini cluster, Flume's agent and hbase2 sink), then runs `flumen bench hbase`, which
# starts a single-JVM HBase itself. Extra arguments are passed on (e.g. --rounds 5). The last
# stdout line is the bench's JSON object.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/flumen"
proj=tests/hbase
(cd "$proj" && mvn -q -B compile dependency:build-classpath -Dmdep.outputFile=target/classpath.txt)
cp="$PWD/$proj/target/classes:$(cat "$proj/target/classpath.txt")"
"$bin" bench hbase --java-classpath "$cp" "$@"
