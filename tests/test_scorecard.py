"""The scorecard's decision rules (sepnb.analysis.scorecard) and the rules file they read."""

import numpy as np
import pytest

from sepnb.analysis import scorecard


def test_verdicts_follow_the_rules_of_the_file_header():
    v = scorecard.verdict
    assert v(0.81, 0.9, 0.8, "above") == "holds"
    assert v(0.7, 0.79, 0.8, "above") == "does not hold"
    assert v(0.7, 0.8, 0.8, "above") == "inconclusive"  # touching the threshold is containing it
    assert v(0.7, 0.9, 0.8, "above") == "inconclusive"
    assert v(1.0, 4.9, 5.0, "below") == "holds"
    assert v(5.1, 9.0, 5.0, "below") == "does not hold"
    assert v(-0.2, -0.1, None, "outside", band=(-0.05, 0.05)) == "holds"
    assert v(-0.01, 0.02, None, "outside", band=(-0.05, 0.05)) == "does not hold"
    assert v(-0.06, 0.0, None, "outside", band=(-0.05, 0.05)) == "inconclusive"
    with pytest.raises(ValueError, match="low <= high"):
        v(1.0, 0.0, 0.5)
    with pytest.raises(ValueError, match="direction"):
        v(0.0, 1.0, 0.5, "sideways")


def test_combine_and_not_tested_cases():
    assert scorecard.combine(["holds", "holds"]) == "holds"
    assert scorecard.combine(["holds", "does not hold"]) == "does not hold"
    assert scorecard.combine(["holds", "inconclusive"]) == "inconclusive"
    assert scorecard.combine(["holds", "not tested"]) == "not tested"
    row = "added_sampler_holds_truth"
    assert scorecard.judge(row, 12.0, 14.0, 32, "book") == "holds"
    assert scorecard.judge(row, 12.0, 14.0, 16, "book") == "not tested"  # fewer than min_clusters
    assert scorecard.judge(row, 12.0, 14.0, 32, "smoke") == "not tested"  # excluded profile
    assert scorecard.judge(row, 12.0, 14.0, 32, "book", data="musdb18") == "not tested"
    with pytest.raises(KeyError, match="no scorecard row"):
        scorecard.rule("made_up")


def test_every_row_of_the_rules_file_is_well_formed():
    file = scorecard.rules()
    ids = [r["id"] for r in file["rows"]]
    assert len(ids) == len(set(ids))
    for r in file["rows"]:
        if r.get("kind") == "paper_claim_composite":
            assert set(r["composite_of"]) <= set(ids)
            continue
        assert r["direction"] in ("above", "below", "outside"), r["id"]
        if r["direction"] == "outside":
            assert len(r["band"]) == 2 and r["band"][0] < r["band"][1], r["id"]
        elif isinstance(r["threshold"], dict):  # a count rule (deterministic rows)
            assert set(r["threshold"]) == {"holds", "does_not_hold_at_most"}, r["id"]
        else:
            assert isinstance(r["threshold"], (int, float)), r["id"]


def test_diagnosis_rule():
    assert scorecard.diagnose("holds", "holds") == "sampler"
    assert scorecard.diagnose("does not hold", "holds") == "both"
    assert scorecard.diagnose("does not hold", "inconclusive") == "priors"
    assert scorecard.diagnose("holds", "does not hold") == "priors"
    assert scorecard.diagnose("holds", "inconclusive") == "unclear"
    assert scorecard.diagnose("not tested", "holds") == "not tested"


def _separation_result(n, truth_db, prefers):
    methods = [
        "flow: SGLD",
        "flow: annealed from noise",
        "flow: annealed from truth",
        "wavenet: annealed from noise",
        "wavenet: annealed from truth",
        "reference: mix as estimate",
    ]
    per_mix = {m: {"fixed_order": [[-15.0 + 0.01 * b] * 4 for b in range(n)]} for m in methods}
    for f in ("flow", "wavenet"):
        per_mix[f"{f}: annealed from truth"]["fixed_order"] = [[truth_db + 0.01 * b] * 4 for b in range(n)]
    per_mix["reference: mix as estimate"]["fixed_order"] = [[-5.0] * 4 for _ in range(n)]
    checks = [{"family": f, "mix": b, "target prefers truth": prefers} for f in ("flow", "wavenet") for b in range(n)]
    return {
        "n_mixes": n,
        "profile": "book",
        "methods": methods,
        "si_sdr_per_mix": per_mix,
        "posterior_check": {"per_mix": checks},
    }


def test_separation_rows_from_per_mix_numbers():
    card = scorecard.separation_rows(_separation_result(32, 20.0, True))
    assert card["diagnosis"] == {"wavenet": "sampler", "flow": "sampler"}
    assert card["added_sampler_holds_truth"]["flow"]["verdict"] == "holds"
    assert card["langevin_separation_fails"]["row"] == "holds"  # -10 dB improvement, far below 5 dB
    assert card["added_toy_separation_success"]["flow: SGLD"]["verdict"] == "does not hold"
    card = scorecard.separation_rows(_separation_result(32, 2.0, False))
    assert card["diagnosis"] == {"wavenet": "priors", "flow": "priors"}
    card = scorecard.separation_rows(_separation_result(16, 20.0, True))  # fewer mixes than min_clusters
    assert card["diagnosis"]["flow"] == "not tested" and card["langevin_separation_fails"]["row"] == "not tested"


def _glued(chapter: str) -> dict:
    """The text of every value glued in the executed chapter ``book/<chapter>.ipynb``."""
    import nbformat

    from sepnb.core import paths

    nb = nbformat.read(paths.BOOK / f"{chapter}.ipynb", as_version=4)
    glued = {}
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            key = out.get("metadata", {}).get("scrapbook", {}).get("name")
            if key:
                glued[key] = out["data"].get("application/papermill.record/text/plain", "").strip("'\"")
    return glued


def test_chapter_07_verdicts_follow_from_the_rules_and_its_results():
    """Recompute chapter 07's rows from book/results/07_priors_that_separate.json; the results file and the
    executed chapter must state the same verdicts."""
    import json

    from sepnb.core import paths

    entry = json.loads((paths.RESULTS / "07_priors_that_separate.json").read_text())["runs"].get("book/seed=0")
    if entry is None or "scorecard" not in entry:
        pytest.fail("book/results/07_priors_that_separate.json has no book-profile entry; run make book")
    card = scorecard.beyond_rows(entry)
    assert card == entry["scorecard"], "the stored verdicts differ from the rules applied to the stored numbers"
    assert len(entry["si_sdr_per_mix"]["denoiser: harmonic grouping + constrained Langevin"]["fixed_order"]) >= 32
    glued = _glued("07_priors_that_separate")
    short = {
        "denoiser: constrained Langevin from noise": "cl_from_noise",
        "denoiser: harmonic grouping": "harmonic_grouping",
        "denoiser: harmonic grouping + constrained Langevin": "harmonic_grouping_cl",
    }
    for name, v in card["added_toy_separation_success"].items():
        assert glued[f"verdict_{short[name]}"] == v["verdict"], name
    assert glued["verdict_holds_truth"] == card["added_sampler_holds_truth"]["denoiser"]["verdict"]


def test_the_books_separation_verdicts_follow_from_the_rules_and_its_results():
    """Recompute chapter 06's scorecard rows from book/results/06_separation.json and compare them with
    the verdicts the results file and the executed chapter state."""
    import json

    from sepnb.core import paths

    results = json.loads((paths.RESULTS / "06_separation.json").read_text())["runs"]
    entry = results.get("book/seed=0")
    if entry is None or "scorecard" not in entry:
        pytest.fail("book/results/06_separation.json has no book-profile entry with a scorecard; run make book")
    card = scorecard.separation_rows(entry)
    assert card == entry["scorecard"], "the stored verdicts differ from the rules applied to the stored numbers"
    glued = _glued("06_separation")
    for f in ("flow", "wavenet"):
        assert glued[f"diagnosis_{f}"] == card["diagnosis"][f]
        assert glued[f"verdict_holds_{f}"] == card["added_sampler_holds_truth"][f]["verdict"]
        assert glued[f"verdict_prefers_{f}"] == card["added_posterior_prefers_truth"][f]["verdict"]
    assert glued["verdict_langevin_fails"] == card["langevin_separation_fails"]["row"]


def test_the_opening_page_scorecard_follows_from_the_rules_and_the_results():
    """Recompute every verdict from book/scorecard.yaml and book/results/*.json; the book's opening
    page (book/00_intro.ipynb) and book/results/scorecard.json must state the same."""
    import json

    import nbformat

    from sepnb.core import paths

    card = scorecard.compute(paths.RESULTS, profile="book")
    stored = json.loads((paths.RESULTS / "scorecard.json").read_text())["runs"]["book/seed=0"]["rows"]
    assert [(e["id"], e["family"], e["config"], e["verdict"]) for e in card] == [
        (e["id"], e["family"], e["config"], e["verdict"]) for e in stored
    ], "run make book: the stored scorecard is stale"
    nb = nbformat.read(paths.BOOK / "00_intro.ipynb", as_version=4)
    tables = [
        o["data"]["text/html"]
        for c in nb.cells
        if c.cell_type == "code"
        for o in c.get("outputs", [])
        if "text/html" in o.get("data", {}) and "scorecard" in o["data"]["text/html"]
    ]
    assert len(tables) == 1, "the opening page has no scorecard table"
    shown = [cell.split("</b>")[0] for cell in tables[0].split("<td><b>")[1:]]
    assert shown == [e["verdict"] for e in card], (
        "the opening page's verdicts differ from the rules applied to the results"
    )
    assert {e["verdict"] for e in card} <= set(scorecard.VERDICTS)


def test_smoke_profile_is_never_judged():
    assert {e["verdict"] for e in scorecard.compute(profile="smoke")} == {"not tested"}


def _cross(rng, separation, n):
    """Synthetic cross-likelihoods [prior, data, item]: own source ``separation`` above the others."""
    return (rng.normal(size=(4, 4, n)) + separation * np.eye(4)[..., None]).tolist()


def test_variant_rows_from_synthetic_numbers():
    """Chapter 05's rows: clear cases of each rule, and the change rule against our noise scheme."""
    rng = np.random.default_rng(0)
    r07 = {
        "authors_objective": {"latent_own_per_item": (2 + 0.1 * rng.normal(size=(4, 64))).tolist()},
        "authors_noise": {
            "ours_diag_per_item": [_cross(rng, 0, 32) for _ in range(5)],
            "authors_diag_per_item": [_cross(rng, 6, 32) for _ in range(5)],
        },
        "budget": {"factor": 4, "fig3_1x_per_item": _cross(rng, 0, 64), "fig3_4x_per_item": _cross(rng, 6, 64)},
    }
    rows = {e["id"]: e for e in scorecard.variant_rows(r07, "book")}
    assert rows["added_authors_objective_metric"]["verdict"] == "holds"  # 2 nats/sample, well above 0
    noise = rows["added_authors_noise_scheme"]
    assert noise["verdict"] == "does not hold" and noise["reason"].startswith("changed vs our scheme (holds)")
    budget = rows["added_training_budget"]
    assert budget["verdict"] == "holds" and budget["value"] > 0.4  # AUC 0.5 -> 1: far outside the band
    assert budget["reason"] == "wavenet_toy_not_discriminative: holds at 1x, does not hold at 4x"
    assert rows["added_authors_data_fig3"]["verdict"] == "not tested"  # no results for it: not run
    r07["authors_data"] = {"fig3_per_item": _cross(rng, 6, 64), "ours_fig3_per_item": _cross(rng, 6, 64)}
    data_row = {e["id"]: e for e in scorecard.variant_rows(r07, "book")}["added_authors_data_fig3"]
    assert data_row["verdict"] == "holds" and data_row["reason"] == "unchanged vs our data (holds)"
    # the same numbers on both sides: no change, and the budget's difference is exactly zero
    r07["authors_noise"]["authors_diag_per_item"] = r07["authors_noise"]["ours_diag_per_item"]
    r07["budget"]["fig3_4x_per_item"] = r07["budget"]["fig3_1x_per_item"]
    rows = {e["id"]: e for e in scorecard.variant_rows(r07, "book")}
    assert rows["added_authors_noise_scheme"]["reason"].startswith("unchanged")
    assert rows["added_training_budget"]["verdict"] == "does not hold" and rows["added_training_budget"]["value"] == 0


def test_chapter_05_verdicts_follow_from_the_rules_and_its_results():
    """Recompute chapter 05's rows from book/results/05_variants.json; the executed chapter states the same."""
    import json

    from sepnb.core import paths

    entry = json.loads((paths.RESULTS / "05_variants.json").read_text())["runs"].get("book/seed=0")
    if entry is None:
        pytest.fail("book/results/05_variants.json has no book-profile entry; run make book")
    glued = _glued("05_variants")
    for e in scorecard.variant_rows(entry, "book"):
        assert glued[f"verdict_{e['id']}"] == e["verdict"], e["id"]
