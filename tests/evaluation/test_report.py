"""The evaluation summary and page on upstream outputs laid out as the stages write them."""

from __future__ import annotations

import json
import math

from tests.conftest import need_chromium
from tests.report_fixtures import broken_links, check_in_browser, tiny_params, upstream_outputs
from tools.browser import screenshot
from wavegen_core.evaluation.report.page import what_it_shows, write_page
from wavegen_core.evaluation.report.provenance import params_against_profiles
from wavegen_core.evaluation.report.summary import summarize, write_summary
from wavegen_core.models.vocoders.registry import vocoder_families
from wavegen_core.profiles import params_under_profile


def _leaves(tree, prefix=""):
    if isinstance(tree, dict):
        for key, value in tree.items():
            yield from _leaves(value, f"{prefix}{key}.")
    else:
        yield prefix.rstrip("."), tree


def test_the_summary_holds_each_areas_figures_under_stable_keys(tmp_path) -> None:
    inputs = upstream_outputs(tmp_path, ["flow", "ddsp"], ["1", "2"])
    params = tiny_params(["flow", "ddsp"])

    summary = write_summary(inputs, params, tmp_path / "summary.json")

    assert json.loads((tmp_path / "summary.json").read_text()) == summary
    flat = dict(_leaves(summary))
    assert all(isinstance(v, float) and math.isfinite(v) for v in flat.values())
    assert flat["transcription.unseen_music.ours.onset_f1"] == 0.9
    assert flat["transcription.test.basic_pitch.onset_f1"] == 0.85
    assert flat["symbolic.test_nll"] == 3.2
    assert flat["symbolic.unconditional.test_note_density"] == 5.0
    assert flat["symbolic.unconditional.pitch_class_distance"] == 0.3
    # A NaN upstream (an empty histogram) is left out, not written as NaN.
    assert "symbolic.continuations.ioi_distance" not in flat
    assert list(summary["vocoder"]) == ["flow", "ddsp", "fluidsynth"]
    assert flat["vocoder.ddsp.judge_f1"] == 0.5 and flat["vocoder.ddsp.rtf"] == 3.0
    assert flat["vocoder.fluidsynth.judge_f1"] == 0.97
    assert flat["tiers.2.bitrate"] == 500.0 and flat["tiers.1.mel_l1"] == 3.0
    assert flat["prior.nll"] == 2.5


def test_the_page_links_only_files_it_wrote_and_bounds_its_audio(tmp_path) -> None:
    inputs = upstream_outputs(tmp_path, ["flow", "ddsp"], ["1", "2"])
    params = tiny_params(["flow", "ddsp"])
    params = params.model_copy(
        update={"report": params.report.model_copy(update={"clip_seconds": 1.5})}
    )

    page = write_page(inputs, params, tmp_path / "reports/evaluate")

    text = page.read_text()
    assert broken_links(page) == []
    for section in ("transcription", "symbolic", "vocoders", "hierarchy", "training", "run"):
        assert f'<section id="{section}">' in text
    # True audio, FluidSynth and both families for the test piece; the composed piece by
    # the family the judge rates best (ddsp) and by FluidSynth.
    for name in ("true_audio", "FluidSynth", "flow", "ddsp"):
        assert f"media/vocoder-bwv1-{name}.ogg" in text
    assert "media/composed-unconditional_000-ddsp.ogg" in text
    import soundfile as sf

    clips = sorted((page.parent / "media").glob("*.ogg"))
    assert clips and all(sf.info(str(clip)).duration <= 1.5 + 1e-3 for clip in clips)
    # The best family of each column is marked: ddsp's judge F1 and MR-STFT.
    assert "<td><b>0.500</b></td>" in text
    assert "Params: the <b>tiny</b> profile" in text or "differ from the <b>tiny</b>" in text


def test_a_family_left_out_and_missing_stages_leave_notes_not_a_crash(tmp_path) -> None:
    inputs = upstream_outputs(tmp_path, ["flow"], ["1"])
    # gan is listed but was never synthesized; tier 2 has no codes.
    params = tiny_params(["flow", "gan"])

    page = write_page(inputs, params, tmp_path / "out")
    text = page.read_text()
    assert "No synthesis scores for gan" in text
    assert "media/vocoder-bwv1-flow.ogg" in text and "vocoder-bwv1-gan" not in text
    assert "gan" not in summarize(inputs, params)["vocoder"]

    nothing = upstream_outputs(tmp_path / "other", [], [])
    for path in (nothing.transcription, nothing.composition, nothing.encodings):
        for child in path.rglob("*.json"):
            child.unlink()
    empty = write_page(nothing, tiny_params([]), tmp_path / "empty").read_text()
    assert "Left out: no transcription scores" in empty
    assert "Left out: no composition scores" in empty
    assert "Left out: no vocoder family has been synthesized" in empty
    assert "Left out: no tier has been encoded" in empty
    assert broken_links(tmp_path / "empty/index.html") == []


def test_the_page_first_names_its_profile_and_calls_the_tiny_one_a_smoke_test(tmp_path) -> None:
    inputs = upstream_outputs(tmp_path, ["flow"], ["1"])
    text = write_page(inputs, tiny_params(["flow"]), tmp_path / "out").read_text()
    head = text[text.index("<h1>") : text.index("<nav>")]
    assert "Profile: <b>tiny</b>, with 1 param changed" in head
    assert "smoke test of the pipeline" in head and "BENCHMARKS.md" in head
    cpu = "\n".join(what_it_shows(params_under_profile("cpu")))
    assert "Profile: <b>cpu</b>.</p>" in cpu and "smoke test" not in cpu


def test_the_run_section_names_the_params_that_differ_from_the_nearest_profile() -> None:
    params = tiny_params(["flow"])
    profile, differs = params_against_profiles(params)
    assert profile == "tiny"
    assert differs == {"vocoder.families": (["flow"], vocoder_families())}


def test_flac_clips_when_asked(tmp_path) -> None:
    inputs = upstream_outputs(tmp_path, ["flow"], ["1"])
    params = tiny_params(["flow"])
    params = params.model_copy(
        update={"report": params.report.model_copy(update={"audio_format": "flac"})}
    )
    page = write_page(inputs, params, tmp_path / "out")
    assert list((page.parent / "media").glob("*.flac")) and not list(
        (page.parent / "media").glob("*.ogg")
    )


def test_the_same_outputs_give_the_same_page_byte_for_byte(tmp_path) -> None:
    inputs = upstream_outputs(tmp_path, ["flow"], ["1"])
    params = tiny_params(["flow"])
    first = write_page(inputs, params, tmp_path / "a")
    second = write_page(inputs, params, tmp_path / "b")
    assert first.read_bytes() == second.read_bytes()
    media = sorted(p.name for p in (first.parent / "media").iterdir())
    assert media == sorted(p.name for p in (second.parent / "media").iterdir())
    for name in media:  # Ogg's stream serial is fixed, so the clips hash alike
        assert (first.parent / "media" / name).read_bytes() == (
            second.parent / "media" / name
        ).read_bytes(), name


def test_every_clip_plays_and_every_picture_loads_in_chromium(tmp_path) -> None:
    need_chromium()
    inputs = upstream_outputs(tmp_path, ["flow", "ddsp"], ["1", "2"])
    page = write_page(inputs, tiny_params(["flow", "ddsp"]), tmp_path / "reports/evaluate")

    found = check_in_browser(page)

    # The test piece (true audio, FluidSynth, two families), the composed piece (the
    # best family, FluidSynth), the reconstructions (original, two tiers), one sample.
    assert len(found["audio"]) == 4 + 2 + 3 + 1
    assert all(a["error"] is None and a["duration"] > 0 for a in found["audio"]), found
    assert len(found["images"]) >= 10 and all(i["loaded"] for i in found["images"]), found
    screenshot(page, tmp_path / "page.png")
    assert (tmp_path / "page.png").stat().st_size > 10_000
