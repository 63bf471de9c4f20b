"""Benchmark: `curate.dedupe` on synthetic 100k / 1M question corpora, side by side with the baselines.

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 python bench/dedupe.py --sizes 100000 1000000

The corpus is generated from real question vocabulary (MedQA test and MedMCQA dev words, opening and closing
sentences and option texts from ../shared/data; a Zipf vocabulary when that is absent) with 5% planted
near-duplicates (case/spacing, reordered options, 1-3 words changed, truncated stem). Each method runs in its own
child process so its peak memory (ru_maxrss) is its own; the corpus alone is measured too, as the floor.

- curate: exact pass + numpy MinHash LSH (64 perm, 16 bands) + rapidfuzz confirmation + union-find.
- datasketch: the same shingles and confirmation, but blocking with datasketch MinHash/MinHashLSH used the plain
  way (one MinHash per document, `update` per shingle, `insert`/`query`); run at 100k, extrapolated linearly at 1M.
- cdist: rapidfuzz `process.cdist` all-pairs (ratio, 2 workers) on a 4,000-document sample, extrapolated by n^2.
- decontaminate: the same corpus against MedQA test + MedMCQA dev (shared data only).

    HF_HUB_OFFLINE=1 OMP_NUM_THREADS=2 python bench/dedupe.py --accuracy

measures accuracy on the real benchmark files instead (shared data only): recall per rewrite kind of
`tests/perturb.py` (copies of every MedQA test and MedMCQA dev item; only copies that differ from their item count),
for decontaminate (against MedQA test + MedMCQA dev) and dedupe (each bank plus its copies); and false positives:
rows of one bank flagged against another (MedMCQA dev vs MedQA test both ways, PubMedQA train vs test), and items of
one half of a bank flagged against the other half (same-style distinct questions; the few flags are the bank's own
near-duplicate items, listed so a new one can be read).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

PLANT_SHARE = 0.05
SEED = 20261124


def shared_data() -> Path | None:
    from curate.testing.shared_data import find_shared_data

    return find_shared_data()


def real_questions() -> list[dict]:
    from sources import load_source

    data = shared_data()
    if data is None:
        return []
    b = data / "benchmarks"
    rows = [q.row() for q in load_source("medqa", b / "medqa/test.4_options.jsonl").questions]
    rows += [q.row() for q in load_source("medmcqa", b / "medmcqa/dev.jsonl", skip_invalid=True).questions]
    return rows


def generate(n: int, seed: int = SEED) -> tuple[list[dict], dict[int, int]]:
    """n synthetic Question rows and {planted copy index: source index}."""
    import numpy as np

    from tests.perturb import change_words, reorder_options, surface, truncate

    real = real_questions()
    rng = np.random.default_rng(seed)
    if real:
        words: dict[str, int] = {}
        openings, closings, options, lengths = [], [], [], []
        for r in real:
            stem = r["question"].split()
            for w in stem:
                words[w] = words.get(w, 0) + 1
            lengths.append(len(stem))
            if len(stem) > 20:
                openings.append(" ".join(stem[:8]))
                closings.append(r["question"].rstrip().rsplit(". ", 1)[-1])
            options += list(r["options"].values())
        # Closing questions that real items share (boilerplate such as "Which of the following is the most likely
        # diagnosis?"), never one item's own words: the corpus must not contain benchmark text by construction.
        counts: dict[str, int] = {}
        for c in closings:
            counts[c] = counts.get(c, 0) + 1
        closings = [c for c, k in counts.items() if k >= 3 and len(c.split()) < 25]
        vocab = np.array(list(words))
        freq = np.array(list(words.values()), dtype=np.float64)
    else:  # no shared data: a Zipf vocabulary keeps the benchmark runnable
        vocab = np.array([f"w{i}" for i in range(30_000)])
        freq = 1.0 / np.arange(1, 30_001)
        openings = ["A 45-year-old man comes to the physician because of"]
        closings = ["Which of the following is the most likely diagnosis?"]
        options = [f"option {i}" for i in range(5000)]
        lengths = [60, 90, 120, 15, 25]
    p = freq / freq.sum()
    lengths = np.asarray(lengths)[rng.integers(0, len(lengths), n)]
    body_len = np.where(lengths > 25, lengths - 18, np.maximum(lengths, 4))
    flat = rng.choice(len(vocab), size=int(body_len.sum()), p=p).astype(np.int32)
    ends = np.cumsum(body_len)
    op_idx = rng.integers(0, len(openings), n)
    cl_idx = rng.integers(0, len(closings), n)
    opt_idx = rng.integers(0, len(options), (n, 4))
    rows = []
    start = 0
    for i in range(n):
        body = " ".join(vocab[flat[start : ends[i]]].tolist())
        start = ends[i]
        # Long (MedQA-like) stems get a real opening and closing around the body; short (MedMCQA-like) ones are
        # the body alone, as real short questions do not share a vignette template.
        text = f"{openings[op_idx[i]]} {body}. {closings[cl_idx[i]]}" if body_len[i] > 12 else f"{body}?"
        rows.append({"id": f"syn:{i}", "source": "synthetic", "question": text,
                     "options": {L: options[k] for L, k in zip("ABCD", opt_idx[i])}})
    # Plant near-duplicates: copies of earlier rows, spread over the corpus.
    prng = random.Random(seed)
    kinds = [surface, reorder_options, lambda r, g: change_words(r, g, 1), lambda r, g: change_words(r, g, 3),
             lambda r, g: truncate(r, g, 0.9)]
    planted = {}
    for k, i in enumerate(sorted(prng.sample(range(1, n), int(n * PLANT_SHARE)))):
        src = prng.randrange(0, i)
        while src in planted:
            src = planted[src]
        kind = kinds[k % len(kinds)]
        if len(rows[src]["question"].split()) < 25 and kind in kinds[2:4]:
            kind = kinds[k % 2]  # changed words in a 5-word question make another question, not a near-copy
        rows[i] = {**kind(rows[src], prng), "id": rows[i]["id"]}
        planted[i] = src
    return rows, planted


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KB on Linux


def recall(rep_of: dict[int, int], planted: dict[int, int]) -> tuple[float, int]:
    """Share of planted copies rejected, and how many other rows were rejected (candidates for false merges;
    random texts drawn from one vocabulary can truly be near-identical only by chance, so this should be ~0)."""
    found = sum(1 for i in planted if i in rep_of)
    extra = sum(1 for i in rep_of if i not in planted)
    return found / max(len(planted), 1), extra


def worker(method: str, n: int) -> dict:
    import numpy as np

    rows, planted = generate(n)
    base = {"method": method, "n": n, "corpus_mb": round(peak_mb())}
    if method == "corpus":
        return {**base, "wall_s": 0.0, "peak_mb": round(peak_mb())}
    if method == "curate":
        from curate.dedupe import dedupe

        t, cpu = time.perf_counter(), time.process_time()
        result = dedupe(rows)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        index_of = {r["id"]: i for i, r in enumerate(rows)}
        rep_of = {index_of[r.row["id"]]: r.row["dup_of"] for r in result.rejected}
        rec, extra = recall(rep_of, planted)
        return {**base, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_mb": round(peak_mb()),
                "recall": round(rec, 4), "other_rejected": extra,
                **{k: result.stats[k] for k in ("candidate_pairs", "confirmed_pairs")}}
    if method == "datasketch":
        from datasketch import MinHash, MinHashLSH

        from curate.dedupe import DedupeConfig, question_similarity
        from curate.textnorm import question_text

        texts = [question_text(r) for r in rows]
        t = time.perf_counter()
        first: dict[str, int] = {}
        rep = {}
        for i, qt in enumerate(texts):  # same exact pass as curate
            j = first.setdefault(qt.key, i)
            if j != i:
                rep[i] = j
        lsh = MinHashLSH(num_perm=64, params=(16, 4))
        config = DedupeConfig()
        for i, qt in enumerate(texts):
            if i in rep:
                continue
            words = qt.full.split()
            m = MinHash(num_perm=64, seed=1)
            for a, b in zip(words, words[1:]):
                m.update(f"{a} {b}".encode())
            for j in lsh.query(m):
                if question_similarity(texts[j], qt, config.threshold, config.reorder_threshold):
                    rep[i] = j
                    break
            lsh.insert(i, m)
        wall = time.perf_counter() - t
        rec, extra = recall(rep, planted)
        return {**base, "wall_s": round(wall, 2), "peak_mb": round(peak_mb()), "recall": round(rec, 4),
                "other_rejected": extra}
    if method == "cdist":
        from rapidfuzz import fuzz, process

        from curate.textnorm import question_text

        sample = [question_text(r).full for r in rows[:4000]]
        t = time.perf_counter()
        scores = process.cdist(sample, sample, scorer=fuzz.ratio, score_cutoff=90, dtype=np.uint8, workers=2)
        wall = time.perf_counter() - t
        pairs = int(((scores > 0).sum() - len(sample)) // 2)
        return {**base, "sample": len(sample), "sample_wall_s": round(wall, 2), "wall_s": round(wall * (n / len(sample)) ** 2, 1),
                "peak_mb": round(peak_mb()), "sample_pairs_over_90": pairs, "extrapolated": True}
    if method == "decontaminate":
        from curate.decontaminate import BenchmarkIndex, decontaminate

        real = real_questions()
        if not real:
            return {**base, "skipped": "no shared data"}
        t, cpu = time.perf_counter(), time.process_time()
        index = BenchmarkIndex({"medqa+medmcqa": real})
        result = decontaminate(rows, index)
        wall, cpu = time.perf_counter() - t, time.process_time() - cpu
        return {**base, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "peak_mb": round(peak_mb()),
                "flagged": len(result.rejected)}
    raise SystemExit(f"unknown method {method}")


def load_banks() -> dict[str, list[dict]]:
    from sources import load_source

    data = shared_data()
    if data is None:
        raise SystemExit("--accuracy needs ../shared/data (the real benchmark files)")
    b = data / "benchmarks"

    def rows(name: str, file: str, **kw) -> list[dict]:
        return [q.row() for q in load_source(name, b / file, skip_invalid=True, **kw).questions]

    return {"medqa": rows("medqa", "medqa/test.4_options.jsonl"), "medmcqa": rows("medmcqa", "medmcqa/dev.jsonl"),
            "pubmedqa_test": rows("pubmedqa", "pubmedqa/ori_pqal.json", split="test"),
            "pubmedqa_train": rows("pubmedqa", "pubmedqa/ori_pqal.json", split="train")}


def accuracy() -> None:
    """Recall per rewrite kind and false positives on the real benchmark files, decontaminate and dedupe."""
    from curate.decontaminate import BenchmarkIndex
    from curate.dedupe import dedupe
    from curate.textnorm import question_text
    from tests.perturb import PERTURBATIONS, perturbed_copies

    real = load_banks()
    t = time.perf_counter()
    index = BenchmarkIndex({"medqa:test": real["medqa"], "medmcqa:dev": real["medmcqa"]})
    key = {it.item_id: it.text.key for it in index.items}
    rng = random.Random(0)  # the stream tests/test_decontaminate.py uses
    print("| rewrite kind | bank | copies | decontaminate recall | dedupe recall |")
    print("|---|---|---:|---:|---:|")
    for bank in ("medqa", "medmcqa"):
        for kind, fn in PERTURBATIONS.items():
            pairs = perturbed_copies(real[bank], fn, rng)
            matches = index.match([question_text(c) for _, c in pairs])
            # A match of an exact duplicate of the item inside the same bank counts as the item.
            hits = sum(1 for (item, _), m in zip(pairs, matches) if m is not None and key[m.item_id] == key[item["id"]])
            copies = [{**c, "id": f"copy:{k}"} for k, (_, c) in enumerate(pairs)]
            rejected = {r.row["id"] for r in dedupe(real[bank] + copies).rejected}
            found = sum(1 for c in copies if c["id"] in rejected)
            print(f"| {kind} | {bank} | {len(pairs)} | {hits / len(pairs):.2%} | {found / len(copies):.2%} |")
    print()
    print("| false-positive check | rows | decontaminate flagged | dedupe cross merges |")
    print("|---|---:|---:|---:|")
    halves = {f"{bank} half {h}": real[bank][h::2] for bank in ("medqa", "medmcqa") for h in (0, 1)}
    checks = [("medmcqa dev vs medqa test", real["medmcqa"], real["medqa"]),
              ("medqa test vs medmcqa dev", real["medqa"], real["medmcqa"]),
              ("pubmedqa train vs test", real["pubmedqa_train"], real["pubmedqa_test"])]
    checks += [(f"{bank} odd items vs even items", halves[f"{bank} half 1"], halves[f"{bank} half 0"])
               for bank in ("medqa", "medmcqa")]
    for name, rows, bench in checks:
        matches = BenchmarkIndex({"bench": bench}).match([question_text(r) for r in rows])
        flagged = [(r["id"], m.item_id, m.method, round(float(m.score), 3)) for r, m in zip(rows, matches) if m is not None]
        # dedupe over both: rows of `rows` kept apart from `bench` unless they repeat one of its items
        ids = {r["id"] for r in bench}
        merged = [(r.row["id"], r.row["dup_of"]) for r in dedupe(bench + rows).rejected
                  if r.row["id"] not in ids and r.row["dup_of"] in ids]
        print(f"| {name} | {len(rows)} | {len(flagged)} | {len(merged)} |")
        for f in flagged:
            print(json.dumps({"check": name, "flagged": f}), file=sys.stderr)
        for f in merged:
            print(json.dumps({"check": name, "merged": f}), file=sys.stderr)
    print(f"\n({time.perf_counter() - t:.0f} s; flagged and merged pairs on stderr)")


def run_child(method: str, n: int, timeout: float) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", "HF_HUB_OFFLINE": "1"}
    t = time.perf_counter()
    try:
        proc = subprocess.run([sys.executable, __file__, "--worker", method, "--n", str(n)], capture_output=True,
                              text=True, env=env, timeout=timeout, cwd=ROOT)
    except subprocess.TimeoutExpired:
        return {"method": method, "n": n, "error": f"timed out after {timeout:.0f}s"}
    if proc.returncode != 0:
        return {"method": method, "n": n, "error": proc.stderr.strip().splitlines()[-1:]}
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    out["process_s"] = round(time.perf_counter() - t, 1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000])
    parser.add_argument("--methods", nargs="+", default=["corpus", "curate", "datasketch", "cdist", "decontaminate"])
    parser.add_argument("--datasketch-max", type=int, default=100_000, help="above this size, extrapolate datasketch")
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument("--accuracy", action="store_true", help="recall and false positives on the real files")
    parser.add_argument("--worker")
    parser.add_argument("--n", type=int)
    args = parser.parse_args()
    if args.accuracy:
        accuracy()
        return
    if args.worker:
        print(json.dumps(worker(args.worker, args.n)))
        return
    results = []
    ds_rate = None
    for n in args.sizes:
        for method in args.methods:
            if method == "datasketch" and n > args.datasketch_max:
                if ds_rate is None:
                    continue
                results.append({"method": "datasketch", "n": n, "wall_s": round(ds_rate * n, 1), "extrapolated": True})
                continue
            r = run_child(method, n, args.timeout)
            if method == "datasketch" and "wall_s" in r:
                ds_rate = r["wall_s"] / n
            results.append(r)
            print(json.dumps(r), file=sys.stderr, flush=True)
    print_table(results)


def print_table(results: list[dict]) -> None:
    ours = {r["n"]: r["wall_s"] for r in results if r["method"] == "curate" and "wall_s" in r}
    header = f"| {'method':<14}| {'n':>9} | {'wall s':>9} | {'x curate':>8} | {'peak MB':>8} | {'recall':>7} | notes"
    print(header)
    print("|" + "|".join("-" * len(c) for c in header.split("|")[1:]))
    for r in results:
        if "error" in r or "skipped" in r:
            why = r.get("error") or r.get("skipped")
            print(f"| {r['method']:<14}| {r['n']:>9} | {'-':>9} | {'-':>8} | {'-':>8} | {'-':>7} | {why}")
            continue
        ratio = f"{r['wall_s'] / ours[r['n']]:.1f}" if ours.get(r["n"]) and r["method"] != "corpus" else "-"
        notes = []
        if r.get("extrapolated"):
            source = f" from {r['sample']} docs in {r['sample_wall_s']}s" if "sample" in r else " linearly from the run above"
            notes.append("extrapolated" + source)
        for key in ("cpu_s", "candidate_pairs", "confirmed_pairs", "other_rejected", "flagged"):
            if key in r:
                notes.append(f"{key} {r[key]}")
        peak = r.get("peak_mb", "-")
        print(f"| {r['method']:<14}| {r['n']:>9} | {r['wall_s']:>9} | {ratio:>8} | {peak:>8} | {r.get('recall', '-'):>7} | "
              + ", ".join(notes))


if __name__ == "__main__":
    main()
