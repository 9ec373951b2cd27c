"""The scale estimate's pieces: the operation counter, the batch of one, the node model."""

from __future__ import annotations

import argparse

import pytest
import torch

from benchmarks.scale import OperationCounter, _batch_of_one, chains, sections, training_estimate
from wavegen_core.profiles import params_under_profile


def test_the_counter_counts_operations_and_not_views() -> None:
    x = torch.ones(3, 4)
    with OperationCounter() as counter:
        y = (x + 1).view(12).t() * 2  # add, mul; view and t are views
        y.sum()
    assert counter.operations == 3


def test_a_batch_of_one_reaches_every_training_section() -> None:
    params = params_under_profile("tiny")
    assert any(s.train.batch_size > 1 for s in sections(params).values())
    one = _batch_of_one(params)
    assert {s.train.batch_size for s in sections(one).values()} == {1}
    assert set(sections(one)) == set(sections(params))


def test_the_node_model_takes_the_longer_of_flops_and_launches_plus_the_all_reduce() -> None:
    model = argparse.Namespace(
        peak_tflops=1.0, utilisation=0.5, dispatch_us=10.0, allreduce_gbps=1.0
    )
    section = params_under_profile("tiny").vocoder.section("gan")
    section = section.model_copy(
        update={"train": section.train.model_copy(update={"batch_size": 16, "steps": 3600})}
    )
    row = {"flops_per_example": 1e12, "operations_per_step": 1000, "parameters": 250_000_000}
    one = training_estimate(row, section, 1, model)
    # 16 examples of 1 TFLOP at 0.5 TFLOP/s; 1000 launches of 10 us; no all-reduce alone.
    assert one["compute_s"] == pytest.approx(32.0) and one["dispatch_s"] == pytest.approx(0.01)
    assert one["allreduce_s"] == 0.0 and one["bound"] == "FLOPs"
    assert one["hours"] == pytest.approx(32.0)
    eight = training_estimate(row, section, 8, model)
    # Two examples per rank; a ring all-reduce moves 2 * 7/8 of 1 GB at 1 GB/s.
    assert eight["compute_s"] == pytest.approx(4.0)
    assert eight["allreduce_s"] == pytest.approx(1.75)
    assert eight["step_s"] == pytest.approx(5.75)
    small = training_estimate({**row, "flops_per_example": 1e6}, section, 8, model)
    assert small["bound"] == "launches" and small["step_s"] == pytest.approx(0.01 + 1.75)
    # Batches made in the step add to it; made by 4 workers per rank, they overlap it.
    slow = {**row, "data_seconds_per_example": 10.0}
    assert training_estimate(slow, section, 8, model)["step_s"] == pytest.approx(4 + 20 + 1.75)
    loader = section.model_copy(
        update={"train": section.train.model_copy(update={"data_workers": 4})}
    )
    made = training_estimate(slow, loader, 8, model)
    assert made["bound"] == "data" and made["step_s"] == pytest.approx(5 + 1.75)


def test_stages_that_need_each_other_are_chained_and_the_rest_stand_alone() -> None:
    stages = list(sections(params_under_profile("tiny")))
    found = chains(stages)
    assert ["train_transcriber", "train_music_transformer"] in found
    assert ["train_vqvae@1", "train_vqvae@2", "train_prior"] in found
    assert ["train_vocoder@gan"] in found
    assert sorted(s for chain in found for s in chain) == sorted(stages)
