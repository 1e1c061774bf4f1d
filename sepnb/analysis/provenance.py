"""Which came first, a scorecard rule or the result it judges: read from git, never typed.

``book/scorecard.yaml`` says it was written before the numbers it judges;
that is its writer's word. What git can confirm is the order of commits: the
first commit whose ``book/scorecard.yaml`` holds a row's ``- id:`` line
against the first commit whose results file holds the measurement the row
judges (:data:`RESULT_OF`: the results file under every name it has had, and
the key that first carried the measurement). :func:`row_provenance` compares
the two; :func:`amendment_provenance` does the same for a later part of the
rules (the training-seed rule, a deviation) and the result it applies to.

The book's scorecard computes this when it is built, from the checkout's
history; without one (an exported tree, a shallow clone) every row reads
``unknown``.
"""

from __future__ import annotations

import functools
import subprocess

from sepnb.core.paths import ROOT

__all__ = [
    "RESULT_OF",
    "ORDERS",
    "has_history",
    "first_commit",
    "row_provenance",
    "part_provenance",
    "amendment_provenance",
]

RULES = "book/scorecard.yaml"

#: Every name a chapter's results file has had (the chapters were renumbered in issue 21).
_NAMES = {
    "04_ood": ("04_ood",),
    "05_variants": ("05_variants", "07_variants"),
    "06_separation": ("06_separation", "05_separation"),
    "07_priors_that_separate": ("07_priors_that_separate", "06_priors_that_separate"),
}

#: Row id -> (results file, the JSON key whose first appearance is the row's first result).
#: Rows judged on several chapters' results (the separation rows) list each; the earliest counts.
RESULT_OF: dict[str, tuple[tuple[str, str], ...]] = {
    **{
        r: (("04_ood", '"figure3"'),)
        for r in ("flow_toy_discriminates", "wavenet_toy_not_discriminative", "flow_toy_diagonal")
    },
    **{
        r: (("04_ood", '"figure3_music"'),)
        for r in ("musdb_not_discriminative", "musdb_not_discriminative_without_other", "musdb_other_prior_highest")
    },
    **{
        r: (("04_ood", '"figure4"'),)
        for r in ("flow_noisefree_peaked", "flow_noise_small_sigma_drop", "flow_noise_conditioned_nondiscriminative")
    },
    **{
        r: (("04_ood", '"table1"'),)
        for r in (
            "zero_input_likely_noisefree",
            "zero_input_unlikely_square",
            "zero_input_shift_after_noise",
            "noise_input_unlikely_noisefree",
            "noise_input_more_likely_after_noise",
            "noise_input_as_likely_as_inclass",
        )
    },
    # the separation chapter's first results already held every method's SI-SDR
    "langevin_separation_fails": (("06_separation", '"runs"'),),
    "added_authors_noise_scheme": (("05_variants", '"authors_noise"'),),
    "added_authors_objective_metric": (("05_variants", '"authors_objective"'),),
    "added_authors_data_fig3": (("05_variants", '"authors_data"'),),
    "added_training_budget": (("05_variants", '"budget"'),),
    "added_toy_separation_success": (
        ("06_separation", '"runs"'),
        ("07_priors_that_separate", '"runs"'),
    ),
    "added_sampler_holds_truth": (("06_separation", "annealed from truth"),),
    "added_posterior_prefers_truth": (("06_separation", '"posterior_check"'),),
    "added_posterior_keeps_truth": (("06_separation", "last level from truth"),),
    # issue 23: the search chapter's test rows, and the criterion's test on the validation record
    **{
        r: (("08_search", '"rows"'),)
        for r in ("added_toy_separation_strong", "added_toy_separation_strong_by_group", "added_beats_references")
    },
    "added_criterion_prefers_truth": (("07_search_validation", '"truth_criterion"'),),
    # issue 24: the remedy study's entry holds every row it judges
    **{
        r: (("09_remedies", '"noisefree_auc"'),)
        for r in (
            "remedy_noisefree_discriminates",
            "remedy_conditioned_discriminates",
            "remedy_probes_rejected",
            "remedy_speech_rejected",
        )
    },
}

#: What :func:`row_provenance` can say.
ORDERS = ("rule first", "rule after the result", "rule and result in one commit", "unknown")


def _git(*args: str) -> str:
    out = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(out.stderr.strip())
    return out.stdout


@functools.lru_cache(maxsize=1)
def has_history() -> bool:
    """True when the checkout is a git repository with its whole history (not shallow)."""
    try:
        return _git("rev-parse", "--is-shallow-repository").strip() == "false"
    except (RuntimeError, OSError):
        return False


@functools.lru_cache(maxsize=None)
def _time(commit: str) -> int:
    return int(_git("show", "-s", "--format=%ct", commit).strip())


@functools.lru_cache(maxsize=None)
def _before(a: str, b: str) -> bool:
    """True when commit ``a`` precedes ``b``: ``a`` is an ancestor of ``b``, or (on branches that
    neither contains) was committed earlier."""
    if subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", a, b]).returncode == 0:
        return True
    if subprocess.run(["git", "-C", str(ROOT), "merge-base", "--is-ancestor", b, a]).returncode == 0:
        return False
    return _time(a) < _time(b)


def _earliest(commits):
    out = None
    for c in commits:
        if c is not None and (out is None or _before(c, out)):
            out = c
    return out


@functools.lru_cache(maxsize=None)
def first_commit(needle: str, paths: tuple[str, ...]) -> str | None:
    """The first commit (full hash), on any branch merged into HEAD, that added ``needle`` to any
    of ``paths``, or None if none did. Merge commits count (``-m``: a result can first appear in
    the merge that brought a chapter's run in; without it git's pickaxe skips merges)."""
    return _earliest(dict.fromkeys(_git("log", "-m", "--format=%H", "-S", needle, "--", *paths).split()))


def _results_paths(stem: str) -> tuple[str, ...]:
    """``book/results/<name>.json`` under every name the chapter's results file has had."""
    return tuple(f"book/results/{n}.json" for n in _NAMES.get(stem, (stem,)))


def _result_commit(row_id: str) -> str | None:
    return _earliest(first_commit(key, _results_paths(stem)) for stem, key in RESULT_OF.get(row_id, ()))


def _compare(rule: str | None, result: str | None) -> dict:
    if rule is None:  # the rule is in the working tree only: it cannot be before anything committed
        order = "unknown" if result is None else "rule after the result"
    elif result is None:  # committed rule, result not (yet) committed: the rule came first
        order = "rule first"
    elif rule == result:
        order = "rule and result in one commit"
    else:
        order = "rule first" if _before(rule, result) else "rule after the result"
    return {"order": order, "rule_commit": rule[:7] if rule else None, "result_commit": result[:7] if result else None}


def row_provenance(row_id: str, composite_of: tuple[str, ...] = ()) -> dict:
    """``{"order", "rule_commit", "result_commit"}`` of a scorecard row (see :data:`ORDERS`).

    A composite row's result is the earliest result of its parts. ``unknown``
    without a full git history.
    """
    if not has_history():
        return {"order": "unknown", "rule_commit": None, "result_commit": None}
    rule = first_commit(f"- id: {row_id}", (RULES,))
    return _compare(rule, _earliest([_result_commit(row_id), *(_result_commit(p) for p in composite_of)]))


def amendment_provenance(rule_needle: str, stem: str, key: str) -> dict:
    """The same comparison for a later part of the rules file (the first commit adding
    ``rule_needle`` to it) and the result it applies to (``key`` in ``stem``'s results)."""
    if not has_history():
        return {"order": "unknown", "rule_commit": None, "result_commit": None}
    rule = first_commit(rule_needle, (RULES,))
    result = first_commit(key, _results_paths(stem))
    return _compare(rule, result)


def part_provenance(rule_needle: str, row_id: str) -> dict:
    """A later part of the rules file (the first commit adding ``rule_needle``, e.g. a deviation's
    ``- id:`` line) against the first result of row ``row_id``."""
    if not has_history():
        return {"order": "unknown", "rule_commit": None, "result_commit": None}
    return _compare(first_commit(rule_needle, (RULES,)), _result_commit(row_id))
