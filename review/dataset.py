"""The Argilla 2.x dataset clinicians review in: its fields, questions, metadata, guidelines and task distribution,
and how one review item becomes one Argilla record. Names of fields, questions and labels live here only."""

from __future__ import annotations

from importlib import resources
from typing import Any

# ---------------------------------------------------------------- names (pull, stats and apply read these)
FIELDS = ("question", "context", "reasoning", "final_answer", "gold_answer")
#: Shown on gold-suspect records only: what the teacher samples chose instead of the answer key.
GOLD_CHECK = "gold_check"
#: Metadata: "yes" on a gold-suspect record (asking whether the answer key is right), else "no".
GOLD_QUESTION = "gold_question"

ANSWER_CORRECT = "answer_correct"
REASONING_SOUND = "reasoning_sound"
UNSAFE = "clinically_unsafe"
PHI = "phi_present"
COMMENT = "comment"
QUESTIONS = (ANSWER_CORRECT, REASONING_SOUND, UNSAFE, PHI, COMMENT)
#: Asked on gold-suspect records (optional on the others): is the answer key right?
GOLD_CORRECT = "gold_correct"
GOLD_LABELS = {"yes": "Yes, the answer key is right", "no": "No, the answer key is wrong", "unsure": "Unsure"}

ANSWER_LABELS = {"correct": "Correct", "incorrect": "Incorrect", "unsure": "Unsure"}
YES_NO = {"no": "No", "yes": "Yes"}
RATINGS = (1, 2, 3, 4, 5)

METADATA = ("source", "subject", "difficulty", "teacher", "trace_id", "question_id", "gold_question")

#: Who made the suggestions clinicians see (the automatic stages before review).
FILTER_AGENT = "curate-filter"
SCRUB_AGENT = "curate-scrub"


def guidelines() -> str:
    return resources.files("review").joinpath("guidelines.md").read_text(encoding="utf-8")


def require_argilla() -> Any:
    """The argilla SDK, or an error naming the extra that installs it."""
    try:
        import argilla
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError("clinician review needs the argilla SDK: pip install 'curate[review]'") from exc
    return argilla


def build_settings(reviewers_per_record: int = 1) -> Any:
    """rg.Settings for a review dataset in which `reviewers_per_record` clinicians must submit each record."""
    if reviewers_per_record < 1:
        raise ValueError("reviewers per record must be at least 1")
    rg = require_argilla()
    return rg.Settings(
        guidelines=guidelines(),
        fields=[
            rg.TextField(name="question", title="Question and options", use_markdown=True),
            rg.TextField(name="context", title="Context (abstract)", required=False),
            rg.TextField(name="reasoning", title="Reasoning (teacher model)"),
            rg.TextField(name="final_answer", title="Final answer (teacher model)", use_markdown=True),
            rg.TextField(name="gold_answer", title="Gold answer (answer key)", use_markdown=True),
            rg.TextField(name=GOLD_CHECK, title="Gold answer check (gold-suspect questions only)", use_markdown=True,
                         required=False),
        ],
        questions=[
            rg.LabelQuestion(name=ANSWER_CORRECT, title="Is the final answer correct?", labels=ANSWER_LABELS,
                             description="Suggestion: the automatic filter's check against the answer key."),
            rg.RatingQuestion(name=REASONING_SOUND, title="How sound is the reasoning? (1 = wrong, 5 = what a careful "
                              "clinician would write)", values=list(RATINGS)),
            rg.LabelQuestion(name=UNSAFE, title="Does it contain clinically unsafe content?", labels=YES_NO),
            rg.LabelQuestion(name=PHI, title="Is protected health information (PHI) present?", labels=YES_NO,
                             description="Suggestion: the automatic PHI scrubber's finding, when it ran."),
            rg.TextQuestion(name=COMMENT, title="Comment (what is wrong?)", required=False),
            rg.LabelQuestion(name=GOLD_CORRECT, title="Is the gold answer (answer key) right?", labels=GOLD_LABELS,
                             required=False, description="Asked on records marked gold-suspect (the teacher's samples "
                             "agree on another answer): answer it there; leave it empty on the others."),
        ],
        metadata=[rg.TermsMetadataProperty(name=name, title=name.replace("_", " ")) for name in METADATA],
        distribution=rg.TaskDistribution(min_submitted=reviewers_per_record),
    )


def _answer_text(letter: str | None, options: dict[str, str]) -> str:
    if not letter:
        return "_no answer could be extracted_"
    text = options.get(letter)
    return f"**{letter}.** {text}" if text else f"**{letter}**"


def gold_check_markdown(item: dict[str, Any]) -> str:
    """What a clinician is told on a gold-suspect record."""
    audit = item["gold_suspect"]
    votes = ", ".join(f"{letter} {n}" for letter, n in sorted(audit["votes"].items(), key=lambda kv: -kv[1]))
    return (f"**Is the answer key right?** It says **{audit['gold']}**, but {audit['votes'][audit['suspect']]} of "
            f"{audit['samples']} teacher samples chose **{audit['suspect']}** (votes: {votes}); the reasoning shown is "
            f"one of those. Answer *Is the gold answer right?* below.")


def question_markdown(item: dict[str, Any]) -> str:
    options = "\n".join(f"- **{letter}.** {text}" for letter, text in item["options"].items())
    return f"{item['question']}\n\n{options}" if options else item["question"]


def record_for(item: dict[str, Any]) -> Any:
    """One Argilla record per trace; its id is the trace id, so pushing the same trace again updates, never duplicates."""
    rg = require_argilla()
    suggestions = []
    if item.get("filter_correct") is not None:
        suggestions.append(rg.Suggestion(ANSWER_CORRECT, "correct" if item["filter_correct"] else "incorrect",
                                         agent=FILTER_AGENT, type="model"))
    if item.get("phi_found") is not None:
        suggestions.append(rg.Suggestion(PHI, "yes" if item["phi_found"] else "no", agent=SCRUB_AGENT, type="model"))
    fields = {
        "question": question_markdown(item),
        "reasoning": item["reasoning"],
        "final_answer": _answer_text(item.get("final_answer"), item["options"]),
        "gold_answer": _answer_text(item.get("gold"), item["options"]),
    }
    if item.get("context"):
        fields["context"] = item["context"]
    if item.get("gold_suspect"):
        fields[GOLD_CHECK] = gold_check_markdown(item)
    metadata = {name: str(item.get(name) or "unknown") for name in METADATA if name != GOLD_QUESTION}
    metadata[GOLD_QUESTION] = "yes" if item.get("gold_suspect") else "no"
    return rg.Record(id=item["trace_id"], fields=fields, metadata=metadata, suggestions=suggestions)
