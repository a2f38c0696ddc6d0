"""Overhead on the wire, measured from real packets: what a MAST DATA (datagrams, the endpoint
process) and DATA-IP (IP packets through mastd's TUN) packet carries beyond its payload, against
WireGuard's 32 bytes (60 with UDP/IPv4). Root only (skipped with the reason otherwise).

    .venv/bin/python bench/overhead.py

Two namespaces joined by a veth pair. An AF_PACKET socket on one end (nsbench.py capture) sees
every frame; for each UDP datagram it notes the lengths and the first bytes of the UDP payload,
so MAST packets are told apart by their type byte (DATA 16, DATA-IP 17, KEEPALIVE 13, ...).
Overhead = UDP payload length - the application's payload (DATA), or - the inner IP packet's
length (DATA-IP); "with UDP/IPv4" adds the outer IP and UDP headers the capture saw. Writes the
`overhead` section of docs/BENCHMARKS.md.
"""

import collections
import json
import os
import shutil
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import benchdoc  # noqa: E402
import nsbench  # noqa: E402
from nsbench import PSK, Proc  # noqa: E402

import netns  # noqa: E402

A, B = "10.77.0.1", "10.77.0.2"
PORT = 6278
SIZES = (1, 64, 200, 1200)  # application payloads
IP_SIZES = (0, 64, 1400)  # UDP payloads inside the tunnel
WG = 32
TYPES = {1: "INIT", 2: "INIT-ACK", 3: "COOKIE-ECHO", 4: "COOKIE-ACK", 5: "SET", 6: "SET-ACK", 7: "PROBE",
         8: "PROBE-ACK", 9: "SHUT", 10: "SHUT-ACK", 11: "SHUT-COMPLETE", 12: "ERR", 13: "KEEPALIVE",
         16: "DATA", 17: "DATA-IP"}


def log(msg):
    sys.stderr.write("[%s] %s\n" % (time.strftime("%H:%M:%S"), msg))
    sys.stderr.flush()


class Capture:
    def __init__(self, ns, dev, seconds, workdir, name):
        self.pkts = []
        self.p = Proc(ns, [sys.executable, os.path.join(HERE, "nsbench.py"), "capture", dev, str(seconds)],
                      name, workdir, on_line=self._line, keep=True)
        self.p.wait_line(lambda t: t == "capturing", 10, "capture ready")

    def _line(self, at, text):
        if text.startswith("{"):
            self.pkts.append(json.loads(text))

    def stop(self):
        self.p.stop()
        return self.pkts


def mast_type(pkt):
    head = bytes.fromhex(pkt["head"])
    if len(head) >= 2 and head[0] == 1:
        return head[1]
    return None


def datagrams(work, spaces, o1, o2):
    """The endpoint process sends 20 datagrams of each payload size ("send" commands); the
    capture counts DATA lengths."""
    from failover_netns import Ep  # the endpoint-process wrapper

    srv = Ep(o2, {"mast": {"name": "server", "peers": {"client": {"psk": PSK, "initiate": False}}},
                  "uplinks": {"wan": {"bind": "%s:%d" % (B, PORT)}}}, work, "ovh-server")
    cli = Ep(o1, {"mast": {"name": "client", "peers": {"server": {"psk": PSK, "addresses": ["%s:%d" % (B, PORT)]}}},
                  "uplinks": {"wan": {"bind": "%s:%d" % (A, PORT)}}, "connect": ["server"]}, work, "ovh-client")
    out = {}
    seen = collections.Counter()
    try:
        if cli.wait_event(lambda e: e.get("event") == "association_up", 15, "association") is None:
            raise RuntimeError("no association: %s" % cli.p.stderr_tail())
        for size in SIZES:
            cap = Capture(o1, "v1", 30, work, "cap-%d" % size)
            for i in range(20):
                cli.request("send", hex=("%02x" % (i + 1)) * size, peer="server")
                time.sleep(0.01)
            time.sleep(0.2)
            pkts = cap.stop()
            data = [p for p in pkts if p["src"] == A and p["dport"] == PORT and mast_type(p) == 16]
            for p in pkts:
                t = mast_type(p)
                if t is not None:
                    seen[(TYPES.get(t, str(t)), p["udp_len"] - 8)] += 1
            lens = collections.Counter((p["udp_len"] - 8, p["ip_len"]) for p in data)
            out[size] = {"n": len(data), "lens": lens}
            log("DATA with %d B payload: %s" % (size, dict(lens)))
    finally:
        cli.stop()
        srv.stop()
    return out, seen


def ip_packets(work, o1, o2):
    """mastd on both ends; UDP datagrams sent into the TUN; the capture counts DATA-IP lengths."""
    base = {"profile": "default", "tun": "mastov0"}
    c1 = dict(base, name="a", internal="10.99.2.1/24",
              peers={"b": {"psk": PSK, "addresses": [B], "internal": "10.99.2.2"}}, uplinks={"wan": {"device": "v1"}})
    c2 = dict(base, name="b", internal="10.99.2.2/24",
              peers={"a": {"psk": PSK, "internal": "10.99.2.1"}}, uplinks={"wan": {"device": "v2"}})
    ds = []
    out = {}
    try:
        ds.append(nsbench.Mastd(o2, c2, work, "ovh-mastd-b"))
        ds.append(nsbench.Mastd(o1, c1, work, "ovh-mastd-a"))
        ds[1].wait_assoc(20)
        for size in IP_SIZES:
            cap = Capture(o1, "v1", 30, work, "capip-%d" % size)
            code = ("import socket,time\ns=socket.socket(socket.AF_INET,socket.SOCK_DGRAM)\n"
                    "for i in range(20):\n s.sendto(bytes(%d),('10.99.2.2',9)); time.sleep(0.01)\n" % size)
            netns.run([sys.executable, "-c", code], ns=o1)
            time.sleep(0.3)
            pkts = cap.stop()
            data = [p for p in pkts if p["src"] == A and mast_type(p) == 17]
            inner = size + 28  # IPv4 20 + UDP 8
            lens = collections.Counter((p["udp_len"] - 8, p["ip_len"]) for p in data)
            out[size] = {"n": len(data), "lens": lens, "inner": inner}
            log("DATA-IP carrying a %d B IP packet: %s" % (inner, dict(lens)))
    finally:
        for d in reversed(ds):
            d.stop()
    return out


def _on_term(signum, frame):
    raise SystemExit(128 + signum)  # so the finally clauses remove what this run made


def main():
    reason = nsbench.root_reason()
    if reason:
        print("bench/overhead.py: skipped: %s" % reason, file=sys.stderr)
        return 0
    netns.cleanup_leftovers("mbo")
    work = tempfile.mkdtemp(prefix="mast-overhead-")
    spaces = netns.Namespaces(prefix="mbo")
    t0 = time.monotonic()
    try:
        o1, o2 = spaces.add("o1"), spaces.add("o2")
        spaces.veth(o1, "v1", o2, "v2")
        netns.ip(o1, "addr", "add", A + "/24", "dev", "v1")
        netns.ip(o2, "addr", "add", B + "/24", "dev", "v2")
        dg, seen = datagrams(work, spaces, o1, o2)
        ipd = ip_packets(work, o1, o2)
    finally:
        spaces.close()
        netns.cleanup_leftovers("mbo")
        shutil.rmtree(work, ignore_errors=True)
    rows = ["| packet | payload (bytes) | packets captured | UDP payload (bytes) | MAST overhead | with UDP/IPv4 | WireGuard (with UDP/IPv4) |",
            "|---|---|---|---|---|---|---|"]
    overheads = set()
    for size, r in sorted(dg.items()):
        for (ulen, iplen), n in sorted(r["lens"].items()):
            ov = ulen - size
            overheads.add(ov)
            rows.append("| DATA | %d (app) | %d | %d | **%d** | %d | %d (%d) |" % (size, n, ulen, ov, iplen - size, WG, WG + 28))
    for size, r in sorted(ipd.items()):
        for (ulen, iplen), n in sorted(r["lens"].items()):
            ov = ulen - r["inner"]
            overheads.add(ov)
            rows.append("| DATA-IP | %d (inner IPv4 packet: UDP %d + 28) | %d | %d | **%d** | %d | %d (%d) |" % (
                r["inner"], size, n, ulen, ov, iplen - r["inner"], WG, WG + 28))
    other = ["", "Other MAST packets seen during the datagram runs (type, UDP payload bytes: count): " +
             ", ".join("%s %d B: %d" % (t, ln, n) for (t, ln), n in sorted(seen.items()) if t not in ("DATA",))]
    worst = max(overheads) if overheads else None
    body = ["Captured with an AF_PACKET socket on the sender's veth; the lengths are the ones in the "
            "IP and UDP headers of the frames, not constants. The payload is the application's "
            "datagram (sent with the endpoint process's `send` command) or, through mastd, the whole inner IP packet. WireGuard's figure is its "
            "published data-message overhead (16-byte header + 16-byte tag, plus padding of the "
            "plaintext to a multiple of 16 bytes), not measured here (no WireGuard in this "
            "kernel).", ""] + rows + other
    body += ["", "MAST/1 DATA is a 12-byte header (version, type, 4-byte label, 48-bit sequence number) "
             "and a 16-byte truncated HMAC-SHA-256 tag; the payload is authenticated, not encrypted "
             "(WireGuard's 32 bytes include encryption).", "",
             "Run time %d s." % (time.monotonic() - t0)]
    items = [{"what": "DATA overhead beyond the payload (measured on the wire)", "target": "≤ 32 B (WireGuard)",
              "measured": "%d B (%d with UDP/IPv4; WireGuard 32 / 60)" % (worst, worst + 28) if worst is not None else "–",
              "met": worst is not None and worst <= WG}]
    body += ["", "<!-- results: %s -->" % json.dumps(items)]
    benchdoc.write_section("overhead", "Overhead on the wire", ".venv/bin/python bench/overhead.py", "\n".join(body))
    return 0


if __name__ == "__main__":
    import argparse

    # no options: --help says what it does (and does not run it), a stray argument is refused
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    import signal

    signal.signal(signal.SIGTERM, _on_term)
    sys.exit(main())
