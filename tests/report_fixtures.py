"""Upstream outputs laid out as the stages write them, for the report's tests, and a
check of a page in a real browser (:mod:`tools.browser`'s headless chromium)."""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from matplotlib.figure import Figure

from tools.browser import CHROMIUM
from wavegen_core.evaluation.report.summary import ReportInputs
from wavegen_core.params import Params

RATE = 16000


def _json(path: Path, payload: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload))


def _wav(path: Path, seconds: float, pitch: float) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    t = np.arange(int(seconds * RATE)) / RATE
    sf.write(path, (0.3 * np.sin(2 * np.pi * pitch * t)).astype(np.float32), RATE)


def _png(path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    figure = Figure(figsize=(2, 1))
    figure.add_subplot().plot([0, 1], [1, 0])
    figure.savefig(path, dpi=50)


def upstream_outputs(root: Path, families: list[str], tiers: list[str]) -> ReportInputs:
    """What the stages write at the tiny profile, in miniature, under ``root``: for each
    of ``families`` its synthesis; for each of ``tiers`` its codes and reconstructions."""
    inputs = ReportInputs(
        prepared=root / "data/prepared",
        transcription=root / "reports/evaluate_transcriber",
        composition=root / "reports/compose",
        composed=root / "data/composed",
        synthesis=root / "reports/synthesize",
        synthesized=root / "data/synthesized",
        encodings=root / "reports/encode",
        hierarchy=root / "reports/sample_hierarchy",
        samples=root / "data/hierarchy",
        prior=root / "reports/train_prior",
        training=[root / "reports/train_transcriber", root / "reports/train_vocoder"],
        models=[root / "models/transcriber/checkpoint.pt", root / "models/vocoder"],
    )
    scores = {"onset_f1": 0.9, "offset_f1": 0.7, "frame_f1": 0.8}
    _json(
        inputs.transcription / "metrics.json",
        {
            name: {"pieces": 2, "model": scores, "basic_pitch": {**scores, "onset_f1": 0.85}}
            for name in ("dev", "test", "reserved_piano", "unseen_music")
        },
    )
    _png(inputs.transcription / "rolls/test/bwv1.png")
    stats = {
        "pitch_class_histogram_distance": 0.3,
        "ioi_histogram_distance": 0.4,
        "note_density": 4.0,
        "reference_note_density": 5.0,
        "mean_polyphony": 3.0,
        "reference_mean_polyphony": 3.5,
        "pitch_range": 30.0,
        "reference_pitch_range": 32.0,
    }
    _json(
        inputs.composition / "metrics.json",
        {
            "test": {"nll_per_event": 3.2, "accuracy": 0.4, "events": 800, "pieces": 1},
            "composed": {"pieces": 2, "notes": 40},
            "unconditional": stats,
            "continuations": {**stats, "ioi_histogram_distance": float("nan")},
        },
    )
    _json(
        inputs.composed / "manifest.json",
        {"pieces": [{"id": "unconditional_000", "kind": "unconditional", "primer": None}]},
    )
    _png(inputs.composed / "rolls/unconditional_000.png")
    _wav(inputs.prepared / "audio/bwv1.wav", 2.0, 220.0)
    for index, family in enumerate(families):
        rendered = {"onset_f1": 0.5 + index / 10, "mr_stft": 3.0 - index, "mel_l1": 2.0}
        _json(
            inputs.synthesis / family / "metrics.json",
            {
                "test": {
                    family: {**rendered, "judge_onset_f1": 0.4 + index / 10},
                    "soundfont": {"onset_f1": 0.95, "judge_onset_f1": 0.97, "mr_stft": 0.0},
                    "sine": {"onset_f1": 0.6, "judge_onset_f1": 0.5, "mr_stft": 4.0},
                    "true_audio": {"onset_f1": 0.96, "judge_onset_f1": 0.97},
                }
            },
        )
        _json(
            inputs.synthesis / family / "speed.json",
            {"real_time_factor": {family: 2.0 + index, "soundfont": 300.0}},
        )
        out = inputs.synthesized / family
        _json(
            out / "manifest.json",
            {
                "family": family,
                "pieces": [
                    {"id": "bwv1", "kind": "test", "soundfont": "soundfont/test_bwv1.wav"},
                    {"id": "unconditional_000", "kind": "composed"},
                ],
            },
        )
        _wav(out / "test/bwv1.wav", 2.0, 330.0)
        _wav(out / "soundfont/test_bwv1.wav", 2.0, 220.0)
        _wav(out / "composed/unconditional_000.wav", 1.0, 440.0)
        _wav(out / "soundfont/composed_unconditional_000.wav", 1.0, 440.0)
        _png(root / "reports/train_vocoder" / family / "loss_curves.png")
        checkpoint = root / "models/vocoder" / family / "checkpoint.pt"
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        checkpoint.write_bytes(family.encode())
    hierarchy: dict[str, Any] = {"test_pieces": 1}
    for tier in tiers:
        _json(
            inputs.encodings / tier / "metrics.json",
            {"test": {"usage": 0.5, "perplexity": 20.0}, "bitrate": 1000.0 / int(tier)},
        )
        hierarchy[f"tier_{tier}"] = {"mr_stft": 2.0, "mel_l1": 3.0}
        _wav(inputs.samples / f"reconstructions/tier{tier}/bwv1.wav", 1.0, 220.0)
    _json(inputs.hierarchy / "metrics.json", hierarchy)
    _wav(inputs.samples / "reconstructions/original/bwv1.wav", 1.0, 220.0)
    _wav(inputs.samples / "samples/0.wav", 1.0, 110.0)
    _png(inputs.samples / "samples/0.png")
    _json(inputs.prior / "test.json", {"nll_per_code": 2.5, "bits_per_second": 40.0})
    _png(root / "reports/train_transcriber/loss_curves.png")
    (root / "models/transcriber").mkdir(parents=True, exist_ok=True)
    (root / "models/transcriber/checkpoint.pt").write_bytes(b"weights")
    return inputs


def tiny_params(families: list[str]) -> Params:
    """The shipped params (the tiny profile) with ``families`` as the vocoder families."""
    from wavegen_core.params import load_params

    params = load_params(Path(__file__).resolve().parents[1] / "params.yaml")
    return params.model_copy(
        update={"vocoder": params.vocoder.model_copy(update={"families": families})}
    )


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.ids: set[str] = set()
        self.links: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        for name, value in attrs:
            if name == "id" and value:
                self.ids.add(value)
            if name in ("href", "src") and value:
                self.links.append(value)


def broken_links(page: Path) -> list[str]:
    """Every href/src of ``page`` that names no element of the page or no file beside it."""
    parser = _Links()
    parser.feed(page.read_text(encoding="utf-8"))
    broken = []
    for link in parser.links:
        if link.startswith("#"):
            if link[1:] not in parser.ids:
                broken.append(link)
        elif "://" in link or link.startswith("/") or not (page.parent / link).is_file():
            broken.append(link)
    return broken


CHECKER = """
<script>
window.addEventListener('load', async () => {
  const audios = [...document.querySelectorAll('audio')];
  await Promise.all(audios.map(a => new Promise(done => {
    if (a.readyState >= 1 || a.error) return done();
    a.addEventListener('loadedmetadata', done, {once: true});
    a.addEventListener('error', done, {once: true});
  })));
  const found = {
    audio: audios.map(a => ({src: a.getAttribute('src'), duration: a.duration,
                             error: a.error ? a.error.code : null})),
    images: [...document.images].map(i => ({src: i.getAttribute('src'),
                                            loaded: i.complete && i.naturalWidth > 0})),
  };
  const out = document.createElement('pre');
  out.id = 'page-check';
  out.textContent = JSON.stringify(found);
  document.body.appendChild(out);
});
</script>
"""


def check_in_browser(page: Path) -> dict[str, Any]:
    """Open a copy of ``page`` (beside it, so its relative links hold) in headless
    chromium with a script that records each ``<audio>``'s duration and whether each
    image loaded, and read that back from the dumped DOM."""
    probe = page.with_name(".page-check.html")
    text = page.read_text(encoding="utf-8")
    probe.write_text(text.replace("</body>", CHECKER + "</body>"), encoding="utf-8")
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    try:
        dom = subprocess.run(
            [
                CHROMIUM,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                f"--user-data-dir={profile}",
                "--allow-file-access-from-files",
                "--virtual-time-budget=20000",
                "--dump-dom",
                probe.resolve().as_uri(),
            ],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
        ).stdout
    finally:
        probe.unlink(missing_ok=True)
        shutil.rmtree(profile, ignore_errors=True)
    start = dom.index('id="page-check">') + len('id="page-check">')
    import html

    return json.loads(html.unescape(dom[start : dom.index("</pre>", start)]))
