# Cellular uplink: a modem on a UART, dialled with AT commands, then PPP.
#
#   board definition: uplinks.NAME.modem = {model, uart, tx, rx, baud, power_on,
#     pwrkey, pwrkey_active, pwrkey_ms, reset, boot_ms, dial}
#   configuration: uplinks.NAME.apn (required), uplinks.NAME.sim_pin (a secret)
#
# One connect attempt, step by step, never blocking for long:
#   probe   AT: a modem that answers is on already (a pwrkey pulse would switch it off)
#   power   power_on pin high, then the reset pin (a modem that answered before and
#           went silent) or a pwrkey pulse (pwrkey_ms), then boot_ms to boot
#   chat    AT (until it answers), ATE0, AT+CPIN? (enters sim_pin if asked),
#           AT+CSQ (until there is signal), AT+CEREG? (until registered),
#           AT+CGDCONT=1,"IP","<apn>", ATD<dial> -> CONNECT
#   ppp     network.PPP(uart).connect(); up once isconnected()
# Each step has a timeout and a clear error ("the modem does not answer AT: check
# its power and UART pins", "no signal", "the SIM needs a PIN: set ...").
# Hang-up: PPP.disconnect() (LCP terminate: the modem drops the call and returns
# to command mode). Redial: the next attempt starts at the chat. A modem that stops
# answering AT is power-cycled (reset pin, else the pwrkey) on the next attempt.
#
# Routing: PPP.connect() makes PPP the stack's default interface (lwIP
# netif_set_default). On ESP32 the other uplinks keep working because sockets
# bound to their addresses are routed by source; on ports without that, routing
# must be exclusive (docs/HARDWARE.md).

from .uplinks import Manager, UplinkError, NeedsConfig
from .atchat import Chat, ChatError, Step
from .up_wlan import need_network, nic_addr
from .compat import sleep_ms

_PPP_MS = 30000  # from CONNECT to an IP address


def _judge_cpin(pin, name):
    def judge(lines):
        for t in lines:
            if t.startswith("+CPIN:"):
                v = t[6:].strip()
                if v == "READY":
                    return True
                if v == "SIM PIN":
                    if not pin:
                        raise ChatError("the SIM needs its PIN: set uplinks.%s.sim_pin" % name)
                    return [Step("AT+CPIN=" + pin, "OK", 5000, 1,
                                 "the SIM refused uplinks.%s.sim_pin" % name),
                            Step("AT+CPIN?", "OK", 5000, 5, "SIM check", judge, 1000)]
                if "PUK" in v:
                    raise ChatError("the SIM is locked (%s): unlock it in a phone" % v)
                return False
        return False
    return judge


def _judge_csq(up):
    def judge(lines):
        for t in lines:
            if t.startswith("+CSQ:"):
                try:
                    rssi = int(t[5:].split(",")[0])
                except ValueError:
                    return False
                if rssi == 99:
                    return False
                up.signal = rssi
                return True
        return False
    return judge


def _judge_reg(up):
    def judge(lines):
        for t in lines:
            if t.startswith("+CEREG:") or t.startswith("+CREG:"):
                f = t.split(":")[1].split(",")
                try:
                    stat = int(f[1] if len(f) > 1 else f[0])
                except ValueError:
                    return False
                up.registered = stat
                if stat == 1 or stat == 5:
                    return True
                if stat == 3:
                    raise ChatError("the network denied registration (stat 3)")
        return False
    return judge


class Ppp(Manager):
    kind = "ppp"
    connect_ms = 180000  # power-up, registration and dialling can take minutes

    def __init__(self, name, spec, opts, hw):
        Manager.__init__(self, name, spec, opts, hw)
        self.m = spec["modem"]
        self.uart = None
        self.ppp = None
        self.chat = None
        self.phase = None
        self.powered = False  # it answered AT (it is on)
        self.seen = False  # it has answered since the board booted
        self.steps = None
        self.boot_until = 0
        self.ppp_until = 0
        self.signal = None
        self.registered = None

    def _pin(self, n, v):
        Pin = self.hw.machine.Pin
        Pin(n, Pin.OUT).value(v)

    def _power(self, now):
        m = self.m
        if m["power_on"] is not None:
            self._pin(m["power_on"], 1)
        if m["reset"] is not None and self.seen:
            self._pin(m["reset"], 1)
            sleep_ms(100)
            self._pin(m["reset"], 0)
        elif m["pwrkey"] is not None:
            on = m["pwrkey_active"]
            self._pin(m["pwrkey"], 1 - on)
            sleep_ms(10)
            self._pin(m["pwrkey"], on)
            sleep_ms(m["pwrkey_ms"])
            self._pin(m["pwrkey"], 1 - on)
        self.boot_until = now + m["boot_ms"]
        self.phase = "power"

    def _steps(self):
        m = self.m
        apn = self.opts.get("apn")
        if not apn:
            raise NeedsConfig("no APN: set uplinks.%s.apn" % self.name)
        return [
            Step("AT", "OK", 1000, 15, "the modem does not answer AT (check its power and the "
                 "UART: tx=%d rx=%d at %d baud)" % (m["tx"], m["rx"], m["baud"]), None, 1000),
            Step("ATE0", "OK", 1000, 3, "ATE0 failed"),
            Step("AT+CPIN?", "OK", 5000, 5, "SIM check (is a SIM inserted?)",
                 _judge_cpin(self.opts.get("sim_pin"), self.name), 1000),
            Step("AT+CSQ", "OK", 2000, 30, "no signal (check the antenna)", _judge_csq(self), 2000),
            Step("AT+CEREG?", "OK", 2000, 60, "not registered on a network",
                 _judge_reg(self), 2000),
            Step('AT+CGDCONT=1,"IP","%s"' % apn, "OK", 2000, 3, "setting the APN failed"),
            Step("ATD" + m["dial"], "CONNECT", 30000, 1, "dialling %s failed" % m["dial"]),
        ]

    def start(self, now):
        m = self.m
        steps = self._steps()
        need_network(self)
        if self.uart is None:
            UART = self.hw.machine.UART
            try:
                self.uart = UART(m["uart"], baudrate=m["baud"], tx=m["tx"], rx=m["rx"], rxbuf=1024)
            except TypeError:  # ports without rxbuf
                self.uart = UART(m["uart"], baudrate=m["baud"], tx=m["tx"], rx=m["rx"])
        self.steps = steps
        if self.powered:
            self.chat = Chat(self.uart, steps)
            self.phase = "chat"
        else:
            self.chat = Chat(self.uart, [Step("AT", "OK", 500, 3, "probe", None, 200)])
            self.phase = "probe"

    def check(self, now):
        if self.phase == "probe":
            try:
                if not self.chat.poll(now):
                    return None
                self.phase = "chat"
                self.powered = self.seen = True
            except ChatError:
                self._power(now)
            self.chat = Chat(self.uart, self.steps)
        if self.phase == "power":
            if now < self.boot_until:
                return None
            self.phase = "chat"
        if self.phase == "chat":
            try:
                done = self.chat.poll(now)
            except ChatError as e:
                if "does not answer AT" in str(e):
                    self.powered = False  # power-cycle it next time
                raise UplinkError(str(e))
            self.powered = self.seen = True
            if not done:
                return None
            net = self.hw.network
            self.ppp = net.PPP(self.uart)
            if hasattr(self.ppp, "active"):  # ESP32 before 1.26 needs it; harmless after
                try:
                    self.ppp.active(True)
                except (OSError, TypeError):
                    pass
            self.ppp.connect()
            self.phase = "ppp"
            self.ppp_until = now + _PPP_MS
        if self.phase == "ppp":
            if self.ppp.isconnected():
                return nic_addr(self.ppp)
            if now >= self.ppp_until:
                raise UplinkError("PPP did not come up within %d s of CONNECT" % (_PPP_MS // 1000))
        return None

    def current(self, now):
        if self.ppp is None or not self.ppp.isconnected():
            return None
        return nic_addr(self.ppp)

    def stop(self, hard):
        p = self.ppp
        self.ppp = None
        self.phase = None
        if p is not None:
            try:
                p.disconnect()
            except AttributeError:  # ESP32 before 1.26: active(False) hangs up
                p.active(False)
        if hard and self.m["pwrkey"] is not None and self.powered:
            on = self.m["pwrkey_active"]  # switch the modem off: the same pulse
            self._pin(self.m["pwrkey"], on)
            sleep_ms(self.m["pwrkey_ms"])
            self._pin(self.m["pwrkey"], 1 - on)
            self.powered = False

    def detail(self):
        d = {"modem": self.m["model"], "phase": self.phase, "signal": self.signal,
             "registered": self.registered}
        if self.chat is not None and self.state != "up":
            d["modem_said"] = self.chat.transcript[-3:]
        return d
