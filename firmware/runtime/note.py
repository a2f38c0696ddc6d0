# An event that is not the core's: the runtime's own (a socket died) or presence's.
# kind + fields, shaped like mast.events.Event (as_dict for JSON lines).


class Note:
    def __init__(self, kind, **fields):
        self.kind = kind
        self.fields = fields

    def as_dict(self):
        d = {"event": self.kind}
        d.update(self.fields)
        return d

    def __repr__(self):
        return "<%s %r>" % (self.kind, self.fields)
