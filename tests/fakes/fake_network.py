# A fake of MicroPython's `network` module (WLAN, LAN, PPP), for tests of the
# board's uplink managers: records every call in .calls and plays a scenario the
# test controls. Restricted Python: runs on CPython and MicroPython.
#
#   net = FakeNetwork(trace)
#   net.networks = {"home": "correct horse"}   # SSID -> password (None: open)
#   net.addrs = {"wlan": "127.0.0.21", ...}    # the address DHCP/IPCP hands out
#   net.wlan.drop()   net.lan.cable = False   net.ppps[-1].drop()


class FakeNetwork:
    STA_IF = 0
    AP_IF = 1
    STAT_IDLE = 0
    STAT_CONNECTING = 1
    STAT_WRONG_PASSWORD = -3
    STAT_NO_AP_FOUND = -2
    STAT_CONNECT_FAIL = -1
    STAT_GOT_IP = 3
    PHY_LAN8720 = 1
    PHY_IP101 = 2
    ETH_INITIALIZED = 0
    ETH_STARTED = 1
    ETH_STOPPED = 2
    ETH_CONNECTED = 3
    ETH_DISCONNECTED = 4
    ETH_GOT_IP = 5

    def __init__(self, trace=None):
        self.calls = []
        self.trace = trace if trace is not None else []
        self.networks = {"home": "correct horse"}
        self.addrs = {"wlan": "192.168.1.50", "lan": "10.0.0.7", "ppp": "100.64.0.9"}
        self.polls_to_connect = 2  # isconnected() calls before a link is up
        self.wlan = FakeWLAN(self)
        self.lan = None
        self.ppps = []

    def _call(self, *what):
        self.calls.append(what)
        self.trace.append(what)

    def WLAN(self, mode=0):
        self._call("WLAN", mode)
        return self.wlan

    def LAN(self, **kw):
        self._call("LAN", kw)
        if self.lan is None:
            self.lan = FakeLAN(self, kw)
        return self.lan

    def PPP(self, stream):
        self._call("PPP", stream)
        p = FakePPP(self, stream)
        self.ppps.append(p)
        return p


_FAILED = (FakeNetwork.STAT_WRONG_PASSWORD, FakeNetwork.STAT_NO_AP_FOUND,
           FakeNetwork.STAT_CONNECT_FAIL)


class _Nic:
    kind = "?"

    def __init__(self, net):
        self.net = net
        self.is_active = False
        self.up = False
        self.countdown = None

    def _call(self, *what):
        self.net._call(self.kind + "." + what[0], *what[1:])

    def active(self, v=None):
        if v is None:
            return self.is_active
        self._call("active", bool(v))
        self.is_active = bool(v)
        if not v:
            self.up = False
            self.countdown = None

    def _tick(self):
        if self.countdown is not None and not self.up:
            self.countdown -= 1
            if self.countdown <= 0:
                self.up = True
                self.countdown = None

    def ipconfig(self, key):
        if key != "addr4":
            raise ValueError("unknown config param")
        return (self.net.addrs[self.kind] if self.up else "0.0.0.0", "255.255.255.0")

    def ifconfig(self):
        return (self.ipconfig("addr4")[0], "255.255.255.0", "0.0.0.0", "0.0.0.0")

    def drop(self):
        """The link goes away (out of range, cable pulled, carrier lost)."""
        self.up = False
        self.countdown = None


class FakeWLAN(_Nic):
    kind = "wlan"

    def __init__(self, net):
        _Nic.__init__(self, net)
        self.stat = FakeNetwork.STAT_IDLE

    def connect(self, ssid=None, key=None):
        self._call("connect", ssid, key)
        if not self.is_active:
            raise OSError("WLAN not active")
        nets = self.net.networks
        if ssid not in nets:
            self.stat = FakeNetwork.STAT_NO_AP_FOUND
        elif nets[ssid] is not None and nets[ssid] != key:
            self.stat = FakeNetwork.STAT_WRONG_PASSWORD
        else:
            # as the ESP32 port: status() keeps the last attempt's failure code until this
            # one has an address (ports/esp32/network_wlan.c: wifi_sta_disconn_reason is set
            # by a disconnect event and cleared only on GOT_IP; connect() leaves it)
            if self.stat not in _FAILED:
                self.stat = FakeNetwork.STAT_CONNECTING
            self.countdown = self.net.polls_to_connect

    def disconnect(self):
        self._call("disconnect")
        if self.up:  # leaving an association (ASSOC_LEAVE): idle; a failed attempt's code stays
            self.stat = FakeNetwork.STAT_IDLE
        self.up = False
        self.countdown = None

    def drop(self):
        _Nic.drop(self)
        self.stat = FakeNetwork.STAT_CONNECTING  # (the ESP32 driver reassociates by itself)

    def isconnected(self):
        self._tick()
        if self.up:
            self.stat = FakeNetwork.STAT_GOT_IP
        return self.up

    def status(self, param=None):
        if param == "rssi":
            return -61
        return self.stat


class FakeLAN(_Nic):
    kind = "lan"

    def __init__(self, net, kw):
        _Nic.__init__(self, net)
        self.kw = kw
        self.cable = True

    def active(self, v=None):
        r = _Nic.active(self, v)
        if v:
            self.countdown = self.net.polls_to_connect
        return r

    def isconnected(self):
        if not self.is_active or not self.cable:
            self.up = False
            return False
        if not self.up and self.countdown is None:
            self.countdown = self.net.polls_to_connect  # link back: DHCP again
        self._tick()
        return self.up

    def status(self):
        if not self.is_active:
            return FakeNetwork.ETH_STOPPED
        if not self.cable:
            return FakeNetwork.ETH_DISCONNECTED
        return FakeNetwork.ETH_GOT_IP if self.up else FakeNetwork.ETH_CONNECTED


class FakePPP(_Nic):
    kind = "ppp"

    def __init__(self, net, stream):
        _Nic.__init__(self, net)
        self.stream = stream
        self.connected_with = None

    def connect(self, security=0, user=None, key=None):
        self._call("connect")
        self.connected_with = (security, user, key)
        self.countdown = self.net.polls_to_connect

    def disconnect(self):
        self._call("disconnect")
        self.up = False
        self.countdown = None
        modem = getattr(getattr(self.stream, "machine", None), "modem", None)
        if modem is not None:
            modem.hang_up()

    def isconnected(self):
        self._tick()
        return self.up
