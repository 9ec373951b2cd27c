"""The transcriber's extra training material: renderings with other soundfonts, transposed
and at other speeds, and generated etudes, rendered by the real FluidSynth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pretty_midi
import torch

from tests.conftest import SOUNDFONT, scale_midi
from wavegen_core.audio.io import load_audio
from wavegen_core.audio.mel import LogMelSpectrogram, MelConfig, mel_band_edges
from wavegen_core.audio.render import RenderConfig
from wavegen_core.data.manifest import Piece, read_manifest, write_manifest
from wavegen_core.data.prepare_config import VariantsConfig
from wavegen_core.data.variants import VariantJob, render_variants
from wavegen_core.midi.io import load_midi

SECOND_SOUNDFONT = "/usr/share/sounds/sf2/FluidR3_GM.sf2"
RATE = 16000
# Everything fixed but what a test varies: FluidSynth's own settings, the MIDI as written.
PLAIN = dict(
    renderings=0,
    etudes=0,
    programs=[0],
    transpose=0,
    tempo=(1.0, 1.0),
    gain=(0.2, 0.2),
    reverb_room=(0.2, 0.2),
    reverb_level=(0.9, 0.9),
    chorus=(2.0, 2.0),
    velocity_gamma=(1.0, 1.0),
)


def _corpus(root: Path, pieces: dict[str, pretty_midi.PrettyMIDI], split: str = "train") -> Path:
    """A prepared corpus of MIDI-only records (the variants read the MIDI, not the audio)."""
    (root / "midi").mkdir(parents=True)
    records = []
    for name, midi in pieces.items():
        midi.write(str(root / "midi" / f"{name}.mid"))
        records.append(
            Piece(
                id=name,
                audio=f"audio/{name}.wav",
                midi=f"midi/{name}.mid",
                duration=midi.get_end_time(),
                split=split,
                source="folder",
                has_midi=True,
                notes=len(midi.instruments[0].notes),
                origin=name,
            )
        )
    write_manifest(root, records)
    return root


def _job(corpus: Path, soundfonts: list[str], **variants) -> VariantJob:
    return VariantJob(
        variants=VariantsConfig(**{**PLAIN, **variants}),
        render=RenderConfig(soundfont=SOUNDFONT, soundfonts=soundfonts),
        sample_rate=RATE,
        seed=3,
        corpus=corpus,
    )


def _notes(path: Path) -> list[tuple[int, float, float]]:
    return [
        (n.pitch, round(n.start, 3), round(n.end, 3)) for n in load_midi(path).instruments[0].notes
    ]


def test_two_soundfonts_are_recorded_per_rendering_and_keep_the_midi(tmp_path) -> None:
    corpus = _corpus(
        tmp_path / "prepared",
        {"up": scale_midi([60, 64, 67, 72]), "down": scale_midi([71, 67, 62, 59])},
    )
    job = _job(corpus, [SOUNDFONT, SECOND_SOUNDFONT], renderings=2)
    result = render_variants(job, read_manifest(corpus), tmp_path / "variants", workers=1)
    assert not result.rejected
    manifest = json.loads((tmp_path / "variants/manifest.json").read_text())
    by_source: dict[str, list[dict]] = {}
    for record in manifest["pieces"]:
        assert record["split"] == "train" and record["source"] == "rendering"
        by_source.setdefault(record["rendering"]["source"], []).append(record)
    assert sorted(by_source) == ["down", "up"]
    for name, renderings in by_source.items():
        # The two renderings of one piece use the two soundfonts, and say so.
        assert {r["rendering"]["soundfont"] for r in renderings} == {SOUNDFONT, SECOND_SOUNDFONT}
        first, second = (tmp_path / "variants" / r["audio"] for r in renderings)
        a, b = load_audio(first, RATE), load_audio(second, RATE)
        assert np.abs(a[: min(len(a), len(b))] - b[: min(len(a), len(b))]).mean() > 1e-3
        # The MIDI (the labels) is the piece's own.
        original = _notes(corpus / f"midi/{name}.mid")
        for record in renderings:
            assert _notes(tmp_path / "variants" / record["midi"]) == original


def test_variants_are_deterministic_and_resume_into_the_same_corpus(tmp_path) -> None:
    corpus = _corpus(tmp_path / "prepared", {"up": scale_midi([60, 64, 67, 72])})
    job = _job(
        corpus,
        [SOUNDFONT, SECOND_SOUNDFONT],
        renderings=2,
        etudes=1,
        etude_seconds=4.0,
        transpose=5,
        tempo=(0.8, 1.25),
        gain=(0.1, 0.4),
        velocity_gamma=(0.7, 1.4),
    )
    render_variants(job, read_manifest(corpus), tmp_path / "a", workers=1)
    render_variants(job, read_manifest(corpus), tmp_path / "b", workers=2)
    for name in ("manifest.json", "audio/up.r0.wav", "audio/up.r1.wav", "audio/etude-00000.wav"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def _mel_peak_hz(audio: np.ndarray, config: MelConfig) -> float:
    """The centre frequency of the loudest mel band, averaged over the note's middle."""
    mel = LogMelSpectrogram(config)(torch.from_numpy(audio)[None])[0].numpy()  # (frames, mels)
    frames = mel.shape[0]
    band = int(mel[frames // 4 : frames // 2].mean(axis=0).argmax())
    edges = mel_band_edges(config)
    return float(edges[band + 1])


def test_a_transposed_piece_stays_on_the_keyboard_and_sounds_its_new_pitch(tmp_path) -> None:
    wide = pretty_midi.PrettyMIDI()
    piano = pretty_midi.Instrument(program=0)
    piano.notes = [pretty_midi.Note(80, 30, 0.0, 1.0), pretty_midi.Note(80, 100, 1.0, 2.0)]
    wide.instruments.append(piano)
    corpus = _corpus(tmp_path / "prepared", {"wide": wide, "held": scale_midi([57], step=2.0)})
    job = _job(corpus, [SOUNDFONT], renderings=8, transpose=24)
    result = render_variants(job, read_manifest(corpus), tmp_path / "variants", workers=1)
    config = MelConfig(sample_rate=RATE, n_mels=229, fmin=30.0, fmax=8000.0)
    shifts = set()
    for piece in result.pieces:
        shift = piece.rendering["transpose"]
        pitches = [p for p, _, _ in _notes(tmp_path / "variants" / piece.midi)]
        assert all(21 <= p <= 108 for p in pitches)
        if piece.rendering["source"] == "wide":
            # 30 + shift >= 21 and 100 + shift <= 108.
            assert -9 <= shift <= 8 and pitches == [30 + shift, 100 + shift]
            continue
        shifts.add(shift)
        assert pitches == [57 + shift]
        f0 = 440.0 * 2 ** ((57 + shift - 69) / 12)
        peak = _mel_peak_hz(load_audio(tmp_path / "variants" / piece.audio, RATE), config)
        # The loudest band is a low partial of the new pitch (a low piano note's
        # fundamental is weaker than its next partials), within a mel band (about 5 %).
        harmonic = max(round(peak / f0), 1)
        assert harmonic <= 3 and abs(np.log2(peak / f0 / harmonic)) < 0.07, (shift, peak, f0)
    assert len(shifts) >= 4
