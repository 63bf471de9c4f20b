"""Format and quality checks: one test per reason code (each asserts the code appears when it should and not on a
clean response)."""

from __future__ import annotations

import pytest

from curate.filter.checks import CheckConfig, check_trace, estimate_tokens, has_repetition, is_non_english
from curate.filter.extract import extract_answer
from curate.filter.reasons import (
    ANSWER_LEAK,
    EMPTY_REASONING,
    HEDGING,
    NON_ENGLISH,
    REASONS,
    REFUSAL,
    REPETITION,
    SHORT_REASONING,
    TOO_LONG,
    TRUNCATED,
    UNCLOSED_THINK,
)

OPTS = {"A": "Hyperkalemia", "B": "Hypokalemia", "C": "Hypernatremia", "D": "Hyponatremia"}
GOOD = (
    "<think>\nThe patient takes a loop diuretic and has muscle weakness with flattened T waves on the ECG. Loop "
    "diuretics waste potassium in the thick ascending limb, so the most likely electrolyte disturbance is low "
    "potassium rather than a sodium problem. So the answer is B.\n</think>\n\nB"
)


def reasons(completion: str, **kwargs) -> list[str]:
    return check_trace(completion=completion, extraction=extract_answer(completion, OPTS), **kwargs)


def test_clean_response_has_no_reason():
    assert reasons(GOOD) == []


def test_truncated_by_finish_reason():
    assert TRUNCATED in reasons(GOOD, finish_reason="length")
    assert TRUNCATED not in reasons(GOOD, finish_reason="stop")


def test_unclosed_think():
    assert UNCLOSED_THINK in reasons(GOOD.split("</think>")[0])


def test_empty_and_short_reasoning():
    assert EMPTY_REASONING in reasons("B")
    assert EMPTY_REASONING in reasons("<think>\n</think>\nB")
    assert SHORT_REASONING in reasons("Low potassium.\nB")
    assert SHORT_REASONING not in reasons(GOOD)


def test_too_long_uses_server_count_when_given_else_the_estimate():
    assert TOO_LONG in reasons(GOOD, config=CheckConfig(max_tokens=20))
    assert TOO_LONG not in reasons(GOOD, config=CheckConfig(max_tokens=2000))
    assert TOO_LONG in reasons(GOOD, completion_tokens=5000, config=CheckConfig(max_tokens=4096))
    # The server's count wins over the estimate: here the estimate alone would say too long.
    assert estimate_tokens(GOOD) > 60
    assert TOO_LONG not in reasons(GOOD, completion_tokens=50, config=CheckConfig(max_tokens=60))


def test_token_estimate_is_about_four_thirds_of_words():
    assert estimate_tokens("one two three") == 4
    assert estimate_tokens("word " * 300) == pytest.approx(400, abs=2)


def test_repetition_loop():
    loop = "<think>\nLet me think. " + "I think the answer is B but I am not sure about the potassium level here. " * 8
    assert REPETITION in reasons(loop + "\n</think>\n\nB")
    assert not has_repetition(GOOD)
    # A loop without sentence breaks is caught by how well the tail compresses.
    assert has_repetition("the potassium the sodium " * 200)


def test_non_english():
    chinese = "<think>\n" + "患者服用袢利尿剂后出现肌无力，心电图显示T波低平，因此最可能是低钾血症。" * 5 + "\n</think>\n\nB"
    assert NON_ENGLISH in reasons(chinese)
    spanish = ("El paciente toma un diurético de asa y presenta debilidad muscular con ondas T aplanadas en el "
               "electrocardiograma, por lo tanto la alteración más probable es una hipopotasemia causada por pérdida "
               "renal de potasio en el asa gruesa ascendente según los datos clínicos disponibles hoy. ") * 2
    assert is_non_english(spanish)
    assert not is_non_english(GOOD)


def test_refusal_and_hedging_replace_no_answer():
    assert reasons("I'm sorry, but I can't assist with that.")[-1] == REFUSAL
    hedge = ("The findings could fit several conditions and none of the options match the calculated value exactly, "
             "so it cannot be determined from the information given.")
    assert reasons(hedge)[-1] == HEDGING
    # A hedge that still commits to an answer is not a hedge.
    assert HEDGING not in reasons("It is difficult to say with certainty, but the answer is B.")


def test_answer_leak_only_for_the_rationalisation_prompt():
    leaky = GOOD.replace("So the answer is B.", "Since we are told the answer is B, we work backwards from the answer.")
    assert ANSWER_LEAK in reasons(leaky, prompt_name="mcq-rationalize")
    assert ANSWER_LEAK not in reasons(leaky, prompt_name="mcq")
    assert ANSWER_LEAK not in reasons(GOOD, prompt_name="mcq-rationalize")
    for admission in ("The question states that the correct answer is B, so", "Given that the correct answer is B,",
                      "To justify the given answer, note that"):
        text = GOOD.replace("So the answer is B.", admission + " low potassium explains everything. So it is B.")
        assert ANSWER_LEAK in reasons(text, prompt_name="rationalize"), admission


def test_every_code_has_a_description():
    for code in (TRUNCATED, UNCLOSED_THINK, EMPTY_REASONING, SHORT_REASONING, TOO_LONG, REPETITION, NON_ENGLISH,
                 REFUSAL, HEDGING, ANSWER_LEAK):
        assert REASONS[code]
