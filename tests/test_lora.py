"""LoRA adapters (peft) on the LM: what trains, trained-only checkpoints, loading, merged export."""
from __future__ import annotations

import pytest
import torch

from od import export as od_export
from od.inference import load
from od.solvers import lora
from od.solvers.frozen_base import FROZEN_BASE

from .helpers import build_solver, colors_data

pytestmark = pytest.mark.slow

# A CLIP-conditioned debug LM on AudioCraft's own attention (the path of every MusicGen config).
SMALL_RUN = ['transformer_lm.custom=true', 'optim.epochs=2', 'optim.updates_per_epoch=2', 'dataset.batch_size=2',
             'dataset.num_workers=0', 'dataset.segment_duration=1.0', 'dataset.valid.num_samples=2',
             'generate.every=0', 'evaluate.every=0', 'optim.lr=1e-2', 'dataset.generate.num_samples=2']


@pytest.fixture(scope='module')
def colors(tmp_path_factory):
    base = tmp_path_factory.mktemp('lora')
    return base, colors_data(base, duration=2.0) + SMALL_RUN


@pytest.fixture(scope='module')
def lora_xp(colors):
    """A random base checkpoint, then one epoch (of 2: no generate stage) of `trainable=[lora, <conditioner projection>]` on it."""
    base, args = colors
    start = build_solver(args + ['label=base'])
    start.commit()
    base_file = start.checkpoint_path()
    lora_args = args + [f'continue_from={base_file}', "trainable=[lora,output_proj]", 'lora.rank=4']
    solver = build_solver(lora_args)
    solver.restore()
    before = {k: v.clone() for k, v in solver.model.state_dict().items()}
    solver.run_epoch()
    solver.commit()
    return {'base_file': base_file, 'args': lora_args, 'solver': solver, 'before': before}


def test_only_adapters_and_the_projection_train(lora_xp):
    solver, before = lora_xp['solver'], lora_xp['before']
    after = solver.model.state_dict()
    adapters = lora.adapter_names(solver.model)
    layers = solver.cfg.transformer_lm.num_layers
    assert len(adapters) == 2 * 4 * layers  # A and B of q/k/v + out_proj, self- and cross-attention
    projection = 'condition_provider.conditioners.self_wav.output_proj.weight'
    trained = {n for n, p in solver.model.named_parameters() if p.requires_grad}
    in_optim = {id(p) for g in solver.optimizer.param_groups for p in g['params']}
    assert in_optim == {id(p) for n, p in solver.model.named_parameters() if n in trained}
    moved = {k for k in after if not torch.equal(after[k], before[k])}
    assert projection in moved and any(k.endswith('lora_B.weight') for k in moved)
    assert moved <= set(adapters) | {projection, projection.replace('weight', 'bias')}
    base = torch.load(lora_xp['base_file'], weights_only=True)['best_state']['model']
    assert set(after) - set(adapters) == set(base)  # AudioCraft's names, plus the adapters


def test_checkpoint_keeps_the_trained_tensors_and_loads_everywhere(lora_xp):
    solver = lora_xp['solver']
    saved = torch.load(solver.checkpoint_path(), weights_only=True)
    trained = set(saved['model'])
    assert trained == set(saved['best_state']['model'])
    assert trained and all(lora.is_adapter(k) or 'output_proj' in k for k in trained)
    assert saved[FROZEN_BASE]['source'] == str(lora_xp['base_file'].resolve())
    assert solver.checkpoint_path().stat().st_size * 3 < lora_xp['base_file'].stat().st_size
    expected = {k: v.clone() for k, v in solver.model.state_dict().items()}
    # od.inference.load (od.generate, od.clip): base from its file, adapters applied.
    lm = load(str(solver.checkpoint_path()), device='cpu').lm
    assert lm.od_lora is not None
    assert all(torch.equal(v, expected[k]) for k, v in lm.state_dict().items())
    # Resume: the same XP in a new solver continues with the same weights.
    again = build_solver(lora_xp['args'])
    assert again.restore() and again.epoch == 2
    assert all(torch.equal(v, expected[k]) for k, v in again.model.state_dict().items())


def test_merged_export_generates_the_unmerged_tokens(lora_xp, colors, tmp_path):
    solver = lora_xp['solver']
    checkpoint = solver.checkpoint_path()
    merged = od_export.export(checkpoint, 'merged', tmp_path, merge_lora=True)
    state = torch.load(merged / 'state_dict.bin', weights_only=True)
    base = torch.load(lora_xp['base_file'], weights_only=True)['best_state']['model']
    assert set(state['best_state']) == set(base)  # plain AudioCraft names: no adapter left
    from audiocraft.models import builders
    from omegaconf import OmegaConf
    cfg = OmegaConf.create(state['xp.cfg'])
    assert not lora.uses_lora(cfg.trainable)
    video = next((colors[0] / 'dataset' / 'test').glob('*.mp4'))
    tokens = []
    for source in (checkpoint, merged):  # the XP's checkpoint: unmerged adapters
        model = load(str(source), device='cpu')
        assert (getattr(model.lm, 'od_lora', None) is not None) == (source == checkpoint)
        model.set_generation_params(duration=1.0, top_k=50)
        torch.manual_seed(3)
        tokens.append(model.generate_from(media=[str(video)], return_tokens=True)[1])
    assert torch.equal(tokens[0], tokens[1])
    # The merged weights load into AudioCraft's own LM builder, strictly.
    from od.conditioners import registry
    registry.install()
    cfg.device = 'cpu'
    builders.get_lm_model(cfg).load_state_dict(state['best_state'])
    with pytest.raises(ValueError, match='no LoRA adapters'):
        od_export.export(merged / 'state_dict.bin', 'again', tmp_path, merge_lora=True)


def test_targets_are_checked(lora_xp):
    from audiocraft.models import builders
    from omegaconf import OmegaConf
    cfg = OmegaConf.create(OmegaConf.to_container(lora_xp['solver'].cfg, resolve=True))
    cfg.device = 'cpu'
    lm = builders.get_lm_model(cfg)
    with pytest.raises(ValueError, match='match no module'):
        lora.resolve_targets(lm, ['self_atn$'])
    with pytest.raises(ValueError, match='only nn.Linear layers and attention'):
        lora.resolve_targets(lm, [r'layers\.0$'])
    with pytest.raises(ValueError, match='do not support dropout'):
        lora.apply(lm, lora.LoraSettings(dropout=0.1))
    linears, fused = lora.resolve_targets(lm, [r'linear[12]$'])
    assert len(linears) == 2 * cfg.transformer_lm.num_layers and not fused
    cfg.transformer_lm.custom = False
    with pytest.raises(ValueError, match='nn.MultiheadAttention'):
        lora.resolve_targets(builders.get_lm_model(cfg), lora.DEFAULT_TARGETS)
