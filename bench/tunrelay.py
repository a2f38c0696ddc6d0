"""A bare TUN <-> UDP relay in Python, with no MAST: the ceiling for a Python data path, which
bench/datapath.py measures mastd against. Not a benchmark itself (`make bench` does not run it).

    tunrelay.py --tun NAME --addr 10.98.1.1/24 --route 10.200.0.0/24 \
                --bind 172.31.0.1:7000 --peer 172.31.0.2:7000

Every IP packet read from the TUN goes, unchanged, in one UDP datagram to the peer relay; every
datagram received is written to the TUN. The loop is shaped like mastd's (select.poll over the
TUN and the socket, a bounded batch of reads per wake: 64 from the TUN as mastd's _TUN_READS,
and 64 from the socket) but does nothing else: no header, no authentication, no routing
decision. On SIGTERM it prints {"tun_rx", "udp_tx", "udp_rx", "tun_tx", "errors"} and exits.
"""

import argparse
import fcntl
import json
import os
import select
import signal
import socket
import struct
import subprocess
import sys

_TUNSETIFF = 0x400454CA
_IFF_TUN = 0x0001
_IFF_NO_PI = 0x1000
BATCH = 64


def hostport(text):
    host, port = text.rsplit(":", 1)
    return host, int(port)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tun", required=True)
    ap.add_argument("--addr", required=True)
    ap.add_argument("--route", action="append", default=[])
    ap.add_argument("--mtu", type=int, default=1472)  # 1500 - IPv4 20 - UDP 8
    ap.add_argument("--bind", required=True, type=hostport)
    ap.add_argument("--peer", required=True, type=hostport)
    args = ap.parse_args()

    fd = os.open("/dev/net/tun", os.O_RDWR | os.O_NONBLOCK)
    fcntl.ioctl(fd, _TUNSETIFF, struct.pack("16sH22x", args.tun.encode(), _IFF_TUN | _IFF_NO_PI))
    for cmd in (["link", "set", "dev", args.tun, "mtu", str(args.mtu), "up"],
                ["addr", "replace", args.addr, "dev", args.tun]) + tuple(
                    ["route", "replace", r, "dev", args.tun] for r in args.route):
        subprocess.run(["ip"] + cmd, check=True, timeout=10)
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for opt in (33, 32):  # SO_RCVBUFFORCE, SO_SNDBUFFORCE: as mastd's grow_buffers
        s.setsockopt(socket.SOL_SOCKET, opt, 4 << 20)
    s.bind(args.bind)
    s.setblocking(False)
    peer = args.peer
    stats = {"tun_rx": 0, "udp_tx": 0, "udp_rx": 0, "tun_tx": 0, "errors": 0}
    stop = []
    signal.signal(signal.SIGTERM, lambda *a: stop.append(1))
    p = select.poll()
    p.register(fd, select.POLLIN)
    p.register(s.fileno(), select.POLLIN)
    sfd = s.fileno()
    read, write, sendto, recv = os.read, os.write, s.sendto, s.recv
    print("ready", flush=True)
    while not stop:
        try:
            ready = p.poll(1000)
        except InterruptedError:
            continue
        for f, _ in ready:
            if f == fd:
                for _ in range(BATCH):
                    try:
                        pkt = read(fd, 65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    stats["tun_rx"] += 1
                    try:
                        sendto(pkt, peer)
                        stats["udp_tx"] += 1
                    except OSError:
                        stats["errors"] += 1
            elif f == sfd:
                for _ in range(BATCH):
                    try:
                        data = recv(65535)
                    except (BlockingIOError, InterruptedError):
                        break
                    stats["udp_rx"] += 1
                    try:
                        write(fd, data)
                        stats["tun_tx"] += 1
                    except OSError:
                        stats["errors"] += 1
    print(json.dumps(stats), flush=True)
    os.close(fd)
    return 0


if __name__ == "__main__":
    sys.exit(main())
