# MAST presence (PRES/1): an optional extension package beside the core (firmware/mast),
# in micropython-lib's sense: it does not count against the core's .mpy budget.
#
#   msg.py     the PRES/1 codec and key schedule (docs/PROTOCOL.md, "Presence")
#   server.py  the presence server, sans-IO: names, registrations, subscriptions, rate limit
#   client.py  the presence client, sans-IO: wraps a mast Endpoint so the runtime drives both
#   conf.py    the presence server's configuration file, checked
#
# Restricted Python: runs on MicroPython and CPython. No I/O: the runtime (firmware/runtime/
# rendezvous.py), mastd (firmware/mastd/presence_host.py) and `mast presence` do that.
