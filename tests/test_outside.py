"""Issue 24's out-of-project windows (sepnb.data.outside): made at build time by espeak-ng and sox,
deterministic in their seed, at the toy sources' scale. Skipped, with the reason, without the tools."""

import numpy as np
import pytest
import torch

from sepnb.data import outside

HAVE = outside.available()


@pytest.mark.skipif(not HAVE["espeak-ng"], reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_speech_windows_are_speech_like_and_repeatable():
    a = outside.speech_windows(3, 2048, seed=0)
    assert a.shape == (3, 2048) and torch.isfinite(a).all()
    np.testing.assert_allclose(a.abs().amax(dim=1).numpy(), 1.0, rtol=1e-6)
    assert torch.equal(a, outside.speech_windows(3, 2048, seed=0))
    assert not torch.equal(a, outside.speech_windows(3, 2048, seed=1))
    assert (a.pow(2).mean(dim=1).sqrt() > 0.05).all()  # a loud part of the utterance, not silence


@pytest.mark.skipif(not HAVE["sox"], reason="sox is not installed (apt-get install sox)")
def test_sox_windows_cycle_through_the_generators_and_are_repeatable():
    a = outside.sox_windows(6, 2048, seed=0)
    assert a.shape == (6, 2048) and torch.isfinite(a).all()
    np.testing.assert_allclose(a.abs().amax(dim=1).numpy(), 1.0, rtol=1e-6)
    assert torch.equal(a, outside.sox_windows(6, 2048, seed=0))
    assert not torch.equal(a[1], a[4])  # two pink-noise windows from different places
    # the pluck is tonal, the noise broadband: spectral flatness tells them apart
    spec = np.abs(np.fft.rfft(a.numpy() * np.hanning(2048), axis=1)) ** 2 + 1e-12
    flat = np.exp(np.log(spec).mean(axis=1)) / spec.mean(axis=1)
    assert flat[1] > 5 * flat[0] and flat[4] > 5 * flat[3]


def test_a_missing_tool_says_how_to_install_it(monkeypatch):
    monkeypatch.setattr(outside.shutil, "which", lambda tool: None)
    assert outside.available() == {"espeak-ng": False, "sox": False}
    with pytest.raises(outside.ToolMissing, match="apt-get install espeak-ng"):
        outside.speech_windows(1)
    with pytest.raises(outside.ToolMissing, match="apt-get install sox"):
        outside.sox_windows(1)
