"""The record schemas every stage reads and writes: one home for each.

A stage's file is a table of one of these records. Later stages add columns and never rewrite earlier ones, so
models allow extra fields (they pass through untouched) while validating the fields they own.
"""

from __future__ import annotations

import hashlib
import json
import string
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Option letters, in order. PubMedQA uses A yes / B no / C maybe.
LETTERS = tuple(string.ascii_uppercase)
PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}

#: Columns whose values are objects (dicts or lists of dicts). Parquet stores them as JSON text so that rows with
#: different keys (A-D vs A-E options, per-source meta) share one schema; JSONL keeps them as objects. Stages that
#: add an object-valued column register its name here.
JSON_COLUMNS = frozenset({"options", "meta", "params", "usage", "contaminated_by", "found_in", "phi_found", "review",
                          "messages"})


class Record(BaseModel):
    """Base for all records: extra columns from later stages pass through unchanged."""

    model_config = ConfigDict(extra="allow", frozen=False, validate_assignment=False)

    def row(self) -> dict[str, Any]:
        """The record as one table row (extras included)."""
        return self.model_dump(mode="json")


class Question(Record):
    """One multiple-choice question, normalised from any source."""

    id: str = Field(description="stable id: source:split:native_id")
    source: str
    split: str
    question: str
    context: str | None = Field(default=None, description="PubMedQA abstract, else null")
    options: dict[str, str] = Field(description="{letter: text}")
    answer: str = Field(description="gold option letter")
    meta: dict[str, Any] = Field(default_factory=dict)

    @field_validator("id", "source", "split", "question")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value or not value.strip():
            raise ValueError("must be a non-empty string")
        return value

    @field_validator("options")
    @classmethod
    def _options_well_formed(cls, options: dict[str, str]) -> dict[str, str]:
        # Parquet round trips and Hub rows may carry null slots for absent letters: drop them, then check the rest.
        options = {k: v for k, v in options.items() if v is not None}
        if len(options) < 2:
            raise ValueError(f"expected at least 2 options, got {len(options)}")
        letters = list(options)
        if letters != list(LETTERS[: len(letters)]):
            raise ValueError(f"expected consecutive option letters A.., got {letters}")
        for letter, text in options.items():
            if not isinstance(text, str) or not text.strip():
                raise ValueError(f"option {letter} is empty")
        return options

    @model_validator(mode="after")
    def _answer_among_options(self) -> Question:
        if self.answer not in self.options:
            raise ValueError(f"answer {self.answer!r} is not among the option letters {sorted(self.options)}")
        return self


class Trace(Record):
    """One teacher response (or its final error) to one prompt built from one question."""

    trace_id: str
    question_id: str
    sample_index: int = Field(ge=0)
    teacher: str
    prompt_name: str
    prompt_hash: str
    params: dict[str, Any] = Field(default_factory=dict)
    completion: str | None = None
    reasoning_content: str | None = None
    finish_reason: str | None = None
    usage: dict[str, Any] = Field(default_factory=dict, description="prompt_tokens, completion_tokens")
    latency_s: float | None = None
    error: str | None = None


class Verdict(BaseModel):
    """The columns `filter` adds to a Trace row."""

    model_config = ConfigDict(extra="allow")

    predicted: str | None = Field(default=None, description="letter, or null when unparsable: never a guess")
    correct: bool = False
    format_ok: bool = False
    reasons: list[str] = Field(default_factory=list, description="reason codes; empty when kept")
    reasoning: str | None = Field(default=None, description="canonical reasoning text")
    answer: str | None = Field(default=None, description="canonical answer letter")
    text: str | None = Field(default=None, description="canonical training text <think>..</think><answer>X</answer>")
    pass_rate: float | None = Field(default=None, description="share of this question's samples that are correct")
    kept: bool = False


class FilteredTrace(Trace, Verdict):
    """A Trace row with its Verdict: the table `filter` writes and later stages extend."""


def question_columns(question: Question) -> dict[str, Any]:
    """The question's columns as `filter` adds them to each trace row, so every later stage (dedupe, decontaminate,
    scrub, review, publish) sees the text it works on in the row itself. The gold letter is `gold`: `answer` is the
    Verdict's canonical answer."""
    return {"source": question.source, "split": question.split, "question": question.question,
            "context": question.context, "options": dict(question.options), "gold": question.answer,
            "meta": dict(question.meta)}


def canonical_text(reasoning: str, letter: str) -> str:
    """The training format, whatever the teacher wrote."""
    return f"<think>\n{reasoning.strip()}\n</think>\n<answer>{letter}</answer>"


def stable_hash(*parts: Any, length: int = 16) -> str:
    """A short content hash of JSON-serialisable parts, stable across processes and Python versions."""
    payload = json.dumps(parts, sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()[:length]


def make_trace_id(question_id: str, teacher: str, prompt_hash: str, params: dict[str, Any], sample_index: int) -> str:
    """The stable trace id of DESIGN.md: same inputs, same id, on any machine."""
    return stable_hash(question_id, teacher, prompt_hash, params, sample_index)


def question_text_with_options(question: Question | dict[str, Any]) -> str:
    """Question stem followed by lettered options: the text that dedupe, decontaminate and prompts look at."""
    q = question if isinstance(question, dict) else question.row()
    opts = "\n".join(f"{k}. {v}" for k, v in (q.get("options") or {}).items() if v is not None)
    return f"{q['question']}\n{opts}" if opts else q["question"]
