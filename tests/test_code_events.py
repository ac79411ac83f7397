"""od.metrics.code_events: an event detector on codec latents, fitted where the events are known."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from od.metrics.code_events import fit_detector
from od.metrics.rhythm import hit_rate

RATE = 25.


def latents_with_events(times, frames: int = 200, seed: int = 0) -> torch.Tensor:
    """[8, T] noise latents with a fixed pattern added at each event's frame."""
    rng = np.random.default_rng(seed)
    z = rng.normal(0, 1, (8, frames))
    for t in times:
        z[:, int(t * RATE)] += 4 * np.linspace(-1, 1, 8)
    return torch.tensor(z, dtype=torch.float32)


def test_the_detector_finds_events_at_new_times_and_only_there():
    rng = np.random.default_rng(1)
    train = [np.sort(rng.choice(np.arange(10, 190), 8, replace=False)) / RATE for _ in range(6)]
    detector = fit_detector([latents_with_events(t, seed=i) for i, t in enumerate(train)], train, RATE)
    held_out = np.array([0.8, 2.2, 3.0, 4.6, 6.1, 7.4])
    found = detector.events(latents_with_events(held_out, seed=99))
    assert hit_rate(held_out, found) == 1.0                 # every event found within 100 ms
    assert hit_rate(found, held_out) == 1.0                 # and nothing else
    assert len(detector.events(latents_with_events([], seed=98))) == 0


def test_no_event_to_learn_from_is_an_error():
    with pytest.raises(ValueError, match='no event'):
        fit_detector([latents_with_events([])], [np.array([])], RATE)
