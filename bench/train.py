"""Benchmark of the training recipe: tokens/s, wall time and peak memory per stage, side by side in one run.

    --compare kl     (default) the decoupled GRPO stage with the KL term off (beta 0, the baseline) and on (beta
                     0.04, reference = base + frozen reasoning adapter: one extra no-grad forward per generation
                     batch, no second model). SFT runs once; each GRPO run starts from the same reasoning adapter.
    --compare modes  monolithic (baseline: one adapter, SFT then GRPO) vs decoupled (reasoning SFT, then GRPO of a
                     second adapter over the frozen first), whole runs.

The model is randomly initialised with a shape built in code (no download): `qwen2.5-0.5b` is Qwen2.5-0.5B's real
architecture (24 layers, hidden 896, vocab 151,936); `reduced` keeps its width and vocabulary with 4 layers (what
a CPU can step through in minutes); `tiny` is the test model. Data is synthetic, with completions of about
`--completion-words` words; GRPO takes every question (no student calibration: a random model answers nothing).
Each measured configuration runs in its own process, so its peak memory (GPU: max allocated; CPU: peak RSS) is
its own.

    python bench/train.py --shape reduced --sft-steps 2 --grpo-steps 2
    python bench/train.py --shape qwen2.5-0.5b --sft-steps 20 --grpo-steps 10     # on a GPU
    python bench/train.py --compare modes --shape reduced --sft-steps 4 --grpo-steps 2
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

KL_BETA = 0.04
#: worker name -> what it runs. kl: "sft" once, then "grpo-beta0" (baseline) and "grpo-kl"; modes: two whole runs.
WORKERS = {"kl": ("grpo-beta0", "grpo-kl"), "modes": ("monolithic", "decoupled")}


def shapes() -> dict[str, dict | None]:
    from train.random_model import QWEN25_05B_SHAPE

    return {"qwen2.5-0.5b": QWEN25_05B_SHAPE, "reduced": {**QWEN25_05B_SHAPE, "num_hidden_layers": 4}, "tiny": None}


def make_data(root: Path, n: int, words: int, seed: int = 0) -> tuple[Path, Path]:
    from curate.io import write_rows
    from curate.records import FilteredTrace, Question, canonical_text
    from train.random_model import _WORDS

    rng = random.Random(seed)
    questions, rows = [], []
    for i in range(n):
        gold = rng.choice("ABCD")
        q = Question(id=f"bench:train:{i}", source="bench", split="train",
                     question=" ".join(rng.choice(_WORDS) for _ in range(60)) + "?",
                     options={k: " ".join(rng.choice(_WORDS) for _ in range(4)) for k in "ABCD"}, answer=gold)
        reasoning = " ".join(rng.choice(_WORDS) for _ in range(words))
        text = canonical_text(reasoning, gold)
        questions.append(q)
        rows.append(FilteredTrace(trace_id=f"b{i}", question_id=q.id, sample_index=0, teacher="bench", prompt_name="p",
                                  prompt_hash="h", completion=text, reasoning=reasoning, answer=gold, text=text,
                                  correct=True, format_ok=True, pass_rate=0.5, kept=True).row())
    write_rows(questions, root / "questions.jsonl")
    write_rows(rows, root / "kept.jsonl")
    return root / "kept.jsonl", root / "questions.jsonl"


def bench_config(args: argparse.Namespace, beta: float):
    from train.config import load_config

    return load_config(None, {
        "seed": 0,
        "reasoning": {"r": 16, "alpha": 32}, "reward": {"r": 8, "alpha": 16},
        "sft": {"max_steps": args.sft_steps, "batch_size": args.batch, "max_length": args.max_length,
                "learning_rate": 1e-4},
        "grpo": {"max_steps": args.grpo_steps, "batch_size": args.generations, "num_generations": args.generations,
                 "max_completion_length": args.completion_tokens, "learning_rate": 1e-5, "beta": beta,
                 "difficulty": "all"},
        "export": {"combined": False},
    })


def first_kl(log_path: Path) -> float | None:
    from train.modeling import read_log

    return next((e["kl"] for e in read_log(log_path) if e.get("stage") == "grpo" and "kl" in e), None)


def worker(args: argparse.Namespace) -> None:
    """One measured configuration, in this process; writes its stages (and the first logged KL) to --result."""
    from train.recipe import run_train_decoupled

    out = Path(args.out)
    if args.worker in ("sft", *WORKERS["modes"]):
        report = run_train_decoupled(args.data, args.model, out, config=bench_config(args, KL_BETA),
                                     questions=args.questions, mode=args.worker)
        stages, kl = report.extra["stages"], first_kl(out / "logs" / "train.jsonl")
    else:  # a decoupled GRPO stage on the reasoning adapter the sft worker wrote
        from peft import PeftModel

        from train.data import load_training_data
        from train.grpo import train_grpo
        from train.modeling import load_base
        from train.recipe import REASONING, add_reward_adapter

        config = bench_config(args, KL_BETA if args.worker == "grpo-kl" else 0.0)
        base, tokenizer = load_base(args.model, config)
        model = PeftModel.from_pretrained(base, str(Path(args.reasoning) / "adapters" / REASONING),
                                          adapter_name=REASONING, is_trainable=False)
        add_reward_adapter(model, config)
        prompts = load_training_data(args.data, args.questions, band=None).grpo
        log = out / "train.jsonl"
        stages = [train_grpo(model, tokenizer, prompts, config.grpo, seed=config.seed, work_dir=out / "trainer",
                             log_path=log, reference=[REASONING])]
        kl = first_kl(log)
    Path(args.result).write_text(json.dumps({"stages": stages, "first_kl": kl}))


def run_worker(name: str, root: Path, args: argparse.Namespace, **paths: Path) -> dict:
    result = root / f"result-{name}.json"
    cmd = [sys.executable, __file__, "--worker", name, "--out", str(root / f"run-{name}"), "--result", str(result),
           *[f"--{k}={v}" for k, v in paths.items()],
           *[f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
             if k in ("sft_steps", "grpo_steps", "batch", "generations", "completion_tokens", "max_length")]]
    subprocess.run(cmd, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return json.loads(result.read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--compare", choices=sorted(WORKERS), default="kl")
    parser.add_argument("--shape", choices=["qwen2.5-0.5b", "reduced", "tiny"], default="reduced")
    parser.add_argument("--sft-steps", type=int, default=2)
    parser.add_argument("--grpo-steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--completion-words", type=int, default=120)
    parser.add_argument("--completion-tokens", type=int, default=64, help="GRPO max_completion_length")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--worker", choices=["sft", *WORKERS["kl"], *WORKERS["modes"]], help=argparse.SUPPRESS)
    for hidden in ("--data", "--questions", "--model", "--reasoning", "--out", "--result"):
        parser.add_argument(hidden, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        worker(args)
        return

    import torch

    from train.random_model import build_random_model

    device = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    with tempfile.TemporaryDirectory(prefix="bench-train-") as tmp:
        root = Path(tmp)
        data, questions = make_data(root, args.examples, args.completion_words)
        model_dir = root / "model"
        model, _ = build_random_model(model_dir, shape=shapes()[args.shape])
        params = sum(p.numel() for p in model.parameters()) / 1e6
        del model
        paths = {"data": data, "questions": questions, "model": model_dir}
        results = {}
        if args.compare == "kl":
            results["sft"] = run_worker("sft", root, args, **paths)
            paths["reasoning"] = root / "run-sft"
        for name in WORKERS[args.compare]:
            results[name] = run_worker(name, root, args, **paths)

    print(f"\nshape {args.shape} ({params:.0f}M params, random init), {device}, torch {torch.__version__}")
    print(f"SFT {args.sft_steps} steps x batch {args.batch} (max_length {args.max_length}); "
          f"GRPO {args.grpo_steps} steps x {args.generations} generations (max_completion_length {args.completion_tokens})")
    baseline, measured = WORKERS[args.compare]
    print(f"baseline: {baseline}; compared: {measured}" + (f" (beta {KL_BETA})" if args.compare == "kl" else "") + "\n")
    header = (f"{'stage':<6} {'config':<11} {'tokens':>8} {'wall s':>8} {'cpu s':>8} {'tokens/s':>9} {'peak MiB':>9} "
              f"{'memory':<19} {'wall ratio':>10} {'cpu ratio':>9} {'peak ratio':>10} {'first KL':>9}")
    print(header)
    print("-" * len(header))
    for stage in ("sft", "grpo"):
        base = next((s for s in results[baseline]["stages"] if s["stage"] == stage), None)
        if base is None:
            continue
        for name in (baseline, measured):
            s = next(x for x in results[name]["stages"] if x["stage"] == stage)
            kl = results[name]["first_kl"] if stage == "grpo" else None
            print(f"{stage:<6} {name:<11} {s.get('tokens', 0):>8} {s['wall_s']:>8.2f} {s['cpu_s']:>8.2f} "
                  f"{s.get('tokens_per_s', 0):>9.1f} {s['peak_memory_mib']:>9.0f} {s['memory_kind']:<19} "
                  f"{s['wall_s'] / base['wall_s']:>10.2f} {s['cpu_s'] / base['cpu_s']:>9.2f} "
                  f"{s['peak_memory_mib'] / base['peak_memory_mib']:>10.2f} {'-' if kl is None else f'{kl:.2e}':>9}")


if __name__ == "__main__":
    main()
