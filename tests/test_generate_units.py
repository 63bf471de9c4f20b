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
    line = json.loads(lines[0])
    assert line["k"] == "a" and line["r"] == {"completion": "x"} and len(line["c"]) == 8  # with its checksum
    cache.close()


def test_cache_checksums_catch_a_flipped_letter_and_glued_lines(tmp_path: Path):
    cache = ResponseCache(tmp_path)
    cache.put_many([(k, {"completion": f"the answer is {k.upper()}"}) for k in ("a", "b", "c", "d")])
    cache.close()
    (segment,) = tmp_path.glob("*.jsonl")
    lines = segment.read_bytes().splitlines(keepends=True)
    lines[0] = lines[0].replace(b"answer is A", b"answer is B")  # still valid JSON, still the same length
    lines[1] = lines[1].rstrip(b"\n")  # b and c glued
    segment.write_bytes(b"".join(lines))
    reloaded = ResponseCache(tmp_path)
    reloaded.load()
    assert reloaded.get("a") is None and reloaded.get("b") is None and reloaded.get("c") is None
    assert reloaded.get("d") == {"completion": "the answer is D"}
    assert reloaded.damaged_lines == 2 and "a" not in reloaded and "b" not in reloaded  # asked again by the runner
    reloaded.close()


def test_a_damaged_line_falls_back_to_an_intact_copy_of_its_key(tmp_path: Path):
    for text in ("first copy", "second copy"):  # two runs answered the same request: two segments
        cache = ResponseCache(tmp_path)
        cache.put_many([("a", {"completion": text})])
        cache.close()
    newest = sorted(tmp_path.glob("*.jsonl"))[-1]
    assert b"second copy" in newest.read_bytes()  # segments sort in the order they were started
    newest.write_bytes(newest.read_bytes().replace(b"second", b"sec0nd"))
    reloaded = ResponseCache(tmp_path)
    assert reloaded.load() == 1
    assert reloaded.get("a") == {"completion": "first copy"} and reloaded.damaged_lines == 1 and "a" in reloaded


def test_cache_lines_from_before_checksums_are_read_as_written(tmp_path: Path):
    (tmp_path / "segment-old.jsonl").write_bytes(b'{"k":"old","r":{"completion":"kept"}}\n'
                                                 b'{"k":"glued","r":{"completion":"x"}}{"k":"y","r":{}}\n')
    cache = ResponseCache(tmp_path)
    assert cache.load() == 2
    assert cache.get("old") == {"completion": "kept"} and cache.unverified_lines == 1
    assert cache.get("glued") is None and cache.damaged_lines == 1  # not JSON: caught even without a checksum


def test_a_refused_write_is_one_located_error_and_the_cache_takes_no_more(tmp_path: Path, monkeypatch):
    import errno
    import os

    from curate.generate.cache import CacheWriteError

    cache = ResponseCache(tmp_path / "c")
    cache.put_many([("a", {"completion": "kept"})])
    real_write = os.write

    def half_then_full(fd: int, data) -> int:  # a short write, then no space: what a filling disk does
        if fd != cache._fd:
            return real_write(fd, data)
        monkeypatch.setattr(os, "write", lambda *_: (_ for _ in ()).throw(OSError(errno.ENOSPC, "No space left on device")))
        return real_write(fd, bytes(data)[:10])

    monkeypatch.setattr(os, "write", half_then_full)
    with pytest.raises(CacheWriteError, match=r"^cannot write the response cache .*/c/segment-.*\.jsonl: \[Errno 28\] "):
        cache.put_many([("b", {"completion": "lost"}), ("c", {"completion": "lost"})])
    monkeypatch.undo()
    with pytest.raises(CacheWriteError):
        cache.put_many([("d", {"completion": "never written after a failure"})])
    cache.close()
    assert "what was written before (1 responses) is kept" in cache.error.hint
    reloaded = ResponseCache(tmp_path / "c")
    assert reloaded.load() == 1 and reloaded.torn_lines == 0 and reloaded.get("a") == {"completion": "kept"}


def test_a_cache_folder_that_is_a_file_is_refused_before_any_work(tmp_path: Path):
    from curate.generate.cache import CacheWriteError

    (tmp_path / "c").write_text("a file")
    with pytest.raises(CacheWriteError, match=r"cannot write the response cache .*/c: \[Errno (17|20)\]") as info:
        ResponseCache(tmp_path / "c").check_writable()
    assert info.value.exit_code == 1


# ---------------------------------------------------------------- redaction, response shapes, timeouts


def test_redact_removes_credentials_and_keeps_the_message():
    from curate.generate.redact import redact, secrets_of, shown_url, split_credentials

    key = "my-own-key-123456"
    text = (f'HTTP 400: headers {{"authorization": "Bearer {key}", "x-api-key": "{key}"}} from '
            "http://alice:pa%40ss@gpu1:8000/v1; also sk-proj-abcdef123456 and hf_abcdefghijk; a basic understanding")
    clean = redact(text, secrets_of(key, ["http://alice:pa%40ss@gpu1:8000/v1"]))
    for secret in (key, "pa%40ss", "pa@ss", "sk-proj-abcdef123456", "hf_abcdefghijk"):
        assert secret not in clean
    assert clean.startswith('HTTP 400: headers {"authorization": "Bearer ***", "x-api-key": "***"}')
    assert "http://alice:***@gpu1:8000/v1" in clean and "sk-***" in clean and "a basic understanding" in clean
    assert redact("Authorization: Basic YWxpY2U6cGFzcw==") == "Authorization: Basic ***"
    assert split_credentials("http://alice:pa%40ss@gpu1:8000/v1") == ("http://gpu1:8000/v1", ("alice", "pa@ss"))
    assert split_credentials("http://gpu1:8000/v1") == ("http://gpu1:8000/v1", None)
    assert shown_url("http://alice:pa%40ss@gpu1:8000/v1") == "http://alice:***@gpu1:8000/v1"


def test_content_parts_and_usage_counts_are_read_leniently():
    from curate.generate.backends.openai_api import _text, _usage

    assert _text([{"type": "text", "text": "a"}, {"type": "image_url", "image_url": {}}, "b",
                  {"type": "output_text", "text": "c"}]) == "abc"
    assert _text("plain") == "plain" and _text(None) is None
    with pytest.raises(TypeError):
        _text({"text": "a dict is not a content form"})
    assert _usage({"prompt_tokens": 12, "completion_tokens": 30.0}) == {"prompt_tokens": 12, "completion_tokens": 30}
    assert _usage({"prompt_tokens": "12", "completion_tokens": 1.5}) == {"prompt_tokens": None, "completion_tokens": None}
    assert _usage(None) == _usage("n/a") == _usage({"prompt_tokens": True}) == {"prompt_tokens": None,
                                                                                "completion_tokens": None}


def test_connect_and_read_timeouts_are_separate():
    import asyncio

    from curate.generate.backends.openai_api import OpenAIBackend
    from curate.generate.config import GenerateConfig

    config = GenerateConfig(teacher="m")
    assert (config.connect_timeout, config.read_timeout, config.timeout) == (10.0, 600.0, 900.0)

    async def timeout_of(**options) -> object:
        backend = OpenAIBackend(teacher="m", params=SamplingParams(), base_urls=["http://127.0.0.1:9/v1"], api_key=None,
                                concurrency=1, retry=RetryPolicy(), limiter=RateLimiter(), use_n=True, **options)
        async with backend._session() as session:
            return session.timeout

    timeout = asyncio.run(timeout_of(timeout=config.timeout, connect_timeout=config.connect_timeout,
                                     read_timeout=config.read_timeout))
    # connecting is aiohttp's (per new connection); waiting and the whole attempt are the backend's watchdog's
    assert (timeout.sock_connect, timeout.sock_read, timeout.total) == (10.0, None, None)


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


def test_a_dead_server_is_called_dead_before_its_requests_run_out_of_retries():
    """With the default options the 'stopped answering' rule must fire while requests are still being retried: once
    they have all spent their retries, the run can only end as 'every request failed' and never names the server.
    (The first default, 60 s, was longer than the shortest retry budget, 31.5 s: the real vLLM test caught it.)"""
    from curate.generate.config import GenerateConfig
    from curate.generate.retry import Failure, RetryPolicy

    config = GenerateConfig(teacher="t")
    policy = RetryPolicy(max_retries=config.max_retries, base_s=config.retry_base)

    class LowestDraw(random.Random):
        def uniform(self, a, b):
            return a

    failure = Failure("connection", "refused")
    shortest_budget = sum(policy.delay(attempt, failure, LowestDraw()) for attempt in range(config.max_retries))
    assert config.stop_after_s < shortest_budget
    assert config.stop_after_failures <= config.max_retries + 1
