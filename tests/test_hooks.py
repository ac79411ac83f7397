"""Every hook od has into AudioCraft and laion-clap (od/hooks.py) finds the names it relies on in
the installed versions: an upgrade that moves one fails here, in one place, by name."""
from __future__ import annotations

import pytest

from od import hooks


@pytest.mark.parametrize('hook', hooks.HOOKS, ids=[h.touches.split(' ')[0] for h in hooks.HOOKS])
def test_hook_is_where_od_expects_it(hook):
    hook.check()


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
