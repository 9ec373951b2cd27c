"""dvc.yaml's code deps: each stage lists exactly the project code it runs.

DVC reruns a stage only when a dep changes, so a module a stage imports but does not
list is a change DVC misses (a stale output), and a module it lists but does not import
is a change that reruns it for nothing (hours of training, on the GPU stages). The code a
stage runs is what :mod:`tools.code_deps` finds: its module's import closure, what
importing it loads (discovery), and for one vocoder family's stage that family's model.
``python -m tools.code_deps --write`` puts the lists in dvc.yaml.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT
from tools.code_deps import (
    Stage,
    compressed,
    covers,
    dvc_stages,
    expected_deps,
    folder_files,
    is_code,
    rewritten,
    stage_uses,
    written_deps,
)

STAGES = dvc_stages(REPO_ROOT)


@pytest.fixture(scope="module")
def uses(repo_root) -> dict[str, set[str]]:
    """For each stage, the project files it runs (one interpreter imports them all)."""
    return stage_uses(repo_root, STAGES)


def siblings(stage: Stage) -> list[Stage]:
    """The stages written by the same dvc.yaml entry (``train_vocoder@*``)."""
    return [other for other in STAGES if other.template == stage.template]


@pytest.mark.parametrize("stage", STAGES, ids=[stage.name for stage in STAGES])
def test_every_imported_file_is_a_dep(stage: Stage, uses) -> None:
    """A change to code a stage runs must rerun it: every file it uses is a dep."""
    misses = [
        f"{stage.name}: imports {file}, which dvc.yaml does not list in its deps"
        for file in sorted(uses[stage.name])
        if not any(covers(dep, file) for dep in stage.deps)
    ]
    assert not misses, "\n".join(misses)


@pytest.mark.parametrize("stage", STAGES, ids=[stage.name for stage in STAGES])
def test_no_code_dep_lists_code_the_stage_does_not_import(stage: Stage, repo_root, uses) -> None:
    """A change to code a stage does not run must not rerun it: every code dep is used,
    and a folder only where the stage uses every file in it. One entry of a ``foreach``
    over the vocoder families lists the same shared code for every family: a shared file
    counts as used when some family of the entry runs it (the discriminators, which the
    GAN and DDSP train against)."""
    used = set().union(*(uses[other.name] for other in siblings(stage)))
    own = uses[stage.name]
    padding = []
    for dep in filter(is_code, stage.deps):
        if not (repo_root / dep).is_dir():
            if dep not in used:
                padding.append(f"{stage.name}: lists {dep}, which it does not import")
            continue
        unused = sorted(folder_files(repo_root, dep) - own)
        padding += [
            f"{stage.name}: lists the folder {dep}, but does not use {file} in it"
            for file in unused
        ]
    assert not padding, "\n".join(padding)


def test_dvc_yaml_lists_what_tools_code_deps_finds(repo_root, uses) -> None:
    """Each entry's code deps are exactly the computed ones: a folder wherever a stage
    uses every file of it, and a family's own folder as ``${item}``."""
    written = written_deps((repo_root / "dvc.yaml").read_text(encoding="utf-8"))
    expected = expected_deps(repo_root, STAGES, uses)
    stale = [
        f"{name}: add {sorted(set(want) - set(written.get(name, [])))}, "
        f"remove {sorted(set(written.get(name, [])) - set(want))}"
        for name, want in expected.items()
        if written.get(name) != want
    ]
    assert not stale, "run `python -m tools.code_deps --write`:\n" + "\n".join(stale)


def test_a_family_stage_runs_its_own_family_and_no_other(uses) -> None:
    """The registry imports a family's model only when asked for it: ``train_vocoder@gan``
    runs the GAN's model and not the WaveNet's, while the hierarchy's tiers, whose
    decoders are WaveNets, run the WaveNet's and no vocoder family's other code."""
    gan, wavenet = uses["train_vocoder@gan"], uses["train_vocoder@wavenet"]
    models = "wavegen_core/models/vocoders/{}/model.py"
    assert models.format("gan") in gan and models.format("wavenet") not in gan
    assert models.format("wavenet") in wavenet and models.format("gan") not in wavenet
    assert "wavegen_core/models/vocoders/adversarial.py" not in wavenet
    tier = uses["train_vqvae@1"]
    assert models.format("wavenet") in tier
    assert not {models.format(family) for family in ("flow", "gan", "ddsp")} & tier


def test_folders_replace_their_files_only_when_all_are_used(tmp_path: Path) -> None:
    for name in ("pkg/__init__.py", "pkg/a.py", "pkg/sub/__init__.py", "pkg/sub/b.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("")
    everything = {"pkg/__init__.py", "pkg/a.py", "pkg/sub/__init__.py", "pkg/sub/b.py"}
    assert compressed(tmp_path, everything) == ["pkg"]
    assert compressed(tmp_path, everything - {"pkg/a.py"}) == ["pkg/__init__.py", "pkg/sub"]
    (tmp_path / "pkg/sub/data.yaml").write_text("")  # a folder dep would hash it too
    assert compressed(tmp_path, everything - {"pkg/a.py"}) == [
        "pkg/__init__.py",
        "pkg/sub/__init__.py",
        "pkg/sub/b.py",
    ]


def test_rewriting_replaces_code_deps_only() -> None:
    text = (
        "stages:\n"
        "  train:\n"
        "    cmd: python -m stages.train\n"
        "    deps:\n"
        "      - stages/train.py\n"
        "      # the corpus\n"
        "      - wavegen_core/old.py\n"
        "      - data/prepared\n"
        "    params:\n"
        "      - seed\n"
    )
    result = rewritten(text, {"train": ["stages/train.py", "wavegen_core/audio"]})
    assert result == text.replace("      - wavegen_core/old.py\n", "").replace(
        "      - stages/train.py\n", "      - stages/train.py\n      - wavegen_core/audio\n"
    )
    assert written_deps(result) == {"train": ["stages/train.py", "wavegen_core/audio"]}
