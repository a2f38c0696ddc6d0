"""Small network helpers the host tools and the tests share."""

import socket


def free_udp_port(hosts, tries=50):
    """A UDP port free on every one of hosts (a board binds one MAST port on each uplink's
    address). The first host gets an ephemeral port from the kernel, which hands them out in
    a random order, so another process taking it before the caller binds it is very unlikely.
    RuntimeError after `tries` attempts."""
    hosts = list(hosts)
    for _ in range(tries):
        socks = []
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            socks.append(s)
            s.bind((hosts[0], 0))
            port = s.getsockname()[1]
            for h in hosts[1:]:
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                socks.append(s)
                s.bind((h, port))
            return port
        except OSError:
            continue
        finally:
            for s in socks:
                s.close()
    raise RuntimeError("no UDP port free on %s" % ", ".join(hosts))


def udp_in_use(host, port):
    """Whether (host, port) cannot be bound for UDP right now (someone holds it)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.bind((host, port))
        return False
    except OSError:
        return True
    finally:
        s.close()
