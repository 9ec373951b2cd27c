"""The listening page: ``index.html`` and its ``media/`` folder.

One static page with relative links (it works opened from disk and from a checkout of
the DVC remote): the headline figures, then a section per area (:mod:`.sections`), a
bounded selection of compressed clips, spectrograms on one time axis, the tables, the
loss curves and what the run was.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from wavegen_core.evaluation.report.markup import MEDIA, Media, escape, format_figure, table
from wavegen_core.evaluation.report.provenance import params_against_profiles
from wavegen_core.evaluation.report.sections import (
    hierarchy_section,
    run_section,
    symbolic_section,
    training_section,
    transcription_section,
    vocoders_section,
)
from wavegen_core.evaluation.report.summary import SET_TITLES, ReportInputs, summarize
from wavegen_core.files import atomic_open, replace_dir, staging_dir
from wavegen_core.params import Params

PAGE = "index.html"

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


def headlines(summary: dict[str, Any]) -> Iterator[str]:
    """The figures a reader looks for first, one line each, from the summary."""
    rows = []
    for name, scores in summary.get("transcription", {}).items():
        ours = scores.get("ours", {}).get("onset_f1")
        theirs = scores.get("basic_pitch", {}).get("onset_f1")
        text = f"{format_figure(ours)} ours" + (
            f", {format_figure(theirs)} basic-pitch" if theirs is not None else ""
        )
        rows.append([escape(f"transcription onset F1, {SET_TITLES.get(name, name)}"), text])
    symbolic = summary.get("symbolic", {})
    if "test_nll" in symbolic:
        rows.append(["Music Transformer test NLL per event", format_figure(symbolic["test_nll"])])
    vocoders = {k: v for k, v in summary.get("vocoder", {}).items() if k != "fluidsynth"}
    if vocoders:
        key = "judge_f1" if all("judge_f1" in v for v in vocoders.values()) else "ours_f1"
        best = max(vocoders, key=lambda k: vocoders[k].get(key, -1.0))
        reference = summary["vocoder"].get("fluidsynth", {}).get(key)
        rows.append(
            [
                "best vocoder family, onset F1 of its renders"
                + (" (judge)" if key == "judge_f1" else " (ours)"),
                f"{escape(best)} {format_figure(vocoders[best].get(key))}"
                + (f"; FluidSynth {format_figure(reference)}" if reference is not None else ""),
            ]
        )
    for tier, values in summary.get("tiers", {}).items():
        rows.append(
            [
                f"tier {escape(tier)}: usage, bitrate, reconstruction log-mel L1",
                f"{format_figure(values.get('usage'))}, "
                f"{format_figure(values.get('bitrate'))} bit/s, "
                f"{format_figure(values.get('mel_l1'))}",
            ]
        )
    if "nll" in summary.get("prior", {}):
        rows.append(["prior test NLL per code", format_figure(summary["prior"]["nll"])])
    if rows:
        yield table(["headline", "figure"], rows)


def what_it_shows(params: Params) -> Iterator[str]:
    """The page's first lines: the profile the run's params are closest to, and, at the
    tiny profile, that its figures test the pipeline, not the models."""
    profile, differs = params_against_profiles(params)
    count = f"{len(differs)} param{'s' if len(differs) != 1 else ''}"
    changed = f", with {count} changed (under “The run”)" if differs else ""
    yield f'<p class="profile">Profile: <b>{escape(profile)}</b>{changed}.</p>'
    if profile == "tiny":
        yield (
            '<p class="note">At the tiny profile (a small corpus, a few hundred training '
            "steps) these figures are a smoke test of the pipeline, not a measure of the models. "
            "The cpu profile's figures are in the project's BENCHMARKS.md.</p>"
        )


def write_page(inputs: ReportInputs, params: Params, out_dir: Path) -> Path:
    """Write ``out_dir/index.html`` and ``out_dir/media``; the page is written last, so a
    killed run never leaves a page pointing at missing media."""
    config = params.report
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = staging_dir(out_dir / MEDIA, "page")
    for stale in staging.iterdir():
        stale.unlink()
    media = Media(staging, config)
    summary = summarize(inputs, params)
    parts = {
        "transcription": transcription_section(inputs, media, config),
        "symbolic": symbolic_section(inputs, params, media, config),
        "vocoders": vocoders_section(inputs, params, media, config),
        "hierarchy": hierarchy_section(inputs, params, summary, media, config),
        "training": training_section(inputs, media),
        "run": run_section(inputs, params),
    }
    body = [
        "<h1>wavegen: evaluation</h1>",
        *what_it_shows(params),
        "<nav>"
        + "".join(f'<a href="#{key}">{escape(title)}</a>' for key, title in SECTIONS)
        + "</nav>",
        *headlines(summary),
    ]
    for key, title in SECTIONS:
        body.append(f'<section id="{key}"><h2>{escape(title)}</h2>')
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
