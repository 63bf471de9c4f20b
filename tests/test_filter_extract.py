"""Answer extraction: one test per style the teachers use, and the adversarial cases that must give null, not a guess."""

from __future__ import annotations

import pytest

from curate.filter.extract import (
    ANSWER_ONLY_IN_REASONING,
    CONTRADICTS_REASONING,
    INVALID_OPTION,
    MULTIPLE_ANSWERS,
    NO_ANSWER,
    extract_answer,
)

OPTS = {
    "A": "Renal papillary necrosis",
    "B": "Allergic interstitial nephritis",
    "C": "Cholesterol embolization",
    "D": "Polyarteritis nodosa",
}
YES_NO = {"A": "yes", "B": "no", "C": "maybe"}
REASONING = "The patient had a catheterization two weeks ago; livedo and eosinophilia point to emboli of cholesterol. "


def letter(text: str, options: dict[str, str] = OPTS, reasoning_content: str | None = None) -> str | None:
    return extract_answer(text, options, reasoning_content).letter


# ---------------------------------------------------------------- styles


@pytest.mark.parametrize(
    "text",
    [
        f"{REASONING}\n<answer>C</answer>",
        f"<think>\n{REASONING}\n</think>\n<answer>C</answer>",  # the format our own prompts ask for
        f"<think>\n{REASONING}So the answer is C.\n</think>\n\nC",
        f"<think>\n{REASONING}\n</think>\n\nThe answer is (C).",
        f"{REASONING}Therefore, the answer is (C).",
        f"{REASONING}\nAnswer: C",
        f"{REASONING}\n**C.**",
        f"{REASONING}\nC) Cholesterol embolization",
        f"{REASONING}\n**Final Answer**\n\n\\[ \\boxed{{C}} \\]",
        f"{REASONING}\n\\boxed{{\\text{{C}}}}",
        f"{REASONING}\nCholesterol embolization",
        f"{REASONING}Therefore, the correct answer is:\n\n(C) Cholesterol embolization\n\nThis fits the findings.",
        f"{REASONING}The most likely diagnosis is:\n\n**C) Cholesterol embolization**",
        f"{REASONING}I'll go with C.",
        f"{REASONING}The correct option is C.",
        f"{REASONING}Option C is correct.",
        f"{REASONING}The answer is cholesterol embolization.",
        f"C) Cholesterol embolization\nC) Cholesterol embolization. {REASONING}",  # answer first (ThoughtSource)
    ],
    ids=[
        "answer_tag", "think_then_answer_tag", "think_then_letter", "think_then_sentence", "answer_is_paren",
        "answer_colon", "bold_letter",
        "letter_paren_text", "boxed", "boxed_text", "option_text_line", "colon_then_option_line",
        "colon_then_bold_option", "go_with", "correct_option_is", "option_x_is_correct", "answer_is_option_text",
        "answer_first",
    ],
)
def test_each_style_gives_the_letter(text):
    assert letter(text) == "C"


@pytest.mark.parametrize(
    "text",
    [
        f"{REASONING}So the answer is C--the emboli explain the livedo and the eosinophilia.",
        f"{REASONING}So the answer is C — the emboli explain the livedo.",
        # flan-T5 repeats the question's closing words ("... most likely to reveal:") and puts the letter after them.
        f"{REASONING}A kidney biopsy in this patient would be most likely to reveal: C.",
        f"{REASONING}The most likely diagnosis is: (C).",
        # gpt-4: "C) Acral lentiginous melanoma." for the option "Acral lentiginous".
        f"{REASONING}\nC) Cholesterol embolization syndrome.",
        f"{REASONING}\nC) Cholesterol crystal embolization",
    ],
    ids=["answer_is_letter_double_hyphen", "answer_is_letter_em_dash", "question_words_colon_letter",
         "diagnosis_is_colon_letter", "letter_paren_text_extra_word", "letter_paren_text_word_inside"],
)
def test_forms_found_in_issue_14_give_the_letter(text):
    """Real forms the parser abstained on (issue 14): a dash written as two hyphens after the letter, a bare letter
    after the question's own closing words and a colon, a lettered option line whose text has an extra word."""
    assert letter(text) == "C"


@pytest.mark.parametrize(
    "text",
    [
        f"{REASONING}\nC) Cholesterol embolization is incorrect",
        f"{REASONING}\nC) not cholesterol embolization",
        f"{REASONING}\nC) non-cholesterol embolization",
        f"{REASONING}\nC) Cholesterol embolization or polyarteritis nodosa",
        f"{REASONING}\nB) Cholesterol embolization syndrome",  # letter B, text of C: which one?
        f"{REASONING}\nC) Cholesterol embolization syndrome type D",
        f"{REASONING}A kidney biopsy would be most likely to reveal: C.\nD",
        f"{REASONING}A kidney biopsy would be most likely to reveal: A. Renal papillary necrosis B. Allergic",
        f"{REASONING}So the answer is C-D.",
    ],
    ids=["extra_words_disown", "not_before_text", "non_before_text", "extra_words_name_another", "letter_vs_text",
         "extra_letter", "colon_letter_then_other", "colon_then_option_list", "letter_hyphen_letter"],
)
def test_loosened_forms_still_never_guess(text):
    assert letter(text) is None


def test_single_hyphen_after_a_letter_starts_a_word():
    options = {"A": "C-reactive protein", "B": "Ferritin", "C": "Procalcitonin", "D": "Haptoglobin"}
    assert letter("The answer is C-reactive protein.", options) == "A"


def test_separate_reasoning_content_is_the_reasoning_and_completion_the_answer():
    found = extract_answer("The answer is C.", OPTS, reasoning_content=REASONING + "So it is C.")
    assert found.letter == "C"
    assert found.think == "separate"
    assert found.reasoning.startswith("The patient had")


@pytest.mark.parametrize(
    "text, expected",
    [("Based on the data, the answer is yes.", "A"), ("Answer: no", "B"), ("<think>hmm</think>\n\nmaybe", "C"),
     ("The results suggest benefit.\n\n(B) no", "B"), ("\\boxed{maybe}", "C")],
)
def test_pubmedqa_yes_no_maybe(text, expected):
    assert letter(text, YES_NO) == expected


def test_option_text_with_source_typos_matches_nearly():
    # MedMCQA's texts lost every "rt" ("Ahritis"); the teacher wrote the word correctly.
    options = {"A": "Ahritis", "B": "Niemann pick disease", "C": "Nasogastric tube inseion", "D": "Cancer"}
    assert letter("Reasoning about joints and storage disorders here.\nA) Arthritis.", options) == "A"
    assert letter("Decompress the stomach first.\nC) Nasogastric tube insertion.", options) == "C"


def test_canonical_reasoning_drops_the_trailing_answer_lines():
    found = extract_answer(f"{REASONING}So, the answer is C.\nC) Cholesterol embolization.", OPTS)
    assert found.letter == "C"
    assert found.reasoning.endswith("So, the answer is C.")
    found = extract_answer(f"{REASONING}So, the answer is C.\n\n**Final Answer**\n\nC", OPTS)
    assert found.letter == "C" and found.reasoning.endswith("So, the answer is C.")


# ---------------------------------------------------------------- adversarial: null, never a guess


def test_letter_in_the_stem_is_not_an_answer():
    options = {"A": "Hepatitis A", "B": "Hepatitis B", "C": "Hepatitis C", "D": "Hepatitis E"}
    found = extract_answer("Vitamin A is low and the viral load of hepatitis B is high. B cell counts are normal.", options)
    assert found.letter is None and found.reason == NO_ANSWER


def test_letter_that_starts_an_option_text_is_that_option():
    options = {"A": "T cell lymphoma", "B": "B cell lymphoma", "C": "Hodgkin lymphoma", "D": "Myeloma"}
    # "B" here is the first word of option B's text, not a bare letter: still B, and never A or C.
    assert letter("The answer is B cell lymphoma.", options) == "B"
    options = {"A": "B cell lymphoma", "B": "T cell lymphoma", "C": "Hodgkin lymphoma", "D": "Myeloma"}
    assert letter("The answer is B cell lymphoma.", options) == "A"


def test_negated_answer_is_skipped():
    assert letter(f"{REASONING}The answer is not A. The answer is C.") == "C"
    found = extract_answer(f"{REASONING}The answer is not A.", OPTS)
    assert found.letter is None


def test_options_listed_again_at_the_end_are_not_an_answer():
    text = f"{REASONING}\nA. Renal papillary necrosis\nB. Allergic interstitial nephritis\nC. Cholesterol embolization\n" \
           "D. Polyarteritis nodosa"
    found = extract_answer(text, OPTS)
    assert found.letter is None and found.reason == NO_ANSWER


def test_bare_letter_after_relisted_options_is_the_answer():
    text = "A) Renal papillary necrosis\nB) Allergic interstitial nephritis\nC) Cholesterol embolization\n" \
           "D) Polyarteritis nodosa\n C."
    assert letter(text) == "C"


@pytest.mark.parametrize(
    "text",
    [
        f"{REASONING}\nAnswer: C\nOn reflection, the emboli fit less well, so the answer is D.",
        f"{REASONING}The answer is A or C.",
        f"{REASONING}The correct answers are B) Allergic interstitial nephritis and C) Cholesterol embolization.",
        f"{REASONING}The final answer: A.\nC",
        f"{REASONING}\nC\nD",
        f"{REASONING}So the answer is B.\nCholesterol embolization",  # letter and option text disagree
    ],
    ids=["answer_then_later_other", "a_or_c", "two_lettered_options", "cot_vs_final_line", "two_letter_lines",
         "letter_vs_text"],
)
def test_two_different_answers_give_null(text):
    found = extract_answer(text, OPTS)
    assert found.letter is None
    assert found.reason == MULTIPLE_ANSWERS


def test_answer_only_inside_the_reasoning():
    found = extract_answer(f"<think>\n{REASONING}So the answer is C.\n</think>\n\n", OPTS)
    assert found.letter is None and found.reason == ANSWER_ONLY_IN_REASONING


def test_unclosed_think_is_not_a_final_answer():
    found = extract_answer(f"<think>\n{REASONING}So the answer is C. Wait, let me double", OPTS)
    assert found.letter is None and found.think == "unclosed"


def test_final_answer_contradicting_the_reasonings_last_conclusion():
    found = extract_answer(f"<think>\n{REASONING}So, answer C.\n</think>\n\nB", OPTS)
    assert found.letter is None and found.reason == CONTRADICTS_REASONING
    # A tentative aside ("maybe the answer is B") is not a conclusion; the firm one after it agrees.
    ok = extract_answer(f"<think>\n{REASONING}Maybe the answer is B. Hmm. I'll go with C.\n</think>\n\nC", OPTS)
    assert ok.letter == "C" and ok.reasoning_letter == "C"


@pytest.mark.parametrize(
    "text",
    ["I'm sorry, but I can't assist with that.", f"{REASONING}\nnone of the above.",
     f"{REASONING}The answer is either A or C.\neither A or C.", f"{REASONING}It is associated with all of the following."],
)
def test_no_choice_gives_null(text):
    assert letter(text) is None


def test_letter_outside_the_options_is_invalid():
    found = extract_answer(f"{REASONING}The answer is E.", OPTS)
    assert found.letter is None and found.reason == INVALID_OPTION


def test_options_whose_texts_are_letters_match_by_letter():
    options = {"A": "B", "B": "C", "C": "D", "D": "E"}
    assert letter("So I think I'll go with B as the answer.", options) == "B"
