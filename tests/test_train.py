"""The decoupled two-adapter recipe, its rivals and their evaluation, on CPU with a tiny random Qwen2 model.

Everything is real: the model is a randomly initialised Qwen2ForCausalLM with a byte-level BPE tokenizer trained in
the session (no download), trained with real peft + trl (SFTTrainer, GRPOTrainer) for a few steps. The synthetic
training set is tiny and regular on purpose, so that SFT teaches the format within ~60 steps and GRPO then sees
groups with different rewards (an all-equal group gives no gradient).
"""

from __future__ import annotations

import json
import os
import random
from pathlib import Path

import pytest

# A tiny model on a shared 2-core machine: one thread each avoids oversubscription (set before torch is imported).
os.environ.setdefault("OMP_NUM_THREADS", "1")

from curate.io import write_rows
from curate.records import FilteredTrace, Question, canonical_text

pytest.importorskip("trl")
pytest.importorskip("peft")

CONFIG_TOML = """
seed = 0
[reasoning]
r = 8
alpha = 16
dropout = 0.0
target_modules = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
[reward]
r = 4
alpha = 8
dropout = 0.0
[sft]
learning_rate = 0.05
max_steps = 60
batch_size = 4
max_length = 256
warmup_ratio = 0.0
[grpo]
learning_rate = 0.01
max_steps = 3
batch_size = 4
num_generations = 4
max_completion_length = 16
temperature = 1.0
[eval]
max_new_tokens = 16
batch_size = 8
holdout_fraction = 0.25
[export]
merged = true
"""

# The experiment checks plumbing (five runs, same budget, table, plots), not learning: a smaller budget.
# The teacher's band, so every GRPO configuration runs (after 6 SFT steps the student answers nothing right, and the
# student's band would leave no question).
LIGHT_PATCH = {"sft": {"max_steps": 6}, "grpo": {"max_steps": 2, "max_completion_length": 8, "difficulty": "teacher_band"},
               "eval": {"max_new_tokens": 8}, "export": {"merged": False}}

REASONING = {"A": "fever cough", "B": "chest pain"}


def make_dataset(n: int = 12, seed: int = 0) -> tuple[list[Question], list[dict]]:
    """Questions with two options and one kept canonical trace each; teacher pass rates spread over 0, 0.5, 1."""
    rng = random.Random(seed)
    questions, rows = [], []
    for i in range(n):
        gold = rng.choice("AB")
        q = Question(id=f"syn:train:{i}", source="syn", split="train", question=f"patient {i} presents with fever",
                     options={"A": "acute", "B": "chronic"}, answer=gold)
        questions.append(q)
        rate = [0.5, 0.5, 0.25, 1.0][i % 4]  # three in four are inside the informative band (0, 1)
        text = canonical_text(REASONING[gold], gold)
        rows.append(FilteredTrace(trace_id=f"t{i}", question_id=q.id, sample_index=0, teacher="teacher-x",
                                  prompt_name="student", prompt_hash="h", completion=text, predicted=gold, correct=True,
                                  format_ok=True, reasoning=REASONING[gold], answer=gold, text=text, pass_rate=rate,
                                  kept=True).row())
    return questions, rows


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    from train.random_model import build_random_model

    path = tmp_path_factory.mktemp("tiny-qwen2")
    build_random_model(path)
    return path


@pytest.fixture(scope="session")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("train-data")
    questions, rows = make_dataset()
    write_rows(questions, root / "questions.jsonl")
    write_rows(rows, root / "kept.jsonl")
    (root / "train.toml").write_text(CONFIG_TOML)
    import yaml

    from train.config import load_config

    light = load_config(root / "train.toml", LIGHT_PATCH).model_dump(mode="json")
    (root / "light.yaml").write_text(yaml.safe_dump(light))
    return root


@pytest.fixture(scope="session")
def decoupled(tmp_path_factory, tiny_model, files):
    """One decoupled run through the file-level entry point, with a spy around the real GRPO stage that snapshots
    both adapters' tensors just before and just after it."""
    import train.grpo as grpo_module
    import train.recipe as recipe
    from train.modeling import adapter_state

    snapshots = {}

    real_train_grpo = grpo_module.train_grpo

    def spy(model, *args, **kwargs):
        snapshots["before"] = {n: adapter_state(model, n) for n in ("reasoning", "reward")}
        stats = real_train_grpo(model, *args, **kwargs)
        snapshots["after"] = {n: adapter_state(model, n) for n in ("reasoning", "reward")}
        return stats

    out = tmp_path_factory.mktemp("runs") / "decoupled"
    grpo_module.train_grpo = spy
    try:
        report = recipe.run_train_decoupled(files / "kept.jsonl", str(tiny_model), out, config=files / "train.toml",
                                            questions=files / "questions.jsonl")
    finally:
        grpo_module.train_grpo = real_train_grpo
    return {"dir": out, "report": report, "snapshots": snapshots}


# ------------------------------------------------------------------ the recipe


@pytest.mark.slow
def test_each_stage_runs_and_writes_config_logs_card(decoupled):
    run_dir, report = decoupled["dir"], decoupled["report"]
    assert [s["stage"] for s in report.extra["stages"]] == ["sft", "calibrate", "grpo"]
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] == "done" and run["active"] == ["reasoning", "reward"] and run["warnings"] == []
    for name in ("reasoning", "reward", "combined"):
        assert (run_dir / "adapters" / name / "adapter_model.safetensors").exists()
    assert (run_dir / "merged" / "model.safetensors").exists()
    config = json.loads((run_dir / "config.json").read_text())
    assert config["grpo"]["num_generations"] == 4 and config["sft"]["max_steps"] == 60  # resolved from the TOML
    assert config["grpo"]["beta"] == 0.04 and config["grpo"]["difficulty"] == "student_band"  # defaults, written out
    logs = [json.loads(line) for line in (run_dir / "logs" / "train.jsonl").read_text().splitlines()]
    assert {e["stage"] for e in logs} == {"sft", "grpo"}
    assert any("reward" in e for e in logs if e["stage"] == "grpo")
    card = (run_dir / "README.md").read_text()
    assert "base_model:" in card and "reasoning" in card and "cat" in card
    assert not list(run_dir.parent.glob(".*partial*"))  # built aside, renamed into place


@pytest.mark.slow
def test_reasoning_adapter_is_bit_identical_after_grpo_and_reward_adapter_moves(decoupled):
    import torch
    from safetensors.torch import load_file

    before, after = decoupled["snapshots"]["before"], decoupled["snapshots"]["after"]
    assert before["reasoning"] and set(before["reasoning"]) == set(after["reasoning"])
    for key, tensor in before["reasoning"].items():
        assert torch.equal(tensor, after["reasoning"][key]), key
    changed = [k for k in before["reward"] if not torch.equal(before["reward"][k], after["reward"][k])]
    # 3 steps: lora_B moves at step 1, lora_A once B is non-zero.
    assert any("lora_A" in k for k in changed) and any("lora_B" in k for k in changed)
    assert decoupled["report"].extra["checks"]["reasoning_unchanged"] is True
    # what was saved as the reasoning adapter is exactly what GRPO was run on top of
    saved = load_file(str(decoupled["dir"] / "adapters" / "reasoning" / "adapter_model.safetensors"))
    assert len(saved) == len(before["reasoning"])
    for key, tensor in saved.items():
        assert torch.equal(tensor, before["reasoning"][key]), key


@pytest.mark.slow
def test_kl_is_measured_against_base_plus_reasoning_zero_at_first_step_then_positive(decoupled):
    logs = [json.loads(line) for line in (decoupled["dir"] / "logs" / "train.jsonl").read_text().splitlines()]
    kls = [e["kl"] for e in logs if e["stage"] == "grpo" and "kl" in e]
    assert len(kls) == 3
    assert 0.0 <= kls[0] < 1e-4  # the fresh reward adapter (B = 0) adds nothing: policy == reference
    assert kls[-1] > 1e-4  # once the reward adapter moved, the policy left its reference
    grpo = next(s for s in decoupled["report"].extra["stages"] if s["stage"] == "grpo")
    assert grpo["kl_reference"] == ["reasoning"] and grpo["steps_done"] == 3


@pytest.mark.slow
def test_a_reference_without_the_reasoning_adapter_shows_a_clearly_positive_first_kl(decoupled, tiny_model, files,
                                                                                     tmp_path):
    """The check above can fail: with the base model as the reference (reasoning adapter off too), the same first
    GRPO step on the same SFT'd model logs a large KL."""
    from peft import PeftModel

    from train.config import load_config
    from train.data import load_training_data
    from train.grpo import train_grpo
    from train.modeling import load_base, read_log
    from train.recipe import add_reward_adapter

    config = load_config(files / "train.toml", {"grpo": {"max_steps": 1}})
    prompts = load_training_data(files / "kept.jsonl", files / "questions.jsonl", band=None).grpo
    first_kl = {}
    for name, reference in (("base", []), ("base+reasoning", ["reasoning"])):
        base, tokenizer = load_base(str(tiny_model), config)
        model = PeftModel.from_pretrained(base, str(decoupled["dir"] / "adapters" / "reasoning"),
                                          adapter_name="reasoning", is_trainable=False)
        add_reward_adapter(model, config)
        log = tmp_path / f"{len(reference)}.jsonl"
        train_grpo(model, tokenizer, prompts, config.grpo, seed=0, work_dir=tmp_path / "work", log_path=log,
                   reference=reference)
        first_kl[name] = next(e["kl"] for e in read_log(log) if "kl" in e)
    assert first_kl["base+reasoning"] < 1e-4
    assert first_kl["base"] > 0.1, first_kl  # measured 9.1


@pytest.mark.slow
def test_student_pass_rates_choose_the_grpo_set_and_are_recorded(decoupled):
    run = json.loads((decoupled["dir"] / "run.json").read_text())
    chosen = run["difficulty"]
    assert chosen["by"] == "student" and chosen["samples_per_question"] == 8 and chosen["candidates"] == 12
    rates = chosen["pass_rates"]
    assert len(rates) == 12 and all(r * 8 == int(r * 8) for r in rates.values())  # k = 8 samples each
    inside = [q for q, r in rates.items() if 0.0 < r < 1.0]
    assert chosen["kept"] == len(inside) and 0 < len(inside) < 12  # measured: 10 kept, 2 never answered right
    grpo = next(s for s in run["stages"] if s["stage"] == "grpo")
    assert grpo["prompts"] == len(inside)
    calibrate = next(s for s in run["stages"] if s["stage"] == "calibrate")
    assert calibrate["samples"] == 96 and calibrate["kept"] == len(inside)


def _config_with(tmp_path, replacements: dict[str, str], extra: str = "") -> Path:
    text = CONFIG_TOML
    for old, new in replacements.items():
        assert old in text, old
        text = text.replace(old, new)
    path = tmp_path / "config.toml"
    path.write_text(text + extra)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("difficulty, explained", [
    ("teacher_band", "GRPO changed none of the 28 tensors of adapter 'reward' in 3 step(s): every group's completions "
                     "got equal rewards at every step"),
    ("student_band", "none of the 12 candidates had a student pass rate strictly inside (0.0, 1.0) over 8 samples each"),
])
def test_a_run_that_learned_nothing_ends_no_learning_signal_with_an_explanation(difficulty, explained, tiny_model,
                                                                                 files, tmp_path, cli):
    """One SFT step leaves the random model unable to write the format: every completion scores 0. With the
    teacher's band GRPO runs and moves nothing; with the student's, no question is informative and GRPO is skipped."""
    config = _config_with(tmp_path, {"max_steps = 60": "max_steps = 1",
                                            "[grpo]\n": f"[grpo]\ndifficulty = \"{difficulty}\"\n"})
    out = tmp_path / "run"
    proc = cli("train-decoupled", "--data", files / "kept.jsonl", "--questions", files / "questions.jsonl",
               "--base-model", tiny_model, "--output-dir", out, "--config", config)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "no_learning_signal" in proc.stderr and explained in " ".join(proc.stderr.split())
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "no_learning_signal" and explained in run["explanation"]
    if difficulty == "teacher_band":
        assert run["checks"]["reward_tensors_changed"] == 0 and run["checks"]["reward_tensors"] == 28
        logs = [json.loads(line) for line in (out / "logs" / "train.jsonl").read_text().splitlines()]
        assert all(e["grad_norm"] == 0.0 for e in logs if e["stage"] == "grpo" and "grad_norm" in e)
        fired = {w["metric"]: w for w in run["warnings"]}
        assert {"frac_reward_zero_std", "reward_std", "no_answer"} <= set(fired)
        assert fired["frac_reward_zero_std"]["step"] == 3 and fired["frac_reward_zero_std"]["value"] == 1.0  # patience 3
        assert "run-health warnings" in proc.stderr and "frac_reward_zero_std" in proc.stderr
    else:
        assert run["difficulty"]["kept"] == 0 and set(run["difficulty"]["pass_rates"].values()) == {0.0}
        assert run["active"] == ["reasoning"] and [s["stage"] for s in run["stages"]] == ["sft", "calibrate"]


@pytest.mark.slow
def test_stop_on_ends_the_run_early_with_status_stopped(tiny_model, files, tmp_path, cli):
    config = _config_with(tmp_path, {"max_steps = 60": "max_steps = 1",
                                            "[grpo]\n": "[grpo]\ndifficulty = \"teacher_band\"\n"},
                          extra="[health]\npatience = 1\n")
    out = tmp_path / "run"
    proc = cli("train-decoupled", "--data", files / "kept.jsonl", "--questions", files / "questions.jsonl",
               "--base-model", tiny_model, "--output-dir", out, "--config", config, "--stop-on", "frac_reward_zero_std")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "stopped" in proc.stderr and "stopped at GRPO step 1: frac_reward_zero_std = 1" in proc.stderr
    run = json.loads((out / "run.json").read_text())
    assert run["status"] == "stopped"
    assert run["stopped_by"]["metric"] == "frac_reward_zero_std" and run["stopped_by"]["step"] == 1
    assert run["stopped_by"]["value"] == 1.0 and run["stopped_by"]["threshold"] == 0.9
    grpo = next(s for s in run["stages"] if s["stage"] == "grpo")
    assert grpo["steps"] == 3 and grpo["steps_done"] == 1
    steps = {e["step"] for e in map(json.loads, (out / "logs" / "train.jsonl").read_text().splitlines())
             if e["stage"] == "grpo"}
    assert steps == {1}
    assert json.loads((out / "config.json").read_text())["health"]["stop_on"] == ["frac_reward_zero_std"]


@pytest.mark.slow
def test_sft_examples_all_longer_than_max_length_are_refused_before_training(tiny_model, files, tmp_path, cli):
    """Issue 14: every prompt fills max_length, so TRL would drop every example and fail inside torch
    (`num_samples=0`). The run refuses first, saying how long the prompts are; nothing is written."""
    config = _config_with(tmp_path, {"max_length = 256": "max_length = 16"})
    out = tmp_path / "run"
    proc = cli("train-decoupled", "--data", files / "kept.jsonl", "--questions", files / "questions.jsonl",
               "--base-model", tiny_model, "--output-dir", out, "--config", config)
    assert proc.returncode == 2, proc.stderr[-3000:]
    message = " ".join(proc.stderr.split())
    assert "every SFT example's prompt fills sft.max_length = 16 tokens (prompt tokens: min " in message
    assert "num_samples" not in message and "Traceback" not in message
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


@pytest.mark.slow
def test_both_active_and_cat_combined_give_the_same_logits(decoupled, tiny_model):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from train.compose import load_adapters

    run_dir = decoupled["dir"]
    tok = AutoTokenizer.from_pretrained(str(tiny_model))
    batch = tok(["<think>\nfever cough\n</think>\n<answer>A</answer>", "patient presents with chest pain"],
                return_tensors="pt", padding=True)

    def logits(model):
        model.eval()
        with torch.no_grad():
            return model(**batch).logits

    def base(dtype):
        return AutoModelForCausalLM.from_pretrained(str(tiny_model), dtype=dtype)

    def compare(dtype):
        both = logits(load_adapters(base(dtype), {n: run_dir / "adapters" / n for n in ("reasoning", "reward")}))
        combined = logits(PeftModel.from_pretrained(base(dtype), str(run_dir / "adapters" / "combined")))
        reasoning_only = logits(load_adapters(base(dtype), {"reasoning": run_dir / "adapters" / "reasoning"}))
        merged = logits(AutoModelForCausalLM.from_pretrained(str(run_dir / "merged"), dtype=dtype))
        return both, combined, reasoning_only, merged

    # float64: the two computations are the same function, so they agree far inside 1e-5
    both, combined, reasoning_only, merged = compare(torch.float64)
    assert (both - combined).abs().max().item() < 1e-5
    assert (both - reasoning_only).abs().max().item() > 1e-3  # the reward adapter really contributes
    # float32 (how it runs): rounding only, relative to the logits' scale (~10 with this model's wide init); the
    # merged model's weights were rounded to float32 when saved, so it is compared here only
    both, combined, _, merged = compare(torch.float32)
    scale = both.abs().max().item()
    assert (both - combined).abs().max().item() < 1e-5 * scale
    assert (both - merged).abs().max().item() < 1e-5 * scale


@pytest.mark.slow
def test_eval_cli_scores_a_run(decoupled, tiny_model, files, tmp_path, cli):
    out = tmp_path / "eval"
    proc = cli("eval", "--model", decoupled["dir"], "--questions", files / "questions.jsonl", "--output-dir", out,
               "--config", files / "train.toml", "--limit", "6")
    assert proc.returncode == 0, proc.stderr
    rows = json.loads((out / "comparison.json").read_text())
    assert len(rows) == 1 and rows[0]["run"] == "decoupled" and rows[0]["n"] == 6
    assert rows[0]["grpo_steps"] == 3 and rows[0]["backend"] == "transformers"
    assert rows[0]["format_compliance"] > 0  # SFT taught the random model the format (the base model never has it)
    items = [json.loads(line) for line in (out / "decoupled" / "items.jsonl").read_text().splitlines()]
    assert len(items) == 6
    # scores agree with the strict parser on the stored outputs
    from train.rewards import parse_completion

    for item in items:
        parsed = parse_completion(item["output"])
        assert item["format_ok"] == parsed.format_ok and item["predicted"] == parsed.answer
    assert rows[0]["format_compliance"] == round(sum(i["format_ok"] for i in items) / 6, 4)
    assert (out / "plots" / "stability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the same model named as base + explicit adapter folders (all active) generates the same outputs
    explicit = tmp_path / "eval-explicit"
    proc = cli("eval", "--model", tiny_model, "--adapters", decoupled["dir"] / "adapters" / "reasoning",
               "--adapters", decoupled["dir"] / "adapters" / "reward", "--questions", files / "questions.jsonl",
               "--output-dir", explicit, "--config", files / "train.toml", "--limit", "6")
    assert proc.returncode == 0, proc.stderr
    name = tiny_model.name
    again = [json.loads(line) for line in (explicit / name / "items.jsonl").read_text().splitlines()]
    assert [i["output"] for i in again] == [i["output"] for i in items]
    assert json.loads((explicit / "comparison.json").read_text())[0]["grpo_steps"] == 0  # no run folder, no logs


@pytest.mark.slow
def test_experiment_produces_five_rows_stability_figure_and_significance(tiny_model, files, tmp_path, cli):
    out = tmp_path / "exp"
    proc = cli("experiment", "--data", files / "kept.jsonl", "--questions", files / "questions.jsonl",
               "--base-model", tiny_model, "--output-dir", out, "--config", files / "light.yaml")
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = json.loads((out / "comparison.json").read_text())
    assert [r["run"] for r in rows] == ["base", "sft", "grpo", "monolithic", "decoupled"]
    assert all(r["n"] == 3 for r in rows)  # 25% of 12 questions held out, the same for every run
    by = {r["run"]: r for r in rows}
    assert by["base"]["grpo_steps"] == 0 and by["sft"]["grpo_steps"] == 0
    assert by["grpo"]["grpo_steps"] == by["monolithic"]["grpo_steps"] == by["decoupled"]["grpo_steps"] == 2
    assert by["sft"]["final_sft_loss"] is not None and by["grpo"]["final_sft_loss"] is None
    # the random base model never writes the format: GRPO alone has nothing to learn from, and says so
    assert by["grpo"]["status"] == "no_learning_signal" and by["base"]["status"] == "done"
    # each GRPO configuration's KL is measured against its own reference, which it equals at the first step
    references = {m: json.loads((out / "runs" / m / "run.json").read_text())["stages"][-1]["kl_reference"]
                  for m in ("grpo", "monolithic", "decoupled")}
    assert references == {"grpo": [], "monolithic": ["policy_ref"], "decoupled": ["reasoning"]}
    for mode in references:
        assert 0.0 <= by[mode]["kl_first"] < 1e-4, (mode, by[mode]["kl_first"])
    # accuracy and format with 95% Wilson intervals; McNemar against decoupled, recomputed from the scored items
    from train.compare import mcnemar_exact

    items = {m: {i["question_id"]: i for i in map(json.loads, (out / "eval" / m / "items.jsonl").read_text().splitlines())}
             for m in by}
    assert by["decoupled"]["significant"] == "(reference)"
    for mode in ("base", "sft", "grpo", "monolithic"):
        row = by[mode]
        lo, hi = row["accuracy_ci"]
        assert 0.0 <= lo <= row["accuracy"] <= hi <= 1.0 and hi - lo > 0.2  # 3 questions: a wide interval
        test = row["vs_decoupled"]["accuracy"]
        b = sum(1 for q, i in items["decoupled"].items() if i["correct"] and not items[mode][q]["correct"])
        c = sum(1 for q, i in items["decoupled"].items() if items[mode][q]["correct"] and not i["correct"])
        assert (test["reference_only"], test["rival_only"]) == (b, c)
        assert test["p"] == round(mcnemar_exact(b, c), 4)
        assert row["significant"] == "no"  # nothing is significant on 3 questions
    table = (out / "comparison.md").read_text()
    assert table.count("\n| ") == 5 and "accuracy [95% CI]" in table and "McNemar p (accuracy)" in table
    assert "significant (p < 0.05)" in table
    assert (out / "plots" / "stability.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    held = set(json.loads((out / "experiment.json").read_text())["held_out"])
    assert len(held) == 3
    for mode in ("sft", "grpo", "monolithic", "decoupled"):
        run_dir = out / "runs" / mode
        assert (run_dir / "config.json").exists() and "## Evaluation" in (run_dir / "README.md").read_text()
        assert (run_dir / "logs" / "train.jsonl").exists()
        run = json.loads((run_dir / "run.json").read_text())
        assert run["data"]["questions"] == 9  # the held-out questions are not trained on
    # same budget: every trained run did the same number of SFT / GRPO steps
    stages = {m: json.loads((out / "runs" / m / "run.json").read_text())["stages"] for m in by}
    assert {s["steps"] for m in stages for s in stages[m] if s["stage"] == "sft"} == {6}
    assert {s["steps"] for m in stages for s in stages[m] if s["stage"] == "grpo"} == {2}
    # resumable: a second call reuses the finished runs, whatever their status
    again = cli("experiment", "--data", files / "kept.jsonl", "--questions", files / "questions.jsonl",
                "--base-model", tiny_model, "--output-dir", out, "--config", files / "light.yaml")
    assert again.returncode == 0
    assert set(json.loads((out / "report.json").read_text())["extra"]["runs"].values()) == {"reused"}


# ------------------------------------------------------------------ bad config: clear error, nothing trained


@pytest.mark.parametrize("patch, expected", [
    ("[grpo]\nnum_generation = 4\n", "grpo.num_generation: unknown key"),
    ("[grpo]\nnum_generations = 3\nbatch_size = 4\n", "must be divisible by num_generations"),
    ("[sft]\nlearning_rate = -1\n", "sft.learning_rate: Input should be greater than 0"),
    ("[grpo]\nbeta = -0.1\n", "grpo.beta: Input should be greater than or equal to 0"),
    ("[grpo]\ndifficulty = 'student'\n", "grpo.difficulty"),
    ("[health]\nstop_on = ['nope']\n", "health.stop_on.0"),
    ("[reasoning]\nr = 'eight'\n", "reasoning.r"),
    ("[grpo\n", "not valid TOML"),
])
def test_bad_config_is_a_clear_error_before_training(patch, expected, files, tmp_path, cli):
    config = tmp_path / "bad.toml"
    config.write_text(patch)
    out = tmp_path / "run"
    # the base model does not exist: reaching the point of loading it would be a different error
    proc = cli("train-decoupled", "--data", files / "kept.jsonl", "--questions", files / "questions.jsonl",
               "--base-model", tmp_path / "no-such-model", "--output-dir", out, "--config", config)
    assert proc.returncode == 2
    assert expected in proc.stderr and str(config) in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


def test_yaml_and_toml_configs_resolve_the_same(tmp_path):
    from train.config import load_config

    (tmp_path / "c.toml").write_text("[grpo]\nnum_generations = 4\nbatch_size = 8\n[reward]\nr = 2\n")
    (tmp_path / "c.yaml").write_text("grpo:\n  num_generations: 4\n  batch_size: 8\nreward:\n  r: 2\n")
    a, b = load_config(tmp_path / "c.toml"), load_config(tmp_path / "c.yaml")
    assert a == b and a.grpo.num_generations == 4 and a.reward.r == 2 and a.reasoning.r == 16


def test_bad_data_is_a_clear_error_before_training(files, tmp_path, cli):
    bad = tmp_path / "kept.jsonl"
    bad.write_text((files / "kept.jsonl").read_text().replace('"question_id": "syn:train:3"', '"question_id": "nope"'))
    out = tmp_path / "run"
    proc = cli("train-decoupled", "--data", bad, "--questions", files / "questions.jsonl",
               "--base-model", tmp_path / "no-such-model", "--output-dir", out)
    assert proc.returncode == 2
    assert "trace t3" in proc.stderr and "'nope'" in proc.stderr and str(bad) in proc.stderr
    assert not out.exists()


@pytest.mark.slow
@pytest.mark.shared_data
def test_eval_reads_a_real_benchmark_through_sources(shared_data, decoupled, files, tmp_path, cli):
    """`curate eval --source medqa` on the real MedQA test file: questions come through `sources`, get the student
    prompt, and are scored (the tiny model is random, so only the plumbing and the counts are checked)."""
    out = tmp_path / "eval"
    proc = cli("eval", "--model", decoupled["dir"], "--source", "medqa", "--questions",
               shared_data / "benchmarks" / "medqa" / "test.4_options.jsonl", "--limit", "3",
               "--config", files / "train.toml", "--output-dir", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    items = [json.loads(line) for line in (out / "decoupled" / "items.jsonl").read_text().splitlines()]
    assert len(items) == 3 and all(i["question_id"].startswith("medqa:test:") for i in items)
    assert all(i["gold"] in "ABCD" for i in items)
    assert json.loads((out / "comparison.json").read_text())[0]["n"] == 3


def test_missing_base_model_is_a_clear_error(files, tmp_path, cli):
    out = tmp_path / "run"
    proc = cli("train-decoupled", "--data", files / "kept.jsonl", "--questions", files / "questions.jsonl",
               "--base-model", tmp_path / "no-such-model", "--output-dir", out, "--config", files / "train.toml")
    assert proc.returncode == 2 and "cannot load the base model" in proc.stderr and "Traceback" not in proc.stderr
    assert not out.exists() and not list(tmp_path.glob(".*partial*"))


# ------------------------------------------------------------------ curate's own published data (issue 21)

# A few steps of each stage on the demo's long prompts: the plumbing, not learning.
PUBLISHED_TOML = """
seed = 0
[reasoning]
r = 4
alpha = 8
dropout = 0.0
[reward]
r = 2
alpha = 4
dropout = 0.0
[sft]
max_steps = 2
batch_size = 2
max_length = 1024
[grpo]
max_steps = 1
batch_size = 2
num_generations = 2
max_completion_length = 8
difficulty = "all"
[eval]
max_new_tokens = 4
[export]
merged = false
"""


def _published_rows(folder: Path) -> list[dict]:
    import pyarrow.parquet as pq

    return [r for f in sorted((folder / "data").glob("*.parquet")) for r in pq.read_table(f).to_pylist()]


def _evaluation_counts(rows: list[dict]) -> str:
    from collections import Counter

    splits = Counter(":".join(r["question_id"].split(":")[:2]) for r in rows)
    return ", ".join(f"{s} {n}" for s, n in sorted(splits.items()))


@pytest.fixture(scope="session")
def published_run(finished_run, tiny_model, tmp_path_factory):
    """`curate train-decoupled --data FOLDER` on the folder a real demo run published (every stage real)."""
    from tests.conftest import run_cli

    root = tmp_path_factory.mktemp("published-train")
    (root / "tiny.toml").write_text(PUBLISHED_TOML)
    out = root / "run"
    proc = run_cli("train-decoupled", "--data", finished_run / "publish", "--base-model", tiny_model,
                   "--output-dir", out, "--config", root / "tiny.toml")
    return {"dir": out, "proc": proc, "config": root / "tiny.toml", "folder": finished_run / "publish"}


@pytest.mark.slow
def test_train_decoupled_trains_on_a_published_folder_and_warns_it_is_an_evaluation_set(published_run):
    """Issue 21: `--data runs/demo/publish` said `unknown table format`, and the published rows failed validation
    (`options.D Input should be a valid string`: the Parquet struct of options has every row's letters, so a
    PubMedQA row carries D and E as null). The folder trains, and its card's evaluation-set tag is warned about."""
    proc, run_dir, folder = published_run["proc"], published_run["dir"], published_run["folder"]
    rows = _published_rows(folder)
    assert any(r["options"].get("D") is None for r in rows if r["source"] == "pubmedqa")  # the case that failed
    assert proc.returncode in (0, 1), proc.stderr[-3000:]  # 1: the random model learned nothing (no_learning_signal)
    run = json.loads((run_dir / "run.json").read_text())
    assert run["status"] in ("done", "no_learning_signal")
    assert run["data"]["sft_examples"] == len(rows) and run["data"]["path"] == str(folder)
    assert [s["stage"] for s in run["stages"]][:1] == ["sft"] and run["stages"][0]["steps"] == 2
    expected = (f"{folder / 'README.md'} says this dataset is an evaluation set (benchmark evaluation items, not "
                f"training data): {len(rows)} of {len(rows)} rows are items of {_evaluation_counts(rows)}")
    warned = next(w for w in run["warnings"] if w["metric"] == "evaluation_set")
    assert warned["stage"] == "data" and warned["message"].startswith(expected) and warned["value"] == len(rows)
    assert expected in " ".join(proc.stderr.split())


def test_train_decoupled_reads_a_quoted_glob_of_published_files(finished_run, tmp_path, cli):
    """`--data 'runs/demo/publish/data/train-*.parquet'` (as the README gives it) reads every file it matches: the
    rows validate and the evaluation-set warning comes before the model is loaded (here: a missing one, exit 2)."""
    folder = finished_run / "publish"
    rows = _published_rows(folder)
    proc = cli("train-decoupled", "--data", str(folder / "data" / "train-*.parquet"), "--base-model",
               tmp_path / "no-such-model", "--output-dir", tmp_path / "run")
    message = " ".join(proc.stderr.split())
    assert proc.returncode == 2 and "cannot load the base model" in message, proc.stderr[-2000:]
    assert f"{len(rows)} of {len(rows)} rows are items of {_evaluation_counts(rows)}" in message
    assert "options.D" not in message and "unknown table format" not in message
    nothing = cli("train-decoupled", "--data", str(folder / "data" / "nope-*.parquet"), "--base-model",
                  tmp_path / "no-such-model", "--output-dir", tmp_path / "run")
    assert nothing.returncode == 2 and "nope-*.parquet: no file matches this pattern" in nothing.stderr


@pytest.mark.slow
def test_eval_warns_when_its_questions_were_in_the_training_data(published_run, finished_run, tmp_path, cli):
    """Issue 21: `curate eval` on questions the run trained on says how many (the way `decontaminate --reverse`
    finds benchmark items in a training file). Two published questions and one the run never saw."""
    from curate.io import read_rows

    trained = list(dict.fromkeys(r["question_id"] for r in _published_rows(published_run["folder"])))[:2]
    questions = {r["id"]: r for r in read_rows(finished_run / "questions.parquet")}
    unseen = next(q for q in questions if q not in {r["question_id"] for r in _published_rows(published_run["folder"])})
    write_rows([questions[q] for q in [*trained, unseen]], tmp_path / "eval.jsonl")
    proc = cli("eval", "--model", published_run["dir"], "--questions", tmp_path / "eval.jsonl", "--output-dir",
               tmp_path / "eval", "--config", published_run["config"])
    message = " ".join(proc.stderr.split())
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (f"2 of 3 evaluation questions were in the training data of {published_run['dir']} "
            f"({published_run['folder']}): {trained[0]}, {trained[1]};") in message
    assert json.loads((tmp_path / "eval" / "comparison.json").read_text())[0]["n"] == 3


@pytest.mark.slow
def test_the_cards_trl_snippet_runs_as_printed_on_a_cpu(finished_run, tiny_model, tmp_path):
    """Issue 21: the card's TRL snippet died on a CPU (`Your setup doesn't support bf16/gpu`). Run as printed, with
    the tiny model for the model name, the published folder for the repo id and one step of one row (offline)."""
    import re
    import subprocess
    import sys

    card = (finished_run / "publish" / "README.md").read_text()
    code = re.search(r"### How to train on it \(TRL\)\n\n```python\n(.*?)```", card, re.S).group(1)
    model = re.search(r'^model = "([^"]+)"', code, re.M).group(1)
    repo = re.search(r'load_dataset\("([^"]+)", split=', code).group(1)
    assert "SFTConfig(" in code
    code = (code.replace(f'"{model}"', repr(str(tiny_model))).replace(f'"{repo}"', repr(str(finished_run / "publish")))
            .replace("SFTConfig(", "SFTConfig(max_steps=1, per_device_train_batch_size=1, report_to='none', "))
    (tmp_path / "snippet.py").write_text(code)
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": "", "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
    proc = subprocess.run([sys.executable, "snippet.py"], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "train_runtime" in proc.stdout + proc.stderr
