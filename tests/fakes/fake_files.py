# A fake of the board's filesystem (board.store.Files) in memory, for tests: the
# same five methods, every call recorded in a trace list. Restricted Python.


class FakeFiles:
    def __init__(self, files=None, trace=None):
        self.data = dict(files or {})
        self.trace = trace if trace is not None else []

    def read(self, name):
        self.trace.append(("read", name))
        return self.data.get(name)

    def write(self, name, data):
        self.trace.append(("write", name))
        self.data[name] = bytes(data)

    def rename(self, old, new):
        self.trace.append(("rename", old, new))
        if old not in self.data:
            raise OSError(2, "ENOENT")
        self.data[new] = self.data.pop(old)

    def remove(self, name):
        self.trace.append(("remove", name))
        self.data.pop(name, None)

    def exists(self, name):
        return name in self.data
