# The board's /boot.py: runs on every boot and every soft reset, before main.py.
# It must stay quiet and quick (mpremote soft-resets the board before each command);
# the firmware starts from main.py, and only on a full boot.
