"""Real pipeline runs for the runner, report, card and publish tests: the demo's real questions (examples/demo, shipped
with the project), the replay teacher answering with their recorded real completions over loopback HTTP, and every
stage real (filter, dedupe, decontaminate, presidio scrub, review apply, publish).

Only the files a user would write themselves are written here: a small benchmark file in MedQA's native format (two
demo questions verbatim, so decontamination has something to find), and a reviews file in the shape `curate review
pull` writes (clinicians' verdicts; no Argilla server needed to apply them).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from curate.io import read_rows, write_rows

REPO = Path(__file__).resolve().parent.parent
DEMO = REPO / "examples" / "demo"
#: demo questions per source in the test runs (the runs stay a few seconds long)
LIMITS = {"medqa": 12, "medmcqa": 8, "pubmedqa": 8}
SAMPLES = 2


def copy_demo(folder: Path) -> dict[str, Path]:
    """The demo's native source files, copied (tests may edit them) -> {source: path}."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("medqa", "medmcqa", "pubmedqa"):
        shutil.copytree(DEMO / name, folder / name, dirs_exist_ok=True)
    return {"medqa": folder / "medqa" / "test.4_options.jsonl", "medmcqa": folder / "medmcqa" / "dev.jsonl",
            "pubmedqa": folder / "pubmedqa" / "ori_pqal.json"}


def write_benchmark(path: Path, medqa_file: Path, leaked_ids: list[str] | None = None) -> Path:
    """A MedQA-format benchmark file: the demo questions `leaked_ids` verbatim (their native lines) plus two others."""
    from sources.medqa import load

    native = medqa_file.read_text().splitlines()
    ids = [q.id for q in load(str(medqa_file)).questions]
    lines = [native[ids.index(qid)] for qid in leaked_ids or []]
    others = [{"question": f"A {40 + i}-year-old carpenter has a painless swelling of the {part} for 3 weeks. What is "
                           "the most likely diagnosis?", "answer": "Ganglion cyst",
               "options": {"A": "Ganglion cyst", "B": "Gout", "C": "Lipoma", "D": "Abscess"}, "meta_info": "step1",
               "answer_idx": "A"} for i, part in enumerate(("wrist", "ankle"))]
    path.write_text("\n".join([*lines, *(json.dumps(o) for o in others)]) + "\n")
    return path


def config_text(files: dict[str, Path], run_dir: Path, *, benchmark: Path | None = None, scrub: bool = True,
                review: Path | None = None, publish: bool = True, evaluation_set: bool = True, extra: str = "",
                filter_options: str = "",
                generate: str = "", limits: dict[str, int] | None = None) -> str:
    """A run config over the demo files with the replay teacher; `review` is a reviews file to apply."""
    limits = {**LIMITS, **(limits or {})}
    sources = "".join(f'\n[[sources]]\nname = "{name}"\npath = "{path}"\nlimit = {limits[name]}\n'
                      for name, path in files.items())
    decontaminate = (f'benchmarks = ["medqa:test"]\nbenchmark_paths = {{ "medqa:test" = "{benchmark}" }}'
                     if benchmark else "enabled = false")
    text = f"""
[run]
dir = "{run_dir}"
seed = 0
{sources}
[generate]
teacher = "demo-recording"
replay = "{DEMO / 'recording.jsonl.gz'}"
samples = {SAMPLES}
max_tokens = 16384
concurrency = 8
{generate}

[filter]
{filter_options}

[dedupe]

[decontaminate]
{decontaminate}

[scrub]
enabled = {str(scrub).lower()}
workers = 1

[review]
enabled = {str(review is not None).lower()}
{f'reviews = "{review}"' if review else ''}
stratify = ["source"]
"""
    if publish:  # the demo's questions are benchmark evaluation items: published as what they are
        text += f'\n[publish]\nrepo_id = "acme/medical-cot"\nevaluation_set = {str(evaluation_set).lower()}\n'
    text += '\n[prices."demo-recording"]\ncost_per_1k_input = 0.5\ncost_per_1k_output = 1.5\n' + extra
    return text


def parse(text: str) -> Any:
    from curate.pipeline import parse_config
    from curate.pipeline.config import tomllib

    return parse_config(tomllib.loads(text))


class Ran(list):
    """The stages a run ran (from the runner's `> NAME: running` lines), in order."""

    def __call__(self, line: str) -> None:
        if line.startswith("> "):
            self.append(line[2:].split(":", 1)[0])


def run(config: Any, **kwargs: Any) -> tuple[dict[str, Any], Ran]:
    from curate.pipeline import run_pipeline

    ran = Ran()
    manifest = run_pipeline(config, echo=ran, **kwargs)
    return manifest, ran


def write_reviews(path: Path, corpus: Path, n: int = 6) -> Path:
    """Two clinicians' verdicts on the first `n` rows of `corpus`, in `curate review pull`'s row shape: the second
    row is called wrong by both, the fourth unsafe by one (a safety finding rejects on its own)."""
    rows = read_rows(corpus)[:n]
    out = []
    for i, row in enumerate(rows):
        for reviewer in ("alice", "bob"):
            out.append({"trace_id": row["trace_id"], "reviewer": reviewer, "reviewer_id": reviewer,
                        "answer_correct": "incorrect" if i == 1 else "correct", "reasoning_sound": 2 if i == 1 else 4,
                        "clinically_unsafe": "yes" if i == 3 and reviewer == "bob" else "no", "phi_present": "no",
                        "comment": "the reasoning misreads the lab values" if i == 1 and reviewer == "alice" else None})
    write_rows(out, path)
    return path


def build_run(folder: Path, *, review: bool = True, leak: int = 2, **options: Any) -> Path:
    """A finished run directory over the demo, every stage real. The benchmark holds `leak` of the MedQA questions
    the filter keeps (so decontamination removes their rows); with `review`, clinicians' verdicts are applied."""
    files = copy_demo(folder / "src")
    run_dir = folder / "run"
    benchmark = folder / "bench.jsonl"
    run(parse(config_text(files, run_dir, benchmark=benchmark, **options)), until="filter")
    kept = list(dict.fromkeys(r["question_id"] for r in read_rows(run_dir / "filtered.parquet")
                              if r["source"] == "medqa"))
    write_benchmark(benchmark, files["medqa"], kept[:leak])
    if not review:
        run(parse(config_text(files, run_dir, benchmark=benchmark, **options)))
        return run_dir
    run(parse(config_text(files, run_dir, benchmark=benchmark, **options)), until="scrub")
    reviews = write_reviews(folder / "reviews.parquet", run_dir / "scrubbed.parquet")
    run(parse(config_text(files, run_dir, benchmark=benchmark, review=reviews, **options)))
    return run_dir


#: Demo questions per source in the shared finished run (enough kept rows from every source for the card's tables).
FINISHED_LIMITS = {"medqa": 40, "medmcqa": 36, "pubmedqa": 30}


def redacted_spans(run_dir: Path) -> list[str]:
    """The original text scrub replaced with `<TYPE>` placeholders (found by matching each scrubbed text, its
    placeholders as wildcards, against the text before the stage): what must never appear in a report, a card or a
    log."""
    import re

    placeholder = re.compile(r"<[A-Z_]+>")
    before = {r["trace_id"]: r for r in read_rows(run_dir / "decontaminated.parquet")}
    spans = []
    for row in read_rows(run_dir / "scrubbed.parquet"):
        if not row.get("phi_found"):
            continue
        for field in ("question", "context", "reasoning", "completion", "text"):
            old, new = before[row["trace_id"]].get(field), row.get(field)
            if not (isinstance(old, str) and isinstance(new, str)) or old == new:
                continue
            pattern = "(.+?)".join(re.escape(part) for part in placeholder.split(new))
            match = re.fullmatch(pattern, old, re.S)
            assert match is not None, f"{row['trace_id']} {field}: the scrubbed text is not the original with spans replaced"
            spans += list(match.groups())
    return [s for s in spans if len(s.strip()) >= 3]
