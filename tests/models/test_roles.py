"""The models' folders say what each file is: every model file sits in its role's folder,
and every vocoder family's folder is one the registry finds (and the other way round)."""

from __future__ import annotations

import ast
from pathlib import Path

from wavegen_core.models.vocoders.registry import vocoder_families, vocoder_spec

MODELS = Path("wavegen_core/models")
ROLES = ("transcription", "symbolic", "hierarchy", "vocoders")
# Beside the role folders: what every role shares.
SHARED = {"__init__.py", "blocks.py", "spec.py"}


def misplaced(models: Path) -> list[str]:
    """Files of ``models`` outside a role folder (but the shared ones), and folders that
    are no role."""
    found = []
    for path in sorted(models.iterdir()):
        if path.name == "__pycache__":
            continue
        if path.is_dir() and path.name not in ROLES:
            found.append(f"{path.name}/ is no role folder ({', '.join(ROLES)})")
        elif path.is_file() and path.suffix == ".py" and path.name not in SHARED:
            found.append(f"{path.name} sits outside the role folders: move it into one of them")
    return found


def declared_family(config: Path) -> str | None:
    """The ``family = "..."`` a family's ``config.py`` declares, read from its source."""
    for node in ast.walk(ast.parse(config.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Assign | ast.AnnAssign) and isinstance(node.value, ast.Constant):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "family" for t in targets):
                return str(node.value.value)
    return None


def test_every_model_file_sits_in_its_roles_folder(repo_root) -> None:
    problems = misplaced(repo_root / MODELS)
    assert not problems, "\n".join(problems)


def test_a_model_file_outside_the_role_folders_is_named(tmp_path) -> None:
    for role in ROLES:
        (tmp_path / role).mkdir()
    (tmp_path / "spec.py").write_text("")
    (tmp_path / "wavenet.py").write_text("")
    (tmp_path / "configs").mkdir()
    assert misplaced(tmp_path) == [
        "configs/ is no role folder (transcription, symbolic, hierarchy, vocoders)",
        "wavenet.py sits outside the role folders: move it into one of them",
    ]


def test_every_family_folder_is_in_the_registry_and_every_family_has_a_folder(
    repo_root,
) -> None:
    """A folder of ``vocoders/`` is a family: its ``config.py`` names it as the folder
    does, its ``model.py`` ends with its spec, and the registry lists it."""
    vocoders = repo_root / MODELS / "vocoders"
    folders = sorted(p.name for p in vocoders.iterdir() if (p / "__init__.py").is_file())
    assert sorted(vocoder_families()) == folders
    for family in folders:
        assert (vocoders / family / "model.py").is_file(), family
        assert declared_family(vocoders / family / "config.py") == family
        assert vocoder_spec(family).name == family
