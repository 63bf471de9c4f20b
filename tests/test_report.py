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
               "phi": "phi", "review": "review", "tokens": "tokens"}
    assert set(figures) == set(SECTIONS)
    for anchor, figure in figures.items():
        body = section(html, anchor)
        assert f'data-name="{figure}"' in body, anchor
        assert 'class="missing"' not in body, anchor


def test_figures_are_inlined_and_written_beside(html_path):
    html = html_path.read_text()
    folder = html_path.with_name(html_path.stem + "-figures")
    inlined = dict(re.findall(r'data-name="(\w+)" alt="[^"]*" src="data:image/png;base64,([^"]+)"', html))
    assert len(inlined) == 7
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
    prompt = sum(t["usage"]["prompt_tokens"] for t in traces)
    completion = sum(t["usage"]["completion_tokens"] for t in traces)
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
    phi = summary.phi(run)
    assert phi["per_entity"] and phi["rows_with_phi"] == sum(1 for r in read_rows(run_dir / "scrubbed.parquet")
                                                              if r["phi_found"])
    spans = redacted_spans(run_dir)
    text = re.sub(r'src="data:image/png;base64,[^"]+"', "", html)  # base64 figures hold any 3-letter string
    assert spans and not [s for s in spans if s in text]  # counts only, never the values


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


def test_cli(cli, run_dir, tmp_path):
    out = tmp_path / "r.html"
    proc = cli("report", run_dir, "-o", out, check=True)
    assert out.exists() and (tmp_path / "r-figures" / "funnel.png").exists()
    assert "wrote" in proc.stderr
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
