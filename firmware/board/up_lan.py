# Ethernet uplink: network.LAN with the PHY settings of the board definition
# (uplinks.NAME.phy: type, addr, mdc, mdio, power, ref_clk, ref_clk_mode), e.g. the
# ESP32's internal MAC with a LAN8720:
#
#   network.LAN(mdc=Pin(23), mdio=Pin(18), power=Pin(12), phy_addr=0,
#               phy_type=network.PHY_LAN8720, ref_clk=Pin(17), ref_clk_mode=Pin.OUT)
#
# Link detection: while the cable is out there is no link and the manager waits
# (no timeout, no backoff), so plugging it back in brings the uplink up as soon as
# DHCP answers. Pulling it while up is reported as down at once (isconnected()
# turns false when the PHY loses the link).

from .uplinks import Manager, UplinkError
from .up_wlan import need_network, nic_addr


class Lan(Manager):
    kind = "lan"
    connect_ms = 20000  # from link up to a DHCP lease

    def __init__(self, name, spec, opts, hw):
        Manager.__init__(self, name, spec, opts, hw)
        self.nic = None
        self.link = False

    def _nic(self):
        if self.nic is None:
            net = need_network(self)
            Pin = self.hw.machine.Pin
            phy = self.spec["phy"]
            kw = {"mdc": Pin(phy["mdc"]), "mdio": Pin(phy["mdio"]), "phy_addr": phy["addr"]}
            kind = getattr(net, "PHY_" + phy["type"], None)
            if kind is None:
                raise UplinkError("this firmware has no driver for the %s PHY" % phy["type"])
            kw["phy_type"] = kind
            if phy["power"] is not None:
                kw["power"] = Pin(phy["power"])
            if phy["ref_clk"] is not None:
                kw["ref_clk"] = Pin(phy["ref_clk"])
            if phy["ref_clk_mode"] is not None:
                kw["ref_clk_mode"] = Pin.OUT if phy["ref_clk_mode"] == "out" else Pin.IN
            self.nic = net.LAN(**kw)
        return self.nic

    def _link(self):
        nic = self.nic
        if nic.isconnected():
            return True
        net = self.hw.network
        try:
            st = nic.status()
        except (OSError, AttributeError):
            return False
        return st is not None and st in (getattr(net, "ETH_CONNECTED", -100), getattr(net, "ETH_GOT_IP", -101))

    def start(self, now):
        self._nic().active(True)

    def check(self, now):
        self.link = self._link()
        if not self.link:
            self.deadline = now + self.connect_ms  # no cable: wait for one, however long
            self.error = "no link (is the cable plugged in?)"
            return None
        if self.nic.isconnected():
            return nic_addr(self.nic)
        return None

    def current(self, now):
        self.link = self._link()
        if not self.link or not self.nic.isconnected():
            return None
        return nic_addr(self.nic)

    def stop(self, hard):
        self.link = False
        if hard and self.nic is not None:
            self.nic.active(False)

    def detail(self):
        return {"link": "up" if self.link else "down", "phy": self.spec["phy"]["type"]}
