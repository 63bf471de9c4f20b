"""`curate experiment`: the five configurations on the same data and budget, each evaluated on the same questions,
compared with intervals and paired tests against the decoupled run, and their training stability on one figure.

Evaluation questions are `eval_questions` when given, else a deterministic held-out share of the training
questions (chosen by content hash, removed from training). A configuration whose run folder is already complete is
not trained again, so an interrupted experiment resumes where it stopped.
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any

from curate.records import Question, stable_hash
from train.config import TrainConfig, resolved
from train.data import Render, default_render, load_questions, load_training_data
from train.recipe import GRPO_MODES, MODES, announce, is_complete, require_grpo_prompts, teacher_band, train_run
from train.report import TrainReport


def holdout(question_ids: list[str], fraction: float) -> set[str]:
    """A stable held-out subset: the `fraction` of ids with the smallest hashes (at least one, never all)."""
    ids = sorted(set(question_ids), key=lambda q: stable_hash("holdout", q))
    if len(ids) < 2:
        raise ValueError(f"need at least 2 questions to hold some out for evaluation, got {len(ids)}")
    k = min(len(ids) - 1, max(1, math.ceil(fraction * len(ids))))
    return set(ids[:k])


def run_experiment(data: str | os.PathLike[str], base_model: str, output_dir: str | os.PathLike[str], *,
                   config: TrainConfig, questions: str | os.PathLike[str] | None = None,
                   eval_questions: list[Question] | None = None, modes: tuple[str, ...] = MODES,
                   render: Render = default_render, report: str | os.PathLike[str] | None = None) -> TrainReport:
    from curate.io import write_json
    from train.compare import DETAIL_KEYS, add_significance, write_comparison
    from train.data import iter_data_rows
    from train.evaluate import comparison_engine, evaluate_target, resolve_model

    output_dir = Path(output_dir)
    band = teacher_band(config)
    if eval_questions is None:
        ids = [row["question_id"] for _, _, row in iter_data_rows(data) if row.get("question_id")]
        held = holdout(ids, config.eval.holdout_fraction)
        full = load_training_data(data, questions, render=render, band=band)
        eval_questions = [full.questions[q] for q in sorted(held) if q in full.questions]
        training = load_training_data(data, questions, render=render, band=band, exclude=held)
        eval_source = f"held out from training ({len(eval_questions)} questions)"
    else:
        held = set()
        training = load_training_data(data, questions, render=render, band=band)
        eval_source = f"given ({len(eval_questions)} questions)"
    announce(training)
    if set(GRPO_MODES) & set(modes):
        require_grpo_prompts(data, training)
    output_dir.mkdir(parents=True, exist_ok=True)
    write_json({"config": resolved(config), "base_model": base_model, "data": str(data), "modes": list(modes),
                "eval_questions": eval_source, "held_out": sorted(held)}, output_dir / "experiment.json")
    stats: dict[str, Any] = {}
    for mode in modes:
        run_dir = output_dir / "runs" / mode
        if is_complete(run_dir, config=config, base_model=base_model, data_path=data):
            stats[mode] = "reused"
            continue
        train_run(mode, training, base_model, run_dir, config=config, data_path=str(data),
                  questions_path=str(questions) if questions else None, overwrite=True)
        stats[mode] = "trained"
    targets = [resolve_model(output_dir / "runs" / mode) for mode in modes]
    engine = comparison_engine(targets, config.eval)  # one engine for every row: the table compares training alone
    rows = [evaluate_target(target, eval_questions, config.eval, output_dir / "eval", render=render, engine=engine)
            for target in targets]
    add_significance(rows)
    files = write_comparison(rows, output_dir)
    _add_results_to_cards(output_dir, modes, rows, config, eval_source)
    result = TrainReport(stage="experiment", rows_in=len(training.sft), rows_out=len(rows),
                         extra={"runs": stats, "eval_questions": eval_source,
                                "comparison": {k: str(v) for k, v in files.items()},
                                "table": [{k: v for k, v in r.items() if k not in DETAIL_KEYS} for r in rows]})
    result.write(output_dir / "report.json")
    if report:
        result.write(report)
    return result


def _add_results_to_cards(output_dir: Path, modes: tuple[str, ...], rows: list[dict[str, Any]], config: TrainConfig,
                          eval_source: str) -> None:
    import json

    from train.card import write_card
    from train.compare import DETAIL_KEYS

    for mode, row in zip(modes, rows):
        run_dir = output_dir / "runs" / mode
        run = json.loads((run_dir / "run.json").read_text())
        metrics = {k: v for k, v in row.items() if k not in DETAIL_KEYS}
        write_card(run_dir, run, config, extra={"questions": eval_source, **metrics})


def load_eval_questions(path: str | os.PathLike[str], source: str | None = None, split: str | None = None,
                        limit: int | None = None) -> list[Question]:
    """A Question file, or (with `source`) a benchmark's native file loaded through `sources`."""
    if source:
        from sources import load_source

        result = load_source(source, str(path), split=split, limit=limit)
        return result.questions
    questions = list(load_questions(path).values())
    return questions[:limit] if limit else questions
