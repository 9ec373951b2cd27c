"""The real `dvc` on a temporary copy of the repo: repro, no-op repro, param change, push/pull."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pretty_midi
import pytest
import soundfile as sf
import yaml

from tests.conftest import TinyRun, chromium_here, dvc_status, run
from tests.report_fixtures import broken_links, check_in_browser
from tools.workspace import set_params
from wavegen_core.models.vocoders.registry import vocoder_families

pytestmark = pytest.mark.slow


def test_repro_is_cached_reruns_on_param_change_and_round_trips_the_remote(
    tiny_run: TinyRun, venv_env
) -> None:
    repo = tiny_run.repo  # after its first `dvc repro`; this test is the one that changes it
    env = {**venv_env, "PYTHONPATH": str(repo)}
    assert "Running stage 'prepare_data'" in tiny_run.stdout
    manifest = repo / "data/prepared/manifest.json"
    pieces = json.loads(manifest.read_text())["pieces"]
    assert len(pieces) == 3
    shown = json.loads(run(["dvc", "metrics", "show", "--json"], repo, env).stdout)
    assert shown[""]["data"]["reports/prepare_data/metrics.json"]["data"]["pieces"] == 3
    # The transcriber is scored on the four sets: the dev set, the test split, the test
    # split on the reserved piano, and the unseen music on it, ours with every measure.
    # Four steps hear nothing: that training makes it hear is tests/stages' check.
    evaluated = shown[""]["data"]["reports/evaluate_transcriber/metrics.json"]["data"]
    assert list(evaluated) == ["dev", "test", "reserved_piano", "unseen_music"]
    for name, scores in evaluated.items():
        assert scores["pieces"] >= 1, name
        assert 0.0 <= scores["model"]["onset_f1"] <= 1.0 and "frame_f1" in scores["model"]
    variants = shown[""]["data"]["reports/render_variants/metrics.json"]["data"]
    assert variants["by_source"] == {"etude": 2, "rendering": 1}
    # The whole chain down to composed MIDI that pretty_midi reads back.
    composed = json.loads((repo / "data/composed/manifest.json").read_text())["pieces"]
    assert composed and all(record["notes"] > 0 for record in composed)
    for record in composed:
        midi = pretty_midi.PrettyMIDI(str(repo / "data/composed" / record["midi"]))
        assert len(midi.instruments[0].notes) == record["notes"]
    # The last node: one summary of every area (no vocoder family yet) and the page.
    assert "evaluate" in _ran(tiny_run.stdout)
    summary = _check_summary(shown[""]["data"]["reports/evaluate/summary.json"]["data"])
    assert {"transcription", "symbolic", "tiers", "prior"} <= set(summary)
    assert "vocoder" not in summary
    page = (repo / "reports/evaluate/index.html").read_text()
    assert "Left out: no vocoder family has been synthesized" in page

    stamp = manifest.stat().st_mtime_ns
    second = run(["dvc", "repro"], repo, env)
    assert "Running stage" not in second.stdout
    assert "didn't change, skipping" in second.stdout
    assert manifest.stat().st_mtime_ns == stamp

    # The transcriber's variants are its alone: changing them makes render_variants
    # stale (and, through its output, the transcriber's chain), not prepare_data, the
    # evaluation sets nor the tiers (put back unrun).
    # (evaluate reads the whole params file: its page lists what differs from a profile.)
    set_params(repo, "data", **{"variants.renderings": 2})
    stale = set(dvc_status(repo))
    assert stale == {"render_variants", "evaluate"}, stale
    set_params(repo, "data", **{"variants.renderings": 1})

    # An inference param reruns exactly the stages that transcribe, nothing upstream;
    # the symbolic model downstream reruns only if the transcriptions changed. Audio
    # goes in the same run: each family in vocoder.families gets its two stages (the
    # copy lists none); the flow, DDSP and the GAN, the cheapest to train, run here
    # (tests/stages trains all).
    lock_before = (repo / "dvc.lock").read_text()
    set_params(repo, "transcription", overlap_seconds=1.0)
    stale = set(dvc_status(repo))
    assert "transcribe" in stale and "prepare_data" not in stale, stale
    set_params(repo, "vocoder", families=vocoder_families())
    stages = run(["dvc", "stage", "list"], repo, env).stdout
    for family in vocoder_families():
        assert f"train_vocoder@{family}" in stages and f"synthesize@{family}" in stages
    # The flow also conditioned on log-mel frames, rendered through DDSP's mels.
    trained = ["flow", "ddsp", "gan"]
    set_params(repo, "vocoder", families=trained, **{"mel.families": ["flow"]})
    third = run(["dvc", "repro"], repo, env)
    assert _ran(third.stdout) - {"train_music_transformer", "compose"} == {
        "transcribe",
        "evaluate_transcriber",
        *(f"{stage}@{family}" for family in trained for stage in ("train_vocoder", "synthesize")),
        "train_vocoder_mel@flow",
        "synthesize_mel@flow",
        "evaluate",
    }
    assert (repo / "dvc.lock").read_text() != lock_before
    _check_synthesized(repo, "flow")
    # DDSP sounds only where the MIDI has notes: the test piece's (a chorale's first
    # quarter second), not necessarily a 4-step Music Transformer's; a 4-step GAN need not.
    _check_synthesized(repo, "ddsp", sounding=("test",))
    _check_synthesized(repo, "gan", sounding=())
    _check_synthesized(repo, "flow_mel")
    _check_report(repo, env, [*trained, "flow_mel"])
    assert (
        "flow_true_mel"
        in json.loads((repo / "reports/evaluate/summary.json").read_text())["vocoder"]
    )
    _check_one_familys_code_reruns_that_family_alone(repo, env)
    set_params(repo, "vocoder", families=["flow"], **{"mel.families": []})
    # Sampling params rerun what samples, not what trains: compose and the rendering of
    # what it composed (whose own temperature changed too), not train_vocoder@flow.
    # DVC's status says so; the params are put back, so no run is spent on it.
    params = yaml.safe_load((repo / "params.yaml").read_text())
    composing = params["music_transformer"]["compose"]["temperature"]
    rendering = params["vocoder"]["synthesize"]["temperature"]["flow"]
    set_params(repo, "music_transformer", **{"compose.temperature": composing * 0.9})
    set_params(repo, "vocoder", **{"synthesize.temperature.flow": rendering * 0.9})
    stale = set(dvc_status(repo))
    assert stale == {"compose", "synthesize@flow", "evaluate"}, stale
    set_params(repo, "music_transformer", **{"compose.temperature": composing})
    set_params(repo, "vocoder", **{"synthesize.temperature.flow": rendering})

    # Families dropped from the list: evaluate reruns without them once their outputs are
    # gone from the workspace (evaluate reads the families' folders whole).
    for dropped in ("ddsp", "gan", "flow_mel"):
        _remove_family_outputs(repo, dropped)
    assert _ran(run(["dvc", "repro"], repo, env).stdout) == {"evaluate"}
    summary = json.loads((repo / "reports/evaluate/summary.json").read_text())
    assert not {"ddsp", "gan", "flow_mel", "flow_true_mel"} & set(summary["vocoder"])

    # Share through the default remote (a directory beside the checkout) and pull
    # into a fresh clone.
    run(["git", "add", "-A"], repo, env)
    run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "run"], repo, env)
    run(["dvc", "push"], repo, env)
    assert (repo.parent / "wavegen-dvc-remote").is_dir()
    clone = repo.parent / "clone"
    run(["git", "clone", "-q", str(repo), str(clone)], repo.parent, env)
    run(["dvc", "pull"], clone, {**env, "PYTHONPATH": str(clone)})
    assert (clone / "data/prepared/manifest.json").read_text() == manifest.read_text()
    assert "up to date" in run(["dvc", "status"], clone, env).stdout
    _check_experiments(repo, env)
    _check_hierarchy(repo, env, tiny_run.stdout)


def _check_experiments(repo: Path, env: dict[str, str]) -> None:
    """Two real experiments from the committed run, one line each in `wavegen exps`:
    the figures asked for and the one param that differs, not the hundreds of columns
    of `dvc exp show`."""
    for name, temperature in (("cool", 0.3), ("warm", 0.9)):
        setting = f"vocoder.synthesize.temperature.flow={temperature}"
        ran = run(["dvc", "exp", "run", "-n", name, "-S", setting, "evaluate"], repo, env)
        assert _ran(ran.stdout) == {"synthesize@flow", "evaluate"}
    metrics = ["--metric", "vocoder.flow.mr_stft", "--metric", "symbolic.test_nll"]
    lines = run(["wavegen", "exps", *metrics], repo, env).stdout.splitlines()
    assert lines[0].split() == [
        "experiment", "voc.flow.mr_stft", "sym.test_nll", "vocoder.synthesize.temperature.flow"
    ]  # fmt: skip
    rows = [re.split(r"\s{2,}", line.strip()) for line in lines[1:]]
    cells = {row[0]: row[1:] for row in rows}
    assert [row[0] for row in rows[:1] + rows[2:]] == ["workspace", "warm", "cool"], rows
    baseline_stft, baseline_nll, baseline_temperature = rows[1][1:]  # "master (abc1234)"
    assert baseline_temperature == "0.6" and rows[1][0].endswith(")")
    assert cells["cool"][1:] == [baseline_nll, "0.3"] and cells["warm"][1:] == [baseline_nll, "0.9"]
    assert len({cells["cool"][0], cells["warm"][0], baseline_stft}) == 3  # rendered anew


def _check_one_familys_code_reruns_that_family_alone(repo: Path, env: dict[str, str]) -> None:
    """With the GAN trained beside the flow and DDSP, a change to the GAN's model module
    makes its two stages stale, and nothing else: not DDSP's, which trains against the
    same discriminators (``vocoders/adversarial.py``), nor anything upstream. (DVC lists
    what reads their outputs, ``evaluate``, once they have run and changed them.)"""
    model = repo / "wavegen_core/models/vocoders/gan/model.py"
    model.write_text(model.read_text() + "\n# A change to the GAN's model code.\n")
    stale = set(dvc_status(repo))
    assert stale == {"train_vocoder@gan", "synthesize@gan"}, stale


HIERARCHY = ("train_vqvae@1", "encode@1", "train_vqvae@2", "encode@2", "train_prior")


def _ran(stdout: str) -> set[str]:
    return {line.split("'")[1] for line in stdout.splitlines() if "Running stage" in line}


def _outs_of(repo: Path, stage: str) -> dict[str, str]:
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"][stage]
    return {out["path"]: out["md5"] for out in lock["outs"]}


def _check_hierarchy(repo: Path, env: dict[str, str], first_run: str) -> None:
    """The first run trained tier 1, encoded, trained tier 2 and the prior, and sampled;
    a tier-2 param then makes tier 2 stale and not tier 1, and rerunning tier 2 leaves
    tier 1's outputs as they were."""
    assert set(HIERARCHY) | {"sample_hierarchy"} <= _ran(first_run)
    params = yaml.safe_load((repo / "params.yaml").read_text())["vqvae"]
    top_hop = params["tiers"]["1"]["hop"] * params["tiers"]["2"]["hop"]
    (sample,) = (repo / "data/hierarchy/samples").glob("*.wav")
    audio, rate = sf.read(sample, dtype="float32")
    assert len(audio) == -(-round(0.25 * rate) // top_hop) * top_hop
    assert sample.with_suffix(".png").is_file()
    metrics = json.loads((repo / "reports/sample_hierarchy/metrics.json").read_text())
    assert set(metrics) >= {"tier_1", "tier_2"}
    usage = json.loads((repo / "reports/encode/2/metrics.json").read_text())["test"]["usage"]
    assert 0 < usage <= 1

    tier_one = {**_outs_of(repo, "train_vqvae@1"), **_outs_of(repo, "encode@1")}
    set_params(repo, "vqvae", **{"tiers.2.codebook_size": 32})
    status = dvc_status(repo)
    assert "train_vqvae@2" in status
    assert not {"train_vqvae@1", "encode@1", "prepare_data"} & set(status), status
    rerun = run(["dvc", "repro", "train_vqvae@2"], repo, env)
    assert _ran(rerun.stdout) == {"train_vqvae@2"}
    assert {**_outs_of(repo, "train_vqvae@1"), **_outs_of(repo, "encode@1")} == tier_one


def _remove_family_outputs(repo: Path, family: str) -> None:
    """What a family's stages wrote, but the folders' tracked .gitignore files."""
    for folder in ("reports/train_vocoder", "reports/synthesize"):
        for path in (repo / folder / family).glob("*"):
            if path.name != ".gitignore":
                shutil.rmtree(path) if path.is_dir() else path.unlink()
    shutil.rmtree(repo / "data/synthesized" / family)
    (repo / "models/vocoder" / family / "checkpoint.pt").unlink()


def _leaves(tree: dict, prefix: str = "") -> dict[str, object]:
    flat: dict[str, object] = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            flat.update(_leaves(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def _check_summary(summary: dict) -> dict:
    """Every key of summary.json holds a finite number."""
    for key, value in _leaves(summary).items():
        assert isinstance(value, float) and np.isfinite(value), (key, value)
    return summary


def _check_report(repo: Path, env: dict[str, str], families: list[str]) -> None:
    """The summary holds each family's figures; the page plays every clip and shows
    every picture in a real browser, with no broken link; `dvc plots show` renders
    the top-level plots."""
    summary = _check_summary(json.loads((repo / "reports/evaluate/summary.json").read_text()))
    for family in families:
        assert {"ours_f1", "mr_stft", "mel_l1", "rtf"} <= set(summary["vocoder"][family])
    assert "fluidsynth" in summary["vocoder"]
    page = repo / "reports/evaluate/index.html"
    assert broken_links(page) == []
    if chromium_here():
        found = check_in_browser(page)
        assert len(found["audio"]) >= 2 * (len(families) + 2)
        assert all(a["error"] is None and a["duration"] > 0 for a in found["audio"]), found
        assert found["images"] and all(i["loaded"] for i in found["images"]), found
    # `wavegen report` rebuilds both from the outputs on disk: the same bytes, so DVC
    # still finds the stage up to date.
    before = page.read_bytes(), (repo / "reports/evaluate/summary.json").read_bytes()
    rebuilt = run(["wavegen", "report"], repo, env).stdout.strip().splitlines()[-1]
    assert Path(rebuilt) == page.resolve()
    assert (page.read_bytes(), (repo / "reports/evaluate/summary.json").read_bytes()) == before
    assert "evaluate" not in dvc_status(repo)
    plots = run(["dvc", "plots", "show", "--json"], repo, env)
    shown = json.loads(plots.stdout)
    for name in ("vocoder_training_loss", "vocoder_validation_mel_l1", "tier_training_loss"):
        assert shown["data"][name], name


def _check_synthesized(
    repo: Path, family: str, sounding: tuple[str, ...] = ("test", "composed")
) -> None:
    """WAVs of each composed piece's length (to whole frames, at most max_seconds), not
    silent for the kinds of piece in ``sounding``."""
    params = yaml.safe_load((repo / "params.yaml").read_text())
    hop = params["vocoder"]["conditioning"]["hop_length"]
    limit = params["vocoder"]["synthesize"]["max_seconds"]
    tail = params["data"]["render"]["release_tail"]
    composed = json.loads((repo / "data/composed/manifest.json").read_text())["pieces"]
    midi_of = {record["id"]: repo / "data/composed" / record["midi"] for record in composed}
    out = repo / "data/synthesized" / family
    pieces = [p for p in json.loads((out / "manifest.json").read_text())["pieces"]]
    assert [p["id"] for p in pieces if p["kind"] == "composed"] == [composed[0]["id"]]
    for piece in pieces:
        audio, rate = sf.read(out / piece["audio"], dtype="float32")
        if piece["kind"] in sounding:
            rms = float(np.sqrt(np.mean(audio**2)))
            assert rms > 1e-3, f"{family}: {piece['id']} is silent"
        if piece["kind"] == "composed":
            end = pretty_midi.PrettyMIDI(str(midi_of[piece["id"]])).get_end_time()
            samples = max(round(min(end + tail, limit) * rate), hop)
            assert len(audio) == -(-samples // hop) * hop
    metrics = json.loads((repo / "reports/synthesize" / family / "metrics.json").read_text())
    assert "soundfont" in metrics["composed"]
    speed = json.loads((repo / "reports/synthesize" / family / "speed.json").read_text())
    assert speed["real_time_factor"][family] > 0
