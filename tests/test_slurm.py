"""Dora grids on a real SLURM cluster (od.workflow.slurm_local, started by the `slurm_cluster` fixture):
one grid of the debug video solver submitted as SLURM jobs and monitored by Dora, one of its
jobs requeued mid-run and resumed, an XP trained by two SLURM tasks (DDP, gloo), and cancel."""
from __future__ import annotations

import json
import os
import subprocess
import time
import typing as tp
from pathlib import Path

import pytest

from od.workflow.launch import dora_command

from .helpers import ROOT, colors_data, dora_env, missing_dependency, read_history, wait_for

GRID = 'slurm_debug'


def grid_env(cluster: tp.Mapping[str, tp.Any], dora_dir: Path, grid_args: tp.Sequence[str]) -> tp.Dict[str, str]:
    env = dora_env(dora_dir)
    env.update(SLURM_CONF=cluster['SLURM_CONF'], AUDIOCRAFT_CLUSTER='slurm_local', OD_GRID_ARGS=' '.join(grid_args))
    return env


def slurm(cluster, *args: str) -> str:
    proc = subprocess.run(list(args), env={**os.environ, 'SLURM_CONF': cluster['SLURM_CONF']},
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def job_ids(xp: Path) -> tp.List[str]:
    """SLURM job ids of an XP, from the files submitit writes per job: <id>_submitted.pkl when it
    submits, <id>_<task>_log.out once the job runs."""
    return sorted({p.name.split('_')[0] for pattern in ('*_submitted.pkl', '*_log.out')
                   for p in (xp / 'submitit').glob(pattern)})


def job_states(cluster, ids: tp.Sequence[str]) -> tp.Dict[str, str]:
    """id -> the job's state as SLURM's accounting (sacct) records it."""
    out = slurm(cluster, 'sacct', '-X', '-n', '-P', '-j', ','.join(ids), '-o', 'JobID,State')
    return dict(line.split('|', 1) for line in out.splitlines() if line.strip())


def xp_by_lr(dora_dir: Path, lr: str) -> Path:
    for xp in (dora_dir / 'xps').iterdir():
        if f'optim.lr={lr}' in (xp / '.argv.json').read_text():
            return xp
    raise AssertionError(f"no XP with lr={lr}")


def test_missing_packages_name_the_apt_get_line(monkeypatch):
    from od.workflow import slurm_local
    monkeypatch.setattr(slurm_local, 'find', lambda program: None if program in ('slurmdbd', 'munged') else '/x')
    with pytest.raises(slurm_local.SlurmLocalError, match='apt-get install -y --no-install-recommends munge slurmdbd'):
        slurm_local.check_ready()
    from od import slurm as command
    assert command.main(['packages']) == 0


def test_cluster_entry_is_chosen_by_environment_and_checked(monkeypatch, tmp_path):
    from audiocraft.environment import AudioCraftEnvironment

    from od.core import environment
    monkeypatch.setenv('AUDIOCRAFT_CLUSTER', 'slurm_local')
    AudioCraftEnvironment.reset()
    try:
        assert environment.cluster_slurm()['partition'] == 'local'
        assert environment.slurm_processes(2) == {
            'gpus': 0, 'cpus_per_task': 2, 'srun_args': ['--ntasks=2', '--ntasks-per-node=2', '--cpus-per-task=1']}
        monkeypatch.setenv('AUDIOCRAFT_CLUSTER', 'nope')
        AudioCraftEnvironment.reset()
        with pytest.raises(environment.ConfigError, match='AUDIOCRAFT_CLUSTER=nope: no such entry.*slurm_local'):
            environment.cluster_slurm()
        teams = tmp_path / 'teams.yaml'
        teams.write_text("default: {dora_dir: /tmp, reference_dir: /tmp, slurm: {partiton: gpu}}\n")
        monkeypatch.setenv('AUDIOCRAFT_CONFIG', str(teams))
        monkeypatch.setenv('AUDIOCRAFT_CLUSTER', 'default')
        AudioCraftEnvironment.reset()
        with pytest.raises(environment.ConfigError, match="unknown slurm key.*partiton"):
            environment.cluster_slurm()
    finally:
        AudioCraftEnvironment.reset()


@pytest.fixture(scope='module')
def committed(tmp_path_factory) -> Path:
    """A clone of this repository's HEAD, where the grids are launched. Dora's git_save refuses to
    launch from a tree with any uncommitted or untracked file, and other tests write dataset
    configs (config/dset/audio/<name>.yaml) into this tree while they run; a grid runs the
    committed code in either case (git_save clones HEAD), as it does for a user."""
    clone = tmp_path_factory.mktemp('committed') / 'od'
    subprocess.run(['git', 'clone', '--quiet', str(ROOT), str(clone)], check=True, timeout=300)
    changed = subprocess.run(['git', 'status', '--porcelain', '--untracked-files=no'], cwd=ROOT,
                             capture_output=True, text=True).stdout.strip()
    if changed:
        print(f"note: the grid runs HEAD; these uncommitted changes are not in it:\n{changed}")
    return clone


@pytest.fixture(scope='module')
def grid(slurm_cluster, committed, tmp_path_factory):
    """`dora grid slurm_debug` with Dora's monitor, as a user runs it (from a clean repository);
    the lr=1e-3 XP's job is requeued (`scontrol requeue`) once its first epoch is saved. Returns
    what the tests read."""
    base = tmp_path_factory.mktemp('grid')
    overrides = [o for o in colors_data(base) if o.startswith(('datasource.', 'conditioners.'))]
    dora_dir = base / 'logs'
    env = grid_env(slurm_cluster, dora_dir, overrides)
    began = time.monotonic()
    monitor = base / 'monitor.txt'  # a file, not a pipe: a full pipe would stop Dora's monitor
    with open(monitor, 'w') as out:
        proc = subprocess.Popen(dora_command(GRID, '--interval', '0.05', command='grid'), cwd=committed, env=env,
                                stdout=out, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    try:
        wait_for(lambda: (dora_dir / 'xps').is_dir() and len(list((dora_dir / 'xps').iterdir())) == 3, 300, proc,
             'the grid made its XPs', monitor)
        requeued = xp_by_lr(dora_dir, '0.001')
        wait_for(lambda: len(read_history(requeued)) >= 1, 600, proc, 'the first epoch of the lr=1e-3 XP', monitor)
        before = read_history(requeued)
        job = job_ids(requeued)[0]
        slurm(slurm_cluster, 'scontrol', 'requeue', job)
        # A requeued job waits for its BeginTime (SLURM holds it about two minutes): start it now.
        wait_for(lambda: 'PENDING' in slurm(slurm_cluster, 'squeue', '-h', '-j', job, '-o', '%T'), 60, proc,
             'the requeued job pending', monitor)
        slurm(slurm_cluster, 'scontrol', 'update', f'JobId={job}', 'StartTime=now')
        proc.wait(timeout=900)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, 9)
            proc.wait()
    out = monitor.read_text()
    assert proc.returncode == 0, out[-4000:]
    return {'dora_dir': dora_dir, 'env': env, 'monitor': out, 'requeued': requeued, 'before': before,
            'job': job, 'wall_s': time.monotonic() - began, 'repo': committed}


@pytest.mark.slow
def test_grid_jobs_complete_with_checkpoints_and_samples(grid, slurm_cluster):
    xps = sorted((grid['dora_dir'] / 'xps').iterdir())
    assert len(xps) == 3
    for xp in xps:
        history = read_history(xp)
        assert len(history) == 2 and all({'train', 'valid', 'generate'} <= set(h) for h in history)
        assert (xp / 'checkpoint.th').exists()
        assert list((xp / 'samples' / '2').glob('*.wav')), xp
        sacct = slurm(slurm_cluster, 'sacct', '-n', '-X', '-o', 'State', '-j', job_ids(xp)[0]).split()
        assert sacct == ['COMPLETED'], (xp, sacct)
    # Dora's monitor saw the jobs run and complete (states come from sacct, through slurmdbd).
    assert 'RUN' in grid['monitor'] and grid['monitor'].count('COM') >= 3
    times = slurm(slurm_cluster, 'sacct', '-n', '-X', '-P', '-o', 'JobID,Submit,End', '-j',
                  ','.join(job_ids(xp)[0] for xp in xps))
    per_job = {}
    for line in times.split():
        job, submit, end = line.split('|')
        seconds = time.mktime(time.strptime(end, '%Y-%m-%dT%H:%M:%S')) - time.mktime(time.strptime(submit, '%Y-%m-%dT%H:%M:%S'))
        per_job[job] = int(seconds)
    print(f"[slurm] cluster start {slurm_cluster['start_s']:.1f} s; grid submit-to-done {grid['wall_s']:.0f} s; "
          f"per job, sbatch to end (s): {per_job}")


@pytest.mark.slow
def test_requeued_job_resumes_without_repeating_an_epoch(grid):
    xp = grid['requeued']
    history = read_history(xp)
    assert len(grid['before']) == 1 and len(history) == 2
    assert history[:1] == grid['before']  # the finished epoch kept as it was, not redone
    log = (xp / 'solver.log.0').read_text()
    assert 'Restoring' in log or 'Loading existing checkpoint' in log
    assert len(job_ids(xp)) == 1  # the same SLURM job, run twice
    submitit_log = (xp / 'submitit' / f"{grid['job']}_0_log.out").read_text()
    assert submitit_log.count('Starting with JobEnvironment') == 2, submitit_log[-3000:]
    ce = [round(h['train']['ce'], 4) for h in history]
    print(f"[slurm] requeued job {grid['job']}: train ce by epoch before the requeue "
          f"{ce[:len(grid['before'])]}, after {ce}")


@pytest.mark.slow
def test_two_process_xp_trains_through_slurm_tasks(grid):
    xp = xp_by_lr(grid['dora_dir'], '0.0001')
    assert (xp / 'solver.log.1').exists()
    assert 'Distributed init: 0/2' in (xp / 'solver.log.0').read_text()
    assert len(read_history(xp)) == 2


@pytest.mark.slow
def test_dora_info_reads_a_job_log(grid):
    xp = grid['requeued']
    proc = subprocess.run(dora_command('-f', xp.name, '--log', command='info'), cwd=grid['repo'], env=grid['env'],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert 'Starting with JobEnvironment' in proc.stdout + proc.stderr


@pytest.mark.slow
def test_grid_cancel_removes_jobs_and_keeps_xps(grid, slurm_cluster):
    """The same grid as runs that would take hours (new XPs) submitted without monitoring, then
    cancelled: each job ends CANCELLED, none could finish first (at 3 epochs, one did)."""
    env = dict(grid['env'], OD_GRID_ARGS=grid['env']['OD_GRID_ARGS'] + ' optim.epochs=100000')
    dora_dir = grid['dora_dir']
    done = set((dora_dir / 'xps').iterdir())
    submit = subprocess.run(dora_command(GRID, '--no_monitoring', command='grid'), cwd=grid['repo'], env=env,
                            capture_output=True, text=True, timeout=300)
    assert submit.returncode == 0, submit.stdout[-3000:] + submit.stderr[-3000:]
    new = set((dora_dir / 'xps').iterdir()) - done
    assert len(new) == 3
    ids = sorted(i for xp in new for i in job_ids(xp))   # one job per XP, as submitit recorded them
    assert len(ids) == 3 and sorted(slurm(slurm_cluster, 'squeue', '-h', '-o', '%i').split()) == ids
    cancel = subprocess.run(dora_command(GRID, '--cancel', command='grid'), cwd=grid['repo'], env=env,
                            capture_output=True, text=True, timeout=300)
    assert cancel.returncode == 0, cancel.stderr[-3000:]
    deadline = time.monotonic() + 60
    while slurm(slurm_cluster, 'squeue', '-h', '-o', '%i').split() and time.monotonic() < deadline:
        time.sleep(1)
    assert slurm(slurm_cluster, 'squeue', '-h', '-o', '%i').split() == []
    # gone because they were cancelled (not finished or failed): accounting says so for each
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        states = job_states(slurm_cluster, ids)
        if sorted(states) == ids and all(s.startswith('CANCELLED') for s in states.values()):
            break
        time.sleep(2)
    assert sorted(states) == ids and all(s.startswith('CANCELLED') for s in states.values()), states
    assert all(xp.is_dir() and (xp / '.argv.json').exists() for xp in new)  # XP folders kept


@pytest.mark.slow
@pytest.mark.tf
def test_fad_beam_pipeline_on_slurm_workers_matches_the_local_run(slurm_cluster, tmp_path):
    """`python -m od.fad_tf embed --runner slurm`: Beam's Dask runner whose workers are two SLURM
    jobs (dask-jobqueue's SLURMCluster) gives the statistics of the run on this machine."""
    import numpy as np
    import soundfile as sf

    from od.metrics import vggish
    try:
        vggish.check_tf_env()
    except vggish.FadEnvironmentError as exc:
        missing_dependency('fad-env', str(exc))
    python, env = str(vggish.tf_python()), vggish.tf_env()
    ckpt = tmp_path / 'vggish_random.ckpt'
    subprocess.run([python, '-m', 'od.fad_tf', 'random-checkpoint', '--out', str(ckpt)], env=env, cwd=ROOT,
                   check=True, capture_output=True, timeout=300)
    rng = np.random.default_rng(0)
    files = []
    for i, sr in enumerate((16000, 22050, 32000, 44100)):
        t = np.arange(int(2.5 * sr)) / sr
        sf.write(tmp_path / f'{i}.wav', (0.4 * np.sin(2 * np.pi * (300 + 150 * i) * t)
                                         + 0.05 * rng.normal(size=t.shape)).astype('float32'), sr)
        files.append(str(tmp_path / f'{i}.wav'))
    (tmp_path / 'files.json').write_text(json.dumps(files))
    stats = {}
    for name, runner in [('local', []), ('slurm', ['--runner', 'slurm', '--workers', '2', '--slurm-partition',
                                                    'local', '--slurm-memory', '3GB'])]:
        proc = subprocess.run([python, '-m', 'od.fad_tf', 'embed', '--files', str(tmp_path / 'files.json'),
                               '--out', str(tmp_path / name), '--checkpoint', str(ckpt), '--tf-threads', '1',
                               '--batch-size', '2', *runner],
                              env={**env, 'SLURM_CONF': slurm_cluster['SLURM_CONF']}, cwd=ROOT,
                              capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        summary = json.loads(proc.stdout.strip().splitlines()[-1])['.']  # the one set of --files
        assert summary['embedded'] == 4, summary
        with np.load(summary['stats']) as npz:
            stats[name] = {k: npz[k] for k in ('mu', 'sigma', 'n')}
    assert int(stats['slurm']['n']) == int(stats['local']['n']) == 4 * 2
    diff = {k: float(np.abs(stats['slurm'][k] - stats['local'][k]).max()) for k in ('mu', 'sigma')}
    print(f"[slurm] FAD statistics, SLURM workers vs local: max abs diff {diff}")
    assert max(diff.values()) <= 1e-6
    # the workers were SLURM jobs of this cluster, and they are gone
    jobs = slurm(slurm_cluster, 'sacct', '-n', '-X', '-o', 'JobName%30,State', '-S', 'now-1hour').split('\n')
    assert sum('dask-worker' in line for line in jobs) >= 2, jobs
    deadline = time.monotonic() + 60
    while slurm(slurm_cluster, 'squeue', '-h', '-o', '%i').split() and time.monotonic() < deadline:
        time.sleep(1)
    assert slurm(slurm_cluster, 'squeue', '-h', '-o', '%i').split() == []
