#!/usr/bin/env python3
"""A slow soak for bench/soak (which starts the PostgreSQL): legitimate
reports from a well-behaved client, mixed for the whole run with every
attack of bench/attack.py and the framing tricks, against one collector at
its default (the manifest's) limits. Stdlib only; only 127.0.0.1.

Attackers, each on its own thread, each reconnecting when cut off:
  pipeline   2 connections pipelining 64 KiB reports, 10 a second each, and
             1 pipelining GET /healthz, 1000 a second, never reading (a small
             receive buffer: the answers fill the sockets, the collector's
             writes block until its write timeout cuts the connection);
  chunked    32 connections trickling a chunked body, one byte every
             (--read-timeout - 1) seconds;
  slowloris  32 connections sending a head one byte every 2 s;
  idle       connections that send nothing, up to the cap (less 80: the others
             take 67, which leaves the one-shots and /healthz a few);
  http2      10 a second: an HTTP/2.0 request line, then hanging up;
  smuggle    5 a second: CL+TE, duplicate Content-Length, a listed one, each
             must get one 400 and nothing else;
  oversize   5 a second: Content-Length past --max-body-bytes, and 10^15,
             each must get a 413.
The legitimate client sends a report with its own reportID every 50 ms on a
keep-alive connection, and like the volunteer retries on 503 and on a lost
connection (0.2 s, doubling, at most 5 s between tries, 10 tries).

Checks: every 204 is a stored row (by reportID); RSS at the end, under
load, and after the attackers stop, are within 10% of RSS after warm-up (the
first minute, or a tenth of a short run); open descriptors and threads come
back to their baseline once the attackers stop; no framing trick got more
than its refusal; RSS stays under --limit-mib; /healthz answers throughout.
"""

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from attack import KIB, MIB, Collector, Dribbler, Pipeliner, Prober, Reports, Swarm  # noqa: E402


class Legit(threading.Thread):
    """The well-behaved client: a report every `every` seconds, each with its
    own reportID, retried like the volunteer until it gets a 204 or gives up."""

    def __init__(self, addr, deadline, every=0.05):
        super().__init__(daemon=True)
        self.addr, self.deadline, self.every = addr, deadline, every
        self.sock = None
        self.acked, self.given_up, self.retries = [], [], 0
        self.statuses, self.latencies = {}, []
        self.reports = Reports("soak-legit", 0)

    def connect(self):
        self.sock = socket.create_connection(self.addr, timeout=10)

    def attempt(self, request):
        """Status of one try, or None if the connection failed."""
        try:
            if self.sock is None:
                self.connect()
            self.sock.sendall(request)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise OSError("closed")
                data += chunk
            head, _, rest = data.partition(b"\r\n\r\n")
            status = int(head.split(b" ", 2)[1])
            length = 0
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value.strip())
            while len(rest) < length:
                chunk = self.sock.recv(4096)
                if not chunk:
                    raise OSError("closed")
                rest += chunk
            if b"connection: close" in head.lower():
                self.sock.close()
                self.sock = None
            return status
        except (OSError, ValueError, IndexError):
            if self.sock is not None:
                self.sock.close()
            self.sock = None
            return None

    def run(self):
        while time.monotonic() < self.deadline:
            started = time.monotonic()
            rid, request = self.reports.next()
            delay = 0.2
            for tries in range(10):
                status = self.attempt(request)
                self.statuses[status] = self.statuses.get(status, 0) + 1
                if status == 204:
                    self.acked.append(rid)
                    self.latencies.append(time.monotonic() - started)
                    break
                if status is not None and status != 503:
                    self.given_up.append((rid, status))
                    break
                self.retries += 1
                if time.monotonic() + delay > self.deadline + 30:
                    self.given_up.append((rid, status))
                    break
                time.sleep(delay)
                delay = min(delay * 2, 5)
            else:
                self.given_up.append((rid, status))
            time.sleep(max(0.0, self.every - (time.monotonic() - started)))
        if self.sock is not None:
            self.sock.close()


class Same:
    """The same request every time, for a Pipeliner."""

    def __init__(self, request):
        self.request = request

    def next(self):
        return None, self.request


class Idle(Swarm):
    """Connections that send nothing."""

    def begin(self, c):
        self.want(c, False)


class OneShots(threading.Thread):
    """`rate` times a second, a new connection sends one of `requests` and
    reads everything until the server closes (or hangs up at once when
    `hang_up`); each answer is held against what `expect` allows."""

    def __init__(self, name, addr, deadline, requests, rate, expect=None, hang_up=False):
        super().__init__(daemon=True)
        self.name_, self.addr, self.deadline, self.requests = name, addr, deadline, requests
        self.rate, self.expect, self.hang_up = rate, expect, hang_up
        self.sent, self.answers, self.violations = 0, {}, []

    def run(self):
        i = 0
        while time.monotonic() < self.deadline:
            request = self.requests[i % len(self.requests)]
            i += 1
            try:
                with socket.create_connection(self.addr, timeout=10) as s:
                    s.sendall(request)
                    self.sent += 1
                    if not self.hang_up:
                        data, end = b"", time.monotonic() + 10
                        while time.monotonic() < end:
                            s.settimeout(max(0.1, end - time.monotonic()))
                            chunk = s.recv(65536)
                            if not chunk:
                                break
                            data += chunk
                        statuses = [int(line.split(b" ")[1]) for line in data.split(b"\r\n")
                                    if line.startswith(b"HTTP/1.1 ")]
                        key = tuple(statuses)
                        self.answers[key] = self.answers.get(key, 0) + 1
                        # One refusal and nothing more; at the cap, the cap's 503.
                        allowed = [[s] for s in self.expect or []] + [[503]]
                        if self.expect and statuses not in allowed:
                            self.violations.append((request[:80], statuses))
            except OSError:
                self.answers["error"] = self.answers.get("error", 0) + 1
            time.sleep(1 / self.rate)


def smuggling(max_body):
    base = "POST /api/v1/stats HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n"
    hidden = "GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n"
    tricks = [
        base + "Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + hidden,
        base + "Transfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" + hidden,
        base + "Content-Length: 5\r\nContent-Length: 50\r\n\r\n{}   " + hidden,
        base + "Content-Length: 5, 5\r\n\r\n{}   " + hidden,
        base + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" + hidden,
    ]
    oversize = [
        base + f"Content-Length: {max_body + 1}\r\n\r\n",
        base + "Content-Length: 1000000000000000\r\n\r\n",
    ]
    return [t.encode() for t in tricks], [t.encode() for t in oversize]


def stored(db_url, ids):
    """How many of `ids` are rows of reports."""
    if not ids:
        return 0
    sql = "SELECT count(*) FROM report_log WHERE report_id = ANY('{%s}'::text[]);" % ",".join(ids)
    out = subprocess.run(["psql", "-X", "-q", "-t", "-A", db_url], input=sql, capture_output=True,
                         text=True, check=True)
    return int(out.stdout.strip())


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--collector", required=True)
    p.add_argument("--db-url", required=True)
    p.add_argument("--work", required=True)
    p.add_argument("--seconds", type=float, default=600)
    p.add_argument("--max-connections", type=int, default=1024)
    p.add_argument("--max-body-bytes", type=int, default=8 * MIB)
    p.add_argument("--read-timeout", type=int, default=10)
    p.add_argument("--limit-mib", type=float, default=512)
    args = p.parse_args()
    cap, rt = args.max_connections, args.read_timeout
    collector = Collector(args.collector, args.db_url, [], os.path.join(args.work, "collector.log"))
    ok = True
    try:
        time.sleep(2)
        base = {"rss": collector.rss_kib(), "fds": collector.fds(), "threads": collector.threads()}
        print(f"baseline: RSS {base['rss'] / KIB:.1f} MiB, {base['fds']} fds, {base['threads']} threads", flush=True)
        start = time.monotonic()
        end = start + args.seconds
        legit = Legit(collector.addr, end)
        legit.start()
        time.sleep(0.5)  # the legitimate client's connection is open before the idle ones
        chunked_head = (b"POST /api/v1/stats HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n"
                        b"Transfer-Encoding: chunked\r\n\r\n")
        slow_head = b"POST /api/v1/stats HTTP/1.1\r\nHost: collector\r\nContent-Type: application/json\r\n"
        tricks, oversize = smuggling(args.max_body_bytes)
        swarms = {
            "pipeline": Pipeliner(collector.addr, 2, end, Reports("soak-pipeline", 64 * KIB), rate=10,
                                  rcvbuf=4096),
            "pipeline-get": Pipeliner(collector.addr, 1, end, Same(b"GET /healthz HTTP/1.1\r\nHost: collector\r\n\r\n"),
                                      rate=1000, rcvbuf=4096),
            "chunked": Dribbler(collector.addr, 32, end, chunked_head, b"1\r\na\r\n", max(1, rt - 1)),
            "slowloris": Dribbler(collector.addr, 32, end, b"", slow_head, 2.0),
            "idle": Idle(collector.addr, cap - 80, end, backoff=0.5, burst=32),
        }
        oneshots = [
            OneShots("http2", collector.addr, end, [b"GET / HTTP/2.0\r\nHost: collector\r\n\r\n"], 10, hang_up=True),
            OneShots("smuggle", collector.addr, end, tricks, 5, expect=[400, 501]),
            OneShots("oversize", collector.addr, end, oversize, 5, expect=[413]),
        ]
        prober = Prober(collector.addr, every=1.0)
        for t in list(swarms.values()) + oneshots + [prober]:
            t.start()
        warm_at = start + min(60, args.seconds / 10)
        timeline, warm = [], None
        while time.monotonic() < end:
            time.sleep(min(5, max(0.1, end - time.monotonic())))
            now = time.monotonic()
            sample = (now - start, collector.rss_kib(), collector.fds(), collector.threads())
            timeline.append(sample)
            if warm is None and now >= warm_at:
                warm = sample
        under_load = timeline[-1]
        for t in list(swarms.values()):
            t.stop()
        for t in oneshots + [legit]:
            t.join(60)
        prober.stop()
        # Idle and slow connections close within three read timeouts.
        settle_start = time.monotonic()
        while time.monotonic() < settle_start + 3 * rt + 10:
            if collector.fds() <= base["fds"] and collector.threads() <= base["threads"]:
                break
            time.sleep(0.5)
        settled = time.monotonic() - settle_start
        time.sleep(1)
        after = {"rss": collector.rss_kib(), "fds": collector.fds(), "threads": collector.threads(),
                 "hwm": collector.hwm_kib()}

        print(f"soak: {args.seconds:.0f} s; RSS every 60 s (MiB): "
              + " ".join(f"{s[1] / KIB:.1f}" for s in timeline if int(s[0]) % 60 < 5), flush=True)
        print(f"RSS after warm-up ({warm[0]:.0f} s) {warm[1] / KIB:.1f} MiB, at the end under load "
              f"{under_load[1] / KIB:.1f} MiB, after the attackers stopped {after['rss'] / KIB:.1f} MiB; "
              f"peak (VmHWM) {after['hwm'] / KIB:.1f} MiB")
        print(f"fds: baseline {base['fds']}, under load max {max(s[2] for s in timeline)}, after {after['fds']} "
              f"(settled in {settled:.1f} s); threads: baseline {base['threads']}, max "
              f"{max(s[3] for s in timeline)}, after {after['threads']}")
        lat = sorted(legit.latencies)
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else float("nan")
        n_stored = stored(args.db_url, legit.acked)
        print(f"legitimate: {len(legit.acked)} acknowledged (204), {n_stored} of them stored; "
              f"{legit.retries} retries; given up {len(legit.given_up)}; answers {legit.statuses}; "
              f"latency to 204 incl. retries p50 {pick(0.5):.1f} ms, p99 {pick(0.99):.1f} ms, max {pick(1):.1f} ms")
        for name, s in swarms.items():
            print(f"{name}: {s.stats['opened']} connections opened (at most {s.max_open} at once), "
                  f"{s.stats['cut']} cut off, {s.stats['requests']} requests started, answers read {s.statuses or '-'}")
        for o in oneshots:
            print(f"{o.name_}: {o.sent} sent, answers {o.answers}, violations {len(o.violations)}"
                  + (f" e.g. {o.violations[0]}" if o.violations else ""))
        h = prober.summary()
        print(f"/healthz: {h['probes']} probes, {h['unanswered']} unanswered, statuses {h['statuses']}, "
              f"p50 {h['p50_ms']:.1f} ms, p99 {h['p99_ms']:.1f} ms, max {h['max_ms']:.1f} ms")

        def check(cond, what):
            nonlocal ok
            if not cond:
                print("FAIL: " + what)
                ok = False
        check(n_stored == len(legit.acked), f"{len(legit.acked) - n_stored} acknowledged reports not stored")
        check(len(legit.acked) > 0, "no legitimate report acknowledged")
        check(under_load[1] <= 1.10 * warm[1], "RSS at the end under load over 110% of after warm-up")
        check(after["rss"] <= 1.10 * warm[1], "RSS after the soak over 110% of after warm-up")
        check(after["fds"] <= base["fds"], "descriptors not back to baseline")
        check(after["threads"] <= base["threads"], "threads not back to baseline")
        check(after["hwm"] / KIB <= args.limit_mib, f"peak RSS over {args.limit_mib:g} MiB")
        check(all(not o.violations for o in oneshots), "a framing trick got more than its refusal")
        check(h["unanswered"] == 0, "/healthz unanswered")
        check(collector.proc.poll() is None, "the collector exited")
    finally:
        collector.stop()
    print("soak: " + ("ok" if ok else "FAILED"))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
