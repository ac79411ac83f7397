"""MusicCaps-style import on a small CSV and audio written here: cuts, sidecars, splits, problems."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import soundfile as sf

from od import musiccaps as musiccaps_command
from od.data import musiccaps

SR = 16000
COLUMNS = ['ytid', 'start_s', 'end_s', 'audioset_positive_labels', 'aspect_list', 'caption', 'author_id',
           'is_balanced_subset', 'is_audioset_eval']


def tone(freq: float, seconds: float) -> np.ndarray:
    return 0.3 * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)


def dominant_hz(wav: np.ndarray) -> float:
    return float(np.fft.rfftfreq(len(wav), 1 / SR)[np.abs(np.fft.rfft(wav)).argmax()])


def record(ytid, start, end, aspects, caption, valid):
    return {'ytid': ytid, 'start_s': start, 'end_s': end, 'audioset_positive_labels': '/m/04rlf',
            'aspect_list': repr(aspects), 'caption': caption, 'author_id': '4', 'is_balanced_subset': 'False',
            'is_audioset_eval': str(valid)}


@pytest.fixture(scope='module')
def imported(tmp_path_factory):
    base = tmp_path_factory.mktemp('musiccaps')
    audio = base / 'downloads'
    audio.mkdir()
    # A full 30 s video soundtrack: 220 Hz, then 880 Hz over [10, 20), then 220 Hz. Cut -> 880 Hz.
    sf.write(audio / 'longvid.wav', np.concatenate([tone(220, 10), tone(880, 10), tone(220, 10)]), SR)
    sf.write(audio / 'clipped_5.wav', tone(440, 10), SR)        # already the clip, <ytid>_<start>.wav
    sf.write(audio / 'evalclip.wav', tone(660, 10), SR)
    sf.write(audio / 'trainb.flac', tone(330, 10), SR)          # found by an extra pattern
    (audio / 'corrupt.wav').write_bytes(b'RIFF....WAVEfmt garbage')
    sf.write(audio / 'tooshort.wav', tone(220, 12), SR)          # record asks for [30, 40]
    rows = [record('longvid', 10, 20, ['pop', 'tinny wide hi hats', "80's synth, bright"], 'A bright "pop" song.', False),
            record('clipped', 5, 15, ['mellow piano'], 'Soft piano.', False),
            record('evalclip', 0, 10, ['rock'], 'Loud rock, distorted guitars.', True),
            record('trainb', 0, 10, ['folk'], 'Acoustic folk.', False),
            record('missing', 0, 10, ['jazz'], 'Never downloaded.', False),
            record('corrupt', 0, 10, ['metal'], 'Broken download.', False),
            record('tooshort', 30, 40, ['ambient'], 'Wrong file.', False),
            record('badtimes', 10, 5, ['x'], 'End before start.', True),
            record('../escape', 0, 10, ['x'], 'A ytid that is a path.', False),
            record('hugeend', 0, '1e999', ['x'], 'An infinite end.', False)]
    sf.write(base / 'escape.wav', tone(220, 10), SR)  # what '../escape' would reach
    csv_path = base / 'musiccaps-public.csv'
    with csv_path.open('w', newline='') as f:
        writer = csv.DictWriter(f, COLUMNS)
        writer.writeheader()
        writer.writerows(rows)
    dirs = dict(out_dir=base / 'dataset', egs_dir=base / 'egs', config_dir=base / 'config')
    args = [str(csv_path), '--audio-dir', str(audio), '--name', 'mc', '--valid-column', 'is_audioset_eval',
            '--pattern', '{ytid}.wav', '--pattern', '{ytid}_{start}.wav', '--pattern', '{ytid}.flac']
    report = musiccaps.import_musiccaps(csv_path, audio, 'mc', **dirs, valid_column='is_audioset_eval',
                                        patterns=('{ytid}.wav', '{ytid}_{start}.wav', '{ytid}.flac'),
                                        progress=False)
    return base, report, args, dirs


def test_clips_cut_and_sidecars(imported):
    base, report, _, _ = imported
    clip, sr = sf.read(base / 'dataset' / 'train' / 'longvid.wav')
    assert sr == SR and len(clip) == 10 * SR and abs(dominant_hz(clip) - 880) < 2
    meta = json.loads((base / 'dataset' / 'train' / 'longvid.json').read_text())
    assert meta['description'] == 'A bright "pop" song.'
    assert meta['keywords'] == ['pop', 'tinny wide hi hats', "80's synth, bright"]
    assert meta['duration'] == pytest.approx(10.0) and meta['sample_rate'] == SR
    assert meta['musiccaps']['author_id'] == '4' and meta['musiccaps']['audioset_positive_labels'] == '/m/04rlf'
    same, _ = sf.read(base / 'dataset' / 'train' / 'clipped.wav')
    assert abs(dominant_hz(same) - 440) < 2 and len(same) == 10 * SR
    assert (base / 'dataset' / 'train' / 'trainb.flac').exists()   # kept its format
    # AudioCraft's own dataset reads clip + sidecar, even with every info field required.
    from audiocraft.data.music_dataset import MusicDataset
    dataset = MusicDataset.from_meta(base / 'egs' / 'valid', segment_duration=None, sample_rate=SR, channels=1,
                                     info_fields_required=True)
    wav, info = dataset[0]
    assert wav.shape == (1, 10 * SR) and info.description == 'Loud rock, distorted guitars.'
    assert info.keywords == ['rock'] and info.name == 'evalclip'


def test_manifests_split_and_yaml(imported):
    base, report, _, _ = imported
    assert report.imported == {'train': 3, 'valid': 1}
    paths = {split: [json.loads(line)['path'] for line in (base / 'egs' / split / 'data.jsonl').read_text().splitlines()]
             for split in ('train', 'valid')}
    assert sorted(p.rsplit('/', 1)[1] for p in paths['train']) == ['clipped.wav', 'longvid.wav', 'trainb.flac']
    assert [p.rsplit('/', 1)[1] for p in paths['valid']] == ['evalclip.wav']
    assert report.dset_yaml.read_text() == musiccaps.DSET_YAML.format(name='mc')


def test_problems_listed_not_fatal(imported):
    base, report, _, _ = imported
    lines = (base / 'dataset' / 'import_problems.tsv').read_text().splitlines()
    assert len(lines) == len(report.problems) == 6
    text = '\n'.join(lines)
    assert "../escape (line 10)\tbad ytid '../escape'" in text
    assert 'hugeend (line 11)\tbad times: start_s=0, end_s=1e999' in text
    assert not (base / 'dataset' / 'escape.wav').exists() and not list(base.glob('dataset/*/escape*'))
    assert 'missing (line 6)\tmissing audio' in text
    assert 'corrupt (line 7)\tcannot read corrupt.wav' in text
    assert 'tooshort (line 8)\ttooshort.wav is 12.00 s' in text
    assert 'badtimes (line 9)\tbad times' in text


def test_cli_rerun_is_idempotent(imported, capsys):
    base, report, args, dirs = imported
    before = sorted(p.name for p in (base / 'dataset').rglob('*'))
    argv = args + ['--out-dir', str(dirs['out_dir']), '--egs-dir', str(dirs['egs_dir']),
                   '--config-dir', str(dirs['config_dir'])]
    assert musiccaps_command.main(argv) == 0
    assert 'imported 4 clips (train: 3, valid: 1); 6 records with problems' in capsys.readouterr().out
    assert sorted(p.name for p in (base / 'dataset').rglob('*')) == before


def test_hash_split_is_stable_and_proportional():
    ids = [f"yt{i:05d}" for i in range(3000)]
    splits = [musiccaps.split_of(i, 10.) for i in ids]
    assert 0.08 < splits.count('valid') / len(ids) < 0.12
    assert [musiccaps.split_of(i, 10.) for i in reversed(ids)] == splits[::-1]


def test_parse_aspects_and_bad_csv(tmp_path):
    assert musiccaps.parse_aspects("['a', \"b's\"]") == ['a', "b's"]
    assert musiccaps.parse_aspects('["x", "y"]') == ['x', 'y']
    assert musiccaps.parse_aspects('x, y') == ['x', 'y'] and musiccaps.parse_aspects('') == []
    bad = tmp_path / 'bad.csv'
    bad.write_text('ytid,caption\nabc,hello\n')
    (tmp_path / 'audio').mkdir()
    with pytest.raises(ValueError, match='missing column'):
        musiccaps.import_musiccaps(bad, tmp_path / 'audio', out_dir=tmp_path / 'd', egs_dir=tmp_path / 'e',
                                   config_dir=tmp_path / 'c', progress=False)
    binary = tmp_path / 'export.csv'
    binary.write_bytes(b'ytid,start_s,end_s,aspect_list,caption\nab\xff\xfe,0,3,x,y\n')
    with pytest.raises(ValueError, match=r'export\.csv is not a UTF-8 CSV file'):
        musiccaps.import_musiccaps(binary, tmp_path / 'audio', out_dir=tmp_path / 'd', egs_dir=tmp_path / 'e',
                                   config_dir=tmp_path / 'c', progress=False)
