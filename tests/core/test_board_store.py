# The board's persistence (firmware/board/store.py): atomic commits, the fallback
# to the last good configuration, the maintenance flag and the boot counter, on an
# in-memory filesystem that can lose power between (and in the middle of) any two
# file operations. The same cut at every block write of a real littlefs and FAT
# is tests/board/mp_powerloss.py. Plain test functions: pytest and MicroPython.

import json

from board.store import Store, CONFIG, TMP, BAK, MAINT, BOOTS
from board import settings

OLD = {"name": "old-board", "port": 6000}
NEW = {"name": "new-board", "port": 7000, "keying": "open",
       "peers": {"srv": {"addresses": ["127.0.0.10"]}}}


class PowerCut(Exception):
    pass


class MemFiles:
    """board.store.Files in memory. After `budget` more operations the power goes:
    the operation that hits the limit raises PowerCut; a write cut that way leaves
    the first half of its data (a torn write)."""

    def __init__(self, data=None):
        self.data = dict(data or {})
        self.budget = None
        self.ops = 0

    def _op(self):
        self.ops += 1
        if self.budget is not None:
            if self.budget == 0:
                return False
            self.budget -= 1
        return True

    def read(self, name):
        return self.data.get(name)

    def write(self, name, data):
        if not self._op():
            self.data[name] = bytes(data[:len(data) // 2])
            raise PowerCut()
        self.data[name] = bytes(data)

    def rename(self, old, new):
        if not self._op():
            raise PowerCut()
        if old not in self.data:
            raise OSError(2)
        self.data[new] = self.data.pop(old)

    def remove(self, name):
        if not self._op():
            raise PowerCut()
        self.data.pop(name, None)

    def exists(self, name):
        return name in self.data


class FatFiles(MemFiles):
    """MemFiles that renames as MicroPython does on FAT: a file already at the new name is
    removed first, and the power can go between the two."""

    def rename(self, old, new):
        if old in self.data and new in self.data:
            self.remove(new)
        MemFiles.rename(self, old, new)


def check(cfg):
    settings.validate(cfg)


def committed_store(cfg):
    f = MemFiles()
    s = Store(f, check)
    s.load()
    s.commit(cfg)
    return f


def test_commit_then_load_gives_the_config_back():
    f = committed_store(OLD)
    cfg, src, warn = Store(f, check).load()
    assert (cfg, src, warn) == (OLD, CONFIG, None)
    assert json.loads(f.data[CONFIG].decode()) == OLD
    assert TMP not in f.data


def test_a_second_commit_keeps_the_first_as_the_last_good_copy():
    f = committed_store(OLD)
    s = Store(f, check)
    s.load()
    s.commit(NEW)
    assert json.loads(f.data[CONFIG].decode()) == NEW
    assert json.loads(f.data[BAK].decode()) == OLD


def test_a_commit_after_mast_json_was_removed_while_running_lands():
    # `mpremote rm :mast.json` on a running board: the next commit writes it again (it
    # failed every commit until the next boot, the new one left in mast.json.tmp)
    f = committed_store(OLD)
    s = Store(f, check)
    s.load()
    del f.data[CONFIG]
    s.commit(NEW)
    assert TMP not in f.data
    assert Store(f, check).load() == (NEW, CONFIG, None)


def test_nothing_saved_gives_the_defaults_and_says_so():
    cfg, src, warn = Store(MemFiles(), check).load()
    assert (cfg, src, warn) == (None, "defaults", "no configuration saved yet")


def test_corrupt_config_falls_back_to_the_last_good_copy_and_says_why():
    f = committed_store(OLD)
    s = Store(f, check)
    s.load()
    s.commit(NEW)
    for junk, why in ((b'{"name": "new-bo', "not JSON"),
                      (b"\x00" * 40, "not JSON"),
                      (b"\xff\xfe garbage", "not UTF-8 text"),
                      (b"", "empty"),
                      (b"[1, 2, 3]", "not a JSON object"),
                      (b'{"name": "x", "port": 99999}', "port: must be an integer from 1 to 65535")):
        f.data[CONFIG] = junk
        cfg, src, warn = Store(f, check).load()
        assert cfg == OLD and src == BAK, (junk, cfg, src)
        assert warn == "mast.json is corrupt (%s); using the last good configuration" % why, warn


def test_corrupt_config_and_backup_give_the_defaults_and_say_why():
    f = MemFiles({CONFIG: b'{"trunc', BAK: b"\x00\x00"})
    cfg, src, warn = Store(f, check).load()
    assert cfg is None and src == "defaults"
    assert warn == ("mast.json is corrupt (not JSON); mast.json.bak is corrupt (not JSON); "
                    "using the defaults")


def test_commit_after_a_corrupt_config_keeps_the_good_backup():
    f = committed_store(OLD)
    s = Store(f, check)
    s.load()
    s.commit(NEW)
    f.data[CONFIG] = b"garbage"
    s = Store(f, check)
    assert s.load()[1] == BAK
    s.commit(NEW)
    assert json.loads(f.data[BAK].decode()) == OLD  # not the garbage
    assert Store(f, check).load() == (NEW, CONFIG, None)


def test_an_interrupted_commit_is_finished_at_the_next_load():
    f = committed_store(OLD)
    f.data[TMP] = f.data.pop(CONFIG)  # as if cut after mast.json -> .bak
    f.data[TMP] = (json.dumps(NEW) + "\n").encode()
    f.data[BAK] = (json.dumps(OLD) + "\n").encode()
    s = Store(f, check)
    cfg, src, warn = s.load()
    assert cfg == NEW and src == TMP
    assert warn == "mast.json is missing; recovered the commit that was interrupted"
    assert TMP not in f.data and json.loads(f.data[CONFIG].decode()) == NEW
    # the recovered mast.json is the good one now: the next commit keeps it as .bak
    third = {"name": "third-board"}
    s.commit(third)
    assert json.loads(f.data[BAK].decode()) == NEW
    assert Store(f, check).load() == (third, CONFIG, None)


def test_a_configuration_larger_than_a_file_may_be_is_refused_and_nothing_changes():
    f = committed_store(OLD)
    s = Store(f, check)
    s.load()
    s.commit(NEW)
    before = dict(f.data)
    big = {"name": "big-board", "notes": "x" * 16384}
    try:
        s.commit(big)
        raised = None
    except ValueError as e:
        raised = str(e)
    assert raised is not None and raised.startswith("configuration too large ("), raised
    assert raised.endswith(" bytes, at most 16384)"), raised
    assert f.data == before  # no .tmp, mast.json and .bak as they were
    assert Store(f, check).load() == (NEW, CONFIG, None)


def test_a_torn_temp_file_is_ignored_and_removed():
    f = committed_store(OLD)
    f.data[TMP] = b'{"name": "new-b'
    assert Store(f, check).load() == (OLD, CONFIG, None)
    assert TMP not in f.data


def _states_after_every_cut(first, second, third=None):
    """Commit `second` over `first` (then `third`), cutting the power after k file
    operations for every k; each time, what a fresh boot loads."""
    results = []
    k = 0
    while True:
        f = committed_store(first)
        s = Store(f, check)
        s.load()
        f.budget = k
        try:
            s.commit(second)
            if third is not None:
                s.commit(third)
            done = True
        except PowerCut:
            done = False
        f.budget = None
        results.append((k, Store(f, check).load()[0], done))
        # and the board keeps working after the cut: another commit, another load
        s2 = Store(f, check)
        s2.load()
        s2.commit({"name": "after-cut"})
        assert Store(f, check).load()[0] == {"name": "after-cut"}, (k, f.data)
        if done:
            return results
        k += 1


def test_power_cut_at_any_file_operation_of_a_commit_gives_old_or_new():
    results = _states_after_every_cut(OLD, NEW)
    assert len(results) >= 4  # write, rename, rename, and the uncut run
    for k, cfg, done in results:
        assert cfg == OLD or cfg == NEW, (k, cfg)
    assert results[0][1] == OLD and results[-1][1] == NEW


def test_power_cut_during_two_commits_in_a_row_never_loses_both():
    third = {"name": "third-board"}
    for k, cfg, done in _states_after_every_cut(OLD, NEW, third):
        assert cfg in (OLD, NEW, third), (k, cfg)


# ---- the maintenance flag and the boot counter -----------------------------------------------


def test_maintenance_flag_is_set_read_and_cleared():
    f = MemFiles()
    s = Store(f, check)
    assert s.maintenance() is None
    s.set_maintenance("requested from the console")
    assert s.maintenance() == "requested from the console"
    assert Store(f, check).maintenance() == "requested from the console"
    s.clear_maintenance()
    assert s.maintenance() is None and MAINT not in f.data


def test_a_torn_or_empty_maintenance_flag_still_means_maintenance():
    for data in (b"", b"\xff\xfe", b"  "):
        assert Store(MemFiles({MAINT: data}), check).maintenance() == "requested"


def test_boot_counter_counts_and_survives_garbage():
    f = MemFiles()
    s = Store(f, check)
    assert s.boot_count() == 0
    s.set_boot_count(2)
    assert Store(f, check).boot_count() == 2
    f.data[BOOTS] = b"\x00zz"
    assert s.boot_count() == 0


def test_power_cut_at_any_file_operation_of_a_boot_counter_write_gives_old_or_new():
    # a count lost to a cut (read back as 0) starts the boot-loop guard's count again: a board
    # that keeps resetting reaches maintenance later, or never. On FAT the cut can fall between
    # the removal of mast.boots and the rename of mast.boots.tmp (mp_powerloss: fat)
    for kind in (MemFiles, FatFiles):
        k = 0
        while True:
            f = kind()
            Store(f, check).set_boot_count(2)
            f.budget = k
            try:
                Store(f, check).set_boot_count(3)
                done = True
            except PowerCut:
                done = False
            f.budget = None
            assert Store(f, check).boot_count() in (2, 3), (kind.__name__, k, f.data)
            if done:
                break
            k += 1
        assert k >= 2, k  # (the cuts did fall inside the write)
