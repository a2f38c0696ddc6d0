# micropython-lib style manifest of the board firmware, for freezing it into a
# custom MicroPython build (frozen bytecode runs from flash and costs no heap): the
# way for a board whose heap the .mpy firmware does not fit (an ESP32 without PSRAM,
# docs/HARDWARE.md "Installing", which has the exact commands). A manifest that keeps
# the port's (or board's) own frozen modules and adds these:
#
#   include("$(PORT_DIR)/boards/manifest.py")       # esp32; a Pico W: $(BOARD_DIR)/manifest.py
#   include("/path/to/repo/firmware/manifest.py")
#
#   make BOARD=ESP32_GENERIC FROZEN_MANIFEST=/path/to/that/manifest.py
#
# firmware/mastd (the Linux agent) never ships to boards. The board still needs its
# /main.py and /boot.py (firmware/board/root/) on its filesystem: a board runs main.py
# only from there. `mast flash` copies them; see docs/HARDWARE.md.

metadata(
    description="MAST board firmware: the MAST core (Multiple Address Service for Transport), "
    "its socket runtime, and the board app (uplinks, serial console, persistence).",
    version="0.1.0",
)

# the core: sans-IO protocol, config schema, crypto
package(
    "mast",
    files=(
        "addr.py", "assoc.py", "compat.py", "config.py", "crypto.py", "endpoint.py",
        "events.py", "keys.py", "peercfg.py", "policy.py", "replay.py", "responder.py", "wire.py",
    ),
)

# the runtime: UDP sockets, poll loop, timers
package(
    "runtime",
    files=(
        "clock.py", "driver.py", "endpoint_main.py", "hostport.py", "jsonrule.py", "note.py", "peeraddr.py",
        "rendezvous.py", "restart.py", "runconfig.py", "sockaddr.py", "status.py", "stream.py",
        "udpwrap.py", "uplinkops.py",
    ),
)

# presence (PRES/1, docs/PROTOCOL.md): optional rendezvous for mobile hosts; outside the
# core's budget, loaded only when the configuration names a presence server
package(
    "presence",
    files=("__init__.py", "client.py", "conf.py", "msg.py", "report.py", "server.py"),
)

# the board app: boot, uplink managers, console, persistence, app hook
package(
    "board",
    files=(
        "__init__.py", "applycfg.py", "atchat.py", "boarddef.py", "cfgops.py", "compat.py",
        "console.py", "consoleops.py", "exclusive.py", "files.py", "getop.py", "hook.py", "hw.py",
        "install.py", "main.py", "request.py", "settings.py", "startup.py", "statusop.py",
        "stdio.py", "store.py", "telemetry.py", "up_lan.py", "up_ppp.py", "up_wlan.py",
        "uplinkops.py", "uplinks.py",
    ),
)

# the board's root folder: not frozen (a board runs main.py from its filesystem only),
# copied by `mast flash`, or by `import board.install` after a mip install
DEVICE_ROOT = ("board/root/main.py", "board/root/boot.py", "board/root/app.py")
