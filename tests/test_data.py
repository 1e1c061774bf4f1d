"""The toy data set (paper 3.1): what the paper specifies, checked on the waveforms."""

import numpy as np
import pytest
import torch

from sepnb.data import toy

SR = toy.SAMPLE_RATE


@pytest.fixture(scope="module")
def batch():
    mix, sources = toy.toy_batch(40, 16000, seed=3, split="train")
    params = toy.toy_params(np.arange(40), seed=3, split="train")
    return mix, sources, params


def test_shapes_and_dtype():
    mix, sources = toy.toy_batch(3, 16000, seed=1)
    assert mix.shape == (3, 16000) and sources.shape == (3, 4, 16000)
    assert mix.dtype == sources.dtype == torch.float32
    assert toy.SOURCES == ("sine", "square", "saw", "triangle")


def test_mix_is_mean_of_sources(batch):
    mix, sources, _ = batch
    torch.testing.assert_close(mix, sources.mean(dim=1), rtol=0, atol=1e-7)
    torch.testing.assert_close(toy.mix(sources, [0.25] * 4), mix, rtol=0, atol=1e-6)


def test_frequency_by_fft_in_range_and_as_drawn(batch):
    _, sources, params = batch
    assert (params.freq >= toy.F_MIN).all() and (params.freq <= toy.F_MAX).all()
    s = sources[:, 0].numpy()  # sines: one spectral line
    spec = np.abs(np.fft.rfft(s * np.hanning(s.shape[-1]), axis=-1))
    peak = spec.argmax(-1) * SR / s.shape[-1]
    assert np.abs(peak - params.freq[:, 0]).max() <= 1.0  # 1 Hz resolution of a 1 s FFT
    assert (peak >= toy.F_MIN - 1).all() and (peak <= toy.F_MAX + 1).all()


def test_fundamental_of_every_waveform_below_nyquist_matches(batch):
    """Square, saw and triangle: the fundamental's bin holds a strong peak."""
    _, sources, params = batch
    s = sources.numpy()
    spec = np.abs(np.fft.rfft(s * np.hanning(s.shape[-1]), axis=-1))  # [n, 4, F]
    for j in range(4):
        for i in range(len(s)):
            k = int(round(params.freq[i, j]))
            local = spec[i, j, max(k - 2, 0) : k + 3].max()
            assert local >= 0.3 * spec[i, j].max(), (toy.SOURCES[j], i, params.freq[i, j])


def test_amplitude_range(batch):
    _, sources, params = batch
    assert (params.amp >= toy.A_MIN).all() and (params.amp <= toy.A_MAX).all()
    peak = sources.abs().amax(dim=-1).numpy()
    # square, saw, triangle reach their amplitude exactly within a period; a sampled
    # sine reaches it within the sampling error of its crest
    np.testing.assert_allclose(peak[:, 1], params.amp[:, 1], atol=1e-6)
    assert (peak <= toy.A_MAX + 1e-6).all()
    assert (peak[:, 0] >= toy.A_MIN * np.cos(np.pi * params.freq[:, 0] / SR) - 1e-6).all()


def test_phase_range(batch):
    _, _, params = batch
    assert (params.phase >= 0).all() and (params.phase < 2 * np.pi).all()


def test_waveform_shapes():
    u = np.linspace(0, 1, 8, endpoint=False)
    np.testing.assert_allclose(toy.waveform("sine", u), np.sin(2 * np.pi * u), atol=1e-12)
    np.testing.assert_array_equal(toy.waveform("square", u), [1, 1, 1, 1, -1, -1, -1, -1])
    np.testing.assert_allclose(toy.waveform("saw", u), [0, 0.25, 0.5, 0.75, -1, -0.75, -0.5, -0.25])
    np.testing.assert_allclose(toy.waveform("triangle", u), [0, 0.5, 1, 0.5, 0, -0.5, -1, -0.5])


def test_waveform_statistics_over_items(batch):
    """Shape fingerprints that hold for any frequency: the square only takes +-A; the
    sawtooth and triangle are uniform over [-A, A] (variance A^2/3), the sine has A^2/2."""
    _, sources, params = batch
    s = sources.numpy()
    amp = params.amp
    np.testing.assert_allclose(np.abs(s[:, 1]), np.broadcast_to(amp[:, 1:2], s[:, 1].shape), atol=1e-6)
    low = params.freq.max(axis=1) < 2000  # away from aliasing/rounding effects
    var = (s**2).mean(-1) / amp**2
    np.testing.assert_allclose(var[low, 0], 0.5, atol=0.02)
    np.testing.assert_allclose(var[low, 2], 1 / 3, atol=0.03)
    np.testing.assert_allclose(var[low, 3], 1 / 3, atol=0.03)


def test_deterministic_by_seed_and_split():
    a = toy.toy_batch(5, 2000, seed=7, split="test")
    b = toy.toy_batch(5, 2000, seed=7, split="test")
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    c = toy.toy_batch(5, 2000, seed=8, split="test")
    d = toy.toy_batch(5, 2000, seed=7, split="train")
    assert not torch.allclose(a[1], c[1]) and not torch.allclose(a[1], d[1])


def test_item_independent_of_batch():
    _, big = toy.toy_batch(10, 500, seed=2)
    _, small = toy.toy_batch(3, 500, seed=2)
    torch.testing.assert_close(big[:3], small, rtol=0, atol=0)


def test_windows_are_slices_of_items():
    ds = toy.ToyWindows("train", window=300, n_items=20, seed=4, item_length=1000)
    full = toy.render(toy.toy_params(np.arange(20), seed=4), 1000)
    off = ds.offsets(range(20))
    assert ((off >= 0) & (off <= 700)).all()
    for i in (0, 5, 19):
        torch.testing.assert_close(ds[i], full[i, :, off[i] : off[i] + 300], rtol=0, atol=1e-6)
    one = toy.ToyWindows("train", window=300, source="saw", n_items=20, seed=4, item_length=1000)
    torch.testing.assert_close(one[5], full[5, 2, off[5] : off[5] + 300], rtol=0, atol=1e-6)
    assert len(ds) == 20 and ds.batch([1, 2]).shape == (2, 4, 300)
    ds.set_epoch(1)
    assert not np.array_equal(ds.offsets(range(20)), off)


def test_dataset_default_size_is_the_papers():
    assert len(toy.ToyWindows("train")) == 5000 and len(toy.ToyWindows("test")) == 1500


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n": 0}, "n must be >= 1"),
        ({"n": 2.5}, "n must be an integer"),
        ({"n": 2, "length": 0}, "length must be >= 1"),
        ({"n": 2, "split": "valid"}, "unknown split"),
        ({"n": 2, "seed": -1}, "seed must be >= 0"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        toy.toy_batch(**kwargs)


def test_bad_dataset_arguments():
    with pytest.raises(ValueError, match="unknown source"):
        toy.ToyWindows(source="piano")
    with pytest.raises(ValueError, match="must not exceed"):
        toy.ToyWindows(window=20000)
    with pytest.raises(IndexError):
        toy.ToyWindows(n_items=3)[3]
    with pytest.raises(ValueError, match="one weight per source"):
        toy.mix(torch.zeros(1, 4, 10), [1.0, 2.0])


def test_authors_variant_draws_integer_periods_in_their_key_range():
    """The authors' toy data as run (chapter 05): 14.7 kHz, keys 1-65, whole-sample periods and phases."""
    p = toy.toy_params_authors(np.arange(400), seed=0, split="train")
    period = toy.AUTHORS_SAMPLE_RATE / p.freq
    np.testing.assert_allclose(period, np.round(period), atol=1e-9)
    lo, hi = (440.0 * 2.0 ** ((k - 49) / 12) for k in toy.AUTHORS_KEYS)
    assert p.freq.min() > 0.97 * lo and p.freq.max() < 1.05 * hi and p.freq.max() > 0.9 * hi
    offset = p.phase / (2 * np.pi) * period
    np.testing.assert_allclose(offset, np.round(offset), atol=1e-6)
    assert (p.amp >= toy.A_MIN).all() and (p.amp <= toy.A_MAX).all() and p.amp.std() > 0
    assert (toy.toy_params_authors(np.arange(10), split="test").amp == 1.0).all()  # their evaluation loaders
    w = toy.ToyWindows("test", window=1024, n_items=8, seed=0, variant="authors")
    assert w.sample_rate == toy.AUTHORS_SAMPLE_RATE
    x = w.batch(np.arange(8))  # every source repeats exactly after its whole-sample period
    for i in range(8):
        for j in range(4):
            n = int(round(toy.AUTHORS_SAMPLE_RATE / toy.toy_params_authors([i], split="test").freq[0, j]))
            torch.testing.assert_close(x[i, j, n:], x[i, j, :-n], rtol=0, atol=1e-5)
    # the paper's variant is unchanged by the option
    assert torch.equal(
        toy.ToyWindows("test", window=64, n_items=2).batch([0, 1]),
        toy.ToyWindows("test", window=64, n_items=2, variant="paper").batch([0, 1]),
    )
    with pytest.raises(ValueError, match="unknown variant"):
        toy.ToyWindows("test", variant="thesis")
