"""Issue 23's groups of mixes and failure taxonomy, on cases whose answer is known."""

import numpy as np
import pytest

from sepnb.analysis import failures

BIN = 16_000 / 2048  # 7.8125 Hz


def test_groups_close_then_integer_ratio_then_rest():
    freq = [
        [100.0, 100.0 + 1.5 * BIN, 700.0, 1500.0],  # two within 2 bins: close (even with 700 = 7 x 100)
        [110.0, 220.0 + 1.0 * BIN, 900.0, 1700.0],  # 220 + 1 bin is within 2 bins of 2 x 110
        [130.0, 400.0, 517.0, 1700.0],  # 400 ~ 3 x 130 + 1.3 bins
        [130.0, 290.0, 517.0, 1700.0],  # nothing near
        [1200.0, 300.0, 900.0 + 3 * BIN, 180.0],  # unsorted input; 900 + 3 bins is not within 2 bins of 3 x 300
    ]
    assert failures.mix_groups(freq, BIN) == ["close", "integer ratio", "integer ratio", "rest", "rest"]
    with pytest.raises(ValueError, match="fundamentals"):
        failures.mix_groups([[100.0]], BIN)


def test_has_fundamentals_matches_in_sorted_order_within_half_a_bin():
    truth = [300.0, 100.0, 200.0, 400.0]
    cands = [
        [100.0, 200.0, 300.0, 400.0 + 0.49 * BIN],
        [400.0, 300.0, 200.0, 100.0 - 0.6 * BIN],
        [100.0, 200.0, 300.0, 800.0],
    ]
    np.testing.assert_array_equal(failures.has_fundamentals(cands, truth, BIN), [True, False, False])


def test_each_reason_in_its_order():
    truth = [100.0, 200.0, 300.0, 400.0]
    right, wrong = [100.0, 200.0, 300.0, 400.0], [100.0, 200.0, 300.0, 800.0]
    assert failures.failure_reason(16.0, 16.0, [wrong], wrong, truth, BIN) is None  # no failure
    assert failures.failure_reason(5.0, 20.0, [wrong], wrong, truth, BIN) == "assignment"
    assert failures.failure_reason(5.0, 6.0, [wrong, wrong], wrong, truth, BIN) == "candidates"
    assert failures.failure_reason(5.0, 6.0, [wrong, right], wrong, truth, BIN) == "choice"
    assert failures.failure_reason(5.0, 6.0, [wrong, right], right, truth, BIN) == "refinement"


def test_sorted_reading_is_the_bottleneck_matching_and_sub_multiples_widen_it():
    rng = np.random.default_rng(0)
    truth = np.sort(rng.uniform(100, 1500, size=4))
    cands = rng.uniform(100, 1500, size=(200, 4))
    sorted_err = failures.f0_error_bins(cands, truth, BIN)
    # brute force over every matching: the sorted order is the one with the smallest largest error
    brute = np.stack([np.abs(cands[:, p] - truth).max(1) for p in __import__("itertools").permutations(range(4))])
    np.testing.assert_allclose(sorted_err, brute.min(0) / BIN)
    # allowing sub-multiples can only shrink the error, and m = 1 alone is the rule's reading
    assert (failures.f0_error_bins(cands, truth, BIN, failures.SUB_MULTIPLES) <= sorted_err + 1e-12).all()


def test_sub_multiple_reading_accepts_a_comb_at_half_or_a_third_one_to_one():
    truth = [307.2, 410.0, 620.0, 900.0]
    half = [153.6, 410.0, 620.0, 900.0 + 0.3 * BIN]  # the sine chosen at exactly half its fundamental
    third = [307.2, 410.0, 620.0 / 3, 900.0]
    twice = [307.2 / 2, 1300.0, 620.0, 900.0]  # 153.6 could stand for 307.2 (m 2) and 410 is left over
    double = [614.4, 410.0, 620.0, 900.0]  # a candidate ABOVE the truth (c = 2 f) is not a comb holding f
    got = failures.has_fundamentals([half, third, twice, double], truth, BIN, multiples=failures.SUB_MULTIPLES)
    np.testing.assert_array_equal(got, [True, True, False, False])
    np.testing.assert_array_equal(failures.has_fundamentals([half, third], truth, BIN), [False, False])
    # one candidate may not stand for two true fundamentals: 200 would cover 200 (m 1) and 400 (m 2)
    assert not failures.has_fundamentals(
        [200.0, 1000.0, 620.0, 900.0], [200.0, 400.0, 620.0, 900.0], BIN, multiples=failures.SUB_MULTIPLES
    )[0]
    assert failures.f0_error_bins(half, truth, BIN, failures.SUB_MULTIPLES)[0] == pytest.approx(0.3)
    # the same failure is "candidates" under the rule and "choice" under the sub-multiple reading
    wrong = [100.0, 200.0, 300.0, 800.0]
    assert failures.failure_reason(5.0, 6.0, [wrong, half], wrong, truth, BIN) == "candidates"
    assert failures.failure_reason(5.0, 6.0, [wrong, half], wrong, truth, BIN, failures.SUB_MULTIPLES) == "choice"
    with pytest.raises(ValueError, match="multiples"):
        failures.f0_error_bins(half, truth, BIN, multiples=(0,))
