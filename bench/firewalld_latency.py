#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The client's bind() -> firewalld's nftables rule accepting its port.

Run inside the network namespace of a firewalld kept by
`teredo-observer --firewalld-zone` (bench/firewalld-latency sets that up).
This process plays the Teredo client: it names itself miredo and runs as
root. ROUNDS times it binds a socket (an add) and closes it (a delete);
then it holds one socket (port P) and ROUNDS times binds a second (port Q,
a change P -> Q) and closes it (Q -> P). It times, from lines of
`nft -a monitor rules` stamped as they arrive:

  add:     bind() with no port before -> the rule accepting it is added
  close:   close() of the only socket -> its rule is deleted
  change:  bind() of Q -> the rule accepting Q is added
  neither: the rule of the old port deleted -> the rule of the new one added
           (the instant of a change in which neither is open)
  both:    whether both rules were ever there at once (must be never)

Prints one line per measure: name, rounds, p50, p90, max in microseconds.
"""
import re
import socket
import subprocess
import sys
import threading
import time

ADD = re.compile(r"^add rule inet firewalld \S+_allow udp dport (\d+) accept # handle (\d+)")
DELETE = re.compile(r"^delete rule inet firewalld \S+_allow handle (\d+)")


class Monitor:
    """nft monitor's rule lines, each with the time it was read."""

    def __init__(self):
        self.proc = subprocess.Popen(["nft", "-a", "monitor", "rules"], stdout=subprocess.PIPE,
                                     text=True, bufsize=1)
        self.cond = threading.Condition()
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self):
        for line in self.proc.stdout:
            now = time.monotonic_ns()
            with self.cond:
                self.lines.append((now, line.strip()))
                self.cond.notify_all()

    def wait_line(self, start, what, matches, timeout=10.0):
        """The index, time and match of the first line from index start that matches."""
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                for i in range(start, len(self.lines)):
                    m = matches(self.lines[i][1])
                    if m:
                        return i, self.lines[i][0], m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no {what} within {timeout}s")
                self.cond.wait(left)

    def wait_add(self, port, start):
        """The index, time and handle of the rule of port added from index start."""
        return self.wait_line(start, f"rule for port {port}", lambda line: (
            m := ADD.match(line)) and int(m.group(1)) == port and m.group(2))

    def wait_delete(self, handle, start):
        """The index and time of the delete of rule handle from index start."""
        i, t, _ = self.wait_line(start, f"delete of rule {handle}", lambda line: (
            m := DELETE.match(line)) and m.group(1) == handle)
        return i, t

    def stop(self):
        self.proc.terminate()
        self.proc.wait()


def bound_socket():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    t = time.monotonic_ns()
    s.bind(("0.0.0.0", 0))
    return s, s.getsockname()[1], t


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(p * len(values)))]


def neither_and_both(lines, ports):
    """From the monitor's lines: each delete->add gap, and the most open at once."""
    handles, gaps, most, deleted_at = {}, [], 0, None
    for t, line in lines:
        m = ADD.match(line)
        if m and int(m.group(1)) in ports:
            handles[m.group(2)] = int(m.group(1))
            most = max(most, len(handles))
            if deleted_at is not None:
                gaps.append((t - deleted_at) // 1000)
                deleted_at = None
            continue
        m = DELETE.match(line)
        if m and m.group(1) in handles:
            del handles[m.group(1)]
            deleted_at = t
    return gaps, most


def main():
    rounds = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    with open("/proc/self/comm", "w") as f:
        f.write("miredo")
    mon = Monitor()
    time.sleep(0.5)  # nft monitor says nothing once it listens
    adds, closes, mark = [], [], 0
    for _ in range(rounds):
        s, p, t_bind = bound_socket()
        mark, t_rule, handle = mon.wait_add(p, mark)
        adds.append((t_rule - t_bind) // 1000)
        t_close = time.monotonic_ns()
        s.close()
        mark, t_rule = mon.wait_delete(handle, mark + 1)
        closes.append((t_rule - t_close) // 1000)
    changes_from = len(mon.lines)
    held, p, _ = bound_socket()
    mark, _, _ = mon.wait_add(p, changes_from)
    changes, ports = [], {p}
    for _ in range(rounds):
        s, q, t_bind = bound_socket()
        ports.add(q)
        mark, t_rule, _ = mon.wait_add(q, mark + 1)
        changes.append((t_rule - t_bind) // 1000)
        s.close()
        mark, _, _ = mon.wait_add(p, mark + 1)
    held.close()
    time.sleep(0.5)
    mon.stop()
    gaps, most = neither_and_both(mon.lines[changes_from:], ports)
    for name, values in (("add", adds), ("close", closes), ("change", changes),
                         ("neither", gaps)):
        print(f"{name} {len(values)} {percentile(values, 0.5)} {percentile(values, 0.9)} "
              f"{max(values)}")
    print(f"both {'never' if most <= 1 else 'SEEN'}")
    return 0 if most <= 1 else 1


if __name__ == "__main__":
    sys.exit(main())
