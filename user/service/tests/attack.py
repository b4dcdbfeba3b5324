#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""What an ordinary user can throw at teredo-observer serve, for run-tests'
attack tests (run as user nobody). Raw Varlink, nothing of the project's code.

Usage: attack.py SOCKET MODE [ARGS...]
  flood SECONDS       connect and close as fast as possible
  halfclose N         N connections: pipeline GetState calls without reading
                      until replies queue in the service, shutdown(SHUT_WR),
                      never read; "ready N", then hold them until stdin ends
  fill N              N connections, replies queued as for halfclose but
                      still open; "ready N"; on a line on stdin all close,
                      "closed"; then wait for stdin's end
  pipeline N SECONDS [WINDOW:METHOD...]
                      N connections, each keeping WINDOW calls of METHOD in
                      flight (16 of GetState unless told; several kinds are
                      taken by the connections in turn), reading the replies
                      so that it is never cut off; until a line on stdin or
                      SECONDS, then "pipelined CALLS calls ..."
  calls N             N GetState calls in a row, each timed from its send to
                      its reply; prints "p50 US p90 US max US n N"
  latency N           Watch; for N port changes, the time from the client's
                      bind() (the event's ktime_ns, CLOCK_MONOTONIC) to its
                      reply here; prints "p50 US p90 US max US n N"
  changes             Watch; one line per port change, "TYPE PORT US" (US as
                      for latency), until the service closes the connection
  pipe WHAT           Watch with its stream through a pipe, then abuse the
                      pipe's read end: "grow" (F_SETPIPE_SZ to 1 MiB; "grown",
                      then "cut off after N replies" at the pipe's end), "close"
                      (close it, keep the socket; "closed", then "dropped" once
                      the service closes the socket too)
  pipes N             N connections, each a Watch asking for a pipe; "ready N
                      pipes K" (K came with one), then hold them until stdin ends
  soak KIND SECONDS   for bench/service-soak: KIND over and over for SECONDS,
                      every refusal, reset and cut-off taken in its stride;
                      then "KIND rounds R calls C closed-by-service X"
                      KIND: slowloris (16 connections, 64 bytes a second of a
                      call that grows to MessageTooLarge), halfclose (8 at a
                      time, held past the service's grace), malformed,
                      oversized, watchcancel (Watch, its first reply or
                      none, close), pipeline (16 connections, as above)
"""
import fcntl
import json
import os
import select
import socket
import sys
import termios
import time

CALL = json.dumps({"method": "io.teredo.Observer.GetState"}).encode() + b"\0"


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(path)
    return s


def flood(path, seconds):
    end = time.monotonic() + seconds
    n = 0
    while time.monotonic() < end:
        try:
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.connect(path)
            s.close()
            n += 1
        except OSError:
            s.close()
    print(f"flood {n}")


def queued(s):
    return int.from_bytes(fcntl.ioctl(s, termios.FIONREAD, b"\0\0\0\0"), "little")


def queue_replies(s):
    """Calls until the service's sends to us block: replies then wait in its
    buffer (a few batches more), short of its limit."""
    s.setblocking(False)
    last, still = -1, 0
    for _ in range(400):
        try:
            s.send(CALL * 20)
        except BlockingIOError:
            pass
        time.sleep(0.005)
        now = queued(s)
        still = still + 1 if now == last else 0
        last = now
        if still >= 3:
            break
    # Replies to these wait in the service's own buffer.
    try:
        s.send(CALL * 20)
    except BlockingIOError:
        pass


def open_queued(path, n):
    conns = []
    for _ in range(n):
        s = connect(path)
        queue_replies(s)
        conns.append(s)
    return conns


def halfclose(path, n):
    conns = open_queued(path, n)
    for s in conns:
        s.shutdown(socket.SHUT_WR)
    print(f"ready {n}", flush=True)
    sys.stdin.read()


def fill(path, n):
    conns = open_queued(path, n)
    print(f"ready {n}", flush=True)
    sys.stdin.readline()
    for s in conns:
        s.close()
    print("closed", flush=True)
    sys.stdin.read()


def pipeline(path, n, seconds, kinds):
    """Each connection keeps its window of calls in flight, sending more as
    each reply comes: as many calls as the service will answer, never so
    many unread replies that it cuts the connection off. kinds, (window,
    call) pairs, are taken by the connections in turn. Until a line (or the
    end) on stdin, or seconds; then "pipelined CALLS calls in SECS s, K of N
    connections left"."""
    conns = {}  # socket: [calls in flight, window, call]
    for i in range(n):
        window, call = kinds[i % len(kinds)]
        conns[connect(path)] = [0, window, call]
    start = time.monotonic()
    end, replies = start + seconds, 0
    while conns and time.monotonic() < end:
        for s, c in conns.items():
            if c[0] < c[1]:
                s.sendall(c[2] * (c[1] - c[0]))
                c[0] = c[1]
        r, _, _ = select.select([sys.stdin, *conns], [], [], 1)
        if sys.stdin in r:
            break
        for s in r:
            try:
                data = s.recv(1 << 20)
            except ConnectionError:
                data = b""
            if not data:
                del conns[s]  # the service closed it
                continue
            got = data.count(b"\0")
            replies += got
            conns[s][0] -= got
    print(f"pipelined {replies} calls in {time.monotonic() - start:.1f} s, "
          f"{len(conns)} of {n} connections left", flush=True)


def watched_changes(path):
    """Watch through the service; yield (now, event) for each change after the
    initial state, now being CLOCK_MONOTONIC in ns when its bytes arrived."""
    s = connect(path)
    s.sendall(json.dumps({"method": "io.teredo.Observer.Watch", "more": True}).encode() +
              b"\0")
    buf = b""
    print("watching", flush=True)
    while True:
        data = s.recv(1 << 16)
        now = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
        if not data:
            return
        buf += data
        *msgs, buf = buf.split(b"\0")
        for m in msgs:
            ev = json.loads(m).get("parameters", {}).get("event")
            if ev and ev["type"] != "initial":
                yield now, ev


WATCH_PIPE = json.dumps({"method": "io.teredo.Observer.Watch", "parameters": {"pipe": True},
                         "more": True}).encode() + b"\0"


def watch_with_pipe(path):
    """A Watch asking for a pipe: (socket, the pipe's read end or None)."""
    s = connect(path)
    s.sendall(WATCH_PIPE)
    got, fds = b"", []
    while b"\0" not in got:
        data, more, _, _ = socket.recv_fds(s, 1 << 20, 4)
        if not data:
            sys.exit("the service closed the connection before its first reply")
        got += data
        fds += more
    for fd in fds[1:]:
        os.close(fd)
    return s, fds[0] if fds else None


def read_fd_to_end(fd):
    """Replies through the pipe until its end: how many."""
    n = 0
    while True:
        data = os.read(fd, 1 << 16)
        if not data:
            return n
        n += data.count(b"\0")


def pipe_abuse(path, what):
    s, fd = watch_with_pipe(path)
    if fd is None:
        sys.exit("no pipe came with the first reply")
    if what == "grow":
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, 1 << 20)
        print("grown", flush=True)
        os.set_blocking(fd, True)
        print(f"cut off after {read_fd_to_end(fd)} replies", flush=True)
    elif what == "close":
        os.close(fd)
        print("closed", flush=True)
        s.settimeout(30)
        print("dropped" if not s.recv(1 << 16) else "still open", flush=True)
    else:
        sys.exit(f"attack.py pipe: unknown abuse {what}")


def pipes(path, n):
    held = [watch_with_pipe(path) for _ in range(n)]
    print(f"ready {n} pipes {sum(fd is not None for _, fd in held)}", flush=True)
    sys.stdin.read()


def print_percentiles(samples):
    """Prints "p50 US p90 US max US n N" of samples in microseconds."""
    samples.sort()
    print(f"p50 {samples[len(samples) // 2]:.0f} p90 {samples[len(samples) * 9 // 10]:.0f} "
          f"max {samples[-1]:.0f} n {len(samples)}", flush=True)


def latency(path, n):
    """The event's ktime_ns is the kernel's clock at the client's bind() (or
    close), taken by the BPF program: the same clock as CLOCK_MONOTONIC."""
    samples = []
    for now, ev in watched_changes(path):
        samples.append((now - ev["ktime_ns"]) / 1000)
        if len(samples) >= n:
            break
    if not samples:
        print("no port changes")
        sys.exit(1)
    print_percentiles(samples)


def calls(path, n):
    """N GetState calls one after another on one connection, each timed from
    its send to its whole reply; prints "p50 US p90 US max US n N"."""
    s = connect(path)
    samples = []
    for _ in range(n):
        t0 = time.monotonic_ns()
        s.sendall(CALL)
        got = b""
        while not got.endswith(b"\0"):
            data = s.recv(1 << 20)
            if not data:
                sys.exit("the service closed the connection")
            got += data
        samples.append((time.monotonic_ns() - t0) / 1000)
        time.sleep(0.005)
    print_percentiles(samples)


def changes(path):
    for now, ev in watched_changes(path):
        print(f"{ev['type']} {ev['port']} {(now - ev['ktime_ns']) / 1000:.0f}", flush=True)


# --- the soak's attacks: each round returns (calls, closed by the service) ---

def read_to_close(s, replies, limit=16 << 20):
    """The service's replies until it closes, or until that many have come
    (or limit bytes, or the socket's timeout): True when it closed."""
    got = b""
    try:
        while len(got) < limit and got.count(b"\0") < replies:
            data = s.recv(1 << 16)
            if not data:
                return True
            got += data
    except ConnectionError:
        return True
    except socket.timeout:
        pass
    return False


def round_malformed(path, i):
    bad = [b"not json", b"[1,2]", b'{"method": 5}', b'{"method": "x", "parameters": 1}',
           b'{"method": "io.teredo.Observer.GetState", "more": "yes"}',
           b'{"method": "io.teredo.Observer.GetState", "upgrade": true}',
           b"\xff\xfe{", b"[" * 5000, b'{"method": "io.teredo.Observer.Nope"}',
           b'{"method": "io.teredo.Observer.GetState", "parameters": {"x": 1}}']
    # A message that is no call closes the connection; a wrong call gets
    # an error, and the call after it a reply.
    return send_then_read_to_close(path, bad[i % len(bad)] + b"\0" + CALL)


def round_oversized(path, i):
    return send_then_read_to_close(
        path, b'{"method": "io.teredo.Observer.GetState", "x": "' + b"a" * 20000)


def send_then_read_to_close(path, payload):
    """One round: send payload, then read until the service closes (or not)."""
    s = connect(path)
    s.settimeout(5)
    with s:
        try:
            s.sendall(payload)
        except OSError:
            return 1, True  # closed by the service while we were still sending
        return 1, read_to_close(s, 2)


def round_watchcancel(path, i):
    s = connect(path)
    s.settimeout(5)
    with s:
        s.sendall(json.dumps({"method": "io.teredo.Observer.Watch",
                              "more": True}).encode() + b"\0")
        if i % 2:
            got = b""
            while b"\0" not in got:
                data = s.recv(1 << 16)
                if not data:
                    return 1, True
                got += data
    return 1, False


def round_halfclose(path, i):
    conns, closed = [], 0
    try:
        for _ in range(8):
            s = connect(path)
            queue_replies(s)
            s.shutdown(socket.SHUT_WR)
            conns.append(s)
        time.sleep(12)  # past the service's 10 s grace: it drops them
        for s in conns:
            s.settimeout(1)
            closed += read_to_close(s, 1 << 30)
    finally:
        for s in conns:
            s.close()
    return len(conns), closed


def round_slowloris(path, i, end):
    head = b'{"method": "io.teredo.Observer.GetState", "parameters": {"x": "'
    conns = {}
    calls = closed = 0
    while time.monotonic() < end:
        while len(conns) < 16:
            try:
                s = connect(path)
            except OSError:
                break
            s.setblocking(False)
            conns[s] = 0
            calls += 1
        for s in list(conns):
            try:
                s.send(head if conns[s] == 0 else b"a" * 64)
                conns[s] += 1
                if s.recv(1 << 16) == b"":
                    raise ConnectionError
            except BlockingIOError:
                pass
            except OSError:
                closed += 1
                s.close()
                del conns[s]
        time.sleep(1)
    for s in conns:
        s.close()
    return calls, closed


def round_pipeline(path, i, end):
    """As pipeline(), its connections made again when the service closes one."""
    conns = {}
    calls = closed = 0
    while time.monotonic() < end:
        while len(conns) < 16:
            try:
                conns[connect(path)] = 0
            except OSError:
                break
        for s, flying in list(conns.items()):
            try:
                if flying < 16:
                    s.sendall(CALL * (16 - flying))
                    conns[s] = 16
            except OSError:
                closed += 1
                s.close()
                del conns[s]
        r, _, _ = select.select(list(conns), [], [], 0.5)
        for s in r:
            try:
                data = s.recv(1 << 20)
            except OSError:
                data = b""
            if not data:
                closed += 1
                s.close()
                del conns[s]
                continue
            calls += data.count(b"\0")
            conns[s] -= data.count(b"\0")
    for s in conns:
        s.close()
    return calls, closed


def soak(path, kind, seconds):
    rounds = {"malformed": round_malformed, "oversized": round_oversized,
              "watchcancel": round_watchcancel, "halfclose": round_halfclose}
    long_rounds = {"slowloris": round_slowloris, "pipeline": round_pipeline}
    if kind not in rounds and kind not in long_rounds:
        sys.exit(f"attack.py: unknown soak kind {kind}")
    end = time.monotonic() + seconds
    n = calls = closed = errors = 0
    while time.monotonic() < end:
        try:
            if kind in long_rounds:
                c, x = long_rounds[kind](path, n, end)
            else:
                c, x = rounds[kind](path, n)
            calls += c
            closed += x
        except OSError:
            errors += 1  # refused (over the per-user limit), reset, cut off
            time.sleep(0.01)
        n += 1
    print(f"{kind} rounds {n} calls {calls} closed-by-service {closed} errors {errors}",
          flush=True)


def main():
    path, mode, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    if mode == "flood":
        flood(path, float(args[0]))
    elif mode == "halfclose":
        halfclose(path, int(args[0]))
    elif mode == "fill":
        fill(path, int(args[0]))
    elif mode == "pipeline":
        kinds = []
        for kind in args[2:] or ["16:io.teredo.Observer.GetState"]:
            window, method = kind.split(":", 1)
            kinds.append((int(window), json.dumps({"method": method}).encode() + b"\0"))
        pipeline(path, int(args[0]), float(args[1]), kinds)
    elif mode == "latency":
        latency(path, int(args[0]))
    elif mode == "calls":
        calls(path, int(args[0]))
    elif mode == "changes":
        changes(path)
    elif mode == "pipe":
        pipe_abuse(path, args[0])
    elif mode == "pipes":
        pipes(path, int(args[0]))
    elif mode == "soak":
        soak(path, args[0], float(args[1]))
    else:
        sys.exit(f"attack.py: unknown mode {mode}")


if __name__ == "__main__":
    main()
