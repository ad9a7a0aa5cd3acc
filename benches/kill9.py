#!/usr/bin/env python3
"""The kill -9 campaign (docs/RELIABILITY.md, "kill -9 under load").

Whole `flumen agent` processes under load are SIGKILLed at random moments, restarted on the same
file channel, and at the end drained; this script is the auditor, a process outside the agent
that knows what the agent acknowledged and reads what it delivered. Per source:

- netcat: pipelining clients send `n<cycle>-<client>-<i>` lines; a line counts as acknowledged
  when its `OK` came back (answers come in order, so each client's acknowledged lines are a
  prefix of what it sent).
- avro: Apache Flume's own RpcClient (flume-ng-sdk 1.11, tests/avro's AvroAckLoop, one JVM for
  the whole campaign) sends batches of `a<id>` events; a batch counts once appendBatch returned.
- taildir: a writer appends `t<id>` lines to a log file and rotates it by rename while the agent
  tails the directory, across kills and restarts; every line written counts (taildir owes the
  whole file, and its position file is what must survive).

Every agent runs file channel (checkpoints every second, 1 MiB segments, so checkpoints, rolls
and spare reuse happen during the load) -> file_roll. About one cycle in ten is killed during
start-up (while recovery runs), the others 50-600 ms after the agent said it started. After
the last cycle the agent is restarted once more, drained (channel empty, and for taildir every
file read to its end), stopped with SIGTERM, and the output is audited: lost = acknowledged
and never delivered (the campaign fails unless 0); duplicates = deliveries beyond the first of
an acknowledged event (allowed: delivery is at-least-once); garbled = a complete output line
that is not an event that was sent (must be 0). Restart-to-ready is spawn to the agent's
"started" log line, which comes after recovery and after every source listens.

    benches/kill9.py [--source netcat,avro,taildir] [--cycles 1000] [--seed S] [--bin FLUMEN]
                     [--avro-classpath CP] [--keep DIR]

The last line of the output is one JSON object with the figures; exit status 1 if anything was
lost or garbled, 2 on a harness failure.
"""

import argparse
import json
import os
import random
import re
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402

READY = "agent `a1` started"
READY_DEADLINE = 60.0
DRAIN_DEADLINE = 300.0


class HarnessError(Exception):
    pass


def channel_and_sink(d, batch=100):
    return (f"a1.channels = c1\n"
            f"a1.sinks = k1\n"
            f"a1.channels.c1.type = file\n"
            f"a1.channels.c1.checkpointDir = {d}/checkpoint\n"
            f"a1.channels.c1.dataDirs = {d}/data\n"
            f"a1.channels.c1.checkpointInterval = 1000\n"
            f"a1.channels.c1.maxFileSize = 1048576\n"
            f"a1.channels.c1.minimumRequiredSpace = 1048576\n"
            f"a1.sinks.k1.type = file_roll\n"
            f"a1.sinks.k1.channel = c1\n"
            f"a1.sinks.k1.sink.directory = {d}/out\n"
            f"a1.sinks.k1.sink.rollInterval = 0\n"
            f"a1.sinks.k1.sink.batchSize = {batch}\n")


def listener_conf(kind, port):
    """Source `r1` of type `kind` listening on 127.0.0.1:port into channel `c1`."""
    return (f"a1.sources = r1\n"
            f"a1.sources.r1.type = {kind}\n"
            f"a1.sources.r1.bind = 127.0.0.1\n"
            f"a1.sources.r1.port = {port}\n"
            f"a1.sources.r1.channels = c1\n")


class Agent:
    """One `flumen agent` process, stderr into its own log file."""

    def __init__(self, bin_path, conf, log_path, mport, env=None):
        self.log_path = log_path
        self.mport = mport
        self.log = open(log_path, "wb")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(
            [bin_path, "agent", "-f", conf, "-n", "a1", "--monitoring-port", str(mport),
             "--monitoring-bind", "127.0.0.1"],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log,
            env=dict(os.environ, RUST_LOG="info", **(env or {})))
        self.offset = 0
        self.text = ""

    def read_log(self):
        with open(self.log_path, "rb") as f:
            f.seek(self.offset)
            new = f.read()
        self.offset += len(new)
        self.text += new.decode("utf-8", "replace")
        return self.text

    def wait_ready(self, deadline=READY_DEADLINE):
        """Seconds from spawn to the started line."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if READY in self.read_log():
                return time.monotonic() - self.t0
            if self.proc.poll() is not None:
                raise HarnessError(f"agent exited {self.proc.returncode} before it started:\n"
                                   f"{self.read_log()[-3000:]}")
            time.sleep(0.002)
        raise HarnessError(f"agent not started after {deadline} s:\n{self.read_log()[-3000:]}")

    def kill9(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()
        self.log.close()

    def terminate(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise HarnessError("agent did not exit within 120 s of SIGTERM")
        self.log.close()
        return code

    def metrics(self):
        return peerlib.metrics(self.mport)


def channel_size(agent):
    m = agent.metrics()
    if not m or "CHANNEL.c1" not in m:
        return None
    return int(m["CHANNEL.c1"].get("ChannelSize", "-1"))


def wait_for(what, cond, deadline):
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        if cond():
            return
        time.sleep(0.05)
    raise HarnessError(f"timed out after {deadline} s waiting for {what}")


def output_lines(out_dir):
    """Every complete line of every file_roll file (a file cut by a kill can end in part of a
    line: that fragment is not a delivery)."""
    for name in sorted(os.listdir(out_dir)):
        with open(os.path.join(out_dir, name), "rb") as f:
            data = f.read()
        end = data.rfind(b"\n")
        if end < 0:
            continue
        yield from data[:end].split(b"\n")


def panics(text):
    return [line for line in text.splitlines() if "panicked" in line]


class Ledger:
    """What was acknowledged and what came out, as compact per-key byte arrays indexed by id:
    `acked[key][i]` is 1 when id i was acknowledged, `counts[key][i]` how often it was
    delivered (saturating at 255)."""

    def __init__(self):
        self.acked = {}
        self.counts = {}

    def ack_prefix(self, key, sent, acked):
        """Ids 0..sent-1 were sent under key, the first `acked` of them acknowledged."""
        mask = bytearray(sent)
        mask[:acked] = b"\x01" * acked
        self.acked[key] = mask

    def audit(self, lines, parse):
        garbled, garbled_n = [], 0
        self.counts = {key: bytearray(len(mask)) for key, mask in self.acked.items()}
        for line in lines:
            parsed = parse(line)
            c = self.counts.get(parsed[0]) if parsed else None
            if c is None or parsed[1] >= len(c):
                if len(garbled) < 10:
                    garbled.append(line[:80].decode("utf-8", "replace"))
                garbled_n += 1
                continue
            i = parsed[1]
            if c[i] < 255:
                c[i] += 1
        result = self.tally()
        # The auditor's self-check: hide one delivery of an acknowledged event and make sure
        # the same tally reports it lost, so a run that reports 0 lost could have reported more.
        caught = None
        for key, c in self.counts.items():
            i = next((i for i, a in enumerate(self.acked[key]) if a and c[i] == 1), None)
            if i is not None:
                c[i] = 0
                caught = self.tally()["lost"] == result["lost"] + 1
                c[i] = 1
                break
        result.update(garbled=garbled_n, first_garbled=garbled, self_check_caught=caught)
        return result

    def tally(self):
        lost, dups, acked_n, delivered, first_lost = 0, 0, 0, 0, []
        for key, mask in self.acked.items():
            c = self.counts[key]
            acked_n += mask.count(1)
            delivered += len(c) - c.count(0)
            for i, a in enumerate(mask):
                if not a:
                    continue
                if c[i] == 0:
                    lost += 1
                    if len(first_lost) < 10:
                        first_lost.append(f"{key}:{i}")
                else:
                    dups += c[i] - 1
        return {"acknowledged": acked_n, "lost": lost, "duplicates": dups,
                "delivered_distinct": delivered, "first_lost": first_lost}


# ------------------------------------------------------------------------------------------
# Sources
# ------------------------------------------------------------------------------------------

class Netcat:
    """Pipelining clients; each line's OK is its acknowledgement."""
    name = "netcat"
    CLIENTS = 4
    IN_FLIGHT = 32
    LINE = re.compile(rb"^n(\d+)-(\d+)-(\d+)$")

    def __init__(self, d, args):
        self.port = peerlib.free_port()
        self.ledger = Ledger()
        self.threads = []

    def conf(self, d):
        return listener_conf("netcat", self.port) + channel_and_sink(d)

    def _client(self, cycle, client):
        key = (cycle, client)
        sent = acked = 0
        try:
            s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        except OSError:
            self.ledger.ack_prefix(key, 0, 0)
            return
        s.settimeout(30)
        r = s.makefile("rb")
        try:
            while True:
                batch = []
                while sent - acked < self.IN_FLIGHT:
                    batch.append(b"n%d-%d-%d\n" % (cycle, client, sent))
                    sent += 1
                s.sendall(b"".join(batch))
                answer = r.readline()
                if answer != b"OK\n":
                    break
                acked += 1
                self.cycle_acks += 1
        except OSError:
            pass
        finally:
            self.ledger.ack_prefix(key, sent, acked)
            s.close()

    def load(self, cycle):
        self.cycle_acks = 0
        self.threads = [threading.Thread(target=self._client, args=(cycle, c), daemon=True)
                        for c in range(self.CLIENTS)]
        for t in self.threads:
            t.start()

    def wait_first_ack(self, agent):
        wait_for("netcat: a first OK", lambda: self.cycle_acks > 0, READY_DEADLINE)

    def after_kill(self):
        for t in self.threads:
            t.join(60)
            if t.is_alive():
                raise HarnessError("a netcat client did not see the agent die within 60 s")

    def finish(self):
        pass

    def drained(self, agent):
        return channel_size(agent) == 0

    def parse(self, line):
        m = self.LINE.match(line)
        return ((int(m[1]), int(m[2])), int(m[3])) if m else None


class Avro:
    """Apache Flume's RpcClient in one long-lived JVM; a batch counts once appendBatch
    returned."""
    name = "avro"
    BATCH = 100
    LINE = re.compile(rb"^a(\d+)$")

    def __init__(self, d, args):
        self.port = peerlib.free_port()
        self.ledger = Ledger()
        cp = args.avro_classpath or peerlib.maven_classpath(os.path.join(peerlib.ROOT, "tests", "avro"))
        self.java = subprocess.Popen(
            ["java", "-Xmx256m", "-Dorg.slf4j.simpleLogger.defaultLogLevel=error",
             "-cp", cp, "flumen.test.AvroAckLoop"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=open(os.path.join(d, "java.log"), "wb"))
        self.max_id = 0
        self.stopped = threading.Event()
        self.ranges = []

    def conf(self, d):
        return listener_conf("avro", self.port) + channel_and_sink(d)

    def _reader(self):
        while True:
            line = self.java.stdout.readline()
            if not line:
                self.stopped.set()
                return
            parts = line.split()
            if parts[0] == b"ACK":
                lo, hi = int(parts[1]), int(parts[2])
                self.ranges.append((lo, hi))
                self.max_id = max(self.max_id, hi)
            elif parts[0] == b"STOP":
                self.stopped.set()
                return

    def load(self, cycle):
        self.ranges_before = len(self.ranges)
        self.stopped.clear()
        self.reader = threading.Thread(target=self._reader, daemon=True)
        self.reader.start()
        self.java.stdin.write(b"RUN 127.0.0.1 %d %d\n" % (self.port, self.BATCH))
        self.java.stdin.flush()

    def wait_first_ack(self, agent):
        def acked():
            if self.stopped.is_set():
                raise HarnessError("Flume's RpcClient stopped before the kill; see java.log")
            return len(self.ranges) > self.ranges_before
        wait_for("avro: a first acknowledged batch", acked, READY_DEADLINE)

    def after_kill(self):
        if not self.stopped.wait(60):
            raise HarnessError("Flume's RpcClient did not see the agent die within 60 s")
        if self.java.poll() is not None:
            raise HarnessError(f"the Java client exited {self.java.returncode}")

    def finish(self):
        self.java.stdin.write(b"QUIT\n")
        self.java.stdin.flush()
        self.java.wait(30)
        # Ids are a single key; the acknowledged ones are the union of the ranges, and ids of
        # failed batches were never reused.
        acked = bytearray(self.max_id + self.BATCH)
        for lo, hi in self.ranges:
            acked[lo:hi] = b"\x01" * (hi - lo)
        self.ledger.acked[0] = acked

    def drained(self, agent):
        return channel_size(agent) == 0

    def parse(self, line):
        m = self.LINE.match(line)
        return (0, int(m[1])) if m else None


class Taildir:
    """A writer appends lines and rotates the file by rename, across kills; every line written
    is owed."""
    name = "taildir"
    LINE = re.compile(rb"^t(\d+)$")
    ROTATE_LINES = 50_000
    CHUNK = 500

    def __init__(self, d, args):
        self.logs = os.path.join(d, "logs")
        os.makedirs(self.logs)
        self.pos = os.path.join(d, "taildir_position.json")
        self.ledger = Ledger()
        self.written = 0
        self.rotations = 0
        self.stop = threading.Event()
        self.writer = threading.Thread(target=self._write, daemon=True)
        self.writer.start()

    def conf(self, d):
        return (f"a1.sources = r1\n"
                f"a1.sources.r1.type = TAILDIR\n"
                f"a1.sources.r1.filegroups = f1\n"
                f"a1.sources.r1.filegroups.f1 = {self.logs}/app\\\\.log.*\n"
                f"a1.sources.r1.positionFile = {self.pos}\n"
                f"a1.sources.r1.channels = c1\n" + channel_and_sink(d))

    def _write(self):
        path = os.path.join(self.logs, "app.log")
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        in_file = 0
        while not self.stop.is_set():
            chunk = b"".join(b"t%d\n" % (self.written + i) for i in range(self.CHUNK))
            os.write(fd, chunk)
            self.written += self.CHUNK
            in_file += self.CHUNK
            if in_file >= self.ROTATE_LINES:
                os.close(fd)
                self.rotations += 1
                os.rename(path, os.path.join(self.logs, f"app.log.{self.rotations}"))
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                in_file = 0
            # About 50,000 lines/s: well within what the agent drains, so a cycle's kill finds
            # a steady state rather than an ever-growing backlog.
            time.sleep(0.01)
        os.close(fd)

    def load(self, cycle):
        pass

    def wait_first_ack(self, agent):
        def taken():
            m = agent.metrics() or {}
            return int(m.get("SINK.k1", {}).get("EventDrainSuccessCount", "0")) > 0
        wait_for("taildir: a first delivered batch", taken, READY_DEADLINE)

    def after_kill(self):
        pass

    def finish(self):
        self.stop.set()
        self.writer.join(30)
        self.ledger.ack_prefix(0, self.written, self.written)

    def drained(self, agent):
        if channel_size(agent) != 0:
            return False
        try:
            # Flume's JSON array on the first line (flumen adds a line of its own after it).
            with open(self.pos) as f:
                positions = {int(e["inode"]): int(e["pos"]) for e in json.loads(f.readline())}
        except (OSError, ValueError, KeyError):
            return False
        for name in os.listdir(self.logs):
            st = os.stat(os.path.join(self.logs, name))
            if positions.get(st.st_ino) != st.st_size:
                return False
        return True

    def parse(self, line):
        m = self.LINE.match(line)
        return (0, int(m[1])) if m else None


SOURCES = {"netcat": Netcat, "avro": Avro, "taildir": Taildir}


def campaign(kind, args, rng, base):
    d = os.path.join(base, kind)
    os.makedirs(d)
    src = SOURCES[kind](d, args)
    conf = os.path.join(d, "agent.properties")
    with open(conf, "w") as f:
        f.write(src.conf(d))
    ready, early_kills, panicked = [], 0, []
    started = time.monotonic()
    for cycle in range(args.cycles):
        mport = peerlib.free_port()
        agent = Agent(args.bin, conf, os.path.join(d, f"agent-{cycle}.log"), mport)
        if rng.random() < 0.1:
            # Killed during start-up, possibly while recovery replays the log.
            time.sleep(rng.uniform(0.0, 0.03))
            if READY not in agent.read_log():
                early_kills += 1
                agent.kill9()
                panicked += panics(agent.read_log())
                continue
        try:
            ready.append(agent.wait_ready())
            src.load(cycle)
            # Kill at a random moment once this cycle's load is acknowledged at all.
            src.wait_first_ack(agent)
        except HarnessError:
            agent.kill9()
            raise
        time.sleep(rng.uniform(0.02, 0.5))
        agent.kill9()
        src.after_kill()
        panicked += panics(agent.read_log())
        if args.progress and (cycle + 1) % args.progress == 0:
            peerlib.log(f"{kind}: {cycle + 1}/{args.cycles} cycles, "
                        f"{time.monotonic() - started:.0f} s")
    src.finish()
    # The drain: one more start, no new load, until everything owed is out.
    agent = Agent(args.bin, conf, os.path.join(d, "agent-drain.log"), peerlib.free_port())
    try:
        ready.append(agent.wait_ready())
        wait_for(f"{kind}: the channel to drain", lambda: src.drained(agent), DRAIN_DEADLINE)
    except HarnessError:
        agent.kill9()
        raise
    code = agent.terminate()
    log_text = agent.read_log()
    panicked += panics(log_text)
    if code != 0:
        raise HarnessError(f"{kind}: the draining agent exited {code}:\n{log_text[-3000:]}")
    result = src.ledger.audit(output_lines(os.path.join(d, "out")), src.parse)
    ready_ms = sorted(r * 1000 for r in ready)
    result.update(
        cycles=args.cycles,
        kills_during_startup=early_kills,
        restart_to_ready_ms={"median": round(statistics.median(ready_ms), 1),
                             "worst": round(ready_ms[-1], 1)},
        panics=len(panicked),
        seconds=round(time.monotonic() - started, 1))
    if kind == "taildir":
        result["rotations"] = src.rotations
    return result


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--source", default="netcat,avro,taildir")
    ap.add_argument("--cycles", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=None)
    ap.add_argument("--bin", default=None, help="the flumen binary (default: release build)")
    ap.add_argument("--avro-classpath", default=None,
                    help="classpath of tests/avro (default: built here with Maven)")
    ap.add_argument("--keep", default=None, help="work in this directory and keep it")
    ap.add_argument("--progress", type=int, default=50, help="log every N cycles (0: never)")
    args = ap.parse_args()
    args.bin = args.bin or peerlib.flumen_bin()
    seed = args.seed if args.seed is not None else random.randrange(1 << 32)
    rng = random.Random(seed)
    kinds = peerlib.choose(ap, args.source, list(SOURCES), "source")
    peerlib.log(f"kill -9 campaign: {', '.join(kinds)}, {args.cycles} cycles each, seed {seed}, "
                f"binary {args.bin}")
    results = {}
    status = 0
    with tempfile.TemporaryDirectory(prefix="flumen-kill9-") as tmp:
        base = args.keep or tmp
        os.makedirs(base, exist_ok=True)
        for k in kinds:
            try:
                r = campaign(k, args, rng, base)
            except HarnessError as e:
                peerlib.log(f"{k}: harness failure: {e}")
                results[k] = {"error": str(e)[:2000]}
                status = max(status, 2)
                continue
            results[k] = r
            peerlib.log(f"{k}: {r['cycles']} cycles, {r['acknowledged']} acknowledged, "
                        f"{r['lost']} lost, {r['duplicates']} duplicates, "
                        f"{r['garbled']} garbled, {r['panics']} panics, restart-to-ready "
                        f"median {r['restart_to_ready_ms']['median']} ms, worst "
                        f"{r['restart_to_ready_ms']['worst']} ms, {r['seconds']} s")
            if r["lost"] or r["garbled"] or r["panics"] or r["self_check_caught"] is False:
                status = max(status, 1)
    lost = sum(r.get("lost", 0) for r in results.values())
    print(json.dumps({"campaign": "kill9", "seed": seed, "cycles_per_source": args.cycles,
                      "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                      "lost": lost, "ok": status == 0, "sources": results}))
    sys.exit(status)


if __name__ == "__main__":
    main()
