"""Comparing runs on the same questions: the table (markdown + JSON) and the stability figure.

Accuracy and format compliance carry 95% Wilson intervals. Against the decoupled run, each rival gets McNemar's
exact test on the same questions (paired: only the questions one got right and the other wrong count), for
accuracy and for format compliance; the table names the differences significant at ALPHA. The figure has one panel
per stability signal over GRPO steps (reward, KL to the reference, entropy, format rate), one line per run.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from curate.io import atomic_path, write_json

ALPHA = 0.05
REFERENCE_RUN = "decoupled"
#: Row keys too big for the table and comparison.json (the series are in each run's metrics.json, the items in
#: its items.jsonl).
DETAIL_KEYS = ("series", "items")
#: What the paired tests compare: the row's metric -> the per-question field.
PAIRED = {"accuracy": "correct", "format_compliance": "format_ok"}
#: What gets a 95% interval: the paired metrics and strict accuracy (right answer in the strict format; it follows
#: from the two, so it is not tested again).
INTERVALS = {**PAIRED, "strict_accuracy": "strict_correct"}


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value for b and c discordant pairs (a binomial test of b against n = b + c at 1/2)."""
    n = b + c
    if n == 0:
        return 1.0
    tail = sum(math.comb(n, i) for i in range(min(b, c) + 1)) / 2**n
    return min(1.0, 2 * tail)


def intervals(items: list[dict[str, Any]]) -> dict[str, list[float] | None]:
    """95% Wilson intervals of accuracy, format compliance and strict accuracy over the scored items."""
    from review.stats import wilson_interval

    out = {}
    for metric, field in INTERVALS.items():
        interval = wilson_interval(sum(1 for i in items if i[field]), len(items))
        out[f"{metric}_ci"] = [round(x, 4) for x in interval] if interval else None
    return out


def paired_test(reference: list[dict[str, Any]], rival: list[dict[str, Any]], field: str) -> dict[str, Any]:
    """McNemar on one per-question field; both runs must have scored exactly the same questions."""
    ref = {i["question_id"]: bool(i[field]) for i in reference}
    other = {i["question_id"]: bool(i[field]) for i in rival}
    if ref.keys() != other.keys():
        raise ValueError(f"paired test needs the same questions: {len(ref.keys() ^ other.keys())} differ")
    b = sum(1 for q in ref if ref[q] and not other[q])
    c = sum(1 for q in ref if other[q] and not ref[q])
    return {"reference_only": b, "rival_only": c, "p": round(mcnemar_exact(b, c), 4)}


def add_significance(rows: list[dict[str, Any]], reference: str = REFERENCE_RUN, alpha: float = ALPHA) -> None:
    """Give every row but the reference run its paired tests against it (in place): `vs_<reference>` holds, per
    metric, the difference (this run minus the reference), the discordant counts and the p-value; `significant`
    lists the metrics whose p < alpha. Rows need their scored `items`."""
    ref = next((r for r in rows if r["run"] == reference), None)
    if ref is None:
        return
    for row in rows:
        if row is ref:
            row["significant"] = "(reference)"
            continue
        tests = {}
        for metric, field in PAIRED.items():
            test = paired_test(ref["items"], row["items"], field)
            diff = None if row.get(metric) is None or ref.get(metric) is None else round(row[metric] - ref[metric], 4)
            tests[metric] = {"diff": diff, **test}
        row[f"vs_{reference}"] = tests
        row["significant"] = ", ".join(m for m, t in tests.items() if t["p"] < alpha) or "no"


# ------------------------------------------------------------------ the table


def _num(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _with_ci(metric: str):
    def cell(row: dict[str, Any]) -> str:
        ci = row.get(f"{metric}_ci")
        return _num(row.get(metric)) + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else "")
    return cell


def _vs(metric: str, part: str):
    def cell(row: dict[str, Any]) -> str:
        test = (row.get(f"vs_{REFERENCE_RUN}") or {}).get(metric)
        return _num(test[part]) if test else "-"
    return cell


def _first_last(first: str, last: str):
    return lambda row: "-" if row.get(first) is None else f"{_num(row.get(first))} → {_num(row.get(last))}"


def _key(name: str):
    return lambda row: _num(row.get(name))


TABLE = [
    ("run", _key("run")), ("status", _key("status")), ("n", _key("n")),
    ("accuracy [95% CI]", _with_ci("accuracy")), ("format [95% CI]", _with_ci("format_compliance")),
    ("strict accuracy [95% CI]", _with_ci("strict_accuracy")),
    (f"Δ accuracy vs {REFERENCE_RUN}", _vs("accuracy", "diff")), ("McNemar p (accuracy)", _vs("accuracy", "p")),
    ("McNemar p (format)", _vs("format_compliance", "p")), (f"significant (p < {ALPHA})", _key("significant")),
    ("leakage", _key("answer_leakage")), ("reward first → last", _first_last("reward_first", "reward_last")),
    ("KL first / max", lambda row: "-" if row.get("kl_first") is None else f"{_num(row['kl_first'])} / {_num(row['kl_max'])}"),
    ("warnings", _key("warnings")), ("grad spikes", _key("grad_norm_spikes")),
    ("collapsed (GRPO)", _key("collapsed_share")), ("final SFT loss", _key("final_sft_loss")),
]


def comparison_markdown(rows: list[dict[str, Any]]) -> str:
    lines = ["| " + " | ".join(title for title, _ in TABLE) + " |", "|" + "---|" * len(TABLE)]
    lines += ["| " + " | ".join(cell(row) for _, cell in TABLE) + " |" for row in rows]
    engines = sorted({str(row["backend"]) for row in rows if row.get("backend")})
    if len(engines) == 1:
        lines += ["", f"Every row generated with {engines[0]}."]
    elif engines:
        lines += ["", f"Rows generated with different engines ({', '.join(engines)}): scores differ by engine too."]
    if any(f"vs_{REFERENCE_RUN}" in row for row in rows):
        lines += ["", f"Paired on the same questions: McNemar's exact test of each run against {REFERENCE_RUN}; "
                      "intervals are 95% Wilson."]
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ the stability figure

PANELS = [("reward_mean", "reward (mean ± std)"), ("kl", "KL to the reference"),
          ("entropy", "entropy (nats / token)"), ("format_rate", "format rate")]


def stability_figure(rows: list[dict[str, Any]], path: Path) -> Path:
    """One PNG, one panel per stability signal over GRPO steps, one line per run that logged GRPO steps."""
    from matplotlib.ticker import MaxNLocator

    from curate.plots import PALETTE, _plt, _png

    plt = _plt()
    fig, axes = plt.subplots(2, 2, figsize=(10, 6.5), sharex=True)
    for ax, (key, title) in zip(axes.flat, PANELS):
        plotted = 0
        for i, row in enumerate(rows):
            series = row.get("series") or {}
            pairs = [(s, v, sd) for s, v, sd in zip(series.get("steps") or [], series.get(key) or [],
                                                     series.get("reward_std") or [None] * len(series.get("steps") or []))
                     if v is not None]
            if not pairs:
                continue
            xs, ys, sds = zip(*pairs)
            color = PALETTE[i % len(PALETTE)]
            ax.plot(xs, ys, marker="o", markersize=3, color=color, label=row["run"])
            if key == "reward_mean":
                ax.fill_between(xs, [y - (d or 0) for y, d in zip(ys, sds)], [y + (d or 0) for y, d in zip(ys, sds)],
                                color=color, alpha=0.15)
            plotted += 1
        if not plotted:
            ax.text(0.5, 0.5, "not logged", ha="center", va="center", transform=ax.transAxes, color="#8c8c8c")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    for ax in axes[1]:
        ax.set_xlabel("GRPO step")
    legends = [ax for ax in axes.flat if ax.get_legend_handles_labels()[0]]
    if legends:
        legends[0].legend(fontsize=8)
    png = _png(fig)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        tmp.write_bytes(png)
    return path


def write_comparison(rows: list[dict[str, Any]], out_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """comparison.md, comparison.json (rows without DETAIL_KEYS) and plots/stability.png."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "comparison.md"
    with atomic_path(md) as tmp:
        tmp.write_text(comparison_markdown(rows), encoding="utf-8")
    write_json([{k: v for k, v in row.items() if k not in DETAIL_KEYS} for row in rows], out_dir / "comparison.json")
    return {"markdown": md, "json": out_dir / "comparison.json",
            "stability_plot": stability_figure(rows, out_dir / "plots" / "stability.png")}
