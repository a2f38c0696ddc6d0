# A Wi-Fi network whose name is not ASCII, end to end on the board firmware: the console's set
# (JSON text, as `mast config set` sends it), commit, apply, and the Wi-Fi manager joining the
# network by that name (network.WLAN.connect takes str; the ESP32 and rp2 ports send its UTF-8
# bytes, 1 to 32 of them: IEEE 802.11's SSID). "Caf\u00e9" and "\u5bb6" were refused (printable
# ASCII only): such a network could not be joined. Plain test functions: pytest and MicroPython.

import json
import sys

from board.store import CONFIG
from test_board_uplinks import Rig

PORT = 17671 if sys.implementation.name == "cpython" else 17681  # (below 32768: never a kernel pick)
SSID = "Caf\u00e9 \u5bb6"  # 9 bytes of UTF-8


def test_a_wifi_network_named_in_utf8_is_set_committed_and_joined():
    r = Rig("source", port=PORT)
    try:
        r.until(lambda: "wifi" in r.b.rt.uplinks)
        r.net.networks[SSID] = "open sesame!"
        rep = r.ask({"id": 1, "op": "set", "key": "uplinks.wifi.ssid", "value": SSID})
        assert rep["ok"] is True, rep
        assert r.ask({"id": 2, "op": "set", "key": "uplinks.wifi.password", "value": "open sesame!"})["ok"]
        assert r.ask({"id": 3, "op": "commit"})["ok"]
        assert json.loads(r.files.read(CONFIG))["uplinks"]["wifi"]["ssid"] == SSID  # saved
        assert r.ask({"id": 4, "op": "apply"})["ok"]
        r.until(lambda: ("wlan.connect", SSID, "open sesame!") in r.net.calls and "wifi" in r.b.rt.uplinks)
        assert r.ask({"id": 5, "op": "get", "key": "uplinks.wifi.ssid"})["result"] == SSID
        # 33 bytes (11 characters of 3) is over the 32 an SSID has: refused, the key named
        rep = r.ask({"id": 6, "op": "set", "key": "uplinks.wifi.ssid", "value": "\u5bb6" * 11})
        assert rep["ok"] is False and rep["error"] == (
            "uplinks.wifi.ssid: must be 1 to 32 bytes of UTF-8 text (no control characters)"), rep
    finally:
        r.close()
