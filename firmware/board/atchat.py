# A non-blocking AT command dialogue with a modem on a UART (anything with any(),
# read() and write()). A dialogue is a list of steps; each sends one command and
# waits, up to its timeout, for its answer:
#
#   Step(cmd, expect, timeout_ms, tries, what, judge=None, gap_ms=0)
#
# expect: the final line that ends the step well ("OK", "CONNECT"). judge(lines),
# if given, looks at the answer's lines after that final line: it returns True
# (step done), False (ask again, after gap_ms, while tries last), a list of steps
# to run next (e.g. enter the SIM PIN), or raises ChatError with the reason.
# ERROR, +CME ERROR, NO CARRIER, BUSY, NO ANSWER and NO DIALTONE end a try; the
# step fails when its tries are used up, with `what` and the modem's last words.
# A line that is not UTF-8 is read as Latin-1 (each byte one character), never dropped.

_FAILS = ("ERROR", "+CME ERROR", "+CMS ERROR", "NO CARRIER", "BUSY", "NO ANSWER", "NO DIALTONE")
_LINE_MAX = 256


class ChatError(Exception):
    pass


class Step:
    def __init__(self, cmd, expect, timeout_ms, tries, what, judge=None, gap_ms=0):
        self.cmd = cmd
        self.expect = expect
        self.timeout_ms = timeout_ms
        self.tries = tries
        self.what = what
        self.judge = judge
        self.gap_ms = gap_ms


class Chat:
    def __init__(self, uart, steps):
        self.uart = uart
        self.steps = list(steps)
        self.step = None
        self.tries_left = 0
        self.sent_at = None
        self.due = 0  # when to send (gap between tries)
        self.buf = b""
        self.lines = []
        self.transcript = []  # the last few lines, for status and errors

    def _send(self, now):
        s = self.step
        self.buf = b""
        self.lines = []
        self.uart.write(s.cmd.encode() + b"\r")
        self.sent_at = now

    def _next_step(self, now):
        self.step = self.steps.pop(0) if self.steps else None
        if self.step is not None:
            self.tries_left = self.step.tries
            self.sent_at = None
            self.due = now

    def _retry(self, now, why):
        self.tries_left -= 1
        if self.tries_left <= 0:
            raise ChatError("%s: %s" % (self.step.what, why))
        self.sent_at = None
        self.due = now + self.step.gap_ms

    def _read_lines(self):
        u = self.uart
        n = u.any()
        if n:
            data = u.read(n)
            if data:
                self.buf += data
        out = []
        while True:
            i = self.buf.find(b"\n")
            j = self.buf.find(b"\r")
            if i < 0 or (0 <= j < i):
                i = j
            if i < 0:
                if len(self.buf) > _LINE_MAX:
                    self.buf = self.buf[-_LINE_MAX:]
                break
            line = self.buf[:i]
            self.buf = self.buf[i + 1:]
            try:
                text = line.decode().strip()
            except UnicodeError:  # not UTF-8: read as Latin-1 (an operator's name), not dropped
                text = "".join([chr(b) for b in line]).strip()
            if text:
                out.append(text)
        return out

    def poll(self, now):
        """One step of the dialogue. True when every step is done, else False.
        ChatError when a step fails for good."""
        if self.step is None:
            self._next_step(now)
            if self.step is None:
                return True
        s = self.step
        if self.sent_at is None:
            if now < self.due:
                return False
            self._send(now)
        for text in self._read_lines():
            if text == s.cmd:
                continue  # the modem's echo (before ATE0): ours, not what it said (a PIN...)
            self.transcript.append(text)
            if len(self.transcript) > 8:
                self.transcript.pop(0)
            if text == s.expect or (s.expect != "OK" and text.startswith(s.expect)):
                verdict = s.judge(self.lines) if s.judge else True
                if verdict is True:
                    self._next_step(now)
                elif verdict is False:
                    self._retry(now, "answered " + (" / ".join(self.lines) or text))
                else:
                    self.steps = list(verdict) + self.steps
                    self._next_step(now)
                return self.step is None and not self.steps
            for f in _FAILS:
                if text.startswith(f):
                    self._retry(now, text)
                    return False
            self.lines.append(text)
        if self.sent_at is not None and now - self.sent_at >= s.timeout_ms:
            self._retry(now, "no answer within %d ms" % s.timeout_ms)
        return False
