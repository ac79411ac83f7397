"""Fréchet distance, statistics files, the metric suite and od.eval's inputs (main env, no TF)."""
from __future__ import annotations

import json
import os

import numpy as np
import pytest
from scipy import linalg

from od.metrics import fad, suite


def random_cov(rng, d: int, n: int = 400) -> np.ndarray:
    return np.cov(rng.normal(size=(n, d)) @ rng.normal(size=(d, d)), rowvar=False)


def test_frechet_matches_closed_form_for_diagonal_gaussians():
    rng = np.random.default_rng(0)
    for d in (1, 8, 128):
        mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
        var_a, var_b = rng.uniform(0.1, 3, size=d), rng.uniform(0.1, 3, size=d)
        # Product of commuting diagonals: sqrt is elementwise.
        expected = np.sum((mu_a - mu_b) ** 2) + np.sum(var_a + var_b - 2 * np.sqrt(var_a * var_b))
        got = fad.frechet_distance(mu_a, np.diag(var_a), mu_b, np.diag(var_b))
        assert got == pytest.approx(expected, rel=1e-6)


def test_frechet_matches_symmetric_scipy_form():
    """Second implementation: Tr((S_a S_b)^1/2) = Tr((S_a^1/2 S_b S_a^1/2)^1/2), via eigh."""
    rng = np.random.default_rng(1)
    for d in (4, 32, 128):
        sa, sb = random_cov(rng, d), random_cov(rng, d)
        mu_a, mu_b = rng.normal(size=d), rng.normal(size=d)
        w, v = linalg.eigh(sa)
        root_a = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
        inner = linalg.eigvalsh(root_a @ sb @ root_a)
        expected = (np.sum((mu_a - mu_b) ** 2) + np.trace(sa) + np.trace(sb)
                    - 2 * np.sum(np.sqrt(np.clip(inner, 0, None))))
        assert fad.frechet_distance(mu_a, sa, mu_b, sb) == pytest.approx(expected, rel=1e-6)


def test_identical_sets_are_at_zero_and_shifted_sets_are_not():
    x = np.random.default_rng(2).normal(size=(500, 64))
    assert abs(fad.fad_from_embeddings(x, x)) < 1e-6
    # a mean shift of 1 in every dimension adds exactly D to the distance
    assert fad.fad_from_embeddings(x, x + 1.0) == pytest.approx(64.0, rel=1e-6)


def test_near_singular_covariances_stay_finite():
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(10, 64)), rng.normal(size=(12, 64))  # N < D: singular covariances
    value = fad.fad_from_embeddings(a, b)
    assert np.isfinite(value) and value > 0


def test_stats_round_trip_and_cache_key(tmp_path):
    x = np.random.default_rng(4).normal(size=(20, 5))
    path = fad.save_stats(tmp_path / 's.npz', *fad.gaussian_stats(x), n=20, random_init=True)
    mu, sigma, n = fad.load_stats(path)
    np.testing.assert_allclose(mu, x.mean(0))
    assert n == 20 and not list(tmp_path.glob('*.tmp*'))
    audio = tmp_path / 'a.wav'
    audio.write_bytes(b'x')
    key = fad.stats_cache_path(tmp_path, 'vggish', [str(audio)], 'ckpt')
    assert key == fad.stats_cache_path(tmp_path, 'vggish', [str(audio)], 'ckpt')
    assert key != fad.stats_cache_path(tmp_path, 'vggish', [str(audio)], 'other-ckpt')
    audio.write_bytes(b'xy')  # edited reference file: a new key, never stale statistics
    assert key != fad.stats_cache_path(tmp_path, 'vggish', [str(audio)], 'ckpt')
    assert fad.stats_cache_path(None, 'vggish', [str(audio)]) is None


def test_suite_names_and_missing_environment(tmp_path, monkeypatch):
    assert suite.parse_metrics('fad_vggish, clap_score,fad_vggish') == ['fad_vggish', 'clap_score']
    with pytest.raises(ValueError, match='available'):
        suite.parse_metrics('fad_vgish')
    from od.metrics import vggish
    monkeypatch.setenv('TF_PYTHON_EXE', str(tmp_path / 'nope' / 'python'))
    with pytest.raises(vggish.FadEnvironmentError, match='make fad-env'):
        suite.check_metrics(['fad_vggish'])


def test_missing_vggish_checkpoint_says_where(tmp_path, monkeypatch):
    from od.core.environment import MissingWeightsError
    from od.metrics import vggish
    monkeypatch.delenv('OD_VGGISH_CHECKPOINT', raising=False)
    with pytest.raises(MissingWeightsError, match='vggish_model.ckpt') as err:
        vggish.resolve_checkpoint(str(tmp_path / 'missing.ckpt'))
    assert '--vggish-checkpoint' in str(err.value) and 'random-checkpoint' in str(err.value)
    (tmp_path / 'v1.ckpt').write_bytes(b'')  # Google's single-file checkpoint
    assert vggish.resolve_checkpoint(str(tmp_path / 'v1.ckpt')) == (tmp_path / 'v1.ckpt').resolve()


def test_eval_inputs_from_folders_and_manifests(tmp_path):
    from od.eval import audio_files, descriptions
    for i in range(2):
        (tmp_path / f'{i}.wav').write_bytes(b'')
    (tmp_path / '0.txt').write_text('calm piano')
    (tmp_path / '1.json').write_text(json.dumps({'description': 'fast drums'}))
    files = audio_files(tmp_path)
    assert [os.path.basename(f) for f in files] == ['0.wav', '1.wav']
    assert descriptions(files) == ['calm piano', 'fast drums']
    egs = tmp_path / 'egs'
    egs.mkdir()
    (egs / 'data.jsonl').write_text(''.join(json.dumps({'path': f}) + '\n' for f in files))
    assert audio_files(egs) == files
    # A symlink loop, a name with a newline and one that is not UTF-8 neither abort nor split.
    odd = tmp_path / 'odd'
    odd.mkdir()
    (odd / 'loop.wav').symlink_to(odd / 'loop.wav')
    (odd / 'sub').mkdir()
    (odd / 'sub' / 'up').symlink_to(odd, target_is_directory=True)
    (odd / 'two\nlines.wav').write_bytes(b'')
    open(os.fsencode(str(odd)) + b'/caf\xe9.wav', 'wb').close()
    found = audio_files(odd)
    assert len(found) == 2 and str(odd / 'two\nlines.wav') in found
    (tmp_path / '1.json').unlink()
    with pytest.raises(FileNotFoundError, match='1.wav'):
        descriptions(files)


@pytest.mark.slow
def test_od_eval_clap_metrics_with_a_tiny_clap(tmp_path):
    """fad_clap + clap_score through the suite and the CLI (main env; a tiny random CLAP)."""
    import soundfile as sf

    from od.eval import main
    from od.inference.tiny import write_tiny_clap
    write_tiny_clap(tmp_path / 'clap')
    rng = np.random.default_rng(0)
    t = np.arange(int(2.5 * 48000)) / 48000
    for name, wave in (('reference', np.sin), ('generated', lambda x: np.sign(np.sin(x)))):
        (tmp_path / name).mkdir()
        for i in range(3):
            wav = 0.3 * wave(2 * np.pi * (220 + 50 * i) * t) + 0.01 * rng.normal(size=t.shape)
            sf.write(tmp_path / name / f'{i}.wav', wav.astype(np.float32), 48000)
            (tmp_path / name / f'{i}.txt').write_text('a loud square chord')
    out = tmp_path / 'report.json'
    args = ['--reference', str(tmp_path / 'reference'), '--generated', str(tmp_path / 'generated'),
            '--metrics', 'fad_clap,clap_score', '--clap-model', str(tmp_path / 'clap'),
            '--stats-cache', str(tmp_path / 'cache'), '--out', str(out), '--no-progress']
    assert main(args) == 0
    report = json.loads(out.read_text())
    assert report['fad_clap'] > 0 and -1 <= report['clap_score'] <= 1
    assert report['details']['clap_score']['n'] == 3
    assert len(list((tmp_path / 'cache').glob('clap_*.npz'))) == 1
    same = suite.compute_metrics(['fad_clap'], *[suite_files(tmp_path / 'reference')] * 2,
                                 options=suite.MetricOptions(clap_model=str(tmp_path / 'clap'), progress=False))
    assert abs(same['fad_clap']) < 1e-3 < report['fad_clap']


def suite_files(folder):
    from od.eval import audio_files
    return audio_files(folder)


def test_vggish_reference_statistics_are_cached_and_reused(tmp_path, monkeypatch):
    """The bridge's bookkeeping, with the TF job replaced by a recorder (the real job runs in
    tests/test_fad_tf.py): the second evaluation embeds only the generated set."""
    from od.metrics import vggish
    from od.metrics.fad_tf.runners import RunnerSpec
    requested, runners = [], []

    def fake_embed_sets(sets, out_dir, checkpoint, workers=2, progress=True, runner=None):
        requested.append(sorted(sets))
        runners.append(runner)
        done = {}
        for i, name in enumerate(sets):
            x = np.random.default_rng(i).normal(size=(50, 8)) + (name == 'generated')
            path = fad.save_stats(out_dir / name / 'stats.npz', *fad.gaussian_stats(x), n=50)
            done[name] = {'stats': str(path), 'failed': [], 'random_init': True}
        return done

    ckpt = tmp_path / 'v.ckpt'
    ckpt.write_bytes(b'')
    monkeypatch.setattr(vggish, 'check_fad_vggish', lambda checkpoint=None, runner=None: ckpt)
    monkeypatch.setattr(vggish, 'embed_sets', fake_embed_sets)
    ref = [str(tmp_path / 'r.wav')]
    first = vggish.fad_vggish(ref, ['g.wav'], stats_cache=str(tmp_path / 'cache'), progress=False)
    dask = RunnerSpec('dask', 3, 'tcp://10.0.0.5:8786', work_dir=str(tmp_path / 'shared'))
    second = vggish.fad_vggish(ref, ['g.wav'], stats_cache=str(tmp_path / 'cache'), progress=False, runner=dask)
    assert requested == [['generated', 'reference'], ['generated']]
    assert runners == [RunnerSpec(workers=2), dask]  # the configured runner reaches the Beam job
    assert (tmp_path / 'shared').is_dir()  # the job's outputs go where the workers see them
    assert not first['reference_cached'] and second['reference_cached']
    assert second['fad_vggish'] == pytest.approx(first['fad_vggish']) and first['fad_vggish'] > 1


def test_example_batcher_packs_files_into_full_batches():
    """Every model call but the last gets exactly batch_size examples, across file boundaries,
    and each file gets back exactly its own embeddings, in order, as soon as they are done."""
    from od.metrics.fad_tf.batching import ExampleBatcher
    calls = []

    def embed(x):  # [B, 3, 2] -> [B, 2]: a stand-in model whose output identifies its input
        calls.append(len(x))
        return x.sum(axis=1) * 2

    rng = np.random.default_rng(0)
    files = {f'f{i}': rng.normal(size=(n, 3, 2)) for i, n in enumerate([3, 10, 1, 17, 7, 2])}
    batcher = ExampleBatcher(embed, batch_size=8)
    done, held = [], []
    for key, examples in files.items():
        done += batcher.add(key, examples)
        held.append(batcher._rows(batcher.inputs) + batcher._rows(batcher.outputs))
    done += batcher.flush()
    assert calls == [8, 8, 8, 8, 8]  # 40 examples: five full batches, the flush found nothing left
    assert [k for k, _ in done] == list(files)
    for key, emb in done:
        np.testing.assert_allclose(emb, files[key].sum(axis=1) * 2)
    assert max(held) < 8 + 17  # at most one batch and the file being added, never all files
    assert ExampleBatcher(embed, 8).flush() == []
    with pytest.raises(ValueError, match='no examples'):
        ExampleBatcher(embed, 8).add('empty', np.zeros((0, 3, 2)))


def test_prefetch_keeps_order_and_hands_back_errors():
    from od.metrics.fad_tf.batching import prefetch

    def square(x):
        if x == 3:
            raise ValueError('bad item 3')
        return x * x

    got = list(prefetch(square, range(6), depth=2))
    assert [item for item, _ in got] == list(range(6))
    assert [r for _, r in got if not isinstance(r, Exception)] == [0, 1, 4, 16, 25]
    assert isinstance(got[3][1], ValueError) and 'bad item 3' in str(got[3][1])


def test_runner_plan_in_process_processes_dask_and_other_runners():
    from od.metrics.fad_tf.runners import DASK_RUNNER, RunnerSpec, plan
    # 2 cores: 2 worker processes (one core each) measured slower than one process: in process,
    # whatever the length of the job
    for seconds in (320, 24 * 3600):
        two = plan(RunnerSpec(workers=2), n_files=32, audio_seconds=seconds, n_cores=2)
        assert two.mode == 'in_process' and two.tf_threads == 0 and 'would not beat' in two.reason
        assert two.beam_args == ['--runner=DirectRunner', '--direct_running_mode=in_memory'] and two.chunks == 1
    # many cores and hours of audio: processes of >= 2 cores each, the cores split between them
    big = plan(RunnerSpec(workers=4), n_files=2000, audio_seconds=2000 * 30, n_cores=16)
    assert big.mode == 'processes' and big.workers == 4 and big.tf_threads == 4 and big.chunks >= 4 * 4
    assert '--direct_running_mode=multi_processing' in big.beam_args
    assert plan(RunnerSpec(workers=8), 2000, 2000 * 30, n_cores=8).workers == 4  # 2 cores each
    # ... but not for a minute of audio, nor when the work is unknown
    assert plan(RunnerSpec(workers=4), 6, 60, n_cores=16).mode == 'in_process'
    assert plan(RunnerSpec(workers=4), 2000, None, n_cores=16).mode == 'in_process'
    # Dask: Beam's full runner path (no short name in Beam 2.77), the scheduler, one task per chunk
    dask = plan(RunnerSpec('dask', 2, 'tcp://10.0.0.5:8786'), n_files=5)
    assert dask.beam_args == [f'--runner={DASK_RUNNER}', '--dask_client_address=tcp://10.0.0.5:8786',
                              '--dask_npartitions=5']
    assert '--dask_client_address' not in ' '.join(plan(RunnerSpec('dask'), 5).beam_args)  # a LocalCluster
    # any other runner, or a --runner among the Beam options, is taken as given
    flink = plan(RunnerSpec('FlinkRunner', beam_args=('--flink_master=host:8081',)), 10)
    assert flink.beam_args == ['--runner=FlinkRunner', '--flink_master=host:8081']
    given = ('--runner=DirectRunner', '--direct_num_workers=2', '--direct_running_mode=multi_processing')
    assert plan(RunnerSpec(beam_args=given), 10, 100, n_cores=2).beam_args == list(given)
    with pytest.raises(ValueError, match="needs runner='dask'"):
        RunnerSpec(dask_address='tcp://10.0.0.5:8786')
    with pytest.raises(ValueError, match='workers'):
        RunnerSpec(workers=0)


def test_runner_spec_round_trips_through_the_tf_side_command_line():
    import argparse

    from od.metrics.fad_tf.runners import RunnerSpec
    parser = argparse.ArgumentParser()
    RunnerSpec.add_arguments(parser)
    for spec in (RunnerSpec(), RunnerSpec('dask', 3, 'tcp://10.0.0.5:8786', tf_threads=2, batch_size=32,
                                          beam_args=('--dask_connection_timeout=30',))):
        assert RunnerSpec.from_namespace(parser.parse_args(spec.cli_args())) == spec


def test_solver_config_chooses_the_vggish_runner(tmp_path):
    from omegaconf import OmegaConf

    from od.metrics.fad_tf.runners import RunnerSpec
    from od.solvers.evaluation import metric_options
    cfg = OmegaConf.load(os.path.join(os.path.dirname(__file__), '..', 'config', 'solver', 'musicgen',
                                      'default.yaml'))
    assert metric_options(cfg, tmp_path).vggish_runner == RunnerSpec()  # the defaults: DirectRunner, 2
    cfg.metrics.fad.tf.merge_with({'runner': 'dask', 'workers': 8, 'dask_address': 'tcp://10.0.0.5:8786',
                                   'threads': 2, 'beam_args': ['--dask_connection_timeout=30'],
                                   'work_dir': str(tmp_path / 'shared')})
    options = metric_options(cfg, tmp_path)
    assert options.vggish_runner == RunnerSpec('dask', 8, 'tcp://10.0.0.5:8786', tf_threads=2,
                                               beam_args=('--dask_connection_timeout=30',),
                                               work_dir=str(tmp_path / 'shared'))
    assert options.workers == 8


@pytest.mark.tf
def test_dask_runner_needs_dask_in_the_fad_environment(monkeypatch):
    """A runner's own packages are checked at start-up: a python without dask is refused by name."""
    import sys

    from od.metrics import vggish
    from od.metrics.fad_tf.runners import RunnerSpec
    monkeypatch.setenv('TF_PYTHON_EXE', sys.executable)  # the main env: no tensorflow, no dask
    with pytest.raises(vggish.FadEnvironmentError, match='dask distributed') as err:
        vggish.check_tf_env(RunnerSpec('dask'))
    assert 'make fad-env' in str(err.value)


def test_listings_keep_any_file_name_and_stale_work_dirs_go(tmp_path):
    """A name with a newline or bytes that are not UTF-8 stays one entry on its way to the TF
    side; work folders of killed runs are removed, those of live ones kept."""
    import json
    import os

    from od.fad_tf import read_listing
    from od.metrics.vggish import WORK_PREFIX, clean_stale_work_dirs
    names = [str(tmp_path / 'two\nlines.wav'), os.fsdecode(str(tmp_path).encode() + b'/caf\xe9.wav'), 'it\'s "q".wav']
    listing = tmp_path / 'set.json'
    listing.write_text(json.dumps(names))
    assert read_listing(str(listing)) == names
    dead = tmp_path / f'{WORK_PREFIX}999999999-x'
    alive = tmp_path / f'{WORK_PREFIX}{os.getpid()}-y'
    dead.mkdir()
    alive.mkdir()
    assert clean_stale_work_dirs(str(tmp_path)) == 1 and not dead.exists() and alive.exists()
