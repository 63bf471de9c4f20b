"""The recipe's plain functions: strict parsing and rewards, training-data building, difficulty selection,
stability metrics from logs, the comparison table; and the same functions on real teacher traces."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from curate.io import InputError, write_rows
from curate.records import Question, canonical_text
from train.data import build_examples, build_prompts, default_render, load_training_data, pass_rates
from train.evaluate import comparison_markdown, score, stability
from train.rewards import answer_leaked, collapsed, correctness_reward, format_reward, parse_completion


def q(i: int, gold: str = "A", context: str | None = None) -> Question:
    return Question(id=f"syn:train:{i}", source="syn", split="train", question=f"Question {i}?", context=context,
                    options={"A": "alpha", "B": "beta", "C": "gamma"}, answer=gold)


# ------------------------------------------------------------------ strict parsing


@pytest.mark.parametrize("text, ok, answer", [
    ("<think>\nbecause\n</think>\n<answer>B</answer>", True, "B"),
    ("<think>\nline one\nline two\n</think>\n<answer>C</answer>\n", True, "C"),
    ("<think>\nbecause\n</think>\n<answer>b</answer>", False, None),          # lower-case letter
    ("<think>\nbecause\n</think><answer>B</answer>", False, None),            # no newline between blocks
    ("<think>because</think>\n<answer>B</answer>", False, None),              # think content not on its own lines
    ("Sure! <think>\nbecause\n</think>\n<answer>B</answer>", False, None),    # text before
    ("<think>\nbecause\n</think>\n<answer>B</answer> I hope", False, None),   # text after
    ("<think>\n \n</think>\n<answer>B</answer>", False, None),                # empty reasoning
    ("<think>\na <answer>A</answer>\n</think>\n<answer>B</answer>", False, None),  # two answers
    ("<think>\na\n</think>\n<think>\nb\n</think>\n<answer>B</answer>", False, None),  # two think blocks
    ("<think>\nbecause\n</think>\n<answer>AB</answer>", False, None),
    ("The answer is B", False, None),
    ("", False, None),
])
def test_parse_completion_is_strict(text, ok, answer):
    parsed = parse_completion(text)
    assert parsed.format_ok is ok and parsed.answer == answer


def test_canonical_text_always_parses():
    for letter in "ABCDE":
        parsed = parse_completion(canonical_text("  some reasoning\nover lines  ", letter))
        assert parsed.format_ok and parsed.answer == letter and parsed.think == "some reasoning\nover lines"


def test_rewards_in_trls_calling_convention():
    good, wrong, broken = (canonical_text("r", "A"), canonical_text("r", "B"), "<answer>A</answer>")
    # conversational completions arrive as message lists
    completions = [[{"role": "assistant", "content": t}] for t in (good, wrong, broken)]
    assert correctness_reward(completions, answer=["A", "A", "A"]) == [1.0, 0.0, 0.0]
    logged = {}
    assert format_reward(completions, log_metric=logged.__setitem__) == [1.0, 1.0, 0.0]
    assert logged == {"completions/collapsed_share": 0.0, "completions/answer_leak_share": 0.0}
    assert correctness_reward([good, wrong], answer=["B", "B"]) == [0.0, 1.0]  # plain-text completions


def test_leakage_and_collapse():
    assert answer_leaked(parse_completion(canonical_text("So the answer is B.", "B")))
    assert answer_leaked(parse_completion(canonical_text("Final answer: (C)", "C")))
    assert not answer_leaked(parse_completion(canonical_text("So the answer is B.", "C")))
    assert not answer_leaked(parse_completion(canonical_text("Option B is wrong because", "B")))
    assert not answer_leaked(parse_completion("no format, the answer is B"))
    assert collapsed("") and collapsed("   ") and collapsed("the " * 20) and collapsed("!" * 40)
    assert not collapsed(canonical_text("fever and cough suggest pneumonia", "A"))


# ------------------------------------------------------------------ data


def test_build_examples_uses_render_and_skips_unkept():
    questions = {x.id: x for x in (q(0, "A", context="An abstract."), q(1, "B"))}
    rows = [{"trace_id": "t0", "question_id": "syn:train:0", "kept": True, "reasoning": "r0", "answer": "A"},
            {"trace_id": "t1", "question_id": "syn:train:1", "kept": False, "text": canonical_text("r1", "B")},
            {"trace_id": "t2", "question_id": "syn:train:1", "kept": True, "text": canonical_text("r2", "B")}]
    examples = build_examples(rows, questions)
    assert [e["trace_id"] for e in examples] == ["t0", "t2"]
    # The student sees the teacher's template family (with-context for an abstract), never the rationalisation one.
    from prompts import get_prompt

    assert examples[0]["prompt"] == get_prompt("multiple_choice_context").render(questions["syn:train:0"])
    prompt = examples[0]["prompt"][-1]["content"]
    assert "An abstract." in prompt and "A. alpha" in prompt and "C. gamma" in prompt and "<think>" in prompt
    assert examples[0]["completion"] == [{"role": "assistant", "content": canonical_text("r0", "A")}]
    custom = build_examples(rows, questions, render=lambda x: [{"role": "user", "content": x.id}])
    assert custom[1]["prompt"] == [{"role": "user", "content": "syn:train:1"}]
    with pytest.raises(ValueError, match="trace t9.*'syn:train:7'"):
        build_examples([{"trace_id": "t9", "question_id": "syn:train:7"}], questions)


def test_difficulty_band_keeps_only_informative_questions():
    questions = [q(i) for i in range(5)]
    rows = [{"question_id": "syn:train:0", "pass_rate": 0.0}, {"question_id": "syn:train:1", "pass_rate": 1.0},
            {"question_id": "syn:train:2", "pass_rate": 0.5},
            # no pass_rate column: the share of correct samples (1 of 3)
            {"question_id": "syn:train:3", "correct": True}, {"question_id": "syn:train:3", "correct": False},
            {"question_id": "syn:train:3", "correct": False}]
    rates = pass_rates(rows)
    assert rates == {"syn:train:0": 0.0, "syn:train:1": 1.0, "syn:train:2": 0.5, "syn:train:3": pytest.approx(1 / 3)}
    prompts, skipped = build_prompts(questions, rates, default_render)
    assert [p["question_id"] for p in prompts] == ["syn:train:2", "syn:train:3"]
    assert skipped == {"outside_difficulty_band": 2, "no_pass_rate": 1}
    assert prompts[0]["answer"] == "A"
    everything, _ = build_prompts(questions, rates, default_render, band=None)
    assert len(everything) == 5


def test_load_training_data_clear_errors(tmp_path):
    write_rows([q(0)], tmp_path / "q.jsonl")
    rows = [{"trace_id": "t0", "question_id": "syn:train:0", "kept": True, "text": canonical_text("r", "A"),
             "pass_rate": 0.5}, {"trace_id": "t1", "kept": True}]
    write_rows(rows, tmp_path / "d.jsonl")
    with pytest.raises(InputError, match=r"d\.jsonl:2 \(id=t1\) field 'question_id'"):
        load_training_data(tmp_path / "d.jsonl", tmp_path / "q.jsonl")
    write_rows(rows[:1], tmp_path / "d.jsonl")
    data = load_training_data(tmp_path / "d.jsonl", tmp_path / "q.jsonl")
    assert len(data.sft) == 1 and len(data.grpo) == 1
    with pytest.raises(InputError, match="pass --questions"):
        load_training_data(tmp_path / "d.jsonl")


# ------------------------------------------------------------------ evaluation pieces


def test_score_counts_shares():
    questions = [q(0, "A"), q(1, "B"), q(2, "C"), q(3, "A")]
    outputs = [canonical_text("the answer is A", "A"), canonical_text("r", "A"), "C", ""]
    metrics, items = score(outputs, questions)
    assert metrics == {"n": 4, "accuracy": 0.25, "format_compliance": 0.5, "answer_leakage": 0.25,
                       "collapsed_outputs": 0.25}
    assert [i["predicted"] for i in items] == ["A", "A", None, None]


def test_stability_from_logs():
    logs = [{"stage": "sft", "step": s, "loss": 2.0 / s, "grad_norm": 1.0} for s in range(1, 6)]
    logs.append({"stage": "sft", "step": 6, "loss": 0.3, "grad_norm": 9.0})  # 9x the median of earlier steps
    logs += [{"stage": "grpo", "step": s, "reward": 0.1 * s, "reward_std": 0.5, "grad_norm": 1.0,
              "rewards/format_reward/mean": 0.2 * s, "completions/collapsed_share": 0.25 * (s == 2)}
             for s in (1, 2)]
    logs.append({"stage": "grpo", "step": 2, "train_runtime": 1.0})  # the trainer's final summary line
    out = stability(logs, spike_factor=5.0)
    assert out["steps"] == [1, 2] and out["reward_mean"] == [0.1, 0.2] and out["format_rate"] == [0.2, 0.4]
    summary = out["summary"]
    assert summary["grad_norm_spikes"] == 1 and summary["grad_norm_max"] == 9.0
    assert summary["grpo_steps"] == 2 and summary["reward_last"] == 0.2 and summary["collapsed_share"] == 0.125
    assert summary["final_sft_loss"] == 0.3
    assert stability([])["summary"]["grpo_steps"] == 0


def test_comparison_markdown_has_one_row_per_run():
    table = comparison_markdown([{"run": "base", "accuracy": 0.25, "n": 4}, {"run": "decoupled", "accuracy": 0.5}])
    lines = table.strip().splitlines()
    assert len(lines) == 4 and lines[2].startswith("| base | 4 | 0.25 |") and "| decoupled | - | 0.5 |" in lines[3]


# ------------------------------------------------------------------ real teacher traces


@pytest.mark.shared_data
def test_real_reasoning_traces_parse_and_leak(shared_data):
    """R1/QwQ traces from the real file: their think block + the letter they gave, in canonical form, parse
    strictly; raw teacher output (not canonical) never does; and leakage ("so the answer is A" inside the think
    block) is found in a real share of them."""
    path = shared_data / "traces" / "dev_traces.jsonl.gz"
    rows = [json.loads(line) for line in gzip.open(path, "rt", encoding="utf-8")]
    canonical, leaked = 0, 0
    for row in rows:
        response = row.get("response") or ""
        assert not parse_completion(response).format_ok
        match = re.fullmatch(r"\s*<think>(.*)</think>\s*([A-E])\s*", response, re.S)
        if not match:
            continue
        parsed = parse_completion(canonical_text(match[1], match[2]))
        assert parsed.format_ok and parsed.answer == match[2]
        canonical += 1
        leaked += answer_leaked(parsed)
    assert canonical >= 100
    assert 0 < leaked < canonical


@pytest.mark.shared_data
def test_real_benchmark_questions_render_as_student_prompts(shared_data):
    from sources import load_source

    for name, rel in (("medqa", "benchmarks/medqa/test.4_options.jsonl"), ("pubmedqa", "benchmarks/pubmedqa/ori_pqal.json")):
        questions = load_source(name, str(shared_data / rel), limit=20).questions
        assert len(questions) == 20
        for question in questions:
            content = default_render(question)[-1]["content"]
            assert question.question in content
            assert all(f"{letter}. {text}" in content for letter, text in question.options.items())
            if question.context:
                assert question.context in content


def test_shipped_config_is_valid_and_equals_the_defaults(repo_root):
    from train.config import TrainConfig, load_config

    assert load_config(repo_root / "curate" / "configs" / "train-decoupled.toml") == TrainConfig()


def test_finished_run_is_reused_only_with_the_same_config_model_and_data(tmp_path):
    from curate.io import write_json
    from train.config import load_config, resolved
    from train.recipe import file_sha256, is_complete

    data = tmp_path / "kept.jsonl"
    data.write_text('{"trace_id": "t0"}\n')
    run_dir = tmp_path / "run"
    config = load_config(None, {"sft": {"max_steps": 5}})
    write_json(resolved(config), run_dir / "config.json")
    write_json({"status": "done", "base_model": "m", "data": {"sha256": file_sha256(data)}}, run_dir / "run.json")
    assert is_complete(run_dir, config=config, base_model="m", data_path=data)
    assert not is_complete(run_dir, config=load_config(None, {"sft": {"max_steps": 6}}), base_model="m", data_path=data)
    assert not is_complete(run_dir, config=config, base_model="other", data_path=data)
    data.write_text('{"trace_id": "t1"}\n')
    assert not is_complete(run_dir, config=config, base_model="m", data_path=data)
    assert not is_complete(tmp_path / "missing")


def test_cli_help_does_not_import_the_training_stack():
    import subprocess
    import sys

    code = ("import sys; from curate.cli import build_app; build_app(); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft', 'trl') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=str(__import__("pathlib").Path(__file__).resolve().parent.parent))
    assert out.stdout.strip() == "[]"
