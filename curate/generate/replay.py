"""A local OpenAI-compatible chat-completions server replaying recorded real completions (loopback only): the demo's
teacher (`[generate] replay = FILE` starts it for the run), the tests' teacher, and the benchmarks' server.

It answers `POST /v1/chat/completions` with recorded teacher responses from `dev_traces.jsonl.gz` (matched by the
question text in the prompt, else any recording; synthetic text when no file is given), after a settable latency,
with `n` choices, and can inject the faults a real endpoint shows: 429 with Retry-After or rate-limit headers, 500,
timeouts (no answer), malformed JSON, dropped connections, empty content and `finish_reason=length`, content as a list
of parts, usage that is missing or not numbers, a prompt over the context length (400), a 400 (or an error body
echoing the request's headers, the way some servers leak the API key). Faults can be aimed at the prompts containing a
text (`fault_for`: text -> fault). It can also play a greedy server (every sample the same text), a server that ignores or rejects
`n`, one behind HTTP basic auth, and one that dies (after some answers, or on the first request with a `seed`, like a
vLLM CPU engine) and then refuses everything. `GET /v1/models` lists the served models; an unknown model gets OpenAI's
404. With `max_model_len` it plays a vLLM server with that context: listed on /v1/models, and a request whose prompt
and max_tokens do not fit refused with vLLM's words (`prompt_token_factor` makes its token count denser than the
client's estimate). Every request is logged (its body hash, attempt, outcome) so a test can prove that no finished
request was sent twice.

It is a small asyncio HTTP/1.1 server (keep-alive, Content-Length bodies, no pipelining) rather than a web framework:
latency is a timer, not a sleeping coroutine, so one core serves thousands of requests per second and the benchmark
measures the client, not the server.

    with replay_server(traces=path, latency=0.2) as server:      # a thread in this process
        server.url                                                # http://127.0.0.1:PORT/v1
        server.configure(fault_script=["rate_limit"])             # every request's first attempt gets a 429
        server.log()                                              # [{key, attempt, status, finished, ...}]
    with replay_server_process(latency=0.2) as server: ...        # a subprocess: its own core, for benchmarks

Deterministic content: choice j of a request whose seed is s (0 when absent) is recording number s + j for that
question. So n samples in one request and n separate requests with seeds s, s+1, ... get the same texts, the way the
generate client numbers its samples.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import gzip
import hashlib
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FAULT_KINDS = ("rate_limit", "server_error", "timeout", "malformed_json", "drop", "empty", "length", "content_parts",
               "bad_usage", "huge_usage", "no_usage", "bad_request", "echo_headers", "context_length")
DEFAULT_MODEL = "replay-teacher"
#: outcomes that get an answer after the latency (the others are answered at once, held, or never answered)
_ANSWERED = frozenset({"ok", "rate_limit", "server_error", "malformed_json", "empty", "length", "content_parts",
                       "bad_usage", "huge_usage", "no_usage", "bad_request", "echo_headers", "context_length"})
#: what a vLLM server answers once its engine died
ENGINE_DEAD = "EngineCore encountered an issue. See stack trace (above) for the root cause."
LOOPBACK = "127.0.0.1"
_MAX_HEADER = 64 * 1024
_MAX_BODY = 16 * 1024 * 1024


@dataclass
class ReplayConfig:
    """What the server does; every field can be changed while it runs (`configure`)."""

    latency: float = 0.0
    models: list[str] = field(default_factory=lambda: [DEFAULT_MODEL])
    #: "ok": honour n; "ignore": always one choice (servers without n); "reject": 400 when n > 1
    n_mode: str = "ok"
    #: a request's `response_format` (structured output): "ignore" it (answer with the recording, as servers without
    #: structured output do), or "reject" it with a 400; the log records its type either way
    response_format: str = "ignore"
    #: kind -> probability per request (seeded by `seed`)
    faults: dict[str, float] = field(default_factory=dict)
    #: attempt k of every distinct request body gets fault_script[k]; later attempts are answered normally
    fault_script: list[str] = field(default_factory=list)
    #: text -> kind: every attempt of a request whose messages contain the text gets that fault
    fault_for: dict[str, str] = field(default_factory=dict)
    #: which headers a 429 carries: "retry-after", "x-ratelimit" (OpenAI's reset headers only), "both", "none"
    rate_limit_headers: str = "retry-after"
    retry_after: float = 1.0
    #: after this many finished responses, hold every new request unanswered (until `release` or hang_s)
    hold_after: int | None = None
    #: how long a 'timeout' fault or a held request keeps the connection before closing it (bounded)
    hang_s: float = 30.0
    seed: int = 0
    #: every sample of a prompt gets the same text, whatever its seed (a greedy server)
    greedy: bool = False
    #: "user:password": every route but the admin one wants this HTTP basic auth (else 401)
    basic_auth: str | None = None
    #: the server dies after this many finished answers (0: at the first request) ...
    dies_after: int | None = None
    #: ... or at the first request carrying a seed (a vLLM CPU engine: "CPU Generator does not use offset")
    dies_on_seed: bool = False
    #: how a dead server answers: "error" (HTTP 500, vLLM's EngineDeadError) or "drop" (connections reset)
    dead: str = "error"
    #: the served model's context in tokens, as vLLM's --max-model-len: reported on /v1/models, and a request whose
    #: prompt + max_tokens exceed it is refused with vLLM's 400 (a prompt alone at or over it too)
    max_model_len: int | None = None
    #: prompt tokens per 4 characters (1.0: the client's own estimate; more: a denser tokenizer than it assumes)
    prompt_token_factor: float = 1.0


# ---------------------------------------------------------------- recorded completions


@dataclass(frozen=True)
class Recording:
    content: str
    reasoning_content: str | None = None


_WS = re.compile(r"\s+")
_KEY_CHARS = 80


def _norm(text: str) -> str:
    return _WS.sub(" ", text).strip().lower()


class Recordings:
    """Recorded responses indexed by the start of their question text."""

    def __init__(self, path: str | os.PathLike[str] | None) -> None:
        self.by_question: dict[str, list[Recording]] = {}
        self.all: list[Recording] = []
        if path is not None and Path(path).exists():
            opener = gzip.open if str(path).endswith(".gz") else open
            with opener(path, "rt", encoding="utf-8") as fh:
                for line in fh:
                    row = json.loads(line)
                    if not row.get("response"):
                        continue
                    rec = Recording(row["response"], row.get("reasoning") or None)
                    self.all.append(rec)
                    self.by_question.setdefault(_norm(row["question"])[:_KEY_CHARS], []).append(rec)
        self._lookup: dict[str, tuple[bool, list[Recording]]] = {}

    def for_prompt(self, text: str) -> tuple[bool, list[Recording]]:
        """(matched, candidates): recordings of the question this prompt contains, else all recordings."""
        found = self._lookup.get(text)
        if found is None and not self.by_question:
            found = (False, self.all)
        if found is None:
            found = (False, self.all)
            # The question starts at some line of the prompt: try each line start (prompts are a few dozen lines).
            # Only the first _KEY_CHARS normalised characters matter: look at a bounded window from each line start.
            window = _KEY_CHARS * 3
            starts, newline = [0], text.find("\n")
            while newline >= 0:
                starts.append(newline + 1)
                newline = text.find("\n", newline + 1)
            for start in starts:
                rest = text[start:start + window]
                for candidate in (rest, rest.split(":", 1)[-1]):
                    hit = self.by_question.get(_norm(candidate)[:_KEY_CHARS])
                    if hit:
                        found = (True, hit)
                        break
                if found[0]:
                    break
            if len(self._lookup) < 200_000:
                self._lookup[text] = found
        return found


def _synthetic(prompt: str, index: int) -> Recording:
    letters = re.findall(r"^([A-E])\. ", prompt, flags=re.MULTILINE) or ["A"]
    digest = hashlib.sha256(f"{prompt}\x00{index}".encode()).hexdigest()
    letter = letters[int(digest[:8], 16) % len(letters)]
    body = " ".join(f"Step {k + 1}: consider finding {digest[k * 4:k * 4 + 4]}." for k in range(12))
    return Recording(f"<think>\n{body}\nSo the answer is {letter}.\n</think>\n<answer>{letter}</answer>")


def _prompt_text(request: dict[str, Any]) -> str:
    return "\n".join(str(m.get("content") or "") for m in request.get("messages") or [])


def _tokens(text: str | None) -> int:
    from curate.generate.requests import text_tokens  # the client's own estimate: one home for the rule

    return text_tokens(text)


# ---------------------------------------------------------------- HTTP


_REASONS = {200: "OK", 400: "Bad Request", 404: "Not Found", 411: "Length Required", 429: "Too Many Requests",
            500: "Internal Server Error"}


def _response(status: int, body: bytes, headers: dict[str, str] | None = None, close: bool = False) -> bytes:
    head = [f"HTTP/1.1 {status} {_REASONS.get(status, 'Status')}", "Content-Type: application/json",
            f"Content-Length: {len(body)}"]
    head += [f"{k}: {v}" for k, v in (headers or {}).items()]
    if close:
        head.append("Connection: close")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


def _error(status: int, message: str, kind: str, code: str | None = None) -> bytes:
    return json.dumps({"error": {"message": message, "type": kind, "code": code, "param": None}}).encode()


class _State:
    """Everything the connections share: config, recordings, the request log, held requests."""

    def __init__(self, config: ReplayConfig, recordings: Recordings) -> None:
        self.config = config
        self.recordings = recordings
        self.rng = random.Random(config.seed)
        self.log: list[dict[str, Any]] = []
        self.attempts: dict[str, int] = {}
        self.finished = 0
        self.held: set[_Connection] = set()
        self.connections: set[_Connection] = set()
        self.dead = False


class _Connection(asyncio.Protocol):
    def __init__(self, state: _State) -> None:
        self.state = state
        self.buf = bytearray()
        self.transport: asyncio.Transport | None = None
        self.timer: asyncio.TimerHandle | None = None
        self.busy = False
        self.entry: dict[str, Any] | None = None  # the log entry of the request being answered

    # -- transport events
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        self.state.connections.add(self)

    def connection_lost(self, exc: Exception | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        if self.entry is not None and "t1" not in self.entry:  # the client went away before its answer
            self.entry.update(t1=time.time(), abandoned=True)
        self.state.connections.discard(self)
        self.state.held.discard(self)
        self.transport = None

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while not self.busy and self.transport is not None:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                if len(self.buf) > _MAX_HEADER:
                    self.transport.abort()
                return
            head = bytes(self.buf[:end]).decode("latin-1").split("\r\n")
            try:
                method, target, _ = head[0].split(" ", 2)
            except ValueError:
                self.transport.abort()
                return
            headers = {}
            for line in head[1:]:
                key, _, value = line.partition(":")
                headers[key.strip().lower()] = value.strip()
            if "chunked" in headers.get("transfer-encoding", ""):
                self.send(_response(411, _error(411, "chunked bodies are not supported", "invalid_request_error")),
                          close=True)
                return
            length = int(headers.get("content-length") or 0)
            if length > _MAX_BODY:
                self.transport.abort()
                return
            if len(self.buf) < end + 4 + length:
                return
            body = bytes(self.buf[end + 4:end + 4 + length])
            del self.buf[:end + 4 + length]
            self.busy = True  # one request at a time per connection (clients do not pipeline)
            self.handle(method, target.split("?", 1)[0], body, headers)

    def send(self, payload: bytes, close: bool = False) -> None:
        self.busy = False
        self.timer = None
        if self.transport is not None:
            self.transport.write(payload)
            if close:
                self.transport.close()
            elif self.buf:
                self.data_received(b"")

    def later(self, delay: float, callback: Any, *args: Any) -> None:
        loop = asyncio.get_running_loop()
        self.timer = loop.call_later(delay, callback, *args) if delay > 0 else loop.call_soon(callback, *args)

    # -- routing
    def handle(self, method: str, path: str, body: bytes, headers: dict[str, str]) -> None:
        auth = self.state.config.basic_auth
        if path.startswith("/_replay/"):
            try:
                self.send(_response(200, json.dumps(self.admin(path, body)).encode()))
            except (KeyError, ValueError, TypeError) as exc:
                self.send(_response(400, _error(400, f"bad admin request: {exc!r}", "invalid_request_error")))
        elif auth is not None and headers.get("authorization") != "Basic " + base64.b64encode(auth.encode()).decode():
            self.send(_response(401, _error(401, "Unauthorized: basic auth required", "invalid_request_error"),
                                {"WWW-Authenticate": 'Basic realm="replay"'}))
        elif method == "GET" and path.rstrip("/") in ("/v1/models", "/models"):
            data = [{"id": m, "object": "model", "created": 0, "owned_by": "replay"} for m in self.state.config.models]
            if self.state.config.max_model_len is not None:  # as vLLM lists its models
                data = [{**m, "max_model_len": self.state.config.max_model_len} for m in data]
            self.send(_response(200, json.dumps({"object": "list", "data": data}).encode()))
        elif method == "POST" and path.rstrip("/") in ("/v1/chat/completions", "/chat/completions"):
            self.chat(body, headers)
        else:
            self.send(_response(404, _error(404, f"no route {method} {path}", "invalid_request_error")))

    def admin(self, path: str, body: bytes) -> Any:
        state = self.state
        if path == "/_replay/config":
            if body:
                changes = json.loads(body)
                _check(changes)
                for key, value in changes.items():
                    setattr(state.config, key, value)
                state.rng.seed(state.config.seed)
            return asdict(state.config)
        if path == "/_replay/log":
            return state.log
        if path == "/_replay/reset":
            state.log.clear()
            state.attempts.clear()
            state.finished = 0
            state.dead = False
            return {"ok": True}
        if path == "/_replay/release":
            state.config.hold_after = None
            for conn in list(state.held):
                if conn.transport is not None:
                    conn.transport.abort()
            return {"ok": True}
        if path == "/_replay/stats":
            return {"requests": len(state.log), "finished": state.finished, "connections": len(state.connections),
                    "held": len(state.held),
                    "answering": sum(1 for e in state.log if e["status"] in _ANSWERED and "t1" not in e),
                    "cpu_s": time.process_time()}
        return {"error": f"unknown admin path {path}"}

    def chat(self, body: bytes, headers: dict[str, str]) -> None:
        state, config = self.state, self.state.config
        key = hashlib.sha256(body).hexdigest()[:16]
        attempt = state.attempts.get(key, 0)
        state.attempts[key] = attempt + 1
        entry: dict[str, Any] = {"t0": time.time(), "key": key, "attempt": attempt, "status": None, "finished": False}
        state.log.append(entry)
        self.entry = entry
        try:
            request = json.loads(body)
        except json.JSONDecodeError:
            entry["status"] = "bad_request"
            self.send(_response(400, _error(400, "request body is not JSON", "invalid_request_error")))
            return
        n = int(request.get("n") or 1)
        response_format = (request.get("response_format") or {}).get("type")
        entry.update(model=request.get("model"), n=n, seed=request.get("seed"), response_format=response_format)
        if request.get("model") not in config.models:
            entry["status"] = "unknown_model"
            message = f"The model `{request.get('model')}` does not exist or you do not have access to it."
            self.send(_response(404, _error(404, message, "invalid_request_error", "model_not_found")))
            return
        if request.get("stream"):
            entry["status"] = "bad_request"
            self.send(_response(400, _error(400, "streaming is not supported by the replay server", "invalid_request_error")))
            return
        if config.max_model_len is not None and self._over_context(request, entry):
            return
        if response_format and config.response_format == "reject":
            entry["status"] = "bad_request"
            self.send(_response(400, _error(400, "response_format is not supported by this server",
                                            "invalid_request_error", "response_format")))
            return
        if n > 1 and config.n_mode == "reject":
            entry["status"] = "n_rejected"
            self.send(_response(400, _error(400, "n > 1 is not supported by this server", "invalid_request_error", "n")))
            return
        if config.hold_after is not None and state.finished >= config.hold_after:
            entry["status"] = "held"
            state.held.add(self)
            self.later(config.hang_s, self._close)
            return
        if (config.dies_on_seed and request.get("seed") is not None) or (
                config.dies_after is not None and state.finished >= config.dies_after):
            state.dead = True
        if state.dead:
            entry.update(status="dead", t1=time.time())
            if config.dead == "drop":
                self._abort()
            else:
                self.send(_response(500, _error(500, ENGINE_DEAD, "EngineDeadError")))
            return
        fault = config.fault_script[attempt] if attempt < len(config.fault_script) else None
        if fault is None and config.fault_for:
            text = _prompt_text(request)
            fault = next((kind for needle, kind in config.fault_for.items() if needle in text), None)
        if fault is None and config.faults:
            draw = state.rng.random()
            for kind, probability in config.faults.items():
                if draw < probability:
                    fault = kind
                    break
                draw -= probability
        entry["status"] = fault or "ok"
        if fault == "timeout":
            self.later(config.hang_s, self._close)
        elif fault == "drop":
            self.later(config.latency, self._abort)
        else:
            self.later(config.latency, self._answer, request, n, fault, entry, headers)

    def _over_context(self, request: dict[str, Any], entry: dict[str, Any]) -> bool:
        """vLLM's check of a request against the model's context, and its refusals word for word."""
        context, prompt = self.state.config.max_model_len, self._prompt_tokens(request)
        max_tokens = request.get("max_tokens") or request.get("max_completion_tokens")
        if prompt >= context:
            message = (f"This model's maximum context length is {context} tokens. However, your request has {prompt} "
                       "input tokens. Please reduce the length of the input messages.")
        elif max_tokens and prompt + int(max_tokens) > context:
            message = (f"'max_tokens' or 'max_completion_tokens' is too large: {max_tokens}. This model's maximum "
                       f"context length is {context} tokens and your request has {prompt} input tokens ({max_tokens} > "
                       f"{context} - {prompt}).")
        else:
            return False
        entry.update(status="context_length", t1=time.time(), prompt_tokens=prompt, max_tokens=max_tokens)
        self.send(_response(400, _error(400, message, "BadRequestError")))
        return True

    def _prompt_tokens(self, request: dict[str, Any]) -> int:
        return int(_tokens(_prompt_text(request)) * self.state.config.prompt_token_factor + 0.5)

    def _close(self) -> None:
        if self.transport is not None:
            self.transport.close()

    def _abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _answer(self, request: dict[str, Any], n: int, fault: str | None, entry: dict[str, Any],
                headers: dict[str, str]) -> None:
        config = self.state.config
        if fault == "rate_limit":
            headers = {}
            if config.rate_limit_headers in ("retry-after", "both"):
                headers["Retry-After"] = f"{config.retry_after:g}"
            if config.rate_limit_headers in ("x-ratelimit", "both"):
                headers.update({"x-ratelimit-limit-requests": "60", "x-ratelimit-remaining-requests": "0",
                                "x-ratelimit-reset-requests": f"{config.retry_after:g}s"})
            self.send(_response(429, _error(429, "Rate limit reached for requests", "requests", "rate_limit_exceeded"),
                                headers))
        elif fault == "server_error":
            self.send(_response(500, _error(500, "The server had an error while processing your request.", "server_error")))
        elif fault == "context_length":  # vLLM's refusal of a prompt longer than the model's context
            message = ("This model's maximum context length is 512 tokens. However, your request has 900 input tokens. "
                       "Please reduce the length of the input messages.")
            self.send(_response(400, _error(400, message, "BadRequestError")))
        elif fault == "malformed_json":
            self.send(_response(200, b'{"id": "chatcmpl-replay", "object": "chat.completion", "choices": [{"index": 0, "mess'))
        elif fault == "bad_request":
            self.send(_response(400, _error(400, "Unsupported parameter for this model.", "invalid_request_error")))
        elif fault == "echo_headers":  # some proxies and servers quote the request back in their error
            self.send(_response(400, _error(400, f"could not route request with headers {json.dumps(headers)}",
                                            "invalid_request_error")))
        else:
            self.send(_response(200, json.dumps(self._completion(request, n, fault, entry)).encode()))
            entry["finished"] = True
            self.state.finished += 1
        entry["t1"] = time.time()

    def _completion(self, request: dict[str, Any], n: int, fault: str | None, entry: dict[str, Any]) -> dict[str, Any]:
        messages = request.get("messages") or []
        prompt = _prompt_text(request)
        user = next((str(m.get("content") or "") for m in reversed(messages) if m.get("role") == "user"), prompt)
        matched, candidates = self.state.recordings.for_prompt(user)
        entry["matched"] = matched
        base = int(request.get("seed") or 0)
        choices, completion_tokens = [], 0
        max_tokens = int(request.get("max_tokens") or request.get("max_completion_tokens") or 0)
        entry["max_tokens"] = max_tokens or None
        if not max_tokens and self.state.config.max_model_len is not None:  # vLLM: the room the prompt leaves
            max_tokens = self.state.config.max_model_len - self._prompt_tokens(request)
        for j in range(1 if self.state.config.n_mode == "ignore" else n):
            index = 0 if self.state.config.greedy else base + j
            rec = candidates[index % len(candidates)] if candidates else _synthetic(user, index)
            content, reasoning, finish = rec.content, rec.reasoning_content, "stop"
            if fault == "empty":
                content, reasoning = "", None
            elif fault == "length" or (max_tokens and _tokens(content) + _tokens(reasoning) > max_tokens):
                # Truncated as a real server would: the text runs out mid-way and finish_reason says why.
                keep = max(1, min(len(content) // 2, max_tokens * 4 if max_tokens else len(content)))
                content, finish = content[:keep], "length"
            message: dict[str, Any] = {"role": "assistant", "content": content}
            if fault == "content_parts":  # the list form some servers send; only the text parts carry the answer
                half = len(content) // 2
                message["content"] = [{"type": "text", "text": content[:half]}, {"type": "text", "text": content[half:]}]
            if reasoning:
                message["reasoning_content"] = reasoning
            choices.append({"index": j, "message": message, "finish_reason": finish, "logprobs": None})
            completion_tokens += _tokens(content) + _tokens(reasoning)
        prompt_tokens = self._prompt_tokens(request)
        body = {"id": f"chatcmpl-replay-{entry['key']}-{entry['attempt']}", "object": "chat.completion",
                "created": int(entry["t0"]), "model": request.get("model"), "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}
        if fault == "bad_usage":
            body["usage"] = {"prompt_tokens": "n/a", "completion_tokens": completion_tokens + 0.5, "total_tokens": None}
        elif fault == "huge_usage":  # a whole number no model could have produced
            body["usage"] = {"prompt_tokens": prompt_tokens, "completion_tokens": 1e30, "total_tokens": 1e30}
        elif fault == "no_usage":
            del body["usage"]
        return body


async def serve(config: ReplayConfig, recordings: Recordings, port: int = 0,
                ready: Any = None, stop: asyncio.Event | None = None) -> None:
    """Run the server on 127.0.0.1 until `stop` is set; `ready(port)` is called once it listens."""
    state = _State(config, recordings)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(lambda: _Connection(state), LOOPBACK, port, backlog=4096, reuse_address=True)
    try:
        if ready is not None:
            ready(server.sockets[0].getsockname()[1])
        await (stop or asyncio.Event()).wait()
    finally:
        server.close()
        for conn in list(state.connections):
            if conn.transport is not None:
                conn.transport.abort()
        await server.wait_closed()


# ---------------------------------------------------------------- handles: a thread or a subprocess


class ReplayHandle:
    """Talks to a running replay server through its admin endpoints (the same for a thread or a subprocess)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.base = f"http://{LOOPBACK}:{port}"
        self.url = f"{self.base}/v1"

    def _call(self, path: str, payload: Any = None) -> Any:
        data = None if payload is None else json.dumps(payload).encode()
        request = urllib.request.Request(self.base + path, data=data, method="POST" if data is not None else "GET")
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self._call("/_replay/config", changes)

    def log(self) -> list[dict[str, Any]]:
        return self._call("/_replay/log")

    def stats(self) -> dict[str, Any]:
        return self._call("/_replay/stats")

    def reset(self) -> None:
        self._call("/_replay/reset", {})

    def release(self) -> None:
        """Stop holding requests; held connections are dropped (their clients retry)."""
        self._call("/_replay/release", {})


def _check(options: dict[str, Any]) -> None:
    for key in options:
        if key not in ReplayConfig.__dataclass_fields__:
            raise TypeError(f"unknown replay server option {key!r}")
    kinds = [*(options.get("fault_script") or []), *(options.get("faults") or {}), *(options.get("fault_for") or {}).values()]
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise ValueError(f"unknown fault {unknown[0]!r}; known: {', '.join(FAULT_KINDS)}")


def _config(**options: Any) -> ReplayConfig:
    _check(options)
    config = ReplayConfig()
    for key, value in options.items():
        setattr(config, key, value)
    return config


@contextlib.contextmanager
def replay_server(traces: str | os.PathLike[str] | None = None, **options: Any) -> Iterator[ReplayHandle]:
    """Run the server in a background thread of this process (its own event loop); stopped on exit."""
    config, recordings = _config(**options), Recordings(traces)
    started = threading.Event()
    box: dict[str, Any] = {}

    def run() -> None:
        loop = asyncio.new_event_loop()
        box["loop"], box["stop"] = loop, asyncio.Event()

        def ready(port: int) -> None:
            box["port"] = port
            started.set()

        try:
            loop.run_until_complete(serve(config, recordings, 0, ready, box["stop"]))
        except BaseException as exc:  # surfaced to the caller below
            box["error"] = exc
            started.set()
        finally:
            loop.close()

    thread = threading.Thread(target=run, name="replay-server", daemon=True)
    thread.start()
    if not started.wait(30) or "error" in box:
        raise RuntimeError(f"replay server did not start: {box.get('error')}")
    try:
        yield ReplayHandle(box["port"])
    finally:
        box["loop"].call_soon_threadsafe(box["stop"].set)
        thread.join(10)


@contextlib.contextmanager
def replay_server_process(traces: str | os.PathLike[str] | None = None, **options: Any) -> Iterator[ReplayHandle]:
    """Run the server in a subprocess (a core of its own: for benchmarks); stopped on exit."""
    _config(**options)  # fail here, not in the child, on a bad option
    args = [sys.executable, "-m", "curate.generate.replay", "--config", json.dumps(options)]
    if traces is not None:
        args += ["--traces", str(traces)]
    root = str(Path(__file__).resolve().parents[2])
    env = {**os.environ, "PYTHONPATH": root + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=None, text=True, env=env)
    try:
        line = proc.stdout.readline() if proc.stdout else ""
        if not line.startswith("READY "):
            raise RuntimeError(f"replay server did not start (exit {proc.poll()})")
        yield ReplayHandle(int(line.split()[1]))
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Replay OpenAI-compatible server (loopback only, for tests/benchmarks).")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--traces", default=None, help="dev_traces.jsonl.gz (synthetic text when absent)")
    parser.add_argument("--latency", type=float, default=None)
    parser.add_argument("--config", default="{}", help="ReplayConfig fields as JSON")
    args = parser.parse_args(argv)
    options = json.loads(args.config)
    if args.latency is not None:
        options["latency"] = args.latency
    config, recordings = _config(**options), Recordings(args.traces)

    def ready(port: int) -> None:
        print(f"READY {port} http://{LOOPBACK}:{port}/v1", flush=True)

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_until_signal(config, recordings, args.port, ready))


async def _serve_until_signal(config: ReplayConfig, recordings: Recordings, port: int, ready: Any) -> None:
    import signal

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await serve(config, recordings, port, ready, stop)


if __name__ == "__main__":
    main()
