"""The record schemas every stage reads and writes: one home for each.

A stage's file is a table of one of these records. Later stages add columns and never rewrite earlier ones, so
models allow extra fields (they pass through untouched) while validating the fields they own.
"""

from __future__ import annotations

import hashlib
import json
import string
import types
import typing
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

#: Option letters, in order. PubMedQA uses A yes / B no / C maybe.
LETTERS = tuple(string.ascii_uppercase)
PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}


def present_options(options: Any) -> Any:
    """The option slots that hold a text: how every record reads `options`. A Parquet struct column has the union
    of every row's letters, so a published PubMedQA row (A-C) read back beside MedQA rows (A-E) carries `D: None`,
    `E: None`; Hub rows do the same. Anything that is not a dict is left for validation to refuse."""
    if isinstance(options, dict):
        return {k: v for k, v in options.items() if v is not None}
    return options


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

    @field_validator("options", mode="before")
    @classmethod
    def _present(cls, value: Any) -> Any:
        return present_options(value)

    @field_validator("options")
    @classmethod
    def _options_well_formed(cls, options: dict[str, str]) -> dict[str, str]:
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

    trace_id: str = Field(description="stable id of the trace: a hash of question, teacher, prompt, params, sample")
    question_id: str = Field(description="id of the question: source:split:native_id")
    sample_index: int = Field(ge=0, description="which of the question's samples this is (0..samples-1)")
    teacher: str = Field(description="the teacher model that wrote the completion")
    prompt_name: str = Field(description="name of the prompt template the teacher was asked with")
    prompt_hash: str = Field(description="hash of that template's content")
    params: dict[str, Any] = Field(default_factory=dict, description="sampling parameters of the request")
    completion: str | None = Field(default=None, description="the teacher's raw output")
    reasoning_content: str | None = Field(default=None, description="the reasoning a server returned apart from the "
                                                                    "completion (reasoning models), else null")
    finish_reason: str | None = Field(default=None, description="why the teacher stopped (stop, length)")
    usage: dict[str, Any] = Field(default_factory=dict, description="prompt_tokens, completion_tokens")
    latency_s: float | None = Field(default=None, description="seconds the teacher request took")
    error: str | None = Field(default=None, description="the request's final error (kind: message), else null")


class Verdict(BaseModel):
    """The columns `filter` adds to a Trace row."""

    model_config = ConfigDict(extra="allow")

    predicted: str | None = Field(default=None, description="letter, or null when unparsable: never a guess")
    correct: bool = Field(default=False, description="whether the predicted letter is the gold one")
    format_ok: bool = Field(default=False, description="whether the output has closed reasoning and one answer")
    reasons: list[str] = Field(default_factory=list, description="reason codes; empty when kept")
    reasoning: str | None = Field(default=None, description="canonical reasoning text")
    answer: str | None = Field(default=None, description="canonical answer letter")
    text: str | None = Field(default=None, description="canonical training text <think>..</think><answer>X</answer>")
    pass_rate: float | None = Field(default=None, description="share of this question's samples that are correct")
    kept: bool = Field(default=False, description="whether the filter kept the trace")


class QuestionColumns(BaseModel):
    """The question's columns `filter` copies into every trace row (see `question_columns`)."""

    source: str | None = Field(default=None, description="the question's source dataset (medqa, medmcqa, pubmedqa, ...)")
    split: str | None = Field(default=None, description="the source dataset's split the question comes from")
    question: str | None = Field(default=None, description="the question text")
    context: str | None = Field(default=None, description="PubMedQA abstract, else null")
    options: dict[str, str] | None = Field(default=None, description="{letter: option text}")
    gold: str | None = Field(default=None, description="the gold letter (`answer` is the Verdict's canonical answer)")
    meta: dict[str, Any] | None = Field(default=None, description="the source's own fields (exam step, subject, PMID, ...)")

    @field_validator("options", mode="before")
    @classmethod
    def _present(cls, value: Any) -> Any:
        return present_options(value)


class RowQuestionColumns(QuestionColumns):
    """The question's columns as any stage reads them: checked on every row of every stage's input
    (`Stage._validate`), so a row whose `options` is a list is refused by name before a stage uses it."""

    options: dict[str, str | None] | None = Field(default=None, description="{letter: option text}; a null slot "
                                                  "(an absent letter after a Parquet round trip) is allowed")


class RowTraceColumns(BaseModel):
    """A trace's own columns as any stage reads them (on every row that carries a `trace_id`, `Stage._validate`): a
    completion or a question id that is not text is refused by name before a stage uses it."""

    trace_id: str = Field(description="stable id of the trace")
    question_id: str | None = Field(default=None, description="id of the question the trace answers (scrub also reads "
                                                              "rows of the user's own that have none)")
    completion: str | None = Field(default=None, description="the teacher's raw output")
    reasoning_content: str | None = Field(default=None, description="reasoning returned apart from the completion")
    reasoning: str | None = Field(default=None, description="canonical reasoning text")
    text: str | None = Field(default=None, description="canonical training text")


class FilteredTrace(Trace, Verdict):
    """A Trace row with its Verdict: the table `filter` writes and later stages extend."""


class GoldAudit(BaseModel):
    """A question whose samples agree on a letter that is not its gold letter (`curate.filter.gold`)."""

    gold: str = Field(description="the gold letter of the question")
    suspect: str = Field(description="the letter the samples agree on instead")
    votes: dict[str, int] = Field(description="answered samples per letter")
    samples: int = Field(description="samples with a parsed answer")


class GoldAuditColumns(BaseModel):
    """On every row `filter` writes: the gold-label audit of its question, or null when nothing is suspect."""

    gold_suspect: GoldAudit | None = Field(default=None, description="the question's samples agree on another letter "
                                           "than its gold one: the votes (null when not suspect)")


# ---------------------------------------------------------------- the columns later stages add (one home each)


class DedupeColumns(BaseModel):
    """On rows `dedupe` rejects: which kept row they duplicate, and how alike they are."""

    dup_of: str | None = Field(default=None, description="id of the kept row this one duplicates")
    dup_score: float | None = Field(default=None, description="similarity 0..1 (1: exact after normalising)")


class Contamination(BaseModel):
    benchmark: str = Field(description="SOURCE:SPLIT of the benchmark, e.g. medqa:test")
    item_id: str
    method: Literal["exact", "ngram", "fuzzy"]
    score: float


class DecontaminateColumns(BaseModel):
    """On every row `decontaminate` writes: the benchmark item it matches (rejected rows), or null (kept rows)."""

    contaminated_by: Contamination | None = Field(default=None, description="the benchmark item this row matches "
                                                  "(benchmark, item_id, method, score), else null")


class Exposure(BaseModel):
    row_id: str | None
    method: str
    score: float


class ExposureColumns(BaseModel):
    """On benchmark items `decontaminate --reverse` finds in a training file."""

    found_in: list[Exposure] = Field(default_factory=list, description="up to 10 training rows that match")
    found_count: int = 0


class ScrubColumns(BaseModel):
    """On every row `scrub` writes: findings per PHI type (counts only: values never leave the stage), the policy,
    and a hash of its scrubbed text columns (the publish gate checks a surrogate-scrubbed row by it)."""

    phi_found: dict[str, int] = Field(default_factory=dict, description="PHI findings scrub replaced, per entity "
                                      "type (counts only)")
    scrub_policy: str | None = Field(default=None, description="how scrub replaced them: redact, drop, surrogate")
    scrub_hash: str | None = Field(default=None, description="hash of the text columns as scrub wrote them")
    scrub_columns: list[str] | None = Field(default=None, description="the columns scrub scanned (and hashed)")


class ReviewDecision(BaseModel):
    verdict: Literal["accepted", "rejected"]
    reasons: list[str] = Field(default_factory=list)
    reviewers: list[str | None] = Field(default_factory=list)
    n_reviewers: int
    votes: dict[str, int] = Field(default_factory=dict)
    answer_correct: list[Any] = Field(default_factory=list)
    reasoning_sound_mean: float | None = None
    comments: list[str] = Field(default_factory=list)
    stratum: str | None = None


class ReviewColumns(BaseModel):
    """On every row `review apply` writes: the clinicians' decision, or null when the row was not reviewed."""

    review: ReviewDecision | None = Field(default=None, description="the clinicians' decision (verdict, reasons, "
                                          "votes, reviewers), else null when not reviewed")


class StepVerdict(BaseModel):
    """A judge's verdict on one step of the reasoning, with the step quoted."""

    model_config = ConfigDict(extra="forbid")

    step: str = Field(description="the step, quoted word for word from the reasoning")
    verdict: Literal["supported", "unsupported", "wrong"] = Field(
        description="supported: follows from the question and sound medicine; unsupported: asserted without basis; "
                    "wrong: a factual or logical error")
    why: str = Field(description="one sentence on why (may be empty for a supported step)")


class JudgeVerdict(BaseModel):
    """What a judge says about one trace: the JSON schema a judge is asked for (`response_format`), and the only
    shape its output is parsed into (strictly: no extra keys, no coercion)."""

    model_config = ConfigDict(extra="forbid")

    supports_answer: bool = Field(description="whether the reasoning, as written, supports its final answer")
    steps: list[StepVerdict] = Field(description="a verdict on each step of the reasoning, in order")
    clinical_errors: list[str] = Field(description="clinical errors in the reasoning (empty when none)")
    unsafe_advice: list[str] = Field(description="advice that would harm a patient if followed (empty when none)")


class JudgeResult(BaseModel):
    """One judge's say on one row: its verdict (or why there is none), what it made of it, and its provenance."""

    judge: str = Field(description="the judge model")
    prompt_name: str = Field(description="the judge prompt template's name")
    prompt_hash: str = Field(description="the hash of the judge prompt template's file")
    passed: bool = Field(description="whether this judge passed the row under the rules")
    reasons: list[str] = Field(default_factory=list, description="reason codes (empty when passed)")
    verdict: JudgeVerdict | None = Field(default=None, description="the parsed verdict (null when the output is none)")
    detail: str = Field(default="", description="why there is no verdict, or what failed")
    raw: str | None = Field(default=None, description="the judge's output when it is no verdict (first 2000 chars)")
    finish_reason: str | None = Field(default=None, description="why the judge's output ended (stop, length)")
    usage: dict[str, Any] = Field(default_factory=dict, description="the judge request's prompt and completion tokens")


class VerifyResult(BaseModel):
    """The judges' combined decision on one row, by the configured rule, and each judge's result."""

    passed: bool = Field(description="whether the row passed the judges, by the rule")
    reasons: list[str] = Field(default_factory=list, description="reason codes (empty when passed)")
    rule: Literal["any", "majority", "all"] = Field(description="how many judges had to pass the row")
    judges: list[JudgeResult] = Field(description="each judge's result, in the order of --judge")
    reasoning_sound: bool | None = Field(default=None, description="the judges' majority on: the reasoning supports "
                                         "its answer with no wrong step (null: no judge gave a verdict)")
    clinically_unsafe: bool | None = Field(default=None, description="the judges' majority on: it contains unsafe "
                                           "advice (null: no judge gave a verdict)")


class VerifyColumns(BaseModel):
    """On every row `verify` writes: the judges' verdicts and the decision."""

    verify: VerifyResult | None = Field(default=None, description="the judges' verdicts on the reasoning and the "
                                        "decision (`curate verify`)")


class RejectionColumns(BaseModel):
    """On every row of a `*.rejected` side file."""

    rejected_by: str
    reasons: list[str] = Field(description="reason codes, the primary one first")
    detail: str = ""


class PublishColumns(BaseModel):
    """The TRL-ready columns `publish` adds (the teacher's raw output moves to `teacher_completion`)."""

    prompt: str = Field(description="the student prompt, a plain string (the user message)")
    completion: str = Field(description="the training target: <think>reasoning</think><answer>gold letter</answer>")
    messages: list[dict[str, str]] = Field(description="the conversation to train on: system and user prompt, then "
                                                       "the assistant's training target")
    teacher_completion: str | None = Field(default=None, description="the teacher's raw output")


#: Every model whose fields are table columns.
COLUMN_MODELS: tuple[type[BaseModel], ...] = (Question, Trace, Verdict, QuestionColumns, GoldAuditColumns,
                                              VerifyColumns, DedupeColumns, DecontaminateColumns, ExposureColumns,
                                              ScrubColumns, ReviewColumns, RejectionColumns, PublishColumns)


#: The models whose fields `publish` writes: the published columns are these and nothing else (a column of the input
#: file that is not one of them is left out, unless named with publish's `extra_columns`).
PUBLISHED_MODELS: tuple[type[BaseModel], ...] = (Trace, Verdict, QuestionColumns, GoldAuditColumns, VerifyColumns,
                                                 DedupeColumns, DecontaminateColumns, ScrubColumns, ReviewColumns,
                                                 PublishColumns)
PUBLISHED_COLUMNS: tuple[str, ...] = tuple(dict.fromkeys(name for model in PUBLISHED_MODELS
                                                         for name in model.model_fields))

#: Names whose string values are identifiers, codes, letters, model or template names, controlled vocabulary: never
#: free text. A name here is a column or a key at any depth of a nested value (`verify.judges[].prompt_hash`,
#: `meta.pmid`); only its string values (and lists of strings) are passed over, an object under it is still read.
#: `curate scrub` leaves these values alone (a redacted trace_id or PMID would break every join and citation; a scan
#: reads a PMID as an MRN and a MeSH term such as "Young Adult" as a name) and the publish gate does not scan them.
#: Every other string a row carries is text: scrub scans it and the gate scans it again.
NOT_TEXT: frozenset[str] = frozenset({
    # ids and hashes curate assigns
    "id", "trace_id", "question_id", "dup_of", "prompt_hash", "scrub_hash", "item_id",
    # codes, letters and names from a fixed set
    "source", "split", "teacher", "judge", "prompt_name", "gold", "answer", "predicted", "suspect", "finish_reason",
    "scrub_policy", "scrub_columns", "reasons", "rejected_by", "benchmark", "method", "rule", "verdict", "stratum",
    # the sources' own identifiers and controlled vocabularies in `meta`
    "native_id", "pmid", "meshes", "year", "exam_step", "choice_type", "subject_name", "topic_name",
})


def _is_object(annotation: Any) -> bool:
    """Whether values of this type are objects (dicts, models, lists of them): stored as JSON text in Parquet."""
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType):
        return any(_is_object(a) for a in typing.get_args(annotation) if a is not type(None))
    if origin is list:
        args = typing.get_args(annotation)
        return bool(args) and _is_object(args[0])
    if origin is dict or annotation is dict:
        return True
    return isinstance(annotation, type) and issubclass(annotation, BaseModel)


def json_columns(models: tuple[type[BaseModel], ...] = COLUMN_MODELS) -> frozenset[str]:
    return frozenset(name for model in models for name, field in model.model_fields.items() if _is_object(field.annotation))


#: Columns whose values are objects. Parquet stores them as JSON text so that rows with different keys (A-D vs A-E
#: options, per-source meta) share one schema; JSONL keeps them as objects. Derived from the column models above.
JSON_COLUMNS = json_columns()


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


def source_of(row: dict[str, Any]) -> str:
    """A row's source: its `source` column, else the prefix of its question id (`medqa:test:12`)."""
    source = row.get("source")
    if source:
        return str(source)
    qid = str(row.get("question_id") or row.get("id") or "")
    return qid.split(":", 1)[0] if ":" in qid else "unknown"
