"""Teacher generation (`curate generate`): prompts in, Traces out, through a durable cache.

    run_generate(Path("q.parquet"), Path("traces.parquet"), teacher="Qwen/QwQ-32B",
                 base_urls=["http://gpu1:8000/v1"], samples=4, seed=0)        # the file-level stage
    generate(questions, teacher=..., cache_dir=...)                           # over records

Modules: `requests` (jobs, sampling parameters, cache keys, shards), `cache` (append-only JSONL segments),
`ratelimit` (rpm/tpm, server-requested pauses), `retry` (backoff policy, failure kinds), `backends` (openai, vllm,
transformers), `progress` (bar and summary), `runner` (the whole flow).
"""

from curate.generate.backends import GenerateError
from curate.generate.runner import agenerate, generate, run_generate, select_questions

__all__ = ["GenerateError", "agenerate", "generate", "run_generate", "select_questions"]
