"""Teacher backends. Each takes units of work (a job and the sample indices still wanted) and reports finished
responses and final failures to a sink; the runner owns the cache, progress and output order.

- `openai`: any OpenAI-compatible HTTP server (vLLM, SGLang, OpenAI), many concurrent requests, several endpoints.
- `vllm`: vLLM's offline engine in this process (GPU only; imported lazily).
- `transformers`: a local model through transformers (small runs without a server).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Protocol

from curate.generate.requests import Job
from curate.generate.retry import Failure
from curate.stage import StageError

BACKENDS = ("openai", "vllm", "transformers")


class GenerateError(StageError):
    """A problem that makes every request fail (unreachable server, unknown model, bad key): stop with one clear
    message instead of writing an error into every trace. Finished responses are already in the cache."""

    exit_code = 3

    def __init__(self, message: str, hint: str | None = "finished responses are kept in the cache; re-run the command "
                 "to continue") -> None:
        super().__init__(message, hint)


@dataclass
class Unit:
    """One request's worth of work: a job and the sample indices it should produce."""

    job: Job
    samples: list[int]
    attempt: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


class Sink(Protocol):
    def finished(self, unit: Unit, responses: list[tuple[int, dict[str, Any]]]) -> None: ...

    def failed(self, unit: Unit, sample_index: int, failure: Failure, attempts: int) -> None: ...

    def attempted(self, failure: Failure | None, usage: dict[str, Any] | None = None) -> None: ...

    def note(self, kind: str, subject: str, message: str) -> None:
        """Something the user should hear about once per subject (`n_ignored`, a server URL): a warning and a
        report field."""


class Backend(Protocol):
    async def run(self, units: list[Unit], sink: Sink) -> None: ...


def response(completion: str | None, *, reasoning_content: str | None = None, finish_reason: str | None = None,
             prompt_tokens: int | None = None, completion_tokens: int | None = None,
             latency_s: float | None = None) -> dict[str, Any]:
    """The cached form of one sample's response (the Trace fields a backend fills)."""
    return {"completion": completion, "reasoning_content": reasoning_content, "finish_reason": finish_reason,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens},
            "latency_s": None if latency_s is None else round(latency_s, 4)}


def split_tokens(total: int | None, weights: list[int]) -> list[int | None]:
    """A request's completion tokens shared among its choices by text length (servers report one total for n)."""
    if total is None:
        return [None] * len(weights)
    if len(weights) == 1:
        return [total]
    whole = sum(weights) or len(weights)
    shares = [total * (w or (0 if sum(weights) else 1)) // whole for w in weights]
    shares[-1] += total - sum(shares)
    return shares


def make_backend(name: str, **options: Any) -> Backend:
    if name == "openai":
        from curate.generate.backends.openai_api import OpenAIBackend

        return OpenAIBackend(**options)
    if name == "vllm":
        from curate.generate.backends.vllm_offline import VLLMBackend

        return VLLMBackend(**options)
    if name == "transformers":
        from curate.generate.backends.local_transformers import TransformersBackend

        return TransformersBackend(**options)
    raise ValueError(f"unknown backend {name!r}; known: {', '.join(BACKENDS)}")
