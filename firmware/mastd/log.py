"""mastd's log: syslog (daemon facility, as OpenWrt's logd and journald expect) or stdout lines.

A line stdout will not take now (its reader stalled: a paused terminal, a pipe nobody reads; a
full disk; a reader gone) is dropped and counted (`log_lines_lost` in mastctl status), never
waited for: mastd's loop, its failovers and its SIGTERM go on. The first line written after
some were dropped comes after one that says how many."""

import select
import sys
import time

_LINE_MAX = 4096  # bytes of a log line on stdout at most (PIPE_BUF: written whole or not at all)


class Log:
    def __init__(self, use_syslog=False, stream=None):
        self.syslog = None
        self.stream = stream or sys.stdout
        self.lost = 0  # lines the stream would not take
        self.unsaid = 0  # of them, since the last line written
        if use_syslog:
            import syslog

            syslog.openlog("mastd", syslog.LOG_PID, syslog.LOG_DAEMON)
            self.syslog = syslog

    def _write(self, level, prio_name, msg):
        if self.syslog is not None:
            self.syslog.syslog(getattr(self.syslog, prio_name), msg)
            return
        line = "%s mastd %s: %s\n" % (time.strftime("%H:%M:%S"), level, msg)
        if len(line) > _LINE_MAX // 4 and len(line.encode()) > _LINE_MAX:  # (one atomic write)
            line = line.encode()[:_LINE_MAX - 4].decode("utf-8", "ignore") + "...\n"
        try:
            if self.unsaid and self._room():  # (a line of its own: each within PIPE_BUF)
                self.stream.write("%s mastd warning: %d log line(s) lost here: the log's reader did not "
                                  "take them (log_lines_lost in mastctl status)\n" % (line[:8], self.unsaid))
                self.stream.flush()
                self.unsaid = 0
            if not self._room():  # a reader that stalls (a paused terminal, a pipe nobody
                self._drop()      # reads) must not stop mastd's loop, nor its SIGTERM
                return
            self.stream.write(line)
            self.stream.flush()
        except (OSError, ValueError):  # a full disk, a reader gone: the line is lost, not mastd
            self._drop()

    def _drop(self):
        self.lost += 1
        self.unsaid += 1

    def _room(self):
        """False when the stream (a pipe, a terminal) would block a line's write now. A pipe
        that polls writable has room for PIPE_BUF bytes, written at once: a line no longer
        never blocks. A stream with no file descriptor (a test's) always has room."""
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            return True
        return bool(select.select([], [fd], [], 0)[1])

    def info(self, msg):
        self._write("info", "LOG_INFO", msg)

    def warn(self, msg):
        self._write("warning", "LOG_WARNING", msg)

    def error(self, msg):
        self._write("error", "LOG_ERR", msg)
