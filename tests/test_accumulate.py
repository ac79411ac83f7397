"""Gradient accumulation: one update from 4 micro-batches equals one update from the batch."""
from __future__ import annotations

import pytest
import torch

from od.solvers.accumulate import accumulate_steps, split_batch

from .helpers import build_solver, datasource_overrides

# Adam's first step is lr * g / (|g| + eps): with eps=1 it is about lr * g, so a wrongly scaled
# gradient (summed instead of averaged, a micro-batch counted twice) moves the weights
# differently; gradient clipping is off for the same reason (it would renormalise the scale).
SCALE_SENSITIVE = ['optim.adam.eps=1.0', 'optim.max_norm=0', 'optim.lr=0.5',
                   'classifier_free_guidance.training_dropout=0']


def one_update(solver, batch, accumulate: int) -> dict:
    solver.accumulate = accumulate
    solver.run_stage('train', lambda: solver.run_step(0, batch, {}))
    solver._pending_metrics.pop('train')  # flashy logs one train stage per epoch
    return {n: p.detach().clone() for n, p in solver.model.named_parameters()}


@pytest.mark.slow
def test_accumulated_update_matches_the_batch(example_data):
    solver = build_solver(['solver=musicgen/debug', 'dataset.batch_size=8', 'dataset.num_workers=0',
                           'optim.accumulate=4', *SCALE_SENSITIVE, *datasource_overrides(example_data)])
    assert solver.accumulate == 4
    batch = next(iter(solver.dataloaders['train']))
    model0 = {k: v.clone() for k, v in solver.model.state_dict().items()}
    optim0 = {k: v for k, v in solver.optimizer.state_dict().items()}
    whole = one_update(solver, batch, 1)
    solver.model.load_state_dict(model0)
    solver.optimizer.load_state_dict(optim0)
    accumulated = one_update(solver, batch, 4)
    moved = max((whole[n] - model0[n]).abs().max().item() for n in whole)
    gap = max((whole[n] - accumulated[n]).abs().max().item() for n in whole)
    assert moved > 1e-2, "the update should move the weights"
    assert gap < 1e-4 * moved + 1e-6, f"accumulated update differs by {gap} (update size {moved})"
    # A different split is a different update: the check above can fail.
    solver.model.load_state_dict(model0)
    solver.optimizer.load_state_dict(optim0)
    half = one_update(solver, split_batch(batch, 2)[0], 1)
    assert max((whole[n] - half[n]).abs().max().item() for n in whole) > 100 * gap


def test_accumulate_checks_the_batch():
    from omegaconf import OmegaConf
    cfg = OmegaConf.create({'optim': {'accumulate': 3}, 'fsdp': {'use': False}, 'dataset': {'batch_size': 8}})
    with pytest.raises(ValueError, match='not divisible by optim.accumulate=3'):
        accumulate_steps(cfg)
    cfg.optim.accumulate, cfg.fsdp.use = 2, True
    with pytest.raises(ValueError, match='fsdp'):
        accumulate_steps(cfg)
    parts = split_batch((torch.arange(8), list('abcdefgh')), 4)
    assert [p[1] for p in parts] == [['a', 'b'], ['c', 'd'], ['e', 'f'], ['g', 'h']]
    assert torch.equal(parts[3][0], torch.tensor([6, 7]))
