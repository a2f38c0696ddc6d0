"""Draw a demo run with matplotlib (imported here only, so the rest never needs it).

Top: datagrams delivered per second on each path (each arrival smoothed by a ~0.06 s Gaussian;
the host tells the path by the DATA's source address). Bottom: each path's smoothed RTT as the
board's core measured it (from its console's status). Both: the cuts and restorations (dotted
lines) and each failover as a shaded span, from the old path's last sign of life to the switch,
labelled with its gap.
"""

COLORS = {"eth": "tab:blue", "wifi": "tab:green", "cell": "tab:orange"}
SIGMA_S = 0.06  # delivery rate: each arrival spread by a Gaussian this wide...
STEP_S = 0.01  # ...sampled every 10 ms


def plot(timeline, summary, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    links = timeline["links"]
    deliveries = timeline["deliveries"]
    end = max([summary["duration_s"]] + [t for t, _, _ in deliveries])
    import numpy as np  # matplotlib's own dependency

    xs = np.arange(0.0, end + STEP_S, STEP_S)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 6.5),
                                      gridspec_kw={"height_ratios": [3, 2]})
    for link in links:
        # datagrams/s: each arrival smoothed by a narrow Gaussian, so gaps stay sharp
        ts = np.array([t for t, seq, lk in deliveries if lk == link])
        rate = np.zeros(len(xs))
        for chunk in range(0, len(ts), 512):
            d = xs[:, None] - ts[None, chunk:chunk + 512]
            rate += np.exp(-0.5 * (d / SIGMA_S) ** 2).sum(axis=1)
        rate /= SIGMA_S * (2 * np.pi) ** 0.5
        top.plot(xs, rate, color=COLORS.get(link),
                 label="%s (%d delivered)" % (link, summary["paths"][link]["delivered"]))
        # RTT, with a break wherever the path was failed or unknown
        ts, rtts = [], []
        for t, paths, _ in timeline["samples"]:
            state, rtt = paths.get(link, (None, None))
            ts.append(t)
            rtts.append(float("nan") if rtt is None or state in (None, "failed") else rtt)
        if ts:
            bottom.plot(ts, rtts, ".-", markersize=3, color=COLORS.get(link), label=link)
    top.set_ylabel("datagrams/s delivered")
    board = summary.get("board") or {}
    what = "board firmware on mast sim-board" if board.get("kind") == "firmware" else "board"
    top.set_title("MAST demo, mode %s: %s (%s), host %s. Sent %d, delivered %d, lost %d"
                  % (summary["mode"], what, summary["board_runtime"], summary["peer_runtime"],
                     summary["sent"], summary["delivered"], summary["lost"]), fontsize=10)
    bottom.set_ylabel("RTT (ms)")
    bottom.set_xlabel("time (s)")
    bottom.set_ylim(bottom=0)
    for ax in (top, bottom):
        for t, text in timeline["marks"]:
            ax.axvline(t, color="black", linestyle=":", linewidth=1)
        for fo in timeline["failovers"]:
            if fo["gap_ms"] is not None:
                ax.axvspan(fo["at_s"] - fo["gap_ms"] / 1000.0, fo["at_s"], color="red", alpha=0.15)
    ymax = top.get_ylim()[1]
    for t, text in timeline["marks"]:
        top.text(t, ymax * 0.98, " " + text, rotation=90, va="top", fontsize=8)
    for fo in timeline["failovers"]:
        top.text(fo["at_s"], ymax * 0.55, " %s->%s\n %s ms" % (fo["from"], fo["to"], fo["gap_ms"]),
                 color="darkred", fontsize=8)
    top.legend(loc="lower left", fontsize=8)
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
