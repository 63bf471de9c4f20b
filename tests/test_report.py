"""`curate report RUNDIR`: a self-contained HTML page with every section, figures inlined and written beside it,
sections for stages that did not run saying so, and a real headless Chromium rendering it.

Run directories come from the real runner with every stage real (`tests/pipeline_support.py`: the demo's real
questions, the replay teacher serving their recorded completions, presidio scrub, a clinicians' reviews file applied).
"""

from __future__ import annotations

import base64
import re
import shutil
import subprocess

import pytest

from curate.io import read_rows
from curate.pipeline import summary
from curate.pipeline.rundir import RunDir
from curate.report import SECTIONS, write_report
from tests.pipeline_support import config_text, copy_demo, parse, redacted_spans, run, write_benchmark

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def run_dir(finished_run):
    return finished_run


@pytest.fixture(scope="module")
def html_path(run_dir, tmp_path_factory):
    return write_report(run_dir, tmp_path_factory.mktemp("report") / "report.html")


def section(html: str, anchor: str) -> str:
    return html.split(f'<section id="{anchor}">', 1)[1].split("</section>", 1)[0]


def test_every_section_with_its_figure(html_path):
    html = html_path.read_text()
    figures = {"funnel": "funnel", "pass-rate": "pass_rate", "lengths": "lengths", "contamination": "contamination",
               "phi": "phi", "review": "review", "tokens": "tokens", "reasons": "reasons", "generation": "generation"}
    assert set(figures) | {"examples"} == set(SECTIONS)  # the example traces are text
    for anchor, figure in figures.items():
        body = section(html, anchor)
        assert f'data-name="{figure}"' in body, anchor
        assert 'class="missing"' not in body, anchor


def test_figures_are_inlined_and_written_beside(html_path):
    html = html_path.read_text()
    folder = html_path.with_name(html_path.stem + "-figures")
    inlined = dict(re.findall(r'data-name="(\w+)" alt="[^"]*" src="data:image/png;base64,([^"]+)"', html))
    assert len(inlined) == 9
    for name, data in inlined.items():
        png = base64.b64decode(data)
        assert png.startswith(PNG) and len(png) > 5000
        assert (folder / f"{name}.png").read_bytes() == png
    assert "http://" not in html and "https://" not in html and "<script" not in html  # self-contained


def test_numbers_in_the_page_come_from_the_run(run_dir, html_path):
    html = html_path.read_text()
    run = RunDir.open(run_dir)
    funnel = section(html, "funnel")
    for stage in ("filter", "decontaminate"):
        counts = run.stage(stage)["counts"]
        assert f"<td class=t>{stage}</td><td class=t>done</td><td>{counts['rows_in']:,}</td><td>{counts['rows_out']:,}</td>" \
               f"<td>{counts['rejected']:,}</td>" in funnel
    traces = read_rows(run_dir / "traces.parquet")
    # a request asked for 2 samples pays its prompt once (each of its traces records the whole prompt): the tokens
    # billed are the generate report's, not the sum over traces (which counted every prompt twice)
    generated = run.report("generate")
    prompt, completion = generated.prompt_tokens, generated.completion_tokens
    assert prompt == sum(t["usage"]["prompt_tokens"] for t in traces) / 2
    assert completion == sum(t["usage"]["completion_tokens"] for t in traces)
    tokens = summary.token_use(run)["teachers"]["demo-recording"]
    assert (tokens["prompt_tokens"], tokens["completion_tokens"]) == (prompt, completion)
    assert tokens["cost"] == pytest.approx(prompt / 1000 * 0.5 + completion / 1000 * 1.5)
    assert f"<td>{prompt:,}</td><td>{completion:,}</td>" in section(html, "tokens")
    rates = summary.pass_rates(run)["by_source"]
    filter_report = run.report("filter")
    for source, counts in filter_report.per_source.items():
        assert rates[source]["kept"] == counts.rows_out and rates[source]["total"] == counts.rows_in
    low, high = run.report("review").error_rate.overall.interval
    assert f"{100 * low:.1f}%–{100 * high:.1f}%" in section(html, "review")
    coverage = run.report("review").error_rate.overall.coverage
    assert "Jeffreys" in section(html, "review")  # the method and the coverage are stated (issue 25)
    assert f"reviewed strata hold {100 * coverage:.1f}% of the corpus" in section(html, "review")
    phi = summary.phi(run)
    assert phi["per_entity"] and phi["rows_with_phi"] == sum(1 for r in read_rows(run_dir / "scrubbed.parquet")
                                                              if r["phi_found"])
    spans = redacted_spans(run_dir)
    text = re.sub(r'src="data:image/png;base64,[^"]+"', "", html)  # base64 figures hold any 3-letter string
    # counts only, never the values. The example traces are scrubbed text: the words scrub took for names in one
    # sentence ("trisomy", "normal") stand in others, so they are checked apart (test_example_texts_...)
    text = text.split('<section id="examples">', 1)[0] + text.split('<section id="examples">', 1)[1].split("</section>", 1)[1]
    assert spans and not [s for s in spans if s in text]


def quick_run(tmp_path, scrub=False):
    files = copy_demo(tmp_path / "src")
    bench = write_benchmark(tmp_path / "bench.jsonl", files["medqa"])
    return parse(config_text(files, tmp_path / "run", benchmark=bench, scrub=scrub, publish=False))


def test_sections_whose_stage_did_not_run_say_so(tmp_path):
    run(quick_run(tmp_path, scrub=True), until="filter")
    html = write_report(tmp_path / "run").read_text()
    assert 'data-name="funnel"' in section(html, "funnel") and 'data-name="pass_rate"' in section(html, "pass-rate")
    assert "The decontaminate stage has not run" in section(html, "contamination")
    assert "The scrub stage has not run" in section(html, "phi")
    assert "The review stage was skipped (disabled in the config)" in section(html, "review")
    assert 'data-name="lengths"' in section(html, "lengths")  # the filter's output is the corpus so far


def test_failed_stage_is_reported(tmp_path):
    from curate.pipeline import PipelineError
    from tests.test_pipeline_runner import replace_step

    with pytest.raises(PipelineError):
        run(quick_run(tmp_path), stages=replace_step("dedupe", stage="tests.test_pipeline_runner:CrashingDedupe"))
    html = write_report(tmp_path / "run").read_text()
    assert "status-failed" in html and "The decontaminate stage has not run" in html


@pytest.mark.slow
def test_cli(cli, run_dir, tmp_path):
    """The whole report from the command line (a process of its own: it builds the scrub engine for the examples)."""
    out = tmp_path / "r.html"
    proc = cli("report", run_dir, "-o", out, check=True)
    assert out.exists() and (tmp_path / "r-figures" / "funnel.png").exists()
    assert "wrote" in proc.stderr


def test_cli_errors(cli, tmp_path):
    proc = cli("report", tmp_path / "nowhere")
    assert proc.returncode == 2 and "run directory not found" in proc.stderr
    (tmp_path / "empty").mkdir()
    proc = cli("report", tmp_path / "empty")
    assert proc.returncode == 2 and "no manifest.json" in proc.stderr


@pytest.mark.slow
@pytest.mark.integration
@pytest.mark.skipif(shutil.which("chromium") is None, reason="Debian chromium is not installed (.ci/setup.d/chromium.sh)")
def test_chromium_renders_the_report(html_path, tmp_path):
    """Real headless Chromium screenshots the page: it must render figures, not a blank or broken page."""
    from PIL import Image

    shot = tmp_path / "shot.png"
    subprocess.run(["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                    "--disable-background-networking", "--disable-component-update", "--disable-sync",
                    f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={shot}", "--window-size=1280,2400",
                    html_path.resolve().as_uri()], check=True, capture_output=True, timeout=120)
    image = Image.open(shot).convert("RGB")
    assert image.size == (1280, 2400)
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 200  # text, bars, antialiasing: far from a blank page
    white = max(count for count, rgb in colours if rgb == (255, 255, 255)) if any(
        rgb == (255, 255, 255) for _, rgb in colours) else 0
    assert white < 0.9 * 1280 * 2400
    blue = sum(count for count, (r, g, b) in colours if b > 140 and r < 90 and 90 < g < 130)  # the funnel's bars
    assert blue > 5000


def test_headline_totals(run_dir, html_path):
    html = html_path.read_text().split('<section id="funnel">')[0]
    run = RunDir.open(run_dir)
    assert f"<b>{run.stage('sources')['output']['rows']:,}</b> questions" in html
    assert f"<b>{run.stage('review')['output']['rows']:,}</b> in the curated corpus (after review)" in html
    cost = summary.token_use(run)["teachers"]["demo-recording"]["cost"]
    assert f"teacher cost <b>{cost:,.2f}</b>" in html


def test_rejections_counted_once_by_primary_reason_with_overlaps_apart(run_dir, html_path):
    html = section(html_path.read_text(), "reasons")
    run = RunDir.open(run_dir)
    assert 'data-name="reasons"' in html
    rows = re.findall(r"<tr><td class=t>(\w+)</td><td class=t>(\w+)</td><td>([\d,]+)</td><td[^>]*>([^<]*)</td>"
                      r"<td>([\d,]+)</td></tr>", html)
    for stage in ("filter", "decontaminate", "review"):
        report = run.report(stage)
        mine = {reason: (int(primary), int(other)) for s, reason, primary, _, other in rows if s == stage}
        assert {k: v[0] for k, v in mine.items() if v[0]} == report.reasons
        assert {k: v[1] for k, v in mine.items() if v[1]} == report.other_reasons
        assert sum(v[0] for v in mine.values()) == report.rejected == run.stage(stage)["counts"]["rejected"]
    filter_report = run.report("filter")
    assert filter_report.other_reasons  # the real filter gives rows more than one reason: they show apart
    funnel = section(html_path.read_text(), "funnel")
    overlap = ", ".join(f"{k}: {v}" for k, v in filter_report.other_reasons.items())
    assert f"<td class=t>{overlap}</td>" in funnel


def test_generation_statistics(run_dir, html_path):
    html = section(html_path.read_text(), "generation")
    run = RunDir.open(run_dir)
    report = run.report("generate")
    assert 'data-name="generation"' in html and 'class="missing"' not in html
    traces = read_rows(run_dir / "traces.parquet")
    # the run asked for 2 samples per request: the requests are each question's pair of traces sharing a latency
    latencies = sorted({(t["question_id"], t["latency_s"]) for t in traces})
    assert len(latencies) == report.requests == report.responses
    g = summary.generation(run)
    assert sorted(g["latency"]["values"]) == sorted(v for _, v in latencies)
    assert g["latency"]["max"] == max(v for _, v in latencies)
    assert g["latency"]["p50"] == pytest.approx(sorted(v for _, v in latencies)[len(latencies) // 2], rel=0.2)
    assert g["tokens_per_s"] == pytest.approx(report.completion_tokens / report.generation_s)
    assert f"<td>{report.requests:,}</td><td>{report.responses:,}</td>" in html
    assert f"stop: {len(traces)}" in html and "No request failed" in html
    # Issue 21: the teacher was the demo's recording, replayed: its "throughput" (656,018 tok/s on the demo) was the
    # replay server reading a file. The report says it was a recording instead of showing a rate.
    replay = run.manifest["config"]["generate"]["replay"]
    assert f"The teacher was a recording, <code>{replay}</code>, answered by a replay server" in html
    assert "<td class=t>recording</td><td class=t>recording</td>" in html and "tok/s" not in html
    assert f"{g['tokens_per_s']:,.0f}" not in html and f"{g['tokens_per_s']:,.4g}" not in html


def test_rate_axes_stop_at_one(run_dir, monkeypatch):
    """Pass rates and error rates are drawn on axes that end at 100%. The figures' axes are read where they are
    turned into PNGs (`plots._png`), the PNG still drawn."""
    from curate import plots

    drawn = []
    real = plots._png

    def keep(fig):
        drawn.append([ax.get_xlim() for ax in fig.axes])
        return real(fig)

    monkeypatch.setattr(plots, "_png", keep)
    run = RunDir.open(run_dir)
    rates = summary.pass_rates(run)
    plots.rates(rates["by_source"], rates["by_subject"])
    r = summary.review(run)
    plots.review(r["overall"], r["strata"])
    (source_axis, subject_axis), (error_axis,) = drawn
    assert source_axis == subject_axis == (0.0, 1.0)
    assert error_axis[0] == 0.0 and r["overall"]["high"] < error_axis[1] <= 1.0


def test_example_traces_kept_and_rejected_per_reason(run_dir, html_path):
    html = section(html_path.read_text(), "examples")
    run = RunDir.open(run_dir)
    assert 'class="missing"' not in html
    kept = html.split("<h3>Kept</h3>", 1)[1].split("<h3>", 1)[0]
    assert kept.count('<details class="trace"') == 3 and kept.count("<details class=\"trace\" open>") == 1
    assert {"medqa", "medmcqa", "pubmedqa"} == set(re.findall(r"<summary>(\w+) ·", kept))
    for stage in ("filter", "decontaminate", "review"):
        for reason in run.report(stage).reasons:
            assert f"<h3>Rejected by {stage}: <code>{reason}</code></h3>" in html, (stage, reason)
    assert "[" in html and "characters left out] …" in html  # long reasoning is cut, its end kept
    # Issue 21: each option's letter is written once ("A. Hyperpituitarism", not "A. A. ..."): the list draws no
    # markers of its own (an <ol type="A"> added its own letter before the text's)
    lists = re.findall(r"<(ol|ul)([^>]*)>(.*?)</\1>", html, re.S)
    assert lists and all(tag == "ul" and 'class="options"' in attrs for tag, attrs, _ in lists)
    assert "ul.options{margin:4px 0;list-style:none" in html_path.read_text()
    for _, _, items in lists:
        texts = re.findall(r"<li[^>]*>(.*?)</li>", items)
        assert [t[:3] for t in texts] == [f"{letter}. " for letter in "ABCDE"[:len(texts)]]
        assert not any(re.match(r"([A-E])\. \1[.)] ", t) for t in texts)
    examples = summary.example_traces(run)
    wrong = examples["rejected"]["filter"]["wrong_answer"]
    assert len({e["source"] for e in wrong}) == 2  # the examples of a reason come from different sources first
    assert wrong[0]["detail"].startswith("predicted") and len(wrong[0]["reasoning"]) < 1200


def test_example_texts_rejected_before_scrub_are_scrubbed_first(run_dir, tmp_path):
    """A row the filter rejected never went through scrub: its texts go through the scrub engine before the report
    shows them. Names and record numbers written into such rows (a copy of the run) do not reach the page; with no
    NER model to scrub them, no text is shown at all."""
    import json

    from curate.io import write_rows
    from curate.report import Page, examples_section

    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy, ignore=shutil.ignore_patterns("generate-cache", "publish"))
    rows = read_rows(copy / "filter.rejected.parquet")
    for row in rows:
        row["question"] = "Mr. John Smith (MRN 4829101) of 12 Elm Street, Springfield, asks: " + row["question"]
        if row["reasoning"]:
            row["reasoning"] += " Call John Smith back on 555-123-4567."
    write_rows(rows, copy / "filter.rejected.parquet")

    def examples_page() -> str:  # the report's examples section alone (the rest is drawn by the tests above)
        page = Page(tmp_path / "figures")
        examples_section(page, summary.example_traces(RunDir.open(copy)))
        return "".join(page.parts)

    examples = examples_page()
    assert "Rejected by filter" in examples and "Mr. &lt;PERSON&gt;" in examples
    for secret in ("John Smith", "4829101", "555-123-4567", "Elm Street"):
        assert secret not in examples, secret
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["config"]["scrub"]["ner_model"] = "no_such_spacy_model"
    (copy / "manifest.json").write_text(json.dumps(manifest))
    examples = examples_page()
    assert "Example texts are not shown: they could not be scrubbed of PHI here (NoNerModel" in examples
    assert "<details" not in examples and "John Smith" not in examples


def test_a_stage_that_ended_incomplete_is_shown_as_such(tmp_path):
    """A real run whose teacher answers some requests with HTTP 500 (the replay server's fault injection) and no
    retries: generate writes what it finished and fails; the report shows it failed with its counts, how many rows
    are unfinished, and the errors by kind."""
    from curate.generate.replay import replay_server
    from curate.pipeline import PipelineError
    from tests.pipeline_support import DEMO

    files = copy_demo(tmp_path / "src")
    text = config_text(files, tmp_path / "run", scrub=False, publish=False,
                       limits={"medqa": 6, "medmcqa": 3, "pubmedqa": 3})
    with replay_server(traces=DEMO / "recording.jsonl.gz", models=["demo-recording"],
                       faults={"server_error": 0.4}) as server:
        text = text.replace(f'replay = "{DEMO / "recording.jsonl.gz"}"',
                            f'base_urls = ["{server.url}"]\nmax_retries = 0').replace("concurrency = 8", "concurrency = 1")
        with pytest.raises(PipelineError, match="stage generate failed"):
            run(parse(text))
    run_dir = RunDir.open(tmp_path / "run")
    entry = run_dir.stage("generate")
    assert entry["status"] == "failed" and 0 < entry["incomplete"] < entry["counts"]["rows_out"]
    html = write_report(tmp_path / "run").read_text()
    funnel = section(html, "funnel")
    counts = entry["counts"]
    assert (f"<td class=t>generate</td><td class=t>failed</td><td>{counts['rows_in']:,}</td>"
            f"<td>{counts['rows_out']:,}</td>") in funnel and 'data-name="funnel"' in funnel
    assert (f"The generate stage ended incomplete: {entry['incomplete']:,} of {counts['rows_out']:,} rows could not "
            "be finished") in funnel
    generation = section(html, "generation")
    report = run_dir.report("generate")
    assert "The generate stage ended incomplete (failed)" in generation and 'data-name="generation"' in generation
    assert "The teacher was a recording" not in generation  # a server, not `[generate] replay`: its rates are shown
    assert f"<td class=t>server_error</td><td>{report.errors_by_kind['server_error']:,}</td>" in generation
    assert "The filter stage has not run" in section(html, "pass-rate")


def test_clip_keeps_both_ends_at_word_boundaries():
    text = " ".join(f"word{i}" for i in range(400))
    cut = summary.clip(text, 100, 50)
    start, end = cut.split(" … [", 1)[0], cut.rsplit("] … ", 1)[1]
    assert text.startswith(start + " ") and text.endswith(" " + end) and len(start) <= 100 and len(end) <= 50
    assert f"[{len(text) - len(start) - len(end):,} characters left out]" in cut
    assert summary.clip("short text", 100, 50) == "short text" and summary.clip(None, 10) is None
    assert summary.clip(text[:140], 100, 20) == text[:140]  # cutting a few characters helps no one
