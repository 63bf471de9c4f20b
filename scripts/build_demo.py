"""Rebuild `examples/demo/`, the main job's offline demo, from the shared real data (byte-identical on a re-run).

    python scripts/build_demo.py [--data DIR] [--out examples/demo]

The data folder is `--data`, else `$CURATE_SHARED_DATA`, else `../shared/data` beside the repository (the one lookup
of `curate.testing.shared_data`). Without it the script stops and says where it looked: the demo ships in the
repository, so only the people who change it need the data.

What it writes (every question is a benchmark EVALUATION item; see PROVENANCE.md):
- `medqa/test.4_options.jsonl`, `medmcqa/dev.jsonl`: the selected lines of the shared benchmark files, verbatim;
- `pubmedqa/ori_pqal.json` + `pubmedqa/test_ground_truth.json`: the selected PMIDs of PubMedQA's files, serialised
  the way the originals are (the script checks that this reproduces the full originals byte for byte);
- `recording.jsonl.gz`: the selected rows of `traces/dev_traces.jsonl.gz`, verbatim, for the replay teacher;
- `provenance.json` and `PROVENANCE.md`: per file its origin, licence, rows, selection and SHA-256.

Selection (no randomness, nothing tuned on outcomes): every question of the medagents-benchmark hard subsets
(`split = test_hard`) that has one recording from each model of `MODELS` (open weights, permissive licences), whose
row in the shared benchmark file is found (MedQA by its question text, MedMCQA by id, PubMedQA by PMID) with the same
options and gold letter, and whose prompts, rendered by curate's own templates, the replay server matches to exactly
its two recordings. Rows keep the order of the original files; a question's recordings follow `MODELS`.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from curate.generate.replay import Recordings  # noqa: E402
from curate.records import Question  # noqa: E402
from curate.testing.shared_data import find_shared_data  # noqa: E402
from prompts import RATIONALIZE, default_prompt_for, get_prompt  # noqa: E402
from sources import medmcqa, medqa, pubmedqa  # noqa: E402

DEMO_DIR = REPO_ROOT / "examples" / "demo"
TRACES = "traces/dev_traces.jsonl.gz"
RECORDING = "recording.jsonl.gz"
PROVENANCE_JSON = "provenance.json"
PROVENANCE_MD = "PROVENANCE.md"

#: The recorded teachers, in the order a question's recordings are served (choice j of seed s is recording s + j).
MODELS = ("DeepSeek-R1", "QwQ-32B")
TRACE_SOURCE, TRACE_SPLIT = "medagentsbench", "test_hard"
#: Templates whose rendered prompts must be matched: the default one of each question, and rationalisation.
CHECKED_PROMPTS = ("default", RATIONALIZE)
SOURCE_ORDER = ("medqa", "medmcqa", "pubmedqa")

EVALUATION_WARNING = (
    "Every demo question is a benchmark EVALUATION item (MedQA-USMLE test, MedMCQA dev, PubMedQA official test). "
    "A dataset built from this demo shows how curate works; it must never be published to the Hugging Face Hub, and "
    "never be used to train a model that is then evaluated on MedQA, MedMCQA or PubMedQA."
)

#: Per model: the licence of the weights and what may apply to their outputs (the shared data README's caveat).
MODEL_TERMS = {
    "DeepSeek-R1": {
        "weights": "deepseek-ai/DeepSeek-R1",
        "licence": "MIT",
        "terms": "Open weights under the MIT licence, which also permits using the outputs (incl. distillation). "
                 "The shared data README notes that outputs of DeepSeek models may also fall under DeepSeek's terms "
                 "of use where they were produced through DeepSeek's own service.",
    },
    "QwQ-32B": {
        "weights": "Qwen/QwQ-32B",
        "licence": "Apache-2.0",
        "terms": "Open weights under Apache-2.0; no restriction on outputs.",
    },
}


@dataclass(frozen=True)
class Origin:
    """Where a shared file came from (as documented in the shared data README)."""

    shared_path: str
    repository: str
    commit: str
    path: str
    licence: str
    note: str = ""


ORIGINS = {
    "medqa/test.4_options.jsonl": Origin(
        "benchmarks/medqa/test.4_options.jsonl", "xk-huang/medagents-benchmark", "56ca11e", "data/medqa/test.jsonl",
        "MIT", "MedQA-USMLE (jind11/MedQA) US test split, 4 options, jind11's JSONL format plus `realidx`."),
    "medmcqa/dev.jsonl": Origin(
        "benchmarks/medmcqa/dev.jsonl", "Teddy-XiongGZ/MIRAGE", "224ebe9", "benchmark.json (its medmcqa part)",
        "public domain (MIRAGE)",
        "DERIVED: MIRAGE's MedMCQA dev questions re-keyed into MedMCQA's native field names (`cop` 1-based); "
        "`exp`, `subject_name`, `topic_name`, `choice_type` are null because MIRAGE lacks them."),
    "pubmedqa/ori_pqal.json": Origin(
        "benchmarks/pubmedqa/ori_pqal.json", "pubmedqa/pubmedqa", "1f00b98", "data/ori_pqal.json", "MIT",
        "PubMedQA expert-labelled set (PQA-L), keyed by PMID; only PMIDs of the official test split are kept."),
    "pubmedqa/test_ground_truth.json": Origin(
        "benchmarks/pubmedqa/test_ground_truth.json", "pubmedqa/pubmedqa", "3e7616d", "data/test_ground_truth.json",
        "MIT", "The official PubMedQA test split, restricted to the PMIDs kept in ori_pqal.json beside it, so the "
        "pubmedqa loader assigns splits as it does for the full release (every demo PMID is `test`)."),
    RECORDING: Origin(
        TRACES, "xk-huang/medagents-benchmark", "c5bf425", "output/{medqa,medmcqa,pubmedqa}/*.json", "MIT",
        "Real completions of real teacher models on the medagents-benchmark hard subsets, as collected in the "
        "shared dev_traces.jsonl.gz (its row format, rows verbatim)."),
}


# ---------------------------------------------------------------- reading the shared files


@dataclass
class Benchmark:
    """One shared benchmark file: its Questions (through the real loader) and the raw row of each."""

    questions: list[Question]
    raw: dict[str, Any]  # question id -> the native row (a JSONL line, or PubMedQA's object)
    order: dict[str, int] = field(default_factory=dict)  # question id -> position in the file

    def __post_init__(self) -> None:
        self.order = {q.id: i for i, q in enumerate(self.questions)}


def _jsonl_lines(path: Path) -> list[str]:
    with open(path, encoding="utf-8", newline="") as fh:
        return [line if line.endswith("\n") else line + "\n" for line in fh if line.strip()]


def _pubmedqa_dump(data: dict[str, Any]) -> bytes:
    """PubMedQA's own serialisation (checked against the originals in `read_benchmarks`)."""
    return json.dumps(data, indent=4, ensure_ascii=True).encode("ascii")


def read_benchmarks(data: Path) -> dict[str, Benchmark]:
    files = {name: data / origin.shared_path for name, origin in ORIGINS.items() if name != RECORDING}
    medqa_path, medmcqa_path = files["medqa/test.4_options.jsonl"], files["medmcqa/dev.jsonl"]
    pqal_path, truth_path = files["pubmedqa/ori_pqal.json"], files["pubmedqa/test_ground_truth.json"]

    medqa_questions = medqa.load(medqa_path).questions
    lines = {json.loads(line)["realidx"]: line for line in _jsonl_lines(medqa_path)}
    medqa_raw = {q.id: lines[q.meta["native_index"]] for q in medqa_questions}

    medmcqa_questions = medmcqa.load(medmcqa_path).questions
    lines = {json.loads(line)["id"]: line for line in _jsonl_lines(medmcqa_path)}
    medmcqa_raw = {q.id: lines[q.meta["native_id"]] for q in medmcqa_questions}

    pubmedqa_questions = pubmedqa.load(pqal_path, split="test").questions
    for path in (pqal_path, truth_path):
        if _pubmedqa_dump(json.loads(path.read_bytes())) != path.read_bytes():
            raise SystemExit(f"{path}: its serialisation is not json.dumps(indent=4); the demo subset would not be in "
                             "the native format. Update _pubmedqa_dump.")
    pqal = json.loads(pqal_path.read_bytes())
    pubmedqa_raw = {q.id: pqal[q.meta["pmid"]] for q in pubmedqa_questions}
    return {"medqa": Benchmark(medqa_questions, medqa_raw), "medmcqa": Benchmark(medmcqa_questions, medmcqa_raw),
            "pubmedqa": Benchmark(pubmedqa_questions, pubmedqa_raw)}


def read_trace_lines(path: Path) -> list[tuple[str, dict[str, Any]]]:
    """(verbatim line, parsed row) for every row of dev_traces."""
    with gzip.open(path, "rt", encoding="utf-8", newline="") as fh:
        return [(line if line.endswith("\n") else line + "\n", json.loads(line)) for line in fh if line.strip()]


# ---------------------------------------------------------------- selection


_WS = re.compile(r"\s+")


def _text_key(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


@dataclass
class Pick:
    question: Question
    recordings: list[tuple[str, dict[str, Any]]]  # (verbatim line, row), in MODELS order


def candidates(traces: list[tuple[str, dict[str, Any]]], benchmarks: dict[str, Benchmark],
               skipped: Counter[str]) -> list[Pick]:
    """Questions with one recording per model of MODELS whose benchmark row agrees with the recording."""
    groups: dict[tuple[str, str], dict[str, tuple[str, dict[str, Any]]]] = defaultdict(dict)
    for line, row in traces:
        if row["source"] == TRACE_SOURCE and row["split"] == TRACE_SPLIT and row["model"] in MODELS:
            group = groups[(row["dataset"], row["qid"])]
            if row["model"] in group:
                raise SystemExit(f"{TRACES}: two {row['model']} rows for {row['dataset']} {row['qid']}; the selection "
                                 "rule assumes one per model")
            group[row["model"]] = (line, row)
    medqa_by_text: dict[str, list[Question]] = defaultdict(list)
    for q in benchmarks["medqa"].questions:
        medqa_by_text[_text_key(q.question)].append(q)
    by_native = {
        "medmcqa": {q.meta["native_id"]: q for q in benchmarks["medmcqa"].questions},
        "pubmedqa": {q.meta["pmid"]: q for q in benchmarks["pubmedqa"].questions},
    }
    picks = []
    for (dataset, qid), group in sorted(groups.items()):
        if len(group) < len(MODELS):
            skipped[f"{dataset}: fewer than {len(MODELS)} models recorded"] += 1
            continue
        first = group[MODELS[0]][1]
        if dataset == "medqa":
            found = medqa_by_text.get(_text_key(first["question"]), [])
        else:
            found = [by_native[dataset][qid]] if qid in by_native[dataset] else []
        if len(found) != 1:
            skipped[f"{dataset}: {len(found)} benchmark rows match"] += 1
            continue
        question = found[0]
        if any(row["gold"] != question.answer or row["options"] != question.options for _, row in group.values()):
            skipped[f"{dataset}: options or gold differ from the benchmark file"] += 1
            continue
        picks.append(Pick(question, [group[model] for model in MODELS]))
    return picks


def _write_recordings(picks: list[Pick], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for pick in picks:
            fh.writelines(line for line, _ in pick.recordings)


def unmatched(picks: list[Pick], recordings: Recordings) -> list[tuple[Pick, str]]:
    """Picks whose rendered prompts the replay server does not answer with exactly their own recordings."""
    bad = []
    for pick in picks:
        expected = [row["response"] for _, row in pick.recordings]
        for name in CHECKED_PROMPTS:
            template = default_prompt_for(pick.question) if name == "default" else get_prompt(name)
            user = template.render(pick.question)[-1]["content"]
            matched, found = recordings.for_prompt(user)
            if not matched or [r.content for r in found] != expected:
                bad.append((pick, template.name))
                break
    return bad


def select(traces: list[tuple[str, dict[str, Any]]], benchmarks: dict[str, Benchmark],
           skipped: Counter[str]) -> list[Pick]:
    picks = candidates(traces, benchmarks, skipped)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "candidates.jsonl"
        _write_recordings(picks, path)
        bad = unmatched(picks, Recordings(path))
        for pick, template in bad:
            skipped[f"{pick.question.source}: not matched by the replay server ({template} prompt)"] += 1
        dropped = {id(p) for p, _ in bad}
        picks = [p for p in picks if id(p) not in dropped]
        _write_recordings(picks, path)
        still = unmatched(picks, Recordings(path))  # dropping some must not have changed the others' matches
        if still:
            raise SystemExit(f"replay matching changed after selection for {still[0][0].question.id}")
    rank = {name: i for i, name in enumerate(SOURCE_ORDER)}
    return sorted(picks, key=lambda p: (rank[p.question.source], benchmarks[p.question.source].order[p.question.id]))


# ---------------------------------------------------------------- writing


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def write_files(picks: list[Pick], benchmarks: dict[str, Benchmark], data: Path, out: Path) -> dict[str, int]:
    """The data files of the demo; returns rows per file."""
    by_source: dict[str, list[Pick]] = defaultdict(list)
    for pick in picks:
        by_source[pick.question.source].append(pick)
    (out / "medqa").mkdir(parents=True)
    (out / "medmcqa").mkdir()
    (out / "pubmedqa").mkdir()
    rows = {}
    for name, source in (("medqa/test.4_options.jsonl", "medqa"), ("medmcqa/dev.jsonl", "medmcqa")):
        lines = [benchmarks[source].raw[p.question.id] for p in by_source[source]]
        (out / name).write_bytes("".join(lines).encode("utf-8"))
        rows[name] = len(lines)
    pubmed = by_source["pubmedqa"]
    pqal = {p.question.meta["pmid"]: benchmarks["pubmedqa"].raw[p.question.id] for p in pubmed}
    (out / "pubmedqa/ori_pqal.json").write_bytes(_pubmedqa_dump(pqal))
    truth_all = json.loads((data / ORIGINS["pubmedqa/test_ground_truth.json"].shared_path).read_bytes())
    truth = {pmid: label for pmid, label in truth_all.items() if pmid in pqal}
    (out / "pubmedqa/test_ground_truth.json").write_bytes(_pubmedqa_dump(truth))
    rows["pubmedqa/ori_pqal.json"], rows["pubmedqa/test_ground_truth.json"] = len(pqal), len(truth)
    payload = "".join(line for pick in picks for line, _ in pick.recordings).encode("utf-8")
    # mtime=0 and no file name in the header: the same bytes on every run.
    with open(out / RECORDING, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=9,
                                                            mtime=0) as gz:
        gz.write(payload)
    rows[RECORDING] = sum(len(p.recordings) for p in picks)
    return rows


SELECTION = {
    "medqa/test.4_options.jsonl": "lines (verbatim, in file order) of the MedQA test questions selected below",
    "medmcqa/dev.jsonl": "lines (verbatim, in file order) of the MedMCQA dev questions selected below",
    "pubmedqa/ori_pqal.json": "the selected PMIDs' objects (unchanged, in file order), serialised as the original",
    "pubmedqa/test_ground_truth.json": "the entries of the PMIDs kept in ori_pqal.json (all of them are test)",
    RECORDING: f"per selected question its {len(MODELS)} rows, one per model in the order {', '.join(MODELS)} "
               "(verbatim dev_traces lines; the replay server serves recording number seed + j for choice j)",
}

RULE = (
    f"Every question of the medagents-benchmark hard subsets (dev_traces rows with source = {TRACE_SOURCE!r}, "
    f"split = {TRACE_SPLIT!r}) that has one recording from each of {', '.join(MODELS)} (open-weight models under "
    "permissive licences; OpenAI, Cohere and other models' recordings are left out), whose row in the shared "
    "benchmark file is found (MedQA by its whitespace- and case-normalised question text, MedMCQA by `id`, "
    "PubMedQA by PMID) with the same options and gold letter, and whose prompts rendered by curate's templates (each "
    f"question's default template and `{RATIONALIZE}`) the replay server (curate/generate/replay.py, "
    "`Recordings.for_prompt`) answers with exactly that question's recordings. No sampling and no choice on "
    "outcomes: all such questions are kept."
)


def provenance(out: Path, rows: dict[str, int], picks: list[Pick], skipped: Counter[str]) -> dict[str, Any]:
    files: dict[str, Any] = {}
    for name, origin in ORIGINS.items():
        path = out / name
        files[name] = {"repository": origin.repository, "commit": origin.commit, "path": origin.path,
                       "licence": origin.licence, "shared_copy": origin.shared_path, "note": origin.note,
                       "rows": rows[name], "selection": SELECTION[name], "bytes": path.stat().st_size,
                       "sha256": _sha256(path)}
    models: dict[str, Any] = {}
    for model in MODELS:
        per_dataset = Counter(row["dataset"] for p in picks for _, row in p.recordings if row["model"] == model)
        models[model] = {**MODEL_TERMS[model], "rows": sum(per_dataset.values()),
                         "rows_per_dataset": dict(sorted(per_dataset.items()))}
    files[RECORDING]["models"] = models
    per_source = Counter(p.question.source for p in picks)
    return {
        "about": "The offline demo of curate's main job: real benchmark questions in their sources' native formats "
                 "and recorded real teacher completions for them. Rebuilt by scripts/build_demo.py.",
        "evaluation_items": EVALUATION_WARNING,
        "questions": {s: per_source[s] for s in SOURCE_ORDER},
        "splits": {s: sorted({p.question.split for p in picks if p.question.source == s}) for s in SOURCE_ORDER},
        "recordings_per_question": len(MODELS),
        "selection_rule": RULE,
        "not_selected": dict(sorted(skipped.items())),
        "files": files,
    }


def provenance_markdown(prov: dict[str, Any]) -> str:
    q = prov["questions"]
    lines = [
        "# Demo data: provenance",
        "",
        f"**{prov['evaluation_items']}**",
        "",
        prov["about"] + f" Machine-readable twin: `{PROVENANCE_JSON}` (with each file's SHA-256).",
        "",
        f"Questions: {sum(q.values())} ({', '.join(f'{s} {n}' for s, n in q.items())}), "
        f"{prov['recordings_per_question']} recorded completions each.",
        "",
        "## Files",
        "",
        "| file | rows | original (repository @ commit, path) | licence | selection |",
        "|---|---|---|---|---|",
    ]
    for name, f in prov["files"].items():
        lines.append(f"| `{name}` | {f['rows']} | {f['repository']} @ {f['commit']}, `{f['path']}` | {f['licence']} | "
                     f"{f['selection']} |")
    lines += ["", "Notes per file (as documented for the shared copies in `../shared/data/README.md`):", ""]
    lines += [f"- `{name}`: {f['note']}" for name, f in prov["files"].items()]
    lines += ["", "## Recorded teachers (`recording.jsonl.gz`)", "",
              "| model | rows | per dataset | weights | licence | terms of the outputs |", "|---|---|---|---|---|---|"]
    for model, m in prov["files"][RECORDING]["models"].items():
        per = ", ".join(f"{d} {n}" for d, n in m["rows_per_dataset"].items())
        lines.append(f"| {model} | {m['rows']} | {per} | `{m['weights']}` | {m['licence']} | {m['terms']} |")
    lines += ["", "No recording of an OpenAI, Cohere or other closed model is included.", "",
              "## Selection", "", prov["selection_rule"], "", "Left out by the rule:", ""]
    lines += [f"- {reason}: {count}" for reason, count in prov["not_selected"].items()]
    lines += ["", "## Rebuilding", "", "```", "python scripts/build_demo.py            # needs ../shared/data "
              "(or $CURATE_SHARED_DATA)", "```", "",
              "The output is byte-identical on a re-run; `tests/test_demo_data.py` checks it when the data is there.",
              ""]
    return "\n".join(lines)


def build(data: Path, out: Path) -> dict[str, Any]:
    """Write the demo into `out` (replaced as a whole, nothing partial on failure); returns the provenance."""
    benchmarks = read_benchmarks(data)
    skipped: Counter[str] = Counter()
    picks = select(read_trace_lines(data / TRACES), benchmarks, skipped)
    if not picks:
        raise SystemExit("no question met the selection rule: the shared data is not what this script expects")
    out = out.resolve()
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        rows = write_files(picks, benchmarks, data, staging)
        verify(staging, picks)
        prov = provenance(staging, rows, picks, skipped)
        (staging / PROVENANCE_JSON).write_text(json.dumps(prov, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
        (staging / PROVENANCE_MD).write_text(provenance_markdown(prov), encoding="utf-8")
        staging.chmod(0o755)
        for path in staging.rglob("*"):
            path.chmod(0o755 if path.is_dir() else 0o644)
        if out.exists():
            if any(out.iterdir()) and not (out / PROVENANCE_JSON).exists():
                raise SystemExit(f"{out} exists and is not a demo folder (no {PROVENANCE_JSON}): not replacing it")
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return prov


def verify(folder: Path, picks: list[Pick]) -> None:
    """The written files load through the real loaders into exactly the selected questions."""
    loaded = (medqa.load(folder / "medqa/test.4_options.jsonl").questions
              + medmcqa.load(folder / "medmcqa/dev.jsonl").questions
              + pubmedqa.load(folder / "pubmedqa/ori_pqal.json").questions)
    if [q.model_dump() for q in loaded] != [p.question.model_dump() for p in picks]:
        raise SystemExit("the written demo files do not load back into the selected questions")
    recordings = Recordings(folder / RECORDING)
    if len(recordings.all) != sum(len(p.recordings) for p in picks) or unmatched(picks, recordings):
        raise SystemExit("the written recording does not serve every selected question its own recordings")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="the shared data folder (default $CURATE_SHARED_DATA, else "
                        "../shared/data beside the repository)")
    parser.add_argument("--out", type=Path, default=DEMO_DIR, help=f"folder to (re)write (default {DEMO_DIR})")
    args = parser.parse_args(argv)
    data = find_shared_data(args.data, need=TRACES)
    missing = [o.shared_path for o in ORIGINS.values() if data is None or not (data / o.shared_path).exists()]
    if missing:
        where = args.data or os.environ.get("CURATE_SHARED_DATA") or f"{REPO_ROOT.parent / 'shared' / 'data'}, /work/shared/data"
        print(f"build_demo: the shared data is absent (looked in {where}; missing {', '.join(missing)}).\n"
              "The demo in examples/demo/ ships with the repository: rebuilding it needs the real benchmark and trace "
              "files. Point --data or $CURATE_SHARED_DATA at them.", file=sys.stderr)
        return 2
    assert data is not None
    prov = build(data, args.out)
    total = sum(f["bytes"] for f in prov["files"].values())
    print(f"wrote {args.out}: {sum(prov['questions'].values())} questions ({prov['questions']}), "
          f"{prov['files'][RECORDING]['rows']} recordings, {total / 1e6:.2f} MB of data files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
