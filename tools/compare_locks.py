"""Which outputs two ``dvc.lock`` files agree on.

``python -m tools.compare_locks A/dvc.lock B/dvc.lock``: for every stage of either
file and every entry of its ``outs``, the output's ``md5`` in A against its ``md5`` in
B (a directory's md5 ends in ``.dir`` and hashes the list of its files' md5s, so equal
means every file is equal). Each output is *identical*, *different*, or *only in* one
of the files (a stage or an output the other lacks). One line per stage with its
counts, the paths that differ or are missing beneath it, then the totals.

This is how a change that should keep behaviour is checked: ``dvc repro`` in two clean
worktrees, one at the commit before and one after, then this command on their locks.
"""

from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

import yaml

KINDS = ("identical", "different", "only in A", "only in B")


def output_hashes(lock: dict[str, Any]) -> dict[str, dict[str, str | None]]:
    """Per stage, each output path's md5 (``None`` where the lock records none)."""
    return {
        stage: {out["path"]: out.get("md5") for out in entry.get("outs", [])}
        for stage, entry in (lock.get("stages") or {}).items()
    }


def compare(a: dict[str, Any], b: dict[str, Any]) -> dict[str, dict[str, list[str]]]:
    """Per stage, the output paths of each kind in ``KINDS``."""
    hashes_a, hashes_b = output_hashes(a), output_hashes(b)
    result: dict[str, dict[str, list[str]]] = {}
    for stage in sorted(hashes_a.keys() | hashes_b.keys()):
        outs_a, outs_b = hashes_a.get(stage, {}), hashes_b.get(stage, {})
        kinds: dict[str, list[str]] = {kind: [] for kind in KINDS}
        for path in sorted(outs_a.keys() | outs_b.keys()):
            if path not in outs_b:
                kinds["only in A"].append(path)
            elif path not in outs_a:
                kinds["only in B"].append(path)
            elif outs_a[path] is not None and outs_a[path] == outs_b[path]:
                kinds["identical"].append(path)
            else:
                kinds["different"].append(path)
        result[stage] = kinds
    return result


def _load(path: Path) -> dict[str, Any]:
    return yaml.safe_load(path.read_text()) or {}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tools.compare_locks")
    parser.add_argument("a", type=Path, help="the first dvc.lock (A)")
    parser.add_argument("b", type=Path, help="the second dvc.lock (B)")
    args = parser.parse_args(argv)
    result = compare(_load(args.a), _load(args.b))
    totals: Counter[str] = Counter()
    for stage, kinds in result.items():
        counts = {kind: len(paths) for kind, paths in kinds.items()}
        totals.update(counts)
        print(f"{stage}: " + ", ".join(f"{counts[kind]} {kind}" for kind in KINDS))
        for kind in KINDS[1:]:
            for path in kinds[kind]:
                print(f"    {kind}: {path}")
    print("total: " + ", ".join(f"{totals[kind]} {kind}" for kind in KINDS))


if __name__ == "__main__":
    main()
