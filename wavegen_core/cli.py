"""The ``wavegen`` command."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from wavegen_core.errors import EXIT_BAD_PARAMS, EXIT_FAILED
from wavegen_core.params import PARAMS_FILE, ParamsError, load_params

if TYPE_CHECKING:
    from wavegen_core.midi.rolls import NoteDecodingConfig


def _check_params(args: argparse.Namespace) -> int:
    try:
        load_params(args.file)
    except ParamsError as err:
        print(err, file=sys.stderr)
        return EXIT_BAD_PARAMS
    print(f"{args.file}: valid")
    return 0


def _profile(args: argparse.Namespace) -> int:
    from wavegen_core import profiles

    try:
        profiles.apply_profile(args.name, args.params)
    except ParamsError as err:
        print(err, file=sys.stderr)
        return EXIT_BAD_PARAMS
    except (ValueError, KeyError) as err:
        print(f"wavegen profile: {err}", file=sys.stderr)
        return EXIT_BAD_PARAMS
    print(f"{args.params}: profile {args.name} applied; `dvc repro` reruns what it changes")
    return 0


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _run(args: argparse.Namespace) -> int:
    # The library knows nothing of Prefect; the flow lives in pipelines/.
    from pipelines.flow import pipeline

    outcomes = pipeline(
        targets=args.targets or None,
        overrides=args.set_param or None,
        experiment=args.experiment,
        repo=args.repo,
        share=args.share,
        gpu_slots=args.gpu_slots,
        jobs=args.jobs,
    )
    for outcome in outcomes:
        print(f"{outcome.stage:<32} {outcome.status:<9} {outcome.seconds:8.1f} s")
    return 0


def _exps(args: argparse.Namespace) -> int:
    from wavegen_core.evaluation.experiments import HEADLINE, experiments_of, table

    command = ["dvc", "exp", "show", "--json", *(["--all-commits"] if args.all_commits else [])]
    # This interpreter's `dvc` first, even when the venv is not activated.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    done = subprocess.run(
        command, cwd=args.repo, capture_output=True, text=True, env={**os.environ, "PATH": path}
    )
    if done.returncode != 0:
        print(
            f"wavegen exps: `{' '.join(command)}` failed:\n{done.stderr.strip()}", file=sys.stderr
        )
        return EXIT_FAILED
    print(table(experiments_of(json.loads(done.stdout)), args.metric or HEADLINE))
    return 0


DECODING_FLAGS = ("onset_threshold", "frame_threshold", "min_note_seconds", "restrike_threshold")


def _decoding(args: argparse.Namespace) -> NoteDecodingConfig | None:
    """``transcription.decoding`` of the params file (when there is one), with the flags
    given on the command line over it; None, after saying why, when it is invalid."""
    from pathlib import Path

    from pydantic import ValidationError

    from wavegen_core.midi.rolls import NoteDecodingConfig

    try:
        base = (
            load_params(args.params).transcription.decoding
            if Path(args.params).is_file()
            else NoteDecodingConfig()
        )
        flags = {
            key: getattr(args, key) for key in DECODING_FLAGS if getattr(args, key) is not None
        }
        return NoteDecodingConfig.model_validate({**base.model_dump(), **flags})
    except ParamsError as err:
        print(f"wavegen transcribe: {err}", file=sys.stderr)
    except ValidationError as err:
        problems = "; ".join(
            f"--{'-'.join(map(str, e['loc'])).replace('_', '-')}: {e['msg']}" for e in err.errors()
        )
        print(f"wavegen transcribe: {problems}", file=sys.stderr)
    return None


def _transcribe(args: argparse.Namespace) -> int:
    from pathlib import Path

    from wavegen_core.audio.io import AudioReadError
    from wavegen_core.errors import WavegenError
    from wavegen_core.midi.io import write_midi
    from wavegen_core.models.transcription.transcribers import make_transcriber
    from wavegen_core.progress import progress

    if args.backend == "model" and args.checkpoint is None:
        print("wavegen transcribe: --checkpoint is required with --backend model", file=sys.stderr)
        return EXIT_BAD_PARAMS
    decoding = _decoding(args)
    if decoding is None:
        return EXIT_BAD_PARAMS
    try:
        transcriber = make_transcriber(
            args.backend,
            args.checkpoint,
            decoding=decoding,
            chunk_seconds=args.chunk_seconds,
            overlap_seconds=args.overlap_seconds,
        )
    except WavegenError as err:
        print(f"wavegen transcribe: {err}", file=sys.stderr)
        return EXIT_FAILED
    failed = 0
    for path in progress(args.audio, total=len(args.audio), desc="transcribe", unit="file"):
        try:
            midi = transcriber(path)
        except (AudioReadError, OSError) as err:
            print(f"wavegen transcribe: skipped {path}: {err}", file=sys.stderr)
            failed += 1
            continue
        write_midi(Path(args.out) / f"{Path(path).stem}.mid", midi)
    return EXIT_FAILED if failed else 0


def _compose(args: argparse.Namespace) -> int:
    import torch

    from wavegen_core.midi.events import events_to_midi, performance_notes
    from wavegen_core.midi.io import MidiReadError, load_midi, write_midi
    from wavegen_core.models.symbolic.music_transformer import (
        SPEC,
        SamplingConfig,
        primer_events,
        sample_events,
    )
    from wavegen_core.progress import progress_bar
    from wavegen_core.training.device import choose_device

    try:
        sampling = SamplingConfig(args.temperature, args.top_k, args.top_p)
    except ValueError as err:
        print(f"wavegen compose: {err}", file=sys.stderr)
        return EXIT_BAD_PARAMS
    try:
        model = SPEC.load(args.checkpoint, choose_device(args.device))
    except (OSError, RuntimeError, KeyError) as err:
        print(f"wavegen compose: cannot load {args.checkpoint}: {err}", file=sys.stderr)
        return EXIT_FAILED
    assert model.vocab is not None
    vocab = model.vocab
    primer: list[int] = []
    if args.primer is not None:
        try:
            notes = performance_notes(load_midi(args.primer), sustain=vocab.config.sustain)
        except (MidiReadError, OSError) as err:
            print(f"wavegen compose: primer {args.primer}: {err}", file=sys.stderr)
            return EXIT_FAILED
        primer = primer_events(notes, vocab, args.primer_seconds)
    generator = torch.Generator().manual_seed(args.seed)
    bar = progress_bar(total=args.events or 0, desc="compose", unit="event")
    try:
        events = sample_events(
            model,
            vocab,
            primer=primer,
            max_events=args.events,
            max_seconds=None if args.events else args.seconds,
            sampling=sampling,
            generator=generator,
            progress=bar,
        )
    finally:
        bar.close()
    midi = events_to_midi(events, vocab)
    write_midi(args.out, midi)
    print(f"{args.out}: {len(events)} events, {midi.get_end_time():.1f} s")
    return 0


def _synthesize(args: argparse.Namespace) -> int:
    import torch

    from wavegen_core.audio.io import write_wav
    from wavegen_core.data.pairs import roll_for_midi
    from wavegen_core.midi.io import MidiReadError, load_midi
    from wavegen_core.models.vocoders.conditioning import check_mel_source
    from wavegen_core.models.vocoders.registry import load_vocoder, render_pieces
    from wavegen_core.training.device import choose_device

    if args.temperature is not None and args.temperature < 0:
        print("wavegen synthesize: --temperature must be >= 0", file=sys.stderr)
        return EXIT_BAD_PARAMS
    if args.chunk_frames < 1 or args.context_frames < 0:
        print(
            "wavegen synthesize: --chunk-frames must be >= 1, --context-frames >= 0",
            file=sys.stderr,
        )
        return EXIT_BAD_PARAMS
    try:
        midi = load_midi(args.midi)
    except (MidiReadError, OSError) as err:
        print(f"wavegen synthesize: {args.midi}: {err}", file=sys.stderr)
        return EXIT_FAILED
    device = choose_device(args.device)
    try:
        vocoder = load_vocoder(args.checkpoint, device)
    except (OSError, RuntimeError, KeyError) as err:
        print(f"wavegen synthesize: cannot load {args.checkpoint}: {err}", file=sys.stderr)
        return EXIT_FAILED
    rate = vocoder.sample_rate
    seconds = midi.get_end_time() + args.tail
    if args.seconds is not None:
        seconds = min(seconds, args.seconds)
    roll = roll_for_midi(midi, max(int(round(seconds * rate)), 1), rate, vocoder.hop_length)
    frames = getattr(getattr(vocoder.model, "conditioning", None), "mel_frames", None)
    if frames is not None:
        # A train_vocoder_mel model: the mels come from another family's render.
        if args.mel_source is None:
            print(
                f"wavegen synthesize: {args.checkpoint} is conditioned on log-mel frames: "
                "give --mel-source, the checkpoint of the family that draws them (DDSP's)",
                file=sys.stderr,
            )
            return EXIT_BAD_PARAMS
        try:
            source = load_vocoder(args.mel_source, device)
            check_mel_source(
                source.sample_rate,
                source.hop_length,
                rate,
                vocoder.hop_length,
                f"{source.spec.name} ({args.mel_source})",
                f"{vocoder.spec.name} ({args.checkpoint})",
            )
        except (OSError, RuntimeError, KeyError, ValueError) as err:
            print(f"wavegen synthesize: {err}", file=sys.stderr)
            return EXIT_FAILED
        (drawn,) = render_pieces(
            source.spec,
            source.model,
            [roll],
            chunk_frames=args.chunk_frames,
            context_frames=args.context_frames,
            generator=torch.Generator(device=device).manual_seed(args.seed),
        )
        roll = frames.attach_to_piece(roll, drawn)
    (audio,) = render_pieces(
        vocoder.spec,
        vocoder.model,
        [roll],
        chunk_frames=args.chunk_frames,
        context_frames=args.context_frames,
        generator=torch.Generator(device=device).manual_seed(args.seed),
        temperature=args.temperature,
    )
    write_wav(args.out, audio, rate)
    print(f"{args.out}: {len(audio) / rate:.2f} s at {rate} Hz ({vocoder.spec.name})")
    return 0


REPORT_STAGE = "evaluate"


def _report(args: argparse.Namespace) -> int:
    """Rebuild the evaluation page from what is on disk: the `evaluate` stage's own
    command, read from dvc.yaml (where its paths are written), run outside DVC."""
    import os
    import shlex
    import subprocess
    from pathlib import Path

    from dvc.exceptions import DvcException
    from dvc.repo import Repo

    repo = Path(args.repo).resolve()
    try:
        with Repo(str(repo)) as dvc_repo:
            stage = dvc_repo.stage.collect(REPORT_STAGE)[0]
            command = shlex.split(stage.cmd)
    except DvcException as err:
        print(f"wavegen report: no {REPORT_STAGE} stage in {repo}: {err}", file=sys.stderr)
        return EXIT_FAILED
    if command[:1] == ["python"]:
        command[0] = sys.executable
    command += ["--params", args.params]
    code = subprocess.run(command, cwd=repo, env=os.environ.copy()).returncode
    if code != 0:
        return code
    reports = Path(command[command.index("--reports") + 1])
    print(repo / reports / "index.html")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wavegen", description="Hierarchical music generation in the waveform domain."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    check = commands.add_parser("check-params", help="validate a params file and exit")
    check.add_argument("file", nargs="?", default=PARAMS_FILE)
    check.set_defaults(run=_check_params)

    profile = commands.add_parser(
        "profile",
        help="switch params.yaml to a named profile "
        "(tiny: CPU in minutes; cpu: about an hour on 2 cores; full: the papers' sizes)",
    )
    profile.add_argument("name", help="tiny, cpu or full")
    profile.add_argument("--params", default=PARAMS_FILE)
    profile.set_defaults(run=_profile)

    flow = commands.add_parser(
        "run", help="run the dvc.yaml DAG as a Prefect flow (independent stages at once)"
    )
    flow.add_argument("targets", nargs="*", help="stages to run with their upstream (default all)")
    flow.add_argument(
        "-S",
        "--set-param",
        action="append",
        metavar="KEY=VALUE",
        help="a params override as in `dvc exp run -S`; the run becomes an experiment",
    )
    flow.add_argument("--experiment", help="name of the DVC experiment to record")
    flow.add_argument(
        "--share",
        action="store_true",
        help="pull inputs from / push outputs to the DVC remote around each stage",
    )
    flow.add_argument(
        "--gpu-slots",
        type=_positive_int,
        default=1,
        metavar="N",
        help="how many stages marked `meta: {gpu: true}` may run at once (default 1: one "
        "GPU per worker; on a CPU-only machine they share its cores)",
    )
    flow.add_argument(
        "-j",
        "--jobs",
        type=_positive_int,
        metavar="N",
        help="how many stages may run at once (default: one per core); each gets the "
        "cores divided by the stages running beside it as its threads",
    )
    flow.add_argument("--repo", default=".", help="the DVC project (default: here)")
    flow.set_defaults(run=_run)

    exps = commands.add_parser(
        "exps",
        help="DVC experiments one per line: headline figures and the params that differ",
    )
    exps.add_argument(
        "--metric",
        action="append",
        metavar="GLOB",
        help="a summary key to show, globs allowed (repeatable; default: each area's "
        "headline, e.g. 'transcription.*.ours.onset_f1')",
    )
    exps.add_argument(
        "-A", "--all-commits", action="store_true", help="experiments of every commit"
    )
    exps.add_argument("--repo", default=".", help="the DVC project (default: here)")
    exps.set_defaults(run=_exps)

    report = commands.add_parser(
        "report",
        help="rebuild the evaluation page and summary from the outputs on disk (the "
        "evaluate stage's command, outside DVC) and print the page's path",
    )
    report.add_argument("--repo", default=".", help="the DVC project (default: here)")
    report.add_argument("--params", default=PARAMS_FILE, help="params file, in the project")
    report.set_defaults(run=_report)

    transcribe = commands.add_parser(
        "transcribe", help="transcribe audio files (wav/flac/ogg) to MIDI with a trained model"
    )
    transcribe.add_argument("audio", nargs="+", help="audio files, any sample rate, mono or stereo")
    transcribe.add_argument(
        "--backend",
        choices=["model", "basic_pitch"],
        default="model",
        help="our Onsets and Frames (default) or basic-pitch (the optional extra)",
    )
    transcribe.add_argument("--checkpoint", help="train_transcriber's checkpoint (--backend model)")
    transcribe.add_argument("--out", required=True, help="directory for the .mid files")
    transcribe.add_argument(
        "--params",
        default=PARAMS_FILE,
        help="the note decoding is this file's transcription.decoding (the paper's "
        "thresholds where the file does not exist); the four flags below override it",
    )
    transcribe.add_argument("--onset-threshold", type=float)
    transcribe.add_argument("--frame-threshold", type=float)
    transcribe.add_argument("--min-note-seconds", type=float)
    transcribe.add_argument("--restrike-threshold", type=float)
    transcribe.add_argument(
        "--chunk-seconds",
        type=float,
        default=20.0,
        help="memory is bounded by this, not by the file's length",
    )
    transcribe.add_argument("--overlap-seconds", type=float, default=2.0)
    transcribe.set_defaults(run=_transcribe)

    compose = commands.add_parser(
        "compose", help="sample a new MIDI piece (or continue one) with a trained Music Transformer"
    )
    compose.add_argument("--checkpoint", required=True, help="train_music_transformer's checkpoint")
    compose.add_argument("--primer", help="a MIDI file whose start the piece continues")
    compose.add_argument(
        "--primer-seconds", type=float, default=5.0, help="how much of the primer to keep"
    )
    length = compose.add_mutually_exclusive_group()
    length.add_argument(
        "--seconds", type=float, default=30.0, help="length of the piece, primer included"
    )
    length.add_argument("--events", type=int, help="number of new events (instead of --seconds)")
    compose.add_argument("--out", required=True, help="the .mid file to write")
    compose.add_argument("--temperature", type=float, default=1.0)
    compose.add_argument("--top-k", type=int, default=0, help="0 = no cut")
    compose.add_argument("--top-p", type=float, default=1.0, help="1.0 = no cut")
    compose.add_argument("--seed", type=int, default=0, help="same seed, same piece")
    compose.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    compose.set_defaults(run=_compose)

    synthesize = commands.add_parser(
        "synthesize", help="render a MIDI file to audio with a trained vocoder (any length)"
    )
    synthesize.add_argument(
        "--checkpoint",
        required=True,
        help="a train_vocoder@<family> or train_vocoder_mel@<family> checkpoint",
    )
    synthesize.add_argument("--midi", required=True, help="the MIDI file to render")
    synthesize.add_argument(
        "--mel-source",
        help="for a train_vocoder_mel checkpoint: the checkpoint whose render gives the mels",
    )
    synthesize.add_argument("--out", required=True, help="the .wav file to write")
    synthesize.add_argument(
        "--seconds", type=float, help="render only the first SECONDS (default: the whole piece)"
    )
    synthesize.add_argument(
        "--tail", type=float, default=0.25, help="seconds kept after the last note-off"
    )
    synthesize.add_argument(
        "--temperature", type=float, help="sampling temperature (default: the family's param)"
    )
    synthesize.add_argument(
        "--chunk-frames",
        type=int,
        default=512,
        help="flow/GAN render in chunks of this many frames (memory is bounded by it)",
    )
    synthesize.add_argument("--context-frames", type=int, default=16)
    synthesize.add_argument("--seed", type=int, default=0, help="same seed, same audio")
    synthesize.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    synthesize.set_defaults(run=_synthesize)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
