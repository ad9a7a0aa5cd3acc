#!/usr/bin/env python3
"""Faults on a running agent (docs/RELIABILITY.md, "Faults on a running agent").

A real `flumen agent` (netcat -> file channel -> file_roll) under load from pipelining clients,
with the channel's directories on a small ext4 filesystem of its own (a loop-mounted image, so
O_DIRECT, fdatasync and free space are a real filesystem's), and the file_roll output outside
it. This script is the auditor: a line counts as acknowledged when its `OK` came back (a
`FAILED` answer is a refusal, and the client keeps going). Each scenario checks what README's
"When the disk fails" promises, then that everything acknowledged was delivered.

- disk_full: the filesystem is filled to its last MiB under load. Puts must be refused with
  an error naming the directory and the free space, takes must drain the channel to empty
  while it is full, and once the space returns puts must be accepted again, by the same
  process.
- read_only: ext4 hits an error and remounts itself read-only under load (`errors=remount-ro`
  and `/sys/fs/ext4/<dev>/trigger_fs_error`, the real path a failing disk takes). Commits must
  fail (the channel is poisoned, naming the file) and nothing is acknowledged after that; after
  a check and remount, a restarted agent recovers and delivers everything acknowledged.
- segment_deleted: with the sink stopped, a segment holding acknowledged events is deleted
  under the running agent. The running agent still holds it open; a restart must refuse to open
  the channel, naming the missing segment and what to do, rather than deliver the rest and drop
  its events quietly. The campaign then puts the file back (as a user restoring it would) and
  checks nothing was lost.
- checkpoint_rename_fails: every checkpoint's final rename fails with EXDEV, as on a
  filesystem that cannot rename (an LD_PRELOAD shim, benches/faults/shim.c, armed by creating a
  file). The agent must keep accepting and delivering (checkpoints are an optimisation of
  recovery, not of durability), log what fails, and after a kill -9 recover everything.
- fdatasync_eio: fdatasync of the segments fails with EIO under load (the same shim). The
  channel must be poisoned at once: the commit waiting on that sync and every later one fail
  (`FAILED` answers naming the file), nothing is acknowledged after the failure, and a restart
  recovers and delivers everything acknowledged before it.

    sudo benches/faults.py [--scenario disk_full,read_only,...] [--bin FLUMEN] [--keep DIR]

Needs root (mount, losetup), e2fsprogs and a C compiler (cc) for the shim. The last line of the output is one JSON
object; exit status 1 if a scenario lost an event or broke a promise, 2 on a harness failure.
"""

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402
from kill9 import Agent, HarnessError, Ledger, channel_size, output_lines, panics, wait_for  # noqa: E402

DEADLINE = 60.0
MIB = 1 << 20


class Broken(Exception):
    """A promise the agent did not keep (not a harness failure)."""


class Disk:
    """A loop-mounted ext4 image of `size_mib` under `base`."""

    def __init__(self, base, size_mib):
        self.image = os.path.join(base, "disk.img")
        self.mnt = os.path.join(base, "disk")
        os.makedirs(self.mnt)
        with open(self.image, "wb") as f:
            f.truncate(size_mib * MIB)
        run(["mkfs.ext4", "-q", "-F", self.image])
        self.mount()

    def mount(self):
        run(["mount", "-o", "loop,errors=remount-ro", self.image, self.mnt])
        self.dev = os.path.basename(
            subprocess.check_output(["findmnt", "-no", "SOURCE", self.mnt], text=True).strip())

    def umount(self):
        subprocess.run(["umount", self.mnt], check=False)

    def free(self):
        st = os.statvfs(self.mnt)
        return st.f_bavail * st.f_frsize


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise HarnessError(f"{' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()}")
    return r.stdout


class Load:
    """Pipelining netcat clients that keep going through refusals and reconnect after the
    agent dies. Each connection is a ledger key; its acknowledged lines are a mask, since a
    FAILED answer can sit between two OKs."""
    IN_FLIGHT = 8

    def __init__(self, port, clients=2, pad=0):
        self.port = port
        # Padding fills segments sooner (segment_deleted needs several of them).
        self.pad = b"p" * pad
        self.ledger = Ledger()
        self.oks = 0
        self.refused = 0
        self.last_refusal = ""
        self.stop = threading.Event()
        self.conn_no = 0
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._client, daemon=True) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _client(self):
        while not self.stop.is_set():
            with self.lock:
                key = self.conn_no
                self.conn_no += 1
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=30)
            except OSError:
                time.sleep(0.05)
                continue
            mask = bytearray()
            sent = answered = 0
            r = s.makefile("rb")
            try:
                while not self.stop.is_set():
                    batch = []
                    while sent - answered < self.IN_FLIGHT:
                        batch.append(b"f%d-%d-%s\n" % (key, sent, self.pad))
                        sent += 1
                        mask.append(0)
                    s.sendall(b"".join(batch))
                    answer = r.readline()
                    if not answer:
                        break
                    if answer == b"OK\n":
                        mask[answered] = 1
                        self.oks += 1
                    else:
                        self.refused += 1
                        self.last_refusal = answer.decode("utf-8", "replace").strip()
                        time.sleep(0.01)
                    answered += 1
            except OSError:
                pass
            finally:
                s.close()
                with self.lock:
                    self.ledger.acked[key] = mask

    def finish(self):
        self.stop.set()
        for t in self.threads:
            t.join(60)

    @staticmethod
    def parse(line):
        if not line.startswith(b"f"):
            return None
        try:
            k, i, _pad = line[1:].split(b"-")
            return int(k), int(i)
        except ValueError:
            return None


def conf_text(work, disk, port, extra=""):
    cp, data = os.path.join(disk.mnt, "checkpoint"), os.path.join(disk.mnt, "data")
    return (f"a1.sources = r1\n"
            f"a1.channels = c1\n"
            f"a1.sinks = k1\n"
            f"a1.sources.r1.type = netcat\n"
            f"a1.sources.r1.bind = 127.0.0.1\n"
            f"a1.sources.r1.port = {port}\n"
            f"a1.sources.r1.channels = c1\n"
            f"a1.channels.c1.type = file\n"
            f"a1.channels.c1.checkpointDir = {cp}\n"
            f"a1.channels.c1.dataDirs = {data}\n"
            f"a1.channels.c1.checkpointInterval = 1000\n"
            f"a1.channels.c1.maxFileSize = 2097152\n"
            f"a1.channels.c1.minimumRequiredSpace = 4194304\n"
            # The std backend makes its syncs and renames through libc, where the shim is.
            f"a1.channels.c1.io = std\n"
            f"a1.sinks.k1.type = file_roll\n"
            f"a1.sinks.k1.channel = c1\n"
            f"a1.sinks.k1.sink.directory = {work}/out\n"
            f"a1.sinks.k1.sink.rollInterval = 0\n" + extra)


class Scenario:
    def __init__(self, name, base, args, size_mib=64, extra=""):
        self.name = name
        self.args = args
        self.work = os.path.join(base, name)
        os.makedirs(os.path.join(self.work, "out"))
        self.disk = Disk(self.work, size_mib)
        self.port = peerlib.free_port()
        self.conf = os.path.join(self.work, "agent.properties")
        self.write_conf(extra)
        self.faults = os.path.join(self.work, "faults")
        os.makedirs(self.faults)
        self.env = {"LD_PRELOAD": args.shim, "FLUMEN_FAULTS_DIR": self.faults}
        self.runs = 0
        self.live = []
        self.logs = []
        self.facts = {}

    def write_conf(self, extra="", sink=True):
        text = conf_text(self.work, self.disk, self.port, extra)
        if not sink:
            text = text.replace("a1.sinks = k1\n", "").replace("a1.sinks.k1.", "# a1.sinks.k1.")
        with open(self.conf, "w") as f:
            f.write(text)

    def start(self):
        self.runs += 1
        a = Agent(self.args.bin, self.conf, os.path.join(self.work, f"agent-{self.runs}.log"),
                  peerlib.free_port(), self.env)
        self.live.append(a)
        try:
            a.wait_ready()
        except HarnessError:
            a.kill9()
            raise
        return a

    def wait(self, what, cond, agent=None, deadline=DEADLINE):
        try:
            wait_for(what, cond, deadline)
        except HarnessError as e:
            tail = agent.read_log()[-3000:] if agent else ""
            raise Broken(f"{self.name}: {e}\n{tail}")

    def drain_and_audit(self, load):
        """Start (if needed), drain, stop cleanly, audit."""
        agent = self.start()
        self.wait("the channel to drain", lambda: channel_size(agent) == 0, agent)
        code = agent.terminate()
        text = agent.read_log()
        self.logs.append(text)
        if code != 0:
            raise Broken(f"{self.name}: the draining agent exited {code}:\n{text[-3000:]}")
        result = load.ledger.audit(output_lines(os.path.join(self.work, "out")), Load.parse)
        result["panics"] = sum(len(panics(t)) for t in self.logs)
        result.update(self.facts)
        return result

    def cleanup(self):
        for a in self.live:
            if a.proc.poll() is None:
                a.kill9()
        self.disk.umount()


def disk_full(sc):
    agent = sc.start()
    load = Load(sc.port)
    sc.wait("2,000 acknowledged lines", lambda: load.oks >= 2000, agent)
    # Leave 1 MiB: below minimumRequiredSpace (4 MiB), above nothing.
    filler = os.path.join(sc.disk.mnt, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        os.posix_fallocate(fd, 0, max(sc.disk.free() - MIB, MIB))
    finally:
        os.close(fd)
    sc.facts["free_bytes_when_full"] = sc.disk.free()
    # The netcat source holds its clients' lines while the channel refuses them (it retries
    # with backoff and drops nothing), so the refusal is in the log, not in FAILED answers.
    sc.wait("puts to be refused on the full disk",
            lambda: "below minimumRequiredSpace" in agent.read_log(), agent)
    oks_refused = load.oks
    sc.facts["refusal"] = next(line for line in agent.read_log().splitlines()
                               if "below minimumRequiredSpace" in line)[-400:]
    # Takes drain while the disk stays full.
    sc.wait("takes to drain the channel while the disk is full",
            lambda: channel_size(agent) == 0, agent)
    sc.facts["drained_while_full"] = True
    sc.facts["acknowledged_between_refusal_and_drain"] = load.oks - oks_refused
    oks_full = load.oks
    os.unlink(filler)
    sc.wait("puts to be accepted again once space returned", lambda: load.oks > oks_full + 1000,
            agent)
    sc.facts["accepted_after_space_returned"] = load.oks - oks_full
    sc.facts["refused"] = load.refused
    load.finish()
    if agent.proc.poll() is not None:
        raise Broken(f"disk_full: the agent died:\n{agent.read_log()[-3000:]}")
    code = agent.terminate()
    sc.logs.append(agent.read_log())
    if code != 0:
        raise Broken(f"disk_full: the agent exited {code} after the disk filled")
    return sc.drain_and_audit(load)


def read_only(sc):
    agent = sc.start()
    load = Load(sc.port)
    sc.wait("2,000 acknowledged lines", lambda: load.oks >= 2000, agent)
    with open(f"/sys/fs/ext4/{sc.disk.dev}/trigger_fs_error", "w") as f:
        f.write("1")
    oks_at_error = load.oks
    sc.wait("commits to fail on the read-only filesystem",
            lambda: load.refused > 10 or agent.proc.poll() is not None, agent)
    sc.facts["refusal"] = load.last_refusal[:300]
    # A few commits can have been in flight when the filesystem turned read-only: a poisoned
    # channel acknowledges nothing after its first failure, so the count stops moving.
    settled = load.oks
    sc.wait("the refusals to continue", lambda: load.refused > 50 or agent.proc.poll() is not None, agent)
    sc.facts["acknowledged_after_the_error"] = load.oks - oks_at_error
    if load.oks != settled:
        raise Broken(f"read_only: {load.oks - settled} lines acknowledged after the channel "
                     f"refused commits")
    text = agent.read_log()
    sc.facts["poison_logged"] = "is poisoned" in text
    agent.kill9()
    sc.logs.append(agent.read_log())
    load.finish()
    sc.disk.umount()
    r = subprocess.run(["e2fsck", "-fy", sc.disk.image], capture_output=True, text=True)
    sc.facts["fsck_exit"] = r.returncode
    sc.disk.mount()
    return sc.drain_and_audit(load)


def segment_deleted(sc):
    sc.write_conf(sink=False)
    agent = sc.start()
    load = Load(sc.port, pad=400)
    data = os.path.join(sc.disk.mnt, "data")

    def segments():
        return sorted(n for n in os.listdir(data) if n.startswith("seg-"))

    sc.wait("four segments of acknowledged events", lambda: len(segments()) >= 4, agent,
            deadline=180)
    load.finish()
    victim = os.path.join(data, segments()[1])
    keep = os.path.join(sc.work, "kept-" + os.path.basename(victim))
    shutil.copy2(victim, keep)
    os.unlink(victim)
    sc.facts["deleted"] = os.path.basename(victim)
    code = agent.terminate()
    sc.logs.append(agent.read_log())
    if code != 0:
        raise Broken(f"segment_deleted: the agent exited {code} on SIGTERM after the deletion")
    sc.write_conf(sink=True)
    # The restart must refuse to open, naming the missing segment.
    sc.runs += 1
    a = Agent(sc.args.bin, sc.conf, os.path.join(sc.work, f"agent-{sc.runs}.log"),
              peerlib.free_port(), sc.env)
    sc.live.append(a)
    try:
        a.proc.wait(DEADLINE)
    except subprocess.TimeoutExpired:
        a.kill9()
        raise Broken("segment_deleted: the agent opened a channel with a segment missing:\n"
                     + a.read_log()[-3000:])
    text = a.read_log()
    sc.logs.append(text)
    sc.facts["restart_exit"] = a.proc.returncode
    sc.facts["restart_error"] = next((line for line in text.splitlines()
                                      if "missing from every data dir" in line), "")[:600]
    if os.path.basename(victim) not in sc.facts["restart_error"]:
        raise Broken(f"segment_deleted: the refusal does not name {victim}:\n{text[-3000:]}")
    shutil.copy2(keep, victim)
    return sc.drain_and_audit(load)


def arm(sc, what):
    open(os.path.join(sc.faults, what), "w").close()


def disarm(sc, what):
    os.unlink(os.path.join(sc.faults, what))


def checkpoint_rename_fails(sc):
    agent = sc.start()
    load = Load(sc.port)
    sc.wait("1,000 acknowledged lines", lambda: load.oks >= 1000, agent)
    arm(sc, "rename")
    oks = load.oks
    sc.wait("a failed checkpoint in the log",
            lambda: "checkpoint failed" in agent.read_log(), agent)
    sc.wait("20,000 more lines acknowledged while checkpoints fail",
            lambda: load.oks >= oks + 20000, agent)
    sc.facts["acknowledged_while_checkpoints_fail"] = load.oks - oks
    sc.facts["checkpoint_error"] = next((line for line in agent.read_log().splitlines()
                                         if "checkpoint failed" in line), "")[-400:]
    agent.kill9()
    sc.logs.append(agent.read_log())
    load.finish()
    disarm(sc, "rename")
    return sc.drain_and_audit(load)


def fdatasync_eio(sc):
    agent = sc.start()
    load = Load(sc.port)
    sc.wait("2,000 acknowledged lines", lambda: load.oks >= 2000, agent)
    arm(sc, "fdatasync")
    sc.wait("commits to fail after fdatasync's EIO", lambda: load.refused > 10, agent)
    settled = load.oks
    sc.wait("the refusals to continue", lambda: load.refused > 50, agent)
    sc.facts["refusal"] = load.last_refusal[:300]
    if load.oks != settled:
        raise Broken(f"fdatasync_eio: {load.oks - settled} lines acknowledged after the channel "
                     f"refused commits")
    agent.kill9()
    sc.logs.append(agent.read_log())
    load.finish()
    disarm(sc, "fdatasync")
    return sc.drain_and_audit(load)


SCENARIOS = {"disk_full": disk_full, "read_only": read_only,
             "segment_deleted": segment_deleted, "checkpoint_rename_fails": checkpoint_rename_fails,
             "fdatasync_eio": fdatasync_eio}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenario", default=",".join(SCENARIOS))
    ap.add_argument("--bin", default=None, help="the flumen binary (default: release build)")
    ap.add_argument("--keep", default=None, help="work in this directory and keep it")
    args = ap.parse_args()
    args.bin = args.bin or peerlib.flumen_bin()
    names = peerlib.choose(ap, args.scenario, list(SCENARIOS), "scenario")
    if os.geteuid() != 0:
        ap.error("needs root: it mounts loop filesystems")
    results, status = {}, 0
    with tempfile.TemporaryDirectory(prefix="flumen-faults-") as tmp:
        base = args.keep or tmp
        os.makedirs(base, exist_ok=True)
        args.shim = os.path.join(base, "shim.so")
        run(["cc", "-shared", "-fPIC", "-O2", "-o", args.shim,
             os.path.join(os.path.dirname(os.path.abspath(__file__)), "faults", "shim.c"), "-ldl"])
        for n in names:
            started = time.monotonic()
            sc = None
            try:
                sc = Scenario(n, base, args)
                r = SCENARIOS[n](sc)
                r["seconds"] = round(time.monotonic() - started, 1)
                results[n] = r
                bad = r["lost"] or r["garbled"] or r["panics"] or r["self_check_caught"] is False
                status = max(status, 1 if bad else 0)
                peerlib.log(f"{n}: {r['acknowledged']} acknowledged, {r['lost']} lost, "
                            f"{r['duplicates']} duplicates, {r['panics']} panics")
            except Broken as e:
                peerlib.log(f"{n}: BROKEN: {e}")
                results[n] = {"broken": str(e)[:3000]}
                status = max(status, 1)
            except HarnessError as e:
                peerlib.log(f"{n}: harness failure: {e}")
                results[n] = {"error": str(e)[:3000]}
                status = max(status, 2)
            finally:
                if sc:
                    sc.cleanup()
    lost = sum(r.get("lost", 0) for r in results.values())
    print(json.dumps({"campaign": "faults", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ",
                                                                  time.gmtime()),
                      "lost": lost, "ok": status == 0, "scenarios": results}))
    sys.exit(status)


if __name__ == "__main__":
    main()
