"""The recipe's plain functions: strict parsing and rewards, training-data building, difficulty selection,
stability metrics from logs, the comparison table; and the same functions on real teacher traces."""

from __future__ import annotations

import gzip
import json
import re

import pytest

from curate.io import InputError, write_rows
from curate.records import Question, canonical_text
from train.compare import add_significance, comparison_markdown, intervals, mcnemar_exact, paired_test
from train.config import HealthSpec, load_config
from train.data import build_examples, build_prompts, default_render, load_training_data, pass_rates
from train.evaluate import comparison_engine, score, stability, vllm_lora_rank
from train.health import HealthMonitor, explain_no_learning_signal
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
    assert logged == {"completions/no_answer_share": 1 / 3, "completions/collapsed_share": 0.0,
                      "completions/answer_leak_share": 0.0}
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
    # accuracy by the filter's extractor counts the bare "C"; strict accuracy needs the format too
    assert metrics == {"n": 4, "accuracy": 0.5, "format_compliance": 0.5, "strict_accuracy": 0.25,
                       "answer_leakage": 0.25, "collapsed_outputs": 0.25}
    assert [i["predicted"] for i in items] == ["A", "A", None, None]
    assert [i["extracted"] for i in items] == ["A", "A", "C", None]


@pytest.mark.parametrize("text", ["<think>x</think>\n<answer>B</answer>", "<answer> B </answer>"])
def test_score_accuracy_is_not_format(text):
    # the strict parser refuses these; the filter's extractor reads B, so accuracy and format are told apart
    metrics, items = score([text], [q(0, "B")])
    assert items[0]["extracted"] == "B" and items[0]["correct"] and not items[0]["strict_correct"]
    assert metrics["accuracy"] == 1.0 and metrics["strict_accuracy"] == 0.0


def test_score_reads_kept_teacher_completions():
    # real DeepSeek-R1 / gpt-4o completions: those the filter keeps (its extractor reads the gold letter) score as
    # correct, though none is in the strict <answer> format GRPO rewards
    from curate.filter.extract import extract_answer

    with gzip.open("examples/demo/recording.jsonl.gz", "rt") as fh:
        kept = [r for r in map(json.loads, fh) if extract_answer(r["response"], r["options"]).letter == r["gold"]]
    assert kept
    questions = [Question(id=f"rec:{i}", source="rec", split="test", question=r["question"], options=r["options"],
                          answer=r["gold"]) for i, r in enumerate(kept)]
    metrics, _ = score([r["response"] for r in kept], questions)
    assert metrics["accuracy"] == 1.0 and metrics["format_compliance"] == 0.0 and metrics["strict_accuracy"] == 0.0


@pytest.mark.parametrize("rank, served", [(1, 1), (4, 8), (8, 8), (16, 16), (24, 32), (33, 64), (320, 320)])
def test_vllm_lora_rank_rounds_up_to_an_accepted_value(rank, served):
    # reasoning r=16 + reward r=8 combine to r=24, which vLLM refuses as max_lora_rank (it takes 1, 8, 16, 32, ...)
    assert vllm_lora_rank(rank) == served


def test_vllm_lora_rank_refuses_a_rank_vllm_cannot_serve():
    with pytest.raises(ValueError, match="vLLM"):
        vllm_lora_rank(1000)


def test_one_engine_for_every_row_of_a_comparison():
    from train.config import EvalSpec

    base = {"name": "base", "adapters": {}, "combined": None}
    stacked = {"name": "grpo_only", "adapters": {"a": "x", "b": "y"}, "combined": None}  # vLLM cannot serve two
    # one target vLLM cannot serve puts every row on transformers, so no row's score differs by engine alone
    assert comparison_engine([base, stacked], EvalSpec(backend="vllm")) == "transformers"
    assert comparison_engine([base], EvalSpec(backend="transformers")) == "transformers"
    table = comparison_markdown([{"run": "base", "accuracy": 0.5, "backend": "vllm"},
                                 {"run": "decoupled", "accuracy": 0.5, "backend": "vllm"}])
    assert "Every row generated with vllm" in table and "| strict accuracy [95% CI] |" in table
    mixed = comparison_markdown([{"run": "base", "backend": "vllm"}, {"run": "sft", "backend": "transformers"}])
    assert "different engines" in mixed


def test_stability_from_logs():
    logs = [{"stage": "sft", "step": s, "loss": 2.0 / s, "grad_norm": 1.0} for s in range(1, 6)]
    logs.append({"stage": "sft", "step": 6, "loss": 0.3, "grad_norm": 9.0})  # 9x the median of earlier steps
    logs += [{"stage": "grpo", "step": s, "reward": 0.1 * s, "reward_std": 0.5, "grad_norm": 1.0, "kl": 0.01 * (s - 1),
              "entropy": 2.0 / s, "rewards/format_reward/mean": 0.2 * s, "completions/collapsed_share": 0.25 * (s == 2)}
             for s in (1, 2)]
    logs.append({"stage": "grpo", "step": 2, "train_runtime": 1.0})  # the trainer's final summary line
    out = stability(logs, spike_factor=5.0)
    assert out["steps"] == [1, 2] and out["reward_mean"] == [0.1, 0.2] and out["format_rate"] == [0.2, 0.4]
    assert out["kl"] == [0.0, 0.01] and out["entropy"] == [2.0, 1.0] and out["clipped_ratio"] == [None, None]
    summary = out["summary"]
    assert summary["kl_first"] == 0.0 and summary["kl_max"] == 0.01
    assert summary["grad_norm_spikes"] == 1 and summary["grad_norm_max"] == 9.0
    assert summary["grpo_steps"] == 2 and summary["reward_last"] == 0.2 and summary["collapsed_share"] == 0.125
    assert summary["final_sft_loss"] == 0.3
    assert stability([])["summary"]["grpo_steps"] == 0


def test_comparison_markdown_has_one_row_per_run():
    table = comparison_markdown([{"run": "base", "accuracy": 0.25, "n": 4, "accuracy_ci": [0.05, 0.7]},
                                 {"run": "decoupled", "accuracy": 0.5, "status": "done"}])
    lines = table.strip().splitlines()
    assert len(lines) == 4 and lines[2].startswith("| base | - | 4 | 0.25 [0.05, 0.70] |")
    assert lines[3].startswith("| decoupled | done | - | 0.5 |")


# ------------------------------------------------------------------ intervals and paired tests


def test_mcnemar_exact_matches_a_binomial_test():
    scipy_stats = pytest.importorskip("scipy.stats")  # an independent implementation, used here only as the oracle
    for b, c in [(0, 5), (1, 9), (3, 3), (7, 2), (0, 1), (12, 30)]:
        expected = scipy_stats.binomtest(b, b + c, 0.5).pvalue
        assert mcnemar_exact(b, c) == pytest.approx(expected, rel=1e-9)
        assert mcnemar_exact(b, c) == mcnemar_exact(c, b)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 5) == pytest.approx(2 / 32)  # by hand: both tails of 5 heads in 5 fair tosses


def _items(correct: list[bool], fmt: list[bool] | None = None) -> list[dict]:
    return [{"question_id": f"q{i}", "correct": c, "format_ok": (fmt or correct)[i], "strict_correct": c and (fmt or correct)[i]}
            for i, c in enumerate(correct)]


def test_paired_tests_against_decoupled_count_discordant_questions_and_name_significant_metrics():
    n = 40
    ref = _items([True] * 30 + [False] * 10, [True] * n)
    worse = _items([False] * 30 + [False] * 10, [True] * n)  # 30 discordant, all in the reference's favour
    same = _items([True] * 29 + [False] + [True] + [False] * 9, [True] * n)  # 1 each way
    rows = [{"run": "decoupled", "accuracy": 0.75, "format_compliance": 1.0, "items": ref},
            {"run": "sft", "accuracy": 0.0, "format_compliance": 1.0, "items": worse},
            {"run": "grpo", "accuracy": 0.75, "format_compliance": 1.0, "items": same}]
    add_significance(rows)
    by = {r["run"]: r for r in rows}
    assert by["decoupled"]["significant"] == "(reference)"
    assert by["sft"]["vs_decoupled"]["accuracy"] == {"diff": -0.75, "reference_only": 30, "rival_only": 0,
                                                     "p": round(2 / 2**30, 4)}
    assert by["sft"]["significant"] == "accuracy"
    assert by["grpo"]["vs_decoupled"]["accuracy"]["p"] == 1.0 and by["grpo"]["significant"] == "no"
    assert by["grpo"]["vs_decoupled"]["format_compliance"]["p"] == 1.0
    with pytest.raises(ValueError, match="same questions"):
        paired_test(ref, ref[:-1], "correct")
    assert intervals(ref)["accuracy_ci"] == [0.5981, 0.8581]  # Wilson 30/40, by hand: 0.7281 -+ 0.1300
    assert intervals([]) == {"accuracy_ci": None, "format_compliance_ci": None, "strict_accuracy_ci": None}


# ------------------------------------------------------------------ run-health monitors


def test_monitor_fires_after_patience_consecutive_steps_and_stops_only_when_asked():
    monitor = HealthMonitor(HealthSpec(patience=2, stop_on=["kl"], kl=0.5))
    assert not monitor.observe(1, {"kl": 0.9, "entropy": 1.0})  # one step over: not yet
    assert not monitor.observe(2, {"kl": 0.1, "entropy": 1.0})  # the streak is broken
    assert not monitor.observe(3, {"kl": 0.7, "entropy": 0.01})
    assert monitor.observe(4, {"kl": 0.8, "entropy": 0.02})  # kl over for 2 steps: fires, and stops
    assert [(w["metric"], w["step"], w["value"]) for w in monitor.warnings] == [("kl", 4, 0.8), ("entropy", 4, 0.02)]
    assert monitor.stopped_by["metric"] == "kl" and monitor.stopped_by["threshold"] == 0.5
    assert not monitor.observe(5, {"kl": 0.9})  # each monitor fires once
    assert len(monitor.warnings) == 2


def test_monitor_reads_trls_metric_names_and_treats_nan_as_bad():
    monitor = HealthMonitor(HealthSpec(patience=1, entropy=None))
    monitor.observe(1, {"frac_reward_zero_std": 1.0, "reward_std": 0.0, "completions/clipped_ratio": 0.75,
                        "completions/no_answer_share": 0.5, "kl": float("nan"), "entropy": 0.0})
    fired = {w["metric"] for w in monitor.warnings}
    # no_answer at exactly its threshold does not fire; entropy is switched off
    assert fired == {"frac_reward_zero_std", "reward_std", "clipped_ratio", "kl"}
    assert monitor.stopped_by is None


def test_health_config_checks():
    with pytest.raises(ValueError, match=r"stop_on names monitors without a threshold: \['kl'\]"):
        load_config(None, {"health": {"kl": None, "stop_on": ["kl"]}})
    assert load_config(None, {"grpo": {"difficulty": "band"}}).grpo.difficulty == "teacher_band"  # the former name


def test_generation_batch_counts_every_process(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert load_config(None, {"grpo": {"batch_size": 2, "num_generations": 4}}).grpo.batch_size == 2
    monkeypatch.setenv("WORLD_SIZE", "1")
    with pytest.raises(ValueError, match=r"processes \(2\) must be divisible by num_generations \(4\)"):
        load_config(None, {"grpo": {"batch_size": 2, "num_generations": 4}})


def test_no_learning_signal_explanation_names_the_cause():
    logs = [{"step": s, "reward": 0.0, "frac_reward_zero_std": 1.0, "completions/no_answer_share": 1.0,
             "completions/clipped_ratio": 0.75} for s in (1, 2)]
    text = explain_no_learning_signal("reward", 28, logs, 16)
    assert text.startswith("GRPO changed none of the 28 tensors of adapter 'reward' in 2 step(s): every group's")
    assert "100% of completions had no parsable <answer>" in text and "75% were cut at max_completion_length (16" in text


def test_student_candidates_are_a_stable_subset():
    from train.calibrate import candidates

    prompts = [{"question_id": f"q{i}"} for i in range(20)]
    chosen = candidates(prompts, 5)
    assert len(chosen) == 5 and chosen == candidates(list(reversed(prompts)), 5)[::-1]
    assert candidates(prompts, None) == prompts and candidates(prompts, 50) == prompts


def test_adapters_active_switches_the_forward_pass_and_keeps_what_trains():
    """The KL reference's switch, on a real (tiny, random) peft model: [] is the base model, ["reasoning"] the base
    with the reasoning adapter only; afterwards both adapters are active again and only `reward` trains."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from train.modeling import adapters_active, trainable_adapters

    torch.manual_seed(0)
    config = Qwen2Config(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2,
                         num_key_value_heads=1, vocab_size=50)
    base = Qwen2ForCausalLM(config)
    ids = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        base_logits = base(ids).logits.clone()
    lora = dict(r=2, lora_alpha=4, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    model = get_peft_model(base, LoraConfig(**lora), adapter_name="reasoning")
    model.add_adapter("reward", LoraConfig(**lora))
    with torch.no_grad():
        model.base_model.set_adapter(["reasoning"])
        reasoning_logits = model(ids).logits.clone()
        model.base_model.set_adapter(["reasoning", "reward"])
        model.set_requires_grad("reasoning", False)
        both_logits = model(ids).logits.clone()
        with adapters_active(model, []):
            assert torch.equal(model(ids).logits, base_logits)
        assert trainable_adapters(model) == {"reward"}  # leaving peft's disable_adapter alone would unfreeze both
        with adapters_active(model, ["reasoning"]):
            assert torch.equal(model(ids).logits, reasoning_logits)
        assert torch.equal(model(ids).logits, both_logits)
    assert not torch.allclose(reasoning_logits, both_logits) and not torch.allclose(base_logits, reasoning_logits)
    assert list(model.base_model.active_adapters) == ["reasoning", "reward"]
    assert trainable_adapters(model) == {"reward"}


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
    from train.recipe import data_sha256, is_complete

    data = tmp_path / "kept.jsonl"
    data.write_text('{"trace_id": "t0"}\n')
    run_dir = tmp_path / "run"
    config = load_config(None, {"sft": {"max_steps": 5}})
    write_json(resolved(config), run_dir / "config.json")
    write_json({"status": "done", "base_model": "m", "data": {"sha256": data_sha256(data)}}, run_dir / "run.json")
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


def test_shipped_deepspeed_config_is_zero_stage_2_as_accelerate_reads_it(repo_root):
    """The ZeRO-2 file the README passes to `accelerate launch --use_deepspeed` (DeepSpeed itself is not installed
    here: this checks how accelerate parses the file, not a DeepSpeed run)."""
    pytest.importorskip("accelerate")
    from accelerate.utils.deepspeed import HfDeepSpeedConfig

    config = HfDeepSpeedConfig(str(repo_root / "curate" / "configs" / "deepspeed-zero2.json"))
    assert config.is_zero2() and not config.is_zero3() and not config.is_offload()
    # batch sizes, accumulation, clipping and precision come from the training config, not the file
    for key in ("train_micro_batch_size_per_gpu", "gradient_accumulation_steps", "gradient_clipping", "bf16.enabled"):
        assert config.get_value(key) == "auto", key


def test_the_tiny_tokenizer_corpus_holds_only_the_question_templates():
    """The seeded tiny model depends on its tokenizer's corpus: a template for another job (the judge prompt) must not
    enter it, or every seeded training run of the tests changes (it did, and the GRPO health checks drifted)."""
    from prompts import TEMPLATE_DIR
    from train.random_model import synthetic_corpus

    corpus = set(synthetic_corpus(n=1))
    judge = (TEMPLATE_DIR / "judge_reasoning.txt").read_text(encoding="utf-8")
    assert judge not in corpus
    assert (TEMPLATE_DIR / "multiple_choice.txt").read_text(encoding="utf-8") in corpus
