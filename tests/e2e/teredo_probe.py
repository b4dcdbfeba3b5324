#!/usr/bin/env python3
"""Traffic through a Teredo tunnel, for the e2e firewall group.

  teredo_probe.py ping ADDR SECONDS    ICMPv6 echo to ADDR until a reply
                                       (exit 0) or SECONDS pass (exit 1)
  teredo_probe.py listen PORT          UDP on [::]:PORT; prints "listening",
                                       then "got PAYLOAD from ADDR" per datagram
  teredo_probe.py send ADDR PORT PAYLOAD   one UDP datagram

No ping binary is needed (iputils is not a test dependency): a raw ICMPv6
socket, whose checksum the kernel computes.
"""
import os
import socket
import struct
import sys
import time

ECHO_REQUEST, ECHO_REPLY = 128, 129


def ping(addr, seconds):
    s = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
    ident = os.getpid() & 0xFFFF
    deadline = time.monotonic() + seconds
    seq = 0
    while time.monotonic() < deadline:
        seq += 1
        s.sendto(struct.pack("!BBHHH", ECHO_REQUEST, 0, 0, ident, seq) + b"teredo", (addr, 0))
        s.settimeout(0.3)
        try:
            while True:
                data, peer = s.recvfrom(1500)
                if data[0] == ECHO_REPLY and struct.unpack("!H", data[4:6])[0] == ident:
                    print(f"reply from {peer[0]} seq {struct.unpack('!H', data[6:8])[0]}")
                    return 0
        except socket.timeout:
            pass
    print(f"no reply from {addr} within {seconds}s")
    return 1


def listen(port):
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind(("::", port))
    print("listening", flush=True)
    while True:
        data, peer = s.recvfrom(1500)
        print(f"got {data.decode(errors='replace')} from {peer[0]}", flush=True)


def send(addr, port, payload):
    socket.socket(socket.AF_INET6, socket.SOCK_DGRAM).sendto(payload.encode(), (addr, port))
    return 0


def main(argv):
    if len(argv) == 4 and argv[1] == "ping":
        return ping(argv[2], float(argv[3]))
    if len(argv) == 3 and argv[1] == "listen":
        return listen(int(argv[2]))
    if len(argv) == 5 and argv[1] == "send":
        return send(argv[2], int(argv[3]), argv[4])
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
