"""What is asked of the teacher: one `Job` per question (its prompt and samples), the sampling parameters, and the
content-hash key of each sample's request (the cache key)."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from curate.generate.config import default
from curate.records import Question, make_trace_id, stable_hash

#: Characters per token of English text under the BPE tokenizers teachers use (OpenAI's rule of thumb); the replay
#: server counts usage the same way. Used where no tokenizer is at hand: pacing --tpm, fitting a request into a
#: server's context, the dry run's estimate.
CHARS_PER_TOKEN = 4
#: Tokens a chat template adds around each message (role markers, separators), and once per prompt (the assistant
#: turn's header): what a prompt costs beyond its text.
TOKENS_PER_MESSAGE, TOKENS_PER_PROMPT = 4, 3


def text_tokens(text: str | None) -> int:
    """About how many tokens `text` is (CHARS_PER_TOKEN characters a token, rounded up)."""
    return -(-len(text) // CHARS_PER_TOKEN) if text else 0


def prompt_tokens(messages: list[dict[str, Any]]) -> int:
    """About how many tokens a chat prompt is once its template wraps the messages."""
    return sum(text_tokens(str(m.get("content") or "")) + TOKENS_PER_MESSAGE for m in messages) + TOKENS_PER_PROMPT


@dataclass(frozen=True)
class SamplingParams:
    """The parameters that shape a completion (and so belong in its trace id and cache key); defaults are the
    generate stage's (`GenerateConfig`)."""

    temperature: float = default("temperature")
    top_p: float = default("top_p")
    max_tokens: int = default("max_tokens")
    seed: int | None = default("seed")

    def as_dict(self) -> dict[str, Any]:
        return {"temperature": self.temperature, "top_p": self.top_p, "max_tokens": self.max_tokens, "seed": self.seed}

    def seed_for(self, sample_index: int) -> int | None:
        """Separate requests for samples of one prompt must not share a seed (they would be identical): sample i
        gets seed + i; one request with n samples sends seed + its first index."""
        return None if self.seed is None else self.seed + sample_index


@dataclass
class Job:
    """One question rendered with one prompt; `samples` completions are wanted."""

    index: int  # position in the input (output order)
    question: Question
    prompt_name: str
    prompt_hash: str
    messages: list[dict[str, str]]
    keys: list[str] = field(default_factory=list)  # cache key per sample index


@functools.lru_cache(maxsize=16)
def _key_base(teacher: str, params: SamplingParams) -> Any:
    base = hashlib.sha256(b"chat\x00")
    base.update(json.dumps([teacher, params.as_dict()], sort_keys=True).encode())
    return base


def request_keys(teacher: str, messages: list[dict[str, str]], params: SamplingParams, samples: int) -> list[str]:
    """Content hashes of a prompt's sample requests: model, messages, sampling parameters, sample index.

    The prompt is hashed once and each sample extends a copy (100k prompts are keyed in about a second); the byte
    layout is fixed here, so keys stay valid across versions and machines."""
    head = _key_base(teacher, params).copy()
    for message in messages:
        for field_name in sorted(message):
            head.update(b"\x00" + field_name.encode() + b"\x01" + str(message[field_name]).encode())
        head.update(b"\x02")
    keys = []
    for index in range(samples):
        digest = head.copy()
        digest.update(b"\x03%d" % index)
        keys.append(digest.hexdigest()[:32])
    return keys


def request_key(teacher: str, messages: list[dict[str, str]], params: SamplingParams, sample_index: int) -> str:
    """Content hash of one sample's request (see `request_keys`)."""
    return request_keys(teacher, messages, params, sample_index + 1)[sample_index]


def build_jobs(questions: list[Question], *, teacher: str, params: SamplingParams, samples: int,
               prompt: str | None = None) -> list[Job]:
    """Render every question (with `prompt` by name, else the default template for the question)."""
    from prompts import default_prompt_for, get_prompt

    fixed = get_prompt(prompt) if prompt else None
    jobs = []
    for index, question in enumerate(questions):
        template = fixed or default_prompt_for(question)
        messages = template.render(question)
        keys = request_keys(teacher, messages, params, samples)
        jobs.append(Job(index, question, template.name, template.hash, messages, keys))
    return jobs


def trace_id(job: Job, teacher: str, params: SamplingParams, sample_index: int) -> str:
    return make_trace_id(job.question.id, teacher, job.prompt_hash, params.as_dict(), sample_index)


def in_shard(question_id: str, shard: tuple[int, int] | None) -> bool:
    """Shards split by a hash of the question id: the same on every machine, disjoint, and stable when the input
    grows or is reordered."""
    if shard is None:
        return True
    index, count = shard
    return int(stable_hash("shard", question_id), 16) % count == index
