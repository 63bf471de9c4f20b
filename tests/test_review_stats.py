"""Agreement and error-rate statistics against values computed by hand (the working is in each comment)."""

from __future__ import annotations

import pytest

from review.stats import (
    StratumCount,
    agreement,
    cohen_kappa,
    fleiss_kappa,
    pairwise_cohen,
    stratified_rate,
    wilson_interval,
)


def test_wilson_interval_matches_hand_computation():
    # 2/10, z = 1.96: denominator 1 + 3.8415/10 = 1.38415; centre (0.2 + 0.19207) / 1.38415 = 0.28326;
    # half-width 1.96 * sqrt(0.016 + 0.0096036) / 1.38415 = 0.22658 -> [0.0567, 0.5098].
    low, high = wilson_interval(2, 10)
    assert low == pytest.approx(0.05668, abs=1e-4)
    assert high == pytest.approx(0.50984, abs=1e-4)


def test_wilson_interval_at_zero_and_all():
    # 0/10: upper = (z^2/n) / (1 + z^2/n) = 0.38415 / 1.38415 = 0.27753; lower exactly 0.
    assert wilson_interval(0, 10) == (0.0, pytest.approx(0.27753, abs=1e-4))
    low, high = wilson_interval(10, 10)
    assert (low, high) == (pytest.approx(1 - 0.27753, abs=1e-4), 1.0)
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_cohen_kappa_textbook_example():
    # 50 items: both yes 20, A yes/B no 5, A no/B yes 10, both no 15. p_o = 35/50 = 0.7;
    # A says yes 25/50, B says yes 30/50: p_e = 0.5*0.6 + 0.5*0.4 = 0.5; kappa = (0.7 - 0.5) / 0.5 = 0.4.
    a = ["yes"] * 20 + ["yes"] * 5 + ["no"] * 10 + ["no"] * 15
    b = ["yes"] * 20 + ["no"] * 5 + ["yes"] * 10 + ["no"] * 15
    assert cohen_kappa(a, b) == pytest.approx(0.4)


def test_cohen_kappa_edges():
    assert cohen_kappa(["x", "y"], ["x", "y"]) == pytest.approx(1.0)
    # Systematic disagreement: p_o = 0, p_e = 0.5 -> -1.
    assert cohen_kappa(["x", "y"], ["y", "x"]) == pytest.approx(-1.0)
    # Everyone always says the same thing: chance agreement is 1, kappa undefined (not 1, not 0).
    assert cohen_kappa(["ok"] * 5, ["ok"] * 5) is None
    assert cohen_kappa([], []) is None
    with pytest.raises(ValueError):
        cohen_kappa(["x"], ["x", "y"])


def test_fleiss_kappa_wikipedia_table():
    # The worked example of Fleiss (1971) as reproduced on Wikipedia: 10 subjects, 14 raters, 5 categories;
    # mean P_i = 0.378, P_e = 0.213, kappa = 0.210.
    table = [
        [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
        [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
    ]
    ratings = [[category for category, count in enumerate(row) for _ in range(count)] for row in table]
    assert fleiss_kappa(ratings) == pytest.approx(0.2099, abs=5e-4)


def test_fleiss_kappa_small_cases():
    # Two raters, 3 items (a,a) (a,b) (b,b): P_i = 1, 0, 1 -> mean 2/3; p_a = p_b = 1/2 -> P_e = 1/2;
    # kappa = (2/3 - 1/2) / (1/2) = 1/3.
    assert fleiss_kappa([["a", "a"], ["a", "b"], ["b", "b"]]) == pytest.approx(1 / 3)
    # Unequal raters: [a,a,a] -> P = 3*2/(3*2) = 1; [a,b] -> 0; mean 0.5. a: 4 of 5, b: 1 of 5 -> P_e = 0.68;
    # kappa = (0.5 - 0.68) / 0.32 = -0.5625.
    assert fleiss_kappa([["a", "a", "a"], ["a", "b"]]) == pytest.approx(-0.5625)
    assert fleiss_kappa([["a", "a"], ["a", "a"]]) is None
    with pytest.raises(ValueError):
        fleiss_kappa([["a"]])


def test_stratified_rate_weights_strata_by_population():
    # A: 900 rows, 1 error in 10 reviewed; B: 100 rows, 5 in 10. C: 1000 rows, none reviewed.
    # Weights over reviewed strata: 0.9, 0.1 -> estimate 0.9*0.1 + 0.1*0.5 = 0.14.
    # Variance 0.81*0.09/10 + 0.01*0.25/10 = 0.00754; effective n = 0.14*0.86/0.00754 = 15.968.
    # Wilson on (0.14, 15.968): z^2/n = 0.24057, denominator 1.24057, centre (0.14 + 0.12028)/1.24057 = 0.20981,
    # half 1.96*sqrt(0.00754 + 0.0037664)/1.24057 = 0.16799 -> [0.0418, 0.3778]. Coverage 1000/2000 = 0.5.
    result = stratified_rate([StratumCount("A", 900, 10, 1), StratumCount("B", 100, 10, 5), StratumCount("C", 1000, 0, 0)])
    assert result["estimate"] == pytest.approx(0.14)
    assert result["effective_n"] == pytest.approx(15.968, abs=1e-3)
    assert result["interval"][0] == pytest.approx(0.0418, abs=2e-4)
    assert result["interval"][1] == pytest.approx(0.3778, abs=2e-4)
    assert result["coverage"] == pytest.approx(0.5)
    assert result["reviewed"] == 20


def test_stratified_rate_single_stratum_is_plain_wilson_and_empty_is_none():
    single = stratified_rate([StratumCount("all", 500, 10, 2)])
    assert single["estimate"] == pytest.approx(0.2)
    assert single["interval"] == pytest.approx(wilson_interval(2, 10))
    # No errors anywhere: variance 0, the interval falls back to Wilson on all reviewed rows.
    assert stratified_rate([StratumCount("a", 50, 5, 0), StratumCount("b", 50, 5, 0)])["interval"] == wilson_interval(0, 10)
    assert stratified_rate([StratumCount("a", 50, 0, 0)])["estimate"] is None


def test_agreement_pairs_and_percent():
    # alice [c, i, c, c], bob [c, i, i, c]: Cohen p_o 3/4, p_e (3*2 + 1*2)/16 = 1/2 -> 0.5.
    # Fleiss: P_i 1, 1, 0, 1 -> 0.75; c 5/8, i 3/8 -> P_e 34/64; kappa (0.75 - 0.53125)/0.46875 = 0.4667.
    ratings = {
        "r1": {"alice": "c", "bob": "c"}, "r2": {"alice": "i", "bob": "i"},
        "r3": {"alice": "c", "bob": "i"}, "r4": {"alice": "c", "bob": "c"}, "r5": {"carol": "i"},
    }
    result = agreement(ratings)
    assert result["items"] == 4  # r5 has one rating: not an agreement item
    assert result["fleiss_kappa"] == pytest.approx(0.46667, abs=1e-4)
    assert result["percent_agreement"] == pytest.approx(0.75)
    assert result["cohen_kappa"] == [{"raters": ["alice", "bob"], "items": 4, "kappa": pytest.approx(0.5)}]
    # carol shares one item with alice: that pair appears, over that one item.
    ratings["r4"]["carol"] = "c"
    pairs = {tuple(p["raters"]): p for p in pairwise_cohen(ratings)}
    assert pairs[("alice", "carol")]["items"] == 1
    assert ("bob", "carol") in pairs and pairs[("alice", "bob")]["kappa"] == pytest.approx(0.5)
