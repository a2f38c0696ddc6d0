"""DNS for the endpoint process (runtime/rendezvous.py) against a DNS server on loopback that
misbehaves as real ones do: one that drops AAAA or SRV queries, one that never answers, an SRV
answer with many targets. The lookups run in threads on CPython (Background), so the loop
and every other association go on meanwhile."""

import json
import os
import socket
import subprocess
import sys
import threading
import time

import dns.message
import dns.rdatatype
import dns.rrset
import pytest

from runtime import rendezvous

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
KEY = "ISIjJCUmJygpKissLS4vMDEyMzQ1Njc4OTo7PD0+Pz8="
MAST = os.path.join(os.path.dirname(sys.executable), "mast")


class DnsServer:
    """A UDP DNS server on 127.0.0.1 (dnspython messages), in a thread. answer(question) ->
    a list of rrsets for the answer section, [] for an empty NOERROR, None to drop the
    query. asked: (name, type) of every query."""

    def __init__(self, answer):
        self.answer = answer
        self.asked = []
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.addr = self.sock.getsockname()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while not self.stop.is_set():
            try:
                data, src = self.sock.recvfrom(4096)
            except socket.timeout:
                continue
            q = dns.message.from_wire(data)
            name = q.question[0].name.to_text().rstrip(".")
            rdtype = dns.rdatatype.to_text(q.question[0].rdtype)
            self.asked.append((name, rdtype))
            rrsets = self.answer(name, rdtype)
            if rrsets is None:
                continue
            r = dns.message.make_response(q)
            r.answer.extend(rrsets)
            self.sock.sendto(r.to_wire(), src)

    def close(self):
        self.stop.set()
        self.thread.join(5)
        self.sock.close()


def a_record(name, ip):
    return dns.rrset.from_text(name + ".", 60, "IN", "A", ip)


def test_a_name_resolves_from_its_a_record_when_aaaa_and_srv_queries_go_unanswered():
    # resolvers and middleboxes that drop AAAA (or SRV) queries exist: a timeout on any query
    # failed the whole name, so a peer with a good A record was never connected
    srv = DnsServer(lambda name, t: [a_record(name, "127.0.0.2")] if t == "A" else None)
    try:
        resolve = rendezvous.dnspython_resolver(srv.addr, lifetime=1.5)
        assert resolve("far.example", 6278) == {"addresses": [("127.0.0.2", 6278)], "servers": []}
        assert ("far.example", "AAAA") in srv.asked and ("_mast._udp.far.example", "SRV") in srv.asked
    finally:
        srv.close()


def test_a_name_of_the_longest_lengths_resolves_and_its_srv_is_asked_while_it_fits():
    # a peer's dns may be 253 characters (the schema's limit, DNS's own): _mast._udp.<name> is
    # then over 255 bytes, and dnspython's NameTooLong for the SRV query failed the whole name,
    # its A record found or not; from 243 characters on, no SRV name exists, so none is asked
    label = "a" * 63
    longest = ".".join([label] * 3 + ["b" * 61])  # 253
    fits = ".".join([label] * 3 + ["b" * 50])  # 242: _mast._udp. + it is 253
    assert (len(longest), len(fits)) == (253, 242)
    srv = DnsServer(lambda name, t: [a_record(name, "127.0.0.2")] if t == "A" else [])
    try:
        resolve = rendezvous.dnspython_resolver(srv.addr, lifetime=1.5)
        for name in (longest, longest + ".", fits):
            assert resolve(name, 6278) == {"addresses": [("127.0.0.2", 6278)], "servers": []}, name
        assert ("_mast._udp." + fits, "SRV") in srv.asked
        assert [q for q in srv.asked if q[1] == "SRV"] == [("_mast._udp." + fits, "SRV")], srv.asked
    finally:
        srv.close()


def test_records_that_are_no_hosts_address_are_not_taken_from_dns():
    # a DNS sinkhole (Pi-hole and the like) answers 0.0.0.0 and :: for a name it blocks: they were
    # taken as the peer's addresses, and the INITs went to this host itself (Linux), never to
    # the peer; a multicast AAAA likewise went to a group. The others are kept, and a name
    # left with none is an error, as one with no record
    recs = {"A": ["0.0.0.0", "127.0.0.2", "224.0.0.1"], "AAAA": ["::", "2001:DB8::7", "ff02::1"]}
    srv = DnsServer(lambda name, t: [dns.rrset.from_text_list(name + ".", 60, "IN", t, recs[t])]
                    if t in recs and name == "far.example" else
                    [dns.rrset.from_text_list(name + ".", 60, "IN", t, ["0.0.0.0"])] if t == "A" else [])
    try:
        resolve = rendezvous.dnspython_resolver(srv.addr, lifetime=1.5)
        assert resolve("far.example", 6278) == {
            "addresses": [("127.0.0.2", 6278), ("2001:db8::7", 6278)], "servers": []}
        with pytest.raises(OSError, match=r"^blocked\.example has no A, AAAA or SRV record"):
            resolve("blocked.example", 6278)
    finally:
        srv.close()


def test_getaddrinfo_answers_that_are_no_hosts_address_are_not_taken(monkeypatch):
    # (MicroPython's and mastd's resolver: /etc/hosts or a sinkhole's 0.0.0.0 / ::)
    answers = {"far.example": ["0.0.0.0", "::", "127.0.0.2", "::ffff:0.0.0.0", "2001:db8::7"],
               "blocked.example": ["0.0.0.0", "::"]}

    def fake(name, port, *a):
        return [(socket.AF_INET6 if ":" in ip else socket.AF_INET, socket.SOCK_DGRAM, 17, "",
                 (ip, port) if ":" not in ip else (ip, port, 0, 0)) for ip in answers[name]]

    monkeypatch.setattr(socket, "getaddrinfo", fake)
    assert rendezvous.resolve_getaddrinfo("far.example", 6278) == {
        "addresses": [("127.0.0.2", 6278), ("2001:db8::7", 6278)], "servers": []}
    with pytest.raises(OSError, match=r"^blocked\.example has no address$"):
        rendezvous.resolve_getaddrinfo("blocked.example", 6278)


def test_a_dns_server_that_answers_nothing_is_an_error_naming_the_query():
    srv = DnsServer(lambda name, t: None)
    try:
        resolve = rendezvous.dnspython_resolver(srv.addr, lifetime=0.5)
        with pytest.raises(OSError, match=r"^DNS: no answer for far\.example A \(the server did not reply\)$"):
            resolve("far.example", 6278)
    finally:
        srv.close()


def test_a_name_whose_server_does_not_answer_costs_its_lifetime_not_a_timeout_per_query():
    # each query waits at most what is left of the name's lifetime: with 0.5 s, the A query
    # spends it all and the AAAA and SRV queries are never sent (not 1 s each, and the SRV
    # targets' after them)
    srv = DnsServer(lambda name, t: None)
    try:
        resolve = rendezvous.dnspython_resolver(srv.addr, lifetime=0.5)
        with pytest.raises(OSError, match="no answer for far.example A"):
            resolve("far.example", 6278)
        assert set(srv.asked) == {("far.example", "A")}, srv.asked
    finally:
        srv.close()


def srv_targets(text):
    """A DNS answer: the SRV records of text for any name, each target tN.pres.example at
    127.0.1.N."""
    def answer(name, t):
        if t == "SRV":
            return [dns.rrset.from_text_list(name + ".", 60, "IN", "SRV", text)]
        if t == "A" and name.startswith("t"):
            return [a_record(name, "127.0.1.%d" % int(name[1:name.index(".")]))]
        return []
    return answer


def test_of_srv_targets_of_one_priority_the_heaviest_are_used():
    # t5 the heaviest
    srv = DnsServer(srv_targets(["1 %d 6279 t%d.pres.example." % (10 + i, i) for i in range(6)]))
    try:
        got = rendezvous.dnspython_resolver(srv.addr, lifetime=3.0)("b.example", 6278)
        assert got["servers"] == [("127.0.1.%d" % i, 6279) for i in (5, 4, 3, 2)], got
    finally:
        srv.close()


def test_only_the_first_srv_targets_are_looked_up():
    # an answer listing 200 targets was looked up target by target (minutes with a slow
    # server) although only the first 4 are ever used
    srv = DnsServer(srv_targets(["%d 10 6279 t%d.pres.example." % (i, i) for i in range(200)]))
    try:
        got = rendezvous.dnspython_resolver(srv.addr, lifetime=3.0)("b.example", 6278)
        assert got == {"addresses": [], "servers": [("127.0.1.%d" % i, 6279) for i in range(4)]}
        targets = sorted(n for n, t in srv.asked if n.startswith("t") and t == "A")
        assert targets == ["t0.pres.example", "t1.pres.example", "t2.pres.example", "t3.pres.example"]
    finally:
        srv.close()


def test_a_background_lookup_never_holds_up_its_caller_and_hands_over_its_answer_or_error():
    release = threading.Event()
    calls = []

    def slow(name, port):
        calls.append(name)
        release.wait(5)
        if name == "bad.example":
            raise OSError("no such name")
        return {"addresses": [("192.0.2.1", port)], "servers": []}

    bg = rendezvous.Background(slow)
    for name in ("ok.example", "bad.example"):
        with pytest.raises(rendezvous.Pending) as e:
            bg(name, 6278)  # returns at once, the lookup still waiting
        assert e.value.retry_ms == 50
    with pytest.raises(rendezvous.Pending):
        bg("ok.example", 6278)  # asked again while under way: not a second lookup
    release.set()
    deadline = time.monotonic() + 5
    while any(not j[2] for j in bg.jobs.values()) and time.monotonic() < deadline:
        time.sleep(0.01)
    assert bg("ok.example", 6278) == {"addresses": [("192.0.2.1", 6278)], "servers": []}
    with pytest.raises(OSError, match="no such name"):
        bg("bad.example", 6278)
    assert sorted(calls) == ["bad.example", "ok.example"] and bg.jobs == {}


def _endpoint(tmp_path, name, doc, seconds):
    path = tmp_path / (name + ".json")
    path.write_text(json.dumps(doc))
    return subprocess.Popen([MAST, "endpoint", "--config", str(path), "--no-stdin", "--duration",
                             str(seconds)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            universal_newlines=True)


def test_a_peer_whose_dns_does_not_answer_holds_up_no_other_association(tmp_path):
    # each lookup stood the endpoint's loop still ~3.4 s, and again at each retry: the
    # association to the other peer came up late and its stream stopped for seconds (the far
    # end's path went down and came back)
    dnss = DnsServer(lambda name, t: None)
    port = 20000 + os.getpid() % 20000
    server = {"mast": {"name": "server", "peers": {"client": {"psk": PSK, "initiate": False}}},
              "uplinks": {"wan": {"bind": "127.0.0.62:%d" % port}},
              "stream": {"peer": "client", "rate": 100, "size": 64, "count": 0}}
    client = {"mast": {"name": "client",
                       "peers": {"server": {"psk": PSK, "addresses": ["127.0.0.62:%d" % port]},
                                 "far": {"psk": PSK, "dns": "far.example"}}},
              "uplinks": {"wan": {"bind": "127.0.0.61:%d" % port}}, "connect": ["server", "far"],
              "stream_records": True,
              "presence": {"key": KEY, "server": "127.0.0.63:6279", "watch": ["far"],
                           "resolver": "%s:%d" % dnss.addr}}
    try:
        srv = _endpoint(tmp_path, "server", server, 12)
        # the client starts once the server has bound its uplink ("started"), so that its first
        # INIT is heard: started side by side on a loaded machine, the INIT could come first,
        # and the association came up at its retransmission, 1 s later (1,002 ms in a CI run)
        first = srv.stdout.readline()
        assert json.loads(first)["event"] == "started", (first, srv.stderr.read())
        cli = _endpoint(tmp_path, "client", client, 10)
        out = cli.communicate(timeout=60)[0]
        srv_out = first + srv.communicate(timeout=60)[0]
    finally:
        dnss.close()
    lines = [json.loads(x) for x in out.splitlines() if x.startswith("{")]
    start = lines[0]["t_ms"]
    up = [x["t_ms"] - start for x in lines if x.get("event") == "association_up" and x["peer"] == "server"]
    assert up and up[0] < 1000, up  # at once, not after two lookups that time out
    data = [x["t_ms"] for x in lines if x.get("event") == "data"]
    gaps = [b - a for a, b in zip(data, data[1:]) if b - a > 1000]
    assert len(data) > 300 and not gaps, (len(data), gaps)
    failed = [x for x in lines if x.get("event") == "presence_resolve_failed"]
    assert failed and failed[0]["dns"] == "far.example"  # and it was tried, and said so
    # the far end, while the client ran (both read the same monotonic clock)
    far = [json.loads(x) for x in srv_out.splitlines() if x.startswith("{")]
    assert not [x for x in far if x.get("event") in ("path_down", "failover") and x["t_ms"] <= data[-1]]
