# Rendezvous for the endpoint process: peers named by DNS, and the presence
# client (PRES/1, firmware/presence/) on the runtime's own uplink sockets.
#
# The endpoint file may hold, beside "mast", a "presence" object (docs/PROTOCOL.md,
# "Presence", P.11):
#
#   "presence": {"key": "<base64 of 32 bytes: this host's name's presence key>",
#                "server": "192.0.2.53:6279",   this host's presence server (or a list);
#                                               else its own name's SRV record (CPython)
#                "ttl": 120,                    registration TTL, s
#                "watch": ["peer"],             peers to follow; default: all
#                "resolver": "192.0.2.53:53",   DNS server to ask (CPython); default: the system's
#                "counter_file": "presence.ctr"} keep the request counter's floor in this file
#                                               (a host without a real-time clock: a board)
#
# and "connect" may name a peer that has `dns` and no `addresses`: it is connected once its
# name resolves. The I/O here is DNS only: on CPython dnspython (A, AAAA and SRV
# _mast._udp.<name>, at most 3 s a name), run in threads (Background) so that the loop never
# waits for it; on MicroPython socket.getaddrinfo, blocking (a board's only way; A/AAAA only:
# the presence server is then the configured one, or the name's own addresses, port 6279).
# Everything else is the sans-IO client's, which wraps the Endpoint: the Runtime drives
# Presence(ep) exactly as it drives an Endpoint.
#
# Restricted Python: runs on MicroPython and CPython. presence.* is imported only when an
# endpoint file asks for it, so a board without it pays no heap.

import sys

from mast.addr import canonical
from .runconfig import FileError
from .hostport import parse_hostport
from .sockaddr import from_socket
from .peeraddr import not_a_host

MICROPYTHON = sys.implementation.name == "micropython"
_KEYS = ("key", "server", "ttl", "watch", "resolver", "counter_file")
PRESENCE_PORT = 6279
MAX_SERVERS = 4  # presence servers taken from an SRV answer (the client subscribes at 4)


def split(doc):
    """Take what runconfig.check() does not know out of an endpoint file (a dict from JSON):
    the "presence" object, and the peers in "connect" that have a DNS name and no addresses.
    -> what check() below takes (None if neither is there)."""
    if type(doc) is not dict:
        return None
    pres = doc.pop("presence", None)
    by_dns = []
    core = doc.get("mast")
    peers = core.get("peers") if type(core) is dict else None
    conn = doc.get("connect")
    if type(conn) is list and type(peers) is dict:
        keep = []
        for p in conn:
            pc = peers.get(p) if type(p) is str else None
            if type(pc) is dict and pc.get("dns") and not pc.get("addresses"):
                by_dns.append(p)
            else:
                keep.append(p)
        doc["connect"] = keep
    if pres is None and not by_dns:
        return None
    return {"presence": pres, "connect": by_dns}


def _server(key, text, port):
    """"1.2.3.4:6279", "[2001:db8::1]:6279" or a bare address (port: `port`), "[2001:db8::1]"
    too (as the peers' addresses take it)."""
    if type(text) is str and text[:1] == "[" and text[-1:] == "]" and ":" in text:
        text = text[1:-1]
    if type(text) is str and text.count(":") != 1 and text[:1] != "[":
        try:
            return canonical(text), port  # a bare IPv4 or IPv6 address
        except ValueError:
            pass
    try:
        return parse_hostport(text)
    except ValueError as e:
        raise FileError(key, str(e))


def check(part, cfg):
    """The checked presence settings (None if part is None); FileError naming the key."""
    if part is None:
        return None
    pres = part["presence"]
    peers = cfg["mast"]["peers"]
    out = {"key": None, "servers": [], "ttl": 120, "watch": [], "resolver": None,
           "counter_file": None, "connect": part["connect"]}
    if pres is not None:
        if type(pres) is not dict:
            raise FileError("presence", "must be an object, e.g. {\"key\": \"<base64 of 32 bytes>\"}")
        for k in pres:
            if k not in _KEYS:
                raise FileError("presence." + k, "unknown key (known: %s)" % ", ".join(_KEYS))
        if "key" not in pres:
            raise FileError("presence.key", "required: this host's presence key, standard base64 of 32 bytes")
        from mast.keys import decode_psk

        try:
            out["key"] = decode_psk(pres["key"])
        except (ValueError, TypeError):
            raise FileError("presence.key", "must be standard base64 of exactly 32 bytes")
        srv = pres.get("server", [])
        for s in srv if type(srv) is list else [srv]:
            out["servers"].append(_server("presence.server", s, PRESENCE_PORT))
        ttl = pres.get("ttl", 120)
        if type(ttl) is not int or not 10 <= ttl <= 65535:
            raise FileError("presence.ttl", "must be an integer from 10 to 65535 (seconds)")
        out["ttl"] = ttl
        watch = pres.get("watch", sorted(peers))
        if type(watch) is not list:
            raise FileError("presence.watch", "must be a list of peer names")
        for p in watch:
            if p not in peers:
                raise FileError("presence.watch", "unknown peer %r: add it under mast.peers" % (p,))
        out["watch"] = list(watch)
        if "resolver" in pres:
            out["resolver"] = _server("presence.resolver", pres["resolver"], 53)
        cf = pres.get("counter_file")
        if cf is not None and (type(cf) is not str or not cf):
            raise FileError("presence.counter_file", "must be a file name, e.g. \"presence.ctr\"")
        out["counter_file"] = cf
    for p in out["connect"]:
        if p not in out["watch"]:
            out["watch"].append(p)
    return out


# ---- DNS ------------------------------------------------------------------------------


def _getaddrinfo(name, port):
    import socket

    out = []
    for ai in socket.getaddrinfo(name, port):
        try:
            a = from_socket(ai[-1])
        except (ValueError, TypeError, IndexError):
            continue
        a = (a[0], port)
        if a not in out and not not_a_host(a[0]):  # (0.0.0.0 from a DNS sinkhole: ourselves)
            out.append(a)
    return out


def resolve_getaddrinfo(name, port):
    """A/AAAA through the system's resolver (MicroPython's only way): no SRV."""
    try:
        addrs = _getaddrinfo(name, port)
    except OSError as e:
        raise OSError("cannot resolve %s (%s)" % (name, e))
    if not addrs:
        raise OSError("%s has no address" % name)
    return {"addresses": addrs, "servers": []}


def dnspython_resolver(nameserver=None, lifetime=3.0):
    """resolve(name, port) with dnspython: A and AAAA of the name; SRV _mast._udp.<name>
    (by priority, then weight) and the A/AAAA of its first MAX_SERVERS targets as the
    presence servers. All the queries for one name share `lifetime` seconds. A query that
    gets no answer counts as empty when another one was answered (resolvers that drop AAAA
    or SRV queries exist). ImportError without dnspython; OSError when the name has no
    record at all or no query was answered."""
    import time

    import dns.exception
    import dns.resolver

    r = dns.resolver.Resolver(configure=nameserver is None)
    if nameserver is not None:
        r.nameservers = [nameserver[0]]
        r.port = nameserver[1]
    r.timeout = min(1.0, lifetime)
    gone = (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer)

    def resolve(name, port):
        end = time.monotonic() + lifetime
        st = {"answered": False, "failed": None}

        def query(qname, rdtype):
            left = min(end - time.monotonic(), r.timeout)  # (one dropped query: not all the time)
            try:
                if left <= 0:
                    raise dns.exception.Timeout()
                rrs = list(r.resolve(qname, rdtype, raise_on_no_answer=False, lifetime=left))
            except gone:
                rrs = []
            except (dns.exception.Timeout, dns.resolver.NoNameservers) as e:
                if st["failed"] is None:
                    st["failed"] = "DNS: no answer for %s %s (%s)" % (qname, rdtype, (
                        "the server did not reply" if isinstance(e, dns.exception.Timeout)
                        else "the server failed: SERVFAIL or REFUSED"))
                return []
            st["answered"] = True
            return rrs

        def addrs(qname, qport):
            out = []
            for t in ("A", "AAAA"):
                for rr in query(qname, t):
                    a = (canonical(rr.address), qport)
                    # no record that is no host's: 0.0.0.0 or :: (a DNS sinkhole's "blocked",
                    # where Linux sends to this host itself), a multicast group, the broadcast
                    if a not in out and not not_a_host(a[0]):
                        out.append(a)
            return out

        a = addrs(name, port)
        servers = []
        # (a name of more than 242 characters has no SRV name: _mast._udp.<name> would be over
        # DNS's 255 bytes, and dnspython's NameTooLong failed the whole name, A records and all)
        srv = query("_mast._udp." + name.rstrip("."), "SRV") if len(name.rstrip(".")) <= 242 else []
        srv.sort(key=lambda rr: (rr.priority, -rr.weight))
        for rr in srv[:MAX_SERVERS]:  # (not every target: an answer may list hundreds)
            for x in addrs(rr.target.to_text(), rr.port):
                if x not in servers:
                    servers.append(x)
        if not a and not servers:
            raise OSError(st["failed"] or "%s has no A, AAAA or SRV record" % name)
        return {"addresses": a, "servers": servers}

    return resolve


class Pending(Exception):
    """The lookup is under way (Background): ask again in retry_ms."""

    retry_ms = 50


class Background:
    """A resolver run in threads (CPython): the first call for a name starts its lookup and
    raises Pending, a later one gives its answer (or raises its error) once it is in. The
    loop goes on meanwhile: a DNS server that does not answer costs it nothing."""

    def __init__(self, resolve):
        self.resolve = resolve
        self.jobs = {}  # (name, port) -> [answer, error, done]

    def __call__(self, name, port):
        import threading

        job = self.jobs.get((name, port))
        if job is None:
            job = self.jobs[(name, port)] = [None, None, False]
            threading.Thread(target=self._run, args=(job, name, port), daemon=True).start()
        if not job[2]:
            raise Pending()
        del self.jobs[(name, port)]
        if job[1] is not None:
            raise job[1]
        return job[0]

    def _run(self, job, name, port):
        try:
            job[0] = self.resolve(name, port)
        except Exception as e:  # (handed to the caller as the resolver's own error)
            job[1] = e
        job[2] = True


def resolver_for(nameserver=None):
    """The best resolver this runtime has: on CPython dnspython (with SRV), else getaddrinfo,
    in threads (Background); on MicroPython getaddrinfo, blocking (a board's only way)."""
    if not MICROPYTHON:
        try:
            return Background(dnspython_resolver(nameserver))
        except ImportError:
            return Background(resolve_getaddrinfo)
    return resolve_getaddrinfo


def wall_ms():
    """The wall clock in ms since 1970 (PRES/1 counters grow with it across restarts)."""
    import time

    try:
        ms = time.time_ns() // 1000000
    except AttributeError:
        ms = int(time.time() * 1000)
    try:
        if time.gmtime(0)[0] == 2000:  # a board's epoch
            ms += 946684800000
    except (AttributeError, OverflowError):
        pass
    return ms


# ---- the endpoint process -------------------------------------------------------------


class FileCounter:
    """The presence client's counter floor in a small file (PRES/1 P.6): a host without a
    real-time clock keeps its counters growing across reboots. Written atomically (temp file,
    synced, then rename), about once an hour of counters."""

    def __init__(self, path):
        self.path = path

    def load(self):
        try:
            with open(self.path) as f:
                return int(f.read().strip() or 0)
        except (OSError, ValueError):
            return None  # none yet, or unreadable: the client starts from its clock

    def save(self, value):
        import os

        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w") as f:
                f.write("%d\n" % value)
                if hasattr(f, "flush"):
                    f.flush()
                if hasattr(os, "fsync"):  # on the disk before the rename is (a power cut)
                    os.fsync(f.fileno())
            os.rename(tmp, self.path)
        except OSError:
            try:  # (a full disk: the torn .tmp goes; the caller counts counter_store_error)
                os.remove(tmp)
            except OSError:
                pass
            raise


def client(ep, settings):
    """The presence client wrapping ep, or None when settings is None."""
    if settings is None:
        return None
    from presence.client import Presence

    cf = settings.get("counter_file")
    p = Presence(ep, settings["key"], home=settings["servers"], ttl=settings["ttl"],
                 counter_base=wall_ms(), resolver=resolver_for(settings["resolver"]),
                 counter_store=FileCounter(cf) if cf else None)
    p.settings = settings
    return p


def start(p, rt, cfg):
    """Register, resolve DNS-named peers, follow peers; then send what that queued."""
    s = p.settings
    p.clock = rt.now
    peers = cfg["mast"]["peers"]
    if s["key"] is not None and not p.home:  # no server configured: our own name's SRV
        p.home_from(cfg["mast"]["name"])
    for name in s["watch"]:
        pc = peers[name]
        dns = pc.get("dns") if not pc.get("addresses") else None
        p.watch(name, dns=dns, connect=name in s["connect"], port=pc["port"])
    p.start(rt.now())
    rt.run_timers()


def op_presence(process, cmd):
    """{"op": "presence"}: the client's registrations and peers, and for each peer its
    association's state, labels, primary path and nonce_id (as in status: the same on both
    ends for the whole life of an association)."""
    p = process.presence
    if p is None:
        raise ValueError("no presence: add a \"presence\" object to the endpoint file")
    from presence.report import client_status

    st = client_status(p)
    from .status import association_status

    st["home"] = ["%s:%d" % s if ":" not in s[0] else "[%s]:%d" % s for s in p.home]
    for name in st["peers"]:
        a = p.ep.association(name)
        if a is not None:
            a = association_status(a)
            a = dict((k, a[k]) for k in ("state", "label", "peer_label", "primary", "nonce_id"))
        st["peers"][name]["association"] = a
    return {"presence": st}
