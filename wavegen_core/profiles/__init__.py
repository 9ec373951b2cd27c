"""Named overlays of params.yaml: ``tiny`` (the default), ``cpu`` and ``full``."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

from wavegen_core.files import atomic_open
from wavegen_core.params import Params, validate_params

PROFILE_DIR = Path(__file__).parent
# Mappings a profile replaces whole rather than key by key: the number of tiers differs
# between profiles, so the tiers a profile lists are all the tiers there are.
REPLACED_WHOLE = frozenset({"vqvae.tiers"})


def available() -> list[str]:
    return sorted(path.stem for path in PROFILE_DIR.glob("*.yaml"))


def _yaml() -> YAML:
    yaml = YAML()  # round-trip mode keeps the comments and order of params.yaml
    yaml.preserve_quotes = True
    yaml.width = 100
    yaml.representer.add_representer(
        type(None), lambda rep, _: rep.represent_scalar("tag:yaml.org,2002:null", "null")
    )
    return yaml


def overlay(name: str) -> dict[str, Any]:
    """The keys a profile sets, as a nested mapping."""
    path = PROFILE_DIR / f"{name}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown profile {name!r}; available: {', '.join(available())}")
    return _yaml().load(path.read_text(encoding="utf-8")) or {}


def merge_into(target: Any, changes: dict[str, Any], where: str = "") -> None:
    """Write the nested ``changes`` into ``target`` in place; a key it lacks is an error."""
    for key, value in changes.items():
        path = f"{where}{key}"
        if key not in target:
            raise KeyError(f"profile sets {path}, which params.yaml does not have")
        if path in REPLACED_WHOLE:
            target[key] = value
        elif isinstance(value, dict):
            merge_into(target[key], value, f"{path}.")
        elif isinstance(value, list) and isinstance(target[key], list):
            _replace_list(target, key, value)
        else:
            target[key] = value


def params_under_profile(name: str, base: Params | None = None) -> Params:
    """``base`` (the schema's defaults, which are the tiny profile, when None) with
    profile ``name``'s keys laid over it, validated."""
    raw = (Params() if base is None else base).model_dump(mode="json")
    # Through JSON: the overlay's ruamel nodes become plain lists, dicts and numbers.
    merge_into(raw, json.loads(json.dumps(overlay(name))))
    return Params.model_validate(raw)


def _replace_list(target: Any, key: str, value: list[Any]) -> None:
    """Put ``value`` in place of the list at ``target[key]``, keeping the comment that
    follows the old list (ruamel attaches it to the list's last item)."""
    from ruamel.yaml.comments import CommentedSeq

    old = target[key]
    new = value if isinstance(value, CommentedSeq) else CommentedSeq(value)
    trailing = getattr(old, "ca", None) and old.ca.items.get(len(old) - 1)
    if trailing and new:
        new.ca.items[len(new) - 1] = trailing
    target[key] = new


def apply_profile(name: str, params_file: str | os.PathLike[str]) -> None:
    """Write profile ``name``'s values into ``params_file``, keeping its comments.

    The result is validated before the file is replaced, so a failed switch leaves
    the file as it was.
    """
    yaml = _yaml()
    document = yaml.load(Path(params_file).read_text(encoding="utf-8"))
    merge_into(document, overlay(name))
    buffer = io.StringIO()
    yaml.dump(document, buffer)
    import yaml as pyyaml

    validate_params(pyyaml.safe_load(buffer.getvalue()), params_file)
    with atomic_open(params_file) as handle:
        handle.write(buffer.getvalue())
