"""The small parts of `curate generate`: prompts, cache keys, shards, the durable cache, rate-limit headers, backoff,
the vLLM parameter mapping. No server and no model here (see test_generate_replay.py and test_generate_local.py)."""

from __future__ import annotations

import json
import random
import time
from pathlib import Path

import pytest

import prompts
from curate.generate.backends import Unit, split_tokens
from curate.generate.backends.vllm_offline import sampling_kwargs
from curate.generate.cache import ResponseCache
from curate.generate.config import parse_shard
from curate.generate.ratelimit import RateLimiter, exhausted_reset, parse_duration, retry_after
from curate.generate.requests import SamplingParams, build_jobs, in_shard, request_key
from curate.generate.retry import Failure, RetryPolicy
from curate.generate.runner import pending_units, select_questions
from curate.records import Question


def _question(i: int, context: str | None = None) -> Question:
    return Question(id=f"medqa:test:{i}", source="medqa", split="test", question=f"Question {i}: what {{x}} now?",
                    options={"A": "alpha", "B": "beta", "C": "gamma", "D": "delta"}, answer="C", context=context)


# ---------------------------------------------------------------- prompts


def test_templates_are_package_files_with_content_hashes(repo_root: Path):
    assert set(prompts.list_prompts()) >= {"multiple_choice", "multiple_choice_context", "rationalize"}
    for name in prompts.list_prompts():
        p = prompts.get_prompt(name)
        assert (repo_root / "prompts" / "templates" / f"{name}.txt").exists()
        assert len(p.hash) == 16 and p.name == name
    pyproject = (repo_root / "pyproject.toml").read_text()
    assert 'prompts = ["templates/*.txt"' in pyproject  # shipped as package data


def test_render_asks_for_the_canonical_format_and_keeps_braces():
    messages = prompts.get_prompt("multiple_choice").render(_question(1))
    assert [m["role"] for m in messages] == ["system", "user"]
    user = messages[1]["content"]
    assert "Question 1: what {x} now?" in user and "C. gamma" in user
    assert "<think></think>" in user and "<answer></answer>" in user
    assert "beta" in user and "{options}" not in user


def test_default_prompt_depends_on_context_and_rationalize_shows_gold():
    assert prompts.default_prompt_for(_question(1)).name == "multiple_choice"
    with_context = _question(2, context="BACKGROUND: an abstract.")
    assert prompts.default_prompt_for(with_context).name == "multiple_choice_context"
    assert "BACKGROUND: an abstract." in prompts.default_prompt_for(with_context).render(with_context)[-1]["content"]
    rationalize = prompts.get_prompt("rationalize")
    assert rationalize.needs_answer
    assert "The correct answer is C (gamma)" in rationalize.render(_question(3))[-1]["content"]


def test_custom_template_file_and_unknown_name(tmp_path: Path):
    path = tmp_path / "mine.txt"
    path.write_text("[user]\nQ: {question}\n{options}\n")
    custom = prompts.get_prompt(str(path))
    assert custom.name == "mine" and custom.system is None
    assert custom.render(_question(4))[0]["content"].startswith("Q: Question 4")
    path.write_text("[user]\nQ2: {question}\n{options}\n")
    assert prompts.parse_template("mine", path.read_bytes()).hash != custom.hash  # edited text, new hash
    with pytest.raises(KeyError, match="unknown prompt"):
        prompts.get_prompt("no_such_template")


# ---------------------------------------------------------------- keys, shards, limit


def test_request_keys_are_content_hashes():
    params = SamplingParams(seed=1)
    messages = [{"role": "user", "content": "hello"}]
    key = request_key("m", messages, params, 0)
    assert key == request_key("m", [{"role": "user", "content": "hello"}], SamplingParams(seed=1), 0)
    assert key != request_key("m", messages, params, 1)
    assert key != request_key("m2", messages, params, 0)
    assert key != request_key("m", messages, SamplingParams(seed=2), 0)
    assert key != request_key("m", [{"role": "user", "content": "hello!"}], params, 0)
    jobs = build_jobs([_question(1)], teacher="m", params=params, samples=3)
    assert len(set(jobs[0].keys)) == 3


def test_shards_are_disjoint_complete_and_deterministic():
    questions = [_question(i) for i in range(200)]
    shards = [select_questions(questions, shard=f"{i}/3") for i in range(3)]
    ids = [q.id for shard in shards for q in shard]
    assert sorted(ids) == sorted(q.id for q in questions)  # complete and disjoint
    assert all(30 < len(s) < 110 for s in shards)  # roughly balanced
    again = select_questions(list(reversed(questions)), shard="1/3")
    assert {q.id for q in again} == {q.id for q in shards[1]}  # by id, not position
    assert in_shard("x", None)


def test_limit_then_shard_and_bad_shard_text():
    questions = [_question(i) for i in range(50)]
    assert [q.id for q in select_questions(questions, limit=5)] == [f"medqa:test:{i}" for i in range(5)]
    limited = select_questions(questions, limit=20, shard="0/2") + select_questions(questions, limit=20, shard="1/2")
    assert len(limited) == 20
    for bad in ("2/2", "1", "a/b", "0/0", "-1/3"):
        with pytest.raises(ValueError, match="--shard"):
            parse_shard(bad)


def test_pending_units_group_full_jobs_and_split_leftovers(tmp_path: Path):
    jobs = build_jobs([_question(1), _question(2), _question(3)], teacher="m", params=SamplingParams(), samples=3)
    cache = ResponseCache(tmp_path)
    cache.put_many([(jobs[0].keys[i], {"completion": "x"}) for i in range(3)])
    cache.put_many([(jobs[1].keys[1], {"completion": "y"})])
    units = pending_units(jobs, cache)
    assert [(u.job.index, u.samples) for u in units] == [(1, [0]), (1, [2]), (2, [0, 1, 2])]
    cache.close()


# ---------------------------------------------------------------- the durable cache


def test_cache_round_trip_across_segments(tmp_path: Path):
    first = ResponseCache(tmp_path)
    first.put_many([("a", {"completion": "1"}), ("b", {"completion": "2"})])
    first.close()
    second = ResponseCache(tmp_path)
    assert second.load() == 2
    second.put_many([("c", {"completion": "3"})])
    second.close()
    assert len(list(tmp_path.glob("*.jsonl"))) == 2  # one segment per writer: runs never interleave lines
    third = ResponseCache(tmp_path)
    assert third.load() == 3 and third.get("c") == {"completion": "3"} and "a" in third


def test_cache_ignores_a_torn_last_line(tmp_path: Path):
    cache = ResponseCache(tmp_path)
    cache.put_many([("a", {"completion": "done"})])
    cache.close()
    segment = next(tmp_path.glob("*.jsonl"))
    with open(segment, "ab") as fh:  # what kill -9 in the middle of a write would leave
        fh.write(b'{"k":"b","r":{"completion":"half')
    reloaded = ResponseCache(tmp_path)
    assert reloaded.load() == 1 and reloaded.torn_lines == 1 and "b" not in reloaded
    reloaded.put_many([("b", {"completion": "again"})])  # appends to a new segment, not after the torn bytes
    reloaded.close()
    final = ResponseCache(tmp_path)
    assert final.load() == 2 and final.get("b") == {"completion": "again"}
    (tmp_path / "zz-foreign.jsonl").write_bytes(b'not json at all\n{"k":"c","r":{"completion":"ok"}}\n')
    mixed = ResponseCache(tmp_path)
    assert mixed.load() == 3 and mixed.torn_lines == 2 and mixed.get("c") == {"completion": "ok"}


def test_cache_lines_are_written_before_put_returns(tmp_path: Path):
    cache = ResponseCache(tmp_path)
    cache.put_many([("a", {"completion": "x"})])
    # not closed, not necessarily fsynced: but already in the file, so kill -9 now would not lose it
    lines = next(tmp_path.glob("*.jsonl")).read_bytes().splitlines()
    assert json.loads(lines[0]) == {"k": "a", "r": {"completion": "x"}}
    cache.close()


# ---------------------------------------------------------------- rate limits and retries


def test_retry_after_headers():
    assert retry_after({"Retry-After": "3"}) == 3.0
    assert retry_after({"retry-after-ms": "250"}) == 0.25
    date = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(time.time() + 30))
    assert 25 < retry_after({"Retry-After": date}) <= 31
    assert retry_after({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "6m0s"}) == 360.0
    assert retry_after({"x-ratelimit-remaining-requests": "5", "x-ratelimit-reset-requests": "6m0s"}) is None
    assert exhausted_reset({"x-ratelimit-remaining-tokens": "0", "x-ratelimit-reset-tokens": "250ms"}) == 0.25
    assert parse_duration("1h2m3.5s") == 3723.5 and parse_duration("junk") is None


def test_backoff_grows_with_jitter_and_honours_the_server():
    policy = RetryPolicy(max_retries=3, base_s=1.0, cap_s=8.0)
    rng = random.Random(0)
    plain = Failure("server_error", "HTTP 500")
    for attempt in range(6):
        step = min(8.0, 2 ** attempt)
        delays = {policy.delay(attempt, plain, rng) for _ in range(20)}
        assert all(step / 2 <= d <= step for d in delays) and len(delays) > 1
    assert policy.delay(0, Failure("rate_limit", "429", retry_after=5.0), rng) >= 5.0
    assert policy.should_retry(2, plain) and not policy.should_retry(3, plain)
    assert not policy.should_retry(0, Failure("bad_request", "HTTP 400"))


def test_rate_limiter_paces_requests():
    import asyncio

    async def run() -> float:
        limiter = RateLimiter(rpm=600)  # 10 per second, one second of burst
        started = time.monotonic()
        for _ in range(25):
            await limiter.acquire()
        return time.monotonic() - started

    # 10 go at once, the other 15 need 1.5 s of refill: a lower bound, which cannot pass by luck
    assert asyncio.run(run()) >= 1.4


def test_token_budget_paces_requests_and_charges_completions():
    import asyncio

    async def run() -> float:
        limiter = RateLimiter(tpm=6000)  # 100 tokens a second, one second of burst
        started = time.monotonic()
        await limiter.acquire(100)  # the burst
        limiter.charge(100)  # the completion came back with 100 tokens: the bucket is in debt
        await limiter.acquire(50)  # must wait for the debt and its own 50 tokens
        return time.monotonic() - started

    assert asyncio.run(run()) >= 1.4


def test_split_tokens_sums_to_the_total():
    assert split_tokens(100, [10, 30]) == [25, 75]
    assert sum(split_tokens(101, [1, 1, 1])) == 101
    assert split_tokens(None, [1, 2]) == [None, None] and split_tokens(7, [0]) == [7]


# ---------------------------------------------------------------- vLLM mapping (vLLM itself needs a GPU)


def test_vllm_sampling_params_mapping():
    jobs = build_jobs([_question(1)], teacher="m", params=SamplingParams(), samples=4)
    params = SamplingParams(temperature=0.6, top_p=0.95, max_tokens=512, seed=10)
    assert sampling_kwargs(params, Unit(jobs[0], [0, 1, 2, 3])) == {"n": 4, "temperature": 0.6, "top_p": 0.95,
                                                                     "max_tokens": 512, "seed": 10}
    assert sampling_kwargs(params, Unit(jobs[0], [2]))["seed"] == 12  # a lone sample i gets seed + i
    assert "seed" not in sampling_kwargs(SamplingParams(seed=None), Unit(jobs[0], [0]))


def test_vllm_backend_without_vllm_says_what_to_install(tmp_path: Path):
    pytest.importorskip("torch")  # only so that this runs where the rest of the stack does
    try:
        import vllm  # noqa: F401
        pytest.skip("vLLM is installed here")
    except ImportError:
        pass
    from curate.generate import GenerateError, generate

    with pytest.raises(GenerateError, match=r"curate\[vllm\]"):
        generate([_question(1)], teacher="some/model", backend="vllm", cache_dir=tmp_path)
