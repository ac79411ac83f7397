"""Every hook od has into AudioCraft, laion-clap and demucs (od/hooks.py) is exercised by a test
of its effect (named in the hook, run here or in the test of the feature it serves); `od.doctor`'s
name check, which catches an upgrade that moves one, is shown to catch it."""
from __future__ import annotations

from pathlib import Path

from od import hooks


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
    """od.registry.install rebinds exactly one AudioCraft global, and every path that builds an LM
    then goes through the registry."""
    from audiocraft.models import builders

    from od import registry
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

    from od.environment import KNOWN_WARNINGS

    from .helpers import ROOT
    ini = configparser.ConfigParser()
    ini.read(ROOT / 'pytest.ini')
    filters = [f.strip() for f in ini['pytest']['filterwarnings'].strip().splitlines()]
    expected = [f'ignore:{message}:{category.__name__}:{module}' for message, category, module in KNOWN_WARNINGS]
    assert filters == expected
