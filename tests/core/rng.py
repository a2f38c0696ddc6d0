# Deterministic random bytes for the core tests, in a module of its own: a test that needs
# only these (test_engine_vectors) does not load the whole of simnet into a board-sized heap.

from mast.compat import sha256


class Rng:
    """Deterministic random_bytes for tests (SHA-256 in counter mode)."""

    def __init__(self, seed):
        self.seed = seed.encode() if isinstance(seed, str) else seed
        self.n = 0

    def __call__(self, k):
        out = b""
        while len(out) < k:
            self.n += 1
            out += sha256(self.seed + self.n.to_bytes(8, "big")).digest()
        return out[:k]

    def randint(self, lo, hi):
        return lo + int.from_bytes(self(4), "big") % (hi - lo + 1)
