"""The board's console as a user meets it: hello, a configuration change that survives a
reboot (through `mast config`), and garbage answered with errors that change nothing."""

import time


def test_hello_reports_the_expected_version(hw, con):
    hello = con.call("hello")
    assert hello["firmware"] == "mast-board"
    assert hello["version"] == hw.version
    assert hello["board"] == hw.definition["name"] and hello["mode"] == "normal" and hello["protocol"] == 1
    assert hello["micropython"].startswith("micropython ")


def test_a_config_change_made_with_mast_config_survives_a_reboot(hw, flashed):
    key = "uplinks.%s.cost" % hw.uplinks_by_preference()[-1]
    config = ["config", "--port", hw.port]
    before = hw.mast(*config + ["get", key, "--json"]).doc
    new = 17 if before != 17 else 18
    try:
        r = hw.mast(*config + ["set", key, str(new), "--commit", "--json"]).doc
        assert r["key"] == key and r["commit"]["committed"] is True
        uplink = key.split(".")[1]
        with hw.console() as con:
            st = hw.reboot(con)
            assert st["config"]["source"] == "mast.json" and not st["config"]["uncommitted"]
            end = time.monotonic() + 30
            while "mast" not in st["uplinks"][uplink]:  # until the uplink is up again
                assert time.monotonic() < end, st["uplinks"][uplink]
                time.sleep(0.2)
                st = con.call("status")
        assert st["uplinks"][uplink]["mast"]["cost"] == new  # and it runs
        assert hw.mast(*config + ["get", key, "--json"]).doc == new
    finally:
        hw.mast(*config + ["set", key, str(before), "--commit"])


def test_bad_console_input_is_answered_with_errors_and_changes_nothing(hw, con):
    before = con.call("get")
    bad = [
        b"this is not json",
        b"[1, 2, 3]",
        b'{"id": 1, "op": "format"}',
        b'{"id": 2, "op": "set", "key": "port", "value": 70000}',
        b'{"id": 3, "op": "set", "key": "uplinks.nosuch.cost", "value": "cheap"}',
        b'{"id": 4, "op": "uplink", "name": "eth", "state": "sideways"}',
        b'{"id": 5, "op": "set", "key": "peers.x.psk", "value": "' + b"A" * 43 + b'"}',
        b'{"id": 6, "op": "hello", "verbose": true}',
        b'{"id": 7, "op": "set", "key": "name", "value": "' + b"x" * 3000 + b'"}',
        bytes(range(128, 256)),
    ]
    for line in bad:
        con.write(line + b"\n")
    assert con.wait(lambda: sum(len(v) for v in con.replies.values()) >= len(bad), 15), con.replies
    replies = [r for v in con.replies.values() for r in v]
    assert len(replies) == len(bad) and not any(r["ok"] for r in replies), replies
    errors = dict((r["id"], r["error"]) for r in replies if r["id"] is not None)
    assert errors[1].startswith("unknown op (known: ")
    assert errors[2] == "port: must be an integer from 1 to 65535"
    assert errors[3].startswith("uplinks.nosuch.cost: ")
    assert errors[4] == "state must be up or down"
    assert errors[5] == "peers.x.psk: must be standard base64 of exactly 32 bytes"
    assert errors[6] == "op hello takes no field 'verbose'"
    unnamed = sorted(r["error"] for r in replies if r["id"] is None)
    assert unnamed == sorted(["not JSON", 'a request is a JSON object, e.g. {"id": 1, "op": "hello"}',
                              "line longer than 2048 bytes", "not UTF-8 text"]), unnamed
    assert all("AAAA" not in r["error"] for r in replies)  # a secret is never echoed
    con.replies.clear()
    assert con.call("get") == before
    assert con.call("hello")["mode"] == "normal"
