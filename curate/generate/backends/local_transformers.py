"""A local model through transformers: the embedded teacher for small runs without a server (CPU or one GPU).

One job at a time: the prompt is encoded once and `num_return_sequences` gives its samples. The random generator is
seeded from the job's first cache key, so the same request gives the same text in an interrupted and an
uninterrupted run. Generation runs in a worker thread so the event loop (progress, cache writes) stays free.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from curate.generate.backends import GenerateError, Sink, Unit, response
from curate.generate.requests import SamplingParams
from curate.generate.retry import Failure

NO_TEACHER_HINT = (
    "Three ways forward:\n"
    "  1. the demo's recorded teacher (no model, no network): bash scripts/quickstart.sh, or [generate] replay = "
    "\"examples/demo/recording.jsonl.gz\" with teacher = \"demo-recording\"\n"
    "  2. a server holding the teacher (vLLM, SGLang, OpenAI): [generate] base_urls = [\"http://HOST:8000/v1\"] "
    "(or OPENAI_BASE_URL) and teacher = its served name (CURATE_TEACHER for the example configs)\n"
    "  3. a model this machine has: a local folder, or a Hub id already in the Hugging Face cache (download it once "
    "on a networked machine: hf download MODEL)")


def cached_locally(model: str) -> bool:
    """Whether a Hub id's config is in the local Hugging Face cache (so loading needs no network)."""
    try:
        from huggingface_hub import try_to_load_from_cache

        return isinstance(try_to_load_from_cache(model, "config.json"), str)
    except Exception:  # an id huggingface_hub cannot parse: not cached
        return False


def hub_reachable(timeout: float = 3.0) -> bool:
    """Whether the Hub answers at all (seconds, not the minute of retries a download attempt takes offline)."""
    import os
    import socket
    from urllib.parse import urlparse

    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    host = urlparse(os.environ.get("HF_ENDPOINT") or "https://huggingface.co").hostname or "huggingface.co"
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        return True
    except OSError:
        return False


class TransformersBackend:
    def __init__(self, *, teacher: str, params: SamplingParams, device: str | None = None,
                 dtype: str | None = None) -> None:
        self.teacher = teacher
        self.params = params
        self.device = device
        self.dtype = dtype
        self._model: Any = None
        self._tokenizer: Any = None

    def load(self) -> None:
        local = Path(self.teacher).is_dir() or cached_locally(self.teacher)
        if not local and not hub_reachable():  # said in seconds, before torch loads and the Hub client retries
            raise GenerateError(f"cannot load the teacher {self.teacher!r}: it is neither a local folder nor in the "
                                "Hugging Face cache, and the Hub cannot be reached from here", hint=NO_TEACHER_HINT)
        try:
            import torch
            from transformers import AutoModelForCausalLM, AutoTokenizer
        except ImportError as exc:
            raise GenerateError(f"the transformers backend needs torch and transformers: pip install 'curate[train]' "
                                f"({exc})") from None
        try:
            self._tokenizer = AutoTokenizer.from_pretrained(self.teacher, local_files_only=local)
            kwargs = {"dtype": getattr(torch, self.dtype)} if self.dtype else {}
            self._model = AutoModelForCausalLM.from_pretrained(self.teacher, local_files_only=local, **kwargs)
        except (OSError, ValueError) as exc:
            raise GenerateError(f"cannot load the teacher {self.teacher!r} with transformers: "
                                f"{str(exc).splitlines()[0][:300]}", hint=NO_TEACHER_HINT) from None
        device = self.device or ("cuda" if torch.cuda.is_available() else "cpu")
        self._model.to(device).eval()
        if self._tokenizer.chat_template is None:
            raise GenerateError(f"{self.teacher!r} has no chat template; use an instruction-tuned model")

    def _generate(self, unit: Unit) -> list[tuple[int, dict[str, Any]]]:
        import torch

        tokenizer, model, p = self._tokenizer, self._model, self.params
        encoded = tokenizer.apply_chat_template(unit.job.messages, add_generation_prompt=True, return_tensors="pt",
                                                return_dict=True)
        input_ids = encoded["input_ids"].to(model.device)
        attention = encoded["attention_mask"].to(model.device)
        torch.manual_seed(int(unit.job.keys[unit.samples[0]][:8], 16) + (p.seed or 0))
        sample = p.temperature > 0
        started = time.perf_counter()
        with torch.no_grad():
            out = model.generate(input_ids=input_ids, attention_mask=attention, max_new_tokens=p.max_tokens,
                                 do_sample=sample, temperature=p.temperature if sample else None,
                                 top_p=p.top_p if sample else None, num_return_sequences=len(unit.samples),
                                 pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
        latency = time.perf_counter() - started
        results = []
        prompt_len = input_ids.shape[1]
        for index, row in zip(unit.samples, out[:, prompt_len:]):
            tokens = row.tolist()
            ended = tokenizer.eos_token_id in tokens
            if ended:
                tokens = tokens[:tokens.index(tokenizer.eos_token_id)]
            while tokens and tokens[-1] == tokenizer.pad_token_id:
                tokens.pop()
            text = tokenizer.decode(tokens, skip_special_tokens=True)
            results.append((index, response(text, finish_reason="stop" if ended else "length", prompt_tokens=prompt_len,
                                            completion_tokens=len(tokens), latency_s=latency)))
        return results

    async def run(self, units: list[Unit], sink: Sink) -> None:
        if self._model is None:  # a second round (damaged cache lines asked again) reuses the model
            await asyncio.to_thread(self.load)
        for unit in units:
            try:
                results = await asyncio.to_thread(self._generate, unit)
            except (RuntimeError, ValueError) as exc:  # e.g. out of memory, a prompt longer than the model's context
                failure = Failure("local_error", str(exc)[:500])
                sink.attempted(failure)
                for index in unit.samples:
                    sink.failed(unit, index, failure, 1)
                continue
            sink.attempted(None, {"prompt_tokens": results[0][1]["usage"]["prompt_tokens"],
                                  "completion_tokens": sum(r["usage"]["completion_tokens"] for _, r in results)})
            empty = [i for i, r in results if not r["completion"]]
            sink.finished(unit, [(i, r) for i, r in results if r["completion"]])
            for index in empty:  # a random or tiny model may stop at once: say so rather than keep an empty trace
                sink.failed(unit, index, Failure("empty_completion", "the model produced no text"), 1)
