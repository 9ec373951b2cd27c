"""The last stage's two outputs: every area's headline figures, and a listening page.

:func:`summarize` gathers what the stages measured into one dict of short, stable keys
(``transcription.test.ours.onset_f1``, ``vocoder.gan.judge_f1``, ``tiers.1.usage``…),
finite numbers only, for ``dvc metrics show`` and ``dvc metrics diff``.
:func:`write_page` writes ``index.html`` and its ``media/`` folder: one static page with
relative links (it works opened from disk and from a checkout of the DVC remote), a
bounded selection of compressed clips, spectrograms on one time axis, the tables, the
loss curves and what the run was. An area whose outputs are missing (a family left
out of ``vocoder.families``, a stage not yet run) is left out with a note.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from matplotlib.figure import Figure

from wavegen_core import profiles
from wavegen_core.audio.io import write_compressed
from wavegen_core.files import atomic_open, replace_dir, staging_dir, write_json
from wavegen_core.params import Params, ReportConfig

PAGE = "index.html"
MEDIA = "media"
EVALUATION_SETS = ("test", "reserved_piano", "unseen_music")
SET_TITLES = {
    "test": "test split, training piano",
    "reserved_piano": "test split, reserved piano",
    "unseen_music": "unseen music, reserved piano",
}
# The reference renders in synthesize's metrics, beside the families.
REFERENCES = {"soundfont": "FluidSynth", "sine": "sine (additive)", "true_audio": "true audio"}
# Vocoder columns: summary key, metrics key, title, whether higher is better.
VOCODER_COLUMNS = (
    ("judge_f1", "judge_onset_f1", "judge onset F1 (basic-pitch)", True),
    ("ours_f1", "onset_f1", "onset F1 (ours)", True),
    ("mr_stft", "mr_stft", "MR-STFT", False),
    ("mel_l1", "mel_l1", "log-mel L1", False),
    ("rtf", "rtf", "real-time factor", True),
)
# The composed pieces' statistics (compose's metrics): its key, the summary's, a title.
COMPOSED_STATS = (
    ("pitch_class_histogram_distance", "pitch_class_distance", "pitch-class distance"),
    ("ioi_histogram_distance", "ioi_distance", "IOI distance"),
    ("note_density", "note_density", "notes/s"),
    ("mean_polyphony", "polyphony", "polyphony"),
    ("pitch_range", "pitch_range", "pitch range"),
)


@dataclass(frozen=True)
class ReportInputs:
    """Where the stages wrote what the report reads (paths come from ``dvc.yaml``)."""

    prepared: Path  # the prepared corpus: the true audio
    transcription: Path  # evaluate_transcriber's reports
    composition: Path  # compose's reports
    composed: Path  # the composed pieces
    synthesis: Path  # synthesize's reports, one folder per family
    synthesized: Path  # the synthesized audio, one folder per family
    encodings: Path  # encode's reports, one folder per tier
    hierarchy: Path  # sample_hierarchy's reports
    samples: Path  # sample_hierarchy's audio and pictures
    prior: Path  # train_prior's reports
    training: list[Path] = field(default_factory=list)  # training stages' reports
    models: list[Path] = field(default_factory=list)  # checkpoints, files or folders


def _read_json(path: Path) -> Any:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _finite(tree: Any) -> Any:
    """``tree`` without its non-finite or non-numeric leaves, and without empty branches."""
    if isinstance(tree, dict):
        kept = {str(k): _finite(v) for k, v in tree.items()}
        return {k: v for k, v in kept.items() if v is not None and v != {}}
    if isinstance(tree, bool) or not isinstance(tree, int | float):
        return None
    return round(float(tree), 6) if math.isfinite(tree) else None


def _families(params: Params) -> list[str]:
    return list(params.vocoder.families)


def _tiers(params: Params) -> list[str]:
    return [str(key) for key in params.vqvae.tiers]


def vocoder_scores(inputs: ReportInputs, params: Params) -> dict[str, dict[str, float]]:
    """Per family and reference render: the test pieces' mean scores and the family's
    real-time factor, under the summary's keys."""
    rows: dict[str, dict[str, float]] = {}
    for family in _families(params):
        metrics = _read_json(inputs.synthesis / family / "metrics.json")
        if not metrics or "test" not in metrics:
            continue
        speed = _read_json(inputs.synthesis / family / "speed.json") or {}
        test = metrics["test"]
        for name, scores in test.items():
            if name != family and name in rows:
                continue  # the references are the same in every family's metrics
            merged = dict(scores)
            if name == family:
                merged["rtf"] = speed.get("real_time_factor", {}).get(family)
            elif name == "soundfont":
                merged["rtf"] = speed.get("real_time_factor", {}).get("soundfont")
            rows[name] = {
                key: merged[source] for key, source, _, _ in VOCODER_COLUMNS if source in merged
            }
    return rows


def best_family(inputs: ReportInputs, params: Params) -> str | None:
    """The family whose test renders the judge transcribes best (ours when no judge)."""
    rows = vocoder_scores(inputs, params)
    families = [f for f in _families(params) if f in rows]
    if not families:
        return None
    return max(
        families, key=lambda f: (rows[f].get("judge_f1", -1.0), rows[f].get("ours_f1", -1.0))
    )


def summarize(inputs: ReportInputs, params: Params) -> dict[str, Any]:
    """Every area's headline figures under short, stable keys; finite numbers only."""
    summary: dict[str, Any] = {}
    transcription = _read_json(inputs.transcription / "metrics.json") or {}
    summary["transcription"] = {
        name: {
            "ours" if who == "model" else who: {
                key: scores[who][key] for key in ("onset_f1", "offset_f1", "frame_f1")
            }
            for who in ("model", "basic_pitch")
            if who in scores
        }
        for name, scores in transcription.items()
    }
    composition = _read_json(inputs.composition / "metrics.json") or {}
    symbolic: dict[str, Any] = {}
    if "test" in composition:
        symbolic["test_nll"] = composition["test"].get("nll_per_event")
    for kind in ("unconditional", "continuations"):
        stats = composition.get(kind, {})
        symbolic[kind] = {short: stats.get(key) for key, short, _ in COMPOSED_STATS}
        # The test set's own value, where the statistic is not already a distance to it.
        symbolic[kind].update(
            {f"test_{short}": stats.get(f"reference_{key}") for key, short, _ in COMPOSED_STATS[2:]}
        )
    summary["symbolic"] = symbolic
    rendered = vocoder_scores(inputs, params)
    summary["vocoder"] = {
        ("fluidsynth" if name == "soundfont" else name): rendered[name]
        for name in [*_families(params), "soundfont"]
        if name in rendered
    }
    hierarchy = _read_json(inputs.hierarchy / "metrics.json") or {}
    tiers: dict[str, Any] = {}
    for tier in _tiers(params):
        encoded = _read_json(inputs.encodings / tier / "metrics.json") or {}
        test = encoded.get("test", {})
        reconstruction = hierarchy.get(f"tier_{tier}", {})
        tiers[tier] = {
            "usage": test.get("usage"),
            "perplexity": test.get("perplexity"),
            "bitrate": encoded.get("bitrate"),
            "mr_stft": reconstruction.get("mr_stft"),
            "mel_l1": reconstruction.get("mel_l1"),
        }
    summary["tiers"] = tiers
    prior = _read_json(inputs.prior / "test.json") or {}
    summary["prior"] = {
        "nll": prior.get("nll_per_code"),
        "bits_per_second": prior.get("bits_per_second"),
    }
    return _finite(summary)


# --------------------------------------------------------------------------- media


class _Media:
    """The page's files under ``media/``, each written once and linked relatively."""

    def __init__(self, root: Path, config: ReportConfig) -> None:
        self.root = root
        self.config = config
        self._names: set[str] = set()

    def _name(self, stem: str, suffix: str) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
        name, index = f"{safe}{suffix}", 1
        while name in self._names:
            index += 1
            name = f"{safe}-{index}{suffix}"
        self._names.add(name)
        return name

    def image(self, source: Path, stem: str) -> str | None:
        if not source.is_file():
            return None
        name = self._name(stem, source.suffix)
        shutil.copyfile(source, self.root / name)
        return f"{MEDIA}/{name}"

    def clip(self, source: Path, stem: str) -> tuple[str, np.ndarray, int] | None:
        """The first ``clip_seconds`` of ``source``, compressed; None if unreadable."""
        try:
            info = sf.info(str(source))
            frames = min(info.frames, int(self.config.clip_seconds * info.samplerate))
            audio, rate = sf.read(str(source), frames=frames, dtype="float32", always_2d=True)
        except (sf.LibsndfileError, RuntimeError, OSError):
            return None
        audio = audio.mean(axis=1)
        if not len(audio):
            return None
        name = self._name(stem, f".{self.config.audio_format}")
        write_compressed(self.root / name, audio, rate, self.config.audio_format)
        return f"{MEDIA}/{name}", audio, rate

    def spectrogram(self, audio: np.ndarray, rate: int, seconds: float, stem: str) -> str:
        """A log spectrogram strip on a fixed time axis of ``seconds``: strips of one
        piece line up under each other."""
        figure = Figure(figsize=(7.5, 1.5))
        axes = figure.add_axes((0.07, 0.2, 0.92, 0.75))
        nfft = 512 if rate <= 16000 else 1024
        axes.specgram(
            audio, NFFT=nfft, Fs=rate, noverlap=nfft * 3 // 4, cmap="magma", scale="dB", vmin=-110
        )
        axes.set_xlim(0, seconds)
        axes.set_ylim(0, rate / 2)
        axes.tick_params(labelsize=7)
        axes.set_ylabel("Hz", fontsize=7)
        name = self._name(stem, ".png")
        figure.savefig(self.root / name, dpi=72, format="png")
        return f"{MEDIA}/{name}"


# --------------------------------------------------------------------------- html


def _e(text: Any) -> str:
    return html.escape(str(text))


def _fmt(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _note(text: str) -> str:
    return f'<p class="note">{_e(text)}</p>'


def _audio(src: str) -> str:
    return f'<audio controls preload="metadata" src="{_e(src)}"></audio>'


def _img(src: str, alt: str, css: str = "") -> str:
    return f'<img src="{_e(src)}" alt="{_e(alt)}"{f" class={css!r}" if css else ""}>'


def _marked(values: dict[str, float | None], higher: bool) -> str | None:
    present = {k: v for k, v in values.items() if v is not None}
    if len(present) < 2:
        return None
    return (max if higher else min)(present, key=lambda k: present[k])


def _players(media: _Media, sources: list[tuple[str, Path, str]]) -> str:
    """One row per render of one piece: its name, a player and its spectrogram, the
    spectrograms on one time axis (the longest clip's) so that they line up."""
    clips = [(label, media.clip(source, stem), stem) for label, source, stem in sources]
    longest = max((len(c[1]) / c[2] for _, c, _ in clips if c), default=0.0)
    rows = []
    for label, clip, stem in clips:
        if clip is None:
            rows.append([_e(label), _e("missing"), ""])
            continue
        src, audio, rate = clip
        strip = media.spectrogram(audio, rate, longest, stem)
        rows.append([_e(label), _audio(src), _img(strip, f"{label}: spectrogram", "strip")])
    return _table(["render", "listen", f"spectrogram, first {longest:.3g} s"], rows)


def _transcription(inputs: ReportInputs, media: _Media, config: ReportConfig) -> Iterator[str]:
    metrics = _read_json(inputs.transcription / "metrics.json")
    if not metrics:
        yield _note(
            f"Left out: no transcription scores at {inputs.transcription} "
            "(run evaluate_transcriber)."
        )
        return
    for name, scores in metrics.items():
        yield f"<h3>{_e(SET_TITLES.get(name, name))} ({scores.get('pieces', 0)} pieces)</h3>"
        who = [w for w in ("model", "basic_pitch") if w in scores]
        if not who:
            yield _note("No piece to score in this set.")
            continue
        columns = (
            ("onset_f1", "onset F1"),
            ("offset_f1", "with-offset F1"),
            ("frame_f1", "frame F1"),
        )
        rows = []
        for transcriber in who:
            cells = [_e("ours" if transcriber == "model" else "basic-pitch")]
            for key, _ in columns:
                best = _marked({w: scores[w][key] for w in who}, higher=True)
                text = _fmt(scores[transcriber][key])
                cells.append(f"<b>{text}</b>" if best == transcriber else text)
            rows.append(cells)
        yield _table(["transcriber", *[title for _, title in columns]], rows)
        rolls = sorted((inputs.transcription / "rolls" / name).glob("*.png"))
        pictures = [
            _img(src, f"{name}: {picture.stem}, reference against estimates", "wide")
            for picture in rolls[: config.pieces_per_section]
            if (src := media.image(picture, f"transcription-{name}-{picture.stem}"))
        ]
        if pictures:
            # Folded, so that the tables of the three sets read together.
            yield (
                f"<details><summary>piano rolls of {len(pictures)} pieces: black agrees, "
                "blue missed, red extra</summary>" + "".join(pictures) + "</details>"
            )


def _symbolic(
    inputs: ReportInputs, params: Params, media: _Media, config: ReportConfig
) -> Iterator[str]:
    metrics = _read_json(inputs.composition / "metrics.json")
    if not metrics:
        yield _note(f"Left out: no composition scores at {inputs.composition} (run compose).")
        return
    if "test" in metrics:
        test = metrics["test"]
        yield (
            f"<p>Test NLL per event: <b>{_fmt(test.get('nll_per_event'))}</b> nats over "
            f"{test.get('events', 0)} events of {test.get('pieces', 0)} test pieces.</p>"
        )
    rows = []
    for kind in ("unconditional", "continuations"):
        stats = metrics.get(kind)
        if not stats:
            continue
        cells = [_e(kind)]
        for key, _, _ in COMPOSED_STATS:
            value = _fmt(stats.get(key))
            reference = stats.get(f"reference_{key}")
            cells.append(value if reference is None else f"{value} (test {_fmt(reference)})")
        rows.append(cells)
    if rows:
        yield _table(["composed", *[title for _, _, title in COMPOSED_STATS]], rows)
    manifest = _read_json(inputs.composed / "manifest.json")
    if not manifest:
        yield _note(f"No composed pieces at {inputs.composed}.")
        return
    family = best_family(inputs, params)
    if family is None:
        yield _note("No vocoder family's renders to play the composed pieces with.")
    for piece in manifest["pieces"][: config.pieces_per_section]:
        pid = piece["id"]
        primer = f", continuing {piece['primer']}" if piece.get("primer") else ""
        yield f"<h3>{_e(pid)}{_e(primer)}</h3>"
        roll = media.image(inputs.composed / "rolls" / f"{pid}.png", f"composed-{pid}")
        if roll:
            yield _img(roll, f"{pid}: piano roll, primer marked", "wide")
        if family is None:
            continue
        players = []
        for label, source in (
            (family, inputs.synthesized / family / "composed" / f"{pid}.wav"),
            ("FluidSynth", inputs.synthesized / family / "soundfont" / f"composed_{pid}.wav"),
        ):
            clip = media.clip(source, f"composed-{pid}-{label}")
            if clip:
                players.append([_e(label), _audio(clip[0])])
        if players:
            yield _table(["render", "listen"], players)


def _vocoders(
    inputs: ReportInputs, params: Params, media: _Media, config: ReportConfig
) -> Iterator[str]:
    scores = vocoder_scores(inputs, params)
    families = [f for f in _families(params) if f in scores]
    missing = [f for f in _families(params) if f not in scores]
    if missing:
        yield _note(f"No synthesis scores for {', '.join(missing)} under {inputs.synthesis}.")
    if not families:
        yield _note("Left out: no vocoder family has been synthesized (run synthesize).")
        return
    rows = []
    for name in [*families, *[r for r in REFERENCES if r in scores]]:
        cells = [_e(REFERENCES.get(name, name))]
        for key, _, _, higher in VOCODER_COLUMNS:
            value = scores[name].get(key)
            best = _marked({f: scores[f].get(key) for f in families}, higher)
            text = _fmt(value)
            cells.append(f"<b>{text}</b>" if best == name else text)
        rows.append(cells)
    yield _table(["render", *[title for _, _, title, _ in VOCODER_COLUMNS]], rows)
    yield _note(
        "Bold: the best family in each column (the references are not ranked). "
        "F1: the test pieces' onsets recovered from the render; distances: "
        "to the true audio."
    )
    manifest = _read_json(inputs.synthesized / families[0] / "manifest.json") or {}
    test = [p for p in manifest.get("pieces", []) if p["kind"] == "test"]
    for piece in test[: config.pieces_per_section]:
        pid = piece["id"]
        yield f"<h3>{_e(pid)}</h3>"
        sources = [
            ("true audio", inputs.prepared / "audio" / f"{pid}.wav"),
            ("FluidSynth", inputs.synthesized / families[0] / piece["soundfont"]),
        ]
        sources += [(f, inputs.synthesized / f / "test" / f"{pid}.wav") for f in families]
        yield _players(
            media, [(label, source, f"vocoder-{pid}-{label}") for label, source in sources]
        )


def _hierarchy(
    inputs: ReportInputs,
    params: Params,
    summary: dict[str, Any],
    media: _Media,
    config: ReportConfig,
) -> Iterator[str]:
    tiers = summary.get("tiers", {})
    if not tiers:
        yield _note(
            f"Left out: no tier has been encoded (run encode; looked in {inputs.encodings})."
        )
        return
    rows = [
        [
            _e(tier),
            *[
                _fmt(values.get(key))
                for key in ("usage", "perplexity", "bitrate", "mr_stft", "mel_l1")
            ],
        ]
        for tier, values in tiers.items()
    ]
    yield _table(
        [
            "tier",
            "codebook usage",
            "perplexity",
            "bitrate (bit/s)",
            "reconstruction MR-STFT",
            "reconstruction log-mel L1",
        ],
        rows,
    )
    prior = summary.get("prior", {})
    if prior:
        yield (
            f"<p>Prior: test NLL <b>{_fmt(prior.get('nll'))}</b> nats per code, "
            f"{_fmt(prior.get('bits_per_second'))} bits per second.</p>"
        )
    originals = inputs.samples / "reconstructions" / "original"
    pieces = sorted(originals.glob("*.wav"))[: config.pieces_per_section]
    if pieces:
        yield "<h3>Reconstructions</h3>"
    for original in pieces:
        levels = [("original", original)]
        levels += [
            (f"tier {t}", inputs.samples / "reconstructions" / f"tier{t}" / original.name)
            for t in _tiers(params)
        ]
        stems = [(label, source, f"hierarchy-{original.stem}-{label}") for label, source in levels]
        yield f"<h4>{_e(original.stem)}</h4>" + _players(media, stems)
    samples = sorted((inputs.samples / "samples").glob("*.wav"), key=lambda p: p.stem)
    if samples:
        yield "<h3>Samples from the prior</h3>"
    for sample in samples[: config.pieces_per_section]:
        clip = media.clip(sample, f"prior-sample-{sample.stem}")
        picture = media.image(sample.with_suffix(".png"), f"prior-sample-{sample.stem}")
        if clip:
            yield f"<h4>sample {_e(sample.stem)}</h4>{_audio(clip[0])}"
        if picture:
            yield _img(picture, f"sample {sample.stem}: codes and audio", "wide")


def _training(inputs: ReportInputs, media: _Media) -> Iterator[str]:
    found = False
    for report in inputs.training:
        curves = sorted(report.rglob("loss_curves.png")) if report.is_dir() else []
        for picture in curves:
            label = str(picture.parent.relative_to(report.parent))
            src = media.image(picture, f"loss-{label.replace(os.sep, '-')}")
            if src:
                found = True
                yield f"<h3>{_e(label)}</h3>" + _img(src, f"{label}: loss curves", "wide")
    if not found:
        yield _note("Left out: no training stage has written loss curves yet.")


def _flatten(prefix: str, value: Any) -> dict[str, Any]:
    if isinstance(value, dict):
        flat: dict[str, Any] = {}
        for key, sub in value.items():
            flat.update(_flatten(f"{prefix}{key}.", sub))
        return flat
    return {prefix.rstrip("."): value}


def params_against_profiles(params: Params) -> tuple[str, dict[str, tuple[Any, Any]]]:
    """The profile ``params`` is closest to, and each key that differs from it (value,
    the profile's value)."""
    current = _flatten("", params.model_dump(mode="json"))
    best: tuple[str, dict[str, tuple[Any, Any]]] | None = None
    for name in profiles.available():
        base = Params().model_dump(mode="json")
        profiles.merge_into(base, profiles.overlay(name))
        reference = _flatten("", Params.model_validate(base).model_dump(mode="json"))
        differs = {
            key: (current.get(key), reference.get(key))
            for key in sorted(set(current) | set(reference))
            if current.get(key) != reference.get(key)
        }
        if best is None or len(differs) < len(best[1]):
            best = (name, differs)
    assert best is not None
    return best


def git_revision(where: Path) -> str:
    """The checkout's commit (with ``+changes`` when the work tree differs), or why not."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=where, capture_output=True, text=True, check=True)
        return done.stdout.strip()

    try:
        commit = git("rev-parse", "--short=12", "HEAD")
        dirty = git("status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError):
        return "not a git checkout"
    return commit + (" +changes" if dirty else "")


def _md5(path: Path) -> str:
    digest = hashlib.md5()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _run(inputs: ReportInputs, params: Params) -> Iterator[str]:
    profile, differs = params_against_profiles(params)
    yield f"<p>Git revision: <code>{_e(git_revision(Path.cwd()))}</code>.</p>"
    if differs:
        rows = [
            [f"<code>{_e(k)}</code>", _e(json.dumps(v)), _e(json.dumps(p))]
            for k, (v, p) in differs.items()
        ]
        yield f"<p>Params that differ from the <b>{_e(profile)}</b> profile:</p>"
        yield _table(["key", "this run", f"profile {profile}"], rows)
    else:
        yield f"<p>Params: the <b>{_e(profile)}</b> profile, unchanged.</p>"
    rows = []
    for model in inputs.models:
        files = (
            sorted(p for p in model.rglob("*") if p.is_file() and not p.name.startswith("."))
            if model.is_dir()
            else [model]
        )
        for path in files:
            if path.is_file():
                rows.append([f"<code>{_e(path)}</code>", f"<code>{_md5(path)}</code>"])
    if rows:
        yield "<p>Models (the MD5 that DVC records for each file):</p>"
        yield _table(["model", "md5"], rows)


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px;
       color: #222; padding: 0 1em; }
nav a { margin-right: 1em; }
table { border-collapse: collapse; margin: 0.6em 0 1.2em; }
th, td { border-bottom: 1px solid #ddd; padding: 0.25em 0.7em; text-align: left;
         vertical-align: middle; }
img.wide { max-width: 100%; width: 900px; display: block; margin: 0.5em 0; }
img.strip { width: 540px; display: block; }
audio { width: 260px; }
.note { color: #8a5a00; }
code { font-size: 0.9em; }
"""

SECTIONS = (
    ("transcription", "Transcription"),
    ("symbolic", "Symbolic"),
    ("vocoders", "Vocoders"),
    ("hierarchy", "Hierarchy"),
    ("training", "Training"),
    ("run", "Run"),
)


def _headlines(summary: dict[str, Any]) -> Iterator[str]:
    """The figures a reader looks for first, one line each, from the summary."""
    rows = []
    for name, scores in summary.get("transcription", {}).items():
        ours = scores.get("ours", {}).get("onset_f1")
        theirs = scores.get("basic_pitch", {}).get("onset_f1")
        text = f"{_fmt(ours)} ours" + (
            f", {_fmt(theirs)} basic-pitch" if theirs is not None else ""
        )
        rows.append([_e(f"transcription onset F1, {SET_TITLES.get(name, name)}"), text])
    symbolic = summary.get("symbolic", {})
    if "test_nll" in symbolic:
        rows.append(["Music Transformer test NLL per event", _fmt(symbolic["test_nll"])])
    vocoders = {k: v for k, v in summary.get("vocoder", {}).items() if k != "fluidsynth"}
    if vocoders:
        key = "judge_f1" if all("judge_f1" in v for v in vocoders.values()) else "ours_f1"
        best = max(vocoders, key=lambda k: vocoders[k].get(key, -1.0))
        reference = summary["vocoder"].get("fluidsynth", {}).get(key)
        rows.append(
            [
                "best vocoder family, onset F1 of its renders"
                + (" (judge)" if key == "judge_f1" else " (ours)"),
                f"{_e(best)} {_fmt(vocoders[best].get(key))}"
                + (f"; FluidSynth {_fmt(reference)}" if reference is not None else ""),
            ]
        )
    for tier, values in summary.get("tiers", {}).items():
        rows.append(
            [
                f"tier {_e(tier)}: usage, bitrate, reconstruction log-mel L1",
                f"{_fmt(values.get('usage'))}, {_fmt(values.get('bitrate'))} bit/s, "
                f"{_fmt(values.get('mel_l1'))}",
            ]
        )
    if "nll" in summary.get("prior", {}):
        rows.append(["prior test NLL per code", _fmt(summary["prior"]["nll"])])
    if rows:
        yield _table(["headline", "figure"], rows)


def write_page(inputs: ReportInputs, params: Params, out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/media``; the page is written last, so a
    killed run never leaves a page pointing at missing media."""
    config = params.report
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(out_dir / MEDIA, "page")
    for stale in staging.iterdir():
        stale.unlink()
    media = _Media(staging, config)
    summary = summarize(inputs, params)
    parts = {
        "transcription": _transcription(inputs, media, config),
        "symbolic": _symbolic(inputs, params, media, config),
        "vocoders": _vocoders(inputs, params, media, config),
        "hierarchy": _hierarchy(inputs, params, summary, media, config),
        "training": _training(inputs, media),
        "run": _run(inputs, params),
    }
    body = [
        "<h1>wavegen: evaluation</h1>",
        "<nav>"
        + "".join(f'<a href="#{key}">{_e(title)}</a>' for key, title in SECTIONS)
        + "</nav>",
        *_headlines(summary),
    ]
    for key, title in SECTIONS:
        body.append(f'<section id="{key}"><h2>{_e(title)}</h2>')
        body.extend(parts[key])
        body.append("</section>")
    replace_dir(staging, out_dir / MEDIA)
    page = out_dir / PAGE
    with atomic_open(page) as handle:
        handle.write(
            '<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            "<title>wavegen evaluation</title>"
            f"<style>{STYLE}</style></head><body>\n" + "\n".join(body) + "\n</body></html>\n"
        )
    return page


def write_summary(inputs: ReportInputs, params: Params, path: Path) -> dict[str, Any]:
    """Write :func:`summarize`'s figures to ``path`` as JSON and return them."""
    summary = summarize(inputs, params)
    write_json(path, summary)
    return summary
