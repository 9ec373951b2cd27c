"""Audio I/O (read, downmix, resample, atomic write) and MIDI rendering."""

from wavegen_core.audio.io import AudioReadError, load_audio, write_wav
from wavegen_core.audio.render import RendererUnavailable, check_renderer, render_midi

__all__ = [
    "AudioReadError",
    "RendererUnavailable",
    "check_renderer",
    "load_audio",
    "render_midi",
    "write_wav",
]
