"""The denoising priors of chapter 07: preconditioning, Tweedie's score, training through the store, batching."""

import math

import numpy as np
import pytest
import torch

from sepnb.data import toy
from sepnb.priors.denoiser import Denoiser, StackedDenoisers
from sepnb.runs import catalogue, config, loop

TINY = dict(channels=8, layers=6, emb=8)
#: a small sine denoiser trained for a few seconds through the run store (windows of 256 samples see 2 periods
#: or more of every sine above 125 Hz)
SMALL = config.RunConfig(
    family="denoiser",
    source="sine",
    model=dict(channels=16, layers=8, emb=16),
    steps=400,
    batch=8,
    window=256,
    lr=3e-3,
    warmup=20,
    eval_every=100,
    eval_items=8,
    ckpt_every=100,
    n_items=2000,
    seed=0,
)


@pytest.fixture(autouse=True)
def store(tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


def test_score_is_tweedie_residual_and_preconditioning_limits():
    torch.manual_seed(0)
    m = Denoiser(**TINY).eval()
    x = torch.randn(3, 64)
    with torch.no_grad():
        d = m(x, 0.2)
        assert torch.allclose(m.score(x, 0.2), (d - x) / 0.04, atol=1e-5)
        # per-window levels give the same as one level per call
        both = m(x[:2], torch.tensor([0.2, 0.5]))
        assert torch.allclose(both[0], d[0], atol=1e-6) and torch.allclose(both[1], m(x[1:2], 0.5)[0], atol=1e-6)
        # EDM: c_skip -> 1 and c_out -> 0 as sigma -> 0, so D(x, tiny sigma) ~ x
        assert torch.allclose(m(x, 1e-6), x, atol=1e-4)
    assert m.receptive_field() == 1 + 2 * (2**6 - 1)


@pytest.mark.parametrize("kernel,layers", [(3, 6), (5, 4)])
def test_inference_path_is_the_same_function_as_the_layers(kernel, layers):
    """Without autograd the network runs a faster path (sigmoid gate, the dilation-1 convolution
    as one product, one linear map for the conditioning); with it, the layers' plain forward.
    They must agree to float rounding, for per-window levels too, with trained-looking weights."""
    torch.manual_seed(1)
    m = Denoiser(channels=8, layers=layers, kernel=kernel, emb=8).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.add_(0.3 * torch.randn_like(p))  # away from the init, so every term of the gate matters
    x = torch.randn(3, 200)
    sigma = torch.tensor([0.01, 0.3, 2.0])
    with torch.enable_grad():
        ref = m(x, sigma)
    assert ref.requires_grad  # the reference went through the layers' forward
    with torch.no_grad():
        fast = m(x, sigma)
    assert not fast.requires_grad
    assert torch.allclose(fast, ref.detach(), rtol=1e-5, atol=1e-5), (fast - ref).abs().max()
    assert (ref.detach() - x).abs().max() > 1e-2  # not a trivial identity


def test_bad_input_is_a_clear_error():
    m = Denoiser(**TINY)
    with pytest.raises(ValueError, match="sigma must be a positive"):
        m(torch.zeros(2, 16), 0.0)
    with pytest.raises(ValueError, match="shape"):
        m(torch.zeros(16), 0.1)
    with pytest.raises(ValueError, match="odd"):
        Denoiser(kernel=2)
    with pytest.raises(ValueError, match="sigma_min"):
        Denoiser(sigma_min=1.0, sigma_max=0.5)


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    """SMALL, trained once for this module in a store of its own."""
    mp = pytest.MonkeyPatch()
    mp.setenv("SEPNB_RUNS", str(tmp_path_factory.mktemp("small-runs")))
    try:
        yield loop.get_prior(SMALL, progress=False)
    finally:
        mp.undo()


def test_trained_denoiser_beats_identity_and_the_best_per_sample_shrinkage_on_held_out_windows(small):
    """Trained through the run store on sine windows only; judged on test-split windows it never saw."""
    model, hist = small
    assert hist["eval"][-1] < hist["eval"][0]
    x = toy.ToyWindows("test", window=256, source="sine", n_items=32, seed=0).batch(np.arange(32))
    gen = torch.Generator().manual_seed(1)
    for sigma in (0.1, 0.3):
        noisy = x + sigma * torch.randn(x.shape, generator=gen)
        with torch.no_grad():
            err = (model(noisy, sigma) - x).pow(2).mean().item()
        sd2 = x.pow(2).mean().item()
        identity = (noisy - x).pow(2).mean().item()
        shrink = (noisy * sd2 / (sd2 + sigma**2) - x).pow(2).mean().item()  # the best linear per-sample denoiser
        assert err < 0.5 * identity, (sigma, err, identity)
        assert err < 0.7 * shrink, (sigma, err, shrink)


def test_log_prob_bound_is_deterministic_and_ranks_in_class_above_noise(small):
    model, _ = small
    x = toy.ToyWindows("test", window=256, source="sine", n_items=4, seed=0).batch(np.arange(4))
    noise = 0.6 * torch.randn(4, 256, generator=torch.Generator().manual_seed(0))
    a, b = model.log_prob(x, levels=8), model.log_prob(x, levels=8)
    assert a.shape == (4,) and torch.isfinite(a).all() and torch.equal(a, b)
    assert (model.log_prob(noise, levels=8) < a).all()


@pytest.mark.parametrize("vmap,workers", [(False, 1), (False, 2), (False, 3), (True, None)])
def test_stacked_scores_match_each_model(vmap, workers):
    torch.manual_seed(0)
    models = [Denoiser(**TINY).eval() for _ in range(3)]
    st = StackedDenoisers(models, vmap=vmap, workers=workers)
    x = torch.randn(2, 3, 64)
    threads = torch.get_num_threads()
    got = st.score_all(x, 0.3)
    assert torch.get_num_threads() == threads  # side by side, the thread count comes back
    assert not got.requires_grad
    want = torch.stack([m.score(x[:, k], 0.3) for k, m in enumerate(models)], dim=1)
    assert torch.allclose(got, want, atol=1e-4, rtol=1e-4)
    # torch's linear algebra is still sound after the side-by-side call (changing torch's thread
    # count there once broke lu_solve's pivots for the rest of the process)
    a = torch.tensor([[0.0, 2.0, 1.0], [1.0, 1.0, 0.0], [3.0, 0.0, 1.0]], dtype=torch.float64)
    b = torch.tensor([[1.0], [2.0], [3.0]], dtype=torch.float64)
    lu, piv = torch.linalg.lu_factor(a)
    torch.testing.assert_close(a @ torch.linalg.lu_solve(lu, piv, b), b)
    with pytest.raises(ValueError, match="workers"):
        StackedDenoisers(models, workers=0)
    with pytest.raises(ValueError, match="shape"):
        st.score_all(torch.zeros(2, 4, 64), 0.3)
    with pytest.raises(ValueError, match="one architecture"):
        StackedDenoisers([Denoiser(**TINY), Denoiser(channels=4, layers=6, emb=8)])


def test_denoiser_config_trains_on_single_sources_of_the_profile():
    cfg = catalogue.denoiser_config("smoke", "saw")
    assert cfg.family == "denoiser" and cfg.source == "saw" and cfg.sigma == 0
    assert config.loss_unit(cfg) == "EDM-weighted MSE"
    with pytest.raises(ValueError, match="unknown source"):
        catalogue.denoiser_config("smoke", "mix")
    assert math.isclose(Denoiser(**catalogue.denoiser_config("book", "sine").model).sigma_min, 0.005)
