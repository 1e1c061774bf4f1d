"""Issue 23's tuning protocol: one pass over the grid, the best validation mean kept within the time
budget, resumable after every mix, and a record made with other denoisers refused, never overwritten."""

import json

import pytest
import torch

from sepnb.core import profiles
from sepnb.priors import Denoiser
from sepnb.separation import search, tuning

P = profiles.get("smoke").replace(n_train=8, search_val_items=2, sep_length=256)


def _denoisers(seed=0):
    torch.manual_seed(seed)
    return [Denoiser(**P.denoiser).eval() for _ in range(4)]


def _fake_search(calls, score):
    """search_mix's stand-in: the mix shared equally, 'seconds' and an SI-SDR that depend on the knobs."""

    def fake(mix, denoisers, cfg, seed=0, **refine):
        calls.append(cfg)
        sources = mix[None].expand(4, -1).clone()
        return search.SearchResult(
            sources=sources,
            f0=torch.arange(4.0).numpy(),
            criterion=1.0,
            candidate_f0=None,
            candidate_cost=None,
            brief_cost=None,
            finalists=None,
            final_cost=None,
            seconds={"candidates": 0.0},
        )

    return fake


def _tuned(tmp_path, monkeypatch, grid):
    """The protocol over ``grid`` with the stand-in search: ``(record, its path, denoisers, calls)``."""
    monkeypatch.setattr(tuning, "GRID", grid)
    calls = []
    monkeypatch.setattr(tuning, "search_mix", _fake_search(calls, None))
    # every estimate is the mix, so SI-SDR ties: the value listed first is kept
    monkeypatch.setattr(tuning, "truth_criterion", lambda *a, **k: 0.5)
    out = tmp_path / "record.json"
    den = _denoisers()
    return tuning.tune(P, den, out, progress=False), out, den, calls


def test_the_protocol_keeps_the_best_mean_within_the_budget_and_resumes(tmp_path, monkeypatch):
    rec, out, den, calls = _tuned(tmp_path, monkeypatch, (("top_m", (1, 3)), ("brief_steps", (20, 40))))
    assert rec["chosen"]["top_m"] == 1 and rec["chosen"]["brief_steps"] == 20
    # 3 distinct configurations (the second knob's first value is the first knob's choice), 2 mixes each
    assert len(rec["configs"]) == 3 and len(calls) == 6
    assert all(
        "truth_criterion" in m
        for m in rec["configs"][tuning.config_key(search.SearchConfig(top_m=1))]["per_mix"].values()
    )
    # resumed: nothing run again
    tuning.tune(P, den, out, progress=False)
    assert len(calls) == 6
    # a record made with other denoisers is refused and left as it was
    before = out.read_text()
    with pytest.raises(SystemExit, match="other denoisers"):
        tuning.tune(P, _denoisers(seed=1), out, progress=False)
    assert out.read_text() == before
    assert json.loads(before)["denoisers"] == [tuning.weights_sha(d) for d in den]


def test_a_value_over_the_time_budget_is_not_chosen(tmp_path, monkeypatch):
    monkeypatch.setattr(tuning, "GRID", (("top_m", (1, 3)),))
    monkeypatch.setattr(tuning, "search_mix", _fake_search([], None))
    monkeypatch.setattr(tuning, "truth_criterion", lambda *a, **k: 0.5)
    means = {1: 5.0, 3: 9.0}
    seconds = {1: 10.0, 3: 31.0}
    monkeypatch.setattr(
        tuning,
        "summary",
        lambda entry, n: {
            "mean": means[entry["config"]["top_m"]],
            "seconds_per_mix": seconds[entry["config"]["top_m"]],
        },
    )
    rec = tuning.tune(P, _denoisers(), tmp_path / "r.json", progress=False, budget_s=30.0)
    assert rec["chosen"]["top_m"] == 1  # 3 is better but over the budget
    seconds[3] = 29.0
    rec = tuning.tune(P, _denoisers(), tmp_path / "r2.json", progress=False, budget_s=30.0)
    assert rec["chosen"]["top_m"] == 3


def test_the_grid_is_the_scorecard_s():
    """The knobs and values the protocol visits are the ones book/scorecard.yaml lists, in its order."""
    text = (tuning.paths.ROOT / "book" / "scorecard.yaml").read_text()
    block = text[text.index("THE TUNING PROTOCOL") :]
    order = [
        block.index(name)
        for name in ("ratios {", "n_candidates {", "n_sets {", "joint_fit {", "S {", "brief steps {", "top_m {")
    ]
    assert order == sorted(order)
    assert [k for k, _ in tuning.GRID] == [
        "ratios",
        "n_candidates",
        "n_sets",
        "joint_fit",
        "criterion_sigmas",
        "brief_steps",
        "top_m",
    ]
    defaults = search.SearchConfig()
    for knob, values in tuning.GRID:
        assert getattr(defaults, knob) in values  # the start is on the grid


def test_the_book_tunes_on_the_64_validation_mixes_the_rules_name():
    book = profiles.get("book")
    _, _, items = tuning.validation_set(book.replace(sep_length=64))
    assert items == list(range(5000, 5064)) and book.search_test_items == 64 and book.sep_items == 32


def test_the_chapter_reads_the_record_only_where_it_was_made_with_these_denoisers(tmp_path, monkeypatch):
    """validation_entry: the record's numbers at the chosen configuration where its denoisers are these;
    computed afresh (never written) where they are not, or where there is no record."""
    rec, out, den, calls = _tuned(tmp_path, monkeypatch, (("top_m", (1, 3)),))
    cfg = search.SearchConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in rec["chosen"].items()})
    n = len(calls)
    got = tuning.validation_entry(P, den, cfg, out, progress=False)
    assert got["source"] == "record" and len(calls) == n  # nothing run again
    assert got["truth_criterion"] == [0.5, 0.5] and len(got["fixed"]) == P.search_val_items
    before = out.read_text()
    other = tuning.validation_entry(P, _denoisers(seed=1), cfg, out, progress=False)
    assert other["source"] == "computed" and len(calls) == n + P.search_val_items
    assert out.read_text() == before  # the record is only read
    assert tuning.validation_entry(P, den, cfg, None, progress=False)["source"] == "computed"


def test_the_book_profile_holds_the_validation_record_s_choice():
    """Profile.search at the book's sizes is what the committed record chose (chapter 08 checks it too)."""
    rec = json.loads((tuning.paths.RESULTS / "07_search_validation.json").read_text())
    assert "chosen" in rec, "the validation record is not complete: python -m sepnb.separation.tuning --profile book"
    chosen = search.SearchConfig(**{k: tuple(v) if isinstance(v, list) else v for k, v in rec["chosen"].items()})
    assert search.SearchConfig(**profiles.get("book").search) == chosen
    assert all("truth_criterion" in m for m in rec["configs"][tuning.config_key(chosen)]["per_mix"].values())
