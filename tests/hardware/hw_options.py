"""The hardware suite's pytest options. Registered by tests/hardware/conftest.py and, so that
`pytest tests --port ...` takes them too, by tests/conftest.py (pytest asks only the conftests
of the folders it starts from). Registering twice is harmless. Also the names the suite's modules share."""

PC_PEER = "hwtest-pc"  # the `mast endpoint` on the PC, as a peer of the board


def add_options(parser):
    group = parser.getgroup("mast hardware tests", "tests/hardware: against a board")
    options = (
        ("--port", dict(default=None, metavar="DEVICE",
                        help="the board's serial port; without it the hardware tests run "
                             "against a freshly started simulated board")),
        ("--board", dict(default=None, metavar="NAME",
                         help="the board's definition (boards/NAME.json; default unix-sim)")),
        ("--peer-host", dict(default=None, metavar="IP",
                             help="this PC's address on the board's network, for the "
                                  "association tests (default 127.0.0.10 on the simulated board)")),
    )
    for name, kw in options:
        try:
            group.addoption(name, **kw)
        except ValueError:  # already registered (the other conftest)
            pass
