"""`mast ports`: the serial ports on this PC, with their USB IDs and the board each likely is,
and the simulated boards (`mast sim-board`) that run now.

pyserial's list_ports finds the ports; likely_boards() (pure, tested without hardware) reads
the USB vendor and product IDs: most boards are known by their USB-serial chip (a CP2102 on an
ESP32-DevKitC, a CH340 on the Olimex ESP32-POE) or by MicroPython's own USB ID (the Pico W).
A chip says what the adapter is, not the board behind it: "likely" means just that. Running
sim boards come from mast_tools.simregistry. The commands that talk to a board use the same
list when --port is left out (portpick.py).
"""

from mast_tools.output import emit

EXAMPLE = """\
example:
  mast ports
  mast ports --json          # [{"device", "vid", "pid", "serial_number", "likely": [...], "access"}]

Then: mast flash --port <device> --board <one of likely> (with only one likely board, --port
may be left out). A port you may not open: see docs/HARDWARE.md ("USB permissions"). Running
simulated boards (mast sim-board) are listed too, as "sim"."""

# (vid, pid) -> (what the USB device is, the boards in boards/ that carry it)
USB_IDS = {
    (0x10C4, 0xEA60): ("Silicon Labs CP210x USB-UART", ["esp32-devkitc", "esp32-sim7600", "wt32-eth01"]),
    (0x1A86, 0x7523): ("QinHeng CH340 USB-UART", ["olimex-esp32-poe", "wt32-eth01"]),
    (0x1A86, 0x55D4): ("QinHeng CH9102 USB-UART", ["lilygo-t-a7670", "esp32-devkitc", "esp32-sim7600"]),
    (0x0403, 0x6001): ("FTDI FT232R USB-UART", ["wt32-eth01"]),
    (0x0403, 0x6015): ("FTDI FT231X USB-UART", ["wt32-eth01"]),
    (0x2E8A, 0x0005): ("MicroPython on a Raspberry Pi RP2040 (USB CDC)", ["rpi-pico-w"]),
    (0x303A, 0x1001): ("Espressif USB JTAG/serial (ESP32-S3/C3 native USB)", []),
    (0x303A, 0x4001): ("Espressif native USB (MicroPython TinyUSB, ESP32-S2/S3)", []),
}


def likely_boards(vid, pid, manufacturer=None, product=None):
    """(what the USB device is, [board names]) for a port's USB IDs; (None, []) if unknown."""
    if vid is None or pid is None:
        return None, []
    known = USB_IDS.get((vid, pid))
    if known:
        return known[0], list(known[1])
    if (manufacturer or "").strip().lower() == "micropython":
        return "MicroPython's own USB (%s)" % (product or "native USB"), []
    return None, []


def can_open(device):
    """Whether this user may open device for reading and writing (its mode, owner and group:
    the check the open makes, by the effective user); None when there is no such file."""
    import os

    if not os.path.exists(device):
        return None
    mode = os.R_OK | os.W_OK
    if os.access in os.supports_effective_ids:
        return os.access(device, mode, effective_ids=True)
    return os.access(device, mode)


def describe(port):
    """One port (a pyserial ListPortInfo, or anything with its attributes) as a dict;
    "access": False when this user may not open it (docs/HARDWARE.md, "USB permissions")."""
    vid, pid = getattr(port, "vid", None), getattr(port, "pid", None)
    what, boards = likely_boards(vid, pid, getattr(port, "manufacturer", None),
                                 getattr(port, "product", None))
    return {
        "device": port.device,
        "vid": "%04x" % vid if vid is not None else None,
        "pid": "%04x" % pid if pid is not None else None,
        "serial_number": getattr(port, "serial_number", None),
        "manufacturer": getattr(port, "manufacturer", None),
        "product": getattr(port, "product", None),
        "description": getattr(port, "description", None),
        "usb": what,
        "likely": boards,
        "access": can_open(port.device),
    }


def describe_sim(info):
    """A running sim board (simregistry) as a dict of the same shape."""
    return {"device": info.get("link") or info["device"], "vid": None, "pid": None,
            "serial_number": None, "manufacturer": None, "product": None,
            "description": "mast sim-board (pid %s, --dir %s)" % (info.get("pid"), info.get("dir")),
            "usb": None, "likely": [info["board"]] if info.get("board") else [], "access": can_open(info["device"]),
            "sim_board": {"pid": info.get("pid"), "dir": info.get("dir"), "pty": info["device"]}}


def table(ports):
    if not ports:
        return ("no serial ports found; plug the board in (a charge-only USB cable shows none), "
                "or see docs/HARDWARE.md")
    lines = []
    for p in ports:
        ids = "%s:%s" % (p["vid"], p["pid"]) if p["vid"] else ("sim" if p.get("sim_board") else "-")
        guess = ", ".join(p["likely"]) if p["likely"] else (p["usb"] or p["description"] or "")
        if p.get("sim_board"):
            guess += "  (%s)" % p["description"]
        if p.get("access") is False:
            guess += "  (you may not open it: docs/HARDWARE.md, \"USB permissions\")"
        lines.append("%-16s %-10s %s" % (p["device"], ids, guess))
    return "\n".join(lines)


def argparse_ports(p):
    p.add_argument("--all", action="store_true",
                   help="also ports without USB IDs (on-board UARTs such as /dev/ttyS0)")
    p.epilog = EXAMPLE


def do_ports(args, comports=None):
    from mast_tools import simregistry

    if comports is None:
        from serial.tools import list_ports

        comports = list_ports.comports
    ports = [describe(p) for p in sorted(comports(), key=lambda p: p.device)]
    if not args.all:
        ports = [p for p in ports if p["vid"] is not None]
    ports += [describe_sim(i) for i in simregistry.running()]
    emit(args, ports, table(ports))
    return 0


# cli.py's _COMMANDS entry: (handler, argparse builder, one-line help)
COMMAND = (do_ports, argparse_ports, "list serial ports with USB IDs and the likely board, and running sim boards")
