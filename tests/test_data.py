"""The example dataset and manifests: real audio, honest sidecars, bad files reported."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from od.data import example
from od.data.manifest import build_manifest
from od.example import main as example_main
from od.manifest import main as manifest_main


def spectral_centroid(wav: np.ndarray, sr: int) -> float:
    spec = np.abs(np.fft.rfft(wav))
    freqs = np.fft.rfftfreq(len(wav), 1 / sr)
    return float((spec * freqs).sum() / spec.sum())


def test_example_dataset_layout(example_data):
    for split, per_genre in (('train', 2), ('valid', 1)):
        wavs = sorted((example_data / 'dataset' / split).glob('*.wav'))
        assert len(wavs) == per_genre * len(example.GENRES)
        lines = (example_data / 'egs' / split / 'data.jsonl').read_text().splitlines()
        assert sorted(json.loads(line)['path'] for line in lines) == [str(w.resolve()) for w in wavs]
        for wav_path in wavs:
            info = sf.info(wav_path)
            assert (info.samplerate, info.channels) == (32000, 1) and abs(info.duration - 5.0) < 1e-3
            meta = json.loads(wav_path.with_suffix('.json').read_text())
            assert meta['genre'] in example.GENRES and meta['genre'] in wav_path.name
            assert meta['genre'] in meta['description'] and isinstance(meta['bpm'], int)


def test_genres_sound_different():
    """The condition is audible: genres differ in brightness far more than clips within a genre."""
    centroids = {g: [spectral_centroid(example.synthesise(g, 4.0, seed)[0], 32000) for seed in range(3)]
                 for g in ('chiptune', 'ambient')}
    assert min(centroids['chiptune']) > 1.5 * max(centroids['ambient'])


def test_synthesis_is_deterministic_and_bounded():
    a, meta_a = example.synthesise('drums', 3.0, 7)
    b, meta_b = example.synthesise('drums', 3.0, 7)
    c, _ = example.synthesise('drums', 3.0, 8)
    assert np.array_equal(a, b) and meta_a == meta_b and not np.array_equal(a, c)
    assert np.abs(a).max() <= 0.9 + 1e-6 and np.abs(a).max() > 0.5


def test_rerun_keeps_existing_files(tmp_path):
    kwargs = dict(per_genre=(1, 1), duration=2.0, progress=False)
    example.write_example_dataset(tmp_path / 'd', tmp_path / 'e', **kwargs)
    first = tmp_path / 'd' / 'train' / 'drums_train_000.wav'
    stamp = first.stat().st_mtime_ns
    example.write_example_dataset(tmp_path / 'd', tmp_path / 'e', **kwargs)
    assert first.stat().st_mtime_ns == stamp
    assert not list((tmp_path / 'd').rglob('*.tmp*'))


def test_bad_files_are_reported_and_skipped(tmp_path, capsys):
    folder = tmp_path / 'audio'
    folder.mkdir()
    good = np.sin(np.linspace(0, 400, 16000)).astype(np.float32)
    for name in ('good', 'no_sidecar', 'bad_sidecar'):
        sf.write(folder / f'{name}.wav', good, 16000)
    (folder / 'corrupt.wav').write_bytes(b'RIFF\x00\x00garbage' * 50)
    (folder / 'empty.mp3').write_bytes(b'')
    sf.write(folder / 'tiny.wav', good[:100], 16000)
    for name in ('good', 'corrupt', 'empty', 'tiny'):
        (folder / f'{name}.json').write_text('{}')
    (folder / 'bad_sidecar.json').write_text('{not json')
    report = build_manifest(folder, tmp_path / 'egs', require=('.json',), progress=False)
    assert report.kept == 1
    assert set(report.skipped) == {str(folder / n) for n in
                                   ('corrupt.wav', 'empty.mp3', 'no_sidecar.wav', 'bad_sidecar.wav', 'tiny.wav')}
    assert 'cannot decode' in report.skipped[str(folder / 'corrupt.wav')]
    assert 'missing companion no_sidecar.json' in report.skipped[str(folder / 'no_sidecar.wav')]
    assert 'too short' in report.skipped[str(folder / 'tiny.wav')]
    lines = (tmp_path / 'egs' / 'data.jsonl').read_text().splitlines()
    assert [json.loads(line)['path'] for line in lines] == [str(folder / 'good.wav')]
    # The CLI prints the same report, and says what is wrong when nothing is usable.
    assert manifest_main([str(folder), str(tmp_path / 'egs2'), '--require', '.json']) == 0
    assert '1 files kept, 5 skipped' in capsys.readouterr().out
    assert manifest_main([str(tmp_path / 'missing'), str(tmp_path / 'egs3')]) == 2
    assert 'Audio folder not found' in capsys.readouterr().err


def test_cli_help_has_an_example(capsys):
    for cli in (example_main, manifest_main):
        with pytest.raises(SystemExit):
            cli(['--help'])
        assert 'example:' in capsys.readouterr().out


def test_sidecars_and_audio_that_would_crash_training_are_refused(tmp_path):
    """Sidecars AudioCraft's dataset cannot read, NaN/Inf or silent audio are left out with the
    reason; a truncated file is kept with the length that really decodes; float and 6-channel
    wavs are fine; 8-bit wav (AudioCraft cannot read it) is refused with the fix."""
    folder = tmp_path / 'audio'
    folder.mkdir()
    t = np.arange(3 * 16000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t)).astype(np.float32)
    sidecars = {'array': '[1, 2]', 'string': '"a title"', 'null': 'null', 'typed': '{"bpm": "fast"}',
                'nanbpm': '{"bpm": NaN}', 'moods': '{"moods": [1, 2]}', 'good': '{"bpm": 120, "moods": ["calm"]}'}
    for name, text in sidecars.items():
        sf.write(folder / f'{name}.wav', tone, 16000)
        (folder / f'{name}.json').write_text(text)
    sf.write(folder / 'dir.wav', tone, 16000)
    (folder / 'dir.json').mkdir()
    nan = tone.copy()
    nan[100] = np.nan
    for name, wav, subtype in [('nan', nan, 'FLOAT'), ('silent', np.zeros_like(tone), 'PCM_16'),
                               ('u8', tone, 'PCM_U8'), ('float', tone, 'FLOAT')]:
        sf.write(folder / f'{name}.wav', wav, 16000, subtype=subtype)
    sf.write(folder / 'six.wav', np.repeat(tone[:, None], 6, 1), 16000)
    sf.write(folder / 'cut.flac', np.concatenate([tone, tone]), 16000)
    data = (folder / 'cut.flac').read_bytes()
    (folder / 'cut.flac').write_bytes(data[:len(data) // 2])  # a download that stopped half-way
    for name in ('nan', 'silent', 'u8', 'float', 'six', 'cut'):
        (folder / f'{name}.json').write_text('{}')
    report = build_manifest(folder, tmp_path / 'egs', require=('.json',), progress=False)
    skipped = {Path(k).stem: v for k, v in report.skipped.items()}
    assert 'must be a JSON object' in skipped['array'] and 'not str' in skipped['string']
    assert 'not null' in skipped['null'] and "'bpm' must be int or float" in skipped['typed']
    assert 'finite' in skipped['nanbpm'] and 'list of strings' in skipped['moods']
    assert 'missing companion dir.json' in skipped['dir']
    assert 'NaN/Inf' in skipped['nan'] and 'silent' in skipped['silent']
    kept = {Path(json.loads(line)['path']).stem: json.loads(line)
            for line in (tmp_path / 'egs' / 'data.jsonl').read_text().splitlines()}
    assert sorted(kept) == ['cut', 'float', 'good', 'six']
    assert 'convert it to 16-bit' in skipped['u8']  # AudioCraft's reader refuses 8-bit wav: said how to fix
    assert 'truncated' in report.notes[str(folder / 'cut.flac')]
    assert kept['cut']['duration'] < 5.5 and kept['six']['duration'] == pytest.approx(3.0)
