# The board's /main.py: MicroPython runs it after boot.py on every full boot.
# The firmware itself is the `board` package (in /lib, or frozen); see docs/HARDWARE.md.
from board import main

main.run()
