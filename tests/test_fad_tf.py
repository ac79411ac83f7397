"""VGGish-FAD through the separate TF environment (`make fad-env`): checkpoint names, the
sine-tone sanity test and `python -m od.eval` end to end. In CI (CI=true) a missing environment
fails with the command to run; on a developer machine these tests are skipped with it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from od.metrics import vggish

from .helpers import missing_dependency

pytestmark = pytest.mark.tf

ROOT = Path(__file__).resolve().parent.parent

# The official VGGish variables (name, shape), as stored in Google's vggish_model.ckpt.
OFFICIAL = [
    ('vggish/conv1/biases', [64]), ('vggish/conv1/weights', [3, 3, 1, 64]),
    ('vggish/conv2/biases', [128]), ('vggish/conv2/weights', [3, 3, 64, 128]),
    ('vggish/conv3/conv3_1/biases', [256]), ('vggish/conv3/conv3_1/weights', [3, 3, 128, 256]),
    ('vggish/conv3/conv3_2/biases', [256]), ('vggish/conv3/conv3_2/weights', [3, 3, 256, 256]),
    ('vggish/conv4/conv4_1/biases', [512]), ('vggish/conv4/conv4_1/weights', [3, 3, 256, 512]),
    ('vggish/conv4/conv4_2/biases', [512]), ('vggish/conv4/conv4_2/weights', [3, 3, 512, 512]),
    ('vggish/fc1/fc1_1/biases', [4096]), ('vggish/fc1/fc1_1/weights', [12288, 4096]),
    ('vggish/fc1/fc1_2/biases', [4096]), ('vggish/fc1/fc1_2/weights', [4096, 4096]),
    ('vggish/fc2/biases', [128]), ('vggish/fc2/weights', [4096, 128]),
]


@pytest.fixture(scope='session')
def tf_env():
    try:
        vggish.check_tf_env()
    except vggish.FadEnvironmentError as exc:
        missing_dependency('fad-env', str(exc))
    return vggish.tf_python()


@pytest.fixture(scope='session')
def random_ckpt(tf_env, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp('vggish') / 'vggish_random.ckpt'
    vggish.run_tf('random-checkpoint', '--out', str(path))
    return path


def run_tf_code(code: str) -> str:
    proc = subprocess.run([str(vggish.tf_python()), '-c', textwrap.dedent(code)], env=vggish.tf_env(),
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-4000:]
    return proc.stdout


def test_checkpoint_round_trip_by_official_names(random_ckpt, tmp_path):
    listed = [line.split(' ', 1) for line in
              vggish.run_tf('list-variables', str(random_ckpt)).stdout.splitlines()]
    stored = {name: json.loads(shape) for name, shape in listed}
    assert stored.pop('od/random_init') == []  # the smoke-test marker
    assert sorted(stored.items()) == OFFICIAL
    out = run_tf_code(f"""
        import numpy as np, tensorflow.compat.v1 as tf
        from od.metrics.fad_tf.vggish import Embedder, define_vggish
        x = np.random.default_rng(0).normal(size=(3, 96, 64)).astype('float32')
        a, b = Embedder({str(random_ckpt)!r}), Embedder({str(random_ckpt)!r})
        ea, eb = a.embed(x), b.embed(x)
        with tf.Graph().as_default(), tf.Session() as s:  # same graph, fresh weights (seed 5)
            tf.set_random_seed(5)
            features, embedding = define_vggish()
            s.run(tf.global_variables_initializer())
            fresh = s.run(embedding, {{features: x}})
        print(ea.shape, np.array_equal(ea, eb), bool(np.abs(ea - fresh).max() > 1e-4), a.random_init)
        # the official post-processor's file format: ([128, 128] eigenvectors, [128, 1] means)
        np.savez({str(tmp_path / 'pca.npz')!r}, pca_eigen_vectors=2 * np.eye(128), pca_means=np.ones((128, 1)))
        pca = Embedder({str(random_ckpt)!r}, pca_params={str(tmp_path / 'pca.npz')!r})
        print('pca', np.allclose(pca.embed(x), 2 * (ea - 1), atol=1e-4))
        # a checkpoint without VGGish's names is refused by name
        with tf.Graph().as_default(), tf.Session() as s:
            tf.get_variable('vggish/conv1/weights', [3, 3, 1, 64]); s.run(tf.global_variables_initializer())
            tf.train.Saver().save(s, {str(tmp_path / 'partial.ckpt')!r}, write_meta_graph=False)
        try:
            Embedder({str(tmp_path / 'partial.ckpt')!r})
        except ValueError as e:
            print('refused', 'vggish/conv1/biases' in str(e))
    """)
    # Same file -> identical embeddings; freshly initialised weights differ: the file loads.
    assert out.splitlines() == ['(3, 128) True True True', 'pca True', 'refused True']


def test_fad_grows_with_distortion_of_sine_tones(random_ckpt):
    """google-research's sanity check in spirit: clean tones vs ever noisier copies (SNR 50 ->
    20 dB). Different phases, same frequencies: level 0 must be ~0, then FAD grows."""
    out = run_tf_code(f"""
        import json, numpy as np
        from od.metrics.fad_tf.frontend import waveform_to_examples
        from od.metrics.fad_tf.vggish import Embedder
        from od.metrics.fad import fad_from_embeddings
        sr = 16000
        t = np.arange(sr) / sr
        freqs = np.random.default_rng(0).uniform(200, 4000, size=16)
        def tones(seed):
            phase = np.random.default_rng(seed).uniform(0, 2 * np.pi, size=len(freqs))
            return [0.5 * np.sin(2 * np.pi * f * t + p) for f, p in zip(freqs, phase)]
        model = Embedder({str(random_ckpt)!r})
        emb = lambda clips: np.concatenate([model.embed(waveform_to_examples(c, sr)) for c in clips])
        reference, fads = emb(tones(1)), []
        for level in (0.0, 0.001, 0.003, 0.01, 0.03):
            noise = np.random.default_rng(2)
            fads.append(fad_from_embeddings(reference, emb([c + level * noise.normal(size=c.shape)
                                                            for c in tones(3)])))
        print(json.dumps(fads))
    """)
    fads = json.loads(out.splitlines()[-1])
    assert all(b > a for a, b in zip(fads, fads[1:])), fads
    assert fads[0] < 1e-3 * fads[1], fads  # phase alone changes nothing VGGish sees


def test_od_eval_end_to_end_through_the_tf_env(random_ckpt, tmp_path):
    import soundfile as sf
    rng = np.random.default_rng(0)
    for name, noise in (('reference', 0.0), ('generated', 0.3)):
        folder = tmp_path / name
        folder.mkdir()
        for i in range(3):
            t = np.arange(int(2.5 * 22050)) / 22050  # another rate: the TF side resamples
            wav = 0.4 * np.sin(2 * np.pi * (300 + 200 * i) * t) + noise * rng.normal(size=t.shape)
            sf.write(folder / f'{i}.wav', np.stack([wav, wav], 1).astype(np.float32), 22050)
    # File names need not be UTF-8 (Beam's string coder refuses them): one good, one broken.
    os.rename(tmp_path / 'generated' / '2.wav', os.fsdecode(os.fsencode(tmp_path / 'generated') + b'/2_\xe9.wav'))
    with open(os.fsencode(tmp_path / 'generated') + b'/broken_\xff.wav', 'wb') as f:
        f.write(b'not audio')  # skipped, counted, named
    cache = tmp_path / 'cache'
    cmd = [sys.executable, '-m', 'od.eval', '--reference', str(tmp_path / 'reference'),
           '--generated', str(tmp_path / 'generated'), '--metrics', 'fad_vggish',
           '--vggish-checkpoint', str(random_ckpt), '--stats-cache', str(cache),
           '--out', str(tmp_path / 'report.json'), '--workers', '2']
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    report = json.loads((tmp_path / 'report.json').read_text())
    assert np.isfinite(report['fad_vggish']) and report['fad_vggish'] > 0
    details = report['details']['fad_vggish']
    assert details['random_init'] is True and 'RANDOMLY INITIALISED' in proc.stdout
    assert len(details['skipped']) == 1 and 'broken_\\xff.wav' in details['skipped'][0], details['skipped']
    assert details['generated_examples'] == 3 * 2
    assert details['reference_examples'] == 3 * 2  # 2.5 s -> two 0.96 s examples per file
    # --workers 2 for 25 s of audio: worker processes would never repay their start-up
    assert details['beam'].startswith('in process: 2 worker processes would not beat'), details['beam']
    assert len(list(cache.glob('vggish_*.npz'))) == 1  # reference statistics cached



def test_kad_vggish_on_the_embeddings_of_the_tf_env(random_ckpt, tmp_path):
    """KAD on the VGGish examples the TF side writes: ~0 (the unbiased estimator's value for one
    set passed twice) for the same files, growing with the noise added to copies. The kernel is
    fixed by the reference set; with kadtk's default (the evaluated set's) the noisier copies
    scored lower than the less noisy ones on these very files."""
    import soundfile as sf
    t = np.arange(int(3.0 * 16000)) / 16000
    sets = {}
    for name, noise in (('clean', 0.0), ('noisy', 0.05), ('noisier', 0.3)):
        (tmp_path / name).mkdir()
        sets[name] = []
        for i in range(4):
            wav = 0.4 * np.sin(2 * np.pi * (250 + 150 * i) * t) + noise * np.random.default_rng(i).normal(size=t.shape)
            sf.write(tmp_path / name / f'{i}.wav', wav.astype(np.float32), 16000)
            sets[name].append(str(tmp_path / name / f'{i}.wav'))
    same = vggish.kad_vggish(sets['clean'], sets['clean'], str(random_ckpt), progress=False)
    noisy = vggish.kad_vggish(sets['clean'], sets['noisy'], str(random_ckpt), progress=False)
    noisier = vggish.kad_vggish(sets['clean'], sets['noisier'], str(random_ckpt), progress=False)
    assert same['n_generated'] == same['n_reference'] == 4 * 3 and same['dim'] == 128 and same['random_init']
    assert same['kad_vggish'] <= 0 and abs(same['kad_vggish']) < 0.1 * noisy['kad_vggish']
    assert 0 < noisy['kad_vggish'] < noisier['kad_vggish']

DASK_VS_DIRECT = """
import json, sys
import numpy as np, soundfile as sf
from dask.distributed import Client, LocalCluster
from od.metrics.fad_tf import pipeline
from od.metrics.fad_tf.runners import RunnerSpec

if __name__ == '__main__':  # the cluster's worker processes re-import this file
    tmp, ckpt = sys.argv[1], sys.argv[2]
    rng = np.random.default_rng(0)
    files = []
    for i, sr in enumerate((16000, 22050, 32000, 44100)):
        t = np.arange(int(2.5 * sr)) / sr
        sf.write(f'{tmp}/{i}.wav', (0.4 * np.sin(2 * np.pi * (300 + 150 * i) * t)
                                    + 0.05 * rng.normal(size=t.shape)).astype('float32'), sr)
        files.append(f'{tmp}/{i}.wav')
    open(f'{tmp}/broken.wav', 'wb').write(b'not audio')
    files.insert(2, f'{tmp}/broken.wav')
    # one worker process (each imports TF: seconds); its 5 partitions are 5 tasks, 5 DoFn setups
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, \\
            Client(cluster) as client:
        dask = pipeline.run(files, f'{tmp}/dask', ckpt, RunnerSpec('dask', 2, cluster.scheduler_address,
                                                                    tf_threads=1, batch_size=2))
        loads = client.run(lambda: __import__('od.metrics.fad_tf.pipeline', fromlist=['_']).model_loads)
    direct = pipeline.run(files, f'{tmp}/direct', ckpt, RunnerSpec(workers=2, tf_threads=1, batch_size=2))
    print(json.dumps({'dask': dask, 'direct': direct, 'loads': loads}))
"""


def test_dask_runner_on_a_local_cluster_matches_the_direct_runner(random_ckpt, tmp_path):
    """The same pipeline on Beam's Dask runner against a dask.distributed LocalCluster (a worker
    process of its own, as on a real cluster) and on the DirectRunner: same files embedded, same
    bad file named, same statistics; the worker restored the checkpoint once for its 5 partitions."""
    script = tmp_path / 'dask_vs_direct.py'
    script.write_text(DASK_VS_DIRECT)
    proc = subprocess.run([str(vggish.tf_python()), str(script), str(tmp_path), str(random_ckpt)],
                          env=vggish.tf_env(), cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    dask, direct = out['dask'], out['direct']
    assert dask['runner'] == 'dask' and direct['runner'] == 'in_process'  # 12.5 s of audio: never processes
    for summary in (dask, direct):
        assert summary['embedded'] == 4 and len(summary['failed']) == 1 and 'broken.wav' in summary['failed'][0]
    # batches of 2 = one file each on both runners, one TF thread each: the same arithmetic
    with np.load(dask['stats']) as a, np.load(direct['stats']) as b:
        assert int(a['n']) == int(b['n']) == 4 * 2  # 2.5 s -> two 0.96 s examples per file
        np.testing.assert_allclose(a['mu'], b['mu'], rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(a['sigma'], b['sigma'], rtol=1e-9, atol=1e-12)
    for i in (0, 1, 3, 4):  # every file's own embeddings, whichever worker it went through
        np.testing.assert_array_equal(np.load(tmp_path / 'dask' / 'embeddings' / f'{i:07d}.npy'),
                                      np.load(tmp_path / 'direct' / 'embeddings' / f'{i:07d}.npy'))
    # 5 files -> 5 partitions (5 setups of the DoFn), yet the worker restored the checkpoint once
    assert list(out['loads'].values()) == [1], out['loads']


def solver_args(example_data, ckpt) -> list:
    from .helpers import FAST, datasource_overrides
    return ['solver=musicgen/debug', *FAST, *datasource_overrides(example_data), 'optim.epochs=1',
            'optim.updates_per_epoch=2', 'generate.every=0', 'evaluate.every=1',
            'evaluate.metrics.fad=true', f'metrics.fad.tf.model_path={ckpt}', 'metrics.fad.tf.workers=1',
            'dataset.evaluate.num_samples=4', 'evaluate.fixed_generation_duration=1.5']


def test_solver_fails_at_start_without_the_tf_env(example_data, tmp_path, monkeypatch):
    from .helpers import build_solver
    monkeypatch.setenv('TF_PYTHON_EXE', str(tmp_path / 'no-env' / 'python'))
    with pytest.raises(vggish.FadEnvironmentError, match='make fad-env'):
        build_solver(solver_args(example_data, tmp_path / 'x.ckpt'))


@pytest.mark.slow
def test_dora_run_logs_fad_in_history(example_data, random_ckpt, tmp_path):
    from .helpers import dora_run, only_xp, read_history
    dora_run(solver_args(example_data, random_ckpt), tmp_path)
    xp = only_xp(tmp_path)
    history = read_history(xp)
    fad = history[-1]['evaluate']['fad_vggish']
    assert np.isfinite(fad) and fad > 0, history[-1]
    assert list((xp / 'evaluate' / 'epoch_1').glob('*.wav'))  # what was scored is kept
    assert list((xp / 'tensorboard').rglob('events.*'))
