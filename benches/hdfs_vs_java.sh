#!/usr/bin/env bash
# The HDFS sink against Hadoop's own Java client, in one run (issue 4's benchmark):
# builds flumen and the tests/hdfs Maven project, starts a MiniDFSCluster (one DataNode),
# runs `flumen bench hdfs` against it (extra arguments are passed on, e.g. --rounds 5), then
# stops the cluster. The last stdout line is the bench's JSON object.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --quiet
bin="${CARGO_TARGET_DIR:-target}/release/flumen"
proj=tests/hdfs
(cd "$proj" && mvn -q -B compile dependency:build-classpath -Dmdep.outputFile=target/classpath.txt)
cp="$PWD/$proj/target/classes:$(cat "$proj/target/classpath.txt")"
base=$(mktemp -d)
fifo="$base/cmd"
mkfifo "$fifo"
# The launcher shuts the cluster down when its stdin closes: keep a writer on the fifo open.
exec 3<>"$fifo"
java -Xmx512m -XX:+UseSerialGC -cp "$cp" flumen.test.MiniHdfs "$base/dfs" <"$fifo" >"$base/out" 2>"$base/err" 3>&- &
pid=$!
cleanup() { exec 3>&-; wait "$pid" 2>/dev/null || true; rm -rf "$base"; }
trap cleanup EXIT
for _ in $(seq 1 600); do
  if grep -q '^READY ' "$base/out"; then break; fi
  if ! kill -0 "$pid" 2>/dev/null; then echo "MiniDFSCluster failed:" >&2; tail -30 "$base/err" >&2; exit 1; fi
  sleep 0.2
done
url=$(grep -m1 '^READY ' "$base/out" | cut -d' ' -f2)
[ -n "$url" ] || { echo "MiniDFSCluster not ready after 120 s" >&2; tail -30 "$base/err" >&2; exit 1; }
echo "MiniDFSCluster at $url" >&2
"$bin" bench hdfs --url "$url" --java-classpath "$cp" "$@"
