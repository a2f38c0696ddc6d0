"""Failover gap of the core's timer profiles on the simulated network (no sockets, no
scheduler noise): the protocol's own figure, before any runtime or kernel adds to it.

    .venv/bin/python bench/failover_sim.py [--trials N]

Setup per trial: the board-like node "a" (eth, wifi, cell) streams 100 datagrams/s to "b";
links have 1 ms one-way delay each end (RTT 4 ms) and +/-1 ms jitter; after a random 0.5-1.5 s
of traffic, eth is blackholed silently. Gap = cut -> first datagram sent after the cut that
is delivered. Writes the `failover-sim` section of docs/BENCHMARKS.md.
"""

import argparse
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path[:0] = [HERE, os.path.join(ROOT, "firmware"), os.path.join(ROOT, "tests", "core")]
import benchdoc  # noqa: E402
import simnet  # noqa: E402

BOUNDS = {"default": 800, "fast": 150}


def trial(profile, mode, seed):
    rng = simnet.Rng("trial-%s-%s-%d" % (profile, mode, seed))
    net = simnet.pair(profile=profile, mode=mode)
    for link in net.uplinks.values():
        link.jitter = 1
    net.rng = rng
    net.run(net.now + 2000)
    s = simnet.Stream(net, "a", rate=100)
    net.run(net.now + 500 + rng.randint(0, 1000))
    t0 = net.now
    net.nodes["b"].mark = t0
    net.link("a", "eth").cut = True
    net.run(net.now + 2500)
    s.stop()
    net.run(net.now + 200)
    first = net.nodes["b"].first_after_mark
    t = simnet.tally(net.nodes["b"], s.seq)
    lost = len([i for i in range(s.seq) if t[i] == 0])
    false_failovers = len(net.events("a", "failover")) - 1
    return first - t0, lost, false_failovers


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100.0 * (len(xs) - 1))))]


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=50)
    args = ap.parse_args()
    rows = ["| profile | mode | trials | gap p50 | gap p95 | gap max | bound | datagrams lost (mean) | extra failovers |",
            "|---|---|---|---|---|---|---|---|---|"]
    for profile, mode in (("default", "failover"), ("fast", "failover"), ("default", "redundant")):
        gaps, losses, extra = [], [], 0
        for i in range(args.trials):
            g, l, x = trial(profile, mode, i)
            gaps.append(g)
            losses.append(l)
            extra += x
        bound = BOUNDS[profile] if mode == "failover" else 0
        rows.append("| %s | %s | %d | %d ms | %d ms | %d ms | %s | %.1f | %d |" % (
            profile, mode, args.trials, pct(gaps, 50), pct(gaps, 95), max(gaps),
            "%d ms" % bound if mode == "failover" else "0 lost", sum(losses) / float(len(losses)), extra))
        print(rows[-1], file=sys.stderr)
    body = "\n".join(rows) + (
        "\n\nIn redundant mode the \"gap\" is just the surviving path's delay: nothing is lost. "
        "These are the core's figures; the runtime on real sockets adds scheduling delay "
        "(see the netns benchmarks).")
    benchdoc.write_section("failover-sim", "Failover gap on the simulated network (core only)",
                           ".venv/bin/python bench/failover_sim.py --trials %d" % args.trials, body)
    return 0


if __name__ == "__main__":
    sys.exit(main())
