"""The pipeline's schedule (`od.workflow.recipe.schedule`) against AudioCraft's real learning-rate
schedulers: every run it composes, however short, steps through to its last update; a warm-up
the user fixed that cannot run is refused before anything is written, naming the fix."""
from __future__ import annotations

import itertools
import math

import pytest
from omegaconf import OmegaConf

from od import train  # noqa: F401  (Dora's main, bound for the workflow)
from od.workflow import recipe, runs

# (training clips' seconds, valid clips' seconds): one clip, a few short ones, odd lengths, long ones
DATASETS = [([3.0], [3.0]), ([0.6, 1.4], [2.0]), ([2.9, 3.1, 3.0], [3.0, 1.0]), ([7.3] * 5, [7.3]),
            ([31.0, 45.5, 12.0], [30.0]), ([180.0] * 4, [60.0, 60.0])]
EPOCHS = [None, 1, 2, 3, 10]
USER = {  # Dora overrides a user adds after the folder
    'none': [],
    'one update': ['optim.updates_per_epoch=1'],
    'one epoch': ['optim.epochs=1'],
    'short warm-up': ['schedule.cosine.warmup=1'],
    'one of each': ['optim.epochs=1', 'optim.updates_per_epoch=1'],
    'batch 2': ['dataset.batch_size=2'],
}


def composed(preset: str, user):
    return runs.compose([preset, 'model/lm/model_scale=small', 'conditioner=clipemb2music', *user])


def apply(cfg, user, values):
    """The parts of the config `dora run <preset> <od's overrides> <user's>` composes (theirs win)
    that the schedule reads: optim, schedule, dataset (resolving the whole config per run is slow)."""
    cfg = OmegaConf.create({key: OmegaConf.to_container(cfg[key], resolve=True)
                            for key in ('optim', 'schedule', 'dataset')})
    for override in recipe.as_overrides(values, user) + list(user):
        key, value = override.split('=', 1)
        OmegaConf.update(cfg, key, float(value) if '.' in value else int(value))
    return cfg


@pytest.mark.parametrize('lora', [False, True], ids=['full', 'lora'])
@pytest.mark.parametrize('user', list(USER))
def test_every_schedule_the_pipeline_composes_runs_in_audiocrafts_scheduler(lora, user):
    overrides = USER[user]
    cfg = composed(recipe.solver_preset(lora), overrides)
    fixed = {o.split('=', 1)[0] for o in overrides}
    for (train_s, valid_s), epochs in itertools.product(DATASETS, EPOCHS):
        values = recipe.schedule(train_s, valid_s, cfg, epochs, fixed)
        run = apply(cfg, overrides, values)
        total = int(run.optim.epochs) * int(run.optim.updates_per_epoch)
        warmup = int(run.schedule.cosine.warmup)
        where = f"{train_s} x --epochs {epochs} with {overrides}: {total} updates, warm-up {warmup}"
        if 'schedule.cosine.warmup' in fixed and warmup >= total:
            with pytest.raises(recipe.RecipeError, match=r'schedule\.cosine\.warmup='):
                recipe.check_schedule(run)   # theirs: refused with the fix, never changed
            continue
        assert warmup < total, where
        assert recipe.check_schedule(run) == total, where   # stepped to the last update: no ZeroDivisionError
        # sized from the data unless the user fixed it
        if 'optim.epochs' not in fixed:
            assert int(run.optim.epochs) == (epochs if epochs is not None else int(cfg.optim.epochs)), where
        if 'optim.updates_per_epoch' not in fixed:
            preset, batch = float(cfg.dataset.segment_duration), int(run.dataset.batch_size)
            segment = preset if max(train_s) >= preset else max(1., math.floor(max(train_s)))
            assert float(run.dataset.segment_duration) == segment, where
            assert int(run.optim.updates_per_epoch) == max(1, math.ceil(sum(train_s) / (segment * batch))), where
        if 'schedule.cosine.warmup' not in fixed:
            assert warmup <= max(1, total // 10), where   # at most a tenth of the run


def test_a_one_epoch_run_was_what_crashed_audiocraft():
    """The schedule of issue 35's crash (1 epoch x 1 update, warm-up 1) fails in AudioCraft's
    cosine scheduler: the check above is the real thing, not a copy of its arithmetic."""
    cfg = composed('solver=musicgen/finetune', [])
    run = apply(cfg, [], {'optim.epochs': 1, 'optim.updates_per_epoch': 1, 'schedule.cosine.warmup': 1})
    with pytest.raises(recipe.RecipeError, match='ZeroDivisionError') as caught:
        recipe.check_schedule(run)
    assert 'schedule.cosine.warmup=0' in str(caught.value)   # the fix it names runs
    assert recipe.check_schedule(apply(cfg, [], {'optim.epochs': 1, 'optim.updates_per_epoch': 1,
                                                 'schedule.cosine.warmup': 0})) == 1


def test_the_schedule_keeps_what_the_user_fixed():
    cfg = composed('solver=musicgen/finetune', ['optim.updates_per_epoch=7', 'optim.epochs=3'])
    values = recipe.schedule([30.0] * 10, [30.0], cfg, epochs=1,
                             fixed={'optim.updates_per_epoch', 'optim.epochs'})
    # --epochs 1 loses to the user's own optim.epochs=3, as every override of theirs wins
    assert values['optim.updates_per_epoch'] == 7 and values['optim.epochs'] == 3
    assert values['schedule.cosine.warmup'] == 2   # a tenth of 21 updates
    with pytest.raises(recipe.RecipeError, match='no training clips'):
        recipe.schedule([], [30.0], cfg)
