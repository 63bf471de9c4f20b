"""Answer extraction: the one place that parses a teacher's final answer.

It returns the option letter the response commits to, or None with a reason code. It never guesses: a response
whose final statement names two different options, an answer that appears only inside the reasoning, or a final
answer that contradicts the reasoning's last conclusion are all unparsable, on purpose (the published pipelines
take the better of first and last letter match, which lets wrong examples in).

A response splits into *reasoning* and a *final part*:
- a separate `reasoning_content` (servers that return it) is the reasoning and the whole completion is the final part;
- `<think>…</think>` (DeepSeek-R1, QwQ): the block is the reasoning, what follows it is the final part;
- anything else (gpt-4o, ThoughtSource CoT): the whole text is both; its final statement is found by explicit cues.

In the final part an answer is stated by: `<answer>X</answer>`, `\\boxed{X}`, a cue ("the answer is (C)", "Answer: C",
"correct option is C", "(C) is the correct answer", "the answer is C--because ..."), a bare letter after a colon
that introduces an answer ("... would be most likely to reveal: C."), or a line that is only an option ("C",
"**C.**", "C) text", "C) text with a word added", "(C) text", the option's text itself, PubMedQA's yes/no/maybe).
Answer lines count only at the start and end of the final part, so option lists in an explanation do not; a trailing
re-listing of the options is ignored. An option's text with a negation added ("C) not <text of C>") names nothing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

# ---------------------------------------------------------------- reason codes (one home)
NO_ANSWER = "no_answer"
MULTIPLE_ANSWERS = "multiple_answers"
ANSWER_ONLY_IN_REASONING = "answer_only_in_reasoning"
CONTRADICTS_REASONING = "contradicts_reasoning"
INVALID_OPTION = "invalid_option"


@dataclass(frozen=True)
class Mention:
    """One place where the text commits to an option."""

    pos: int
    letter: str
    style: str
    tentative: bool = False


@dataclass
class Extraction:
    """What `extract_answer` found: a letter, or None and the reason it refused to pick one."""

    letter: str | None
    reason: str | None = None
    style: str | None = None  # how the final answer was stated: tag, boxed, cue, cue_text, line
    reasoning: str = ""  # the reasoning text, answer-only lines removed
    think: str = "none"  # none | closed | unclosed | separate
    reasoning_letter: str | None = None  # the reasoning's last conclusion, when it has one
    mentions: list[Mention] = field(default_factory=list)


# ---------------------------------------------------------------- patterns

_MARK = r"[\s*_`'\"]*"  # markdown and quotes that may sit around a letter
# What may follow a letter that is a choice: not a word character and not one hyphen ("C-reactive protein", "B12"
# start words), but a dash written as two hyphens may ("the answer is C--the murmur rises with Valsalva").
_LETTER_END = r"(?![A-Za-z0-9]|-(?!-))"
# The cue words before a letter: "the (final|correct|best...) answer|option|choice is", "Answer:" ...
_QUAL = r"(?:final|correct|best|right|most\s+(?:likely|appropriate|accurate|correct|suitable))"
# Each cue pattern is tried only where its anchor word starts (see `_scan`): a case-insensitive regex pass over
# every character is ~50x slower, and this is what keeps 100k traces within a minute.
_CUE = re.compile(
    # "answer" alone is a cue; "option"/"choice" only with a qualifier ("each option:" introduces a list).
    r"(?i:\b(?:(?:" + _QUAL + r"\s+)?answers?(?:\s+choice)?|" + _QUAL + r"\s+(?:option|choice|response))"
    r"(?!\s*(?:choices|options)\b)"
    r"(?:\s+(?:to\s+(?:this|the)\s+question|here|therefore|then|thus|overall))?"
    r"(?:\s*(?:is|are|would\s+be|should\s+be|will\s+be|must\s+be|seems\s+to\s+be|appears\s+to\s+be|remains|=)\b"
    r"(?:\s+(?:therefore|thus|then|likely|probably|most\s+likely|clearly|definitely))?\s*:?|\s*[:=\-–]))"
    + _MARK
    + r"(?:(?i:option|choice)\s*)?[\(\[]?"
    + _MARK
    + r"([A-Z])" + _LETTER_END
)
# Conclusions as reasoning models write them: "I'll go with B", "So answer D.", "I think B is the answer", "C is correct".
_GO_WITH = re.compile(
    r"(?i:\b(?:go(?:ing)?\s+with|choose|chose|select|pick|opt\s+for)\s+(?:option\s+|choice\s+|answer\s+)?)"
    r"[\(\[]?\**([A-Z])" + _LETTER_END
)
# A statement that only entertains an option: "maybe the answer is C", "if ..., the answer would be B".
_TENTATIVE = re.compile(
    r"(?i:\b(?:maybe|perhaps|alternatively|possibly|if|whether|unless|could|might|or|not\s+sure|unsure|wonder)\b)"
)
# "...the most likely diagnosis is:\n\n(D) Text": an answer line introduced by a colon.
_COLON_LINE = re.compile(r":[ \t*_]*\n[ \t]*(?:\n[ \t]*)?([^\n]{1,300})(?=\n[ \t]*(?:\n[ \t]*)?([^\n]{0,300}))?")
_CUE_TEXT = re.compile(
    r"(?i:\banswer\s*(?:is|would\s+be|should\s+be|:)\s*:?)" + _MARK
)
_BOXED = re.compile(r"\\boxed\s*\{((?:[^{}]|\{[^{}]*\})*)\}")
_TAG = re.compile(r"<answer>\s*(.*?)\s*</answer>", re.S | re.I)
# After a letter: "A or C", "A, C", "A and C", "A/C" make the statement ambiguous.
_ALSO = re.compile(r"[\)\]\*]*\s*(?:,|/|\bor\b|\band\b|&)\s*(?i:option\s*)?[\(\[]?\**([A-Z])" + _LETTER_END)
# "A) Catalase, B) Oxidase and C) Lysozyme": a second lettered option further on in the same sentence.
_ALSO_LATER = re.compile(r"[^.\n]{0,160}?(?:,|/|\bor\b|\band\b|&)\s*(?i:option\s*)?[\(\[]?\**([A-Z])[\)\]]")
# A line that is only an option: "C", "(C)", "C.", "C) text", "**C. text**", "- C: text".
_LINE = re.compile(r"^[\(\[]?([A-Z])(?:\s*[\)\]\.:,\-–]|\s*$|\s+(?=\())\s*(.*)$")
# The words before a colon that introduce an answer: "the most likely diagnosis is:", "I will choose:", "answer:", and
# the question's own closing words repeated ("... would be most likely to reveal:").
_CONCLUDING_INTRO = re.compile(r"(?i)(?:\bis|\bbe|\bchoose|\bselect|\banswer|\bpick|\bmost\s+likely\s+to\s+[a-z]+)[\s*_]*$")
# "...would be most likely to reveal: A.": a bare letter after a colon, and nothing more on its line.
_COLON_LETTER = re.compile(r":[ \t*_]*[\(\[]?\**([A-Z])\**[\)\]]?\**\.?[ \t*_]*(?=\n|$)")
_NON_ANSWER_LINE = re.compile(
    r"(?i)^\W*(?:(?:none|all|neither)\s+of\s+(?:the\s+)?(?:above|options|choices|these|them)"
    r"|not\s+(?:listed|definitive|applicable|among|present)|either\s+\(?[A-Z]\)?\s+or\b)"
)
# "...is associated with all of the following: A) .., B) .., E) ..": every option at once is no choice.
_ALL_OF = re.compile(r"(?i)\b(?:with|is|are|be)\s+all\s+(?:of\s+)?the\s+(?:following|above|options|choices)\b")
# A heading left alone at the end once the answer line below it is cut ("**Final Answer**").
_DANGLING_HEADER = re.compile(r"\n[#*_\s]*(?i:final\s+answer|answer)[#*_:\s]*$")
_OPTION_START = re.compile(r"^[\(\[]?[A-Z](?:\s*[\)\]\.:\-–])")
_OPTION_LINES = re.compile(r"^[ \t*_\-]*[\(\[]?([A-Z])\s*[\)\]\.:]", re.M)
_LINE_PREFIX = re.compile(r"^(?:[-•>#]+\s*|\d+\.\s+)")
_MARKUP = re.compile(r"[*_`]+")
_WORD_AFTER = re.compile(r"[ \t]+([A-Za-z]+)")
_CONNECTIVES = frozenset({"because", "since", "as", "which", "given", "here", "for", "with", "in", "is", "this", "that"})
_NON_WORD = re.compile(r"[^a-z0-9%+]+")


def _norm(text: str) -> str:
    """Lowercase, punctuation to single spaces: how option texts are compared."""
    return _NON_WORD.sub(" ", text.lower()).strip()


class Options:
    """A question's options, prepared once for matching."""

    __slots__ = ("letters", "norm", "by_norm")

    def __init__(self, options: dict[str, str]) -> None:
        self.letters = frozenset(options)
        self.norm = {k: _norm(v) for k, v in options.items()}
        by_norm: dict[str, str | None] = {}
        for letter, text in self.norm.items():
            # A one-letter option text ("B") cannot be told from a letter: such options match by letter only.
            if text and not (len(text) == 1 and text.isalpha()):
                # Two options with the same text cannot be told apart by text.
                by_norm[text] = None if text in by_norm else letter
        self.by_norm = by_norm

    def by_text(self, text: str, *, fuzzy: bool = True) -> str | None:
        """The letter whose option text is `text` (normalised; with `fuzzy`, near-identical: MedMCQA's texts carry
        typos such as "inseion" for "insertion"), else None. Never a guess: a near match must be clearly the best."""
        norm = _norm(text)
        exact = self.by_norm.get(norm)
        if exact or not fuzzy or len(norm) < 6:
            return exact
        from rapidfuzz import fuzz, process

        found = process.extract(norm, list(self.by_norm), scorer=fuzz.ratio, limit=2, score_cutoff=80)
        if not found or found[0][1] < 90 or (len(found) > 1 and found[1][1] > found[0][1] - 8):
            return None
        return None if _adds_hedge(norm, found[0][0]) else self.by_norm[found[0][0]]

    def matches(self, letter: str, text: str) -> bool:
        """Whether `text` is (nearly) option `letter`'s text."""
        from rapidfuzz import fuzz

        own = self.norm.get(letter, "")
        norm = _norm(text)
        if norm == own or norm.replace("rt", "") == own:  # MedMCQA's texts lost every "rt": "Ahritis", "hea rate"
            return True
        if _adds_hedge(norm, own):
            return False
        return len(own) >= 6 and 0.8 <= len(norm) / len(own) <= 1.25 and fuzz.ratio(norm, own) >= 88

    def with_extra_words(self, letter: str, text: str, max_extra: int = 2) -> bool:
        """Whether `text` is option `letter`'s text with a word or two added ("Acral lentiginous" -> "Acral
        lentiginous melanoma", "Hypertrophic obstructive cardiomyopathy"): its words in order, at most `max_extra`
        (and at most as many as it has) more, none of them a hedge or a link to another option ("not", "or"), and
        no other option's text found in it the same way."""
        own = self.norm.get(letter, "")
        words = _norm(text).split()
        extra = len(words) - len(own.split())
        if len(own) < 6 or not 0 < extra <= min(max_extra, len(own.split())) or not _in_order(own.split(), words):
            return False
        if _adds_hedge(" ".join(words), own) or any(len(w) == 1 for w in words if w not in own.split()):
            return False
        return not any(k != letter and o and _in_order(o.split(), words) for k, o in self.norm.items())

    def prefix_letter(self, text: str) -> str | None:
        """The letter whose option text `text` starts with (the longest such option; None when tied or none)."""
        norm = _norm(text[:300])
        best, best_len, tie = None, 0, False
        for text_norm, letter in self.by_norm.items():
            if letter is None or not (norm == text_norm or norm.startswith(text_norm + " ")):
                continue
            if len(text_norm) > best_len:
                best, best_len, tie = letter, len(text_norm), False
            elif len(text_norm) == best_len:
                tie = True
        return None if tie else best


#: Words that, added to an option's text, change what it says or bring in another option.
_HEDGES = frozenset({"not", "no", "non", "un", "unlikely", "incorrect", "wrong", "false", "except", "less", "least",
                     "rather", "than", "vs", "versus", "or", "and", "nor", "neither", "either", "excluded", "absent"})


def _adds_hedge(norm: str, own: str) -> bool:
    """Whether normalised `norm` holds a hedge word that option text `own` does not: "not cholesterol embolization"
    is near option C's text and says the opposite."""
    return bool(_HEDGES.intersection(norm.split()) - set(own.split()))


def _in_order(needle: list[str], words: list[str]) -> bool:
    """Whether `needle`'s words occur in `words` in the same order (others may come between)."""
    it = iter(words)
    return all(w in it for w in needle)


def _letter_after_cue(text: str, start: int, letter: str, opts: Options) -> list[str]:
    """Validate a letter found after a cue; returns the letters the statement commits to (empty: not an answer)."""
    rest = text[start : start + 200]
    also = _ALSO.match(rest) or _ALSO_LATER.match(rest)
    if also and also.group(1) in opts.letters and also.group(1) != letter:
        return [letter, also.group(1)]
    word = _WORD_AFTER.match(rest)
    if word is None:
        return [letter]
    # "the answer is B cell lymphoma": the letter starts an option's text, not a choice; "A lower dose" must be A's text.
    named = opts.prefix_letter(letter + rest)
    if named is not None:
        return [named]
    if opts.prefix_letter(rest):
        return [letter] if opts.prefix_letter(rest) == letter else [letter, opts.prefix_letter(rest)]
    return [letter] if word.group(1).lower() in _CONNECTIVES else []


def _boxed_letter(content: str, opts: Options) -> str | None:
    inner = re.sub(r"\\text(?:bf)?\s*\{([^{}]*)\}", r"\1", content)
    inner = _MARKUP.sub("", inner).strip().strip("$ ")
    m = _LINE.match(inner)
    if m and (not m.group(2) or opts.by_text(m.group(2)) == m.group(1)):
        return m.group(1)
    return opts.by_text(inner)


_DISOWNED = re.compile(r"(?i)\b(?:incorrect|wrong|false|not\s+(?:the\s+)?(?:correct|right|answer|best))\b")
_CLAUSE_END = re.compile(r"\.\s|,\s|\s\(|\s-\s|\.$")


def _line_letters(line: str, opts: Options, *, prefix: bool = False) -> tuple[list[str], bool]:
    """(letters an answer-only line names, whether it is a bare letter); no letters when it is not an answer line.
    With `prefix`, a lettered option followed by more words ("C) Cervical lymph nodes. Metastasis is ...",
    "(A) yes (for lay people ...)") counts too."""
    line = _LINE_PREFIX.sub("", _MARKUP.sub("", line).strip()).strip()
    line = re.sub(r"(?i)^(?:final\s+)?answer\s*[:\-]\s*", "", line).strip()
    if not line or len(line) > 300:
        return [], False
    m = _LINE.match(line)
    if m:
        letter, rest = m.group(1), m.group(2).strip().strip(".()[]'\" ")
        if not rest:
            return [letter], True
        if opts.matches(letter, rest):
            return [letter], False
        named = opts.by_text(rest)
        if named is not None:
            return [letter, named], False  # "B) <text of C>": the line names two options
        if not _DISOWNED.search(rest) and opts.with_extra_words(letter, rest):
            return [letter], False
        if prefix and not _DISOWNED.search(rest):
            for n, cut in enumerate(_CLAUSE_END.finditer(rest)):
                if n == 4:
                    break
                if opts.matches(letter, rest[: cut.start()].strip("()[]'\" ")):
                    return [letter], False
    named = opts.by_text(line.strip(".()[]'\" "))
    return ([named], False) if named else ([], False)


def _answer_lines(text: str, opts: Options, *, first: bool | None) -> tuple[list[Mention], int]:
    """Mentions from answer-only lines at the end (and, with `first`, the start) of `text`.

    Returns them with the offset where the trailing answer-only lines begin (len(text) when there are none), so the
    caller can cut them from the reasoning. A trailing run of lines naming different options with their texts is a
    re-listing of the options, not an answer (but a bare letter after such a list is: command-xlarge does that).
    """
    mentions: list[Mention] = []
    end = len(text.rstrip())
    cut = len(text)
    tail: list[tuple[list[str], bool, int]] = []
    # Walk back over answer-only lines (ThoughtSource appends "\nB) text" after its CoT; flan-T5 repeats "E\nE").
    while end > 0 and len(tail) < 8:
        start = text.rfind("\n", 0, end) + 1
        line = text[start:end]
        if not line.strip():
            end = start - 1
            continue
        letters, bare = _line_letters(line, opts, prefix=not tail)
        if not letters:
            break
        tail.append((letters, bare, start))
        end = start - 1
    tail_start = tail[-1][2] if tail else len(text)
    listed = [t for t in tail if not t[1]]
    if len(listed) >= 2 and all(len(t[0]) == 1 for t in listed) and len({t[0][0] for t in listed}) > 1:
        # The options listed again at the end: not an answer. Only a bare letter after the list counts.
        if tail[0][1] and all(not t[1] for t in tail[1:]):
            mentions.append(Mention(tail[0][2], tail[0][0][0], "line"))
            cut = tail[0][2]
    else:
        for letter in dict.fromkeys(x for t in tail for x in t[0]):
            mentions.append(Mention(tail_start, letter, "line"))
        cut = tail_start
    if first is None:  # no <think>: the first line counts unless the text walks through the options line by line
        first = len(set(_OPTION_LINES.findall(text))) < 2
    if first:
        stripped = text.lstrip()
        offset = len(text) - len(stripped)
        head = stripped.split("\n", 1)[0]
        if offset + len(head) < tail_start:
            for letter in _line_letters(head, opts)[0]:
                mentions.append(Mention(offset, letter, "line"))
    return mentions, cut


def _tentative(text: str, pos: int) -> bool:
    """Whether the sentence up to `pos` only entertains an option ("maybe the answer is C")."""
    window = text[max(0, pos - 120) : pos]
    cut = max(window.rfind(". "), window.rfind("\n"), window.rfind("? "), window.rfind("! "))
    return _TENTATIVE.search(window[cut + 1 :]) is not None


#: Every place a cue pattern can start is found in the lowered text; each pattern is then tried only there.
_ANCHORS = ("answer", "option", "choice", "response", "go with", "going with", "choos", "chose", "select", "pick",
            "opt for", "opted for")
_CUE_WORDS = frozenset({"answer", "option", "choice", "response"})
_QUAL_BEFORE = re.compile(r"(?i:\b" + _QUAL + r"\s+)$")
_SO_BEFORE = re.compile(r"(?i:\b(?:so|thus|therefore|hence)[,\s]+(?:the\s+)?)$")
_SO_AFTER = re.compile(r"(?i:answer|option)\s+[\(\[]?([A-Z])[\)\]]?(?=\s*[.!\n]|\s*$)")
# "(C) is the correct answer", "option C is the best fit", "I think B is the answer", "C is correct": found by the
# literal " is ..." phrase in the lowered text, then the letter just before it.
_IS_PHRASE = re.compile(r" is (?:the )?(?:most )?(?:correct|right|best|answer|appropriate|likely)\b")
_BEFORE_IS = re.compile(
    r"(?:(?i:option|choice)\s+[\(\[]?([A-Z])[\)\]]?|\(([A-Z])\)"
    r"|(?:^|[.!?:]\s+|\n\s*|\b(?:[Ss]o|[Tt]hus|[Tt]herefore|think|[Hh]ence|[Tt]hen),?\s+)[\(\[]?\**([A-Z])[\)\]]?)\**$"
)


def _anchor_hits(low: str) -> list[tuple[int, str]]:
    """(position, word) of every anchor word that starts a word, in text order (str.find: ~2x a regex alternation)."""
    hits = []
    for word in _ANCHORS:
        i = low.find(word)
        while i >= 0:
            if i == 0 or not low[i - 1].isalpha():
                hits.append((i, word))
            i = low.find(word, i + 1)
    hits.sort()
    return hits


def _scan(text: str, low: str, opts: Options) -> list[Mention]:
    """Cue statements (not tags, boxes or lines), found by one anchor scan instead of one regex pass per pattern
    (a case-insensitive regex pass over every character is what made extraction slow)."""
    mentions: list[Mention] = []
    seen_ends: set[int] = set()

    def add(pos: int, letters: list[str], style: str = "cue") -> None:
        tentative = _tentative(text, pos)
        for letter in letters:
            mentions.append(Mention(pos, letter, style, tentative))

    for i, word in _anchor_hits(low):
        if word not in _CUE_WORDS:  # go with, choose, chose, select, pick, opt for
            m = _GO_WITH.match(text, i)
            if m is not None:
                add(i, _letter_after_cue(text, m.end(1), m.group(1), opts)[:2])
            continue
        start = i
        if word != "answer":  # "option"/"choice"/"response" are cues only after a qualifier ("the correct option")
            qual = _QUAL_BEFORE.search(text, max(0, i - 30), i)
            start = qual.start() if qual else -1
        if start >= 0:
            m = _CUE.match(text, start)
            if m is not None and m.end() not in seen_ends:
                seen_ends.add(m.end())
                add(start, _letter_after_cue(text, m.end(), m.group(1), opts))
        if word in ("answer", "option"):
            m = _SO_AFTER.match(text, i)
            if m is not None and _SO_BEFORE.search(text, max(0, i - 20), i):
                add(i, _letter_after_cue(text, m.end(1), m.group(1), opts)[:2])
        if word == "answer":
            m = _CUE_TEXT.match(text, i)
            if m is not None:
                named = opts.prefix_letter(text[m.end() : m.end() + 300])
                if named:
                    add(i, [named], "cue_text")
    for phrase in _IS_PHRASE.finditer(low):
        i = phrase.start()
        back = _BEFORE_IS.search(text, max(0, i - 40), i)
        if back is None:
            continue
        letter = back.group(1) or back.group(2)
        if letter is None:
            # A bare letter ("C is correct") must be followed by a firm word, not "is likely to".
            if phrase.group().endswith(("likely", "appropriate")) and " most " not in phrase.group():
                continue
            letter = back.group(3)
        add(back.start(), [letter])
    return mentions


def _cue_mentions(text: str, opts: Options) -> list[Mention]:
    """Explicit statements anywhere in `text`: tags, boxed, cues with a letter, cues naming an option's text,
    conclusions ("I'll go with B"), and answer lines introduced by a colon."""
    mentions: list[Mention] = []
    if "<answer>" in text or "<ANSWER>" in text:
        for m in _TAG.finditer(text):
            letter = _boxed_letter(m.group(1), opts)
            mentions.append(Mention(m.start(), letter or "?", "tag"))
    if "boxed" in text:
        for m in _BOXED.finditer(text):
            letter = _boxed_letter(m.group(1), opts)
            if letter:
                mentions.append(Mention(m.start(), letter, "boxed"))
    low = text.lower()
    if len(low) != len(text):  # a few Unicode characters change length when lowered: keep offsets aligned
        low = "".join(c.lower() if len(c.lower()) == 1 else "?" for c in text)
    mentions += _scan(text, low, opts)
    if ":" in text:
        for m in _COLON_LETTER.finditer(text):
            if m.group(1) in opts.letters and _CONCLUDING_INTRO.search(text, max(0, m.start() - 40), m.start()):
                mentions.append(Mention(m.start(1), m.group(1), "line", _tentative(text, m.start())))
        for m in _COLON_LINE.finditer(text):
            line = _MARKUP.sub("", m.group(1)).strip()
            if not _LINE.match(line) or (m.group(2) and _OPTION_START.match(_MARKUP.sub("", m.group(2)).strip())):
                continue  # only "(D) text" lines count, and not the first line of a list ("options are:\n(A) x\n(B) y")
            if not _CONCLUDING_INTRO.search(text, max(0, m.start() - 40), m.start()):
                continue  # "Let's look at each option:" introduces a walk through the options, not an answer
            for letter in _line_letters(line, opts, prefix=True)[0]:
                mentions.append(Mention(m.start(1), letter, "line", _tentative(text, m.start())))
    return mentions


def _last_conclusion(mentions: list[Mention]) -> str | None:
    """The letter of the last firm statement (None when there is none or it names two options)."""
    firm = [m for m in mentions if not m.tentative]
    if not firm:
        return None
    last = max(m.pos for m in firm)
    letters = {m.letter for m in firm if m.pos == last}
    return letters.pop() if len(letters) == 1 else None


def _split(completion: str, reasoning_content: str | None) -> tuple[str, str, str]:
    """(reasoning, final part, think state). The last `</think>` ends the reasoning."""
    opened = completion.find("<think>")
    closed = completion.rfind("</think>")
    start = opened + len("<think>") if 0 <= opened < max(closed, 0) or (opened >= 0 and closed < 0) else 0
    if reasoning_content and reasoning_content.strip():
        if closed >= 0:
            body = completion[start:closed].strip()
            return (reasoning_content.strip() + "\n" + body).strip(), completion[closed + 8 :], "separate"
        return reasoning_content.strip(), completion, "separate"
    if closed >= 0:
        return completion[start:closed].strip(), completion[closed + 8 :], "closed"
    if opened >= 0:
        return completion[start:].strip(), "", "unclosed"
    return "", completion, "none"


def extract_answer(completion: str | None, options: dict[str, str] | Options, reasoning_content: str | None = None) -> Extraction:
    """The option letter a response commits to, or None with a reason code (never a guess)."""
    opts = options if isinstance(options, Options) else Options(options)
    completion = completion or ""
    reasoning, final, think = _split(completion, reasoning_content)

    mentions = _cue_mentions(final, opts)
    line_mentions, cut = _answer_lines(final, opts, first=True if think != "none" else None)
    mentions += line_mentions
    if think == "none":
        reasoning = _DANGLING_HEADER.sub("", _TAG.sub("", final[:cut]).rstrip()).strip()

    # The reasoning's last conclusion: the check against a final answer that says something else.
    reasoning_letter = None
    if think != "none" and reasoning:
        reasoning_letter = _last_conclusion(_cue_mentions(reasoning[-3000:], opts))
    if any(not m.tentative for m in mentions):
        mentions = [m for m in mentions if not m.tentative]

    result = Extraction(None, None, None, reasoning, think, reasoning_letter, mentions)
    letters = {m.letter for m in mentions}
    if _NON_ANSWER_LINE.match(final.rstrip().rsplit("\n", 1)[-1]) or _ALL_OF.search(final[-600:]):
        result.reason = NO_ANSWER  # the last word is "none of the above": whatever came before, no option is chosen
        return result
    if not mentions:
        result.reason = ANSWER_ONLY_IN_REASONING if reasoning_letter else NO_ANSWER
        return result
    if "?" in letters or not letters <= opts.letters:
        result.reason = INVALID_OPTION if len(letters) == 1 else MULTIPLE_ANSWERS
        return result
    if len(letters) > 1:
        result.reason = MULTIPLE_ANSWERS
        return result
    (letter,) = letters
    if reasoning_letter is not None and reasoning_letter != letter and reasoning_letter in opts.letters:
        result.reason = CONTRADICTS_REASONING
        return result
    last = max(mentions, key=lambda m: m.pos)
    result.letter, result.style = letter, last.style
    return result
