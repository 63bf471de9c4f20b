"""The report's figures, each a PNG (bytes) drawn with matplotlib's Agg backend from `curate.pipeline.summary`
figures. Imported only by `curate report`."""

from __future__ import annotations

import io
from typing import Any

PALETTE = ["#3b6ea5", "#e07b39", "#5a9e6f", "#c44e52", "#8172b3", "#937860", "#da8bc3", "#8c8c8c", "#ccb974", "#64b5cd"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams.update({"font.size": 9, "axes.spines.top": False, "axes.spines.right": False, "figure.dpi": 100})
    return plt


def _percent():
    from matplotlib.ticker import PercentFormatter

    return PercentFormatter(xmax=1.0, decimals=0)


def _png(fig) -> bytes:
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    _plt().close(fig)
    return buf.getvalue()


def rate_axis(ax: Any, axis: str = "x") -> None:
    """A rate's axis: 0 to 1 (100%), never past it."""
    (ax.set_xlim if axis == "x" else ax.set_ylim)(0, 1.0)


def funnel(rows: list[dict[str, Any]]) -> bytes:
    """Rows out of each stage (and in, lighter), beside the rejections stacked per stage by primary reason (each row
    once). A stage that ended incomplete (failed, with what it finished counted) is hatched and says so."""
    plt = _plt()
    rows = [r for r in rows if r["rows_out"] is not None]
    names = [r["stage"] + (" (incomplete)" if r["status"] != "done" else "") for r in rows][::-1]
    fig, (left, right) = plt.subplots(1, 2, figsize=(11.5, 0.45 * len(rows) + 1.6), gridspec_kw={"width_ratios": [1, 1]})
    ins = [r["rows_in"] or 0 for r in rows][::-1]
    outs = [r["rows_out"] or 0 for r in rows][::-1]
    left.barh(names, ins, color="#c9d6e8", label="rows in")
    bars = left.barh(names, outs, color=PALETTE[0], height=0.55, label="rows out")
    for bar, row in zip(bars, rows[::-1]):
        if row["status"] != "done":
            bar.set_hatch("//")
            bar.set_facecolor(PALETTE[3])
    for y, value in enumerate(outs):
        left.text(value, y, f" {value:,}", va="center", fontsize=8)
    left.set_title("rows through each stage")
    left.legend(loc="lower right", frameon=False)
    reasons = sorted({k for r in rows for k in r["reasons"]}, key=lambda k: -sum(r["reasons"].get(k, 0) for r in rows))
    base = [0] * len(rows)
    for i, reason in enumerate(reasons[:10]):
        values = [r["reasons"].get(reason, 0) for r in rows][::-1]
        right.barh(names, values, left=base, color=PALETTE[i % len(PALETTE)], label=reason)
        base = [b + v for b, v in zip(base, values)]
    right.set_title("rejections per stage, by primary reason (each row once)")
    if reasons:
        right.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False, fontsize=7)
    else:
        right.text(0.5, 0.5, "no rows rejected", ha="center", transform=right.transAxes)
    right.set_yticklabels([])
    return _png(fig)


def rates(by_source: dict[str, dict[str, float]], by_subject: dict[str, dict[str, float]]) -> bytes:
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 0.32 * max(len(by_source), len(by_subject)) + 1.8),
                             gridspec_kw={"width_ratios": [1, 1.5]})
    for ax, table, title in ((axes[0], by_source, "filter pass rate by source"),
                             (axes[1], by_subject, "filter pass rate by source / subject")):
        names = list(table)[::-1]
        values = [table[k]["rate"] for k in names]
        ax.barh(names, values, color=PALETTE[2])
        for y, k in enumerate(names):  # the figures stand right of the axis, which ends at 100%
            ax.text(1.01, y, f"{100 * table[k]['rate']:.0f}% of {table[k]['total']}", va="center", fontsize=8,
                    transform=ax.get_yaxis_transform(), clip_on=False)
        rate_axis(ax)
        ax.xaxis.set_major_formatter(_percent())
        ax.set_title(title, pad=6)
    return _png(fig)


def lengths(data: dict[str, dict[str, list[int]]]) -> bytes:
    plt = _plt()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.4))
    kept = data.get("kept") or {}
    top = max([max(v) for v in kept.values() if v] + [max(v) for v in (data.get("dropped") or {}).values() if v] + [1])
    bins = list(range(0, top + top // 20 + 2, max(1, top // 20 + 1)))
    for i, (source, values) in enumerate(sorted(kept.items())):
        left.hist(values, bins=bins, histtype="step", linewidth=1.6, color=PALETTE[i % len(PALETTE)],
                  label=f"{source} (n={len(values)})")
    left.set_title("reasoning length of kept traces (words)")
    left.legend(frameon=False)
    all_kept = [v for values in kept.values() for v in values]
    all_dropped = [v for values in (data.get("dropped") or {}).values() for v in values]
    right.hist([all_kept, all_dropped], bins=bins, color=[PALETTE[0], PALETTE[3]],
               label=[f"kept (n={len(all_kept)})", f"dropped by filter (n={len(all_dropped)})"])
    right.set_title("kept vs dropped (words)")
    right.legend(frameon=False)
    return _png(fig)


def counts(table: dict[str, int], title: str, color: str = PALETTE[1]) -> bytes:
    plt = _plt()
    names = list(table)[::-1]
    fig, ax = plt.subplots(figsize=(6.5, 0.35 * len(names) + 1.3))
    ax.barh(names, [table[k] for k in names], color=color)
    for y, k in enumerate(names):
        ax.text(table[k], y, f" {table[k]:,}", va="center", fontsize=8)
    ax.set_xlim(0, max([*table.values(), 1]) * 1.15)  # counts start at 0, also when every count is 0
    ax.set_title(title)
    return _png(fig)


def review(overall: dict[str, Any], strata: dict[str, dict[str, Any]]) -> bytes:
    """Estimated error rate with its 95% interval: overall first, then each stratum."""
    plt = _plt()
    items = [("overall", overall)] + sorted(strata.items())
    fig, ax = plt.subplots(figsize=(9, 0.4 * len(items) + 1.4))
    for y, (name, s) in enumerate(items[::-1]):
        ax.errorbar(s["rate"], y, xerr=[[max(0.0, s["rate"] - s["low"])], [max(0.0, s["high"] - s["rate"])]], fmt="o", capsize=4,
                    color=PALETTE[3] if name == "overall" else PALETTE[0])
        ax.text(1.02, y, f"{100 * s['rate']:.1f}% [{100 * s['low']:.1f}–{100 * s['high']:.1f}], n={s['n']}",
                va="center", fontsize=8, transform=ax.get_yaxis_transform())
    ax.set_yticks(range(len(items)), [n for n, _ in items[::-1]])
    ax.set_xlim(0, min(1.0, max(s["high"] for _, s in items) * 1.2 + 0.05))  # a rate: never past 100%
    ax.xaxis.set_major_formatter(_percent())
    ax.set_xlabel("error rate")
    ax.set_title("clinician-estimated error rate (95% Wilson interval)")
    return _png(fig)


def tokens(teachers: dict[str, dict[str, Any]]) -> bytes:
    plt = _plt()
    names = list(teachers)
    fig, ax = plt.subplots(figsize=(6.5, 0.45 * len(names) + 1.3))
    ins = [teachers[t]["prompt_tokens"] for t in names]
    outs = [teachers[t]["completion_tokens"] for t in names]
    ax.barh(names, ins, color=PALETTE[0], label="prompt tokens")
    ax.barh(names, outs, left=ins, color=PALETTE[1], label="completion tokens")
    ax.set_title("tokens per teacher")
    ax.legend(frameon=False, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.3), ncol=2)
    return _png(fig)


def generation(latencies: list[float], tokens_per_s: list[float | None], overall_tokens_per_s: float | None,
               errors: dict[str, int], attempts: dict[str, int], *, recording: bool = False) -> bytes:
    """The teacher calls: latency per request, completion tokens per second of each request in the order sent (with
    a running median, and the run's overall throughput), and errors by kind (final errors, and failed attempts that
    were retried). A recorded teacher has no throughput: its panel says so."""
    plt = _plt()
    fig, (lat, speed, err) = plt.subplots(1, 3, figsize=(12.5, 3.4), gridspec_kw={"width_ratios": [1, 1.3, 1]})
    if latencies:
        lat.hist(latencies, bins=min(40, max(5, len(latencies) // 4)), color=PALETTE[0])
        for q, style in ((0.5, "-"), (0.9, "--")):
            value = sorted(latencies)[int(q * (len(latencies) - 1))]
            lat.axvline(value, color=PALETTE[3], linestyle=style, linewidth=1, label=f"p{int(100 * q)} {value:.3g}s")
        lat.legend(frameon=False, fontsize=8)
    else:
        lat.text(0.5, 0.5, "no answered requests", ha="center", transform=lat.transAxes)
    lat.set_title("latency per request (s)")
    points = [(i, v) for i, v in enumerate(tokens_per_s) if v is not None]
    if recording:
        speed.text(0.5, 0.5, "a recorded teacher:\nno model ran, no throughput", ha="center", va="center",
                   transform=speed.transAxes)
        speed.set_xticks([])
        speed.set_yticks([])
    elif points:
        xs, ys = zip(*points)
        speed.scatter(xs, ys, s=6, color=PALETTE[0], alpha=0.5, label="one request")
        size = -(-len(ys) // 25)  # the median of each run of consecutive requests: a trend, in O(n log n)
        chunks = [(xs[i:i + size], sorted(ys[i:i + size])) for i in range(0, len(ys), size)]
        speed.plot([sum(cx) / len(cx) for cx, _ in chunks], [cy[len(cy) // 2] for _, cy in chunks], color=PALETTE[1],
                   linewidth=1.5, label="median of consecutive requests")
        if overall_tokens_per_s:
            speed.axhline(overall_tokens_per_s, color=PALETTE[3], linestyle="--", linewidth=1,
                          label=f"whole run {overall_tokens_per_s:,.0f} tok/s")
        speed.set_ylim(bottom=0)
        speed.legend(frameon=False, fontsize=7, loc="upper right")
    else:
        speed.text(0.5, 0.5, "no answered requests", ha="center", transform=speed.transAxes)
    speed.set_xlabel("request, in the order sent")
    speed.set_title("completion tokens / s over the run")
    kinds = sorted(set(errors) | set(attempts), key=lambda k: -(errors.get(k, 0) + attempts.get(k, 0)))
    if kinds:
        ys = range(len(kinds))
        err.barh([y + 0.2 for y in ys], [attempts.get(k, 0) for k in kinds], height=0.4, color=PALETTE[1],
                 label="failed attempts (retried)")
        err.barh([y - 0.2 for y in ys], [errors.get(k, 0) for k in kinds], height=0.4, color=PALETTE[3],
                 label="final errors (rows unfinished)")
        err.set_yticks(list(ys), kinds)
        err.legend(frameon=False, fontsize=7)
    else:
        err.text(0.5, 0.5, "no errors", ha="center", transform=err.transAxes)
        err.set_axis_off()
    err.set_title("errors by kind")
    return _png(fig)


def reasons(stages: list[dict[str, Any]]) -> bytes:
    """Per stage and reason: the rows it rejected as their primary reason (each row once; these add up to the
    stage's rejected rows), beside the rows that had it as a further reason (overlaps, not added anywhere)."""
    plt = _plt()
    items = [(f"{s['stage']}: {reason}", s["reasons"].get(reason, 0), s["other_reasons"].get(reason, 0))
             for s in stages for reason in dict.fromkeys([*s["reasons"], *s["other_reasons"]])]
    fig, ax = plt.subplots(figsize=(9, 0.32 * max(len(items), 1) + 1.4))
    if not items:
        ax.text(0.5, 0.5, "no rows rejected", ha="center", transform=ax.transAxes)
        ax.set_yticks([])
        return _png(fig)
    names = [name for name, _, _ in items][::-1]
    primary = [p for _, p, _ in items][::-1]
    further = [o for _, _, o in items][::-1]
    ys = range(len(names))
    ax.barh([y + 0.2 for y in ys], primary, height=0.4, color=PALETTE[0], label="primary reason (each row once)")
    ax.barh([y - 0.2 for y in ys], further, height=0.4, color="#c9d6e8", label="also flagged (overlap)")
    for y, (p, o) in enumerate(zip(primary, further)):
        ax.text(max(p, o), y, f" {p:,} / {o:,}", va="center", fontsize=7)
    ax.set_yticks(list(ys), names)
    ax.set_xlim(0, max([*primary, *further, 1]) * 1.18)
    ax.legend(frameon=False, fontsize=8, loc="lower right")
    ax.set_title("rejection reasons: primary, and further reasons of the same rows")
    return _png(fig)
