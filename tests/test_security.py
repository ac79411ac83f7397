"""No file od reads can make it run code (issue 15): pickles, stored configs, the app's inputs.

Every loader gets a file whose pickle would create a marker file if unpickled for real; the
test checks that the marker never appears and that the error names the file.
"""
from __future__ import annotations

import argparse
import json
import pathlib
import sys

import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from od.conditioners import registry
from od.core.environment import MissingWeightsError
from od.core.safe_load import UnsafeFileError


class Payload:
    """Unpickled for real, this creates `marker` (what an attacker's os.system would do)."""

    def __init__(self, marker: pathlib.Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


@pytest.fixture
def evil(tmp_path):
    """evil(path, wrap) writes a pickle holding a Payload (inside `wrap(payload)`); returns the marker."""
    marker = tmp_path / 'CODE_RAN'

    def write(path: pathlib.Path, wrap=lambda p: p) -> pathlib.Path:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(wrap(Payload(marker)), path)
        return path
    yield write
    assert not marker.exists(), "a pickle od read ran code"


def debug_cfg(*overrides: str) -> dict:
    import od.train
    cfg = od.train.main.get_xp(['solver=musicgen/debug', *overrides]).cfg
    return OmegaConf.to_container(cfg, resolve=False)


def test_library_loads_cannot_fall_back_to_full_pickle(evil, tmp_path):
    """od's setup forces weights-only loads process-wide: even a library asking for
    weights_only=False (laion_clap, demucs, old scripts) cannot run a file's code."""
    path = evil(tmp_path / 'x.pt')
    with pytest.raises(Exception, match='Weights only load failed|Unsupported global'):
        torch.load(path, weights_only=False)


@pytest.mark.parametrize('what', ['checkpoint', 'export', 'compression', 'make_ckpt', 'analysis'])
def test_model_loaders_refuse_pickled_code(what, evil, tmp_path):
    from od.inference.loaders import read_model_files
    cfg = debug_cfg()
    if what == 'compression':  # a valid LM file next to a crafted compression model
        folder = tmp_path / 'export'
        folder.mkdir()
        torch.save({'best_state': {'w': torch.zeros(1)}, 'xp.cfg': cfg}, folder / 'state_dict.bin')
        bad = evil(folder / 'compression_state_dict.bin', lambda p: {'best_state': p})
        call = lambda: read_model_files(folder)  # noqa: E731
    elif what == 'export':
        bad = evil(tmp_path / 'export' / 'state_dict.bin', lambda p: {'best_state': p, 'xp.cfg': cfg})
        import od.inference
        call = lambda: od.inference.load(str(bad.parent), device='cpu')  # noqa: E731
    else:
        bad = evil(tmp_path / 'ckpt.th', lambda p: {'best_state': {'model': p}, 'xp.cfg': cfg})
        if what == 'checkpoint':
            import od.inference
            call = lambda: od.inference.load(str(bad), device='cpu')  # noqa: E731
        elif what == 'make_ckpt':
            from od.workflow.make_ckpt import load_source_state
            call = lambda: load_source_state(str(bad))  # noqa: E731
        else:
            from od.analysis.condition import load_condition_provider
            call = lambda: load_condition_provider(str(bad))  # noqa: E731
    with pytest.raises(UnsafeFileError) as info:
        call()
    assert str(bad) in str(info.value) and 'asks for getattr' in str(info.value) and 'od.trust' in str(info.value)



def test_export_cli_refuses_pickled_code(evil, tmp_path, capsys):
    from od.export import main as export_main
    bad = evil(tmp_path / 'ckpt.th', lambda p: {'best_state': {'model': p}, 'xp.cfg': debug_cfg()})
    assert export_main(['--checkpoint', str(bad), '--out', str(tmp_path / 'out')]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and 'od.trust' in err and 'Nothing was written' in err
    assert not (tmp_path / 'out').exists()


def test_data_files_refuse_pickled_code(evil, tmp_path, caplog):
    from od.conditioners.concepts import read_concepts
    from od.data.cache import EmbeddingCache
    from od.solvers.textual_inversion import ConceptTokens

    concepts = evil(tmp_path / 'best.pt', lambda p: {'concepts': {'x': p}})
    with pytest.raises(UnsafeFileError, match=str(concepts)):
        read_concepts(concepts)

    video = tmp_path / 'v.mp4'
    video.write_bytes(b'not decoded here')
    cache = EmbeddingCache('tag', 1.0, tmp_path / 'cache')
    evil(cache.path_for(video), lambda p: {'embeds': p, 'fps': 1.0, 'stamp': [0, 0]})
    assert cache.get(video) is None  # a miss: recomputed, never run
    assert str(cache.path_for(video)) in caplog.text

    tokens = evil(tmp_path / 'tokens.pt')
    with pytest.raises(UnsafeFileError, match=str(tokens)):
        ConceptTokens([{'encoded_path': str(tokens), 'concept': 'x'}], ['{concept}'], frames=2)[0]


def test_clap_checkpoints_load_plain_data_and_numpy_scalars_only(evil, tmp_path):
    """laion's released checkpoints are plain data (+ numpy scalars, allow-listed); anything
    else is refused with the one explicit conversion step, never a silent unsafe retry."""
    from od.encoders.clap import CLAP_WEIGHTS, load_clap
    from od.inference.tiny import write_tiny_clap
    from od.trust import main as trust_main
    folder = write_tiny_clap(tmp_path / 'clap')
    state = torch.load(folder / CLAP_WEIGHTS, weights_only=True)
    state = state.get('state_dict', state)

    torch.save({'epoch': np.int64(15), 'score': np.float64(0.9), 'state_dict': state}, folder / CLAP_WEIGHTS)
    assert load_clap(str(folder)).dim == 32  # numpy scalars next to the weights are fine

    torch.save({'state_dict': state, 'args': argparse.Namespace(lr=1e-4)}, folder / CLAP_WEIGHTS)
    with pytest.raises(MissingWeightsError, match=r'argparse.Namespace.*python -m od.trust'):
        load_clap(str(folder))
    converted = tmp_path / 'converted.pt'
    assert trust_main([str(folder / CLAP_WEIGHTS), '--out', str(converted)]) == 0
    assert 'args' not in torch.load(converted, weights_only=True)
    converted.replace(folder / CLAP_WEIGHTS)
    assert load_clap(str(folder)).dim == 32  # the user's explicit conversion, then safe loads

    evil(folder / CLAP_WEIGHTS, lambda p: {'state_dict': state, 'x': p})
    with pytest.raises(MissingWeightsError, match=str(folder / CLAP_WEIGHTS)):
        load_clap(str(folder))


def test_analysis_vectors_refuse_pickled_arrays(tmp_path):
    from od.analysis.encoders import ENCODERS, EncoderContext
    np.save(tmp_path / 'v.npy', np.array([Payload(tmp_path / 'CODE_RAN')], dtype=object), allow_pickle=True)
    encoder = ENCODERS['npy'](None, EncoderContext(root=tmp_path))
    with pytest.raises(ValueError, match='allow_pickle'):
        encoder.embed(tmp_path / 'v.npy')
    assert not (tmp_path / 'CODE_RAN').exists()


def _plugin_checkpoint(tmp_path, modules):
    """A checkpoint of a debug LM with a plugin conditioner, whose config lists `modules`."""
    from audiocraft.models import builders

    import tests.plugins.tempo  # noqa: F401  (registers tempo_test, to build the LM)
    registry.install()
    import od.train
    cfg = od.train.main.get_xp(['solver=musicgen/debug', 'conditioner=none', 'fuser.cross=[bpm]',
                                'conditioners={bpm: {model: tempo_test, tempo_test: {dim: 16}}}']).cfg
    cfg.device = 'cpu'
    cfg.registry_modules = list(modules)
    state = builders.get_lm_model(cfg).state_dict()
    path = tmp_path / 'plugin.th'
    torch.save({'best_state': {'model': state}, 'xp.cfg': OmegaConf.to_container(cfg)}, path)
    return path


def test_a_model_file_never_imports_the_modules_it_names(tmp_path, monkeypatch):
    """registry_modules stored in a checkpoint are not imported: loading stops and names the
    plugin; the user's own --plugin / plugins= imports it."""
    import od.inference
    evil_module = tmp_path / 'od_evil_plugin.py'
    evil_module.write_text(f"import pathlib\npathlib.Path({str(tmp_path / 'IMPORTED')!r}).touch()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    path = _plugin_checkpoint(tmp_path, ['od_evil_plugin', 'tests.plugins.tempo'])
    # Make tempo_test unknown again, as in a fresh process that never imported the plugin.
    monkeypatch.delitem(registry._FACTORIES, 'tempo_test')
    monkeypatch.delitem(sys.modules, 'tests.plugins.tempo')
    with pytest.raises(registry.PluginRequiredError) as info:
        od.inference.load(str(path), device='cpu')
    message = str(info.value)
    assert 'tempo_test' in message and '--plugin tests.plugins.tempo' in message and str(path) in message
    assert not (tmp_path / 'IMPORTED').exists()

    model = od.inference.load(str(path), device='cpu', plugins=['tests.plugins.tempo'])
    assert type(model.lm.condition_provider.conditioners['bpm']).__name__ == 'TempoConditioner'
    assert not (tmp_path / 'IMPORTED').exists() and 'od_evil_plugin' not in sys.modules


def test_generate_cli_says_which_plugin_to_pass(tmp_path, monkeypatch, capsys):
    from od.generate import main as generate_main
    path = _plugin_checkpoint(tmp_path, ['tests.plugins.tempo'])
    monkeypatch.delitem(registry._FACTORIES, 'tempo_test')
    monkeypatch.delitem(sys.modules, 'tests.plugins.tempo')
    assert generate_main(['a prompt', '--model', str(path), '--output', str(tmp_path / 'o.wav')]) == 2
    assert '--plugin tests.plugins.tempo' in capsys.readouterr().err
    assert generate_main(['--model', str(path), '--plugin', 'no_such_module_od', 'x']) == 2
    assert "cannot import plugin module 'no_such_module_od'" in capsys.readouterr().err
    assert not (tmp_path / 'o.wav').exists()


def _bare_app(tmp_path, dora_dir):
    """A ConceptApp with its state set directly (no dataset or model needed for validation)."""
    from od.workflow.app_jobs import ConceptApp
    app = ConceptApp.__new__(ConceptApp)
    app.dataset, app.embeds = (tmp_path / 'egs').resolve(), (tmp_path / 'embeds').resolve()
    app.embeds.mkdir(parents=True, exist_ok=True)
    app.concepts, app.base, app.proc, app.xp_folder = ['ambient', 'chiptune'], [], None, None
    return app


def test_app_validates_what_files_and_users_give_it(tmp_path, monkeypatch):
    import od.train
    monkeypatch.setattr(od.train.main.dora, 'dir', tmp_path / 'dora')
    app = _bare_app(tmp_path, tmp_path / 'dora')
    started = []
    monkeypatch.setattr(app, 'xp', lambda overrides: started.append(overrides))
    for bad in [dict(tokens_num=-1), dict(batch_size=0), dict(epochs=10 ** 12), dict(lr=float('nan')),
                dict(updates_per_epoch=2.5), dict(lr='1; rm -rf')]:
        args = {'tokens_num': 2, 'lr': 0.01, 'epochs': 1, 'updates_per_epoch': 2, 'batch_size': 2, **bad}
        message = app.start(['ambient'], **args)
        assert message.startswith('Not started') and list(bad)[0] in message, message
    assert 'Unknown concept' in app.start(['ambient],optim.lr=[1'], 2, 0.01, 1, 2, 2)
    assert not started  # nothing reached dora

    outside = tmp_path / 'outside.pt'
    torch.save({'concepts': {'ambient': torch.zeros(2, 4)}, 'xp': 'abcdef12'}, outside)
    with pytest.raises(ValueError, match='not a concepts file under'):
        app.generate(['../outside.pt'], 'x', 1.0, tmp_path / 'o')
    for sig, why in [('../../x', 'not a Dora signature'), ('abcdef12', 'not in this Dora directory')]:
        torch.save({'concepts': {'ambient': torch.zeros(2, 4)}, 'xp': sig}, app.embeds / 'best.pt')
        with pytest.raises(ValueError, match=why):
            app.generate(['best.pt'], 'x', 1.0, tmp_path / 'o')
    with pytest.raises(ValueError, match='duration'):
        app.generate(['best.pt'], 'x', -3, tmp_path / 'o')

    # An XP folder whose argv does not hash to its name (a crafted .argv.json) is refused too.
    crafted = tmp_path / 'dora' / 'xps' / '0badc0de'
    crafted.mkdir(parents=True)
    (crafted / '.argv.json').write_text(json.dumps(['solver=musicgen/textual_inversion_debug']))
    torch.save({'concepts': {'ambient': torch.zeros(2, 4)}, 'xp': '0badc0de'}, app.embeds / 'best.pt')
    with pytest.raises(ValueError, match='did not train this dataset'):
        app.generate(['best.pt'], 'x', 1.0, tmp_path / 'o')


def test_app_binds_locally_and_needs_a_login_elsewhere(tmp_path, capsys):
    from od.app import is_local, parse_auth
    from od.app import main as app_main
    assert is_local('127.0.0.1') and is_local('::1') and is_local('localhost')
    assert not is_local('0.0.0.0') and not is_local('') and not is_local('192.168.1.5')
    with pytest.raises(SystemExit) as info:  # refused before any dataset or model is read
        app_main(['--dataset', str(tmp_path / 'none'), '--embeds', str(tmp_path), '--host', '0.0.0.0'])
    assert info.value.code == 2 and '--auth user:password' in capsys.readouterr().err
    assert parse_auth('me:s3:cret') == ('me', 's3:cret')
    with pytest.raises(ValueError):
        parse_auth('no-password')


def test_app_status_after_stop_says_stopped(tmp_path):
    import subprocess
    app = _bare_app(tmp_path, tmp_path / 'dora')
    app.stopped = False
    app.proc = subprocess.Popen(['sleep', '60'], start_new_session=True)
    assert app.status()[0].startswith('Training')
    app.stop()
    assert app.status()[0].startswith('Stopped after 0 epoch(s)')


def _tiny_htdemucs():
    from demucs.htdemucs import HTDemucs
    torch.manual_seed(0)
    return HTDemucs(['drums', 'bass', 'other', 'vocals'], channels=4, depth=2, t_layers=1, t_heads=1,
                    bottom_channels=0, dconv_comp=1)


@pytest.fixture
def demucs_home(tmp_path, monkeypatch):
    """Empty torch hub and HF caches for demucs; returns (legacy .th path, HF snapshot folder)."""
    from od.encoders import demucs
    monkeypatch.setenv('TORCH_HOME', str(tmp_path / 'torch'))
    monkeypatch.setattr(demucs, 'HF_CACHE_DIR', tmp_path / 'hf')
    legacy = demucs.torch_hub_file('955717e8')
    legacy.parent.mkdir(parents=True)
    return legacy, tmp_path / 'hf'


def chroma_stem():
    from od.conditioners.builtin import chroma_stem as build
    return build(output_dim=16, sample_rate=32000, n_chroma=12, radix2_exp=12, duration=2.0)


@pytest.mark.parametrize('source', ['torch_hub_pickle', 'hf_safetensors'])
def test_melody_conditioner_loads_demucs_weights_only(source, demucs_home):
    """htdemucs from either cache demucs reads, through od's weights-only reader: the weights arrive."""
    from demucs.states import serialize_model
    from safetensors.torch import save_file

    from .helpers import hub_snapshot
    legacy, hf = demucs_home
    model = _tiny_htdemucs()
    if source == 'torch_hub_pickle':
        torch.save(serialize_model(model, OmegaConf.create({})), legacy)
    else:
        snapshot = hub_snapshot(hf, 'adefossez/HTDemucs')
        args, kwargs = model._init_args_kwargs
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, snapshot / '955717e8.safetensors',
                  metadata={'klass': 'demucs.htdemucs.HTDemucs', 'args': json.dumps(list(args)),
                            'kwargs': json.dumps(kwargs)})
    loaded = chroma_stem().demucs.models[0]
    expected = model.state_dict()
    for key, value in loaded.state_dict().items():
        assert torch.allclose(value.float(), expected[key].float(), atol=1e-3), key  # the .th stores fp16


def test_melody_conditioner_refuses_demucs_files_that_run_code(demucs_home, evil, tmp_path):
    from safetensors.torch import save_file

    from .helpers import hub_snapshot
    legacy, hf = demucs_home
    evil(legacy, lambda p: {'klass': p, 'args': (), 'kwargs': {}, 'state': {}})
    with pytest.raises(UnsafeFileError, match=str(legacy)):
        chroma_stem()
    # demucs imports and calls the class a safetensors file names: here exec() of code.
    marker = tmp_path / 'CODE_RAN'
    snapshot = hub_snapshot(hf, 'adefossez/HTDemucs')
    save_file({'x': torch.zeros(1)}, snapshot / '955717e8.safetensors',
              metadata={'klass': 'builtins.exec', 'args': json.dumps([f"open({str(marker)!r}, 'w')"]),
                        'kwargs': '{}'})
    with pytest.raises(UnsafeFileError, match='builtins.exec'):
        chroma_stem()
    assert not marker.exists()


def test_melody_conditioner_without_demucs_weights_says_where_they_go(demucs_home):
    legacy, _ = demucs_home
    with pytest.raises(MissingWeightsError, match=f"adefossez/HTDemucs.*{legacy}"):
        chroma_stem()
