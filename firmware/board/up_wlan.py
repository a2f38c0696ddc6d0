# Wi-Fi station uplink: network.WLAN(network.STA_IF).
#
#   configuration: uplinks.NAME.ssid (required), uplinks.NAME.password (a secret;
#   unset for an open network)
#
# connect() returns at once and the driver associates in the background; check()
# watches isconnected() and status(), and turns the driver's failure codes into
# clear errors (wrong password, no such network): at once when the code is new, at the
# attempt's deadline when status() said it before connect() and nothing else since (the
# ESP32 port keeps the last failure's code through disconnect, active and connect; rp2's
# cyw43 says JOIN as soon as connect() returns). A lost association is reported
# as down; the manager reconnects with backoff. stop() deactivates the interface,
# which also removes its route from the stack (what exclusive routing relies on).

from .uplinks import Manager, UplinkError, NeedsConfig

_FAILURES = (
    ("STAT_WRONG_PASSWORD", "wrong password for network %r (uplinks.%s.password)"),
    ("STAT_NO_AP_FOUND", "no network named %r in range (uplinks.%s.ssid)"),
    ("STAT_CONNECT_FAIL", "could not join network %r (uplinks.%s)"),
)


def need_network(m):
    """The port's network module for the uplink manager m (a hardware kind: wlan, and lan and
    ppp, which import this module for it and nic_addr); NeedsConfig (no retries) where there is
    none. (Here, not in uplinks.Manager: a board without hardware uplinks keeps that class
    loaded, and would keep this too.)"""
    hw = m.hw
    if hw is None or hw.network is None or (m.kind != "wlan" and hw.machine is None):
        raise NeedsConfig("this port has no network driver: a %s uplink needs a board" % m.kind)
    return hw.network


def nic_addr(nic):
    """The interface's IPv4 address, or None (ipconfig: rp2 from 1.23, ESP32 from 1.24; else
    ifconfig)."""
    try:
        a = nic.ipconfig("addr4")[0]
    except (AttributeError, ValueError, OSError):
        a = nic.ifconfig()[0]
    return None if (not a or a == "0.0.0.0") else a


class Wlan(Manager):
    kind = "wlan"
    connect_ms = 30000

    def __init__(self, name, spec, opts, hw):
        Manager.__init__(self, name, spec, opts, hw)
        self.nic = None
        self.rssi = None
        self.stale = None  # status() before this attempt's connect()

    def _nic(self):
        if self.nic is None:
            net = need_network(self)
            self.nic = net.WLAN(net.STA_IF)
        return self.nic

    def start(self, now):
        ssid = self.opts.get("ssid")
        if not ssid:
            raise NeedsConfig("no network name: set uplinks.%s.ssid" % self.name)
        nic = self._nic()
        nic.active(True)
        # the ESP32 port's status() keeps the last attempt's failure code until this one ends
        # (network_wlan.c: wifi_sta_disconn_reason, cleared only on GOT_IP): check() takes
        # that code for this attempt's only once its time is up
        self.stale = nic.status()
        pw = self.opts.get("password")
        if pw:
            nic.connect(ssid, pw)
        else:
            nic.connect(ssid)

    def check(self, now):
        nic = self.nic
        if nic.isconnected():
            return nic_addr(nic)
        st = nic.status()
        if st == self.stale and now < self.deadline:
            return None
        self.stale = None  # it moved (rp2: JOIN at once): from now on it speaks for this attempt
        net = self.hw.network
        for const_name, msg in _FAILURES:
            code = getattr(net, const_name, None)
            if code is not None and st == code:
                raise UplinkError(msg % (self.opts.get("ssid"), self.name))
        return None

    def current(self, now):
        nic = self.nic
        if not nic.isconnected():
            return None
        try:
            self.rssi = nic.status("rssi")
        except (ValueError, OSError, TypeError):
            self.rssi = None
        return nic_addr(nic)

    def stop(self, hard):
        nic = self.nic
        if nic is None:
            return
        try:
            nic.disconnect()
        finally:
            nic.active(False)

    def detail(self):
        return {"ssid": self.opts.get("ssid"), "rssi": self.rssi}
