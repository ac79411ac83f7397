"""Embedding-space analysis: metrics on data separable by construction, real encoders end to end."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from od import embeddings as embeddings_command
from od.analysis import embeddings, space, synthetic

from .test_fad_tf import random_ckpt, tf_env  # noqa: F401  (the FAD env fixtures: skip / CI failure)

NOISE = {'a': 0.1, 'b': 0.2, 'c': 0.3}
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'


def is_png(path) -> bool:
    return path.is_file() and path.read_bytes()[:8] == PNG_MAGIC and path.stat().st_size > 2000


@pytest.fixture(scope='module')
def tiny_clip(tmp_path_factory):
    from od.inference.tiny import write_tiny_clip
    return write_tiny_clip(tmp_path_factory.mktemp('tiny_clip'))


@pytest.fixture(scope='module')
def vector_run(tmp_path_factory):
    """Gaussian clusters (orthogonal centres, known noise) + two unreadable files, analysed."""
    base = tmp_path_factory.mktemp('vectors')
    centres = synthetic.write_vectors(base / 'data', NOISE, per_category=20, dim=16, seed=1)
    (base / 'data' / 'a' / 'broken.npy').write_bytes(b'not a numpy file')
    np.save(base / 'data' / 'b' / 'wrong_dim.npy', np.zeros(7))
    report = embeddings.analyse(base / 'data', ['npy'], base / 'out', progress=False)
    return base, centres, report


def test_metrics_show_the_constructed_separation(vector_run):
    base, centres, report = vector_run
    m = report['encoders']['npy']
    assert m['n_files'] == 60 and m['dim'] == 16
    assert m['files_per_category'] == {'a': 20, 'b': 20, 'c': 20}
    # Mean per-category variance = noise std ** 2 (generator), within sampling error.
    for category, std in NOISE.items():
        assert m['variance'][category] == pytest.approx(std ** 2, rel=0.3)
    assert m['variance']['a'] < m['variance']['b'] < m['variance']['c']
    assert m['mean_variance'] == pytest.approx(np.mean([s ** 2 for s in NOISE.values()]), rel=0.3)
    # Orthogonal centres: category means are nearly orthogonal, files of a category are close.
    cos = np.array(m['centroid_cosine'])
    assert np.allclose(np.diag(cos), 1.0) and np.abs(cos[~np.eye(3, dtype=bool)]).max() < 0.25
    within, between = m['cosine']['within_category_mean'], m['cosine']['between_category_mean']
    assert within > 0.5 and abs(between) < 0.15 and within > between + 0.4
    assert min(m['cosine']['within_category'].values()) > m['centroid_cosine_offdiag_mean']
    assert m['silhouette_cosine'] > 0.3
    # Full-space centroids are the generator's centres (up to noise / sqrt(20)).
    for category, centre in centres.items():
        assert np.linalg.norm(np.array(m['centroids'][category]) - centre) < 0.35
    assert set(m['centroids_pca']) == set(m['centroids_tsne']) == set(NOISE)


def test_unreadable_files_are_reported_not_fatal(vector_run):
    base, _, report = vector_run
    skipped = report['encoders']['npy']['skipped']
    assert set(skipped) == {str(base / 'data' / 'a' / 'broken.npy'), str(base / 'data' / 'b' / 'wrong_dim.npy')}
    assert 'shape (7,), most files give (16,)' in skipped[str(base / 'data' / 'b' / 'wrong_dim.npy')]
    listed = (base / 'out' / 'skipped.txt').read_text().splitlines()
    assert len(listed) == 2 and all(line.startswith('npy\t') for line in listed)


def test_outputs_written(vector_run):
    base, _, report = vector_run
    out = base / 'out'
    assert json.loads((out / 'metrics.json').read_text()) == json.loads(json.dumps(report))
    for name in ('npy_scatter.png', 'npy_cosine.png', 'all_encoders.png'):
        assert is_png(out / name), name
    rows = list(csv.reader((out / 'npy_cosine.csv').open()))
    assert rows[0] == ['', 'a', 'b', 'c'] and [r[0] for r in rows[1:]] == ['a', 'b', 'c']
    assert np.allclose(np.array([[float(v) for v in r[1:]] for r in rows[1:]]),
                       report['encoders']['npy']['centroid_cosine'], atol=1e-5)
    assert len(list((out / 'embeddings' / 'npy').rglob('*.npy'))) == 60
    assert not list(out.rglob('*.tmp*'))


def test_shuffled_labels_show_no_separation(vector_run):
    """The measures are not blind: the same vectors with random categories look unstructured."""
    base, _, _ = vector_run
    items = [(p, c) for p, c in embeddings.walk_dataset(base / 'data') if p.stem.startswith(c + '_')]
    X = np.stack([np.load(p) for p, _ in items])
    labels = np.random.default_rng(0).permutation([c for _, c in items])
    cos = space.file_cosines(X, labels)
    assert abs(cos['within_category_mean'] - cos['between_category_mean']) < 0.1
    assert space.silhouette(X, labels) < 0.05


@pytest.mark.slow
def test_audio_and_images_with_tiny_clip_through_the_cli(tmp_path, capsys, tiny_clip):
    """Real adapters on real files: a tiny random CLIP (loaded like real weights) on images and
    videos, the mel baseline on audio; each skips what it cannot read; vectors are reusable."""
    from od.data.frames import write_video

    data = tmp_path / 'data'
    synthetic.write_images(data, ('red', 'green', 'blue'), per_category=3)
    rng = np.random.default_rng(0)
    for colour in ('red', 'blue'):
        frames = np.array(synthetic.COLOURS[colour], float) + 10 * rng.standard_normal((8, 64, 64, 3))
        write_video(data / colour / f"{colour}_clip.mp4", frames.clip(0, 255).astype(np.uint8), fps=4)
    synthetic.write_audio(data, ('chiptune', 'ambient'), per_category=3, duration=1.0)
    (data / 'green' / 'broken.png').write_bytes(b'not an image')
    (data / 'ambient' / 'broken.wav').write_bytes(b'RIFF garbage')
    out = tmp_path / 'out'
    args = ['--dataset', str(data), '--encoders', f'clip={tiny_clip},mel', '--out', str(out),
            '--cache-dir', str(tmp_path / 'cache'), '--fps', '2']
    assert embeddings_command.main(args) == 0
    printed = capsys.readouterr().out
    assert 'clip' in printed and 'mel' in printed and 'all_encoders.png' in printed
    report = json.loads((out / 'metrics.json').read_text())
    clip_m, mel_m = report['encoders']['clip'], report['encoders']['mel']
    assert clip_m['files_per_category'] == {'blue': 4, 'green': 3, 'red': 4}
    assert list(clip_m['skipped']) == [str(data / 'green' / 'broken.png')]
    assert clip_m['not_applicable'] == 6 + 1  # the audio files
    assert mel_m['files_per_category'] == {'ambient': 3, 'chiptune': 3}
    assert list(mel_m['skipped']) == [str(data / 'ambient' / 'broken.wav')]
    # Flat colours through a random ViT and two synthetic genres through log-mel both separate.
    for m in (clip_m, mel_m):
        assert m['cosine']['within_category_mean'] > m['cosine']['between_category_mean']
        assert m['silhouette_cosine'] > 0
    assert is_png(out / 'all_encoders.png') and is_png(out / 'clip_scatter.png') and is_png(out / 'mel_cosine.png')
    # Videos went through od's frame-embedding cache (one entry each, 2 s at 2 fps = 4 frames).
    entries = list((tmp_path / 'cache').rglob('*.pt'))
    assert len(entries) == 2
    # The written vectors feed the `npy=<dir>` adapter and give the same analysis.
    out2 = tmp_path / 'out2'
    assert embeddings_command.main(['--dataset', str(data), '--encoders', f"npy={out / 'embeddings' / 'mel'}",
                            '--out', str(out2), '--no-vectors']) == 0
    again = json.loads((out2 / 'metrics.json').read_text())['encoders']['npy-mel']
    assert again['files_per_category'] == mel_m['files_per_category']
    assert np.allclose(again['centroid_cosine'], mel_m['centroid_cosine'], atol=1e-5)


def test_cli_errors_are_clear(tmp_path, capsys):
    (tmp_path / 'empty' / 'cat').mkdir(parents=True)
    assert embeddings_command.main(['--dataset', str(tmp_path / 'empty'), '--encoders', 'npy', '--out', str(tmp_path / 'o')]) == 2
    assert 'expected <root>/<category>/<files>' in capsys.readouterr().err
    synthetic.write_vectors(tmp_path / 'v', {'a': 0.1, 'b': 0.1}, per_category=2, dim=4)
    assert embeddings_command.main(['--dataset', str(tmp_path / 'v'), '--encoders', 'nope', '--out', str(tmp_path / 'o')]) == 2
    assert "Unknown encoder 'nope'" in capsys.readouterr().err
    assert embeddings_command.main(['--dataset', str(tmp_path / 'v'), '--encoders', 'clip=/no/such/clip',
                            '--out', str(tmp_path / 'o')]) == 2
    assert 'clip' in capsys.readouterr().err.lower()


def trained_checkpoint(path, overrides):
    """An od checkpoint as `dora run` writes it (LM weights + XP config) for `overrides`; the LM."""
    import torch
    from audiocraft.models import builders
    from omegaconf import OmegaConf

    import od.train
    from od.conditioners import registry

    registry.install()
    cfg = od.train.main.get_xp(['solver=musicgen/debug', *overrides]).cfg
    cfg.device = 'cpu'
    torch.manual_seed(3)
    lm = builders.get_lm_model(cfg)
    torch.save({'best_state': {'model': lm.state_dict()}, 'xp.cfg': OmegaConf.to_container(cfg, resolve=False)}, path)
    return cfg, lm


def test_cond_encoder_gives_the_trained_conditioner_tokens(tmp_path, tiny_clip):
    """`cond=<checkpoint>` embeds with the checkpoint's own conditioner: CLIP + position embedding
    through its trained output_proj, exactly as the LM sees it."""
    import torch

    from od.data.frames import read_image
    from od.encoders.clip import load_image_encoder

    clip = tiny_clip
    cfg, lm = trained_checkpoint(tmp_path / 'checkpoint.th', [
        'conditioner=clipemb2music', f'conditioners.self_wav.clip_frames.name={clip}',
        'conditioners.self_wav.clip_frames.n_frames=4'])
    data = tmp_path / 'data'
    synthetic.write_images(data, ('red', 'green', 'blue'), per_category=3)
    report = embeddings.analyse(data, [f"cond={tmp_path / 'checkpoint.th'}"], tmp_path / 'out', progress=False)
    m = report['encoders']['cond']
    assert m['n_files'] == 9 and m['dim'] == cfg.transformer_lm.dim
    assert m['cosine']['within_category_mean'] > m['cosine']['between_category_mean']
    cond = lm.condition_provider.conditioners['self_wav']
    image = data / 'red' / 'red_000.png'
    with torch.no_grad():
        expected = cond.output_proj(load_image_encoder(str(clip)).encode(read_image(image)) + cond.pos_emb[0])[0]
    got = np.load(tmp_path / 'out' / 'embeddings' / 'cond' / 'red' / 'red_000.npy')
    assert np.allclose(got, expected.numpy(), atol=1e-4)


@pytest.fixture(scope='module')
def genre_audio(tmp_path_factory):
    data = tmp_path_factory.mktemp('genres')
    synthetic.write_audio(data, ('chiptune', 'ambient'), per_category=2, duration=2.0)
    (data / 'ambient' / 'broken.wav').write_bytes(b'RIFF garbage')
    return data


def check_audio_encoder(report, name, data):
    m = report['encoders'][name]
    assert m['files_per_category'] == {'ambient': 2, 'chiptune': 2}
    assert list(m['skipped']) == [str(data / 'ambient' / 'broken.wav')]
    assert m['cosine']['within_category_mean'] > m['cosine']['between_category_mean']


@pytest.fixture(scope='module')
def tiny_clap(tmp_path_factory):
    from od.inference.tiny import write_tiny_clap
    return write_tiny_clap(tmp_path_factory.mktemp('tiny_clap'))


@pytest.mark.slow
def test_clap_adapter_with_a_tiny_clap(genre_audio, tmp_path, tiny_clap):
    """LAION-CLAP through od.encoders.clap's loader (tiny random weights in od's CLAP format)."""
    report = embeddings.analyse(genre_audio, [f'clap={tiny_clap}'], tmp_path / 'out', progress=False)
    check_audio_encoder(report, 'clap', genre_audio)
    vector = np.load(tmp_path / 'out' / 'embeddings' / 'clap' / 'ambient' / 'ambient_000.npy')
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-3)  # CLAP metrics' normalised file embedding


@pytest.mark.tf
def test_vggish_adapter_through_the_tf_env(genre_audio, tmp_path, random_ckpt):  # noqa: F811  (a fixture)
    """VGGish in the separate TensorFlow env (random checkpoint), one Beam run for all files."""
    report = embeddings.analyse(genre_audio, [f'vggish={random_ckpt}'], tmp_path / 'out', progress=False,
                                options={'vggish.workers': '1'})  # in-process Beam: no worker start-up
    check_audio_encoder(report, 'vggish', genre_audio)
    assert report['encoders']['vggish']['dim'] == 128


@pytest.mark.slow
def test_cond_encoder_on_audio_with_the_clap_conditioner(genre_audio, tmp_path, tiny_clap):
    """`cond` on an audio conditioner (clap_audio): it reads audio files, and a file it cannot
    read (null condition) is reported instead of embedded as zeros."""
    cfg, _ = trained_checkpoint(tmp_path / 'checkpoint.th', [
        'conditioner=clapemb2music', f'conditioners.self_wav.clap_audio.name={tiny_clap}',
        f"conditioners.self_wav.clap_audio.cache_dir={tmp_path / 'cache'}"])
    report = embeddings.analyse(genre_audio, [f"cond={tmp_path / 'checkpoint.th'}"], tmp_path / 'out', progress=False)
    check_audio_encoder(report, 'cond', genre_audio)
    assert report['encoders']['cond']['dim'] == cfg.transformer_lm.dim
