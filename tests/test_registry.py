"""The conditioner registry: AudioCraft's builders go through it, for training and loading."""
from __future__ import annotations

import logging
import time
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from od.conditioners import registry
from od.core.environment import MissingWeightsError

from .helpers import FAST, build_solver, datasource_overrides, dora_run, only_xp, read_history


def lm_cfg(conditioners: dict, cross: list):
    """Smallest config AudioCraft's get_lm_model accepts."""
    return OmegaConf.create({
        'device': 'cpu', 'dtype': 'float32', 'lm_model': 'transformer_lm',
        'dataset': {'segment_duration': 2},
        'transformer_lm': {'dim': 16, 'num_heads': 2, 'num_layers': 1, 'n_q': 2, 'card': 8},
        'codebooks_pattern': {'modeling': 'parallel'},
        'attribute_dropout': {}, 'classifier_free_guidance': {'training_dropout': 0., 'inference_coef': 1.},
        'fuser': {'sum': [], 'prepend': [], 'cross': cross, 'input_interpolate': []},
        'conditioners': conditioners,
    })


def test_builtins_are_registered():
    assert {'t5', 'lut', 'chroma_stem', 'clap'} <= set(registry.registered())


def test_install_routes_audiocraft_builder():
    from audiocraft.models import builders
    registry.install()
    registry.install()  # idempotent
    assert builders.get_conditioner_provider is registry.get_conditioner_provider
    import tests.plugins.tempo  # noqa: F401  registers 'tempo_test'
    cfg = lm_cfg({'bpm': {'model': 'tempo_test', 'tempo_test': {'dim': 8}}}, ['bpm'])
    lm = builders.get_lm_model(cfg)
    assert type(lm.condition_provider.conditioners['bpm']).__name__ == 'TempoConditioner'


def test_registered_conditioner_conditions_the_lm():
    """Two tempos give two different next-token distributions through the built LM."""
    from audiocraft.models import builders
    from audiocraft.modules.conditioners import ConditioningAttributes

    import tests.plugins.tempo  # noqa: F401
    registry.install()
    torch.manual_seed(0)
    lm = builders.get_lm_model(lm_cfg({'bpm': {'model': 'tempo_test', 'tempo_test': {'dim': 8}}}, ['bpm'])).eval()
    codes = torch.randint(0, 8, (2, 2, 5))
    attrs = [ConditioningAttributes(text={'bpm': 80.}), ConditioningAttributes(text={'bpm': 160.})]
    conds = lm.condition_provider(lm.condition_provider.tokenize(attrs))
    logits = lm(codes, [], condition_tensors=conds)
    assert not torch.allclose(logits[0], logits[1], atol=1e-4)


def test_unknown_and_duplicate_names_are_clear():
    with pytest.raises(ValueError, match="Unknown conditioner model 'nope'.*registry_modules"):
        registry.build_conditioner('nope', 8, {})
    with pytest.raises(KeyError, match='already registered'):
        registry.register_conditioner('lut')(lambda output_dim: None)


def test_t5_without_weights_fails_fast_and_says_where():
    start = time.time()
    with pytest.raises(MissingWeightsError) as err:
        registry.build_conditioner('t5', 32, {'name': 't5-base', 'finetune': False}, device='cpu')
    assert time.time() - start < 10
    message = str(err.value)
    assert 't5-base' in message and 'checkpoints/reference/t5-base' in message and 'config.json' in message


def test_tokenizer_mismatch_is_refused():
    from od.conditioners.t5 import check_tokenizer_matches
    check_tokenizer_matches(32100, 32128, 't5-base')
    with pytest.raises(RuntimeError, match='104 tokens'):
        check_tokenizer_matches(104, 32128, 't5-base')


@pytest.mark.slow
def test_plugin_conditioner_trains_continues_and_loads(example_data, tmp_path, caplog):
    """A conditioner registered outside od goes through every path that builds an LM:
    `dora run` training (a fresh process imports the plugin from `registry_modules`),
    `continue_from` another XP, and AudioCraft's inference loader."""
    from audiocraft.models import loaders
    from audiocraft.utils.export import export_lm
    base = ['solver=musicgen/debug', 'optim.epochs=1', 'generate.every=0', *FAST,
            *datasource_overrides(example_data),
            'registry_modules=[tests.plugins.tempo]', 'conditioner=none',
            'conditioners={bpm: {model: tempo_test, tempo_test: {dim: 16}}}',
            'fuser.cross=[bpm]', 'classifier_free_guidance.training_dropout=0.2']
    dora_run(base, tmp_path)
    xp = only_xp(tmp_path)
    state = torch.load(xp / 'checkpoint.th', weights_only=True)
    assert any(k.startswith('condition_provider.conditioners.bpm.output_proj') for k in state['model'])

    # continue_from in this process (the solver `dora run` builds, as AudioCraft's run() drives it):
    # a second `dora run` would import torch and AudioCraft again for the same code path.
    import od.train
    import od.workflow.runs
    with od.workflow.runs.dora_dir_at(tmp_path), caplog.at_level(logging.INFO):
        solver = build_solver([*base, f'continue_from=//sig/{xp.name}', 'optim.lr=1e-4'])
        solver.restore()
        solver.run_epoch()
        solver.commit()
        child = Path(solver.xp.folder)
    assert child != xp and child.parent == xp.parent
    assert f'Continuing from provided checkpoint: //sig/{xp.name}' in caplog.text
    assert len(read_history(child)) == 1

    exported = export_lm(xp / 'checkpoint.th', tmp_path / 'export' / 'state_dict.bin')
    lm = loaders.load_lm_model(exported.parent, device='cpu')
    assert type(lm.condition_provider.conditioners['bpm']).__name__ == 'TempoConditioner'
    weight = state['best_state']['model']['condition_provider.conditioners.bpm.output_proj.weight']
    assert torch.equal(lm.condition_provider.conditioners['bpm'].output_proj.weight, weight)
