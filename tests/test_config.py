"""Every file of the config tree composes (through Dora's main, as `dora run` does) or builds."""
from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from od.core.environment import CONFIG_DIR

MUSICGEN_SOLVERS = ['musicgen/debug', 'musicgen/musicgen_base_32khz', 'musicgen/video_debug',
                    'musicgen/finetune', 'musicgen/finetune_lora']


def group_options(group: str):
    folder = CONFIG_DIR / group
    return sorted(p.relative_to(folder).with_suffix('').as_posix() for p in folder.glob('*.yaml'))


def compose(*overrides: str):
    import od.train
    xp = od.train.main.get_xp(list(overrides))
    OmegaConf.resolve(xp.cfg)  # every interpolation must resolve
    return xp


COMPOSED = {
    'solver/musicgen': [[f'solver={s}', 'dset=audio/example'] for s in MUSICGEN_SOLVERS],
    'conditioner': [['solver=musicgen/debug', f'conditioner={c}'] for c in group_options('conditioner')],
    'model/lm/model_scale': [['solver=musicgen/debug', f'model/lm/model_scale={m}']
                             for m in group_options('model/lm/model_scale')],
    'dset/audio': [['solver=musicgen/debug', f'dset=audio/{d}'] for d in group_options('dset/audio')
                   if d != 'default'],
    'augmentations': [['solver=musicgen/debug', f'augmentations={a}'] for a in group_options('augmentations')],
    'solver/musicgen/evaluation': [['solver=musicgen/debug', f'solver/musicgen/evaluation={e}']
                                   for e in group_options('solver/musicgen/evaluation')],
    'dset/concepts': [[f'solver=musicgen/{s}', f'dset=concepts/{d}'] for d in group_options('dset/concepts')
                      for s in ('textual_inversion', 'textual_inversion_debug')],
}


@pytest.mark.parametrize('overrides', [o for opts in COMPOSED.values() for o in opts], ids=' '.join)
def test_composes(overrides):
    xp = compose(*overrides)
    assert xp.cfg.solver == ('textual_inversion' if 'textual_inversion' in overrides[0] else 'musicgen')
    assert xp.cfg.sample_rate == 32000


@pytest.mark.parametrize('solver', ['finetune', 'finetune_lora'])
@pytest.mark.parametrize('scale', ['small', 'medium'])
@pytest.mark.parametrize('conditioner', ['clipemb2music', 'clapemb2music', 'text2music'])
def test_finetune_presets(solver, scale, conditioner):
    """The one-GPU presets compose for each scale and conditioner: autocast, no FSDP, a batch of
    16 per update split into per-scale micro-batches, LoRA only in the LoRA preset."""
    cfg = compose(f'solver=musicgen/{solver}', f'model/lm/model_scale={scale}', f'conditioner={conditioner}',
                  'dset=audio/example').cfg
    assert cfg.autocast and not cfg.fsdp.use and cfg.optim.optimizer == 'adamw'
    assert cfg.dataset.batch_size == 16 and cfg.dataset.batch_size % cfg.optim.accumulate == 0
    assert cfg.schedule.lr_scheduler == 'cosine' and cfg.schedule.cosine.warmup > 0
    assert cfg.optim.ema.use == (solver == 'finetune') and cfg.optim.ema.device == 'cpu'
    assert (list(cfg.trainable) == ['lora', 'condition_provider']) == (solver == 'finetune_lora')
    micro = {('finetune', 'small'): 4, ('finetune', 'medium'): 2, ('finetune_lora', 'small'): 8,
             ('finetune_lora', 'medium'): 2}[(solver, scale)]
    assert cfg.dataset.batch_size // cfg.optim.accumulate == micro


def test_model_scales_set_sizes():
    dims = {m: compose('solver=musicgen/debug', f'model/lm/model_scale={m}').cfg.transformer_lm.dim
            for m in ['xsmall', 'small', 'medium', 'large']}
    assert dims == {'xsmall': 64, 'small': 1024, 'medium': 1536, 'large': 2048}


def test_upstream_override_names():
    """The seed's command line composes unchanged."""
    xp = compose('solver=musicgen/musicgen_base_32khz', 'model/lm/model_scale=small',
                 'conditioner=text2music', 'dset=audio/example', 'continue_from=checkpoints/x.th')
    assert xp.cfg.continue_from == 'checkpoints/x.th'
    assert xp.cfg.conditioners.description.model == 't5'
    assert xp.cfg.dataset.train.merge_text_p == 0.25  # musicgen_base uses text augmentation


def test_xp_dir_and_signature():
    import od.train
    from od.core.environment import ROOT
    a = compose('solver=musicgen/debug')
    b = compose('solver=musicgen/debug', 'device=cpu', 'dataset.num_workers=0')
    c = compose('solver=musicgen/debug', 'optim.lr=0.01')
    assert a.sig == b.sig != c.sig  # device/workers do not change what is learned
    assert od.train.main.dora.dir in (ROOT / 'logs', Path(__import__('os').environ.get('AUDIOCRAFT_DORA_DIR', '')))
    assert a.folder == od.train.main.dora.dir / 'xps' / a.sig


@pytest.mark.parametrize('name', group_options('model/encodec'))
def test_encodec_configs_build(name):
    from audiocraft.models import builders
    cfg = OmegaConf.merge(OmegaConf.create({'sample_rate': 32000, 'channels': 1, 'device': 'cpu'}),
                          *[OmegaConf.load(CONFIG_DIR / 'model' / 'encodec' / f'{n}.yaml')
                            for n in (['default'] if name == 'default' else ['default', name])])
    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    model = builders.get_compression_model(cfg)
    assert model.sample_rate == 32000 and model.channels == 1


def test_every_config_file_is_covered():
    covered = {'config.yaml', 'teams/default.yaml', 'solver/default.yaml', 'solver/musicgen/default.yaml',
               'dset/default.yaml', 'dset/audio/default.yaml', 'model/lm/default.yaml',
               'model/lm/musicgen_lm.yaml'}
    covered |= {f'solver/{s}.yaml' for s in MUSICGEN_SOLVERS}
    for group, opts in COMPOSED.items():
        covered |= {f'{group}/{o}.yaml' for o in group_options(group)}
    covered |= {f'model/encodec/{o}.yaml' for o in group_options('model/encodec')}
    files = {p.relative_to(CONFIG_DIR).as_posix() for p in CONFIG_DIR.rglob('*.yaml')}
    assert files - covered == set(), "config files no test composes"


def test_team_config_needs_no_user_env(monkeypatch):
    monkeypatch.delenv('USER', raising=False)
    cfg = OmegaConf.load(CONFIG_DIR / 'teams' / 'default.yaml')
    OmegaConf.resolve(cfg)
    assert cfg.default.dora_dir.endswith('/logs')
