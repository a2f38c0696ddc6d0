"""mastd's log: syslog (daemon facility, as OpenWrt's logd and journald expect) or stdout lines."""

import sys
import time


class Log:
    def __init__(self, use_syslog=False, stream=None):
        self.syslog = None
        self.stream = stream or sys.stdout
        self.lost = 0  # lines the stream would not take
        if use_syslog:
            import syslog

            syslog.openlog("mastd", syslog.LOG_PID, syslog.LOG_DAEMON)
            self.syslog = syslog

    def _write(self, level, prio_name, msg):
        if self.syslog is not None:
            self.syslog.syslog(getattr(self.syslog, prio_name), msg)
            return
        try:
            self.stream.write("%s mastd %s: %s\n" % (time.strftime("%H:%M:%S"), level, msg))
            self.stream.flush()
        except (OSError, ValueError):  # a full disk, a reader gone: the line is lost, not mastd
            self.lost += 1

    def info(self, msg):
        self._write("info", "LOG_INFO", msg)

    def warn(self, msg):
        self._write("warning", "LOG_WARNING", msg)

    def error(self, msg):
        self._write("error", "LOG_ERR", msg)
