"""vLLM's offline engine in this process (`LLM.chat` with `SamplingParams(n=...)`): a GPU machine without a server.

vLLM ships CUDA wheels only, so it is imported when this backend runs (`pip install 'curate[vllm]'`). Jobs go to the
engine in chunks, and each chunk's responses reach the cache before the next starts, so an interrupted run loses at
most one chunk.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from curate.generate.backends import GenerateError, Sink, Unit, response
from curate.generate.requests import SamplingParams

CHUNK = 512


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
        except ImportError as exc:
            raise GenerateError(f"the vllm backend needs vLLM on a CUDA machine: pip install 'curate[vllm]' ({exc})") from None
        return vllm, vllm.LLM(model=self.teacher, **self.engine_options)

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
            for unit, pairs, usage in await asyncio.to_thread(self._run_chunk, vllm, llm, units[start:start + self.chunk]):
                sink.attempted(None, usage)
                sink.finished(unit, pairs)


__all__ = ["VLLMBackend", "sampling_kwargs"]
