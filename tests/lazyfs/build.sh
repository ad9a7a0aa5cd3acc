#!/usr/bin/env bash
# Builds LazyFS (the FUSE filesystem the power-loss campaign runs the channel on) from the
# source committed in tests/lazyfs/src plus the patches in tests/lazyfs/patches, into DEST:
#   DEST/lazyfs     the program to run (a wrapper that sets LD_LIBRARY_PATH for libpcache)
#   DEST/stamp      a hash of the inputs; a second run with the same inputs does nothing
# Needs Debian's g++ cmake libfuse3-dev libtoml11-dev libspdlog-dev (see .ci/run). About one
# minute on 2 cores. Safe to run concurrently for the same DEST (a lock serialises the runs).
set -euo pipefail

if [ $# -ne 1 ]; then
  echo "usage: $0 DEST" >&2
  exit 2
fi
here="$(cd "$(dirname "$0")" && pwd)"
mkdir -p "$1"
dest="$(cd "$1" && pwd)"

missing=()
command -v g++ >/dev/null || missing+=(g++)
command -v cmake >/dev/null || missing+=(cmake)
command -v patch >/dev/null || missing+=(patch)
[ -e /usr/include/fuse3/fuse.h ] || missing+=(libfuse3-dev)
[ -e /usr/include/toml.hpp ] || missing+=(libtoml11-dev)
[ -e /usr/include/spdlog/spdlog.h ] || missing+=(libspdlog-dev)
if [ ${#missing[@]} -gt 0 ]; then
  echo "building LazyFS needs the Debian packages: ${missing[*]} (apt-get install ${missing[*]}; .ci/run installs them)" >&2
  exit 1
fi

# The inputs' hash: source files, patches and this script, in a stable order.
stamp=$(cd "$here" && find src patches build.sh -type f -print0 | LC_ALL=C sort -z \
  | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)

exec 9>"$dest/.lock"
flock 9
if [ -x "$dest/lazyfs" ] && [ "$(cat "$dest/stamp" 2>/dev/null)" = "$stamp" ]; then
  exit 0
fi

rm -rf "$dest/src" "$dest/lazyfs" "$dest/stamp"
cp -a "$here/src" "$dest/src"
for p in "$here"/patches/*.patch; do
  patch -s -p1 -d "$dest/src" <"$p"
done

jobs=$(nproc 2>/dev/null || echo 2)
# Each part is configured and built in its own build/ folder, as upstream's build.sh does:
# lazyfs links ../libs/libpcache/build/libpcache.so.
# Compiler output (upstream's code warns a lot) goes to DEST/build.log, shown on failure.
if ! (cd "$dest/src/libs/libpcache" && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release \
        && cmake --build build -j "$jobs" \
        && cd "$dest/src/lazyfs" && cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DLAZYFS_BUILD_TESTS=OFF \
        && cmake --build build -j "$jobs") >"$dest/build.log" 2>&1; then
  tail -n 40 "$dest/build.log" >&2
  echo "building LazyFS failed; the whole log: $dest/build.log" >&2
  exit 1
fi

cat >"$dest/lazyfs" <<EOF
#!/bin/sh
# LazyFS built by tests/lazyfs/build.sh; libpcache is not installed system-wide.
LD_LIBRARY_PATH="$dest/src/libs/libpcache/build\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}" exec "$dest/src/lazyfs/build/lazyfs" "\$@"
EOF
chmod +x "$dest/lazyfs"
echo "$stamp" >"$dest/stamp"
echo "LazyFS built: $dest/lazyfs" >&2
