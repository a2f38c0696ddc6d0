"""Bursty floods against the endpoint process (issue 15.8): bursts of 200 datagrams of 1,200
bytes, every 10 ms (20,000 a second on average), from 8 source addresses, while a legitimate
peer streams 100 datagrams a second of the same size to it. What share of the stream is lost?

A burst arrives faster than any endpoint reads; whatever does not fit the socket's receive
buffer is dropped by the kernel, the stream's datagrams with it. The flood is junk the endpoint
drops cheaply (an unknown label), so the loss measures the buffer, not the endpoint's speed.
Bounded: `seconds` of flood (3 by default), then the stream's tail is waited for.
"""

import os
import random
import signal
import subprocess
import sys
import time

import atklib
import floods
import fuzzrun

BURST = 200
SIZE = 1200
PERIOD_S = 0.010


FLOODER = """
import socket, sys, time, os
host, port = sys.argv[1].rsplit(":", 1)
seconds, burst, period, size = float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]), int(sys.argv[5])
socks = []
for i in range(8):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.%d" % (20 + i), 7300))
    socks.append(s)
junk = bytes([1, 16, 0x7F, 0xFF, 0xFF, 0xFF]) + os.urandom(size - 6)  # DATA for no such label
dst = (host, int(port))
sent = errors = 0
t0 = time.monotonic()
nxt = t0
while time.monotonic() - t0 < seconds:
    for k in range(burst):
        try:
            socks[k % 8].sendto(junk, dst)
            sent += 1
        except OSError:
            errors += 1
    nxt += period
    time.sleep(max(0, nxt - time.monotonic()))
print(sent, errors)
"""


ONE_BURST = """
import socket, sys, os
host, port = sys.argv[1].rsplit(":", 1)
burst, size = int(sys.argv[2]), int(sys.argv[3])
socks = []
for i in range(8):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.%d" % (20 + i), 7300))
    socks.append(s)
junk = bytes([1, 16, 0x7F, 0xFF, 0xFF, 0xFF]) + os.urandom(size - 6)  # DATA for no such label
sent = errors = 0
for k in range(burst):
    try:
        socks[k % 8].sendto(junk, (host, int(port)))
        sent += 1
    except OSError:
        errors += 1
print(sent, errors)
"""


def _connect(real, t, timeout_s):
    """The legitimate peer's association with the target, up within timeout_s."""
    real.connect()
    end = time.monotonic() + timeout_s
    while real.up_at is None and time.monotonic() < end:
        real.pump()
        time.sleep(0.005)
    assert real.up_at is not None, "the legitimate peer did not connect: " + t.stderr_tail()


def run_paused_burst(space, workdir, runtime="cpython", burst=BURST, stream_n=10,
                     stream_size=SIZE - 28, rcvbuf=None):
    """One burst of `burst` datagrams of 1,200 bytes from another process, then `stream_n` of
    the stream's, all while the endpoint reads nothing (stopped with SIGSTOP, then let go with
    SIGCONT): the worst a burst can find, and no clock in it. What the socket's receive buffer
    kept is all the endpoint can read; the rest the kernel dropped. -> dict of what happened.
    (run_bursts measures the same against the clock, for bench/security.py.)"""
    with atklib.inside(space):
        real = floods.RealPeer()
    doc = atklib.target_doc(connect_ini=False)
    if rcvbuf is not None:
        doc["rcvbuf"] = rcvbuf
    t = atklib.Target(doc, workdir, runtime=runtime, ns=space)
    res = {"runtime": runtime, "burst": burst, "size": SIZE, "stream_packet": stream_size + 28}
    stopped = False
    try:
        t.wait_event("started", 60)
        _connect(real, t, 30)
        data0 = t.events.get("data", 0)
        rx0 = t.status()["counters"].get("rx", 0)
        os.kill(t.pid, signal.SIGSTOP)  # (the `mast endpoint` process itself: ip netns exec execs it)
        stopped = True
        fl = subprocess.run(atklib.in_netns(space, [sys.executable, "-c", ONE_BURST, "%s:%d" % fuzzrun.TARGET,
                                                    str(burst), str(SIZE)]),
                            stdout=subprocess.PIPE, universal_newlines=True, timeout=60, check=True)
        sent_flood, send_errors = [int(x) for x in fl.stdout.split()]
        sent_stream = 0
        for i in range(stream_n):
            if real.ep.send_data((b"S%06d" % i) + bytes(stream_size - 7), fuzzrun.now_ms()):
                sent_stream += 1
            real.flush()
        os.kill(t.pid, signal.SIGCONT)
        stopped = False
        # what it kept, it reads now: done when the stream's datagrams are all there (at most 30 s)
        end = time.monotonic() + 30
        while t.events.get("data", 0) - data0 < sent_stream and time.monotonic() < end:
            real.pump()
            time.sleep(0.02)
        got = t.events.get("data", 0) - data0
        st = t.status()
        res.update({"stream_sent": sent_stream, "stream_received": got, "stream_lost": sent_stream - got,
                    "flood_sent": sent_flood, "flood_send_errors": send_errors,
                    "target_rx": st["counters"].get("rx", 0) - rx0,
                    "internal_errors": st["counters"].get("internal_error", 0)})
    finally:
        if stopped:
            os.kill(t.pid, signal.SIGCONT)
        res["exit_code"] = t.stop(30)
        real.sock.close()
    return res


def run_bursts(space, workdir, runtime="cpython", seconds=3.0, mpy_dir=None, heapsize="176K",
               rate=100, burst=BURST, period_s=PERIOD_S, stream_size=SIZE - 28, rcvbuf=None):
    """rcvbuf: the endpoint file's key (None: not given, the endpoint's default)."""
    with atklib.inside(space):
        real = floods.RealPeer()
    doc = atklib.target_doc(connect_ini=False)
    if rcvbuf is not None:
        doc["rcvbuf"] = rcvbuf
    t = atklib.Target(doc, workdir, runtime=runtime,
                      heapsize=heapsize, mpy_dir=mpy_dir, ns=space)
    res = {"runtime": runtime, "burst": burst, "size": SIZE, "period_ms": period_s * 1000,
           "rate": rate, "stream_packet": stream_size + 28}
    try:
        t.wait_event("started", 60)
        _connect(real, t, 10)
        data0 = t.events.get("data", 0)
        sent_stream = 0
        # the attacker: its own process, independent of the stream (as on the internet)
        fl = subprocess.Popen(atklib.in_netns(space, [sys.executable, "-c", FLOODER, "%s:%d" % fuzzrun.TARGET,
                                                      str(seconds), str(burst), str(period_s), str(SIZE)]),
                              stdout=subprocess.PIPE, universal_newlines=True)
        r = random.Random(15)
        t0 = time.monotonic()
        next_data = t0 + 0.1
        try:
            while fl.poll() is None and time.monotonic() - t0 < seconds + 10:
                if time.monotonic() >= next_data:
                    payload = (b"S%06d" % sent_stream) + bytes(stream_size - 7)
                    if real.ep.send_data(payload, fuzzrun.now_ms()):
                        sent_stream += 1
                    real.flush()
                    next_data += (0.5 + r.random()) / rate  # 100/s on average, random phase
                real.pump()
                time.sleep(max(0, min(0.002, next_data - time.monotonic())))
            out = fl.communicate(timeout=10)[0].split()
        finally:
            if fl.poll() is None:
                fl.kill()
                fl.wait(5)
        sent_flood, send_errors = int(out[0]), int(out[1])
        res["flood_seconds"] = float(seconds)
        # the tail: what the endpoint still has queued; done when all arrived, or after 1 s
        # without a new one (at most 10 s)
        end = time.monotonic() + 10
        last, quiet_since = -1, time.monotonic()
        while time.monotonic() < end:
            real.pump()
            got = t.events.get("data", 0) - data0
            if got >= sent_stream:
                break
            if got != last:
                last, quiet_since = got, time.monotonic()
            elif time.monotonic() - quiet_since > 1.0:
                break
            time.sleep(0.05)
        got = t.events.get("data", 0) - data0
        st = t.status()
        res.update({"stream_sent": sent_stream, "stream_received": got,
                    "stream_lost": sent_stream - got,
                    "loss_pct": round(100.0 * (sent_stream - got) / sent_stream, 1) if sent_stream else None,
                    "flood_sent": sent_flood, "flood_send_errors": send_errors,
                    "target_rx": st["counters"].get("rx", 0),
                    "flood_pps": int(sent_flood / res["flood_seconds"]),
                    "internal_errors": st["counters"].get("internal_error", 0)})
    finally:
        res["exit_code"] = t.stop(30)
        real.sock.close()
    return res
