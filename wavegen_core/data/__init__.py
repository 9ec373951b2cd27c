"""Corpora: discovery of sources, preparation into aligned audio + MIDI, the manifest."""

from wavegen_core.data.manifest import Piece, read_manifest, write_manifest
from wavegen_core.data.prepare import NothingUsable, PrepareResult, prepare_corpus, summarize
from wavegen_core.data.sources import SourceError, SourceItem, discover

__all__ = [
    "NothingUsable",
    "Piece",
    "PrepareResult",
    "SourceError",
    "SourceItem",
    "discover",
    "prepare_corpus",
    "read_manifest",
    "summarize",
    "write_manifest",
]
