# The board's /app.py: the application that runs next to MAST (the hook is described
# in board/hook.py and docs/HARDWARE.md). This one sends a telemetry record to the
# peer once a second; replace it with your own.
from board.telemetry import Telemetry


def start(mast):
    return Telemetry(mast, interval_ms=1000)
