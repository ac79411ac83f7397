"""Every hook od has into AudioCraft, laion-clap and demucs (od/conditioners/hooks.py) is exercised by a test
of its effect (named in the hook, run here or in the test of the feature it serves); `od.doctor`'s
name check, which catches an upgrade that moves one, is shown to catch it."""
from __future__ import annotations

from pathlib import Path

import pytest

from od.conditioners import hooks


def test_every_hook_is_exercised_by_a_behaviour_test():
    """Each hook names the test that exercises its effect (not its source text); that test exists."""
    import ast

    from .helpers import ROOT
    for hook in hooks.HOOKS:
        path, _, name = hook.exercised_by.partition('::')
        tree = ast.parse((ROOT / path).read_text())
        names = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))}
        assert name.startswith('test_') and name in names, f"{hook.where}: {hook.exercised_by} does not exist"


def test_doctor_check_reports_a_moved_name(monkeypatch):
    """`hooks.verify()` (run by od.doctor after an upgrade) names a hook whose target moved."""
    from audiocraft.modules import conditioners as ac
    assert hooks.verify() == []

    def moved(self, *args, **kwargs):  # an upgrade that stops calling pretrained.get_model
        pass
    monkeypatch.setattr(ac.ChromaStemConditioner, '__init__', moved)
    problems = hooks.verify()
    assert len(problems) == 1 and problems[0].startswith('od/encoders/demucs.py:serving_htdemucs'), problems


def test_installed_versions_are_the_pinned_ones():
    from importlib import metadata
    assert metadata.version('audiocraft') == hooks.AUDIOCRAFT_VERSION
    assert metadata.version('laion-clap') == hooks.LAION_CLAP_VERSION


def test_generation_names_samples_by_their_media_and_restores_the_manager(tmp_path):
    """While od's generate stage runs, AudioCraft's solver builds od's manager (samples named by
    their video); afterwards its own class is back."""
    import types

    import torch
    from audiocraft.solvers import musicgen
    from audiocraft.utils.samples.manager import SampleManager
    from omegaconf import OmegaConf

    from od.solvers.samples import media_sample_names
    xp = types.SimpleNamespace(folder=tmp_path, cfg=OmegaConf.create({
        'sample_rate': 16000, 'generate': {'path': 'samples', 'audio': {'format': 'wav', 'strategy': 'peak', 'sample_rate': 16000}}}))
    with media_sample_names():
        manager = musicgen.SampleManager(xp)  # the lookup AudioCraft's generate_audio does
        sample = manager.add_sample(0.1 * torch.randn(1, 16000), epoch=1, index=0,
                                    conditions={'self_wav': ['/videos/red_01.mp4']})
    assert Path(sample.path).name.startswith('red_01_unprompted_'), sample.path
    assert Path(sample.path).is_file() or Path(sample.path).with_suffix('.wav').is_file()
    assert musicgen.SampleManager is SampleManager


def test_registry_is_the_only_rebinding_of_the_lm_builder():
    """od.conditioners.registry.install rebinds exactly one AudioCraft global, and every path that builds an LM
    then goes through the registry."""
    from audiocraft.models import builders

    from od.conditioners import registry
    registry.install()
    assert builders.get_conditioner_provider is registry.get_conditioner_provider
    assert not hasattr(registry, '_upstream_get_conditioner_provider')


def test_clipping_is_summarised_in_one_line(tmp_path, capfd, caplog):
    """AudioCraft's loudness strategy prints a CLIPPING line per clipped file; od counts them and
    logs one summary line per stage instead (quiet files are not counted as clipped)."""
    import logging

    import torch
    from audiocraft.data.audio import audio_write

    from od.solvers.samples import CLIPPING
    t = torch.linspace(0, 200, 16000)
    quiet = 0.01 * torch.sin(t)[None]
    loud = quiet.clone()
    loud[:, ::1000] = 0.9  # sparse peaks: raising the quiet body to -14 LUFS pushes them past 1
    with caplog.at_level(logging.INFO, logger='od.solvers.samples'), CLIPPING.summary('generate'):
        for i in range(3):
            CLIPPING.count(audio_write, tmp_path / f'loud{i}', loud, 16000, strategy='loudness')
        CLIPPING.count(audio_write, tmp_path / 'quiet', quiet, 16000, strategy='peak')
    assert 'CLIPPING' not in capfd.readouterr().err
    lines = [r.getMessage() for r in caplog.records if 'clipped' in r.getMessage()]
    assert lines == ['generate: 3 of 4 written samples clipped after loudness normalisation (a bit is okay; '
                     'generate.audio.loudness_headroom_db adds headroom)'], lines
    assert (tmp_path / 'loud2.wav').exists() and (tmp_path / 'quiet.wav').exists()


def test_known_warnings_are_filtered_by_module_in_pytest_too():
    """pytest.ini silences the same third-party warnings as od's processes, each by its module;
    no whole category is ignored."""
    import configparser

    from od.core.environment import KNOWN_WARNINGS

    from .helpers import ROOT
    ini = configparser.ConfigParser()
    ini.read(ROOT / 'pytest.ini')
    filters = [f.strip() for f in ini['pytest']['filterwarnings'].strip().splitlines()]
    expected = [f'ignore:{message}:{category.__name__}:{module}' for message, category, module in KNOWN_WARNINGS]
    assert filters == expected


IMPORT_CHILD = r'''
import json, os, sys, warnings
# What importing the dependencies does by itself is theirs: import them first.
import audiocraft.metrics, audiocraft.models, audiocraft.solvers.musicgen  # noqa
from audiocraft.models import builders
os.environ['NUMBA_CACHE_DIR'] = sys.argv[1]  # laion's PANN module (imported above) set /tmp/: the user's back

def snapshot():
    return {'env': dict(os.environ), 'filters': len(warnings.filters),
            'meta_path': [type(f).__name__ for f in sys.meta_path],
            'builder': builders.get_conditioner_provider.__module__, 'train_alias': 'audiocraft.train' in sys.modules}

before = snapshot()
import od, od.core.environment, od.conditioners.hooks, od.conditioners.registry, od.encoders.clap, od.data.ingest, od.metrics.suite  # noqa
import od.solvers.memory_plan, od.inference.loaders, od.workflow.stages, od.report  # noqa
imported = snapshot()
od.core.environment.setup()
started = snapshot()
od.conditioners.hooks.install()
installed = snapshot()
print('SNAPSHOTS' + json.dumps([before, imported, started, installed]))
'''


@pytest.mark.slow   # fresh processes that import AudioCraft: ~15 s
def test_importing_od_changes_nothing_in_the_process():
    """`import od` and its library modules leave the environment, the warning filters, the import
    hooks and AudioCraft's names as they were; a command's start-up (environment.setup) and
    hooks.install() are what change them, and this test sees those changes."""
    import json
    import os
    import subprocess
    import sys

    from od.core import numba_cache

    from .helpers import ROOT
    env = {k: v for k, v in os.environ.items()
           if k not in ('AUDIOCRAFT_CONFIG', 'OD_ROOT', 'TORCH_FORCE_WEIGHTS_ONLY_LOAD', 'TOKENIZERS_PARALLELISM')}
    env.update(HF_HUB_OFFLINE='1', NUMBA_CACHE_DIR=str(numba_cache.cache_dir()))  # the user's own settings
    proc = subprocess.run([sys.executable, '-c', IMPORT_CHILD, env['NUMBA_CACHE_DIR']], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    before, imported, started, installed = json.loads(proc.stdout.split('SNAPSHOTS', 1)[1])
    assert imported == before
    added = set(started['env']) - set(before['env'])
    assert {'AUDIOCRAFT_CONFIG', 'TORCH_FORCE_WEIGHTS_ONLY_LOAD'} <= added, added
    assert started['filters'] > before['filters']
    assert started['env']['HF_HUB_OFFLINE'] == '1' and started['env']['NUMBA_CACHE_DIR'] == env['NUMBA_CACHE_DIR']
    assert before['builder'] == 'audiocraft.models.builders' and installed['builder'] == 'od.conditioners.registry'
    assert '_RestoreAfterPann' in started['meta_path'] and '_RestoreAfterPann' not in imported['meta_path']
    assert not installed['train_alias']  # only od.train makes itself audiocraft.train


def test_install_is_idempotent_and_aliases_only_the_dora_main_it_is_given(monkeypatch):
    import sys
    import types

    from audiocraft.models import builders

    from od.conditioners import registry
    monkeypatch.delitem(sys.modules, 'audiocraft.train', raising=False)
    hooks.install()
    hooks.install()
    assert builders.get_conditioner_provider is registry.get_conditioner_provider
    assert 'audiocraft.train' not in sys.modules
    main_module = types.ModuleType('dora_main')
    hooks.install(dora_main_module=main_module)
    assert sys.modules['audiocraft.train'] is main_module


def test_every_hook_says_its_scope_and_release():
    for hook in hooks.HOOKS:
        assert hook.scope in hooks.SCOPES, hook.where
        name, _, version = hook.checked_with.partition(' ')
        assert name in ('audiocraft', 'laion-clap', 'demucs') and version[:1].isdigit(), hook.checked_with


def test_lm_attributes_leave_the_state_dict_as_audiocraft_saves_it(tmp_path):
    """`lm.cfg` and `lm.od_lora` are plain attributes: the LM's state dict holds exactly AudioCraft's
    tensors (plus the adapters' own, under plain names), and it saves and loads weights-only."""
    import torch

    import od.train
    import od.workflow.runs
    from od.inference.loaders import new_lm
    from od.solvers import lora
    cfg = od.workflow.runs.compose(['solver=musicgen/debug', 'transformer_lm.custom=true'])
    cfg.device = 'cpu'
    plain = new_lm(cfg, 0)
    names = set(plain.state_dict())
    lm = new_lm(cfg, 0)
    lm.cfg = cfg
    lora.apply(lm, lora.LoraSettings(rank=2, alpha=4.0))
    state = lm.state_dict()
    assert lm.od_lora is not None and lm.cfg is cfg
    assert names <= set(state) and all(lora.is_adapter(k) for k in set(state) - names)
    assert not any('od_lora' in k or k.startswith('cfg') for k in state)
    torch.save(state, tmp_path / 'lm.th')
    again = torch.load(tmp_path / 'lm.th', weights_only=True)
    assert set(again) == set(state)
