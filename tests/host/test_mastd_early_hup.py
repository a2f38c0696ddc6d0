"""A SIGHUP while mastd's launcher imports its code (before mastd.main's main() notes one) does
not end it: procd sends one soon after a start (reload_config at boot), and its default action
killed mastd, which procd counted as a crash. Both launchers: `python -m mastd` and the OpenWrt
package's /usr/sbin/mastd."""

import json
import os
import shutil
import signal
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
FIRMWARE = os.path.join(ROOT, "firmware")
LAUNCHER = os.path.join(ROOT, "openwrt-package", "mast", "files", "usr", "sbin", "mastd")
PSK = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8="


def _code_with_a_held_import(lib, fifo):
    """mastd's code copied into lib, its mastd/main.py first reading a byte from fifo: the
    import waits there until the test writes it, so that a signal lands while the launcher
    imports, every time (a FIFO as main.py itself is not a module to Python's import)."""
    for pkg in ("mast", "runtime", "mastd", "presence"):
        shutil.copytree(os.path.join(FIRMWARE, pkg), os.path.join(lib, pkg),
                        ignore=shutil.ignore_patterns("__pycache__"))
    main = os.path.join(lib, "mastd", "main.py")
    with open(main) as f:
        source = f.read()
    with open(main, "w") as f:
        f.write("import os as _o\n_o.read(_o.open(%r, _o.O_RDONLY), 1)\n%s" % (fifo, source))
    os.mkfifo(fifo, 0o600)


@pytest.mark.parametrize("launcher", ["python -m mastd", "/usr/sbin/mastd"])
def test_a_sighup_while_the_launcher_imports_does_not_end_mastd(tmp_path, launcher):
    lib = str(tmp_path / "usr" / "lib" / "mast")
    fifo = str(tmp_path / "hold")
    _code_with_a_held_import(lib, fifo)
    cfg = tmp_path / "mast.json"
    cfg.write_text(json.dumps({"name": "r1", "peers": {"srv": {"psk": PSK}}}))
    cfg.chmod(0o600)
    if launcher == "python -m mastd":
        cmd, env = [sys.executable, "-B", "-m", "mastd"], dict(os.environ, PYTHONPATH=lib)
    else:
        sbin = tmp_path / "usr" / "sbin"
        sbin.mkdir()
        shutil.copy(LAUNCHER, str(sbin / "mastd"))
        cmd, env = [sys.executable, str(sbin / "mastd")], dict(os.environ, PYTHONPATH="")
    p = subprocess.Popen(cmd + ["--check", "--config", str(cfg)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, universal_newlines=True, env=env)
    try:
        w = os.open(fifo, os.O_WRONLY)  # returns once mastd's import opened it: it waits there
        try:
            p.send_signal(signal.SIGHUP)
            os.write(w, b"x")
        finally:
            os.close(w)
        out, err = p.communicate(timeout=60)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert (p.returncode, out, err) == (0, "mastd: %s is valid\n" % cfg, "")
