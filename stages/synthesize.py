"""Stage `synthesize@<family>`: MIDI to audio with a trained vocoder, scored against the truth.

`python -m stages.synthesize FAMILY --corpus DIR --composed DIR --checkpoint FILE
--transcriber FILE --out DIR --reports DIR` renders (a) the test split's MIDI, to
compare with its true audio, and (b) the Music Transformer's composed MIDI from
`compose`, the last link of the Wave2Midi2Wave chain, on the top-level `device`. Each
piece is cut to `vocoder.synthesize.max_seconds`. The FluidSynth render of the same
MIDI with the data stage's soundfont (what a user has without any vocoder) is always
scored beside it, and, for scale, a plain sine render of the MIDI (six harmonics with a
decay: what knowing the pitches alone gives) and white noise as loud as the FluidSynth
render (what knowing nothing gives: the floor). Writes under `--out`: `test/` and
`composed/` with `<id>.wav` and a spectrogram-over-piano-roll `<id>.png`, `soundfont/`
and `sine/` with the reference renders, and `manifest.json`; scores go to
`metrics.json` and `speed.json` under `--reports`:

* `test.<family>`, `test.soundfont`, `test.sine`, `test.noise`: multi-resolution STFT distance,
  log-mel L1 and transcription consistency against the true audio and its MIDI: the
  onset F1 of our trained transcriber (`onset_f1`) and, with
  `vocoder.synthesize.judge` on and basic-pitch installed, of basic-pitch, a judge
  that learnt neither our corpus nor our soundfont (`judge_onset_f1`);
  `test.true_audio` holds both transcribers' ceilings;
* `composed.<family>`, `composed.soundfont`, `composed.sine`, `composed.noise`:
  transcription consistency;
* in `speed.json` (it varies from run to run, unlike everything else here):
  `real_time_factor`, seconds of audio generated per wall-clock second, for the family
  (on the stage's device) and for FluidSynth.

With the bundled chorales the true audio is the same soundfont's render of the same
notes (the MIDI file rounds their times to its ticks, about 2 ms), so there the
reference is close to perfect: the ceiling the vocoders aim at. With real recordings
(MAESTRO, a folder corpus) it is the baseline they must beat.
"""

from __future__ import annotations

import argparse
import sys

from stages._common import run_family_stage
from stages._synthesize import PATHS, load_for_synthesis, score_and_write
from wavegen_core.params import Params


def synthesize(params: Params, args: argparse.Namespace) -> None:
    loaded = load_for_synthesis(params, args, f"synthesize@{args.family}")
    score_and_write(params, args, loaded, args.family, [job.roll for job in loaded.jobs])


def main(argv: list[str] | None = None) -> int:
    return run_family_stage("synthesize", PATHS, synthesize, argv)


if __name__ == "__main__":
    sys.exit(main())
