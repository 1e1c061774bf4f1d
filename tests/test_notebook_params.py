"""Bad notebook parameters stop early, in the cell right after the parameters, with the reason."""

import papermill as pm
import pytest
from papermill.exceptions import PapermillExecutionError

from sepnb.core import paths


@pytest.mark.parametrize(
    "stem, params, message",
    [
        ("03_noise", {"sigma": -1.0}, "sigma must be > 0"),
        ("03_noise", {"sigma": "loud"}, "sigma must be a number"),
        ("03_noise", {"noise_mode": "pink"}, "unknown noise_mode"),
        ("01_data", {"profile": "fast"}, "unknown profile 'fast'"),
        ("01_data", {"music": "cd"}, "music"),
        ("04_ood", {"music": "cd"}, "music"),
        ("04_ood", {"sigma_wide": float("nan")}, "sigma must be finite"),
        ("06_separation", {"profile": "fast"}, "unknown profile 'fast'"),
        # a misspelt name is an error naming the valid ones, not a warning and a run at the defaults
        ("03_noise", {"sigmaa": 0.3}, "unknown parameter 'sigmaa' (did you mean 'sigma'?)"),
        ("02_models", {"sede": 1}, "this chapter takes profile, seed, music"),
        ("03_noise", {"seed": -1}, "seed must be >= 0"),
        ("01_data", {"seed": "1"}, "seed must be an integer"),
        ("06_separation", {"seed": 1.5}, "seed must be an integer"),
    ],
)
def test_bad_parameter_stops_in_first_cells(stem, params, message, tmp_path):
    with pytest.raises(PapermillExecutionError) as err:
        pm.execute_notebook(
            str(paths.NOTEBOOKS / f"{stem}.ipynb"),
            str(tmp_path / "out.ipynb"),
            parameters={"profile": "smoke", **params},
            kernel_name="python3",
            cwd=str(paths.NOTEBOOKS),
            progress_bar=False,
        )
    assert err.value.ename == "ValueError" and message in err.value.evalue
    assert err.value.exec_count <= 4  # imports, parameters, injected parameters, the check
