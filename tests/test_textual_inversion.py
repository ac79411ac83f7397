"""Textual inversion: concept prep, new token rows, only they train, saved/loaded, and learned."""
from __future__ import annotations

import json
import os
import types
from pathlib import Path

import pytest
import torch

from od.conditioners import registry
from od.inference.tiny import write_tiny_t5
from od.solvers.concept_data import prepare_concepts, write_synthetic_concepts

from .helpers import build_solver

CHUNK = 2.0
PRETRAIN_UPDATES = 400
TI_UPDATES = 300


@pytest.fixture(scope='module')
def tiny_t5(tmp_path_factory):
    return write_tiny_t5(tmp_path_factory.mktemp('t5') / 'tiny-t5')


@pytest.fixture(scope='module')
def concepts_data(tmp_path_factory):
    """Two synthetic concepts (4 files x 2 chunks each) + one corrupt and one too-short file."""
    import numpy as np

    from od.core import atomic
    base = tmp_path_factory.mktemp('concepts')
    raw = write_synthetic_concepts(base / 'raw', ('chiptune', 'ambient'), per_concept=4, duration=4.0,
                                   seed=1)
    (raw / 'ambient' / 'broken.wav').write_bytes(b'RIFF....WAVEfmt garbage')
    atomic.write_wav(raw / 'chiptune' / 'short.wav', np.zeros(16000, np.float32), 32000)  # 0.5 s
    report = prepare_concepts('two', raw, chunk_seconds=CHUNK, dataset_dir=base / 'dataset',
                              egs_dir=base / 'egs', progress=False)
    return base, report


@pytest.fixture(scope='module')
def pretrained(tiny_t5, concepts_data):
    """A tiny text-to-music LM that learned "chiptune music" / "ambient music": the stand-in for a
    pretrained MusicGen whose frozen LM textual inversion has to steer."""
    from od.experiments.concept_accuracy import pretrain_text_lm
    return pretrain_text_lm(concepts_data[0] / 'egs' / 'two', tiny_t5, PRETRAIN_UPDATES)


@pytest.fixture(autouse=True)
def one_thread():
    """Tiny models: one thread is several times faster than two contending ones."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def ti_args(t5, egs, embeds, *extra):
    return ['solver=musicgen/textual_inversion_debug', f'datasource.train={egs}',
            f'conditioners.description.t5_ti.name={t5}', f'textual_inversion.embeds_dir={embeds}',
            'dataset.num_workers=0', 'dataset.segment_duration=1', 'generate.lm.gen_duration=1',
            'textual_inversion.tokens_num=2', *extra]


def test_prep_chunks_encodes_once_and_reports(concepts_data, monkeypatch):
    base, report = concepts_data
    assert report.chunks == {'chiptune': 8, 'ambient': 8} and report.encoded == 16
    assert sorted(report.skipped) == [str(base / 'raw' / 'ambient' / 'broken.wav'),
                                      str(base / 'raw' / 'chiptune' / 'short.wav')]
    assert 'too short' in report.skipped[str(base / 'raw' / 'chiptune' / 'short.wav')]
    entries = json.loads((base / 'egs' / 'two' / 'metadata_train.json').read_text())
    meta = json.loads((base / 'egs' / 'two' / 'metadata_concepts.json').read_text())
    assert len(entries) == 16 and set(entries[0]) == {'audio_path', 'encoded_path', 'concept', 'track_id'}
    assert meta['concepts'] == {'chiptune': {'tracks': 4, 'chunks': 8}, 'ambient': {'tracks': 4, 'chunks': 8}}
    # One tensor per chunk, and it is that chunk's own codes (not the batch's).
    from audiocraft.data.audio import audio_read

    from od.encoders.compression import build_compression_model
    codec = build_compression_model(meta['codec']['checkpoint'], meta['codec']['seed']).eval()
    first, last = entries[0], entries[7]
    for entry in (first, last):
        tokens = torch.load(entry['encoded_path'], weights_only=True)
        assert tokens.shape == (4, int(CHUNK * codec.frame_rate)) and tokens.dtype == torch.int16
        wav, _ = audio_read(entry['audio_path'])
        assert torch.equal(codec.encode(wav[None])[0][0].short(), tokens)
    assert not torch.equal(torch.load(first['encoded_path']), torch.load(last['encoded_path']))
    # Re-running encodes nothing (it does not even build the codec) and keeps the cached files.
    stamp = {e['encoded_path']: os.stat(e['encoded_path']).st_mtime_ns for e in entries}
    import od.encoders.compression

    def no_codec(*args, **kwargs):
        raise AssertionError("nothing to encode: the codec must not be built")
    monkeypatch.setattr(od.encoders.compression, 'build_compression_model', no_codec)
    again = prepare_concepts('two', base / 'raw', chunk_seconds=CHUNK, dataset_dir=base / 'dataset',
                             egs_dir=base / 'egs', progress=False)
    assert again.encoded == 0 and again.cached == 16 and len(again.skipped) == 2
    assert all(os.stat(p).st_mtime_ns == t for p, t in stamp.items())


@pytest.mark.slow
def test_prep_cache_keys_hold_everything_the_tokens_depend_on(tmp_path):
    """Same-named files stay apart, and a rerun with another seed (after a kill: no manifest
    yet) or another chunk length never reuses tokens made another way."""
    import numpy as np
    import soundfile as sf

    from od.encoders.compression import build_compression_model
    raw = tmp_path / 'raw' / 'beeps'
    for rel, freq in (('a/track.wav', 220), ('b/track.wav', 440), ('track.flac', 880)):
        (raw / rel).parent.mkdir(parents=True, exist_ok=True)
        t = np.arange(int(4.2 * 32000)) / 32000
        sf.write(raw / rel, 0.5 * np.sin(2 * np.pi * freq * t), 32000)
    dirs = dict(dataset_dir=tmp_path / 'dataset', egs_dir=tmp_path / 'egs', progress=False)
    first = prepare_concepts('b', tmp_path / 'raw', chunk_seconds=2.0, seed=1, **dirs)
    assert first.chunks == {'beeps': 6} and first.encoded == 6
    entries = json.loads((tmp_path / 'egs' / 'b' / 'metadata_train.json').read_text())
    assert len({e['encoded_path'] for e in entries}) == 6
    assert sorted({e['track_id'] for e in entries}) == ['beeps/a/track.wav', 'beeps/b/track.wav', 'beeps/track.flac']
    (tmp_path / 'egs' / 'b' / 'metadata_concepts.json').unlink()  # as if killed before the manifest
    again = prepare_concepts('b', tmp_path / 'raw', chunk_seconds=2.0, seed=2, **dirs)
    assert again.encoded == 6 and again.cached == 0  # another seed: another debug codec
    codec = build_compression_model('//pretrained/debug_compression_model', 2).eval()
    entry = json.loads((tmp_path / 'egs' / 'b' / 'metadata_train.json').read_text())[0]
    from audiocraft.data.audio import audio_read
    wav, _ = audio_read(entry['audio_path'])
    assert torch.equal(codec.encode(wav[None])[0][0].short(), torch.load(entry['encoded_path'], weights_only=True))
    longer = prepare_concepts('b', tmp_path / 'raw', chunk_seconds=3.0, seed=2, **dirs)
    assert longer.encoded == 3 and longer.chunks == {'beeps': 3}
    entry = json.loads((tmp_path / 'egs' / 'b' / 'metadata_train.json').read_text())[0]
    assert torch.load(entry['encoded_path'], weights_only=True).shape[-1] == 3 * codec.frame_rate


def test_prep_cli_help():
    import subprocess
    import sys
    out = subprocess.run([sys.executable, '-m', 'od.concepts', '--help'], capture_output=True, text=True)
    assert out.returncode == 0 and 'example: python -m od.concepts' in out.stdout


def test_concept_tokens_rows_and_gradients(tiny_t5):
    cond = registry.build_conditioner('t5_ti', 16, {'name': str(tiny_t5), 'concepts': ['8bit', 'choir'],
                                                    'tokens_num': 3}, device='cpu')
    table = cond.t5.get_input_embeddings().weight
    assert cond.concept_embeds.shape == (6, table.shape[1])
    assert cond.expand('calm <8bit> and <choir>, not <other>') == \
        'calm <8bit_0> <8bit_1> <8bit_2> and <choir_0> <choir_1> <choir_2>, not <other>'
    ids = cond.tokenize(['music in the style of <8bit>'])['input_ids'][0].tolist()
    new = [i for i in ids if i >= cond.base_vocab]
    assert new == [cond.base_vocab, cond.base_vocab + 1, cond.base_vocab + 2]
    # Rows start near the mean row (noise = 0.1 std), not at a token's row.
    assert (cond.concept_embeds - table.mean(0)).abs().max() < table.std() * 0.6
    embeds, _ = cond(cond.tokenize(['<8bit>', '<choir>']))
    assert not torch.allclose(embeds[0], embeds[1])
    embeds.sum().backward()
    assert cond.concept_embeds.grad is not None and cond.concept_embeds.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in cond.t5.parameters())
    assert sorted(n for n, _ in cond.named_parameters()) == ['concept_embeds', 'output_proj.bias', 'output_proj.weight']


@pytest.mark.slow
def test_training_moves_only_the_rows_and_never_encodes(tiny_t5, concepts_data, tmp_path):
    base, _ = concepts_data
    solver = build_solver(ti_args(tiny_t5, base / 'egs' / 'two', tmp_path / 'embeds', 'optim.epochs=1',
                                  'optim.updates_per_epoch=3'))

    def no_encoding(*args, **kwargs):
        raise AssertionError("training must read cached tokens, not encode audio")
    solver.compression_model.encode = no_encoding
    named = dict(solver.model.named_parameters())
    assert {n for n, p in named.items() if p.requires_grad} == \
        {'condition_provider.conditioners.description.concept_embeds'}
    assert [p for g in solver.optimizer.param_groups for p in g['params']] == \
        [named['condition_provider.conditioners.description.concept_embeds']]
    t5 = solver.ti_conditioner.t5
    before = {n: p.detach().clone() for n, p in named.items()}
    t5_before = {n: p.detach().clone() for n, p in t5.state_dict().items()}
    solver.run_stage('train', solver.train)
    moved = {n for n, p in named.items() if not torch.equal(p, before[n])}
    assert moved == {'condition_provider.conditioners.description.concept_embeds'}
    assert all(torch.equal(p, t5_before[n]) for n, p in t5.state_dict().items())
    # Saved, then loaded into a model that never saw the concepts (a plain `t5` text conditioner).
    path = solver.save_concepts()
    assert path.name == 'epoch_001.pt' and path.parent.name == solver.xp.sig
    from audiocraft.modules.conditioners import ConditioningProvider

    from od.conditioners.concepts import load_concepts
    plain = registry.build_conditioner('t5', 16, {'name': str(tiny_t5), 'finetune': False}, device='cpu')
    fresh = types.SimpleNamespace(condition_provider=ConditioningProvider({'description': plain}))
    assert sorted(load_concepts(fresh, path)) == ['ambient', 'chiptune']
    loaded = fresh.condition_provider.conditioners['description']
    assert torch.equal(loaded.concept_rows()['chiptune'], solver.ti_conditioner.concept_rows()['chiptune'])
    assert loaded.tokenize(['<ambient>'])['input_ids'].max() >= loaded.base_vocab
    assert loaded.output_proj is plain.output_proj  # the model's own projection, not a copy
    from od.generate import use_concepts
    with pytest.raises(ValueError, match=r'uses <choir> but no --concepts file defines it'):
        use_concepts(fresh, [path], 'a piece in the style of <chiptune> and <choir>')
    # Tokens written by another codec are refused.
    with torch.no_grad():
        next(solver.compression_model.parameters()).add_(1e-3)
    with pytest.raises(ValueError, match='encoded by another codec'):
        solver.check_codec()


@pytest.mark.slow
def test_a_truncated_token_file_is_skipped_and_training_goes_on(tiny_t5, concepts_data, tmp_path, caplog):
    """One bad file never ends a run: a truncated token file is named, counted and left out."""
    import json
    import shutil
    base, _ = concepts_data
    egs = tmp_path / 'egs'
    shutil.copytree(base / 'egs' / 'two', egs)
    entries = json.loads((egs / 'metadata_train.json').read_text())
    broken = tmp_path / 'broken.pt'
    broken.write_bytes(Path(entries[3]['encoded_path']).read_bytes()[:100])  # a kill mid-copy
    entries[3] = {**entries[3], 'encoded_path': str(broken)}
    (egs / 'metadata_train.json').write_text(json.dumps(entries))
    solver = build_solver(ti_args(tiny_t5, egs, tmp_path / 'embeds', 'optim.epochs=1', 'optim.updates_per_epoch=2'))
    assert f'Skipping 1 of {len(entries)} token files' in caplog.text and str(broken) in caplog.text
    assert len(solver.entries) == len(entries) - 1
    solver.run_stage('train', solver.train)


@pytest.mark.slow
def test_clap_metrics_are_monitored_per_concept(tiny_t5, concepts_data, tmp_path, monkeypatch):
    """`textual_inversion.metrics=[fad_clap,clap_score]`: every evaluate stage scores each concept's
    generations against that concept's reference chunks with CLAP; the figures reach history.json,
    tensorboard and best.pt (chosen here by the lowest FAD_CLAP)."""
    import shutil

    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from od.inference.tiny import write_tiny_clap
    from od.metrics import suite
    from od.metrics.clap import fad_clap
    base, _ = concepts_data
    clap = write_tiny_clap(tmp_path / 'clap')
    calls = []
    compute = suite.compute_metrics

    def spy(names, reference, generated, texts, options):  # keep what was scored, then score it
        kept = tmp_path / 'scored' / str(len(calls))
        kept.mkdir(parents=True)
        calls.append((list(reference), [shutil.copy(g, kept) for g in generated], list(texts)))
        return compute(names, reference, generated, texts, options)
    monkeypatch.setattr(suite, 'compute_metrics', spy)
    solver = build_solver(ti_args(tiny_t5, base / 'egs' / 'two', tmp_path / 'embeds', 'optim.epochs=1',
                                  'optim.updates_per_epoch=2', 'evaluate.every=1', 'textual_inversion.eval_samples=3',
                                  'textual_inversion.metrics=[fad_clap,clap_score]',
                                  f'textual_inversion.clap_model={clap}',
                                  'textual_inversion.best_metric=evaluate/fad_clap', 'textual_inversion.best_mode=min'))
    solver.run_epoch()
    solver.commit()
    metrics = json.loads((Path(solver.xp.folder) / 'history.json').read_text())[-1]['evaluate']
    print('evaluate:', metrics)
    assert sorted(c[2][0] for c in calls) == ['music in the style of ambient', 'music in the style of chiptune']
    entries = json.loads((base / 'egs' / 'two' / 'metadata_train.json').read_text())
    for reference, generated, texts in calls:
        concept = texts[0].rsplit(' ', 1)[-1]
        assert sorted(reference) == sorted(e['audio_path'] for e in entries if e['concept'] == concept)
        assert len(generated) == 3 and texts == [f'music in the style of {concept}'] * 3
        direct = fad_clap(reference, generated, str(clap), progress=False)['fad_clap']
        assert metrics[f'fad_clap_{concept}'] == pytest.approx(direct, rel=1e-4, abs=1e-6)
        assert -1 <= metrics[f'clap_score_{concept}'] <= 1
    for name in ('fad_clap', 'clap_score'):
        assert metrics[name] == pytest.approx((metrics[f'{name}_chiptune'] + metrics[f'{name}_ambient']) / 2)
    events = EventAccumulator(str(Path(solver.xp.folder) / 'tensorboard')).Reload()
    tags = set(events.Tags()['scalars'])
    assert {'evaluate/fad_clap', 'evaluate/clap_score', 'evaluate/fad_clap_ambient',
            'evaluate/concept_accuracy', 'train/ce'} <= tags, tags
    assert events.Scalars('evaluate/fad_clap')[-1].value == pytest.approx(metrics['fad_clap'], rel=1e-5)
    best = torch.load(solver.embeds_folder() / 'best.pt', weights_only=True)
    assert best['metrics']['evaluate/fad_clap'] == pytest.approx(metrics['fad_clap'])
    # Without CLAP weights the run stops at start-up, naming the files and the way to train without.
    from od.core.environment import MissingWeightsError
    with pytest.raises(MissingWeightsError, match=r"(?s)missing-clap.*'textual_inversion.metrics=\[\]' trains without"):
        build_solver(ti_args(tiny_t5, base / 'egs' / 'two', tmp_path / 'embeds', 'textual_inversion.metrics=[fad_clap]',
                             f'textual_inversion.clap_model={tmp_path / "missing-clap"}'))


@pytest.mark.slow
def test_checkpoint_keeps_only_the_rows_and_names_its_base(tiny_t5, concepts_data, pretrained, tmp_path):
    """checkpoint.th of a textual-inversion XP holds the trained rows, not a second copy of the
    frozen LM; resume, `od.inference.load` and `continue_from` fill the rest from the base, and a base
    that changed or vanished is refused with what to do."""
    import shutil

    from od.inference import load
    from od.solvers.frozen_base import FROZEN_BASE
    base_file = tmp_path / 'base' / 'checkpoint.th'
    base_file.parent.mkdir()
    shutil.copy(pretrained, base_file)
    args = ti_args(tiny_t5, concepts_data[0] / 'egs' / 'two', tmp_path / 'embeds', f'continue_from={base_file}', 'optim.epochs=2', 'optim.updates_per_epoch=2')
    solver = build_solver(args)
    assert solver.state_dict()['model']  # as AudioCraft's run() does before restoring: still whole
    solver.restore()
    solver.run_epoch()
    solver.commit()
    rows = 'condition_provider.conditioners.description.concept_embeds'
    saved = torch.load(solver.checkpoint_path(), weights_only=True)
    assert set(saved['model']) == set(saved['best_state']['model']) == {rows}
    assert saved[FROZEN_BASE]['source'] == str(base_file.resolve())
    size, base_size = solver.checkpoint_path().stat().st_size, base_file.stat().st_size
    print(f'checkpoint.th {size} bytes vs {base_size} for the frozen base')
    assert size * 20 < base_size
    trained = {k: v.clone() for k, v in solver.model.state_dict().items()}
    assert set(solver.best_state.state_dict()['model']) == set(trained)  # the in-memory copy stays whole
    # The loader gives the LM the solver had: frozen tensors from the base, rows from the XP.
    lm = load(str(solver.checkpoint_path()), device='cpu').lm
    assert all(torch.equal(v, trained[k]) for k, v in lm.state_dict().items())
    # Resume: a new process of the same XP continues from epoch 1 with the same weights.
    again = build_solver(args)
    assert again.restore() and again.epoch == 2
    assert all(torch.equal(v, trained[k]) for k, v in again.model.state_dict().items())
    # A base that changed since is refused; one that is gone is named.
    state = torch.load(base_file, weights_only=True)
    next(v for k, v in state['best_state']['model'].items() if k != rows).add_(1e-3)
    torch.save(state, base_file)
    with pytest.raises(ValueError, match='has changed since these rows were trained'):
        load(str(solver.checkpoint_path()), device='cpu')
    base_file.unlink()
    with pytest.raises(FileNotFoundError, match=f'the frozen LM comes from {base_file}'):
        load(str(solver.checkpoint_path()), device='cpu')


@pytest.mark.slow
def test_app_learns_concepts_and_generates(tiny_t5, concepts_data, pretrained, tmp_path):
    """`python -m od.app` on 127.0.0.1, driven through its API with gradio_client: one epoch of
    textual inversion on the pretrained LM, after which generations prompted with each concept
    are recognised as that concept far above chance (0.5); then generate with the saved rows."""
    import socket
    import subprocess
    import sys
    import time

    from gradio_client import Client

    from .helpers import ROOT, dora_env, kill_group, read_audio_content
    base, _ = concepts_data
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    log = open(tmp_path / 'app.log', 'w')
    proc = subprocess.Popen(
        [sys.executable, '-m', 'od.app', '--dataset', str(base / 'egs' / 'two'), '--embeds', str(tmp_path / 'embeds'),
         '--port', str(port), 'solver=musicgen/textual_inversion_debug', f'conditioners.description.t5_ti.name={tiny_t5}',
         'dataset.num_workers=0', 'dataset.segment_duration=1', 'generate.lm.gen_duration=1',
         'textual_inversion.eval_samples=32', f'continue_from={pretrained}', 'generate.every=0',
         'generate.audio.strategy=peak'],
        cwd=ROOT, env=dora_env(tmp_path / 'dora'), stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.time() + 240
        while True:
            assert proc.poll() is None and time.time() < deadline, (tmp_path / 'app.log').read_text()[-3000:]
            try:
                client = Client(f'http://127.0.0.1:{port}/', verbose=False)
                break
            except Exception:
                time.sleep(1)
        started = client.predict(['chiptune', 'ambient'], 2, 0.05, 1, TI_UPDATES, 8, api_name='/start')
        assert 'Training chiptune, ambient in XP' in started
        while True:
            line, loss, metrics = client.predict(api_name='/status')
            if not line.startswith('Training'):
                break
            assert time.time() < deadline, "training did not finish in time"
            time.sleep(2)
        assert line == 'Finished: 1 epoch(s).', line
        assert 'train/ce' in str(loss) and 'evaluate/concept_accuracy' in str(metrics)
        history = json.loads(next((tmp_path / 'dora' / 'xps').glob('*/history.json')).read_text())
        accuracy = history[-1]['evaluate']
        print('concept accuracy after textual inversion:', accuracy)
        # 32 generations per concept, chance 0.5. The initial rows send most generations to one
        # concept (benchmark: 0.89 / 0.19); the learned rows reach what the plain words get (1.0).
        assert min(accuracy['acc_chiptune'], accuracy['acc_ambient']) >= 0.8, accuracy
        files = client.predict(api_name='/refresh')  # the Dropdown update: new choices, first selected
        files = files.get('value', files.get('choices')) if isinstance(files, dict) else files
        files = files if isinstance(files, list) else [files]
        print('refresh ->', files)
        assert files and files[0].endswith('.pt')
        audio, message = client.predict(files, 'music in the style of <chiptune>', 1.0, api_name='/generate')
        assert message == 'Generated.'
        chiptune, rate = read_audio_content(audio, seconds=1.0)
        assert client.predict(api_name='/stop') == 'Nothing was training.'
        # The same rows through od.generate's `--concepts`, on the XP's model (its main, in this
        # process: the CLI's start-up is tested elsewhere, and an interpreter costs ~20 s here).
        from od.generate import main as generate
        checkpoint = next((tmp_path / 'dora' / 'xps').glob('*/checkpoint.th'))
        assert generate(['music in the style of <ambient>', '--model', str(checkpoint),
                         '--concepts', str(tmp_path / 'embeds' / files[0]),
                         '--duration', '1', '--output', str(tmp_path / 'ambient.wav')]) == 0
        ambient, ambient_rate = read_audio_content(tmp_path / 'ambient.wav', seconds=1.0)
        # Different concept rows steer the same frozen LM to different music.
        n = min(chiptune.shape[-1], ambient.shape[-1])
        assert ambient_rate == rate and not torch.allclose(chiptune[..., :n].mean(0), ambient[..., :n].mean(0), atol=1e-3)
    finally:
        kill_group(proc)
        log.close()
