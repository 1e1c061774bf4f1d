"""The procedural stand-in for musdb18: songs composed from a seed (bass, drums, voice, other as
MIDI), rendered with the General MIDI soundfont that ships with ``pretty_midi``, written in the
musdb18-WAV layout. It is not musdb18 and is never labelled as such; numbers on it say nothing
about real music.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from sepnb.core import atomic
from sepnb.core.checks import check_int as _check_int
from sepnb.data.audio import check_audio
from sepnb.data.musdb import _SIGNALS, _STANDIN_MARKER, _STANDIN_VERSION, MUSDB_RATE, MUSIC_SOURCES

__all__ = ["make_standin"]

_SCALES = {"major": (0, 2, 4, 5, 7, 9, 11), "minor": (0, 2, 3, 5, 7, 8, 10)}
_PROGRESSIONS = {  # scale degrees (0 = tonic), one chord per bar, looped
    "major": ((0, 4, 5, 3), (0, 5, 3, 4), (5, 3, 0, 4), (0, 3, 4, 3), (0, 3, 0, 4), (1, 4, 0, 5)),
    "minor": ((0, 5, 2, 6), (0, 3, 4, 0), (0, 6, 5, 6), (0, 3, 6, 2), (0, 5, 3, 4)),
}
_BASS_PROGRAMS = (32, 33, 34, 38)  # GM: acoustic, finger, pick, synth bass 1
_VOICE_PROGRAMS = (52, 53, 54, 85)  # GM: choir aahs, voice oohs, synth voice, lead 6 (voice)
_OTHER_PROGRAMS = (0, 4, 24, 25, 48, 89)  # GM: grand piano, e-piano, nylon/steel guitar, strings, warm pad
_BASS_PATTERNS = {  # (start beat, length in beats, interval above the root)
    "quarters": tuple((b, 1.0, 0) for b in range(4)),
    "eighths": tuple((b / 2, 0.5, 0) for b in range(8)),
    "root_fifth": ((0, 1.5, 0), (1.5, 0.5, 0), (2, 1.5, 7), (3.5, 0.5, 12)),
    "octaves": tuple((b / 2, 0.5, 12 * (b % 2)) for b in range(8)),
    "syncopated": ((0, 0.75, 0), (0.75, 0.75, 0), (1.5, 1.0, 7), (2.5, 0.5, 0), (3, 1.0, 12)),
}
_KICKS = ((0, 8), (0, 8, 10), (0, 6, 8), (0, 3, 8, 11), (0, 7, 8))  # 16th steps of a bar
_VOICE_CELLS = ((1, 1, 2), (0.5, 0.5, 1, 2), (1.5, 0.5, 2), (2, 1, 1), (1, 0.5, 0.5, 1, 1), (0.5, 1, 0.5, 2))


def _chord_degrees(root_degree: int) -> tuple[int, int, int]:
    return root_degree, root_degree + 2, root_degree + 4


def _degree_pitch(key: int, scale, degree: int, base: int) -> int:
    """MIDI pitch of a scale degree (any integer) above the octave that starts at ``base``."""
    return base + key + scale[degree % 7] + 12 * (degree // 7)


def _compose(seed: int, index: int, seconds: float) -> tuple[dict, dict]:
    """The four stems of stand-in song ``index`` as ``pretty_midi`` objects, and its description."""
    import pretty_midi

    rng = np.random.default_rng([seed, index, 7])
    mode = "major" if rng.random() < 0.6 else "minor"
    scale = _SCALES[mode]
    key = int(rng.integers(12))
    tempo = float(rng.integers(80, 141))
    beat = 60.0 / tempo
    bar = 4 * beat
    n_bars = int(math.ceil(seconds / bar))
    prog = _PROGRESSIONS[mode][rng.integers(len(_PROGRESSIONS[mode]))]
    desc = {
        "key": ["C", "C#", "D", "Eb", "E", "F", "F#", "G", "Ab", "A", "Bb", "B"][key]
        + (" minor" if mode == "minor" else " major"),
        "tempo_bpm": tempo,
        "progression": [int(d) + 1 for d in prog],
        "bass_program": int(rng.choice(_BASS_PROGRAMS)),
        "bass_pattern": str(rng.choice(list(_BASS_PATTERNS))),
        "vocals_program": int(rng.choice(_VOICE_PROGRAMS)),
        "other_program": int(rng.choice(_OTHER_PROGRAMS)),
        "kick_pattern": list(_KICKS[rng.integers(len(_KICKS))]),
        "hats": str(rng.choice(["eighths", "sixteenths", "ride"])),
    }
    sustained = desc["other_program"] in (48, 89)
    desc["other_style"] = "held chords" if sustained else str(rng.choice(["arpeggio", "comping"]))
    jitter = lambda n, sd: rng.normal(0, sd, n)  # noqa: E731
    vel = lambda v: int(np.clip(round(v), 1, 127))  # noqa: E731

    def song(program: int, is_drum: bool = False, pan: int = 64):
        pm = pretty_midi.PrettyMIDI(initial_tempo=tempo)
        inst = pretty_midi.Instrument(program=program, is_drum=is_drum)
        inst.control_changes.append(pretty_midi.ControlChange(10, pan, 0.0))
        inst.control_changes.append(pretty_midi.ControlChange(7, 100, seconds))  # the render spans the song
        pm.instruments.append(inst)
        return pm, inst

    def add(inst, pitch, start, end, velocity):
        start = max(0.0, start)
        if start < seconds - 0.05:
            inst.notes.append(pretty_midi.Note(vel(velocity), int(pitch), float(start), float(min(end, seconds))))

    # bass: the chord root in A1..G#2, one of five patterns
    pm_bass, bass = song(desc["bass_program"])
    for b in range(n_bars):
        root = 33 + (key + scale[prog[b % 4] % 7] - 9) % 12
        for (start, length, interval), j in zip(_BASS_PATTERNS[desc["bass_pattern"]], jitter(8, 0.008)):
            t = b * bar + start * beat
            add(bass, root + interval, t + j, t + 0.92 * length * beat, 92 + 8 * (start % 2 == 0) + rng.normal(0, 5))

    # drums (GM channel 10): kick pattern, snare on 2 and 4, hats/ride, crash and fill every 4 bars
    pm_drums, drums = song(0, is_drum=True)
    snare = 38 if rng.random() < 0.7 else 40
    step = beat / 4
    for b in range(n_bars):
        t0 = b * bar
        fill = b % 4 == 3
        for s in range(16):
            t = t0 + s * step + rng.normal(0, 0.004)
            if s in desc["kick_pattern"]:
                add(drums, 36, t, t + 0.1, 104 + rng.normal(0, 6))
            if s in (4, 12) or (fill and s >= 12):
                add(drums, snare, t, t + 0.1, (100 if s in (4, 12) else 70 + 8 * (s - 12)) + rng.normal(0, 6))
            if desc["hats"] == "sixteenths" or s % 2 == 0:
                hat = 51 if desc["hats"] == "ride" else (46 if s == 14 and b % 2 else 42)
                add(drums, hat, t, t + 0.08, (84 if s % 4 == 0 else 64) + rng.normal(0, 6))
        if b % 4 == 0:
            add(drums, 49, t0, t0 + 0.5, 96)

    # vocals: two-bar phrases from the second bar on, stepwise melody, legato, vibrato
    pm_voc, voc = song(desc["vocals_program"])
    intro = 1 if n_bars >= 3 else 0
    degree = 9  # scale degrees above C3 + key: 9 is the third above middle C
    for p, first in enumerate(range(intro, n_bars, 2)):
        if p > 0 and rng.random() < 0.2:
            continue  # a rest phrase: sung music has silences
        rhythm, pos = [], 0.0  # (start, length) in beats from the phrase's start
        for _ in range(2):
            for length in _VOICE_CELLS[rng.integers(len(_VOICE_CELLS))]:
                rhythm.append((pos, float(length)))
                pos += length
        if rng.random() < 0.4 and rhythm[0][1] > 0.5:  # come in half a beat late
            rhythm[0] = (0.5, rhythm[0][1] - 0.5)
        notes = []
        for start, length in rhythm:
            degree = int(np.clip(degree + rng.choice([-2, -1, -1, 0, 1, 1, 2, 3, -3]), 4, 16))  # G3..E5 in C
            if start % 2 == 0:  # beats 1 and 3 land on a chord tone
                chord = prog[(first + int(start // 4)) % 4]
                tones = [d + 7 * o for d in _chord_degrees(chord) for o in (0, 1, 2)]
                degree = min(tones, key=lambda d: (abs(d - degree), d))
            notes.append((first * bar + start * beat, first * bar + (start + length) * beat, degree))
        arc = np.linspace(0, math.pi, len(notes))
        for k, (start, end, d) in enumerate(notes):
            end = end - 0.5 * beat if k == len(notes) - 1 else notes[k + 1][0] + 0.03  # legato overlap
            add(voc, _degree_pitch(key, scale, d, 48), start, end, 78 + 14 * math.sin(arc[k]) + rng.normal(0, 3))
            voc.pitch_bends.append(pretty_midi.PitchBend(0, float(start)))
            if end - start > 0.4:  # vibrato: 5.5 Hz, up to 30 cents, fading in after 150 ms
                for tb in np.arange(start + 0.15, min(end, seconds), 0.02):
                    depth = 30 * min(1.0, (tb - start - 0.15) / 0.3)
                    value = depth * 4096 / 100 * math.sin(2 * math.pi * 5.5 * (tb - start))
                    voc.pitch_bends.append(pretty_midi.PitchBend(int(round(value)), float(tb)))

    # other: chords of the progression around C4..C5, held, arpeggiated or comped
    pm_other, other = song(desc["other_program"], pan=int(rng.integers(34, 95)))
    for b in range(n_bars):
        t0 = b * bar
        pcs = [(key + scale[d % 7]) % 12 for d in _chord_degrees(prog[b % 4])]
        voicing = sorted(55 + (pc - 55) % 12 for pc in pcs)
        voicing.append(voicing[0] + 12)
        if desc["other_style"] == "held chords":
            for pitch in voicing:
                add(other, pitch, t0, t0 + bar - 0.02, 70 + rng.normal(0, 4))
        elif desc["other_style"] == "arpeggio":
            order = [0, 1, 2, 3, 2, 1, 2, 1]
            for k, j in enumerate(order):
                t = t0 + k * beat / 2
                add(other, voicing[j], t, t + 0.9 * beat, (80 if k % 2 == 0 else 68) + rng.normal(0, 4))
        else:
            for start, length in ((0, 1.0), (1.5, 0.5), (2.5, 1.0), (3.5, 0.5)):
                for pitch in voicing:
                    add(other, pitch, t0 + start * beat, t0 + (start + 0.9 * length) * beat, 76 + rng.normal(0, 4))

    return {"bass": pm_bass, "drums": pm_drums, "vocals": pm_voc, "other": pm_other}, desc


# --------------------------------------------------------------------------- the stand-in: rendering
@lru_cache(maxsize=1)
def _soundfont() -> bytes:
    import pretty_midi

    return (Path(pretty_midi.__file__).parent / "TimGM6mb.sf2").read_bytes()


def _render(pm, n_samples: int) -> np.ndarray:
    """Render a ``pretty_midi`` song with ``midirenderer``: float32 ``[2, n_samples]`` at 44.1 kHz."""
    import midirenderer
    import soundfile as sf
    import torchaudio.functional as AF

    buf = io.BytesIO()
    pm.write(buf)
    wav = midirenderer.render_wave_from(_soundfont(), buf.getvalue())
    x, rate = sf.read(io.BytesIO(wav), dtype="float32", always_2d=True)
    x = np.repeat(x, 2, axis=1) if x.shape[1] == 1 else x[:, :2]
    y = torch.from_numpy(np.ascontiguousarray(x.T))
    if rate != MUSDB_RATE:
        y = AF.resample(y, rate, MUSDB_RATE)
    out = np.zeros((2, n_samples), dtype=np.float32)
    n = min(n_samples, y.shape[1])
    out[:, :n] = y[:, :n].numpy()
    return out


def _active_rms(x: np.ndarray, rate: int = MUSDB_RATE) -> float:
    """RMS over the 100 ms blocks that are not silent (within 50 dB of the loudest block)."""
    mono = x.mean(axis=0)
    block = rate // 10
    n = len(mono) // block
    if n == 0:
        return float(np.sqrt(np.mean(mono**2)))
    power = (mono[: n * block].reshape(n, block) ** 2).mean(axis=1)
    if power.max() <= 0:
        return 0.0
    return float(np.sqrt(power[power > power.max() * 1e-5].mean()))


_STEM_LEVEL_DB = {"bass": -17.0, "drums": -16.0, "vocals": -16.0, "other": -19.0}


def _standin_song(seed: int, index: int, seconds: float) -> tuple[dict[str, np.ndarray], dict]:
    """The stems ``[2, n]`` and mixture of one stand-in song, balanced and scaled consistently."""
    n = int(round(seconds * MUSDB_RATE))
    midi, desc = _compose(seed, index, seconds)
    rng = np.random.default_rng([seed, index, 11])
    stems = {}
    for name in MUSIC_SOURCES:
        x = _render(midi[name], n)
        rms = _active_rms(x)
        target = 10 ** ((_STEM_LEVEL_DB[name] + rng.uniform(-2, 2)) / 20)
        stems[name] = x * (target / rms if rms > 0 else 1.0)
    mixture = sum(stems.values())
    peak = max(float(np.abs(s).max()) for s in (*stems.values(), mixture))
    gain = 0.8 / peak if peak > 0 else 1.0  # one gain for stems and mix: mix = sum of stems, nothing clips
    out = {name: (s * gain).astype(np.float32) for name, s in stems.items()}
    out["mixture"] = (mixture * gain).astype(np.float32)
    desc["gain"] = gain
    return out, desc


def _standin_readme(params: dict) -> str:
    return f"""\
STAND-IN DATA - THIS IS NOT MUSDB18
===================================

This folder was written by sepnb.data.make_standin(root, n_train={params["n_train"]},
n_test={params["n_test"]}, seconds={params["seconds"]}, seed={params["seed"]}) (generator version
{params["version"]}). It has the folder layout of
the musdb18 WAV release (train/<song>/ and test/<song>/ with mixture.wav,
bass.wav, drums.wav, vocals.wav, other.wav; 44.1 kHz stereo 16-bit PCM) so that
code written for musdb18 runs on it, but every song is procedurally composed:
a key, a tempo, a looped chord progression, a bass line, a drum pattern (GM
channel 10), a sung-like lead line on a GM choir/voice program ("vocals") and
chords or arpeggios on piano/guitar/strings/pad ("other"), written as MIDI
with pretty_midi and rendered with midirenderer and the TimGM6mb General MIDI
soundfont that ships with pretty_midi. The mixture is the sum of the four
stems; stems and mixture share one gain so that nothing clips.

Numbers measured on this folder are stand-in numbers, not musdb18 results.
STANDIN.json lists the parameters and, for each song, what was composed.
The same parameters always give the same files.
"""


def make_standin(
    root, n_train: int = 10, n_test: int = 5, seconds: float = 30.0, seed: int = 0, progress: bool = True
) -> Path:
    """Write a procedural stand-in for musdb18 in the WAV release's layout; return ``root`` (chapter 01).

    ``root/train/Standin - Song 000/`` ... and ``root/test/...`` each get
    ``mixture.wav, bass.wav, drums.wav, vocals.wav, other.wav`` (44.1 kHz,
    stereo, PCM16; mixture = sum of the stems up to 16-bit rounding). Song
    ``k`` (numbered across train then test) is a pure function of ``(seed,
    k, seconds)``. Each song is written into a temporary folder and renamed
    into place, so an interrupted call leaves only complete songs; calling
    again finishes the tree and never rewrites a song that is there. A tree
    made with other parameters raises ``FileExistsError``. ``root/README.txt``
    and ``root/STANDIN.json`` mark the folder as a stand-in.

    Size: about 0.85 MB per second of song (five stereo 16-bit files), so
    the defaults (15 songs of 30 s) take about 380 MB.
    """
    import soundfile as sf

    from sepnb.core.progress import bar as progress_bar

    n_train = _check_int(n_train, "n_train", 1)
    n_test = _check_int(n_test, "n_test", 1)
    seed = _check_int(seed, "seed", 0)
    if not (isinstance(seconds, (int, float)) and 1.0 <= seconds <= 3600):
        raise ValueError(f"seconds must be a number in [1, 3600], got {seconds!r}")
    seconds = float(seconds)
    root = Path(root).expanduser().resolve()
    params = {"n_train": n_train, "n_test": n_test, "seconds": seconds, "seed": seed, "version": _STANDIN_VERSION}
    marker = root / _STANDIN_MARKER
    if marker.exists():
        try:
            old = json.loads(marker.read_text())["params"]
        except (ValueError, KeyError, TypeError) as err:
            raise FileExistsError(f"{marker} is not a sepnb stand-in marker ({err}); use another folder") from None
        if old != params:
            raise FileExistsError(
                f"{root} holds a stand-in made with other parameters ({old}); asked for {params}. "
                "Use another folder, or delete this one to rebuild it."
            )
    elif root.exists() and any(root.iterdir()):
        raise FileExistsError(f"{root} is not empty and was not made by make_standin; use an empty or new folder")

    songs = [("train", k) for k in range(n_train)] + [("test", n_train + k) for k in range(n_test)]
    names = {k: f"Standin - Song {k:03d}" for _, k in songs}
    todo = []
    for subset, k in songs:
        folder = root / subset / names[k]
        present = [f for f in _SIGNALS if (folder / f"{f}.wav").is_file()]
        if len(present) == len(_SIGNALS):
            continue
        if folder.exists():
            raise FileExistsError(
                f"{folder} is incomplete (has {present}); it was not written by make_standin "
                "or was changed since: delete it and call again"
            )
        todo.append((subset, k))
    if not todo and marker.exists():
        return root

    root.mkdir(parents=True, exist_ok=True)
    meta = {"what": "sepnb procedural STAND-IN for musdb18 (not musdb18)", "params": params, "songs": {}}
    if marker.exists():
        meta["songs"] = json.loads(marker.read_text()).get("songs", {})
    (root / "README.txt").write_text(_standin_readme(params))
    atomic.write_json(marker, meta)
    scratch = root / ".standin-tmp"
    for subset, k in progress_bar(iterable=todo, desc="stand-in songs", unit="song", disable=not progress):
        audio, desc = _standin_song(seed, k, seconds)
        tmp = scratch / f"{names[k]}.{os.getpid()}"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        for name, x in audio.items():
            check_audio(x, name=f"{names[k]}/{name}", ndim=(2,))
            sf.write(os.fspath(tmp / f"{name}.wav"), x.T, MUSDB_RATE, subtype="PCM_16", format="WAV")
        final = root / subset / names[k]
        final.parent.mkdir(exist_ok=True)
        try:
            os.rename(tmp, final)
        except OSError:  # another process finished this song first (same parameters, same bytes)
            shutil.rmtree(tmp)
        meta["songs"][names[k]] = {"subset": subset, **desc}
    meta["songs"] = dict(sorted(meta["songs"].items()))
    meta["complete"] = True
    atomic.write_json(marker, meta)
    if scratch.exists() and not any(scratch.iterdir()):
        scratch.rmdir()
    return root
