"""The benchmark's measuring code runs and reports sane figures (not a timing test)."""

import math

from sepnb import bench


def test_measure_reports_positive_finite_throughput():
    row = bench.measure({"family": "flow", "batch": 2, "window": 64,
                         "model": dict(n_blocks=2, n_flows=1, n_layers=2, channels=4, kernel_size=3)},
                        steps=1, warmup=0)
    for key in ("train_samples_per_s", "logp_samples_per_s", "peak_mem_mb"):
        assert math.isfinite(row[key]) and row[key] > 0, key
    assert row["params"] > 0 and row["batch"] == 2


def test_every_profile_and_reference_has_a_case():
    for name in ("smoke", "book", "paper"):
        for family in ("wavenet", "flow"):
            assert f"{family}-{name}" in bench.CASES
    assert set(bench.REFERENCE) <= set(bench.CASES)
