"""Real-world media: containers and codecs, rotation, variable frame rate, odd sizes, no audio
track, corrupt files; frames picked by presentation time everywhere; ingest of every kind."""
from __future__ import annotations

import collections
import json
import logging

import numpy as np
import pytest
import torch

from od.data import frames as frames_module
from od.data import media
from tests import media as M

# VFR: frames shown at these instants; each frame's grey level is 25 * (time it is shown at).
VFR_TIMES = [0., 0.5, 1., 1.5, 2., 3., 3.2, 3.4, 5., 6., 6.5, 7., 8.]


@pytest.fixture(scope='module')
def vfr_video(tmp_path_factory):
    base = tmp_path_factory.mktemp('vfr')
    frames = M.level_frames([25 * t for t in VFR_TIMES], (64, 48))
    return M.write(base / 'vfr.mp4', frames, times=VFR_TIMES, audio=M.tone(8.5, 48000, 1), sr=48000)


def shown_level(t: float) -> float:
    """The grey level of the frame shown at `t` in the VFR video."""
    return 25 * max(s for s in VFR_TIMES if s <= t + 1e-9)


def grey(frames: np.ndarray) -> np.ndarray:
    """Mean level of each frame outside the top-left marker quarter."""
    h, w = frames.shape[1:3]
    return frames[:, h // 2:, :, :].reshape(len(frames), -1).mean(1)


def test_variable_frame_rate_frames_are_picked_by_timestamp(vfr_video):
    """decord's floor(t * average_fps) returned the frames of 1.57/2.60/3.67 s for 3/5/7 s."""
    window = frames_module.read_frames(vfr_video, 0., 9., fps=None, n_frames=9)  # 0.5, 1.5, ... 8.5 s
    assert np.allclose(grey(window.frames), [shown_level(t) for t in window.times], atol=6)
    picked, shown, _ = media.frames_at(vfr_video, [3., 5., 7.])
    assert np.allclose(shown, [3., 5., 7.]) and np.allclose(grey(picked), [75, 125, 175], atol=6)
    assert abs(frames_module.video_duration(vfr_video) - 8.5) < 0.6  # last frame (8 s) + its duration


def test_vfr_conditioner_tokens_match_the_frames_shown(vfr_video, tmp_path):
    """Training, the cache and od.clip read frames through the same conditioner: its tokens for
    a window are CLIP of the frames shown then, cached or not."""
    from od.conditioners import registry
    from od.inference.tiny import write_tiny_clip
    write_tiny_clip(tmp_path / 'clip')
    window = (4.5, 2.0)  # 4 frames at 4.75, 5.25, 5.75, 6.25 s
    expected = [shown_level(t) for t in frames_module.frame_times(*window, n_frames=4)]
    for use_cache in (True, False):
        cond = registry.build_conditioner('clip_frames', 16, {
            'name': str(tmp_path / 'clip'), 'n_frames': 4, 'cache_dir': str(tmp_path / 'cache'),
            'use_cache': use_cache}, device='cpu', duration=2.0)
        from audiocraft.modules.conditioners import WavCondition
        x = WavCondition(torch.zeros(1, 1, 1), torch.tensor([2 * 32000]), [32000], [str(vfr_video)], [window[0]])
        tokens = cond.tokenize(x)['embeds'][0]
        direct = cond.encoder.encode(M.level_frames(expected, (64, 48)))
        assert torch.allclose(tokens, direct, atol=0.05), use_cache


@pytest.mark.parametrize('name', ['a.mp4', 'a.mkv', 'a.webm', 'a.av1.webm', 'a.mov', 'a.avi'])
def test_containers_decode_with_the_frame_reader(tmp_path, name):
    levels = np.linspace(10, 240, 20)
    video = M.write(tmp_path / name, M.level_frames(levels, (48, 36)), fps=10,  # decord mis-sized < 64 px
                    audio=M.tone(2., 48000, 2), sr=48000)
    window = frames_module.read_frames(video, 0., 2., n_frames=4)
    assert window.frames.shape == (4, 36, 48, 3)
    # (ffmpeg's avi muxer re-times the second frame to 0.2 s: avi may be one frame late)
    assert np.allclose(grey(window.frames), levels[[2, 7, 12, 17]], atol=12 if name != 'a.avi' else 25)
    assert abs(frames_module.video_duration(video) - 2.0) < 0.15


def test_rotation_is_applied_like_players_do(tmp_path):
    """A phone's portrait clip: stored 64x36 landscape with a 90-degree display matrix."""
    video = M.write(tmp_path / 'rot.mp4', M.level_frames([100] * 5, (64, 36)), fps=5, rotation=90)
    info = media.probe(video)
    assert info.rotation == 90 and (info.width, info.height) == (36, 64)
    frame = media.frames_at(video, [0.5])[0][0]
    assert frame.shape == (64, 36, 3)
    # the marker (top-left when stored) is bottom-left once turned counter-clockwise, as ffmpeg shows it
    assert frame[-4:, :4].mean() > 240 and frame[:4, :4].mean() < 140


def test_no_false_short_video_warning_for_a_video_as_long_as_its_audio(tmp_path, caplog):
    """The cache grid kept floor(duration * rate) slots, so a window ending at the video's end
    read past the grid: "video is 6.93 s long, window ends at 7.00 s"."""
    from od.conditioners import registry
    from od.inference.tiny import write_tiny_clip
    write_tiny_clip(tmp_path / 'clip')
    M.write(tmp_path / 'seven.mp4', M.level_frames(np.linspace(0, 250, 105), (32, 32)), fps=15)  # 7.0 s
    (tmp_path / 'seven.wav').write_bytes(b'')
    cond = registry.build_conditioner('clip_frames', 16, {'name': str(tmp_path / 'clip'), 'n_frames': 30,
                                                          'cache_dir': str(tmp_path / 'c')}, device='cpu', duration=4.0)
    from audiocraft.modules.conditioners import WavCondition
    caplog.set_level(logging.WARNING)
    for start in (3.0, 0.0):
        x = WavCondition(torch.zeros(1, 1, 1), torch.tensor([4 * 32000]), [32000], [str(tmp_path / 'seven.wav')], [start])
        assert cond.tokenize(x)['mask'].sum() == 30
    assert 'long' not in caplog.text and not cond.short_videos
    x = WavCondition(torch.zeros(1, 1, 1), torch.tensor([4 * 32000]), [32000], [str(tmp_path / 'seven.wav')], [4.0])
    cond.tokenize(x)  # this window does end past the video (8 s > 7 s): warned once
    assert 'video is 7.00 s long, window ends at 8.00 s' in caplog.text


def test_walkers_take_opus_and_report_what_they_leave(tmp_path):
    from od.analysis.embeddings import walk_dataset
    from od.data.manifest import build_manifest
    from od.solvers.concept_data import find_concepts
    folder = tmp_path / 'songs' / 'choir'
    folder.mkdir(parents=True)
    M.write_audio(folder / 'a.opus', M.tone(1.5, 48000, 1), 48000)
    M.write_audio(folder / 'b.wav', M.tone(1.5, 48000, 1), 48000)
    (folder / 'c.aiff').write_bytes(b'FORM')
    (folder / 'b.json').write_text('{}')  # a companion: used, not ignored
    report = build_manifest(folder, tmp_path / 'egs', progress=False)
    assert report.kept == 2 and report.ignored == {'.aiff': 1} and '.aiff 1' in report.summary()
    ignored = collections.Counter()
    assert [p.name for p in find_concepts(tmp_path / 'songs', ignored)['choir']] == ['a.opus', 'b.wav']
    assert ignored == {'.aiff': 1, '.json': 1}
    assert {p.name for p, _ in walk_dataset(tmp_path / 'songs')} == {'a.opus', 'b.wav'}


def test_links_loops_and_folders_named_like_audio_are_named_not_lost(tmp_path):
    import os

    from od.data.manifest import build_manifest
    folder = tmp_path / 'songs'
    folder.mkdir()
    M.write_audio(folder / 'good.wav', M.tone(1.5, 32000, 1), 32000)
    os.symlink('nowhere.wav', folder / 'broken.wav')
    os.symlink('loop.wav', folder / 'loop.wav')
    (folder / 'album.flac').mkdir()
    expected = {'broken.wav': 'a broken symbolic link', 'loop.wav': 'a symbolic link loop',
                'album.flac': 'a folder, not a file'}
    report = build_manifest(folder, tmp_path / 'egs', progress=False)
    assert report.kept == 1
    assert {os.path.basename(k): v.split(' (')[0] for k, v in report.skipped.items()} == expected
    from od.data.ingest import find_items
    items, skipped, _, _ = find_items(folder)
    assert len(items) == 1 and {os.path.basename(k): v.split(' (')[0] for k, v in skipped.items()} == expected


def test_truncated_flac_the_dataset_cannot_seek_in_is_refused_and_ingest_converts_it(tmp_path):
    """AudioCraft's dataset seeks with libsndfile, which fails past the break of a truncated flac."""
    from audiocraft.data.audio import audio_read

    from od.data.ingest import ingest
    from od.data.manifest import probe_audio
    raw = tmp_path / 'raw'
    raw.mkdir()
    M.write_audio(raw / 'cut.flac', M.tone(4, 32000, 1), 32000)
    data = (raw / 'cut.flac').read_bytes()
    (raw / 'cut.flac').write_bytes(data[:int(len(data) * 0.4)])
    with pytest.raises(ValueError, match='cannot seek in it'):
        probe_audio(raw / 'cut.flac')
    sf = np.zeros((32000 * 2, 1), np.float32)
    sf[::97] = np.nan  # NaN audio: a 16-bit copy would hide it, so ingest refuses it
    import soundfile
    soundfile.write(raw / 'nan.wav', sf + 0.1, 32000, subtype='FLOAT')
    report = ingest(raw, 'cut', 0.0, dataset_dir=tmp_path / 'd', egs_dir=tmp_path / 'e', config_dir=tmp_path / 'c',
                    progress=False, analyse=False)
    assert 'NaN/Inf' in report.skipped[str(raw / 'nan.wav')]
    entry = json.loads((tmp_path / 'e' / 'cut' / 'train' / 'data.jsonl').read_text())
    assert entry['path'].endswith('cut.wav')  # converted: every second the manifest lists reads
    audio_read(entry['path'], seek_time=entry['duration'] - 1., duration=1.)


def test_manifest_takes_any_companion_the_reader_decodes(tmp_path):
    from od.data.manifest import build_manifest
    for stem, ext in (('one', '.webm'), ('two', '.mkv'), ('three', '.mov')):
        M.write(tmp_path / f'{stem}{ext}', M.level_frames([50] * 10, (32, 32)), fps=10)
        M.write_audio(tmp_path / f'{stem}.wav', M.tone(1., 48000, 1), 48000)
        (tmp_path / f'{stem}.json').write_text('{}')
    M.write_audio(tmp_path / 'four.wav', M.tone(1., 48000, 1), 48000)
    (tmp_path / 'four.json').write_text('{}')
    report = build_manifest(tmp_path, tmp_path / 'egs', require=('.json', 'video'), progress=False)
    assert report.kept == 3 and 'missing companion four.<mp4|' in report.skipped[str(tmp_path / 'four.wav')]


@pytest.fixture(scope='module')
def raw_folder(tmp_path_factory):
    """Every kind of user media ingest takes, and some it must refuse."""
    d = tmp_path_factory.mktemp('raw')
    (d / 'live').mkdir()
    fr = M.level_frames(np.linspace(0, 250, 30), (64, 48))
    M.write(d / 'song_mp4.mp4', fr, fps=10, audio=M.tone(3, 44100, 2, seed=1), sr=44100,
            tags={'title': 'My Song', 'artist': 'The Band', 'comment': 'a tagged caption'})
    M.write(d / 'song_webm.webm', fr, fps=10, audio=M.tone(3, 48000, 1, seed=2), sr=48000)
    M.write(d / 'song_av1.av1.webm', fr, fps=10, audio=M.tone(3, 48000, 2, seed=3), sr=48000)
    M.write(d / 'live' / 'phone clip.mov', M.level_frames(np.linspace(0, 250, 30), (64, 36)), fps=10,
            audio=M.tone(3, 48000, 6, seed=4), sr=48000, rotation=90)
    M.write(d / 'song_avi.avi', fr, fps=10, audio=M.tone(3, 44100, 2, seed=5), sr=44100)
    M.write(d / 'song_mkv.mkv', fr, fps=10, audio=M.tone(3, 44100, 2, seed=6), sr=44100)
    M.write(d / 'vfr.mp4', M.level_frames([25 * t for t in VFR_TIMES], (64, 48)), times=VFR_TIMES,
            audio=M.tone(8.5, 48000, 2, seed=7), sr=48000)
    M.write(d / 'silent.mp4', fr, fps=10)                      # no audio track: refused
    M.write(d / 'dubbed.mp4', fr, fps=10)                      # no audio track, but --audio-from has it
    M.write(d / 'pair.mp4', fr, fps=10)
    M.write_audio(d / 'pair.opus', M.tone(3, 48000, 2, seed=8), 48000)
    from PIL import Image
    Image.fromarray(np.full((40, 30, 3), 128, np.uint8)).save(d / 'still.png')
    M.write_audio(d / 'still.mp3', M.tone(3, 44100, 1, seed=9), 44100)
    (d / 'still.txt').write_text('a calm still picture\n\nsecond paragraph')
    (d / 'broken.mp4').write_bytes(b'\x00\x00\x00\x18ftypmp42' + b'x' * 500)
    M.write_audio(d / 'lonely.flac', M.tone(3, 44100, 1, seed=10), 44100)  # audio alone in a video folder
    (d / 'notes.pdf').write_bytes(b'%PDF')
    dub = tmp_path_factory.mktemp('dub')
    M.write_audio(dub / 'dubbed.wav', M.tone(3, 32000, 1, seed=11), 32000)
    return d, dub


def test_ingest_every_kind_of_media(raw_folder, tmp_path):
    from od.data.ingest import ingest
    raw, dub = raw_folder
    kwargs = dict(dataset_dir=tmp_path / 'dataset', egs_dir=tmp_path / 'egs', config_dir=tmp_path / 'config',
                  progress=False)
    report = ingest(raw, 'mix', valid_fraction=0.3, audio_from=dub, **kwargs)
    kept = {s: r.kept for s, r in report.manifests.items()}
    assert report.kind == 'video' and sum(kept.values()) == 10 and kept['valid'] >= 1, report.summary()
    assert set(report.skipped) == {str(raw / n) for n in ('silent.mp4', 'broken.mp4', 'lonely.flac')}
    assert 'no audio track' in report.skipped[str(raw / 'silent.mp4')]
    assert 'unreadable video' in report.skipped[str(raw / 'broken.mp4')]
    assert report.ignored == {'.pdf': 1}
    root = tmp_path / 'dataset' / 'mix'
    sidecars = {p.stem: json.loads(p.read_text()) for p in root.glob('*/*.json')}
    assert sidecars['song_mp4']['title'] == 'My Song' and sidecars['song_mp4']['artist'] == 'The Band'
    assert sidecars['song_mp4']['description'] == 'a tagged caption' and sidecars['song_mp4']['sample_rate'] == 44100
    assert sidecars['still']['description'] == 'a calm still picture' and sidecars['still']['video']['image']
    phone = sidecars['live__phone_clip']
    assert phone['title'] == 'phone clip' and phone['channels'] == 6
    assert phone['video']['rotation'] == 90 and (phone['video']['width'], phone['video']['height']) == (36, 64)
    assert sidecars['dubbed']['sample_rate'] == 32000 and abs(sidecars['vfr']['video']['duration'] - 8.5) < 0.6
    assert all(isinstance(m['bpm'], (float, type(None))) and m['key'] for m in sidecars.values())
    split = {p.stem: p.parent.name for p in root.glob('*/*.json')}
    files = {p.name for p in root.glob('*/*')}
    assert {'song_webm.webm', 'song_webm.wav', 'pair.opus', 'pair.mp4', 'still.png', 'still.mp3'} <= files
    assert not [p for p in root.rglob('*') if '.tmp' in p.name]
    config = (tmp_path / 'config' / 'mix.yaml').read_text()
    assert 'max_sample_rate: 48000' in config and 'max_channels: 2' in config and f"{tmp_path}/egs/mix/valid" in config
    # A rerun skips every finished item and keeps the split.
    again = ingest(raw, 'mix', valid_fraction=0.3, audio_from=dub, **kwargs)
    assert again.up_to_date == 10 and sum(again.written.values()) == 0
    assert {p.stem: p.parent.name for p in root.glob('*/*.json')} == split


def test_ingest_audio_only_folder(tmp_path):
    from od.data.ingest import ingest
    raw = tmp_path / 'raw'
    raw.mkdir()
    for i, ext in enumerate(['.wav', '.mp3', '.flac', '.ogg', '.opus', '.m4a']):
        M.write_audio(raw / f'track{i}{ext}', M.tone(2, 48000 if ext == '.opus' else 44100, 2, seed=i),
                      48000 if ext == '.opus' else 44100)
    (raw / 'bad.wav').write_bytes(b'RIFF0000WAVEjunk')
    report = ingest(raw, 'tracks', 0.3, dataset_dir=tmp_path / 'd', egs_dir=tmp_path / 'e',
                    config_dir=tmp_path / 'c', progress=False)
    assert report.kind == 'audio' and sum(r.kept for r in report.manifests.values()) == 6, report.summary()
    assert 'bad.wav' in ' '.join(report.skipped)


def test_tiny_models_from_the_shell(tmp_path, capsys):
    from od.encoders.clip import load_image_encoder
    from od.tiny import main
    assert main(['clip', str(tmp_path / 'clip')]) == 0
    assert f'conditioners.self_wav.clip_frames.name={tmp_path / "clip"}' in capsys.readouterr().out
    assert load_image_encoder(str(tmp_path / 'clip')).dim == 32
    assert main(['clip', str(tmp_path / 'clip')]) == 2  # never overwrites


def test_concepts_next_steps_run_without_weights():
    from od.solvers.concept_data import DEBUG_CODEC, next_steps
    debug = next_steps('mine', DEBUG_CODEC)
    assert 'python -m od.tiny t5 checkpoints/tiny-t5' in debug
    assert 'solver=musicgen/textual_inversion_debug' in debug and 't5_ti.name=checkpoints/tiny-t5' in debug
    assert 'od.make_ckpt' in next_steps('mine', '//pretrained/facebook/encodec_32khz')
