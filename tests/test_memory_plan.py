"""The memory plan (od.doctor --plan): what it counts, and the override it proposes."""
from __future__ import annotations

import pytest

from od import doctor
from od.solvers import memory_plan

from .test_config import compose

SMALL = ['model/lm/model_scale=small', 'conditioner=text2music', 'dset=audio/example', 'dataset.segment_duration=2']


def test_doctor_help_and_plan_cli(capsys):
    with pytest.raises(SystemExit) as exc:
        doctor.main(['--help'])
    assert exc.value.code == 0 and '--plan' in capsys.readouterr().out
    assert doctor.main(['--plan', '--gpu-memory', '8', 'solver=musicgen/finetune', *SMALL]) == 0
    out = capsys.readouterr().out
    assert 'does NOT fit a 8 GiB GPU' in out and 'to fit: trainable=lora' in out
    assert doctor.main(['--plan', '--gpu-memory', '8', 'solver=musicgen/finetune_lora', *SMALL]) == 0
    out = capsys.readouterr().out
    assert 'fits a 8 GiB GPU' in out and 'LoRA rank 16' in out and 'to fit' not in out


def test_plan_follows_the_config():
    full = memory_plan.plan(compose('solver=musicgen/finetune', *SMALL).cfg, device_is_gpu=True)
    lora = memory_plan.plan(compose('solver=musicgen/finetune_lora', *SMALL).cfg, device_is_gpu=True)
    assert full.trainable == full.params > 4e8 and lora.trainable < 0.02 * lora.params
    assert full.optimizer == 2 * full.gradients == 8 * full.trainable  # AdamW, float32
    assert lora.static < full.static / 3
    # Accumulation divides what one forward holds, not the update.
    one = memory_plan.plan(compose('solver=musicgen/finetune', *SMALL, 'optim.accumulate=1').cfg, device_is_gpu=True)
    grows = lambda p: p.per_micro_batch - p.activations_per_step  # noqa: E731  (the part that scales with samples)
    assert one.static == full.static and grows(one) == pytest.approx(4 * grows(full), rel=1e-3)
    # LoRA's adapted weights (W + BA per wrapped layer) are kept once per micro-batch, not per sample.
    assert lora.activations_per_step > full.activations_per_step
    # A card too small for the micro-batch: the plan proposes the split that fits.
    room = one.static + one.activations_per_step + 3 * (one.activations_per_sample + one.workspace_per_sample)
    fix = memory_plan.suggestion(None, one, int(room / 0.9) + 1)
    assert fix.startswith('optim.accumulate=8')  # micro-batch 2 of the 16 (3 would fit, 16 / 8 = 2)
