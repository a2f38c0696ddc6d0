"""mastd: the MAST agent for Linux routers and servers.

    mastd [--config FILE] [--control SOCKET] [--syslog] [--check]

The configuration is UCI (/etc/config/mast, OpenWrt) or JSON (/etc/mast/mast.json); by default
the first of the two that exists. A bad value is refused with its name and exit status 1:

    mastd: mast.lte.cost: must be an integer from 0 to 255
"""

import argparse
import errno
import os
import signal
import sys

from mast.config import ConfigError

from . import settings
from .control import DEFAULT_PATH
from .log import Log
from .uci import UciError

EXAMPLE = """\
examples:
  mastd                                   # /etc/config/mast, else /etc/mast/mast.json
  mastd --config /etc/mast/mast.json --control /run/mast/mastd.sock
  mastd --check --config /etc/config/mast # validate only, exit 0 or 1
signals: SIGTERM (SHUT to every peer, then exit), SIGHUP (reload; a bad file is refused).
"""


def default_config():
    for p in (settings.DEFAULT_UCI, settings.DEFAULT_JSON):
        if os.path.exists(p):
            return p
    return settings.DEFAULT_UCI


def build_parser():
    p = argparse.ArgumentParser(prog="mastd", description="The MAST agent: TUN, uplinks, failover.",
                                epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--config", metavar="FILE", help="UCI or JSON configuration (default: %s, else %s)"
                   % (settings.DEFAULT_UCI, settings.DEFAULT_JSON))
    p.add_argument("--control", metavar="SOCKET", default=os.environ.get("MASTD_CONTROL", DEFAULT_PATH),
                   help="control socket path (default %(default)s; env MASTD_CONTROL)")
    p.add_argument("--syslog", action="store_true", help="log to syslog instead of stdout")
    p.add_argument("--discovery", choices=("auto", "netifd", "linux"), default="auto",
                   help="uplinks from netifd (ubus) or from Linux devices (rtnetlink); auto: "
                        "netifd when the config is UCI and ubus exists")
    p.add_argument("--check", action="store_true", help="validate the configuration and exit")
    # host a presence server (PRES/1) beside the agent: presence_host.py
    p.add_argument("--presence-config", metavar="FILE", help="also serve presence: the names "
                   "served and their keys (JSON, as for `mast presence`)")
    p.add_argument("--presence-listen", metavar="ADDR:PORT", help="where to serve presence "
                   "(default: the file's listen, else 0.0.0.0:6279)")
    return p


def _fail(msg):
    sys.stderr.write("mastd: %s\n" % msg)
    return 1


def _hold_hup(early):
    """Until the agent takes SIGHUP over (Agent.start), a SIGHUP is noted in early, not fatal:
    its default action ended mastd while it started (procd's reload_config soon after a start,
    as at boot), and procd counted a crash. The agent reloads once it has started.
    -> (the handler to put back when main returns, the one set), or None (none was set)."""

    def note(signum, frame):
        early.append(signum)

    try:
        return signal.signal(signal.SIGHUP, note), note
    except (ValueError, OSError):  # (not the main thread: a test's)
        return None


def main(argv=None):
    early = []
    held = _hold_hup(early)
    try:
        return _main(argv, early)
    finally:
        # (a test calls main: its process keeps its own handler; once the agent has taken the
        # signal over, it keeps it to the end: a SIGHUP as mastd exits changes nothing)
        if held is not None and signal.getsignal(signal.SIGHUP) is held[1]:
            signal.signal(signal.SIGHUP, held[0])


def _main(argv, early):
    args = build_parser().parse_args(argv)
    path = args.config or default_config()
    try:
        conf = settings.load(path)
    except OSError as e:
        if args.config is None and e.errno == errno.ENOENT:  # (not only the first of the two named)
            return _fail("no configuration: neither %s nor %s exists; give --config FILE"
                         % (settings.DEFAULT_UCI, settings.DEFAULT_JSON))
        hint = "run mastd as root" if e.errno == errno.EACCES else "give --config FILE"  # (0600: keys)
        return _fail("cannot read %s (%s); %s" % (path, e.strerror or e, hint))
    except (ConfigError, UciError) as e:
        return _fail(str(e))
    presence = None
    if args.presence_config:
        try:
            from .presence_host import PresenceHost, load_config, parse_listen, DEFAULT_LISTEN

            pconf = load_config(args.presence_config)
            text = args.presence_listen or pconf["listen"]
            presence = PresenceHost(pconf, parse_listen(text) if text else DEFAULT_LISTEN)
        except ImportError as e:
            return _fail("presence: this mastd lacks the presence package (%s)" % e)
        except ValueError as e:  # PresenceConfigError names the key; parse_listen the address
            return _fail("presence %s: %s" % (args.presence_config, e))
    if presence is not None:  # (its file holds a key for each name)
        conf.warnings += presence.conf["warnings"]
    if args.check:
        for w in conf.warnings:  # valid, but: a file holding keys that others may read
            sys.stderr.write("mastd: warning: %s\n" % w)
        sys.stdout.write("mastd: %s is valid\n" % path)
        return 0
    if args.discovery == "netifd":
        from .links import have_ubus

        if not have_ubus():  # (it ran with no uplinks at all, a scan error logged now and then)
            return _fail("--discovery netifd needs OpenWrt's `ubus`, and no ubus is on PATH; "
                         "use --discovery linux (uplinks from the Linux devices), or auto")
    log = Log(args.syslog)
    for w in conf.warnings:
        log.warn(w)
    from .agent import Agent  # after the check: it needs Linux

    agent = Agent(conf, log, args.control, path, args.discovery)
    agent.presence = presence  # None unless --presence-config
    try:
        agent.start()
    except OSError as e:
        if e.strerror and not e.filename:  # (not "[Errno 16] ...": the message says it all)
            e = e.strerror
        log.error("cannot start: %s" % e)
        agent.stop_reason = "error"
        try:
            agent.shutdown()
        except Exception:
            pass
        return _fail("cannot start: %s" % e)
    if early:  # (the file may have changed after it was read)
        agent._sig["hup"] = True
    return agent.run()
