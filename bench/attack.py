#!/usr/bin/env python3
"""The collector's memory under attack, for bench/attack (which starts the
PostgreSQL); also the clients and probes bench/soak.py uses. Stdlib only.

Each attack gets a fresh collector, so its idle RSS (base) and peak (VmHWM)
are its own:

  a  one plain connection pipelining 64 KiB POSTs of valid reports as fast as
     it can, never reading an answer (reconnecting when cut off);
  b  --max-connections connections doing the same;
  c  --max-connections connections each sending a body of --max-body-bytes
     minus one, 32 KiB a second, so each holds what it sent;
  d  b over HTTPS (a self-signed certificate made by openssl).

Before them, per_connection is measured: --max-connections connections that
have each had one report answered (the handler's stack touched) and then send
a head of 16 KiB less a byte (the input buffer full), over plain HTTP and
over HTTPS: (RSS - base) / connections. After them, k is what the peak leaves
for bodies, in multiples of --body-memory:
(peak - base - connections x per_connection) / body_memory.

During each attack a normal client asks GET /healthz on a new connection
every 200 ms; every probe must be answered within 5 s (at the connection cap
the answer is the cap's 503). Exits non-zero when a peak passes the formula
with k = 4 (measured: 2.7 to 4.0), passes --limit-mib, or a probe goes unanswered.
Only 127.0.0.1 is used, and every loop ends by its deadline.
"""

import argparse
import errno
import os
import selectors
import socket
import ssl
import subprocess
import sys
import threading
import time

KIB, MIB = 1024, 1024 * 1024
HOST = "127.0.0.1"
CLUSTER = "612e0f99-1912-4647-831d-ba4c3d918b66"
NODE = (
    '{"status": {"capacity": {"cpu": "4", "memory": "2020080Ki", "pods": "110"},'
    ' "nodeInfo": {"osImage": "CoreOS 766.3.0", "kernelVersion": "4.1.7-coreos",'
    ' "kubeletVersion": "v1.0.3", "containerRuntimeVersion": "docker://1.7.1"}}}'
)
ID_WIDTH = 40


# --- the collector process -------------------------------------------------


def status_kib(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


def free_port():
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


class Collector:
    """A release collector on a free loopback port, logging at warn."""

    def __init__(self, binary, db_url, flags, log_path, tls=None):
        self.port = free_port()
        self.addr = (HOST, self.port)
        self.tls = tls
        args = [binary, "--listen", f"{HOST}:{self.port}", "--db-url", db_url, "--log-level", "warn"]
        args += flags
        if tls:
            args += ["--tls-cert", tls.cert, "--tls-key", tls.key]
        self.log = open(log_path, "ab")
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        self.pid = self.proc.pid
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"collector exited at start; see {log_path}")
            status, _ = probe(self.addr, "/readyz", tls, timeout=2)
            if status == 200:
                return
            time.sleep(0.1)
        raise SystemExit(f"collector not ready in 30 s; see {log_path}")

    def rss_kib(self):
        return status_kib(self.pid, "VmRSS")

    def hwm_kib(self):
        return status_kib(self.pid, "VmHWM")

    def threads(self):
        return status_kib(self.pid, "Threads")

    def fds(self):
        return fd_count(self.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


class Tls:
    """A self-signed certificate for 127.0.0.1 and localhost, by openssl."""

    def __init__(self, work):
        self.cert, self.key = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        subprocess.run(
            ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", self.key, "-out", self.cert, "-days", "2", "-subj", "/CN=localhost",
             "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.context = ssl.create_default_context(cafile=self.cert)

    def wrap(self, sock):
        return self.context.wrap_socket(sock, server_hostname="localhost", do_handshake_on_connect=False)


# --- requests ---------------------------------------------------------------


def report_body(report_id, size=0):
    """A valid report (current format, nodes of the seed example), padded with
    JSON whitespace to `size` bytes when that is larger."""
    head = '{"metadata": {"timestamp": "1437174715", "reportID": "%s"}, "payload": {"clusterID": "%s", "nodes": [' % (
        report_id, CLUSTER)
    nodes = [NODE]
    while len(head) + len(", ".join(nodes)) + len(NODE) + 2 + 5 < size:
        nodes.append(NODE)
    text = head + ", ".join(nodes) + "]"
    text += " " * max(0, size - len(text) - 2) + "}}"
    return text.encode()


def post(body, path="/api/v1/stats", extra=""):
    return (f"POST {path} HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n{extra}\r\n").encode() + body


class Reports:
    """Requests of `size` bytes of body, each with its own reportID
    (`prefix` and a counter, fixed width so every body has one length)."""

    def __init__(self, prefix, size):
        self.prefix, self.n = prefix, 0
        marker = "#" * ID_WIDTH
        whole = post(report_body(marker, size))
        self.before, self.after = whole.split(marker.encode())
        self.lock = threading.Lock()

    def next(self):
        with self.lock:
            self.n += 1
            n = self.n
        rid = f"{self.prefix}-{n}".rjust(ID_WIDTH, "0")
        return rid, self.before + rid.encode() + self.after


def read_answer(sock, deadline):
    """Status of the first answer on `sock`; 0 if the server closed the
    connection without one, None if none came by `deadline`."""
    data = b""
    while b"\r\n" not in data:
        left = deadline - time.monotonic()
        if left <= 0:
            return None
        sock.settimeout(left)
        try:
            chunk = sock.recv(4096)
        except socket.timeout:
            return None
        except (ConnectionError, ssl.SSLError):
            return 0
        if not chunk:
            return 0
        data += chunk
    try:
        return int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def probe(addr, path, tls=None, timeout=5.0):
    """A normal client: a new connection, one GET; (status, seconds): 0 when
    closed without an answer, None when none came within `timeout`."""
    started = time.monotonic()
    deadline = started + timeout
    try:
        with socket.create_connection(addr, timeout=timeout) as raw:
            sock = raw
            if tls:
                sock = tls.context.wrap_socket(raw, server_hostname="localhost")
            sock.sendall(f"GET {path} HTTP/1.1\r\nHost: collector\r\nConnection: close\r\n\r\n".encode())
            status = read_answer(sock, deadline)
    except socket.timeout:
        status = None
    except (OSError, ssl.SSLError):
        # Refused or closed before an answer (an HTTPS connection past the cap).
        status = 0
    return status, time.monotonic() - started


class Prober(threading.Thread):
    """GET `path` on a new connection every `every` seconds until stopped."""

    def __init__(self, addr, tls=None, path="/healthz", every=0.2):
        super().__init__(daemon=True)
        self.addr, self.tls, self.path, self.every = addr, tls, path, every
        self.results = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            self.results.append(probe(self.addr, self.path, self.tls))
            self.halt.wait(self.every)

    def stop(self):
        self.halt.set()
        self.join(10)

    def summary(self):
        ok = [s for s, _ in self.results if s is not None]
        lat = sorted(t for s, t in self.results if s is not None)
        counts = {}
        for s in ok:
            counts[s] = counts.get(s, 0) + 1
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
        return {
            "probes": len(self.results), "unanswered": len(self.results) - len(ok), "statuses": counts,
            "p50_ms": pick(0.5), "p99_ms": pick(0.99), "max_ms": lat[-1] * 1000 if lat else float("nan"),
        }


class Sampler(threading.Thread):
    """VmRSS of `pid` every `every` seconds: (monotonic time, KiB)."""

    def __init__(self, pid, every=0.1):
        super().__init__(daemon=True)
        self.pid, self.every = pid, every
        self.samples = []
        self.halt = threading.Event()

    def run(self):
        while not self.halt.is_set():
            try:
                self.samples.append((time.monotonic(), status_kib(self.pid, "VmRSS")))
            except OSError:
                return
            self.halt.wait(self.every)

    def stop(self):
        self.halt.set()
        self.join(5)


# --- attackers --------------------------------------------------------------

GONE = (errno.ECONNRESET, errno.EPIPE, errno.ECONNREFUSED, errno.ECONNABORTED, errno.ETIMEDOUT)


class Conn:
    __slots__ = ("sock", "state", "out", "sent", "next_at", "registered")

    def __init__(self, sock, state):
        self.sock, self.state, self.out, self.sent = sock, state, None, 0
        self.next_at, self.registered = 0.0, True


class Swarm(threading.Thread):
    """`n` connections to `addr`, driven by one thread with epoll until
    `deadline` (monotonic) or `stop()`. A connection cut off by the server is
    opened again after `backoff` seconds; at most `burst` are opened per
    tick, so that the listen backlog is not overrun.

    Subclasses say what a connection does: `begin(c)` when it is open (and
    its TLS handshake done), `writable(c)`, `tick(c, now)` every 50 ms, and
    `answered(c, data)` when the server sends something."""

    reads = True

    def __init__(self, addr, n, deadline, tls=None, backoff=0.05, burst=64):
        super().__init__(daemon=True)
        self.addr, self.n, self.deadline, self.tls = addr, n, deadline, tls
        self.backoff, self.burst = backoff, burst
        self.sel = selectors.DefaultSelector()
        self.conns = set()
        self.pending_opens = [0.0] * n  # when each missing connection may be opened
        self.halt = threading.Event()
        self.stats = {"opened": 0, "cut": 0, "requests": 0, "bytes": 0, "refused_connect": 0}
        self.statuses = {}
        self.max_open = 0

    # What a connection does; overridden.
    def begin(self, c):
        pass

    def writable(self, c):
        pass

    def tick(self, c, now):
        pass

    def answered(self, c, data):
        try:
            status = int(data.split(b" ", 2)[1])
            self.statuses[status] = self.statuses.get(status, 0) + 1
        except (IndexError, ValueError):
            pass

    def want(self, c, write):
        """What to wait for: writing (when `write`) and, unless the swarm
        never reads, reading. Waiting for nothing unregisters the socket."""
        events = selectors.EVENT_READ if self.reads else 0
        if write:
            events |= selectors.EVENT_WRITE
        if events == 0:
            if c.registered:
                self.sel.unregister(c.sock)
                c.registered = False
        elif c.registered:
            self.sel.modify(c.sock, events, c)
        else:
            self.sel.register(c.sock, events, c)
            c.registered = True

    def configure(self, sock):
        """Socket options before connecting; overridden."""

    def open_one(self):
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.configure(sock)
        sock.setblocking(False)
        err = sock.connect_ex(self.addr)
        if err not in (0, errno.EINPROGRESS):
            sock.close()
            self.stats["refused_connect"] += 1
            self.pending_opens.append(time.monotonic() + self.backoff)
            return
        c = Conn(sock, "connecting")
        self.conns.add(c)
        self.sel.register(sock, selectors.EVENT_WRITE, c)

    def close(self, c, cut=True):
        if c not in self.conns:
            return
        self.conns.discard(c)
        try:
            self.sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        try:
            c.sock.close()
        except OSError:
            pass
        if cut:
            self.stats["cut"] += 1
            self.pending_opens.append(time.monotonic() + self.backoff)

    def connected(self, c):
        if c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0:
            self.stats["refused_connect"] += 1
            self.close(c)
            return
        self.stats["opened"] += 1
        if self.tls:
            self.sel.unregister(c.sock)
            c.sock = self.tls.wrap(c.sock)  # takes over the descriptor
            self.sel.register(c.sock, selectors.EVENT_WRITE, c)
            c.state = "handshake"
            self.handshake(c)
        else:
            c.state = "open"
            self.begin(c)

    def handshake(self, c):
        try:
            c.sock.do_handshake()
        except ssl.SSLWantReadError:
            self.sel.modify(c.sock, selectors.EVENT_READ, c)
            return
        except ssl.SSLWantWriteError:
            self.sel.modify(c.sock, selectors.EVENT_WRITE, c)
            return
        except (OSError, ssl.SSLError):
            self.close(c)
            return
        c.state = "open"
        self.begin(c)

    def send(self, c, data):
        """Sends what it can of `data` (TLS: one record's worth); the count,
        or None once the connection is gone."""
        try:
            n = c.sock.send(data[:16384] if self.tls else data)
        except (BlockingIOError, ssl.SSLWantWriteError, ssl.SSLWantReadError):
            return 0
        except (OSError, ssl.SSLError):
            self.close(c)
            return None
        self.stats["bytes"] += n
        return n

    def readable(self, c):
        try:
            data = c.sock.recv(65536)
        except (BlockingIOError, ssl.SSLWantReadError, ssl.SSLWantWriteError):
            return
        except (OSError, ssl.SSLError):
            self.close(c)
            return
        if not data:
            self.close(c)
            return
        self.answered(c, data)

    def stop(self):
        self.halt.set()
        self.join(30)

    def run(self):
        last_tick = 0.0
        try:
            while not self.halt.is_set() and time.monotonic() < self.deadline:
                now = time.monotonic()
                ready = [t for t in self.pending_opens if t <= now]
                self.pending_opens = [t for t in self.pending_opens if t > now]
                for _ in ready[: self.burst]:
                    self.open_one()
                self.pending_opens += ready[self.burst:]
                self.max_open = max(self.max_open, len(self.conns))
                for key, events in self.sel.select(timeout=0.05):
                    c = key.data
                    if c not in self.conns:
                        continue
                    if c.state == "connecting":
                        self.connected(c)
                    elif c.state == "handshake":
                        self.handshake(c)
                    else:
                        if events & selectors.EVENT_READ:
                            self.readable(c)
                        if c in self.conns and events & selectors.EVENT_WRITE:
                            self.writable(c)
                if now - last_tick >= 0.05:
                    last_tick = now
                    for c in list(self.conns):
                        if c.state == "open":
                            self.tick(c, now)
        finally:
            for c in list(self.conns):
                self.close(c, cut=False)
            self.sel.close()


class Pipeliner(Swarm):
    """Sends requests back to back and never reads an answer; at most `rate`
    requests a second per connection when given. A small `rcvbuf` makes the
    unread answers fill the socket sooner, so the server's writes block."""

    reads = False

    def __init__(self, addr, n, deadline, requests, rate=None, rcvbuf=None, **kw):
        super().__init__(addr, n, deadline, **kw)
        self.requests, self.rate, self.rcvbuf = requests, rate, rcvbuf

    def configure(self, sock):
        if self.rcvbuf:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.rcvbuf)

    def begin(self, c):
        self.want(c, True)

    def writable(self, c):
        if c.out is None or c.sent == len(c.out):
            if self.rate and time.monotonic() < c.next_at:
                self.want(c, False)
                return
            c.out, c.sent = memoryview(self.requests.next()[1]), 0
            self.stats["requests"] += 1
            if self.rate:
                # Catches up after each 50 ms tick; at most a second's debt.
                c.next_at = max(c.next_at, time.monotonic() - 1) + 1 / self.rate
        n = self.send(c, c.out[c.sent:])
        if n:
            c.sent += n

    def tick(self, c, now):
        if self.rate and now >= c.next_at:
            self.want(c, True)


class Trickler(Swarm):
    """Sends `first` at once, then `piece` every `every` seconds, for ever;
    reads what the server answers (and is cut off after it)."""

    def __init__(self, addr, n, deadline, first, piece, every, **kw):
        super().__init__(addr, n, deadline, **kw)
        self.first, self.piece, self.every = first, piece, every

    def begin(self, c):
        c.out, c.sent = memoryview(self.first() if callable(self.first) else self.first), 0
        self.stats["requests"] += 1
        self.want(c, True)

    def writable(self, c):
        if c.out is not None and c.sent < len(c.out):
            n = self.send(c, c.out[c.sent:])
            if n:
                c.sent += n
        if c in self.conns and (c.out is None or c.sent == len(c.out)):
            c.out = None
            c.next_at = time.monotonic() + self.every
            self.want(c, False)

    def tick(self, c, now):
        if c.out is None and self.piece and now >= c.next_at:
            c.out, c.sent = memoryview(self.piece), 0
            self.want(c, True)


class Dribbler(Trickler):
    """Sends `first` at once, then `stream` (repeated for ever) one byte every
    `every` seconds: a slowloris head, a trickled chunked body."""

    def __init__(self, addr, n, deadline, first, stream, every, **kw):
        super().__init__(addr, n, deadline, first, None, every, **kw)
        self.stream, self.pos = stream, {}

    def tick(self, c, now):
        if c.out is None and now >= c.next_at:
            i = self.pos.get(c, 0) % len(self.stream)
            self.pos[c] = i + 1
            c.out, c.sent = memoryview(self.stream[i:i + 1]), 0
            self.want(c, True)

    def close(self, c, cut=True):
        self.pos.pop(c, None)
        super().close(c, cut)


# --- the attacks ------------------------------------------------------------


def attack(args, name, tls, make_swarm, warm_up=1.0):
    """A fresh collector, `make_swarm(collector)` for args.seconds, a probe
    of /healthz throughout; what the collector held."""
    collector = Collector(args.collector, args.db_url, args.flags, args.log, tls)
    try:
        time.sleep(warm_up)
        base = collector.rss_kib()
        prober = Prober(collector.addr, tls)
        sampler = Sampler(collector.pid)
        swarm = make_swarm(collector)
        prober.start(), sampler.start(), swarm.start()
        swarm.join(args.seconds + 30)
        swarm.stop()
        prober.stop(), sampler.stop()
        peak = collector.hwm_kib()
        peak_at = max(sampler.samples, key=lambda s: s[1])[0] - sampler.samples[0][0] if sampler.samples else 0
        time.sleep(1)
        after = collector.rss_kib()
        result = {
            "name": name, "base": base, "peak": peak, "peak_at": peak_at, "after": after,
            "swarm": swarm.stats, "statuses": swarm.statuses,
            "max_open": swarm.max_open, "health": prober.summary(),
        }
        return result
    finally:
        collector.stop()


def per_connection(args, tls):
    """RSS per open connection: each has had a report answered, then sends a
    head of MAX_HEAD - 1 bytes and waits."""
    # A long read timeout, so the first connections still wait when the
    # last is opened; it changes no buffer.
    flags = [f for f in args.flags]
    flags[flags.index("--read-timeout") + 1] = "120"
    collector = Collector(args.collector, args.db_url, flags, args.log, tls)
    socks = []
    try:
        time.sleep(1)
        base = collector.rss_kib()
        filler = b"X-Fill: " + b"a" * 1000 + b"\r\n"
        head = b"GET /healthz HTTP/1.1\r\nHost: collector\r\n"
        while len(head) + len(filler) < 16 * KIB - 1:
            head += filler
        head += b"X-Last: " + b"b" * (16 * KIB - 1 - len(head) - 8)
        assert len(head) == 16 * KIB - 1
        reports = Reports("perconn", 0)
        n = args.max_connections - 8  # the probes' room
        for i in range(n):
            raw = socket.create_connection(collector.addr, timeout=10)
            sock = tls.context.wrap_socket(raw, server_hostname="localhost") if tls else raw
            sock.sendall(reports.next()[1])
            if read_answer(sock, time.monotonic() + 10) != 204:
                raise SystemExit("per_connection: a report was not stored")
            sock.sendall(head)
            socks.append(sock)
        time.sleep(2)
        held = collector.rss_kib()
        return {"base": base, "held": held, "connections": n, "per_kib": (held - base) / n,
                "threads": collector.threads()}
    finally:
        for s in socks:
            s.close()
        collector.stop()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--collector", required=True)
    p.add_argument("--db-url", required=True)
    p.add_argument("--work", required=True, help="a directory for logs and the certificate")
    p.add_argument("--max-connections", type=int, default=1024)
    p.add_argument("--body-memory", type=int, default=64 * MIB)
    p.add_argument("--max-body-bytes", type=int, default=8 * MIB)
    p.add_argument("--read-timeout", type=int, default=10)
    p.add_argument("--seconds", type=float, default=10)
    p.add_argument("--limit-mib", type=float, default=512)
    p.add_argument("--k", type=float, default=4, help="copies of --body-memory the formula allows")
    p.add_argument("--only", default="abcd", help="which attacks, e.g. ab")
    p.add_argument("--legacy", action="store_true",
                   help="a collector without the limit flags (before c1a9477): attack a only, no formula")
    args = p.parse_args()
    args.log = os.path.join(args.work, "collector.log")
    args.flags = [] if args.legacy else [
        "--max-connections", str(args.max_connections), "--body-memory", str(args.body_memory),
        "--max-body-bytes", str(args.max_body_bytes), "--read-timeout", str(args.read_timeout)]
    tls = None
    if "d" in args.only and not args.legacy:
        if subprocess.run(["sh", "-c", "command -v openssl"], stdout=subprocess.DEVNULL).returncode == 0:
            tls = Tls(args.work)
        else:
            print("attack d skipped: openssl not found (apt-get install openssl)")
    n = args.max_connections
    ok = True
    print(f"flags: --max-connections {n} --body-memory {args.body_memory // MIB} MiB "
          f"--max-body-bytes {args.max_body_bytes // MIB} MiB --read-timeout {args.read_timeout}"
          + (" (legacy: the collector's defaults)" if args.legacy else ""))

    per = {}
    if not args.legacy:
        for kind, t in (("plain", None), ("tls", tls)):
            if kind == "tls" and t is None:
                continue
            m = per_connection(args, t)
            per[kind] = m["per_kib"]
            print(f"per_connection {kind:5}: {m['per_kib']:.1f} KiB  ({m['connections']} connections, "
                  f"each answered once then 16 KiB-1 of head: RSS {m['base'] // KIB} -> "
                  f"{m['held'] / KIB:.1f} MiB, {m['threads']} threads)")

    body64 = 64 * KIB
    attacks = []
    if "a" in args.only:
        attacks.append(("a", "1 connection pipelining 64 KiB reports, never reading", None, 1,
                        lambda c, d: Pipeliner(c.addr, 1, d, Reports("attack-a", body64))))
    if "b" in args.only and not args.legacy:
        attacks.append(("b", f"{n} connections pipelining 64 KiB reports, never reading", None, n,
                        lambda c, d: Pipeliner(c.addr, n, d, Reports("attack-b", body64))))
    if "c" in args.only and not args.legacy:
        big = args.max_body_bytes - 1
        head = (f"POST /api/v1/stats HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n"
                f"Content-Length: {big}\r\n\r\n").encode() + b" " * (32 * KIB)
        attacks.append(("c", f"{n} connections each trickling a {big}-byte body, 32 KiB/s", None, n,
                        lambda c, d: Trickler(c.addr, n, d, head, b" " * (32 * KIB), 1.0)))
    if "d" in args.only and tls is not None:
        attacks.append(("d", f"b over HTTPS: {n} TLS connections pipelining", tls, n,
                        lambda c, d: Pipeliner(c.addr, n, d, Reports("attack-d", body64), tls=tls)))

    for key, what, t, conns, make in attacks:
        r = attack(args, key, t, lambda c: make(c, time.monotonic() + args.seconds))
        h = r["health"]
        pc = per.get("tls" if t else "plain", 0)
        peak_mib = r["peak"] / KIB
        line = (f"{key}: {what}\n"
                f"   RSS base {r['base'] / KIB:.1f} MiB, peak (VmHWM) {peak_mib:.1f} MiB at "
                f"{r['peak_at']:.1f} s, {r['after'] / KIB:.1f} MiB after\n"
                f"   attacker: {r['swarm']['requests']} requests started, {r['swarm']['bytes'] / MIB:.0f} MiB sent, "
                f"{r['swarm']['opened']} connections opened (at most {r['max_open']} at once), "
                f"{r['swarm']['cut']} cut off; answers read {r['statuses'] or '-'}\n"
                f"   /healthz: {h['probes']} probes, {h['unanswered']} unanswered, statuses {h['statuses']}, "
                f"p50 {h['p50_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms, max {h['max_ms']:.1f} ms")
        if not args.legacy:
            bound = r["base"] + n * pc + args.k * args.body_memory / KIB
            k = (r["peak"] - r["base"] - conns * pc) / (args.body_memory / KIB)
            line += (f"\n   formula: base + {n} x {pc:.1f} KiB + {args.k:g} x {args.body_memory // MIB} MiB = "
                     f"{bound / KIB:.1f} MiB; k measured {k:.2f}")
            if r["peak"] > bound:
                line += "   FAIL: over the formula"
                ok = False
        if peak_mib > args.limit_mib:
            line += f"   FAIL: over {args.limit_mib:g} MiB"
            ok = False
        if h["unanswered"]:
            line += "   FAIL: /healthz unanswered"
            ok = False
        print(line, flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
