"""The benchmark reports only what it measured, labels numbers from elsewhere, and never
divides one by the other (issue 10). Not a timing test: sizes are tiny, or the timings faked."""

import datetime
import json
import math
import re

import pytest

from sepnb import bench
from sepnb.core import profiles
from sepnb.data import musdb, toy
from sepnb.runs import catalogue

# Fake measured throughputs: every ratio against an external figure is then known in advance.
FAKE = {"wavenet-smoke": (11_764.0, 36_442.0), "flow-smoke": (19_312.0, 83_111.0)}


def _fake_measure(case, steps=5, warmup=2, compile=False):
    name = next(k for k, c in bench.CASES.items() if c is case)
    train, logp = FAKE[name]
    return {
        "config": {
            "family": case["family"],
            "model": dict(case["model"]),
            "batch": case["batch"],
            "window": case["window"],
            "profile": case.get("profile"),
            "dtype": "float32",
            "compiled": compile,
        },
        "params": 1234,
        "step_s": case["batch"] * case["window"] / train,
        "train_samples_per_s": train,
        "logp_samples_per_s": logp,
        "peak_mem_mb": 321.0,
        "peak_mem_kind": "peak RSS of the process",
        "device": "cpu",
        "threads": 1,
        "timed_steps": steps,
        "warmup_steps": warmup,
    }


@pytest.fixture
def faked_run(monkeypatch, tmp_path, capsys):
    monkeypatch.setattr(bench, "measure", _fake_measure)
    path = tmp_path / "bench.json"
    assert bench.main(["--cases", *FAKE, "--in-process", "--json", str(path)]) == 0
    return capsys.readouterr().out, json.loads(path.read_text())


def _external_figures():
    return [v for r in bench.EXTERNAL["rows"].values() for v in (r["train_samples_per_s"], r["logp_samples_per_s"])]


def test_measure_reports_positive_finite_throughput():
    row = bench.measure(
        {
            "family": "flow",
            "batch": 2,
            "window": 64,
            "model": dict(n_blocks=2, n_flows=1, n_layers=2, channels=4, kernel_size=3),
        },
        steps=1,
        warmup=0,
    )
    for key in ("train_samples_per_s", "logp_samples_per_s", "peak_mem_mb"):
        assert math.isfinite(row[key]) and row[key] > 0, key
    assert row["params"] > 0 and row["config"]["batch"] == 2 and row["config"]["model"]["kernel_size"] == 3


def test_every_profile_has_a_case_and_no_case_is_named_after_a_reference():
    for name in ("smoke", "book", "paper"):
        p = profiles.get(name)
        for family in ("wavenet", "flow"):
            case = bench.CASES[f"{family}-{name}"]
            assert case["model"] == p.model(family) and (case["batch"], case["window"]) == (p.batch, p.window)
    assert not set(bench.EXTERNAL["rows"]) & set(bench.CASES)


def test_measured_table_holds_no_external_figure_and_external_ones_are_labelled(faked_run):
    out, _ = faked_run
    measured_at, external_at = out.index("MEASURED on this machine"), out.index("NOT MEASURED HERE")
    assert measured_at < external_at
    measured, external = out[measured_at:external_at], out[external_at:]
    for v in _external_figures():
        assert f"{v:,}" not in measured and f"{v:,}" in external, v
    for label in ("date:", "machine:", "settings:", "source:", "KERNEL 3", "not comparable"):
        assert label in external, label
    assert "kernel size 2" in external  # the mismatch with what is measured here is spelt out


def test_no_ratio_against_external_figures_is_printed(faked_run):
    out, _ = faked_run
    # leave out the lines that describe the machine: version strings hold arbitrary decimals
    text = "\n".join(line for line in out.splitlines() if not line.lstrip().startswith(("machine:", "date:")))
    ratios = set()
    for train, logp in FAKE.values():
        for m in (train, logp):
            for e in _external_figures():
                for r in (m / e, e / m):
                    ratios |= {f"{r:.2f}", f"{r:.1f}", f"{100 * r:.0f}%"}
    for r in ratios:
        assert not re.search(rf"(?<![\d.]){re.escape(r)}(?![\d])", text), r
    assert not re.search(r"\d\s*[x×](?![\s\d])", text)  # no "1.5x", "2×"
    assert not re.search(r"speed-?up|\bvs\.?\b", text, re.I)


def test_json_keeps_measured_and_external_apart_and_records_the_machine(faked_run):
    _, doc = faked_run
    assert {"measured", "external"} <= set(doc)
    measured = doc["measured"]
    assert set(measured["rows"]) == set(FAKE)
    externals = set(_external_figures())
    for row in measured["rows"].values():
        assert not any("ref" in k or "external" in k for k in row)
        assert not externals & {v for v in row.values() if isinstance(v, (int, float))}
        assert {"family", "model", "batch", "window", "dtype"} <= set(row["config"])
    m = measured["machine"]
    for key in ("cpu_model", "logical_cpus", "torch", "torch_threads", "torch_cpu_capability", "device"):
        assert m[key] not in (None, ""), key
    assert datetime.datetime.fromisoformat(measured["date"]).tzinfo is not None
    ext = doc["external"]
    assert ext["comparable_with_measured"] is False
    assert ext["date"] and ext["machine"] and ext["caveats"]
    assert all(r["config"] and r["implementation"] for r in ext["rows"].values())
    assert all("KERNEL 3" in r["config"] for k, r in ext["rows"].items() if "wavenet" in k)


def test_estimate_follows_the_stated_formula():
    p = profiles.get("paper")
    rows = {
        "wavenet-paper": {"train_samples_per_s": 10_000.0, "device": "cpu"},
        "flow-paper": {"train_samples_per_s": 5_000.0, "device": "cpu"},
    }
    est = bench.paper_estimate(rows, "paper", devices=4)
    steps = len(toy.SOURCES) * (p.steps + len(p.sigmas) * p.finetune_steps) + len(musdb.MUSIC_SOURCES) * p.music_steps
    # chapter 06's flows fine-tuned at the levels of BASIS's schedule that the paper's levels lack
    flow_only = len(toy.SOURCES) * len(catalogue.basis_extra_sigmas(p)) * p.finetune_steps
    want = (steps * (1 / 10_000 + 1 / 5_000) + flow_only / 5_000) * p.batch * p.window / 3600  # music_window == window
    assert p.music_window == p.window
    assert est["hours_1_device"] == pytest.approx(want)
    assert est["hours_4_devices_ideal"] == pytest.approx(want / 4)
    assert "ideal" in est["ideal_scaling_note"] and est["formula"] == bench.FORMULA


def test_profile_option_measures_that_profile_and_estimates(tmp_path, capsys):
    path = tmp_path / "b.json"
    assert (
        bench.main(
            [
                "--profile",
                "smoke",
                "--steps",
                "1",
                "--warmup",
                "0",
                "--devices",
                "3",
                "--in-process",
                "--json",
                str(path),
                "--no-external",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert bench.FORMULA in out and "IDEAL data-parallel" in out and "NOT MEASURED" not in out
    doc = json.loads(path.read_text())
    assert set(doc["measured"]["rows"]) == {"wavenet-smoke", "flow-smoke"} and "external" not in doc
    assert doc["estimate"]["hours_1_device"] > 0
    assert doc["estimate"]["hours_3_devices_ideal"] == pytest.approx(doc["estimate"]["hours_1_device"] / 3)


def test_a_case_runs_in_its_own_process():
    row = bench._run_isolated("wavenet-smoke", steps=1, warmup=0)  # what make bench does for every case
    assert row["timed_steps"] == 1 and row["warmup_steps"] == 0 and row["train_samples_per_s"] > 0
    assert row["config"]["model"] == profiles.get("smoke").model("wavenet")


def test_help_is_readable(capsys):
    with pytest.raises(SystemExit) as exit_:
        bench.main(["--help"])
    assert exit_.value.code == 0
    out = capsys.readouterr().out
    assert "--profile" in out and "ideal data-parallel" in out and "no ratio" in out


def test_sampler_step_is_measured_and_reported_per_mix():
    row = bench.measure_sampler(bench.SAMPLER_CASES["sampler-smoke"], steps=1, warmup=0)
    p = profiles.get("smoke")
    assert row["config"]["mixes"] == p.sep_items and row["config"]["batched"] == "side"
    assert math.isfinite(row["step_s"]) and row["step_s"] > 0
    assert math.isclose(
        row["seconds_per_mix_refinement"], row["step_s"] * p.refine_levels * p.refine_steps / p.sep_items
    )
    assert bench.SAMPLER_CASES["sampler-book-vmap"]["vmap"] and not set(bench.SAMPLER_CASES) & set(bench.CASES)
    assert (
        bench.SAMPLER_CASES["sampler-book-loop"]["workers"] == 1
        and bench.SAMPLER_CASES["sampler-book"]["workers"] is None
    )


def test_jobs_benchmark_trains_the_same_runs_per_setting_in_scratch_stores(tmp_path, monkeypatch, capsys):
    """``--jobs 1 2``: both settings train the six runs from nothing; the real store is not touched."""
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path / "real"))
    monkeypatch.setenv("SEPNB_DATA", str(tmp_path / "data"))
    path = tmp_path / "jobs.json"
    assert bench.main(["--jobs", "1", "2", "--profile", "smoke", "--steps", "2", "--json", str(path)]) == 0
    res = json.loads(path.read_text())
    rows = res["rows"]
    assert [r["jobs"] for r in rows.values()] == [1, 2] and rows["jobs-1"]["speedup_vs_first"] == 1.0
    assert sorted(rows["jobs-1"]["runs"]) == sorted(rows["jobs-2"]["runs"]) and len(rows["jobs-1"]["runs"]) == 6
    assert all(r["wall_s"] > 0 for r in rows.values()) and res["steps_per_run"] == 2
    assert math.isclose(
        rows["jobs-2"]["speedup_vs_first"], rows["jobs-1"]["wall_s"] / rows["jobs-2"]["wall_s"], rel_tol=0.01
    )
    assert not (tmp_path / "real").exists()
    out = capsys.readouterr().out
    assert "--jobs 2 (" in out and "vs --jobs 1" in out


def test_search_is_measured_per_mix_with_both_comb_fits_side_by_side():
    row = bench.measure_search(bench.SEARCH_CASES["search-smoke"], steps=1, warmup=0)
    assert row["config"]["length"] == profiles.get("smoke").sep_length
    assert math.isfinite(row["seconds_per_mix"]) and row["seconds_per_mix"] > 0
    assert set(row["stage_seconds"]) == {"candidates", "brief", "final"}
    assert set(row["comb_fit_seconds"]) == {"harmonic_fit", "CombFit"}
    assert not set(bench.SEARCH_CASES) & (set(bench.CASES) | set(bench.SAMPLER_CASES))
