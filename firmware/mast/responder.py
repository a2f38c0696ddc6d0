# The responder's side of the handshake (docs/PROTOCOL.md section 8): an INIT answered
# statelessly with an INIT-ACK that carries a cookie, and the COOKIE-ECHO that proves the
# initiator got it, which makes the association. Endpoint._receive imports this module at the
# first INIT or COOKIE-ECHO that arrives and keeps it: a board that only initiates (the usual
# one) never loads this code, and one that answers a peer's INIT holds it as it did before it
# was a module of its own (docs/RUNTIME.md, "Memory").

from .compat import struct
from . import wire, policy, keys
from .crypto import ct_equal
from .assoc import Association, ESTABLISHED, serial_newer


def cookie_parts(ep, stamp, label_r, nonce_i):
    d = ep._cookie_mac.digest(b"R", struct.pack(">II", stamp & 0xFFFFFFFF, label_r), nonce_i)
    return d[:16], struct.unpack_from(">I", d, 16)[0]  # nonce_R, tsn_R


def cookie_tag(ep, stamp, label_r, label_i, nonce_i, tsn_i, name, src):
    return ep._cookie_mac.tag(b"C", struct.pack(">qIII", stamp, label_r, label_i, tsn_i),
                              nonce_i, name.encode(), wire.enc_sockaddr(src))


def check_init(ep, name, keying):
    if name not in ep.cfg["peers"] and not keys.fleet_member(ep.cfg, name):
        return "unknown_peer"
    if keying != ep.keying:
        return "keying_mismatch"
    return None


def on_init(ep, u, src, pkt, body, now):
    """Answer an INIT statelessly with an INIT-ACK no larger than it."""
    if len(pkt) < wire.MIN_INIT:
        return "short_init"
    label_i, nonce_i, tsn_i, keying, name, _ = wire.dec_init(body)
    bad = check_init(ep, name, keying)
    if bad:
        return bad
    mac = ep.init_mac(name)
    if not wire.check(mac, pkt, body):
        return "mac"
    if label_i == 0:
        return "malformed"
    label_r = ep.new_label()
    nonce_r, tsn_r = cookie_parts(ep, now, label_r, nonce_i)
    cookie = struct.pack(">I", now & 0xFFFFFFFF) + cookie_tag(ep, now, label_r, label_i, nonce_i, tsn_i, name, src)
    body = wire.enc_init_ack(label_r, nonce_r, tsn_r, cookie)
    ep.emit(u.name, src, wire.seal(mac, wire.INIT_ACK, label_i, 0, body, nonce_i))
    return None


def on_cookie_echo(ep, u, src, pkt, label, seq, body, existing, now):
    if len(body) < wire.COOKIE_LEN:
        return "malformed"
    # the full stamp (the wire's is modulo 2^32): the tag covers it, so a COOKIE-ECHO sent
    # again 2^32 ms later fails it (PROTOCOL.md 8.2); negative if older than the clock
    stamp = now - ((now - struct.unpack_from(">I", body, 0)[0]) & 0xFFFFFFFF)
    label_i, nonce_i, tsn_i, keying, name, addrs = wire.dec_init(body[wire.COOKIE_LEN :])
    if now - stamp > policy.COOKIE_LIFE:
        return "stale_cookie"
    bad = check_init(ep, name, keying)
    if bad:
        return bad
    tag = cookie_tag(ep, stamp, label, label_i, nonce_i, tsn_i, name, src)
    if not ct_equal(tag, bytes(body[4:20])):
        return "bad_cookie"
    nonce_r, tsn_r = cookie_parts(ep, stamp, label, nonce_i)
    if existing is not None:
        if existing.peer_nonce == nonce_i and existing.nonce == nonce_r:
            ep.touch(existing)
            return existing.on_cookie_echo_again(u, src, seq, pkt, body, now)
        return "label_collision"
    a = Association(ep, name, label, False, now)
    a.setup_keys(ep.psk(name), nonce_i, nonce_r, label_i, label)
    if not wire.check(a.rx_mac, pkt, body):
        return "mac"
    last = ep._last_stamp.get(name)
    # Replacing needs a newer cookie than the last one accepted from this peer, if that
    # was accepted within the cookie's life (older ones cannot be replayed anyway, so no
    # clock value or uptime can lock a peer out: docs/PROTOCOL.md section 8).
    if last is not None and now - last[1] <= policy.COOKIE_LIFE and not serial_newer(stamp, last[0]):
        return "stale_cookie"
    old = ep.by_peer.get(name)
    if old is not None:
        if old.state < ESTABLISHED and ep.name < name:
            return "collision"  # both opened at once: the smaller name's INIT wins
        if ep.keying == wire.KEYING_OPEN and old.state == ESTABLISHED:
            return "name_in_use"  # open: an association keeps its name through its outage
        old.close(now, "replaced")
        ep.touch(old)
    n = len(ep._last_stamp)
    if n >= 64 and not n & 63:  # forget what no longer matters (every 64th: 5,000 boards
        # joining at once swept it whole for each, quadratic)
        for k in list(ep._last_stamp):
            if now - ep._last_stamp[k][1] > policy.COOKIE_LIFE:
                del ep._last_stamp[k]
    ep._last_stamp[name] = (stamp, now)
    ep.assocs[label] = a
    ep.by_peer[name] = a
    try:
        a.start_responder(u, src, seq, pkt, nonce_i, nonce_r, tsn_i, tsn_r, label_i, addrs,
                          now - stamp, now)
    except Exception:  # MemoryError (or a bug): a half-built association breaks every timer
        if a.state != ESTABLISHED:  # half built: forget it, as if the packet never came
            del ep.assocs[label]
            del ep.by_peer[name]
            if last is None:
                del ep._last_stamp[name]
            else:
                ep._last_stamp[name] = last
        raise  # (counted: no_memory, a retransmitted COOKIE-ECHO tries again; or internal_error)
    ep.touch(a)
    return None
