"""A spoofed flood against a presence server, and a legitimate host looking names up through
it: the helpers of test_presence_netns.py's flood test and of bench/presence_flood.py.
Each mode runs as its own process inside a network namespace (root: raw sockets):

    presflood.py flood DST PORT RATE SECONDS SOURCES NAME[,NAME...] [--victim IP]
        UDP datagrams to DST:PORT at RATE a second for at most SECONDS (or until stdin
        closes), each from a spoofed source: one of SOURCES addresses in 10.99.0.0/16 (any
        port), and one in ten from --victim (the legitimate host's own address) if given.
        What a spoofer can send: requests naming the served NAMEs tagged with a key that is
        not theirs (REGISTER, LOOKUP, SUBSCRIBE, fresh counters), and junk. Prints
        {"started": true}, then {"sent": n, "seconds": s} at the end.

    presflood.py lookups DST PORT NAME KEYHEX COUNT INTERVAL WAIT
        As NAME (its key in hex): REGISTER (until answered, at most 5 tries), then COUNT
        LOOKUPs of NAME, INTERVAL seconds apart; a lookup counts as answered if its
        LOOKUP-ACK (tag and counter checked) arrives within WAIT seconds. Prints
        {"registered": bool, "answered": k, "sent": COUNT, "rtt_ms": [...]}.

Every loop is bounded in count and in time. Restricted to the addresses given: the tests and
the benchmark give only namespaces they made.
"""

import json
import os
import select
import socket
import struct
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
FIRMWARE = os.path.join(os.path.dirname(os.path.dirname(HERE)), "firmware")
if FIRMWARE not in sys.path:
    sys.path.insert(0, FIRMWARE)

from presence import msg  # noqa: E402

SPOOF_NET = (10, 99)
TICK_S = 0.01


def cpu_seconds(pid):
    """User + system CPU time of a process so far, from /proc (Linux)."""
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / float(os.sysconf("SC_CLK_TCK"))


def _payloads(names):
    """What an off-path spoofer can send: requests for served names under a wrong key, junk."""
    wrong = bytes(range(200, 232))
    out = []
    ctr = int(time.time() * 1000)
    for n in names:
        up, _ = msg.keys(wrong, n)
        for ptype, body in ((msg.REGISTER, msg.enc_register(600, [(("192.0.2.66", 6278), 0, 0)])),
                            (msg.LOOKUP, msg.enc_lookup(names[0])),
                            (msg.SUBSCRIBE, msg.enc_subscribe(300, names[0]))):
            ctr += 1
            out.append(msg.seal(up, ptype, ctr, n, body))
    out.append(b"\x50" + os.urandom(40))  # PRES/1's first byte, then junk
    out.append(os.urandom(60))
    return out


def _ip_udp(src, dst, sport, dport, payload):
    """An IPv4 + UDP header (the kernel fills in the IP checksum; UDP checksum 0: none)."""
    ulen = 8 + len(payload)
    ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + ulen, 0, 0, 64, 17, 0, src, dst)
    return ip + struct.pack(">HHHH", sport, dport, ulen, 0) + payload


def flood(dst, port, rate, seconds, sources, names, victim=None):
    s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
    dst_b = socket.inet_aton(dst)
    victim_b = socket.inet_aton(victim) if victim else None
    srcs = [bytes([SPOOF_NET[0], SPOOF_NET[1], 1 + i // 250, 1 + i % 250]) for i in range(sources)]
    payloads = _payloads(names)
    print(json.dumps({"started": True}), flush=True)
    per_tick = max(1, int(rate * TICK_S))
    sent = 0
    start = time.monotonic()
    end = start + seconds
    nxt = start
    while True:
        now = time.monotonic()
        if now >= end:
            break
        if now < nxt:
            r, _, _ = select.select([sys.stdin], [], [], nxt - now)
            if r and not os.read(sys.stdin.fileno(), 4096):
                break  # stdin closed: stop
            continue
        for _ in range(per_tick):
            src = victim_b if (victim_b is not None and sent % 10 == 0) else srcs[sent % len(srcs)]
            pkt = _ip_udp(src, dst_b, 1024 + (sent * 7919) % 60000, port, payloads[sent % len(payloads)])
            try:
                s.sendto(pkt, (dst, 0))
            except OSError:
                pass  # a full queue: dropped, as on a real link
            sent += 1
        nxt += TICK_S
        if nxt < now - 0.1:  # far behind (a loaded machine): do not burst to catch up
            nxt = now
    seconds = time.monotonic() - start
    print(json.dumps({"sent": sent, "seconds": round(seconds, 3)}), flush=True)


def lookups(dst, port, name, key, count, interval, wait):
    up, down = msg.keys(key, name)
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", 0))
    server = (dst, port)
    ctr = [int(time.time() * 1000)]

    def ask(ptype, body, want):
        ctr[0] = max(ctr[0] + 1, int(time.time() * 1000))
        c = ctr[0]
        t0 = time.monotonic()
        sock.sendto(msg.seal(up, ptype, c, name, body), server)
        end = t0 + wait
        while True:
            left = end - time.monotonic()
            if left <= 0:
                return None
            r, _, _ = select.select([sock], [], [], left)
            if not r:
                return None
            data, _ = sock.recvfrom(4096)
            try:
                got = msg.parse(data)
            except ValueError:
                continue
            if got[0] == want and got[1] == c and got[2] == name and msg.verify(down, data):
                return (time.monotonic() - t0) * 1000

    registered = False
    for _ in range(5):
        if ask(msg.REGISTER, msg.enc_register(600, [(("192.0.2.10", 6278), 0, 0)]), msg.REGISTER_ACK) is not None:
            registered = True
            break
    rtts = []
    for i in range(count):
        t = time.monotonic()
        rtt = ask(msg.LOOKUP, msg.enc_lookup(name), msg.LOOKUP_ACK)
        if rtt is not None:
            rtts.append(round(rtt, 2))
        pause = interval - (time.monotonic() - t)
        if pause > 0:
            time.sleep(pause)  # pacing of the requests, not a wait for a result
    print(json.dumps({"registered": registered, "answered": len(rtts), "sent": count, "rtt_ms": rtts}),
          flush=True)


def main(argv):
    if len(argv) >= 7 and argv[0] == "flood":
        victim = None
        if "--victim" in argv:
            victim = argv[argv.index("--victim") + 1]
        flood(argv[1], int(argv[2]), float(argv[3]), float(argv[4]), int(argv[5]), argv[6].split(","),
              victim)
        return 0
    if len(argv) == 8 and argv[0] == "lookups":
        lookups(argv[1], int(argv[2]), argv[3], bytes.fromhex(argv[4]), int(argv[5]), float(argv[6]),
                float(argv[7]))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
