"""The Music Transformer: shapes, causality, cached decoding, sampling controls."""

from __future__ import annotations

import math

import pytest
import torch

from wavegen_core.midi.events import (
    END,
    PAD,
    START,
    EventsConfig,
    EventVocabulary,
    events_seconds,
)
from wavegen_core.models.symbolic.config import MusicTransformerModelConfig
from wavegen_core.models.symbolic.music_transformer import (
    MusicTransformer,
    SamplingConfig,
    filter_logits,
    primer_events,
    sample_events,
)

VOCAB = EventVocabulary(EventsConfig())


def _model(attention: str = "relative", context: int = 32) -> MusicTransformer:
    torch.manual_seed(0)
    config = MusicTransformerModelConfig(
        attention=attention, d_model=32, n_layers=2, n_heads=4, d_ff=64, context=context
    )
    return MusicTransformer(config, VOCAB.size).eval()


def test_logits_shape_and_tied_output_layer() -> None:
    model = _model()
    tokens = torch.randint(3, VOCAB.size, (2, 20))
    assert model(tokens).shape == (2, 20, VOCAB.size)
    # Tied embeddings: no separate output matrix.
    names = [name for name, _ in model.named_parameters()]
    assert sum(p.shape == (VOCAB.size, 32) for p in model.parameters()) == 1
    assert "embedding.weight" in names


@pytest.mark.parametrize("attention", ["relative", "absolute"])
def test_changing_a_future_event_never_changes_earlier_logits(attention: str) -> None:
    model = _model(attention)
    tokens = torch.randint(3, VOCAB.size, (1, 24))
    changed = tokens.clone()
    changed[0, 15] = (changed[0, 15] + 1 - 3) % (VOCAB.size - 3) + 3
    before, after = model(tokens), model(changed)
    torch.testing.assert_close(before[:, :15], after[:, :15], rtol=0, atol=0)
    assert not torch.allclose(before[:, 15:], after[:, 15:])


@pytest.mark.parametrize("attention", ["relative", "absolute"])
def test_cached_decoding_gives_the_full_forward_logits_step_by_step(attention: str) -> None:
    model = _model(attention)
    tokens = torch.randint(3, VOCAB.size, (2, 32))
    full = model(tokens)
    cache = model.new_cache()
    steps = [model(tokens[:, :5], cache)]
    steps += [model(tokens[:, t : t + 1], cache) for t in range(5, 32)]
    torch.testing.assert_close(torch.cat(steps, dim=1), full, rtol=1e-4, atol=1e-5)


def test_filter_logits_temperature_top_k_and_top_p() -> None:
    logits = torch.log(torch.tensor([[0.5, 0.25, 0.15, 0.1]]))
    hot = torch.softmax(filter_logits(logits, SamplingConfig(temperature=2.0)), -1)
    assert hot[0, 0] < 0.5 and hot[0, 3] > 0.1  # flatter
    top2 = filter_logits(logits, SamplingConfig(top_k=2))
    assert torch.isinf(top2[0, 2:]).all() and torch.isfinite(top2[0, :2]).all()
    # The nucleus of 0.7 is {0.5, 0.25}: 0.5 alone falls short, the two reach it.
    nucleus = filter_logits(logits, SamplingConfig(top_p=0.7))
    assert torch.isfinite(nucleus[0, :2]).all() and torch.isinf(nucleus[0, 2:]).all()
    assert torch.isfinite(filter_logits(logits, SamplingConfig(top_p=0.5))[0, 0])
    with pytest.raises(ValueError, match="top_p"):
        SamplingConfig(top_p=0.0)


def test_sampling_is_seeded_and_the_cache_does_not_change_it() -> None:
    model = _model()

    def draw(use_cache: bool, seed: int) -> list[int]:
        generator = torch.Generator().manual_seed(seed)
        return sample_events(model, VOCAB, max_events=25, generator=generator, use_cache=use_cache)

    first = draw(True, 7)
    assert len(first) <= 25 and all(token not in (PAD, START) for token in first)
    assert draw(True, 7) == first
    assert draw(False, 7) == first
    assert draw(True, 8) != first


def _never_ending(model: MusicTransformer) -> MusicTransformer:
    """``model`` with END's logit at -inf: sampling can stop only at its limits."""
    forward = model.forward

    def without_end(tokens: torch.Tensor, cache: object = None) -> torch.Tensor:
        logits = forward(tokens, cache)
        logits[..., END] = -math.inf
        return logits

    model.forward = without_end  # type: ignore[method-assign]
    return model


def test_sampling_continues_the_primer_and_stops_at_the_length_in_seconds() -> None:
    model = _never_ending(_model(context=16))
    primer = [VOCAB.velocity(20), VOCAB.note_on(60), VOCAB.time_shift(50), VOCAB.note_off(60)]
    generator = torch.Generator().manual_seed(3)
    # Past the context of 16: the window slides. max_events only bounds a broken rule.
    events = sample_events(
        model, VOCAB, primer=primer, max_seconds=3.0, max_events=2000, generator=generator
    )
    assert events[:4] == primer
    # It stops at the first event whose time shift reaches 3 s (primer included).
    assert events_seconds(events, VOCAB) >= 3.0
    assert events_seconds(events[:-1], VOCAB) < 3.0
    assert VOCAB.shift_steps(events[-1]) > 0
    # And after max_events new events, whichever limit comes first.
    few = sample_events(model, VOCAB, primer=primer, max_events=5, max_seconds=60.0)
    assert len(few) == len(primer) + 5
    with pytest.raises(ValueError, match="max_events or max_seconds"):
        sample_events(model, VOCAB)


def test_primer_events_cut_at_the_primer_length() -> None:
    import pretty_midi

    notes = [pretty_midi.Note(80, 60 + i, i * 1.0, i * 1.0 + 0.5) for i in range(6)]
    primer = primer_events(notes, VOCAB, 2.7)
    # Up to the end of the note at 2 s (2.5 s); the shift to 3 s would pass 2.7 s.
    assert math.isclose(events_seconds(primer, VOCAB), 2.5)
    kinds = [VOCAB.describe(token).split("(")[0] for token in primer]
    assert kinds.count("NOTE_ON") == 3 and kinds.count("NOTE_OFF") == 3
