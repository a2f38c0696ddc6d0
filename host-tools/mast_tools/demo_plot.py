"""Draw a demo run with matplotlib (imported here only, so the rest never needs it).

Top: datagrams delivered per second on each path (each arrival smoothed by a ~0.06 s Gaussian;
the host tells the path by the DATA's source address). Bottom: each path's smoothed RTT as the
board's core measured it (from its console's status). Both: the scenario's steps (dotted
lines: cuts, restorations, the stream's stop), each labelled above the plot, where no curve
runs; and each failover as a shaded span, from the old path's last sign of life to the switch,
labelled with its gap in a band above the delivery curves (layout() decides where; the text
stays text in an .svg).
"""

COLORS = {"eth": "tab:blue", "wifi": "tab:green", "cell": "tab:orange"}
SIGMA_S = 0.06  # delivery rate: each arrival spread by a Gaussian this wide...
STEP_S = 0.01  # ...sampled every 10 ms


def layout(timeline, summary, peak):
    """Where the labels go, given the highest delivery rate drawn (datagrams/s): the top
    panel's y limit, the step labels [(t, text)] above the plot (axes y 1.02, drawn at an
    angle), and the failover labels [(t, text, y)] in the band between the peak and the top."""
    top = max(1.0, peak) * 1.6
    steps = [(t, text) for t, text in timeline["marks"]]
    fos = [(fo["at_s"], "%s->%s\n%s ms" % (fo["from"], fo["to"], fo["gap_ms"]), max(1.0, peak) * 1.15)
           for fo in timeline["failovers"]]
    return {"ylim": top, "steps": steps, "failovers": fos}


def plot(timeline, summary, path):
    import matplotlib

    matplotlib.use("Agg")
    matplotlib.rcParams["svg.fonttype"] = "none"  # text in an .svg stays text
    import matplotlib.pyplot as plt

    links = timeline["links"]
    deliveries = timeline["deliveries"]
    end = max([summary["duration_s"]] + [t for t, _, _ in deliveries])
    import numpy as np  # matplotlib's own dependency

    xs = np.arange(0.0, end + STEP_S, STEP_S)
    fig, (top, bottom) = plt.subplots(2, 1, sharex=True, figsize=(11, 7.5),
                                      gridspec_kw={"height_ratios": [3, 2]})
    peak = 0.0
    for link in links:
        # datagrams/s: each arrival smoothed by a narrow Gaussian, so gaps stay sharp
        ts = np.array([t for t, seq, lk in deliveries if lk == link])
        rate = np.zeros(len(xs))
        for chunk in range(0, len(ts), 512):
            d = xs[:, None] - ts[None, chunk:chunk + 512]
            rate += np.exp(-0.5 * (d / SIGMA_S) ** 2).sum(axis=1)
        rate /= SIGMA_S * (2 * np.pi) ** 0.5
        peak = max(peak, float(rate.max()) if len(rate) else 0.0)
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
    fig.suptitle("MAST demo, mode %s: %s (%s), host %s. Sent %d, delivered %d, lost %d"
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
    where = layout(timeline, summary, peak)
    top.set_ylim(0, where["ylim"])
    for t, text in where["steps"]:  # above the plot: no curve runs there
        top.text(t, 1.02, text, rotation=35, ha="left", va="bottom", fontsize=8,
                 transform=top.get_xaxis_transform())
    for t, text, y in where["failovers"]:  # between the curves' peak and the top
        top.text(t, y, " " + text, color="darkred", fontsize=8, va="bottom")
    top.legend(loc="lower left", fontsize=8)
    bottom.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
