"""A killed vocoder training resumes to the run it would have been, for every family."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from stages import train_vocoder
from tests.conftest import stage_argv
from tests.stages.vocoder_corpus import write_vocoder_corpus, write_vocoder_params
from wavegen_core.models.vocoders.registry import vocoder_families

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def workdir(tmp_path_factory) -> Path:
    return write_vocoder_corpus(tmp_path_factory.mktemp("vocoders"))


@pytest.mark.parametrize("family", vocoder_families())
def test_a_resumed_run_ends_where_an_uninterrupted_one_does_byte_for_byte(
    workdir, tmp_path, family
) -> None:
    """Every family, the adversarial one too (two networks, each with its optimiser and
    schedule, stepped in turn; weight-norm parametrizations): the same weights, and the
    same checkpoint bytes, so DVC gives both runs one hash."""
    import shutil

    import torch

    from wavegen_core.checkpoint import load_checkpoint

    states, files = {}, {}
    for name, stops in (("straight", [4]), ("resumed", [2, 4])):
        run_dir = tmp_path / name
        shutil.copytree(workdir / "data", run_dir / "data")
        for steps in stops:
            write_vocoder_params(run_dir)
            params = yaml.safe_load((run_dir / "params.yaml").read_text())
            params["vocoder"][family]["train"].update(steps=steps, checkpoint_every=2, eval_every=2)
            (run_dir / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
            with pytest.MonkeyPatch.context() as patch:
                patch.chdir(run_dir)
                assert train_vocoder.main(stage_argv(f"train_vocoder@{family}")) == 0
        files[name] = run_dir / f"models/vocoder/{family}/checkpoint.pt"
        checkpoint = load_checkpoint(files[name])
        assert checkpoint["step"] == 4
        states[name] = checkpoint["state"]
    for key, tensor in states["straight"].items():
        assert torch.equal(tensor, states["resumed"][key]), key
    assert files["straight"].read_bytes() == files["resumed"].read_bytes()
