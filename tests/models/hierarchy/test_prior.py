"""The prior over top-tier codes: shapes, causality, loss, sampling, batches, training."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn import functional as F

import wavegen_core.training.prior as prior_training
from wavegen_core.checkpoint import load_checkpoint
from wavegen_core.models.hierarchy.prior import IGNORE, CodePrior
from wavegen_core.models.hierarchy.prior import SPEC as PRIOR
from wavegen_core.models.symbolic.config import MusicTransformerModelConfig
from wavegen_core.param_types import TrainLoopConfig
from wavegen_core.params import PriorConfig
from wavegen_core.training.prior import evaluate_nll, prior_batch, train_prior

CODEBOOK = 16


def _prior(n_layers: int = 2, context: int = 8, dropout: float = 0.0) -> CodePrior:
    torch.manual_seed(0)
    config = MusicTransformerModelConfig(
        d_model=32, n_layers=n_layers, n_heads=4, d_ff=64, context=context, dropout=dropout
    )
    return CodePrior(config, CODEBOOK).eval()


def test_logits_cover_the_codes_and_never_start() -> None:
    model = _prior()
    assert model.start == CODEBOOK
    tokens = torch.randint(0, CODEBOOK, (3, 8))
    tokens[:, 0] = model.start
    assert model(tokens).shape == (3, 8, CODEBOOK)
    assert model.transformer.vocab_size == CODEBOOK + 1
    drawn = model.sample(4, 12, generator=torch.Generator().manual_seed(0))
    assert drawn.shape == (4, 12) and drawn.dtype == torch.long
    assert int(drawn.min()) >= 0 and int(drawn.max()) < CODEBOOK


def test_changing_a_code_never_changes_earlier_logits() -> None:
    model = _prior()
    tokens = torch.randint(0, CODEBOOK, (1, 8))
    changed = tokens.clone()
    changed[0, 5] = (changed[0, 5] + 1) % CODEBOOK
    before, after = model(tokens), model(changed)
    torch.testing.assert_close(before[:, :5], after[:, :5], rtol=0, atol=0)
    assert not torch.allclose(before[:, 5:], after[:, 5:])


def test_loss_is_the_cross_entropy_of_the_next_code_with_padding_ignored() -> None:
    model = _prior()
    window = torch.tensor([[CODEBOOK, 3, 1, 4, 1, 5], [2, 7, 1, IGNORE, IGNORE, IGNORE]])
    nll, extras = model.loss(window)
    # By hand: log-softmax of each row's logits at the next code, over the 7 real targets.
    first = torch.log_softmax(model(window[:1, :-1]), dim=-1)[0]
    second = torch.log_softmax(model(window[1:, :3]), dim=-1)[0]
    picked = [first[t, int(window[0, t + 1])] for t in range(5)]
    picked += [second[t, int(window[1, t + 1])] for t in range(2)]
    expected = -torch.stack(picked).mean()
    torch.testing.assert_close(nll, expected, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(extras["nll"], nll.detach())
    inputs = window[:, :-1].clamp(min=0)
    reference = F.cross_entropy(model(inputs).flatten(0, 1), window[:, 1:].flatten())
    torch.testing.assert_close(nll, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(("n_layers", "steps"), [(2, 7), (1, 30)])
def test_cached_sampling_draws_what_recomputing_the_window_draws(n_layers: int, steps: int) -> None:
    # Within the context (8 positions, START included) for any depth; past it (a
    # sliding window) for one layer, where recomputing the window loses no history.
    model = _prior(n_layers=n_layers)

    def draw(use_cache: bool, seed: int) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        return model.sample(3, steps, generator=generator, use_cache=use_cache)

    cached = draw(True, 5)
    assert torch.equal(cached, draw(False, 5))
    assert torch.equal(cached, draw(True, 5))
    assert not torch.equal(cached, draw(True, 6))


def test_sampling_past_the_context_slides_and_temperature_is_checked() -> None:
    model = _prior(n_layers=2, context=8)
    drawn = model.sample(2, 40, temperature=0.5, generator=torch.Generator().manual_seed(1))
    assert drawn.shape == (2, 40)
    assert model.sample(2, 0).shape == (2, 0)
    with pytest.raises(ValueError, match="temperature"):
        model.sample(1, 4, temperature=0.0)


def test_prior_batch_is_a_function_of_seed_and_step_and_pads_short_pieces() -> None:
    long = np.arange(40) % CODEBOOK
    short = np.array([9, 8, 7])
    sequences = [long, short]
    batch = prior_batch(sequences, seed=3, step=2, batch_size=64, context=8, start=CODEBOOK)
    assert batch.shape == (64, 9) and batch.dtype == torch.long
    again = prior_batch(sequences, seed=3, step=2, batch_size=64, context=8, start=CODEBOOK)
    assert torch.equal(batch, again)
    other = prior_batch(sequences, seed=3, step=3, batch_size=64, context=8, start=CODEBOOK)
    assert not torch.equal(batch, other)
    streams = [[CODEBOOK, *codes.tolist()] for codes in sequences]
    padded_rows = 0
    for row in batch.tolist():
        real = [token for token in row if token != IGNORE]
        assert row[: len(real)] == real  # padding only at the end
        if len(real) < 9:
            padded_rows += 1
            assert real == streams[1]
        else:
            assert any(
                real == streams[0][first : first + 9] for first in range(len(streams[0]) - 8)
            )
    assert 0 < padded_rows < 64


def test_evaluate_nll_of_a_short_piece_by_hand() -> None:
    model = _prior(context=8)
    codes = np.array([5, 2, 2, 9, 0])
    tokens = torch.tensor([[CODEBOOK, 5, 2, 2, 9]])
    with torch.no_grad():
        log_probs = torch.log_softmax(model(tokens), dim=-1)[0]
    expected = -float(sum(log_probs[t, int(code)] for t, code in enumerate(codes))) / 5
    model.train()
    nll = evaluate_nll(model, [codes], context=8, device="cpu")
    assert model.training  # the mode is restored
    assert math.isclose(nll, expected, rel_tol=1e-5)


def test_evaluate_nll_windows_a_long_piece_predicting_each_code_once() -> None:
    model = _prior(context=8)
    codes = (np.arange(19) * 5) % CODEBOOK
    stream = [CODEBOOK, *codes.tolist()]
    total = 0.0
    for first in range(0, 19, 4):
        window = torch.tensor([stream[first : first + 5]])
        with torch.no_grad():
            log_probs = torch.log_softmax(model(window[:, :-1]), dim=-1)[0]
        total -= float(sum(log_probs[t, int(window[0, t + 1])] for t in range(window.shape[1] - 1)))
    nll = evaluate_nll(model, [codes], context=4, device="cpu")
    assert math.isclose(nll, total / 19, rel_tol=1e-5)


def _config(steps: int) -> PriorConfig:
    model = MusicTransformerModelConfig(d_model=32, n_layers=1, n_heads=4, d_ff=64, context=16)
    loop = TrainLoopConfig(
        steps=steps, batch_size=8, learning_rate=3e-3, eval_every=steps, checkpoint_every=5
    )
    return PriorConfig(model=model, train=loop)


def _periodic(length: int, offset: int = 0) -> np.ndarray:
    pattern = np.array([3, 11, 7, 0, 14])
    return pattern[(np.arange(length) + offset) % len(pattern)]


def test_training_on_a_periodic_sequence_learns_it(tmp_path) -> None:
    train = [_periodic(200), _periodic(120, offset=2)]
    validation = [_periodic(60, offset=1)]
    result = train_prior(
        _config(40),
        CODEBOOK,
        train,
        validation,
        seed=0,
        device=torch.device("cpu"),
        checkpoint_path=tmp_path / "prior.pt",
        metrics_dir=tmp_path / "metrics",
    )
    assert result.step == 40
    assert result.metrics["eval/nll"] < 0.3 * math.log(CODEBOOK)
    model = PRIOR.load(tmp_path / "prior.pt")
    assert not model.training and model.codebook_size == CODEBOOK
    nll = evaluate_nll(model, validation, context=16, device="cpu")
    assert math.isclose(nll, result.metrics["eval/nll"], rel_tol=1e-5)
    config = load_checkpoint(tmp_path / "prior.pt")["config"]
    assert config["codebook_size"] == CODEBOOK and config["seed"] == 0
    assert config["model"] == _config(40).model.model_dump(mode="json")


def test_training_resumes_from_the_checkpoint(tmp_path, monkeypatch) -> None:
    train, validation = [_periodic(80)], [_periodic(30, offset=3)]
    drawn_steps: list[int] = []
    draw = prior_training.prior_batch

    def recording(*args, **kwargs) -> torch.Tensor:
        drawn_steps.append(kwargs["step"])
        return draw(*args, **kwargs)

    monkeypatch.setattr(prior_training, "prior_batch", recording)

    def run(steps: int, folder: str, digest: str = "codes-a") -> prior_training.TrainResult:
        return train_prior(
            _config(steps),
            CODEBOOK,
            train,
            validation,
            seed=1,
            device=torch.device("cpu"),
            checkpoint_path=tmp_path / folder / "prior.pt",
            metrics_dir=tmp_path / folder / "metrics",
            input_digest=digest,
        )

    run(5, "resumed")
    drawn_steps.clear()
    resumed = run(10, "resumed")
    assert drawn_steps == list(range(6, 11))  # steps 1-5 came from the checkpoint
    assert resumed.step == 10
    straight = run(10, "straight")
    assert straight.metrics["eval/nll"] == resumed.metrics["eval/nll"]
    assert (tmp_path / "straight/prior.pt").read_bytes() == (
        tmp_path / "resumed/prior.pt"
    ).read_bytes()
    weights = PRIOR.load(tmp_path / "resumed" / "prior.pt").state_dict()
    for name, value in PRIOR.load(tmp_path / "straight" / "prior.pt").state_dict().items():
        torch.testing.assert_close(weights[name], value, rtol=0, atol=0)
    # A checkpoint trained on other codes is replaced, not resumed from.
    drawn_steps.clear()
    run(10, "resumed", digest="codes-b")
    assert drawn_steps == list(range(1, 11))
    assert load_checkpoint(tmp_path / "resumed" / "prior.pt")["config"]["input_digest"] == "codes-b"
