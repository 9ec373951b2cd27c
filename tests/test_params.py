"""params.yaml validation: the default file validates; bad values exit 2 naming the key."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tests.conftest import run, stage_argv
from wavegen_core import profiles
from wavegen_core.params import Params, ParamsError, load_params


def test_default_params_file_validates(repo_root: Path) -> None:
    params = load_params(repo_root / "params.yaml")
    assert params.audio.sample_rate == 16000
    assert params.data.source == "bach_chorales"


def _write(tmp_path: Path, repo_root: Path, edit) -> Path:
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    edit(raw)
    path = tmp_path / "params.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


BAD_VALUES = [
    # (edit, key path in the message, what is allowed)
    (
        lambda p: p["audio"].update(sample_rate=-16000),
        "audio.sample_rate = -16000",
        "greater than 0",
    ),
    (
        lambda p: p["data"].update(source="mp3_dump"),
        "data.source = 'mp3_dump'",
        "'bach_chorales', 'maestro' or 'folder'",
    ),
    (
        lambda p: p["data"]["render"].update(sondfont="x.sf2"),
        "data.render.sondfont: unknown key",
        "allowed keys here: soundfont, soundfonts, release_tail, peak",
    ),
    (lambda p: p.update(trainer={"steps": 3}), "trainer: unknown key", "allowed keys here: seed"),
    (lambda p: p["data"].update(max_pieces="many"), "data.max_pieces = 'many'", "integer"),
    (lambda p: p.update(device="gpu"), "device = 'gpu'", "'cuda:N'"),
    (
        lambda p: p["data"]["splits"].update(validation=0.5, test=0.5),
        "data.splits",
        "must be below 1",
    ),
    (
        lambda p: p["data"].update(source="folder", root="/no/such/corpus"),
        "data.root='/no/such/corpus'",
        "not a directory",
    ),
    (
        lambda p: p["vocoder"]["gan"].update(resblock_kernel_sizes=[3, 4]),
        "vocoder.gan.resblock_kernel_sizes.1 = 4",
        "must be odd",
    ),
    (
        lambda p: p["vocoder"].update(families=["wavenet", "diffusion"]),
        "vocoder.families = ['wavenet', 'diffusion']: unknown family 'diffusion'",
        "allowed: wavenet, flow, ddsp, gan",
    ),
    (
        lambda p: p["vocoder"]["gan"].update(upsample_rates=[8, 8, 2]),
        "vocoder.gan.upsample_rates = [8, 8, 2]",
        "multiply to 128, but vocoder.conditioning.hop_length is 256",
    ),
    # Cross-field constraints name the keys the user wrote.
    (
        lambda p: p["vocoder"]["flow"].update(groups=7),
        "vocoder.flow.groups = 7",
        "does not divide vocoder.conditioning.hop_length = 256",
    ),
    (
        lambda p: p["audio"].update(sample_rate=12345),
        "audio.sample_rate = 12345",
        "below transcription.model.mel.fmax = 8000 Hz",
    ),
    (
        lambda p: p["vqvae"]["tiers"]["1"].update(segment=1001),
        "vqvae.tiers.1",
        "segment=1001 is not a multiple of hop=8",
    ),
    (
        lambda p: p["music_transformer"]["model"].update(n_heads=5),
        "music_transformer.model",
        "not a multiple of n_heads=5",
    ),
    (
        lambda p: p["data"]["render"]["soundfonts"].append(
            "/usr/share/sounds/sf3/MuseScore_General_Lite.sf3"
        ),
        "data.render.soundfonts.2",
        "reserved for the unseen-piano evaluation",
    ),
    (
        lambda p: p["evaluation"].update(soundfont="/usr/share/sounds/sf2/FluidR3_GM.sf2"),
        "evaluation.soundfont",
        "also a training piano (data.render.soundfonts)",
    ),
    (
        lambda p: p["evaluation"]["unseen_music"].update(pieces=["bach/bwv1.6"]),
        "evaluation.unseen_music.pieces.0",
        "is by Bach",
    ),
    (
        lambda p: p["data"]["variants"].update(tempo=[1.2, 0.8]),
        "data.variants.tempo",
        "the low end comes first",
    ),
    (
        lambda p: p["vocoder"]["mel"].update(families=["ddsp"]),
        "vocoder.mel.families: 'ddsp' cannot be conditioned",
        "allowed: wavenet, flow",
    ),
    (
        lambda p: p["vocoder"].update(families=["wavenet", "flow", "gan"]),
        "vocoder.mel.source = 'ddsp'",
        "one of vocoder.families",
    ),
    (
        lambda p: p["vocoder"]["mel"].update(source="flow"),
        "vocoder.mel.source = 'flow' is also in vocoder.mel.families",
        "cannot draw the mels it is conditioned on",
    ),
    (
        lambda p: p["vocoder"]["mel"].update(n_fft=128),
        "vocoder.mel.n_fft = 128",
        "vocoder.conditioning.hop_length = 256",
    ),
    (
        lambda p: p["vocoder"]["mel"].update(inputs="phase"),
        "vocoder.mel.inputs",
        "'mel' or 'roll_and_mel'",
    ),
]


@pytest.mark.parametrize(("edit", "key", "allowed"), BAD_VALUES)
def test_bad_value_is_refused_with_key_path(tmp_path, repo_root, edit, key, allowed) -> None:
    path = _write(tmp_path, repo_root, edit)
    with pytest.raises(ParamsError) as caught:
        load_params(path)
    message = str(caught.value)
    assert key in message and allowed in message, message


def test_check_params_command_exit_codes(tmp_path, repo_root, venv_env) -> None:
    good = run(["wavegen", "check-params", str(repo_root / "params.yaml")], tmp_path, venv_env)
    assert "valid" in good.stdout
    bad = _write(tmp_path, repo_root, lambda p: p["audio"].update(sample_rate=-1))
    result = run(["wavegen", "check-params", str(bad)], tmp_path, venv_env, check=False)
    assert result.returncode == 2
    assert "audio.sample_rate = -1" in result.stderr


def test_yaml_syntax_error_is_a_params_error(tmp_path) -> None:
    path = tmp_path / "params.yaml"
    path.write_text("audio: {sample_rate: 16000\n")
    with pytest.raises(ParamsError, match="not valid YAML"):
        load_params(path)


def test_stage_refuses_bad_params_before_any_compute(tmp_path, repo_root, venv_env) -> None:
    bad = _write(tmp_path, repo_root, lambda p: p["data"].update(source="nowhere"))
    result = run(
        ["python", "-m", "stages.prepare_data", *stage_argv("prepare_data", "--params", str(bad))],
        tmp_path,
        venv_env,
        check=False,
    )
    assert result.returncode == 2
    assert "data.source = 'nowhere'" in result.stderr
    assert not (tmp_path / "data").exists()


def test_profiles_switch_and_switch_back(tmp_path, repo_root) -> None:
    original = (repo_root / "params.yaml").read_text()
    path = tmp_path / "params.yaml"
    path.write_text(original)
    profiles.apply_profile("full", path)
    assert load_params(path).data.max_pieces is None
    assert "# Global seed" in path.read_text()  # comments survive
    profiles.apply_profile("cpu", path)
    assert load_params(path).data.max_pieces == 200
    assert load_params(path).transcription.model.onset_positive_weight == 10.0
    profiles.apply_profile("tiny", path)
    assert path.read_text() == original  # params.yaml ships as the tiny profile


def test_every_profile_sets_the_same_keys() -> None:
    """Switching from any profile to any other leaves nothing of the first behind."""

    def keys(tree: dict, where: str = "") -> set[str]:
        nested = (
            keys(v, f"{where}{k}.")
            if isinstance(v, dict) and f"{where}{k}" not in profiles.REPLACED_WHOLE
            else {f"{where}{k}"}
            for k, v in tree.items()
        )
        return set().union(*nested)

    key_sets = {name: keys(profiles.overlay(name)) for name in profiles.available()}
    assert len(set(map(frozenset, key_sets.values()))) == 1, key_sets


def test_unknown_profile_names_the_available_ones(tmp_path, repo_root) -> None:
    with pytest.raises(ValueError, match="available: cpu, full, tiny"):
        profiles.apply_profile("huge", repo_root / "params.yaml")


def test_the_mel_front_end_follows_audio_sample_rate() -> None:
    from wavegen_core.params import validate_params

    params = validate_params({"audio": {"sample_rate": 22050}})
    assert params.transcription.model.mel.sample_rate == 22050
    # A key that can hold only one value is no key: setting it names the one to set.
    with pytest.raises(ParamsError, match="mel.sample_rate: not a params key.*audio.sample_rate"):
        validate_params({"transcription": {"model": {"mel": {"sample_rate": 16000}}}})


def test_params_defaults_are_the_tiny_profile(repo_root) -> None:
    """params.yaml ships as the tiny profile, and Params() is the same: each value is
    written once, in the schema, and the file repeats it for the reader."""
    shipped = load_params(repo_root / "params.yaml")
    assert Params().model_dump() == shipped.model_dump()


def test_params_under_a_profile_are_what_switching_params_yaml_to_it_loads(
    tmp_path, repo_root
) -> None:
    """The defaults with the profile laid over them, as `wavegen profile` writes them;
    a key the profile does not set keeps the base's value."""
    path = tmp_path / "params.yaml"
    path.write_text((repo_root / "params.yaml").read_text())
    for name in profiles.available():
        profiles.apply_profile(name, path)
        assert profiles.params_under_profile(name) == load_params(path), name
    assert profiles.params_under_profile("tiny") == Params()
    assert profiles.params_under_profile("full").data.max_pieces is None
    based = profiles.params_under_profile("full", Params(seed=7))
    assert based.seed == 7 and based.data.max_pieces is None
    with pytest.raises(ValueError, match="available: cpu, full, tiny"):
        profiles.params_under_profile("huge")
