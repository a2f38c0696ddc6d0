"""Where running simulated boards say they are, so that `mast ports` lists them and a command
without --port finds one (as a USB board is found by its USB IDs).

Each `mast sim-board` writes one small JSON file, <pid>.json, into a folder of this user's
($XDG_RUNTIME_DIR/mast-sim-boards, else <tmp>/mast-sim-boards-<uid>; MAST_SIM_REGISTRY
overrides it, which the tests use to see only their own boards), and removes it when it
stops. running() skips (and removes) the files of boards that are gone: the process is dead
or its pty no longer exists.
"""

import json
import os
import tempfile


def folder():
    env = os.environ.get("MAST_SIM_REGISTRY")
    if env:
        return env
    run = os.environ.get("XDG_RUNTIME_DIR")
    if run and os.path.isdir(run):
        return os.path.join(run, "mast-sim-boards")
    uid = os.getuid() if hasattr(os, "getuid") else 0
    return os.path.join(tempfile.gettempdir(), "mast-sim-boards-%d" % uid)


def _file(pid):
    return os.path.join(folder(), "%d.json" % pid)


def register(info):
    """Record a running sim board: info has "pid", "device" and whatever else describes it
    (board, dir, link, udp addresses). Written atomically. Never raises: a board that cannot
    register still runs, it is only not found without --port."""
    try:
        os.makedirs(folder(), mode=0o700, exist_ok=True)
        path = _file(info["pid"])
        tmp = path + ".tmp"
        try:
            with open(tmp, "w") as f:
                json.dump(info, f)
            os.replace(tmp, path)
        except OSError:
            os.unlink(tmp)  # (no half-written file left beside the registry's)
            raise
        return path
    except OSError:
        return None


def unregister(pid):
    try:
        os.unlink(_file(pid))
    except OSError:
        pass


def _alive(pid):
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that pid: not ours
        return False
    except OSError:
        return False


def running():
    """[info] of the sim boards that run now, oldest first."""
    out = []
    try:
        names = os.listdir(folder())
    except OSError:
        return out
    for name in names:
        if not name.endswith(".json"):
            continue
        path = os.path.join(folder(), name)
        try:
            with open(path) as f:
                info = json.load(f)
            pid = int(info["pid"])
            device = info["device"]
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not _alive(pid) or not os.path.exists(device):
            try:
                os.unlink(path)
            except OSError:
                pass
            continue
        out.append(info)
    out.sort(key=lambda i: (i.get("started") or 0, i["pid"]))
    return out


def find(device):
    """The running sim board on `device` (its pty, or its --link), or None."""
    real = os.path.realpath(device)
    for info in running():
        if real in (os.path.realpath(info["device"]), os.path.realpath(info.get("link") or info["device"])):
            return info
    return None
