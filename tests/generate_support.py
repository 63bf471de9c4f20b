"""What the generate tests share: synthetic questions, the generator run in this process against a replay server, and
counting what reached the cache."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from curate.generate.cache import ResponseCache
from curate.generate.progress import Stats
from curate.generate.requests import SamplingParams
from curate.generate.runner import agenerate
from curate.io import read_rows
from curate.records import Question, Trace

TEACHER = "replay-teacher"


def make_questions(count: int, start: int = 0) -> list[Question]:
    """Question i's stem contains "A {30 + i}-year-old" (what `fault_for` aims at)."""
    return [Question(id=f"medqa:test:{i}", source="medqa", split="test",
                     question=f"A {30 + i}-year-old presents with fever and cough for {i + 2} days. Next step?",
                     options={"A": "chest x-ray", "B": "antibiotics", "C": "CT scan", "D": "observation"}, answer="A")
            for i in range(start, start + count)]


def generate_here(url: str | list[str], tmp_path: Path, questions: list[Question], **options: Any,
                  ) -> tuple[list[Trace], Stats]:
    """Run the generator in this process; returns (traces, stats)."""
    stats = Stats()
    cache = ResponseCache(options.pop("cache_dir", tmp_path / "cache"))
    cache.load()
    options.setdefault("params", SamplingParams(seed=0, max_tokens=4096))
    options.setdefault("retry_base", 0.01)
    options.setdefault("concurrency", 4)
    try:
        traces = asyncio.run(agenerate(questions, teacher=TEACHER, base_urls=[url] if isinstance(url, str) else url,
                                       cache=cache, stats=stats, **options))
    finally:
        cache.close()
    return traces, stats


def cache_lines(cache: Path) -> int:
    return sum(p.read_bytes().count(b"\n") for p in cache.glob("*.jsonl")) if cache.is_dir() else 0


def without_latency(path: Path) -> list[dict]:
    return [{k: v for k, v in row.items() if k != "latency_s"} for row in read_rows(path)]
