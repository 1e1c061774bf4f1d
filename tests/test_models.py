"""Tests for sepnb.priors (chapter 02): exactness of the densities, causality,
invertibility, cached sampling, and that a little training helps.

All on the CPU, seeded, tiny models. Tolerances are stated per test.
"""

import pytest
import torch

from sepnb.data.toy import toy_batch
from sepnb.priors.flowavenet import FloWaveNet, _ActNorm
from sepnb.priors.wavenet import WaveNet, mu_law_decode, mu_law_encode, mu_law_log_bin_width


# --------------------------------------------------------------------------- helpers
def randomize(model, scale=0.2, seed=0):
    """Random weights everywhere (zero-initialised layers included); ActNorm marked initialised."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * scale)
        for m in model.modules():
            if isinstance(m, _ActNorm):
                m.initialized.fill_(1)
    return model


def sine_windows(n, length, split, seed=0):
    """Sine sources of the toy data set."""
    return toy_batch(n, length, seed=seed, split=split)[1][:, 0].float()


# --------------------------------------------------------------------------- mu-law
def test_mu_law_roundtrip_and_bin_widths():
    for n in (2, 16, 256):
        c = torch.arange(n)
        assert torch.equal(mu_law_encode(mu_law_decode(c, n), n), c)
        w = mu_law_log_bin_width(c, n).exp()
        assert torch.all(w > 0)
        assert abs(w.sum().item() - 2.0) < 1e-12
    # bin edges: -1, 0 and 1 land where they should; outside values are clamped
    assert mu_law_encode(torch.tensor([-1.0, -1e-9, 0.0, 1.0, 5.0, -5.0])).tolist() == [0, 127, 128, 255, 255, 0]
    # decode gives points inside their bins: width of the bin around x=0 is tiny
    w = mu_law_log_bin_width(torch.tensor([127, 128, 0, 255])).exp()
    assert w[0] == w[1] and w[2] == w[3] and w[0] < 2e-4 < 0.04 < w[2]


# --------------------------------------------------------------------------- WaveNet
def test_wavenet_receptive_field_formula():
    assert WaveNet(n_layers=3, kernel_size=2).receptive_field == 8
    assert WaveNet(n_layers=4, n_stacks=2, kernel_size=3).receptive_field == 2 * 2 * 15 + 1


def test_wavenet_causal_by_perturbation():
    torch.manual_seed(0)
    model = WaveNet(n_layers=3, n_stacks=2, channels=8, kernel_size=2)
    x = torch.rand(2, 40) * 2 - 1
    ref = model(x)
    assert ref.shape == (2, 256, 40)
    for t in (0, 1, 5, 17, 39):
        x2 = x.clone()
        x2[:, t:] = torch.rand(2, 40 - t) * 2 - 1
        out = model(x2)
        assert torch.equal(out[:, :, : t + 1], ref[:, :, : t + 1]), t
        if t + 1 < 40:  # column t+1 sees sample t: the test can fail
            assert not torch.equal(out[:, :, t + 1], ref[:, :, t + 1])


def test_wavenet_causal_by_autograd_exact_receptive_field():
    torch.manual_seed(1)
    model = WaveNet(n_layers=3, channels=8, kernel_size=2, n_classes=16).double()
    R = model.receptive_field  # 8
    c = torch.randint(0, 16, (1, 30))
    onehot = torch.nn.functional.one_hot(c, 16).transpose(1, 2).double().requires_grad_(True)
    logits = model.logits_from_onehot(onehot)
    assert torch.allclose(logits, model.logits_from_classes(c), atol=1e-12)
    for t in (0, 4, 15, 29):
        (g,) = torch.autograd.grad(logits[:, :, t].sum(), onehot, retain_graph=True)
        dep = g.abs().sum(dim=(0, 1)) > 0
        expected = torch.zeros(30, dtype=torch.bool)
        expected[max(0, t - R) : t] = True
        assert torch.equal(dep, expected), (t, dep.nonzero().flatten().tolist())


@pytest.mark.parametrize("n_classes,T", [(16, 1), (16, 2), (16, 3), (256, 1)])
def test_wavenet_density_integrates_to_one(n_classes, T):
    """sum over all class sequences of exp(log_prob) * prod(bin widths) == 1 (tol 1e-4)."""
    torch.manual_seed(2)
    model = WaveNet(n_layers=2, channels=4, kernel_size=2, n_classes=n_classes).double()
    seqs = torch.cartesian_prod(*[torch.arange(n_classes)] * T).reshape(-1, T)
    x = mu_law_decode(seqs, n_classes, dtype=torch.float64)
    with torch.no_grad():
        lp = model.log_prob(x)
    log_vol = mu_law_log_bin_width(seqs, n_classes).sum(1)
    total = torch.exp(lp + log_vol).sum().item()
    assert abs(total - 1.0) < 1e-4, total
    # and it is a density over [-1, 1]: not the discrete mass itself
    assert not torch.allclose(lp, lp + log_vol)


@pytest.mark.parametrize(
    "kw,temperature", [(dict(n_layers=3, kernel_size=2), 1.0), (dict(n_layers=2, n_stacks=2, kernel_size=3), 0.7)]
)
def test_wavenet_cached_sampling_matches_naive(kw, temperature):
    torch.manual_seed(3)
    model = WaveNet(channels=8, n_classes=32, **kw).double()
    n, length = 3, 20
    assert model.receptive_field < length  # the ring buffers wrap around
    fast = model.sample(n, length, seed=11, temperature=temperature)
    assert fast.shape == (n, length) and fast.dtype == torch.float64
    # naive: re-run the whole network on the prefix at every step, same draws
    g = torch.Generator().manual_seed(11)
    classes = torch.zeros(n, length, dtype=torch.long)
    with torch.no_grad():
        for t in range(length):
            logits = model.logits_from_classes(classes[:, : t + 1])[:, :, t]
            classes[:, t] = WaveNet._draw(logits, g, temperature)
    assert torch.equal(mu_law_encode(fast, 32), classes)
    assert len(classes.unique()) > 3  # not trivially constant
    # same seed, same samples; another seed, other samples
    assert torch.equal(model.sample(n, length, seed=11, temperature=temperature), fast)
    assert not torch.equal(model.sample(n, length, seed=12, temperature=temperature), fast)


# --------------------------------------------------------------------------- FloWaveNet
def test_flow_logdet_matches_bruteforce_jacobian():
    torch.manual_seed(4)
    model = FloWaveNet(n_blocks=3, n_flows=2, n_layers=2, channels=4, split_every=1).double()
    randomize(model, scale=0.3, seed=4).eval()
    x = torch.randn(1, 16, dtype=torch.float64) * 0.5
    z, logdet = model(x)
    assert z.shape == (1, 16) and logdet.shape == (1,)
    J = torch.autograd.functional.jacobian(lambda v: model(v)[0], x).reshape(16, 16)
    sign, logabsdet = torch.linalg.slogdet(J)
    assert abs(logabsdet.item() - logdet.item()) < 1e-8, (logabsdet.item(), logdet.item())
    assert abs(logdet.item()) > 0.5  # the randomised flow is far from volume-preserving
    # log_prob = base density of the latents + logdet; latent_log_prob is the base only
    assert torch.allclose(model.log_prob(x) - model.latent_log_prob(x), logdet, atol=1e-10)


def test_flow_authors_objective_weights_only_the_logdet():
    """logdet_weight (the authors' 1/4, chapter 05) changes the loss, never log_prob."""
    kw = dict(n_blocks=3, n_flows=2, n_layers=2, channels=4, split_every=1)
    torch.manual_seed(4)
    ml = randomize(FloWaveNet(**kw).double(), scale=0.3, seed=4).eval()
    authors = FloWaveNet(**kw, logdet_weight=0.25).double().eval()
    authors.load_state_dict(ml.state_dict())
    x = torch.randn(3, 16, dtype=torch.float64) * 0.5
    _, logdet = ml(x)
    base = ml.latent_log_prob(x)
    assert torch.allclose(ml.loss(x), -(base + logdet).mean() / 16, atol=1e-12)
    assert torch.allclose(authors.loss(x), -(base + 0.25 * logdet).mean() / 16, atol=1e-12)
    assert torch.equal(authors.log_prob(x), ml.log_prob(x))
    with pytest.raises(ValueError, match="logdet_weight"):
        FloWaveNet(**kw, logdet_weight=-1.0)


@pytest.mark.parametrize("kw", [dict(n_blocks=3, split_every=1), dict(n_blocks=4, split_every=2)])
def test_flow_reverse_inverts_forward(kw):
    torch.manual_seed(5)
    model = randomize(FloWaveNet(n_flows=2, n_layers=3, channels=8, **kw), scale=0.15, seed=5).eval()
    x = torch.rand(3, 64) * 2 - 1
    with torch.no_grad():
        z, _ = model(x)
        x_back = model.reverse(z)
    assert (z - x).abs().max() > 0.1  # not the identity
    assert (x_back - x).abs().max().item() < 1e-4


def test_flow_density_integrates_to_one_2d():
    """n_blocks=1 on T=2: integrate exp(log_prob) over [-6, 6]^2 (Riemann sum, 161^2 points, tol 2%)."""
    model = FloWaveNet(n_blocks=1, n_flows=2, n_layers=2, channels=4)
    randomize(model, scale=0.3, seed=6).eval()
    g = torch.linspace(-6, 6, 161)
    x = torch.cartesian_prod(g, g)
    with torch.no_grad():
        p = model.log_prob(x).double().exp()
    total = (p.sum() * (g[1] - g[0]).double() ** 2).item()
    assert abs(total - 1.0) < 0.02, total
    # edges of the grid carry (almost) no mass
    p = p.reshape(161, 161)
    assert max(p[[0, -1]].max(), p[:, [0, -1]].max()) < 1e-4


def test_flow_density_with_split_prior_integrates_to_one_4d():
    """T=4, n_blocks=2, split_every=1 (learned split prior, randomised).

    Importance sampling with the flow's own samples (drawn through the split
    priors' ``mean + sd * eps`` path, not through ``log_prob``):
    E_{x~p}[q(x) / p(x)] = 1 for any density q; q = Gaussian with half the
    samples' covariance. 20k draws; standard error about 0.6% here, tol 3%.
    """
    model = FloWaveNet(n_blocks=2, n_flows=2, n_layers=2, channels=4, split_every=1)
    randomize(model, scale=0.3, seed=8).eval()
    x = model.sample(20_000, 4, seed=8)
    xd = x.double()
    q = torch.distributions.MultivariateNormal(xd.mean(0), torch.cov(xd.T) * 0.5)
    with torch.no_grad():
        est = torch.exp(q.log_prob(xd) - model.log_prob(x).double()).mean().item()
    assert abs(est - 1.0) < 0.03, est


def test_flow_sampling_seeded_and_consistent():
    model = randomize(FloWaveNet(n_blocks=2, n_flows=1, n_layers=2, channels=4, split_every=1), 0.2, 8).eval()
    a = model.sample(2, 16, seed=3)
    assert a.shape == (2, 16)
    assert torch.equal(a, model.sample(2, 16, seed=3))
    assert not torch.equal(a, model.sample(2, 16, seed=4))
    assert torch.allclose(
        model.sample(2, 16, seed=3, temperature=0.0),
        model.sample(1, 16, seed=9, temperature=0.0).expand(2, 16),
        atol=1e-6,
    )


def test_actnorm_data_init_and_state_dict():
    torch.manual_seed(9)
    x = torch.randn(4, 32) * 3 + 1
    model = FloWaveNet(n_blocks=1, n_flows=1, n_layers=2, channels=4)
    model.eval()
    model(x)  # eval mode: no initialisation
    assert int(model.blocks[0].actnorms[0].initialized) == 0
    model.train()
    z, _ = model(x)  # couplings start as identity, so z is the normalised x (then flipped)
    assert int(model.blocks[0].actnorms[0].initialized) == 1
    zz = z.reshape(4, 2, 16)
    assert torch.allclose(zz.mean((0, 2)), torch.zeros(2), atol=1e-5)
    assert torch.allclose(zz.std((0, 2), unbiased=False), torch.ones(2), atol=1e-4)
    other = FloWaveNet(n_blocks=1, n_flows=1, n_layers=2, channels=4)
    other.load_state_dict(model.state_dict())
    other.train()
    y = torch.randn(4, 32)
    assert torch.equal(other(y)[0], model(y)[0])  # no re-initialisation after loading


# --------------------------------------------------------------------------- training helps
def _train(model, train, test, steps, lr, seed):
    g = torch.Generator().manual_seed(seed)
    model.train()
    model.loss(train[:16])  # ActNorm data init (no-op for the WaveNet)
    model.eval()
    with torch.no_grad():
        before = model.loss(test).item()
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for _ in range(steps):
        idx = torch.randint(0, len(train), (8,), generator=g)
        loss = model.loss(train[idx])
        assert torch.isfinite(loss)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        after = model.loss(test).item()
    return before, after


def test_wavenet_training_lowers_heldout_loss():
    torch.manual_seed(10)
    train, test = sine_windows(64, 256, "train"), sine_windows(16, 256, "test")
    model = WaveNet(n_layers=5, channels=16, kernel_size=2)
    before, after = _train(model, train, test, steps=150, lr=3e-3, seed=10)
    assert after < before - 1.0, (before, after)


def test_flowavenet_training_lowers_heldout_loss():
    torch.manual_seed(11)
    train, test = sine_windows(64, 256, "train"), sine_windows(16, 256, "test")
    model = FloWaveNet(n_blocks=2, n_flows=2, n_layers=3, channels=16)
    before, after = _train(model, train, test, steps=150, lr=2e-3, seed=11)
    assert after < before - 0.5, (before, after)


# --------------------------------------------------------------------------- validation
@pytest.mark.parametrize(
    "cls,kw,match",
    [
        (WaveNet, dict(n_layers=0), "n_layers"),
        (WaveNet, dict(channels=2.5), "channels"),
        (WaveNet, dict(n_classes=1), "n_classes"),
        (WaveNet, dict(kernel_size=0), "kernel_size"),
        (WaveNet, dict(skip_channels=0), "skip_channels"),
        (FloWaveNet, dict(n_blocks=0), "n_blocks"),
        (FloWaveNet, dict(n_flows=True), "n_flows"),
        (FloWaveNet, dict(split_every=0), "split_every"),
        (FloWaveNet, dict(scale_max=0.0), "scale_max"),
    ],
)
def test_bad_constructor_args(cls, kw, match):
    with pytest.raises(ValueError, match=match):
        cls(**kw)


def test_keyword_only_and_bad_inputs():
    with pytest.raises(TypeError):
        WaveNet(3)
    with pytest.raises(TypeError):
        FloWaveNet(2)
    flow = FloWaveNet(n_blocks=2, n_flows=1, n_layers=1, channels=4)
    with pytest.raises(ValueError, match="divisible by 2\\*\\*n_blocks = 4"):
        flow.log_prob(torch.zeros(1, 30))
    with pytest.raises(ValueError, match="divisible"):
        flow.reverse(torch.zeros(1, 6))
    with pytest.raises(ValueError, match="divisible"):
        flow.sample(1, 10)
    with pytest.raises(ValueError, match="batch, time"):
        flow(torch.zeros(32))
    wn = WaveNet(n_layers=2, channels=4)
    with pytest.raises(ValueError, match="batch, time"):
        wn.log_prob(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="floating-point"):
        wn(torch.zeros(1, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="temperature"):
        wn.sample(1, 4, temperature=-1.0)
    with pytest.raises(ValueError, match="length"):
        wn.sample(1, 0)
    with pytest.raises(ValueError, match="n_classes"):
        mu_law_encode(torch.zeros(3), n_classes=1)
