"""od.pipeline at a real scale, the README's default command, on tiny random models under the
real Hugging Face repo ids and layouts (`python -m od.tiny hub`): the preflight that
names every missing weight before anything is written, the memory plan that stops a run that
does not fit, the one-GPU recipe sized from the data, and the README's "Your own videos" block
run line by line exactly as written (the default line killed with SIGKILL mid-training and run
again), then od.generate, od.clip and od.export --format transformers on the trained XP."""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import typing as tp
from pathlib import Path

import numpy as np
import pytest

from od.core.environment import CONFIG_DIR, ROOT
from od.inference.tiny import CLIP_REPO, ENCODEC_REPO, T5_REPO, write_tiny_hub

from . import media
from .helpers import dora_env, wait_for

pytestmark = pytest.mark.slow

SMALL, MEDIUM = 'facebook/musicgen-small', 'facebook/musicgen-medium'
REPOS = (SMALL, MEDIUM, ENCODEC_REPO, T5_REPO, CLIP_REPO)


@pytest.fixture(scope='module')
def hub(tmp_path_factory) -> Path:
    """A Hugging Face home with od's tiny models under the real repo ids."""
    return write_tiny_hub(tmp_path_factory.mktemp('tinyhub') / 'hf')


def user_videos(folder: Path) -> Path:
    """Music videos in the forms users have: the colour clips (H.264 + AAC mp4), plus the two odd
    forms of `odd_videos`."""
    from od.data.example_video import write_raw_videos
    write_raw_videos(folder, per_class=3, duration=3.0, progress=False)
    return odd_videos(folder)


def odd_videos(folder: Path) -> Path:
    """A variable-frame-rate VP9/Opus webm stored rotated at an odd size with 48 kHz stereo, and
    a mov at 44.1 kHz mono, in `folder`."""
    rng = np.random.default_rng(0)
    red = np.zeros((20, 45, 71, 3), np.uint8)
    red[..., 0] = 200
    times = np.sort(rng.uniform(0, 3.0, 20))
    times[0] = 0.
    media.write(folder / 'red_vfr.webm', red, times=times, audio=media.tone(3.0, 48000, 2, 110.), sr=48000,
                rotation=90)
    blue = np.zeros((30, 50, 66, 3), np.uint8)
    blue[..., 2] = 220
    media.write(folder / 'blue_odd.mov', blue, fps=10., audio=media.tone(3.0, 44100, 1, 440.), sr=44100)
    return folder


def hf_home_without(hub: Path, home: Path, missing: tuple) -> Path:
    """An HF home holding (links to) every repo of `hub` but `missing`."""
    (home / 'hub').mkdir(parents=True)
    for repo in REPOS:
        if repo not in missing:
            name = f"models--{repo.replace('/', '--')}"
            (home / 'hub' / name).symlink_to(hub / 'hub' / name)
    return home



def env_with(hf_home: Path, dora_dir: Path, **extra: str) -> dict:
    env = dora_env(dora_dir)
    env.update(HF_HOME=str(hf_home), HF_HUB_OFFLINE='1', AUDIOCRAFT_REFERENCE_DIR=str(dora_dir.parent / 'no-reference'),
               **extra)
    return env


# ---- preflight: every missing weight named, nothing written ------------------------------------------
PREFLIGHT = {  # case -> (pipeline options, repos missing from the cache, repos the message must name)
    'musicgen': ([], (SMALL,), (SMALL,)),
    'encodec': ([], (ENCODEC_REPO,), (ENCODEC_REPO,)),
    'clip': ([], (CLIP_REPO,), (CLIP_REPO,)),
    'clip-tiny-still-checks-musicgen': (['--clip', 'tiny'], (SMALL,), (SMALL,)),
    'lora-medium-all-missing': (['--lora', '--scale', 'medium'], REPOS, (MEDIUM, ENCODEC_REPO, CLIP_REPO)),
}


@pytest.mark.parametrize('case', list(PREFLIGHT))
def test_preflight_names_every_missing_weight_before_writing_anything(case, hub, tmp_path, monkeypatch, capsys):
    """The last case as a user runs it (a new process: its exit code, its time to the error);
    the others through the same command's main() in this process (a start-up costs ~10 s)."""
    import huggingface_hub.constants

    from od.pipeline import main
    options, missing, named = PREFLIGHT[case]
    raw = user_videos(tmp_path / 'my_videos')
    home = hf_home_without(hub, tmp_path / 'hf', missing)
    name = f'pf_{case.replace("-", "_")}'
    work, dora = tmp_path / 'work', tmp_path / 'dora'
    argv = [str(raw), '--name', name, '--work', str(work), *options]
    started = time.time()
    if case == list(PREFLIGHT)[-1]:
        proc = subprocess.run([sys.executable, '-m', 'od.pipeline', *argv], cwd=ROOT, env=env_with(home, dora),
                              capture_output=True, text=True, timeout=300)
        code, out = proc.returncode, proc.stdout + proc.stderr
        seconds = time.time() - started
        print(f"preflight {case}: exit {code} after {seconds:.1f} s")
        # it stops at once (about 9 s here, most of it imports; 60 s leaves room for a loaded
        # machine), never retrying a hub for minutes
        assert seconds < 60, f"the preflight took {seconds:.1f} s to say what is missing"
    else:
        monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(home / 'hub'))
        for key, value in env_with(home, dora).items():
            if key.startswith(('AUDIOCRAFT_', 'HF_')):
                monkeypatch.setenv(key, value)
        code = main(argv)
        out = ''.join(capsys.readouterr())
    assert code == 2, out[-3000:]
    assert f"{len(named)} of the weights this run needs" in out
    for repo in named:  # each one with the exact folder to put it in
        assert f"'{repo}'" in out and f"{tmp_path / 'no-reference' / repo}/" in out
    for repo in set(REPOS) - set(missing):
        assert f"'{repo}'" not in out
    assert '[od.pipeline] ingest' not in out and 'Traceback' not in out
    assert not work.exists() and not (CONFIG_DIR / 'dset' / 'audio' / f'{name}.yaml').exists()
    assert not (dora / 'xps').exists()
    assert sorted(p.name for p in raw.iterdir()) == sorted(p.name for p in user_videos(tmp_path / 'again').iterdir())


def test_every_recipe_looks_up_the_weights_it_loads(tmp_path, monkeypatch):
    """For each --scale/--clip/--lora combination, against an empty cache: the LM of that scale,
    the codec and (unless --clip tiny) CLIP; a text conditioner's T5 when the config has one."""
    import huggingface_hub.constants

    from od import train  # noqa: F401  (Dora's main, bound for the workflow)
    from od.workflow import recipe, runs
    from od.workflow.stages import Pipeline
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(tmp_path / 'empty'))
    monkeypatch.setenv('AUDIOCRAFT_REFERENCE_DIR', str(tmp_path / 'no-reference'))
    (tmp_path / 'raw').mkdir()
    for scale in ('small', 'medium', 'large'):
        for clip in (None, 'tiny'):
            for lora in (False, True):
                p = Pipeline(tmp_path / 'raw', 'x', scale, clip=clip, lora=lora, work=tmp_path / 'work')
                cfg = runs.compose(p.preset_overrides())
                missing = recipe.missing_weights(cfg, p.source())
                heads = [m.splitlines()[0] for m in missing]
                assert heads[0] == f'MusicGen facebook/musicgen-{scale}:'
                assert heads[1] == f'compression model //pretrained/{ENCODEC_REPO}:'
                if clip == 'tiny':  # the folder run() writes; the preflight drops it
                    assert len(heads) == 3 and heads[2].startswith(f'CLIP {p.tiny_clip}')
                else:
                    assert heads[2:] == [f'CLIP hf-hub:{CLIP_REPO} (self_wav):']
    text = recipe.missing_weights(runs.compose(['solver=musicgen/finetune', 'conditioner=text2music']), None)
    assert [m.splitlines()[0] for m in text][1:] == ['text encoder t5-base (description):']


def test_a_plan_that_does_not_fit_stops_before_the_heavy_stages(hub, tmp_path):
    raw = user_videos(tmp_path / 'my_videos')
    work, dora = tmp_path / 'work', tmp_path / 'dora'
    name = 'plan_misfit'
    proc = subprocess.run([sys.executable, '-m', 'od.pipeline', str(raw), '--name', name, '--work', str(work),
                           '--gpu-memory', '0.01'], cwd=ROOT, env=env_with(hub, dora),
                          capture_output=True, text=True, timeout=300)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 2, out[-3000:]
    assert 'does not fit a 0.01 GiB GPU (--gpu-memory)' in out and 'add --lora' in out
    assert '[od.pipeline] ingest' not in out   # the plan comes first, from the files' headers
    assert not work.exists() and not (dora / 'xps').exists()   # the work folder as it was: nothing written
    assert not (CONFIG_DIR / 'dset' / 'audio' / f'{name}.yaml').exists()


def few_videos(folder: Path) -> Path:
    """Three short music videos as phones and editors write them: an H.264/AAC mp4 at 44.1 kHz
    stereo, and `odd_videos`' rotated variable-frame-rate webm and odd-sized mono mov."""
    folder.mkdir(parents=True)
    green = np.zeros((30, 48, 64, 3), np.uint8)
    green[..., 1] = 180
    media.write(folder / 'green.mp4', green, fps=10., audio=media.tone(3.0, 44100, 2, 165.), sr=44100)
    return odd_videos(folder)


def checkout_state(name: str) -> dict:
    """What a run named `name` could have left in the checkout: git's modified and untracked
    files that carry the name, and the ignored output folders' entries of that name (every file
    a run writes carries its name, or its XP's signature: see `xps_in_checkout`). Edits a
    developer makes meanwhile do not count."""
    status = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=all'], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout.splitlines()
    outputs = sorted(str(p.relative_to(ROOT)) for folder in ('dataset', 'egs', 'checkpoints', 'reports', 'config')
                     for p in (ROOT / folder).rglob(f'*{name}*'))
    return {'status': [line for line in status if name in line], 'outputs': outputs}


def xps_in_checkout(*sigs: str) -> tp.List[str]:
    return [sig for sig in sigs if (ROOT / 'logs' / 'xps' / sig).exists()]


def test_a_one_epoch_run_on_a_few_videos_under_work_leaves_the_checkout_as_it_was(hub, tmp_path):
    """Issue 35: `--epochs 1` (1 epoch of 1 update: a warm-up as long as the run crashed AudioCraft's
    scheduler) on three videos with --work: everything under the work folder, the XPs too (no
    AUDIOCRAFT_DORA_DIR), and the report's command names the same XP. (The LoRA recipe's short
    schedules: tests/test_recipe.py; the README block runs --lora under $OD_WORK.)"""
    import shlex

    from od import train  # noqa: F401  (Dora's main, bound for the workflow)
    raw = few_videos(tmp_path / 'my_videos')
    work = tmp_path / 'work'
    env = env_with(hub, tmp_path / 'unused')
    del env['AUDIOCRAFT_DORA_DIR']   # as a user's shell: the XPs' place follows --work
    name = f'short_{os.getpid()}'
    before = checkout_state(name)
    started = time.time()
    proc = subprocess.run([sys.executable, '-m', 'od.pipeline', str(raw), '--name', name, '--epochs', '1',
                           '--work', str(work)], cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    out = proc.stdout + proc.stderr
    print(f"od.pipeline --epochs 1: exit {proc.returncode} in {time.time() - started:.1f} s")
    assert proc.returncode == 0, out[-4000:]
    assert '1 epochs x 1 updates' in out and '[od.pipeline] report:' in out
    report = json.loads((work / 'reports' / name / 'report.json').read_text())
    assert (work / 'logs' / 'xps' / report['sig'] / 'checkpoint.th').is_file()
    assert report['config']['epochs'] == 1 and report['config']['updates_per_epoch'] == 1
    # the same run by hand: the printed command names this XP
    command = report['command']
    assert f"AUDIOCRAFT_DORA_DIR={work / 'logs'} dora run " in command
    assert train.main.get_xp(shlex.split(command.split(' dora run ', 1)[1])).sig == report['sig']
    assert checkout_state(name) == before and xps_in_checkout(report['sig']) == []


def test_the_recipe_takes_the_lm_shape_from_the_weights(hub, tmp_path, monkeypatch, capsys):
    """musicgen-medium of the tiny hub is another shape than small's: the starting checkpoint
    built from medium copies every backbone tensor, so the run trains the weights it names."""
    import huggingface_hub.constants

    from od.make_ckpt import make_checkpoint
    from od.workflow.stages import Pipeline
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(hub / 'hub'))
    monkeypatch.setenv('AUDIOCRAFT_REFERENCE_DIR', str(tmp_path / 'no-reference'))
    (tmp_path / 'raw').mkdir()
    p = Pipeline(tmp_path / 'raw', 'x', 'medium', clip='tiny', work=tmp_path / 'work')
    assert p.architecture() == ['transformer_lm.dim=64', 'transformer_lm.num_heads=4',
                                'transformer_lm.num_layers=3', 'transformer_lm.card=64']
    assert p.preset_overrides()[:2] == ['solver=musicgen/finetune', 'model/lm/model_scale=medium']
    from od.inference.tiny import write_tiny_clip
    write_tiny_clip(p.tiny_clip)
    _, table = make_checkpoint(p.source(), tmp_path / 'start.th', p.model_overrides())
    counts = dict(re.findall(r'(copied|new|dropped): (\d+)', table.splitlines()[-1]))
    new = [row[21:].split()[0] for row in table.splitlines()[1:-1] if row.startswith('new')]
    assert int(counts['copied']) > 20 and new and all(n.startswith('condition_provider.') for n in new), table
    # by hand: make_ckpt --match-source takes the same shape and prints the overrides for dora run
    from od.make_ckpt import main
    assert main(['--from', MEDIUM, '--out', str(tmp_path / 'by_hand.th'), '--match-source',
                 *p.preset_overrides()]) == 0
    assert 'architecture of the source: ' + ' '.join(p.architecture()) in capsys.readouterr().out


# ---- the README's block, as written ---------------------------------------------------------------
def readme_block() -> list:
    """The command lines of the README's "Your own videos" block."""
    text = (ROOT / 'README.md').read_text()
    block = text[text.index('**Your own videos.**'):]
    block = block[block.index('```bash\n') + len('```bash\n'):block.index('```', block.index('```bash\n') + 7)]
    return [line for line in block.splitlines() if line.strip()]


@pytest.fixture(scope='module')
def readme_runs(hub, tmp_path_factory):
    """The block's first, default line run by bash as a user types it (HOME holds my_videos,
    outputs go to $OD_WORK: the only difference from a user's shell), killed with SIGKILL after
    its first training epoch and run again. The other lines run when a test asks for them
    (`readme_line`): each test then takes one or two runs, not the whole block."""
    lines = readme_block()
    assert lines[0].startswith('python -m od.pipeline ~/my_videos --name myclips ') and '--scale' not in lines[0]
    base = tmp_path_factory.mktemp('readme')
    user_videos(base / 'home' / 'my_videos')
    work = base / 'work'
    dora = work / 'logs'   # $OD_WORK alone puts the XPs there, as in a user's shell
    env = env_with(hub, base / 'unused', HOME=str(base / 'home'), OD_WORK=str(work),
                   PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    del env['AUDIOCRAFT_DORA_DIR']
    before = checkout_state('myclips')   # $OD_WORK: nothing written into the checkout (a developer's own myclips stays)
    runs: dict = {'lines': lines, 'base': base, 'dora': dora, 'work': work, 'env': env, 'out': {}, 'seconds': {},
                  'checkout_before': before}
    command = lines[0].split('#')[0]
    started = time.time()
    first = subprocess.Popen(['bash', '-c', command], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, start_new_session=True)

    def epoch_done():
        return any(len(json.loads(h.read_text())) >= 1 for h in dora.glob('xps/*/history.json'))
    wait_for(epoch_done, 600, first)
    os.killpg(first.pid, signal.SIGKILL)
    runs['killed_output'] = first.communicate(timeout=60)[0]
    xp = next((dora / 'xps').iterdir())
    runs['xp'], runs['history_at_kill'] = xp, json.loads((xp / 'history.json').read_text())
    runs['state_at_kill'] = json.loads((work / 'reports' / 'myclips' / 'pipeline.json').read_text())
    runs['seconds']['killed'] = time.time() - started
    readme_line(runs, 0)
    runs['report_after_default'] = json.loads((work / 'reports' / 'myclips' / 'report.json').read_text())
    runs['export_after_default'] = work / 'checkpoints' / 'myclips_default'
    shutil.copytree(work / 'checkpoints' / 'myclips', runs['export_after_default'])
    yield runs


def readme_line(runs: dict, i: int) -> str:
    """Run line `i` of the block as written (once: later calls return what it printed); the
    checkout stays as it was, every XP under $OD_WORK."""
    if i not in runs['out']:
        line, started = runs['lines'][i], time.time()
        proc = subprocess.run(['bash', '-c', line.split('#')[0]], cwd=ROOT, env=runs['env'], capture_output=True,
                              text=True, timeout=900)
        assert proc.returncode == 0, f"{line}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        runs['out'][i], runs['seconds'][i] = proc.stdout + proc.stderr, time.time() - started
        print(f"README line {i + 1}: {runs['seconds'][i]:.0f} s")
        assert checkout_state('myclips') == runs['checkout_before']
        assert xps_in_checkout(*(x.name for x in (runs['dora'] / 'xps').iterdir())) == []
    return runs['out'][i]


def line_with(runs: dict, text: str) -> int:
    return next(k for k, line in enumerate(runs['lines']) if text in line)


def test_readme_default_command_trains_the_one_gpu_recipe_and_resumes_after_sigkill(readme_runs):
    out = readme_line(readme_runs, 0)
    for stage in ('ingest', 'checkpoint', 'cache'):
        assert f'[od.pipeline] {stage}: up to date' in out  # done before the kill: not redone
    assert 'resuming at epoch' in out
    history = json.loads((readme_runs['xp'] / 'history.json').read_text())
    assert history[:len(readme_runs['history_at_kill'])] == readme_runs['history_at_kill']
    report = readme_runs['report_after_default']
    config = report['config']
    assert len(history) == config['epochs'] == 20  # the preset's length, sized per epoch from the data
    assert config['solver'] == 'musicgen/finetune' and config['starts_from'] == SMALL
    assert report['sig'] == readme_runs['xp'].name
    # the exact recipe: one-GPU preset, the LM shape of the weights, a schedule from the data
    command = report['command']
    for part in ('solver=musicgen/finetune ', 'model/lm/model_scale=small', 'conditioner=clipemb2music',
                 'transformer_lm.dim=48', 'optim.epochs=20', 'optim.updates_per_epoch=', 'dataset.segment_duration=3 ',
                 f"continue_from={readme_runs['work'] / 'checkpoints' / 'myclips_start.th'}"):
        assert part in command
    assert 'musicgen_base_32khz' not in command
    assert any(line.startswith('total ') for line in config['memory_plan'])
    assert 'no GPU visible: training runs on the CPU' in out  # said, and it went on
    # ingest keeps each video's own audio (AudioCraft resamples to 32 kHz as it loads): 48 kHz
    # stereo webm, 44.1 kHz mono mov, the colour clips' rate
    from od.data.media import probe
    raw = readme_runs['base'] / 'home' / 'my_videos'
    for split in ('train', 'valid'):
        for line in (readme_runs['work'] / 'egs' / 'myclips' / split / 'data.jsonl').read_text().splitlines():
            entry = json.loads(line)
            sidecar = json.loads(Path(entry['path']).with_suffix('.json').read_text())
            source = next(raw.glob(Path(entry['path']).stem + '.*'))
            audio = probe(source, rotation=False)
            assert entry['sample_rate'] == sidecar['sample_rate'] == audio.sample_rate, (source, entry)
            assert sidecar['channels'] == audio.channels, (source, sidecar)
    videos = {p.stem for p in (readme_runs['work'] / 'dataset' / 'myclips').glob('*/*') if p.suffix in ('.webm', '.mov', '.mp4')}
    assert {'red_vfr', 'blue_odd'} <= videos  # the odd forms went in too
    for row in report['rows']:
        assert (readme_runs['work'] / 'reports' / 'myclips' / row['video']).is_file()


def test_readme_lora_line_trains_adapters_under_a_24gb_plan(readme_runs):
    out = readme_line(readme_runs, line_with(readme_runs, '--lora'))
    assert 'dora run solver=musicgen/finetune_lora ' in out and 'fits a 24 GiB GPU (--gpu-memory)' in out
    argvs = [json.loads((x / '.argv.json').read_text()) for x in (readme_runs['dora'] / 'xps').iterdir()]
    lora = [a for a in argvs if 'solver=musicgen/finetune_lora' in a]
    assert len(lora) == 1 and 'optim.epochs=20' in lora[0], argvs
    xp = next(x for x in (readme_runs['dora'] / 'xps').iterdir()
              if 'solver=musicgen/finetune_lora' in json.loads((x / '.argv.json').read_text()))
    assert len(json.loads((xp / 'history.json').read_text())) == 20


@pytest.mark.parametrize('which', ['--scale debug', 'dataset.batch_size=8'])
def test_readme_other_lines_run_as_written(readme_runs, which):
    out = readme_line(readme_runs, line_with(readme_runs, which))
    assert '[od.pipeline] report:' in out
    if which == '--scale debug':
        assert 'dora run solver=musicgen/video_debug' in out
    else:
        assert 'dataset.batch_size=8' in out and 'optim.epochs=20' in out


def test_readme_block_is_what_the_tests_run():
    """Every line of the block is run by one of the tests above (none added without a test)."""
    runs = {'lines': readme_block()}
    assert len(runs['lines']) == 4
    assert sorted(line_with(runs, text) for text in ('~/my_videos --name myclips   ', '--lora', '--scale debug',
                                                     'dataset.batch_size=8')) == [0, 1, 2, 3]


def test_generate_clip_and_transformers_export_from_the_trained_xp(readme_runs, tmp_path, monkeypatch, capsys):
    import soundfile

    env, export = readme_runs['env'], readme_runs['export_after_default']
    readme_line(readme_runs, line_with(readme_runs, '--lora'))   # its XP is exported below
    video = next((readme_runs['work'] / 'dataset' / 'myclips').glob('valid/*.mp4'))

    def run(*args):
        proc = subprocess.run([sys.executable, '-m', *args], cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=600)
        assert proc.returncode == 0, f"{args}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
        return proc.stdout + proc.stderr
    run('od.generate', '--model', str(export), '--video', str(video), '--duration', '2', '--output',
        str(tmp_path / 'g.wav'))
    info = soundfile.info(str(tmp_path / 'g.wav'))
    assert info.samplerate == 32000 and info.frames == 2 * 32000
    run('od.clip', '--videos', str(video), '--model', str(export), '--out', str(tmp_path / 'clips'))
    assert list((tmp_path / 'clips').rglob('*.mp4'))
    # export by signature, as the README says; the LoRA XP with its adapters folded in. od.export's
    # main() in this process (three more start-ups would cost ~30 s), reading the run's XPs.
    import huggingface_hub.constants

    from od import train  # noqa: F401  (Dora's main, bound for the workflow)
    from od.export import main as export
    from od.workflow import runs
    monkeypatch.setattr(huggingface_hub.constants, 'HF_HUB_CACHE', str(Path(env['HF_HOME']) / 'hub'))
    monkeypatch.setenv('AUDIOCRAFT_REFERENCE_DIR', env['AUDIOCRAFT_REFERENCE_DIR'])
    lora = next(x for x in (readme_runs['dora'] / 'xps').iterdir()
                if 'solver=musicgen/finetune_lora' in json.loads((x / '.argv.json').read_text()))
    with runs.dora_dir_at(readme_runs['dora']):
        assert export(['--sig', readme_runs['xp'].name, '--out', str(tmp_path / 'exports')]) == 0
        assert (tmp_path / 'exports' / readme_runs['xp'].name / 'state_dict.bin').is_file()
        assert export(['--sig', lora.name, '--merge-lora', '--out', str(tmp_path / 'exports')]) == 0
        assert (tmp_path / 'exports' / lora.name / 'state_dict.bin').is_file()
        # transformers' MusicGen has a T5 text encoder and nothing else: a video model is refused
        # with the reason, and nothing is written
        capsys.readouterr()
        code = export(['--sig', readme_runs['xp'].name, '--format', 'transformers', '--out', str(tmp_path / 'hf')])
    said = ' '.join(capsys.readouterr().err.split())
    assert code == 2 and 'CLIP (video/image)' in said and 'no transformers form' in said, said
    assert not (tmp_path / 'hf').exists() or not any((tmp_path / 'hf').iterdir())
