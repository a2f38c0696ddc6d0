"""A stateful fuzz of two MAST cores on the simulated network (tests/core/simnet.py), for
CPython and MicroPython alike (restricted Python): each trial drives a pair (a: eth, wifi and
v6 uplinks, the wifi one sometimes behind NAT; b: v4 and v6) into one of STATES, then
interleaves hostile datagrams with timers, uplinks going down, coming back or renumbered, data
and closes. Hostile datagrams are of three kinds: bodies of every type at their limits (TSNs
at +-1 and 2^31, seqs of 0, 2^30, 2^32, 2^48-1 and old ones, SET lists with 0, 16, our own,
unspecified, v6 or repeated addresses, every ERR code), re-sealed with the sender's real
direction key, as a key holder would; packets the network carried, mutated without the key
(truncated, bits flipped, type, seq or label changed, bodies swapped) or replayed unchanged;
and random bytes of 0 to 2,049. Sources are odd at times (port 0, 0.0.0.0, ::, ::ffff:,
fe80::, another family than the uplink's).

After every step, the invariants: no call raises, no internal_error; a datagram that does not
carry the key changes nothing (state, TSN, the peer's list, remotes, the replay window, the
primary, the peer's label); every path has its remote and a live uplink; the primary is one of
the paths; at most 24 paths, 20 remotes of which 4 observed; below established there is a
handshake; every association is where its label and its peer say.

    .venv/bin/python tests/attacks/statefuzz.py SEED TRIALS STEPS        (PYTHONPATH: firmware, tests/core)
    MICROPYPATH=<mpy of firmware>:tests/core:tests/attacks micropython -X heapsize=512K -m statefuzz SEED TRIALS STEPS

The last line printed is a JSON summary: {"seed", "trials", "steps", "hostile": {"auth",
"mutated", "random"}, "failures", "first"} (first: up to 5 distinct failures, each with the
trial and step it came at). tests/attacks/test_atk_statefuzz.py runs a short campaign on both
runtimes; it found an uplink flap that left a removed path as the primary and a COOKIE-ECHO of
another family that left a half-built association behind (tests/core/test_handshake_more.py,
test_init_refusals.py).
"""

import gc
import json
import sys

import simnet
from mast import wire
from mast.assoc import ESTABLISHED, CLOSED

MP = sys.implementation.name == "micropython"
POOL = 40 if MP else 300  # packets kept to mutate and replay (a board-sized heap on MicroPython)


class R:
    def __init__(self, seed):
        self.s = (seed * 2654435761 + 12345) & 0xFFFFFFFF or 1

    def u32(self):
        x = self.s
        x ^= (x << 13) & 0xFFFFFFFF
        x ^= x >> 17
        x ^= (x << 5) & 0xFFFFFFFF
        self.s = x
        return x

    def below(self, n):
        return self.u32() % n

    def rint(self, lo, hi):
        return lo + self.below(hi - lo + 1)

    def choice(self, s):
        return s[self.below(len(s))]

    def bytes(self, n):
        return bytes([self.u32() & 255 for _ in range(n)])


STATES = ("cookie-wait", "cookie-echoed", "established", "outage", "shut-sent",
          "shut-ack-sent", "closed", "est-multi")
FAIL = []  # one entry per failure
SEEN = {}  # a failure's first 45 characters -> how often
FIRST = []  # the first few distinct failures, with where they came
CTX = [""]  # the trial and step now
LOG = []  # the last steps (CPython: printed with a failure's first report)
VERBOSE = [False]


def log(x):
    if MP or not VERBOSE[0]:
        return
    LOG.append(x)
    if len(LOG) > 40:
        del LOG[:20]


def states(ep):
    return [(a.label, a.state, a.hs is not None) for a in ep.assocs.values()]



def fail(msg):
    FAIL.append(1)
    key = msg[:45]
    n = SEEN.get(key, 0)
    SEEN[key] = n + 1
    if n == 0 and len(FIRST) < 5:
        FIRST.append(msg[:300] + " " + CTX[0])
    if n < 2:
        print("FAIL", msg, CTX[0])
        if n == 0:
            for x in LOG[-12:]:
                print("     log:", x)


def build(r, target):
    net = simnet.Net(0, seed="n%d" % r.u32())
    kw = {}
    if r.below(3) == 0:
        kw["profile"] = "fast"
    if r.below(3) == 0:
        kw["mode"] = "redundant"
    if r.below(3) == 0:
        kw["resend_ms"] = 500
    kw["replay_window"] = r.choice((64, 128, 1024))
    ca = simnet.config("a", {"b": {"addresses": ["10.9.0.1:6278", "[2001:db8:9::1]:6278"]}}, **kw)
    cb = simnet.config("b", ["a"], **kw)
    net.node("a", ca)
    net.node("b", cb)
    net.uplink("b", "wan", ("10.9.0.1", 6278), delay=1)
    net.uplink("b", "wan6", ("2001:db8:9::1", 6278), delay=1)
    net.uplink("a", "eth", ("10.1.0.2", 6278), delay=1, priority=10)
    net.uplink("a", "wifi", ("10.2.0.2", 6278), delay=2, priority=20)
    net.uplink("a", "v6", ("2001:db8:1::2", 6278), delay=1, priority=30, cost=5)
    if r.below(3) == 0:
        net.set_nat("a", "wifi", ("198.51.100.7", 40000))
    pool = []  # every packet the network carried: (src node, dst node, bytes)
    hold = {"drop_types": ()}

    def spy(src, dst, data):
        if len(pool) < POOL:
            pool.append((src, dst, bytes(data)))
        elif r.below(4) == 0:
            pool[r.below(POOL)] = (src, dst, bytes(data))
        return data[1] in hold["drop_types"]

    net.drop = spy
    A = net.nodes["a"].ep
    B = net.nodes["b"].ep
    net.nodes["a"].events = net.nodes["b"].events = None
    net.nodes["a"].payloads = net.nodes["b"].payloads = None
    if target == "cookie-wait":
        hold["drop_types"] = (wire.INIT_ACK,)
    elif target == "cookie-echoed":
        hold["drop_types"] = (wire.COOKIE_ACK,)
    A.connect("b", net.now)
    net.flush()
    net.run(net.now + 1500)
    if target in ("cookie-wait", "cookie-echoed"):
        return net, pool, hold
    hold["drop_types"] = ()
    net.run(net.now + 3000)
    s = simnet.Stream(net, "a", rate=50)
    net.run(net.now + 300)
    s.stop()
    if target == "outage":
        for n in ("eth", "wifi", "v6"):
            net.link("a", n).cut = True
        net.run(net.now + 6000)
    elif target == "shut-sent":
        hold["drop_types"] = (wire.SHUT_ACK, wire.SHUT)
        A.close(net.now)
        net.flush()
        net.run(net.now + 5)
    elif target == "shut-ack-sent":
        hold["drop_types"] = (wire.SHUT_ACK, wire.SHUT_COMPLETE)
        B.close(net.now)
        net.flush()
        net.run(net.now + 5)
    elif target == "closed":
        A.close(net.now)
        net.flush()
        net.run(net.now + 20)
    elif target == "est-multi":
        net.run(net.now + 8000)
    return net, pool, hold


def snap(ep):
    out = []
    for label in sorted(ep.assocs):
        a = ep.assocs[label]
        out.append((label, a.state, a.peer_tsn, repr(a.peer_list), sorted(a.remotes),
                    a.window.highest, a.primary.name if a.primary else None, a.peer_label))
    return repr(out)


def check_inv(ep, where):
    for label in ep.assocs:
        a = ep.assocs[label]
        if a.label != label:
            fail("%s: label map" % where)
        for p in a.plist:
            r = a.remotes.get(p.raddr)
            if r is None:
                fail("%s: path %s without remote (state %d)" % (where, p.name, a.state))
            elif r.paths.get(p.uplink.name) is not p:
                fail("%s: path %s not in its remote's paths" % (where, p.name))
            if ep.uplinks.get(p.uplink.name) is not p.uplink and a.state != CLOSED:
                fail("%s: path %s on a removed uplink (state %d)" % (where, p.name, a.state))
        if a.primary is not None and a.primary not in a.plist:
            fail("%s: primary %s not in plist (state %d)" % (where, a.primary.name, a.state))
        if a.state < ESTABLISHED and a.hs is None:
            fail("%s: state %d without handshake; last_error %s counters %s" % (where, a.state, ep.last_error, ep.counters))
        if len(a.plist) > 24:
            fail("%s: %d paths" % (where, len(a.plist)))
        n_obs = 0
        for x in a.remotes.values():
            n_obs += not x.advertised
        if n_obs > 4 or len(a.remotes) > 20:
            fail("%s: %d remotes, %d observed" % (where, len(a.remotes), n_obs))
    for peer in ep.by_peer:
        a = ep.by_peer[peer]
        if ep.assocs.get(a.label) is not a:
            fail("%s: by_peer %s not in assocs" % (where, peer))
    if ep.counters.get("internal_error"):
        fail("%s: internal_error %s" % (where, ep.last_error))
        ep.counters["internal_error"] = 0


SRCS_A = (("10.1.0.2", 6278), ("10.2.0.2", 6278), ("198.51.100.7", 40000), ("2001:db8:1::2", 6278),
          ("10.66.0.1", 1), ("0.0.0.0", 6278), ("::", 6278), ("10.1.0.2", 0), ("::ffff:10.1.0.2", 6278),
          ("255.255.255.255", 65535))
SRCS_B = (("10.9.0.1", 6278), ("2001:db8:9::1", 6278), ("10.66.0.2", 7), ("0.0.0.0", 0),
          ("10.9.0.1", 6279), ("fe80::1", 6278))


def rand_entries(r, n):
    out = []
    for i in range(n):
        k = r.below(10)
        if k == 0:
            ip = "0.0.0.0"
        elif k == 1:
            ip = "::"
        elif k < 5:
            ip = "2001:db8:%x::%x" % (r.below(4), r.rint(1, 3))
        elif k == 5:
            ip = r.choice(("10.1.0.2", "10.2.0.2", "10.9.0.1", "127.0.0.1"))
        else:
            ip = "192.0.2.%d" % r.rint(1, 6)
        out.append(((ip, r.choice((1, 6278, 65535, r.rint(1, 65535)))), r.below(256), r.below(256)))
    return out


def body_for(r, ptype, sender_assoc, ep_sender):
    """A body of ptype (valid, or at a limit, or slightly wrong)."""
    k = r.below(12)
    own = ep_sender.addr_list()
    if ptype == wire.SET or ptype == wire.COOKIE_ACK:
        n = r.choice((0, 1, 2, 16, r.below(17)))
        ent = (list(own) + rand_entries(r, 16))[:n] if r.below(2) else rand_entries(r, n)
        if ptype == wire.SET:
            t = sender_assoc.tsn
            tsn = r.choice(((t + 1) & 0xFFFFFFFF, t, (t - 1) & 0xFFFFFFFF, (t + 0x80000000) & 0xFFFFFFFF,
                            (t + 0x7FFFFFFF) & 0xFFFFFFFF, r.u32()))
            if tsn == (t + 1) & 0xFFFFFFFF:
                sender_assoc.tsn = tsn
            b = bytearray(wire.enc_set(tsn, ent))
        else:
            b = bytearray(wire.enc_addrs(ent))
    elif ptype == wire.PROBE:
        b = bytearray(wire.enc_probe(r.bytes(8), r.choice((0, 1, 2, 15, 16, 254, 255, r.below(256)))))
    elif ptype == wire.PROBE_ACK:
        # echo a real outstanding challenge of the receiver sometimes
        ch = r.bytes(8)
        b = bytearray(ch + wire.enc_sockaddr(r.choice(SRCS_A[:5] + SRCS_B[:3] + (("::", 1),)))
                      if r.below(10) else ch + bytes([4]) + bytes(6))
    elif ptype == wire.KEEPALIVE:
        b = bytearray(wire.enc_keepalive(r.choice((0, 1, sender_assoc.seq, 0xFFFFFFFFFFFF, 0x3FFFFFFF,
                                                    0x40000000, r.u32()))))
    elif ptype == wire.ERR:
        t = sender_assoc.peer_tsn
        b = bytearray(wire.enc_err(r.choice((0, 1, 2, 3, 255)), r.choice((t, 0, r.u32()))))
    elif ptype in (wire.SHUT, wire.SHUT_ACK, wire.SHUT_COMPLETE, wire.SET_ACK):
        t = r.choice((sender_assoc.tsn, sender_assoc.peer_tsn, 0, r.u32()))
        b = bytearray(wire.enc_tsn(t))
    elif ptype in (wire.DATA, wire.DATA_IP):
        b = bytearray(r.bytes(r.choice((0, 1, 20, 200))) + bytes(r.choice((0, 0, 1800))))
        if r.below(20) == 0:
            b = bytearray(2020)
    elif ptype == wire.INIT_ACK:
        b = bytearray(r.bytes(44))
    else:
        b = bytearray(r.bytes(r.below(60)))
    if k == 0 and b:
        b = b[: r.below(len(b))]
    elif k == 1:
        b += r.bytes(r.rint(1, 9))
    elif k == 2 and b:
        b[r.below(len(b))] ^= 1 << r.below(8)
    elif k == 3:
        b += bytes(r.rint(1, 9))
    return bytes(b)


TYPES = (wire.SET, wire.SET_ACK, wire.PROBE, wire.PROBE_ACK, wire.SHUT, wire.SHUT_ACK,
         wire.SHUT_COMPLETE, wire.ERR, wire.KEEPALIVE, wire.DATA, wire.DATA_IP, wire.COOKIE_ACK,
         wire.INIT_ACK, wire.COOKIE_ECHO, wire.INIT)


def hostile(r, net, pool, stats):
    """One hostile datagram to a or b; the name of the one it went to."""
    to = r.choice(("a", "b"))
    ep = net.nodes[to].ep
    other = net.nodes["b" if to == "a" else "a"].ep
    sa = other.association(to)
    srcs = SRCS_B if to == "a" else SRCS_A
    src = r.choice(srcs)
    ups = list(ep.uplinks.keys()) + ["nope"]
    up = r.choice(ups) if r.below(20) == 0 else None  # any uplink, "nope" included
    if up is None:
        v6 = ":" in src[0]
        cands = [n for n in ep.uplinks if (":" in ep.uplinks[n].addr[0]) == v6]
        up = r.choice(cands) if cands else ups[0]
    how = r.below(10)
    pkt = None
    unauth = False
    to_pool = [p for p in pool if p[1] == to]
    if how <= 3 and sa is not None and sa.tx_mac is not None:
        # a key holder: a body of any type, re-sealed with the sender's real direction key
        ptype = r.choice(TYPES)
        body = body_for(r, ptype, sa, other)
        seq = sa.seq
        sk = r.below(10)
        if sk == 0:
            seq = r.choice((0, 1, 0xFFFFFFFFFFFF, 0x3FFFFFFF, 0x40000000, 0x100000000))
        elif sk == 1:
            seq = max(0, sa.seq - r.rint(1, 3000))
        else:
            sa.seq += 1
        label = sa.peer_label if r.below(15) else r.choice((0, r.u32(), sa.label))
        if ptype == wire.INIT:
            label, seq = 0, 0
        pkt = wire.seal(sa.tx_mac, ptype, label, seq, body)
        stats["auth"] += 1
    elif how <= 6 and to_pool:
        # a captured packet, mutated without its key (must change nothing), or replayed
        orig = r.choice(to_pool)[2]
        p = bytearray(orig)
        m = r.below(8)
        if m == 0:
            p = p[: r.below(len(p) + 1)]
        elif m == 1:
            for _ in range(r.rint(1, 3)):
                p[r.below(len(p))] ^= 1 << r.below(8)
        elif m == 2:
            p += r.bytes(r.rint(1, 40))
        elif m == 3:
            p[1] = r.choice(TYPES + (0, 14, 15, 18, 255))
        elif m == 4:
            p = p[:12] + r.bytes(r.below(120)) + p[-16:]
        elif m == 5:  # seq field changed
            i = r.rint(6, 11)
            p[i] ^= 1 << r.below(8)
        elif m == 6:  # label changed
            p[r.rint(2, 5)] ^= 1 << r.below(8)
        pkt = bytes(p)
        unauth = pkt != orig
        stats["mutated"] += 1
    else:
        pkt = r.bytes(r.choice((0, 1, 27, 28, 29, 96, r.below(200), 2048, 2049)))
        if len(pkt) > 1 and r.below(2):
            pkt = bytes([1, r.choice(TYPES)]) + pkt[2:]
        unauth = True
        stats["random"] += 1
    if MP:
        gc.collect()
    before = snap(ep) if unauth else None
    c0 = dict(ep.counters)
    try:
        ep.receive(up, src, pkt, net.now)
    except BaseException as e:
        fail("receive raised %r (to %s, type %s)" % (e, to, pkt[1:2]))
    why = [k for k in ep.counters if ep.counters[k] != c0.get(k, 0) and k != "rx"]
    log("t=%d to %s up %s src %s type %s len %d unauth %s -> %s; a=%s b=%s" % (net.now, to, up, src, pkt[1] if len(pkt) > 1 else None, len(pkt), unauth, why, states(net.nodes["a"].ep), states(net.nodes["b"].ep)))
    if unauth:
        after = snap(ep)
        if after != before:
            fail("unauthenticated packet changed %s: %s -> %s pkt=%s" % (to, before, after, pkt.hex() if hasattr(pkt, "hex") else pkt))
    return to


def safe_flush(net):
    try:
        net.flush()
    except AssertionError as e:
        fail(str(e))
        for n in net.nodes.values():
            n.ep.counters["internal_error"] = 0


def step(r, net, pool, hold, stats):
    k = r.below(20)
    A = net.nodes["a"].ep
    B = net.nodes["b"].ep
    if k >= 13:
        log("t=%d action %d; a=%s b=%s" % (net.now, k, states(A), states(B)))
    try:
        if k < 13:
            hostile(r, net, pool, stats)
            safe_flush(net)
        elif k < 16:
            net.run(net.now + r.choice((1, 10, 100, 999, 3000, 20000)), limit=20000)
        elif k == 16:
            n = r.choice(("eth", "wifi", "v6"))
            if n in A.uplinks and r.below(2):
                A.uplink_down(n, net.now)
            else:
                addr = r.choice((("2001:db8:1::2", 6278), ("2001:db8:1::3", 6278))) if n == "v6" else r.choice((("10.1.0.2", 6278), ("10.1.0.3", 6278), ("10.2.0.2", 6278)))
                net.links.pop(net.link("a", n).addr, None)
                net.link("a", n).addr = addr
                net.links[addr] = net.link("a", n)
                A.uplink_up(n, addr, net.now)
            safe_flush(net)
        elif k == 17:
            for ep, peer in ((A, "b"), (B, "a")):
                # (not b"S": simnet counts those as a Stream's, by a seq in their bytes)
                ep.send_data(b"R" + r.bytes(r.below(100)), net.now, peer)
            safe_flush(net)
        elif k == 18:
            if r.below(4) == 0:
                hold["drop_types"] = ()
            if r.below(3) == 0:
                A.connect("b", net.now)
            elif r.below(6) == 0:
                r.choice((A, B)).close(net.now)
            safe_flush(net)
        else:
            for ep in (A, B):
                t = ep.next_timer()
                if t is not None and t <= net.now:
                    ep.handle_timer(net.now)
            safe_flush(net)
    except RuntimeError as e:
        fail("hang/timer: %s (state a=%s b=%s)" % (e, [x.state for x in A.assocs.values()], [x.state for x in B.assocs.values()]))
    except Exception as e:
        fail("step %d raised %r" % (k, e))
        if not MP:
            import traceback
            traceback.print_exc()
    check_inv(A, "a")
    check_inv(B, "b")
    if k >= 13:
        log("   after: t=%d a=%s b=%s" % (net.now, states(A), states(B)))


def run(seed, trials, steps):
    """The campaign: its summary (a dict, as printed last)."""
    stats = {"auth": 0, "mutated": 0, "random": 0}
    for t in range(trials):
        r = R(seed * 100003 + t)
        target = STATES[t % len(STATES)]
        CTX[0] = "(trial %d seed %d target %s, building)" % (t, seed, target)
        try:
            net, pool, hold = build(r, target)
        except Exception as e:
            fail("build %s raised %r" % (target, e))
            continue
        for i in range(steps):
            CTX[0] = "(trial %d seed %d target %s step %d)" % (t, seed, target, i + 1)
            step(r, net, pool, hold, stats)
            if len(FAIL) > 5000:
                break
        net = pool = hold = None
        gc.collect()
    return {"seed": seed, "trials": trials, "steps": steps, "hostile": stats,
            "failures": len(FAIL), "first": FIRST}


def main():
    args = sys.argv[1:]
    VERBOSE[0] = "-v" in args
    args = [x for x in args if x != "-v"]
    seed = int(args[0]) if args else 1
    trials = int(args[1]) if len(args) > 1 else 20
    steps = int(args[2]) if len(args) > 2 else 200
    res = run(seed, trials, steps)
    for k in SEEN:
        print("  %6d x %s" % (SEEN[k], k))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
