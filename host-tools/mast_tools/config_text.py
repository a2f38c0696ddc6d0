"""Configuration values typed as text, for the PC CLI and the router's UCI reader.

The core (firmware/mast/config.py) takes typed values only: boards get JSON over the console.
Text as a person types it ("6278", "false", "192.0.2.1, [2001:db8::1]:7000") or as UCI stores
it is turned into the typed value here, on the host, by the key's schema type. Checking the
value is still the core's job: pass the result to config.set_key(), which names the key in
its ConfigError.
"""

from .firmware import use_firmware

use_firmware()
from mast import config  # noqa: E402  (firmware/mast, the one schema)

TRUE = ("true", "1", "yes", "on")
FALSE = ("false", "0", "no", "off")


def takes_text(key):
    """True if the value of `key` is text (a name, an SSID, a password, a PIN, an APN, an
    address): every schema type but int, bool and the lists. False for an unknown key."""
    typ = config.key_type(key)
    return typ is not None and typ not in ("int", "bool", "addrs", "prefixes")


def parse_text(key, text):
    """The typed value for `key` from `text`.

    int keys take decimal text ("7000" -> 7000); bool keys take true/false, 1/0, yes/no or
    on/off in any case; list keys (addresses, allowed prefixes) take items separated by commas
    and/or spaces ("a, b" -> ["a", "b"]). Anything else, text that does not parse, an unknown
    key and a value that is not text (a UCI list, say) come back unchanged, so that
    config.set_key() reports what is wrong with them.
    """
    if not isinstance(text, str):
        return text
    typ = config.key_type(key)
    if typ == "int":
        try:
            return int(text)
        except ValueError:
            return text
    if typ == "bool":
        word = text.lower()
        if word in TRUE:
            return True
        if word in FALSE:
            return False
        return text
    if typ in ("addrs", "prefixes"):
        return text.replace(",", " ").split()
    return text
