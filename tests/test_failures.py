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
