"""Benchmark of the training recipe: tokens/s and peak memory per stage, decoupled vs monolithic side by side.

The model is randomly initialised with a shape built in code (no download): `qwen2.5-0.5b` is Qwen2.5-0.5B's real
architecture (24 layers, hidden 896, vocab 151,936); `reduced` keeps its width and vocabulary with 4 layers (what
a CPU can step through in minutes); `tiny` is the test model. Data is synthetic, with completions of about
`--completion-words` words. The baseline is the monolithic run (one adapter, SFT then GRPO): the decoupled run's
GRPO carries a second, frozen adapter in every forward pass, and the ratio shows what that costs.

Each configuration runs in its own process, so peak memory (GPU: max allocated; CPU: peak RSS) is its own.

    python bench/train.py --shape reduced --sft-steps 4 --grpo-steps 2
    python bench/train.py --shape qwen2.5-0.5b --sft-steps 20 --grpo-steps 10     # on a GPU
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

MODES = ("monolithic", "decoupled")


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


def worker(args: argparse.Namespace) -> None:
    from train.config import load_config
    from train.recipe import run_train_decoupled

    config = load_config(None, {
        "seed": 0,
        "reasoning": {"r": 16, "alpha": 32}, "reward": {"r": 8, "alpha": 16},
        "sft": {"max_steps": args.sft_steps, "batch_size": args.batch, "max_length": args.max_length,
                "learning_rate": 1e-4},
        "grpo": {"max_steps": args.grpo_steps, "batch_size": args.generations, "num_generations": args.generations,
                 "max_completion_length": args.completion_tokens, "learning_rate": 1e-5},
        "export": {"combined": False},
    })
    report = run_train_decoupled(args.data, args.model, args.out, config=config, questions=args.questions,
                                 mode=args.worker)
    Path(args.result).write_text(json.dumps(report.extra["stages"]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shape", choices=["qwen2.5-0.5b", "reduced", "tiny"], default="reduced")
    parser.add_argument("--sft-steps", type=int, default=4)
    parser.add_argument("--grpo-steps", type=int, default=2)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--generations", type=int, default=4)
    parser.add_argument("--completion-words", type=int, default=120)
    parser.add_argument("--completion-tokens", type=int, default=64, help="GRPO max_completion_length")
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--examples", type=int, default=16)
    parser.add_argument("--worker", choices=MODES, help=argparse.SUPPRESS)
    for hidden in ("--data", "--questions", "--model", "--out", "--result"):
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
        results = {}
        for mode in MODES:
            out = root / f"result-{mode}.json"
            cmd = [sys.executable, __file__, "--worker", mode, "--data", str(data), "--questions", str(questions),
                   "--model", str(model_dir), "--out", str(root / f"run-{mode}"), "--result", str(out),
                   *[f"--{k.replace('_', '-')}={v}" for k, v in vars(args).items()
                     if k in ("sft_steps", "grpo_steps", "batch", "generations", "completion_tokens", "max_length")]]
            subprocess.run(cmd, check=True, env={**os.environ, "TOKENIZERS_PARALLELISM": "false"},
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            results[mode] = {s["stage"]: s for s in json.loads(out.read_text())}

    print(f"\nshape {args.shape} ({params:.0f}M params, random init), {device}, torch {torch.__version__}")
    print(f"SFT {args.sft_steps} steps x batch {args.batch} (max_length {args.max_length}); "
          f"GRPO {args.grpo_steps} steps x {args.generations} generations (max_completion_length {args.completion_tokens})\n")
    header = (f"{'stage':<6} {'config':<11} {'tokens':>8} {'wall s':>8} {'tokens/s':>9} {'peak MiB':>9} {'memory':<19} "
              f"{'tok/s ratio':>11}")
    print(header)
    print("-" * len(header))
    for stage in ("sft", "grpo"):
        base = results["monolithic"][stage]
        for mode in MODES:
            s = results[mode][stage]
            ratio = (s.get("tokens_per_s") or 0) / (base.get("tokens_per_s") or 1)
            print(f"{stage:<6} {mode:<11} {s.get('tokens', 0):>8} {s['wall_s']:>8.2f} {s.get('tokens_per_s', 0):>9.1f} "
                  f"{s['peak_memory_mib']:>9.0f} {s['memory_kind']:<19} {ratio:>11.2f}")


if __name__ == "__main__":
    main()
