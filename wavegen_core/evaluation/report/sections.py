"""The listening page's sections, one function per area, each yielding its HTML.

An area whose outputs are missing (a family left out of ``vocoder.families``, a stage
not yet run) yields a note that says so instead of its tables and players.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wavegen_core.evaluation.report.markup import (
    Media,
    audio_player,
    best_of,
    escape,
    format_figure,
    image,
    note,
    players,
    table,
)
from wavegen_core.evaluation.report.provenance import (
    git_revision,
    md5_of,
    model_files,
    params_against_profiles,
)
from wavegen_core.evaluation.report.summary import (
    COMPOSED_STATS,
    REFERENCES,
    SET_TITLES,
    VOCODER_COLUMNS,
    ReportInputs,
    best_family,
    ceiling_audio,
    ceilings,
    families,
    read_json,
    tiers,
    vocoder_scores,
)
from wavegen_core.params import Params, ReportConfig


def transcription_section(
    inputs: ReportInputs, media: Media, config: ReportConfig
) -> Iterator[str]:
    """Each evaluation set's scores, ours beside basic-pitch's, and folded piano rolls."""
    metrics = read_json(inputs.transcription / "metrics.json")
    if not metrics:
        yield note(
            f"Left out: no transcription scores at {inputs.transcription} "
            "(run evaluate_transcriber)."
        )
        return
    for name, scores in metrics.items():
        yield f"<h3>{escape(SET_TITLES.get(name, name))} ({scores.get('pieces', 0)} pieces)</h3>"
        who = [w for w in ("model", "basic_pitch") if w in scores]
        if not who:
            yield note("No piece to score in this set.")
            continue
        columns = (
            ("onset_f1", "onset F1"),
            ("offset_f1", "with-offset F1"),
            ("frame_f1", "frame F1"),
        )
        rows = []
        for transcriber in who:
            cells = [escape("ours" if transcriber == "model" else "basic-pitch")]
            for key, _ in columns:
                best = best_of({w: scores[w][key] for w in who}, higher=True)
                text = format_figure(scores[transcriber][key])
                cells.append(f"<b>{text}</b>" if best == transcriber else text)
            rows.append(cells)
        yield table(["transcriber", *[title for _, title in columns]], rows)
        rolls = sorted((inputs.transcription / "rolls" / name).glob("*.png"))
        pictures = [
            image(src, f"{name}: {picture.stem}, reference against estimates", "wide")
            for picture in rolls[: config.pieces_per_section]
            if (src := media.image(picture, f"transcription-{name}-{picture.stem}"))
        ]
        if pictures:
            # Folded, so that the tables of the three sets read together.
            yield (
                f"<details><summary>piano rolls of {len(pictures)} pieces: black agrees, "
                "blue missed, red extra</summary>" + "".join(pictures) + "</details>"
            )


def symbolic_section(
    inputs: ReportInputs, params: Params, media: Media, config: ReportConfig
) -> Iterator[str]:
    """The Music Transformer's test NLL, the composed pieces' statistics against the test
    set's, and the composed pieces: rolls, and renders by the best family and FluidSynth."""
    metrics = read_json(inputs.composition / "metrics.json")
    if not metrics:
        yield note(f"Left out: no composition scores at {inputs.composition} (run compose).")
        return
    if "test" in metrics:
        test = metrics["test"]
        yield (
            f"<p>Test NLL per event: <b>{format_figure(test.get('nll_per_event'))}</b> nats "
            f"over {test.get('events', 0)} events of {test.get('pieces', 0)} test pieces.</p>"
        )
    rows = []
    for kind in ("unconditional", "continuations"):
        stats = metrics.get(kind)
        if not stats:
            continue
        cells = [escape(kind)]
        for key, _, _ in COMPOSED_STATS:
            value = format_figure(stats.get(key))
            reference = stats.get(f"reference_{key}")
            cells.append(
                value if reference is None else f"{value} (test {format_figure(reference)})"
            )
        rows.append(cells)
    if rows:
        yield table(["composed", *[title for _, _, title in COMPOSED_STATS]], rows)
    manifest = read_json(inputs.composed / "manifest.json")
    if not manifest:
        yield note(f"No composed pieces at {inputs.composed}.")
        return
    family = best_family(inputs, params)
    if family is None:
        yield note("No vocoder family's renders to play the composed pieces with.")
    for piece in manifest["pieces"][: config.pieces_per_section]:
        pid = piece["id"]
        primer = f", continuing {piece['primer']}" if piece.get("primer") else ""
        yield f"<h3>{escape(pid)}{escape(primer)}</h3>"
        roll = media.image(inputs.composed / "rolls" / f"{pid}.png", f"composed-{pid}")
        if roll:
            yield image(roll, f"{pid}: piano roll, primer marked", "wide")
        if family is None:
            continue
        rendered = []
        for label, source in (
            (family, inputs.synthesized / family / "composed" / f"{pid}.wav"),
            ("FluidSynth", inputs.synthesized / family / "soundfont" / f"composed_{pid}.wav"),
        ):
            clip = media.clip(source, f"composed-{pid}-{label}")
            if clip:
                rendered.append([escape(label), audio_player(clip[0])])
        if rendered:
            yield table(["render", "listen"], rendered)


def vocoders_section(
    inputs: ReportInputs, params: Params, media: Media, config: ReportConfig
) -> Iterator[str]:
    """The families' scores beside the reference renders', and each test piece as the
    truth, FluidSynth and every family play it."""
    scores = vocoder_scores(inputs, params)
    scored = [f for f in families(params) if f in scores]
    missing = [f for f in families(params) if f not in scores]
    if missing:
        yield note(f"No synthesis scores for {', '.join(missing)} under {inputs.synthesis}.")
    if not scored:
        yield note("Left out: no vocoder family has been synthesized (run synthesize).")
        return
    rows = []
    shown_ceilings = [c for c in ceilings(params) if c in scores]
    for name in [*scored, *shown_ceilings, *[r for r in REFERENCES if r in scores]]:
        cells = [escape(REFERENCES.get(name, name))]
        for key, _, _, higher in VOCODER_COLUMNS:
            value = scores[name].get(key)
            best = best_of({f: scores[f].get(key) for f in scored}, higher)
            text = format_figure(value)
            cells.append(f"<b>{text}</b>" if best == name else text)
        rows.append(cells)
    yield table(["render", *[title for _, _, title, _ in VOCODER_COLUMNS]], rows)
    yield note(
        "Bold: the best family in each column (the references are not ranked). "
        "F1: the test pieces' onsets recovered from the render; distances: "
        "to the true audio."
        + (
            " A family_mel row renders from the mels of "
            f"{params.vocoder.mel.source}'s render; its family_true_mel row, from the true "
            "audio's mels (the ceiling; not ranked)."
            if shown_ceilings
            else ""
        )
    )
    manifest = read_json(inputs.synthesized / scored[0] / "manifest.json") or {}
    test = [p for p in manifest.get("pieces", []) if p["kind"] == "test"]
    for piece in test[: config.pieces_per_section]:
        pid = piece["id"]
        yield f"<h3>{escape(pid)}</h3>"
        sources = [
            ("true audio", inputs.prepared / "audio" / f"{pid}.wav"),
            ("FluidSynth", inputs.synthesized / scored[0] / piece["soundfont"]),
        ]
        sources += [(f, inputs.synthesized / f / "test" / f"{pid}.wav") for f in scored]
        sources += [(c, ceiling_audio(inputs, c, pid)) for c in shown_ceilings]
        yield players(
            media, [(label, source, f"vocoder-{pid}-{label}") for label, source in sources]
        )


def hierarchy_section(
    inputs: ReportInputs,
    params: Params,
    summary: dict[str, Any],
    media: Media,
    config: ReportConfig,
) -> Iterator[str]:
    """Each tier's codebook health and reconstruction, the prior's NLL, reconstructions
    at every tier, and samples from the prior."""
    by_tier = summary.get("tiers", {})
    if not by_tier:
        yield note(
            f"Left out: no tier has been encoded (run encode; looked in {inputs.encodings})."
        )
        return
    rows = [
        [
            escape(tier),
            *[
                format_figure(values.get(key))
                for key in ("usage", "perplexity", "bitrate", "mr_stft", "mel_l1")
            ],
        ]
        for tier, values in by_tier.items()
    ]
    yield table(
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
            f"<p>Prior: test NLL <b>{format_figure(prior.get('nll'))}</b> nats per code, "
            f"{format_figure(prior.get('bits_per_second'))} bits per second.</p>"
        )
    originals = inputs.samples / "reconstructions" / "original"
    pieces = sorted(originals.glob("*.wav"))[: config.pieces_per_section]
    if pieces:
        yield "<h3>Reconstructions</h3>"
    for original in pieces:
        levels = [("original", original)]
        levels += [
            (f"tier {t}", inputs.samples / "reconstructions" / f"tier{t}" / original.name)
            for t in tiers(params)
        ]
        stems = [(label, source, f"hierarchy-{original.stem}-{label}") for label, source in levels]
        yield f"<h4>{escape(original.stem)}</h4>" + players(media, stems)
    samples = sorted((inputs.samples / "samples").glob("*.wav"), key=lambda p: p.stem)
    if samples:
        yield "<h3>Samples from the prior</h3>"
    for sample in samples[: config.pieces_per_section]:
        clip = media.clip(sample, f"prior-sample-{sample.stem}")
        picture = media.image(sample.with_suffix(".png"), f"prior-sample-{sample.stem}")
        if clip:
            yield f"<h4>sample {escape(sample.stem)}</h4>{audio_player(clip[0])}"
        if picture:
            yield image(picture, f"sample {sample.stem}: codes and audio", "wide")


def training_section(inputs: ReportInputs, media: Media) -> Iterator[str]:
    """Every training stage's loss curves."""
    found = False
    for report in inputs.training:
        curves = sorted(report.rglob("loss_curves.png")) if report.is_dir() else []
        for picture in curves:
            label = str(picture.parent.relative_to(report.parent))
            src = media.image(picture, f"loss-{label.replace(os.sep, '-')}")
            if src:
                found = True
                yield f"<h3>{escape(label)}</h3>" + image(src, f"{label}: loss curves", "wide")
    if not found:
        yield note("Left out: no training stage has written loss curves yet.")


def run_section(inputs: ReportInputs, params: Params) -> Iterator[str]:
    """What the run was: the commit, the params that differ from the nearest profile,
    and the models' hashes."""
    profile, differs = params_against_profiles(params)
    yield f"<p>Git revision: <code>{escape(git_revision(Path.cwd()))}</code>.</p>"
    if differs:
        rows = [
            [f"<code>{escape(k)}</code>", escape(json.dumps(v)), escape(json.dumps(p))]
            for k, (v, p) in differs.items()
        ]
        yield f"<p>Params that differ from the <b>{escape(profile)}</b> profile:</p>"
        yield table(["key", "this run", f"profile {profile}"], rows)
    else:
        yield f"<p>Params: the <b>{escape(profile)}</b> profile, unchanged.</p>"
    rows = [
        [f"<code>{escape(path)}</code>", f"<code>{md5_of(path)}</code>"]
        for model in inputs.models
        for path in model_files(model)
    ]
    if rows:
        yield "<p>Models (the MD5 that DVC records for each file):</p>"
        yield table(["model", "md5"], rows)
