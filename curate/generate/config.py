"""The generate stage's options and report: the one home of each option, its default, range and help."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, field_validator

from curate.stage import StageConfig, StageReport, option


def parse_shard(text: str | None) -> tuple[int, int] | None:
    """`I/N` (0-based I) -> (I, N)."""
    if not text:
        return None
    try:
        index, count = (int(part) for part in text.split("/"))
    except ValueError:
        raise ValueError(f"--shard expects I/N with whole numbers (e.g. 0/4), got {text!r}") from None
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: expected 0 <= I < N (shards are numbered from 0)")
    return index, count


class GenerateConfig(StageConfig):
    teacher: str = option(..., "model name (served name, Hub id or local directory)")
    backend: Literal["openai", "vllm", "transformers"] | None = option(
        None, "openai (any OpenAI-compatible server) | vllm (offline engine) | transformers (local model); default: "
        "openai when a server URL is given (--base-url or $OPENAI_BASE_URL), else transformers")
    base_urls: list[str] | None = option(None, "server URL ending in /v1; repeat to balance over several", flag="--base-url",
                                         volatile=True)
    prompt: str | None = option(None, "template name or .txt path (default: per question: multiple_choice, or "
                                "multiple_choice_context when it has a context)")
    samples: int = option(1, "completions per question", ge=1, short="-n")
    temperature: float = option(0.7, "sampling temperature", ge=0)
    top_p: float = option(1.0, "nucleus sampling", gt=0, le=1)
    max_tokens: int = option(2048, "most tokens per completion", ge=1)
    seed: int | None = option(None, "sample i of a prompt gets seed + i")
    concurrency: int = option(64, "requests in flight (openai backend)", ge=1, volatile=True)
    rpm: float | None = option(None, "requests per minute limit", ge=0, volatile=True)
    tpm: float | None = option(None, "tokens per minute limit", ge=0, volatile=True)
    connect_timeout: float = option(10.0, "seconds to open a connection to a server before the attempt counts as "
                                    "failed (a host that is down or unreachable fails fast)", gt=0, volatile=True)
    read_timeout: float = option(600.0, "seconds to wait for the server's answer before the attempt counts as timed "
                                 "out; an answer that is not streamed arrives all at once, so this is the longest one "
                                 "completion may take", gt=0, volatile=True)
    timeout: float = option(900.0, "most seconds one attempt may take in all (connecting, waiting, reading)", gt=0,
                            volatile=True)
    max_retries: int = option(6, "retries per request (429, 5xx, timeouts, ...)", ge=0, volatile=True)
    stop_after_failures: int = option(4, "stop the run when every server has failed this many attempts in a row (no "
                                      "connection, no answer in time, HTTP 5xx, an unreadable answer) and answered "
                                      "nothing for --stop-after-s: the server stopped answering; also when the first "
                                      "this many questions of a fresh run all failed for good", ge=1,
                                      volatile=True)
    # Below the shortest retry budget of one request (6 retries from a 1 s step: 31.5-63 s of backoff), so a dead
    # server stops the run before its requests run out of retries and end as "every request failed".
    stop_after_s: float = option(30.0, "seconds a server may fail every attempt before the run stops (see "
                                 "--stop-after-failures); a shorter outage is waited out by the retries", gt=0,
                                 volatile=True)
    retry_base: float = option(1.0, "seconds of the first backoff step", gt=0, volatile=True, cli=False)
    cache_dir: Path | None = option(None, "response cache folder (default: OUTPUT.cache); share it between runs and "
                                    "pipelines", flag="--cache", volatile=True)
    shard: str | None = option(None, "I/N: this machine's share (0 <= I < N), by question id")
    limit: int | None = option(None, "only the first N questions", ge=1)
    api_key_env: str | None = option(None, "environment variable holding the API key (default OPENAI_API_KEY)",
                                     volatile=True)
    use_n: bool = option(True, "one request for all samples of a question when the server supports n "
                               "(--no-n: one request per sample)", flag="--n")
    max_failed_fraction: float = option(0.0, "share of samples that may end in an error (after their retries) with "
                                        "the stage still succeeding; above it the stage fails (exit 1) once the "
                                        "rest is written, and a re-run retries exactly the failed requests",
                                        ge=0, le=1)
    replay: Path | None = option(None, "a file of recorded completions (examples/demo/recording.jsonl.gz): a replay "
                                 "server on loopback answers with them for this run, as the teacher")
    backend_options: dict[str, Any] = option(default_factory=dict, help="keyword options for the backend (vllm.LLM "
                                             "arguments, transformers device/dtype)", cli=False)

    @field_validator("replay", mode="before")
    @classmethod
    def _no_replay(cls, value: Any) -> Any:
        return None if value == "" else value  # `replay = "${CURATE_REPLAY-...}"` with CURATE_REPLAY="": no recording

    @field_validator("shard")
    @classmethod
    def _shard(cls, value: str | None) -> str | None:
        parse_shard(value)
        return value

    def resolved_backend(self) -> str:
        if self.replay is not None:
            return "openai"
        if self.backend:
            return self.backend
        return "openai" if self.base_urls or os.environ.get("OPENAI_BASE_URL") else "transformers"

    def sampling(self) -> Any:
        from curate.generate.requests import SamplingParams

        return SamplingParams(temperature=self.temperature, top_p=self.top_p, max_tokens=self.max_tokens,
                              seed=self.seed)


class GenerateReport(StageReport):
    teacher: str
    backend: str
    prompt: str | None
    samples: int
    params: dict[str, Any]
    shard: str | None = None
    limit: int | None = None
    cache_dir: str
    traces_with_error: int = 0
    questions: int = 0
    samples_total: int = 0
    from_cache: int = 0
    generated: int = 0
    failed: int = 0
    requests: int = 0
    responses: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    requests_without_usage: int = Field(0, description="answered requests whose usage was missing or not whole "
                                        "numbers: their tokens are unknown (the token totals are lower bounds)")
    failed_attempts_by_kind: dict[str, int] = Field(default_factory=dict)
    errors_by_kind: dict[str, int] = Field(default_factory=dict, description="failed samples (an error in the trace) "
                                           "per failure kind")
    n_ignored: list[str] = Field(default_factory=list, description="servers that ignored or refused `n`: each of "
                                 "their samples was asked in a request of its own")
    max_tokens_capped: list[str] = Field(default_factory=list, description="servers whose context (max_model_len, "
                                         "from their /models) cannot hold max_tokens beside a prompt: each request "
                                         "to them asked for at most the room its prompt left")
    identical_samples: int = Field(0, description="samples byte-identical to an earlier sample of the same question "
                                   "although temperature > 0 (a greedy server, an ignored seed)")
    damaged_cache_lines: int = Field(0, description="cache lines that failed their checksum or were cut short (a "
                                     "truncated segment): never used (an intact copy was read instead, or the response "
                                     "asked again)")
    unverified_cache_lines: int = Field(0, description="responses read from cache lines written before checksums "
                                        "(trusted as written)")
    generation_s: float = 0.0
    requests_per_s: float | None = None

    def summary(self) -> str:
        line = f"{self.stage}: wrote {self.rows_out} traces for {self.questions} questions"
        if self.incomplete:
            line += f" ({self.incomplete} with an error: re-run to retry them)"
        return line + f" in {self.wall_s:.1f}s"

    def details(self) -> list[str]:
        lines = [f"samples {self.samples_total}: from cache {self.from_cache}, generated {self.generated}, failed "
                 f"(error in trace) {self.failed}",
                 f"requests sent {self.requests}, responses {self.responses}, tokens in {self.prompt_tokens}, tokens "
                 f"out {self.completion_tokens}, requests/s {self.requests_per_s}"]
        lines += [f"failed attempts: {k} {v}" for k, v in self.failed_attempts_by_kind.items()]
        lines += [f"errors: {k} {v}" for k, v in self.errors_by_kind.items()]
        return lines


def default(name: str) -> Any:
    """An option's default (for the few lower-level classes that take it as a plain argument)."""
    return GenerateConfig.model_fields[name].get_default(call_default_factory=True)
