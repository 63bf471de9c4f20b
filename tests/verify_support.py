"""Judges for the verify tests: real filtered rows (the demo's recorded real teacher traces through the real filter)
and a replay server on loopback that answers each judge request with the output a test scripted for that trace.

The replay server matches a request to its recordings by the start of a line of the prompt. The judge prompt shows
the trace's reasoning on lines of its own, so a recording keyed by the start of a trace's reasoning answers exactly
the judge requests about that trace (rows whose reasoning starts like another's are left out, so no request can
take another trace's answer; `server.log()` says whether each request matched).
"""

from __future__ import annotations

import functools
import gzip
import json
import re
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from curate.io import write_rows

REPO = Path(__file__).resolve().parent.parent
DEMO_RECORDING = REPO / "examples" / "demo" / "recording.jsonl.gz"


def _key(text: str) -> str:
    from curate.generate.replay import _KEY_CHARS, _norm

    return _norm(text)[:_KEY_CHARS]


@functools.lru_cache(maxsize=1)
def _demo_rows() -> tuple[dict[str, Any], ...]:
    from curate.filter import filter_traces
    from curate.filter.devset import dev_records, read_dev_rows

    questions, traces = dev_records(read_dev_rows(DEMO_RECORDING))
    kept, _, _ = filter_traces(traces, questions, workers=1)
    rows = [k.model_dump(mode="json") for k in kept]
    counts = Counter(_key(r["reasoning"]) for r in rows)
    return tuple(r for r in rows if counts[_key(r["reasoning"])] == 1)


def filtered_rows(n: int | None = None) -> list[dict[str, Any]]:
    """Rows of the real filter's output (demo questions, recorded real completions), each with a distinct reasoning."""
    rows = [json.loads(json.dumps(r)) for r in _demo_rows()]
    return rows[:n] if n is not None else rows


def write_filtered(path: Path, n: int | None = None) -> list[dict[str, Any]]:
    rows = filtered_rows(n)
    write_rows(rows, path)
    return rows


# ---------------------------------------------------------------- what a judge may answer


def _steps(reasoning: str, n: int = 3) -> list[str]:
    """The first few sentences of the reasoning, verbatim: what a judge quotes."""
    sentences = [s.strip() for s in re.split(r"(?<=[.!?])\s+|\n+", reasoning) if len(s.strip()) > 20]
    return sentences[:n] or [reasoning.strip()[:200]]


def verdict(row: dict[str, Any], *, supports: bool = True, wrong: bool = False, unsafe: bool = False,
            clinical: bool = False) -> dict[str, Any]:
    steps = [{"step": s, "verdict": "supported", "why": "follows from the findings"} for s in _steps(row["reasoning"])]
    if wrong:
        steps[-1] = {**steps[-1], "verdict": "wrong", "why": "misstates the mechanism"}
    return {"supports_answer": supports, "steps": steps,
            "clinical_errors": ["confuses the first-line drug"] if clinical else [],
            "unsafe_advice": ["recommends a contraindicated dose"] if unsafe else []}


def output(kind: str, row: dict[str, Any]) -> str:
    """A judge's whole output about `row`, of one kind."""
    if kind == "agree":
        return json.dumps(verdict(row))
    if kind == "fenced":
        return "```json\n" + json.dumps(verdict(row), indent=2) + "\n```"
    if kind == "think":
        return "<think>\nLet me check each step against the question.\n</think>\n" + json.dumps(verdict(row))
    if kind == "unsupported":
        return json.dumps(verdict(row, supports=False))
    if kind == "wrong_step":
        return json.dumps(verdict(row, wrong=True))
    if kind == "unsafe":
        return json.dumps(verdict(row, unsafe=True))
    if kind == "clinical":
        return json.dumps(verdict(row, clinical=True))
    if kind == "malformed":
        return json.dumps(verdict(row))[:-30]  # cut mid-way: not JSON
    if kind == "schema_string_bool":
        return json.dumps({**verdict(row), "supports_answer": "true"})  # no coercion
    if kind == "schema_extra_key":
        return json.dumps({**verdict(row), "confidence": 0.9})
    if kind == "schema_missing":
        body = verdict(row)
        del body["steps"]
        return json.dumps(body)
    if kind == "schema_bad_step":
        body = verdict(row)
        body["steps"][0]["verdict"] = "partly"
        return json.dumps(body)
    if kind == "no_steps":
        return json.dumps({**verdict(row), "steps": []})
    if kind == "misquote":
        return json.dumps({**verdict(row), "steps": [{"step": "The patient most likely has acute appendicitis "
                                                              "requiring immediate laparotomy.",
                                                      "verdict": "supported", "why": "fits"}]})
    if kind == "prose":
        return ("The reasoning looks sound to me: it considers the findings and reaches the right answer. "
                + json.dumps(verdict(row)))
    if kind == "refusal":
        return "I'm sorry, but I can't help with evaluating medical content like this."
    if kind == "multiple_choice":
        return f"<think>\nThe findings point to option {row['gold']}.\n</think>\n<answer>{row['gold']}</answer>"
    raise ValueError(kind)


#: Outputs that are no verdict, or a verdict that rejects: none of them may pass.
NEVER_PASS = ("malformed", "schema_string_bool", "schema_extra_key", "schema_missing", "schema_bad_step", "no_steps",
              "misquote", "prose", "refusal", "multiple_choice", "unsupported", "wrong_step", "unsafe", "clinical")


def write_judge(path: Path, rows: list[dict[str, Any]], kind: str | Callable[[int, dict[str, Any]], str]) -> Path:
    """Recordings for a replay judge: for row i, the output `kind` (or `kind(i, row)`), keyed by its reasoning."""
    with gzip.open(path, "wt", encoding="utf-8") as fh:
        for i, row in enumerate(rows):
            text = output(kind if isinstance(kind, str) else kind(i, row), row)
            fh.write(json.dumps({"question": row["reasoning"], "response": text}) + "\n")
    return path
