"""Profiles (one source of truth for sizes) and the audio contract."""

import numpy as np
import pytest
import torch

from sepnb.core import profiles
from sepnb.data import audio


def test_three_named_profiles():
    assert set(profiles.PROFILES) == {"smoke", "book", "paper"}
    paper = profiles.get("paper")
    assert (paper.n_train, paper.n_test, paper.sample_rate, paper.item_length) == (5000, 1500, 16000, 16000)
    assert profiles.get("smoke").n_train < paper.n_train


def test_unknown_profile_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown profile 'fast'.*smoke"):
        profiles.get("fast")


def test_default_profile_from_environment(monkeypatch):
    monkeypatch.setenv("SEPNB_PROFILE", "paper")
    assert profiles.get().name == "paper"
    monkeypatch.delenv("SEPNB_PROFILE")
    assert profiles.get().name == "book"


@pytest.mark.parametrize(
    "x, match",
    [
        (np.array([0.1, np.nan]), "NaN"),
        (np.zeros((2, 3, 4)), "mono"),
        (np.array([0.5, 1.5]), "exceeds"),
        (np.array([1, 2]), "floating-point"),
    ],
)
def test_bad_audio_is_a_clear_error(x, match):
    with pytest.raises(ValueError, match=match):
        audio.check_audio(x)


def test_wav_round_trip_and_checks(tmp_path):
    x = 0.5 * torch.sin(torch.linspace(0, 100, 1600))
    path = audio.write_wav(tmp_path / "a.wav", x, 16000)
    y = audio.read_wav(path, 16000)
    torch.testing.assert_close(y, x, atol=1 / 2**15, rtol=0)
    with pytest.raises(ValueError, match="sample rate 16000 Hz, expected 44100"):
        audio.read_wav(path, 44100)
    import soundfile as sf

    sf.write(tmp_path / "st.wav", np.zeros((100, 2)), 16000)
    with pytest.raises(ValueError, match="2 channels"):
        audio.read_wav(tmp_path / "st.wav", 16000)
    assert audio.read_wav(tmp_path / "st.wav", 16000, mono="mean").shape == (100,)
    (tmp_path / "bad.wav").write_bytes(b"RIFF1234garbage")
    with pytest.raises(ValueError, match="cannot read"):
        audio.read_wav(tmp_path / "bad.wav", 16000)
    with pytest.raises(FileNotFoundError):
        audio.read_wav(tmp_path / "none.wav", 16000)


def test_player_does_not_normalise():
    p = audio.player(torch.full((1600,), 0.1), 16000, seconds=0.05)
    assert "audio" in p._repr_html_()


def test_results_file_keeps_other_runs(tmp_path, monkeypatch):
    import json

    from sepnb.core import paths

    monkeypatch.setenv("SEPNB_RESULTS", str(tmp_path))
    paths.update_results("03_noise", "book/sigma=0.129", {"a": 1})
    path = paths.update_results("03_noise", "book/sigma=0.359", {"a": 2})
    paths.update_results("03_noise", "book/sigma=0.129", {"a": 3})
    assert json.loads(path.read_text())["runs"] == {"book/sigma=0.129": {"a": 3}, "book/sigma=0.359": {"a": 2}}
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="not a sepnb results file"):
        paths.update_results("03_noise", "k", {})


def test_music_sizes():
    paper = profiles.get("paper")
    assert (paper.standin["n_train"], paper.standin["n_test"], paper.music_frames) == (100, 50, 150)
    for p in profiles.PROFILES.values():
        assert set(p.standin) == {"n_train", "n_test", "seconds", "seed"}
        frame = round(p.music_frame_seconds * p.sample_rate)
        assert p.music_window <= frame and p.music_ood_length <= frame, p.name
        assert p.standin["seconds"] >= p.music_frame_seconds
