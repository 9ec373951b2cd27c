"""The listening page's building blocks: HTML fragments, and the media they link to.

:class:`Media` writes each clip, spectrogram and picture once under ``media/`` and
returns its relative link, so that the page works opened from disk and from a checkout
of the DVC remote; the functions below turn figures and links into HTML.
"""

from __future__ import annotations

import html
import math
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from matplotlib.figure import Figure

from wavegen_core.audio.io import write_compressed
from wavegen_core.params import ReportConfig

MEDIA = "media"


class Media:
    """The page's files under ``media/``, each written once and linked relatively."""

    def __init__(self, root: Path, config: ReportConfig) -> None:
        self.root = root
        self.config = config
        self._names: set[str] = set()

    def _unique_name(self, stem: str, suffix: str) -> str:
        safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in stem)
        name, index = f"{safe}{suffix}", 1
        while name in self._names:
            index += 1
            name = f"{safe}-{index}{suffix}"
        self._names.add(name)
        return name

    def image(self, source: Path, stem: str) -> str | None:
        """A copy of the picture at ``source``; None if there is none."""
        if not source.is_file():
            return None
        name = self._unique_name(stem, source.suffix)
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
        name = self._unique_name(stem, f".{self.config.audio_format}")
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
        name = self._unique_name(stem, ".png")
        figure.savefig(self.root / name, dpi=72, format="png")
        return f"{MEDIA}/{name}"


def escape(text: Any) -> str:
    return html.escape(str(text))


def format_figure(value: float | None) -> str:
    """A score as the tables show it: three decimals, or whole above 100; a dash if none."""
    if value is None or not math.isfinite(value):
        return "—"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3f}"


def table(header: list[str], rows: list[list[str]]) -> str:
    """A table of ``header`` (plain text, escaped here) over ``rows`` (HTML cells)."""
    head = "".join(f"<th>{escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def note(text: str) -> str:
    """A remark in the page's warning colour: what is left out, and why."""
    return f'<p class="note">{escape(text)}</p>'


def audio_player(src: str) -> str:
    return f'<audio controls preload="metadata" src="{escape(src)}"></audio>'


def image(src: str, alt: str, css: str = "") -> str:
    return f'<img src="{escape(src)}" alt="{escape(alt)}"{f" class={css!r}" if css else ""}>'


def best_of(values: dict[str, float | None], higher: bool) -> str | None:
    """The key of the best value (the highest, or the lowest where ``higher`` is False);
    None unless at least two values are there to compare."""
    present = {k: v for k, v in values.items() if v is not None}
    if len(present) < 2:
        return None
    return (max if higher else min)(present, key=lambda k: present[k])


def players(media: Media, sources: list[tuple[str, Path, str]]) -> str:
    """One row per render of one piece: its name, a player and its spectrogram, the
    spectrograms on one time axis (the longest clip's) so that they line up."""
    clips = [(label, media.clip(source, stem), stem) for label, source, stem in sources]
    longest = max((len(c[1]) / c[2] for _, c, _ in clips if c), default=0.0)
    rows = []
    for label, clip, stem in clips:
        if clip is None:
            rows.append([escape(label), escape("missing"), ""])
            continue
        src, audio, rate = clip
        strip = media.spectrogram(audio, rate, longest, stem)
        rows.append(
            [escape(label), audio_player(src), image(strip, f"{label}: spectrogram", "strip")]
        )
    return table(["render", "listen", f"spectrogram, first {longest:.3g} s"], rows)
