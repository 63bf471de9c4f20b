"""Prompt templates as files, shared by the teacher (`curate generate`) and the student (training).

A template is selected by name (`get_prompt("multiple_choice")`) or by path to a `.txt` file of the same format;
its hash is the SHA-256 of the file's bytes, so every trace can say exactly which text produced it.

    prompt = get_prompt("multiple_choice")          # or default_prompt_for(question)
    messages = prompt.render(question)              # [{"role": "system", ...}, {"role": "user", ...}]
    prompt.name, prompt.hash
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TEMPLATE_DIR = Path(__file__).parent / "templates"
MULTIPLE_CHOICE = "multiple_choice"
MULTIPLE_CHOICE_CONTEXT = "multiple_choice_context"
RATIONALIZE = "rationalize"
JUDGE_REASONING = "judge_reasoning"

_SECTION = re.compile(r"^\[(system|user)\]\s*$", re.MULTILINE)
_PLACEHOLDER = re.compile(
    r"\{(question|options|context|context_block|answer|answer_text|first_letter|letters|reasoning|final_answer)\}")


@dataclass(frozen=True)
class Prompt:
    """One template: its name, the hash of its file, and its system / user parts."""

    name: str
    hash: str
    user: str
    system: str | None = None

    @property
    def needs_answer(self) -> bool:
        """Rationalisation templates show the gold answer."""
        return "{answer}" in self.user or "{answer_text}" in self.user

    def render(self, question: Any, *, system: bool = True) -> list[dict[str, str]]:
        """Chat messages for one question (a `Question` or its row dict; a judge template renders a filtered trace
        row, whose `reasoning` and final `answer` it shows beside the gold letter `gold`)."""
        values = _values(question)
        messages = []
        if system and self.system:
            messages.append({"role": "system", "content": _fill(self.system, values)})
        messages.append({"role": "user", "content": _fill(self.user, values)})
        return messages


def _values(question: Any) -> dict[str, str]:
    q = question if isinstance(question, dict) else question.model_dump()
    options = {k: v for k, v in (q.get("options") or {}).items() if v is not None}
    context = (q.get("context") or "").strip()
    # A trace row names the gold letter `gold` and its own final answer `answer`; a Question's `answer` is the gold.
    trace = "gold" in q
    answer = (q.get("gold") if trace else q.get("answer")) or ""
    final = (q.get("answer") if trace else None) or ""
    return {
        "question": q["question"].strip(),
        "options": "\n".join(f"{letter}. {text}" for letter, text in options.items()),
        "context": context,
        "context_block": f"Abstract:\n{context}\n\n" if context else "",
        "answer": answer,
        "answer_text": options.get(answer, ""),
        "first_letter": next(iter(options), "A"),
        "letters": ", ".join(options),
        "reasoning": (q.get("reasoning") or "").strip(),
        "final_answer": f"{final} ({options[final]})" if final in options else final or "none",
    }


def _fill(template: str, values: dict[str, str]) -> str:
    # Only known placeholders are replaced, in one pass, so braces in the template or the question stay as they are.
    return _PLACEHOLDER.sub(lambda m: values[m.group(1)], template).strip()


def parse_template(name: str, data: bytes) -> Prompt:
    text = data.decode("utf-8")
    parts = _SECTION.split(text)
    if len(parts) == 1:  # no sections: the whole file is the user message
        return Prompt(name=name, hash=hashlib.sha256(data).hexdigest()[:16], user=text.strip())
    sections = dict(zip(parts[1::2], parts[2::2]))
    if "user" not in sections:
        raise ValueError(f"prompt template {name!r} has no [user] section")
    return Prompt(name=name, hash=hashlib.sha256(data).hexdigest()[:16], user=sections["user"].strip(),
                  system=sections.get("system", "").strip() or None)


def list_prompts() -> list[str]:
    """Names of the built-in templates."""
    return sorted(p.stem for p in TEMPLATE_DIR.glob("*.txt"))


@functools.lru_cache(maxsize=64)
def get_prompt(name: str) -> Prompt:
    """A built-in template by name, or a template file by path (its name is the file's stem)."""
    path = TEMPLATE_DIR / f"{name}.txt"
    if not path.exists():
        candidate = Path(name)
        if candidate.suffix == ".txt" and candidate.exists():
            path = candidate
        else:
            raise KeyError(f"unknown prompt {name!r}; built-in: {', '.join(list_prompts())}, or a path to a .txt template")
    return parse_template(path.stem, path.read_bytes())


def default_prompt_for(question: Any) -> Prompt:
    """The template a question gets when none is named: with-context for questions that carry a passage."""
    context = question.get("context") if isinstance(question, dict) else getattr(question, "context", None)
    return get_prompt(MULTIPLE_CHOICE_CONTEXT if context else MULTIPLE_CHOICE)


def student_messages(question: Any) -> list[dict[str, str]]:
    """What the student model is asked, in training and in the published TRL columns: the teacher's question template
    for this kind of question, never the rationalisation one (it shows the gold answer)."""
    return default_prompt_for(question).render(question)


__all__ = ["Prompt", "default_prompt_for", "get_prompt", "list_prompts", "parse_template", "student_messages"]
