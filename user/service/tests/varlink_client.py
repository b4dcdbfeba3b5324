#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""An independent Varlink client, written from the protocol's description at
varlink.org (NUL-terminated JSON over a stream unix socket), with nothing of
the project's code: it checks that teredo-observer serve speaks the protocol.

Usage: varlink_client.py SOCKET CHECK [ARGS...]
  protocol            the calls, replies and errors of both interfaces
  watch PORT          Watch's first reply says the port is PORT
  slow SECONDS        Watch, read nothing for SECONDS, then expect to have
                      been cut off (TooSlow, then end of stream)
  limit N             N connections are taken; one more gets TooManyConnections
  pipe                Watch's stream through a pipe: asked for, the first
                      reply says pipe and brings the pipe's read end with it,
                      and the stream's replies come through it; not asked
                      for (or false), none comes; a pipe that is not a
                      boolean is an InvalidParameter
  slow-pipe SECONDS   as slow, the stream through a pipe: TooSlow at its end
  old-service LISTEN [PARAMETER]
                      a service from before Watch's PARAMETER (pipe, or
                      events), in front of SOCKET: listens at LISTEN, answers
                      a Watch that gives it as such a service did
                      (InvalidParameter, "refused PARAMETER" said on stdout)
                      and passes anything else on to SOCKET and back; until
                      killed
  events              Watch with events false streams the records alone: a
                      plain Watch beside it gets a record and the port's
                      change for the bind made after "watching" is said on
                      stdout, and the first gets the record and nothing more;
                      an events that is not a boolean is an InvalidParameter
  same-event FILE     Watch's first event equals the first line of FILE
                      (teredo-observer --json) in every member but time
Prints "ok" and exits 0, or says what is wrong and exits 1.
"""
import fcntl
import json
import os
import socket
import stat
import sys
import threading
import time

TIMEOUT = 10


class Conn:
    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(TIMEOUT)
        self.sock.connect(path)
        self.buf = b""
        self.fds = []  # what came with the messages (SCM_RIGHTS)

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, method, parameters=None, **flags):
        msg = {"method": method}
        if parameters is not None:
            msg["parameters"] = parameters
        msg.update(flags)
        self.send_raw(json.dumps(msg).encode() + b"\0")

    def receive(self):
        """The next message, or None at the end of the stream."""
        while b"\0" not in self.buf:
            data, fds, _, _ = socket.recv_fds(self.sock, 65536, 4)
            self.fds += fds
            if not data:
                return None
            self.buf += data
        text, self.buf = self.buf.split(b"\0", 1)
        return json.loads(text)

    def call(self, method, parameters=None, **flags):
        self.send(method, parameters, **flags)
        return self.receive()


def check(cond, what):
    if not cond:
        raise AssertionError(what)


def expect_error(reply, name, key=None, value=None):
    check(reply is not None, f"no reply, expected {name}")
    check(reply.get("error") == name, f"expected {name}, got {reply}")
    if key is not None:
        check(reply.get("parameters", {}).get(key) == value,
              f"{name}: expected {key}={value!r}, got {reply}")


def expect_closed(conn, after):
    check(conn.receive() is None, f"the connection stayed open after {after}")


def check_info(path):
    c = Conn(path)
    r = c.call("org.varlink.service.GetInfo")
    p = r["parameters"]
    for key in ("vendor", "product", "version", "url"):
        check(isinstance(p.get(key), str), f"GetInfo: {key} missing: {r}")
    check(set(p["interfaces"]) >= {"org.varlink.service", "io.teredo.Observer"},
          f"GetInfo: interfaces {p['interfaces']}")
    check("continues" not in r and "error" not in r, f"GetInfo: {r}")
    for iface in p["interfaces"]:
        r = c.call("org.varlink.service.GetInterfaceDescription", {"interface": iface})
        d = r["parameters"]["description"]
        check(f"interface {iface}\n" in d, f"description of {iface}: {d[:80]!r}")
    d = c.call("org.varlink.service.GetInterfaceDescription",
               {"interface": "io.teredo.Observer"})["parameters"]["description"]
    for word in ("method GetState()", "method Watch(pipe: ?bool, events: ?bool)", "type Event", "error TooSlow"):
        check(word in d, f"description lacks {word!r}")
    expect_error(c.call("org.varlink.service.GetInterfaceDescription", {"interface": "no.Such"}),
                 "org.varlink.service.InterfaceNotFound", "interface", "no.Such")
    expect_error(c.call("org.varlink.service.GetInterfaceDescription", {}),
                 "org.varlink.service.InvalidParameter", "parameter", "interface")


def check_calls(path):
    c = Conn(path)
    r = c.call("io.teredo.Observer.GetState")
    p = r["parameters"]
    check(p["event"]["type"] == "initial" and p["port"] == p["event"]["port"], f"GetState: {r}")
    check(isinstance(p["sockets"], list) and "comms" in p["selection"], f"GetState: {r}")
    expect_error(c.call("io.teredo.Observer.Nope"), "org.varlink.service.MethodNotFound",
                 "method", "io.teredo.Observer.Nope")
    expect_error(c.call("no.such.Interface.Method"), "org.varlink.service.InterfaceNotFound",
                 "interface", "no.such.Interface")
    expect_error(c.call("io.teredo.Observer.GetState", {"bogus": 1}),
                 "org.varlink.service.InvalidParameter", "parameter", "bogus")
    expect_error(c.call("io.teredo.Observer.Watch"), "org.varlink.service.ExpectedMore")
    # oneway: no reply, so the next reply is the next call's.
    c.send("org.varlink.service.GetInfo", oneway=True)
    r = c.call("io.teredo.Observer.GetState")
    check("port" in r.get("parameters", {}), f"after a oneway call: {r}")
    # Pipelined: replies in the order of the calls.
    c.send("org.varlink.service.GetInfo")
    c.send("io.teredo.Observer.GetState")
    check("vendor" in c.receive()["parameters"], "pipelined: first reply is not GetInfo's")
    check("port" in c.receive()["parameters"], "pipelined: second reply is not GetState's")
    r = c.call("io.teredo.Observer.Watch", more=True)
    check(r.get("continues") is True and r["parameters"]["resync"] is True, f"Watch: {r}")
    expect_error(c.call("org.varlink.service.GetInfo"), "io.teredo.Observer.WatchInProgress")


def check_malformed(path):
    for data, what in ((b"{not json}\0", "not JSON"), (b"[1]\0", "an array"),
                       (b'{"method": 3}\0', "a number as method"),
                       (b'{"method": "a.B", "parameters": []}\0', "parameters not an object"),
                       (b"\0", "an empty message")):
        c = Conn(path)
        c.send_raw(data)
        expect_error(c.receive(), "io.teredo.Observer.MalformedMessage")
        expect_closed(c, what)
    c = Conn(path)
    try:
        c.send_raw(b'{"method": "' + b"x" * 100000)
    except (BrokenPipeError, ConnectionResetError):
        pass  # closed while we were still sending: fine, if it said why first
    r = c.receive()
    expect_error(r, "io.teredo.Observer.MessageTooLarge")
    check(isinstance(r["parameters"]["limit"], int), f"MessageTooLarge: {r}")
    expect_closed(c, "an oversize message")


def protocol(path):
    check_info(path)
    check_calls(path)
    check_malformed(path)


def watch(path, port):
    r = Conn(path).call("io.teredo.Observer.Watch", more=True)
    check(r["parameters"]["port"] == int(port), f"Watch says port {r['parameters']['port']}")


def slow(path, seconds):
    c = Conn(path)
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c.send("io.teredo.Observer.Watch", more=True)
    time.sleep(float(seconds))
    last = None
    while True:
        r = c.receive()
        if r is None:
            break
        last = r
    expect_error(last, "io.teredo.Observer.TooSlow")


def pipe_messages(fd):
    """The messages through a pipe until its end."""
    buf = b""
    while True:
        data = os.read(fd, 65536)
        if not data:
            break
        buf += data
    *msgs, rest = buf.split(b"\0")
    check(rest == b"", f"the pipe ended inside a message: {rest[:80]!r}")
    return [json.loads(m) for m in msgs]


def watch_pipe(path):
    c = Conn(path)
    r = c.call("io.teredo.Observer.Watch", {"pipe": True}, more=True)
    check(r["parameters"].get("pipe") is True and r["parameters"]["resync"] is True,
          f"Watch with pipe: {r}")
    check(len(c.fds) == 1, f"Watch with pipe: {len(c.fds)} fds came with the reply")
    fd = c.fds[0]
    st = os.fstat(fd)
    check(stat.S_ISFIFO(st.st_mode), "what came is not a pipe")
    check(fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY,
          "the pipe's end that came is not its read end")
    return c, fd


def pipe(path):
    c, fd = watch_pipe(path)
    # A call on the connection now: its error comes through the pipe, as the stream does.
    c.send("org.varlink.service.GetInfo")
    c.sock.shutdown(socket.SHUT_WR)
    msgs = pipe_messages(fd)
    check(msgs and msgs[0].get("error") == "io.teredo.Observer.WatchInProgress",
          f"through the pipe: {msgs}")
    for params in ({"pipe": False}, None):
        c = Conn(path)
        r = c.call("io.teredo.Observer.Watch", params, more=True)
        check("pipe" not in r["parameters"] and not c.fds, f"Watch with {params}: {r}")
    expect_error(Conn(path).call("io.teredo.Observer.Watch", {"pipe": 3}, more=True),
                 "org.varlink.service.InvalidParameter", "parameter", "pipe")
    expect_error(Conn(path).call("io.teredo.Observer.GetState", {"pipe": True}),
                 "org.varlink.service.InvalidParameter", "parameter", "pipe")


def slow_pipe(path, seconds):
    _, fd = watch_pipe(path)
    time.sleep(float(seconds))
    msgs = pipe_messages(fd)
    check(msgs, "nothing came through the pipe")
    expect_error(msgs[-1], "io.teredo.Observer.TooSlow")


def copy(src, dst):
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    for s in (src, dst):
        try:
            s.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass


def old_service_conn(conn, upstream, refused):
    buf = b""
    while b"\0" not in buf:
        data = conn.recv(65536)
        if not data:
            conn.close()
            return
        buf += data
    first = json.loads(buf.split(b"\0", 1)[0])
    if refused in first.get("parameters", {}):
        print(f"refused {refused}", flush=True)
        conn.sendall(json.dumps({"error": "org.varlink.service.InvalidParameter",
                                 "parameters": {"parameter": refused}}).encode() + b"\0")
        conn.close()
        return
    up = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    up.connect(upstream)
    up.sendall(buf)
    threading.Thread(target=copy, args=(up, conn), daemon=True).start()
    copy(conn, up)


def old_service(upstream, listen, refused="pipe"):
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(listen)
    os.chmod(listen, 0o666)
    srv.listen(16)
    print("listening", flush=True)
    while True:
        conn, _ = srv.accept()
        threading.Thread(target=old_service_conn, args=(conn, upstream, refused),
                         daemon=True).start()


def until_record(c):
    """The stream's messages up to and with the first record."""
    msgs = []
    while not msgs or "record" not in msgs[-1].get("parameters", {}):
        r = c.receive()
        check(r is not None, f"the stream ended after {msgs}")
        msgs.append(r)
    return msgs


def events(path):
    plain, records = Conn(path), Conn(path)
    plain.call("io.teredo.Observer.Watch", more=True)
    records.call("io.teredo.Observer.Watch", {"events": False}, more=True)
    print("watching", flush=True)
    until_record(plain)
    r = plain.receive()
    check(r is not None and "event" in r["parameters"], f"no port change after the record: {r}")
    until_record(records)
    # The change is written with its record: had it come, it would be here by now.
    records.sock.settimeout(1)
    try:
        r = records.receive()
    except socket.timeout:
        r = None
    check(r is None, f"Watch with events false got more than the record: {r}")
    expect_error(Conn(path).call("io.teredo.Observer.Watch", {"events": 3}, more=True),
                 "org.varlink.service.InvalidParameter", "parameter", "events")


def limit(path, n):
    conns = [Conn(path) for _ in range(int(n))]
    for c in conns:
        check("vendor" in c.call("org.varlink.service.GetInfo")["parameters"], "GetInfo")
    extra = Conn(path)
    expect_error(extra.receive(), "io.teredo.Observer.TooManyConnections", "limit", int(n))
    expect_closed(extra, "TooManyConnections")


def same_event(path, line_file):
    # Bytes in, strictly: both must be valid UTF-8 (json.loads refuses anything else).
    with open(line_file, "rb") as f:
        line = json.loads(f.readline())
    event = Conn(path).call("io.teredo.Observer.Watch", more=True)["parameters"]["event"]
    check(line.pop("time", None) is not None, f"--json line without time: {line}")
    check(line == event, f"--json {line} but Watch {event}")
    print(json.dumps(event["comm"]))


def main():
    path, what, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    try:
        {
            "protocol": protocol,
            "watch": watch,
            "slow": slow,
            "limit": limit,
            "pipe": pipe,
            "slow-pipe": slow_pipe,
            "same-event": same_event,
            "old-service": old_service,
            "events": events,
        }[what](path, *args)
    except (AssertionError, OSError, ValueError, KeyError, TypeError) as e:
        print(f"{what}: {type(e).__name__}: {e}")
        return 1
    print("ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
