"""Power loss on a real filesystem: a `flumen agent` whose file channel (checkpointDir and
dataDirs) lives on a LazyFS mount, killed with SIGKILL under load, after which LazyFS drops
every byte that was written but not fsynced (`lazyfs::clear-cache`), as a power cut would.
The agent restarts on the same directories and this process, the auditor, checks that every
line the netcat source answered `OK` before the kill reaches the sink.

The pipeline: pipelining netcat clients (an `OK` per line, sent only after the line's put
committed) -> file channel on LazyFS (small segments, frequent checkpoints, spare segments,
two data directories: rolls, spare renames, checkpoint renames and directory fsyncs happen
during every cycle) -> file_roll sink into a directory OUTSIDE the mount. The sink runs while
the clients load, with batches of 100 behind four fast clients so that a backlog of acknowledged lines sits in the
channel at most kills, and so that segments drain, are finished and come back as spares.
The sink's directory is on the real disk and only the agent process dies, so what file_roll
wrote before a kill stays: it stands for a downstream system that kept what it received.

LazyFS (tests/lazyfs, with our patch 0003) also undoes, at each cut, every create, rename
and unlink whose directory was not fsynced since: segment creations and renames (`.new` to
`.log`, finished segments to spares, spares back to segments), checkpoint renames and
deletions all depend on flumen's directory fsyncs.

Each cycle: start the agent (the restart after the previous power cut; its time to accept
connections is the restart-to-ready time), wait until every line owed so far has been
delivered or the channel is empty (the audit of the previous cut: an acknowledged line
missing from the sink's files once the channel is empty is lost), load
it, SIGKILL it at a random moment (one cycle in six: during the restart itself, while it
drains), clear LazyFS's cache. A final restart drains and audits the last cycle.

The last line of output is one JSON object with the figures. Needs root, /dev/fuse and the
LazyFS build from tests/lazyfs/build.sh (run here; it does nothing when the build is there).
Usage:

    nice -n 10 python3 benches/powerloss.py --cycles 100
    python3 benches/powerloss.py --cycles 5 --fsync never      # negative control: must lose
    python3 benches/powerloss.py --cycles 5 --skip-dir-fsync   # negative control: must lose

It exits 1 if a normal run loses an acknowledged line (the controls exit 0 either way: the
caller checks that they lost some).
"""

import argparse
import json
import os
import random
import re
import select
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from peerlib import ROOT, flumen_agent_cmd, free_port, log, metrics  # noqa: E402

CLIENTS = 4
IN_FLIGHT = 64
# Any single wait (mount, restart, drain) fails the campaign after this long.
DEADLINE = 180.0
LINE = re.compile(rb"^p(\d+)-(\d+)-(\d+)$")


def target_dir():
    return os.environ.get("CARGO_TARGET_DIR", os.path.join(ROOT, "target"))


def default_flumen():
    """$FLUMEN_BIN, else the debug build (what `cargo test` builds), else the release one."""
    if os.environ.get("FLUMEN_BIN"):
        return os.environ["FLUMEN_BIN"]
    for profile in ("debug", "release"):
        p = os.path.join(target_dir(), profile, "flumen")
        if os.path.exists(p):
            return p
    raise SystemExit("no flumen binary: run `cargo build` or set FLUMEN_BIN")


def wait_for(what, cond, deadline=DEADLINE, alive=None):
    end = time.monotonic() + deadline
    while True:
        v = cond()
        if v:
            return v
        if alive is not None:
            alive()
        if time.monotonic() > end:
            raise RuntimeError(f"timed out after {deadline:.0f} s waiting for {what}")
        time.sleep(0.01)


def mounted(path):
    with open("/proc/self/mountinfo") as f:
        return any(line.split()[4] == path for line in f)


class LazyFs:
    """A LazyFS process serving `mnt` from the real directory `root`, with its faults FIFO."""

    def __init__(self, binary, work, cache_size):
        self.binary = binary
        self.root = os.path.join(work, "lazyfs-root")
        self.mnt = os.path.join(work, "mnt")
        self.fifo = os.path.join(work, "faults.fifo")
        self.done_fifo = os.path.join(work, "faults-done.fifo")
        self.config = os.path.join(work, "lazyfs.toml")
        self.log_path = os.path.join(work, "lazyfs.log")
        # Beside root: the namespace journal's stash must be on root's filesystem.
        self.stash = os.path.join(work, "lazyfs-stash")
        os.makedirs(self.root, exist_ok=True)
        os.makedirs(self.mnt, exist_ok=True)
        with open(os.path.join(ROOT, "tests", "lazyfs", "lazyfs.toml.in")) as f:
            text = f.read()
        for k, v in (("@FIFO@", self.fifo), ("@FIFO_COMPLETED@", self.done_fifo),
                     ("@CACHE_SIZE@", cache_size), ("@STASH@", self.stash)):
            text = text.replace(k, v)
        with open(self.config, "w") as f:
            f.write(text)
        self.proc = None
        self.done_fd = None

    def start(self):
        if not os.path.exists("/dev/fuse"):
            raise SystemExit("/dev/fuse is missing: LazyFS is a FUSE filesystem")
        logf = open(self.log_path, "ab")
        # Foreground (-f) so this process owns it; subdir makes the mount show `root`.
        self.proc = subprocess.Popen(
            [self.binary, self.mnt, "--config-path", self.config, "-o", "modules=subdir",
             "-o", f"subdir={self.root}", "-f"],
            stdout=logf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True)
        logf.close()

        def alive():
            if self.proc.poll() is not None:
                raise RuntimeError(f"LazyFS exited ({self.proc.returncode}) before mounting "
                                   f"{self.mnt}:\n{self.log_tail()}")
        # The cache is preallocated before the mount appears (about 6 s per GiB).
        wait_for(f"LazyFS to mount {self.mnt}", lambda: mounted(self.mnt), alive=alive)
        # LazyFS opens its "done" FIFO for writing after the faults FIFO and blocks until a
        # reader exists; non-blocking here so that neither side waits for the other.
        wait_for("LazyFS to create its FIFOs", lambda: os.path.exists(self.done_fifo), alive=alive)
        self.done_fd = os.open(self.done_fifo, os.O_RDONLY | os.O_NONBLOCK)

    def log_tail(self, n=30):
        try:
            with open(self.log_path, "rb") as f:
                return b"".join(f.readlines()[-n:]).decode(errors="replace")
        except OSError:
            return ""

    def _command(self, cmd):
        # LazyFS reads at most 100 bytes per command and replaces the last one (our newline)
        # with a NUL: one command per write, the next only once this one is done.
        fd = os.open(self.fifo, os.O_WRONLY)
        try:
            os.write(fd, (cmd + "\n").encode())
        finally:
            os.close(fd)

    def clear_cache(self):
        """Drops every unsynced byte; returns when LazyFS says it is done."""
        self._command("lazyfs::clear-cache")
        got = b""
        end = time.monotonic() + DEADLINE
        while b"finished::clear-cache" not in got:
            left = end - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                raise RuntimeError(f"LazyFS did not finish clear-cache:\n{self.log_tail()}")
            r, _, _ = select.select([self.done_fd], [], [], min(left, 1.0))
            if r:
                try:
                    got += os.read(self.done_fd, 256)
                except BlockingIOError:
                    pass

    def cache_usage(self):
        """LazyFS's cache usage in percent of its pages (from its log)."""
        pat = re.compile(rb"cache usage \(%pages\) is ([0-9.]+)%")

        def count():
            with open(self.log_path, "rb") as f:
                return pat.findall(f.read())
        before = len(count())
        self._command("lazyfs::display-cache-usage")
        found = wait_for("LazyFS's cache usage line", lambda: (c := count()) and
                         len(c) > before and c, deadline=30)
        return float(found[-1])

    def stop(self):
        if self.done_fd is not None:
            os.close(self.done_fd)
            self.done_fd = None
        if self.proc is None:
            return
        for _ in range(50):
            if not mounted(self.mnt):
                break
            if subprocess.run(["fusermount3", "-u", self.mnt], stderr=subprocess.DEVNULL).returncode == 0:
                break
            time.sleep(0.1)
        else:
            # Still busy: detach it so that no mount outlives the campaign.
            subprocess.run(["fusermount3", "-uz", self.mnt], stderr=subprocess.DEVNULL)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        self.proc = None


class Audit:
    """What was acknowledged (per cycle and client: one byte per line, 1 = answered OK) and
    what file_roll delivered (read incrementally from its files, complete lines only)."""

    def __init__(self, out):
        self.out = out
        self.acked = {}      # (cycle, client) -> bytearray
        self.seen = {}       # (cycle, client) -> bytearray of delivery counts (capped at 255)
        self.offsets = {}    # file -> (bytes consumed, partial line)
        self.garbled = 0
        self.checked_upto = {}  # (cycle, client) -> prefix known delivered

    def read_new(self):
        for name in sorted(os.listdir(self.out)):
            path = os.path.join(self.out, name)
            off, partial = self.offsets.get(path, (0, b""))
            with open(path, "rb") as f:
                f.seek(off)
                data = f.read()
            if not data:
                continue
            data = partial + data
            lines = data.split(b"\n")
            self.offsets[path] = (off + len(data) - len(partial), lines[-1])
            for line in lines[:-1]:
                m = LINE.match(line)
                if not m:
                    self.garbled += 1
                    continue
                key = (int(m.group(1)), int(m.group(2)))
                n = int(m.group(3))
                seen = self.seen.setdefault(key, bytearray())
                if n >= len(seen):
                    seen.extend(bytes(n + 1 - len(seen)))
                if seen[n] < 255:
                    seen[n] += 1

    def missing(self, limit=None):
        """Acknowledged lines not delivered: (count, a few examples)."""
        total, examples = 0, []
        for key, acked in self.acked.items():
            seen = self.seen.get(key, bytearray())
            start = self.checked_upto.get(key, 0)
            first_gap = None
            for n in range(start, len(acked)):
                if acked[n] == 1 and (n >= len(seen) or seen[n] == 0):
                    total += 1
                    if first_gap is None:
                        first_gap = n
                    if len(examples) < 5:
                        examples.append(f"p{key[0]}-{key[1]}-{n}")
            # Lines before the first gap need no second look.
            self.checked_upto[key] = len(acked) if first_gap is None else first_gap
            if limit is not None and total >= limit:
                break
        return total, examples

    def duplicates(self):
        return sum(c - 1 for seen in self.seen.values() for c in seen if c > 1)

    def acknowledged(self):
        # 1: answered OK; 2: answered OK and already counted lost.
        return sum(len(a) - a.count(0) for a in self.acked.values())


def client(port, cycle, c, audit, counters):
    """Sends `p<cycle>-<c>-<n>` lines keeping IN_FLIGHT unanswered until the connection
    breaks (the kill); records which were answered OK (answers come in line order)."""
    acked = audit.acked.setdefault((cycle, c), bytearray())
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError:
        return
    s.settimeout(DEADLINE)
    sent = answered = 0
    buf = b""
    try:
        while True:
            if sent - answered < IN_FLIGHT:
                batch = range(sent, answered + IN_FLIGHT)
                s.sendall(b"".join(b"p%d-%d-%d\n" % (cycle, c, n) for n in batch))
                sent = answered + IN_FLIGHT
            data = s.recv(65536)
            if not data:
                return
            buf += data
            *replies, buf = buf.split(b"\n")
            for r in replies:
                ok = r == b"OK"
                acked.append(1 if ok else 0)
                if not ok:
                    counters["failed_replies"] += 1
                answered += 1
    except OSError:
        return
    finally:
        s.close()


def agent_config(path, port, mnt, out, args):
    text = f"""a1.sources = r1
a1.channels = c1
a1.sinks = k1
a1.sources.r1.type = netcat
a1.sources.r1.bind = 127.0.0.1
a1.sources.r1.port = {port}
a1.sources.r1.channels = c1
a1.channels.c1.type = file
a1.channels.c1.checkpointDir = {mnt}/checkpoint
a1.channels.c1.dataDirs = {mnt}/data1,{mnt}/data2
a1.channels.c1.capacity = 5000000
a1.channels.c1.minimumRequiredSpace = 1048576
a1.channels.c1.maxFileSize = {args.max_file_size}
a1.channels.c1.checkpointInterval = {args.checkpoint_interval_ms}
a1.channels.c1.spareSegments = 2
a1.channels.c1.fsync = {args.fsync}
a1.channels.c1.directIo = {str(args.direct_io).lower()}
a1.channels.c1.io = {args.io}
a1.sinks.k1.type = file_roll
a1.sinks.k1.channel = c1
a1.sinks.k1.sink.directory = {out}
a1.sinks.k1.sink.rollInterval = 0
a1.sinks.k1.sink.batchSize = {args.sink_batch}
"""
    with open(path, "w") as f:
        f.write(text)


def can_connect(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def channel_files(root):
    """Names in the channel's directories on the real disk (what survived)."""
    names = []
    for d in ("checkpoint", "data1", "data2"):
        try:
            names += os.listdir(os.path.join(root, d))
        except FileNotFoundError:
            pass
    return names


def run(args):
    rng = random.Random(args.seed)
    build = args.lazyfs_build or os.path.join(target_dir(), "lazyfs")
    subprocess.run([os.path.join(ROOT, "tests", "lazyfs", "build.sh"), build], check=True,
                   stdout=sys.stderr)
    flumen = args.flumen or default_flumen()
    preload = None
    if args.skip_dir_fsync:
        preload = os.path.join(build, "skip_dir_fsync.so")
        subprocess.run(["cc", "-shared", "-fPIC", "-O2", "-o", preload,
                        os.path.join(ROOT, "tests", "lazyfs", "skip_dir_fsync.c"), "-ldl"],
                       check=True)
    work = tempfile.mkdtemp(prefix="flumen-powerloss-", dir=args.workdir)
    log(f"work dir {work}; flumen {flumen}; LazyFS {build}/lazyfs")
    fs = LazyFs(os.path.join(build, "lazyfs"), work, args.cache_size)
    out = os.path.join(work, "out")
    os.makedirs(out)
    # The channel's own directories exist (and are durable) before the first start, as an
    # operator's would be: the campaign is about the files the channel makes inside them.
    for d in ("checkpoint", "data1", "data2"):
        os.makedirs(os.path.join(fs.root, d))
    os.sync()
    port, mport = free_port(), free_port()
    props = os.path.join(work, "agent.properties")
    agent_config(props, port, fs.mnt, out, args)
    audit = Audit(out)
    counters = {"failed_replies": 0}
    ready_ms, lost_per_cycle, cache_max = [], [], 0
    kills_at_startup = max_seg = spares_seen = 0
    agent = None
    agent_log = os.path.join(work, "agent.log")
    ok = False
    try:
        fs.start()
        env = dict(os.environ, RUST_LOG=args.rust_log)
        if preload:
            env["LD_PRELOAD"] = preload

        def start_agent():
            with open(agent_log, "ab") as logf:
                cmd = flumen_agent_cmd(props, mport)
                cmd[0] = flumen
                return subprocess.Popen(
                    cmd, stdout=logf, stderr=logf,
                    stdin=subprocess.DEVNULL, env=env, start_new_session=True), time.monotonic()

        def alive(p):
            def check():
                if p.poll() is not None:
                    raise RuntimeError(f"the agent exited ({p.returncode}); its log: {agent_log}")
            return check

        def drained():
            # The sink commits its take only after file_roll wrote the batch: once the
            # channel is empty, everything it will ever deliver is in the output.
            m = metrics(mport)
            return m is not None and m.get("CHANNEL.c1", {}).get("ChannelSize") == "0"

        def drain_audit(p, cycle):
            """Waits until every acknowledged line is delivered or the channel is empty;
            returns how many acknowledged lines were not delivered."""
            def done():
                audit.read_new()
                if audit.missing(limit=1)[0] == 0:
                    return "all"
                return drained() and "empty"
            how = wait_for("every acknowledged line to reach the sink, or an empty channel",
                           done, deadline=args.drain_deadline, alive=alive(p))
            audit.read_new()
            n, ex = audit.missing()
            if n:
                log(f"cycle {cycle}: {n} acknowledged lines not delivered ({how}), e.g. {ex}")
                # Counted once: later audits skip what is already known lost.
                for key, acked in audit.acked.items():
                    seen = audit.seen.get(key, bytearray())
                    for i in range(len(acked)):
                        if acked[i] == 1 and (i >= len(seen) or seen[i] == 0):
                            acked[i] = 2
            return n

        for cycle in range(args.cycles):
            agent, t0 = start_agent()
            startup_kill = cycle > 0 and rng.random() < args.startup_kill_fraction
            if startup_kill:
                # Power cut while the agent restarts: replay, the recovery checkpoint, the
                # drain of the backlog.
                time.sleep(rng.uniform(0, args.startup_kill_window))
                kills_at_startup += 1
                lost_per_cycle.append(0)
            else:
                wait_for("the agent to accept connections", lambda: can_connect(port),
                         alive=alive(agent))
                ready_ms.append((time.monotonic() - t0) * 1000)
                lost_per_cycle.append(drain_audit(agent, cycle - 1))
                threads = [threading.Thread(target=client, args=(port, cycle, c, audit, counters))
                           for c in range(CLIENTS)]
                for t in threads:
                    t.start()
                time.sleep(rng.uniform(args.kill_min, args.kill_max))
            agent.kill()
            agent.wait()
            if not startup_kill:
                for t in threads:
                    t.join()
            cache_max = max(cache_max, fs.cache_usage())
            if cache_max >= 95:
                raise RuntimeError(f"LazyFS's cache is {cache_max}% full: a full cache writes "
                                   f"through and would hide losses; raise --cache-size")
            fs.clear_cache()
            names = channel_files(fs.root)
            spares_seen += sum(1 for n in names if n.startswith("spare-"))
            for n in names:
                if n.startswith("seg-") and n.endswith(".log"):
                    max_seg = max(max_seg, int(n[4:24]))
            log(f"cycle {cycle}: {'startup kill' if startup_kill else 'load kill'} "
                f"after {time.monotonic() - t0:.1f} s, "
                f"acknowledged {audit.acknowledged()}, lost so far {sum(lost_per_cycle)}, "
                f"cache {cache_max}%, files {len(names)}")
        # The last restart: drain and audit the last cut.
        agent, t0 = start_agent()
        wait_for("the agent to accept connections", lambda: can_connect(port), alive=alive(agent))
        ready_ms.append((time.monotonic() - t0) * 1000)
        lost_per_cycle.append(drain_audit(agent, args.cycles - 1))
        agent.send_signal(signal.SIGTERM)
        agent.wait(timeout=60)
        agent = None
        audit.read_new()
        ok = True
    finally:
        if agent is not None and agent.poll() is None:
            agent.kill()
            agent.wait()
        fs.stop()
    with open(fs.log_path, "rb") as f:
        undone = [int(n) for n in re.findall(rb"\[lazyfs.ns\]: undid (\d+) namespace", f.read())]
    if ok and len(undone) != args.cycles:
        raise RuntimeError(f"LazyFS reported {len(undone)} namespace undos for {args.cycles} "
                           f"cuts: is tests/lazyfs/patches/0003 applied?")
    with open(agent_log, "rb") as f:
        text = f.read()
    odirect_refused = text.count(b"O_DIRECT refused") + text.count(b"O_DIRECT write refused")
    lost = sum(lost_per_cycle)
    figures = {
        "campaign": "powerloss",
        "flumen": flumen,
        "fsync": args.fsync,
        "skip_dir_fsync": args.skip_dir_fsync,
        "directIo": args.direct_io,
        "io": args.io,
        "cycles": args.cycles,
        "kills_during_restart": kills_at_startup,
        "acknowledged": audit.acknowledged(),
        "lost": lost,
        "lost_found_at_restart": {str(i): n for i, n in enumerate(lost_per_cycle) if n},
        "duplicates": audit.duplicates(),
        "failed_replies": counters["failed_replies"],
        "garbled_lines": audit.garbled,
        "restart_to_ready_ms_median": round(statistics.median(ready_ms), 1),
        "restart_to_ready_ms_worst": round(max(ready_ms), 1),
        "highest_segment_id": max_seg,
        "spares_seen_after_cuts": spares_seen,
        "lazyfs_cache_max_pct": cache_max,
        "namespace_ops_undone": sum(undone),
        "cuts_undoing_namespace_ops": sum(1 for n in undone if n),
        "odirect_refused_log_lines": odirect_refused,
        # io = uring falls back to std (with a warning) where io_uring cannot be set up.
        "uring_unavailable_log_lines": text.count(b"io_uring is not available")
        + text.count(b"without the `io-uring` feature"),
        "seed": args.seed,
    }
    if ok and not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    else:
        figures["work_dir"] = work
    return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cycles", type=int, default=100)
    ap.add_argument("--fsync", default="every-commit",
                    help="the channel's fsync policy (never or interval:<ms> for the negative control)")
    ap.add_argument("--direct-io", type=lambda s: s.lower() in ("1", "true", "yes"), default=True,
                    help="the channel's directIo (true or false)")
    ap.add_argument("--io", default="std", choices=("std", "uring"),
                    help="the channel's I/O backend")
    ap.add_argument("--flumen", help="flumen binary (default $FLUMEN_BIN, else target/debug)")
    ap.add_argument("--lazyfs-build", help="where tests/lazyfs/build.sh builds (target/lazyfs)")
    ap.add_argument("--workdir", help="parent of the campaign's temporary directory")
    ap.add_argument("--cache-size", default="512mb", help="LazyFS's cache (unsynced bytes)")
    ap.add_argument("--max-file-size", type=int, default=256 * 1024)
    ap.add_argument("--checkpoint-interval-ms", type=int, default=700)
    ap.add_argument("--sink-batch", type=int, default=100)
    ap.add_argument("--kill-min", type=float, default=0.3, help="seconds of load before a kill, at least")
    ap.add_argument("--kill-max", type=float, default=2.0, help="... and at most")
    ap.add_argument("--startup-kill-fraction", type=float, default=1 / 6)
    ap.add_argument("--startup-kill-window", type=float, default=1.5)
    ap.add_argument("--drain-deadline", type=float, default=DEADLINE)
    ap.add_argument("--rust-log", default="warn,flumen::io=debug",
                    help="RUST_LOG for the agent (flumen::io=debug shows O_DIRECT fallbacks)")
    ap.add_argument("--skip-dir-fsync", action="store_true",
                    help="negative control: the agent's directory fsyncs become no-ops (LD_PRELOAD)")
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    args = ap.parse_args()
    # SIGTERM (a test's cleanup) unwinds through run()'s finally: agent killed, LazyFS unmounted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if args.seed is None:
        args.seed = random.randrange(1 << 32)
    figures = run(args)
    print(json.dumps(figures), flush=True)
    control = args.fsync != "every-commit" or args.skip_dir_fsync
    sys.exit(0 if figures["lost"] == 0 or control else 1)


if __name__ == "__main__":
    main()
