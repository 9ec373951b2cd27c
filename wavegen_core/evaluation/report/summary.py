"""What the report reads, and every area's headline figures under short, stable keys.

:func:`summarize` gathers what the stages measured into one dict of short, stable keys
(``transcription.test.ours.onset_f1``, ``vocoder.gan.judge_f1``, ``tiers.1.usage``…),
finite numbers only, for ``dvc metrics show`` and ``dvc metrics diff``.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wavegen_core.files import write_json
from wavegen_core.params import Params

SET_TITLES = {
    "dev": "dev set (what choices are made on)",
    "test": "test split, training piano",
    "reserved_piano": "test split, reserved piano",
    "unseen_music": "unseen music, reserved piano",
}
# The reference renders in synthesize's metrics, beside the families.
REFERENCES = {
    "soundfont": "FluidSynth",
    "sine": "sine (additive)",
    "noise": "white noise (as loud)",
    "true_audio": "true audio",
}
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


def read_json(path: Path) -> Any:
    """The JSON at ``path``, or None where a stage has not written it."""
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def finite_numbers(tree: Any) -> Any:
    """``tree`` without its non-finite or non-numeric leaves, and without empty branches."""
    if isinstance(tree, dict):
        kept = {str(k): finite_numbers(v) for k, v in tree.items()}
        return {k: v for k, v in kept.items() if v is not None and v != {}}
    if isinstance(tree, bool) or not isinstance(tree, int | float):
        return None
    return round(float(tree), 6) if math.isfinite(tree) else None


def families(params: Params) -> list[str]:
    """The vocoder families the run lists, in its order, then the mel-conditioned ones
    (``<family>_mel``, rendered from ``vocoder.mel.source``'s mels)."""
    return [*params.vocoder.families, *(f"{f}_mel" for f in params.vocoder.mel.families)]


def ceilings(params: Params) -> list[str]:
    """The mel-conditioned families' renders from the true audio's mel
    (``<family>_true_mel``): what a perfect spectrogram would give."""
    return [f"{f}_true_mel" for f in params.vocoder.mel.families]


def ceiling_audio(inputs: ReportInputs, ceiling: str, pid: str) -> Path:
    """Where ``synthesize_mel`` wrote the ceiling render of test piece ``pid``."""
    family = ceiling.removesuffix("_true_mel")
    return inputs.synthesized / f"{family}_mel" / ceiling / f"test_{pid}.wav"


def tiers(params: Params) -> list[str]:
    """The VQ-VAE tiers' keys, as the stages name their folders."""
    return [str(key) for key in params.vqvae.tiers]


def vocoder_scores(inputs: ReportInputs, params: Params) -> dict[str, dict[str, float]]:
    """Per family and reference render: the test pieces' mean scores and the family's
    real-time factor, under the summary's keys."""
    rows: dict[str, dict[str, float]] = {}
    for family in families(params):
        metrics = read_json(inputs.synthesis / family / "metrics.json")
        if not metrics or "test" not in metrics:
            continue
        speed = read_json(inputs.synthesis / family / "speed.json") or {}
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
    scored = [f for f in families(params) if f in rows]
    if not scored:
        return None
    return max(scored, key=lambda f: (rows[f].get("judge_f1", -1.0), rows[f].get("ours_f1", -1.0)))


def summarize(inputs: ReportInputs, params: Params) -> dict[str, Any]:
    """Every area's headline figures under short, stable keys; finite numbers only."""
    summary: dict[str, Any] = {}
    transcription = read_json(inputs.transcription / "metrics.json") or {}
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
    composition = read_json(inputs.composition / "metrics.json") or {}
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
        for name in [*families(params), *ceilings(params), "soundfont"]
        if name in rendered
    }
    hierarchy = read_json(inputs.hierarchy / "metrics.json") or {}
    by_tier: dict[str, Any] = {}
    for tier in tiers(params):
        encoded = read_json(inputs.encodings / tier / "metrics.json") or {}
        test = encoded.get("test", {})
        reconstruction = hierarchy.get(f"tier_{tier}", {})
        by_tier[tier] = {
            "usage": test.get("usage"),
            "perplexity": test.get("perplexity"),
            "bitrate": encoded.get("bitrate"),
            "mr_stft": reconstruction.get("mr_stft"),
            "mel_l1": reconstruction.get("mel_l1"),
        }
    summary["tiers"] = by_tier
    prior = read_json(inputs.prior / "test.json") or {}
    summary["prior"] = {
        "nll": prior.get("nll_per_code"),
        "bits_per_second": prior.get("bits_per_second"),
    }
    return finite_numbers(summary)


def write_summary(inputs: ReportInputs, params: Params, path: Path) -> dict[str, Any]:
    """Write :func:`summarize`'s figures to ``path`` as JSON and return them."""
    summary = summarize(inputs, params)
    write_json(path, summary)
    return summary
