# Keys the endpoint needs while it runs (the schema in config.py is needed only to check a
# configuration, so a board can drop it from RAM after that): a PSK from its base64 text,
# and the fleet keys (docs/CONFIG.md "A fleet": one key on the server, one derived key per
# board).
from .compat import binascii
from .crypto import hkdf
from .addr import _NAME_CHARS

PSK_TEXT = "standard base64 of exactly 32 bytes"


def decode_psk(text):
    """Standard base64 of exactly 32 bytes -> the 32 bytes. The error message
    never contains the text."""
    try:
        b = text.encode()  # bytes: some ports' a2b_base64 (the Python one) refuses str
        raw = binascii.a2b_base64(b)
        if len(raw) == 32 and binascii.b2a_base64(raw)[:-1] == b:
            return raw
    except Exception:  # not base64, or not text at all
        pass
    raise ValueError("PSK must be " + PSK_TEXT)


def fleet_member(cfg, name):
    """True if name is not a listed peer but may associate as a member of the fleet
    (a name under fleet_domain, of a configured name's characters; with psk keying,
    fleet_psk must be set)."""
    d = cfg.get("fleet_domain")
    return (d is not None and name not in cfg["peers"] and name.endswith("." + d)
            and not name.strip(_NAME_CHARS)
            and (cfg["keying"] == "open" or "fleet_psk" in cfg))


def fleet_key(cfg, name):
    """A fleet member's PSK (32 bytes): HKDF(fleet_psk, "mast1 fleet" | name); the
    board is given this value as its peers.<server>.psk (`mast genkey --fleet`)."""
    return hkdf(b"", decode_psk(cfg["fleet_psk"]), b"mast1 fleet " + name.encode(), 32)
