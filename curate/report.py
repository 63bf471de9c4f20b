"""`curate report RUNDIR`: one self-contained HTML page about a run (figures inlined as base64 PNGs, also written
beside it): the funnel, rejection reasons (each row once, overlaps apart), pass rates, reasoning lengths,
contamination and PHI counts, review results, the teacher calls (latency, throughput, errors), tokens and cost, and
example traces (kept, and rejected per reason; PHI-free).

Numbers come from `curate.pipeline.summary` (the dataset card prints the same ones); a section whose stage did not
run says so instead of drawing an empty chart, and a stage that ended incomplete is shown as such.
"""

from __future__ import annotations

import base64
import html
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate.io import atomic_path
from curate.pipeline import summary
from curate.pipeline.rundir import RunDir

SECTIONS = ("funnel", "reasons", "pass-rate", "lengths", "contamination", "phi", "review", "generation", "tokens",
            "examples")

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0 auto;max-width:1180px;padding:24px;color:#222}
h1{margin-bottom:4px} .sub{color:#666;margin-top:0} h2{border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:32px}
table{border-collapse:collapse;font-size:13px;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
td.t,th:first-child{text-align:left} th{background:#f4f6f8} img{max-width:100%;display:block;margin:8px 0}
.missing{background:#fff7e6;border-left:4px solid #e0a030;padding:8px 12px;color:#6b4a00}
.status-done{color:#2d7a3e} .status-failed,.status-stale{color:#b3261e} .status-skipped,.status-not.run{color:#888}
code{background:#f4f6f8;padding:1px 4px;border-radius:3px}
details.trace{border:1px solid #ddd;border-radius:4px;margin:6px 0;padding:4px 10px} details.trace summary{cursor:pointer}
.trace pre{white-space:pre-wrap;background:#f8f9fa;padding:6px 8px;font-size:12px;margin:4px 0}
.trace ul.options{margin:4px 0;list-style:none;padding-left:12px} .trace .gold{font-weight:bold} h3{margin-bottom:4px}
"""


class Page:
    def __init__(self, figures_dir: Path) -> None:
        self.parts: list[str] = []
        self.figures: dict[str, bytes] = {}
        self.figures_dir = figures_dir

    def section(self, anchor: str, title: str) -> None:
        self.parts.append(f'<section id="{anchor}"><h2>{html.escape(title)}</h2>')

    def end(self) -> None:
        self.parts.append("</section>")

    def text(self, markup: str) -> None:
        self.parts.append(f"<p>{markup}</p>")

    def missing(self, message: str) -> None:
        self.parts.append(f'<p class="missing">{html.escape(message)}</p>')

    def figure(self, name: str, draw: Callable[[], bytes], alt: str) -> None:
        png = draw()
        self.figures[name] = png
        data = base64.b64encode(png).decode("ascii")
        self.parts.append(f'<img class="figure" data-name="{name}" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">')

    def table(self, header: list[str], rows: list[list[Any]]) -> None:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
        body = "".join("<tr>" + "".join(f"<td{'' if isinstance(v, int | float) else ' class=t'}>{_cell(v)}</td>" for v in r)
                       + "</tr>" for r in rows)
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>")


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:,.4g}" if abs(value) < 1000 else f"{value:,.0f}"
    if isinstance(value, int):
        return f"{value:,}"
    return html.escape(str(value))


def _not_run(page: Page, stage: str, status: str) -> None:
    reason = {"not run": "has not run in this run directory", "skipped": "was skipped (disabled in the config)",
              "failed": "failed", "running": "did not finish (it was running when the run stopped)",
              "stale": "is stale (its files are an earlier run's)",
              "waiting": "is waiting for clinician verdicts"}
    page.missing(f"The {stage} stage {reason.get(status, status)}: nothing to show here.")


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def build(run: RunDir, figures_dir: Path) -> Page:
    from curate import plots

    page = Page(figures_dir)

    page.section("funnel", "Funnel: rows in and out per stage")
    rows = summary.funnel(run)
    counted = [r for r in rows if r["status"] == "done" or (r["status"] == "failed" and r["rows_out"] is not None)]
    if counted:
        page.figure("funnel", lambda: plots.funnel(counted), "rows per stage")
    page.table(["stage", "status", "rows in", "rows out", "rejected", "reasons (primary)", "also flagged", "wall s"],
               [[r["stage"], r["status"], r["rows_in"], r["rows_out"], r["rejected"], _reasons(r["reasons"]),
                 _reasons(r["other_reasons"]), r["wall_s"]] for r in rows])
    for r in rows:
        if r["status"] == "failed" and r["incomplete"]:
            page.missing(f"The {r['stage']} stage ended incomplete: {r['incomplete']:,} of {r['rows_out']:,} rows could "
                         "not be finished. What it finished is counted above and kept; the next run retries the rest.")
        elif r["status"] == "failed":
            page.missing(f"The {r['stage']} stage failed: {r['error'] or 'no error recorded'}")
        elif r["status"] == "stale":
            page.missing(f"The {r['stage']} stage is stale ({r['error'] or 'an earlier stage changed'}): its counts "
                         "and files are from an earlier run with another config, not this one's; run again to bring "
                         "it up to date.")
    page.end()

    page.section("reasons", "Rejection reasons")
    rejecting = [r for r in rows if r["reasons"] or r["other_reasons"]]
    if not rejecting:
        page.text("No stage rejected a row.")
    else:
        page.text("Each rejected row is counted once, by its primary reason (the first its stage gave); the further "
                  "reasons the same rows had are listed apart (overlaps: they add up to nothing).")
        page.figure("reasons", lambda: plots.reasons(rejecting), "rejection reasons per stage")
        page.table(["stage", "reason", "rows (primary reason)", "share of the stage's rejected", "rows also flagged"],
                   [[r["stage"], reason, r["reasons"].get(reason, 0),
                     _pct(r["reasons"].get(reason, 0) / r["rejected"]) if r["rejected"] else None,
                     r["other_reasons"].get(reason, 0)]
                    for r in rejecting for reason in dict.fromkeys([*r["reasons"], *r["other_reasons"]])])
    page.end()

    page.section("pass-rate", "Filter pass rate by source and subject")
    rates = summary.pass_rates(run)
    if rates is None:
        _not_run(page, "filter", run.status("filter"))
    else:
        page.figure("pass_rate", lambda: plots.rates(rates["by_source"], rates["by_subject"]), "pass rate by source")
        page.table(["source / subject", "kept", "total", "pass rate"],
                   [[k, v["kept"], v["total"], _pct(v["rate"])] for k, v in rates["by_subject"].items()])
    page.end()

    page.section("lengths", "Reasoning length")
    lengths = summary.reasoning_lengths(run)
    if not lengths or not any(lengths["kept"].values()):
        _not_run(page, "filter", run.status("filter"))
    else:
        page.figure("lengths", lambda: plots.lengths(lengths), "reasoning length distributions")
        table = []
        for source, values in sorted(lengths["kept"].items()):
            ordered = sorted(values)
            table.append([source, len(values), ordered[len(ordered) // 2], ordered[int(0.9 * (len(ordered) - 1))], ordered[-1]])
        page.table(["source (kept)", "traces", "median words", "p90 words", "max words"], table)
    page.end()

    page.section("contamination", "Benchmark contamination")
    c = summary.contamination(run)
    if c["status"] != "done":
        _not_run(page, "decontaminate", c["status"])
    else:
        page.text(f"Checked against {', '.join(f'<code>{html.escape(b)}</code>' for b in c['benchmarks']) or '–'}: "
                  f"<b>{c['rejected']}</b> rows removed as benchmark leaks.")
        if c["per_benchmark"]:
            page.figure("contamination", lambda: plots.counts(c["per_benchmark"], "rows removed per benchmark"),
                        "contamination per benchmark")
    page.end()

    page.section("phi", "PHI findings")
    p = summary.phi(run)
    if p["status"] != "done":
        _not_run(page, "scrub", p["status"])
    else:
        page.text(f"Policy <code>{html.escape(str(p['policy']))}</code>: {p['rows_with_phi']} rows had findings, "
                  f"{p['rows_dropped']} dropped. Counts per entity type (the values are never reported).")
        if p["per_entity"]:
            page.figure("phi", lambda: plots.counts(p["per_entity"], "PHI findings per entity type", "#c44e52"),
                        "PHI per entity type")
        else:
            page.text("No PHI found.")
    page.end()

    page.section("review", "Clinician review")
    r = summary.review(run)
    if r["status"] != "done":
        _not_run(page, "review", r["status"])
    elif not r["overall"]:
        page.missing("The review stage ran but its report has no error-rate estimate.")
    else:
        o = r["overall"]
        page.text(f"{o['n']} rows reviewed: estimated error rate <b>{_pct(o['rate'])}</b> "
                  f"(95% interval {_pct(o['low'])}–{_pct(o['high'])}; {html.escape(summary.review_coverage_text(o))})"
                  + (f"; agreement kappa {r['kappa']:.2f}" if r.get("kappa") is not None else "") + ".")
        page.figure("review", lambda: plots.review(o, r["strata"]), "review error rate with intervals")
        page.table(["stratum", "reviewed", "errors", "error rate", "95% interval"],
                   [[k, s["n"], s["errors"], _pct(s["rate"]), f"{_pct(s['low'])}–{_pct(s['high'])}"]
                    for k, s in r["strata"].items()])
    page.end()

    page.section("generation", "Teacher calls: latency, throughput, errors")
    g = summary.generation(run)
    if g is None:
        _not_run(page, "generate", run.status("generate"))
    else:
        generation_section(page, g, recording=recorded_teacher(run))
    page.end()

    page.section("tokens", "Token use and cost")
    t = summary.token_use(run)
    if t is None:
        _not_run(page, "generate", run.status("generate"))
    else:
        page.figure("tokens", lambda: plots.tokens(t["teachers"]), "tokens per teacher")
        page.text("Cost is in the unit of the config's price table (<code>[prices.\"TEACHER\"]</code>, per 1,000 tokens).")
        page.table(["teacher", "traces", "errors", "prompt tokens", "completion tokens", "cost in", "cost out", "cost"],
                   [[k, v["traces"], v["errors"], v["prompt_tokens"], v["completion_tokens"], v.get("cost_input"),
                     v.get("cost_output"), v.get("cost")] for k, v in t["teachers"].items()])
        if not t["priced"]:
            unpriced = [k for k, v in t["teachers"].items() if "cost" not in v]
            page.missing(f"No price for {', '.join(unpriced)}: add [prices.\"TEACHER\"] cost_per_1k_input / "
                         "cost_per_1k_output to the run config to see the cost.")
    page.end()

    page.section("examples", "Example traces")
    examples_section(page, summary.example_traces(run))
    page.end()

    return page


def _reasons(counts: dict[str, int]) -> str | None:
    return ", ".join(f"{k}: {v}" for k, v in counts.items()) or None


def recorded_teacher(run: RunDir) -> str | None:
    """The recording the run's teacher replayed (`[generate] replay`), or None for a real teacher."""
    replay = ((run.manifest.get("config") or {}).get("generate") or {}).get("replay")
    return str(replay) if replay else None


def generation_section(page: Page, g: dict[str, Any], recording: str | None = None) -> None:
    from curate import plots

    if g["status"] != "done":
        page.missing(f"The generate stage ended incomplete ({g['status']}): {g['incomplete']:,} of {g['rows_out']:,} "
                     "traces have an error instead of a completion. The figures below are what it finished.")
    lat = g["latency"]
    page.figure("generation", lambda: plots.generation(lat["values"], g["request_tokens_per_s"], g["tokens_per_s"],
                                                       g["errors_by_kind"], g["failed_attempts_by_kind"],
                                                       recording=recording is not None),
                "latency, throughput and errors of the teacher calls")
    if recording:
        # A replay server answers from a file in milliseconds: its tokens per second measure the file, not a model.
        page.text(f"The teacher was a recording, <code>{html.escape(recording)}</code>, answered by a replay server on "
                  "loopback: no model ran, so there is no throughput to show, and the latencies are the replay "
                  "server's.")
    else:
        page.text("Per request (the samples one request answered share its latency); throughput in the order the "
                  "requests were sent, against the whole run's (completion tokens over the generation's wall time). "
                  "Responses read from the cache keep the latency of the run that paid for them.")
    rate, speed = ("recording", "recording") if recording else (g["requests_per_s"], g["tokens_per_s"])
    page.table(["requests", "responses", "from cache", "failed samples", "latency p50 s", "p90 s", "p99 s", "max s",
                "requests / s", "completion tokens / s", "finish reasons"],
               [[g["requests"], g["responses"], g["from_cache"], g["failed"], lat["p50"], lat["p90"], lat["p99"],
                 lat["max"], rate, speed, _reasons(g["finish_reasons"])]])
    _errors_table(page, g)


def _errors_table(page: Page, g: dict[str, Any]) -> None:
    kinds = dict.fromkeys([*g["errors_by_kind"], *g["failed_attempts_by_kind"]])
    if kinds:
        page.table(["error kind", "final errors (samples unfinished)", "failed attempts (retried)"],
                   [[k, g["errors_by_kind"].get(k, 0), g["failed_attempts_by_kind"].get(k, 0)] for k in kinds])
    else:
        page.text("No request failed, not even once before a retry.")


def _trace(page: Page, example: dict[str, Any], open_: bool = False) -> None:
    e = example
    answered = f"answered <b>{html.escape(e['predicted'])}</b>" if e["predicted"] else "no answer found"
    summary_line = (f"{html.escape(e['source'])} · <code>{html.escape(str(e['trace_id']))}</code> · gold "
                    f"<b>{html.escape(str(e['gold']))}</b>, {answered}")
    if e["reasons"]:
        summary_line += " · " + ", ".join(f"<code>{html.escape(r)}</code>" for r in e["reasons"])
    body = [f"<p>Question <code>{html.escape(str(e['question_id']))}</code>, teacher "
            f"<code>{html.escape(str(e['teacher']))}</code></p>"]
    if e["context"]:
        body.append(f"<pre>{html.escape(e['context'])}</pre>")
    if e["question"]:
        body.append(f"<pre>{html.escape(e['question'])}</pre>")
    if e["options"]:
        # The letters are the options' own keys, written once: a list that draws markers would repeat them.
        items = "".join(f"<li{' class=gold' if k == e['gold'] else ''}>{html.escape(k)}. {html.escape(str(v))}</li>"
                        for k, v in e["options"].items())
        body.append(f'<ul class="options">{items}</ul>')
    if e["reasoning"]:
        body.append(f"<pre>{html.escape(e['reasoning'])}</pre>")
    if e["detail"]:
        body.append(f"<p>Why: {html.escape(e['detail'])}</p>")
    page.parts.append(f'<details class="trace"{" open" if open_ else ""}><summary>{summary_line}</summary>'
                      f'{"".join(body)}</details>')


def examples_section(page: Page, examples: dict[str, Any]) -> None:
    if examples["unavailable"]:
        page.missing("Example texts are not shown: they could not be scrubbed of PHI here "
                     f"({examples['unavailable']}).")
        return
    page.text("PHI-free: texts the scrub stage wrote (checked by its hash) as they are, every other text (rows "
              "rejected before scrub, every stage's note) through the same scrub engine now. Long texts are cut.")
    page.parts.append("<h3>Kept</h3>")
    if not examples["kept"]:
        page.missing("No stage kept a row yet.")
    for i, example in enumerate(examples["kept"]):
        _trace(page, example, open_=i == 0)  # one trace shown whole, the rest a click away
    for stage, by_reason in examples["rejected"].items():
        for reason, items in by_reason.items():
            page.parts.append(f"<h3>Rejected by {html.escape(stage)}: <code>{html.escape(reason)}</code></h3>")
            for example in items:
                _trace(page, example)


def render(run: RunDir, page: Page) -> str:
    m = run.manifest
    statuses = " · ".join(f'<span class="status-{html.escape(s["status"].replace(" ", "."))}">'
                          f'{html.escape(s["stage"])}: {html.escape(s["status"])}</span>' for s in summary.funnel(run))
    teacher = ((m.get("config") or {}).get("generate") or {}).get("teacher", "–")
    header = (f"<h1>curate run report</h1><p class=\"sub\">{html.escape(str(run.path))} · teacher "
              f"<code>{html.escape(str(teacher))}</code> · updated {html.escape(str(m.get('updated', '–')))}</p>"
              f"<p>{statuses}</p>")
    header += _headline(run)
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>curate report: "
            f"{html.escape(run.path.name)}</title><style>{CSS}</style></head><body>{header}{''.join(page.parts)}"
            "</body></html>\n")


def _headline(run: RunDir) -> str:
    """One line with the run's totals: what went in, what came out, what it cost."""
    bits = []
    for stage, label in (("sources", "questions"), ("generate", "traces"), ("filter", "kept by the filter")):
        rows = (run.stage(stage).get("output") or {}).get("rows") if run.done(stage) else None
        if rows is not None:
            bits.append(f"<b>{rows:,}</b> {label}")
    corpus = summary.corpus_stage(run)
    if corpus and corpus != "filter":
        bits.append(f"<b>{run.stage(corpus)['output']['rows']:,}</b> in the curated corpus (after {corpus})")
    if run.done("publish"):
        bits.append(f"published to <code>{html.escape(run.stage('publish')['output']['path'])}</code>")
    tokens = summary.token_use(run)
    if tokens and tokens["priced"]:
        bits.append(f"teacher cost <b>{sum(t['cost'] for t in tokens['teachers'].values()):,.2f}</b>")
    return f"<p>{' · '.join(bits)}</p>" if bits else ""


def write_report(run_dir: str | os.PathLike[str], output: str | os.PathLike[str] | None = None) -> Path:
    """Write RUNDIR/report.html (or `output`) and its PNGs in `<name>-figures/` beside it. Returns the HTML path."""
    run = RunDir.open(run_dir)
    output = Path(output) if output else run.path / "report.html"
    figures_dir = output.with_name(output.stem + "-figures")
    page = build(run, figures_dir)
    figures_dir.mkdir(parents=True, exist_ok=True)
    for name, png in page.figures.items():
        with atomic_path(figures_dir / f"{name}.png") as tmp:
            tmp.write_bytes(png)
    with atomic_path(output) as tmp:
        tmp.write_text(render(run, page), encoding="utf-8")
    return output
