"""The `mast presence` process: one presence server (PRES/1) on a UDP socket, JSON lines out,
JSON commands in, as `mast endpoint` does.

stdout: {"event": "started", ...}, then the server's events ({"event": "registered", "name": ...,
"observed": ..., "ttl": ..., "addresses": [...]}, "withdrawn", "expired"), and {"event":
"stopped", "status": ...} at the end. stdin: {"op": "status"} -> {"reply": "status", "status":
...}; {"op": "quit"}. End of input ends the process (--no-stdin: stdin is not read).
SIGTERM, SIGINT and SIGHUP end it too (reason "signal"); the state file is written before it
exits.

The socket and the protocol live in firmware (mastd/presence_host.py around the sans-IO
presence/server.py): mastd hosts the same server.
"""

import json
import os
import select
import signal
import sys
import time

_LINE_MAX = 4096


class Process:
    def __init__(self, host, out, use_stdin=True):
        self.host = host
        self.out = out
        self.use_stdin = use_stdin
        self.quit = None
        self._pending = b""
        self._skipping = False  # in the rest of a command line refused as too long

    def emit(self, obj):
        self.out(json.dumps(obj, sort_keys=True))

    def run(self, duration_ms=None):
        host = self.host
        host.emit = self.emit
        poll = select.poll()
        poll.register(host.sock, select.POLLIN)
        stdin = sys.stdin.fileno() if self.use_stdin else None
        if stdin is not None:
            poll.register(stdin, select.POLLIN)
        end = None if duration_ms is None else host.clock() + duration_ms
        stop = []
        old = {}
        # (SIGHUP too: a closed terminal killed it with no stopped line; set before the started
        # line, which a supervisor may answer with a signal at once; and they stay until the
        # stopped line is out: a second signal killed it before, once they were put back)
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            old[sig] = signal.signal(sig, lambda n, f: stop.append(n))
        try:
            self.emit({"event": "started", "listen": host.status()["listen"], "pid": os.getpid(),
                       "names": sorted(host.conf["names"]), "t_ms": host.clock()})
            while self.quit is None:
                wait = host.wait_ms(1000)
                if end is not None:
                    wait = max(0, min(wait, end - host.clock()))
                for fd, ev in poll.poll(wait):
                    if fd == stdin:
                        self._on_stdin(poll, stdin)
                    else:
                        host.on_readable()
                host.tick()
                if stop:
                    self.quit = "signal"
                elif end is not None and host.clock() >= end:
                    self.quit = "duration"
            status = host.status()
            host.close()
            self.emit({"event": "stopped", "reason": self.quit, "status": status})
        finally:
            for sig, h in old.items():
                signal.signal(sig, h)
        return status

    def _on_stdin(self, poll, fd):
        data = os.read(fd, 4096)
        if not data:
            poll.unregister(fd)
            if self.quit is None:
                self.quit = "eof"
            return
        self._pending += data
        while b"\n" in self._pending:
            line, self._pending = self._pending.split(b"\n", 1)
            if self._skipping:  # the end of a line refused as too long: no command of its own
                self._skipping = False
                continue
            self.command(line.decode("utf-8", "replace").strip())
        if len(self._pending) > _LINE_MAX:
            self._pending = b""
            if not self._skipping:
                self._skipping = True
                self.emit({"reply": None, "error": "command line too long"})

    def command(self, line):
        if not line:
            return
        try:
            cmd = json.loads(line)
        except (ValueError, RecursionError):  # (RecursionError: nested too deep, it ended the server)
            self.emit({"reply": None, "error": "not JSON"})  # (never repeated: it may hold a key)
            return
        op = cmd.get("op") if isinstance(cmd, dict) else None
        if not isinstance(op, str):
            op = None  # (an object or a list is never repeated either)
        if op == "status":
            self.emit({"reply": "status", "status": self.host.status(), "time": round(time.time(), 3)})
        elif op == "quit":
            self.quit = "quit"
            self.emit({"reply": "quit"})
        else:
            self.emit({"reply": op, "error": "unknown op %r (known: quit, status)" % (op,)})
