"""Benchmark `curate verify`: what verifying costs in judge tokens per 1,000 traces, and the stage's client CPU per
request beside the generate engine's, against the same replay server.

    python bench/verify.py                 # real traces from ../shared/data (the demo's recording when absent)

Cost: the real filter's kept rows of the real traces, the judge prompt (`prompts/templates/judge_reasoning.txt`)
rendered for each, and a judge (the replay server) answering with a verdict of two sizes: three quoted steps (a
terse judge) and every sentence of the reasoning quoted as a step (a thorough one; the upper end of what the
prompt asks for). Tokens are the server's count, about four characters a token (no tokenizer can be downloaded
here): prompt tokens are what a real judge reads, completion tokens what these verdicts hold.

Overhead: N distinct requests through each client against a replay server in its own process (fixed latency, so
the clients wait on the network as they would on a real server): `agenerate` as `curate generate` runs it (its
short teacher prompts); the same engine sending verify's requests (`agenerate(jobs=...)`: the judge prompts, ~4 kB,
and the verdict schema); and `VerifyStage.process` as `curate verify` runs it (prompt rendering, cache keys, the
engine, strict parsing, the quote check, the decision). CPU ms/req is the client process's CPU time over the run /
requests; the parsing and decision part is also timed alone.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import re
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.generate.replay import DEFAULT_MODEL, replay_server_process  # noqa: E402
from curate.generate.runner import agenerate  # noqa: E402
from curate.stage import Batch  # noqa: E402
from curate.verify import VerifyStage  # noqa: E402
from curate.verify.verdict import Rules, judge_result, parse_output  # noqa: E402


def kept_rows(traces: Path) -> tuple[list[dict], str]:
    """The real filter's kept rows of the real traces (or of the demo's recording)."""
    from curate.filter import filter_traces
    from curate.filter.devset import dev_records, read_dev_rows

    source = traces if traces.exists() else ROOT / "examples" / "demo" / "recording.jsonl.gz"
    questions, all_traces = dev_records(read_dev_rows(source))
    kept, _, _ = filter_traces(all_traces, questions, workers=1)
    return [k.model_dump(mode="json") for k in kept], str(source)


def sentences(text: str) -> list[str]:
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", text) if len(s.strip()) > 20] or [text.strip()[:200]]


def verdict(row: dict, steps: int | None) -> str:
    quoted = sentences(row["reasoning"])[:steps] if steps else sentences(row["reasoning"])
    return json.dumps({"supports_answer": True, "steps": [{"step": s, "verdict": "supported",
                                                           "why": "follows from the findings in the stem"}
                                                          for s in quoted],
                       "clinical_errors": [], "unsafe_advice": []})


def write_judge(path: Path, rows: list[dict], steps: int | None) -> Path:
    """Recordings keyed by the start of each reasoning (how the replay server finds the trace a prompt is about)."""
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps({"question": row["reasoning"], "response": verdict(row, steps)}) + "\n")
    return path


def run_stage(rows: list[dict], url: str, cache: Path, concurrency: int = 64) -> tuple[object, float, float]:
    stage = VerifyStage(judges=[DEFAULT_MODEL], base_urls=[url], concurrency=concurrency, max_retries=0,
                        cache_dir=cache)
    stage.output = cache / "out.parquet"
    batch = Batch(rows=rows, locs=list(range(len(rows))), path=None, files={})
    cpu, wall = time.process_time(), time.perf_counter()
    outcome = stage.process(batch)
    return outcome, time.perf_counter() - wall, time.process_time() - cpu


def unique_starts(rows: list[dict]) -> list[dict]:
    from collections import Counter

    from curate.generate.replay import _KEY_CHARS, _norm

    starts = Counter(_norm(r["reasoning"])[:_KEY_CHARS] for r in rows)
    return [r for r in rows if starts[_norm(r["reasoning"])[:_KEY_CHARS]] == 1]


def engine_only(rows: list[dict], url: str, concurrency: int, cache_dir: Path) -> tuple[float, float]:
    """The generate engine alone, sent exactly the requests verify sends (rendered and keyed before timing)."""
    from curate.generate.cache import ResponseCache
    from curate.generate.progress import Stats
    from curate.generate.requests import Job
    from curate.records import Question
    from curate.verify import request_keys, response_format
    from prompts import get_prompt

    stage = VerifyStage(judges=[DEFAULT_MODEL], base_urls=[url], concurrency=concurrency, max_retries=0)
    engine = stage.config.engine(stage.config.judge_specs()[0], cache_dir)
    engine = engine.model_copy(update={"backend_options": {"extra_body": {"response_format": response_format()}}})
    prompt = get_prompt("judge_reasoning")
    messages = [prompt.render(r) for r in rows]
    keys = request_keys(DEFAULT_MODEL, messages, engine.sampling().as_dict(), response_format())
    jobs = [Job(i, Question.model_construct(id=r["question_id"]), prompt.name, prompt.hash, m, [k])
            for i, (r, m, k) in enumerate(zip(rows, messages, keys))]
    cache = ResponseCache(cache_dir)
    cpu, wall = time.process_time(), time.perf_counter()
    traces = asyncio.run(agenerate([], jobs=jobs, config=engine, cache=cache, stats=Stats()))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    cache.close()
    assert not any(t.error for t in traces)
    return len(rows) / wall, cpu


def bench_cost(rows: list[dict], tmp: Path) -> list[dict]:
    out = []
    for name, steps in (("3 quoted steps", 3), ("every sentence a step", None)):
        judge = write_judge(tmp / f"judge-{steps}.jsonl.gz", rows, steps)
        with replay_server_process(traces=judge) as server:
            outcome, _, _ = run_stage(rows, server.url, tmp / f"cost-cache-{steps}")
        stats = outcome.stats
        per_source: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
        for r in [*outcome.kept, *(x.row for x in outcome.rejected)]:
            usage = r["verify"]["judges"][0]["usage"]
            entry = per_source[r["source"]]
            entry[0] += 1
            entry[1] += usage["prompt_tokens"]
            entry[2] += usage["completion_tokens"]
        # Rows whose reasoning starts like another's get that other trace's verdict from the replay server: the quote
        # check rejects it (judge_misquote), which is what it is for.
        result = {"verdict": name, "rows": len(rows), "verified": stats["verified"],
                  "misquoted": stats["judges"][0].outcomes.get("judge_misquote", 0),
                  "cut_off": stats["judges"][0].outcomes.get("judge_unparsable", 0),
                  "same_start": len(rows) - len(unique_starts(rows)),
                  "prompt_per_1k": stats["prompt_tokens"] / len(rows) * 1000,
                  "completion_per_1k": stats["completion_tokens"] / len(rows) * 1000,
                  "per_source": {k: {"rows": n, "prompt_per_1k": p / n * 1000, "completion_per_1k": c / n * 1000}
                                 for k, (n, p, c) in sorted(per_source.items())}}
        print(json.dumps(result), flush=True)
        out.append(result)
    return out


def bench_overhead(rows: list[dict], n: int, latency: float, concurrency: int, tmp: Path) -> dict:
    from curate.generate.cache import ResponseCache
    from curate.generate.progress import Stats
    from curate.generate.requests import SamplingParams
    from curate.records import Question

    # n distinct judge requests: the real rows, repeated with a tag at the end of the reasoning (a new prompt, so
    # nothing is cached; the replay server still finds the row's verdict by the start of the reasoning, so only rows
    # whose reasoning starts like no other's are used)
    rows = unique_starts(rows)
    many = [dict(rows[i % len(rows)], trace_id=f"bench-{i}",
                 reasoning=rows[i % len(rows)]["reasoning"] + f"\n[bench copy {i}]") for i in range(n)]
    judge = write_judge(tmp / "judge-overhead.jsonl.gz", rows, 3)
    questions = [Question(id=f"bench:{i}", source="bench", split="test", question=f"[{i}] A 54-year-old woman "
                          "presents with progressive dyspnoea and bilateral ankle oedema. Most likely diagnosis?",
                          options={"A": "HFpEF", "B": "HFrEF", "C": "Pericarditis", "D": "Cirrhosis"}, answer="A")
                 for i in range(n)]
    with replay_server_process(traces=judge, latency=latency) as server:
        run_stage(many[:64], server.url, tmp / "warm")  # imports, first connections: paid before timing
        cache = ResponseCache(tmp / "gen-cache")
        cpu, wall = time.process_time(), time.perf_counter()
        traces = asyncio.run(agenerate(questions, teacher=DEFAULT_MODEL, base_urls=[server.url], samples=1,
                                       params=SamplingParams(seed=0), concurrency=concurrency, cache=cache,
                                       stats=Stats(), max_retries=0))
        gen_wall, gen_cpu = time.perf_counter() - wall, time.process_time() - cpu
        cache.close()
        assert not any(t.error for t in traces)
        engine_rps, engine_cpu = engine_only(many, server.url, concurrency, tmp / "engine-cache")
        outcome, ver_wall, ver_cpu = run_stage(many, server.url, tmp / "verify-cache", concurrency)
    assert outcome.stats["incomplete"] == 0 and outcome.stats["judges"][0].responses == n, outcome.stats["judges"]
    # the part verify adds after the engine: strict parsing, the quote check, the rules
    texts = [verdict(r, 3) for r in many]
    cpu = time.process_time()
    for row, text in zip(many, texts):
        judge_result(parse_output(text, row["reasoning"]), Rules(), judge="j", prompt_name="p", prompt_hash="h",
                     raw=text, finish_reason="stop", usage={})
    parse_cpu = time.process_time() - cpu
    result = {"requests": n, "latency_s": latency, "concurrency": concurrency,
              "generate": {"rps": n / gen_wall, "cpu_ms_per_req": gen_cpu / n * 1e3},
              "engine on verify's requests": {"rps": engine_rps, "cpu_ms_per_req": engine_cpu / n * 1e3},
              "verify": {"rps": n / ver_wall, "cpu_ms_per_req": ver_cpu / n * 1e3},
              "parse_and_decide_ms_per_row": parse_cpu / n * 1e3}
    print(json.dumps(result), flush=True)
    return result


def print_tables(cost: list[dict], overhead: dict, source: str) -> None:
    print(f"\nverification cost per 1,000 traces (judge tokens, ~4 characters a token), kept rows of {source}")
    print("| verdict | rows | prompt tokens / 1k | completion tokens / 1k | total / 1k | verified | misquote | cut off |")
    print("|---|---|---|---|---|---|---|---|")
    for c in cost:
        total = c["prompt_per_1k"] + c["completion_per_1k"]
        print(f"| {c['verdict']} | {c['rows']} | {c['prompt_per_1k']:,.0f} | {c['completion_per_1k']:,.0f} | "
              f"{total:,.0f} | {c['verified']} | {c['misquoted']} | {c['cut_off']} |")
    print("\nper source (every sentence a step)")
    print("| source | rows | prompt tokens / 1k | completion tokens / 1k |")
    print("|---|---|---|---|")
    for name, s in cost[-1]["per_source"].items():
        print(f"| {name} | {s['rows']} | {s['prompt_per_1k']:,.0f} | {s['completion_per_1k']:,.0f} |")
    o = overhead
    print(f"\nclient overhead, {o['requests']} requests, latency {o['latency_s'] * 1000:.0f} ms, concurrency "
          f"{o['concurrency']}")
    print("| client | req/s | CPU ms/req | ratio to generate |")
    print("|---|---|---|---|")
    g = o["generate"]["cpu_ms_per_req"]
    for name in ("generate", "engine on verify's requests", "verify"):
        v = o[name]
        print(f"| {name} | {v['rps']:.0f} | {v['cpu_ms_per_req']:.3f} | {v['cpu_ms_per_req'] / g:.2f} |")
    print(f"\nof verify's, parsing + quote check + rules: {o['parse_and_decide_ms_per_row']:.3f} ms/row")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--traces", type=Path, default=ROOT.parent / "shared" / "data" / "traces" / "dev_traces.jsonl.gz")
    parser.add_argument("--requests", type=int, default=4000)
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--concurrency", type=int, default=64)
    args = parser.parse_args()
    rows, source = kept_rows(args.traces)
    with tempfile.TemporaryDirectory() as tmp:
        cost = bench_cost(rows, Path(tmp))
        overhead = bench_overhead(rows, args.requests, args.latency, args.concurrency, Path(tmp))
    print_tables(cost, overhead, source)


if __name__ == "__main__":
    main()
