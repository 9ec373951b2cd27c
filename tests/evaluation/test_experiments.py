"""`wavegen exps`: DVC's experiments one line each (the real `dvc exp run` is in
tests/integration/test_dvc_pipeline.py)."""

from __future__ import annotations

import pytest

from wavegen_core.errors import WavegenError
from wavegen_core.evaluation.experiments import experiments_of, short, table

SUMMARY = "reports/evaluate/summary.json"


def _data(temperature: float, families: list[str], onset_f1: float | None) -> dict:
    metrics = {}
    if onset_f1 is not None:
        summary = {
            "transcription": {"test": {"ours": {"onset_f1": onset_f1}}},
            "prior": {"nll": 2.5},
        }
        metrics = {SUMMARY: {"data": summary}, "reports/x/metrics.json": {"data": {"loss": 1.0}}}
    params = {"seed": 1234, "vocoder": {"families": families, "flow": {"temperature": temperature}}}
    return {"params": {"params.yaml": {"data": params}}, "metrics": metrics}


# The shape of `dvc exp show --json`: the workspace, then each baseline commit with its
# experiments.
SHOWN = [
    {"rev": "workspace", "name": None, "data": _data(0.9, ["flow"], 0.5), "experiments": None},
    {
        "rev": "76dc4d3004bfa4a9177efb1aa0a5e38cfd5663b1",
        "name": "main",
        "data": _data(0.6, ["flow"], None),
        "experiments": [
            {"revs": [{"rev": "fe593f5b2f", "name": "warm", "data": _data(0.9, ["flow"], 0.5)}]},
            {
                "revs": [
                    {"rev": "fff394f07f", "name": "cool", "data": _data(0.3, ["flow", "gan"], 0.25)}
                ]
            },
        ],
    },
]


def test_one_line_per_experiment_with_the_figures_and_the_params_that_differ() -> None:
    rows = experiments_of(SHOWN)
    assert [row.name for row in rows] == ["workspace", "main (76dc4d3)", "  warm", "  cool"]
    lines = table(rows).splitlines()
    assert lines[0].split() == [
        "experiment", "tr.test.onset_f1", "prior.nll",
        "vocoder.families", "vocoder.flow.temperature",
    ]  # fmt: skip
    assert lines[2].split() == ["main", "(76dc4d3)", "-", "-", '["flow"]', "0.6"]
    assert lines[4].split() == ["cool", "0.25", "2.5", '["flow","gan"]', "0.3"]
    assert "seed" not in lines[0] and "loss" not in lines[0]  # equal, or not the summary's


def test_chosen_figures_by_glob_and_a_note_when_there_are_none() -> None:
    rows = experiments_of(SHOWN)
    assert table(rows, ["prior.*"]).splitlines()[0].split()[:2] == ["experiment", "prior.nll"]
    assert "(no figures: reports/evaluate/summary.json" in table(rows, ["nothing.*"])
    with pytest.raises(WavegenError, match="no experiments"):
        table([])


def test_column_names_are_short() -> None:
    assert short("transcription.reserved_piano.ours.onset_f1") == "tr.reserved_piano.onset_f1"
    assert short("vocoder.gan.judge_f1") == "voc.gan.judge_f1"
    assert short("tiers.1.usage") == "tiers.1.usage"
