"""`mastctl peer add|remove` edit /etc/config/mast under libuci's lock (flock LOCK_EX on the file
itself, which `uci commit` takes from its read to its rename), so that neither edit is lost when
both happen at once (mastd/peeredit.py)."""

import fcntl
import os
import threading

import pytest

from mastd import peeredit, settings

PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="
UCI = "config mast 'global'\n\toption name 'server.example'\n"


def _locker(path):
    """The lock a `uci commit` holds on the file path names now."""
    fd = os.open(str(path), os.O_RDONLY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def _commit(path, text):
    """What `uci commit` does while it holds the lock: a new file renamed over the old."""
    tmp = str(path) + ".uci-tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, str(path))


def test_a_peer_added_while_uci_commits_twice_waits_for_both_and_keeps_their_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(peeredit, "LOCK_WAIT", 60.0)  # (bounded below by the joins, not by this)
    path = tmp_path / "mast"
    path.write_text(UCI)
    first = _locker(path)
    done = []
    t = threading.Thread(target=lambda: done.append(peeredit.add_peer(str(path), "b1.example",
                                                                      {"psk": PSK})))
    t.start()
    t.join(0.3)
    assert t.is_alive() and path.read_text() == UCI  # it waits for the first commit
    text1 = UCI + "\toption port '7000'\n"
    _commit(path, text1)
    second = _locker(path)  # a second commit, begun on the new file before the first unlocked
    os.close(first)
    t.join(0.3)
    assert t.is_alive() and path.read_text() == text1  # (the first file's lock is not the file's)
    text2 = text1.replace("'7000'", "'7001'")
    _commit(path, text2)
    os.close(second)
    t.join(30)
    assert not t.is_alive() and done == ["mast.b1_example"]
    text = path.read_text()
    assert text.startswith(text2) and "\toption name 'b1.example'\n" in text
    conf = settings.from_uci_text(text, str(path))
    assert conf.core["port"] == 7001 and sorted(conf.core["peers"]) == ["b1.example"]


@pytest.mark.parametrize("edit", ["add", "remove"])
def test_a_file_locked_past_the_wait_is_left_as_it_was_and_the_edit_says_try_again(tmp_path, monkeypatch, edit):
    monkeypatch.setattr(peeredit, "LOCK_WAIT", 0.2)
    path = tmp_path / "mast"
    text = UCI + "\nconfig peer 'b1'\n\toption name 'b1.example'\n\toption psk '%s'\n" % PSK
    path.write_text(text)
    fd = _locker(path)
    try:
        with pytest.raises(ValueError) as e:
            if edit == "add":
                peeredit.add_peer(str(path), "b2.example", {"psk": PSK})
            else:
                peeredit.remove_peer(str(path), "b1.example")
    finally:
        os.close(fd)
    assert str(e.value) == ("%s is being written by another program (a `uci commit`?); nothing was "
                            "changed: try again" % path)
    assert path.read_text() == text and sorted(os.listdir(str(tmp_path))) == ["mast"]
    if edit == "remove":  # unlocked, it goes through
        peeredit.remove_peer(str(path), "b1.example")
        assert path.read_text() == UCI
