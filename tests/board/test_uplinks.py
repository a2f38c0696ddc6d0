# The uplink managers against fakes of `network` and `machine` (tests/fakes):
# what they ask of the drivers, what they report, how they retry.
# Plain test functions: run by pytest and on the MicroPython unix port.

import json

from fake_machine import FakeMachine, FakeModem
from fake_network import FakeNetwork
from board.hw import Hardware
from board import uplinks
from board.uplinks import BACKOFF_MIN_MS, BACKOFF_MAX_MS

WIFI = {"kind": "wlan", "priority": 20, "cost": 0}
ETH = {"kind": "lan", "priority": 10, "cost": 0,
       "phy": {"type": "LAN8720", "addr": 0, "mdc": 23, "mdio": 18, "power": 12,
               "ref_clk": 17, "ref_clk_mode": "out"}}
MODEM = {"model": "SIMCom A7670", "uart": 1, "tx": 26, "rx": 27, "baud": 115200,
         "power_on": 12, "pwrkey": 4, "pwrkey_active": 1, "pwrkey_ms": 100, "reset": None,
         "boot_ms": 3000, "dial": "*99#"}
CELL = {"kind": "ppp", "priority": 30, "cost": 10, "modem": MODEM}


def rig():
    m = FakeMachine()
    net = FakeNetwork()
    return Hardware(machine=m, network=net), m, net


def drive(mgr, t, until, step=100, limit=400000):
    """Poll mgr every step ms from t until until(report) holds; (t, report, reports)."""
    seen = []
    end = t + limit
    while t < end:
        r = mgr.poll(t)
        if r is not None:
            seen.append(r)
            if until(r):
                return t, r, seen
        t += step
    raise AssertionError("no matching report by t=%d; reports: %r; state %s, error %r"
                         % (t, seen, mgr.state, mgr.error))


def is_up(r):
    return r[0] == "up"


# ---- sim ------------------------------------------------------------------------------


def test_sim_uplink_is_up_at_once_with_its_address():
    s = uplinks.make("eth", {"kind": "sim", "address": "127.0.0.2"}, {}, None)
    assert s.poll(0) == ("up", "127.0.0.2")
    assert s.state == "up" and s.addr == "127.0.0.2"
    assert s.poll(100) is None


def test_sim_uplink_configured_address_wins_over_the_board_definition():
    s = uplinks.make("eth", {"kind": "sim", "address": "127.0.0.2"}, {"address": "127.0.0.9"}, None)
    assert s.poll(0) == ("up", "127.0.0.9")


def test_sim_uplink_renumbered_reports_up_with_the_new_address():
    s = uplinks.make("wifi", {"kind": "sim", "address": "127.0.0.3"}, {}, None)
    s.poll(0)
    s.renumber("127.0.0.5")
    assert s.poll(100) == ("up", "127.0.0.5")
    assert s.addr == "127.0.0.5"


def test_uplink_held_down_reports_down_then_comes_back_when_released():
    s = uplinks.make("eth", {"kind": "sim", "address": "127.0.0.2"}, {}, None)
    s.poll(0)
    s.set_admin(False, 50)
    assert s.poll(100) == ("down", "held down")
    assert s.state == "off"
    assert s.poll(200) is None
    s.set_admin(True, 300)
    assert s.poll(300) == ("up", "127.0.0.2")


# ---- backoff ------------------------------------------------------------------------------


class _Failing(uplinks.Manager):
    kind = "test"

    def start(self, now):
        raise uplinks.UplinkError("refused")


def test_failed_attempts_are_retried_with_doubling_backoff_up_to_a_minute():
    f = _Failing("x", {}, {}, None)
    starts = []
    t = 0
    while t <= 400000:
        a = f.attempts
        r = f.poll(t)
        if f.attempts != a:
            starts.append(t)
            assert r == ("fail", "refused")
        t += 100
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    assert gaps[:6] == [1000, 2000, 4000, 8000, 16000, 32000], gaps
    assert max(gaps) == BACKOFF_MAX_MS and gaps[-1] == BACKOFF_MAX_MS
    assert f.state == "down" and f.error == "refused"


def test_success_resets_the_backoff():
    s = uplinks.make("eth", {"kind": "sim", "address": "127.0.0.2"}, {}, None)
    s.backoff = 16000
    s.poll(0)
    assert s.backoff == BACKOFF_MIN_MS


# ---- wlan -----------------------------------------------------------------------------------


def test_wlan_without_ssid_is_unconfigured_and_not_retried():
    hw, m, net = rig()
    w = uplinks.make("wifi", WIFI, {}, hw)
    assert w.poll(0) == ("fail", "no network name: set uplinks.wifi.ssid")
    assert w.state == "unconfigured"
    for t in range(100, 120000, 1000):
        assert w.poll(t) is None
    assert w.attempts == 1


def test_wlan_connects_as_a_station_and_reports_its_address():
    hw, m, net = rig()
    w = uplinks.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, r, _ = drive(w, 0, is_up)
    assert r == ("up", "192.168.1.50")
    assert ("WLAN", net.STA_IF) in net.calls
    assert ("wlan.active", True) in net.calls
    assert ("wlan.connect", "home", "correct horse") in net.calls


def test_wlan_open_network_connects_without_a_password():
    hw, m, net = rig()
    net.networks = {"cafe": None}
    w = uplinks.make("wifi", WIFI, {"ssid": "cafe"}, hw)
    drive(w, 0, is_up)
    assert ("wlan.connect", "cafe", None) in net.calls


def test_wlan_wrong_password_is_a_clear_error_and_retried_with_backoff():
    hw, m, net = rig()
    w = uplinks.make("wifi", WIFI, {"ssid": "home", "password": "battery staple"}, hw)
    t, r, _ = drive(w, 0, lambda r: r[0] == "fail")
    assert r[1] == "wrong password for network 'home' (uplinks.wifi.password)", r
    assert "battery staple" not in r[1]
    assert ("wlan.active", False) in net.calls  # hung up
    t2, r2, _ = drive(w, t + 100, lambda r: r[0] == "fail")
    assert t2 - t >= BACKOFF_MIN_MS


def test_wlan_unknown_network_is_a_clear_error():
    hw, m, net = rig()
    w = uplinks.make("wifi", WIFI, {"ssid": "elsewhere"}, hw)
    t, r, _ = drive(w, 0, lambda r: r[0] == "fail")
    assert r[1] == "no network named 'elsewhere' in range (uplinks.wifi.ssid)"


def test_wlan_lost_association_is_reported_down_then_reconnected():
    hw, m, net = rig()
    w = uplinks.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, _, _ = drive(w, 0, is_up)
    net.wlan.drop()
    t, r, _ = drive(w, t + 100, lambda r: r[0] == "down")
    assert r == ("down", "link lost")
    t, r, _ = drive(w, t + 100, is_up)
    assert r == ("up", "192.168.1.50")
    assert len([c for c in net.calls if c[0] == "wlan.connect"]) == 2


def test_wlan_new_credentials_reconnect():
    hw, m, net = rig()
    w = uplinks.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, _, _ = drive(w, 0, is_up)
    net.networks["office"] = "open sesame!"
    assert w.configure({"ssid": "office", "password": "open sesame!"}, t) == ("down", "reconfigured")
    drive(w, t, is_up)
    assert ("wlan.connect", "office", "open sesame!") in net.calls


# ---- lan ---------------------------------------------------------------------------------------


def test_lan_builds_the_phy_from_the_board_definition():
    hw, m, net = rig()
    e = uplinks.make("eth", ETH, {}, hw)
    t, r, _ = drive(e, 0, is_up)
    assert r == ("up", "10.0.0.7")
    kw = net.lan.kw
    assert kw["phy_type"] == net.PHY_LAN8720 and kw["phy_addr"] == 0
    assert (kw["mdc"].n, kw["mdio"].n, kw["power"].n, kw["ref_clk"].n) == (23, 18, 12, 17)
    assert kw["ref_clk_mode"] == m.Pin.OUT
    assert ("lan.active", True) in net.calls


def test_lan_without_cable_waits_for_the_link_without_failing():
    hw, m, net = rig()
    net.polls_to_connect = 5
    e = uplinks.make("eth", ETH, {}, hw)
    e.poll(0)  # creates the LAN object
    net.lan.cable = False
    for t in range(100, 100000, 100):
        assert e.poll(t) is None
    assert e.state == "connecting" and e.failures == 0
    assert e.error == "no link (is the cable plugged in?)"
    assert e.status(t)["link"] == "down"
    net.lan.cable = True
    t, r, _ = drive(e, t, is_up)
    assert r == ("up", "10.0.0.7") and e.status(t)["link"] == "up"


def test_lan_cable_pulled_is_reported_down_at_once_and_up_when_back():
    hw, m, net = rig()
    e = uplinks.make("eth", ETH, {}, hw)
    t, _, _ = drive(e, 0, is_up)
    net.lan.cable = False
    assert e.poll(t + 100) == ("down", "link lost")
    net.lan.cable = True
    t, r, _ = drive(e, t + 200, is_up)
    assert r == ("up", "10.0.0.7")


def test_lan_held_down_deactivates_the_interface():
    hw, m, net = rig()
    e = uplinks.make("eth", ETH, {}, hw)
    t, _, _ = drive(e, 0, is_up)
    e.set_admin(False, t)
    assert e.poll(t + 100) == ("down", "held down")
    assert net.calls[-1] == ("lan.active", False)


def test_lan_unknown_phy_driver_is_a_clear_error():
    hw, m, net = rig()
    spec = {"kind": "lan", "priority": 10, "cost": 0, "phy": dict(ETH["phy"])}
    spec["phy"]["type"] = "RTL8201"
    e = uplinks.make("eth", spec, {}, hw)
    assert e.poll(0) == ("fail", "this firmware has no driver for the RTL8201 PHY")


# ---- ppp ------------------------------------------------------------------------------------------


def cell_rig(**modem):
    hw, m, net = rig()
    modem_ = FakeModem(**modem)
    modem_.attach(m, pwrkey=4, active=1)
    return hw, m, net, modem_


def test_ppp_powers_the_modem_dials_and_brings_up_ppp():
    hw, m, net, modem = cell_rig()
    c = uplinks.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, is_up, step=50)
    assert r == ("up", "100.64.0.9")
    # power: supply on, then a PWRKEY pulse (released - pressed - released)
    assert m.pin_log[:4] == [(12, 1), (4, 0), (4, 1), (4, 0)], m.pin_log
    assert ("UART", 1, 115200, 26, 27) in m.calls
    # the probe's ATs went unheard (the modem was off); after power-up, the dialogue
    assert modem.commands == ["AT", "ATE0", "AT+CPIN?", "AT+CSQ", "AT+CEREG?",
                              'AT+CGDCONT=1,"IP","internet"', "ATD*99#"], modem.commands
    assert modem.apn == "internet"
    assert ("PPP", m.uarts[0]) in net.calls and ("ppp.connect",) in net.calls
    assert t >= MODEM["boot_ms"]  # it waited for the modem to boot
    assert c.status(t)["signal"] == 18 and c.status(t)["registered"] == 1


def test_ppp_modem_already_on_is_not_switched_off_by_a_pwrkey_pulse():
    hw, m, net, modem = cell_rig(on=True)
    c = uplinks.make("cell", CELL, {"apn": "internet"}, hw)
    drive(c, 0, is_up, step=50)
    assert [p for p in m.pin_log if p[0] == 4] == []
    assert modem.on


def test_ppp_silent_modem_is_a_clear_error_naming_the_uart():
    hw, m, net = rig()  # no modem on the UART
    c = uplinks.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=100)
    assert r[1] == ("the modem does not answer AT (check its power and the UART: tx=26 rx=27 "
                    "at 115200 baud): no answer within 1000 ms"), r


def test_ppp_sim_pin_missing_is_a_clear_error():
    hw, m, net, modem = cell_rig(on=True, pin="1234")
    c = uplinks.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=50)
    assert r[1] == "the SIM needs its PIN: set uplinks.cell.sim_pin"


def test_ppp_sim_pin_is_entered_when_configured():
    hw, m, net, modem = cell_rig(on=True, pin="1234")
    c = uplinks.make("cell", CELL, {"apn": "internet", "sim_pin": "1234"}, hw)
    drive(c, 0, is_up, step=50)
    assert "AT+CPIN=1234" in modem.commands and modem.unlocked
    assert modem.commands.count("AT+CPIN?") == 2


def test_ppp_no_sim_card_is_reported():
    hw, m, net, modem = cell_rig(on=True, sim="SIM not inserted")
    c = uplinks.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=100)
    assert r[1] == "SIM check (is a SIM inserted?): +CME ERROR: SIM not inserted"


def test_ppp_waits_for_signal_and_registration():
    hw, m, net, modem = cell_rig(on=True, csq=(99, 99, 99, 14), reg=(2, 2, 5))
    c = uplinks.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, is_up, step=50)
    assert modem.commands.count("AT+CSQ") == 4 and modem.commands.count("AT+CEREG?") == 3
    assert c.status(t)["signal"] == 14 and c.status(t)["registered"] == 5


def test_ppp_no_signal_is_a_clear_error():
    hw, m, net, modem = cell_rig(on=True, csq=(99,))
    c = uplinks.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=100)
    assert r[1].startswith("no signal (check the antenna): answered +CSQ: 99,99"), r


def test_ppp_registration_denied_is_reported():
    hw, m, net, modem = cell_rig(on=True, reg=(3,))
    c = uplinks.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=100)
    assert r[1] == "the network denied registration (stat 3)"


def test_ppp_without_apn_is_unconfigured():
    hw, m, net, modem = cell_rig(on=True)
    c = uplinks.make("cell", CELL, {}, hw)
    assert c.poll(0) == ("fail", "no APN: set uplinks.cell.apn")
    assert c.state == "unconfigured" and modem.commands == []


def test_ppp_dial_failure_is_reported_with_the_modems_words():
    hw, m, net, modem = cell_rig(on=True, dial="NO CARRIER")
    c = uplinks.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=50)
    assert r[1] == "dialling *99# failed: NO CARRIER"


def test_ppp_lost_link_hangs_up_and_redials_from_the_at_dialogue():
    hw, m, net, modem = cell_rig(on=True)
    c = uplinks.make("cell", CELL, {"apn": "internet"}, hw)
    t, _, _ = drive(c, 0, is_up, step=50)
    net.ppps[-1].drop()
    t, r, _ = drive(c, t + 50, lambda r: r[0] == "down", step=50)
    assert r == ("down", "link lost")
    assert ("ppp.disconnect",) in net.calls
    n = len(modem.commands)
    t, r, _ = drive(c, t + 50, is_up, step=50)
    assert modem.commands[n:n + 2] == ["AT", "ATE0"]  # the dialogue again (the modem is on)
    assert modem.commands[-1] == "ATD*99#"
    assert len(net.ppps) == 2


def test_ppp_held_down_switches_the_modem_off():
    hw, m, net, modem = cell_rig()
    c = uplinks.make("cell", CELL, {"apn": "internet"}, hw)
    t, _, _ = drive(c, 0, is_up, step=50)
    assert modem.on
    c.set_admin(False, t)
    assert c.poll(t + 50) == ("down", "held down")
    assert not modem.on


class _EchoingModem(FakeModem):
    """A modem that echoes every command whatever ATE0 says."""

    def _command(self, cmd):
        FakeModem._command(self, cmd)
        self.echo = True


def test_a_modem_that_echoes_the_pin_back_never_shows_it_in_status():
    hw, m, net = rig()
    modem = _EchoingModem(on=True, pin="1234")
    modem.attach(m, pwrkey=4, active=1)
    c = uplinks.make("cell", CELL, {"apn": "internet", "sim_pin": "9876"}, hw)
    seen = []
    t, r, _ = drive(c, 0, lambda r: seen.append(json.dumps(c.status(0))) or r[0] == "fail", step=50)
    assert "AT+CPIN=9876" in modem.commands  # the wrong PIN went out, and was echoed
    assert seen and not [s for s in seen if "9876" in s], [s for s in seen if "9876" in s][:1]
    assert "9876" not in str(r)
