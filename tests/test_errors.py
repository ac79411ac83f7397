"""Errors a user meets often are one-paragraph messages with a non-zero exit, not tracebacks (issue 15)."""
from __future__ import annotations

import re
import subprocess

import pytest

from .helpers import ROOT, dora_cmd, dora_env


def dora_fails(args, tmp_path) -> str:
    proc = subprocess.run(dora_cmd(*args), cwd=ROOT, env=dora_env(tmp_path), capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode != 0, proc.stdout[-2000:]
    assert 'Traceback' not in proc.stderr, proc.stderr[-4000:]
    return proc.stderr


@pytest.mark.slow
def test_a_mistyped_dataset_lists_the_real_ones(tmp_path):
    err = dora_fails(['solver=musicgen/debug', 'dset=audio/exmaple'], tmp_path)
    assert 'dset=audio/exmaple: there is no config/dset/audio/exmaple.yaml' in err
    assert 'audio/example' in err and 'audio/colors' in err and 'od.ingest' in err


@pytest.mark.slow
def test_a_missing_manifest_says_how_to_write_it(tmp_path):
    err = dora_fails(['solver=musicgen/debug', 'dset=audio/example', f'datasource.train={tmp_path}/egs/train'],
                     tmp_path)
    assert f'datasource.train: no manifest at {tmp_path}/egs/train/data.jsonl' in err
    assert 'python -m od.manifest' in err
    # recorded as the user's to fix (od.pipeline then says so, not "report a bug")
    import json

    from od.workflow.runs import FAILURE_FILE
    from od.workflow.stages import training_failure
    xp = next((tmp_path / 'xps').iterdir())
    assert json.loads((xp / FAILURE_FILE).read_text())['kind'] == 'user'
    message = training_failure(xp, 1)
    assert message.startswith('training stopped: ') and 'Fix that' in message and 'bug' not in message


def test_in_process_config_errors_are_config_errors():
    import od.train
    import od.workflow.runs
    from od.core.environment import ConfigError
    with pytest.raises(ConfigError, match=r'solver=musicgen/nope.*musicgen/debug'):
        od.train.main.get_xp(['solver=musicgen/nope'])


@pytest.mark.slow
def test_a_second_run_of_a_running_xp_refuses(example_data, tmp_path, monkeypatch):
    """Two identical `dora run` at once would interleave one XP's epochs and checkpoints: the
    second stops with who holds the XP (here: this test process, which took the XP's lock)."""
    import os

    import od.train
    import od.workflow.runs

    from .helpers import datasource_overrides
    args = ['solver=musicgen/debug', *datasource_overrides(example_data)]
    sig = od.train.main.get_xp(args).sig
    monkeypatch.setattr(od.workflow.runs, '_XP_LOCK', None)
    od.workflow.runs.lock_xp(tmp_path / 'xps' / sig)
    try:
        err = dora_fails(args, tmp_path)
    finally:
        od.workflow.runs._XP_LOCK.close()
    assert f'XP {sig} is already being trained by pid {os.getpid()}' in err
    assert not (tmp_path / 'xps' / sig / 'checkpoint.th').exists()


def test_prep_reports_missing_weights_and_configs_as_messages(example_data, tmp_path, capsys):
    from od.prep import main as prep_main

    from .helpers import datasource_overrides
    assert prep_main(['solver=musicgen/debug', 'dset=audio/nope']) == 2
    assert 'there is no config/dset/audio/nope.yaml' in capsys.readouterr().err
    clip = ['solver=musicgen/debug', 'conditioner=clipemb2music', 'dset=audio/example']
    assert prep_main([*clip, f'datasource.train={tmp_path}']) == 2
    assert 'python -m od.manifest' in capsys.readouterr().err
    assert prep_main([*clip, f'conditioners.self_wav.clip_frames.name={tmp_path}/no-clip',
                      *datasource_overrides(example_data)]) == 2
    err = capsys.readouterr().err
    assert f'{tmp_path}/no-clip' in err and 'Traceback' not in err


@pytest.mark.parametrize('line, says', [
    ('{"path": "/x.wav", "duration": 3', 'line 2 is not JSON'),
    ('[1, 2, 3]', "line 2 is not an object with 'path' and a numeric 'duration'"),
    ('{"duration": 3.0}', "line 2 is not an object with 'path'")])
def test_manifest_lines_that_would_crash_the_loader_are_named(example_data, tmp_path, capsys, line, says):
    """A hand-edited manifest: dora run (before the model is built) and od.prep name the file and line."""
    import json

    from omegaconf import OmegaConf

    from od.core.environment import ConfigError
    from od.prep import main as prep_main
    from od.solvers.musicgen import check_manifests
    good = (example_data / 'egs' / 'train' / 'data.jsonl').read_text().splitlines()[0]
    (tmp_path / 'data.jsonl').write_text(good + '\n' + line + '\n')
    with pytest.raises(ConfigError, match=f"datasource.train: {tmp_path}/data.jsonl {says}"):
        check_manifests(OmegaConf.create({'datasource': {'train': str(tmp_path)}}))
    clip = ['solver=musicgen/debug', 'conditioner=clipemb2music', 'dset=audio/example', f'datasource.train={tmp_path}']
    assert prep_main(clip) == 2
    err = capsys.readouterr().err
    assert f'{tmp_path}/data.jsonl {says}' in err and 'python -m od.manifest' in err
    gone = json.dumps({**json.loads(good), 'path': str(tmp_path / 'gone.wav')})
    (tmp_path / 'data.jsonl').write_text(good + '\n' + gone + '\n')
    with pytest.raises(ConfigError, match=f"1 of 2 files listed in {tmp_path} are gone .{tmp_path}/gone.wav"):
        check_manifests(OmegaConf.create({'datasource': {'train': str(tmp_path)}}))


@pytest.mark.parametrize('sidecar, says', [('[1, 2]', 'must be a JSON object'), ('{"bpm": "fast"}', "'bpm'"),
                                           ('{not json', 'unreadable sidecar'), (None, 'unreadable sidecar')])
def test_sidecars_that_would_crash_a_batch_are_named_before_training(example_data, tmp_path, sidecar, says):
    """A sidecar changed after the manifest was written (AudioCraft's MusicDataset reads it at every
    batch and crashes with an AttributeError naming no file): dora run names it before the model."""
    import json
    import shutil

    from omegaconf import OmegaConf

    from od.core.environment import ConfigError
    from od.solvers.musicgen import check_manifests
    good = json.loads((example_data / 'egs' / 'train' / 'data.jsonl').read_text().splitlines()[0])
    audio = tmp_path / 'song.wav'
    shutil.copy(good['path'], audio)
    (tmp_path / 'data.jsonl').write_text(json.dumps({**good, 'path': str(audio)}) + '\n')
    check_manifests(OmegaConf.create({'datasource': {'train': str(tmp_path)}}))  # no sidecar: fine
    if sidecar is None:
        (tmp_path / 'song.json').mkdir()  # a folder named like the sidecar
    else:
        (tmp_path / 'song.json').write_text(sidecar)
    with pytest.raises(ConfigError, match=f"1 of 1 files listed in {tmp_path} have a sidecar .*{audio}.*{says}"):
        check_manifests(OmegaConf.create({'datasource': {'train': str(tmp_path)}}))


def test_od_clip_refuses_bad_inputs_before_any_model_loads(tmp_path):
    """A text file, a missing video, a missing model or an --out that is a file: the message at
    once, with AudioCraft never imported (loading it and the model takes half a minute)."""
    import json
    import sys

    from tests import media as M
    notes, video = tmp_path / 'notes.txt', tmp_path / 'clip.mp4'
    notes.write_text('not a video\n')
    M.write(video, M.level_frames([40., 120., 200.], (64, 48)), fps=2.)
    (tmp_path / 'taken').write_text('')
    cases = [([str(notes), str(tmp_path / 'gone.mp4')], [f'{notes}: not a video', f'{tmp_path}/gone.mp4: not found']),
             ([str(video)], [f'Model not found: {tmp_path}/nope']),
             ([str(video), '--out', str(tmp_path / 'taken' / 'x')], [f'{tmp_path}/taken is a file'])]
    code = ("import json, sys; from od import clip\n"
            "for args in json.loads(sys.argv[1]):\n"
            "    print('RC', clip.main(['--model', sys.argv[2], '--videos', *args]), flush=True)\n"
            "    print('<end>', file=sys.stderr, flush=True)\n"
            "print('audiocraft imported:', 'audiocraft.models' in sys.modules)")
    proc = subprocess.run([sys.executable, '-c', code, json.dumps([a for a, _ in cases]), str(tmp_path / 'nope')],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.stdout.count('RC 2') == 3 and 'audiocraft imported: False' in proc.stdout, proc.stdout + proc.stderr
    for (_, says), err in zip(cases, proc.stderr.split('<end>')):
        assert all(s in err for s in says) and 'Traceback' not in err, err


def test_writers_that_hide_a_full_disk_say_disk_full(tmp_path, monkeypatch):
    """torch.save ('enforce fail at inline_container.cc') and libsndfile ('System error') do not
    raise ENOSPC: a write that fails with (almost) no space left says so, and leaves nothing."""
    import numpy as np
    import soundfile as sf

    from od.core import atomic

    def write_fails(tmp):
        sf.write(tmp, np.zeros(16000, np.float32), 16000)
        raise RuntimeError('System error.')
    for full, expected in [(True, atomic.DiskFullError), (False, RuntimeError)]:
        monkeypatch.setattr(atomic, 'nearly_full', lambda folder: full)
        with pytest.raises(expected) as info:
            with atomic.atomic_path(tmp_path / 'out.wav') as tmp:
                write_fails(tmp)
        assert list(tmp_path.iterdir()) == []
    assert str(info.value) == 'System error.'
    monkeypatch.setattr(atomic, 'nearly_full', lambda folder: True)
    with pytest.raises(atomic.DiskFullError, match=f'No space left on the device holding {tmp_path}: m was not'):
        with atomic.atomic_dir(tmp_path / 'm'):
            raise RuntimeError('[enforce fail at inline_container.cc:664] . unexpected pos 1 vs 0')
    assert list(tmp_path.iterdir()) == []


def test_od_generate_refuses_a_reference_that_would_give_unconditioned_music(tmp_path):
    """--audio that is corrupt, NaN or silent, an --image that does not decode: a message before
    the model loads (it used to warn, write unconditioned music and exit 0)."""
    import os

    import numpy as np
    import soundfile as sf

    from od.generate import check_source
    (tmp_path / 'c.wav').write_bytes(b'RIFF0000WAVEjunk' * 100)
    (tmp_path / 'b.png').write_bytes(b'\x89PNG\r\n\x1a\n0000')
    os.symlink('loop.wav', tmp_path / 'loop.wav')
    wav = np.zeros((16000, 1), np.float32)
    sf.write(tmp_path / 'silent.wav', wav, 16000)
    wav[::7] = np.nan
    sf.write(tmp_path / 'nan.wav', wav, 16000, subtype='FLOAT')
    for image, audio, says in [(None, 'c.wav', 'c.wav: cannot open'), ('b.png', None, 'b.png: cannot read image'),
                               (None, 'loop.wav', 'leads nowhere'), (None, 'nan.wav', '2286 NaN/Inf samples'),
                               (None, 'silent.wav', 'silent (every sample is zero); it would give unconditioned')]:
        with pytest.raises(ValueError, match=re.escape(says)):
            check_source(image and str(tmp_path / image), audio and str(tmp_path / audio))


def test_od_prep_fails_when_its_cache_cannot_be_written(monkeypatch, capsys):
    """Training goes on uncached when the cache cannot be written; od.prep, whose one job is the
    cache, says so and exits 1 (it printed its counts and exited 0 on a full disk)."""
    import od.prep
    counts = {'items': 3, 'unit': 'video', 'cached_before': 0, 'embedded': 3, 'failed': 0, 'unwritten': 3,
              'cache': '/full/.od_cache/clip'}
    monkeypatch.setattr(od.prep, 'prepare', lambda argv, **_: {'self_wav': counts})
    assert od.prep.main(['solver=musicgen/debug']) == 1
    assert 'self_wav: 3 cache entries could not be written under /full/.od_cache/clip' in capsys.readouterr().err


def test_a_training_run_that_fills_its_disk_says_so(tmp_path, monkeypatch):
    """ffmpeg writing samples raises CalledProcessError on a full disk: dora run ends with a
    message about space and how to resume instead of a traceback."""
    import types

    import dora

    import od.train
    import od.workflow.runs
    from od.core import atomic
    monkeypatch.setattr(dora, 'get_xp', lambda: types.SimpleNamespace(folder=tmp_path))
    exc = subprocess.CalledProcessError(1, ['ffmpeg', '-f', 'wav', 'x.wav'])
    monkeypatch.setattr(atomic, 'nearly_full', lambda folder: False)
    assert od.workflow.runs._full_disk_message(exc) is None
    monkeypatch.setattr(atomic, 'nearly_full', lambda folder: True)
    message = od.workflow.runs._full_disk_message(exc)
    assert message.startswith(f'error: no space left on the device holding the XP folder {tmp_path} (CalledProcessError')
    assert 'resumes from the last complete checkpoint' in message


def test_nan_audio_is_named_not_embedded(tmp_path):
    """One NaN in a reference file made the CLAP statistics, hence fad_clap, NaN (VGGish's side
    refuses such files the same way, od/metrics/fad_tf/pipeline.py)."""
    import numpy as np
    import soundfile as sf

    from od.encoders.clap import read_audio
    wav = np.full((16000, 1), 0.1, np.float32)
    wav[100] = np.inf
    sf.write(tmp_path / 'inf.wav', wav, 16000, subtype='FLOAT')
    with pytest.raises(ValueError, match=re.escape(f'{tmp_path}/inf.wav: 1 NaN/Inf samples')):
        read_audio(tmp_path / 'inf.wav')


def test_a_sample_with_non_finite_audio_is_named_and_left_out_of_the_batch(caplog):
    """Audio that turned NaN/Inf after its manifest was checked: the step drops that sample and
    names its file once, instead of a NaN loss ending the run."""
    import logging
    import types

    import torch

    from od.solvers.musicgen import MusicGenSolver
    solver = types.SimpleNamespace(logger=logging.getLogger('od.test.finite'))
    info = lambda name: types.SimpleNamespace(meta=types.SimpleNamespace(path=name))  # noqa: E731
    audio = torch.zeros(3, 1, 100)
    audio[1, 0, 5] = float('nan')
    with caplog.at_level(logging.WARNING, logger='od.test.finite'):
        kept, infos = MusicGenSolver._finite_samples(solver, (audio, [info('a.wav'), info('nan.wav'), info('c.wav')]))
        MusicGenSolver._finite_samples(solver, (audio, [info('a.wav'), info('nan.wav'), info('c.wav')]))
    assert kept.shape == (2, 1, 100) and [i.meta.path for i in infos] == ['a.wav', 'c.wav']
    assert [r.getMessage().split(':')[0] for r in caplog.records] == ['Skipping nan.wav']  # named once
    cached = ([info('x'), info('y')],)  # a token-cache batch (AudioCraft's `infos, = batch`) passes untouched
    assert MusicGenSolver._finite_samples(solver, cached) is cached
