#!/usr/bin/env python3
"""Abuse of every listener (docs/RELIABILITY.md, "Abuse of every listener").

One `flumen agent` with every listening source flumen has (netcat, avro, syslogtcp, http,
thrift; file channel -> null sink) and its metrics server. For each listener in turn, a
well-behaved client of that listener's protocol is measured alone (`--seconds`), then again
while hostile peers hit the same listener:

- 10,000 connections opened and held (beyond `max-connections` each is closed at once);
- 50 slowloris connections, each sending a byte of a valid-looking request every 100 ms;
- oversized input: a netcat line of 1 MiB, an Avro or Thrift frame declaring 2 GiB, an HTTP
  request declaring a 100 MiB body (and a 64 KiB header), a syslog message of 1 MiB;
- garbage: connection after connection sending 4 KiB of random bytes.

Reported per listener: the well-behaved client's rate alone and under abuse and their ratio
(the target is >= 0.5), how many of the held connections the agent kept, whether the peer of
one garbage connection and of the oversized input are named in the agent's log, and the
agent's resident memory at the end of the abuse; overall: the agent's peak RSS (VmHWM) and
panics (must be 0).

Well-behaved clients: netcat sends a line and waits for its OK; avro is Apache Flume's own
RpcClient (tests/avro AvroAckLoop, batches of 100, acknowledged batches counted); syslogtcp
sends RFC 3164 lines and counts what the source accepted (its metrics); http POSTs a
one-event JSON array on a keep-alive connection and waits for 200; thrift sends
appendBatch calls of 100 events in Thrift's compact protocol (framed, as Flume's client does)
and waits for each Status OK; the metrics server is scraped with GET /metrics.

    benches/abuse.py [--listener netcat,avro,...] [--seconds 5] [--held 10000] [--bin FLUMEN]
                     [--avro-classpath CP]

The last line is one JSON object; exit 1 if a listener's ratio is below `--min-ratio`
(default 0.5, 0 to only report), a panic, or an agent death; 2 on a harness failure.
"""

import argparse
import http.client
import json
import multiprocessing as mp
import os
import random
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import peerlib  # noqa: E402
from kill9 import Agent, HarnessError, panics  # noqa: E402

LISTENERS = ["netcat", "avro", "syslogtcp", "http", "thrift", "metrics"]


def conf(d, ports):
    return (f"a1.sources = netcat avro syslogtcp http thrift\n"
            f"a1.channels = c1\n"
            f"a1.sinks = k1\n"
            f"a1.sources.netcat.type = netcat\n"
            f"a1.sources.netcat.bind = 127.0.0.1\n"
            f"a1.sources.netcat.port = {ports['netcat']}\n"
            f"a1.sources.avro.type = avro\n"
            f"a1.sources.avro.bind = 127.0.0.1\n"
            f"a1.sources.avro.port = {ports['avro']}\n"
            f"a1.sources.syslogtcp.type = syslogtcp\n"
            f"a1.sources.syslogtcp.host = 127.0.0.1\n"
            f"a1.sources.syslogtcp.port = {ports['syslogtcp']}\n"
            f"a1.sources.http.type = http\n"
            f"a1.sources.http.bind = 127.0.0.1\n"
            f"a1.sources.http.port = {ports['http']}\n"
            f"a1.sources.thrift.type = thrift\n"
            f"a1.sources.thrift.bind = 127.0.0.1\n"
            f"a1.sources.thrift.port = {ports['thrift']}\n"
            + "".join(f"a1.sources.{s}.channels = c1\n"
                      for s in ["netcat", "avro", "syslogtcp", "http", "thrift"]) +
            f"a1.channels.c1.type = file\n"
            f"a1.channels.c1.checkpointDir = {d}/checkpoint\n"
            f"a1.channels.c1.dataDirs = {d}/data\n"
            f"a1.channels.c1.minimumRequiredSpace = 1048576\n"
            f"a1.sinks.k1.type = null\n"
            f"a1.sinks.k1.channel = c1\n")


# ------------------------------------------------------------------------------------------
# Well-behaved clients: each runs until `stop` is set and counts what was acknowledged.
# ------------------------------------------------------------------------------------------

class Counter:
    def __init__(self):
        self.n = 0
        self.failed = 0
        self.error = None


def netcat_client(port, stop, c):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    r = s.makefile("rb")
    i = 0
    while not stop.is_set():
        s.sendall(b"good-%d\n" % i)
        if r.readline() != b"OK\n":
            c.error = "netcat: an answer other than OK"
            return
        i += 1
        c.n += 1
    s.close()


def syslog_client(port, stop, c, agent):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    base = source_accepted(agent, "syslogtcp")
    sent = 0
    while not stop.is_set():
        s.sendall(b"".join(b"<13>Dec  7 12:00:00 host app: good %d\n" % (sent + i)
                           for i in range(100)))
        sent += 100
        # Count what the source took in, not what was written into the socket buffer: a
        # stalled source shows as a stalled count.
        while not stop.is_set() and sent - (source_accepted(agent, "syslogtcp") - base) > 2000:
            time.sleep(0.005)
        c.n = source_accepted(agent, "syslogtcp") - base
    s.close()


def http_client(port, stop, c, method="POST", path="/"):
    """A keep-alive HTTP client: POSTs a one-event JSON array (the http source), or GETs
    `path` (the metrics server, which closes after each answer: http.client reconnects)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    body = json.dumps([{"headers": {"k": "v"}, "body": "good"}]) if method == "POST" else None
    headers = {"Content-Type": "application/json"} if body else {}
    while not stop.is_set():
        try:
            conn.request(method, path, body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
        except (OSError, http.client.HTTPException):
            # A connection the server closed under the flood (the metrics server closes its
            # oldest when too many are open): counted, and the client goes on, as a scraper
            # would at its next interval.
            c.failed += 1
            conn.close()
            continue
        if resp.status != 200:
            c.error = f"{method} {path} on port {port}: status {resp.status}"
            return
        c.n += 1
    conn.close()


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def thrift_append_batch(seq, n):
    """appendBatch(list<ThriftFlumeEvent>) in Thrift's compact protocol, framed."""
    name = b"appendBatch"
    msg = bytearray([0x82, 0x21]) + varint(seq) + varint(len(name)) + name
    msg += b"\x19" + (bytes([0xF0 | 0x0C]) + varint(n) if n >= 15 else bytes([(n << 4) | 0x0C]))
    for i in range(n):
        body = b"good-%d" % i
        # field 1: map<string,string> with one entry; field 2: binary body; stop.
        msg += b"\x1b" + varint(1) + b"\x88" + varint(1) + b"k" + varint(1) + b"v"
        msg += b"\x18" + varint(len(body)) + body + b"\x00"
    msg += b"\x00"
    return struct.pack(">I", len(msg)) + bytes(msg)


def read_exact(s, n):
    buf = bytearray()
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("connection closed")
        buf += chunk
    return bytes(buf)


def thrift_client(port, stop, c):
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    seq = 0
    while not stop.is_set():
        seq += 1
        s.sendall(thrift_append_batch(seq, 100))
        (length,) = struct.unpack(">I", read_exact(s, 4))
        frame = read_exact(s, length)
        # A REPLY whose result is field 0 (i32) = Status.OK (0), then the struct's stop.
        if frame[1] & 0xE0 != 0x40 or not frame.endswith(b"\x05\x00\x00\x00"):
            c.error = f"thrift: not an OK reply: {frame[:64].hex()}"
            return
        c.n += 100
    s.close()


def avro_client(cp, d, port, stop, c):
    """Flume's RpcClient (tests/avro AvroAckLoop) in a JVM of its own; acknowledged batches
    counted until `stop`, then the JVM is killed (the loop only ends when a batch fails)."""
    proc = subprocess.Popen(["java", "-Xmx256m", "-cp", cp, "flumen.test.AvroAckLoop"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=open(os.path.join(d, "java.log"), "ab"))
    try:
        proc.stdin.write(b"RUN 127.0.0.1 %d 100\n" % port)
        proc.stdin.flush()
        while not stop.is_set():
            line = proc.stdout.readline()
            if not line or line.startswith(b"STOP"):
                c.error = f"avro: {line.decode().strip() or 'the client exited'}"
                return
            lo, hi = map(int, line.split()[1:3])
            c.n += hi - lo
    finally:
        proc.kill()
        proc.wait()


def source_accepted(agent, name):
    m = agent.metrics() or {}
    return int(m.get(f"SOURCE.{name}", {}).get("EventAcceptedCount", "0"))


def window(c, t, seconds):
    """Acknowledged events per second over `seconds` of the running client."""
    n0, t0 = c.n, time.monotonic()
    while time.monotonic() - t0 < seconds and t.is_alive():
        time.sleep(0.05)
    return (c.n - n0) / (time.monotonic() - t0)


def measure(target, seconds, abuse_start):
    """Runs the well-behaved client (connected before any hostile peer, as an established
    client is), measures it alone, starts the abuse, measures it again. Returns (alone,
    abused, what abuse_start returned)."""
    stop, c = threading.Event(), Counter()
    t = threading.Thread(target=target, args=(stop, c), daemon=True)
    t.start()
    # The clock starts at the first acknowledgement (a JVM client needs a second to start).
    first_deadline = time.monotonic() + 60
    while c.n == 0 and t.is_alive() and time.monotonic() < first_deadline:
        time.sleep(0.05)
    abuse = None
    try:
        alone = window(c, t, seconds)
        abuse = abuse_start()
        abused = window(c, t, seconds)
    finally:
        stop.set()
        t.join(60)
    if c.error:
        if abuse:
            abuse[1].close()
        raise HarnessError(c.error)
    if abuse is None:
        raise HarnessError("the abuse did not start")
    return alone, abused, abuse, c.failed


# ------------------------------------------------------------------------------------------
# Hostile peers
# ------------------------------------------------------------------------------------------

SLOW_BYTES = {
    "netcat": b"slow line that never ends",
    "avro": b"\x00\x00\x00\x01\x00\x00\x00\x01\x00\x00\x00\x10",
    "syslogtcp": b"<13>Dec  7 12:00:00 host slow",
    "http": b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: ",
    "thrift": b"\x00\x00\x00\x40\x82\x21\x01",
    "metrics": b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ",
}


def oversized(kind, port):
    """Sends one oversized input; returns the client's address (what the log should name)."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    peer = "%s:%d" % s.getsockname()
    try:
        if kind == "netcat":
            s.sendall(b"x" * (1 << 20) + b"\n")
        elif kind == "syslogtcp":
            s.sendall(b"<13>Dec  7 12:00:00 host app: " + b"x" * (1 << 20) + b"\n")
        elif kind in ("avro", "thrift"):
            # A frame declaring 2 GiB (Avro: serial, count 1, then a buffer length; Thrift: a
            # 4-byte frame length), followed by a little data.
            head = (struct.pack(">III", 1, 1, 0x7FFFFFF0) if kind == "avro"
                    else struct.pack(">I", 0x7FFFFFF0))
            s.sendall(head + b"y" * 65536)
        elif kind == "http":
            s.sendall(b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                      b"Content-Length: 104857600\r\n\r\n[" + b" " * 65536)
        elif kind == "metrics":
            s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"z" * 65536 + b"\r\n\r\n")
        s.settimeout(5)
        try:
            s.recv(4096)
        except OSError:
            pass
    except OSError:
        pass
    finally:
        s.close()
    return peer


class Abuse:
    """Held connections, slowloris and garbage against one port, until stopped."""

    def __init__(self, kind, port, held_n):
        self.kind, self.port = kind, port
        self.stop = threading.Event()
        self.held = []
        self.garbage_peers = []
        self.errors = 0
        t0 = time.monotonic()
        for _ in range(held_n):
            try:
                self.held.append(socket.create_connection(("127.0.0.1", port), timeout=1))
            except OSError:
                self.errors += 1
        self.connect_seconds = time.monotonic() - t0
        self.slow = []
        for _ in range(50):
            try:
                self.slow.append(socket.create_connection(("127.0.0.1", port), timeout=5))
            except OSError:
                self.errors += 1
        self.threads = [threading.Thread(target=self._slowloris, daemon=True),
                        threading.Thread(target=self._garbage, daemon=True)]
        for t in self.threads:
            t.start()

    def _slowloris(self):
        i = 0
        data = SLOW_BYTES[self.kind]
        while not self.stop.is_set():
            b = data[i % len(data):i % len(data) + 1]
            for s in self.slow:
                try:
                    s.send(b)
                except OSError:
                    pass
            i += 1
            self.stop.wait(0.1)

    def _garbage(self):
        rng = random.Random(7)
        # 200 connections a second: a steady stream of junk, not a CPU race with the agent on
        # the same cores (which would measure the machine, not the listener).
        while not self.stop.wait(0.005):
            try:
                s = socket.create_connection(("127.0.0.1", self.port), timeout=5)
                self.garbage_peers.append("%s:%d" % s.getsockname())
                junk = bytes(rng.getrandbits(8) for _ in range(4096))
                if self.kind in ("netcat", "syslogtcp"):
                    # No line end: junk, not lines the source would take as events.
                    junk = junk.replace(b"\n", b"x")
                s.sendall(junk)
                s.settimeout(0.5)
                try:
                    s.recv(4096)
                except OSError:
                    pass
                s.close()
            except OSError:
                pass

    def still_open(self):
        """How many held connections the agent has not closed (a closed one reads EOF)."""
        n = 0
        for s in self.held:
            s.setblocking(False)
            try:
                if s.recv(1, socket.MSG_PEEK):
                    n += 1
            except BlockingIOError:
                n += 1
            except OSError:
                pass
        return n

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(30)
        for s in self.held + self.slow:
            s.close()


def abuse_process(kind, port, held_n, ready, stop, out):
    """The hostile peers in a process of their own, so that they do not share the
    well-behaved client's interpreter lock: reports its figures on `out` once stopped."""
    abuse = Abuse(kind, port, held_n)
    kept = abuse.still_open()
    ready.set()
    stop.wait()
    abuse.close()
    out.put({"kept": kept, "errors": abuse.errors, "connect_seconds": abuse.connect_seconds,
             "garbage_peers": abuse.garbage_peers[:50],
             "garbage_connections": len(abuse.garbage_peers)})


class AbuseProcess:
    def __init__(self, kind, port, held_n):
        self.ready, self.stop, self.out = mp.Event(), mp.Event(), mp.Queue()
        self.proc = mp.Process(target=abuse_process,
                               args=(kind, port, held_n, self.ready, self.stop, self.out))
        self.proc.start()
        if not self.ready.wait(300):
            self.proc.kill()
            raise HarnessError(f"{kind}: the hostile peers did not connect within 300 s")

    def close(self):
        self.stop.set()
        figures = self.out.get(timeout=120)
        self.proc.join(60)
        return figures


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--listener", default=",".join(LISTENERS))
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--held", type=int, default=10000)
    ap.add_argument("--min-ratio", type=float, default=0.5)
    ap.add_argument("--bin", default=None)
    ap.add_argument("--avro-classpath", default=None)
    args = ap.parse_args()
    args.bin = args.bin or peerlib.flumen_bin()
    kinds = peerlib.choose(ap, args.listener, LISTENERS, "listener")
    result = {"campaign": "abuse", "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "held_per_listener": args.held, "listeners": {}}
    status = 0
    with tempfile.TemporaryDirectory(prefix="flumen-abuse-") as d:
        ports = {k: peerlib.free_port() for k in LISTENERS if k != "metrics"}
        path = os.path.join(d, "agent.properties")
        with open(path, "w") as f:
            f.write(conf(d, ports))
        mport = peerlib.free_port()
        ports["metrics"] = mport
        agent = Agent(args.bin, path, os.path.join(d, "agent.log"), mport)
        try:
            agent.wait_ready()
            cp = None
            if "avro" in kinds:
                cp = args.avro_classpath or peerlib.maven_classpath(
                    os.path.join(peerlib.ROOT, "tests", "avro"))
            clients = {
                "netcat": lambda stop, c: netcat_client(ports["netcat"], stop, c),
                "avro": lambda stop, c: avro_client(cp, d, ports["avro"], stop, c),
                "syslogtcp": lambda stop, c: syslog_client(ports["syslogtcp"], stop, c, agent),
                "http": lambda stop, c: http_client(ports["http"], stop, c),
                "thrift": lambda stop, c: thrift_client(ports["thrift"], stop, c),
                "metrics": lambda stop, c: http_client(ports["metrics"], stop, c, "GET", "/metrics"),
            }
            fds_base = peerlib.fd_count(agent.proc.pid)
            for k in kinds:
                def start_abuse(k=k):
                    return oversized(k, ports[k]), AbuseProcess(k, ports[k], args.held)
                alone, loaded, (big_peer, abuse), failed = measure(clients[k], args.seconds,
                                                                   start_abuse)
                rss = peerlib.proc_status_kb(agent.proc.pid, "VmRSS")
                fig = abuse.close()
                # The hostile peers are gone: the agent must let go of their sockets.
                fds_end = time.monotonic() + 30
                while peerlib.fd_count(agent.proc.pid) > fds_base + 50 and time.monotonic() < fds_end:
                    time.sleep(0.1)
                fds_left = peerlib.fd_count(agent.proc.pid) - fds_base
                log_text = agent.read_log()
                garbage_named = any(p in log_text for p in fig["garbage_peers"])
                ratio = loaded / alone if alone else 0.0
                result["listeners"][k] = {
                    "alone_per_s": round(alone), "abused_per_s": round(loaded),
                    "ratio": round(ratio, 2), "client_requests_failed": failed,
                    "held_open": fig["kept"],
                    "held_refused_at_connect": fig["errors"],
                    "held_connect_seconds": round(fig["connect_seconds"], 1),
                    "garbage_connections": fig["garbage_connections"],
                    "garbage_peer_named": garbage_named,
                    "oversized_peer_named": big_peer in log_text,
                    "rss_mib_under_abuse": round(rss / 1024, 1),
                    "fds_left_30s_after": fds_left}
                peerlib.log(f"{k}: {result['listeners'][k]}")
                if ratio < args.min_ratio:
                    status = 1
                if agent.proc.poll() is not None:
                    raise HarnessError(f"the agent died during {k}'s abuse")
            result["peak_rss_mib"] = round(peerlib.proc_status_kb(agent.proc.pid, "VmHWM") / 1024, 1)
            code = agent.terminate()
            log_text = agent.read_log()
            result["exit_code"] = code
            result["panics"] = len(panics(log_text))
            if code != 0 or result["panics"]:
                status = 1
        except HarnessError as e:
            result["error"] = str(e)[:3000]
            status = 2
            if agent.proc.poll() is None:
                agent.kill9()
    result["ok"] = status == 0
    print(json.dumps(result))
    sys.exit(status)


if __name__ == "__main__":
    main()
