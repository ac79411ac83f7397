"""`trainable` patterns: frozen weights do not move and are not in the optimizer."""
from __future__ import annotations

import pytest
import torch
from torch import nn

from od.solvers.trainable import freeze_except, only_trainable, trainable_patterns

from .helpers import FAST, build_solver, datasource_overrides


def test_patterns_spec():
    assert trainable_patterns('all') is None and trainable_patterns(['all']) is None
    assert trainable_patterns(['a', 'b']) == ['a', 'b']
    with pytest.raises(ValueError, match='empty'):
        trainable_patterns([])


def test_freeze_except_counts_and_typos():
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 5))
    assert freeze_except(model, [r'^1\.']) == (25, 16 + 25)
    assert [p.requires_grad for p in model.parameters()] == [False, False, True, True]
    groups = only_trainable([{'params': list(model.parameters())}])
    assert sum(len(g['params']) for g in groups) == 2
    with pytest.raises(ValueError, match=r"\['cross_atention'\] match no parameter"):
        freeze_except(model, ['cross_atention'])


@pytest.mark.slow
def test_solver_trains_only_the_patterns(example_data):
    solver = build_solver(['solver=musicgen/debug', 'optim.epochs=1', *FAST, 'optim.updates_per_epoch=2',
                           'dataset.num_workers=0', 'trainable=[condition_provider,cross_attention]',
                           *datasource_overrides(example_data)])
    named = dict(solver.model.named_parameters())
    trainable = {n for n, p in named.items() if p.requires_grad}
    assert trainable and all('condition_provider' in n or 'cross_attention' in n for n in trainable)
    in_optim = {id(p) for g in solver.optimizer.param_groups for p in g['params']}
    assert in_optim == {id(named[n]) for n in trainable}
    before = {n: p.detach().clone() for n, p in named.items()}
    solver.run_stage('train', solver.train)
    moved = {n for n, p in named.items() if not torch.equal(p, before[n])}
    assert moved and moved <= trainable
    assert all(torch.equal(named[n], before[n]) for n in named if n not in trainable)
