# The uplink managers against fakes of `network` and `machine` (tests/fakes):
# what they ask of the drivers, what they report, how they retry.
# Plain test functions: run by pytest and on the MicroPython unix port.

import json

from fake_machine import FakeMachine, FakeModem
from fake_network import FakeNetwork
import fake_network
from board.hw import Hardware
from board import uplinks, uplinkops
from board.statusop import uplink_status
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
    s = uplinkops.make("eth", {"kind": "sim", "address": "127.0.0.2"}, {}, None)
    assert s.poll(0) == ("up", "127.0.0.2")
    assert s.state == "up" and s.addr == "127.0.0.2"
    assert s.poll(100) is None


def test_sim_uplink_configured_address_wins_over_the_board_definition():
    s = uplinkops.make("eth", {"kind": "sim", "address": "127.0.0.2"}, {"address": "127.0.0.9"}, None)
    assert s.poll(0) == ("up", "127.0.0.9")


def test_sim_uplink_renumbered_reports_up_with_the_new_address():
    s = uplinkops.make("wifi", {"kind": "sim", "address": "127.0.0.3"}, {}, None)
    s.poll(0)
    uplinkops.renumber(s, "127.0.0.5")
    assert s.poll(100) == ("up", "127.0.0.5")
    assert s.addr == "127.0.0.5"


def test_sim_uplink_given_a_new_address_by_the_configuration_reports_it_at_the_next_poll():
    s = uplinkops.make("eth", {"kind": "sim", "address": "127.0.0.2"}, {}, None)
    s.poll(0)
    assert uplinkops.configure(s, {"address": "127.0.0.9"}, 50) is None  # (an apply of uplinks.eth.address)
    assert s.poll(100) == ("up", "127.0.0.9") and s.addr == "127.0.0.9"


def test_uplink_held_down_reports_down_then_comes_back_when_released():
    s = uplinkops.make("eth", {"kind": "sim", "address": "127.0.0.2"}, {}, None)
    s.poll(0)
    uplinkops.set_admin(s, False, 50)
    assert s.poll(100) == ("down", "held down")
    assert s.state == "off"
    assert s.poll(200) is None
    uplinkops.set_admin(s, True, 300)
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
    s = uplinkops.make("eth", {"kind": "sim", "address": "127.0.0.2"}, {}, None)
    s.backoff = 16000
    s.poll(0)
    assert s.backoff == BACKOFF_MIN_MS


# ---- wlan -----------------------------------------------------------------------------------


def test_wlan_without_ssid_is_unconfigured_and_not_retried():
    hw, m, net = rig()
    w = uplinkops.make("wifi", WIFI, {}, hw)
    assert w.poll(0) == ("fail", "no network name: set uplinks.wifi.ssid")
    assert w.state == "unconfigured"
    for t in range(100, 120000, 1000):
        assert w.poll(t) is None
    assert w.attempts == 1


def test_wlan_connects_as_a_station_and_reports_its_address():
    hw, m, net = rig()
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, r, _ = drive(w, 0, is_up)
    assert r == ("up", "192.168.1.50")
    assert ("WLAN", net.STA_IF) in net.calls
    assert ("wlan.active", True) in net.calls
    assert ("wlan.connect", "home", "correct horse") in net.calls


def test_wlan_open_network_connects_without_a_password():
    hw, m, net = rig()
    net.networks = {"cafe": None}
    w = uplinkops.make("wifi", WIFI, {"ssid": "cafe"}, hw)
    drive(w, 0, is_up)
    assert ("wlan.connect", "cafe", None) in net.calls


def test_wlan_wrong_password_is_a_clear_error_and_retried_with_backoff():
    hw, m, net = rig()
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "battery staple"}, hw)
    t, r, _ = drive(w, 0, lambda r: r[0] == "fail")
    assert r[1] == "wrong password for network 'home' (uplinks.wifi.password)", r
    assert "battery staple" not in r[1]
    assert ("wlan.active", False) in net.calls  # hung up
    t2, r2, _ = drive(w, t + 100, lambda r: r[0] == "fail")
    assert t2 - t >= BACKOFF_MIN_MS


def test_wlan_unknown_network_is_a_clear_error():
    hw, m, net = rig()
    w = uplinkops.make("wifi", WIFI, {"ssid": "elsewhere"}, hw)
    t, r, _ = drive(w, 0, lambda r: r[0] == "fail")
    assert r[1] == "no network named 'elsewhere' in range (uplinks.wifi.ssid)"


def test_wlan_lost_association_is_reported_down_then_reconnected():
    hw, m, net = rig()
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, _, _ = drive(w, 0, is_up)
    net.wlan.drop()
    t, r, _ = drive(w, t + 100, lambda r: r[0] == "down")
    assert r == ("down", "link lost")
    t, r, _ = drive(w, t + 100, is_up)
    assert r == ("up", "192.168.1.50")
    assert len([c for c in net.calls if c[0] == "wlan.connect"]) == 2


def test_wlan_new_credentials_reconnect():
    hw, m, net = rig()
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, _, _ = drive(w, 0, is_up)
    net.networks["office"] = "open sesame!"
    assert uplinkops.configure(w, {"ssid": "office", "password": "open sesame!"}, t) == ("down", "reconfigured")
    drive(w, t, is_up)
    assert ("wlan.connect", "office", "open sesame!") in net.calls


# ---- lan ---------------------------------------------------------------------------------------


def test_lan_builds_the_phy_from_the_board_definition():
    hw, m, net = rig()
    e = uplinkops.make("eth", ETH, {}, hw)
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
    e = uplinkops.make("eth", ETH, {}, hw)
    e.poll(0)  # creates the LAN object
    net.lan.cable = False
    for t in range(100, 100000, 100):
        assert e.poll(t) is None
    assert e.state == "connecting" and e.failures == 0
    assert e.error == "no link (is the cable plugged in?)"
    assert uplink_status(e, t)["link"] == "down"
    net.lan.cable = True
    t, r, _ = drive(e, t, is_up)
    assert r == ("up", "10.0.0.7") and uplink_status(e, t)["link"] == "up"


def test_lan_cable_pulled_is_reported_down_at_once_and_up_when_back():
    hw, m, net = rig()
    e = uplinkops.make("eth", ETH, {}, hw)
    t, _, _ = drive(e, 0, is_up)
    net.lan.cable = False
    assert e.poll(t + 100) == ("down", "link lost")
    net.lan.cable = True
    t, r, _ = drive(e, t + 200, is_up)
    assert r == ("up", "10.0.0.7")


def test_lan_held_down_deactivates_the_interface():
    hw, m, net = rig()
    e = uplinkops.make("eth", ETH, {}, hw)
    t, _, _ = drive(e, 0, is_up)
    uplinkops.set_admin(e, False, t)
    assert e.poll(t + 100) == ("down", "held down")
    assert net.calls[-1] == ("lan.active", False)


def test_lan_unknown_phy_driver_is_a_clear_error():
    hw, m, net = rig()
    spec = {"kind": "lan", "priority": 10, "cost": 0, "phy": dict(ETH["phy"])}
    spec["phy"]["type"] = "RTL8201"
    e = uplinkops.make("eth", spec, {}, hw)
    assert e.poll(0) == ("fail", "this firmware has no driver for the RTL8201 PHY")


# ---- ppp ------------------------------------------------------------------------------------------


def cell_rig(**modem):
    hw, m, net = rig()
    modem_ = FakeModem(**modem)
    modem_.attach(m, pwrkey=4, active=1)
    return hw, m, net, modem_


def test_ppp_powers_the_modem_dials_and_brings_up_ppp():
    hw, m, net, modem = cell_rig()
    c = uplinkops.make("cell", CELL, {"apn": "internet"}, hw)
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
    assert uplink_status(c, t)["signal"] == 18 and uplink_status(c, t)["registered"] == 1


def test_ppp_modem_already_on_is_not_switched_off_by_a_pwrkey_pulse():
    hw, m, net, modem = cell_rig(on=True)
    c = uplinkops.make("cell", CELL, {"apn": "internet"}, hw)
    drive(c, 0, is_up, step=50)
    assert [p for p in m.pin_log if p[0] == 4] == []
    assert modem.on


def test_ppp_silent_modem_is_a_clear_error_naming_the_uart():
    hw, m, net = rig()  # no modem on the UART
    c = uplinkops.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=100)
    assert r[1] == ("the modem does not answer AT (check its power and the UART: tx=26 rx=27 "
                    "at 115200 baud): no answer within 1000 ms"), r


def test_ppp_sim_pin_missing_is_a_clear_error():
    hw, m, net, modem = cell_rig(on=True, pin="1234")
    c = uplinkops.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=50)
    assert r[1] == "the SIM needs its PIN: set uplinks.cell.sim_pin"


def test_ppp_sim_pin_is_entered_when_configured():
    hw, m, net, modem = cell_rig(on=True, pin="1234")
    c = uplinkops.make("cell", CELL, {"apn": "internet", "sim_pin": "1234"}, hw)
    drive(c, 0, is_up, step=50)
    assert "AT+CPIN=1234" in modem.commands and modem.unlocked
    assert modem.commands.count("AT+CPIN?") == 2


def test_ppp_no_sim_card_is_reported():
    hw, m, net, modem = cell_rig(on=True, sim="SIM not inserted")
    c = uplinkops.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=100)
    assert r[1] == "SIM check (is a SIM inserted?): +CME ERROR: SIM not inserted"


def test_ppp_waits_for_signal_and_registration():
    hw, m, net, modem = cell_rig(on=True, csq=(99, 99, 99, 14), reg=(2, 2, 5))
    c = uplinkops.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, is_up, step=50)
    assert modem.commands.count("AT+CSQ") == 4 and modem.commands.count("AT+CEREG?") == 3
    assert uplink_status(c, t)["signal"] == 14 and uplink_status(c, t)["registered"] == 5


def test_ppp_no_signal_is_a_clear_error():
    hw, m, net, modem = cell_rig(on=True, csq=(99,))
    c = uplinkops.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=100)
    assert r[1].startswith("no signal (check the antenna): answered +CSQ: 99,99"), r


def test_ppp_registration_denied_is_reported():
    hw, m, net, modem = cell_rig(on=True, reg=(3,))
    c = uplinkops.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=100)
    assert r[1] == "the network denied registration (stat 3)"


def test_ppp_without_apn_is_unconfigured():
    hw, m, net, modem = cell_rig(on=True)
    c = uplinkops.make("cell", CELL, {}, hw)
    assert c.poll(0) == ("fail", "no APN: set uplinks.cell.apn")
    assert c.state == "unconfigured" and modem.commands == []


def test_ppp_dial_failure_is_reported_with_the_modems_words():
    hw, m, net, modem = cell_rig(on=True, dial="NO CARRIER")
    c = uplinkops.make("cell", CELL, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=50)
    assert r[1] == "dialling *99# failed: NO CARRIER"


def test_ppp_lost_link_hangs_up_and_redials_from_the_at_dialogue():
    hw, m, net, modem = cell_rig(on=True)
    c = uplinkops.make("cell", CELL, {"apn": "internet"}, hw)
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
    c = uplinkops.make("cell", CELL, {"apn": "internet"}, hw)
    t, _, _ = drive(c, 0, is_up, step=50)
    assert modem.on
    uplinkops.set_admin(c, False, t)
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
    c = uplinkops.make("cell", CELL, {"apn": "internet", "sim_pin": "9876"}, hw)
    seen = []
    t, r, _ = drive(c, 0, lambda r: seen.append(json.dumps(uplink_status(c, 0))) or r[0] == "fail", step=50)
    assert "AT+CPIN=9876" in modem.commands  # the wrong PIN went out, and was echoed
    assert seen and not [s for s in seen if "9876" in s], [s for s in seen if "9876" in s][:1]
    assert "9876" not in str(r)


# ---- what the suite did not check before (tests/mutants: uplink-*, wlan-*, lan-*, ppp-*, chat-*) ----


def _retry_waits(mgr, t, n, failed=None, step=100, limit=800000):
    """Poll mgr from t until n failed attempts were each retried: the waits from each failure
    to the next connect() the driver sees (the backoff; the attempt itself may last up to its
    deadline: a failure code the driver showed before connect() is taken at the deadline, as an
    ESP32 keeps the last failure's code), and the next t. failed: when an attempt failed just
    before t."""
    calls = mgr.hw.network.calls
    waits = []
    end = t + limit
    while t < end and len(waits) < n:
        k = len(calls)
        r = mgr.poll(t)
        if failed is not None and [c for c in calls[k:] if c[0] == "wlan.connect"]:
            waits.append(t - failed)
            failed = None
        if r is not None and r[0] == "fail":
            failed = t
        t += step
    assert len(waits) == n, (waits, mgr.state, mgr.error)
    return waits, t


def test_new_settings_or_a_release_start_the_backoff_again_from_a_second():
    hw, m, net = rig()
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "battery staple"}, hw)
    waits, t = _retry_waits(w, 0, 8)  # backed off to the minute by now
    assert waits[:3] == [BACKOFF_MIN_MS, 2 * BACKOFF_MIN_MS, 4 * BACKOFF_MIN_MS], waits
    assert waits[-1] == waits[-2] == BACKOFF_MAX_MS, waits
    # another (still wrong) password: tried at once, and a second after that failure
    n = len(net.calls)
    uplinkops.configure(w, {"ssid": "home", "password": "tr0ub4dor"}, t)
    r = w.poll(t)
    assert ("wlan.connect", "home", "tr0ub4dor") in net.calls[n:]
    waits, t = _retry_waits(w, t + 100, 1, t if r is not None and r[0] == "fail" else None)
    assert waits == [BACKOFF_MIN_MS], waits
    _retry_waits(w, t, 6)  # a minute again
    # held down, then released (`uplink wifi down`, `uplink wifi up`): the same
    uplinkops.set_admin(w, False, t)
    assert w.poll(t) is None and w.state == "off"
    uplinkops.set_admin(w, True, t + 100)
    waits, t = _retry_waits(w, t + 100, 1)
    assert waits == [BACKOFF_MIN_MS], waits


def test_a_connect_that_never_completes_fails_at_its_deadline_and_is_retried():
    hw, m, net = rig()
    net.polls_to_connect = 10 ** 9  # associated, but DHCP never answers
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, r, _ = drive(w, 0, lambda r: r[0] == "fail")
    assert r == ("fail", "not connected after 30 s") and t == w.connect_ms == 30000
    n = len([c for c in net.calls if c[0] == "wlan.connect"])
    w.poll(t + BACKOFF_MIN_MS)
    assert len([c for c in net.calls if c[0] == "wlan.connect"]) == n + 1  # tried again


def test_status_says_what_happened_and_clears_the_error_once_up():
    hw, m, net = rig()
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "battery staple"}, hw)
    t, r, _ = drive(w, 0, lambda r: r[0] == "fail")
    st = uplink_status(w, t)
    assert (st["state"], st["attempts"], st["failures"], st["ups"], st["up_ms"]) == ("down", 1, 1, 0, None)
    assert st["error"] == "wrong password for network 'home' (uplinks.wifi.password)"
    assert st["retry_in_ms"] == BACKOFF_MIN_MS and uplink_status(w, t + 400)["retry_in_ms"] == 600
    net.networks["home"] = "battery staple"  # the network's password changed to this one
    t, r, _ = drive(w, t, is_up)
    assert w.poll(t + 500) is None  # up, and watched
    st = uplink_status(w, t + 5000)
    assert (st["state"], st["error"], st["attempts"], st["failures"], st["ups"]) == ("up", None, 2, 1, 1), st
    assert st["up_ms"] == 5000 and st["rssi"] == -61 and st["addr"] == "192.168.1.50"
    assert "retry_in_ms" not in st and "standby" not in st
    w.standby = True  # exclusive routing holds it down
    assert w.poll(t + 5100) == ("down", "standby")
    st = uplink_status(w, t + 5200)
    assert st["standby"] is True and st["state"] == "off" and st["addr"] is None


def test_wlan_joins_once_the_network_is_back_though_the_driver_still_shows_the_last_failure():
    # an ESP32's status() says the last failure's code (NO_AP_FOUND here) through disconnect(),
    # active() and the next connect(), until that attempt has an address: the retry must not
    # take it for its own failure, or the board never joins again
    hw, m, net = rig()
    net.networks = {}
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, r, _ = drive(w, 0, lambda r: r[0] == "fail")
    assert r == ("fail", "no network named 'home' in range (uplinks.wifi.ssid)") and t < 1000
    assert net.wlan.status() == net.STAT_NO_AP_FOUND  # hung up, and still says so
    net.networks = {"home": "correct horse"}  # back in range
    t2, r2, seen = drive(w, t + 100, is_up)
    assert seen == [("up", "192.168.1.50")], seen
    assert t2 - t <= BACKOFF_MIN_MS + 500 and uplink_status(w, t2)["error"] is None


def test_wlan_a_failure_the_driver_showed_before_connect_is_reported_at_the_deadline():
    hw, m, net = rig()
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "battery staple"}, hw)
    t, r, _ = drive(w, 0, lambda r: r[0] == "fail")
    msg = "wrong password for network 'home' (uplinks.wifi.password)"
    assert r == ("fail", msg) and t < 1000  # a new code: at once
    t2, r2, seen = drive(w, t + 100, lambda r: r[0] == "fail")
    assert seen == [("fail", msg)]  # the same code again: the same words, at the deadline
    assert t2 - t == BACKOFF_MIN_MS + w.connect_ms, t2 - t


class _Cyw43WLAN(fake_network.FakeWLAN):
    """The rp2 port's driver (cyw43-driver's cyw43_wifi_join): connect() puts status() at JOIN
    (STAT_CONNECTING) at once, the join's failure code comes a poll later and stays through
    disconnect() and active() (cyw43_wifi_leave only disassociates)."""

    outcome = None

    def connect(self, ssid=None, key=None):
        fake_network.FakeWLAN.connect(self, ssid, key)
        self.outcome = self.stat if self.countdown is None else None
        self.stat = fake_network.FakeNetwork.STAT_CONNECTING
        self.asked = 0

    def status(self, param=None):
        if param is None and self.outcome is not None:
            self.asked += 1
            if self.asked > 1:  # (the join's events take a while)
                self.stat, self.outcome = self.outcome, None
        return fake_network.FakeWLAN.status(self, param)


def test_wlan_on_rp2_the_same_failure_again_is_named_as_soon_as_it_comes():
    # cyw43 says JOIN right after connect(): the code that follows is this attempt's, even when
    # it is the one status() gave before connect()
    hw, m, net = rig()
    net.wlan = _Cyw43WLAN(net)
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "battery staple"}, hw)
    t, r, _ = drive(w, 0, lambda r: r[0] == "fail")
    msg = "wrong password for network 'home' (uplinks.wifi.password)"
    assert r == ("fail", msg) and t < 1000
    assert net.wlan.status() == net.STAT_WRONG_PASSWORD  # hung up, and still says so
    t2, r2, seen = drive(w, t + 100, lambda r: r[0] == "fail")
    assert seen == [("fail", msg)] and t2 - t <= BACKOFF_MIN_MS + 500, (seen, t2 - t)
    net.networks["home"] = "battery staple"  # the password changed to the configured one
    t3, r3, seen = drive(w, t2 + 100, is_up)
    assert seen == [("up", "192.168.1.50")], seen


def test_a_failed_uplink_whose_retry_is_due_asks_the_loop_not_to_wait():
    # the board's loop sleeps for the least wait_ms of its uplinks (rt.poll(wait)); a turn that
    # comes late finds the retry's moment passed: a negative wait would make poll() wait for ever
    hw, m, net = rig()
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "battery staple"}, hw)
    t, r, _ = drive(w, 0, lambda r: r[0] == "fail")
    assert w.wait_ms(t) == BACKOFF_MIN_MS and w.wait_ms(t + 400) == 600
    assert w.wait_ms(t + BACKOFF_MIN_MS) == 0 and w.wait_ms(t + BACKOFF_MIN_MS + 7) == 0


class _FaultyWLAN(fake_network.FakeWLAN):
    """A driver that raises OSError (as an ESP32's does on an internal error)."""

    def __init__(self, net, on_connect=True, on_disconnect=False):
        fake_network.FakeWLAN.__init__(self, net)
        self.on_connect = on_connect
        self.on_disconnect = on_disconnect

    def connect(self, ssid=None, key=None):
        if self.on_connect:
            raise OSError("Wifi Internal Error")
        fake_network.FakeWLAN.connect(self, ssid, key)

    def disconnect(self):
        fake_network.FakeWLAN.disconnect(self)
        if self.on_disconnect:
            raise OSError("Wifi Not Started")


def test_a_driver_error_fails_the_attempt_with_its_type_and_the_board_goes_on():
    hw, m, net = rig()
    net.wlan = _FaultyWLAN(net)
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    assert w.poll(0) == ("fail", "OSError: Wifi Internal Error")
    assert w.state == "down" and w.error == "OSError: Wifi Internal Error"
    net.wlan.on_connect = False
    t, r, _ = drive(w, 100, is_up)
    assert r == ("up", "192.168.1.50") and t >= BACKOFF_MIN_MS


def test_a_driver_that_fails_to_hang_up_still_leaves_the_uplink_held_down():
    hw, m, net = rig()
    net.wlan = _FaultyWLAN(net, on_connect=False, on_disconnect=True)
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, _, _ = drive(w, 0, is_up)
    uplinkops.set_admin(w, False, t)
    assert w.poll(t + 100) == ("down", "held down")
    assert w.state == "off" and w.addr is None and w.poll(t + 200) is None
    # and the interface is off all the same: its route goes (exclusive routing relies on it)
    assert net.calls[-1] == ("wlan.active", False) and not net.wlan.active()


class _NoRssiWLAN(fake_network.FakeWLAN):
    """A port whose status() takes no parameter (TypeError for status('rssi'))."""

    def status(self, *param):
        if param:
            raise TypeError("function takes 1 positional arguments but 2 were given")
        return self.stat


def test_wlan_on_a_port_without_an_rssi_stays_up_without_one():
    hw, m, net = rig()
    net.wlan = _NoRssiWLAN(net)
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, r, _ = drive(w, 0, is_up)
    for x in range(t + 100, t + 10000, 100):
        assert w.poll(x) is None, x  # (no fail, no down: the link is fine)
    assert w.state == "up" and w.detail()["rssi"] is None


class _LateAddrWLAN(fake_network.FakeWLAN):
    """Associated (isconnected) a few polls before DHCP gives it an address."""

    def __init__(self, net, late):
        fake_network.FakeWLAN.__init__(self, net)
        self.late = late

    def ipconfig(self, key):
        if self.up and self.late > 0:
            self.late -= 1
            return ("0.0.0.0", "0.0.0.0")
        return fake_network.FakeWLAN.ipconfig(self, key)


def test_wlan_is_not_up_before_it_has_an_address():
    hw, m, net = rig()
    net.wlan = _LateAddrWLAN(net, 3)
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, r, seen = drive(w, 0, is_up)
    assert seen == [("up", "192.168.1.50")], seen


class _OldPortWLAN(fake_network.FakeWLAN):
    """A port before ipconfig (rp2 before 1.23, ESP32 before 1.24): only ifconfig(); DHCP answers late."""

    def __init__(self, net, late=0):
        fake_network.FakeWLAN.__init__(self, net)
        self.late = late

    def ipconfig(self, key):
        raise AttributeError("'WLAN' object has no attribute 'ipconfig'")

    def ifconfig(self):
        if self.up and self.late > 0:
            self.late -= 1
            return ("0.0.0.0", "0.0.0.0", "0.0.0.0", "0.0.0.0")
        return (self.net.addrs["wlan"] if self.up else "0.0.0.0", "255.255.255.0", "192.168.1.1",
                "192.168.1.1")


def test_wlan_on_a_port_without_ipconfig_reads_its_address_from_ifconfig():
    hw, m, net = rig()
    net.wlan = _OldPortWLAN(net, 3)  # associated a few polls before it has an address
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, r, seen = drive(w, 0, is_up)
    assert seen == [("up", "192.168.1.50")], seen
    assert w.state == "up" and w.addr == "192.168.1.50"


class _DownIpconfigWLAN(fake_network.FakeWLAN):
    """A driver whose ipconfig() raises while the interface is coming up (OSError)."""

    def ipconfig(self, key):
        raise OSError(-1, "interface not ready")

    def ifconfig(self):
        return (self.net.addrs["wlan"] if self.up else "0.0.0.0", "255.255.255.0", "0.0.0.0", "0.0.0.0")


def test_wlan_whose_ipconfig_fails_falls_back_to_ifconfig():
    hw, m, net = rig()
    net.wlan = _DownIpconfigWLAN(net)
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, r, seen = drive(w, 0, is_up)
    assert seen == [("up", "192.168.1.50")], seen


class _RefusingWLAN(fake_network.FakeWLAN):
    def connect(self, ssid=None, key=None):
        fake_network.FakeWLAN.connect(self, ssid, key)
        self.stat = fake_network.FakeNetwork.STAT_CONNECT_FAIL
        self.countdown = None


def test_wlan_a_refused_join_is_a_clear_error_at_once():
    hw, m, net = rig()
    net.wlan = _RefusingWLAN(net)
    w = uplinkops.make("wifi", WIFI, {"ssid": "home", "password": "correct horse"}, hw)
    t, r, _ = drive(w, 0, lambda r: r[0] == "fail")
    assert r == ("fail", "could not join network 'home' (uplinks.wifi)") and t < 1000


def test_lan_with_an_input_clock_and_no_power_pin_gets_just_those():
    # the WT32-ETH01 kind: the PHY's oscillator drives GPIO0 (ref_clk_mode "in"); a board whose
    # PHY is always powered has "power": null, and no power pin may be passed to the driver
    hw, m, net = rig()
    spec = {"kind": "lan", "priority": 10, "cost": 0, "phy": dict(ETH["phy"])}
    spec["phy"]["ref_clk_mode"] = "in"
    spec["phy"]["ref_clk"] = 0
    spec["phy"]["power"] = None
    e = uplinkops.make("eth", spec, {}, hw)
    drive(e, 0, is_up)
    kw = net.lan.kw
    assert kw["ref_clk_mode"] == m.Pin.IN and kw["ref_clk"].n == 0
    assert "power" not in kw, kw


def test_lan_with_a_link_but_no_dhcp_answer_fails_at_its_deadline():
    hw, m, net = rig()
    net.polls_to_connect = 10 ** 9
    e = uplinkops.make("eth", ETH, {}, hw)
    assert e.poll(0) is None
    st = uplink_status(e, 0)
    assert st["link"] == "up" and st["error"] is None  # the cable is in: not "no link"
    t, r, _ = drive(e, 100, lambda r: r[0] == "fail")
    assert r == ("fail", "not connected after 20 s") and t == 20000


class _Modem(FakeModem):
    """FakeModem with what the fake leaves out: a SIM locked by its PUK, the extended
    registration answer (AT+CEREG=2 set: "+CEREG: 2,<stat>,<tac>,<ci>,<act>"), noise on
    the line before its first answer, a hang (on, but deaf to AT) that only its RESET pin
    ends (pulled high, then released)."""

    def __init__(self, puk=False, ext_reg=False, noise=b"", **kw):
        FakeModem.__init__(self, **kw)
        self.puk = puk
        self.ext_reg = ext_reg
        self.noise = noise
        self.hung = False
        self.in_reset = False
        self.resets = 0

    def attach_reset(self, machine, pin):
        machine.pin_watch[pin] = self._reset

    def _reset(self, v):
        if v:
            self.in_reset = True
        elif self.in_reset:
            self.in_reset = False
            self.resets += 1
            self.hung = False
            self.on = True
            self.echo = True
            self.data_mode = False

    def receive(self, data):
        if self.hung or self.in_reset:
            return
        FakeModem.receive(self, data)

    def _command(self, cmd):
        if self.noise:
            self.out += self.noise
            self.noise = b""
        if cmd == "AT+CPIN?" and self.puk:
            self.commands.append(cmd)
            self._say("+CPIN: SIM PUK", "OK")
        elif cmd == "AT+CEREG?" and self.ext_reg:
            self.commands.append(cmd)
            self._say('+CEREG: 2,%d,"00C3","0A1B2C3D",7' % self._next(self.reg), "OK")
        else:
            FakeModem._command(self, cmd)


def modem_rig(modem, reset=None):
    hw, m, net = rig()
    modem.attach(m, pwrkey=4, active=1)
    spec = CELL
    if reset is not None:
        modem.attach_reset(m, reset)
        spec = dict(CELL, modem=dict(MODEM, reset=reset))
    return hw, m, net, spec


def test_ppp_a_sim_locked_by_its_puk_is_reported_and_no_pin_is_tried():
    modem = _Modem(on=True, puk=True, pin="1234")
    hw, m, net, spec = modem_rig(modem)
    c = uplinkops.make("cell", spec, {"apn": "internet", "sim_pin": "1234"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=50)
    assert r == ("fail", "the SIM is locked (SIM PUK): unlock it in a phone"), r
    assert [x for x in modem.commands if x.startswith("AT+CPIN=")] == []
    assert modem.commands.count("AT+CPIN?") == 1


def test_ppp_the_extended_registration_answer_is_read_for_its_status_field():
    modem = _Modem(on=True, ext_reg=True, reg=(2, 5))
    hw, m, net, spec = modem_rig(modem)
    c = uplinkops.make("cell", spec, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, is_up, step=50)
    assert r == ("up", "100.64.0.9") and uplink_status(c, t)["registered"] == 5
    assert modem.commands.count("AT+CEREG?") == 2


def test_ppp_noise_on_the_line_is_skipped():
    modem = _Modem(on=True, noise=b"\x00\xff\xfe\x80\r\n")
    hw, m, net, spec = modem_rig(modem)
    c = uplinkops.make("cell", spec, {"apn": "internet"}, hw)
    t, r, seen = drive(c, 0, is_up, step=50)
    assert seen == [("up", "100.64.0.9")], seen


def test_ppp_with_a_reset_pin_a_modem_that_is_off_is_switched_on_with_pwrkey():
    # the RESET pin restarts a running modem; it does not switch one on
    modem = _Modem()
    hw, m, net, spec = modem_rig(modem, reset=5)
    c = uplinkops.make("cell", spec, {"apn": "internet"}, hw)
    t, r, seen = drive(c, 0, is_up, step=50)
    assert seen == [("up", "100.64.0.9")], seen
    assert [p for p in m.pin_log if p[0] == 5] == [] and modem.resets == 0
    assert [p for p in m.pin_log if p[0] == 4] == [(4, 0), (4, 1), (4, 0)]


def test_ppp_a_modem_that_stops_answering_is_restarted_by_its_reset_pin():
    modem = _Modem(on=True)
    hw, m, net, spec = modem_rig(modem, reset=5)
    c = uplinkops.make("cell", spec, {"apn": "internet"}, hw)
    t, _, _ = drive(c, 0, is_up, step=50)
    modem.hung = True  # deaf to AT, and the PPP link drops
    net.ppps[-1].drop()
    t, r, _ = drive(c, t + 50, lambda r: r[0] == "down", step=50)
    mark = len(m.pin_log)
    t, r, seen = drive(c, t + 50, is_up, step=50)
    assert r == ("up", "100.64.0.9") and modem.resets == 1
    # one attempt found it deaf; the next restarted it: RESET pulled and released, and no
    # PWRKEY pulse (that would switch a running modem off)
    fails = [x[1] for x in seen if x[0] == "fail"]
    assert len(fails) == 1 and fails[0].startswith("the modem does not answer AT"), seen
    assert [p for p in m.pin_log[mark:] if p[0] in (4, 5)] == [(5, 1), (5, 0)], m.pin_log[mark:]


def test_ppp_held_down_before_it_ever_dialled_leaves_the_modem_off():
    modem = _Modem()
    hw, m, net, spec = modem_rig(modem)
    c = uplinkops.make("cell", spec, {"apn": "internet"}, hw)
    c.standby = True  # exclusive routing: another uplink is the active one
    for t in range(0, 5000, 50):
        assert c.poll(t) is None
    assert not modem.on and [p for p in m.pin_log if p[0] == 4] == []


def test_ppp_switched_off_then_released_comes_up_without_a_failed_attempt():
    modem = _Modem()
    hw, m, net, spec = modem_rig(modem)
    c = uplinkops.make("cell", spec, {"apn": "internet"}, hw)
    t, _, _ = drive(c, 0, is_up, step=50)
    uplinkops.set_admin(c, False, t)
    assert c.poll(t + 50) == ("down", "held down") and not modem.on
    uplinkops.set_admin(c, True, t + 100)
    t, r, seen = drive(c, t + 100, is_up, step=50)
    assert seen == [("up", "100.64.0.9")], seen
    assert modem.on


def test_ppp_a_ppp_link_that_never_comes_up_after_connect_fails_after_30_s():
    modem = _Modem(on=True)
    hw, m, net, spec = modem_rig(modem)
    net.polls_to_connect = 10 ** 9  # CONNECT, then no IPCP answer
    c = uplinkops.make("cell", spec, {"apn": "internet"}, hw)
    t0 = None
    t = 0
    while t0 is None and t < 60000:
        c.poll(t)
        if ("ppp.connect",) in net.calls:
            t0 = t
        t += 50
    t, r, _ = drive(c, t, lambda r: r[0] == "fail", step=50)
    assert r == ("fail", "PPP did not come up within 30 s of CONNECT") and t - t0 == 30000


def test_ppp_no_signal_is_asked_30_times_two_seconds_apart():
    modem = _Modem(on=True, csq=(99,))
    hw, m, net, spec = modem_rig(modem)
    c = uplinkops.make("cell", spec, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=100)
    assert r[1].startswith("no signal (check the antenna): ")
    assert modem.commands.count("AT+CSQ") == 30
    assert t >= 29 * 2000, t  # a modem that just booted gets its minute to find the network


def test_ppp_a_busy_line_fails_the_dial_at_once_with_the_modems_word():
    modem = _Modem(on=True, dial="BUSY")
    hw, m, net, spec = modem_rig(modem)
    c = uplinkops.make("cell", spec, {"apn": "internet"}, hw)
    t, r, _ = drive(c, 0, lambda r: r[0] == "fail", step=50)
    assert r == ("fail", "dialling *99# failed: BUSY") and t < 5000


class _Dribble:
    """A UART (any/read/write) whose other end sends chunks, one per read."""

    def __init__(self, chunks):
        self.chunks = list(chunks)

    def any(self):
        return len(self.chunks[0]) if self.chunks else 0

    def read(self, n=None):
        return self.chunks.pop(0) if self.chunks else None

    def write(self, data):
        return len(data)


def _chat_error(ch, until_ms):
    """Poll the chat every 100 ms of its clock up to until_ms: its ChatError's text, or None."""
    from board.atchat import ChatError

    for t in range(0, until_ms, 100):
        try:
            ch.poll(t)
        except ChatError as e:
            return str(e)
    return None


def test_chat_a_line_without_an_end_is_kept_to_its_last_256_bytes():
    # a modem babbling (a wrong baud rate, a firmware dump) must not fill a board's heap
    from board.atchat import Chat, Step

    u = _Dribble([b"x" * 300] * 8 + [b"\r\nOK\r\n"])
    ch = Chat(u, [Step("AT+CSQ", "OK", 100000, 1, "no signal", lambda lines: False)])
    err = _chat_error(ch, 2000)
    assert err == "no signal: answered " + "x" * 256, (err or "")[:80]


def test_chat_a_modem_line_that_is_not_utf8_is_read_as_latin1_not_dropped():
    # an operator's name in Latin-1 (+COPS: ..."Café"): before, the line was dropped, so the
    # judge never saw it and the error said only "answered OK"
    from board.atchat import Chat, Step

    seen = []

    def judge(lines):
        seen.extend(lines)
        return False

    u = _Dribble([b'\r\n+COPS: 0,0,"Caf\xe9 T\xe9l\xe9com",7\r\n', b"\r\nOK\r\n"])
    ch = Chat(u, [Step("AT+COPS?", "OK", 100000, 1, "no operator", judge)])
    err = _chat_error(ch, 1000)
    assert seen == ['+COPS: 0,0,"Caf\u00e9 T\u00e9l\u00e9com",7']
    assert err == 'no operator: answered +COPS: 0,0,"Caf\u00e9 T\u00e9l\u00e9com",7'
    assert ch.transcript == ['+COPS: 0,0,"Caf\u00e9 T\u00e9l\u00e9com",7', "OK"]
