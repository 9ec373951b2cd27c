"""benchmarks/spread.py: per-seed runs of each variant, their summary and paired differences."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from benchmarks.spread import Comparison, measure, write_params

# A "stage" that writes a figure depending on the seed and on one param.
TOY_STAGE = """
import argparse, json, pathlib, yaml
parser = argparse.ArgumentParser()
parser.add_argument("--out")
parser.add_argument("--params")
args = parser.parse_args()
params = yaml.safe_load(open(args.params))
value = params["seed"] % 10 + params["toy"]["offset"]
pathlib.Path(args.out).mkdir(parents=True, exist_ok=True)
(pathlib.Path(args.out) / "figure.json").write_text(json.dumps({"v": value}))
"""


def _read(run: Path) -> float:
    return float(json.loads((run / "out" / "figure.json").read_text())["v"])


def test_write_params_replaces_the_seed_and_dotted_keys_and_refuses_unknown_ones(tmp_path):
    source = tmp_path / "params.yaml"
    source.write_text("seed: 1\ntoy:\n  offset: 0.5\n  keep: x\n")
    write_params(source, tmp_path / "run" / "p.yaml", 7, {"toy.offset": 2.0})
    assert yaml.safe_load((tmp_path / "run" / "p.yaml").read_text()) == {
        "seed": 7,
        "toy": {"offset": 2.0, "keep": "x"},
    }
    with pytest.raises(KeyError, match="toy.ofset"):
        write_params(source, tmp_path / "p2.yaml", 7, {"toy.ofset": 2.0})


def test_every_variant_runs_once_per_seed_and_the_differences_are_paired(tmp_path):
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "toy_stage.py").write_text(TOY_STAGE)
    (repo / "params.yaml").write_text("seed: 0\ntoy:\n  offset: 0.0\n")
    comparison = Comparison(
        name="toy",
        what="a figure",
        variants={"base": {}, "raised": {"toy.offset": 0.25}},
        commands=(("toy_stage", "--out", "{run}/out"),),
        figure=_read,
        higher_is_better=True,
    )
    result = measure(comparison, [1, 2, 4], repo, tmp_path / "work")
    assert result["variants"]["base"]["values"] == [1.0, 2.0, 4.0]
    assert result["variants"]["raised"]["mean"] == pytest.approx(2.0 + 1 / 3 + 0.25)
    assert result["variants"]["base"]["sd"] == pytest.approx(1.5275, abs=1e-4)
    difference = result["difference"]
    assert difference["of"] == "base - raised"
    assert difference["values"] == [-0.25, -0.25, -0.25]
    assert difference["same_sign"] == 3
    # A finished run is read back, not trained again.
    (repo / "toy_stage.py").write_text("raise SystemExit(1)")
    assert measure(comparison, [1, 2, 4], repo, tmp_path / "work") == result
