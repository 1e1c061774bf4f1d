"""Issue 23's ablation end to end at toy sizes: every row on the same mixes, the references, the truth
rows, the taxonomy, and an entry the scorecard judges."""

import numpy as np
import torch

from sepnb.analysis import failures, scorecard
from sepnb.core import profiles
from sepnb.priors import Denoiser
from sepnb.separation import ablation, search


def test_the_ablation_runs_every_row_on_the_same_mixes_and_the_scorecard_reads_it():
    P = profiles.get("smoke").replace(search_test_items=3)
    torch.manual_seed(0)
    denoisers = [Denoiser(**P.denoiser).eval() for _ in range(4)]
    ts = ablation.test_set(P)
    assert ts.mixes.shape == (3, P.sep_length) and ts.freq.shape == (3, 4)
    assert set(ts.groups) <= set(failures.GROUPS)
    entry, est = ablation.run(P, denoisers, search.SearchConfig(**P.search), ts=ts, progress=False)
    assert list(entry["rows"]) == list(ablation.ROWS) and entry["full_method"] in entry["rows"]
    for name, e in est.items():
        assert e.shape == ts.truth.shape, name
    for name in ablation.ROWS:  # every row's sources add up to the mix exactly (float32 rounding of large sources)
        assert torch.allclose(est[name].mean(dim=1), ts.mixes, atol=1e-6 * float(est[name].abs().max()) + 1e-5), name
        assert np.asarray(entry["rows"][name]["fixed"]).shape == (3, 4)
    # grouping alone gives the groups in order of fundamental; the priors' assignment permutes the same groups
    f_alone, f_prior = (np.asarray(entry["rows"][n]["f0"]) for n in ablation.ROWS[::2][:2])
    assert (np.diff(f_alone, axis=1) >= 0).all()
    np.testing.assert_allclose(np.sort(f_prior, axis=1), f_alone, atol=1e-3)
    assert set(entry["truth_rows"]) == {ablation.TRUTH_RULE, ablation.TRUTH_EASY}
    assert "oracle: ideal ratio mask" in entry["references"]
    for when in ("before", "after"):
        assert len(entry["taxonomy"][when]) == 3
        assert set(entry["taxonomy"][when]) <= {None, *failures.REASONS}
        # the sub-multiple reading fails the same mixes and can only move a reason later in the order
        # (candidates to choice or refinement, choice to refinement)
        for rule, sub in zip(entry["taxonomy"][when], entry["taxonomy_submultiples"][when]):
            assert (rule is None) == (sub is None), (rule, sub)
            if rule is not None:
                assert failures.REASONS.index(sub) >= failures.REASONS.index(rule), (rule, sub)
    entry["validation"] = {"fixed": [[0.0] * 4] * 3, "criterion": [1.0] * 3, "truth_criterion": [0.5] * 3}
    rows = scorecard.search_rows(entry)  # smoke is never judged: every verdict "not tested"
    assert rows["added_toy_separation_strong"]["denoiser"]["verdict"] == "not tested"
